"""Fixture for folding tests: run a pass and check everything DESIGN.md §8 asks of it."""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import onnx
import pytest

import onnxopt.passes  # noqa: F401  (registers the passes)
from onnxopt.ir import Model, lint, serialize
from onnxopt.passmanager import PassContext, PassResult, make_pass
from onnxopt.testing import assert_same_outputs, op_histogram

# Folding runs the same kernels ORT would run, so results agree to float32 rounding.
RTOL = 1e-6
ATOL = 1e-6


def run_pass(
    name: str,
    model: Model,
    histogram: Mapping[str, int] | None = None,
    context: PassContext | None = None,
    feeds: Mapping[str, np.ndarray] | None = None,
    compare: bool = True,
    modified: bool = True,
) -> PassResult:
    """Apply pass `name`; check histogram, outputs vs ORT (optimizations off), checker, lint, idempotence."""
    context = context or PassContext()
    original = serialize(model)
    result = make_pass(name, context).call(model)
    assert result.modified is modified, result
    if histogram is not None:
        assert dict(op_histogram(model)) == dict(histogram)
    lint(model)
    onnx.checker.check_model(onnx.ModelProto.FromString(serialize(model)), full_check=True)
    if compare:
        assert_same_outputs(original, model, feeds, rtol=RTOL, atol=ATOL)
    again = make_pass(name, context).call(model)
    assert not again.modified, f"second run of {name} changed the model: {again.counters}"
    return result


@pytest.fixture
def check_pass() -> Callable[..., PassResult]:
    """`check_pass(name, model, histogram=..., context=..., feeds=...)` → the PassResult of the first run."""
    return run_pass
