"""Provider names, options, availability errors and kernel placement from profiles."""
from __future__ import annotations

import json

import onnxruntime as ort
import pytest

from onnxopt.bench import providers as prov
from onnxopt.errors import ProviderError


def test_short_names() -> None:
    assert prov.short_name("cuda") == "cuda"
    assert prov.short_name("TensorRT") == "tensorrt"
    assert prov.short_name("OpenVINOExecutionProvider") == "openvino"
    with pytest.raises(ProviderError, match="unknown execution provider 'tpu'"):
        prov.short_name("tpu")


def test_missing_provider_is_one_line_with_hint() -> None:
    if "TensorrtExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime build has TensorRT")
    with pytest.raises(ProviderError) as err:
        prov.check_available(["cpu", "tensorrt"])
    message = str(err.value)
    assert "\n" not in message
    assert "'tensorrt' is not available" in message and "available: " in message and "cpu" in message
    assert "pip install onnxruntime-gpu" in message
    assert prov.check_available(["CPUExecutionProvider"]) == ["cpu"]


def test_parse_provider_options() -> None:
    parsed = prov.parse_provider_options(
        ["cuda:device_id=1", "cuda:gpu_mem_limit=2000000000,arena_extend_strategy=kSameAsRequested", "cpu:x=y"])
    assert parsed == {"cuda": {"device_id": "1", "gpu_mem_limit": "2000000000",
                               "arena_extend_strategy": "kSameAsRequested"}, "cpu": {"x": "y"}}
    assert prov.parse_provider_options({"CUDAExecutionProvider": {"device_id": 2}}) == {"cuda": {"device_id": "2"}}
    assert prov.device_id("cuda", parsed) == 1 and prov.device_id("cpu", parsed) == 0
    for bad in ["cuda", "cuda:device_id", "cuda:", "warp:a=b"]:
        with pytest.raises(ProviderError):
            prov.parse_provider_options([bad])


def test_session_providers_chain() -> None:
    assert prov.session_providers("cpu", {}) == [("CPUExecutionProvider", {})]
    chain = prov.session_providers("tensorrt", {"tensorrt": {"trt_fp16_enable": "1"}})
    assert chain[0] == ("TensorrtExecutionProvider", {"trt_fp16_enable": "1"})
    assert chain[-1] == ("CPUExecutionProvider", {})


def test_kernels_by_provider_reads_and_removes_profile(tmp_path) -> None:
    events = [
        {"cat": "Session", "name": "model_run", "args": {}},
        {"cat": "Node", "name": "conv_kernel_time", "args": {"provider": "CUDAExecutionProvider", "op_name": "Conv"}},
        {"cat": "Node", "name": "conv_kernel_time", "args": {"provider": "CUDAExecutionProvider", "op_name": "Conv"}},
        {"cat": "Node", "name": "nms_kernel_time", "args": {"provider": "CPUExecutionProvider", "op_name": "NMS"}},
        {"cat": "Node", "name": "conv_fence_before", "args": {"op_name": "Conv"}},
    ]
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(events))
    assert prov.kernels_by_provider(str(path)) == {"cpu": 1, "cuda": 1}
    assert not path.exists()
