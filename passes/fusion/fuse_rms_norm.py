"""The decomposed RMS normalization of LLaMA/T5-style models → RMSNormalization (opset ≥ 23).

With `--target ort` on older opsets the fused op is onnxruntime's SimplifiedLayerNormalization, which onnxruntime
registers in the default domain (com.microsoft has no such op): a model with it runs only on onnxruntime.
As for layer normalization, the core rules write a unit scale and a second rule folds the following constant γ.
"""
from __future__ import annotations

import numpy as np

from onnxopt.passes.fusion._decomposed import (
    constant, divide, float_type_reason, negative_axis, normalized_axis, numpy_type, rank, reduce_axes, scalar,
    spelling_reason,
    spellings, square, trailing_axis, trailing_dims, trailing_factor,
)
from onnxopt.rewrite import ORT_TARGETS, Rule, rule_pass

RMS_NORM_OPSET = 23
RMS_NORM_OPS = ("RMSNormalization", "SimplifiedLayerNormalization")


class FuseRmsNorm(Rule):
    """x / √(mean(x²) + ε) over the last axes → RMSNormalization(x, 1, axis, ε) (ORT: SimplifiedLayerNormalization)."""

    name = "fuse_rms_norm"
    needs_shapes = True
    square = "pow"
    division = "div"

    def pattern(self, op, x, axes, two, eps, one):
        mean_square = op.ReduceMean(square(op, x, two, self.square), axes, _optional=1, _name="mean")
        return divide(op, x, op.Sqrt(op.Add(mean_square, eps, _commute=True)), one, self.division)

    def check(self, m):
        if m.opset < RMS_NORM_OPSET and m.target not in ORT_TARGETS:
            return m.fail(f"RMSNormalization needs opset >= {RMS_NORM_OPSET}, the model has {m.opset} "
                          f"(--target ort would write onnxruntime's SimplifiedLayerNormalization)")
        x = m["x"]
        reason = spelling_reason(self, m, x) or float_type_reason(x)
        if reason:
            return m.fail(reason)
        axis = normalized_axis(m, x)
        return m.fail(axis) if isinstance(axis, str) else True

    def rewrite(self, op, m):
        x = m["x"]
        axis = trailing_axis(reduce_axes(m.node("mean"), m.opset), rank(x))
        scale = op.const(np.ones(trailing_dims(x, axis), numpy_type(x)), name="rms_norm_scale")
        fused = "RMSNormalization" if m.opset >= RMS_NORM_OPSET else "SimplifiedLayerNormalization"
        return op.node(fused, x, scale, axis=axis, epsilon=scalar(m["eps"], x))


class FuseRmsNormScale(Rule):
    """Mul(RMSNormalization(x, s), γ) with constant s, γ over the normalized axes → RMSNormalization(x, s·γ)."""

    name = "fuse_rms_norm_scale"
    needs_shapes = True

    def pattern(self, op, x, s, gamma):
        return op.Mul(op.node(RMS_NORM_OPS, x, s, _name="norm"), gamma, _commute=True)

    def check(self, m):
        s, gamma = constant(m["s"]), constant(m["gamma"])
        if s is None or gamma is None:
            return m.fail("the scale or γ is not constant")
        axis = negative_axis(m.node("norm"), m["x"])
        if axis is None:
            return m.fail(f"the {m.node('norm').op_type} axis is positive and the input rank is unknown")
        if s.ndim > -axis or trailing_factor(gamma, axis, rank(m["x"]), s.shape) is None:
            return m.fail(f"{m['gamma'].name!r} does not broadcast along the normalized axes only")
        return True

    def rewrite(self, op, m):
        s = constant(m["s"])
        axis = negative_axis(m.node("norm"), m["x"])
        gamma = trailing_factor(constant(m["gamma"]), axis, rank(m["x"]), s.shape)
        scale = op.const((s.astype(np.float64) * gamma).astype(s.dtype), name=m["gamma"].name)
        norm = m.node("norm")
        return op.node(norm.op_type, m["x"], scale, **norm.attrs)


RMS_NORM_RULES = (*spellings(FuseRmsNorm), FuseRmsNormScale)
rule_pass(
    RMS_NORM_RULES, "fuse_rms_norm",
    doc=(
        "Decomposed RMS normalization (x², mean, ε, √, divide, ·γ) → RMSNormalization (opset ≥ 23; "
        "--target ort: SimplifiedLayerNormalization)."
    ),
)
