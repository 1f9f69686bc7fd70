"""Facts the fusions of decomposed normalizations and activations check: scalar constants, reduce axes, types."""
from __future__ import annotations

import numpy as np
from onnx import TensorProto
from onnx.helper import tensor_dtype_to_np_dtype

from onnxopt.ir import Node, Value
from onnxopt.ir.constants import constant_data as constant  # noqa: F401  (re-exported for the passes)

# Element types the emitted normalization/activation ops accept (their type constraint T).
FLOAT_TYPES = (TensorProto.FLOAT16, TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.BFLOAT16)
# onnxruntime's contrib kernels (Gelu, FastGelu, BiasGelu, SkipLayerNormalization, FusedConv, QuickGelu, the
# attention ops) all have float32 CPU kernels; other types exist only on some execution providers.
ORT_TYPES = (TensorProto.FLOAT,)
TOLERANCE = 1e-6


def shape_of(value: Value | None) -> tuple | None:
    """The value's shape when it can be trusted: not for a graph output that a node produces, whose declared shape
    inference keeps and real exports sometimes get wrong (DESIGN.md §10)."""
    if value is None or value.is_graph_output() and value.producer() is not None:
        return None
    return value.shape


def rank(value: Value | None) -> int | None:
    """The value's rank when known and trusted (see `shape_of`)."""
    shape = shape_of(value)
    return None if shape is None else len(shape)


def scalar(value: Value | None, operand: Value | None = None) -> float | None:
    """The number a one-element constant holds, or None.

    With `operand` (the other input of an elementwise op), the constant must also not broadcast the result to
    a higher rank than the operand's: `x · [[[0.5]]]` is not `x · 0.5` when x has rank 2.
    """
    data = _one_element(value, operand)
    return None if data is None else float(data)


def is_scalar(value: Value | None, expected: float, operand: Value | None = None) -> bool:
    """True for a one-element constant within 1e-6 (relative above 1) of `expected` or of `expected` rounded to the
    constant's type (a float16 model holds 1/√2 as 0.70703125); see `scalar`."""
    data = _one_element(value, operand)
    if data is None:
        return False
    rounded = float(np.asarray(expected).astype(data.dtype)) if data.dtype.kind == "f" else expected
    tolerance = TOLERANCE * max(1.0, abs(expected))
    return any(abs(float(data) - target) <= tolerance for target in (expected, rounded))


def _one_element(value: Value | None, operand: Value | None) -> np.ndarray | None:
    data = constant(value)
    if data is None or data.size != 1 or data.dtype.kind not in "fiu":
        return None
    if operand is not None and data.ndim > 0:
        operand_rank = rank(operand)
        if operand_rank is None or data.ndim > operand_rank:
            return None
    return data.reshape(())


def reduce_axes(node: Node, opset: int) -> list[int] | None:
    """A keepdims ReduceMean's axes: the attribute (opset < 18) or a constant input (18+); None when unknown/all."""
    if not node.attr("keepdims", 1):
        return None
    if opset < 18:
        axes = node.attr("axes")
        return list(axes) if axes else None
    if len(node.inputs) < 2 or node.inputs[1] is None:
        return None
    data = constant(node.inputs[1])
    return [int(a) for a in data.reshape(-1)] if data is not None and data.size else None


def trailing_axis(axes: list[int] | None, input_rank: int | None) -> int | None:
    """The negative first axis when `axes` are exactly the last len(axes) axes (LayerNormalization's `axis`)."""
    if not axes:
        return None
    if input_rank is None:
        if min(axes) >= 0:
            return None
        normalized = sorted(axes)
    else:
        if any(not -input_rank <= a < input_rank for a in axes):
            return None
        normalized = sorted(a - input_rank if a >= 0 else a for a in axes)
    count = len(normalized)
    return -count if normalized == list(range(-count, 0)) else None


def negative_axis(node: Node, operand: Value) -> int | None:
    """A normalization node's `axis` (default -1) as a negative axis; None when positive and the rank is unknown."""
    axis = int(node.attr("axis", -1))
    if axis >= 0:
        operand_rank = rank(operand)
        return None if operand_rank is None else axis - operand_rank
    return axis


def trailing_dims(value: Value, axis: int) -> tuple[int, ...] | None:
    """The static dims of `value` from the negative `axis` on, or None when any is unknown."""
    shape = shape_of(value)
    if shape is None or len(shape) < -axis:
        return None
    dims = shape[axis:]
    return tuple(dims) if all(isinstance(d, int) and d > 0 for d in dims) else None


