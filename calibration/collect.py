"""Streaming activation collection: one ONNX Runtime session with the observed tensors added as outputs
(see probe.py), run sample by sample; each result updates its observer and is dropped, so memory does not
grow with the number of samples.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Mapping, Sequence, TypeVar

import numpy as np

from onnxopt.bench.progress import ProgressBar
from onnxopt.calibration.observers import Observer, make_observer, observer_from_state
from onnxopt.calibration.probe import Probe
from onnxopt.errors import DataError
from onnxopt.ir import Model

logger = logging.getLogger(__name__)
T = TypeVar("T")

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
    probe = Probe(model, observers, threads)
    bar = ProgressBar("calibrating", total or 0, enabled=False if total is None else progress)
    start = time.perf_counter()
    count = 0
    for sample in prefetched(samples):
        probe.observe(sample, f"calibration sample {count}")
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


_DONE = object()


def prefetched(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """`items` in order, produced by a background thread up to `depth` ahead: the next sample is read and
    preprocessed while ONNX Runtime (which releases the GIL) runs the current one. An exception the producer
    raises is raised here, at the same position; leaving early stops the producer before its next item."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer((item, None)):
                    return
            offer((_DONE, None))
        except BaseException as exc:  # handed to the consumer, which raises it where the sample was expected
            offer((_DONE, exc))

    thread = threading.Thread(target=produce, name="calibration-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = slots.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()  # no join: a producer blocked reading (a pipe, a slow disk) must not hold up Ctrl-C
