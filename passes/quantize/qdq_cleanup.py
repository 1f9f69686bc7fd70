"""Plan-free clean-ups of QDQ graphs: redundant requantization, Q/DQ pairs ORT cannot fuse, DQ copies float readers
can share, Shape of a dequantized value.

Not in any group: the first two change numerics slightly (they remove rounding), and all of them only make sense on a
quantized model, so they run only when asked (the quantizer runs them after inserting Q/DQ). Main graph and subgraphs
alike.
"""
from __future__ import annotations

import numpy as np

from onnxopt.ir import Graph, Model, Node, Value
from onnxopt.passes.quantize.ort_groups import is_qdq_aware
from onnxopt.passmanager import Pass, PassResult, register_pass


def _is(node: Node | None, op_type: str) -> bool:
    return node is not None and node.op_type == op_type and node.domain in ("", "ai.onnx")


def _const(value: Value | None) -> np.ndarray | None:
    return None if value is None else value.numpy()


def same_params(a: Node, b: Node) -> bool:
    """True when two Q/DQ nodes have constant, equal scale, zero point (type included) and axis."""
    if a.attr("axis", 1) != b.attr("axis", 1):
        return False
    for i in (1, 2):
        x = a.inputs[i] if i < len(a.inputs) else None
        y = b.inputs[i] if i < len(b.inputs) else None
        if x is None and y is None:
            continue
        xa, ya = _const(x), _const(y)
        if xa is None or ya is None or xa.dtype != ya.dtype or xa.shape != ya.shape or not np.array_equal(xa, ya):
            return False
    return True


@register_pass
class RemoveRedundantRequantize(Pass):
    """DequantizeLinear(s, z) → QuantizeLinear(s, z) → … ⇒ the quantized input, reused directly."""

    name = "remove_redundant_requantize"

    def call(self, model: Model) -> PassResult:
        """Bypass Q nodes that re-quantize a DQ output with the same parameters."""
        removed = 0
        for graph in model.graph.all_graphs():
            for node in graph:
                if not _is(node, "QuantizeLinear"):
                    continue
                dq = node.inputs[0].producer()
                if not _is(dq, "DequantizeLinear") or not same_params(dq, node) or node.outputs[0].is_graph_output():
                    continue
                node.outputs[0].replace_all_uses_with(dq.inputs[0])
                graph.remove(node)
                removed += 1
            _drop_dead_dq(graph)
        return PassResult(model, removed > 0, {"requantize_removed": removed})


@register_pass
class RemoveUnfusableQDQ(Pass):
    """x → Q → DQ → float-only readers, x from an op ORT cannot fuse ⇒ x read directly (the pair only costs time and accuracy)."""

    name = "remove_unfusable_qdq"

    def call(self, model: Model) -> PassResult:
        """Remove Q/DQ pairs that have no QDQ-aware op on either side."""
        removed = 0
        for graph in model.graph.all_graphs():
            for node in graph:
                if not _is(node, "QuantizeLinear") or node.outputs[0].is_graph_output():
                    continue
                x = node.inputs[0]
                producer = x.producer()
                if producer is not None and is_qdq_aware(producer.op_type, producer.domain):
                    continue
                dqs = node.outputs[0].consumers()
                if not dqs or not all(_is(dq, "DequantizeLinear") and same_params(dq, node) for dq in dqs):
                    continue
                if any(dq.outputs[0].is_graph_output() for dq in dqs):
                    continue
                readers = [r for dq in dqs for r in dq.outputs[0].consumers()]
                if any(is_qdq_aware(r.op_type, r.domain) for r in readers):
                    continue
                for dq in dqs:
                    dq.outputs[0].replace_all_uses_with(x)
                graph.remove([*dqs, node])
                removed += 1
        return PassResult(model, removed > 0, {"qdq_pairs_removed": removed})


@register_pass
class ShapeOfQuantized(Pass):
    """Shape(DequantizeLinear(q)) → Shape(q): the shape is the same, so the dequantization was only work. Exact."""

    name = "read_shape_of_quantized"

    def call(self, model: Model) -> PassResult:
        """Point Shape/Size readers of a DequantizeLinear output at its quantized input."""
        moved = 0
        for graph in model.graph.all_graphs():
            for node in graph:
                if node.op_type not in ("Shape", "Size") or node.domain not in ("", "ai.onnx") or not node.inputs:
                    continue
                dq = node.inputs[0].producer()
                if _is(dq, "DequantizeLinear"):
                    node.replace_input_with(0, dq.inputs[0])
                    moved += 1
            _drop_dead_dq(graph)
        return PassResult(model, moved > 0, {"shape_reads_moved": moved})


@register_pass
class ShareFloatDequantize(Pass):
    """DequantizeLinear(q) twice, every reader running in float ⇒ one DequantizeLinear read by all. Exact.

    The inserter gives each reader its own DQ (ORT fuses a DQ into one node unit only); float readers gain nothing
    from copies, and float fusions need the one value their pattern reads twice (x · Relu6(x + 3) / 6)."""

    name = "share_float_dequantize"

    def call(self, model: Model) -> PassResult:
        """Merge DQ nodes with the same inputs and attributes whose readers are all float ops."""
        merged = 0
        for graph in model.graph.all_graphs():
            first: dict[tuple, Node] = {}
            for node in graph:
                if not _is(node, "DequantizeLinear") or node.outputs[0].is_graph_output():
                    continue
                if any(_in_int8_unit(reader) for reader in node.outputs[0].consumers()):
                    continue
                key = (tuple(node.inputs), tuple(sorted((k, v.SerializeToString()) for k, v in node.attrs.items())))
                kept = first.setdefault(key, node)
                if kept is not node:
                    node.outputs[0].replace_all_uses_with(kept.outputs[0])
                    graph.remove(node)
                    merged += 1
        return PassResult(model, merged > 0, {"dequantize_shared": merged})


def _in_int8_unit(node: Node) -> bool:
    """True when ORT may fuse `node` with its Q/DQ neighbours: a QDQ-aware op whose outputs all go to QuantizeLinear."""
    if not is_qdq_aware(node.op_type, node.domain):
        return False
    return all(not out.is_graph_output() and out.has_uses() and all(_is(r, "QuantizeLinear") for r in out.consumers())
               for out in node.outputs)


def _drop_dead_dq(graph: Graph) -> None:
    for node in reversed(list(graph)):
        if _is(node, "DequantizeLinear") and not node.outputs[0].has_uses() and not node.outputs[0].is_graph_output():
            graph.remove(node)
