"""regroup_hard_swish: x · Clip(x + 3, 0, 6) / 6 → x · HardSigmoid(x, alpha=1/6, beta=0.5)."""
from __future__ import annotations

import pytest

from target_fusion_testing import assert_declines, assert_fuses
from test_fuse_hard_sigmoid import FEEDS, INITS, hard_sigmoid

RULE = "regroup_hard_swish"


def hard_swish_of_product(opset=11, scale="y = Div(p, six)", product="p = Mul(x, c)", outputs="float[2,3,8] y"):
    """ONNX text of x · Relu6(x + 3) / 6, HardSwish as PaddlePaddle exports it below opset 14."""
    return hard_sigmoid(opset, scale, outputs=outputs).replace("{", "{\n      " + "", 1).replace(
        scale, f"{product}\n      {scale}")


@pytest.mark.parametrize("product", ["p = Mul(x, c)", "p = Mul(c, x)"])
@pytest.mark.parametrize("scale", ["y = Div(p, six)", "y = Mul(p, sixth)"])
@pytest.mark.parametrize("opset", [7, 11, 13])
def test_hard_swish_product_regroups_onto_the_gate(opset, scale, product):
    model = assert_fuses(RULE, hard_swish_of_product(opset, scale, product), INITS, {"HardSigmoid": 1, "Mul": 1},
                         feeds=FEEDS)
    gate = next(n for n in model.graph if n.op_type == "HardSigmoid")
    assert abs(gate.attr("alpha") - 1 / 6) < 1e-7 and gate.attr("beta") == 0.5


@pytest.mark.parametrize("text, reason", [
    (hard_swish_of_product(product="p = Mul(a, c)"), "is not the same value as the other 'x'"),
    (hard_swish_of_product(scale="y = Div(six, p)"), "the division is not by the constant 6"),
    (hard_swish_of_product(outputs="float[2,3,8] y, float[2,3,8] p"), "its output 'p' is a graph output"),
])
def test_hard_swish_product_declines(text, reason):
    assert_declines(RULE, text, INITS, reason)
