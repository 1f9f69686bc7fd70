"""fuse_pad_into_conv and fuse_pad_into_pool: a constant Pad becomes the consumer's own `pads`."""
from __future__ import annotations

import numpy as np
import pytest

from fusion_testing import assert_declines, assert_fuses, weights

PADS = np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)


def pad_conv(pad="Pad(x, pads)", conv_attrs="", opset=17, extra=None):
    text = f"""
    <ir_version: 8, opset_import: ["" : {opset}]>
    g (float[1,2,5,5] x) => (float[1,3,?,?] y) {{
      p = {pad}
      y = Conv{conv_attrs}(p, w, b)
    }}"""
    return text, {"pads": PADS, "w": weights(3, 2, 3, 3), "b": weights(3), **(extra or {})}


@pytest.mark.parametrize("pad, conv_attrs, opset, extra", [
    ("Pad(x, pads)", "", 17, None),
    ("Pad(x, pads, zero)", "<pads=[1,0,0,1]>", 17, {"zero": np.array(0.0, np.float32)}),
    ("Pad<mode=\"constant\">(x, pads)", "<auto_pad=\"VALID\", strides=[2,2]>", 13, None),
    ("Pad<pads=[0,0,1,1,0,0,1,1]>(x)", "", 10, None),
    ("Pad(x, hw_pads, , axes)", "<dilations=[2,1]>", 18,
     {"hw_pads": np.array([1, 2, 0, 1], np.int64), "axes": np.array([-2, 3], np.int64)}),
])
def test_pad_into_conv(pad, conv_attrs, opset, extra):
    text, inits = pad_conv(pad, conv_attrs, opset, extra)
    model = assert_fuses("fuse_pad_into_conv", text, inits, {"Conv": 1})
    assert next(iter(model.graph)).attr("auto_pad", "NOTSET") == "NOTSET"


@pytest.mark.parametrize("pad, conv_attrs, extra, reason", [
    ("Pad<mode=\"reflect\">(x, pads)", "", None, "Pad mode is 'reflect'"),
    ("Pad(x, pads, one)", "", {"one": np.array(1.0, np.float32)}, "the Pad value is 1.0, a Conv pads with 0"),
    ("Pad(x, chan)", "", {"chan": np.array([0, 1, 1, 1, 0, 0, 1, 1], np.int64)}, "pads the batch or channel axis"),
    ("Pad(x, crop)", "", {"crop": np.array([0, 0, -1, 1, 0, 0, 1, 1], np.int64)}, "crops"),
    ("Pad(x, pads)", "<auto_pad=\"SAME_UPPER\">", None, "Conv has auto_pad=SAME_UPPER"),
])
def test_pad_into_conv_declines(pad, conv_attrs, extra, reason):
    text, inits = pad_conv(pad, conv_attrs, extra=extra)
    assert_declines("fuse_pad_into_conv", text, inits, reason)


def test_pad_into_conv_non_constant_pads_and_shared_pad():
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1,2,5,5] x, int64[8] pads) => (float[1,3,?,?] y) {
      p = Pad(x, pads)
      y = Conv(p, w)
    }"""
    assert_declines("fuse_pad_into_conv", text, {"w": weights(3, 2, 3, 3)}, "the Pad amounts are not constant")
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1,2,5,5] x) => (float[1,3,?,?] y, float[1,2,?,?] z) {
      p = Pad(x, pads)
      y = Conv(p, w)
      z = Relu(p)
    }"""
    assert_declines("fuse_pad_into_conv", text, {"w": weights(3, 2, 3, 3), "pads": PADS}, "'p' is also read by Relu")


def test_pad_into_conv_unsupported_opset():
    text, inits = pad_conv("Pad<pads=[0,0,1,1,0,0,1,1]>(x)", opset=6)
    assert_declines("fuse_pad_into_conv", text, inits, "the rule needs opset >= 7, the model has 6")


def pad_pool(pool, value, pool_attrs="kernel_shape=[3,3]", opset=17):
    text = f"""
    <ir_version: 8, opset_import: ["" : {opset}]>
    g (float[1,2,6,6] x) => (float[1,2,?,?] y) {{
      p = Pad(x, pads, v)
      y = {pool}<{pool_attrs}>(p)
    }}"""
    return text, {"pads": PADS, "v": np.array(value, np.float32)}


@pytest.mark.parametrize("pool, value, attrs", [
    ("AveragePool", 0.0, "kernel_shape=[3,3]"),
    ("AveragePool", 0.0, "kernel_shape=[3,4], pads=[1,0,0,0], count_include_pad=1, strides=[2,1]"),
    ("MaxPool", -np.inf, "kernel_shape=[3,3], strides=[2,2]"),
    ("MaxPool", -np.inf, "kernel_shape=[3,3], ceil_mode=1, strides=[2,2]"),
    ("MaxPool", -np.inf, "kernel_shape=[4,4], auto_pad=\"VALID\""),
])
def test_pad_into_pool(pool, value, attrs):
    text, inits = pad_pool(pool, value, attrs)
    model = assert_fuses("fuse_pad_into_pool", text, inits, {pool: 1})
    node = next(iter(model.graph))
    if pool == "AveragePool":
        assert node.attr("count_include_pad") == 1


@pytest.mark.parametrize("pool, value, attrs, reason", [
    ("MaxPool", 0.0, "kernel_shape=[3,3]", "MaxPool's own padding acts as −inf"),
    ("AveragePool", -np.inf, "kernel_shape=[3,3]", "AveragePool's padding counts as 0"),
    ("AveragePool", 0.0, "kernel_shape=[3,3], pads=[1,1,1,1]", "count_include_pad=0"),
    ("AveragePool", 0.0, "kernel_shape=[3,3], ceil_mode=1", "ceil_mode=1"),
    ("MaxPool", -np.inf, "kernel_shape=[2,2]", "not all smaller than the kernel"),
    ("MaxPool", -np.inf, "kernel_shape=[3,3], auto_pad=\"SAME_UPPER\"", "MaxPool has auto_pad=SAME_UPPER"),
])
def test_pad_into_pool_declines(pool, value, attrs, reason):
    text, inits = pad_pool(pool, value, attrs)
    assert_declines("fuse_pad_into_pool", text, inits, reason)


def test_pad_into_pool_indices_used_and_opset():
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1,2,6,6] x) => (float[1,2,?,?] y, int64[1,2,?,?] i) {
      p = Pad(x, pads, v)
      y, i = MaxPool<kernel_shape=[3,3]>(p)
    }"""
    inits = {"pads": PADS, "v": np.array(-np.inf, np.float32)}
    assert_declines("fuse_pad_into_pool", text, inits, "output 1 ('i') of MaxPool is used")
    text, inits = pad_pool("MaxPool", -np.inf, opset=6)
    assert_declines("fuse_pad_into_pool", text.replace("Pad(x, pads, v)", "Pad<pads=[0,0,1,1,0,0,1,1]>(x)"), inits,
                    "the rule needs opset >= 7, the model has 6")
