"""qparams: scale/zero-point math against onnx.reference QuantizeLinear/DequantizeLinear, plus properties."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from onnxopt.quantization.qparams import (
    MIN_SCALE,
    QParams,
    compute_qparams,
    dequantize,
    qrange,
    quantize,
    quantize_bias,
    weight_qparams,
)

RNG = np.random.default_rng(7)
FLOAT32_TINY = np.finfo(np.float32).tiny


def reference_qdq(x: np.ndarray, qp: QParams) -> tuple[np.ndarray, np.ndarray]:
    """Run QuantizeLinear → DequantizeLinear (opset 19, the oldest onnx.reference implements) in onnx.reference."""
    zp_type = helper.np_dtype_to_tensor_dtype(qp.zero_point.dtype)
    axis = {} if qp.axis is None else {"axis": qp.axis}
    graph = helper.make_graph(
        [
            helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"], **axis),
            helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"], **axis),
        ],
        "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [
            helper.make_tensor_value_info("q", zp_type, list(x.shape)),
            helper.make_tensor_value_info("y", TensorProto.FLOAT, list(x.shape)),
        ],
        [numpy_helper.from_array(qp.scale, "s"), numpy_helper.from_array(qp.zero_point, "zp")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    q, y = ReferenceEvaluator(model).run(None, {"x": x})
    return q, y


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("reduce_range", [False, True])
def test_per_tensor_matches_onnx_reference(dtype: str, symmetric: bool, reduce_range: bool) -> None:
    x = RNG.uniform(-2.5, 6.0, (3, 50)).astype(np.float32)
    qp = compute_qparams(float(x.min()), float(x.max()), dtype, symmetric=symmetric, reduce_range=reduce_range)
    q_ref, y_ref = reference_qdq(x, qp)
    q = quantize(x, qp)
    np.testing.assert_array_equal(q, q_ref)
    np.testing.assert_array_equal(dequantize(q, qp), y_ref)
    qmin, qmax = qrange(dtype, symmetric, reduce_range)
    assert q.min() >= qmin and q.max() <= qmax and q.dtype == np.dtype(dtype)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_per_channel_weights_match_onnx_reference(axis: int) -> None:
    w = RNG.normal(0, 1, (4, 3, 5)).astype(np.float32) * np.array([0.01, 1.0, 30.0, 0.5], dtype=np.float32)[:, None, None]
    qp = weight_qparams(w, axis=axis)
    assert qp.scale.shape == (w.shape[axis],) and np.all(qp.zero_point == 0) and qp.zero_point.dtype == np.int8
    q_ref, y_ref = reference_qdq(w, QParams(qp.scale, qp.zero_point, axis % w.ndim))
    np.testing.assert_array_equal(quantize(w, qp), q_ref)
    np.testing.assert_array_equal(dequantize(q_ref, qp), y_ref)


def test_symmetric_int8_weights_use_127_levels_each_side() -> None:
    w = np.array([[-2.0, 1.0], [0.5, 0.25]], dtype=np.float32)
    qp = weight_qparams(w, axis=0)
    np.testing.assert_allclose(qp.scale, [2.0 / 127, 0.5 / 127], rtol=1e-7)
    q = quantize(w, qp)
    assert q[0, 0] == -127 and q[1, 0] == 127
    per_tensor = weight_qparams(w)
    assert per_tensor.axis is None and per_tensor.scale.ndim == 0 and per_tensor.scale == np.float32(2.0 / 127)


def test_uint8_asymmetric_known_values() -> None:
    qp = compute_qparams(-1.0, 3.0)
    assert qp.scale == np.float32(4.0 / 255) and qp.zero_point == 64 and qp.zero_point.dtype == np.uint8
    qp = compute_qparams(-1.0, 3.0, "uint8", symmetric=True)
    assert qp.scale == np.float32(3.0 / 127) and qp.zero_point == 128


def test_qranges() -> None:
    assert qrange("uint8") == (0, 255) and qrange("uint8", reduce_range=True) == (0, 127)
    assert qrange("int8") == (-128, 127) and qrange("int8", reduce_range=True) == (-64, 63)
    assert qrange("int8", symmetric=True) == (-127, 127) and qrange("int8", True, True) == (-63, 63)
    assert qrange("uint8", symmetric=True) == (1, 255)
    with pytest.raises(ValueError):
        qrange("int4")  # type: ignore[arg-type]


@pytest.mark.parametrize("rmin, rmax", [(2.0, 5.0), (-5.0, -2.0), (0.0, 0.0), (3.0, 3.0)])
def test_range_always_includes_zero_exactly(rmin: float, rmax: float) -> None:
    for dtype in ("uint8", "int8"):
        qp = compute_qparams(rmin, rmax, dtype)
        assert dequantize(quantize(np.zeros(1, np.float32), qp), qp)[0] == 0.0
        assert dequantize(quantize(np.array([rmin, rmax], np.float32), qp), qp) == pytest.approx([rmin, rmax], abs=float(qp.scale))


def test_zero_and_tiny_ranges_never_give_zero_or_denormal_scales() -> None:
    assert compute_qparams(0.0, 0.0).scale == 1.0
    tiny = compute_qparams(np.array([0.0, -1e-42, 0.0]), np.array([0.0, 1e-40, 1e-30]), "int8", symmetric=True, axis=0)
    assert np.all(tiny.scale >= FLOAT32_TINY) and tiny.scale[0] == 1.0
    w = np.zeros((2, 3), np.float32)
    w[1] = 1e-45
    qp = weight_qparams(w, axis=0)
    assert np.all(qp.scale >= MIN_SCALE)
    _, bias_qp = quantize_bias(np.zeros(2, np.float32), np.float32(MIN_SCALE), qp.scale)
    assert np.all(bias_qp.scale >= FLOAT32_TINY)


def test_non_finite_range_is_rejected() -> None:
    with pytest.raises(ValueError, match="finite"):
        compute_qparams(-np.inf, 1.0)


def test_bias_is_int32_with_product_scale() -> None:
    bias = np.array([0.5, -1.25, 3.0], dtype=np.float32)
    w_scale = np.array([0.01, 0.02, 0.04], dtype=np.float32)
    q, qp = quantize_bias(bias, np.float32(0.1), w_scale)
    assert q.dtype == np.int32 and qp.zero_point.dtype == np.int32 and qp.axis == 0
    np.testing.assert_array_equal(qp.scale, np.float32(0.1) * w_scale)
    np.testing.assert_array_equal(q, np.rint(bias / (np.float32(0.1) * w_scale)).astype(np.int32))
    np.testing.assert_allclose(dequantize(q, qp), bias, atol=float(qp.scale.max()) / 2)
    q_huge, _ = quantize_bias(np.array([1e30], np.float32), 1e-3, 1e-3)
    assert q_huge[0] == np.iinfo(np.int32).max


@settings(max_examples=150, deadline=None)
@given(
    lo=st.floats(-1e4, 1e4, allow_nan=False),
    span=st.floats(1e-3, 1e4, allow_nan=False),
    dtype=st.sampled_from(["uint8", "int8"]),
    symmetric=st.booleans(),
    reduce_range=st.booleans(),
    fractions=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=32),
)
def test_round_trip_error_is_at_most_half_a_step_within_range(lo, span, dtype, symmetric, reduce_range, fractions) -> None:
    hi = lo + span
    qp = compute_qparams(lo, hi, dtype, symmetric=symmetric, reduce_range=reduce_range)
    rmin, rmax = min(lo, 0.0), max(hi, 0.0)
    x = np.array([rmin + f * (rmax - rmin) for f in fractions], dtype=np.float32)
    x = np.clip(x, np.float32(rmin), np.float32(rmax))
    error = np.abs(dequantize(quantize(x, qp), qp).astype(np.float64) - x)
    # float32 rounding of x, x / scale and the scale itself costs a few ulps of the magnitude.
    slack = 4 * np.finfo(np.float32).eps * max(abs(rmin), abs(rmax))
    assert np.all(error <= float(qp.scale) / 2 + slack)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 6),
    cols=st.integers(1, 6),
    magnitude=st.floats(1e-6, 1e3),
)
def test_per_channel_round_trip_error_is_at_most_half_a_step(rows: int, cols: int, magnitude: float) -> None:
    w = (RNG.standard_normal((rows, cols)) * magnitude).astype(np.float32)
    qp = weight_qparams(w, axis=0)
    error = np.abs(dequantize(quantize(w, qp), qp) - w)
    assert np.all(error <= qp.scale[:, None] / 2 * (1 + 1e-5) + 1e-30)
