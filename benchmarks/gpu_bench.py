"""fp32 vs optimized vs int8 on ONNX Runtime's CUDA and CPU providers, one prepared run for a GPU machine.

    python benchmarks/gpu_bench.py OUT_DIR [--providers cuda,cpu] [--runs 100] [--models resnet50,yolov8n]

Each model is optimized with the default pipeline, quantized (static QDQ, min-max, 32 generated calibration
samples in the model's input range), and the three are timed interleaved on every provider. Tables are printed
and saved as OUT_DIR/<model>.{md,json}.
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
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    wanted = args.models.split(",")
    for model in suite_models(wanted, fetch=False):
        started = time.perf_counter()
        optimized = os.path.join(args.out, f"{model.name}.opt.onnx")
        quantized = os.path.join(args.out, f"{model.name}.int8.onnx")
        onnxopt.save(onnxopt.optimize(str(model.path)).model, optimized)
        int8, report = onnxopt.quantize(optimized, calibration(model.input_shapes, model.input_ranges),
                                        latency_check=False, progress=False)
        onnxopt.save(int8, quantized)
        print(f"== {model.name}: optimized and quantized in {time.perf_counter() - started:.1f} s", flush=True)
        result = benchmark(
            {"fp32": str(model.path), "optimized": optimized, "int8": quantized},
            providers=args.providers.split(","), threads=(0,), shapes=model.input_shapes,
            runs=args.runs, warmup=10, progress=False, min_sqnr_db=15.0,
        )
        print(result.to_table(), flush=True)
        result.save(os.path.join(args.out, f"{model.name}.md"))
        result.save(os.path.join(args.out, f"{model.name}.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
