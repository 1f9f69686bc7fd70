"""Benchmark reports: terminal table, JSON, Markdown and self-contained HTML; written atomically.

JSON keys (``schema_version`` 1; keys are only ever added, never renamed or removed)::

    schema_version   int, 1
    command          the command line that ran the benchmark (shell-quoted)
    baseline         name of the first model; ratios and output checks are against it
    ok               false when any model's outputs mismatch the baseline's
    environment      onnxruntime, onnxruntime_providers (list), onnxruntime_device, onnx, numpy, onnxopt,
                     python, platform, cpu, cpu_count, executable, timestamp (UTC, ISO 8601)
    settings         providers, threads (0: onnxruntime's default), runs, warmup, duration (s or null),
                     io_binding, spinning (intra-op thread spin-wait), provider_options, min_sqnr_db,
                     data (path, "iterable" or null),
                     inputs ({name: {shape, dtype}} actually fed)
    models[]         name, path (null for in-memory models), file_size_bytes, node_count
    results[]        one per model × provider × threads:
      model, provider, threads, runs (timed rounds)
      latency_ms       {mean, median, p90, p99, std, min, max}
      throughput_per_s runs per second (1000 / mean latency in ms; × batch size for samples/s)
      session_create_s seconds to create the session
      peak_rss_bytes   peak resident-memory growth over session creation and first run (null: unknown)
      device_memory_bytes  GPU memory growth over the same span (null: CPU provider or not reported)
      kernels_by_provider  {provider: kernels that ran there}, from onnxruntime's profile of one run
      cpu_fallback     true when some kernels ran on another provider than the one asked for
      ratio            null for the baseline, else {median: median / baseline median,
                       min, max: extremes of the same-round ratios}; below 1 is faster
      outputs          null for the baseline, else {max_abs_diff, sqnr_db, ok, detail}; non-finite
                       numbers are null (sqnr_db null with ok true: identical outputs)
      latencies_ms     every timed latency, in round order
    sections[]       extra parts added by the command that ran the benchmark (optimize: pass statistics;
                     quantize: the quantization report): title, text, data (a dict or null)
"""
from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from onnxopt.bench.chart import box_plot_svg
from onnxopt.errors import OutputPathError
from onnxopt.ir.serde import write_text

if TYPE_CHECKING:
    from onnxopt.bench.result import BenchResult, Measurement

SCHEMA_VERSION = 1
HEADERS = ("model", "provider", "threads", "median ms", "p90 ms", "p99 ms", "mean ms", "std ms", "inf/s",
           "vs base", "spread", "session s", "mem MB", "outputs")
LEGEND = ("vs base: median latency / the baseline's (below 1 is faster); spread: min–max of the same-round ratios; "
          "mem MB: peak RSS growth (CPU providers) or device-memory growth (GPU providers) over session creation "
          "and first run; inf/s: runs per second.")


def _finite(v: float) -> Optional[float]:
    return v if math.isfinite(v) else None


def to_dict(result: BenchResult) -> dict[str, Any]:
    """The JSON document as a dict (keys in this module's docstring)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "command": result.command,
        "baseline": result.baseline.name,
        "ok": not result.mismatches,
        "environment": result.environment,
        "settings": result.settings,
        "models": [
            {"name": m.name, "path": m.path, "file_size_bytes": m.file_size, "node_count": m.node_count}
            for m in result.models
        ],
        "results": [_measurement_dict(m) for m in result.measurements],
        "sections": [{"title": x.title, "text": x.text, "data": x.data} for x in result.sections],
    }


def _measurement_dict(m: Measurement) -> dict[str, Any]:
    s = m.stats
    return {
        "model": m.model, "provider": m.provider, "threads": m.threads, "runs": s.count,
        "latency_ms": {"mean": s.mean_ms, "median": s.median_ms, "p90": s.p90_ms, "p99": s.p99_ms,
                       "std": s.std_ms, "min": s.min_ms, "max": s.max_ms},
        "throughput_per_s": _finite(s.throughput),
        "session_create_s": m.session_seconds,
        "peak_rss_bytes": m.peak_rss_bytes,
        "device_memory_bytes": m.device_memory_bytes,
        "kernels_by_provider": m.kernels,
        "cpu_fallback": m.fell_back,
        "ratio": None if m.ratio is None else {"median": m.ratio.median, "min": m.ratio.low, "max": m.ratio.high},
        "outputs": None if m.outputs is None else {
            "max_abs_diff": _finite(m.outputs.max_abs_diff), "sqnr_db": _finite(m.outputs.sqnr_db),
            "ok": m.outputs.ok, "detail": m.outputs.detail,
        },
        "latencies_ms": [t / 1e6 for t in m.times_ns],
    }


def to_json(result: BenchResult) -> str:
    """Every figure as indented JSON."""
    return json.dumps(to_dict(result), indent=2, allow_nan=False) + "\n"


def _ms(v: float) -> str:
    return f"{v:.1f}" if v >= 100 else f"{v:.3f}" if v >= 1 else f"{v:.4f}"


def _mb(v: Optional[int]) -> str:
    return "?" if v is None else f"{v / 2**20:.1f}"


def _outputs_cell(m: Measurement) -> str:
    if m.outputs is None:
        return "baseline"
    sqnr = m.outputs.sqnr_db
    text = "identical" if sqnr == math.inf else f"{sqnr:.1f} dB"
    return text if m.outputs.ok else f"MISMATCH {text}"


def rows(result: BenchResult) -> list[tuple[str, ...]]:
    """One row of formatted cells per measurement, in ``HEADERS`` order."""
    out = []
    for m in result.measurements:
        s, r = m.stats, m.ratio
        mem = m.device_memory_bytes if m.device_memory_bytes is not None else m.peak_rss_bytes
        out.append((
            m.model, m.provider, str(m.threads or "default"), _ms(s.median_ms), _ms(s.p90_ms), _ms(s.p99_ms),
            _ms(s.mean_ms), _ms(s.std_ms), f"{s.throughput:.1f}",
            "1.00×" if r is None else f"{r.median:.2f}×", "" if r is None else f"{r.low:.2f}–{r.high:.2f}",
            f"{m.session_seconds:.2f}", _mb(mem), _outputs_cell(m),
        ))
    return out


def _config(m: Measurement) -> str:
    return f"{m.provider} ×{m.threads or 'default'}"


def notes(result: BenchResult) -> list[str]:
    """Warnings worth a line each: output mismatches, CPU fallback, and the models' size and node count."""
    lines = []
    for m in result.measurements:
        if m.mismatch and m.outputs is not None:
            lines.append(f"MISMATCH: {m.model} on {_config(m)} differs from {result.baseline.name}: {m.outputs.detail}")
        if m.fell_back:
            where = ", ".join(f"{n} on {p}" for p, n in m.kernels.items())
            lines.append(f"fallback: {m.model} on {_config(m)} ran kernels {where}")
    for info in result.models:
        lines.append(f"{info.name}: {info.node_count} nodes, {info.file_size / 2**20:.2f} MB")
    return lines


