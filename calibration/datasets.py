"""Calibration samples: model input specs, directory layouts (npy, npz, test_data_set pb, images)
and iterables of dicts, read lazily in a deterministic order and validated one sample at a time.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import numpy_helper

from onnxopt.ir.interface import InputSpec
from onnxopt.errors import DataError

if TYPE_CHECKING:
    from onnxopt.calibration.images import Preprocess

Source = str | os.PathLike | Iterable[Mapping[str, np.ndarray]]


def load_samples(
    source: Source, specs: Sequence[InputSpec], limit: int | None = None, preprocess: Preprocess | None = None
) -> Iterator[dict[str, np.ndarray]]:
    """Validated samples from a directory or an iterable of dicts, lazily and in sorted order.

    Layout errors raise here; a bad sample raises DataError when it is reached. ``preprocess`` is an
    Preprocess for image directories (default: preprocess.toml beside the images, else the defaults;
    the size comes from the model when not given).
    """
    if limit is not None and limit < 0:
        raise DataError(f"the sample limit must be 0 or more, got {limit}")
    if isinstance(source, (str, os.PathLike)):
        raw = _directory_samples(Path(source), specs, preprocess)
    else:
        raw = ((f"sample {i}", sample) for i, sample in enumerate(source))
    return _validated(raw, specs, limit)


def count_samples(source: Source, limit: int | None = None) -> int | None:
    """How many samples load_samples would yield, without reading them; None for an unsized iterable."""
    if isinstance(source, (str, os.PathLike)):
        n = len(_detect_layout(Path(source))[1])
    elif isinstance(source, Sized):
        n = len(source)
    else:
        return None
    return n if limit is None else min(n, limit)


def validate_sample(sample: Mapping[str, np.ndarray], specs: Sequence[InputSpec], where: str) -> None:
    """Raise DataError naming ``where`` and the input if the sample does not fit the specs."""
    if not isinstance(sample, Mapping):
        raise DataError(f"{where}: expected a dict of input name → array, found {type(sample).__name__}")
    names = [s.name for s in specs]
    missing = [n for n in names if n not in sample]
    if missing:
        raise DataError(f"{where}: input {missing[0]!r}: expected an array, found none (has: {', '.join(map(str, sample)) or 'nothing'})")
    extra = [str(n) for n in sample if n not in names]
    if extra:
        raise DataError(f"{where}: input {extra[0]!r}: expected one of the model inputs ({', '.join(names)}), found an unknown name")
    for spec in specs:
        _validate_array(sample[spec.name], spec, where)


def _validate_array(array: np.ndarray, spec: InputSpec, where: str) -> None:
    prefix = f"{where}: input {spec.name!r}"
    if not isinstance(array, np.ndarray):
        raise DataError(f"{prefix}: expected a numpy array, found {type(array).__name__}")
    if array.dtype != spec.dtype:
        raise DataError(f"{prefix}: expected dtype {spec.dtype}, found {array.dtype}")
    if spec.shape is not None:
        if array.ndim != len(spec.shape):
            raise DataError(f"{prefix}: expected rank {len(spec.shape)} {_shape_text(spec.shape)}, found rank {array.ndim} {list(array.shape)}")
        for axis, (want, got) in enumerate(zip(spec.shape, array.shape)):
            if isinstance(want, int) and want != got:
                raise DataError(f"{prefix}: expected shape {_shape_text(spec.shape)}, found {list(array.shape)} (dim {axis})")
    if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
        nan = int(np.count_nonzero(np.isnan(array)))
        inf = int(array.size - np.count_nonzero(np.isfinite(array))) - nan
        raise DataError(f"{prefix}: expected finite values, found {nan} NaN and {inf} Inf")


def _shape_text(shape: tuple[int | str | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _validated(
    raw: Iterator[tuple[str, Mapping[str, np.ndarray]]], specs: Sequence[InputSpec], limit: int | None
) -> Iterator[dict[str, np.ndarray]]:
    for i, (where, sample) in enumerate(raw):
        if limit is not None and i >= limit:
            return
        validate_sample(sample, specs, where)
        yield dict(sample)


# --- directory layouts -------------------------------------------------------------------------

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def _natural_key(path: Path) -> list[int | str]:
    # name_2 sorts before name_10, and input_10.pb after input_9.pb (position matters there).
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _layout_of(path: Path) -> str | None:
    if path.is_dir():
        return "pb" if path.name.startswith("test_data_set_") else None
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz"):
        return suffix[1:]
    return "images" if suffix in IMAGE_SUFFIXES else None


def _detect_layout(directory: Path) -> tuple[str, list[Path]]:
    """The directory's layout name and its sample paths in natural order."""
    if not directory.exists():
        raise DataError(f"{directory}: calibration data directory does not exist")
    if not directory.is_dir():
        raise DataError(f"{directory}: expected a calibration data directory, found a file")
    entries = sorted((p for p in directory.iterdir() if not p.name.startswith(".")), key=_natural_key)
    if not entries:
        raise DataError(f"{directory}: calibration data directory is empty")
    groups: dict[str, list[Path]] = {}
    for entry in entries:
        layout = _layout_of(entry)
        if layout is not None:
            groups.setdefault(layout, []).append(entry)
    if not groups:
        shown = ", ".join(p.name for p in entries[:3]) + (", …" if len(entries) > 3 else "")
        raise DataError(
            f"{directory}: unknown calibration data layout (found {shown}); expected *.npy, *.npz, "
            f"test_data_set_*/input_*.pb or images ({', '.join(IMAGE_SUFFIXES)})"
        )
    if len(groups) > 1:
        found = ", ".join(f"{len(paths)} {layout}" for layout, paths in groups.items())
        raise DataError(f"{directory}: mixed calibration data layouts ({found}); keep one layout per directory")
    ((layout, paths),) = groups.items()
    return layout, paths


