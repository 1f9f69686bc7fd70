"""Harness overhead: median latency of onnxopt.bench.benchmark() vs a bare session.run loop, on one scalar Add.

Both use one intra-op thread and the same inputs; each repetition times the bare loop and benchmark()
back to back (alternating which goes first), and the ratio of their medians is reported. The goal is
a ratio within 1.2. Run: python benchmarks/bench_harness_overhead.py [--runs N] [--repeats R]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from onnxopt.bench import benchmark

LIMIT = 1.2


def scalar_add_model() -> onnx.ModelProto:
    """c = a + b on float scalars."""
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, []) for n in "abc"]
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["c"])], "scalar_add", vi[:2], vi[2:])
    return helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17)])


def bare_median_ns(session: ort.InferenceSession, feeds: dict[str, np.ndarray], runs: int, warmup: int) -> float:
    """Median of a plain timed ``session.run`` loop."""
    for _ in range(warmup):
        session.run(None, feeds)
    times = [0] * runs
    clock = time.perf_counter_ns
    for i in range(runs):
        t0 = clock()
        session.run(None, feeds)
        times[i] = clock() - t0
    return float(statistics.median(times))


def harness_median_ns(model: onnx.ModelProto, runs: int, warmup: int) -> float:
    """Median measured by benchmark() for the same model, inputs and thread count."""
    result = benchmark([model], threads=(1,), shapes=None, runs=runs, warmup=warmup, progress=False)
    return result.measurements[0].stats.median_ms * 1e6


def main(argv: list[str] | None = None) -> int:
    """Print per-repetition medians and the overall ratio; exit 1 when it exceeds the limit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)

    model = scalar_add_model()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    # benchmark() feeds seeded random values in [-1, 1); the values do not change an Add's speed.
    feeds = {"a": np.array(0.5, np.float32), "b": np.array(-0.25, np.float32)}

    ratios = []
    print(f"onnxruntime {ort.__version__}; {args.repeats} repetitions of {args.runs} runs")
    print(f"{'rep':>3}  {'bare µs':>8}  {'harness µs':>10}  {'ratio':>6}")
    for rep in range(args.repeats):
        if rep % 2 == 0:
            bare = bare_median_ns(session, feeds, args.runs, args.warmup)
            harness = harness_median_ns(model, args.runs, args.warmup)
        else:
            harness = harness_median_ns(model, args.runs, args.warmup)
            bare = bare_median_ns(session, feeds, args.runs, args.warmup)
        ratios.append(harness / bare)
        print(f"{rep:>3}  {bare / 1e3:>8.2f}  {harness / 1e3:>10.2f}  {ratios[-1]:>6.3f}")
    ratio = statistics.median(ratios)
    verdict = "within" if ratio <= LIMIT else "OVER"
    spread = f"min {min(ratios):.3f}, max {max(ratios):.3f}"
    print(f"median ratio harness/bare: {ratio:.3f} ({spread}) — {verdict} {LIMIT}")
    return 0 if ratio <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