def to_table(result: BenchResult) -> str:
    """A compact aligned table for the terminal, then one line per note."""
    body = rows(result)
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(HEADERS)]
    left = {0, 1, 13}

    def line(cells: tuple[str, ...]) -> str:
        padded = (c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        return "  ".join(padded).rstrip()

    extra = [f"\n{x.title}\n{x.text.rstrip()}" for x in result.sections]
    return "\n".join([line(HEADERS), *(line(r) for r in body), *notes(result), *extra]) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(result: BenchResult) -> str:
    """A Markdown table, the notes, the environment and the command line."""
    parts = ["| " + " | ".join(HEADERS) + " |", "|" + "|".join("---" for _ in HEADERS) + "|"]
    parts += ["| " + " | ".join(_md_escape(c) for c in r) + " |" for r in rows(result)]
    parts += ["", _md_escape(LEGEND), ""] + [f"- {_md_escape(n)}" for n in notes(result)]
    for x in result.sections:
        parts += ["", f"**{_md_escape(x.title)}**", "", "```", x.text.rstrip(), "```"]
    parts += ["", "**Environment**", ""]
    parts += [f"- {k}: {_md_escape(_plain(v))}" for k, v in result.environment.items()]
    parts += ["", "**Command**", "", "```", result.command, "```", ""]
    return "\n".join(parts)


def _plain(v: Any) -> str:
    return ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


_CSS = (
    "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
    "tr.bad td{background:#fdd}code{background:#f4f4f4;padding:2px 4px}"
)


def to_html(result: BenchResult) -> str:
    """One self-contained page: table, notes, SVG box plot of latencies, environment, command."""
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in HEADERS)
    body = "".join(
        f'<tr{" class=bad" if m.mismatch else ""}>' + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>"
        for m, r in zip(result.measurements, rows(result))
    )
    color = {info.name: i for i, info in enumerate(result.models)}
    series = [(f"{m.model} · {_config(m)}", color[m.model], [t / 1e6 for t in m.times_ns])
              for m in result.measurements]
    env = "".join(f"<tr><th>{e(k)}</th><td>{e(_plain(v))}</td></tr>" for k, v in result.environment.items())
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>onnxopt benchmark: {e(result.baseline.name)}</title><style>{_CSS}</style></head><body>",
        "<h1>onnxopt benchmark</h1>", f"<table><tr>{head}</tr>{body}</table>",
        f"<p>{e(LEGEND)}</p>", "<ul>" + "".join(f"<li>{e(n)}</li>" for n in notes(result)) + "</ul>",
        "<h2>Latency distribution</h2>", box_plot_svg(series),
        *(f"<h2>{e(x.title)}</h2><pre>{e(x.text)}</pre>" for x in result.sections),
        "<h2>Environment</h2>", f"<table>{env}</table>",
        f"<h2>Command</h2><p><code>{e(result.command)}</code></p>", "</body></html>", "",
    ])


FORMATS: dict[str, Callable[[BenchResult], str]] = {
    ".json": to_json, ".md": to_markdown, ".markdown": to_markdown,
    ".html": to_html, ".htm": to_html, ".txt": to_table,
}


def check_report_path(path: Union[str, "os.PathLike[str]"]) -> Path:
    """The report's path, if its suffix names a format and its folder exists (checked before the work it reports)."""
    target = Path(path)
    if target.suffix.lower() not in FORMATS:
        raise OutputPathError(f"cannot tell the report format of '{target}'; end it in {', '.join(FORMATS)}")
    if not target.parent.is_dir():
        raise OutputPathError(f"cannot write '{target}': folder '{target.parent}' does not exist")
    return target


def save(result: BenchResult, path: Union[str, "os.PathLike[str]"]) -> None:
    """Write the report in the format its suffix names, through a temporary file and os.replace."""
    target = check_report_path(path)
    write_text(target, FORMATS[target.suffix.lower()](result))
