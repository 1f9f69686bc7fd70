"""fuse_silu: x · Sigmoid(x) (and x · Sigmoid(αx)) → Swish (opset ≥ 24); --target ort → com.microsoft QuickGelu."""
from __future__ import annotations

import pytest

from target_fusion_testing import assert_declines, assert_fuses, scalar

RULE = "fuse_silu"
INITS = {"alpha": scalar(1.702)}


def silu(opset=24, body="s = Sigmoid(x)\n      y = Mul(x, s)", outputs="float[2,3,8] y"):
    return f"""
    <ir_version: 10, opset_import: ["" : {opset}]>
    g (float[2,3,8] x) => ({outputs}) {{
      {body}
    }}"""


SCALED = "ax = Mul(x, alpha)\n      s = Sigmoid(ax)\n      y = Mul(s, x)"  # CLIP's QuickGELU


@pytest.mark.parametrize("target", ["onnx", "ort"])
def test_swish_on_opset_24(target):
    model = assert_fuses(RULE, silu(), INITS, {"Swish": 1}, target=target)
    assert next(iter(model.graph)).attr("alpha", 1.0) == 1.0


def test_scaled_swish():
    model = assert_fuses(RULE, silu(body=SCALED), INITS, {"Swish": 1})
    assert abs(next(iter(model.graph)).attr("alpha") - 1.702) < 1e-6


@pytest.mark.parametrize("body, alpha", [("s = Sigmoid(x)\n      y = Mul(s, x)", 1.0), (SCALED, 1.702)])
def test_ort_target_on_older_opset_writes_quick_gelu(body, alpha):
    model = assert_fuses(RULE, silu(17, body), INITS, {"com.microsoft::QuickGelu": 1}, target="ort")
    assert abs(next(iter(model.graph)).attr("alpha") - alpha) < 1e-6


@pytest.mark.parametrize("text, reason, target", [
    (silu(23), "Swish is written at opset 24 only", "onnx"),
    (silu(body=SCALED).replace("Mul(x, alpha)", "Mul(x, x)"), "α is not a constant scalar", "onnx"),
    (silu(outputs="float[2,3,8] y, float[2,3,8] s"), "its output 's' is a graph output", "ort"),
    (silu(17).replace("float[", "double["), "'x' is double, the fused op needs float", "ort"),
])
def test_declines(text, reason, target):
    assert_declines(RULE, text, INITS, reason, target=target)


def test_shapes_are_inferred_only_when_a_match_lacks_them(monkeypatch):
    import onnxopt.rewrite.ruleset as engine

    calls = []
    infer = engine.infer_shapes
    monkeypatch.setattr(engine, "infer_shapes", lambda model: calls.append(1) or infer(model))
    intermediate = silu(body="x1 = Relu(x)\n      s = Sigmoid(x1)\n      y = Mul(x1, s)")
    assert_fuses(RULE, intermediate, INITS, {"Relu": 1, "Swish": 1})
    assert len(calls) == 1  # the first run inferred x1's type; the idempotence run found nothing to match
    calls.clear()
    assert_fuses(RULE, silu(), INITS, {"Swish": 1})  # x is a typed graph input
    assert calls == []
