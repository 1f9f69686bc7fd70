"""EntropyObserver: the clipping threshold that minimises KL divergence, as in TensorRT's calibrator."""
from __future__ import annotations

import math

import numpy as np

from onnxopt.calibration.observers.mse import GridRangeObserver, expected_error, mse_range


MAX_CLIPPED = 1e-3  # the largest fraction of values a threshold may clip
MAX_ERROR_RATIO = 2.0  # the most expected squared error KL may cost, relative to the least (3 dB)


class EntropyObserver(GridRangeObserver):
    """Picks a threshold t on the |value| histogram so that quantizing [0, t] loses the least information
    (KL divergence); the range is [-t, t] when symmetric, else [-t, t] intersected with the observed (min, max).

    [0, t] is quantized into as many levels as the final range gives it: the ``dtype`` grid spreads its steps
    over the whole range, so one-sided data (ReLU, sigmoid) gets all 255 uint8 steps on [0, t] and data
    symmetric about zero half of them. TensorRT's 128 levels are the symmetric int8 case; using them for
    one-sided uint8 data would count twice the real rounding noise and clip far too much.

    KL divergence compares shapes, not magnitudes: it will clip a long tail of large values whose squared
    error outweighs all the rounding noise the narrower grid saves (yolov8n's SiLU outputs lost 60% of their
    range). So a threshold whose expected quantization + clipping error exceeds MAX_ERROR_RATIO times the least
    one (the MSE-optimal range's) is widened to the MSE-optimal range where that is wider. The reference is the
    least error, not the full range's: that one grows with every rarer extreme a larger calibration set brings,
    so more samples would let KL clip ever more (ppocr_rec lost 0.6 dB going from 100 to 1000 samples).
    """

    method = "entropy"

    def range(self) -> tuple[float, float]:
        """The KL-optimal range, widened where its expected error exceeds the full range's (see the class)."""
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
        threshold = min(kl_threshold(counts, self._levels(width, counts.size), first) * width, self.histogram.abs_max())
        lo, hi = self.histogram.range()
        kl = (-threshold, threshold) if self.histogram.symmetric else (max(lo, -threshold), min(hi, threshold))
        return self._guarded(kl)

    def _guarded(self, kl: tuple[float, float]) -> tuple[float, float]:
        """The KL range, widened to the MSE-optimal one if its expected error exceeds MAX_ERROR_RATIO times the least."""
        hist, steps = self.histogram, self.steps
        lo, hi = mse_range(hist, steps)
        # The quantizer widens every range to hold zero; the expected error is that of the range it uses.
        error = expected_error(hist, steps, min(kl[0], 0.0), max(kl[1], 0.0))
        if error <= MAX_ERROR_RATIO * expected_error(hist, steps, lo, hi):
            return kl
        full = hist.range()
        return min(kl[0], max(lo, full[0])), max(kl[1], min(hi, full[1]))

    def _levels(self, width: float, size: int) -> np.ndarray:
        """For thresholds of 1 … size bins, how many quantization levels fall on [0, t]."""
        lo, hi = self.histogram.range()
        t = np.arange(1, size + 1, dtype=np.float64) * width
        # The quantizer widens every range to hold zero, so the grid spans at least [0, t].
        span = 2 * t if self.histogram.symmetric else np.maximum(np.minimum(hi, t), 0.0) - np.minimum(np.maximum(lo, -t), 0.0)
        levels = np.maximum(2, np.round(self.steps * t / np.where(span > 0, span, 1.0)))
        return np.where(span > 0, levels, self.steps).astype(np.int64)  # span 0: all values are 0


def kl_threshold(counts: np.ndarray, levels: int | np.ndarray, min_bins: int = 0) -> int:
    """The number of leading bins (at least ``min_bins``) of ``counts`` whose quantization into ``levels``
    levels (a number, or an array giving the levels for 1, 2, … size bins kept), with everything beyond
    folded into the last kept bin, has the least KL divergence.

    Level k of a threshold of i bins covers bins [k·i // n, (k+1)·i // n); its mass is spread evenly over
    its non-empty bins. The divergence is then a sum over levels, not bins: with P_k the reference mass of
    level k (the folded tail included), Q_k its quantized mass per non-empty bin, T the total and C_i the
    mass inside, KL_i = (Σ_j p_j log p_j − T log T − Σ_k P_k log(Q_k / C_i)) / T. Every candidate then
    costs O(levels) from prefix sums, and all of them are evaluated at once.
    """
    counts = np.asarray(counts, dtype=np.float64)
    size = counts.size
    n_of = np.broadcast_to(np.asarray(levels, dtype=np.int64), (size,))
    i = np.arange(1, size + 1, dtype=np.int64)
    valid = (i >= max(min_bins, 1)) & (i >= n_of)  # fewer bins than levels: the histogram cannot show the rounding
    total = counts.sum()
    if not valid.any() or total == 0:
        return size
    i, n = i[valid], n_of[valid]
    mass = np.concatenate([[0.0], np.cumsum(counts)])  # mass[i] = sum(counts[:i])
    filled = np.concatenate([[0.0], np.cumsum(counts > 0)])
    # Σ p log p over the reference: the kept bins, the last one carrying the tail.
    tail = total - mass[i]
    entropy_part = np.concatenate([[0.0], np.cumsum(_xlogx(counts))])[i - 1] + _xlogx(counts[i - 1] + tail)
    # The last level, in 1-D: it gets the tail, and the tail makes an empty last bin non-empty.
    start = ((n - 1) * i) // n
    kept = mass[i] - mass[start]
    bins = filled[i] - filled[start] + ((counts[i - 1] == 0) & (tail > 0))
    inside = mass[i]
    with np.errstate(divide="ignore"):
        # Reference mass the candidate cannot represent (an empty last level that only the tail fills) costs
        # a large but finite penalty, as if its normalized candidate probability were 1e-12.
        log_q = np.where(kept > 0, np.log(np.where(kept > 0, kept, 1.0) / np.maximum(bins, 1.0)),
                         math.log(1e-12) + np.log(inside))
    level_part = (kept + tail) * log_q
    # The other levels, (candidates × levels) in chunks: level k covers bins [k·i // n, (k+1)·i // n),
    # clamped to the last level's start so padding columns are empty.
    chunk = max(1, (1 << 20) // int(n.max()))
    for a in range(0, i.size, chunk):
        ic, nc = i[a:a + chunk, None], n[a:a + chunk, None]
        edges = np.minimum((np.arange(int(nc.max()), dtype=np.int64) * ic) // nc, start[a:a + chunk, None])
        level_part[a:a + chunk] += np.sum(_xlogy(np.diff(mass[edges]), np.diff(filled[edges])), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = (entropy_part - _xlogx(total) - level_part + total * np.log(inside)) / total
    kl[inside == 0] = np.inf  # nothing inside: no candidate distribution
    return int(i[int(np.argmin(kl))]) if np.isfinite(kl).any() else size


def _xlogy(kept: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """kept · log(kept / bins), 0 where kept is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(kept > 0, kept * np.log(kept / bins), 0.0)


def _xlogx(x: np.ndarray | float) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0)), 0.0)
