"""onnxopt against onnxoptimizer, onnx-simplifier, onnxslim and ONNX Runtime's offline optimizer.

For every suite model (benchmarks/suite.py) each tool runs in its own process (optimize wall time,
peak RSS, a crash is recorded and the run goes on); then the result's node count (subgraphs
included) and file size, its largest output difference from the original on the suite's fixed
inputs (ORT, optimizations off, equal when ≤ --tolerance × the output's largest magnitude), and
its ORT CPU latency at ORT_DISABLE_ALL and ORT_ENABLE_ALL: one thread, all candidates of a model
interleaved in one process (each round runs them all in a fresh random order), the median of
≥ --runs rounds after warm-up (CPU time of the timing thread by default, see --clock), as a ratio
to the original's median in the same rounds. Geometric means per tool close the report.

    python benchmarks/compare_optimizers.py                 # whole suite → benchmarks/results/optimizers.md
    python benchmarks/compare_optimizers.py --quick         # 5 small models, fewer runs (development)
    python benchmarks/compare_optimizers.py --models ppocr_det,yolov8n --tools onnxopt,onnxsim
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from _measure import (  # noqa: E402
    LEVELS,
    ChildResult,
    compare_outputs,
    count_nodes,
    emit_result,
    geomean,
    off_thread_share,
    peak_rss_mb,
    ratio_of_medians,
    run_child,
    session,
    time_interleaved,
)
from suite import QUICK, SUITE, cache_dir, suite_models  # noqa: E402

TOOLS = ("onnxopt", "onnxopt-ort", "onnxopt-ort-cpu", "onnxoptimizer", "onnxsim", "onnxslim", "ort-basic", "ort-extended",
         "ort-all")
ONNXOPT_TARGETS = {"onnxopt": "onnx", "onnxopt-ort": "ort", "onnxopt-ort-cpu": "ort-cpu"}
PEERS = ("onnxoptimizer", "onnxsim", "onnxslim")  # the tools whose fewest nodes onnxopt must match
TIMED_LEVELS = ("disable", "all")
CONTROL = "original (A/A)"  # the original timed a second time: its ratio shows the measurement noise
RESULTS = Path(__file__).resolve().parent / "results" / "optimizers.md"
MAX_ROUNDS = 3000


# ---------------------------------------------------------------------------------------------- workers
# Each runs in a child process: python compare_optimizers.py _worker KIND ARGS…


def optimize_with(tool: str, src: str, dst: str) -> float:
    """Optimize ``src`` into ``dst`` with ``tool``; returns the seconds from loading to the saved file."""
    if tool in ("ort-basic", "ort-extended", "ort-all"):
        start = time.perf_counter()
        session(src, tool.split("-")[1], optimized_path=dst)
        return time.perf_counter() - start
    if tool in ONNXOPT_TARGETS:
        import onnxopt

        start = time.perf_counter()
        result = onnxopt.optimize(src, target=ONNXOPT_TARGETS[tool])
        onnxopt.save(result.model, dst)
        return time.perf_counter() - start
    start = time.perf_counter()
    model = onnx.load(src)
    if tool == "onnxoptimizer":
        import onnxoptimizer

        model = onnxoptimizer.optimize(model, onnxoptimizer.get_fuse_and_elimination_passes())
    elif tool == "onnxsim":
        import onnxsim

        model, checked = onnxsim.simplify(model)
        if not checked:
            raise RuntimeError("onnxsim reports that its result failed its own check")
    elif tool == "onnxslim":
        import onnxslim

        model = onnxslim.slim(model)
    else:
        raise ValueError(f"unknown tool {tool}")
    onnx.save(model, dst)
    return time.perf_counter() - start


def _worker(argv: list[str]) -> None:
    kind, args = argv[0], argv[1:]
    if kind == "optimize":
        tool, src, dst, repeats = args
        # the fastest of a few runs: what the tool costs, without what other jobs on a shared box took
        seconds = min(optimize_with(tool, src, dst) for _ in range(int(repeats)))
        emit_result({"seconds": seconds, "peak_rss_mb": peak_rss_mb()})
    elif kind == "outputs":
        name, path, npz = args
        (model,) = suite_models([name], fetch=False)
        feeds = model.feeds()
        sess = session(path, "disable")
        extra = [i.name for i in sess.get_inputs() if i.name not in feeds]
        if extra:
            raise RuntimeError(f"the model requires {len(extra)} input(s) the original does not have, e.g. {extra[0]!r}")
        outputs = sess.run(None, feeds)
        np.savez(npz, *outputs)
        emit_result({"outputs": len(outputs)})
    elif kind == "time":
        emit_result(_time_candidates(json.loads(Path(args[0]).read_text())))
    else:
        raise ValueError(f"unknown worker {kind}")


def _time_candidates(spec: dict) -> dict:
    """Per level: each candidate's median ns and its ratio (95% interval) to the original, the first candidate.

    The rounds are split into blocks, each with freshly created sessions (in a random order, with
    random gaps between their allocations): where a session's buffers land in memory moves the same
    model's latency by several percent, so pooling several placements averages that out. A candidate
    whose session fails at a level is left out of that level.
    """
    (model,) = suite_models([spec["model"]], fetch=False)
    feeds = model.feeds()
    rng = np.random.default_rng(0)
    result: dict = {}
    for level in spec["levels"]:
        labels = [label for label, _ in spec["candidates"]]
        errors: dict[str, str] = {}
        times: dict[str, list[int]] = {label: [] for label in labels}
        rounds = 0
        for block in range(spec["blocks"]):
            calls = _open_shuffled(spec["candidates"], labels, level, feeds, rng, errors)
            labels = list(calls)
            _, warm = time_interleaved(list(calls.values()), spec["warmup"], seed=rng.integers(1 << 31))
            if block == 0:
                per_round = max(sum(float(np.median(t)) for t in warm), 1.0)
                rounds = min(MAX_ROUNDS, max(spec["runs"], math.ceil(spec["min_time"] * 1e9 / per_round)))
                for label, call in calls.items():
                    if spec["clock"] == "cpu" and off_thread_share(call) > 0.2:
                        errors[label] = "ORT computed off the calling thread: its CPU time undercounts; use --clock wall"
            per_block = math.ceil(rounds / spec["blocks"])
            cpu, wall = time_interleaved(list(calls.values()), per_block, seed=rng.integers(1 << 31))
            for label, t in zip(calls, cpu if spec["clock"] == "cpu" else wall):
                times[label] += t
            del calls
        base = times["original"] if labels and labels[0] == "original" else None
        result[level] = {
            "rounds": len(times[labels[0]]) if labels else 0,
            "median_ns": {label: float(np.median(times[label])) for label in labels},
            "ratio": {label: ratio_of_medians(times[label], base) for label in labels[1:]} if base else {},
            "errors": errors,
        }
    return result


def _open_shuffled(candidates, labels, level, feeds, rng, errors) -> dict:
    """Sessions for ``labels`` created in a random order, each run once; failures go to ``errors``."""
    paths = dict(candidates)
    sessions: dict = {}
    gaps = []
    for i in rng.permutation(len(labels)):
        label = labels[i]
        gaps.append(np.empty(int(rng.integers(1, 1 << 16)), np.uint8))  # shifts where the next session lands
        try:
            sess = session(paths[label], level)
            sess.run(None, feeds)
        except Exception as exc:  # a session that fails to load at this level is recorded, not fatal
            errors[label] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            continue
        sessions[label] = lambda run=sess.run: run(None, feeds)
    return {label: sessions[label] for label in labels if label in sessions}


# ---------------------------------------------------------------------------------------------- driver


@dataclass
class Row:
    """One tool's outcome on one model ('original' is the model itself)."""

    model: str
    tool: str
    status: str = "ok"  # ok | error | crash | timeout | ort-failed
    error: str = ""
    seconds: float | None = None
    peak_rss_mb: float | None = None
    nodes: int | None = None
    size: int | None = None
    max_abs: float | None = None
    relative: float | None = None
    equal: bool | None = None
    latency: dict = field(default_factory=dict)  # level → ratio to the original (original: its median ms)
    interval: dict = field(default_factory=dict)  # level → (low, high) 95% bootstrap interval of the ratio
    control: dict = field(default_factory=dict)  # original only: level → the A/A control's ratio


