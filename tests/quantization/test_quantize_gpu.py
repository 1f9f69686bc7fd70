"""The quantizer's latency paths on the CUDA provider: run where it is available, skipped with a reason elsewhere."""
from __future__ import annotations

import onnxruntime as ort
import pytest

from onnxopt.quantization import quantize

from qmodels import cnn, samples

pytestmark = pytest.mark.skipif("CUDAExecutionProvider" not in ort.get_available_providers(),
                                reason="this onnxruntime build has no CUDAExecutionProvider")


def test_latency_mode_on_cuda_keeps_the_faster_whole_model():
    model = cnn()
    quantized, report = quantize(model, samples(model, 12), holdout=4, optimize_for="latency", provider="cuda",
                                 latency_seconds=0.5)
    (step,) = report.latency_steps
    assert "on cuda" in step.detail and ("int8 faster" in step.detail or "fp32 fastest" in step.detail)
    (check,) = report.latency
    assert check.provider == "cuda"
    assert check.ratio <= 1.25  # whichever model was kept, it is not slower than fp32 beyond timing noise
    if "fp32 fastest" in step.detail:
        assert report.quantized_ops == {}
