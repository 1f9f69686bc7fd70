"""benchmark() on real ONNX Runtime sessions of tiny models: interleaving, ratios, flags, errors."""
from __future__ import annotations

import io

import onnx
import onnx.parser
import onnxruntime as ort
import pytest

from onnxopt.bench import benchmark
from onnxopt.bench.progress import ProgressBar
from onnxopt.bench.runner import time_interleaved
from onnxopt.errors import DataError, ModelLoadError, ProviderError


def relu_like(op: str, out_type: str = "float[N, 16]") -> onnx.ModelProto:
    return onnx.parser.parse_model(f"""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[N, 16] x) => ({out_type} y) {{ h = {op}(x)  y = Identity(h) }}
    """)


def test_time_interleaved_runs_rounds_in_order() -> None:
    log: list[str] = []
    calls = [lambda name=name: log.append(name) for name in "ABC"]
    ticks: list[int] = []
    times = time_interleaved(calls, 4, ticks.append, every=2)
    assert "".join(log) == "ABC" * 4
    assert ticks == [2, 4]
    assert [len(row) for row in times] == [4, 4, 4]
    assert all(t >= 0 for row in times for t in row)


def test_benchmark_three_models_interleaved(tmp_path) -> None:
    paths = []
    for name, op in [("base", "Relu"), ("same", "Relu"), ("broken", "Abs")]:
        paths.append(tmp_path / f"{name}.onnx")
        onnx.save(relu_like(op), paths[-1])
    result = benchmark(paths, threads=(1, 2), dims={"N": 4}, runs=15, warmup=2, progress=False)
    assert [m.name for m in result.models] == ["base", "same", "broken"]
    assert result.models[0].node_count == 2 and result.models[0].file_size == paths[0].stat().st_size
    assert [(m.model, m.threads) for m in result.measurements] == [
        ("base", 1), ("same", 1), ("broken", 1), ("base", 2), ("same", 2), ("broken", 2)]
    base, same, broken = result.measurements[:3]
    assert base.ratio is None and base.outputs is None
    assert same.ratio is not None and same.ratio.low <= same.ratio.median <= same.ratio.high
    assert same.outputs is not None and same.outputs.ok and not same.mismatch
    assert broken.mismatch, "a model with different outputs must be flagged"
    assert result.mismatches == [result.measurements[2], result.measurements[5]]
    assert all(len(m.times_ns) == 15 and m.stats.count == 15 for m in result.measurements)
    assert set(base.kernels) == {"cpu"} and not base.fell_back  # counts follow ORT's own fusions
    assert base.session_seconds > 0
    assert result.settings["inputs"] == {"x": {"shape": [4, 16], "dtype": "float32"}}


def test_benchmark_model_protos_by_name_and_duration() -> None:
    result = benchmark({"a": relu_like("Relu"), "b": relu_like("Relu")}, shapes={"x": (2, 16)},
                       duration=0.05, warmup=0, threads=(2,), spinning=True, progress=False)
    assert [m.name for m in result.models] == ["a", "b"]
    assert result.settings["spinning"] is True
    counts = {m.stats.count for m in result.measurements}
    assert len(counts) == 1 and counts.pop() >= 1, "both models get the same number of rounds"


def test_unresolved_dims_error() -> None:
    with pytest.raises(DataError, match=r"unresolved dynamic dims: x\[0\]='N'.*--dim"):
        benchmark([relu_like("Relu")], runs=1, progress=False)


def test_unavailable_provider_error() -> None:
    if "TensorrtExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime build has TensorRT")
    with pytest.raises(ProviderError, match="pip install onnxruntime-gpu"):
        benchmark([relu_like("Relu")], providers=("tensorrt",), dims={"N": 1}, runs=1, progress=False)


def test_models_must_share_inputs(tmp_path) -> None:
    other = onnx.parser.parse_model("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[N, 16] z) => (float[N, 16] y) { y = Relu(z) }
    """)
    with pytest.raises(DataError, match="share their inputs"):
        benchmark([relu_like("Relu"), other], dims={"N": 1}, runs=1, progress=False)
    with pytest.raises(ModelLoadError):
        benchmark([tmp_path / "missing.onnx"], runs=1, progress=False)
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError):
        benchmark([tmp_path / "junk.onnx"], runs=1, progress=False)


def test_shape_change_is_a_mismatch() -> None:
    flat = onnx.parser.parse_model("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[N, 16] x) => (float[M] y) { s = Constant<value = int64[1] {-1}>()  y = Reshape(x, s) }
    """)
    result = benchmark([relu_like("Identity"), flat], dims={"N": 2}, runs=3, progress=False)
    assert result.measurements[1].mismatch
    assert "shape" in result.measurements[1].outputs.detail


def test_bad_arguments() -> None:
    with pytest.raises(DataError):
        benchmark([relu_like("Relu")], runs=0, progress=False)
    with pytest.raises(DataError, match="no models"):
        benchmark([], runs=1, progress=False)


def test_progress_bar_only_when_enabled() -> None:
    quiet = io.StringIO()
    bar = ProgressBar("cpu", 10, stream=quiet)  # StringIO is no TTY
    bar.update(5)
    bar.close()
    assert quiet.getvalue() == ""
    shown = io.StringIO()
    bar = ProgressBar("cpu", 10, enabled=True, stream=shown)
    bar.update(5)
    bar.close()
    assert "cpu [" in shown.getvalue() and shown.getvalue().endswith("10/10\n")
