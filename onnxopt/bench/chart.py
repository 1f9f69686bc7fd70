"""Inline SVG box plot of latency distributions: no scripts, no fonts or styles fetched from anywhere."""
from __future__ import annotations

import html
import math
from typing import Sequence

import numpy as np

LABEL_W, PLOT_W, ROW_H, TOP, BOTTOM, PAD = 240, 560, 26, 12, 40, 16
COLORS = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d")


def box_stats(values_ms: Sequence[float]) -> tuple[float, float, float, float, float]:
    """(low whisker, Q1, median, Q3, high whisker); whiskers reach the furthest values within 1.5 IQR."""
    v = np.sort(np.asarray(values_ms, dtype=np.float64))
    q1, med, q3 = (float(x) for x in np.percentile(v, [25, 50, 75]))
    reach = 1.5 * (q3 - q1)
    inside = v[(v >= q1 - reach) & (v <= q3 + reach)]
    return float(inside.min()), q1, med, q3, float(inside.max())


def nice_ticks(high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 5 × 10^k steps) from 0 to at least ``high``."""
    if high <= 0 or not math.isfinite(high):
        return [0.0, 1.0]
    raw = high / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(int(math.ceil(high / step)) + 1)]


def box_plot_svg(series: Sequence[tuple[str, int, Sequence[float]]], unit: str = "ms") -> str:
    """An SVG box plot, one row per (label, colour index, latencies); the x axis starts at 0."""
    boxes = [(label, color, box_stats(values)) for label, color, values in series if len(values)]
    ticks = nice_ticks(max((b[4] for _, _, b in boxes), default=1.0))
    scale = PLOT_W / ticks[-1]
    height = TOP + ROW_H * len(boxes) + BOTTOM
    width = LABEL_W + PLOT_W + PAD

    def x(v: float) -> float:
        return LABEL_W + v * scale

    parts = [
        f'<svg class="boxplot" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="12">',
        f"<title>Latency distribution per model and provider ({unit})</title>",
    ]
    axis_y = TOP + ROW_H * len(boxes)
    for t in ticks:
        parts.append(f'<line x1="{x(t):.1f}" y1="{TOP}" x2="{x(t):.1f}" y2="{axis_y}" stroke="#ddd"/>')
        parts.append(f'<text x="{x(t):.1f}" y="{axis_y + 14}" text-anchor="middle">{t:g}</text>')
    parts.append(f'<text x="{LABEL_W + PLOT_W / 2:.0f}" y="{axis_y + 32}" text-anchor="middle">latency ({unit}); '
                 "box: quartiles, line: median, whiskers: 1.5 IQR</text>")
    for row, (label, color, (lo, q1, med, q3, hi)) in enumerate(boxes):
        y = TOP + row * ROW_H
        mid = y + ROW_H / 2
        fill = COLORS[color % len(COLORS)]
        tip = html.escape(f"{label}: median {med:.4g}, Q1 {q1:.4g}, Q3 {q3:.4g}, whiskers {lo:.4g}–{hi:.4g} {unit}")
        parts += [
            f"<g><title>{tip}</title>",
            f'<text x="{LABEL_W - 8}" y="{mid + 4:.1f}" text-anchor="end">{html.escape(label)}</text>',
            f'<line x1="{x(lo):.1f}" y1="{mid:.1f}" x2="{x(hi):.1f}" y2="{mid:.1f}" stroke="#333"/>',
            f'<line x1="{x(lo):.1f}" y1="{y + 8}" x2="{x(lo):.1f}" y2="{y + ROW_H - 8}" stroke="#333"/>',
            f'<line x1="{x(hi):.1f}" y1="{y + 8}" x2="{x(hi):.1f}" y2="{y + ROW_H - 8}" stroke="#333"/>',
            f'<rect x="{x(q1):.1f}" y="{y + 4}" width="{max(x(q3) - x(q1), 1):.1f}" height="{ROW_H - 8}" '
            f'fill="{fill}" fill-opacity="0.7" stroke="#333"/>',
            f'<line x1="{x(med):.1f}" y1="{y + 4}" x2="{x(med):.1f}" y2="{y + ROW_H - 4}" '
            'stroke="#000" stroke-width="2"/>',
            "</g>",
        ]
    parts.append("</svg>")
    return "\n".join(parts)
