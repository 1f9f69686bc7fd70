"""Benchmark runner: one session per model × provider × threads, models timed interleaved in rounds."""
from __future__ import annotations

import gc
import math
import os
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional, Sequence, Union

import numpy as np
import onnx
import onnx.parser
import onnxruntime as ort

from onnxopt.bench import providers as prov
from onnxopt.bench.environment import environment
from onnxopt.bench.inputs import DataSource, Feeds, check_feeds, data_feeds, input_specs, random_feeds, resolve_shapes
from onnxopt.bench.memory import PeakRss
from onnxopt.bench.progress import ProgressBar
from onnxopt.bench.result import BenchResult, Measurement, ModelInfo
from onnxopt.bench.stats import compare_outputs, ratio_to_baseline, summarize
from onnxopt.errors import DataError, ModelLoadError, ProviderError, ort_failure
from onnxopt.ir.serde import graph_protos, stored_bytes

ModelLike = Union[str, "os.PathLike[str]", onnx.ModelProto]
Models = Union[Sequence[ModelLike], Mapping[str, ModelLike]]


@dataclass
class _Model:
    info: ModelInfo
    proto: onnx.ModelProto  # graph only: external data is left on disk
    source: Union[str, bytes]  # what InferenceSession loads


@dataclass(frozen=True)
class _Plan:
    runs: int
    warmup: int
    duration: Optional[float]
    io_binding: bool
    spinning: bool
    progress: Optional[bool]
    min_sqnr_db: float
    options: dict[str, dict[str, str]]


@dataclass
class _Session:
    session: ort.InferenceSession
    call: Callable[[], object]
    seconds: float
    rss: Optional[int]
    device_memory: Optional[int]
    kernels: dict[str, int]
    outputs: list[np.ndarray]
    bound: list[ort.OrtValue]  # device inputs kept alive for IO binding


def time_interleaved(
    calls: Sequence[Callable[[], object]],
    rounds: int,
    on_round: Optional[Callable[[int], None]] = None,
    every: int = 1,
) -> list[list[int]]:
    """Run ``calls`` in rounds (A B C A B C …) and return each one's nanoseconds per round.

    Only the call sits between the two clock reads; ``on_round(done)`` runs every ``every`` rounds,
    outside the timed region. The garbage collector is paused meanwhile.
    """
    times = [[0] * rounds for _ in calls]
    clock = time.perf_counter_ns
    pairs = list(zip(calls, times))
    gc_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            for call, row in pairs:
                t0 = clock()
                call()
                row[r] = clock() - t0
            if on_round is not None and (r + 1) % every == 0:
                on_round(r + 1)
    finally:
        if gc_enabled:
            gc.enable()
    return times


def benchmark(
    models: Models,
    providers: Sequence[str] = ("cpu",),
    threads: Sequence[int] = (1,),
    shapes: Optional[Mapping[str, Sequence[int]]] = None,
    dims: Optional[Mapping[str, int]] = None,
    runs: int = 100,
    warmup: int = 10,
    duration: Optional[float] = None,
    data: DataSource = None,
    io_binding: bool = True,
    provider_options: prov.ProviderOptions = None,
    progress: Optional[bool] = None,
    min_sqnr_db: float = 20.0,
    spinning: bool = False,
) -> BenchResult:
    """Time ``models`` (paths or ModelProtos; the first is the baseline) interleaved on the same inputs.

    ``duration`` (seconds per provider × threads) replaces ``runs`` by a round count estimated from the
    warm-up; ``progress=None`` draws bars only on a TTY. ``spinning`` lets onnxruntime's intra-op threads
    spin-wait; it is off because the idle pools of interleaved sessions would steal cores from the one
    running. Raises DataError and ProviderError.
    """
    if runs < 1 or warmup < 0 or (duration is not None and duration <= 0) or any(t < 0 for t in threads):
        raise DataError("runs must be ≥ 1, warmup ≥ 0, duration > 0 and threads ≥ 0 (0: onnxruntime's default)")
    shorts = prov.check_available(providers)
    plan = _Plan(runs, max(warmup, 1 if duration else 0), duration, io_binding, spinning, progress, min_sqnr_db,
                 prov.parse_provider_options(provider_options))
    loaded = _load_all(models)
    if not loaded:
        raise DataError("no models to benchmark")
    specs = input_specs(loaded[0].proto)
    feeds = data_feeds(data, specs) if data is not None else random_feeds(specs, resolve_shapes(specs, shapes, dims))
    for model in loaded:
        check_feeds(input_specs(model.proto), feeds, model.info.name)
    measurements: list[Measurement] = []
    for provider in shorts:
        _prime(provider, plan)
        for n_threads in threads:
            measurements += _run_config(loaded, feeds, provider, n_threads, plan)
    settings = {
        "providers": shorts, "threads": list(threads), "runs": runs, "warmup": warmup, "duration": duration,
        "io_binding": io_binding, "spinning": spinning, "provider_options": plan.options,
        "min_sqnr_db": min_sqnr_db,
        "data": None if data is None else (os.fspath(data) if isinstance(data, (str, os.PathLike)) else "iterable"),
        "inputs": {name: {"shape": list(v.shape), "dtype": str(v.dtype)} for name, v in feeds.items()},
    }
    return BenchResult(
        models=[m.info for m in loaded], measurements=measurements, settings=settings,
        environment=environment(), command=shlex.join(sys.argv),
    )