def _child(kind: str, args: list[str], log: Path, timeout: float) -> ChildResult:
    return run_child([sys.executable, os.path.abspath(__file__), "_worker", kind, *args], log, timeout)


def _status(child: ChildResult) -> str:
    if child.timed_out:
        return "timeout"
    return "crash" if child.returncode < 0 else "error"


def run_model(model, tools: list[str], args: argparse.Namespace, workdir: Path) -> list[Row]:
    """Optimize ``model`` with every tool, check each result's outputs, then time them interleaved."""
    workdir.mkdir(parents=True, exist_ok=True)
    proto = onnx.load(str(model.path), load_external_data=False)
    original = Row(model.name, "original", nodes=count_nodes(proto.graph), size=model.path.stat().st_size)
    rows = [original]
    ref_child = _child("outputs", [model.name, str(model.path), str(workdir / "original.npz")],
                       workdir / "original.outputs.log", args.timeout)
    if ref_child.returncode != 0:
        original.status, original.error = _status(ref_child), ref_child.error
        return rows
    with np.load(workdir / "original.npz") as data:
        reference = [data[k] for k in data.files]
    candidates = [("original", str(model.path)), (CONTROL, str(model.path))]
    for tool in tools:
        row = Row(model.name, tool)
        rows.append(row)
        out = workdir / f"{tool}.onnx"
        out.unlink(missing_ok=True)
        child = _child("optimize", [tool, str(model.path), str(out), str(args.optimize_repeats)], workdir / f"{tool}.log",
                       args.timeout)
        if child.returncode != 0 or child.result is None or not out.is_file():
            row.status, row.error = _status(child), child.error or "no model written"
            _say(f"  {tool:<14} {row.status}: {row.error}")
            continue
        row.seconds, row.peak_rss_mb = child.result["seconds"], child.result["peak_rss_mb"]
        row.size = out.stat().st_size
        row.nodes = count_nodes(onnx.load(str(out), load_external_data=False).graph)
        check = _child("outputs", [model.name, str(out), str(workdir / f"{tool}.npz")],
                       workdir / f"{tool}.outputs.log", args.timeout)
        if check.returncode != 0:
            row.status, row.error = "ort-failed", check.error
            _say(f"  {tool:<14} its model fails in ORT: {row.error}")
            continue
        with np.load(workdir / f"{tool}.npz") as data:
            diff = compare_outputs(reference, [data[k] for k in data.files])
        row.max_abs, row.relative = diff.max_abs, diff.worst_relative
        row.equal = diff.equal(args.tolerance)
        if diff.problem:
            row.error = diff.problem
        candidates.append((tool, str(out)))
        _say(f"  {tool:<14} {row.seconds:6.2f} s  {row.nodes:5d} nodes  max|Δ| {row.max_abs:.2e}"
             f"{'' if row.equal else '  NOT EQUAL'}")
    spec = {"model": model.name, "candidates": candidates, "levels": list(TIMED_LEVELS),
            "runs": args.runs, "warmup": max(args.warmup, 1), "min_time": args.min_time, "clock": args.clock,
            "blocks": args.blocks}
    spec_path = workdir / "timing.json"
    spec_path.write_text(json.dumps(spec))
    timing = _child("time", [str(spec_path)], workdir / "timing.log", args.timeout * 4)
    if timing.result is None:
        original.error = f"timing failed: {timing.error}"
        _say(f"  timing failed: {timing.error}")
        return rows
    by_tool = {row.tool: row for row in rows}
    for level, res in timing.result.items():
        if "original" in res["median_ns"]:
            original.latency[level] = res["median_ns"]["original"] / 1e6
        for label, (ratio, interval) in res["ratio"].items():
            if label == CONTROL:
                original.control[level] = ratio
                continue
            by_tool[label].latency[level] = ratio
            by_tool[label].interval[level] = tuple(interval)
        for label, err in res["errors"].items():
            row = by_tool.get(label, original)
            row.error = (row.error + f"; {LEVELS[level]}: {err}").lstrip("; ")
    _say("  latency ratio " + f"A/A {'/'.join(_fmt(original.control.get(lv), '.3f') for lv in TIMED_LEVELS)}  " + "  ".join(
        f"{r.tool} {'/'.join(_fmt(r.latency.get(lv), '.3f') for lv in TIMED_LEVELS)}" for r in rows[1:] if r.latency
    ) + f"  ({timing.result[TIMED_LEVELS[0]]['rounds']} rounds)")
    return rows


