"""Accuracy-aware mode: keep the most sensitive quantized nodes float until the output SQNR reaches a target.

Sensitivity is measured per node: the model with only that node quantized, scored on the few held-out samples
on which the fully quantized model errs most (on the others every node looks harmless).
Quantization noise from different nodes adds up roughly in power, so the nodes are ranked by the noise
each adds alone; the greedy search sets the noisiest ones back to float, first as many as the additive
estimate (each node's share of the measured total) says are needed, then one more at a time, measuring
the real SQNR after every change. The target counts as reached when a lower bound of the SQNR on samples
like the held-out ones reaches it (Evaluator.sqnr with bound=True), not the point estimate: on a few samples
the pooled SQNR is often carried by one or two of them, and a search stopped on it does not generalize.
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
SENSITIVITY_SAMPLES = 4


def search_accuracy(
    build: Build, current: Built, keep_float: frozenset[str], evaluator: Evaluator, target_db: float
) -> tuple[Built, frozenset[str], list[SearchStep]]:
    """The candidate meeting `target_db` with the fewest compute nodes kept float (greedy), the nodes
    kept float, and one step per measurement."""
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
    keep = keep_float
    count, previous = first, 0
    while count <= len(ranked):
        keep = keep_float | frozenset(ranked[:count])
        current = build(keep)
        sqnr = evaluator.sqnr(current.model, bound=True)
        steps.append(SearchStep(tuple(ranked[previous:count]), sqnr))
        if sqnr >= target_db:
            break
        previous, count = count, count + 1
    return current, keep, steps


def _noise(sqnr_db: float) -> float:
    """Noise power relative to the signal for an SQNR in dB."""
    if math.isnan(sqnr_db):
        return 0.0
    return 0.0 if sqnr_db == math.inf else 10 ** (-sqnr_db / 10)
