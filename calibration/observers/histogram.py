"""HistogramObserver: a fixed-size histogram on a power-of-two grid that widens by merging bins.

Bin ``j`` always covers ``[j * 2**e, (j + 1) * 2**e)``. Widening raises ``e`` by one and merges bin
pairs, which is exact, so memory is constant in the number of samples and the state after any
sequence of updates and merges depends only on the multiset of values seen: merging shards gives
exactly the single-pass histogram, whatever the order. The cost is resolution: the data spans
between half and all of the bins.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from onnxopt.calibration.observers import DEFAULT_OUTLIER_LIMIT, Observer, finite_values

# Bins narrower than a float32 ulp of the largest value, or than the smallest float32, carry no
# information; bounding the exponent also keeps constant data from shrinking bins forever.
_FLOAT32_MANTISSA_BITS = 24
_MIN_EXPONENT = -149


class HistogramObserver(Observer):
    """Counts values in ``bins`` bins (a multiple of 4) that widen to cover everything seen.

    ``symmetric`` centres the bins on zero and makes range() symmetric. Values beyond
    ±``outlier_limit`` (float-min attention masks, -1e9 sentinels, infinities) are counted in
    ``outliers`` but never widen the histogram: they would wash every real value into one bin.
    """

    method = "histogram"

    def __init__(
        self, bins: int = 2048, symmetric: bool = False, outlier_limit: float | None = DEFAULT_OUTLIER_LIMIT
    ) -> None:
        if bins < 4 or bins % 4:
            raise ValueError(f"bins must be a positive multiple of 4, got {bins}")
        self.bins = bins
        self.symmetric = symmetric
        self.outlier_limit = outlier_limit
        self.counts = np.zeros(bins, dtype=np.int64)
        self.exponent = _MIN_EXPONENT
        self.offset = -bins // 2 if symmetric else 0
        self.min = np.inf
        self.max = -np.inf
        self.count = 0
        self.outliers = 0

    @property
    def width(self) -> float:
        """The width of one bin."""
        return math.ldexp(1.0, self.exponent)

    def edges(self) -> np.ndarray:
        """The bins + 1 bin edges."""
        return np.ldexp(np.arange(self.offset, self.offset + self.bins + 1, dtype=np.float64), self.exponent)

    def update(self, array: np.ndarray) -> None:
        """Count one batch, widening first if it falls outside the current bins."""
        values = np.asarray(array)
        if values.dtype not in (np.float32, np.float64):
            values = values.astype(np.float64)
        values = values.ravel()
        if values.size == 0:
            return
        lo, hi = float(values.min()), float(values.max())
        limit = math.inf if self.outlier_limit is None else self.outlier_limit
        # NaN, infinities and outliers show in the extremes; only then are the values filtered (a copy).
        if not (math.isfinite(lo) and math.isfinite(hi) and max(-lo, hi) <= limit):
            values, outliers = finite_values(values, self.outlier_limit)
            self.outliers += outliers
            if values.size == 0:
                return
            lo, hi = float(values.min()), float(values.max())
        if lo < self.min or hi > self.max:
            self._widen(min(self.min, lo), max(self.max, hi))
        self.counts += np.bincount(self._bin_index(values), minlength=self.bins)
        self.count += int(values.size)

    def _bin_index(self, values: np.ndarray) -> np.ndarray:
        """Each value's bin: floor(value / width) - offset. Scaling float32 by a power of two ≥ 1 is exact, so
        float32 data stays float32 then (half the memory traffic); other scales go through float64 as the
        values were given, where the power of two is also exact."""
        if values.dtype != np.float32 or not -127 <= self.exponent <= 0:
            values = values.astype(np.float64, copy=False)
        scaled = values * values.dtype.type(math.ldexp(1.0, -self.exponent))
        np.floor(scaled, out=scaled)
        index = scaled.astype(np.intp)
        index -= self.offset
        return index

    def merge(self, other: Observer) -> HistogramObserver:
        """Add another histogram's counts; the result equals a single pass over both streams."""
        self._check_mergeable(other)
        assert isinstance(other, HistogramObserver)
        self.outliers += other.outliers
        if other.count == 0:
            return self
        self._widen(min(self.min, other.min), max(self.max, other.max))
        self.counts += other._rebinned(self.exponent, self.offset)
        self.count += other.count
        return self

    def range(self) -> tuple[float, float]:
        """The exact (min, max) of the values kept; (-m, m) with m = max |value| when symmetric."""
        if self.count == 0:
            return 0.0, 0.0
        if self.symmetric:
            m = max(-self.min, self.max)
            return -m, m
        return float(self.min), float(self.max)

    def quantile(self, q: float) -> float:
        """The q-quantile (0 ≤ q ≤ 1) of the values, interpolated linearly inside a bin."""
        return histogram_quantile(self.counts, self.edges(), q, self.min, self.max)

    def abs_histogram(self) -> tuple[np.ndarray, float]:
        """Counts of |value| on bins [k*w, (k+1)*w) for k = 0 .. last non-empty, and w."""
        index = np.arange(self.offset, self.offset + self.bins)
        # The grid is symmetric about zero, so bin j < 0 folds exactly onto bin -j-1.
        folded = np.where(index >= 0, index, -index - 1)
        used = self.counts > 0
        if not used.any():
            return np.zeros(0, dtype=np.int64), self.width
        size = int(folded[used].max()) + 1
        counts = np.bincount(folded[used], weights=self.counts[used], minlength=size)
        return counts.astype(np.int64), self.width

    def abs_max(self) -> float:
        """The largest |value| kept (0.0 before any value)."""
        return 0.0 if self.count == 0 else max(-float(self.min), float(self.max))

    def state_settings(self) -> dict[str, Any]:
        """bins, symmetric and outlier_limit."""
        return {"bins": self.bins, "symmetric": self.symmetric, "outlier_limit": self.outlier_limit}

    def state_dict(self) -> dict[str, Any]:
        """Settings, the grid (exponent, offset), the counts and the exact min/max/count."""
        return {
            "method": self.method,
            **self.state_settings(),
            "exponent": self.exponent,
            "offset": self.offset,
            "counts": self.counts.copy(),
            "min": self.min,
            "max": self.max,
            "count": self.count,
            "outliers": self.outliers,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> HistogramObserver:
        """Rebuild from state_dict() output."""
        obs = cls(bins=state["bins"], symmetric=state["symmetric"], outlier_limit=state["outlier_limit"])
        obs.exponent, obs.offset = int(state["exponent"]), int(state["offset"])
        obs.counts = np.asarray(state["counts"], dtype=np.int64).copy()
        obs.min, obs.max = float(state["min"]), float(state["max"])
        obs.count, obs.outliers = int(state["count"]), int(state["outliers"])
        return obs

    def _fits(self, exponent: int, lo: float, hi: float) -> bool:
        first = math.floor(math.ldexp(lo, -exponent))
        last = math.floor(math.ldexp(hi, -exponent))
        if self.symmetric:
            return first >= -self.bins // 2 and last < self.bins // 2
        return last - first < self.bins

    def _needed_exponent(self, lo: float, hi: float) -> int:
        # The smallest exponent whose grid holds [lo, hi]; it only grows as data is added, which
        # is what makes the final grid independent of the order of updates and merges.
        peak = max(-lo, hi)
        floor = _MIN_EXPONENT if peak == 0 else max(_MIN_EXPONENT, math.frexp(peak)[1] - _FLOAT32_MANTISSA_BITS)
        span = 2 * peak if self.symmetric else hi - lo
        exponent = floor if span == 0 else max(floor, math.floor(math.log2(span / self.bins)) - 1)
        while not self._fits(exponent, lo, hi):
            exponent += 1
        return exponent

    def _widen(self, lo: float, hi: float) -> None:
        exponent = max(self.exponent, self._needed_exponent(lo, hi))
        offset = -self.bins // 2 if self.symmetric else math.floor(math.ldexp(lo, -exponent))
        self.counts = self._rebinned(exponent, offset)
        self.exponent, self.offset = exponent, offset
        self.min, self.max = lo, hi

    def _rebinned(self, exponent: int, offset: int) -> np.ndarray:
        """These counts on the coarser-or-equal grid (exponent, offset)."""
        if exponent == self.exponent and offset == self.offset:
            return self.counts.copy()
        used = np.flatnonzero(self.counts)
        # |index| < 2**26 by the exponent floor, so shifting by 62 already maps everything to 0/-1.
        shift = min(exponent - self.exponent, 62)
        index = np.right_shift(used + self.offset, shift) - offset
        return np.bincount(index, weights=self.counts[used], minlength=self.bins).astype(np.int64)


class HistogramRangeObserver(Observer):
    """Base of the observers that choose a range from one HistogramObserver, which takes their updates and merges."""

    histogram: HistogramObserver

    def update(self, array: np.ndarray) -> None:
        """Count one batch in the histogram."""
        self.histogram.update(array)

    def merge(self, other: Observer) -> HistogramRangeObserver:
        """Merge the histograms."""
        self._check_mergeable(other)
        assert isinstance(other, HistogramRangeObserver)
        self.histogram.merge(other.histogram)
        return self


def histogram_quantile(counts: np.ndarray, edges: np.ndarray, q: float, lo: float, hi: float) -> float:
    """The q-quantile of a histogram, interpolated inside a bin and clamped to the exact [lo, hi]."""
    total = int(counts.sum())
    if total == 0:
        return 0.0
    cumulative = np.cumsum(counts)
    target = q * total
    i = min(int(np.searchsorted(cumulative, target, side="left")), len(counts) - 1)
    before = cumulative[i - 1] if i > 0 else 0
    fraction = (target - before) / counts[i] if counts[i] else 0.0
    value = edges[i] + fraction * (edges[i + 1] - edges[i])
    # The exact extremes are known, so the interpolated tails never step outside them.
    return float(min(max(value, lo), hi))
