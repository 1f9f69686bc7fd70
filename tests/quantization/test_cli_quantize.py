"""`onnxopt quantize`: static from a directory, dynamic, image preprocessing flags, report file, user errors."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from PIL import Image

from onnxopt.cli import main
from onnxopt.ir import save

from qmodels import cnn, ort_ops, samples, transformer_block


@pytest.fixture
def cnn_files(tmp_path):
    model = cnn()
    path = tmp_path / "cnn.onnx"
    save(model, path)
    data = tmp_path / "data"
    data.mkdir()
    for i, sample in enumerate(samples(model, 14)):
        np.save(data / f"s{i:02d}.npy", sample["x"])
    return path, data


def test_static_quantize_writes_model_and_json_report(cnn_files, tmp_path, capsys):
    path, data = cnn_files
    out, report = tmp_path / "q.onnx", tmp_path / "q.json"
    code = main(["quantize", str(path), "-o", str(out), "--data", str(data), "--method", "percentile",
                 "--samples", "10", "--holdout", "4", "--exclude-ops", "Gemm", "--no-latency-check",
                 "--report", str(report)])
    assert code == 0
    text = capsys.readouterr().out
    assert "percentile calibration on 10 samples" in text and "SQNR" in text
    quantized = onnx.load(out)
    onnx.checker.check_model(quantized, full_check=True)
    doc = json.loads(report.read_text())
    assert [m["name"] for m in doc["models"]] == ["input", "output"] and len(doc["results"]) == 2
    info = doc["sections"][0]["data"]
    assert info["calibration_samples"] == 10 and info["holdout_samples"] == 4 and "Gemm" not in info["quantized_ops"]
    from onnxopt.ir import load

    assert ort_ops(load(out))["QLinearConv"] == 4


def test_dynamic_quantize_needs_no_data(tmp_path, capsys):
    path, out = tmp_path / "block.onnx", tmp_path / "q.onnx"
    save(transformer_block(), path)
    assert main(["-q", "quantize", str(path), "-o", str(out), "--mode", "dynamic", "--no-latency-check"]) == 0
    assert capsys.readouterr().out == ""
    ops = {n.op_type for n in onnx.load(out).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops


def test_image_directory_with_preprocessing_flags(tmp_path):
    model_path, out = tmp_path / "cnn.onnx", tmp_path / "q.onnx"
    save(cnn(), model_path)
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(images / f"im{i}.png")
    code = main(["quantize", str(model_path), "-o", str(out), "--data", str(images), "--size", "16,16",
                 "--channel-order", "BGR", "--scale", "1/255", "--mean", "0.5,0.5,0.5", "--std", "0.25",
                 "--holdout", "2", "--no-latency-check"])
    assert code == 0 and out.exists()


@pytest.mark.parametrize("extra,message", [
    ([], "static quantization needs calibration data"),
    (["--data", "DATA", "--target-sqnr", "-1"], "target_sqnr must be a number of dB"),
    (["--data", "DATA", "--include-ops", "Conv", "--exclude-ops", "Conv"], "both included and excluded"),
])
def test_user_errors_exit_2_with_one_line(cnn_files, tmp_path, capsys, extra, message):
    path, data = cnn_files
    extra = [str(data) if a == "DATA" else a for a in extra]
    code = main(["quantize", str(path), "-o", str(tmp_path / "q.onnx"), "--no-latency-check", *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "q.onnx").exists()


@pytest.mark.parametrize("provider,message", [
    ("gpu", "provider must be one of cpu, cuda"),
    ("openvino", "execution provider 'openvino' is not available in this onnxruntime build"),
])
def test_unknown_or_missing_provider_fails_before_quantizing(cnn_files, tmp_path, capsys, provider, message):
    if provider == "openvino" and "OpenVINOExecutionProvider" in __import__("onnxruntime").get_available_providers():
        pytest.skip("this onnxruntime build has the OpenVINO provider")
    path, data = cnn_files
    code = main(["quantize", str(path), "-o", str(tmp_path / "q.onnx"), "--data", str(data), "--provider", provider])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "q.onnx").exists()
