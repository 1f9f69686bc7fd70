"""fuse_hard_sigmoid: Clip(x + 3, 0, 6) / 6 → HardSigmoid(alpha=1/6, beta=0.5)."""
from __future__ import annotations

import numpy as np
import pytest

from target_fusion_testing import assert_declines, assert_fuses, scalar

RULE = "fuse_hard_sigmoid"
INITS = {"three": scalar(3.0), "zero": scalar(0.0), "six": scalar(6.0), "sixth": scalar(1 / 6)}
FEEDS = {"x": np.linspace(-5, 5, 2 * 3 * 8, dtype=np.float32).reshape(2, 3, 8)}  # both saturated ends


def hard_sigmoid(opset=13, scale="y = Div(c, six)", clip=None, add="a = Add(x, three)", outputs="float[2,3,8] y"):
    """ONNX text of Relu6(x + 3) / 6 as Keras/TF exports write it."""
    clip = clip or ("c = Clip(a, zero, six)" if opset >= 11 else "c = Clip<min=0.0, max=6.0>(a)")
    return f"""
    <ir_version: 7, opset_import: ["" : {opset}]>
    g (float[2,3,8] x) => ({outputs}) {{
      {add}
      {clip}
      {scale}
    }}"""


@pytest.mark.parametrize("add", ["a = Add(x, three)", "a = Add(three, x)"])
@pytest.mark.parametrize("opset", [7, 13])
@pytest.mark.parametrize("scale", ["y = Div(c, six)", "y = Mul(c, sixth)", "y = Mul(sixth, c)"])
def test_fuses(opset, scale, add):
    model = assert_fuses(RULE, hard_sigmoid(opset, scale, add=add), INITS, {"HardSigmoid": 1}, feeds=FEEDS)
    node = next(iter(model.graph))
    assert abs(node.attr("alpha") - 1 / 6) < 1e-7 and node.attr("beta") == 0.5


@pytest.mark.parametrize("text, reason", [
    (hard_sigmoid(scale="y = Div(six, c)"), "the division is not by the constant 6"),
    (hard_sigmoid(scale="y = Mul(c, six)"), "the factor is not the constant 1/6"),
    (hard_sigmoid(clip="c = Clip(a, zero, three)"), "the Clip bounds are not the constants 0 and 6"),
    (hard_sigmoid(clip="c = Clip(a, zero)"), "the Clip bounds are not the constants 0 and 6"),
    (hard_sigmoid(7, clip="c = Clip<min=0.0, max=1.0>(a)"), "the Clip bounds are not the constants 0 and 6"),
    (hard_sigmoid(add="a = Add(x, six)"), "the added constant is not 3"),
    (hard_sigmoid(6), "needs opset >= 7"),
    (hard_sigmoid(outputs="float[2,3,8] y, float[2,3,8] c"), "its output 'c' is a graph output"),
])
def test_declines(text, reason):
    assert_declines(RULE, text, INITS, reason)

