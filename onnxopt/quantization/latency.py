"""Latency: the end-of-run fp32 vs int8 check, and the search that keeps node groups float where int8 does not pay.

Per-group costs come from ONNX Runtime's own profiler (median kernel time per node over several runs, at
the deployed optimization level): a group's int8 cost is its fused kernel plus the Q/DQ kernels that serve
it; its fp32 cost is the kernel(s) its float node became. Kernels are matched to groups by name: ORT keeps
the target node's name (with suffixes such as `_token_N`) or names the kernel after its output (`_nchwc`).
"""
from __future__ import annotations

import json
import logging
import os
import statistics
import tempfile
import time
from typing import Mapping

import numpy as np
import onnxruntime as ort

from onnxopt.errors import OnnxoptError, ort_failure
from onnxopt.ir import Model, serialize, to_proto
from onnxopt.quantization.config import QuantConfig
from onnxopt.quantization.report import LatencyCheck, SearchStep
from onnxopt.quantization.search import Build, Built

logger = logging.getLogger(__name__)

Feeds = Mapping[str, np.ndarray]
PROFILE_RUNS = 15
ROUNDS = 3
MARGIN = 1.05  # int8 must lose by more than profiling noise before a group goes back to float


def latency_check(fp32: Model, int8: Model, config: QuantConfig, feeds: Feeds | None) -> LatencyCheck:
    """Median latency of both models on the configured provider, timed interleaved by the bench harness."""
    medians = compare_latency({"fp32": fp32, "int8": int8}, config, feeds)
    return LatencyCheck(config.provider, config.threads, medians["fp32"], medians["int8"])


def compare_latency(models: Mapping[str, Model], config: QuantConfig, feeds: Feeds | None) -> dict[str, float]:
    """Median ms per model, timed interleaved for about config.latency_seconds."""
    from onnxopt.bench import benchmark

    first = next(iter(models.values()))
    generated = feeds is None
    try:
        feeds = _random_feeds(first, config) if generated else dict(feeds)
        runs = _runs_for(first, feeds, config.threads, config.latency_seconds * len(models) / 2)
    except Exception as exc:  # ORT's errors: it cannot load or run the float model (a custom op, say)
        sizing = "its inputs were generated with symbolic dims as 1 (--dim NAME=N sizes them); " \
            if generated and _unsized(first, config) else ""
        raise OnnxoptError(f"latency check failed: onnxruntime cannot run the float model ({ort_failure(exc)}); "
                           f"{sizing}pass --no-latency-check to skip it") from None
    try:
        result = benchmark(
            {name: to_proto(m) for name, m in models.items()}, providers=(config.provider,), threads=(config.threads,),
            runs=runs, warmup=3, data=[feeds], progress=False, min_sqnr_db=0.0,
        )
    except OnnxoptError as exc:
        raise OnnxoptError(f"latency check failed: {exc}; pass --no-latency-check to skip it") from None
    return {m.model: m.stats.median_ms for m in result.measurements}


def search_latency(
    build: Build, fp32: Model, current: Built, keep_float: frozenset[str], config: QuantConfig, feeds: Feeds | None
) -> tuple[Built, frozenset[str], list[SearchStep]]:
    """Keep float every group (compute or data movement) whose int8 kernels cost more than its float ones,
    then keep the fastest of fp32, plain int8 and the searched model: never slower than either.

    Per-group costs need the CPU provider: on a GPU provider ORT's profiler times kernel launches, not the
    kernels, so there the search only keeps the faster of the whole fp32 and int8 models."""
    feeds = dict(feeds) if feeds is not None else _random_feeds(fp32, config)
    if config.provider != "cpu":
        return _keep_fastest(build, current, keep_float, None, config, feeds)
    fp32_costs = _profile(fp32, feeds, config.threads)
    start, start_keep = current, keep_float
    steps: list[SearchStep] = []
    for _ in range(ROUNDS):
        units = [*current.compute, *current.moving]
        int8_costs = _profile(current.model, feeds, config.threads)
        slow = []
        for unit, cost in _group_costs(current.model, units, int8_costs).items():
            base = _unit_cost(fp32, unit, fp32_costs)
            if base is not None and cost > base * MARGIN:
                slow.append(unit)
                steps.append(SearchStep((unit,), cost / base if base else float("inf"), f"int8 {cost:.1f} µs vs fp32 {base:.1f} µs"))
        if not slow:
            break
        keep_float = keep_float | frozenset(slow)
        current = build(keep_float)
    if not steps:
        return current, keep_float, steps
    best, keep, last = _keep_fastest(build, start, start_keep, (current, keep_float), config, feeds)
    return best, keep, last if best is start else steps + last


def _keep_fastest(
    build: Build, start: Built, start_keep: frozenset[str], searched: tuple[Built, frozenset[str]] | None,
    config: QuantConfig, feeds: Feeds,
) -> tuple[Built, frozenset[str], list[SearchStep]]:
    """The fastest of the all-float build (the float groups fused again), the plain int8 model `start` and the
    `searched` one, timed interleaved on the provider."""
    float_keep = start_keep | frozenset([*start.compute, *start.moving])
    all_float = build(float_keep)
    models = {"fp32": all_float.model, "int8": start.model, **({"searched": searched[0].model} if searched else {})}
    medians = compare_latency(models, config, feeds)
    best = min(medians, key=medians.__getitem__)
    summary = ", ".join(f"{name} {ms:.3f} ms" for name, ms in medians.items()) + f" on {config.provider}"
    if best == "fp32":
        return all_float, float_keep, [SearchStep(tuple(start.compute), medians["int8"] / medians["fp32"], f"fp32 fastest ({summary}): everything kept float")]
    if best == "int8":
        detail = f"per-group choices not faster ({summary}): plain int8 kept" if searched else f"int8 faster ({summary})"
        return start, start_keep, [SearchStep((), medians["int8"] / medians["fp32"], detail)]
    assert searched is not None
    return searched[0], searched[1], [SearchStep((), medians["searched"] / medians["fp32"], f"searched model fastest ({summary})")]


