"""Measurement helpers for the benchmark scripts: child processes with CPU time, peak RSS, ORT sessions,
interleaved timing, output comparison and geometric means."""
from __future__ import annotations

import gc
import json
import math
import os
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}
RESULT_PREFIX = "@@RESULT "  # a worker's last stdout line carrying its JSON result


@dataclass
class ChildResult:
    """How a worker process ended: exit status, wall and CPU seconds, its JSON result or its error."""

    returncode: int
    seconds: float
    result: dict | None
    error: str
    timed_out: bool
    cpu_seconds: float


def run_child(argv: Sequence[str], log: Path, timeout: float) -> ChildResult:
    """Run ``argv`` with stdout and stderr into ``log``, killing it after ``timeout`` seconds."""
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    timed_out = False
    with open(log, "wb") as out:
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        while True:  # wait4 also gives the child's CPU time
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > timeout:
                proc.kill()
                timed_out = True
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    text = log.read_text(errors="replace")
    result = None
    for line in reversed(text.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX):])
            break
    error = ""
    if timed_out:
        error = f"timed out after {timeout:.0f} s"
    elif proc.returncode != 0:
        error = _last_error(text, proc.returncode)
    return ChildResult(proc.returncode, seconds, result, error, timed_out, usage.ru_utime + usage.ru_stime)


def _last_error(text: str, returncode: int) -> str:
    """The exception line of a traceback (or the last output line), else the signal that killed it."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith(RESULT_PREFIX)]
    for line in reversed(lines):
        if ("Error" in line or "Exception" in line or "error" in line) and not line.startswith("File "):
            return line[:300]
    if returncode < 0:
        return f"killed by signal {-returncode}"
    return (lines[-1] if lines else f"exit status {returncode}")[:300]


def peak_rss_mb() -> float:
    """This process's peak resident memory since it exec'd, in MiB.

    Not ru_maxrss: Linux carries the parent's peak into a forked child's ru_maxrss across exec, so a
    child of a large parent would report at least the parent's size.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit_result(result: Mapping) -> None:
    """Print a worker's JSON result as the last line of its stdout."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def count_nodes(graph: onnx.GraphProto) -> int:
    """Nodes in ``graph`` and, recursively, in its subgraphs (If/Loop/Scan bodies)."""
    count = 0
    for node in graph.node:
        count += 1
        for attr in node.attribute:
            if attr.HasField("g"):
                count += count_nodes(attr.g)
            count += sum(count_nodes(g) for g in attr.graphs)
    return count


def session(path: str | os.PathLike, level: str, threads: int = 1, optimized_path: str | None = None,
            profile_prefix: str | None = None):
    """A CPU InferenceSession with ``threads`` intra-op threads at optimization level ``level`` (a LEVELS key);
    with ``profile_prefix``, ORT's profiler on, writing there."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVELS[level])
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if optimized_path is not None:
        so.optimized_model_filepath = optimized_path
    if profile_prefix is not None:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    return ort.InferenceSession(os.fspath(path), so, providers=["CPUExecutionProvider"])


def time_interleaved(
    calls: Sequence[Callable[[], object]], rounds: int, seed: int = 0
) -> tuple[list[list[int]], list[list[int]]]:
    """Per call and round, this thread's CPU nanoseconds and the wall-clock nanoseconds.

    Every round runs all calls in a fresh random order: a call runs faster right after a similar one
    (warm caches, branch predictors), so a fixed order would favour whatever follows its twin.
    With one intra-op thread ONNX Runtime computes on the calling thread, so the CPU time is the
    latency without the time other processes took the core.
    """
    n = len(calls)
    cpu = [[0] * rounds for _ in calls]
    wall = [[0] * rounds for _ in calls]
    orders = np.random.default_rng(seed).permuted(np.tile(np.arange(n), (rounds, 1)), axis=1).tolist()
    thread_ns, wall_ns = time.thread_time_ns, time.perf_counter_ns
    enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            for i in orders[r]:
                w0 = wall_ns()
                c0 = thread_ns()
                calls[i]()
                c1 = thread_ns()
                wall[i][r] = wall_ns() - w0
                cpu[i][r] = c1 - c0
    finally:
        if enabled:
            gc.enable()
    return cpu, wall


@dataclass
class Difference:
    """Largest absolute difference over all outputs and the worst ratio of it to that output's scale."""

    max_abs: float
    worst_relative: float
    problem: str  # non-empty when outputs cannot be compared (count, shape or dtype differ)

    def equal(self, tolerance: float) -> bool:
        """Whether every output is within ``tolerance`` × its scale (max |reference|, at least 1e-6)."""
        return not self.problem and self.worst_relative <= tolerance


def compare_outputs(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray]) -> Difference:
    """Compare outputs in order; integer and bool outputs must match exactly, NaNs must coincide."""
    if len(reference) != len(candidate):
        return Difference(math.inf, math.inf, f"{len(candidate)} outputs, the original has {len(reference)}")
    max_abs = worst = 0.0
    for i, (ref, out) in enumerate(zip(reference, candidate)):
        if ref.shape != out.shape:
            return Difference(math.inf, math.inf, f"output {i} has shape {list(out.shape)}, original {list(ref.shape)}")
        if ref.dtype != out.dtype:
            return Difference(math.inf, math.inf, f"output {i} has dtype {out.dtype}, original {ref.dtype}")
        if ref.size == 0:
            continue
        if ref.dtype.kind not in "fc":
            diff = float(np.max(np.abs(ref.astype(np.float64) - out.astype(np.float64))))
            max_abs = max(max_abs, diff)
            worst = max(worst, math.inf if diff else 0.0)
            continue
        a, b = ref.astype(np.float64), out.astype(np.float64)
        nan_a, nan_b = np.isnan(a), np.isnan(b)
        if np.any(nan_a != nan_b):
            return Difference(math.inf, math.inf, f"output {i} has NaNs where the original has none (or vice versa)")
        finite = ~nan_a
        diff = float(np.max(np.abs(a[finite] - b[finite]), initial=0.0))
        scale = max(float(np.max(np.abs(a[finite]), initial=0.0)), 1e-6)
        max_abs = max(max_abs, diff)
        worst = max(worst, diff / scale)
    return Difference(max_abs, worst, "")


def geomean(values: Iterable[float]) -> float | None:
    """Geometric mean of the positive finite values, None when there are none."""
    logs = [math.log(v) for v in values if v is not None and v > 0 and math.isfinite(v)]
    return math.exp(sum(logs) / len(logs)) if logs else None


def off_thread_share(call: Callable[[], object]) -> float:
    """The share of one call's CPU time spent on threads other than the caller's (0 when it all runs here)."""
    p0, t0 = time.process_time_ns(), time.thread_time_ns()
    call()
    t1, p1 = time.thread_time_ns(), time.process_time_ns()
    return max(0, (p1 - p0) - (t1 - t0)) / max(p1 - p0, 1)


def ratio_of_medians(candidate: Sequence[int], baseline: Sequence[int], resamples: int = 1000, seed: int = 0):
    """median(candidate) / median(baseline) and its 95% interval, bootstrapping the interleaved rounds in pairs."""
    cand, base = np.asarray(candidate, float), np.asarray(baseline, float)
    ratio = float(np.median(cand) / np.median(base))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(base), size=(resamples, len(base)))
    boot = np.median(cand[picks], axis=1) / np.median(base[picks], axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    return ratio, (float(low), float(high))
