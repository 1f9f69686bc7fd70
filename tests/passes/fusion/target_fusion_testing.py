"""Checks for the normalization/activation/contrib fusion tests (DESIGN.md §8), for both targets.

Tolerance: outputs must match the original run in ONNX Runtime with its optimizations OFF within
atol = 1e-4 × max|output| (float32), rtol 0. Results with only standard ops pass onnx.checker's full check;
results with onnxruntime-only ops (com.microsoft, or SimplifiedLayerNormalization) are checked by ORT loading
and running them.
"""
from __future__ import annotations

from collections import Counter
from typing import Mapping

import numpy as np
import onnx

import onnxopt.passes  # noqa: F401  (registers the passes)
from onnxopt.ir import Model, lint, serialize, to_proto
from onnxopt.passmanager import PassContext, make_pass
from onnxopt.testing import assert_same_outputs, model_from_text, op_histogram

ORT_ONLY_DEFAULT_DOMAIN = {"SimplifiedLayerNormalization"}


def run_pass(name: str, model: Model, target: str = "onnx", explain: bool = False) -> tuple[bool, list[str]]:
    """Run one registered pass; return whether it changed the model and what --explain said for its rules."""
    rules = getattr(make_pass(name, PassContext()), "rules", ())
    names = frozenset(rule.name for rule in rules) | {name} if explain else frozenset()
    context = PassContext(target=target, explain=names)
    result = make_pass(name, context).call(model)
    lint(model)
    return result.modified, context.explanations


def assert_fuses(
    name: str | tuple[str, ...], text: str, inits: Mapping[str, np.ndarray] | None, after: Mapping[str, int], *,
    target: str = "onnx", feeds: Mapping[str, np.ndarray] | None = None, atol: float = 1e-4,
) -> Model:
    """The pass(es) fire, leave exactly `after`, keep outputs and their names, pass checker/lint, are idempotent."""
    names = (name,) if isinstance(name, str) else name
    model = model_from_text(text, inits)
    original = model.clone()
    fired = [run_pass(n, model, target)[0] for n in names]
    assert fired[0], f"{names[0]} did not fire"
    assert op_histogram(model) == Counter(after), op_histogram(model)
    if portable(model):
        onnx.checker.check_model(to_proto(model), full_check=True)
    assert_same_outputs(original, model, feeds, rtol=0.0, atol=atol)
    assert [v.name for v in model.graph.outputs] == [v.name for v in original.graph.outputs]
    once = serialize(model)
    for n in names:
        assert not run_pass(n, model, target)[0], f"{n} changed the model a second time"
    assert serialize(model) == once
    return model


def assert_declines(
    name: str, text: str, inits: Mapping[str, np.ndarray] | None, reason: str, target: str = "onnx",
) -> None:
    """The pass leaves the model alone and --explain gives a line containing `reason`."""
    model = model_from_text(text, inits)
    before = op_histogram(model)
    modified, notes = run_pass(name, model, target=target, explain=True)
    assert not modified and op_histogram(model) == before
    assert any(reason in note for note in notes), notes


def portable(model: Model) -> bool:
    """True when every node is a standard ONNX op (so onnx.checker can check the model fully)."""
    return all(
        node.domain in ("", "ai.onnx") and node.op_type not in ORT_ONLY_DEFAULT_DOMAIN
        for graph in model.graph.all_graphs() for node in graph
    )


def scalar(value: float, dtype=np.float32) -> np.ndarray:
    """A 0-d constant, as exporters write scalars."""
    return np.array(value, dtype=dtype)
