"""onnxopt: an ONNX graph optimization and quantization compiler."""
from __future__ import annotations

__version__ = "0.1.0"

from onnxopt.bench import benchmark  # noqa: E402
from onnxopt.ir import Model, load, save  # noqa: E402
from onnxopt.pipeline import optimize  # noqa: E402
from onnxopt.quantization import quantize  # noqa: E402

__all__ = ["Model", "__version__", "benchmark", "load", "optimize", "quantize", "save"]
