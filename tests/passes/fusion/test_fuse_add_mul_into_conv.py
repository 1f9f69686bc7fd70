"""fuse_add_into_conv and fuse_mul_into_conv, and the exporters' decomposed BatchNorm Add(Mul(Conv)) they fold."""
from __future__ import annotations

import numpy as np
import pytest

from fusion_testing import assert_declines, assert_fuses, bn_params, weights
from onnxopt.ir import lint
from onnxopt.passmanager import PassManager
from onnxopt.testing import assert_same_outputs, model_from_text, op_histogram

CONV_THEN = """
<ir_version: 8, opset_import: ["" : {opset}]>
g ({t}[1,3,5,5] x) => ({t}[1,4,5,5] y) {{
  c = Conv<pads=[1,1,1,1]>(x, w{bias})
  y = {op}({lhs}, {rhs})
}}"""


def conv_then(op, k_shape, with_bias=True, swap=False, opset=17, t="float", dtype=np.float32):
    lhs, rhs = ("k", "c") if swap else ("c", "k")
    text = CONV_THEN.format(opset=opset, t=t, bias=", b" if with_bias else "", op=op, lhs=lhs, rhs=rhs)
    inits = {"w": weights(4, 3, 3, 3, dtype=dtype), "k": weights(*k_shape, dtype=dtype, low=0.5, high=1.5)}
    if with_bias:
        inits["b"] = weights(4, dtype=dtype)
    return text, inits


@pytest.mark.parametrize("rule, op", [("fuse_add_into_conv", "Add"), ("fuse_mul_into_conv", "Mul")])
@pytest.mark.parametrize("k_shape, with_bias, swap", [
    ((1, 4, 1, 1), True, False), ((4, 1, 1), False, True), ((1,), True, True), ((), False, False), ((1, 1, 1), True, False),
])
def test_fuses(rule, op, k_shape, with_bias, swap):
    text, inits = conv_then(op, k_shape, with_bias, swap)
    model = assert_fuses(rule, text, inits, {"Conv": 1})
    assert "w" in model.graph.initializers or rule == "fuse_mul_into_conv"


@pytest.mark.parametrize("rule, op", [("fuse_add_into_conv", "Add"), ("fuse_mul_into_conv", "Mul")])
def test_float16(rule, op):
    text, inits = conv_then(op, (4, 1, 1), t="float16", dtype=np.float16)
    assert_fuses(rule, text, inits, {"Conv": 1}, dtype="float16")


@pytest.mark.parametrize("rule, op", [("fuse_add_into_conv", "Add"), ("fuse_mul_into_conv", "Mul")])
def test_double_against_reference(rule, op):
    text, inits = conv_then(op, (1, 4, 1, 1), t="double", dtype=np.float64)
    feeds = {"x": np.random.default_rng(3).standard_normal((1, 3, 5, 5))}
    assert_fuses(rule, text, inits, {"Conv": 1}, feeds=feeds, dtype="float64", reference=True)


@pytest.mark.parametrize("rule, op", [("fuse_add_into_conv", "Add"), ("fuse_mul_into_conv", "Mul")])
def test_wrong_axis(rule, op):
    text, inits = conv_then(op, (5,))  # broadcasts along the last (width) axis, not the channels
    assert_declines(rule, text, inits, "is not per-channel on axis 1")


@pytest.mark.parametrize("rule, op", [("fuse_add_into_conv", "Add"), ("fuse_mul_into_conv", "Mul")])
def test_constant_of_higher_rank(rule, op):
    text, inits = conv_then(op, (1, 1, 4, 1, 1))
    assert_declines(rule, text.replace("float[1,4,5,5] y", "float[1,1,4,5,5] y"), inits, "has rank 5, more than")


@pytest.mark.parametrize("rule, op", [("fuse_add_into_conv", "Add"), ("fuse_mul_into_conv", "Mul")])
def test_non_constant_operand(rule, op):
    text = f"""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1,3,5,5] x, float[1,4,1,1] k) => (float[1,4,5,5] y) {{
      c = Conv<pads=[1,1,1,1]>(x, w)
      y = {op}(c, k)
    }}"""
    assert_declines(rule, text, {"w": weights(4, 3, 3, 3)}, "('k') is not constant")


@pytest.mark.parametrize("rule, op", [("fuse_add_into_conv", "Add"), ("fuse_mul_into_conv", "Mul")])
def test_non_constant_weight(rule, op):
    text = f"""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1,3,5,5] x, float[4,3,3,3] w) => (float[1,4,5,5] y) {{
      c = Conv<pads=[1,1,1,1]>(x, w)
      y = {op}(c, k)
    }}"""
    assert_declines(rule, text, {"k": weights(4, 1, 1)}, "the Conv weight ('w') is not constant")


