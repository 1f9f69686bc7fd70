"""Image calibration data: the Preprocess spec (CLI values or preprocess.toml) and the image reader.

Pillow is an optional extra (``onnxopt[images]``) and is imported only when images are read.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from onnxopt.calibration.datasets import InputSpec
from onnxopt.errors import DataError

PREPROCESS_FILE = "preprocess.toml"


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes a model input: resize to ``size`` (height, width; default the model's),
    reorder channels, ``(pixel * scale - mean) / std`` per channel, then lay out as NCHW or NHWC
    (default: guessed from where the model's 1- or 3-channel dim sits).
    """

    size: tuple[int, int] | None = None
    layout: str | None = None
    channel_order: str = "RGB"
    scale: float = 1 / 255
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        if self.layout not in (None, "NCHW", "NHWC"):
            raise DataError(f"preprocess layout: expected NCHW or NHWC, found {self.layout!r}")
        if self.channel_order not in ("RGB", "BGR"):
            raise DataError(f"preprocess channel_order: expected RGB or BGR, found {self.channel_order!r}")
        if any(s == 0 for s in self.std):
            raise DataError(f"preprocess std: expected non-zero values, found {list(self.std)}")

    def with_values(self, **values: Any) -> Preprocess:
        """A copy with fields replaced; values may be CLI strings ("224,224", "1/255", "0.5,0.5,0.5")
        or TOML values (numbers, lists); None leaves a field as it is.
        """
        fields = {f.name for f in dataclasses.fields(self)}
        changes = {}
        for key, value in values.items():
            if key not in fields:
                raise DataError(f"preprocess: unknown setting {key!r}; expected one of {', '.join(sorted(fields))}")
            if value is not None:
                changes[key] = _PARSERS[key](key, value)
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_toml(cls, path: str | Path) -> Preprocess:
        """Read settings from a small TOML file of top-level keys (size = [224, 224], mean = [...])."""
        path = Path(path)
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            try:
                import tomli as tomllib
            except ModuleNotFoundError:
                raise DataError(f"{path}: reading TOML on Python 3.10 needs tomli: pip install tomli") from None
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise DataError(f"{path}: not a readable TOML file ({exc})") from None
        try:
            return cls().with_values(**data)
        except DataError as exc:
            raise DataError(f"{path}: {exc}") from None

    @classmethod
    def for_directory(cls, directory: str | Path) -> Preprocess:
        """The directory's preprocess.toml if it has one, else the defaults."""
        path = Path(directory) / PREPROCESS_FILE
        return cls.from_toml(path) if path.is_file() else cls()


def _parse_numbers(key: str, value: Any) -> tuple[float, ...]:
    items = value.replace("x", ",").split(",") if isinstance(value, str) else value
    items = items if isinstance(items, (list, tuple)) else [items]
    try:
        return tuple(float(Fraction(str(v).strip())) for v in items)
    except (ValueError, ZeroDivisionError):
        raise DataError(f"preprocess {key}: expected numbers, found {value!r}") from None


def _parse_size(key: str, value: Any) -> tuple[int, int]:
    numbers = _parse_numbers(key, value)
    if len(numbers) == 1:
        numbers = numbers * 2
    if len(numbers) != 2 or any(n <= 0 or n != int(n) for n in numbers):
        raise DataError(f"preprocess {key}: expected HEIGHT,WIDTH as positive integers, found {value!r}")
    return int(numbers[0]), int(numbers[1])


def _parse_scale(key: str, value: Any) -> float:
    numbers = _parse_numbers(key, value)
    if len(numbers) != 1:
        raise DataError(f"preprocess {key}: expected one number, found {value!r}")
    return numbers[0]


_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "size": _parse_size,
    "layout": lambda key, value: str(value).upper(),
    "channel_order": lambda key, value: str(value).upper(),
    "scale": _parse_scale,
    "mean": _parse_numbers,
    "std": _parse_numbers,
}


def image_reader(
    directory: Path, specs: Sequence[InputSpec], preprocess: Preprocess | None
) -> Callable[[Path], dict[str, np.ndarray]]:
    """A function turning one image file into a sample for the model's single input."""
    try:
        from PIL import Image
    except ModuleNotFoundError:
        raise DataError(f"{directory}: reading images needs Pillow: pip install 'onnxopt[images]'") from None
    if len(specs) != 1:
        raise DataError(
            f"{directory}: images fit single-input models only; this model has inputs {', '.join(s.name for s in specs)}"
        )
    spec = specs[0]
    pre = preprocess if preprocess is not None else Preprocess.for_directory(directory)
    layout, channels, (height, width), batched = _geometry(spec, pre, directory)
    for name, values in (("mean", pre.mean), ("std", pre.std)):
        if len(values) not in (1, channels):
            raise DataError(f"{directory}: preprocess {name}: expected 1 or {channels} values, found {len(values)}")
    mean = np.asarray(pre.mean, dtype=np.float32)
    std = np.asarray(pre.std, dtype=np.float32)

    def read(path: Path) -> dict[str, np.ndarray]:
        try:
            with Image.open(path) as image:
                image = image.convert("L" if channels == 1 else "RGB").resize((width, height), Image.Resampling.BILINEAR)
                pixels = np.asarray(image, dtype=np.float32).reshape(height, width, channels)
        except OSError as exc:
            raise DataError(f"{path}: not a readable image ({exc})") from None
        if pre.channel_order == "BGR":
            pixels = pixels[..., ::-1]
        pixels = (pixels * np.float32(pre.scale) - mean) / std
        if layout == "NCHW":
            pixels = pixels.transpose(2, 0, 1)
        if batched:
            pixels = pixels[None]
        return {spec.name: np.ascontiguousarray(pixels).astype(spec.dtype)}

    return read


def _geometry(spec: InputSpec, pre: Preprocess, directory: Path) -> tuple[str, int, tuple[int, int], bool]:
    """Layout, channel count, (height, width) and whether to add a batch dim, from model and spec."""
    shape = spec.shape
    if shape is None or len(shape) not in (3, 4):
        raise DataError(f"{directory}: input {spec.name!r}: expected an image input of rank 3 or 4, found shape {shape}")
    dims = shape[1:] if len(shape) == 4 else shape
    layout = pre.layout
    if layout is None:
        layout = "NHWC" if dims[-1] in (1, 3) and dims[0] not in (1, 3) else "NCHW"
    channel_dim, spatial = (dims[0], dims[1:]) if layout == "NCHW" else (dims[-1], dims[:-1])
    channels = channel_dim if isinstance(channel_dim, int) else 3
    if channels not in (1, 3):
        raise DataError(f"{directory}: input {spec.name!r}: expected 1 or 3 image channels ({layout}), found {channels} in {list(shape)}")
    if pre.size is not None:
        size = pre.size
    elif all(isinstance(d, int) for d in spatial):
        size = (int(spatial[0]), int(spatial[1]))
    else:
        raise DataError(
            f"{directory}: input {spec.name!r} has a dynamic image size {list(shape)}; "
            f"give one (--size HEIGHT,WIDTH or size = [H, W] in {PREPROCESS_FILE})"
        )
    return layout, channels, size, len(shape) == 4
