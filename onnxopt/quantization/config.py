"""QuantConfig: every quantizer setting, typed, frozen and validated once (no dict of string options)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Iterable, Literal

from onnxopt.errors import OnnxoptError

Mode = Literal["static", "dynamic"]
ActivationType = Literal["uint8", "int8"]

MODES = ("static", "dynamic")
METHODS = ("minmax", "entropy", "percentile", "mse")
ACTIVATION_TYPES = ("uint8", "int8")
OPTIMIZE_FOR = (None, "latency")
HOLDOUT_REPORT = 8  # held-out samples by default: enough for the accuracy report
HOLDOUT_SEARCH = 64  # with target_sqnr: the search must see the rarer inputs that carry most of the error
PROVIDERS = ("cpu", "cuda", "tensorrt", "openvino", "dml", "coreml")


class QuantConfigError(OnnxoptError):
    """A quantizer setting that is out of range or contradicts another one."""


@dataclass(frozen=True)
class QuantConfig:
    """How to quantize. Static mode calibrates activation ranges on data; dynamic mode quantizes
    MatMul/Gemm weights offline and their activations at run time.
    """

    mode: Mode = "static"
    method: str = "minmax"
    samples: int | None = None
    holdout: int | None = None
    per_channel: bool = True
    activation_type: ActivationType = "uint8"
    symmetric_activations: bool = False
    reduce_range: bool = False
    exclude_nodes: tuple[str, ...] = ()
    exclude_ops: tuple[str, ...] = ()
    include_ops: tuple[str, ...] | None = None
    target_sqnr: float | None = None
    optimize_for: str | None = None
    latency_check: bool = True
    latency_seconds: float = 2.0
    provider: str = "cpu"
    threads: int = 1
    dims: tuple[tuple[str, int], ...] = ()  # sizes of symbolic input dims where timing runs on generated inputs
    prepare: bool = True
    progress: bool | None = None

    def __post_init__(self) -> None:
        for name in ("exclude_nodes", "exclude_ops", "include_ops"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _names(name, value))
        _check_choice("mode", self.mode, MODES)
        _check_choice("method", self.method, METHODS)
        _check_choice("activation_type", self.activation_type, ACTIVATION_TYPES)
        _check_choice("optimize_for", self.optimize_for, OPTIMIZE_FOR)
        _check_choice("provider", self.provider, PROVIDERS)
        if self.samples is not None and (not isinstance(self.samples, int) or self.samples < 1):
            raise QuantConfigError(f"samples must be a positive integer (or None for all), got {self.samples!r}")
        if self.holdout is not None and (not isinstance(self.holdout, int) or self.holdout < 0):
            raise QuantConfigError(f"holdout must be 0 or more samples, got {self.holdout!r}")
        if not isinstance(self.latency_seconds, (int, float)) or not 0 < self.latency_seconds <= 600:
            raise QuantConfigError(f"latency_seconds must be in (0, 600], got {self.latency_seconds!r}")
        if not isinstance(self.threads, int) or self.threads < 0:
            raise QuantConfigError(f"threads must be 0 (onnxruntime's default) or more, got {self.threads!r}")
        if self.target_sqnr is not None:
            if not isinstance(self.target_sqnr, (int, float)) or not math.isfinite(self.target_sqnr) or not 0 < self.target_sqnr <= 120:
                raise QuantConfigError(f"target_sqnr must be a number of dB in (0, 120], got {self.target_sqnr!r}")
            if self.held_out_samples == 0:
                raise QuantConfigError("target_sqnr needs held-out samples to measure SQNR on; set holdout ≥ 1")
        overlap = set(self.exclude_ops) & set(self.include_ops or ())
        if overlap:
            raise QuantConfigError(f"ops {sorted(overlap)} are both included and excluded; name each op in one list only")
        if self.include_ops is not None and not self.include_ops:
            raise QuantConfigError("include_ops is empty: nothing would be quantized; omit it to quantize every supported op")
        if self.mode == "dynamic":
            if self.activation_type != "uint8" or self.symmetric_activations:
                raise QuantConfigError(
                    "dynamic mode quantizes activations with DynamicQuantizeLinear, which is uint8 asymmetric only; "
                    "drop --activation-type int8 / symmetric activations, or use --mode static"
                )
            if self.method != "minmax":
                raise QuantConfigError(f"dynamic mode needs no calibration, so --method {self.method} has no effect; drop it")

    @classmethod
    def from_options(cls, **options: Any) -> QuantConfig:
        """Build a config from keyword options, naming any unknown option and the valid ones."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - fields)
        if unknown:
            raise QuantConfigError(f"unknown quantization option(s) {unknown}; valid: {', '.join(sorted(fields))}")
        return cls(**options)

    @property
    def held_out_samples(self) -> int:
        """`holdout`, or its default when unset: more with a target SQNR (kept unset through replace())."""
        if self.holdout is not None:
            return self.holdout
        return HOLDOUT_SEARCH if self.target_sqnr is not None else HOLDOUT_REPORT

    def replace(self, **changes: Any) -> QuantConfig:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def allows_op(self, op_type: str) -> bool:
        """Whether include/exclude lists let this op type be quantized."""
        if op_type in self.exclude_ops:
            return False
        return self.include_ops is None or op_type in self.include_ops


def _names(field: str, value: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in value.split(",")]
    names = tuple(str(v).strip() for v in value)
    if any(not n for n in names):
        raise QuantConfigError(f"{field} has an empty name; give comma-separated node or op names")
    return names


def _check_choice(field: str, value: Any, choices: tuple[Any, ...]) -> None:
    if value not in choices:
        shown = ", ".join("None" if c is None else str(c) for c in choices)
        raise QuantConfigError(f"{field} must be one of {shown}; got {value!r}")
