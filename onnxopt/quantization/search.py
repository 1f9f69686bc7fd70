"""Accuracy-aware mode: keep the most sensitive quantized nodes float until the output SQNR reaches a target.

Sensitivity is measured per node: the model with only that node quantized, scored on the few held-out samples
on which the fully quantized model errs most (on the others every node looks harmless).
Quantization noise from different nodes adds up roughly in power, so the nodes are ranked by the noise
each adds alone, and the search looks for the shortest prefix of that ranking which, set back to float,
reaches the target: it starts from as many nodes as the additive estimate (each node's share of the measured
total) says are needed, doubles the count while the target is missed, then bisects between the last count
that missed and the first that reached it, measuring the real SQNR at every count it tries (noise does not
add exactly, so the estimate alone over- or undershoots). The target counts as reached when a lower bound
of the SQNR on samples like the held-out ones reaches it (Evaluator.sqnr with bound=True), not the point
estimate: on a few samples the pooled SQNR is often carried by one or two of them, and a search stopped on
it does not generalize.
"""
from __future__ import annotations

import logging
import math
from typing import Callable, NamedTuple

from onnxopt.ir import Model
from onnxopt.quantization.evaluate import Evaluator
from onnxopt.quantization.report import SearchStep

logger = logging.getLogger(__name__)


class Built(NamedTuple):
    """A quantized candidate: the model, its quantized compute nodes and its quantized data-movement nodes."""

    model: Model
    compute: list[str]
    moving: list[str]


Build = Callable[[frozenset[str]], Built]
SENSITIVITY_SAMPLES = 16


def search_accuracy(
    build: Build, current: Built, keep_float: frozenset[str], evaluator: Evaluator, target_db: float
) -> tuple[Built, frozenset[str], list[SearchStep]]:
    """The candidate meeting `target_db` with the fewest compute nodes kept float (a prefix of the
    sensitivity ranking), the nodes kept float, and one step per measured candidate (the nodes it kept float)."""
    sqnr = evaluator.sqnr(current.model, bound=True)
    units = current.compute
    if sqnr >= target_db or not units:
        return current, keep_float, []
    everything = keep_float | frozenset(units)
    probe = evaluator.noisiest(current.model, SENSITIVITY_SAMPLES)  # ranking only needs rough numbers
    noise = {}
    for unit in units:
        noise[unit] = _noise(probe.sqnr(build(everything - {unit}).model))
        logger.info("sensitivity of %s: %.1f dB alone", unit, -10 * math.log10(noise[unit]) if noise[unit] > 0 else math.inf)
    ranked = sorted(units, key=lambda u: noise[u], reverse=True)
    total = _noise(probe.sqnr(current.model))
    allowed = 10 ** (-target_db / 10)
    # Noises rarely add exactly; scale each node's share so the shares sum to the measured total.
    norm = total / sum(noise.values()) if sum(noise.values()) > 0 else 0.0
    first = 0
    estimate = total
    while first < len(ranked) and estimate > allowed:
        estimate -= noise[ranked[first]] * norm
        first += 1
    first = max(first, 1)
    steps: list[SearchStep] = []

    def measure(count: int) -> tuple[Built, float]:
        candidate = build(keep_float | frozenset(ranked[:count]))
        sqnr = evaluator.sqnr(candidate.model, bound=True)
        steps.append(SearchStep(tuple(ranked[:count]), sqnr))
        return candidate, sqnr

    missed, count = 0, first
    while True:
        candidate, sqnr = measure(count)
        if sqnr >= target_db:
            break
        if count == len(ranked):  # the target is out of reach even with every ranked node float
            return candidate, keep_float | frozenset(ranked), steps
        missed, count = count, min(2 * count, len(ranked))
    reached, best = count, candidate
    while reached - missed > 1:
        middle = (missed + reached) // 2
        candidate, sqnr = measure(middle)
        if sqnr >= target_db:
            reached, best = middle, candidate
        else:
            missed = middle
    return best, keep_float | frozenset(ranked[:reached]), steps


def _noise(sqnr_db: float) -> float:
    """Noise power relative to the signal for an SQNR in dB."""
    if math.isnan(sqnr_db):
        return 0.0
    return 0.0 if sqnr_db == math.inf else 10 ** (-sqnr_db / 10)
