"""Streaming collection: exact ranges, one ORT session, constant memory over thousands of samples."""
from __future__ import annotations

import numpy as np
import pytest

from onnxopt.calibration.collect import collect
from onnxopt.calibration.observers import make_observer
from onnxopt.errors import DataError
from onnxopt.testing import model_from_text, run

TEXT = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[1, 3, 16, 16] x) => (float[1, 8, 16, 16] y) {
  c = Conv<pads=[1, 1, 1, 1]>(x, W, B)
  r = Relu(c)
  y = Conv<pads=[1, 1, 1, 1]>(r, W2, B2)
}
"""
RNG = np.random.default_rng(5)


def small_model():
    return model_from_text(TEXT, {
        "W": RNG.standard_normal((8, 3, 3, 3)).astype(np.float32), "B": np.zeros(8, np.float32),
        "W2": RNG.standard_normal((8, 8, 3, 3)).astype(np.float32) * 0.2, "B2": np.zeros(8, np.float32),
    })


def stream(count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield {"x": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)}


def test_minmax_ranges_are_exact_for_inputs_intermediates_and_outputs():
    model = small_model()
    data = list(stream(10))
    result = collect(model, ["x", "c", "r", "y"], data, "minmax")
    assert result.samples == 10 and result.seconds > 0
    c_values = []
    for sample in data:
        probe = model.clone()
        out = run(probe, sample)
        c_values.append(out["y"])
    ys = np.stack(c_values)
    xs = np.stack([s["x"] for s in data])
    ranges = result.ranges()
    assert ranges["x"] == (float(xs.min()), float(xs.max()))
    assert ranges["y"] == pytest.approx((float(ys.min()), float(ys.max())), rel=1e-6)
    assert ranges["r"][0] == 0.0 and ranges["c"][0] < 0 and ranges["r"][1] == pytest.approx(ranges["c"][1])


def test_histogram_observers_match_a_single_pass_over_the_same_values():
    model = small_model()
    data = list(stream(6))
    result = collect(model, ["y"], data, "entropy")
    reference = make_observer("entropy")
    for sample in data:
        reference.update(run(model, sample)["y"])
    assert result.observers["y"].range() == pytest.approx(reference.range())


def test_observer_factory_and_model_left_unchanged():
    model = small_model()
    outputs = [v.name for v in model.graph.outputs]
    result = collect(model, ["c"], stream(3), lambda: make_observer("minmax", momentum=0.5))
    assert result.observers["c"].momentum == 0.5
    assert [v.name for v in model.graph.outputs] == outputs


def test_errors_name_the_problem():
    model = small_model()
    with pytest.raises(DataError, match="no calibration samples"):
        collect(model, ["c"], [], "minmax")
    with pytest.raises(DataError, match=r"cannot observe \['nope'\]"):
        collect(model, ["nope"], stream(1), "minmax")
    with pytest.raises(DataError, match="calibration sample 1: onnxruntime could not run it"):
        collect(model, ["c"], [next(stream(1)), {"x": np.zeros((1, 3, 8, 8), np.float32)}], "minmax")


def test_progress_bar_only_when_asked_or_on_a_tty(capsys):
    model = small_model()
    collect(model, ["c"], stream(3), "minmax", total=3)
    assert capsys.readouterr().err == ""  # pytest's stderr is not a TTY
    collect(model, ["c"], stream(3), "minmax", total=3, progress=True)
    err = capsys.readouterr().err
    assert "calibrating" in err and "3/3" in err
    collect(model, ["c"], stream(3), "minmax", total=3, progress=False)
    assert capsys.readouterr().err == ""


def _rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


@pytest.mark.slow
@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_memory_is_constant_in_the_number_of_samples():
    """2,000 samples must not grow RSS by more than 16 MB beyond what 200 samples needed (histograms included)."""
    model = small_model()
    marks: dict[int, int] = {}

    def measured(count: int):
        for i, sample in enumerate(stream(count), 1):
            yield sample
            if i in (200, count):
                marks[i] = _rss_bytes()

    result = collect(model, ["x", "c", "r", "y"], measured(2000), "entropy")
    assert result.samples == 2000
    growth = marks[2000] - marks[200]
    assert growth < 16 * 2**20, f"RSS grew by {growth / 2**20:.1f} MB between 200 and 2,000 samples"


def test_parallel_range_search_matches_serial():
    model = small_model()
    result = collect(model, ["x", "c", "r", "y"], stream(4), "percentile")
    import onnxopt.calibration.collect as module

    serial = result.ranges(workers=1)
    saved, module.PARALLEL_MIN = module.PARALLEL_MIN, 2
    try:
        assert result.ranges(workers=2) == serial
    finally:
        module.PARALLEL_MIN = saved


def test_minmax_shortcut_keeps_outlier_and_nan_handling():
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[4] x) => (float[4] y) { y = Mul(x, two) }
    """
    model = model_from_text(text, {"two": np.float32(2)})
    data = [{"x": np.array([1, 2, -3, np.nan], np.float32)}, {"x": np.array([1e9, 0.5, 0, 4], np.float32)}]
    result = collect(model, ["x", "y"], data, "minmax")
    direct = make_observer("minmax")
    for sample in data:
        direct.update(sample["x"] * 2)
    assert result.ranges()["y"] == direct.range() == (-6.0, 8.0)
    assert result.ranges()["x"] == (-3.0, 4.0)


def test_entropy_search_skips_a_constant_band_far_from_zero():
    from onnxopt.calibration.collect import range_of

    band = make_observer("entropy")
    band.update(np.full(1000, 16.0, np.float32))
    band.update(np.full(10, 16.0 + 2**-12, np.float32))
    assert range_of(band) == (16.0, 16.0 + 2**-12)
    spread = make_observer("entropy")
    spread.update(np.random.default_rng(0).standard_normal(5000).astype(np.float32))
    assert range_of(spread) == spread.range()


def test_prefetching_keeps_order_raises_where_the_source_failed_and_stops_with_the_consumer():
    import itertools
    import threading
    import time

    from onnxopt.calibration.collect import prefetched

    assert list(prefetched(range(50))) == list(range(50))

    def failing():
        yield 1
        yield 2
        raise DataError("sample 3 is broken")

    got = []
    with pytest.raises(DataError, match="sample 3 is broken"):
        for item in prefetched(failing()):
            got.append(item)
    assert got == [1, 2]

    produced = []
    endless = (produced.append(i) or i for i in itertools.count())
    taken = list(itertools.islice(prefetched(endless, depth=2), 3))
    deadline = time.monotonic() + 5
    while any(t.name == "calibration-prefetch" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(t.name == "calibration-prefetch" for t in threading.enumerate())
    assert taken == [0, 1, 2] and len(produced) <= 3 + 2 + 1  # the producer stopped a few items ahead


def test_a_bad_sample_from_a_loader_fails_calibration_with_its_own_message():
    def loader():
        yield from stream(2)
        raise DataError("calibration/003.npy: input 'x' has shape (1, 3, 8, 8), expected (1, 3, 16, 16)")

    with pytest.raises(DataError, match="003.npy: input 'x' has shape"):
        collect(small_model(), ["c"], loader(), "minmax")
