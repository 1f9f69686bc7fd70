"""Relu6(x + 3) / 6 (Clip(x + 3, 0, 6) divided by 6 or times 1/6) → HardSigmoid(x, α = 1/6, β = ½)."""
from __future__ import annotations

from onnxopt.passes.fusion._decomposed import clip_bounds, float_type_reason, is_scalar
from onnxopt.rewrite import Rule, rule_pass

# Numpy-style broadcasting of the matched Add/Mul/Div (and HardSigmoid without `consumed_inputs`) from opset 7.
HARD_SIGMOID_OPSET = 7


def relu6_shifted(op, x, three, low, high):
    """The pattern Clip(x + 3, 0, 6) (bounds as attributes or optional inputs)."""
    return op.Clip(op.Add(x, three, _commute=True), low, high, _optional=2)


def divided_by_six(op, value, six):
    """The pattern value / 6 as Div(value, 6) or Mul(value, 1/6) (either operand order)."""
    return op.node(("Div", "Mul"), value, six, _commute=True, _name="sixth")


def relu6_shifted_reason(m, x) -> str:
    """Why the matched Clip is not Clip(x + 3, 0, 6) ('' when it is)."""
    if not is_scalar(m["three"], 3.0, x):
        return "the added constant is not 3"
    if clip_bounds(m.node("Clip"), m.opset) != (0.0, 6.0):
        return "the Clip bounds are not the constants 0 and 6"
    return ""


def sixth_reason(m, dividend) -> str:
    """Why the matched Div/Mul is not `dividend` / 6 ('' when it is)."""
    node = m.node("sixth")
    if node.op_type == "Div":
        if node.inputs[0] is not dividend or not is_scalar(m["six"], 6.0, dividend):
            return "the division is not by the constant 6"
    elif not is_scalar(m["six"], 1 / 6, dividend):
        return "the factor is not the constant 1/6"
    return ""


class FuseHardSigmoid(Rule):
    """Clip(x + 3, 0, 6) / 6 → HardSigmoid(x, alpha=1/6, beta=0.5)."""

    name = "fuse_hard_sigmoid"
    min_opset = HARD_SIGMOID_OPSET
    needs_shapes = True

    def pattern(self, op, x, three, low, high, six):
        return divided_by_six(op, relu6_shifted(op, x, three, low, high), six)

    def check(self, m):
        x = m["x"]
        reason = float_type_reason(x) or relu6_shifted_reason(m, x) or sixth_reason(m, m.node("Clip").outputs[0])
        return m.fail(reason) if reason else True

    def rewrite(self, op, m):
        return op.HardSigmoid(m["x"], alpha=1 / 6, beta=0.5)


rule_pass(FuseHardSigmoid)