def _directory_samples(
    directory: Path, specs: Sequence[InputSpec], preprocess: Preprocess | None
) -> Iterator[tuple[str, Mapping[str, np.ndarray]]]:
    layout, paths = _detect_layout(directory)
    if layout == "images":
        from onnxopt.calibration.images import image_reader

        read: Callable[[Path], Mapping[str, np.ndarray]] = image_reader(directory, specs, preprocess)
    else:
        if layout == "npy" and len(specs) != 1:
            raise DataError(
                f"{directory}: *.npy holds one array per file, so it fits single-input models only; "
                f"this model has inputs {', '.join(s.name for s in specs)}: use *.npz keyed by input name"
            )
        read = {"npy": lambda p: {specs[0].name: _load_npy(p)}, "npz": _load_npz, "pb": lambda p: _load_pb(p, specs)}[layout]
    return ((str(path), read(path)) for path in paths)


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({exc})") from None


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None


def _load_pb(directory: Path, specs: Sequence[InputSpec]) -> dict[str, np.ndarray]:
    """One test_data_set_*: inputs matched by the names stored in the protos when they all name
    model inputs, else by position (input_0.pb → first model input).
    """
    files = sorted(directory.glob("input_*.pb"), key=_natural_key)
    if not files:
        raise DataError(f"{directory}: expected input_*.pb files, found none")
    tensors = []
    for file in files:
        tensor = onnx.TensorProto()
        try:
            tensor.ParseFromString(file.read_bytes())
            tensors.append((file, tensor.name, numpy_helper.to_array(tensor)))
        except Exception as exc:  # protobuf raises its own DecodeError; any failure means a bad file
            raise DataError(f"{file}: not a readable ONNX TensorProto ({exc})") from None
    names = [s.name for s in specs]
    stored = [name for _, name, _ in tensors]
    if all(name in names for name in stored) and len(set(stored)) == len(stored):
        return {name: array for _, name, array in tensors}
    if len(tensors) != len(specs):
        raise DataError(
            f"{directory}: expected {len(specs)} input_*.pb files (one per model input, matched by position), found {len(tensors)}"
        )
    return {spec.name: array for spec, (_, _, array) in zip(specs, tensors)}