def _say(text: str) -> None:
    print(text, flush=True)


def _fmt(value, spec: str, missing: str = "—") -> str:
    return missing if value is None else format(value, spec)


# ---------------------------------------------------------------------------------------------- report


def summarize(rows: list[Row], tools: list[str]) -> list[dict]:
    """Per tool: successes, equal outputs and the geometric means of its ratios to the original."""
    originals = {r.model: r for r in rows if r.tool == "original"}
    timed = {m for m in originals if all(
        any(r.model == m and r.tool == t and r.status == "ok" and len(r.latency) == len(TIMED_LEVELS) for r in rows)
        for t in tools
    )}
    summary = []
    for tool in tools:
        mine = [r for r in rows if r.tool == tool]
        ok = [r for r in mine if r.status == "ok"]
        worst = max((r for r in ok if "all" in r.latency), key=lambda r: r.latency["all"], default=None)
        summary.append({
            "tool": tool,
            "ok": len(ok), "of": len(mine), "equal": sum(1 for r in ok if r.equal),
            "nodes": geomean(r.nodes / originals[r.model].nodes for r in ok if originals[r.model].nodes),
            "size": geomean(r.size / originals[r.model].size for r in ok),
            "disable": geomean(r.latency.get("disable") for r in ok),
            "all": geomean(r.latency.get("all") for r in ok),
            "common": len(timed),
            "disable_common": geomean(r.latency.get("disable") for r in ok if r.model in timed),
            "all_common": geomean(r.latency.get("all") for r in ok if r.model in timed),
            "timed": sum(1 for r in ok if r.latency),
            "worst_all": (worst.latency["all"], worst.model) if worst else None,
            "seconds": sum(r.seconds for r in ok),
            "failed": [f"{r.model} ({r.status})" for r in mine if r.status != "ok"],
        })
    return summary


