"""Where ONNX Runtime spends a model's time, per op type, from its profiler: what bounds a rewrite.

    python benchmarks/op_profile.py floor                      # every suite model, onnxopt's default target
    python benchmarks/op_profile.py floor --target ort --models resnet50,ppocr_cls
    python benchmarks/op_profile.py compare A.onnx B.onnx --shape 1,3,48,192 [--level all]

``floor`` profiles each suite model and onnxopt's output of it at ORT_DISABLE_ALL (one thread, runs
interleaved), and reports the share of the convolutions (Conv, ConvTranspose, FusedConv) in the optimized
model's run time and the *floor*: its convolution kernel time over the original's run time, the ratio it
would reach if every other op and all the framework's work between kernels took no time. ORT_DISABLE_ALL
runs its plain Conv kernel whatever the graph around it looks like, so no rewrite into standard ops gets
below that floor; only a different kernel (ORT's blocked NCHWc layout, which `--target ort-cpu` writes) does.

``compare`` profiles two models on the same random input and prints their kernel time per op type side by
side, with convolutions split into depthwise, pointwise (1x1) and kxk, keyed by weight shape with
``--detail`` (used to see which int8 kernels cost more than their float versions).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import onnx  # noqa: E402

from _measure import LEVELS, geomean, session  # noqa: E402
from suite import suite_models  # noqa: E402

CONVOLUTIONS = ("Conv", "ConvTranspose", "FusedConv")
WARM_UP = 5
RUN = "(whole run)"  # the session's run time: kernels plus the framework's work between them


def profile(paths: list[str | os.PathLike], feeds: dict[str, np.ndarray], level: str, runs: int,
            detail: bool = False) -> list[Counter]:
    """Per model, the mean kernel microseconds per run after WARM_UP runs, keyed by op type (with detail:
    convolutions by kind and weight shape). The models run interleaved, so they share the machine's load."""
    with tempfile.TemporaryDirectory() as tmp:
        sessions, kinds = [], []
        for k, path in enumerate(paths):
            optimized, prefix = os.path.join(tmp, f"optimized{k}.onnx"), os.path.join(tmp, f"profile{k}")
            sessions.append(session(path, level, optimized_path=optimized, profile_prefix=prefix))
            kinds.append(_conv_kinds(onnx.load(optimized, load_external_data=False).graph) if detail else {})
        for _ in range(WARM_UP + runs):
            for each in sessions:
                each.run(None, feeds)
        return [_per_op(s.end_profiling(), names, runs) for s, names in zip(sessions, kinds)]


def _per_op(profile_file: str, kinds: dict[str, str], runs: int) -> Counter:
    with open(profile_file) as f:
        events = json.load(f)
    measured_from = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e["name"] == "model_run")[WARM_UP]
    times: Counter = Counter()
    for e in events:
        if e.get("cat") == "Session" and e["name"] == "model_run" and e["ts"] >= measured_from:
            times[RUN] += float(e["dur"])
        elif e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= measured_from:
            times[kinds.get(e["name"][: -len("_kernel_time")], e["args"]["op_name"])] += float(e["dur"])
    return Counter({k: v / runs for k, v in times.items()})


def _conv_kinds(graph: onnx.GraphProto) -> dict[str, str]:
    """Node name → 'op depthwise|pointwise|kxk weight-shape' for the convolutions whose weight is an initializer."""
    shapes = {t.name: tuple(t.dims) for t in graph.initializer}
    kinds = {}
    for node in graph.node:
        if "Conv" not in node.op_type:
            continue
        weight = node.input[3] if node.op_type == "QLinearConv" else node.input[1]
        shape = shapes.get(weight)
        if shape is None or len(shape) != 4:
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        kind = "depthwise" if group > 1 and shape[1] == 1 else "pointwise" if shape[2:] == (1, 1) else "kxk"
        kinds[node.name] = f"{node.op_type} {kind} {'x'.join(map(str, shape))}"
    return kinds


def floor(args: argparse.Namespace) -> None:
    """The floor table over the suite models."""
    import onnxopt

    rows, floors, ratios = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for model in suite_models(args.models.split(",") if args.models else None):
            out = Path(tmp) / f"{model.name}.onnx"
            onnxopt.save(onnxopt.optimize(str(model.path), target=args.target).model, out)
            feeds = model.feeds(seed=0)
            before, after = profile([model.path, out], feeds, "disable", args.runs)
            run_before, run_after = before.pop(RUN), after.pop(RUN)
            conv = sum(after[op] for op in CONVOLUTIONS)
            ratio, bound, share = run_after / run_before, conv / run_before, conv / run_after
            ratios.append(ratio)
            floors.append(bound)
            rows.append((model.name, run_before / 1e3, run_after / 1e3, ratio, share, bound))
            print(f"{model.name}: {ratio:.3f}, convolutions {share:.0%}, floor {bound:.3f}", file=sys.stderr)
    print(f"Run time under ORT's profiler at ORT_DISABLE_ALL, 1 thread, mean of {args.runs} interleaved runs; "
          f"onnxopt --target {args.target}; floor = the optimized model's convolution kernel time / the original's run "
          "time\n")
    print("| model | original ms | optimized ms | ratio | convolutions' share of the run | floor |")
    print("|---|--:|--:|--:|--:|--:|")
    for name, before_ms, after_ms, ratio, share, bound in rows:
        print(f"| {name} | {before_ms:.2f} | {after_ms:.2f} | {ratio:.3f} | {share:.0%} | {bound:.3f} |")
    print(f"| **geometric mean** | | | {geomean(ratios):.3f} | | {geomean(floors):.3f} |")


def compare(args: argparse.Namespace) -> None:
    """Two models' kernel time per op type, side by side."""
    import onnxruntime as ort

    shape = [int(d) for d in args.shape.split(",")]
    inputs = ort.InferenceSession(args.first, providers=["CPUExecutionProvider"]).get_inputs()
    rng = np.random.default_rng(0)
    feeds = {i.name: rng.random(shape, dtype=np.float32) for i in inputs}
    first, second = profile([args.first, args.second], feeds, args.level, args.runs, args.detail)
    runs = first.pop(RUN), second.pop(RUN)
    print(f"Kernel µs per run at {LEVELS[args.level]}, 1 thread, mean of {args.runs} runs, input {args.shape}\n")
    print(f"| op | {Path(args.first).name} | {Path(args.second).name} |")
    print("|---|--:|--:|")
    for op in sorted(set(first) | set(second), key=lambda k: -(first[k] + second[k])):
        print(f"| {op} | {first[op]:.1f} | {second[op]:.1f} |")
    print(f"| **kernels** | {sum(first.values()):.1f} | {sum(second.values()):.1f} |")
    print(f"| **{RUN}** | {runs[0]:.1f} | {runs[1]:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("floor", help="conv share and the standard-op floor at ORT_DISABLE_ALL over the suite")
    f.add_argument("--models", help="comma-separated suite models (default: all)")
    f.add_argument("--target", default="onnx", choices=("onnx", "ort"))
    f.add_argument("--runs", type=int, default=30)
    c = sub.add_parser("compare", help="two models' kernel time per op type")
    c.add_argument("first")
    c.add_argument("second")
    c.add_argument("--shape", required=True, help="shape of every input, e.g. 1,3,48,192")
    c.add_argument("--level", default="all", choices=tuple(LEVELS))
    c.add_argument("--runs", type=int, default=200)
    c.add_argument("--detail", action="store_true", help="split convolutions by kind and weight shape")
    args = parser.parse_args()
    floor(args) if args.command == "floor" else compare(args)


if __name__ == "__main__":
    main()
