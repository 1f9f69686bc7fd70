"""Shared assertions for the cleanup and dce pass tests (DESIGN.md §8)."""
from __future__ import annotations

from collections import Counter
from typing import Mapping

import numpy as np
import onnx

import onnxopt.passes  # noqa: F401  (registers the passes)
from onnxopt.ir import Model, lint, serialize, to_proto
from onnxopt.passmanager import PassContext, PassResult, make_pass
from onnxopt.testing import assert_same_outputs, model_from_text, op_histogram


def run_pass(name: str, model: Model) -> PassResult:
    """Run one registered pass on `model` in place."""
    return make_pass(name, PassContext()).call(model)


def check(
    name: str,
    text: str,
    after: Mapping[str, int],
    *,
    fired: bool = True,
    initializers: Mapping[str, np.ndarray] | None = None,
    feeds: Mapping[str, np.ndarray] | None = None,
    full_check: bool = True,
) -> Model:
    """Build the model, run the pass, and assert: it fired (or not), the exact op histogram after, outputs
    bit-identical to the original in ORT with its optimizations off, the ONNX checker (full), lint, and that a
    second run changes nothing."""
    model = model_from_text(text, initializers)
    original = serialize(model)
    result = run_pass(name, model)
    assert result.modified is fired, result
    assert op_histogram(model) == Counter(after), op_histogram(model)
    lint(model)
    onnx.checker.check_model(to_proto(model), full_check=full_check)
    assert_same_outputs(original, model, feeds, rtol=0, atol=0)
    once = serialize(model)
    again = run_pass(name, model)
    assert not again.modified, again
    assert serialize(model) == once
    return model


def output_names(model: Model) -> list[str]:
    """The root graph's output names, in order."""
    return [v.name for v in model.graph.outputs]


__all__ = ["check", "model_from_text", "output_names", "run_pass"]