def targets(rows: list[Row], summary: list[dict]) -> list[str]:
    """The issue's targets for onnxopt, each with PASS/FAIL and the models that miss it."""
    by = {(r.model, r.tool): r for r in rows}
    models = [r.model for r in rows if r.tool == "original"]
    tools = {s["tool"]: s for s in summary}
    lines = []

    def verdict(ok: bool, text: str, misses: list[str]) -> None:
        lines.append(f"- {'PASS' if ok else 'FAIL'} {text}" + (f" — misses: {', '.join(misses)}" if misses else ""))

    for tool in ONNXOPT_TARGETS:
        if tool not in tools:
            continue
        got = [by.get((m, tool)) for m in models]
        bad = [m for m, r in zip(models, got) if r is None or r.status != "ok" or not r.equal]
        verdict(not bad, f"{tool}: output equal to the original on every model", bad)
        fewer = []
        for m, r in zip(models, got):
            peers = [by[(m, p)].nodes for p in PEERS if (m, p) in by and by[(m, p)].status == "ok"]
            if r is None or r.nodes is None or (peers and r.nodes > min(peers)):
                fewer.append(f"{m} ({_fmt(r.nodes if r else None, 'd')} > {min(peers) if peers else '—'})")
        if tool == "onnxopt-ort-cpu":
            lines.append(f"- n/a {tool}: node count (the blocked layout adds ReorderInput/ReorderOutput nodes by design)")
        else:
            verdict(not fewer, f"{tool}: node count ≤ the fewest of {', '.join(PEERS)}", fewer)
        limit = 0.83 if tool == "onnxopt" else 0.78
        g = tools[tool]["disable"]
        verdict(g is not None and g <= limit, f"{tool}: geo-mean latency at ORT_DISABLE_ALL {_fmt(g, '.3f')} ≤ {limit}", [])
        g = tools[tool]["all"]
        verdict(g is not None and g <= 0.96, f"{tool}: geo-mean latency at ORT_ENABLE_ALL {_fmt(g, '.3f')} ≤ 0.96", [])
        slow = [f"{m} ({_ratio_cell(r, 'all')}{'' if r.interval['all'][0] > 1.01 else ', within noise'})"
                for m, r in zip(models, got) if r and r.latency.get("all", 0) > 1.01]
        verdict(not slow, f"{tool}: no model slower than the original by > 1% at ORT_ENABLE_ALL", slow)
        late = []
        for m, r in zip(models, got):
            sim = by.get((m, "onnxsim"))
            if sim and sim.status == "ok" and (r is None or r.seconds is None or r.seconds > sim.seconds):
                late.append(f"{m} ({_fmt(r.seconds * 1000 if r and r.seconds is not None else None, '.1f')} ms > "
                            f"{sim.seconds * 1000:.1f} ms)")
        verdict(not late, f"{tool}: optimize time ≤ onnx-simplifier's on every model (here each tool's runs follow one "
                          "another; benchmarks/optimize_time.py interleaves them)", late)
    return lines


