"""The calibration probe: in-graph min/max for min-max observers of float tensors, whole tensors otherwise, and the
same observer state as observing every whole tensor."""
from __future__ import annotations

import numpy as np
import pytest

from onnxopt.calibration.observers import MinMaxObserver, make_observer
from onnxopt.calibration.probe import Probe
from onnxopt.testing import model_from_text, run

TEXT = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[n] x) => (float[n] y, int32[n] i, float[m] e) {
  a = Mul(x, two)
  y = Relu(a)
  i = Cast<to=6>(a)
  e = Slice(a, zero, zero)
}
"""
OBSERVED = ("x", "a", "y", "i", "e")


def model():
    return model_from_text(TEXT, {"two": np.float32(2), "zero": np.array([0], np.int64)})


def tensors(x: np.ndarray) -> dict[str, np.ndarray]:
    """Every observed tensor for input x: a exactly in numpy, the graph outputs as ONNX Runtime computes them."""
    return {"x": x, "a": x * np.float32(2), **run(model(), {"x": x})}


def samples(count: int, size: int = 1000, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal(size).astype(np.float32)} for _ in range(count)]


class CountingSession:
    """Wraps an InferenceSession and records what each run fetched."""

    def __init__(self, session) -> None:
        self.session, self.fetches = session, []

    def run(self, fetch, feeds):
        self.fetches.append(list(fetch))
        return self.session.run(fetch, feeds)


def observe_all(data, factory):
    observers = {name: factory() for name in OBSERVED}
    probe = Probe(model(), observers)
    probe.session = CountingSession(probe.session)
    direct = {name: factory() for name in OBSERVED}
    for sample in data:
        probe.observe(sample)
        for name, array in tensors(sample["x"]).items():
            direct[name].update(array)
    return probe, observers, direct


@pytest.mark.parametrize("momentum", [None, 0.5])
def test_float_tensors_are_reduced_in_the_graph_with_the_state_of_whole_tensors(momentum):
    probe, observers, direct = observe_all(samples(5), lambda: MinMaxObserver(momentum=momentum))
    assert set(probe.reduced) == {"a", "y", "e"} and probe.fetched == ["i"]
    assert all(fetch[0] == "i" and len(fetch) == 1 + 3 * 3 for fetch in probe.session.fetches)
    for name in OBSERVED:
        assert observers[name].state_dict() == direct[name].state_dict(), name
    assert observers["e"].batches == 0 and observers["a"].batches == 5


@pytest.mark.parametrize("position", [0, 1, 500, 999])
def test_nan_infinity_and_outliers_fall_back_to_the_whole_tensor_once(position):
    data = samples(4)
    data[1]["x"][position] = np.nan  # ORT's reductions may skip a NaN or return it, depending on where it is
    data[2]["x"][position] = np.inf
    data[3]["x"][position] = 1e9  # beyond the outlier limit once doubled
    probe, observers, direct = observe_all(data, MinMaxObserver)
    for name in OBSERVED:
        assert observers[name].range() == direct[name].range(), name
    assert observers["a"].range() == pytest.approx((2 * np.nanmin(data[0]["x"]), 2 * np.nanmax(data[0]["x"])), abs=10)
    fetches = probe.session.fetches
    again = [fetch for fetch in fetches if "i" not in fetch]  # runs that fetch just the doubtful tensors
    assert "a" in again[0] and fetches[2] == again[0]  # run again right after the NaN sample
    assert len(fetches) == len(data) + len(again) and sum(map(len, again)) == len(set().union(*again))
    assert set(probe.reduced) == {"e"} and set(probe.fetched) == {"i", "a", "y"}


def test_histogram_observers_get_whole_tensors():
    observers = {name: make_observer("entropy") for name in ("a", "y")}
    probe = Probe(model(), observers)
    assert probe.reduced == {} and probe.fetched == ["a", "y"]
