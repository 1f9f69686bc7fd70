"""Streaming, mergeable range observers: the Observer base, make_observer and observer_from_state."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from onnxopt.errors import DataError

# Attention masks carry float32-min or -1e9 sentinels; real activations stay far below this.
DEFAULT_OUTLIER_LIMIT = 1e8


class Observer(ABC):
    """Watches a tensor's values batch by batch and reports a calibration range.

    State is constant-size; two observers of the same kind and settings merge into the state one
    observer would have after seeing both streams.
    """

    method: str = ""

    @abstractmethod
    def update(self, array: np.ndarray) -> None:
        """Fold one batch of values into the state; NaNs are ignored."""

    @abstractmethod
    def merge(self, other: Observer) -> Observer:
        """Fold another observer's state into this one (in place) and return self."""

    @abstractmethod
    def range(self) -> tuple[float, float]:
        """The calibrated (min, max); (0.0, 0.0) before any finite value was seen."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """A small dict of plain values and numpy arrays that from_state rebuilds the observer from."""

    @classmethod
    @abstractmethod
    def from_state(cls, state: dict[str, Any]) -> Observer:
        """Rebuild an observer from state_dict() output."""

    def _check_mergeable(self, other: Observer) -> None:
        if type(other) is not type(self) or other.state_settings() != self.state_settings():
            raise DataError(
                f"cannot merge a {other.method} observer with settings {other.state_settings()} "
                f"into a {self.method} observer with settings {self.state_settings()}: "
                "shards must be calibrated with the same method and options"
            )

    def state_settings(self) -> dict[str, Any]:
        """The constructor settings that must agree for two observers to merge."""
        return {}


INTEGER_BITS = {"uint8": 8, "int8": 8, "uint16": 16, "int16": 16}


def grid_steps(dtype: str, symmetric: bool = False, reduce_range: bool = False) -> int:
    """The number of quantization steps between the lowest and highest level of ``dtype``: one fewer
    when symmetric (zero sits exactly in the middle), half as many with reduce_range."""
    if dtype not in INTEGER_BITS:
        raise ValueError(f"dtype must be one of {', '.join(INTEGER_BITS)}, got {dtype!r}")
    steps = 2 ** (INTEGER_BITS[dtype] - (1 if reduce_range else 0)) - 1
    return steps - 1 if symmetric else steps


def finite_values(array: np.ndarray, outlier_limit: float | None) -> tuple[np.ndarray, int]:
    """Flatten to float64, drop NaNs, and split off values beyond ±outlier_limit (infinities too).

    Returns the kept values and how many were set aside as outliers.
    """
    values = np.asarray(array, dtype=np.float64).ravel()
    values = values[~np.isnan(values)]
    # Infinities are always set aside: no finite range can hold them.
    limit = np.finfo(np.float64).max if outlier_limit is None else outlier_limit
    inside = np.abs(values) <= limit
    if inside.all():
        return values, 0
    return values[inside], int(values.size - np.count_nonzero(inside))


from onnxopt.calibration.observers.minmax import MinMaxObserver  # noqa: E402  (subclasses Observer)
from onnxopt.calibration.observers.histogram import HistogramObserver  # noqa: E402
from onnxopt.calibration.observers.entropy import EntropyObserver  # noqa: E402
from onnxopt.calibration.observers.percentile import PercentileObserver  # noqa: E402
from onnxopt.calibration.observers.mse import MSEObserver  # noqa: E402

METHODS: dict[str, type[Observer]] = {
    "minmax": MinMaxObserver,
    "entropy": EntropyObserver,
    "percentile": PercentileObserver,
    "mse": MSEObserver,
}
_ALL: dict[str, type[Observer]] = {**METHODS, "histogram": HistogramObserver}


def make_observer(method: str, **kw: Any) -> Observer:
    """A new observer for a calibration method: minmax, entropy, percentile or mse."""
    try:
        cls = METHODS[method]
    except KeyError:
        raise DataError(
            f"unknown calibration method {method!r}: choose one of {', '.join(METHODS)}"
        ) from None
    return cls(**kw)


def observer_from_state(state: dict[str, Any]) -> Observer:
    """Rebuild any observer from its state_dict(), dispatching on the stored method."""
    method = state.get("method")
    if method not in _ALL:
        raise DataError(f"not an observer state: unknown method {method!r}")
    return _ALL[method].from_state(state)


__all__ = [
    "DEFAULT_OUTLIER_LIMIT",
    "METHODS",
    "EntropyObserver",
    "HistogramObserver",
    "MSEObserver",
    "MinMaxObserver",
    "Observer",
    "PercentileObserver",
    "finite_values",
    "grid_steps",
    "make_observer",
    "observer_from_state",
]
