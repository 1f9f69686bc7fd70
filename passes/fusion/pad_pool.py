"""A constant Pad in front of AveragePool (zeros) or MaxPool (−inf) becomes the pool's own padding."""
from __future__ import annotations

import math

from onnxopt.passes.fusion._common import MIN_OPSET, constant_pads, merged_pads
from onnxopt.rewrite import Rule


class FusePadIntoPool(Rule):
    """AveragePool(Pad(x, 0)) → AveragePool(x, pads, count_include_pad=1); MaxPool(Pad(x, −inf)) → MaxPool(x, pads)."""

    name = "fuse_pad_into_pool"
    min_opset = MIN_OPSET

    def pattern(self, op, x, pads, value, axes):
        return op.node(("AveragePool", "MaxPool"), op.Pad(x, pads, value, axes, _optional=3), _name="pool")

    def check(self, m):
        pool = m.root
        kernel = pool.attr("kernel_shape")
        if not kernel:
            return m.fail(f"{pool.op_type} has no kernel_shape")
        rank = len(kernel) + 2
        padding = constant_pads(m, rank)
        if isinstance(padding, str):
            return m.fail(padding)
        amounts, value = padding
        # a value of −inf means a float tensor, so MaxPool's implicit −inf padding is the same fill
        if pool.op_type == "MaxPool" and value != -math.inf:
            return m.fail(f"the Pad value is {value}; MaxPool's own padding acts as −inf")
        if pool.op_type == "AveragePool":
            if value != 0.0:
                return m.fail(f"the Pad value is {value}; AveragePool's padding counts as 0")
            if pool.attr("ceil_mode", 0):
                return m.fail("AveragePool has ceil_mode=1 (windows past the padding average differently)")
            own = merged_pads(pool, [0] * (2 * rank), rank)
            if not pool.attr("count_include_pad", 0) and (isinstance(own, str) or any(own)):
                return m.fail("AveragePool leaves its own padding out of the average (count_include_pad=0), "
                              "the Pad's zeros count")
        merged = merged_pads(pool, amounts, rank)
        if isinstance(merged, str):
            return m.fail(merged)
        if any(p >= k for p, k in zip(merged, kernel * 2)):
            return m.fail(f"merged pads {merged} are not all smaller than the kernel {kernel} (onnxruntime needs it)")
        return True

    def rewrite(self, op, m):
        pool = m.root
        rank = len(pool.attr("kernel_shape")) + 2
        amounts, _ = constant_pads(m, rank)
        attrs = dict(pool.attrs)
        attrs.pop("auto_pad", None)
        attrs["pads"] = merged_pads(pool, amounts, rank)
        if pool.op_type == "AveragePool":
            attrs["count_include_pad"] = 1
        return op.node(pool.op_type, m["x"], **attrs)
