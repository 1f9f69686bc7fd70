"""Plan-free QDQ clean-ups (the quantizer's own insertion lives in onnxopt.quantization)."""
from __future__ import annotations

from onnxopt.passes.quantize import qdq_cleanup  # noqa: F401