def model_table(rows: list[Row]) -> list[str]:
    """Markdown rows: one per model and tool."""
    head = ("| model | tool | status | nodes | size KB | optimize s | peak RSS MB | max abs Δ | equal "
            "| DISABLE_ALL | ENABLE_ALL |")
    lines = [head, "|---|---|---|--:|--:|--:|--:|--:|:-:|--:|--:|"]
    for r in rows:
        if r.tool == "original":
            lat = [f"{r.latency[lv]:.2f} ms (A/A {r.control[lv]:.3f})" if lv in r.control else
                   _fmt(r.latency.get(lv), ".2f") for lv in TIMED_LEVELS]
            lines.append(f"| **{r.model}** | original | {r.status}{' — ' + r.error if r.error else ''} | {r.nodes} "
                         f"| {r.size / 1024:.0f} | | | | | {lat[0]} | {lat[1]} |")
            continue
        error = r.error.replace("|", "/")
        status = r.status if not error else f"{r.status}: {error[:160]}{'…' if len(error) > 160 else ''}"
        equal = {True: "yes", False: "**NO**", None: ""}[r.equal]
        lines.append(
            f"| {r.model} | {r.tool} | {status} | {_fmt(r.nodes, 'd', '')} | {_fmt(r.size and r.size / 1024, '.0f', '')} "
            f"| {_fmt(r.seconds, '.2f', '')} | {_fmt(r.peak_rss_mb, '.0f', '')} | {_fmt(r.max_abs, '.1e', '')} | {equal} "
            f"| {_ratio_cell(r, 'disable')} | {_ratio_cell(r, 'all')} |"
        )
    return lines


def _ratio_cell(row: Row, level: str) -> str:
    if level not in row.latency:
        return ""
    low, high = row.interval.get(level, (None, None))
    return f"{row.latency[level]:.3f}" + (f" ({low:.2f}–{high:.2f})" if low is not None else "")


