"""x · tanh(softplus(x)) → Mish (opset ≥ 18)."""
from __future__ import annotations

from onnxopt.passes.fusion._decomposed import float_type_reason
from onnxopt.rewrite import Rule, rule_pass

MISH_OPSET = 18


class FuseMish(Rule):
    """Mul(x, Tanh(Softplus(x))) → Mish(x)."""

    name = "fuse_mish"
    min_opset = MISH_OPSET
    needs_shapes = True

    def pattern(self, op, x):
        return op.Mul(x, op.Tanh(op.Softplus(x)), _commute=True)

    def check(self, m):
        reason = float_type_reason(m["x"])
        return m.fail(reason) if reason else True

    def rewrite(self, op, m):
        return op.Mish(m["x"])


rule_pass(FuseMish)