def _load_all(models: Models) -> list[_Model]:
    items: Iterable[tuple[Optional[str], ModelLike]]
    items = models.items() if isinstance(models, Mapping) else ((None, m) for m in models)
    loaded: list[_Model] = []
    seen: set[str] = set()
    for i, (name, model) in enumerate(items):
        m = _load(model, name, i)
        if m.info.name in seen:
            m.info = ModelInfo(f"{m.info.name}#{i}", m.info.path, m.info.file_size, m.info.node_count)
        seen.add(m.info.name)
        loaded.append(m)
    return loaded


def _load(model: ModelLike, name: Optional[str], index: int) -> _Model:
    if isinstance(model, onnx.ModelProto):
        blob = model.SerializeToString()
        return _Model(ModelInfo(name or f"model{index}", None, len(blob), _count_nodes(model.graph)), model, blob)
    path = Path(os.fspath(model))
    if not path.is_file():
        raise ModelLoadError(f"model '{path}' does not exist or is not a file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises protobuf's DecodeError, ValueError, … on a bad file
        raise ModelLoadError(f"'{path}' is not a loadable ONNX model: {exc}") from exc
    info = ModelInfo(name or path.stem, str(path), stored_bytes(proto, path), _count_nodes(proto.graph))
    return _Model(info, proto, str(path))


def _count_nodes(graph: onnx.GraphProto) -> int:
    return sum(len(g.node) for g in graph_protos(graph))


def _prime(provider: str, plan: _Plan) -> None:
    """Run a throwaway session first, so that one-time costs (CUDA context, library loading) of the
    provider are not charged to the baseline's session time and memory."""
    session = ort.InferenceSession(_PRIMER.SerializeToString(), _session_options(1, plan),
                                   providers=prov.session_providers(provider, plan.options))
    session.run(None, {"x": np.zeros((1, 1, 4, 4), np.float32)})


_PRIMER = onnx.parser.parse_model("""
<ir_version: 8, opset_import: ["" : 17]>
primer (float[1, 1, 4, 4] x) => (float[1, 4] y) {
    w = Constant<value = float[1, 1, 1, 1] {1.0}>()
    m = Constant<value = float[4, 4] {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}>()
    shape = Constant<value = int64[2] {4, 4}>()
    axes = Constant<value = int64[1] {0}>()
    c = Conv(x, w)
    r = Reshape(c, shape)
    s = MatMul(r, m)
    y = ReduceSum<keepdims = 1>(s, axes)
}
""")


def _session_options(n_threads: int, plan: _Plan) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.intra_op_num_threads = n_threads
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if plan.spinning else "0")
    return so