def _runs_for(model: Model, feeds: Feeds, threads: int, seconds: float) -> int:
    """Interleaved rounds that fit in `seconds`, from a quick timing of the float model (≥ 10, ≤ 1000)."""
    session = _session(model, threads)
    times = []
    for _ in range(4):
        start = time.perf_counter()
        session.run(None, dict(feeds))
        times.append(time.perf_counter() - start)
    per_round = 2 * max(statistics.median(times[1:]), 100e-6)  # two models; Python overhead per call included
    return int(min(max(seconds / per_round, 10), 1000))


def _random_feeds(model: Model, config: QuantConfig) -> dict[str, np.ndarray]:
    """Inputs as the benchmark generates them, dynamic dims from config.dims (else 1)."""
    from onnxopt.bench.inputs import default_shapes, random_feeds
    from onnxopt.ir.interface import input_specs

    specs = input_specs(model)
    return random_feeds(specs, default_shapes(specs, dict(config.dims)))


def _unsized(model: Model, config: QuantConfig) -> bool:
    """Whether generated inputs leave some dynamic dim of the model at 1 (none of config.dims names it)."""
    from onnxopt.ir.interface import input_specs

    return any(not isinstance(d, int) and d not in dict(config.dims) for spec in input_specs(model)
               for d in spec.shape or ())


def _session(model: Model, threads: int, profile_prefix: str | None = None) -> ort.InferenceSession:
    """A CPU session as deployed (ORT's optimizations on); its failures are reported by the caller, so ORT logs none."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 4
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(serialize(model), options, providers=["CPUExecutionProvider"])


def _profile(model: Model, feeds: Feeds, threads: int) -> dict[str, float]:
    """Median µs per kernel (by ORT node name) over PROFILE_RUNS runs after a warm-up run."""
    with tempfile.TemporaryDirectory(prefix="onnxopt-profile-") as tmp:
        session = _session(model, threads, os.path.join(tmp, "profile"))
        for _ in range(PROFILE_RUNS + 1):
            session.run(None, dict(feeds))
        with open(session.end_profiling(), encoding="utf-8") as f:
            events = json.load(f)
    times: dict[str, list[float]] = {}
    for event in events:
        name = event.get("name", "")
        if event.get("cat") == "Node" and name.endswith("_kernel_time"):
            times.setdefault(name[: -len("_kernel_time")], []).append(float(event.get("dur", 0)))
    return {name: statistics.median(ts[1:] or ts) for name, ts in times.items()}


def _owner(kernel: str, keys: Mapping[str, str]) -> str | None:
    """The unit whose key (node or output name) is the longest prefix of the kernel name."""
    best = None
    for key, unit in keys.items():
        if (kernel == key or kernel.startswith(key + "_")) and (best is None or len(key) > len(best[0])):
            best = (key, unit)
    return best[1] if best else None


def _unit_keys(model: Model, units: list[str]) -> dict[str, str]:
    wanted = set(units)
    keys: dict[str, str] = {}
    for graph in model.graph.all_graphs():
        for node in graph:
            if node.name in wanted:
                keys[node.name] = node.name
                for out in node.outputs:
                    keys.setdefault(out.name, node.name)
    return keys


def _unit_cost(fp32: Model, unit: str, costs: Mapping[str, float]) -> float | None:
    keys = _unit_keys(fp32, [unit])
    node = next((n for g in fp32.graph.all_graphs() for n in g if n.name == unit), None)
    if node is not None:  # a Relu/Clip fused into the node in ORT carries the activation's output name
        for reader in node.outputs[0].consumers() if node.outputs else []:
            if reader.op_type in ("Relu", "Clip") and len(node.outputs[0].uses()) == 1:
                keys[reader.outputs[0].name] = unit
                keys[reader.name] = unit
    total = [cost for kernel, cost in costs.items() if _owner(kernel, keys) == unit]
    return sum(total) if total else None


def _group_costs(model: Model, units: list[str], costs: Mapping[str, float]) -> dict[str, float]:
    """int8 µs per unit: its kernels plus a share of the Q/DQ kernels that serve it."""
    keys = _unit_keys(model, units)
    serving = _qdq_owners(model, set(units))
    result = {unit: 0.0 for unit in units}
    for kernel, cost in costs.items():
        owners = serving.get(kernel)
        if owners:
            for unit in owners:
                result[unit] += cost / len(owners)
            continue
        unit = _owner(kernel, keys)
        if unit is not None:
            result[unit] += cost
    return result


def _qdq_owners(model: Model, units: set[str]) -> dict[str, list[str]]:
    """Q/DQ node name → the units it serves (a DQ: its reader, else the producer of the quantized tensor)."""
    owners: dict[str, list[str]] = {}
    for graph in model.graph.all_graphs():
        for node in graph:
            if node.op_type == "DequantizeLinear":
                readers = [r.name for r in node.outputs[0].consumers() if r.name in units]
                source = node.inputs[0].producer()
                producer = source.inputs[0].producer() if source is not None and source.op_type == "QuantizeLinear" else None
                owners[node.name] = readers or ([producer.name] if producer is not None and producer.name in units else [])
            elif node.op_type == "QuantizeLinear":
                readers = [r.name for dq in node.outputs[0].consumers() for r in dq.outputs[0].consumers() if r.name in units]
                producer = node.inputs[0].producer()
                owners[node.name] = list(dict.fromkeys(readers)) or (
                    [producer.name] if producer is not None and producer.name in units else [])
    return owners
