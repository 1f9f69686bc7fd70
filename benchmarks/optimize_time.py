"""Optimize time of onnxopt and its peers on the suite, cold and warm, side by side; writes results/optimize_time.md.

Cold: in a fresh process, from importing the tool to the saved file (what one `onnxopt optimize` call
costs). Warm: the fastest of --repeats further runs in that process (what a build pipeline that keeps
the tool loaded pays). Models are loaded from disk and saved in every run, by every tool.
Run: python benchmarks/optimize_time.py [--models a,b] [--repeats 3]
"""
from __future__ import annotations

import argparse
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


def _worker(tool: str, src: str, dst: str, repeats: int) -> None:
    start = time.perf_counter()
    optimize_with(tool, src, dst)
    cold = time.perf_counter() - start
    warm = min(optimize_with(tool, src, dst) for _ in range(repeats))
    emit_result({"cold": cold, "warm": warm})


def measure(names: list[str], repeats: int, timeout: float) -> dict[tuple[str, str], dict | None]:
    """(model, tool) → {'cold': s, 'warm': s}, or None when the tool failed on the model."""
    results: dict[tuple[str, str], dict | None] = {}
    with tempfile.TemporaryDirectory(prefix="onnxopt-time-") as work:
        for model in suite_models(names):
            for tool in TOOLS:
                out, log = Path(work) / f"{model.name}.{tool}.onnx", Path(work) / f"{model.name}.{tool}.log"
                child = run_child([sys.executable, __file__, "_worker", tool, str(model.path), str(out), str(repeats)],
                                  log, timeout)
                results[(model.name, tool)] = child.result if child.returncode == 0 else None
                shown = child.result or {"cold": float("nan"), "warm": float("nan")}
                print(f"{model.name:26s} {tool:14s} cold {shown['cold']:6.2f} s  warm {shown['warm']:6.2f} s", flush=True)
    return results


def report(names: list[str], results: dict, repeats: int) -> list[str]:
    """The Markdown report: per-model table and, for onnxopt's targets, the models slower than onnx-simplifier."""
    lines = ["# Optimize time, cold and warm", "",
             f"Command: `python benchmarks/optimize_time.py --repeats {repeats}`", "",
             "Cold: a fresh process, from importing the tool to the saved file. Warm: the fastest of "
             f"{repeats} more runs in that process. Seconds; — where the tool failed.", "",
             "| model | " + " | ".join(f"{t} cold | {t} warm" for t in TOOLS) + " |",
             "|---|" + "--:|" * (2 * len(TOOLS))]

    def cell(model: str, tool: str, kind: str) -> str:
        got = results.get((model, tool))
        return f"{got[kind]:.2f}" if got else "—"

    for model in names:
        lines.append(f"| {model} | " + " | ".join(f"{cell(model, t, 'cold')} | {cell(model, t, 'warm')}" for t in TOOLS) + " |")
    lines.append("")
    for tool in ("onnxopt", "onnxopt-ort"):
        for kind in ("cold", "warm"):
            slower = [f"{m} ({results[(m, tool)][kind]:.2f} s > {results[(m, 'onnxsim')][kind]:.2f} s)" for m in names
                      if results.get((m, tool)) and results.get((m, "onnxsim"))
                      and results[(m, tool)][kind] > results[(m, "onnxsim")][kind]]
            verdict = "PASS" if not slower else "FAIL"
            lines.append(f"- {verdict} {tool} {kind}: optimize time ≤ onnx-simplifier's on every model it completes"
                         + (f" — slower on: {', '.join(slower)}" if slower else ""))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help=f"comma-separated subset of: {','.join(SUITE)}")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    names = args.models.split(",") if args.models else list(SUITE)
    results = measure(names, args.repeats, args.timeout)
    args.out.write_text("\n".join(report(names, results, args.repeats)) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        _worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        main()
