"""`onnxopt demo`: the whole story on the model-zoo ResNet-50 that the onnx wheel ships, offline."""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

import onnx

from onnxopt.bench import BenchResult, benchmark
from onnxopt.ir import load, save
from onnxopt.pipeline import optimize
from onnxopt.testing import op_histogram
from onnxopt.verify import VerifyReport, sample_feeds, verify

RESNET50 = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light", "light_resnet50.onnx")


@dataclass
class DemoResult:
    """Paths written, op histograms before/after, the verification and the benchmark."""

    original: str
    optimized: str
    ops_before: Counter
    ops_after: Counter
    verification: VerifyReport
    bench: BenchResult

    def to_text(self) -> str:
        """The before/after table: nodes by op type, file size, latency."""
        ops = sorted(set(self.ops_before) | set(self.ops_after), key=lambda op: (-self.ops_before[op], op))
        width = max(len(op) for op in [*ops, "file size (KB)"])
        lines = [f"{'':<{width}}  {'original':>10}  {'optimized':>10}"]
        for op in ops:
            lines.append(f"{op:<{width}}  {self.ops_before[op]:>10}  {self.ops_after[op]:>10}")
        lines.append(f"{'nodes':<{width}}  {sum(self.ops_before.values()):>10}  {sum(self.ops_after.values()):>10}")
        sizes = [os.path.getsize(p) / 1024 for p in (self.original, self.optimized)]
        lines.append(f"{'file size (KB)':<{width}}  {sizes[0]:>10.1f}  {sizes[1]:>10.1f}")
        medians = {m.model: m.stats.median_ms for m in self.bench.measurements}
        names = [info.name for info in self.bench.models]
        lines.append(f"{'latency (ms)':<{width}}  {medians[names[0]]:>10.2f}  {medians[names[1]]:>10.2f}")
        lines.append("")
        lines.append(self.verification.summary())
        lines.append("")
        lines.append(self.bench.to_table())
        lines.append(f"optimized model: {self.optimized}")
        return "\n".join(lines)


def run_demo(out_dir: str, runs: int = 30, progress: bool | None = None) -> DemoResult:
    """Optimize ResNet-50 with the default pipeline, verify it in ORT, benchmark both; write into out_dir."""
    os.makedirs(out_dir, exist_ok=True)
    optimized_path = os.path.join(out_dir, "resnet50.optimized.onnx")
    original = load(RESNET50)
    result = optimize(original)
    save(result.model, optimized_path)
    report = verify(original, result.model, sample_feeds(original, 2))
    bench = benchmark({"original": RESNET50, "optimized": optimized_path}, runs=runs, warmup=3, progress=progress)
    return DemoResult(RESNET50, optimized_path, op_histogram(original), op_histogram(result.model), report, bench)