def control_line(rows: list[Row]) -> str:
    """How far the A/A control (the original against itself) strayed from 1: the noise floor of this run."""
    parts = []
    for level in TIMED_LEVELS:
        pairs = [(r.control[level], r.model) for r in rows if r.tool == "original" and level in r.control]
        if pairs:
            worst = max(pairs, key=lambda p: abs(math.log(p[0])))
            parts.append(f"{LEVELS[level]} geo-mean {geomean(p[0] for p in pairs):.3f}, worst {worst[0]:.3f} ({worst[1]})")
    return "A/A control (the original timed again as a candidate; ideally 1.000): " + ("; ".join(parts) or "—")


def summary_table(summary: list[dict]) -> list[str]:
    """Markdown rows: one per tool; "common" columns cover only the models that every tool got through."""
    common = summary[0]["common"] if summary else 0
    lines = [
        ("| tool | ok | equal | nodes | size | DISABLE_ALL | ENABLE_ALL | worst ENABLE_ALL "
         f"| DISABLE_ALL, {common} common | ENABLE_ALL, {common} common | optimize s (sum) | failed on |"),
        "|---|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|---|",
    ]
    for s in summary:
        worst = f"{s['worst_all'][0]:.3f} ({s['worst_all'][1]})" if s["worst_all"] else "—"
        lines.append(
            f"| {s['tool']} | {s['ok']}/{s['of']} | {s['equal']}/{s['ok']} | {_fmt(s['nodes'], '.3f')} "
            f"| {_fmt(s['size'], '.3f')} | {_fmt(s['disable'], '.3f')} | {_fmt(s['all'], '.3f')} | {worst} "
            f"| {_fmt(s['disable_common'], '.3f')} | {_fmt(s['all_common'], '.3f')} "
            f"| {s['seconds']:.1f} | {', '.join(s['failed']) or '—'} |"
        )
    return lines