@pytest.mark.parametrize("rule, op", [("fuse_add_into_conv", "Add"), ("fuse_mul_into_conv", "Mul")])
def test_shared_and_output_intermediate(rule, op):
    text = f"""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1,3,5,5] x) => (float[1,4,5,5] y, float[1,4,5,5] c2) {{
      c = Conv<pads=[1,1,1,1]>(x, w)
      y = {op}(c, k)
      z = Relu(c)
      c2 = Conv<pads=[1,1,1,1]>(z, w2)
      u = {op}(c2, k)
    }}"""
    inits = {"w": weights(4, 3, 3, 3), "w2": weights(4, 4, 3, 3), "k": weights(4, 1, 1)}
    assert_declines(rule, text, inits, "'c' is also read by Relu")
    assert_declines(rule, text, inits, "'c2' is a graph output")


@pytest.mark.parametrize("rule, op", [("fuse_add_into_conv", "Add"), ("fuse_mul_into_conv", "Mul")])
def test_unsupported_opset(rule, op):
    text, inits = conv_then(op, (4, 1, 1), opset=6)
    assert_declines(rule, text, inits, "the rule needs opset >= 7, the model has 6")


CONV_TRANSPOSE_ADD = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[1,4,5,5] x) => (float[1,6,10,10] y) {{
  c = ConvTranspose<strides=[2,2], group={group}>(x, w{bias})
  y = Add(c, k)
}}"""


@pytest.mark.parametrize("group, with_bias, k_shape", [(1, True, (1, 6, 1, 1)), (2, False, (6, 1, 1)), (1, False, ())])
def test_add_folds_into_conv_transpose(group, with_bias, k_shape):
    text = CONV_TRANSPOSE_ADD.format(group=group, bias=", b" if with_bias else "")
    inits = {"w": weights(4, 6 // group, 2, 2), "k": weights(*k_shape)}
    if with_bias:
        inits["b"] = weights(6)
    assert_fuses("fuse_add_into_conv", text, inits, {"ConvTranspose": 1})


def test_add_on_conv_transpose_width_axis_declines():
    text = CONV_TRANSPOSE_ADD.format(group=1, bias="")
    inits = {"w": weights(4, 6, 2, 2), "k": weights(10)}
    assert_declines("fuse_add_into_conv", text, inits, "is not per-channel on axis 1 of a rank-4 tensor with 6 channels")


def test_conv_transpose_bias_add_then_batchnorm_fold_away():
    """An exporter's ConvTranspose with its bias as a separate Add, then BatchNormalization (PP-OCR's det head)."""
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1,4,5,5] x) => (float[1,6,10,10] y) {
      c = ConvTranspose<strides=[2,2]>(x, w)
      a = Add(c, k)
      y = BatchNormalization(a, scale, bias, mean, var)
    }"""
    inits = {"w": weights(4, 6, 2, 2), "k": weights(1, 6, 1, 1), **bn_params(6)}
    model = model_from_text(text, inits)
    original = model.clone()
    PassManager("fuse").run(model)
    assert op_histogram(model) == {"ConvTranspose": 1}
    assert_same_outputs(original, model, rtol=0.0, atol=1e-4)


def test_decomposed_batchnorm_folds_in_one_round():
    """Add(Mul(Conv(x), s), t) as exporters emit: Mul then Add, both fold in one run of the fuse group."""
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1,3,5,5] x) => (float[1,4,5,5] y) {
      c = Conv<pads=[1,1,1,1]>(x, w, b)
      m = Mul(c, s)
      y = Add(m, t)
    }"""
    inits = {"w": weights(4, 3, 3, 3), "b": weights(4), "s": weights(1, 4, 1, 1, low=0.5, high=2), "t": weights(1, 4, 1, 1)}
    model = model_from_text(text, inits)
    original = model.clone()
    result = PassManager(["fuse_mul_into_conv", "fuse_add_into_conv"], max_iterations=1).run(model)
    assert [r.name for r in result.history if r.iteration == 1 and r.modified] == [
        "fuse_mul_into_conv", "fuse_add_into_conv"]
    assert op_histogram(model) == {"Conv": 1}
    lint(model)
    assert_same_outputs(original, model, rtol=0.0, atol=1e-4)
    again = PassManager("fuse").run(model)
    assert not any(r.modified for r in again.history)
