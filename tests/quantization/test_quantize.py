"""End-to-end static and dynamic quantization of a small CNN and a transformer block, options and searches."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

import onnxopt.pipeline
from onnxopt.errors import OnnxoptError
from onnxopt.ir import from_proto, lint, serialize
from onnxopt.quantization import QuantConfig, quantize
from onnxopt.quantization.quantize import name_nodes, observer_factory
from onnxopt.testing import model_from_text, op_histogram

from qmodels import cnn, ort_ops, samples, stray_float_groups, transformer_block, weights

QUANTIZED_OPS = {"Conv", "MatMul", "Gemm", "Add", "Mul", "Softmax", "MaxPool", "Transpose", "Reshape", "GlobalAveragePool"}


def _valid(model) -> None:
    lint(model)
    onnx.checker.check_model(onnx.ModelProto.FromString(serialize(model)), full_check=True)


def test_static_cnn_end_to_end():
    model = cnn()
    quantized, report = quantize(model, samples(model, 48), holdout=8, latency_check=False)
    _valid(quantized)
    assert report.quantized_ops == {"Add": 1, "Conv": 4, "Flatten": 1, "Gemm": 1, "GlobalAveragePool": 1, "MaxPool": 1}
    assert report.weights == 5 and len(report.absorbed) == 3
    assert report.calibration_samples == 40 and report.holdout_samples == 8 and not report.holdout_overlaps_calibration
    ops = ort_ops(quantized)
    assert ops["QLinearConv"] == 4 and ops["QGemm"] == 1 and ops["QLinearAdd"] == 1 and ops["QLinearGlobalAveragePool"] == 1
    assert ops["QuantizeLinear"] == 1 and ops["DequantizeLinear"] == 1  # only at the model's input and output
    assert not stray_float_groups(quantized, QUANTIZED_OPS)
    (output,) = report.outputs
    assert output.sqnr_db >= 30 and output.cosine > 0.999 and output.top1 >= 0.85
    weights_dq = [n for n in quantized.graph if n.op_type == "DequantizeLinear" and n.inputs[0].dtype == onnx.TensorProto.INT8]
    assert weights_dq and all(n.attr("axis") is not None for n in weights_dq)  # per-channel
    biases = [n for n in quantized.graph if n.op_type == "DequantizeLinear" and n.inputs[0].dtype == onnx.TensorProto.INT32]
    assert len(biases) == 5
    assert model.graph.nodes[0].op_type == "Conv" and "QuantizeLinear" not in op_histogram(model)  # input unchanged


@pytest.mark.parametrize("method", ["entropy", "percentile", "mse"])
def test_static_cnn_histogram_methods(method):
    model = cnn()
    quantized, report = quantize(model, samples(model, 24), method=method, holdout=4, latency_check=False)
    assert report.method == method and report.sqnr_db >= 20
    assert ort_ops(quantized)["QLinearConv"] == 4


def square_model_and_samples(count):
    """y = x² (one-sided output) and `count` standard-normal samples of x."""
    model = model_from_text("""
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[1, 64] x) => (float[1, 64] y) { y = Mul(x, x) }
    """)
    rng = np.random.default_rng(0)
    return model, [{"x": rng.normal(0, 1, (1, 64)).astype(np.float32)} for _ in range(count)]


def test_entropy_gives_one_sided_activations_the_whole_uint8_grid():
    # y = x² has no negative values: uint8 puts all 255 steps on [0, t], and the KL search must weigh that
    # grid's rounding noise, not that of TensorRT's 128 levels (which clipped y at 10.3 and gave 22.0 dB).
    model, data = square_model_and_samples(400)
    quantized, report = quantize(model, data, method="entropy", samples=200, holdout=200, latency_check=False)
    assert ort_ops(quantized)["QLinearMul"] == 1
    ranges = {t.name: (t.rmin, t.rmax) for t in report.tensors}
    assert ranges["y"][0] >= 0 and 11.0 < ranges["y"][1] < 15.6  # 15.6: the largest square seen
    assert report.sqnr_db > 23.5  # measured 25.4 dB
    # x is symmetric about zero (half the steps on each side): TensorRT's threshold, 3.49, clips a tail whose
    # squared error is 1.3 times the MSE-optimal range's, within the guard's 2, so it stays (max |x| is 3.9)
    assert ranges["x"] == (-3.48828125, 3.48828125)


def test_entropy_follows_the_activation_grid():
    # symmetric int8 keeps only half the steps for one-sided y = x², so the KL search must clip y harder than
    # for uint8 (the grid used to stop at the observer and every method assumed uint8)
    model, data = square_model_and_samples(300)
    top = {}
    for activations in ("uint8", "int8"):
        quantized, report = quantize(model, data, method="entropy", samples=200, holdout=100, latency_check=False,
                                     activation_type=activations, symmetric_activations=activations == "int8")
        assert op_histogram(quantized)["QuantizeLinear"] >= 2
        top[activations] = {t.name: t.rmax for t in report.tensors}["y"]
    assert top["int8"] < top["uint8"]


def test_observer_factory_passes_the_grid():
    config = QuantConfig(method="entropy", activation_type="int8", symmetric_activations=True, reduce_range=True)
    observer = observer_factory(config)()
    assert observer.dtype == "int8" and observer.histogram.symmetric and observer.reduce_range
    assert observer_factory(QuantConfig(method="percentile", symmetric_activations=True))().histogram.symmetric
    assert observer_factory(QuantConfig(method="minmax"))().method == "minmax"


def test_static_transformer_block():
    model = transformer_block()
    quantized, report = quantize(model, samples(model, 40), holdout=8, latency_check=False)
    _valid(quantized)
    ops = ort_ops(quantized)
    assert ops["QLinearMatMul"] == 8 and ops["QLinearSoftmax"] == 1 and ops["QLinearAdd"] >= 6
    assert ops["MatMul"] == 0 and ops["Softmax"] == 0
    assert not stray_float_groups(quantized, QUANTIZED_OPS)
    assert report.sqnr_db >= 25  # measured 31.7 dB


def test_dynamic_transformer_block_fuses_into_dynamic_quantize_matmul():
    model = transformer_block()
    quantized, report = quantize(model, samples(model, 8), mode="dynamic", holdout=8, latency_check=False)
    _valid(quantized)
    assert report.quantized_ops == {"MatMul": 6} and report.calibration_samples == 0
    assert op_histogram(quantized)["DynamicQuantizeLinear"] == 6
    ops = ort_ops(quantized)
    assert ops["DynamicQuantizeMatMul"] + ops["MatMulIntegerToFloat"] == 6, ops
    assert ops["MatMulInteger"] == 0 and ops["Cast"] == 0
    assert report.sqnr_db >= 30  # measured 39 dB


def test_dynamic_without_data_skips_accuracy_and_keeps_conv_float():
    model = cnn()
    quantized, report = quantize(model, mode="dynamic", latency_check=False)
    assert report.quantized_ops == {"Gemm": 1} and report.outputs == []
    assert sum("ConvInteger" in r for r in report.kept_float.values()) == 4
    assert ort_ops(quantized)["DynamicQuantizeMatMul"] == 1


def test_dynamic_conv_when_included():
    model = cnn()
    data = samples(model, 4)
    quantized, report = quantize(model, data, mode="dynamic", include_ops=["Conv", "Gemm"], holdout=4, latency_check=False)
    assert report.quantized_ops == {"Conv": 4, "Gemm": 1}
    assert op_histogram(quantized)["ConvInteger"] == 4 and report.sqnr_db >= 30


def test_dynamic_enters_subgraphs():
    then = ('then_g () => (float[1, 8] t) { t = MatMul(x, W) }')
    text = ('<ir_version: 8, opset_import: ["" : 17]>\n'
            f"g (float[1, 16] x, bool c) => (float[1, 8] y) {{ y = If(c) <then_branch = {then}, "
            "else_branch = else_g () => (float[1, 8] e) { e = MatMul(x, W2) }> }")
    model = model_from_text(text, {"W": weights(16, 8), "W2": weights(16, 8)})
    quantized, report = quantize(model, mode="dynamic", latency_check=False)
    assert report.quantized_ops == {"MatMul": 2}
    assert op_histogram(quantized)["MatMulInteger"] == 2
    _valid(quantized)
    feeds = {"x": np.ones((1, 16), np.float32), "c": np.array(True)}
    from qmodels import run

    want, got = run(model, feeds)[0], run(quantized, feeds)[0]
    assert np.allclose(want, got, atol=0.05 * np.abs(want).max())


def test_static_reports_subgraph_nodes_it_cannot_observe():
    text = ('<ir_version: 8, opset_import: ["" : 17]>\n'
            "g (float[1, 16] x, bool c) => (float[1, 8] y) { y = If(c) <then_branch = then_g () => (float[1, 8] t) "
            "{ t = MatMul(x, W) }, else_branch = else_g () => (float[1, 8] e) { e = MatMul(x, W) }> }")
    model = model_from_text(text, {"W": weights(16, 8)})
    data = [{"x": s["x"], "c": np.array(True)} for s in samples(model, 4)]
    _, report = quantize(model, data, holdout=0, latency_check=False)
    assert sum("subgraph" in r for r in report.kept_float.values()) == 2


def test_exclude_nodes_exclude_ops_include_ops():
    model = cnn()
    name_nodes(model)  # the test model's nodes are unnamed; the quantizer names them the same way
    data = samples(model, 12)
    conv = next(n.name for n in model.graph if n.op_type == "Conv")
    quantized, report = quantize(model, data, exclude_nodes=[conv], holdout=4, latency_check=False)
    assert report.kept_float[conv] == "excluded by --exclude-nodes" and report.quantized_ops["Conv"] == 3
    assert ort_ops(quantized)["QLinearConv"] == 3
    _, report = quantize(model, data, exclude_ops=["Add", "Gemm"], holdout=4, latency_check=False)
    assert "Add" not in report.quantized_ops and "Gemm" not in report.quantized_ops
    quantized, report = quantize(model, data, include_ops=["Conv"], holdout=4, latency_check=False)
    assert set(report.quantized_ops) <= {"Conv", "MaxPool", "Flatten"} and report.quantized_ops["Conv"] == 4
    ops = ort_ops(quantized)
    assert ops["QLinearConv"] == 4 and ops["QGemm"] == 0 and ops["QLinearAdd"] == 0


def test_exclude_nodes_names_checked_against_the_model():
    model = cnn()
    name_nodes(model)
    with pytest.raises(OnnxoptError, match="no node named 'cnv'"):
        quantize(model, samples(model, 4), exclude_nodes=["cnv"], holdout=0, latency_check=False)


def test_excluding_a_node_the_preparation_fuses_away_is_reported():
    f = onnx.TensorProto.FLOAT
    rng = np.random.default_rng(0)
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
         onnx.helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"], name="bn")],
        "g", [onnx.helper.make_tensor_value_info("x", f, [1, 3, 8, 8])],
        [onnx.helper.make_tensor_value_info("y", f, [1, 4, 6, 6])],
        [onnx.numpy_helper.from_array(a.astype(np.float32), n) for n, a in (
            ("w", rng.standard_normal((4, 3, 3, 3))), ("s", rng.uniform(0.5, 1.5, 4)), ("b", rng.standard_normal(4)),
            ("m", rng.standard_normal(4)), ("v", rng.uniform(0.5, 1.5, 4)))],
    )
    model = from_proto(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]))
    _, report = quantize(model, samples(model, 4), exclude_nodes=["bn"], holdout=0, latency_check=False)
    assert any("excluded node 'bn' was fused" in w for w in report.warnings)
    assert report.quantized_ops["Conv"] == 1  # BN folded into the Conv, which was not excluded by name


def test_int8_activations_and_per_tensor_weights():
    model = cnn()
    quantized, report = quantize(model, samples(model, 20), activation_type="int8", per_channel=False, holdout=4,
                                 latency_check=False)
    assert all(t.dtype == "int8" for t in report.tensors)
    weights_dq = [n for n in quantized.graph if n.op_type == "DequantizeLinear" and n.inputs[0].dtype == onnx.TensorProto.INT8
                  and n.inputs[0].is_initializer()]
    assert weights_dq and all(n.attr("axis") is None for n in weights_dq)
    assert report.sqnr_db >= 25


def test_old_opset_is_upgraded_for_per_channel_weights():
    model = cnn(opset=11)
    quantized, report = quantize(model, samples(model, 12), holdout=4, latency_check=False)
    assert quantized.opset == 13 and any("opset upgraded from 11 to 13" in n for n in report.notes)
    assert ort_ops(quantized)["QLinearConv"] == 4


def test_per_tensor_fallback_when_the_opset_cannot_be_converted(monkeypatch):
    def refuse(model, opset):
        raise OnnxoptError("cannot convert the model to opset 13: no adapter")

    monkeypatch.setattr(onnxopt.pipeline, "convert_opset", refuse)
    model = cnn(opset=11)
    quantized, report = quantize(model, samples(model, 12), holdout=4, latency_check=False)
    assert quantized.opset == 11 and any(n.startswith("per-tensor weights: opset 11") for n in report.notes)
    assert all(n.attr("axis") is None for n in quantized.graph if n.op_type == "DequantizeLinear")
    assert ort_ops(quantized)["QLinearConv"] == 4


SENSITIVE = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[1, 32] x) => (float[1, 16] y) {
  h = Gemm<transB=1>(x, W1, B1)
  z = Gemm<transB=1>(h, W2, B2)
  w = Sub(z, offset)
  y = Gemm<transB=1>(w, W3, B3)
}
"""


