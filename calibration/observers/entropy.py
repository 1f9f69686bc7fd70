"""EntropyObserver: the clipping threshold that minimises KL divergence, as in TensorRT's calibrator."""
from __future__ import annotations

from typing import Any

import numpy as np

from onnxopt.calibration.observers import DEFAULT_OUTLIER_LIMIT, Observer
from onnxopt.calibration.observers.histogram import HistogramObserver


MAX_CLIPPED = 1e-3  # the largest fraction of values a threshold may clip


class EntropyObserver(Observer):
    """Picks a threshold t on the |value| histogram so that quantizing [0, t] into
    ``quantized_bins`` levels loses the least information (KL divergence); the range is [-t, t]
    when symmetric, else [-t, t] intersected with the observed (min, max).
    """

    method = "entropy"

    def __init__(
        self,
        bins: int = 2048,
        quantized_bins: int = 128,
        symmetric: bool = False,
        outlier_limit: float | None = DEFAULT_OUTLIER_LIMIT,
    ) -> None:
        if quantized_bins < 2:
            raise ValueError(f"quantized_bins must be at least 2, got {quantized_bins}")
        self.quantized_bins = quantized_bins
        self.histogram = HistogramObserver(bins=bins, symmetric=symmetric, outlier_limit=outlier_limit)

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
        threshold = min(kl_threshold(counts, self.quantized_bins, first) * width, self.histogram.abs_max())
        if self.histogram.symmetric:
            return -threshold, threshold
        lo, hi = self.histogram.range()
        return max(lo, -threshold), min(hi, threshold)

    def state_settings(self) -> dict[str, Any]:
        """quantized_bins and the histogram's settings."""
        return {"quantized_bins": self.quantized_bins, **self.histogram.state_settings()}

    def state_dict(self) -> dict[str, Any]:
        """quantized_bins and the histogram's state."""
        return {"method": self.method, "quantized_bins": self.quantized_bins, "histogram": self.histogram.state_dict()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EntropyObserver:
        """Rebuild from state_dict() output."""
        obs = cls(quantized_bins=state["quantized_bins"])
        obs.histogram = HistogramObserver.from_state(state["histogram"])
        return obs


def kl_threshold(counts: np.ndarray, quantized_bins: int, min_bins: int = 0) -> int:
    """The number of leading bins (at least ``min_bins``) of ``counts`` whose quantization into ``quantized_bins``
    levels, with everything beyond folded into the last kept bin, has the least KL divergence.
    """
    size = counts.size
    if size <= max(quantized_bins, min_bins):
        return size
    counts = counts.astype(np.float64)
    tail = np.concatenate([np.cumsum(counts[::-1])[::-1], [0.0]])  # tail[i] = sum(counts[i:])
    best, best_kl = size, np.inf
    for i in range(max(quantized_bins, min_bins), size + 1):
        sliced = counts[:i]
        reference = sliced.copy()
        reference[-1] += tail[i]
        nonzero = reference > 0
        # Levels split the i bins as evenly as integers allow; each level's mass is spread over
        # its non-empty bins only, so empty bins stay empty in the candidate too.
        starts = np.linspace(0, i, quantized_bins + 1).astype(np.int64)
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
