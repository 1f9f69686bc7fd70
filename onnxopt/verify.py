"""Numerical equivalence of a model and its optimized form, and bisection to the pass that broke it."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from onnxopt.ir import Model, serialize
from onnxopt.ir.interface import input_specs
from onnxopt.passmanager import PassContext, PassRecord, make_pass

Feeds = dict[str, np.ndarray]


@dataclass
class OutputCheck:
    """One output's comparison on one sample."""

    name: str
    max_abs_diff: float
    tolerance: float
    sqnr_db: float
    ok: bool
    detail: str = ""


@dataclass
class VerifyReport:
    """Whether every output of every sample matched, with the worst check per output."""

    ok: bool
    samples: int
    checks: list[OutputCheck]
    culprit: PassRecord | None = None
    culprit_index: int | None = None
    culprit_nodes: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # float outputs without a finite value on any sample

    def summary(self) -> str:
        """One line per failing output (or a single 'outputs match' line, naming outputs it could not check)."""
        if self.ok:
            line = f"verified: outputs match on {self.samples} input sample(s)"
            if self.unchecked:
                line += (f", but {', '.join(self.unchecked)} is NaN or infinite everywhere on them, so its values went "
                         "unchecked: give real inputs with --data")
            return line
        lines = [f"{c.name}: {c.detail}" for c in self.checks if not c.ok]
        if self.culprit is not None:
            nodes = ", ".join(self.culprit_nodes[:8]) or "no node removed"
            lines.append(
                f"first bad pass application: {self.culprit.name} (#{self.culprit_index + 1}, iteration "
                f"{self.culprit.iteration}); nodes it rewrote: {nodes}"
            )
        return "\n".join(lines)


def sample_feeds(
    model: Model,
    count: int = 3,
    data: str | os.PathLike | Iterable[Mapping[str, np.ndarray]] | None = None,
    dims: Mapping[str, int] | None = None,
    seed: int = 0,
) -> list[Feeds]:
    """Input samples: `count` from a data directory/iterable, else random ones (dynamic dims from `dims`, else 1)."""
    from onnxopt.bench.inputs import default_shapes, random_feeds

    specs = input_specs(model)
    if data is not None:
        from onnxopt.calibration.datasets import load_samples

        return [dict(s) for s in load_samples(data, specs, count)]
    shapes = default_shapes(specs, dims)
    return [random_feeds(specs, shapes, seed=seed + i) for i in range(count)]


def run_model(model: Model | bytes, feeds_list: Sequence[Feeds]) -> list[dict[str, np.ndarray]]:
    """Outputs of the model on each sample, with ONNX Runtime's own graph rewrites off."""
    from onnxopt.testing import make_session

    session = make_session(model if isinstance(model, bytes) else serialize(model))
    names = [o.name for o in session.get_outputs()]
    return [dict(zip(names, session.run(names, feeds))) for feeds in feeds_list]


def compare_outputs(
    reference: Sequence[Mapping[str, np.ndarray]],
    actual: Sequence[Mapping[str, np.ndarray]],
    rtol: float = 1e-3,
    atol: float = 1e-4,
    min_sqnr_db: float | None = None,
) -> VerifyReport:
    """Exact for integers; floats within rtol and atol × max|reference|, NaN/Inf in the same places.

    With min_sqnr_db (quantized models) floats pass on SQNR instead of element tolerance.
    """
    worst: dict[str, OutputCheck] = {}
    unchecked: dict[str, None] = {}
    checked: set[str] = set()
    for ref_outputs, act_outputs in zip(reference, actual):
        for name, ref in ref_outputs.items():
            ref = np.asarray(ref)
            if ref.dtype.kind in "fc" and ref.size and not np.isfinite(ref).any():
                unchecked[name] = None
            else:
                checked.add(name)
            check = _compare_one(name, ref, act_outputs.get(name), rtol, atol, min_sqnr_db)
            previous = worst.get(name)
            if previous is None or (previous.ok and not check.ok) or (
                previous.ok == check.ok and check.max_abs_diff > previous.max_abs_diff
            ):
                worst[name] = check
    checks = list(worst.values())
    return VerifyReport(all(c.ok for c in checks), len(reference), checks,
                        unchecked=[name for name in unchecked if name not in checked])


