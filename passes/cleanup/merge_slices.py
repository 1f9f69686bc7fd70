"""Merge a Slice into the Slice that feeds it when they cut different axes."""
from __future__ import annotations

import numpy as np

from onnxopt.ir import Graph, Model, Node, Tensor, Value
from onnxopt.passmanager import Pass, PassResult, register_pass
from onnxopt.passes.cleanup._common import Facts, const_ints, input_at, is_standard, only_feeds

_Params = tuple[list[int], list[int], list[int], list[int]]


def _params(node: Node, rank: int | None) -> _Params | None:
    """Constant starts, ends, axes (normalized to be non-negative) and steps of an input-form Slice, else None."""
    starts, ends = const_ints(input_at(node, 1)), const_ints(input_at(node, 2))
    if starts is None or ends is None or len(starts) != len(ends):
        return None
    axes_value, steps_value = input_at(node, 3), input_at(node, 4)
    axes = const_ints(axes_value) if axes_value is not None else list(range(len(starts)))
    steps = const_ints(steps_value) if steps_value is not None else [1] * len(starts)
    if axes is None or steps is None or len(axes) != len(starts) or len(steps) != len(starts):
        return None
    if any(a < 0 for a in axes):
        if rank is None:
            return None
        axes = [a + rank if a < 0 else a for a in axes]
    return starts, ends, axes, steps


def _const(graph: Graph, values: list[int], name: str) -> Value:
    return graph.add_initializer(Value(graph.unique_name(name), const_value=Tensor.from_array(np.array(values, np.int64))))


@register_pass
class MergeConsecutiveSlices(Pass):
    """Slice(Slice(x, s1, e1, a1, t1), s2, e2, a2, t2) → Slice(x, s1+s2, e1+e2, a1+a2, t1+t2) for disjoint axes.

    Opset ≥ 10 (parameters as inputs), all of them constant; the inner Slice must feed only the outer one.
    Recurses into subgraphs.
    """

    name = "merge_consecutive_slices"
    groups = ("cleanup",)

    def call(self, model: Model) -> PassResult:
        """Merge every Slice into the Slice that produces its data input."""
        if model.opset < 10:
            return PassResult(model, False)
        facts = Facts(model)
        merged = 0
        for graph in model.graph.all_graphs():
            for node in graph:
                if node.op_type != "Slice" or not is_standard(node) or node.inputs[0] is None:
                    continue
                first = node.inputs[0].producer()
                if first is None or first.op_type != "Slice" or not is_standard(first) or first.inputs[0] is None:
                    continue
                if not only_feeds(node.inputs[0], node):
                    continue
                rank = facts.rank(first.inputs[0])
                inner, outer = _params(first, rank), _params(node, rank)
                if inner is None or outer is None or set(inner[2]) & set(outer[2]):
                    continue
                starts, ends, axes, steps = (a + b for a, b in zip(inner, outer))
                with graph.inserting_before(node):
                    node.set_inputs([
                        first.inputs[0], _const(graph, starts, "slice_starts"), _const(graph, ends, "slice_ends"),
                        _const(graph, axes, "slice_axes"), _const(graph, steps, "slice_steps"),
                    ])
                graph.remove(first)
                merged += 1
        return PassResult(model, merged > 0, {"merged": merged} if merged else {})
