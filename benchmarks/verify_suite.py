"""Every suite model through `onnxopt optimize --verify`, default target, --target ort and --target ort-cpu; writes results/verify.md.

    python benchmarks/verify_suite.py
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

from suite import suite_models  # noqa: E402


def write_samples(model, directory: str, count: int = 3) -> None:
    """npz samples of the suite's shapes, value ranges (default [-1, 1]) and fixed values (e.g. a sample rate)."""
    os.makedirs(directory)
    rng = np.random.default_rng(0)
    for i in range(count):
        arrays = {name: rng.uniform(*model.input_ranges.get(name, (-1.0, 1.0)), size=shape).astype(np.float32)
                  for name, shape in model.input_shapes.items()}
        arrays.update({name: np.asarray(value) for name, value in model.input_values.items()})
        np.savez(os.path.join(directory, f"sample_{i}.npz"), **arrays)


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in suite_models():
            data = os.path.join(tmp, f"{model.name}-data")
            write_samples(model, data)
            for target in ("onnx", "ort", "ort-cpu"):
                out = os.path.join(tmp, f"{model.name}.{target}.onnx")
                command = [sys.executable, "-m", "onnxopt", "optimize", str(model.path), "-o", out, "--verify",
                           "--target", target, "--data", data]
                started = time.perf_counter()
                proc = subprocess.run(command, capture_output=True, text=True)
                seconds = time.perf_counter() - started
                verdict = next((line for line in proc.stdout.splitlines() if line.startswith("verified")), "")
                status = "pass" if proc.returncode == 0 and verdict else f"FAIL ({proc.stderr.strip()[:160]})"
                rows.append((model.name, target, status, verdict, f"{seconds:.1f}"))
                print(*rows[-1], sep=" | ", flush=True)
    failures = [r for r in rows if r[2] != "pass"]
    lines = [
        "# Suite models through `onnxopt optimize --verify`", "",
        "Each model of benchmarks/suite.py, optimized with the default pipeline (`--target onnx`) and with",
        "`--target ort` and `--target ort-cpu`; `--verify --data` compares outputs with the",
        "original in ONNX Runtime on 3 samples drawn in the suite's input ranges (float32: rtol 1e-3, atol",
        "1e-4 × max|ref| but at least 8 ulps at 1.0; integers exact).", "",
        "Command: `python benchmarks/verify_suite.py`", "",
        f"**{len(rows) - len(failures)} of {len(rows)} pass.**", "",
        "| model | target | result | verification | seconds |", "|---|---|---|---|--:|",
        *(f"| {' | '.join(r)} |" for r in rows), "",
    ]
    with open(os.path.join(os.path.dirname(__file__), "results", "verify.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
