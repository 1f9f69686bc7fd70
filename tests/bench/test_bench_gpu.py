"""CUDA and TensorRT paths: run where those providers are available, skipped with a reason elsewhere."""
from __future__ import annotations

import shutil

import numpy as np
import onnx
import onnx.parser
import onnxruntime as ort
import pytest

from onnxopt.bench import benchmark
from onnxopt.errors import ProviderError

AVAILABLE = ort.get_available_providers()
needs_cuda = pytest.mark.skipif("CUDAExecutionProvider" not in AVAILABLE,
                                reason="this onnxruntime build has no CUDAExecutionProvider")
needs_trt = pytest.mark.skipif("TensorrtExecutionProvider" not in AVAILABLE,
                               reason="this onnxruntime build has no TensorrtExecutionProvider")


def matmul_model() -> onnx.ModelProto:
    model = onnx.parser.parse_model("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[N, 64] x, float[64, 64] w) => (float[N, 64] y) { h = MatMul(x, w)  y = Relu(h) }
    """)
    weight = onnx.numpy_helper.from_array(np.random.default_rng(1).standard_normal((64, 64)).astype(np.float32), "w")
    model.graph.initializer.append(weight)
    return model


def starts(provider: str) -> bool:
    """Whether onnxruntime really runs ``provider`` here (a build can list it while its libraries are missing)."""
    session = ort.InferenceSession(matmul_model().SerializeToString(), providers=[provider, "CPUExecutionProvider"])
    return provider in session.get_providers()


@needs_cuda
@pytest.mark.parametrize("io_binding", [True, False])
def test_cuda_against_cpu_baseline(io_binding: bool) -> None:
    result = benchmark([matmul_model(), matmul_model()], providers=("cuda", "cpu"), dims={"N": 8}, runs=10,
                       warmup=2, io_binding=io_binding, provider_options=["cuda:device_id=0"], progress=False)
    cuda = [m for m in result.measurements if m.provider == "cuda"]
    assert len(cuda) == 2 and "cuda" in cuda[0].kernels
    assert cuda[1].outputs is not None and cuda[1].outputs.ok
    assert all(m.stats.count == 10 for m in result.measurements)
    assert cuda[0].device_memory_bytes is not None or shutil.which("nvidia-smi") is None


@needs_trt
def test_tensorrt_runs_or_says_why() -> None:
    if starts("TensorrtExecutionProvider"):
        result = benchmark([matmul_model()], providers=("tensorrt",), dims={"N": 8}, runs=5, warmup=1,
                           progress=False)
        assert "tensorrt" in result.measurements[0].kernels
    else:
        with pytest.raises(ProviderError, match="could not start provider 'tensorrt'"):
            benchmark([matmul_model()], providers=("tensorrt",), dims={"N": 8}, runs=1, progress=False)
