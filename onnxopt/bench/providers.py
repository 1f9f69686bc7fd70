"""Execution providers: short names ↔ ONNX Runtime names, options parsing, availability, node placement."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from typing import Iterable, Mapping, Sequence, Union

import onnxruntime as ort

from onnxopt.errors import ProviderError

ORT_NAMES: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "rocm": "ROCMExecutionProvider",
}
SHORT_NAMES: dict[str, str] = {v: k for k, v in ORT_NAMES.items()}

# Which build of onnxruntime brings each provider.
INSTALL_HINTS: dict[str, str] = {
    "cuda": "pip uninstall onnxruntime && pip install onnxruntime-gpu (needs CUDA and cuDNN)",
    "tensorrt": "pip uninstall onnxruntime && pip install onnxruntime-gpu (needs CUDA, cuDNN and TensorRT)",
    "openvino": "pip uninstall onnxruntime && pip install onnxruntime-openvino",
    "dml": "pip uninstall onnxruntime && pip install onnxruntime-directml (Windows)",
    "coreml": "use the standard onnxruntime wheel on macOS",
    "rocm": "install the ROCm build of onnxruntime (onnxruntime-rocm, from AMD's package index)",
}

# The OrtValue device type that inputs and outputs are bound to under IO binding.
DEVICE_TYPES: dict[str, str] = {"cuda": "cuda", "tensorrt": "cuda", "rocm": "cuda", "dml": "dml"}

# Providers that also register CUDA so nodes TensorRT cannot take still run on the GPU.
COMPANIONS: dict[str, tuple[str, ...]] = {"tensorrt": ("cuda",)}

ProviderOptions = Union[Mapping[str, Mapping[str, object]], Iterable[str], None]


def short_name(name: str) -> str:
    """The short name of a provider given either way (``cuda`` or ``CUDAExecutionProvider``)."""
    if name in ORT_NAMES:
        return name
    if name.lower() in ORT_NAMES:
        return name.lower()
    if name in SHORT_NAMES:
        return SHORT_NAMES[name]
    known = ", ".join(ORT_NAMES)
    raise ProviderError(f"unknown execution provider '{name}'; use one of: {known} (or an ONNX Runtime provider name)")


def available_providers() -> list[str]:
    """Short names of the providers this onnxruntime build offers (unknown ones keep their ORT name)."""
    return [SHORT_NAMES.get(p, p) for p in ort.get_available_providers()]


def check_available(names: Sequence[str]) -> list[str]:
    """Short names for ``names``; raises ProviderError (one line) for any that this build lacks."""
    shorts = [short_name(n) for n in names]
    have = set(ort.get_available_providers())
    for s in shorts:
        if ORT_NAMES[s] not in have:
            raise ProviderError(
                f"execution provider '{s}' is not available in this onnxruntime build "
                f"(available: {', '.join(available_providers())}); to get it: {INSTALL_HINTS[s]}"
            )
    return shorts


def parse_provider_options(items: ProviderOptions) -> dict[str, dict[str, str]]:
    """Options per short provider name, from a mapping or from ``"cuda:device_id=1,gpu_mem_limit=2e9"`` strings."""
    if items is None:
        return {}
    if isinstance(items, Mapping):
        return {short_name(p): {str(k): str(v) for k, v in opts.items()} for p, opts in items.items()}
    parsed: dict[str, dict[str, str]] = {}
    for item in items:
        provider, sep, rest = item.partition(":")
        pairs = [p for p in rest.split(",") if p] if sep else []
        if not pairs or not all("=" in p for p in pairs):
            raise ProviderError(f"bad provider option '{item}'; write PROVIDER:KEY=VALUE, e.g. cuda:device_id=1")
        opts = parsed.setdefault(short_name(provider.strip()), {})
        for pair in pairs:
            key, _, value = pair.partition("=")
            opts[key.strip()] = value.strip()
    return parsed


def session_providers(provider: str, options: Mapping[str, Mapping[str, str]]) -> list[tuple[str, dict[str, str]]]:
    """The (ORT name, options) list for a session on ``provider``, with its companions and CPU as fallback."""
    chain = [provider, *COMPANIONS.get(provider, ()), "cpu"]
    have = set(ort.get_available_providers())
    seen: list[str] = []
    for s in chain:
        if s not in seen and (s == provider or ORT_NAMES[s] in have):
            seen.append(s)
    return [(ORT_NAMES[s], dict(options.get(s, {}))) for s in seen]


def device_id(provider: str, options: Mapping[str, Mapping[str, str]]) -> int:
    """The GPU index a provider runs on (its ``device_id`` option, else 0)."""
    return int(options.get(provider, {}).get("device_id", 0))


def kernels_by_provider(profile_path: str) -> dict[str, int]:
    """Count the kernels that ran on each provider, read from an ONNX Runtime profile file (then delete it)."""
    try:
        with open(profile_path, encoding="utf-8") as f:
            events = json.load(f)
    finally:
        if os.path.exists(profile_path):
            os.remove(profile_path)
    placed: dict[str, str] = {}
    for event in events:
        args = event.get("args") or {}
        if event.get("cat") == "Node" and "provider" in args:
            placed[event.get("name", "")] = SHORT_NAMES.get(args["provider"], args["provider"])
    return dict(sorted(Counter(placed.values()).items()))


def device_memory_used(index: int) -> int | None:
    """Bytes in use on NVIDIA GPU ``index`` as nvidia-smi reports it; None where there is no nvidia-smi."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=memory.used", "--format=csv,noheader,nounits", f"--id={index}"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
        return int(float(out.strip().splitlines()[0])) * 1024 * 1024
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None
