"""MSEObserver: the range whose quantization to the chosen integer type has the least mean squared error."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from onnxopt.calibration.observers import DEFAULT_OUTLIER_LIMIT, INTEGER_BITS, grid_steps
from onnxopt.calibration.observers.histogram import HistogramObserver, HistogramRangeObserver

# Per side: the 1-D symmetric search takes every bin edge up to this many, the 2-D asymmetric
# search this many per bound (so at most _CANDIDATES**2 evaluations).
_CANDIDATES = 512


class GridRangeObserver(HistogramRangeObserver):
    """A histogram-range observer whose choice depends on the quantizer's integer grid: ``dtype``, ``symmetric``
    and ``reduce_range`` must match the quantizer's, since they set the number of levels."""

    def __init__(
        self,
        dtype: str = "uint8",
        symmetric: bool = False,
        reduce_range: bool = False,
        bins: int = 2048,
        outlier_limit: float | None = DEFAULT_OUTLIER_LIMIT,
    ) -> None:
        if dtype not in INTEGER_BITS:
            raise ValueError(f"dtype must be one of {', '.join(INTEGER_BITS)}, got {dtype!r}")
        self.dtype = dtype
        self.reduce_range = reduce_range
        self.histogram = HistogramObserver(bins=bins, symmetric=symmetric, outlier_limit=outlier_limit)

    @property
    def steps(self) -> int:
        """The number of quantization steps between the lowest and highest level."""
        return grid_steps(self.dtype, self.histogram.symmetric, self.reduce_range)

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
    def from_state(cls, state: dict[str, Any]) -> GridRangeObserver:
        """Rebuild from state_dict() output."""
        obs = cls(dtype=state["dtype"], reduce_range=state["reduce_range"])
        obs.histogram = HistogramObserver.from_state(state["histogram"])
        return obs


class MSEObserver(GridRangeObserver):
    """Searches the histogram for the range [lo, hi] (lo ≤ 0 ≤ hi, as the quantizer requires)
    minimising expected squared error: values inside add the rounding noise scale²/12, values
    outside their clipping error; symmetric searches [-t, t] only.
    """

    method = "mse"

    def range(self) -> tuple[float, float]:
        """The MSE-optimal range."""
        return mse_range(self.histogram, self.steps)


def mse_range(hist: HistogramObserver, steps: int) -> tuple[float, float]:
    """The range [lo, hi] (lo ≤ 0 ≤ hi; [-t, t] when the histogram is symmetric) whose quantization into
    ``steps`` steps has the least expected squared error on the histogram's values."""
    if hist.abs_max() == 0.0:
        return 0.0, 0.0
    if hist.symmetric:
        t = _candidates(hist.abs_max(), hist.width, 4 * _CANDIDATES)
        lo, hi = -t, t
    else:
        lo = _candidates(min(hist.min, 0.0), hist.width, _CANDIDATES)[:, None]
        hi = _candidates(max(hist.max, 0.0), hist.width, _CANDIDATES)[None, :]
    error = expected_error(hist, steps, lo, hi)
    best = np.unravel_index(int(np.argmin(error)), error.shape)
    return float(np.broadcast_to(lo, error.shape)[best]), float(np.broadcast_to(hi, error.shape)[best])


def expected_error(hist: HistogramObserver, steps: int, lo: np.ndarray | float, hi: np.ndarray | float) -> np.ndarray:
    """The summed squared error of quantizing the histogram's values into ``steps`` steps on [lo, hi] (lo ≤ 0 ≤ hi,
    arrays broadcast): values inside add the rounding noise scale²/12, values outside their clipping error."""
    used = np.flatnonzero(hist.counts)
    counts = hist.counts[used].astype(np.float64)
    centers = np.clip((used + hist.offset + 0.5) * hist.width, hist.min, hist.max)
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    below, below_err = _clip_below(centers, counts, lo)
    above, above_err = _clip_above(centers, counts, hi)
    inside = counts.sum() - below - above
    return inside * ((hi - lo) / steps) ** 2 / 12.0 + below_err + above_err


def _candidates(bound: float, width: float, most: int) -> np.ndarray:
    """Bin edges between 0 (excluded) and bound (included), thinned to at most ``most``."""
    if bound == 0.0:
        return np.zeros(1)
    n = math.ceil(abs(bound) / width)
    k = np.unique(np.linspace(1, n, min(n, most)).round())
    return math.copysign(1.0, bound) * np.minimum(k * width, abs(bound))


def _clip_below(centers: np.ndarray, counts: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each lo: how many values lie below it and their summed squared clipping error."""
    n0, n1, n2 = (np.concatenate([[0.0], np.cumsum(counts * centers**k)]) for k in range(3))
    i = np.searchsorted(centers, lo, side="left")
    return n0[i], np.maximum(lo**2 * n0[i] - 2 * lo * n1[i] + n2[i], 0.0)


def _clip_above(centers: np.ndarray, counts: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each hi: how many values lie above it and their summed squared clipping error."""
    n0, n1, n2 = (np.concatenate([np.cumsum((counts * centers**k)[::-1])[::-1], [0.0]]) for k in range(3))
    i = np.searchsorted(centers, hi, side="right")
    return n0[i], np.maximum(hi**2 * n0[i] - 2 * hi * n1[i] + n2[i], 0.0)
