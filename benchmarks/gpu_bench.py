"""fp32 vs optimized vs int8 on ONNX Runtime's CUDA and CPU providers, one prepared run for a GPU machine.

    python benchmarks/gpu_bench.py OUT_DIR [--providers cuda,cpu] [--runs 100] [--models resnet50,yolov8n]

Each model is optimized with the default pipeline and with `--target ort`, quantized (static QDQ, min-max, 32
generated calibration samples in the model's input range) plainly and with `--optimize-for latency` on the first
provider, and the five are timed interleaved on every provider. Tables are printed and saved as
OUT_DIR/<model>.{md,json}; what the latency search chose is printed with them.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

import onnxopt  # noqa: E402
from onnxopt.bench import benchmark  # noqa: E402
from suite import suite_models  # noqa: E402


def calibration(shapes: dict, ranges: dict, count: int = 32, seed: int = 0):
    """Random float samples in each input's declared range (default [-1, 1])."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield {name: rng.uniform(*ranges.get(name, (-1.0, 1.0)), size=shape).astype(np.float32)
               for name, shape in shapes.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--providers", default="cuda,cpu")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--models", default="resnet50,yolov8n")
    parser.add_argument("--work", default="/tmp/onnxopt-gpu-bench", help="where the optimized and int8 models go")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.work, exist_ok=True)
    wanted = args.models.split(",")
    for model in suite_models(wanted, fetch=False):
        started = time.perf_counter()
        paths = {name: os.path.join(args.work, f"{model.name}.{name}.onnx")
                 for name in ("optimized", "ort", "int8", "int8-latency")}
        onnxopt.save(onnxopt.optimize(str(model.path)).model, paths["optimized"])
        onnxopt.save(onnxopt.optimize(str(model.path), target="ort").model, paths["ort"])
        int8, _ = onnxopt.quantize(paths["optimized"], calibration(model.input_shapes, model.input_ranges),
                                   latency_check=False, progress=False)
        onnxopt.save(int8, paths["int8"])
        provider = args.providers.split(",")[0]
        int8, report = onnxopt.quantize(paths["optimized"], calibration(model.input_shapes, model.input_ranges),
                                        optimize_for="latency", provider=provider, progress=False)
        onnxopt.save(int8, paths["int8-latency"])
        print(f"== {model.name}: optimized and quantized in {time.perf_counter() - started:.1f} s", flush=True)
        for step in report.latency_steps:
            print(f"latency search on {provider}: {step.detail}", flush=True)
        for check in report.latency:
            print(f"quantize's own check on {check.provider}: fp32 {check.fp32_ms:.3f} ms, int8 {check.int8_ms:.3f} ms", flush=True)
        result = benchmark(
            {"fp32": str(model.path), **paths},
            providers=args.providers.split(","), threads=(0,), shapes=model.input_shapes,
            runs=args.runs, warmup=10, progress=False, min_sqnr_db=15.0,
        )
        print(result.to_table(), flush=True)
        result.save(os.path.join(args.out, f"{model.name}.md"))
        result.save(os.path.join(args.out, f"{model.name}.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
