"""fuse_bn_into_conv: BatchNormalization(Conv(x, W, B)) → Conv(x, W', B')."""
from __future__ import annotations

import numpy as np
import pytest

from fusion_testing import assert_declines, assert_fuses, bn_params, weights

RULE = "fuse_bn_into_conv"

CONV_BN = """
<ir_version: 8, opset_import: ["" : {opset}]>
g ({t}[1,4,6,6] x) => ({t}[1,6,6,6] y) {{
  c = Conv<pads=[1,1,1,1], group={group}>(x, w{bias})
  y = BatchNormalization<epsilon=0.001>(c, scale, bias, mean, var)
}}"""


def conv_bn(opset=17, t="float", group=1, with_bias=True, dtype=np.float32):
    text = CONV_BN.format(opset=opset, t=t, group=group, bias=", b" if with_bias else "")
    inits = {"w": weights(6, 4 // group, 3, 3, dtype=dtype), **bn_params(6, dtype)}
    if with_bias:
        inits["b"] = weights(6, dtype=dtype)
    return text, inits


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("group", [1, 2])
def test_fuses(with_bias, group):
    text, inits = conv_bn(group=group, with_bias=with_bias)
    model = assert_fuses(RULE, text, inits, {"Conv": 1})
    conv = next(iter(model.graph))
    assert conv.attr("group", 1) == group and conv.attr("pads") == [1, 1, 1, 1]
    assert len(model.graph.initializers) == 2  # the old weight and BN parameters are gone


def test_float16():
    text, inits = conv_bn(t="float16", dtype=np.float16)
    model = assert_fuses(RULE, text, inits, {"Conv": 1}, dtype="float16")
    assert {v.numpy().dtype for v in model.graph.initializers.values()} == {np.dtype(np.float16)}


def test_double_against_reference():
    text, inits = conv_bn(t="double", dtype=np.float64)
    feeds = {"x": np.random.default_rng(1).standard_normal((1, 4, 6, 6))}
    assert_fuses(RULE, text, inits, {"Conv": 1}, feeds=feeds, dtype="float64", reference=True)


def test_shared_weight_is_not_overwritten():
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1,4,6,6] x) => (float[1,6,6,6] y, float[1,6,6,6] z) {
      c = Conv(x, w)
      y = BatchNormalization(c, scale, bias, mean, var)
      z = Conv(x, w)
    }"""
    inits = {"w": weights(6, 4, 1, 1), **bn_params(6)}
    model = assert_fuses(RULE, text, inits, {"Conv": 2})
    np.testing.assert_array_equal(model.graph.initializers["w"].numpy(), inits["w"])
    assert [n.inputs[1].name for n in model.graph].count("w") == 1


def test_shared_intermediate():
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1,4,6,6] x) => (float[1,6,6,6] y, float[1,6,6,6] z) {
      c = Conv(x, w)
      y = BatchNormalization(c, scale, bias, mean, var)
      z = Relu(c)
    }"""
    assert_declines(RULE, text, {"w": weights(6, 4, 1, 1), **bn_params(6)}, "'c' is also read by Relu")


def test_intermediate_is_graph_output():
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1,4,6,6] x) => (float[1,6,6,6] y, float[1,6,6,6] c) {
      c = Conv(x, w)
      y = BatchNormalization(c, scale, bias, mean, var)
    }"""
    assert_declines(RULE, text, {"w": weights(6, 4, 1, 1), **bn_params(6)}, "'c' is a graph output")


def test_non_constant_weight():
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1,4,6,6] x, float[6,4,1,1] w) => (float[1,6,6,6] y) {
      c = Conv(x, w)
      y = BatchNormalization(c, scale, bias, mean, var)
    }"""
    assert_declines(RULE, text, bn_params(6), "the Conv weight ('w') is not constant")


def test_non_constant_statistics():
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1,4,6,6] x, float[6] mean) => (float[1,6,6,6] y) {
      c = Conv(x, w)
      y = BatchNormalization(c, scale, bias, mean, var)
    }"""
    params = bn_params(6)
    del params["mean"]
    assert_declines(RULE, text, {"w": weights(6, 4, 1, 1), **params}, "the BN mean ('mean') is not constant")


def test_training_mode():
    text = """
    <ir_version: 8, opset_import: ["" : 15]>
    g (float[1,4,6,6] x) => (float[1,6,6,6] y) {
      c = Conv(x, w)
      y = BatchNormalization<training_mode=1>(c, scale, bias, mean, var)
    }"""
    assert_declines(RULE, text, {"w": weights(6, 4, 1, 1), **bn_params(6)}, "BatchNormalization is in training mode")


def test_training_outputs_used():
    text = """
    <ir_version: 8, opset_import: ["" : 15]>
    g (float[1,4,6,6] x) => (float[1,6,6,6] y, float[6] rm) {
      c = Conv(x, w)
      y, rm, rv = BatchNormalization(c, scale, bias, mean, var)
    }"""
    assert_declines(RULE, text, {"w": weights(6, 4, 1, 1), **bn_params(6)}, "output 1 ('rm') of BatchNormalization is used")


def test_spatial_zero():
    text = """
    <ir_version: 8, opset_import: ["" : 8]>
    g (float[1,4,6,6] x) => (float[1,6,6,6] y) {
      c = Conv(x, w)
      y = BatchNormalization<spatial=0>(c, scale, bias, mean, var)
    }"""
    assert_declines(RULE, text, {"w": weights(6, 4, 1, 1), **bn_params(6)}, "spatial=0")


def test_bn_after_other_op():
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1,6,6,6] x) => (float[1,6,6,6] y) {
      r = Relu(x)
      y = BatchNormalization(r, scale, bias, mean, var)
    }"""
    assert_declines(RULE, text, bn_params(6), "input 0 is produced by Relu, not Conv")


def test_unsupported_opset():
    text, inits = conv_bn(opset=6)
    assert_declines(RULE, text.replace("epsilon=0.001", "is_test=1"), inits, "the rule needs opset >= 7, the model has 6")


def test_inside_if_branch():
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (bool cond, float[1,4,6,6] x) => (float[1,6,6,6] y) {
      y = If(cond) <
        then_branch = t () => (float[1,6,6,6] o) { c = Conv(x, w)  o = BatchNormalization(c, scale, bias, mean, var) },
        else_branch = e () => (float[1,6,6,6] o2) { o2 = Conv(x, w) }
      >
    }"""
    inits = {"w": weights(6, 4, 1, 1), **bn_params(6)}
    x = np.random.default_rng(2).standard_normal((1, 4, 6, 6)).astype(np.float32)
    for flag in (True, False):
        assert_fuses(RULE, text, inits, {"If": 1, "Conv": 2}, feeds={"cond": np.array(flag), "x": x})
