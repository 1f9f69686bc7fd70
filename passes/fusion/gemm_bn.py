"""Gemm followed by inference-mode BatchNormalization folds into the Gemm's weight and bias."""
from __future__ import annotations

import numpy as np

from onnxopt.passes.fusion._common import MIN_OPSET, batchnorm_affine, batchnorm_inference_reason, nonconstant
from onnxopt.rewrite import Rule


class FuseBnIntoGemm(Rule):
    """BatchNormalization(Gemm(A, B, C)) → Gemm(A, B·s, s·(β·C − mean) + bias, β=1); transB kept, B scaled into a new weight."""

    name = "fuse_bn_into_gemm"
    min_opset = MIN_OPSET

    def pattern(self, op, a, b, c, scale, bias, mean, var):
        return op.BatchNormalization(op.Gemm(a, b, c, _optional=1), scale, bias, mean, var)

    def check(self, m):
        reason = batchnorm_inference_reason(m.root) or nonconstant(
            m, b="the Gemm weight B", c="the Gemm bias C", scale="the BN scale", bias="the BN bias",
            mean="the BN mean", var="the BN variance",
        )
        if reason:
            return m.fail(reason)
        b = m.const("b")
        if b.ndim != 2:
            return m.fail(f"the Gemm weight has rank {b.ndim}, not 2")
        affine = batchnorm_affine(m, _columns(m, b))
        if isinstance(affine, str):
            return m.fail(affine)
        c = m.const("c")
        if c is not None and (c.ndim > 2 or (c.ndim and c.shape[-1] not in (1, _columns(m, b)))):
            return m.fail(f"the Gemm bias has shape {list(c.shape)}, which does not broadcast per column")
        return True

    def rewrite(self, op, m):
        gemm, b = m.node("Gemm"), m.const("b")
        s, t = batchnorm_affine(m, _columns(m, b))
        trans_b = gemm.attr("transB", 0)
        weight = b.astype(np.float64) * (s[:, None] if trans_b else s[None, :])
        c = m.const("c")
        beta_c = 0.0 if c is None else float(gemm.attr("beta", 1.0)) * c.astype(np.float64)
        attrs = dict(gemm.attrs)
        attrs["beta"] = 1.0
        return op.Gemm(
            m["a"], op.const(weight.astype(b.dtype), name=m["b"].name),
            op.const((s * beta_c + t).astype(b.dtype), name=(m["c"] or m["bias"]).name), **attrs,
        )


def _columns(m, b: np.ndarray) -> int:
    """N, the Gemm output's column count: B is [K, N], or [N, K] with transB."""
    return b.shape[0] if m.node("Gemm").attr("transB", 0) else b.shape[1]
