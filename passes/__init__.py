"""The concrete passes. Importing this package registers them; import order is the order they run in a group."""
from __future__ import annotations

from onnxopt.passes import folding, cleanup, fusion, quantize, bridge  # noqa: F401
