"""What a benchmark measured: per model, and per model × provider × thread count."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from onnxopt.bench import report
from onnxopt.bench.stats import LatencyStats, OutputComparison, Ratio


@dataclass(frozen=True)
class ModelInfo:
    """A benchmarked model: display name, file path (None for in-memory models), size in bytes, node count."""

    name: str
    path: Optional[str]
    file_size: int
    node_count: int


@dataclass
class Measurement:
    """One model on one provider with one intra-op thread count (0: onnxruntime's default)."""

    model: str
    provider: str
    threads: int
    stats: LatencyStats
    times_ns: list[int]
    session_seconds: float
    peak_rss_bytes: Optional[int]
    device_memory_bytes: Optional[int]
    kernels: dict[str, int]
    ratio: Optional[Ratio] = None
    outputs: Optional[OutputComparison] = None

    @property
    def fell_back(self) -> bool:
        """True when some kernels ran on a provider other than the one asked for (CPU fallback)."""
        return any(p != self.provider for p in self.kernels)

    @property
    def mismatch(self) -> bool:
        """True when the outputs differ from the baseline's beyond tolerance."""
        return self.outputs is not None and not self.outputs.ok


@dataclass(frozen=True)
class ReportSection:
    """Extra content a caller adds to a benchmark report (e.g. optimize's pass statistics): text, and data for JSON."""

    title: str
    text: str
    data: Optional[dict[str, Any]] = None


@dataclass
class BenchResult:
    """All measurements of one benchmark, with its settings, environment and command line."""

    models: list[ModelInfo]
    measurements: list[Measurement]
    settings: dict[str, Any]
    environment: dict[str, Any]
    command: str
    sections: list[ReportSection] = field(default_factory=list)

    @property
    def baseline(self) -> ModelInfo:
        """The first model, against which ratios and outputs are computed."""
        return self.models[0]

    @property
    def mismatches(self) -> list[Measurement]:
        """Measurements whose outputs disagree with the baseline's."""
        return [m for m in self.measurements if m.mismatch]

    def to_json(self) -> str:
        """Every figure as JSON (schema in onnxopt.bench.report)."""
        return report.to_json(self)

    def to_markdown(self) -> str:
        """A Markdown table plus the environment, ready to paste into a PR."""
        return report.to_markdown(self)

    def to_html(self) -> str:
        """One self-contained HTML page: the table and an SVG box plot of latencies."""
        return report.to_html(self)

    def to_table(self) -> str:
        """A compact aligned text table for the terminal."""
        return report.to_table(self)

    def save(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Write the report in the format named by the suffix (.json, .md, .html, .txt), atomically."""
        report.save(self, path)
