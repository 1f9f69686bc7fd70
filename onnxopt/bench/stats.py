"""Latency statistics, before/after ratios with their spread, and output comparison (max |diff|, SQNR)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

NS_PER_MS = 1e6


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one model's latencies, in milliseconds; throughput in runs per second."""

    count: int
    mean_ms: float
    median_ms: float
    p90_ms: float
    p99_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    throughput: float


@dataclass(frozen=True)
class Ratio:
    """Latency ratio to the baseline (median / baseline median) and the min–max of per-round ratios."""

    median: float
    low: float
    high: float


@dataclass(frozen=True)
class OutputComparison:
    """How a model's outputs differ from the baseline's: worst max |diff| and SQNR over all outputs."""

    max_abs_diff: float
    sqnr_db: float
    ok: bool
    detail: str = ""


def summarize(times_ns: Sequence[int]) -> LatencyStats:
    """Statistics of raw latencies in nanoseconds (percentiles interpolate linearly; std is the sample std)."""
    if len(times_ns) == 0:
        raise ValueError("no timings to summarize")
    ms = np.asarray(times_ns, dtype=np.float64) / NS_PER_MS
    mean = float(ms.mean())
    p50, p90, p99 = (float(v) for v in np.percentile(ms, [50, 90, 99]))
    return LatencyStats(
        count=int(ms.size),
        mean_ms=mean,
        median_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        std_ms=float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
        min_ms=float(ms.min()),
        max_ms=float(ms.max()),
        throughput=1000.0 / mean if mean > 0 else math.inf,
    )


def ratio_to_baseline(times_ns: Sequence[int], baseline_ns: Sequence[int]) -> Ratio:
    """Ratio of medians, with the spread of the ratios of the same round's pair (interleaved timings)."""
    t = np.asarray(times_ns, dtype=np.float64)
    b = np.asarray(baseline_ns, dtype=np.float64)
    if t.shape != b.shape or t.size == 0:
        raise ValueError("ratios need the same non-zero number of rounds for both models")
    per_round = t / np.maximum(b, 1.0)
    return Ratio(
        median=float(np.median(t) / max(float(np.median(b)), 1.0)),
        low=float(per_round.min()),
        high=float(per_round.max()),
    )


def sqnr_db(reference: np.ndarray, actual: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio of ``actual`` against ``reference`` in dB (inf when equal)."""
    ref = np.asarray(reference, dtype=np.float64)
    noise = float(np.sum(np.square(ref - np.asarray(actual, dtype=np.float64))))
    signal = float(np.sum(np.square(ref)))
    if math.isnan(noise) or math.isnan(signal):
        return math.nan
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def compare_outputs(
    reference: Sequence[np.ndarray], actual: Sequence[np.ndarray], min_sqnr_db: float = 20.0
) -> OutputComparison:
    """Compare output lists position by position; ``ok`` is False on any shape change, NaNs where the baseline has
    none (or none where it has them), or SQNR below the bar."""
    if len(reference) != len(actual):
        return OutputComparison(math.inf, -math.inf, False, f"{len(actual)} outputs, baseline has {len(reference)}")
    worst_diff, worst_sqnr = 0.0, math.inf
    for i, (ref, out) in enumerate(zip(reference, actual)):
        ref, out = np.asarray(ref), np.asarray(out)
        if ref.shape != out.shape:
            detail = f"output {i} has shape {out.shape}, baseline {ref.shape}"
            return OutputComparison(math.inf, -math.inf, False, detail)
        if ref.size == 0:
            continue
        if ref.dtype.kind in "OSUV":
            if not np.array_equal(ref, out):
                return OutputComparison(math.inf, -math.inf, False, f"output {i} (strings) differs")
            continue
        ref, out = ref.astype(np.float64), out.astype(np.float64)
        nan = np.isnan(ref)
        if not np.array_equal(nan, np.isnan(out)):
            detail = f"output {i} is NaN at {int(np.sum(nan != np.isnan(out)))} position(s) where the other is not"
            return OutputComparison(math.nan, math.nan, False, detail)
        # NaN where the baseline is NaN, and the same infinity where it is infinite, is agreement
        compared = ~nan & ~(np.isinf(ref) & (ref == out))
        if not compared.any():
            continue
        ref, out = ref[compared], out[compared]
        worst_diff = max(worst_diff, float(np.max(np.abs(ref - out))))
        s = sqnr_db(ref, out)
        worst_sqnr = s if math.isnan(s) else min(worst_sqnr, s)
    ok = worst_sqnr >= min_sqnr_db
    detail = "" if ok else f"SQNR {worst_sqnr:.1f} dB is below {min_sqnr_db:g} dB"
    return OutputComparison(worst_diff, worst_sqnr, ok, detail)
