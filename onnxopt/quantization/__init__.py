"""The int8 quantizer: static QDQ from calibration data, or dynamic int8 (see quantize.quantize)."""
from __future__ import annotations

from onnxopt.quantization.config import QuantConfig, QuantConfigError
from onnxopt.quantization.quantize import QuantizeResult, quantize
from onnxopt.quantization.report import QuantReport

__all__ = ["QuantConfig", "QuantConfigError", "QuantReport", "QuantizeResult", "quantize"]
