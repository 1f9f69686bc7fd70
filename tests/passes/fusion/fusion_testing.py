"""Shared checks for fusion rule tests (DESIGN.md §8): fired, histogram, ORT equality, checker, lint, idempotence.

Tolerance: outputs must match the original run in ONNX Runtime with its optimizations OFF within
atol = 1e-4 × max|output| (float32), rtol 0; float16 uses 1e-2 × max|output|; double 1e-9 × max|output|.
"""
from __future__ import annotations

from collections import Counter
from typing import Mapping

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator

import onnxopt.passes  # noqa: F401  (registers the passes)
from onnxopt.ir import Model, lint, serialize, to_proto
from onnxopt.passmanager import PassContext, make_pass
from onnxopt.testing import assert_same_outputs, model_from_text, op_histogram

ATOL = {"float32": 1e-4, "float16": 1e-2, "float64": 1e-9}
RNG = np.random.default_rng(0)


def weights(*shape: int, dtype=np.float32, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    """Random weights from the module's generator (deterministic per test order)."""
    return RNG.uniform(low, high, shape).astype(dtype)


def bn_params(channels: int, dtype=np.float32) -> dict[str, np.ndarray]:
    """scale, bias, mean, var for a BatchNormalization with `channels` channels (var > 0)."""
    return {
        "scale": weights(channels, dtype=dtype, low=0.5, high=2.0), "bias": weights(channels, dtype=dtype),
        "mean": weights(channels, dtype=dtype), "var": weights(channels, dtype=dtype, low=0.1, high=2.0),
    }


def run_pass(name: str, model: Model, target: str = "onnx", explain: bool = False) -> tuple[bool, list[str]]:
    """Run one registered pass; return whether it changed the model and the explanations it gave."""
    context = PassContext(target=target, explain=frozenset({name}) if explain else frozenset())
    result = make_pass(name, context).call(model)
    lint(model)
    return result.modified, context.explanations


def assert_fuses(
    name: str, text: str, inits: Mapping[str, np.ndarray], after: Mapping[str, int],
    feeds: Mapping[str, np.ndarray] | None = None, dtype: str = "float32", reference: bool = False,
) -> Model:
    """The pass fires, leaves exactly `after`, keeps outputs, passes the checker and lint, and is idempotent."""
    model = model_from_text(text, inits)
    original = model.clone()
    modified, _ = run_pass(name, model)
    assert modified, f"{name} did not fire"
    assert op_histogram(model) == Counter(after), op_histogram(model)
    onnx.checker.check_model(to_proto(model), full_check=True)
    if reference:  # onnxruntime has no CPU kernel for this dtype/op: compare with onnx.reference
        _assert_reference_equal(original, model, feeds, ATOL[dtype])
    else:
        assert_same_outputs(original, model, feeds, rtol=0.0, atol=ATOL[dtype])
    assert [v.name for v in model.graph.outputs] == [v.name for v in original.graph.outputs]
    assert not run_pass(name, model)[0], f"{name} changed the model a second time"
    return model


def assert_declines(name: str, text: str, inits: Mapping[str, np.ndarray], reason: str, target: str = "onnx") -> None:
    """The pass leaves the model alone and --explain gives a line containing `reason`."""
    model = model_from_text(text, inits)
    before = op_histogram(model)
    modified, notes = run_pass(name, model, target=target, explain=True)
    assert not modified and op_histogram(model) == before
    assert any(reason in note for note in notes), notes


def _assert_reference_equal(original: Model, model: Model, feeds: Mapping[str, np.ndarray] | None, atol: float):
    assert feeds is not None, "give feeds for reference runs"
    want = ReferenceEvaluator(onnx.load_from_string(serialize(original))).run(None, dict(feeds))
    got = ReferenceEvaluator(onnx.load_from_string(serialize(model))).run(None, dict(feeds))
    for ref, out in zip(want, got):
        assert out.dtype == ref.dtype and out.shape == ref.shape
        np.testing.assert_allclose(out, ref, rtol=0.0, atol=atol * float(np.max(np.abs(ref), initial=1.0)))
