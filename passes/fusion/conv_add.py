"""Conv or ConvTranspose followed by the addition of a per-channel constant folds into the op's bias."""
from __future__ import annotations

import numpy as np

from onnxopt.passes.fusion._common import MIN_OPSET, channel_vector, nonconstant
from onnxopt.rewrite import Rule


class FuseAddIntoConv(Rule):
    """Add(Conv(x, W, B), c) with c constant per output channel → Conv(x, W, B + c); ConvTranspose alike."""

    name = "fuse_add_into_conv"
    min_opset = MIN_OPSET

    def pattern(self, op, x, w, b, c):
        return op.Add(op.node(("Conv", "ConvTranspose"), x, w, b, _optional=1, _name="conv"), c, _commute=True)

    def check(self, m):
        kind = m.node("conv").op_type
        reason = nonconstant(m, w=f"the {kind} weight", b=f"the {kind} bias", c="the added value")
        if reason:
            return m.fail(reason)
        shift = channel_vector(m.const("c"), m.const("w").ndim, output_channels(m))
        return m.fail(shift) if isinstance(shift, str) else True

    def rewrite(self, op, m):
        w, b, conv = m.const("w"), m.const("b"), m.node("conv")
        shift = channel_vector(m.const("c"), w.ndim, output_channels(m))
        bias = shift if b is None else b.astype(np.float64) + shift
        new_bias = op.const(bias.astype(w.dtype), name=(m["b"] or m["c"]).name)
        return getattr(op, conv.op_type)(m["x"], m["w"], new_bias, **conv.attrs)


def output_channels(m) -> int:
    """Conv weights are (C_out, C_in/group, k…); ConvTranspose weights (C_in, C_out/group, k…)."""
    w, conv = m.const("w"), m.node("conv")
    return w.shape[0] if conv.op_type == "Conv" else conv.attr("group", 1) * w.shape[1]
