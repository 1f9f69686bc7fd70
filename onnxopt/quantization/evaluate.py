"""Accuracy of a quantized model against the float one on held-out samples: SQNR, cosine, top-1 agreement."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import onnxruntime as ort

from onnxopt.ir import Model, serialize


@dataclass(frozen=True)
class OutputAgreement:
    """How one output of the quantized model agrees with the float model's over all held-out samples.

    `top1` is the fraction of rows whose argmax over the last axis matches (None when the last axis has
    fewer than 2 entries).
    """

    name: str
    sqnr_db: float
    cosine: float
    top1: float | None


def session(model: Model | bytes, threads: int = 0, optimize: bool = True) -> ort.InferenceSession:
    """A CPU session with ORT's full optimizations (as deployed) unless optimize=False."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    data = serialize(model) if isinstance(model, Model) else model
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


class Evaluator:
    """Runs the float model once on the held-out samples, then scores candidate models against it."""

    def __init__(self, reference: Model | bytes, samples: Sequence[Mapping[str, np.ndarray]], threads: int = 0) -> None:
        self.samples = [dict(s) for s in samples]
        self.threads = threads
        ref = session(reference, threads)
        self.names = [o.name for o in ref.get_outputs()]
        self.reference = [ref.run(self.names, s) for s in self.samples]

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

    def sqnr(self, candidate: Model | bytes, limit: int | None = None) -> float:
        """The worst output SQNR in dB (inf when identical; nan without samples), on the first `limit` samples."""
        scores = [a.sqnr_db for a in self.evaluate(candidate, limit)]
        return min(scores) if scores else math.nan


def _agreement(name: str, refs: list[np.ndarray], outs: list[np.ndarray]) -> OutputAgreement:
    signal = noise = dot = out_power = 0.0
    hits = rows = 0
    for ref, out in zip(refs, outs):
        r = np.asarray(ref, dtype=np.float64)
        o = np.asarray(out, dtype=np.float64)
        signal += float(np.sum(r * r))
        noise += float(np.sum((r - o) ** 2))
        dot += float(np.sum(r * o))
        out_power += float(np.sum(o * o))
        if r.ndim >= 1 and r.shape[-1] >= 2 and r.size:
            a = np.argmax(r.reshape(-1, r.shape[-1]), axis=-1)
            b = np.argmax(o.reshape(-1, o.shape[-1]), axis=-1)
            hits += int(np.sum(a == b))
            rows += a.size
    if noise == 0.0:
        sqnr = math.inf
    elif signal == 0.0:
        sqnr = -math.inf
    else:
        sqnr = 10.0 * math.log10(signal / noise)
    denom = math.sqrt(signal * out_power)
    cosine = dot / denom if denom > 0 else (1.0 if signal == out_power == 0.0 else 0.0)
    return OutputAgreement(name, sqnr, cosine, hits / rows if rows else None)
