"""fuse_hard_swish: x · HardSigmoid(x) and x · Relu6(x + 3) / 6 → HardSwish (opset ≥ 14)."""
from __future__ import annotations

import numpy as np
import pytest

from target_fusion_testing import assert_declines, assert_fuses, scalar

RULE = "fuse_hard_swish"
INITS = {"three": scalar(3.0), "zero": scalar(0.0), "six": scalar(6.0), "sixth": scalar(1 / 6)}
FEEDS = {"x": np.linspace(-5, 5, 2 * 3 * 8, dtype=np.float32).reshape(2, 3, 8)}


def model(body, opset=14, outputs="float[2,3,8] y"):
    return f"""
    <ir_version: 8, opset_import: ["" : {opset}]>
    g (float[2,3,8] x) => ({outputs}) {{
      {body}
    }}"""


RELU6 = "a = Add(x, three)\n      c = Clip(a, zero, six)\n      "
FORMS = {
    "hard_sigmoid": "h = HardSigmoid<alpha=0.16666667, beta=0.5>(x)\n      y = Mul(x, h)",  # torch, opset < 14
    "of_relu6_div": RELU6 + "h = Div(c, six)\n      y = Mul(h, x)",
    "of_relu6_mul": RELU6 + "h = Mul(sixth, c)\n      y = Mul(x, h)",
    "scaled_div": RELU6 + "p = Mul(x, c)\n      y = Div(p, six)",  # Keras MobileNetV3
    "scaled_mul": RELU6 + "p = Mul(c, x)\n      y = Mul(p, sixth)",
}


@pytest.mark.parametrize("form", list(FORMS))
def test_fuses(form):
    assert_fuses(RULE, model(FORMS[form]), INITS, {"HardSwish": 1}, feeds=FEEDS)


def test_after_hard_sigmoid_fusion():
    assert_fuses(("fuse_hard_sigmoid", RULE), model(FORMS["of_relu6_div"]), INITS, {"HardSwish": 1}, feeds=FEEDS)


@pytest.mark.parametrize("text, reason", [
    (model(FORMS["hard_sigmoid"], opset=13), "needs opset >= 14, the model has 13"),
    (model("h = HardSigmoid(x)\n      y = Mul(x, h)"), "the HardSigmoid is not alpha=1/6, beta=0.5"),
    (model(FORMS["scaled_div"].replace("Div(p, six)", "Div(p, three)")), "the division is not by the constant 6"),
    (model(FORMS["of_relu6_div"].replace("Add(x, three)", "Add(x, six)")), "the added constant is not 3"),
    (model(FORMS["scaled_mul"], outputs="float[2,3,8] y, float[2,3,8] c"), "its output 'c' is a graph output"),
    (model("h = HardSigmoid<alpha=0.16666667, beta=0.5>(x)\n      y = Mul(x0, h)").replace(
        "float[2,3,8] x)", "float[2,3,8] x, float[2,3,8] x0)"), "not the same value as the other 'x'"),
])
def test_declines(text, reason):
    assert_declines(RULE, text, INITS, reason)
