"""Conv followed by the addition of a per-channel constant folds into the Conv's bias."""
from __future__ import annotations

import numpy as np

from onnxopt.passes.fusion._common import MIN_OPSET, channel_vector, nonconstant
from onnxopt.rewrite import Rule


class FuseAddIntoConv(Rule):
    """Add(Conv(x, W, B), c) with c constant per output channel → Conv(x, W, B + c)."""

    name = "fuse_add_into_conv"
    min_opset = MIN_OPSET

    def pattern(self, op, x, w, b, c):
        return op.Add(op.Conv(x, w, b, _optional=1), c, _commute=True)

    def check(self, m):
        reason = nonconstant(m, w="the Conv weight", b="the Conv bias", c="the added value")
        if reason:
            return m.fail(reason)
        w = m.const("w")
        shift = channel_vector(m.const("c"), w.ndim, w.shape[0])
        return m.fail(shift) if isinstance(shift, str) else True

    def rewrite(self, op, m):
        w, b = m.const("w"), m.const("b")
        shift = channel_vector(m.const("c"), w.ndim, w.shape[0])
        bias = shift if b is None else b.astype(np.float64) + shift
        new_bias = op.const(bias.astype(w.dtype), name=(m["b"] or m["c"]).name)
        return op.Conv(m["x"], m["w"], new_bias, **m.node("Conv").attrs)
