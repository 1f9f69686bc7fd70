"""onnxopt: an ONNX graph optimization and quantization compiler."""
from __future__ import annotations

__version__ = "0.1.0"
