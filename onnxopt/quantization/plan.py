"""The quantization plan: which nodes are quantized, which tensors get Q/DQ and whose range they use.

Built from the handlers' specs on the prepared float model, keyed by node and value names so that it
applies to any clone of that model. Shared parameters are resolved here:

- data-movement ops (Reshape, Transpose, MaxPool, …) join in only next to a quantized tensor, and their
  outputs take their input's scale (one group, one observed range), so ORT drops their Q/DQ;
- Relu/Clip right after a quantized compute op is absorbed: the op's output takes the activation's range
  (zero point at qmin clamps exactly like Relu) and the activation node is removed;
- every other quantized tensor (Concat/Add inputs and outputs included) has its own observed range.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from onnxopt.ir import Model, Node, Value
from onnxopt.quantization.config import QuantConfig
from onnxopt.quantization.handlers import Declined, HandlerContext, QuantSpec, spec_for
from onnxopt.quantization.qparams import QParams, compute_qparams

SUBGRAPH_REASON = "inside a subgraph, which static calibration cannot observe (use --mode dynamic)"


@dataclass(frozen=True)
class TensorPlan:
    """One quantized activation tensor: its range source and whether its producer's output is quantized."""

    name: str
    source: str
    produced: bool
    constant: bool = False


@dataclass
class QuantPlan:
    """Quantized nodes with their specs, absorbed activations, quantized tensors, and nodes kept float."""

    specs: dict[str, QuantSpec] = field(default_factory=dict)
    op_types: dict[str, str] = field(default_factory=dict)
    absorbed: dict[str, str] = field(default_factory=dict)
    tensors: dict[str, TensorPlan] = field(default_factory=dict)
    kept_float: dict[str, str] = field(default_factory=dict)

    @property
    def observed(self) -> list[str]:
        """Value names whose calibration ranges are needed, in plan order."""
        return list(dict.fromkeys(t.source for t in self.tensors.values() if not t.constant))

    @property
    def compute_nodes(self) -> list[str]:
        """Quantized nodes that do arithmetic (the units kept float by accuracy or latency search)."""
        return [name for name, spec in self.specs.items() if not spec.shares_input]

    @property
    def aliases(self) -> dict[str, str]:
        """Each quantized tensor's range source (for plans made later with some nodes kept float)."""
        return {name: t.source for name, t in self.tensors.items() if not t.constant}

    def absorbed_into(self, node_name: str) -> list[str]:
        """The activation nodes absorbed into a compute node."""
        return [a for a, producer in self.absorbed.items() if producer == node_name]


def build_plan(model: Model, config: QuantConfig, keep_float: frozenset[str] | set[str] = frozenset()) -> QuantPlan:
    """Plan static QDQ placement for the model's main graph; `keep_float` names extra nodes to leave float."""
    graph = model.graph
    ctx = HandlerContext(config, model.opset)
    plan = QuantPlan()
    compute: dict[Node, QuantSpec] = {}
    moving: dict[Node, QuantSpec] = {}
    clamps: dict[Node, QuantSpec] = {}
    for node in graph:
        reason = _excluded(node, config, keep_float)
        spec = spec_for(node, ctx) if reason is None else Declined(reason)
        if isinstance(spec, Declined):
            plan.kept_float[node.name] = spec.reason
            plan.op_types[node.name] = node.op_type
        elif spec.absorbable:
            clamps[node] = spec
        elif spec.shares_input:
            moving[node] = spec
        elif config.include_ops is not None and node.op_type not in config.include_ops:
            plan.kept_float[node.name] = f"{node.op_type} is not in --include-ops"
            plan.op_types[node.name] = node.op_type
        else:
            compute[node] = spec
    for sub in graph.subgraphs():
        for node in sub:
            spec = spec_for(node, ctx)
            if isinstance(spec, QuantSpec) and not spec.shares_input and not spec.absorbable:
                plan.kept_float[node.name] = SUBGRAPH_REASON
                plan.op_types[node.name] = node.op_type

    produced: dict[Value, None] = {}
    consumed: dict[Value, None] = {}
    for node, spec in compute.items():
        consumed.update(dict.fromkeys(node.inputs[i] for i in spec.activations))
        produced.update(dict.fromkeys(node.outputs[o] for o in spec.outputs))
        plan.specs[node.name] = spec
        plan.op_types[node.name] = node.op_type

    for node, spec in clamps.items():
        x, y = node.inputs[0], node.outputs[0]
        producer = x.producer()
        if (
            not config.symmetric_activations and producer in compute and x in produced
            and len(x.uses()) == 1 and not x.is_graph_output()
        ):
            plan.absorbed[node.name] = producer.name
            plan.op_types[node.name] = node.op_type
            del produced[x]
            produced[y] = None

    parent: dict[Value, Value] = {}

    def root(v: Value) -> Value:
        while parent.get(v, v) is not v:
            v = parent[v]
        return v

    active: set[Node] = set()
    changed = True
    while changed:
        changed = False
        for node, spec in moving.items():
            if node in active:
                continue
            x = node.inputs[0]
            outs = [node.outputs[o] for o in spec.outputs]
            if x in produced or any(o in consumed for o in outs):
                active.add(node)
                changed = True
                consumed[x] = None
                for o in outs:
                    produced[o] = None
                    parent[o] = x
                plan.specs[node.name] = spec
                plan.op_types[node.name] = node.op_type

    for value in list(dict.fromkeys([*consumed, *produced])):
        plan.tensors[value.name] = TensorPlan(value.name, root(value).name, value in produced, value.is_constant())
    return plan


def _excluded(node: Node, config: QuantConfig, keep_float: frozenset[str] | set[str]) -> str | None:
    if node.name in config.exclude_nodes:
        return "excluded by --exclude-nodes"
    if node.name in keep_float:
        return "kept float"
    if node.op_type in config.exclude_ops:
        return "excluded by --exclude-ops"
    return None


def activation_qparams(
    plan: QuantPlan, ranges: dict[str, tuple[float, float]], config: QuantConfig, model: Model,
    aliases: dict[str, str] | None = None,
) -> dict[str, QParams]:
    """Scale and zero point of every quantized tensor: constants from their data, others from their source's range.

    `aliases` maps a tensor to the one whose range it may borrow when its own was not observed (a plan
    with nodes kept float can start a data-movement group later than the calibrated plan did).
    """
    params: dict[str, QParams] = {}
    by_source: dict[str, QParams] = {}
    for name, tensor in plan.tensors.items():
        if tensor.constant:
            data = np.asarray(model.graph.initializers[name].const_value.numpy(), dtype=np.float64)
            lo, hi = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
            params[name] = compute_qparams(
                lo, hi, config.activation_type, symmetric=config.symmetric_activations
            )
            continue
        qp = by_source.get(tensor.source)
        if qp is None:
            source = tensor.source if tensor.source in ranges else (aliases or {}).get(tensor.source, tensor.source)
            if source not in ranges:
                raise KeyError(f"no calibration range for {tensor.source!r}")
            lo, hi = ranges[source]
            qp = compute_qparams(lo, hi, config.activation_type, symmetric=config.symmetric_activations)
            by_source[tensor.source] = qp
        params[name] = qp
    return params
