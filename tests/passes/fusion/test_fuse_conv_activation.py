"""fuse_conv_activation: Conv (+ residual Add) + activation → com.microsoft FusedConv, with --target ort-cpu only."""
from __future__ import annotations

import numpy as np
import pytest

from target_fusion_testing import assert_declines, assert_fuses, scalar

RULE = "fuse_conv_activation"
RNG = np.random.default_rng(3)
INITS = {"w": RNG.uniform(-1, 1, (6, 4, 3, 3)).astype(np.float32), "b": RNG.uniform(-1, 1, 6).astype(np.float32),
         "lo": scalar(0.0), "hi": scalar(6.0)}
ACTIVATIONS = {
    "Relu": "y = Relu(c)", "Sigmoid": "y = Sigmoid(c)", "Tanh": "y = Tanh(c)",
    "LeakyRelu": "y = LeakyRelu<alpha=0.2>(c)", "Clip": "y = Clip(c, lo, hi)",
    "HardSigmoid": "y = HardSigmoid<alpha=0.3, beta=0.4>(c)",
}


def conv(activation="y = Relu(c)", opset=13, conv_inputs="x, w, b", t="float", extra="", inputs=""):
    return f"""
    <ir_version: 8, opset_import: ["" : {opset}]>
    g ({t}[1,4,7,7] x{inputs}) => ({t}[1,6,4,4] y) {{
      c = Conv<pads=[1,1,1,1], strides=[2,2]>({conv_inputs})
      {extra}
      {activation}
    }}"""


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_fuses(activation):
    model = assert_fuses(RULE, conv(ACTIVATIONS[activation]), INITS, {"com.microsoft::FusedConv": 1}, target="ort-cpu")
    node = next(iter(model.graph))
    assert node.attr("activation") == activation and node.attr("strides") == [2, 2]
    assert model.opset_imports["com.microsoft"] == 1


def test_clip_with_attributes_and_without_bias():
    assert_fuses(RULE, conv("y = Clip<min=0.0, max=6.0>(c)", opset=10, conv_inputs="x, w"), INITS,
                 {"com.microsoft::FusedConv": 1}, target="ort-cpu")


@pytest.mark.parametrize("residual", ["s = Add(z, c)", "s = Sum(c, z)"])
@pytest.mark.parametrize("conv_inputs", ["x, w, b", "x, w"])
def test_residual_add_becomes_the_sum_input(conv_inputs, residual):
    text = conv("y = Relu(s)", conv_inputs=conv_inputs, extra=residual, inputs=", float[1,6,4,4] z")
    model = assert_fuses(RULE, text, INITS, {"com.microsoft::FusedConv": 1}, target="ort-cpu")
    assert next(iter(model.graph)).inputs[-1].name == "z"


DOUBLE_INITS = {k: v.astype(np.float64) for k, v in INITS.items()}
NO_HI = {k: v for k, v in INITS.items() if k != "hi"}


@pytest.mark.parametrize("text, inits, reason, target", [
    (conv(), INITS, "emits onnxruntime-only ops and needs --target ort", "onnx"),
    (conv(), INITS, "only onnxruntime's CPU provider runs well and needs --target ort-cpu", "ort"),
    (conv(t="double"), DOUBLE_INITS, "'x' is double, the fused op needs float", "ort-cpu"),
    (conv("y = Clip(c, lo, hi)", inputs=", float hi"), NO_HI, "the Clip bounds are not constant", "ort-cpu"),
    (conv("y = Relu(s)", extra="s = Add(c, z)", inputs=", float[1,6,1,1] z"), INITS,
     "is not the Conv output's static shape", "ort-cpu"),
    (conv(extra="k = Sigmoid(c)").replace("=> (float[1,6,4,4] y)", "=> (float[1,6,4,4] y, float[1,6,4,4] k)"),
     INITS, "is also read by Sigmoid", "ort-cpu"),
])
def test_declines(text, inits, reason, target):
    assert_declines(RULE, text, inits, reason, target=target)
