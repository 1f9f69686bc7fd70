"""fuse_bn_into_conv_transpose: BatchNormalization(ConvTranspose(x, W, B)) → ConvTranspose(x, W', B')."""
from __future__ import annotations

import numpy as np
import pytest

from fusion_testing import assert_declines, assert_fuses, bn_params, weights

RULE = "fuse_bn_into_conv_transpose"


def deconv_bn(group=1, with_bias=True, opset=17, t="float", dtype=np.float32, bn_attrs=""):
    text = f"""
    <ir_version: 8, opset_import: ["" : {opset}]>
    g ({t}[1,4,5,5] x) => ({t}[1,6,?,?] y) {{
      c = ConvTranspose<strides=[2,2], group={group}>(x, w{", b" if with_bias else ""})
      y = BatchNormalization{bn_attrs}(c, scale, bias, mean, var)
    }}"""
    inits = {"w": weights(4, 6 // group, 3, 3, dtype=dtype), **bn_params(6, dtype)}
    if with_bias:
        inits["b"] = weights(6, dtype=dtype)
    return text, inits


@pytest.mark.parametrize("group, with_bias", [(1, True), (1, False), (2, True)])
def test_fuses(group, with_bias):
    text, inits = deconv_bn(group, with_bias)
    assert_fuses(RULE, text, inits, {"ConvTranspose": 1})


def test_float16():
    text, inits = deconv_bn(group=2, t="float16", dtype=np.float16)
    assert_fuses(RULE, text, inits, {"ConvTranspose": 1}, dtype="float16")


def test_double_against_reference():
    text, inits = deconv_bn(t="double", dtype=np.float64)
    feeds = {"x": np.random.default_rng(4).standard_normal((1, 4, 5, 5))}
    assert_fuses(RULE, text, inits, {"ConvTranspose": 1}, feeds=feeds, dtype="float64", reference=True)


def test_declines():
    text, inits = deconv_bn(opset=15, bn_attrs="<training_mode=1>")
    assert_declines(RULE, text, inits, "training mode")
    text, inits = deconv_bn(opset=6, bn_attrs="<is_test=1>")
    assert_declines(RULE, text, inits, "the rule needs opset >= 7, the model has 6")
    text, inits = deconv_bn(with_bias=False)
    text = text.replace("x) =>", "x, float[4,6,3,3] w) =>")
    del inits["w"]
    assert_declines(RULE, text, inits, "the ConvTranspose weight ('w') is not constant")
    text, inits = deconv_bn()
    text = text.replace("=> (float[1,6,?,?] y)", "=> (float[1,6,?,?] y, float[1,6,?,?] c)")
    assert_declines(RULE, text, inits, "'c' is a graph output")
