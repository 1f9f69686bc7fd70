"""Decomposed layer normalization as exporters write it (mean, centre, variance, divide, ·γ, +β) → LayerNormalization.

The core rules fuse the normalization itself into LayerNormalization(x, 1); the affine rules then fold a following
constant Mul (γ) and Add (β) into its scale and bias. Both run in one walk: the fused node takes the position of the
division, before the Mul and Add that read it.
"""
from __future__ import annotations

import numpy as np

from onnxopt.passes.fusion._decomposed import (
    constant, divide, float_type_reason, negative_axis, numpy_type, rank, reduce_axes, scalar, spelling_reason,
    normalized_axis, spellings, square, trailing_axis, trailing_dims, trailing_factor,
)
from onnxopt.rewrite import Rule, rule_pass

LAYER_NORM_OPSET = 17


class FuseLayerNorm(Rule):
    """(x − mean(x)) / √(mean((x − mean(x))²) + ε) over the last axes → LayerNormalization(x, 1, axis, ε)."""

    name = "fuse_layer_norm"
    min_opset = LAYER_NORM_OPSET
    needs_shapes = True
    square = "pow"
    division = "div"

    def pattern(self, op, x, axes, variance_axes, two, eps, one):
        d = op.Sub(x, op.ReduceMean(x, axes, _optional=1, _name="mean"))
        variance = op.ReduceMean(square(op, d, two, self.square), variance_axes, _optional=1, _name="variance")
        return divide(op, d, op.Sqrt(op.Add(variance, eps, _commute=True)), one, self.division)

    def check(self, m):
        x = m["x"]
        reason = spelling_reason(self, m, x) or float_type_reason(x)
        if reason:
            return m.fail(reason)
        axis = normalized_axis(m, x)
        if isinstance(axis, str):
            return m.fail(axis)
        if trailing_axis(reduce_axes(m.node("variance"), m.opset), rank(x)) != axis:
            return m.fail("the variance is not a keepdims ReduceMean over the same axes as the mean")
        return True

    def rewrite(self, op, m):
        x = m["x"]
        axis = trailing_axis(reduce_axes(m.node("mean"), m.opset), rank(x))
        scale = op.const(np.ones(trailing_dims(x, axis), numpy_type(x)), name="layer_norm_scale")
        return op.LayerNormalization(x, scale, axis=axis, epsilon=scalar(m["eps"], x))


class FuseLayerNormScale(Rule):
    """Mul(LayerNormalization(x, s, b), γ), γ constant along the normalized axes → LayerNormalization(x, s·γ, b·γ)."""

    name = "fuse_layer_norm_scale"
    min_opset = LAYER_NORM_OPSET
    needs_shapes = True

    def pattern(self, op, x, s, b, gamma):
        return op.Mul(op.LayerNormalization(x, s, b, _optional=1), gamma, _commute=True)

    def check(self, m):
        reason = affine_reason(m, "gamma")
        return m.fail(reason) if reason else True

    def rewrite(self, op, m):
        s, b, gamma, dtype = affine_parts(m, "gamma")
        scale = op.const((s * gamma).astype(dtype), name=m["gamma"].name)
        biases = [] if b is None else [op.const((b * gamma).astype(dtype), name=m["b"].name)]
        return op.LayerNormalization(m["x"], scale, *biases, **m.node("LayerNormalization").attrs)


class FuseLayerNormBias(Rule):
    """Add(LayerNormalization(x, s, b), β), β constant along the normalized axes → LayerNormalization(x, s, b + β)."""

    name = "fuse_layer_norm_bias"
    min_opset = LAYER_NORM_OPSET
    needs_shapes = True

    def pattern(self, op, x, s, b, beta):
        return op.Add(op.LayerNormalization(x, s, b, _optional=1), beta, _commute=True)

    def check(self, m):
        reason = affine_reason(m, "beta")
        return m.fail(reason) if reason else True

    def rewrite(self, op, m):
        _, b, beta, dtype = affine_parts(m, "beta")
        bias = op.const((beta if b is None else b + beta).astype(dtype), name=m["beta"].name)
        return op.LayerNormalization(m["x"], m["s"], bias, **m.node("LayerNormalization").attrs)


def affine_reason(m, var: str) -> str:
    """Why γ/β (bound to `var`) cannot fold into the LayerNormalization ('' when it can)."""
    s, b = constant(m["s"]), constant(m["b"])
    if s is None or (m["b"] is not None and b is None):
        return "the LayerNormalization scale or bias is not constant"
    data = constant(m[var])
    if data is None:
        return f"{m[var].name!r} is not constant"
    axis = negative_axis(m.node("LayerNormalization"), m["x"])
    if axis is None:
        return "the LayerNormalization axis is positive and the input rank is unknown"
    if s.ndim > -axis or trailing_factor(data, axis, rank(m["x"]), s.shape) is None:
        return f"{m[var].name!r} does not broadcast along the normalized axes only"
    if b is not None and b.shape != s.shape:
        return "the LayerNormalization bias has another shape than its scale"
    return ""


def affine_parts(m, var: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.dtype]:
    """Scale, bias and γ/β (broadcast to the scale's shape) in float64, and the scale's own dtype."""
    s, b = constant(m["s"]), constant(m["b"])
    axis = negative_axis(m.node("LayerNormalization"), m["x"])
    factor = trailing_factor(constant(m[var]), axis, rank(m["x"]), s.shape)
    return s.astype(np.float64), None if b is None else b.astype(np.float64), factor.astype(np.float64), s.dtype


LAYER_NORM_RULES = (*spellings(FuseLayerNorm), FuseLayerNormScale, FuseLayerNormBias)
rule_pass(
    LAYER_NORM_RULES, "fuse_layer_norm",
    doc="Decomposed layer normalization (mean, centre, variance, ε, √, divide, ·γ, +β) → LayerNormalization (opset ≥ 17).",
)
