"""Plan-free QDQ passes: canonicalizations run before quantizing and clean-ups run after (the quantizer's
own insertion lives in onnxopt.quantization)."""
from __future__ import annotations

from onnxopt.passes.quantize import prepare, qdq_cleanup  # noqa: F401
