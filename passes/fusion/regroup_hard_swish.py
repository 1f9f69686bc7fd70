"""x · Relu6(x + 3) / 6, HardSwish as exported below opset 14 → x · HardSigmoid(x): the division regroups onto the gate.

Four ops become two (PP-OCR's classifier, recogniser and detector run at 0.72–0.89 of their former latency at
ORT_ENABLE_ALL). The quantizer leaves this pass out: ORT has no int8 HardSigmoid, so the gate would run in float
between DequantizeLinear and QuantizeLinear, while the decomposed form fuses into QLinearAdd (the Clip absorbed
into its range) and QLinearMul.
"""
from __future__ import annotations

from onnxopt.passes.fusion._decomposed import float_type_reason
from onnxopt.passes.fusion.fuse_hard_sigmoid import (
    HARD_SIGMOID_OPSET, divided_by_six, relu6_shifted, relu6_shifted_reason, sixth_reason,
)
from onnxopt.rewrite import Rule, rule_pass


class RegroupHardSwish(Rule):
    """Mul(x, Clip(x + 3, 0, 6)) / 6 → Mul(x, HardSigmoid(x, alpha=1/6, beta=0.5)): HardSwish in two ops where the
    opset has no HardSwish (< 14; from 14 fuse_hard_swish makes it one)."""

    name = "regroup_hard_swish"
    min_opset = HARD_SIGMOID_OPSET
    needs_shapes = True

    def pattern(self, op, x, three, low, high, six):
        return divided_by_six(op, op.Mul(x, relu6_shifted(op, x, three, low, high), _commute=True), six)

    def check(self, m):
        x = m["x"]
        reason = float_type_reason(x) or relu6_shifted_reason(m, x) or sixth_reason(m, m.node("Mul").outputs[0])
        return m.fail(reason) if reason else True

    def rewrite(self, op, m):
        return op.Mul(m["x"], op.HardSigmoid(m["x"], alpha=1 / 6, beta=0.5))


rule_pass(RegroupHardSwish)
