"""MinMaxObserver: running min and max, optionally as an exponential moving average over batches."""
from __future__ import annotations

from typing import Any

import numpy as np

from onnxopt.calibration.observers import DEFAULT_OUTLIER_LIMIT, Observer, finite_values


class MinMaxObserver(Observer):
    """Tracks the min and max of every value seen.

    With ``momentum`` set, min and max are moving averages of per-batch extremes:
    ``running = momentum * running + (1 - momentum) * batch``. Values beyond ±``outlier_limit``
    (mask sentinels, infinities) are ignored; pass ``None`` to keep them.
    """

    method = "minmax"

    def __init__(self, momentum: float | None = None, outlier_limit: float | None = DEFAULT_OUTLIER_LIMIT) -> None:
        if momentum is not None and not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        self.outlier_limit = outlier_limit
        self.min = np.inf
        self.max = -np.inf
        self.batches = 0

    def update(self, array: np.ndarray) -> None:
        """Fold one batch's min and max into the running values."""
        values, _ = finite_values(array, self.outlier_limit)
        if values.size:
            self.update_extremes(float(values.min()), float(values.max()))

    def update_extremes(self, lo: float, hi: float) -> None:
        """Fold one batch given by its min and max (finite, inside the outlier limit) into the running values."""
        if self.momentum is None or self.batches == 0:
            self.min, self.max = min(self.min, lo), max(self.max, hi)
        else:
            m = self.momentum
            self.min = m * self.min + (1.0 - m) * lo
            self.max = m * self.max + (1.0 - m) * hi
        self.batches += 1

    def merge(self, other: Observer) -> MinMaxObserver:
        """Exact for plain min/max; moving averages are combined weighted by their batch counts."""
        self._check_mergeable(other)
        assert isinstance(other, MinMaxObserver)
        if other.batches == 0:
            return self
        if self.momentum is None or self.batches == 0:
            self.min, self.max = min(self.min, other.min), max(self.max, other.max)
        else:
            # An EMA depends on batch order, so no merge reproduces a single pass; weighting by
            # batch count is the order-free estimate.
            total = self.batches + other.batches
            self.min = (self.min * self.batches + other.min * other.batches) / total
            self.max = (self.max * self.batches + other.max * other.batches) / total
        self.batches += other.batches
        return self

    def range(self) -> tuple[float, float]:
        """The observed (min, max), or (0.0, 0.0) before any value."""
        if self.batches == 0:
            return 0.0, 0.0
        return float(self.min), float(self.max)

    def state_settings(self) -> dict[str, Any]:
        """momentum and outlier_limit."""
        return {"momentum": self.momentum, "outlier_limit": self.outlier_limit}

    def state_dict(self) -> dict[str, Any]:
        """Settings plus min, max and the batch count."""
        return {"method": self.method, **self.state_settings(), "min": self.min, "max": self.max, "batches": self.batches}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MinMaxObserver:
        """Rebuild from state_dict() output."""
        obs = cls(momentum=state["momentum"], outlier_limit=state["outlier_limit"])
        obs.min, obs.max, obs.batches = float(state["min"]), float(state["max"]), int(state["batches"])
        return obs
