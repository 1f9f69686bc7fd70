"""ConvTranspose followed by inference-mode BatchNormalization folds into the ConvTranspose's weight and bias."""
from __future__ import annotations

import numpy as np

from onnxopt.passes.fusion._common import MIN_OPSET, batchnorm_affine, batchnorm_inference_reason, nonconstant
from onnxopt.rewrite import Rule


class FuseBnIntoConvTranspose(Rule):
    """BatchNormalization(ConvTranspose(x, W, B)) → ConvTranspose(x, W·s, (B − mean)·s + bias), s per output channel."""

    name = "fuse_bn_into_conv_transpose"
    min_opset = MIN_OPSET

    def pattern(self, op, x, w, b, scale, bias, mean, var):
        return op.BatchNormalization(op.ConvTranspose(x, w, b, _optional=1), scale, bias, mean, var)

    def check(self, m):
        reason = batchnorm_inference_reason(m.root) or nonconstant(
            m, w="the ConvTranspose weight", b="the ConvTranspose bias", scale="the BN scale", bias="the BN bias",
            mean="the BN mean", var="the BN variance",
        )
        if reason:
            return m.fail(reason)
        w, group = m.const("w"), m.node("ConvTranspose").attr("group", 1)
        if w.ndim < 3 or w.shape[0] % group:
            return m.fail(f"ConvTranspose weight shape {list(w.shape)} does not fit group={group}")
        affine = batchnorm_affine(m, group * w.shape[1])
        return m.fail(affine) if isinstance(affine, str) else True

    def rewrite(self, op, m):
        w, group = m.const("w"), m.node("ConvTranspose").attr("group", 1)
        # weight layout (C_in, C_out / group, k...): output channel g·(C_out/group) + j is column j of group g's rows
        per_group = w.shape[1]
        s, t = batchnorm_affine(m, group * per_group)
        grouped = w.astype(np.float64).reshape(group, w.shape[0] // group, per_group, *w.shape[2:])
        scaled = grouped * s.reshape(group, 1, per_group, *(1,) * (w.ndim - 2))
        b = m.const("b")
        b = np.zeros(group * per_group) if b is None else b.astype(np.float64)
        weight = op.const(scaled.reshape(w.shape).astype(w.dtype), name=m["w"].name)
        bias = op.const((b * s + t).astype(w.dtype), name=(m["b"] or m["bias"]).name)
        return op.ConvTranspose(m["x"], weight, bias, **m.node("ConvTranspose").attrs)
