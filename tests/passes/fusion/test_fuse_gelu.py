"""fuse_gelu / fuse_bias_gelu: decomposed GELU → Gelu (opset ≥ 20); --target ort → Gelu/FastGelu/BiasGelu."""
from __future__ import annotations

import math

import numpy as np
import pytest

from target_fusion_testing import assert_declines, assert_fuses, scalar

RULE = "fuse_gelu"
INITS = {"half": scalar(0.5), "one": scalar(1.0), "sqrt2": scalar(math.sqrt(2.0)), "rsqrt2": scalar(1 / math.sqrt(2)),
         "three": scalar(3.0), "a": scalar(0.044715), "k": scalar(math.sqrt(2 / math.pi)),
         "bias": np.linspace(-1, 1, 16).astype(np.float32)}

ERF_ARGUMENT = {"div": "u = Div(x, sqrt2)", "mul": "u = Mul(rsqrt2, x)"}
TANH_CUBE = {"pow": "c = Pow(x, three)", "mul": "xx = Mul(x, x)\n      c = Mul(x, xx)"}
TANH_ARGUMENT = "ac = Mul(c, a)\n      p = Add(x, ac)\n      u = Mul(k, p)"
PRODUCTS = {  # x · h · ½ in each association, h = 1 + erf(…) or 1 + tanh(…)
    "x_h": "xh = Mul(x, h)\n      y = Mul(xh, half)",
    "x_half": "xhalf = Mul(half, x)\n      y = Mul(xhalf, h)",
    "h_half": "hh = Mul(h, half)\n      y = Mul(x, hh)",
}


def gelu(opset=20, form="erf", spelling="div", product="x_h", biased=False, outputs="float[2,16] y"):
    """ONNX text of a decomposed GELU; erf/div/x_h is torch's export, tanh/pow/x_half is HF's NewGELU."""
    if form == "erf":
        h = f"{ERF_ARGUMENT[spelling]}\n      e = Erf(u)\n      h = Add(e, one)"
    else:
        h = f"{TANH_CUBE[spelling]}\n      {TANH_ARGUMENT}\n      t = Tanh(u)\n      h = Add(one, t)"
    head = "x = Add(x0, bias)" if biased else "x = Identity(x0)"
    return f"""
    <ir_version: 10, opset_import: ["" : {opset}]>
    g (float[2,16] x0) => ({outputs}) {{
      {head}
      {h}
      {PRODUCTS[product]}
    }}"""


@pytest.mark.parametrize("product", list(PRODUCTS))
@pytest.mark.parametrize("form, spelling", [("erf", "div"), ("erf", "mul"), ("tanh", "pow"), ("tanh", "mul")])
def test_standard_gelu(form, spelling, product):
    model = assert_fuses(RULE, gelu(20, form, spelling, product), INITS, {"Gelu": 1, "Identity": 1})
    gelu_node = next(n for n in model.graph if n.op_type == "Gelu")
    assert gelu_node.attr("approximate", "none") == ("none" if form == "erf" else "tanh")


@pytest.mark.parametrize("form, fused", [("erf", "com.microsoft::Gelu"), ("tanh", "com.microsoft::FastGelu")])
@pytest.mark.parametrize("opset", [17, 20])
def test_ort_target_writes_contrib_ops(form, fused, opset):
    spelling = "div" if form == "erf" else "pow"
    assert_fuses(RULE, gelu(opset, form, spelling), INITS, {fused: 1, "Identity": 1}, target="ort")


@pytest.mark.parametrize("form, fused", [("erf", "com.microsoft::BiasGelu"), ("tanh", "com.microsoft::FastGelu")])
def test_bias_is_taken_in(form, fused):
    spelling = "div" if form == "erf" else "pow"
    model = assert_fuses((RULE, "fuse_bias_gelu"), gelu(17, form, spelling, biased=True), INITS, {fused: 1},
                         target="ort")
    node = next(iter(model.graph))
    assert [v.name for v in node.inputs] == ["x0", "bias"]


def test_bias_of_another_shape_stays_an_add():
    inits = {**INITS, "bias": np.linspace(-1, 1, 32).astype(np.float32).reshape(2, 16)}
    assert_fuses((RULE, "fuse_bias_gelu"), gelu(17, biased=True), inits, {"com.microsoft::Gelu": 1, "Add": 1},
                 target="ort")


@pytest.mark.parametrize("text, inits, reason, target", [
    (gelu(19), INITS, "Gelu needs opset >= 20, the model has 19", "onnx"),
    (gelu(), {**INITS, "half": scalar(0.6)}, "the constants are not ½ and 1", "onnx"),
    (gelu(), {**INITS, "sqrt2": scalar(1.4142)}, "the erf argument is not x / √2", "onnx"),
    (gelu().replace("Div(x, sqrt2)", "Div(sqrt2, x)"), INITS, "the erf argument is not x / √2", "onnx"),
    (gelu(spelling="mul"), {**INITS, "rsqrt2": scalar(0.7)}, "the erf argument is not x · (1/√2)", "onnx"),
    (gelu(form="tanh", spelling="pow"), {**INITS, "a": scalar(0.045)}, "the tanh argument is not", "onnx"),
    (gelu(form="tanh", spelling="pow"), {**INITS, "three": scalar(2.0)}, "the Pow exponent is not 3", "onnx"),
    (gelu(outputs="float[2,16] y, float[2,16] e"), INITS, "its output 'e' is a graph output", "ort"),
    (gelu(17).replace("float[", "double["), {k: v.astype(np.float64) for k, v in INITS.items()},
     "'x' is double, the fused op needs float", "ort"),
])
def test_declines(text, inits, reason, target):
    assert_declines(RULE, text, inits, reason, target=target)


def test_onnx_target_writes_no_bias_gelu():
    assert_fuses((RULE, "fuse_bias_gelu"), gelu(20, biased=True), INITS, {"Gelu": 1, "Add": 1})
    text = """
    <ir_version: 10, opset_import: ["" : 17, "com.microsoft" : 1]>
    g (float[2,16] x0) => (float[2,16] y) { x = Add(x0, bias)  y = com.microsoft.Gelu(x) }"""
    assert_declines("fuse_bias_gelu", text, INITS, "needs --target ort")


def test_float16_constants_match_when_rounded():
    inits = {k: v.astype(np.float16) for k, v in INITS.items()}
    text = gelu(20, "erf", "mul").replace("float[", "float16[")
    assert_fuses(RULE, text, inits, {"Gelu": 1, "Identity": 1}, atol=1e-2)  # float16: 1e-2 × output scale


@pytest.mark.parametrize("approximate, fused", [("none", "com.microsoft::BiasGelu"),
                                                 ("tanh", "com.microsoft::FastGelu")])
def test_bias_is_taken_into_opset_20_gelu(approximate, fused):
    # torch's dynamo exporter writes the standard Gelu after a Linear's bias Add
    text = f"""
    <ir_version: 10, opset_import: ["" : 20]>
    g (float[2,16] x0) => (float[2,16] y) {{ x = Add(x0, bias)  y = Gelu<approximate="{approximate}">(x) }}"""
    model = assert_fuses("fuse_bias_gelu", text, INITS, {fused: 1}, target="ort")
    assert [v.name for v in next(iter(model.graph)).inputs] == ["x0", "bias"]
    assert_declines("fuse_bias_gelu", text, INITS, "needs --target ort")
