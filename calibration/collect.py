"""Streaming activation collection: one ONNX Runtime session with the observed tensors added as outputs,
run sample by sample; each result updates its observer and is dropped, so memory does not grow with
the number of samples.
"""
from __future__ import annotations

import logging
import math
import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

from onnxopt.bench.progress import ProgressBar
from onnxopt.calibration.observers import MinMaxObserver, Observer, make_observer, observer_from_state
from onnxopt.errors import DataError
from onnxopt.ir import Model, serialize

logger = logging.getLogger(__name__)

PARALLEL_MIN = 16  # fewer histogram searches than this are not worth starting processes for
NARROW_BAND_BINS = 8  # |value| histograms longer than this many times the bin count are not searched


@dataclass
class Collection:
    """Observers by tensor name after calibration, with how many samples were seen and how long it took."""

    observers: dict[str, Observer]
    samples: int
    seconds: float

    def ranges(self, workers: int | None = None) -> dict[str, tuple[float, float]]:
        """Each tensor's calibrated (min, max). Histogram searches (entropy, percentile, mse) run in
        `workers` processes (default: one per CPU, at most 8) when there are many tensors."""
        names = list(self.observers)
        workers = min(os.cpu_count() or 1, 8) if workers is None else workers
        histogram = any(obs.method != "minmax" for obs in self.observers.values())
        if not histogram or workers < 2 or len(names) < PARALLEL_MIN or "fork" not in mp.get_all_start_methods():
            return {name: range_of(self.observers[name]) for name in names}
        states = [self.observers[name].state_dict() for name in names]
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
            found = list(pool.map(_range_of_state, states))  # one by one: search costs differ a lot
        return dict(zip(names, found))


def _range_of_state(state: dict) -> tuple[float, float]:
    return range_of(observer_from_state(state))


def range_of(observer: Observer) -> tuple[float, float]:
    """The observer's range, except that the entropy search is skipped for values in a narrow band far
    from zero (anchor grids, stride constants): its |value| histogram would span millions of fine bins
    (minutes of search) and clipping such a band makes no sense, so its exact min and max are used."""
    hist = getattr(observer, "histogram", None)
    if observer.method == "entropy" and hist is not None and hist.count:
        if hist.abs_max() / hist.width > NARROW_BAND_BINS * hist.bins:
            return hist.range()
    return observer.range()


def collect(
    model: Model,
    tensors: Sequence[str],
    samples: Iterable[Mapping[str, np.ndarray]],
    observer: str | Callable[[], Observer] = "minmax",
    *,
    total: int | None = None,
    progress: bool | None = None,
    threads: int = 0,
) -> Collection:
    """Run `samples` through the model and feed every named tensor to its own observer.

    `observer` is a method name (minmax, entropy, percentile, mse) or a factory. `total` sizes the
    progress bar, which is drawn on stderr only on a TTY (progress=None) or when forced.
    """
    factory = (lambda: make_observer(observer)) if isinstance(observer, str) else observer
    observers = {name: factory() for name in tensors}
    input_names = {v.name for v in model.graph.inputs}
    fed = [name for name in tensors if name in input_names]
    outputs = [name for name in tensors if name not in input_names]
    session = _session(model, outputs, threads)
    bar = ProgressBar("calibrating", total or 0, enabled=False if total is None else progress)
    start = time.perf_counter()
    count = 0
    for sample in samples:
        try:
            results = session.run(outputs, dict(sample)) if outputs else []
        except Exception as exc:  # onnxruntime raises its own exception types for bad feeds
            raise DataError(f"calibration sample {count}: onnxruntime could not run it: {str(exc).splitlines()[0]}") from None
        for name, array in zip(outputs, results):
            _observe(observers[name], array)
        for name in fed:
            _observe(observers[name], sample[name])
        del results
        count += 1
        if bar.enabled:
            elapsed = time.perf_counter() - start
            eta = elapsed / count * max(bar.total - count, 0)
            bar.label = f"calibrating (ETA {eta:4.0f} s)"
            bar.update(count)
    bar.close()
    if count == 0:
        raise DataError("no calibration samples: the data source is empty (or --samples is 0)")
    return Collection(observers, count, time.perf_counter() - start)


def _observe(observer: Observer, array: np.ndarray) -> None:
    """Update an observer; a min-max observer gets just the batch's min and max when both are finite and
    within its outlier limit (the same state, without its float64 pass over every value)."""
    if isinstance(observer, MinMaxObserver) and array.size and array.dtype.kind == "f":
        lo, hi = float(array.min()), float(array.max())
        limit = observer.outlier_limit
        if math.isfinite(lo) and math.isfinite(hi) and (limit is None or max(-lo, hi) <= limit):
            observer.update(np.array([lo, hi]))
            return
    observer.update(array)


def _session(model: Model, outputs: Sequence[str], threads: int) -> ort.InferenceSession:
    """A CPU session whose graph outputs are the original outputs plus `outputs` (basic optimizations only,
    so no fusion removes a tensor we observe)."""
    probe = model.clone()
    graph = probe.graph
    by_name = {out.name: out for node in graph for out in node.outputs}
    by_name.update(graph.initializers)
    present = {v.name for v in graph.outputs}
    missing = [name for name in outputs if name not in by_name]
    if missing:
        raise DataError(f"cannot observe {missing[:3]}: no such tensor in the model")
    for name in outputs:
        value = by_name[name]
        if value.type is None:
            value.type = helper.make_tensor_type_proto(TensorProto.FLOAT, None)
        if name not in present:
            graph.add_output(value)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(serialize(probe), options, providers=["CPUExecutionProvider"])
