"""Plain-text summaries the CLI prints: pass list, per-pass statistics, before/after sizes."""
from __future__ import annotations

import dataclasses
import os

from onnxopt.bench import BenchResult, ReportSection
from onnxopt.passmanager import GROUPS, PipelineResult, group_members, registered_passes


def format_pass_list() -> str:
    """Every group with its members, then every pass with its one-line description."""
    import onnxopt.passes  # noqa: F401  (registers the passes)

    passes = registered_passes()
    width = max(len(name) for name in [*passes, "onnxoptimizer:<pass>"])
    lines = ["groups"]
    for group in GROUPS:
        lines.append(f"  {group:<{width}}  {', '.join(group_members(group)) or '(empty)'}")
    lines.append("passes")
    for name, cls in passes.items():
        lines.append(f"  {name:<{width}}  {cls.description()}")
    lines.append(f"  {'onnxoptimizer':<{width}}  onnxoptimizer's default fuse-and-eliminate passes")
    lines.append(f"  {'onnxoptimizer:<pass>':<{width}}  one onnxoptimizer pass by name")
    return "\n".join(lines)


def format_pass_stats(result: PipelineResult) -> str:
    """A table of per-pass runs, changes, time, nodes added/removed and initializer bytes."""
    header = ("pass", "runs", "changed", "ms", "+nodes", "-nodes", "init bytes before", "after")
    rows = [header]
    for name, s in result.stats.items():
        rows.append((name, s.runs, s.changed, f"{s.seconds * 1e3:.1f}", s.nodes_added, s.nodes_removed,
                     s.initializer_bytes_before, s.initializer_bytes_after))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in rows]
    state = "fixed point" if result.converged else "iteration cap hit"
    lines.append(f"{result.iterations} iteration(s), {state}")
    for name, s in result.stats.items():
        for key, value in s.counters.items():
            lines.append(f"{name}: {key} = {value}")
    return "\n".join(lines)


def format_size_change(source: str, output: str, result: PipelineResult) -> str:
    """One line: nodes and file size before → after."""
    from onnxopt.ir import load
    from onnxopt.passmanager import node_count

    before_nodes = node_count(load(source))
    after_nodes = node_count(result.model)
    size_before, size_after = os.path.getsize(source), _size_with_data(output)
    return (f"{os.path.basename(source)} → {os.path.basename(output)}: nodes {before_nodes} → {after_nodes}, "
            f"size {size_before / 1e6:.2f} MB → {size_after / 1e6:.2f} MB")


def write_before_after_report(
    path: str, before: str, after: str, section: ReportSection, runs: int = 50, progress: bool | None = None,
) -> BenchResult:
    """Benchmark `before` against `after` (CPU, interleaved), attach `section`, and save the report at `path`."""
    from onnxopt.bench import benchmark

    result = benchmark({"input": before, "output": after}, runs=runs, warmup=max(1, runs // 10), progress=progress)
    result.sections.append(section)
    result.save(path)
    return result


def pass_stats_section(result: PipelineResult) -> ReportSection:
    """The optimize statistics as a report section (text table, and per-pass figures for JSON)."""
    data = {name: dataclasses.asdict(stats) for name, stats in result.stats.items()}
    return ReportSection("Optimization passes", format_pass_stats(result), {"passes": data})


def _size_with_data(path: str) -> int:
    data = path + ".data"
    return os.path.getsize(path) + (os.path.getsize(data) if os.path.exists(data) else 0)
