"""Evaluating constant nodes: one ONNX Runtime session for many nodes, onnx.reference as the fallback; regions of
data-movement ops only in numpy (same bytes, no session)."""
from __future__ import annotations

import functools
import logging
from typing import Mapping, Sequence

import numpy as np
import onnxruntime as ort
from onnx import GraphProto, ModelProto, OperatorSetIdProto, ValueInfoProto, helper

from onnxopt.ir import Model, Node, Tensor, Value
from onnxopt.ir.serde import node_to_proto
from onnxopt.passes.folding.data_movement import evaluate_data_movement

logger = logging.getLogger(__name__)

BATCH_NODES = 1024
_ORT_TYPES = {
    f"tensor({name})": np.dtype(dtype) for name, dtype in (
        ("float", np.float32), ("double", np.float64), ("float16", np.float16), ("bool", np.bool_),
        ("int8", np.int8), ("int16", np.int16), ("int32", np.int32), ("int64", np.int64),
        ("uint8", np.uint8), ("uint16", np.uint16), ("uint32", np.uint32), ("uint64", np.uint64),
        ("string", object),
    )
}


class EvaluationError(Exception):
    """Neither ONNX Runtime nor onnx.reference could compute the values."""


def evaluate(
    nodes: Sequence[Node], wanted: Sequence[Value], model: Model, known: Mapping[Value, Tensor] | None = None,
    reference: bool = True,
) -> dict[Value, Tensor]:
    """Compute `wanted` by running `nodes` (topologically ordered) as one model; raises EvaluationError.

    ONNX Runtime first, so folded values are exactly what the runtime computes; onnx.reference when asked. Nodes
    that only move data run in numpy, which computes the same bytes.
    """
    moved = evaluate_data_movement(nodes, wanted, model.opset, known or {})
    if moved is not None:
        return moved
    proto = _evaluation_model(nodes, wanted, model, known or {})
    names = [v.name for v in wanted]
    errors = []
    for runner in (_run_ort, _run_reference) if reference else (_run_ort,):
        try:
            arrays = runner(proto, names)
            return {value: _to_tensor(array) for value, array in zip(wanted, arrays)}
        except Exception as exc:  # both runtimes raise many exception types for unsupported ops
            errors.append(f"{runner.__name__}: {type(exc).__name__}: {str(exc)[:300]}")
    raise EvaluationError("; ".join(errors))


def evaluate_regions(
    nodes: Sequence[Node], wanted: Sequence[Value], model: Model
) -> tuple[dict[Value, Tensor], set[Node]]:
    """Compute `wanted` in batched ORT sessions; a failing batch per region (ORT, onnx.reference), then per node.

    Returns the computed tensors (node-by-node evaluation also returns intermediate values) and the nodes that
    could not be evaluated (with everything that depends on them).
    """
    values: dict[Value, Tensor] = {}
    failed: set[Node] = set()
    for batch in _batches(_regions(nodes)):
        members = {node for region in batch for node in region}
        batch_wanted = [v for v in wanted if v.producer() in members]
        try:
            nodes_of_batch = [node for region in batch for node in region]
            values.update(evaluate(nodes_of_batch, batch_wanted, model, reference=False))
            continue
        except EvaluationError as exc:
            logger.debug("folding %d nodes at once failed (%s); retrying per region", len(members), exc)
        for region in batch:
            region_set = set(region)
            region_wanted = [v for v in batch_wanted if v.producer() in region_set]
            try:
                values.update(evaluate(region, region_wanted, model))
            except EvaluationError:
                failed |= _evaluate_one_by_one(region, model, values)
    return values, failed


def _batches(regions: list[list[Node]]) -> list[list[list[Node]]]:
    """Whole regions grouped up to BATCH_NODES nodes: session set-up in ORT grows faster than linearly."""
    batches: list[list[list[Node]]] = []
    size = BATCH_NODES
    for region in regions:
        if size + len(region) > BATCH_NODES:
            batches.append([])
            size = 0
        batches[-1].append(region)
        size += len(region)
    return batches


def _evaluate_one_by_one(region: list[Node], model: Model, values: dict[Value, Tensor]) -> set[Node]:
    failed: set[Node] = set()
    for node in region:
        if any(v is not None and not v.is_constant() and v not in values for v in node.inputs):
            failed.add(node)
            continue
        outputs = [v for v in node.outputs if v.name]
        try:
            values.update(evaluate([node], outputs, model, values))
        except EvaluationError as exc:
            logger.info("cannot fold %s: %s", node, exc)
            failed.add(node)
    return failed


def _regions(nodes: Sequence[Node]) -> list[list[Node]]:
    """Connected components of `nodes` under producer → consumer edges, each in the original order."""
    parent: dict[Node, Node] = {node: node for node in nodes}

    def find(node: Node) -> Node:
        while parent[node] is not node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for node in nodes:
        for value in node.inputs:
            producer = value.producer() if value is not None else None
            if producer in parent:
                parent[find(producer)] = find(node)
    groups: dict[Node, list[Node]] = {}
    for node in nodes:
        groups.setdefault(find(node), []).append(node)
    return list(groups.values())


def _evaluation_model(
    nodes: Sequence[Node], wanted: Sequence[Value], model: Model, known: Mapping[Value, Tensor]
) -> ModelProto:
    produced = {out for node in nodes for out in node.outputs}
    graph = GraphProto(name="fold")
    seen: set[str] = set()
    for node in nodes:
        for value in node.inputs:
            if value is None or value in produced or value.name in seen:
                continue
            seen.add(value.name)
            tensor = known.get(value) or value.const_value
            if tensor is None:
                raise EvaluationError(f"{value.name!r} has no data")
            graph.initializer.append(tensor.to_proto(value.name))
        graph.node.append(node_to_proto(node))
    graph.output.extend(ValueInfoProto(name=v.name) for v in wanted)
    opsets = [OperatorSetIdProto(domain=d, version=v) for d, v in model.opset_imports.items()]
    return helper.make_model(graph, opset_imports=opsets, ir_version=max(model.ir_version, 4))


def _run_ort(proto: ModelProto, names: list[str]) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 4
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    types = {output.name: output.type for output in session.get_outputs()}
    arrays = session.run(names, {})
    for name, array in zip(names, arrays):
        expected = _ORT_TYPES.get(types.get(name, ""))
        if expected is None or getattr(array, "dtype", None) != expected:
            # ORT hands float8/bfloat16/int4 results back as raw integers; onnx.reference keeps their type
            raise EvaluationError(f"ONNX Runtime returns {name!r} as {types.get(name)}, not as its own numpy type")
    return arrays


def _run_reference(proto: ModelProto, names: list[str]) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator  # the fallback is rare; importing it costs every run ~25 ms

    return ReferenceEvaluator(proto).run(names, {})


def _to_tensor(array: object) -> Tensor:
    if not isinstance(array, np.ndarray):
        array = np.asarray(array) if isinstance(array, np.generic) else None
    if array is None:
        raise EvaluationError("result is not a tensor (sequence, map or optional)")
    if array.dtype.kind in "US":
        array = array.astype(object)
    _tensor_type(array.dtype)  # raises for types an initializer cannot hold
    return Tensor.from_array(array)


@functools.lru_cache(maxsize=None)
def _tensor_type(dtype: np.dtype) -> int:
    return helper.np_dtype_to_tensor_dtype(dtype)
