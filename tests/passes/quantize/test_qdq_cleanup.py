"""Plan-free QDQ clean-ups: redundant requantization, Q/DQ pairs ORT cannot fuse, DQ copies float readers share."""
from __future__ import annotations

import numpy as np
import onnx

import onnxopt.passes  # noqa: F401
from onnxopt.ir import lint, serialize
from onnxopt.passes.quantize.qdq_cleanup import (
    RemoveRedundantRequantize, RemoveUnfusableQDQ, ShapeOfQuantized, ShareFloatDequantize,
)
from onnxopt.testing import assert_same_outputs, model_from_text, op_histogram

HEAD = '<ir_version: 8, opset_import: ["" : 17]>\n'
PARAMS = {"s": np.float32(0.05), "z": np.uint8(128), "s2": np.float32(0.1), "z2": np.uint8(128)}


def _checked(model) -> None:
    lint(model)
    onnx.checker.check_model(onnx.ModelProto.FromString(serialize(model)), full_check=True)


def _rewrites(pass_cls, body: str, histogram: dict[str, int], atol: float = 0.0):
    """Run the pass on the model `body`; it must change it into `histogram`, stay valid, keep the outputs (within
    `atol`) and find nothing more on a second run. Returns the first run's result."""
    model = model_from_text(HEAD + body, PARAMS)
    original = model.clone()
    result = pass_cls().call(model)
    assert result.modified and op_histogram(model) == histogram
    _checked(model)
    assert_same_outputs(original, model, rtol=0, atol=atol)
    assert not pass_cls().call(model).modified
    return result


def test_requantize_with_equal_parameters_is_removed_exactly():
    result = _rewrites(RemoveRedundantRequantize, """g (float[4, 8] x) => (float[4, 8] y) {
      q = QuantizeLinear(x, s, z)
      d = DequantizeLinear(q, s, z)
      q2 = QuantizeLinear(d, s, z)
      d2 = DequantizeLinear(q2, s, z)
      y = Sigmoid(d2)
    }""", {"QuantizeLinear": 1, "DequantizeLinear": 1, "Sigmoid": 1})
    assert result.counters["requantize_removed"] == 1


def test_requantize_with_other_parameters_stays():
    text = HEAD + """g (float[4, 8] x) => (float[4, 8] y) {
      q = QuantizeLinear(x, s, z)
      d = DequantizeLinear(q, s, z)
      q2 = QuantizeLinear(d, s2, z2)
      y = DequantizeLinear(q2, s2, z2)
    }"""
    model = model_from_text(text, PARAMS)
    assert not RemoveRedundantRequantize().call(model).modified


def test_pair_between_float_ops_is_removed():
    _rewrites(RemoveUnfusableQDQ, """g (float[4, 8] x) => (float[4, 8] y) {
      t = Tanh(x)
      q = QuantizeLinear(t, s, z)
      d = DequantizeLinear(q, s, z)
      y = Exp(d)
    }""", {"Tanh": 1, "Exp": 1}, atol=0.03)  # only the rounding went away


def test_pairs_next_to_fusable_ops_or_outputs_stay():
    text = HEAD + """g (float[4, 8] x) => (float[4, 8] y, float[4, 8] y2) {
      q = QuantizeLinear(x, s, z)
      d = DequantizeLinear(q, s, z)
      y = Sigmoid(d)
      t = Tanh(x)
      q2 = QuantizeLinear(t, s, z)
      y2 = DequantizeLinear(q2, s, z)
    }"""
    model = model_from_text(text, PARAMS)
    assert not RemoveUnfusableQDQ().call(model).modified


def test_shape_reads_the_quantized_tensor():
    _rewrites(ShapeOfQuantized, """g (float[4, 8] x) => (int64[2] y, float[4, 8] w) {
      q = QuantizeLinear(x, s, z)
      d = DequantizeLinear(q, s, z)
      y = Shape(d)
      d2 = DequantizeLinear(q, s, z)
      w = Sigmoid(d2)
    }""", {"QuantizeLinear": 1, "DequantizeLinear": 1, "Shape": 1, "Sigmoid": 1})


def test_float_readers_share_one_dequantize_exactly():
    result = _rewrites(ShareFloatDequantize, """g (float[4, 8] x) => (float[4, 8] y) {
      q = QuantizeLinear(x, s, z)
      d1 = DequantizeLinear(q, s, z)
      d2 = DequantizeLinear(q, s, z)
      t = Tanh(d1)
      y = Mul(d2, t)
    }""", {"QuantizeLinear": 1, "DequantizeLinear": 1, "Tanh": 1, "Mul": 1})
    assert result.counters["dequantize_shared"] == 1


def test_dequantize_of_an_int8_unit_keeps_its_own_copy():
    # Mul's output goes only to QuantizeLinear: ORT fuses DQ → Mul → Q into QLinearMul, which needs its own DQ
    text = HEAD + """g (float[4, 8] x) => (float[4, 8] y) {
      q = QuantizeLinear(x, s, z)
      d1 = DequantizeLinear(q, s, z)
      d2 = DequantizeLinear(q, s, z)
      d3 = DequantizeLinear(q, s, z)
      m = Mul(d1, d2)
      mq = QuantizeLinear(m, s2, z2)
      md = DequantizeLinear(mq, s2, z2)
      y = Add(md, d3)
    }"""
    model = model_from_text(text, PARAMS)
    assert not ShareFloatDequantize().call(model).modified
