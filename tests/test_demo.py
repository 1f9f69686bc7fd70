"""onnxopt demo: offline, end to end, on the onnx wheel's ResNet-50."""
from __future__ import annotations

import os

from onnxopt.cli import main
from onnxopt.demo import run_demo


def test_demo_optimizes_verifies_quantizes_and_reports(tmp_path):
    result = run_demo(str(tmp_path), runs=3, progress=False)
    assert result.verification.ok
    assert result.ops_before["ConstantOfShape"] == 239 and result.ops_after["ConstantOfShape"] == 0
    assert sum(result.ops_after.values()) < sum(result.ops_before.values())
    assert result.quantization.quantized_ops.get("Conv") == 53
    assert [m.name for m in result.bench.models] == ["original", "optimized", "int8"]
    html = open(result.report_path, encoding="utf-8").read()
    assert "<svg" in html and "Quantization" in html and "http" not in html
    text = result.to_text()
    assert "ConstantOfShape" in text and "latency (ms)" in text


def test_demo_command(tmp_path, capsys):
    assert main(["demo", "--out-dir", str(tmp_path), "--runs", "2", "-q"]) == 0
    assert "verified: outputs match" in capsys.readouterr().out
    assert os.path.exists(tmp_path / "demo-report.html")
