"""fuse_rms_norm: decomposed RMS normalization → RMSNormalization (opset ≥ 23) / SimplifiedLayerNormalization (ort)."""
from __future__ import annotations

import numpy as np
import pytest

from onnxopt import optimize
from onnxopt.testing import model_from_text, op_histogram
from target_fusion_testing import assert_declines, assert_fuses, scalar

RULE = "fuse_rms_norm"
RNG = np.random.default_rng(11)
GAMMA = RNG.uniform(0.5, 2.0, 16).astype(np.float32)
INITS = {"two": scalar(2.0), "eps": scalar(1e-6), "one": scalar(1.0), "weight": GAMMA}


def rms_norm(opset=23, square="pow", division="reciprocal", axes="-1", weight=True, outputs="float[1,4,16] y",
             shape="1,4,16"):
    """ONNX text of a decomposed RMS norm; the defaults are LLaMA's, as torch exports them."""
    if opset >= 18:
        axes_text = f"axes = Constant<value = int64[1] {{{axes}}}>()"
        mean = "var = ReduceMean(sq, axes)"
    else:
        axes_text, mean = "", f"var = ReduceMean<axes=[{axes}]>(sq)"
    sq = "Pow(x, two)" if square == "pow" else "Mul(x, x)"
    normalize = {"div": "n = Div(x, std)", "reciprocal": "r = Reciprocal(std)\n      n = Mul(x, r)",
                 "one_over": "r = Div(one, std)\n      n = Mul(r, x)"}[division]
    tail = "y = Mul(weight, n)" if weight else "y = Identity(n)"
    return f"""
    <ir_version: 10, opset_import: ["" : {opset}]>
    g (float[{shape}] x) => ({outputs}) {{
      {axes_text}
      sq = {sq}
      {mean}
      ve = Add(var, eps)
      std = Sqrt(ve)
      {normalize}
      {tail}
    }}"""


def test_llama_export_fuses():
    model = assert_fuses(RULE, rms_norm(), INITS, {"RMSNormalization": 1, "Constant": 1})
    norm = next(n for n in model.graph if n.op_type == "RMSNormalization")
    np.testing.assert_allclose(norm.inputs[1].numpy(), GAMMA)
    assert norm.attr("axis") == -1 and abs(norm.attr("epsilon") - 1e-6) < 1e-12


@pytest.mark.parametrize("division", ["div", "reciprocal", "one_over"])
@pytest.mark.parametrize("square", ["pow", "mul"])
def test_spellings(square, division):
    assert_fuses(RULE, rms_norm(square=square, division=division), INITS, {"RMSNormalization": 1, "Constant": 1})


def test_without_weight():
    assert_fuses(RULE, rms_norm(weight=False), INITS, {"RMSNormalization": 1, "Constant": 1, "Identity": 1})


def test_ort_target_on_older_opset_writes_simplified_layer_norm():
    model = assert_fuses(RULE, rms_norm(17), INITS, {"SimplifiedLayerNormalization": 1}, target="ort")
    assert next(iter(model.graph)).domain == ""  # onnxruntime registers it in the default domain


def test_ort_target_on_opset_23_writes_the_standard_op():
    assert_fuses(RULE, rms_norm(23), INITS, {"RMSNormalization": 1, "Constant": 1}, target="ort")


def test_layer_norm_pattern_becomes_layer_norm_not_rms_norm():
    text = """
    <ir_version: 10, opset_import: ["" : 23]>
    g (float[2,8] x) => (float[2,8] y) {
      mean = ReduceMean(x, axes)
      d = Sub(x, mean)
      sq = Pow(d, two)
      var = ReduceMean(sq, axes)
      ve = Add(var, eps)
      std = Sqrt(ve)
      y = Div(d, std)
    }"""
    model = model_from_text(text, {**INITS, "axes": np.array([-1], np.int64)})
    assert op_histogram(optimize(model, ["fuse"]).model) == {"LayerNormalization": 1}


@pytest.mark.parametrize("text, reason, target", [
    (rms_norm(17), "RMSNormalization needs opset >= 23, the model has 17", "onnx"),
    (rms_norm(axes="1"), "not a keepdims ReduceMean over the last axes", "onnx"),
    (rms_norm(square="pow").replace("Pow(x, two)", "Pow(x, eps)"), "the Pow exponent is not the constant 2", "onnx"),
    (rms_norm(shape="1,4,N"), "the normalized dims of 'x' are not static", "onnx"),
    (rms_norm(outputs="float[1,4,16] y, float[1,4,1] std"), "its output 'std' is a graph output", "ort"),
])
def test_declines(text, reason, target):
    assert_declines(RULE, text, INITS, reason, target=target)


def test_double_fuses_for_ort():
    text = rms_norm(17).replace("float[", "double[")
    inits = {k: v.astype(np.float64) for k, v in INITS.items()}
    assert_fuses(RULE, text, inits, {"SimplifiedLayerNormalization": 1}, target="ort")
