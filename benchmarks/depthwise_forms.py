"""Depthwise convolutions at ORT_DISABLE_ALL, in every standard-op form: is there a faster one to rewrite into?

At ORT_DISABLE_ALL ONNX Runtime runs a depthwise Conv through its plain Conv kernel, one small GEMM per
channel, at a fraction of memory speed: on PP-OCRv4 det they take a quarter of the run. This script takes every
depthwise Conv of the chosen suite models (its shapes as the suite runs it), builds it alone in each standard
form that computes the same thing, checks the outputs agree, and times the forms side by side:

- ``plain``: the Conv as exported (group = channels, weight C×1×k×k);
- ``grouped-g``: a grouped Conv with g channels per group and a block-diagonal weight (g× the arithmetic, g×
  fewer GEMMs, each g times taller);
- ``shifted``: Pad, then for each of the k² taps a strided Slice times that tap's per-channel weight, summed
  (no GEMM at all: k² vectorized multiply-adds over the whole tensor).

Times: one intra-op thread, ORT_DISABLE_ALL, median CPU time of --runs interleaved rounds; a form's ratio is its
median over plain's (< 1 would be a rewrite worth having).
Run: python benchmarks/depthwise_forms.py [--models ppocr_det,ppocr_cls] [--runs 30]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from _measure import session, time_interleaved  # noqa: E402
from suite import suite_models  # noqa: E402

MODELS = ("ppocr_det", "ppocr_rec", "ppocr_cls", "shufflenet")
GROUP_SIZES = (2, 4, 8)
TOLERANCE = 1e-4  # of the output's largest magnitude


def depthwise_convs(model_path: Path, input_shapes: dict) -> Counter:
    """(channels, height, width, kernel, strides, pads) → how many depthwise Convs of that shape the model runs."""
    import onnxopt

    model = onnxopt.optimize(str(model_path), input_shapes=input_shapes).model
    proto = onnx.shape_inference.infer_shapes(onnxopt.ir.to_proto(model))
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
              for vi in [*proto.graph.value_info, *proto.graph.input]}
    weights = {t.name: t.dims for t in proto.graph.initializer}
    found: Counter = Counter()
    for node in proto.graph.node:
        if node.op_type != "Conv":
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        weight, shape = weights.get(node.input[1]), shapes.get(node.input[0])
        if weight is None or not shape or len(shape) != 4 or 0 in shape:
            continue
        channels = shape[1]
        if attrs.get("group", 1) != channels or list(weight[:2]) != [channels, 1] or weight[2] != weight[3]:
            continue
        if any(d != 1 for d in attrs.get("dilations", [1, 1])) or "auto_pad" in attrs:
            continue
        strides = tuple(attrs.get("strides", [1, 1]))
        found[(channels, shape[2], shape[3], int(weight[2]), strides, tuple(attrs.get("pads", [0] * 4)))] += 1
    return found


def build(form: str, channels: int, height: int, width: int, kernel: int, strides: tuple, pads: tuple,
          weight: np.ndarray, bias: np.ndarray) -> onnx.ModelProto:
    """One depthwise convolution, written in ``form`` (plain, grouped-g or shifted)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, height, width])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inits, nodes = [numpy_helper.from_array(bias, "b")], []
    if form == "plain":
        inits.append(numpy_helper.from_array(weight, "w"))
        nodes.append(helper.make_node("Conv", ["x", "w", "b"], ["y"], group=channels, pads=list(pads),
                                      strides=list(strides)))
    elif form.startswith("grouped-"):
        size = int(form.split("-")[1])
        dense = np.zeros((channels, size, kernel, kernel), np.float32)
        dense[np.arange(channels), np.arange(channels) % size] = weight[:, 0]
        inits.append(numpy_helper.from_array(dense, "w"))
        nodes.append(helper.make_node("Conv", ["x", "w", "b"], ["y"], group=channels // size, pads=list(pads),
                                      strides=list(strides)))
    else:
        top, left, bottom, right = pads
        out_h = (height + top + bottom - kernel) // strides[0] + 1
        out_w = (width + left + right - kernel) // strides[1] + 1
        inits += [numpy_helper.from_array(np.array([0, 0, top, left, 0, 0, bottom, right], np.int64), "pads"),
                  numpy_helper.from_array(np.array([2, 3], np.int64), "axes"),
                  numpy_helper.from_array(np.array(strides, np.int64), "steps")]
        nodes.append(helper.make_node("Pad", ["x", "pads"], ["padded"]))
        total = "b4"
        inits.append(numpy_helper.from_array(bias.reshape(1, channels, 1, 1), "b4"))
        for i in range(kernel):
            for j in range(kernel):
                tap = f"{i}_{j}"
                end = [i + strides[0] * (out_h - 1) + 1, j + strides[1] * (out_w - 1) + 1]
                inits += [
                    numpy_helper.from_array(np.array([i, j], np.int64), f"start{tap}"),
                    numpy_helper.from_array(np.array(end, np.int64), f"end{tap}"),
                    numpy_helper.from_array(weight[:, 0, i, j].reshape(1, channels, 1, 1), f"w{tap}"),
                ]
                last = i == kernel - 1 and j == kernel - 1
                nodes += [
                    helper.make_node("Slice", ["padded", f"start{tap}", f"end{tap}", "axes", "steps"], [f"s{tap}"]),
                    helper.make_node("Mul", [f"s{tap}", f"w{tap}"], [f"m{tap}"]),
                    helper.make_node("Add", [total, f"m{tap}"], ["y" if last else f"sum{tap}"]),
                ]
                total = f"sum{tap}"
    graph = helper.make_graph(nodes, form, [x], [y], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def time_forms(config: tuple, runs: int, work: Path) -> dict[str, float]:
    """Median µs of every form of one depthwise Conv, timed side by side; outputs checked against plain."""
    channels, height, width, kernel, strides, pads = config
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((channels, 1, kernel, kernel)).astype(np.float32)
    bias = rng.standard_normal(channels).astype(np.float32)
    forms = ["plain", *(f"grouped-{g}" for g in GROUP_SIZES if channels % g == 0), "shifted"]
    feeds = {"x": rng.standard_normal((1, channels, height, width)).astype(np.float32)}
    sessions = {}
    for form in forms:
        path = work / f"{form}.onnx"
        onnx.save(build(form, channels, height, width, kernel, strides, pads, weight, bias), path)
        sessions[form] = session(path, "disable")
    reference = sessions["plain"].run(None, feeds)[0]
    for form, sess in sessions.items():
        result = sess.run(None, feeds)[0]
        if result.shape != reference.shape or np.abs(result - reference).max() > TOLERANCE * np.abs(reference).max():
            raise AssertionError(f"{form} differs from plain on {config}")
    calls = [lambda s=sess: s.run(None, feeds) for sess in sessions.values()]
    cpu, _ = time_interleaved(calls, runs)
    return {form: float(np.median(ns)) / 1e3 for form, ns in zip(sessions, cpu)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated suite models")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    headers = ["plain µs", *(f"grouped-{g}" for g in GROUP_SIZES), "shifted"]
    print("| model | channels × H × W, k×k / stride | count | " + " | ".join(headers) + " |")
    print("|---|---|--:|" + "--:|" * len(headers))
    totals: dict[str, Counter] = {}
    with tempfile.TemporaryDirectory(prefix="onnxopt-dw-") as tmp:
        for model in suite_models(args.models.split(",")):
            convs = depthwise_convs(model.path, dict(model.input_shapes))
            total = totals.setdefault(model.name, Counter())
            for config, count in sorted(convs.items()):
                times = time_forms(config, args.runs, Path(tmp))
                plain = times["plain"]
                cells = [f"{plain:.1f}"] + [
                    f"{times[f'grouped-{g}'] / plain:.2f}" if f"grouped-{g}" in times else "—" for g in GROUP_SIZES
                ] + [f"{times['shifted'] / plain:.2f}"]
                c, h, w, k, s, _ = config
                stride = f"{s[0]}" if s[0] == s[1] else f"{s[0]}×{s[1]}"
                print(f"| {model.name} | {c} × {h} × {w}, {k}×{k} / {stride} | {count} | " + " | ".join(cells) + " |",
                      flush=True)
                total["plain"] += count * plain
                total["best"] += count * min(times.values())
    for name, total in totals.items():
        if total["plain"]:
            print(f"\n{name}: depthwise convolutions {total['plain'] / 1e3:.2f} ms plain, "
                  f"{total['best'] / 1e3:.2f} ms taking the fastest form of each")


if __name__ == "__main__":
    main()
