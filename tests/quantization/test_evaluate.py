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


def test_lower_bound_equals_the_estimate_when_every_sample_has_the_same_sqnr():
    refs = [np.full((1, 4), float(i + 1), np.float32) for i in range(8)]
    outs = [r * 1.1 for r in refs]
    got = _agreement("y", refs, outs)
    assert got.sqnr_low_db == pytest.approx(got.sqnr_db, abs=1e-4) == pytest.approx(20.0, abs=1e-3)


def test_lower_bound_sees_noise_carried_by_one_sample():
    # 15 samples almost exact, one far off: pooled over these 16 the SQNR looks fine, resamplings that draw
    # the bad sample more often do not
    refs = [np.ones((1, 4), np.float32) for _ in range(16)]
    outs = [r * 1.0001 for r in refs[:15]] + [refs[15] * 1.2]
    got = _agreement("y", refs, outs)
    assert got.sqnr_db > 25.0
    assert got.sqnr_low_db < got.sqnr_db - 3.0
    assert _agreement("y", refs, outs).sqnr_low_db == got.sqnr_low_db  # deterministic


def test_evaluator_reports_the_worst_outputs_bound():
    text = '<ir_version: 8, opset_import: ["" : 17]>\ng (float[1, 4] x) => (float[1, 4] y) { y = Mul(x, k) }'
    reference = model_from_text(text, {"k": np.full(4, 2.0, np.float32)})
    candidate = model_from_text(text, {"k": np.array([2.0, 2.0, 2.0, 2.6], np.float32)})
    samples = [{"x": np.eye(4, dtype=np.float32)[i % 4][None]} for i in range(8)]
    evaluator = Evaluator(reference, samples)
    assert evaluator.sqnr(candidate, bound=True) < evaluator.sqnr(candidate)


def test_noisiest_keeps_the_samples_the_candidate_gets_most_wrong():
    text = '<ir_version: 8, opset_import: ["" : 17]>\ng (float[1, 4] x) => (float[1, 4] y) { y = Mul(x, k) }'
    reference = model_from_text(text, {"k": np.full(4, 2.0, np.float32)})
    candidate = model_from_text(text, {"k": np.array([2.0, 2.0, 2.0, 3.0], np.float32)})  # wrong on the last input
    samples = [{"x": np.full((1, 4), 1.0, np.float32)} for _ in range(6)]
    for i in (1, 4):
        samples[i]["x"][0, 3] = 10.0
    evaluator = Evaluator(reference, samples)
    probe = evaluator.noisiest(candidate, 2)
    assert [s["x"][0, 3] for s in probe.samples] == [10.0, 10.0]
    assert probe.sqnr(candidate) < evaluator.sqnr(candidate)
    assert len(probe.reference) == 2 and probe.names == evaluator.names
