"""QDQ canonicalizations run before quantizing."""
from __future__ import annotations

import onnx

import onnxopt.passes  # noqa: F401
from onnxopt.ir import lint, serialize
from onnxopt.passes.quantize.prepare import RewriteSumAsAdd
from onnxopt.testing import assert_same_outputs, model_from_text, op_histogram

TEXT = """
<ir_version: 8, opset_import: ["" : 11]>
g (float[2, 3] a, float[2, 3] b, float[3] c) => (float[2, 3] y, float[2, 3] z) {
  y = Sum(a, b, c)
  z = Sum(a)
}
"""


def test_sum_becomes_a_chain_of_adds_exactly():
    model = model_from_text(TEXT)
    original = model.clone()
    result = RewriteSumAsAdd().call(model)
    assert result.modified and result.counters["sums_rewritten"] == 1
    assert op_histogram(model) == {"Add": 2, "Sum": 1}  # a one-input Sum is left alone
    assert [v.name for v in model.graph.outputs] == ["y", "z"]
    lint(model)
    onnx.checker.check_model(onnx.ModelProto.FromString(serialize(model)), full_check=True)
    assert_same_outputs(original, model, rtol=0, atol=0)
    assert not RewriteSumAsAdd().call(model).modified


DIV = """
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 3] a, float[2, 3] b) => (float[2, 3] y, float[2, 3] z, float[2, 3] w) {
  y = Div(a, six)
  z = Div(a, b)
  w = Div(a, zero)
}
"""


def test_division_by_a_constant_becomes_a_multiplication():
    import numpy as np

    from onnxopt.passes.quantize.prepare import RewriteDivAsMul

    model = model_from_text(DIV, {"six": np.array([6.0], np.float32), "zero": np.array([0.0, 1.0, 2.0], np.float32)})
    original = model.clone()
    result = RewriteDivAsMul().call(model)
    assert result.modified and result.counters["divisions_rewritten"] == 1
    assert op_histogram(model) == {"Mul": 1, "Div": 2}  # a tensor divisor and a divisor with a zero stay
    assert "six" not in model.graph.initializers
    lint(model)
    onnx.checker.check_model(onnx.ModelProto.FromString(serialize(model)), full_check=True)
    feeds = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.full((2, 3), 3, np.float32)}
    assert_same_outputs(original, model, feeds, rtol=1e-6, atol=0)
    assert not RewriteDivAsMul().call(model).modified
