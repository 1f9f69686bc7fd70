"""The environment a benchmark ran in: onnxruntime build, CPU, Python, library versions."""
from __future__ import annotations

import datetime
import os
import platform
import sys
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

import onnxopt
from onnxopt.bench.providers import available_providers


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, else what the platform reports)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    """A JSON-ready description of this machine and software (keys documented in onnxopt.bench.report)."""
    return {
        "onnxruntime": ort.__version__,
        "onnxruntime_providers": available_providers(),
        "onnxruntime_device": ort.get_device(),
        "onnx": onnx.__version__,
        "numpy": np.__version__,
        "onnxopt": onnxopt.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "executable": sys.executable,
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
