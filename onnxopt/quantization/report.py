"""QuantReport: what the quantizer did and how close the result is to the float model (text or JSON)."""
from __future__ import annotations

import dataclasses
import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from onnxopt.ir.serde import write_text
from onnxopt.quantization.evaluate import OutputAgreement


@dataclass(frozen=True)
class TensorRecord:
    """One quantized activation tensor: calibrated range, scale and zero point."""

    name: str
    rmin: float
    rmax: float
    scale: float
    zero_point: int
    dtype: str


@dataclass(frozen=True)
class LatencyCheck:
    """fp32 vs int8 median latency on one provider and thread count (ratio < 1: int8 is faster)."""

    provider: str
    threads: int
    fp32_ms: float
    int8_ms: float

    @property
    def ratio(self) -> float:
        """int8 / fp32 median latency."""
        return self.int8_ms / self.fp32_ms if self.fp32_ms > 0 else math.inf


@dataclass(frozen=True)
class SearchStep:
    """One step of the accuracy or latency search: the node(s) set back to float and the result after it."""

    nodes: tuple[str, ...]
    value: float
    detail: str = ""


@dataclass
class QuantReport:
    """The quantizer's account of one run."""

    mode: str
    method: str | None
    calibration_samples: int = 0
    calibration_seconds: float = 0.0
    holdout_samples: int = 0
    holdout_overlaps_calibration: bool = False
    tensors: list[TensorRecord] = field(default_factory=list)
    quantized_ops: dict[str, int] = field(default_factory=dict)
    weights: int = 0
    kept_float: dict[str, str] = field(default_factory=dict)
    absorbed: list[str] = field(default_factory=list)
    outputs: list[OutputAgreement] = field(default_factory=list)
    latency: list[LatencyCheck] = field(default_factory=list)
    target_sqnr: float | None = None
    sqnr_steps: list[SearchStep] = field(default_factory=list)
    latency_steps: list[SearchStep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def sqnr_db(self) -> float:
        """The worst output SQNR on the held-out samples (nan when not measured)."""
        return min((o.sqnr_db for o in self.outputs), default=math.nan)

    @property
    def float_by_choice(self) -> dict[str, str]:
        """Nodes kept float by exclusion options or by the accuracy/latency search (not merely unsupported)."""
        markers = ("excluded", "kept float", "accuracy", "latency", "include-ops", "subgraph")
        return {n: r for n, r in self.kept_float.items() if any(m in r for m in markers)}

    def float_by_search(self, search: str) -> list[str]:
        """Nodes the "accuracy" or "latency" search set back to float."""
        return [n for n, r in self.kept_float.items() if f"by the {search} search" in r]

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON-ready values (infinities as strings)."""
        data = dataclasses.asdict(self)
        data["sqnr_db"] = self.sqnr_db
        data["latency"] = [{**dataclasses.asdict(c), "ratio": c.ratio} for c in self.latency]
        return _jsonable(data)

    def to_json(self) -> str:
        """The report as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self, max_tensors: int = 20) -> str:
        """A human summary: accuracy, latency, what stayed float, notes and the first tensors' parameters."""
        lines = [f"quantization: {self.mode}" + (f", {self.method} calibration on {self.calibration_samples} samples "
                                                   f"({self.calibration_seconds:.1f} s)" if self.mode == "static" else "")]
        ops = ", ".join(f"{op}×{n}" for op, n in sorted(self.quantized_ops.items()))
        lines.append(f"quantized nodes: {sum(self.quantized_ops.values())} ({ops or 'none'}); int8 weights: {self.weights}")
        if self.absorbed:
            lines.append(f"activations absorbed into the producer's range: {len(self.absorbed)}")
        if self.outputs:
            overlap = " (overlapping calibration)" if self.holdout_overlaps_calibration else ""
            lines.append(f"accuracy on {self.holdout_samples} held-out samples{overlap}:")
            for o in self.outputs:
                top1 = f", top-1 agreement {o.top1:.1%}" if o.top1 is not None else ""
                lines.append(f"  {o.name}: SQNR {o.sqnr_db:.1f} dB, cosine {o.cosine:.5f}{top1}")
        if self.target_sqnr is not None:
            chosen = self.float_by_search("accuracy")
            low = min((o.sqnr_low_db for o in self.outputs), default=math.nan)
            lines.append(f"target SQNR {self.target_sqnr:g} dB: reached {self.sqnr_db:.1f} dB (lower bound {low:.1f} dB) "
                         f"keeping {len(chosen)} node(s) float"
                         + (f": {', '.join(chosen)}" if chosen else ""))
        if self.latency_steps:
            chosen = self.float_by_search("latency")
            lines.append(f"latency search kept {len(chosen)} node group(s) float: {', '.join(chosen) or 'none'}")
        for c in self.latency:
            lines.append(f"latency ({c.provider}, {c.threads} thread(s)): fp32 {c.fp32_ms:.3f} ms, int8 {c.int8_ms:.3f} ms, ratio {c.ratio:.2f}")
        chosen_float = self.float_by_choice
        if chosen_float:
            lines.append(f"kept float by choice: {len(chosen_float)}")
            by_reason: dict[str, list[str]] = {}
            for name, reason in chosen_float.items():
                by_reason.setdefault(reason, []).append(name)
            for reason, names in by_reason.items():
                shown = ", ".join(names[:8]) + (f", … ({len(names)} nodes)" if len(names) > 8 else "")
                lines.append(f"  {reason}: {shown}")
        lines.extend(f"note: {n}" for n in self.notes)
        lines.extend(f"warning: {w}" for w in self.warnings)
        if self.tensors and max_tensors > 0:
            lines.append(f"tensors ({len(self.tensors)}; first {min(max_tensors, len(self.tensors))}): name [min, max] scale zero-point")
            for t in self.tensors[:max_tensors]:
                lines.append(f"  {t.name} [{t.rmin:.4g}, {t.rmax:.4g}] {t.scale:.4g} {t.zero_point} {t.dtype}")
        return "\n".join(lines)

    def save(self, path: str | os.PathLike) -> None:
        """Write JSON (.json) or the text summary (any other suffix), atomically."""
        path = os.fspath(path)
        write_text(path, (self.to_json() if path.endswith(".json") else self.to_text(max_tensors=10**9)) + "\n")


def op_counts(op_types: list[str]) -> dict[str, int]:
    """Op type → count, sorted by op type."""
    return dict(sorted(Counter(op_types).items()))


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