def trailing_factor(
    data: np.ndarray, axis: int, operand_rank: int | None, target: tuple[int, ...],
) -> np.ndarray | None:
    """A constant multiplied onto (or added to) a normalization's output, as an array of the normalized shape.

    It must vary only along the normalized (trailing, from negative `axis`) dims and must not raise the rank of
    the result; returns None otherwise.
    """
    count = -axis
    if data.ndim > count and (operand_rank is None or data.ndim > operand_rank):
        return None
    leading = data.shape[:max(data.ndim - count, 0)]
    if any(d != 1 for d in leading):
        return None
    trailing = data.reshape(data.shape[len(leading):])
    try:
        return np.broadcast_to(trailing, target) if np.broadcast_shapes(trailing.shape, target) == target else None
    except ValueError:
        return None


def float_type_reason(value: Value, allowed: tuple[int, ...] = FLOAT_TYPES) -> str:
    """Why `value`'s element type rules out the fused op ('' when it is allowed)."""
    dtype = value.dtype
    if dtype is None:
        return f"the element type of {value.name!r} is unknown"
    if dtype not in allowed:
        names = "/".join(TensorProto.DataType.Name(t).lower() for t in allowed)
        return f"{value.name!r} is {TensorProto.DataType.Name(dtype).lower()}, the fused op needs {names}"
    return ""


def numpy_type(value: Value) -> np.dtype:
    """The numpy dtype of a tensor value with a known element type."""
    return tensor_dtype_to_np_dtype(value.dtype)


# The decomposed normalizations square and divide in several spellings; a rule family has one rule per spelling.
SQUARES = ("pow", "mul")
DIVISIONS = ("div", "reciprocal", "one_over")


def square(op, d, two, form: str):
    """d² as exporters write it: Pow(d, 2) or Mul(d, d)."""
    return op.Pow(d, two) if form == "pow" else op.Mul(d, d)


def divide(op, d, std, one, form: str):
    """d / std as exporters write it: Div(d, std), Mul(d, Reciprocal(std)) or Mul(d, Div(1, std))."""
    if form == "div":
        return op.Div(d, std, _name="normalize")
    inverse = op.Reciprocal(std) if form == "reciprocal" else op.Div(one, std, _name="inverse")
    return op.Mul(d, inverse, _commute=True, _name="normalize")


def spelling_reason(rule, m, operand: Value) -> str:
    """Why the constants of the rule's spelling are wrong ('' when Pow's exponent is 2 and Div's numerator 1)."""
    if rule.square == "pow" and not is_scalar(m["two"], 2.0):
        return "the Pow exponent is not the constant 2"
    if rule.division == "one_over" and not is_scalar(m["one"], 1.0, operand):
        return "the inverse's numerator is not the constant 1"
    return ""


def spellings(base: type) -> list[type]:
    """`base` (Pow, Div) and one subclass per other spelling, named `<base.name>_<square>_<division>`."""
    rules = [base]
    for form in SQUARES:
        for division in DIVISIONS:
            if (form, division) != (base.square, base.division):
                name = f"{base.name}_{form}_{division}"
                doc = f"{base.__doc__.splitlines()[0]} (d² as {form}, division as {division})"
                rules.append(type(base.__name__ + form.title() + division.title().replace("_", ""), (base,),
                                  {"name": name, "square": form, "division": division, "__doc__": doc,
                                   "__module__": base.__module__}))
    return rules


def clip_bounds(node: Node, opset: int) -> tuple[float, float] | None:
    """A Clip's (min, max): attributes before opset 11, constant inputs after; None when a bound is not constant."""
    if opset < 11:
        return float(node.attr("min", -np.finfo(np.float32).max)), float(node.attr("max", np.finfo(np.float32).max))
    bounds = []
    for index, default in ((1, -np.inf), (2, np.inf)):
        value = node.inputs[index] if len(node.inputs) > index else None
        if value is None:
            bounds.append(default)
            continue
        number = scalar(value)
        if number is None:
            return None
        bounds.append(number)
    return bounds[0], bounds[1]


def normalized_axis(m, x: Value) -> int | str:
    """The first normalized axis of a decomposed normalization, or why it cannot be fused: the mean must be a
    keepdims ReduceMean over the trailing axes, ε a non-negative constant scalar, the normalized dims static."""
    axis = trailing_axis(reduce_axes(m.node("mean"), m.opset), rank(x))
    if axis is None:
        return "the mean is not a keepdims ReduceMean over the last axes"
    eps = scalar(m["eps"], x)
    if eps is None or eps < 0:
        return "ε is not a non-negative constant scalar"
    if trailing_dims(x, axis) is None:
        return f"the normalized dims of {x.name!r} are not static"
    return axis
