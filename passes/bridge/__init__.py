"""Bridges to other optimizers' passes."""
from __future__ import annotations

from onnxopt.passes.bridge import onnxoptimizer, ort_nchwc  # noqa: F401
