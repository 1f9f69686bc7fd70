"""Conv followed by a multiplication by a per-channel constant folds into the Conv's weight and bias."""
from __future__ import annotations

import numpy as np

from onnxopt.passes.fusion._common import MIN_OPSET, along_axis0, channel_vector, nonconstant
from onnxopt.rewrite import Rule


class FuseMulIntoConv(Rule):
    """Mul(Conv(x, W, B), c) with c constant per output channel → Conv(x, W·c, B·c)."""

    name = "fuse_mul_into_conv"
    min_opset = MIN_OPSET

    def pattern(self, op, x, w, b, c):
        return op.Mul(op.Conv(x, w, b, _optional=1), c, _commute=True)

    def check(self, m):
        reason = nonconstant(m, w="the Conv weight", b="the Conv bias", c="the multiplier")
        if reason:
            return m.fail(reason)
        w = m.const("w")
        scale = channel_vector(m.const("c"), w.ndim, w.shape[0])
        return m.fail(scale) if isinstance(scale, str) else True

    def rewrite(self, op, m):
        w, b = m.const("w"), m.const("b")
        scale = channel_vector(m.const("c"), w.ndim, w.shape[0])
        weight = op.const((w.astype(np.float64) * along_axis0(scale, w.ndim)).astype(w.dtype), name=m["w"].name)
        inputs = [m["x"], weight]
        if b is not None:
            inputs.append(op.const((b.astype(np.float64) * scale).astype(w.dtype), name=m["b"].name))
        return op.Conv(*inputs, **m.node("Conv").attrs)
