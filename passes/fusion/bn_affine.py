"""A per-channel multiplication or addition after an inference BatchNormalization folds into its scale and bias."""
from __future__ import annotations

import numpy as np

from onnxopt.passes.fusion._common import MIN_OPSET, batchnorm_inference_reason, channel_vector, nonconstant
from onnxopt.rewrite import Rule

_BN_PARAMS = dict(scale="the BatchNormalization scale", bias="the BatchNormalization bias",
                  mean="the BatchNormalization mean", var="the BatchNormalization variance")


def _per_channel(m, var: str):
    """The constant `var` as a float64 vector along the BatchNormalization's channels, or the reason it is not."""
    reason = nonconstant(m, **_BN_PARAMS, **{var: "the constant"}) or batchnorm_inference_reason(
        m.node("BatchNormalization"))
    if reason:
        return reason
    shape = m["x"].shape
    if shape is None:
        return "the rank of the BatchNormalization input is unknown"
    return channel_vector(m.const(var), len(shape), m.const("scale").shape[0])


def _batchnorm(op, m, scale: np.ndarray, bias: np.ndarray):
    dtype = m.const("scale").dtype
    return op.BatchNormalization(
        m["x"], op.const(scale.astype(dtype), name=m["scale"].name), op.const(bias.astype(dtype), name=m["bias"].name),
        m["mean"], m["var"], **m.node("BatchNormalization").attrs,
    )


class FuseMulIntoBatchNorm(Rule):
    """Mul(BatchNormalization(x, s, b, mean, var), c) with c constant per channel → BatchNormalization(x, s·c, b·c, mean, var)."""

    name = "fuse_mul_into_batchnorm"
    min_opset = MIN_OPSET
    needs_shapes = True

    def pattern(self, op, x, scale, bias, mean, var, c):
        return op.Mul(op.BatchNormalization(x, scale, bias, mean, var), c, _commute=True)

    def check(self, m):
        vector = _per_channel(m, "c")
        return m.fail(vector) if isinstance(vector, str) else True

    def rewrite(self, op, m):
        c = _per_channel(m, "c")
        return _batchnorm(op, m, m.const("scale").astype(np.float64) * c, m.const("bias").astype(np.float64) * c)


class FuseAddIntoBatchNorm(Rule):
    """Add(BatchNormalization(x, s, b, mean, var), d) with d constant per channel → BatchNormalization(x, s, b + d, mean, var)."""

    name = "fuse_add_into_batchnorm"
    min_opset = MIN_OPSET
    needs_shapes = True

    def pattern(self, op, x, scale, bias, mean, var, d):
        return op.Add(op.BatchNormalization(x, scale, bias, mean, var), d, _commute=True)

    def check(self, m):
        vector = _per_channel(m, "d")
        return m.fail(vector) if isinstance(vector, str) else True

    def rewrite(self, op, m):
        d = _per_channel(m, "d")
        return _batchnorm(op, m, m.const("scale").astype(np.float64), m.const("bias").astype(np.float64) + d)
