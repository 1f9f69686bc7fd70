"""PercentileObserver: the range that covers a given percentile of the values seen."""
from __future__ import annotations

from typing import Any

import numpy as np

from onnxopt.calibration.observers import DEFAULT_OUTLIER_LIMIT
from onnxopt.calibration.observers.histogram import HistogramObserver, HistogramRangeObserver, histogram_quantile


class PercentileObserver(HistogramRangeObserver):
    """Range at ``percentile`` (e.g. 99.999) of the histogram: [-t, t] with t the percentile of
    |value| when symmetric, else the (100 - percentile, percentile) pair of the signed values.
    """

    method = "percentile"

    def __init__(
        self,
        percentile: float = 99.999,
        bins: int = 2048,
        symmetric: bool = False,
        outlier_limit: float | None = DEFAULT_OUTLIER_LIMIT,
    ) -> None:
        if not 50.0 < percentile <= 100.0:
            raise ValueError(f"percentile must be in (50, 100], got {percentile}")
        self.percentile = percentile
        self.histogram = HistogramObserver(bins=bins, symmetric=symmetric, outlier_limit=outlier_limit)

    def range(self) -> tuple[float, float]:
        """The percentile range."""
        hist = self.histogram
        if hist.count == 0:
            return 0.0, 0.0
        q = self.percentile / 100.0
        if hist.symmetric:
            counts, width = hist.abs_histogram()
            edges = np.arange(counts.size + 1, dtype=np.float64) * width
            t = histogram_quantile(counts, edges, q, 0.0, hist.abs_max())
            return -t, t
        return hist.quantile(1.0 - q), hist.quantile(q)

    def state_settings(self) -> dict[str, Any]:
        """percentile and the histogram's settings."""
        return {"percentile": self.percentile, **self.histogram.state_settings()}

    def state_dict(self) -> dict[str, Any]:
        """percentile and the histogram's state."""
        return {"method": self.method, "percentile": self.percentile, "histogram": self.histogram.state_dict()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PercentileObserver:
        """Rebuild from state_dict() output."""
        obs = cls(percentile=state["percentile"])
        obs.histogram = HistogramObserver.from_state(state["histogram"])
        return obs