def _compare_one(name, ref, out, rtol, atol, min_sqnr_db) -> OutputCheck:
    if out is None:
        return OutputCheck(name, math.inf, 0.0, -math.inf, False, "output missing")
    out = np.asarray(out)
    if out.shape != ref.shape or out.dtype != ref.dtype:
        return OutputCheck(name, math.inf, 0.0, -math.inf, False,
                           f"{out.dtype}{list(out.shape)} instead of {ref.dtype}{list(ref.shape)}")
    if ref.dtype.kind not in "fc":
        equal = bool(np.array_equal(ref, out))
        return OutputCheck(name, 0.0 if equal else math.inf, 0.0, math.inf if equal else -math.inf, equal,
                           "" if equal else "integer/bool/string values differ")
    ref64, out64 = ref.astype(np.float64), out.astype(np.float64)
    finite = np.isfinite(ref64)
    if not np.array_equal(finite, np.isfinite(out64)) or not np.array_equal(np.isnan(ref64), np.isnan(out64)):
        return OutputCheck(name, math.inf, 0.0, -math.inf, False, "NaN/Inf in different places")
    if not np.array_equal(ref64[~finite & ~np.isnan(ref64)], out64[~finite & ~np.isnan(out64)]):
        return OutputCheck(name, math.inf, 0.0, -math.inf, False, "infinities of different sign")
    scale = float(np.max(np.abs(ref64[finite]), initial=0.0))
    diff = np.abs(ref64[finite] - out64[finite])
    max_diff = float(np.max(diff, initial=0.0))
    noise = float(np.sum(diff**2))
    signal = float(np.sum(ref64[finite] ** 2))
    sqnr = math.inf if noise == 0 else (10 * math.log10(signal / noise) if signal > 0 else -math.inf)
    # a few ulps at magnitude 1: rounding differences of reordered float arithmetic upstream (a folded BatchNorm)
    # cannot be told apart from zero below this, however small the output itself is
    tolerance = max(atol * scale, 8 * float(np.finfo(ref.dtype).eps))
    if min_sqnr_db is not None:
        ok = sqnr >= min_sqnr_db
        detail = "" if ok else f"SQNR {sqnr:.1f} dB is below {min_sqnr_db:g} dB"
    else:
        ok = bool(np.all(diff <= tolerance + rtol * np.abs(ref64[finite])))
        detail = "" if ok else f"max abs diff {max_diff:.3g} exceeds {tolerance:.3g} + {rtol:g}×|ref| (SQNR {sqnr:.1f} dB)"
    return OutputCheck(name, max_diff, tolerance, sqnr, ok, detail)


def verify(reference: Model, candidate: Model, feeds_list: Sequence[Feeds], **tolerances: float) -> VerifyReport:
    """Run both models on the same samples and compare (see compare_outputs for the tolerances)."""
    return compare_outputs(run_model(reference, feeds_list), run_model(candidate, feeds_list), **tolerances)


def replay(original: Model, records: Sequence[PassRecord], context: PassContext) -> Model:
    """A copy of `original` after re-applying the recorded pass applications, in order."""
    model = original.clone()
    for record in records:
        make_pass(record.name, context).call(model)
    for graph in model.graph.all_graphs():
        graph.sort()
    return model


def bisect(
    original: Model, history: Sequence[PassRecord], context: PassContext, feeds_list: Sequence[Feeds],
    **tolerances: float,
) -> tuple[int, list[str]]:
    """Index of the first pass application whose result differs from the original, and the nodes it removed."""
    reference = run_model(original, feeds_list)
    changing = [i for i, record in enumerate(history) if record.modified]
    if not changing:
        raise ValueError("no pass changed the model; there is nothing to bisect")

    def broken(prefix: int) -> bool:
        candidate = replay(original, history[:prefix], context)
        return not compare_outputs(reference, run_model(candidate, feeds_list), **tolerances).ok

    low, high = 0, len(changing) - 1
    while low < high:
        mid = (low + high) // 2
        if broken(changing[mid] + 1):
            high = mid
        else:
            low = mid + 1
    culprit = changing[low]
    before = replay(original, history[:culprit], context)
    after = replay(original, history[: culprit + 1], context)
    after_names = {node.name for graph in after.graph.all_graphs() for node in graph}
    removed = [node.name or node.op_type for graph in before.graph.all_graphs() for node in graph
               if node.name not in after_names]
    return culprit, removed
