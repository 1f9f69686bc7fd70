"""Shared checks and arithmetic of the fusion rules: constants, float types, per-channel vectors, BN folding."""
from __future__ import annotations

import numpy as np

from onnxopt.ir import Node
from onnxopt.rewrite import Match

FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))

# Broadcasting, BatchNormalization's inference semantics and AveragePool's count_include_pad settled at opset 7
# (earlier Add/Mul broadcast through `broadcast`/`axis` attributes); onnxruntime runs nothing older either.
MIN_OPSET = 7


def nonconstant(m: Match, **roles: str) -> str:
    """The reason for the first bound variable that is not a float constant, e.g. 'the Conv weight is not constant'.

    `roles` maps variable names to what they are in words; absent optional inputs (bound to None) pass.
    """
    for var, role in roles.items():
        value = m[var]
        if value is None:
            continue
        array = value.numpy()
        if array is None:
            return f"{role} ({value.name!r}) is not constant"
        if array.dtype not in FLOAT_DTYPES:
            return f"{role} ({value.name!r}) has type {array.dtype}, not a float type"
    return ""


def batchnorm_inference_reason(bn: Node) -> str:
    """Why a BatchNormalization node cannot be folded as an affine map ('' when it can)."""
    if bn.attr("training_mode", 0):
        return "BatchNormalization is in training mode"
    if not bn.attr("spatial", 1):
        return "BatchNormalization has spatial=0 (per-element statistics)"
    return ""


def batchnorm_affine(m: Match, channels: int) -> tuple[np.ndarray, np.ndarray] | str:
    """BN(y) = s·y + t per channel, in float64, from the bound scale/bias/mean/var; or the reason it does not fit."""
    params = [m.const(name) for name in ("scale", "bias", "mean", "var")]
    for name, array in zip(("scale", "bias", "mean", "var"), params):
        if array.shape != (channels,):
            return f"BatchNormalization {name} has shape {list(array.shape)}, expected [{channels}]"
    return affine_of_batchnorm(*params, epsilon=float(m.root.attr("epsilon", 1e-5)))


def affine_of_batchnorm(
    scale: np.ndarray, bias: np.ndarray, mean: np.ndarray, var: np.ndarray, epsilon: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(s, t) in float64 with BN(y) = s·y + t per channel: s = scale / √(var + ε), t = bias − mean·s."""
    scale, bias, mean, var = (np.asarray(a, np.float64) for a in (scale, bias, mean, var))
    s = scale / np.sqrt(var + epsilon)
    return s, bias - mean * s


def channel_vector(array: np.ndarray, rank: int, channels: int) -> np.ndarray | str:
    """A constant that broadcasts along axis 1 of a rank-`rank` tensor with `channels` channels, as a float64 vector.

    It must not change the other operand's shape: at most `rank` dims, all 1 except (right-aligned) axis 1.
    Returns the reason when it does not fit.
    """
    if array.ndim > rank:
        return f"the constant has rank {array.ndim}, more than the tensor's {rank}"
    shape = (1,) * (rank - array.ndim) + array.shape
    for axis, dim in enumerate(shape):
        if axis == 1 and dim in (1, channels):
            continue
        if dim != 1:
            return f"the constant's shape {list(array.shape)} is not per-channel on axis 1 of a rank-{rank} tensor " \
                   f"with {channels} channels"
    return np.broadcast_to(array.reshape(shape[1]).astype(np.float64), (channels,))


def along_axis0(vector: np.ndarray, rank: int) -> np.ndarray:
    """Reshape a length-C vector to broadcast over axis 0 of a rank-`rank` array (a weight's output channels)."""
    return vector.reshape((-1,) + (1,) * (rank - 1))


def conv_like_rank(node: Node, weight_shape: tuple | None) -> int | None:
    """The rank of a Conv/pool input: from kernel_shape, else from the weight's shape; None when unknown."""
    kernel = node.attr("kernel_shape")
    if kernel:
        return len(kernel) + 2
    if weight_shape is not None:
        return len(weight_shape)
    return None


def constant_pads(m: Match, rank: int) -> tuple[list[int], float] | str:
    """The matched Pad's amounts over all `rank` axes (ONNX layout: begins then ends) and its fill value.

    Handles the attribute form (opset < 11), the input form (11+) and `axes` (18+); the reason when the Pad is not
    a constant-mode pad with constant amounts.
    """
    pad = m.node("Pad")
    mode = pad.attr("mode", "constant")
    if mode != "constant":
        return f"Pad mode is {mode!r}, not 'constant'"
    if m.opset < 11:
        amounts, value = list(pad.attr("pads", [])), float(pad.attr("value", 0.0))
    else:
        amounts_array = m.const("pads")
        if amounts_array is None:
            return "the Pad amounts are not constant"
        amounts = [int(a) for a in amounts_array.reshape(-1)]
        value = 0.0
        if m["value"] is not None:
            fill = m.const("value")
            if fill is None or fill.size != 1:
                return "the Pad value is not a constant scalar"
            value = float(fill.reshape(-1)[0])
    axes = list(range(rank))
    if m["axes"] is not None:
        axes_array = m.const("axes")
        if axes_array is None:
            return "the Pad axes are not constant"
        axes = [int(a) % rank for a in axes_array.reshape(-1)]
    if len(amounts) != 2 * len(axes):
        return f"the Pad has {len(amounts)} amounts for {len(axes)} axes"
    full = [0] * (2 * rank)
    for i, axis in enumerate(axes):
        full[axis], full[rank + axis] = amounts[i], amounts[len(axes) + i]
    if min(full) < 0:
        return "the Pad crops (negative amounts)"
    if full[0] or full[1] or full[rank] or full[rank + 1]:
        return "the Pad pads the batch or channel axis"
    return full, value


def merged_pads(node: Node, pad_amounts: list[int], rank: int) -> list[int] | str:
    """The node's own `pads` (auto_pad NOTSET or VALID) plus the Pad's spatial amounts; the reason when impossible."""
    auto_pad = node.attr("auto_pad", "NOTSET")
    if auto_pad not in ("NOTSET", "VALID"):
        return f"{node.op_type} has auto_pad={auto_pad}"
    spatial = rank - 2
    own = list(node.attr("pads", [0] * (2 * spatial))) if auto_pad == "NOTSET" else [0] * (2 * spatial)
    if len(own) != 2 * spatial:
        return f"{node.op_type} pads {own} do not fit rank {rank}"
    extra = pad_amounts[2:rank] + pad_amounts[rank + 2:]
    return [a + b for a, b in zip(own, extra)]