def _run_config(models: list[_Model], feeds: Feeds, provider: str, n_threads: int, plan: _Plan) -> list[Measurement]:
    label = f"{provider} ×{n_threads or 'default'} threads"
    bar = ProgressBar(f"{label}: sessions", len(models), enabled=plan.progress)
    sessions: list[_Session] = []
    with tempfile.TemporaryDirectory(prefix="onnxopt-bench-") as tmp:
        for i, model in enumerate(models):
            sessions.append(_open(model, provider, n_threads, plan, feeds, os.path.join(tmp, str(i))))
            bar.update(i + 1)
    bar.close()
    calls = [s.call for s in sessions]
    warm = time_interleaved(calls, plan.warmup)
    rounds = plan.runs
    if plan.duration is not None:
        per_round_ns = max(sum(float(np.median(t)) for t in warm), 1.0)
        rounds = max(1, math.ceil(plan.duration * 1e9 / per_round_ns))
    bar = ProgressBar(f"{label}: {len(models)} model(s)", rounds, enabled=plan.progress)
    times = time_interleaved(calls, rounds, bar.update, every=max(1, rounds // 100))
    bar.close()
    base = sessions[0]
    result = []
    for i, (model, sess, row) in enumerate(zip(models, sessions, times)):
        result.append(Measurement(
            model=model.info.name, provider=provider, threads=n_threads, stats=summarize(row), times_ns=row,
            session_seconds=sess.seconds, peak_rss_bytes=sess.rss, device_memory_bytes=sess.device_memory,
            kernels=sess.kernels,
            ratio=ratio_to_baseline(row, times[0]) if i else None,
            outputs=compare_outputs(base.outputs, sess.outputs, plan.min_sqnr_db) if i else None,
        ))
    return result


def _open(model: _Model, provider: str, n_threads: int, plan: _Plan, feeds: Feeds, profile_prefix: str) -> _Session:
    """Create the session, run it once with profiling (reference outputs and kernel placement), bind IO."""
    so = _session_options(n_threads, plan)
    if provider == "cpu":  # no provider library to report on: a failure raises with all ORT would log
        so.log_severity_level = 4
    so.enable_profiling = True
    so.profile_file_prefix = profile_prefix
    device = prov.device_id(provider, plan.options)
    gpu = provider in prov.DEVICE_TYPES
    memory = PeakRss()
    memory.start()
    device_before = prov.device_memory_used(device) if gpu else None
    start = time.perf_counter()
    try:
        session = ort.InferenceSession(model.source, so, providers=prov.session_providers(provider, plan.options))
    except Exception as exc:  # ORT's errors: an op it does not know (a custom op without its library), say
        raise ModelLoadError(f"onnxruntime cannot load '{model.info.name}': {ort_failure(exc)}") from None
    seconds = time.perf_counter() - start
    if prov.ORT_NAMES[provider] not in session.get_providers():
        raise ProviderError(
            f"onnxruntime could not start provider '{provider}' for '{model.info.name}' "
            "(its libraries are missing or failed to load; onnxruntime's log above says which)"
        )
    quiet = ort.RunOptions()
    quiet.log_severity_level = 4  # a failing run raises with ORT's message; its error log would only repeat it
    try:
        outputs = session.run(None, feeds, quiet)
    except Exception as exc:  # ORT's errors: the model cannot run on these inputs (a shape it cannot take)
        raise DataError(
            f"'{model.info.name}' does not run on the benchmark inputs ({ort_failure(exc)}); give inputs it accepts "
            "with --shape NAME=D1,D2,.., --dim NAME=N or --data DIR"
        ) from None
    kernels = prov.kernels_by_provider(session.end_profiling())
    rss = memory.growth()
    device_after = prov.device_memory_used(device) if gpu else None
    device_memory = None if device_before is None or device_after is None else max(0, device_after - device_before)
    bound: list[ort.OrtValue] = []
    if plan.io_binding and gpu:
        kind = prov.DEVICE_TYPES[provider]
        binding = session.io_binding()
        for name, value in feeds.items():
            bound.append(ort.OrtValue.ortvalue_from_numpy(value, kind, device))
            binding.bind_ortvalue_input(name, bound[-1])
        for out in session.get_outputs():
            binding.bind_output(out.name, kind, device)
        call: Callable[[], object] = partial(session.run_with_iobinding, binding)
    else:
        call = partial(session.run, None, feeds)
    return _Session(session, call, seconds, rss, device_memory, kernels, outputs, bound)
