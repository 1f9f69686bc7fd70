"""A zero constant Pad in front of a Conv becomes the Conv's own padding."""
from __future__ import annotations

from onnxopt.passes.fusion._common import MIN_OPSET, constant_pads, conv_like_rank, merged_pads
from onnxopt.rewrite import Rule


class FusePadIntoConv(Rule):
    """Conv(Pad(x, pads, 0), W, B) → Conv(x, W, B, pads=conv pads + spatial pads)."""

    name = "fuse_pad_into_conv"
    min_opset = MIN_OPSET

    def pattern(self, op, x, pads, value, axes, w, b):
        return op.Conv(op.Pad(x, pads, value, axes, _optional=3), w, b, _optional=1)

    def check(self, m):
        rank = conv_like_rank(m.root, m["w"].shape)
        if rank is None:
            return m.fail("the Conv's rank is unknown (no kernel_shape, weight shape unknown)")
        padding = constant_pads(m, rank)
        if isinstance(padding, str):
            return m.fail(padding)
        amounts, value = padding
        if value != 0.0:
            return m.fail(f"the Pad value is {value}, a Conv pads with 0")
        merged = merged_pads(m.root, amounts, rank)
        return m.fail(merged) if isinstance(merged, str) else True

    def rewrite(self, op, m):
        rank = conv_like_rank(m.root, m["w"].shape)
        amounts, _ = constant_pads(m, rank)
        attrs = dict(m.root.attrs)
        attrs.pop("auto_pad", None)
        attrs["pads"] = merged_pads(m.root, amounts, rank)
        inputs = [m["x"], m["w"]] + ([m["b"]] if m["b"] is not None else [])
        return op.Conv(*inputs, **attrs)
