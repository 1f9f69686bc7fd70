"""EntropyObserver: the clipping threshold that minimises KL divergence, as in TensorRT's calibrator."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from onnxopt.calibration.observers import DEFAULT_OUTLIER_LIMIT, INTEGER_BITS, Observer, grid_steps
from onnxopt.calibration.observers.histogram import HistogramObserver


MAX_CLIPPED = 1e-3  # the largest fraction of values a threshold may clip


class EntropyObserver(Observer):
    """Picks a threshold t on the |value| histogram so that quantizing [0, t] loses the least information
    (KL divergence); the range is [-t, t] when symmetric, else [-t, t] intersected with the observed (min, max).

    [0, t] is quantized into as many levels as the final range gives it: the ``dtype`` grid spreads its steps
    over the whole range, so one-sided data (ReLU, sigmoid) gets all 255 uint8 steps on [0, t] and data
    symmetric about zero half of them. TensorRT's 128 levels are the symmetric int8 case; using them for
    one-sided uint8 data would count twice the real rounding noise and clip far too much.
    """

    method = "entropy"

    def __init__(
        self,
        bins: int = 2048,
        dtype: str = "uint8",
        symmetric: bool = False,
        reduce_range: bool = False,
        outlier_limit: float | None = DEFAULT_OUTLIER_LIMIT,
    ) -> None:
        if dtype not in INTEGER_BITS:
            raise ValueError(f"dtype must be one of {', '.join(INTEGER_BITS)}, got {dtype!r}")
        self.dtype = dtype
        self.reduce_range = reduce_range
        self.histogram = HistogramObserver(bins=bins, symmetric=symmetric, outlier_limit=outlier_limit)

    @property
    def steps(self) -> int:
        """The number of quantization steps across the final range."""
        return grid_steps(self.dtype, self.histogram.symmetric, self.reduce_range)

    def update(self, array: np.ndarray) -> None:
        """Count one batch in the histogram."""
        self.histogram.update(array)

    def merge(self, other: Observer) -> EntropyObserver:
        """Merge the histograms."""
        self._check_mergeable(other)
        assert isinstance(other, EntropyObserver)
        self.histogram.merge(other.histogram)
        return self

    def range(self) -> tuple[float, float]:
        """The KL-optimal range."""
        counts, width = self.histogram.abs_histogram()
        if counts.size == 0:
            return 0.0, 0.0
        if counts.size > 1:
            # Exact zeros (ReLU outputs, padding) are exact at any threshold, but their spike in
            # bin 0 would dominate the divergence and drag the threshold down; as in
            # pytorch-quantization, bin 0 takes its neighbour's count.
            counts[0] = counts[1]
        # KL divergence is blind to clipping when no mass sits near zero (sigmoid outputs in [0.2, 0.75]): folding
        # everything into one bin then looks cheap. So no threshold may clip more than MAX_CLIPPED of the values.
        kept = np.cumsum(counts) >= (1.0 - MAX_CLIPPED) * counts.sum()
        first = int(np.argmax(kept)) + 1
        threshold = min(kl_threshold(counts, self._levels(width), first) * width, self.histogram.abs_max())
        if self.histogram.symmetric:
            return -threshold, threshold
        lo, hi = self.histogram.range()
        return max(lo, -threshold), min(hi, threshold)

    def _levels(self, width: float) -> Callable[[int], int]:
        """For a threshold of i bins, how many quantization levels fall on [0, t]."""
        steps = self.steps
        lo, hi = self.histogram.range()

        def levels(i: int) -> int:
            t = i * width
            # The quantizer widens every range to hold zero, so the grid spans at least [0, t].
            span = 2 * t if self.histogram.symmetric else max(min(hi, t), 0.0) - min(max(lo, -t), 0.0)
            return max(2, round(steps * t / span)) if span > 0 else steps  # span 0: all values are 0

        return levels

    def state_settings(self) -> dict[str, Any]:
        """dtype, reduce_range and the histogram's settings."""
        return {"dtype": self.dtype, "reduce_range": self.reduce_range, **self.histogram.state_settings()}

    def state_dict(self) -> dict[str, Any]:
        """dtype, reduce_range and the histogram's state."""
        return {
            "method": self.method,
            "dtype": self.dtype,
            "reduce_range": self.reduce_range,
            "histogram": self.histogram.state_dict(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EntropyObserver:
        """Rebuild from state_dict() output."""
        obs = cls(dtype=state["dtype"], reduce_range=state["reduce_range"])
        obs.histogram = HistogramObserver.from_state(state["histogram"])
        return obs


def kl_threshold(counts: np.ndarray, levels: int | Callable[[int], int], min_bins: int = 0) -> int:
    """The number of leading bins (at least ``min_bins``) of ``counts`` whose quantization into ``levels``
    levels (a number, or a function of the number of bins kept), with everything beyond folded into the last
    kept bin, has the least KL divergence.
    """
    levels_of = levels if callable(levels) else (lambda i, n=levels: n)
    size = counts.size
    counts = counts.astype(np.float64)
    tail = np.concatenate([np.cumsum(counts[::-1])[::-1], [0.0]])  # tail[i] = sum(counts[i:])
    best, best_kl = size, np.inf
    for i in range(max(min_bins, 1), size + 1):
        n_levels = levels_of(i)
        if i < n_levels:
            continue  # fewer bins than levels: the histogram cannot show the rounding
        sliced = counts[:i]
        reference = sliced.copy()
        reference[-1] += tail[i]
        nonzero = reference > 0
        # Levels split the i bins as evenly as integers allow; each level's mass is spread over
        # its non-empty bins only, so empty bins stay empty in the candidate too.
        starts = np.linspace(0, i, n_levels + 1).astype(np.int64)
        level_mass = np.add.reduceat(sliced, starts[:-1])
        level_bins = np.add.reduceat(nonzero.astype(np.float64), starts[:-1])
        per_bin = np.divide(level_mass, level_bins, out=np.zeros_like(level_mass), where=level_bins > 0)
        candidate = np.repeat(per_bin, np.diff(starts)) * nonzero
        kl = _kl_divergence(reference, candidate)
        if kl < best_kl:
            best, best_kl = i, kl
    return best


def _kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    p = p / p.sum()
    q_total = q.sum()
    if q_total == 0:
        return np.inf
    q = q / q_total
    support = p > 0
    # Mass the candidate cannot represent (clipped outliers in the last bin) costs a large but
    # finite penalty instead of infinity, so thresholds stay comparable.
    q = np.where(q[support] > 0, q[support], 1e-12)
    return float(np.sum(p[support] * np.log(p[support] / q)))
