"""Accuracy of a quantized model against the float one on held-out samples: SQNR, cosine, top-1 agreement."""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import onnxruntime as ort

from onnxopt.errors import DataError, ModelLoadError, ort_failure
from onnxopt.ir import Model, serialize

# A one-sided 99% bound: the accuracy search tests several counts and keeps the smallest that passes, so a
# 95% bound split over its ~5 tests (at 95%, PP-OCR det stopped at a 30.1 dB bound and scored 29.96 dB on
# other samples).
BOUND_QUANTILE = 0.01
BOOTSTRAP_ROUNDS = 500


@dataclass(frozen=True)
class OutputAgreement:
    """How one output of the quantized model agrees with the float model's over all held-out samples.

    `top1` is the fraction of rows whose argmax over the last axis matches (None when the last axis has
    fewer than 2 entries). `sqnr_low_db` is a lower bound on the SQNR over samples like these: the
    BOUND_QUANTILE of the SQNR over bootstrap resamplings of the held-out samples (a few samples with large
    errors make it much lower than `sqnr_db`).
    """

    name: str
    sqnr_db: float
    cosine: float
    top1: float | None
    sqnr_low_db: float = math.nan


def session(model: Model | bytes, threads: int = 0, optimize: bool = True) -> ort.InferenceSession:
    """A CPU session with ORT's full optimizations (as deployed) unless optimize=False."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 4  # a failing run raises with ORT's message; its error log would only repeat it
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    data = serialize(model) if isinstance(model, Model) else model
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT's errors: an op it does not know (a custom op without its library), say
        raise ModelLoadError(f"scoring runs the model in onnxruntime, which cannot load it: {ort_failure(exc)}") from None


def _run_float(ref: ort.InferenceSession, names: list[str], sample: dict[str, np.ndarray], index: int) -> list:
    try:
        return ref.run(names, sample)
    except Exception as exc:  # ORT's errors: the float model cannot run on this sample (a shape it cannot take)
        raise DataError(f"held-out sample {index}: onnxruntime could not run the float model on it: "
                        f"{ort_failure(exc)}") from None


class Evaluator:
    """Runs the float model once on the held-out samples, then scores candidate models against it."""

    def __init__(self, reference: Model | bytes, samples: Sequence[Mapping[str, np.ndarray]], threads: int = 0) -> None:
        self.samples = [dict(s) for s in samples]
        self.threads = threads
        ref = session(reference, threads)
        self.names = [o.name for o in ref.get_outputs()]
        self.reference = [_run_float(ref, self.names, sample, i) for i, sample in enumerate(self.samples)]

    def evaluate(self, candidate: Model | bytes, limit: int | None = None) -> list[OutputAgreement]:
        """Per-output agreement of `candidate` with the float model (float outputs only) on the first
        `limit` samples (all by default)."""
        samples = self.samples[:limit]
        if not samples:
            return []
        sess = session(candidate, self.threads)
        got = [sess.run(self.names, s) for s in samples]
        result = []
        for k, name in enumerate(self.names):
            refs = [r[k] for r in self.reference[: len(samples)]]
            outs = [g[k] for g in got]
            if not np.issubdtype(np.asarray(refs[0]).dtype, np.floating):
                continue
            result.append(_agreement(name, refs, outs))
        return result

    def noisiest(self, candidate: Model | bytes, count: int) -> Evaluator:
        """An evaluator over the `count` samples on which `candidate` errs most, relative to each float
        output's power over all samples (they carry the pooled SQNR; saturated samples say little)."""
        sess = session(candidate, self.threads)
        got = [sess.run(self.names, s) for s in self.samples]
        share = np.zeros(len(self.samples))
        for k in range(len(self.names)):
            refs = [np.asarray(r[k], dtype=np.float64) for r in self.reference]
            if not refs or not np.issubdtype(np.asarray(self.reference[0][k]).dtype, np.floating):
                continue
            power = sum(float(np.sum(r * r)) for r in refs) or 1.0
            errors = [float(np.sum((r - np.asarray(g[k], dtype=np.float64)) ** 2)) / power for r, g in zip(refs, got)]
            share = np.maximum(share, errors)
        chosen = sorted(np.argsort(-share, kind="stable")[:count])
        subset = copy.copy(self)  # the float model's outputs are kept, not recomputed
        subset.samples = [self.samples[i] for i in chosen]
        subset.reference = [self.reference[i] for i in chosen]
        return subset

    def sqnr(self, candidate: Model | bytes, limit: int | None = None, bound: bool = False) -> float:
        """The worst output SQNR in dB (inf when identical; nan without samples), on the first `limit` samples;
        bound=True: the worst output's bootstrap lower bound instead."""
        scores = [a.sqnr_low_db if bound else a.sqnr_db for a in self.evaluate(candidate, limit)]
        return min(scores) if scores else math.nan


def _agreement(name: str, refs: list[np.ndarray], outs: list[np.ndarray]) -> OutputAgreement:
    dot = out_power = 0.0
    hits = rows = 0
    signals, noises = np.zeros(len(refs)), np.zeros(len(refs))
    for i, (ref, out) in enumerate(zip(refs, outs)):
        r = np.asarray(ref, dtype=np.float64)
        o = np.asarray(out, dtype=np.float64)
        signals[i] = np.sum(r * r)
        noises[i] = np.sum((r - o) ** 2)
        dot += float(np.sum(r * o))
        out_power += float(np.sum(o * o))
        if r.ndim >= 1 and r.shape[-1] >= 2 and r.size:
            a = np.argmax(r.reshape(-1, r.shape[-1]), axis=-1)
            b = np.argmax(o.reshape(-1, o.shape[-1]), axis=-1)
            hits += int(np.sum(a == b))
            rows += a.size
    signal = float(np.sum(signals))
    denom = math.sqrt(signal * out_power)
    cosine = dot / denom if denom > 0 else (1.0 if signal == out_power == 0.0 else 0.0)
    return OutputAgreement(name, _sqnr(signal, float(np.sum(noises))), cosine, hits / rows if rows else None,
                           _sqnr_lower_bound(signals, noises))


def _sqnr(signal: float, noise: float) -> float:
    if noise == 0.0:
        return math.inf
    return -math.inf if signal == 0.0 else 10.0 * math.log10(signal / noise)


def _sqnr_lower_bound(signals: np.ndarray, noises: np.ndarray) -> float:
    """BOUND_QUANTILE of the pooled SQNR over bootstrap resamplings of the samples (fixed seed: deterministic)."""
    picks = np.random.default_rng(0).integers(0, len(signals), size=(BOOTSTRAP_ROUNDS, len(signals)))
    scores = [_sqnr(float(s), float(n)) for s, n in zip(signals[picks].sum(axis=1), noises[picks].sum(axis=1))]
    return float(np.quantile(scores, BOUND_QUANTILE, method="lower"))