def environment() -> list[str]:
    """Versions of everything measured, the machine, the onnxopt passes in the default pipeline."""
    import onnxopt.passes  # noqa: F401  (registers the passes)
    import onnxoptimizer
    import onnxruntime
    import onnxsim
    import onnxslim

    import onnxopt
    from onnxopt.passmanager import DEFAULT_PIPELINE, expand_pipeline

    here = Path(__file__).parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=here, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "onnxopt", "passes"],
                               capture_output=True, text=True, cwd=here.parent, check=True).stdout.strip()
        commit += " with uncommitted changes to onnxopt/ or passes/" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), cpu)
    except OSError:
        pass
    passes = expand_pipeline(DEFAULT_PIPELINE)
    return [
        (f"- onnxopt {onnxopt.__version__} (commit {commit}); default pipeline {', '.join(DEFAULT_PIPELINE)} = "
         f"{len(passes)} passes: {', '.join(passes) or 'none registered'}"),
        (f"- onnxruntime {onnxruntime.__version__}, onnx {onnx.__version__}, onnxoptimizer {onnxoptimizer.__version__}, "
         f"onnxsim {str(onnxsim.__version__).lstrip('v')}, onnxslim {onnxslim.__version__}, numpy {np.__version__}"),
        (f"- Python {platform.python_version()} on {platform.platform()}; CPU {cpu} ({os.cpu_count()} cores); "
         f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end"),
    ]


def write_report(rows: list[Row], tools: list[str], args: argparse.Namespace, command: str, path: Path) -> str:
    """The Markdown report; also returned for printing."""
    summary = summarize(rows, tools)
    rounds = (f"median of ≥ {args.runs} rounds (≥ {args.min_time:g} s per level) in {args.blocks} blocks, each "
              f"with freshly created sessions and {args.warmup} warm-up rounds")
    clock = ("the timing thread's CPU time (ORT computes on the calling thread with one intra-op thread, so this is "
             "its latency without the time other jobs on a shared machine took the core)" if args.clock == "cpu"
             else "wall-clock time")
    text = "\n".join([
        "# Optimizers compared on the benchmark suite",
        "",
        f"Generated {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by",
        "",
        f"    {command}",
        "",
        (f"Latency: ONNX Runtime CPU, 1 thread, measured as {clock}; all candidates of a model interleaved "
        "in one process (every round runs them all, in a fresh random order), "
        f"{rounds}; ratio = candidate median / original median in the same rounds (< 1 is faster), "
        "with its 95% bootstrap interval over the paired rounds in brackets (this box is shared: read a ratio "
        "whose interval spans 1 as unchanged). "
        "DISABLE_ALL is how a plain runtime sees the graph; ENABLE_ALL adds ORT's own fusions. "
        f"Outputs: suite inputs (benchmarks/suite.py), ORT with optimizations off; equal when max abs Δ ≤ "
        f"{args.tolerance:g} × the output's largest magnitude. Nodes count subgraph nodes. Optimize time runs from "
        f"loading the model to the saved file (ORT: session creation), the fastest of {args.optimize_repeats} runs; "
        "peak RSS is the tool's whole process."),
        "",
        "## Geometric means (ratio to the original)",
        "",
        *summary_table(summary),
        "",
        control_line(rows),
        "",
        "## Targets (issue 3)",
        "",
        *targets(rows, summary),
        "",
        "## Per model",
        "",
        *model_table(rows),
        "",
        "## Environment",
        "",
        *environment(),
        "",
    ])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return text


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and write the report."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_worker"]:
        _worker(argv[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"models {','.join(QUICK)}; 15 runs, 0.3 s, 2 blocks, 3 warm-up")
    parser.add_argument("--models", help=f"comma-separated subset of: {','.join(SUITE)}")
    parser.add_argument("--tools", help=f"comma-separated subset of: {','.join(TOOLS)}")
    parser.add_argument("--runs", type=int, help="minimum timed rounds per level (default 50)")
    parser.add_argument("--min-time", type=float, help="minimum seconds of timed rounds per level (default 2)")
    parser.add_argument("--warmup", type=int, help="warm-up rounds per level (default 5)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="cpu: the timing thread's CPU time, immune to other jobs taking the core (default)")
    parser.add_argument("--blocks", type=int, help="times the sessions are created afresh per level (default 5)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="equal when max|Δ| ≤ this × output scale")
    parser.add_argument("--timeout", type=float, default=900, help="seconds one tool may take on one model")
    parser.add_argument("--optimize-repeats", type=int, default=3, help="optimize time is the fastest of this many runs")
    parser.add_argument("--out", type=Path, help="report path (default: benchmarks/results/optimizers.md for the "
                        "whole suite and all tools, benchmarks/.cache/optimizers-partial.md otherwise)")
    parser.add_argument("--json", type=Path, help="also write the raw rows as JSON here")
    args = parser.parse_args(argv)
    quick = args.quick
    args.runs = args.runs or (15 if quick else 50)
    args.min_time = args.min_time if args.min_time is not None else (0.3 if quick else 2.0)
    args.warmup = args.warmup if args.warmup is not None else (3 if quick else 5)
    args.blocks = max(1, args.blocks or (2 if quick else 5))
    names = args.models.split(",") if args.models else list(QUICK if quick else SUITE)
    tools = args.tools.split(",") if args.tools else list(TOOLS)
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        parser.error(f"unknown tools {unknown}; choose from {','.join(TOOLS)}")
    if args.out is None:
        args.out = RESULTS if names == list(SUITE) and tools == list(TOOLS) else cache_dir() / "optimizers-partial.md"
    command = "python " + shlex.join([os.path.relpath(__file__)] + argv)
    rows: list[Row] = []
    workroot = cache_dir() / "runs"
    for model in suite_models(names):
        _say(f"{model.name}: {count_nodes(onnx.load(str(model.path), load_external_data=False).graph)} nodes")
        rows += run_model(model, tools, args, workroot / model.name)
        if args.json:
            args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    text = write_report(rows, tools, args, command, args.out)
    print()
    print(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
