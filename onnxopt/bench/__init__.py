"""Latency benchmarking of ONNX models on ONNX Runtime providers, with table/JSON/Markdown/HTML reports."""
from __future__ import annotations

from onnxopt.bench.result import BenchResult, Measurement, ModelInfo, ReportSection
from onnxopt.bench.runner import benchmark

__all__ = ["BenchResult", "Measurement", "ModelInfo", "ReportSection", "benchmark"]
