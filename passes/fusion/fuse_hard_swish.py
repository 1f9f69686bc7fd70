"""x · HardSigmoid(x) and x · Relu6(x + 3) / 6 in their exported associations → HardSwish (opset ≥ 14)."""
from __future__ import annotations

from onnxopt.passes.fusion._decomposed import float_type_reason
from onnxopt.passes.fusion.fuse_hard_sigmoid import divided_by_six, relu6_shifted, relu6_shifted_reason, sixth_reason
from onnxopt.passes.fusion.regroup_hard_swish import RegroupHardSwish
from onnxopt.rewrite import Rule, rule_pass

HARD_SWISH_OPSET = 14


class FuseHardSwish(Rule):
    """Mul(x, HardSigmoid(x, alpha=1/6, beta=0.5)) → HardSwish(x)."""

    name = "fuse_hard_swish"
    min_opset = HARD_SWISH_OPSET
    needs_shapes = True

    def pattern(self, op, x):
        return op.Mul(x, op.HardSigmoid(x), _commute=True)

    def check(self, m):
        node = m.node("HardSigmoid")
        if abs(node.attr("alpha", 0.2) - 1 / 6) > 1e-6 or abs(node.attr("beta", 0.5) - 0.5) > 1e-6:
            return m.fail("the HardSigmoid is not alpha=1/6, beta=0.5")
        reason = float_type_reason(m["x"])
        return m.fail(reason) if reason else True

    def rewrite(self, op, m):
        return op.HardSwish(m["x"])


class FuseHardSwishOfRelu6(Rule):
    """Mul(x, Clip(x + 3, 0, 6) / 6) → HardSwish(x)."""

    name = "fuse_hard_swish_of_relu6"
    min_opset = HARD_SWISH_OPSET
    needs_shapes = True

    def pattern(self, op, x, three, low, high, six):
        return op.Mul(x, divided_by_six(op, relu6_shifted(op, x, three, low, high), six), _commute=True)

    def check(self, m):
        x = m["x"]
        reason = float_type_reason(x) or relu6_shifted_reason(m, x) or sixth_reason(m, m.node("Clip").outputs[0])
        return m.fail(reason) if reason else True

    def rewrite(self, op, m):
        return op.HardSwish(m["x"])


class FuseHardSwishScaled(RegroupHardSwish):
    """Mul(x, Clip(x + 3, 0, 6)) / 6 → HardSwish(x) (the pattern and checks of regroup_hard_swish)."""

    name = "fuse_hard_swish_scaled"
    min_opset = HARD_SWISH_OPSET

    def rewrite(self, op, m):
        return op.HardSwish(m["x"])


rule_pass(
    (FuseHardSwish, FuseHardSwishOfRelu6, FuseHardSwishScaled), "fuse_hard_swish",
    doc="x · HardSigmoid(x) and x · Relu6(x + 3) / 6 → HardSwish (opset ≥ 14).",
)
