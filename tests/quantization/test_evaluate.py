"""Accuracy metrics of a quantized model against the float one: SQNR, cosine, top-1 agreement."""
from __future__ import annotations

import math

import numpy as np
import pytest

from onnxopt.quantization.evaluate import Evaluator, _agreement
from onnxopt.testing import model_from_text


def test_agreement_on_known_arrays():
    ref = [np.array([[1.0, 2.0, 3.0], [3.0, 1.0, 0.0]], np.float32)]
    same = _agreement("y", ref, ref)
    assert same.sqnr_db == math.inf and same.cosine == pytest.approx(1.0) and same.top1 == 1.0
    noisy = [ref[0] + np.array([[0.1, 0.0, 0.0], [0.0, 0.0, 4.0]], np.float32)]
    got = _agreement("y", ref, noisy)
    signal, noise = float(np.sum(ref[0].astype(np.float64) ** 2)), 0.01 + 16.0
    assert got.sqnr_db == pytest.approx(10 * math.log10(signal / noise), rel=1e-5)
    assert got.top1 == 0.5  # the second row's argmax moved from 0 to 2
    scalar = _agreement("s", [np.array([2.0])], [np.array([1.0])])
    assert scalar.top1 is None and scalar.sqnr_db == pytest.approx(10 * math.log10(4.0))


def test_evaluator_scores_a_candidate_on_a_subset():
    text = '<ir_version: 8, opset_import: ["" : 17]>\ng (float[1, 4] x) => (float[1, 4] y) { y = Mul(x, k) }'
    reference = model_from_text(text, {"k": np.full(4, 2.0, np.float32)})
    candidate = model_from_text(text, {"k": np.full(4, 2.2, np.float32)})
    samples = [{"x": np.arange(4, dtype=np.float32)[None] + i} for i in range(3)]
    evaluator = Evaluator(reference, samples)
    assert evaluator.sqnr(reference) == math.inf
    assert evaluator.sqnr(candidate) == pytest.approx(20.0, abs=1e-3)  # noise is 10% of the signal everywhere
    assert evaluator.sqnr(candidate, limit=1) == pytest.approx(20.0, abs=1e-3)
    assert Evaluator(reference, []).sqnr(candidate) != Evaluator(reference, []).sqnr(candidate)  # nan without samples
