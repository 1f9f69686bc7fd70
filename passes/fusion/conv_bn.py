"""Conv followed by inference-mode BatchNormalization folds into the Conv's weight and bias."""
from __future__ import annotations

import numpy as np

from onnxopt.passes.fusion._common import (
    MIN_OPSET, along_axis0, batchnorm_affine, batchnorm_inference_reason, nonconstant,
)
from onnxopt.rewrite import Rule


class FuseBnIntoConv(Rule):
    """BatchNormalization(Conv(x, W, B)) → Conv(x, W·s, (B − mean)·s + bias) with s = scale / √(var + ε)."""

    name = "fuse_bn_into_conv"
    min_opset = MIN_OPSET

    def pattern(self, op, x, w, b, scale, bias, mean, var):
        return op.BatchNormalization(op.Conv(x, w, b, _optional=1), scale, bias, mean, var)

    def check(self, m):
        reason = batchnorm_inference_reason(m.root) or nonconstant(
            m, w="the Conv weight", b="the Conv bias", scale="the BN scale", bias="the BN bias",
            mean="the BN mean", var="the BN variance",
        )
        if reason:
            return m.fail(reason)
        affine = batchnorm_affine(m, m.const("w").shape[0])
        return m.fail(affine) if isinstance(affine, str) else True

    def rewrite(self, op, m):
        w = m.const("w")
        s, t = batchnorm_affine(m, w.shape[0])
        b = m.const("b")
        b = np.zeros(w.shape[0]) if b is None else b.astype(np.float64)
        weight = op.const((w.astype(np.float64) * along_axis0(s, w.ndim)).astype(w.dtype), name=m["w"].name)
        bias = op.const((b * s + t).astype(w.dtype), name=(m["b"] or m["bias"]).name)
        return op.Conv(m["x"], weight, bias, **m.node("Conv").attrs)
