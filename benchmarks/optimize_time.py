"""Optimize time of onnxopt and its peers on the suite, cold and warm, side by side; writes results/optimize_time.md.

Cold: in a fresh process per tool, from importing the tool to the saved file (what one `onnxopt optimize` call
costs); --cold-repeats rounds of one fresh process per tool, in a fresh random order per round, and a tool's cold
time is its fastest round. Warm: one process per model imports every tool, runs each once to warm up, then --repeats rounds that
run every tool once each, in a fresh random order per round; a tool's warm time is its fastest round (what a
build pipeline that keeps the tool loaded pays). Interleaving keeps the tools side by side through the load
swings of a shared machine. Models are loaded from disk and saved in every run, by every tool.
Run: python benchmarks/optimize_time.py [--models a,b] [--repeats 7] [--cold-repeats 3]
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import emit_result, run_child  # noqa: E402
from compare_optimizers import optimize_with  # noqa: E402
from suite import SUITE, suite_models  # noqa: E402

TOOLS = ("onnxopt", "onnxopt-ort", "onnxsim", "onnxslim", "onnxoptimizer")
RESULTS = Path(__file__).resolve().parent / "results" / "optimize_time.md"


def _cold_worker(tool: str, src: str, dst: str) -> None:
    start = time.perf_counter()
    optimize_with(tool, src, dst)
    emit_result({"cold": time.perf_counter() - start})


def _warm_worker(tools: list[str], src: str, work: str, repeats: int) -> None:
    """Every tool that completes its warm-up run, timed in `repeats` interleaved rounds: {tool: [seconds, …]}."""
    times: dict[str, list[float]] = {}
    for tool in tools:
        try:
            optimize_with(tool, src, f"{work}/{tool}.onnx")
            times[tool] = []
        except Exception as exc:  # a tool that fails on the model has no warm time; the others go on
            print(f"{tool} failed: {type(exc).__name__}: {exc}", flush=True)
    rng = random.Random(0)
    for _ in range(repeats):
        order = list(times)
        rng.shuffle(order)
        for tool in order:
            times[tool].append(optimize_with(tool, src, f"{work}/{tool}.onnx"))
    emit_result(times)


def _cold_times(model, work: str, cold_repeats: int, timeout: float) -> dict[str, float]:
    """Each tool's fastest of `cold_repeats` fresh-process runs, the tools interleaved in a random order per round;
    a tool that fails its first run is not run again."""
    times: dict[str, list[float]] = {tool: [] for tool in TOOLS}
    rng = random.Random(1)
    for round_ in range(cold_repeats):
        order = [tool for tool in TOOLS if round_ == 0 or times[tool]]
        rng.shuffle(order)
        for tool in order:
            out, log = Path(work) / f"{model.name}.{tool}.onnx", Path(work) / f"{model.name}.{tool}.log"
            child = run_child([sys.executable, __file__, "_cold", tool, str(model.path), str(out)], log, timeout)
            if child.returncode == 0 and child.result:
                times[tool].append(child.result["cold"])
    return {tool: min(runs) for tool, runs in times.items() if runs}


def measure(names: list[str], repeats: int, cold_repeats: int, timeout: float) -> dict[tuple[str, str], dict | None]:
    """(model, tool) → {'cold': s, 'warm': s}, or None when the tool failed on the model."""
    results: dict[tuple[str, str], dict | None] = {}
    with tempfile.TemporaryDirectory(prefix="onnxopt-time-") as work:
        for model in suite_models(names):
            cold = _cold_times(model, work, cold_repeats, timeout)
            child = run_child([sys.executable, __file__, "_warm", ",".join(cold), str(model.path), work, str(repeats)],
                              Path(work) / f"{model.name}.warm.log", timeout)
            warm = child.result if child.returncode == 0 and child.result else {}
            for tool in TOOLS:
                got = {"cold": cold[tool], "warm": min(warm[tool])} if tool in cold and warm.get(tool) else None
                results[(model.name, tool)] = got
                shown = got or {"cold": float("nan"), "warm": float("nan")}
                print(f"{model.name:26s} {tool:14s} cold {shown['cold'] * 1000:8.1f} ms  warm {shown['warm'] * 1000:8.1f} ms",
                      flush=True)
    return results


def report(names: list[str], results: dict, repeats: int, cold_repeats: int) -> list[str]:
    """The Markdown report: per-model table and, for onnxopt's targets, the models slower than onnx-simplifier."""
    lines = ["# Optimize time, cold and warm", "",
             f"Command: `python benchmarks/optimize_time.py --repeats {repeats} --cold-repeats {cold_repeats}`", "",
             "Cold: a fresh process per tool, from importing the tool to the saved file; the fastest of "
             f"{cold_repeats} rounds, each round running every tool once in a fresh random order. Warm: the fastest of "
             f"{repeats} rounds in one process per model, each round running every tool once in a fresh random order "
             "(side by side through the machine's load swings). Milliseconds; — where the tool failed.", "",
             "| model | " + " | ".join(f"{t} cold | {t} warm" for t in TOOLS) + " |",
             "|---|" + "--:|" * (2 * len(TOOLS))]

    def cell(model: str, tool: str, kind: str) -> str:
        got = results.get((model, tool))
        return f"{got[kind] * 1000:.1f}" if got else "—"

    for model in names:
        lines.append(f"| {model} | " + " | ".join(f"{cell(model, t, 'cold')} | {cell(model, t, 'warm')}" for t in TOOLS) + " |")
    lines.append("")
    for tool in ("onnxopt", "onnxopt-ort"):
        for kind in ("cold", "warm"):
            slower = [f"{m} ({results[(m, tool)][kind] * 1000:.1f} ms > {results[(m, 'onnxsim')][kind] * 1000:.1f} ms)" for m in names
                      if results.get((m, tool)) and results.get((m, "onnxsim"))
                      and results[(m, tool)][kind] > results[(m, "onnxsim")][kind]]
            verdict = "PASS" if not slower else "FAIL"
            lines.append(f"- {verdict} {tool} {kind}: optimize time ≤ onnx-simplifier's on every model it completes"
                         + (f" — slower on: {', '.join(slower)}" if slower else ""))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help=f"comma-separated subset of: {','.join(SUITE)}")
    parser.add_argument("--repeats", type=int, default=7, help="warm rounds (default 7)")
    parser.add_argument("--cold-repeats", type=int, default=3, help="cold rounds, one fresh process per tool (default 3)")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    names = args.models.split(",") if args.models else list(SUITE)
    results = measure(names, args.repeats, args.cold_repeats, args.timeout)
    args.out.write_text("\n".join(report(names, results, args.repeats, args.cold_repeats)) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_cold":
        _cold_worker(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) > 1 and sys.argv[1] == "_warm":
        _warm_worker(sys.argv[2].split(","), sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        main()
