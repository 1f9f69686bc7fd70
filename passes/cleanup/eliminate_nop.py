"""Eliminate operators that return their input unchanged: one row per op type, each a no-op predicate."""
from __future__ import annotations

from typing import Callable

from onnxopt.ir import Model, Node, Value
from onnxopt.passmanager import Pass, PassResult, register_pass
from onnxopt.passes.cleanup._common import Facts, can_bypass, const, const_ints, input_at, is_standard

INT64_MAX = 2**63 - 1

# A predicate returns the value the node's (only used) output equals, or None when the node does something.
NoopCheck = Callable[[Node, Facts], "Value | None"]


def _identity(node: Node, facts: Facts) -> Value | None:
    return node.inputs[0]


def _single_input(node: Node, facts: Facts) -> Value | None:
    inputs = [v for v in node.inputs if v is not None]
    return inputs[0] if len(inputs) == 1 and len(node.inputs) == 1 else None


def _single_output(node: Node, facts: Facts) -> Value | None:
    return node.inputs[0] if len(node.outputs) == 1 else None


def _dropout(node: Node, facts: Facts) -> Value | None:
    if len(node.outputs) > 1 and (node.outputs[1].has_uses() or node.outputs[1].is_graph_output()):
        return None  # the mask is read: removing the node would leave it undefined
    if facts.opset < 7:
        return node.inputs[0] if node.attr("is_test", 0) else None
    if facts.opset < 12:
        return node.inputs[0]  # opsets 7-11 have no training mode: Dropout is the identity at inference
    training = input_at(node, 2)
    training_data = const(training)
    if training is None or (training_data is not None and not training_data.any()):
        return node.inputs[0]
    ratio_data = const(input_at(node, 1))
    return node.inputs[0] if ratio_data is not None and not ratio_data.any() else None


def _transpose(node: Node, facts: Facts) -> Value | None:
    perm = node.attr("perm")
    if perm is None:  # the default reverses the dims: a no-op only up to rank 1
        rank = facts.rank(node.inputs[0])
        return node.inputs[0] if rank is not None and rank <= 1 else None
    return node.inputs[0] if list(perm) == list(range(len(perm))) else None


def _cast(node: Node, facts: Facts) -> Value | None:
    dtype = facts.dtype(node.inputs[0])
    return node.inputs[0] if dtype is not None and dtype == node.attr("to") else None


def _reshape(node: Node, facts: Facts) -> Value | None:
    x = node.inputs[0]
    target = const_ints(input_at(node, 1)) if facts.opset >= 5 else node.attr("shape")
    shape = facts.shape(x)
    if target is None or shape is None or len(target) != len(shape):
        return None
    copy_zero = not node.attr("allowzero", 0)
    for want, dim in zip(target, shape):
        if want == 0 and copy_zero or want == dim:
            continue
        if want == -1 and target.count(-1) == 1:
            continue  # every other dim matches, so the one -1 infers exactly this dim
        return None
    return x


def _expand(node: Node, facts: Facts) -> Value | None:
    x = node.inputs[0]
    target = const_ints(input_at(node, 1))
    shape = facts.shape(x)
    if target is None or shape is None or len(target) > len(shape):
        return None
    aligned = shape[len(shape) - len(target):]
    return x if all(want == 1 or want == dim for want, dim in zip(target, aligned)) else None


def _flatten(node: Node, facts: Facts) -> Value | None:
    x = node.inputs[0]
    shape = facts.shape(x)
    if shape is None or len(shape) != 2:
        return None
    axis = node.attr("axis", 1)
    axis = axis + 2 if axis < 0 else axis
    if axis == 1 or axis == 0 and shape[0] == 1 or axis == 2 and shape[1] == 1:
        return x
    return None


def _pad(node: Node, facts: Facts) -> Value | None:
    if facts.opset < 11:
        pads = node.attr("pads", node.attr("paddings"))
    else:
        pads = const_ints(input_at(node, 1))
    return node.inputs[0] if pads is not None and not any(pads) else None


def _slice(node: Node, facts: Facts) -> Value | None:
    x = node.inputs[0]
    if facts.opset < 10:
        starts, ends = node.attr("starts"), node.attr("ends")
        axes, steps = node.attr("axes"), None
    else:
        starts, ends = const_ints(input_at(node, 1)), const_ints(input_at(node, 2))
        axes, steps = const_ints(input_at(node, 3)), const_ints(input_at(node, 4))
        if (axes is None and input_at(node, 3) is not None) or (steps is None and input_at(node, 4) is not None):
            return None  # given but not constant
    if starts is None or ends is None:
        return None
    axes = list(axes) if axes is not None else list(range(len(starts)))
    steps = steps if steps is not None else [1] * len(starts)
    shape = facts.shape(x)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        if step != 1:
            return None
        dim = None
        if shape is not None and -len(shape) <= axis < len(shape) and isinstance(shape[axis], int):
            dim = shape[axis]
        from_first = start == 0 or dim is not None and start <= -dim
        to_last = end >= INT64_MAX or dim is not None and end >= dim
        if not (from_first and to_last):
            return None
    return x


NOOPS: dict[str, NoopCheck] = {
    "Identity": _identity,
    "Dropout": _dropout,
    "Transpose": _transpose,
    "Cast": _cast,
    "Reshape": _reshape,
    "Expand": _expand,
    "Flatten": _flatten,
    "Pad": _pad,
    "Slice": _slice,
    "Concat": _single_input,
    "Split": _single_output,
}


@register_pass
class EliminateNop(Pass):
    """Op(x) that returns x unchanged (Identity, inference Dropout, identity Transpose, same-shape Reshape …) → x.

    Recurses into subgraphs. Shapes come from inference; a no-op whose output is a graph output is kept when its
    input cannot take over the output's name (a graph input, an initializer, an outer value).
    """

    name = "eliminate_nop"
    groups = ("cleanup",)

    def call(self, model: Model) -> PassResult:
        """Bypass and remove every no-op node, subgraphs included."""
        facts = Facts(model)
        counters: dict[str, int] = {}
        for graph in model.graph.all_graphs():
            for node in graph:
                check = NOOPS.get(node.op_type)
                if check is None or not is_standard(node) or not node.inputs or node.inputs[0] is None:
                    continue
                value = check(node, facts)
                if value is None or not can_bypass(node.outputs[0], value):
                    continue
                graph.replace_node_with(node, value)
                counters[node.op_type] = counters.get(node.op_type, 0) + 1
        return PassResult(model, bool(counters), counters)
