"""Plain-text summaries the CLI prints: pass list, per-pass statistics, before/after sizes."""
from __future__ import annotations

import dataclasses
import os
from typing import Mapping, Sequence

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


def format_size_change(source: str, written: Sequence[str], result: PipelineResult) -> str:
    """One line: nodes and bytes on disk (weights' data files included) before → after; `written` is what save wrote."""
    from onnxopt.ir import load, stored_bytes
    from onnxopt.passmanager import node_count

    original = load(source)
    size_before, size_after = stored_bytes(original, source), sum(os.path.getsize(path) for path in written)
    return (f"{os.path.basename(source)} → {os.path.basename(written[0])}: nodes {node_count(original)} → "
            f"{node_count(result.model)}, size {size_before / 1e6:.2f} MB → {size_after / 1e6:.2f} MB")


def check_report_inputs(
    model: str, shapes: Mapping[str, Sequence[int]], dims: Mapping[str, int], hint: str,
) -> None:
    """DataError, before the work, when the --report benchmark cannot size the model's dynamic inputs."""
    from onnxopt.bench.inputs import input_specs, resolve_shapes
    from onnxopt.ir import load

    resolve_shapes(input_specs(load(model)), shapes, dims, hint)


def write_before_after_report(
    path: str, before: str, after: str, section: ReportSection, runs: int = 50, progress: bool | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None, dims: Mapping[str, int] | None = None, data: str | None = None,
) -> BenchResult:
    """Benchmark `before` against `after` (CPU, interleaved; on `data`'s first sample if given, else on random inputs
    with dynamic dims from `shapes` and `dims`), attach `section`, and save the report at `path`."""
    from onnxopt.bench import benchmark

    result = benchmark({"input": before, "output": after}, shapes=shapes, dims=dims, data=data, runs=runs,
                       warmup=max(1, runs // 10), progress=progress)
    result.sections.append(section)
    result.save(path)
    return result


def pass_stats_section(result: PipelineResult) -> ReportSection:
    """The optimize statistics as a report section (text table, and per-pass figures for JSON)."""
    data = {name: dataclasses.asdict(stats) for name, stats in result.stats.items()}
    return ReportSection("Optimization passes", format_pass_stats(result), {"passes": data})
