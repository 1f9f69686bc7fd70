"""Constant folding passes, imported in the order they run in the `fold` group."""
from __future__ import annotations

from onnxopt.passes.folding import (  # noqa: F401
    fix_input_shapes,
    extract_constants,
    fold_shapes,
    read_dims_from_inputs,
    fold_constants,
    deduplicate_initializers,
    sink_initializers,
)
