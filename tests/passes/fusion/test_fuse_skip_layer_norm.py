"""fuse_skip_layer_norm: Add + LayerNormalization (or RMS norm) → com.microsoft Skip(Simplified)LayerNormalization."""
from __future__ import annotations

import numpy as np
import pytest

from target_fusion_testing import assert_declines, assert_fuses

RULE = "fuse_skip_layer_norm"
RNG = np.random.default_rng(5)
INITS = {"gamma": RNG.uniform(0.5, 2, 16).astype(np.float32), "beta": RNG.uniform(-1, 1, 16).astype(np.float32)}


def skip_norm(norm="y = LayerNormalization<epsilon=1e-5>(s, gamma, beta)", shape="2,3,16", opset=17,
              outputs="{t}[{shape}] y", t="float"):
    """BERT's post-norm residual: the sum feeds only the normalization."""
    outputs = outputs.format(t=t, shape=shape)
    return f"""
    <ir_version: 10, opset_import: ["" : {opset}]>
    g ({t}[{shape}] x, {t}[{shape}] skip) => ({outputs}) {{
      s = Add(x, skip)
      {norm}
    }}"""


@pytest.mark.parametrize("shape", ["2,3,16", "6,16", "B,S,16"])
def test_fuses(shape):
    feeds = {"x": RNG.standard_normal((2, 3, 16) if shape != "6,16" else (6, 16)).astype(np.float32)}
    feeds["skip"] = RNG.standard_normal(feeds["x"].shape).astype(np.float32)
    model = assert_fuses(RULE, skip_norm(shape=shape), INITS, {"com.microsoft::SkipLayerNormalization": 1},
                         target="ort", feeds=feeds)
    assert abs(next(iter(model.graph)).attr("epsilon") - 1e-5) < 1e-12


@pytest.mark.parametrize("residual", ["s = Add(skip, xb)", "s = Add(xb, skip)"])
def test_projection_bias_is_taken_in(residual):
    text = skip_norm().replace("s = Add(x, skip)", f"xb = Add(b, x)\n      {residual}")
    model = assert_fuses(RULE, text, {**INITS, "b": INITS["beta"][::-1].copy()},
                         {"com.microsoft::SkipLayerNormalization": 1}, target="ort")
    assert [v.name for v in next(iter(model.graph)).inputs] == ["x", "skip", "gamma", "beta", "b"]


def test_without_bias():
    assert_fuses(RULE, skip_norm("y = LayerNormalization(s, gamma)"), INITS,
                 {"com.microsoft::SkipLayerNormalization": 1}, target="ort")


@pytest.mark.parametrize("norm, opset", [("y = RMSNormalization<epsilon=1e-6>(s, gamma)", 23),
                                         ("y = SimplifiedLayerNormalization<epsilon=1e-6>(s, gamma)", 17)])
def test_rms_norm(norm, opset):
    assert_fuses(RULE, skip_norm(norm, opset=opset), INITS, {"com.microsoft::SkipSimplifiedLayerNormalization": 1},
                 target="ort")


def test_after_layer_norm_fusion():
    text = """
    <ir_version: 10, opset_import: ["" : 17]>
    g (float[2,3,16] x, float[2,3,16] skip) => (float[2,3,16] y) {
      h = Add(x, skip)
      mean = ReduceMean<axes=[-1]>(h)
      d = Sub(h, mean)
      sq = Mul(d, d)
      var = ReduceMean<axes=[-1]>(sq)
      ve = Add(var, eps)
      std = Sqrt(ve)
      n = Div(d, std)
      m = Mul(n, gamma)
      y = Add(m, beta)
    }"""
    inits = {**INITS, "eps": np.array(1e-12, np.float32)}
    assert_fuses(("fuse_layer_norm", RULE), text, inits, {"com.microsoft::SkipLayerNormalization": 1}, target="ort")


@pytest.mark.parametrize("text, reason, target", [
    (skip_norm(), "needs --target ort", "onnx"),
    (skip_norm(shape="1,2,3,16"), "is not known to have rank 2 or 3", "ort"),
    (skip_norm(t="double"), "'x' is double, the fused op needs float", "ort"),
    (skip_norm().replace("float[2,3,16] skip", "float[3,16] skip"), "the Add operands have different", "ort"),
    (skip_norm("y = LayerNormalization<axis=1>(s, gamma, beta)"), "is not over the last axis", "ort"),
    (skip_norm(outputs="float[2,3,16] y, float[2,3,16] s"), "its output 's' is a graph output", "ort"),
])
def test_declines(text, reason, target):
    inits = INITS if "double" not in text else {k: v.astype(np.float64) for k, v in INITS.items()}
    assert_declines(RULE, text, inits, reason, target=target)
