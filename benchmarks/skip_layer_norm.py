"""ONNX Runtime's CPU SkipLayerNormalization kernel against the Add + LayerNormalization it replaces.

`--target ort` writes com.microsoft SkipLayerNormalization for Add → LayerNormalization, as ORT's own optimizer does
at ORT_ENABLE_EXTENDED and above. This times both forms of one residual block alone, side by side, on the installed
onnxruntime: ORT_DISABLE_ALL (so neither form is rewritten), one intra-op thread, the calling thread's CPU time,
median of --runs interleaved rounds, outputs checked equal.
Run: python benchmarks/skip_layer_norm.py [--runs 300]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

SHAPES = ((1, 8, 768), (1, 128, 64), (1, 128, 768), (1, 512, 384), (8, 128, 768))


def residual_block(shape: tuple[int, int, int], fused: bool) -> bytes:
    """LayerNormalization(x + skip) over the last axis, as two standard ops or one SkipLayerNormalization."""
    hidden = shape[-1]
    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)) for name in ("x", "skip")]
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))
    weights = [numpy_helper.from_array(np.linspace(0.5, 1.5, hidden, dtype=np.float32), "gamma"),
               numpy_helper.from_array(np.linspace(-1, 1, hidden, dtype=np.float32), "beta")]
    if fused:
        nodes = [helper.make_node("SkipLayerNormalization", ["x", "skip", "gamma", "beta"], ["y"],
                                  domain="com.microsoft", epsilon=1e-5)]
    else:
        nodes = [helper.make_node("Add", ["x", "skip"], ["sum"]),
                 helper.make_node("LayerNormalization", ["sum", "gamma", "beta"], ["y"], axis=-1, epsilon=1e-5)]
    graph = helper.make_graph(nodes, "residual", inputs, [output], weights)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=8).SerializeToString()


def session(model: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"onnxruntime {ort.__version__}, ORT_DISABLE_ALL, 1 thread, median of {args.runs} interleaved rounds\n")
    print("| input | Add + LayerNormalization µs | SkipLayerNormalization µs | ratio | max abs diff |")
    print("|---|--:|--:|--:|--:|")
    for shape in SHAPES:
        plain, fused = session(residual_block(shape, False)), session(residual_block(shape, True))
        feeds = {"x": rng.standard_normal(shape).astype(np.float32),
                 "skip": rng.standard_normal(shape).astype(np.float32)}
        diff = float(np.abs(plain.run(None, feeds)[0] - fused.run(None, feeds)[0]).max())
        times: dict[str, list[int]] = {"plain": [], "fused": []}
        for _ in range(args.runs):
            for name, sess in sorted({"plain": plain, "fused": fused}.items(), key=lambda _: rng.random()):
                start = time.thread_time_ns()
                sess.run(None, feeds)
                times[name].append(time.thread_time_ns() - start)
        plain_us, fused_us = (float(np.median(times[name])) / 1e3 for name in ("plain", "fused"))
        print(f"| {'×'.join(map(str, shape))} | {plain_us:.1f} | {fused_us:.1f} | {fused_us / plain_us:.2f} | "
              f"{diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
