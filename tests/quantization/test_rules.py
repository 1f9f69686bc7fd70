"""Each op rule on a small model: placement, ORT runs it close to float, and ORT fuses it into its int8 kernel."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from onnxopt.ir import lint, serialize
from onnxopt.quantization import quantize
from onnxopt.testing import model_from_text, op_histogram

from qmodels import ort_ops, run, samples, sqnr, stray_float_groups, weights

HEAD = '<ir_version: 8, opset_import: ["" : 17]>\n'
CONV = {"W": weights(8, 4, 3, 3), "B": weights(8, scale=0.1)}


def frame(body: str, out: str = "float[1, 8, 8, 8] y", extra_inputs: str = "") -> str:
    """A graph whose input x[1,4,8,8] goes through Conv(→ c, 8 channels) and then `body`."""
    return HEAD + f"g (float[1, 4, 8, 8] x{extra_inputs}) => ({out}) {{\n c = Conv<pads=[1, 1, 1, 1]>(x, W, B)\n{body}\n}}"


# name, model text, extra initializers, op quantized, int8 kernel expected from ORT
CASES = [
    ("conv", frame(" y = Relu(c)"), {}, "Conv", "QLinearConv"),
    ("conv_clip", frame(" y = Clip(c, lo, hi)"), {"lo": np.float32(0), "hi": np.float32(6)}, "Conv", "QLinearConv"),
    ("matmul_weight", HEAD + "g (float[1, 6, 16] x) => (float[1, 6, 8] y) { y = MatMul(x, W) }",
     {"W": weights(16, 8)}, "MatMul", "QLinearMatMul"),
    ("matmul_activations", HEAD + "g (float[1, 6, 16] x, float[1, 16, 5] z) => (float[1, 6, 5] y) { y = MatMul(x, z) }",
     {}, "MatMul", "QLinearMatMul"),
    ("gemm", HEAD + "g (float[2, 16] x) => (float[2, 8] y) { y = Gemm<transB=1>(x, W, B) }",
     {"W": weights(8, 16), "B": weights(8, scale=0.1)}, "Gemm", "QGemm"),
    ("add", frame(" d = Conv(x, W2, B2)\n y = Add(c, d)"), {"W2": weights(8, 4, 1, 1), "B2": weights(8)}, "Add", "QLinearAdd"),
    ("add_constant", frame(" y = Add(c, k)"), {"k": weights(1, 8, 1, 1)}, "Add", "QLinearAdd"),
    ("mul", frame(" s = Sigmoid(c)\n y = Mul(c, s)"), {}, "Mul", "QLinearMul"),
    ("concat", frame(" d = Conv(x, W2, B2)\n y = Concat<axis=1>(c, d)", "float[1, 16, 8, 8] y"),
     {"W2": weights(8, 4, 1, 1), "B2": weights(8)}, "Concat", "QLinearConcat"),
    ("average_pool", frame(" y = AveragePool<kernel_shape=[2, 2], strides=[2, 2]>(c)", "float[1, 8, 4, 4] y"), {},
     "AveragePool", "QLinearAveragePool"),
    ("global_average_pool", frame(" y = GlobalAveragePool(c)", "float[1, 8, 1, 1] y"), {},
     "GlobalAveragePool", "QLinearGlobalAveragePool"),
    ("sigmoid", frame(" y = Sigmoid(c)"), {}, "Sigmoid", "QLinearSigmoid"),
    ("softmax", frame(" y = Softmax<axis=1>(c)"), {}, "Softmax", "QLinearSoftmax"),
    ("leaky_relu", frame(" y = LeakyRelu<alpha=0.1>(c)"), {}, "LeakyRelu", "QLinearLeakyRelu"),
]

# data-movement ops between two convs: they share their input's parameters and ORT runs them on int8
MOVING = [
    ("max_pool", " m = MaxPool<kernel_shape=[2, 2], strides=[2, 2]>(c)", [1, 8, 4, 4], {}),
    ("resize_nearest", ' m = Resize<mode="nearest">(c, , sc)', [1, 8, 16, 16], {"sc": np.array([1, 1, 2, 2], np.float32)}),
    ("transpose", " m = Transpose<perm=[0, 1, 3, 2]>(c)", [1, 8, 8, 8], {}),
    ("reshape", " m = Reshape(c, shp)", [1, 8, 8, 8], {"shp": np.array([1, 8, 8, 8], np.int64)}),
    ("slice", " m = Slice(c, st, en, ax)", [1, 8, 6, 8],
     {"st": np.array([2], np.int64), "en": np.array([8], np.int64), "ax": np.array([2], np.int64)}),
    ("split", " m1, m2 = Split<axis=2>(c, sz)\n m = Add(m1, m2)", [1, 8, 4, 8], {"sz": np.array([4, 4], np.int64)}),
    ("unsqueeze", " u = Unsqueeze(c, ax)\n m = Squeeze(u, ax)", [1, 8, 8, 8], {"ax": np.array([0], np.int64)}),
    ("gather", " m = Gather<axis=2>(c, idx)", [1, 8, 4, 8], {"idx": np.array([0, 2, 4, 6], np.int64)}),
]


def _quantize(model, **options):
    data = samples(model, 40, seed=1)
    options = {"holdout": 4, "latency_check": False, "prepare": False, **options}
    return quantize(model, data, **options), data


def _check_valid(model) -> None:
    lint(model)
    onnx.checker.check_model(onnx.ModelProto.FromString(serialize(model)), full_check=True)


def _close_to_float(float_model, quantized, data, min_db: float = 20.0) -> None:
    for feeds in data[-3:]:
        want = run(float_model, feeds)
        got = run(quantized, feeds)
        for w, g in zip(want, got):
            assert sqnr(w, g) >= min_db


def _target_node(model, op_type):
    return next(n for n in model.graph if n.op_type == op_type)


@pytest.mark.parametrize("name,text,extra,op_type,kernel", CASES, ids=[c[0] for c in CASES])
def test_rule_placement_fusion_and_accuracy(name, text, extra, op_type, kernel):
    model = model_from_text(text, {**CONV, **extra} if "Conv" in text else extra)
    (quantized, report), data = _quantize(model)
    _check_valid(quantized)
    node = _target_node(quantized, op_type)
    for value in node.inputs:
        if value is not None:
            assert value.producer() is not None and value.producer().op_type == "DequantizeLinear", f"{value.name} not read via DQ"
    assert all(r.op_type == "QuantizeLinear" for r in node.outputs[0].consumers())
    assert report.quantized_ops.get(op_type) == 1
    ops = ort_ops(quantized)
    assert ops[kernel] >= 1 and ops[op_type] == 0, ops
    assert not stray_float_groups(quantized, {op_type, "Relu", "Clip"})
    _close_to_float(model, quantized, data)


def test_relu_and_clip_are_absorbed_into_the_producer():
    model = model_from_text(frame(" y = Relu(c)"), CONV)
    (quantized, report), _ = _quantize(model)
    assert "Relu" not in op_histogram(quantized)
    assert len(report.absorbed) == 1
    record = next(t for t in report.tensors if t.name == "y")
    assert record.rmin == 0.0 and record.zero_point == 0


def test_symmetric_activations_keep_relu():
    model = model_from_text(frame(" y = Relu(c)"), CONV)
    (quantized, report), data = _quantize(model, activation_type="int8", symmetric_activations=True)
    assert op_histogram(quantized)["Relu"] == 1 and not report.absorbed
    assert all(t.zero_point == 0 for t in report.tensors)
    _close_to_float(model, quantized, data, 20.0)


@pytest.mark.parametrize("name,body,shape,extra", MOVING, ids=[c[0] for c in MOVING])
def test_data_movement_shares_parameters_and_runs_on_int8(name, body, shape, extra):
    out = f"float[{', '.join(map(str, shape))}] y"
    text = frame(body + "\n y = Conv(m, W2, B2)", out)
    model = model_from_text(text, {**CONV, **extra, "W2": weights(8, 8, 1, 1), "B2": weights(8, scale=0.1)})
    (quantized, report), data = _quantize(model)
    _check_valid(quantized)
    op_type = next(n.op_type for n in model.graph if n.op_type != "Conv")
    moved = _target_node(quantized, op_type)
    dq = moved.inputs[0].producer()
    assert dq.op_type == "DequantizeLinear"
    q = moved.outputs[0].consumers()[0]
    assert q.op_type == "QuantizeLinear"
    assert np.array_equal(dq.inputs[1].numpy(), q.inputs[1].numpy()), "output does not share the input's scale"
    assert np.array_equal(dq.inputs[2].numpy(), q.inputs[2].numpy())
    assert not stray_float_groups(quantized, {op_type, "Conv", "Squeeze", "Unsqueeze"})
    assert ort_ops(quantized)["QLinearConv"] == 2
    _close_to_float(model, quantized, data)


def test_data_movement_next_to_float_stays_float():
    text = HEAD + "g (float[1, 8, 4] x) => (float[1, 4, 8] y) { t = Transpose<perm=[0, 2, 1]>(x)\n y = Sigmoid(t) }"
    (quantized, report), _ = _quantize(model_from_text(text), exclude_ops=["Sigmoid"])
    assert "QuantizeLinear" not in op_histogram(quantized)


@pytest.mark.parametrize("body,op_type,reason", [
    (" y = HardSwish(c)", "HardSwish", "no fused int8 HardSwish"),
    (" y = ConvTranspose(c, WT)", "ConvTranspose", "no fused int8 ConvTranspose"),
    (' y = Resize<mode="linear">(c, , sc)', "Resize", "only nearest"),
])
def test_ops_ort_cannot_fuse_stay_float(body, op_type, reason):
    extra = {"WT": weights(8, 8, 3, 3), "sc": np.array([1, 1, 2, 2], np.float32)}
    out = "float[1, 8, 16, 16] y" if op_type == "Resize" else "float[1, 8, 10, 10] y" if op_type == "ConvTranspose" else "float[1, 8, 8, 8] y"
    model = model_from_text(frame(body, out), {**CONV, **extra})
    (quantized, report), _ = _quantize(model)
    node = _target_node(quantized, op_type)
    assert reason in report.kept_float[node.name]
    assert node.outputs[0].consumers() == [] or all(c.op_type != "QuantizeLinear" for c in node.outputs[0].consumers())
    assert not stray_float_groups(quantized, {op_type}) or op_type in ("HardSwish", "ConvTranspose", "Resize")
    assert ort_ops(quantized)["QLinearConv"] == 1


def test_custom_domain_nodes_are_untouched():
    text = ('<ir_version: 8, opset_import: ["" : 17, "com.microsoft" : 1]>\n'
            "g (float[1, 4, 8, 8] x) => (float[1, 8, 8, 8] y) {\n c = Conv<pads=[1, 1, 1, 1]>(x, W, B)\n"
            " y = com.microsoft.Gelu(c)\n}")
    model = model_from_text(text, CONV)
    from onnxopt.quantization.config import QuantConfig
    from onnxopt.quantization.plan import build_plan

    plan = build_plan(model, QuantConfig())
    mystery = next(n for n in model.graph if n.op_type == "Gelu")
    assert "custom domain" in plan.kept_float[mystery.name]
    assert [plan.op_types[n] for n in plan.specs] == ["Conv"]
    # the custom node keeps reading the float (dequantized) tensor and is never wrapped itself
    quantized = quantize(model, samples(model, 4), holdout=0, latency_check=False, prepare=False).model
    custom = next(n for n in quantized.graph if n.op_type == "Gelu")
    assert custom.domain == "com.microsoft" and custom.inputs[0].producer().op_type == "DequantizeLinear"
    assert all(c.op_type != "QuantizeLinear" for c in custom.outputs[0].consumers())