def sensitive_model():
    """Three Gemms; the middle one's output carries a +400 channel that a float Sub removes again, so
    quantizing that output (and only it) wipes out the small channels."""
    b2 = np.zeros(32, np.float32)
    b2[0] = 400.0
    offset = b2.copy()
    return model_from_text(SENSITIVE, {
        "W1": weights(32, 32, scale=0.2, seed=1), "B1": np.zeros(32, np.float32), "W2": weights(32, 32, scale=0.2, seed=2),
        "B2": b2, "offset": offset, "W3": weights(16, 32, scale=0.2, seed=3), "B3": np.zeros(16, np.float32),
    })


def test_target_sqnr_keeps_the_sensitive_node_float():
    model = sensitive_model()
    data = samples(model, 40)
    plain = quantize(model, data, holdout=8, latency_check=False).report
    assert plain.sqnr_db < 20
    quantized, report = quantize(model, data, holdout=8, target_sqnr=30.0, latency_check=False)
    name_nodes(model)
    middle = [n.name for n in model.graph if n.op_type == "Gemm"][1]
    assert report.sqnr_db >= 30 and report.target_sqnr == 30.0
    assert report.float_by_search("accuracy") == [middle]
    assert "accuracy search" in report.kept_float[middle] and report.quantized_ops == {"Gemm": 2}
    assert "reached" in report.to_text()


