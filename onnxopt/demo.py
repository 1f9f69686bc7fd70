"""`onnxopt demo`: the whole story on the model-zoo ResNet-50 that the onnx wheel ships, offline."""
from __future__ import annotations

import dataclasses
import os
from collections import Counter
from dataclasses import dataclass

import onnx

import numpy as np

from onnxopt.bench import BenchResult, ReportSection, benchmark
from onnxopt.ir import load, save
from onnxopt.pipeline import optimize
from onnxopt.quantization import quantize
from onnxopt.quantization.report import QuantReport
from onnxopt.summary import pass_stats_section
from onnxopt.testing import op_histogram
from onnxopt.verify import VerifyReport, sample_feeds, verify

RESNET50 = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light", "light_resnet50.onnx")


@dataclass
class DemoResult:
    """Paths written, op histograms before/after, the verification, the quantization and the benchmark."""

    original: str
    optimized: str
    quantized: str
    report_path: str
    ops_before: Counter
    ops_after: Counter
    verification: VerifyReport
    quantization: QuantReport
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
        lines.append(f"{'latency (ms)':<{width}}  {medians['original']:>10.2f}  {medians['optimized']:>10.2f}")
        lines.append("")
        lines.append(self.verification.summary())
        lines.append("")
        lines.append(self.quantization.to_text(max_tensors=0).rstrip())
        lines.append("")
        lines.append(dataclasses.replace(self.bench, sections=[]).to_table())
        lines.append(f"models: {self.optimized}, {self.quantized}")
        lines.append(f"report: {self.report_path}")
        return "\n".join(lines)


def calibration_images(count: int = 32, seed: int = 0):
    """Generated stand-ins for normalized 224×224 RGB images: smooth random fields, about N(0, 1) per pixel."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        coarse = rng.standard_normal((1, 3, 14, 14)).astype(np.float32)
        yield {"gpu_0/data_0": np.repeat(np.repeat(coarse, 16, axis=2), 16, axis=3)}


def run_demo(out_dir: str, runs: int = 30, progress: bool | None = None) -> DemoResult:
    """Optimize ResNet-50, verify it in ORT, quantize it to int8, benchmark all three; write into out_dir."""
    os.makedirs(out_dir, exist_ok=True)
    optimized_path = os.path.join(out_dir, "resnet50.optimized.onnx")
    quantized_path = os.path.join(out_dir, "resnet50.int8.onnx")
    report_path = os.path.join(out_dir, "demo-report.html")
    original = load(RESNET50)
    result = optimize(original)
    save(result.model, optimized_path)
    report = verify(original, result.model, sample_feeds(original, 2))
    int8, quant_report = quantize(result.model, calibration_images(), latency_check=False, progress=progress)
    save(int8, quantized_path)
    bench = benchmark({"original": RESNET50, "optimized": optimized_path, "int8": quantized_path},
                      runs=runs, warmup=3, progress=progress)
    bench.sections += [pass_stats_section(result),
                       ReportSection("Quantization", quant_report.to_text(max_tensors=0), quant_report.to_dict())]
    bench.save(report_path)
    return DemoResult(RESNET50, optimized_path, quantized_path, report_path, op_histogram(original),
                      op_histogram(result.model), report, quant_report, bench)
