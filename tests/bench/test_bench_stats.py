"""Statistics against known timing lists, ratios with spread, and output comparison."""
from __future__ import annotations

import math

import numpy as np
import pytest

from onnxopt.bench.stats import compare_outputs, ratio_to_baseline, sqnr_db, summarize


def test_summarize_known_list() -> None:
    s = summarize([ms * 1_000_000 for ms in range(1, 101)])
    assert s.count == 100
    assert s.mean_ms == pytest.approx(50.5)
    assert s.median_ms == pytest.approx(50.5)
    assert s.p90_ms == pytest.approx(90.1)
    assert s.p99_ms == pytest.approx(99.01)
    assert s.std_ms == pytest.approx(29.011491975882016)
    assert (s.min_ms, s.max_ms) == (1.0, 100.0)
    assert s.throughput == pytest.approx(1000 / 50.5)


def test_summarize_single_and_skewed() -> None:
    one = summarize([2_000_000])
    assert (one.median_ms, one.std_ms, one.p99_ms) == (2.0, 0.0, 2.0)
    skewed = summarize([1_000_000] * 9 + [11_000_000])
    assert skewed.median_ms == 1.0
    assert skewed.mean_ms == pytest.approx(2.0)
    assert skewed.p90_ms == pytest.approx(2.0)
    with pytest.raises(ValueError):
        summarize([])


def test_ratio_of_medians_and_round_spread() -> None:
    r = ratio_to_baseline([5, 6, 4, 5], [10, 10, 10, 10])
    assert (r.median, r.low, r.high) == (0.5, 0.4, 0.6)
    drift = ratio_to_baseline([20, 40, 60], [10, 20, 30])  # machine drift hits both alike
    assert (drift.median, drift.low, drift.high) == (2.0, 2.0, 2.0)
    with pytest.raises(ValueError):
        ratio_to_baseline([1, 2], [1])


def test_sqnr() -> None:
    ref = np.ones(100)
    assert sqnr_db(ref, ref) == math.inf
    assert sqnr_db(ref, ref + 0.1) == pytest.approx(20.0)
    assert sqnr_db(np.zeros(3), np.ones(3)) == -math.inf
    assert math.isnan(sqnr_db(ref, np.full(100, np.nan)))


def test_compare_outputs_flags() -> None:
    a = [np.linspace(-1, 1, 50, dtype=np.float32), np.arange(4)]
    same = compare_outputs(a, [x.copy() for x in a])
    assert same.ok and same.max_abs_diff == 0.0 and same.sqnr_db == math.inf
    close = compare_outputs(a, [a[0] + 1e-3, a[1]])
    assert close.ok and close.max_abs_diff == pytest.approx(1e-3, rel=1e-3)
    wrong = compare_outputs(a, [-a[0], a[1]])
    assert not wrong.ok and "below 20 dB" in wrong.detail
    assert not compare_outputs(a, [a[0].reshape(5, 10), a[1]]).ok
    assert not compare_outputs(a, a[:1]).ok
    assert not compare_outputs(a, [np.full(50, np.nan, np.float32), a[1]]).ok
    assert compare_outputs(a, [-a[0], a[1]], min_sqnr_db=-10).ok


def test_compare_outputs_takes_nans_and_infinities_where_the_baseline_has_them_as_agreement() -> None:
    # a BERT export fed random integers as its attention mask returns NaN everywhere, before and after optimizing
    ref = np.array([np.nan, -np.inf, 1.0, 2.0], np.float32)
    assert compare_outputs([ref], [ref.copy()]).ok
    assert compare_outputs([np.full(8, np.nan)], [np.full(8, np.nan)]).ok
    off = compare_outputs([ref], [np.array([np.nan, -np.inf, 1.0, 2.5], np.float32)])
    assert off.max_abs_diff == pytest.approx(0.5) and not off.ok
    moved = compare_outputs([ref], [np.array([1.0, -np.inf, np.nan, 2.0], np.float32)])
    assert not moved.ok and "NaN at 2 position(s)" in moved.detail
    assert not compare_outputs([ref], [np.array([np.nan, np.inf, 1.0, 2.0], np.float32)]).ok
