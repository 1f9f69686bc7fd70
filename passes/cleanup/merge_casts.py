"""Merge Cast chains whose intermediate type holds every value of the source type exactly."""
from __future__ import annotations

from onnx import TensorProto as T

from onnxopt.ir import Model
from onnxopt.passmanager import Pass, PassResult, register_pass
from onnxopt.passes.cleanup._common import Facts, is_standard, only_feeds

_FLOATS_FOR_INT8 = {T.FLOAT16, T.BFLOAT16, T.FLOAT, T.DOUBLE}  # 8-bit integers fit in 8 mantissa bits
_NUMERIC = {
    T.UINT8, T.INT8, T.UINT16, T.INT16, T.UINT32, T.INT32, T.UINT64, T.INT64,
    T.FLOAT16, T.BFLOAT16, T.FLOAT, T.DOUBLE,
}

# source type → the types that represent every one of its values exactly (and convert onward as the source would)
EXACT_WIDENINGS: dict[int, set[int]] = {
    T.BOOL: _NUMERIC,
    T.UINT8: {T.UINT16, T.INT16, T.UINT32, T.INT32, T.UINT64, T.INT64, *_FLOATS_FOR_INT8},
    T.INT8: {T.INT16, T.INT32, T.INT64, *_FLOATS_FOR_INT8},
    T.UINT16: {T.UINT32, T.INT32, T.UINT64, T.INT64, T.FLOAT, T.DOUBLE},
    T.INT16: {T.INT32, T.INT64, T.FLOAT, T.DOUBLE},
    T.UINT32: {T.UINT64, T.INT64, T.DOUBLE},
    T.INT32: {T.INT64, T.DOUBLE},
    T.FLOAT16: {T.FLOAT, T.DOUBLE},
    T.BFLOAT16: {T.FLOAT, T.DOUBLE},
    T.FLOAT: {T.DOUBLE},
}
TARGETS = _NUMERIC | {T.BOOL}
_INTEGERS = {T.UINT8, T.INT8, T.UINT16, T.INT16, T.UINT32, T.INT32, T.UINT64, T.INT64}


def is_exact_chain(source: int | None, middle: int, target: int) -> bool:
    """True when casting source → middle → target gives what casting source → target gives, for every value."""
    if middle not in EXACT_WIDENINGS.get(source, ()) or target not in TARGETS:
        return False
    if source in _INTEGERS and middle not in _INTEGERS and target in _INTEGERS:
        # out of the target's range an integer wraps, while a float converts implementation-defined
        return target == source or target in EXACT_WIDENINGS[source]
    return True


@register_pass
class MergeExactCasts(Pass):
    """Cast(Cast(x: S, to=M), to=D) → Cast(x, to=D), or x when D is S, if M holds every value of S exactly.

    float32→float64→float32 is exact; float32→float16→float32 is not and is kept. Recurses into subgraphs.
    The inner Cast must feed only the outer one; the source type S must be known from inference.
    """

    name = "merge_exact_casts"
    groups = ("cleanup",)

    def call(self, model: Model) -> PassResult:
        """Make every Cast read the input of an exact widening Cast that feeds it."""
        facts = Facts(model)
        merged = cancelled = 0
        for graph in model.graph.all_graphs():
            for node in graph:
                if node.op_type != "Cast" or not is_standard(node) or node.inputs[0] is None:
                    continue
                inner = node.inputs[0]
                first = inner.producer()
                if first is None or first.op_type != "Cast" or not is_standard(first) or first.inputs[0] is None:
                    continue
                if not only_feeds(inner, node):
                    continue
                x = first.inputs[0]
                source = facts.dtype(x)
                target = node.attr("to")
                if not is_exact_chain(source, first.attr("to"), target):
                    continue
                if target == source:
                    graph.replace_node_with(node, x)
                    cancelled += 1
                else:
                    node.replace_input_with(0, x)
                    merged += 1
                first.graph.remove(first)
        return PassResult(model, bool(merged or cancelled), {"merged": merged, "cancelled": cancelled})
