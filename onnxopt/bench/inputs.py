"""Benchmark inputs: the models' input specs, dynamic dims resolved, random or real data fed alike."""
from __future__ import annotations

import os
from typing import Iterable, Mapping, Optional, Sequence, Union

import numpy as np

from onnxopt.errors import DataError
from onnxopt.ir.interface import InputSpec, input_specs  # noqa: F401  (input_specs is part of this module's API)

Dim = Union[int, str, None]
Feeds = dict[str, np.ndarray]
DataSource = Union[str, "os.PathLike[str]", Iterable[Mapping[str, np.ndarray]], None]

INT_HIGH = 8  # random integer inputs are drawn from [0, INT_HIGH): valid indices for small tables


def resolve_shapes(
    specs: Sequence[InputSpec],
    shapes: Optional[Mapping[str, Sequence[int]]] = None,
    dims: Optional[Mapping[str, int]] = None,
    hint: Optional[str] = None,
) -> dict[str, tuple[int, ...]]:
    """Concrete shapes: ``shapes`` per input name, else declared dims with symbolic ones from ``dims``.

    ``hint`` replaces the advice of the unresolved-dims error (which names bench's --dim and --shape).
    """
    shapes, dims = dict(shapes or {}), dict(dims or {})
    unknown = sorted(set(shapes) - {s.name for s in specs})
    if unknown:
        raise DataError(f"--shape names unknown inputs {unknown}; the model's inputs are {[s.name for s in specs]}")
    check_dim_names(specs, dims)
    resolved: dict[str, tuple[int, ...]] = {}
    missing: list[str] = []
    first_unresolved: Optional[InputSpec] = None
    for spec in specs:
        if spec.name in shapes:
            resolved[spec.name] = _check_shape(spec, tuple(int(v) for v in shapes[spec.name]), "--shape")
            continue
        if spec.shape is None:
            missing.append(f"{spec.name} (rank unknown)")
            first_unresolved = first_unresolved or spec
            continue
        concrete: list[int] = []
        for axis, d in enumerate(spec.shape):
            if isinstance(d, int) and d > 0:
                concrete.append(d)
            elif isinstance(d, str) and d in dims:
                concrete.append(int(dims[d]))
            else:
                missing.append(f"{spec.name}[{axis}]={d!r}" if d else f"{spec.name}[{axis}] (unnamed)")
                first_unresolved = first_unresolved or spec
        resolved[spec.name] = tuple(concrete)
    if first_unresolved is not None:
        example = ",".join("N" for _ in first_unresolved.shape or (0, 0))
        advice = hint or f"give them with --dim NAME=N or a whole shape with --shape {first_unresolved.name}={example}"
        raise DataError(f"unresolved dynamic dims: {', '.join(missing)}; {advice}")
    return resolved


def check_dim_names(specs: Sequence[InputSpec], dims: Iterable[str]) -> None:
    """DataError when `dims` (--dim) names a symbolic dim that no input's shape has."""
    symbols = sorted({d for s in specs for d in s.shape or () if isinstance(d, str) and d})
    unused = sorted(set(dims) - set(symbols))
    if unused:
        raise DataError(f"--dim names {unused}, which no input's shape uses; its symbolic dims are {symbols}")


def _check_shape(spec: InputSpec, shape: tuple[int, ...], source: str) -> tuple[int, ...]:
    if spec.shape is None:
        return shape
    if len(shape) != len(spec.shape):
        raise DataError(f"{source} gives '{spec.name}' rank {len(shape)}; the model declares {list(spec.shape)}")
    for given, declared in zip(shape, spec.shape):
        if isinstance(declared, int) and declared > 0 and given != declared:
            raise DataError(f"{source} gives '{spec.name}' shape {list(shape)}; the model declares {list(spec.shape)}")
    return shape


def default_shapes(specs: Sequence[InputSpec], dims: Optional[Mapping[str, int]] = None) -> dict[str, tuple[int, ...]]:
    """Every input's shape with its dynamic dims taken from `dims`, else 1: how generated inputs are sized where
    nothing else says (verification, the quantizer's latency check)."""
    return {spec.name: tuple(d if isinstance(d, int) and d > 0 else int((dims or {}).get(str(d), 1))
                             for d in spec.shape or ()) for spec in specs}


def random_feeds(specs: Sequence[InputSpec], shapes: Mapping[str, tuple[int, ...]], seed: int = 0) -> Feeds:
    """Random inputs: floats in [-1, 1), integers in [0, 8), uint8 in [0, 256), booleans; reproducible by seed.

    An integer input named like a mask (attention_mask) gets what a padded batch's mask holds instead: 1, and 0 over
    the last third of its last axis; random values there send masked scores to NaN.
    """
    rng = np.random.default_rng(seed)
    feeds: Feeds = {}
    for spec in specs:
        shape, kind = shapes[spec.name], spec.dtype.kind
        if kind == "f":
            value = rng.uniform(-1.0, 1.0, size=shape).astype(spec.dtype)
        elif kind == "b":
            value = rng.integers(0, 2, size=shape).astype(bool)
        elif kind in "iu" and "mask" in spec.name.lower():
            value = np.ones(shape, spec.dtype)
            if shape and shape[-1] >= 3:
                value[..., shape[-1] - shape[-1] // 3:] = 0
        elif kind in "iu":
            high = 256 if spec.dtype == np.uint8 else INT_HIGH
            value = rng.integers(0, high, size=shape).astype(spec.dtype)
        else:
            raise DataError(f"input '{spec.name}' has dtype {spec.dtype}, which cannot be made up; use --data DIR")
        feeds[spec.name] = np.asarray(value, order="C")
    return feeds


def data_feeds(data: DataSource, specs: Sequence[InputSpec]) -> Feeds:
    """The first sample of real data: a calibration directory (any supported layout) or an iterable of dicts."""
    if isinstance(data, (str, os.PathLike)):
        from onnxopt.calibration.datasets import load_samples

        samples = iter(load_samples(data, specs, 1))
    else:
        samples = iter(data or ())
    sample = next(samples, None)
    if sample is None:
        raise DataError("the benchmark data holds no sample")
    missing = [s.name for s in specs if s.name not in sample]
    if missing:
        raise DataError(f"the benchmark data lacks inputs {missing}; it has {sorted(sample)}")
    return {s.name: np.asarray(sample[s.name], dtype=s.dtype, order="C") for s in specs}


def check_feeds(specs: Sequence[InputSpec], feeds: Feeds, model_name: str) -> None:
    """Raise DataError unless ``feeds`` has exactly the model's inputs, with its dtypes and declared dims."""
    if {s.name for s in specs} != set(feeds):
        raise DataError(
            f"model '{model_name}' takes inputs {[s.name for s in specs]} but the benchmark feeds {list(feeds)}; "
            "benchmarked models must share their inputs"
        )
    for spec in specs:
        value = feeds[spec.name]
        if value.dtype != spec.dtype:
            raise DataError(
                f"model '{model_name}' wants {spec.dtype} for '{spec.name}', the benchmark feeds {value.dtype}"
            )
        _check_shape(spec, value.shape, f"the data for model '{model_name}'")