def test_latency_search_never_returns_a_model_slower_than_float():
    model = cnn()
    quantized, report = quantize(model, samples(model, 12), holdout=4, optimize_for="latency", latency_seconds=0.3)
    (check,) = report.latency
    # tiny convs: int8 rarely pays here, and whatever is kept must not lose to fp32 by more than timing noise
    assert check.ratio <= 1.25
    if report.latency_steps:
        assert all("latency search" in report.kept_float[n] for s in report.latency_steps for n in s.nodes)


def test_latency_check_and_report_files(tmp_path):
    model = cnn()
    quantized, report = quantize(model, samples(model, 12), holdout=4, latency_seconds=0.3)
    (check,) = report.latency
    assert check.fp32_ms > 0 and check.int8_ms > 0 and check.threads == 1
    assert (check.ratio > 1.0) == any("slower than fp32" in w for w in report.warnings)
    report.save(tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["mode"] == "static" and data["tensors"] and data["latency"][0]["ratio"] == pytest.approx(check.ratio)
    report.save(tmp_path / "r.txt")
    assert "SQNR" in (tmp_path / "r.txt").read_text()


def test_config_object_and_options_combine():
    model = cnn()
    config = QuantConfig(method="percentile", holdout=2, latency_check=False)
    _, report = quantize(model, samples(model, 6), config=config, samples=3)
    assert report.method == "percentile" and report.calibration_samples == 3 and report.holdout_samples == 2


HARD_SWISH_CNN = """
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 3, 8, 8] x) => (float[1, 4, 8, 8] y) {
  c = Conv<pads=[1, 1, 1, 1]>(x, W1, B1)
  a = Add(c, three)
  r = Clip(a, zero, six)
  m = Mul(c, r)
  h = Div(m, six)
  y = Conv<pads=[1, 1, 1, 1]>(h, W2, B2)
}
"""


def test_prepare_keeps_hard_swish_decomposed_so_ort_runs_it_in_int8():
    inits = {"W1": weights(4, 3, 3, 3, seed=1), "B1": np.zeros(4, np.float32), "W2": weights(4, 4, 3, 3, seed=2),
             "B2": np.zeros(4, np.float32), "three": np.array(3.0, np.float32), "zero": np.array(0.0, np.float32),
             "six": np.array(6.0, np.float32)}
    model = model_from_text(HARD_SWISH_CNN, inits)
    assert "HardSigmoid" in op_histogram(onnxopt.pipeline.optimize(model).model)  # the float pipeline regroups it
    quantized, report = quantize(model, samples(model, 16), holdout=4, latency_check=False)
    assert "HardSigmoid" not in op_histogram(quantized)
    assert {"QLinearAdd", "QLinearMul"} <= set(ort_ops(quantized))  # Clip absorbed into the Add's range
    assert stray_float_groups(quantized, {"Add", "Mul", "HardSigmoid"}) == []
    assert report.sqnr_db > 25


def _hard_swish_cnn():
    inits = {"W1": weights(4, 3, 3, 3, seed=1), "B1": np.zeros(4, np.float32), "W2": weights(4, 4, 3, 3, seed=2),
             "B2": np.zeros(4, np.float32), "three": np.array(3.0, np.float32), "zero": np.array(0.0, np.float32),
             "six": np.array(6.0, np.float32)}
    return model_from_text(HARD_SWISH_CNN, inits)


@pytest.mark.parametrize("options", [
    {"exclude_ops": ["Add", "Mul"]},  # static: the HardSwish group stays float, the convolutions go int8
    {"mode": "dynamic", "include_ops": ["Conv"]},  # dynamic quantizes no elementwise op
])
def test_hard_swish_left_float_is_regrouped_as_the_float_pipeline_does(options):
    model = _hard_swish_cnn()
    data = samples(model, 16)
    quantized, report = quantize(model, data, holdout=4, latency_check=False, **options)
    histogram = op_histogram(quantized)
    assert histogram["HardSigmoid"] == 1 and "Clip" not in histogram
    assert report.quantized_ops == {"Conv": 2}
    assert report.sqnr_db > 25
    _valid(quantized)
