"""Bridges to other optimizers' passes."""
from __future__ import annotations

from onnxopt.passes.bridge import onnxoptimizer  # noqa: F401
