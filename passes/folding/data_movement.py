"""Constant regions made only of data-movement ops (Reshape, Slice, Concat, Gather…), evaluated in numpy.

These ops copy elements without arithmetic, so numpy gives the bytes any runtime gives, without the ONNX Runtime
session that costs a millisecond or more per region. Casts qualify only where numpy and C++ convert alike (no float
to integer, no strings). A form this module does not implement (an old opset's attributes, an unusual type)
returns None and the region goes to ONNX Runtime.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
from onnx import helper, numpy_helper

from onnxopt.ir import Node, Tensor, Value

# every element type numpy holds natively except strings and objects
_PLAIN = {np.dtype(t) for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
                                np.uint64, np.float16, np.float32, np.float64)}


class _Unsupported(Exception):
    """A form numpy evaluation leaves to ONNX Runtime."""


def evaluate_data_movement(
    nodes: Sequence[Node], wanted: Sequence[Value], opset: int, known: Mapping[Value, Tensor]
) -> dict[Value, Tensor] | None:
    """`wanted` computed by running `nodes` (topologically ordered) in numpy, or None when a node is not a
    data-movement op this module implements."""
    if not all(node.op_type in _OPS and node.domain in ("", "ai.onnx") for node in nodes):
        return None
    arrays: dict[Value, np.ndarray] = {}

    def array(value: Value | None) -> np.ndarray | None:
        if value is None or not value.name:
            return None
        found = arrays.get(value)
        if found is not None:
            return found
        tensor = known.get(value) or value.const_value
        if tensor is None:
            raise _Unsupported(f"{value.name!r} has no data")
        return tensor.numpy()

    try:
        for node in nodes:
            inputs = [array(value) for value in node.inputs]
            if any(x is not None and x.dtype not in _PLAIN for x in inputs):
                return None
            try:
                result = _OPS[node.op_type](node, inputs, opset)
            except (ValueError, IndexError, TypeError) as exc:  # malformed: ONNX Runtime says what is wrong
                raise _Unsupported(str(exc)) from exc
            if result.dtype not in _PLAIN:
                return None
            arrays[node.outputs[0]] = result if result.flags.c_contiguous else result.copy()
    except _Unsupported:
        return None
    return {value: Tensor.from_array(arrays[value]) for value in wanted}


def _ints(x: np.ndarray | None) -> list[int] | None:
    return None if x is None else [int(v) for v in x.reshape(-1)]


def _axis(axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise _Unsupported(f"axis {axis} out of range for rank {rank}")
    return axis % rank


def _identity(node: Node, inputs: list, opset: int) -> np.ndarray:
    return inputs[0]


def _reshape(node: Node, inputs: list, opset: int) -> np.ndarray:
    if opset < 5:
        raise _Unsupported("Reshape with a shape attribute")
    data, shape = inputs[0], _ints(inputs[1])
    if not node.attr("allowzero", 0):
        shape = [data.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return data.reshape(shape)


def _transpose(node: Node, inputs: list, opset: int) -> np.ndarray:
    perm = node.attr("perm")
    return np.transpose(inputs[0], None if perm is None else list(perm))


def _concat(node: Node, inputs: list, opset: int) -> np.ndarray:
    parts = [x for x in inputs if x is not None]
    if len({x.dtype for x in parts}) != 1:
        raise _Unsupported("Concat of mixed types")
    return np.concatenate(parts, axis=_axis(node.attr("axis"), parts[0].ndim))


def _unsqueeze(node: Node, inputs: list, opset: int) -> np.ndarray:
    data = inputs[0]
    axes = _ints(inputs[1]) if opset >= 13 else node.attr("axes")
    rank = data.ndim + len(axes)
    for axis in sorted(_axis(a, rank) for a in axes):
        data = np.expand_dims(data, axis)
    return data


def _squeeze(node: Node, inputs: list, opset: int) -> np.ndarray:
    data = inputs[0]
    axes = (_ints(inputs[1]) if len(inputs) > 1 else None) if opset >= 13 else node.attr("axes")
    if axes is None:
        return np.squeeze(data)
    axes = tuple(_axis(a, data.ndim) for a in axes)
    if any(data.shape[a] != 1 for a in axes):
        raise _Unsupported("Squeeze of a dim that is not 1")
    return np.squeeze(data, axis=axes)


def _slice(node: Node, inputs: list, opset: int) -> np.ndarray:
    if opset < 10:
        raise _Unsupported("Slice with attributes")
    data = inputs[0]
    starts, ends = _ints(inputs[1]), _ints(inputs[2])
    axes = _ints(inputs[3]) if len(inputs) > 3 and inputs[3] is not None else list(range(len(starts)))
    steps = _ints(inputs[4]) if len(inputs) > 4 and inputs[4] is not None else [1] * len(starts)
    index = [slice(None)] * data.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps):
        if step == 0:
            raise _Unsupported("Slice step 0")
        axis = _axis(axis, data.ndim)
        dim = data.shape[axis]
        start, end = start + dim if start < 0 else start, end + dim if end < 0 else end
        if step > 0:
            start, end = min(max(start, 0), dim), min(max(end, 0), dim)
        else:
            start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
        index[axis] = slice(start, end if end >= 0 else None, step)
    return data[tuple(index)]


def _gather(node: Node, inputs: list, opset: int) -> np.ndarray:
    data, indices = inputs
    axis = _axis(node.attr("axis", 0), data.ndim)
    dim = data.shape[axis]
    if indices.size and (indices.min() < -dim or indices.max() >= dim):
        raise _Unsupported("Gather index out of range")
    return np.take(data, np.where(indices < 0, indices + dim, indices), axis=axis)


def _flatten(node: Node, inputs: list, opset: int) -> np.ndarray:
    data = inputs[0]
    axis = node.attr("axis", 1)
    axis = axis + data.ndim if axis < 0 else axis
    if not 0 <= axis <= data.ndim:
        raise _Unsupported(f"Flatten axis {axis} out of range")
    return data.reshape(int(np.prod(data.shape[:axis], dtype=np.int64)), int(np.prod(data.shape[axis:], dtype=np.int64)))


def _constant_of_shape(node: Node, inputs: list, opset: int) -> np.ndarray:
    value = node.attr("value")
    fill = numpy_helper.to_array(value).reshape(-1) if value is not None else np.zeros(1, np.float32)
    if fill.size != 1:
        raise _Unsupported("ConstantOfShape value is not one element")
    result = np.empty(_ints(inputs[0]), dtype=fill.dtype)
    result.fill(fill[0])
    return result


def _expand(node: Node, inputs: list, opset: int) -> np.ndarray:
    data, shape = inputs[0], _ints(inputs[1])
    try:
        return np.broadcast_to(data, np.broadcast_shapes(data.shape, tuple(shape)))
    except ValueError as exc:
        raise _Unsupported(str(exc)) from exc


def _cast(node: Node, inputs: list, opset: int) -> np.ndarray:
    data = inputs[0]
    target = np.dtype(_onnx_dtype(node.attr("to")))
    if data.dtype.kind == "f" and target.kind != "f":
        raise _Unsupported("Cast from float to an integer or bool")  # NaN and overflow are runtime-defined
    if target == np.float16 and data.dtype not in (np.float16, np.float32):
        raise _Unsupported("Cast to float16 from a type runtimes may convert through float32")
    with np.errstate(over="ignore"):  # a finite double beyond float32 becomes inf, as in C++
        return data.astype(target)


def _onnx_dtype(to: int) -> np.dtype:
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(to))
    except (KeyError, TypeError) as exc:
        raise _Unsupported(f"Cast to {to}") from exc
    if dtype not in _PLAIN:
        raise _Unsupported(f"Cast to {dtype}")
    return dtype


_OPS: dict[str, Callable[[Node, list, int], np.ndarray]] = {
    "Identity": _identity, "Reshape": _reshape, "Transpose": _transpose, "Concat": _concat,
    "Unsqueeze": _unsqueeze, "Squeeze": _squeeze, "Slice": _slice, "Gather": _gather, "Flatten": _flatten,
    "ConstantOfShape": _constant_of_shape, "Expand": _expand, "Cast": _cast,
}
