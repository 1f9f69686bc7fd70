"""Scale and zero-point math for QuantizeLinear/DequantizeLinear: pure numpy, per tensor or per channel."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

QuantType = Literal["uint8", "int8"]

# The smallest scale ever emitted. Its square (a bias scale, input_scale * weight_scale) is still
# a normal float32, so no scale we produce, nor a product of two, is zero or denormal.
MIN_SCALE = 2.0**-60

_NUMPY_TYPES: dict[str, type[np.integer]] = {"uint8": np.uint8, "int8": np.int8}


@dataclass(frozen=True)
class QParams:
    """Quantization parameters: float32 scale, integer zero point (scalars, or 1-D along ``axis``)."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None = None


def qrange(dtype: QuantType, symmetric: bool = False, reduce_range: bool = False) -> tuple[int, int]:
    """The (qmin, qmax) used for ``dtype``: symmetric ranges are restricted (int8 → [-127, 127],
    uint8 → [1, 255] around 128) so zero sits in the middle; reduce_range keeps 7 bits.
    """
    if dtype not in _NUMPY_TYPES:
        raise ValueError(f"dtype must be uint8 or int8, got {dtype!r}")
    bits = 7 if reduce_range else 8
    if dtype == "uint8":
        qmin, qmax = 0, 2**bits - 1
    else:
        qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return (qmin + 1, qmax) if symmetric else (qmin, qmax)


def compute_qparams(
    rmin: float | np.ndarray,
    rmax: float | np.ndarray,
    dtype: QuantType = "uint8",
    *,
    symmetric: bool = False,
    reduce_range: bool = False,
    axis: int | None = None,
) -> QParams:
    """Scale and zero point that map [rmin, rmax] (widened to include 0) onto ``dtype``.

    Scalars give per-tensor parameters; 1-D arrays give per-channel ones (pass their ``axis``).
    An all-zero range gets scale 1; no scale is below MIN_SCALE.
    """
    rmin = np.minimum(np.asarray(rmin, dtype=np.float64), 0.0)
    rmax = np.maximum(np.asarray(rmax, dtype=np.float64), 0.0)
    if not (np.all(np.isfinite(rmin)) and np.all(np.isfinite(rmax))):
        raise ValueError(f"range must be finite, got [{rmin}, {rmax}]")
    qmin, qmax = qrange(dtype, symmetric, reduce_range)
    if symmetric:
        center = (qmin + qmax) // 2
        half = qmax - center
        absmax = np.maximum(-rmin, rmax)
        scale = _guard(absmax / half, absmax)
        zero_point = np.full(scale.shape, center, dtype=np.float64)
    else:
        scale = _guard((rmax - rmin) / (qmax - qmin), rmax - rmin)
        # Rounding the zero point can push rmin or rmax half a step outside the grid; the clip
        # keeps zero representable exactly, which matters more (padding, ReLU).
        zero_point = np.clip(np.rint(qmin - rmin / scale.astype(np.float64)), qmin, qmax)
    return QParams(scale, zero_point.astype(_NUMPY_TYPES[dtype]), axis)


def weight_qparams(
    weight: np.ndarray, axis: int | None = None, dtype: QuantType = "int8", reduce_range: bool = False
) -> QParams:
    """Symmetric parameters for a weight: per tensor, or per channel along ``axis``."""
    weight = np.asarray(weight, dtype=np.float64)
    if axis is None:
        return compute_qparams(weight.min(initial=0.0), weight.max(initial=0.0), dtype, symmetric=True, reduce_range=reduce_range)
    axis = axis % weight.ndim
    others = tuple(i for i in range(weight.ndim) if i != axis)
    rmin = weight.min(axis=others, initial=0.0)
    rmax = weight.max(axis=others, initial=0.0)
    return compute_qparams(rmin, rmax, dtype, symmetric=True, reduce_range=reduce_range, axis=axis)


def quantize(x: np.ndarray, qparams: QParams) -> np.ndarray:
    """QuantizeLinear: saturate(round_half_even(x / scale) + zero_point), computed as ONNX does."""
    x = np.asarray(x, dtype=np.float32)
    scale, zero_point = _broadcastable(qparams, x.ndim)
    info = np.iinfo(qparams.zero_point.dtype)
    q = np.rint(x / scale).astype(np.float64) + zero_point
    return np.clip(q, info.min, info.max).astype(qparams.zero_point.dtype)


def dequantize(q: np.ndarray, qparams: QParams) -> np.ndarray:
    """DequantizeLinear: (q - zero_point) * scale in float32."""
    q = np.asarray(q)
    scale, zero_point = _broadcastable(qparams, q.ndim)
    return (q.astype(np.float32) - zero_point.astype(np.float32)) * scale


def quantize_bias(
    bias: np.ndarray, input_scale: float | np.ndarray, weight_scale: float | np.ndarray
) -> tuple[np.ndarray, QParams]:
    """int32 bias with scale = input_scale * weight_scale (per channel, axis 0, when the weight's
    scale is) and zero point 0; saturates at the int32 limits.
    """
    scale = np.asarray(input_scale, dtype=np.float32) * np.asarray(weight_scale, dtype=np.float32)
    qparams = QParams(scale, np.zeros(scale.shape, dtype=np.int32), 0 if scale.ndim else None)
    info = np.iinfo(np.int32)
    q = np.rint(np.asarray(bias, dtype=np.float64) / scale.astype(np.float64))
    return np.clip(q, info.min, info.max).astype(np.int32), qparams


def _guard(scale: np.ndarray, span: np.ndarray) -> np.ndarray:
    # An all-zero range has no natural scale; 1.0 (as ONNX Runtime uses) quantizes it to exact zeros.
    scale = np.where(span == 0.0, 1.0, np.maximum(scale, MIN_SCALE))
    return scale.astype(np.float32)


def _broadcastable(qparams: QParams, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """Scale and zero point shaped to broadcast against an ndim-dimensional tensor."""
    scale, zero_point = qparams.scale, qparams.zero_point
    if qparams.axis is None or scale.ndim == 0:
        return scale, zero_point
    shape = [1] * ndim
    shape[qparams.axis % ndim] = -1
    return scale.reshape(shape), zero_point.reshape(shape)
