"""External data: lazy memory-mapped loading, saving (chosen or automatic past 2 GB), interoperability with onnx."""
from __future__ import annotations

import os
import shutil
import threading

import numpy as np
import onnx
import pytest
from irhelpers import assert_identical, session
from onnx import TensorProto, helper, numpy_helper

import onnxopt.ir as ir
from onnxopt.ir import Builder, Graph, Model, Tensor, Value
from onnxopt.ir.serde import EXTERNAL_DATA_THRESHOLD

GIB = 2**30


def weights_model() -> onnx.ModelProto:
    """y = (x + big) * small, with a 64 KiB weight and a 512-byte one."""
    big = numpy_helper.from_array(np.arange(16384, dtype=np.float32).reshape(128, 128), "big")
    small = numpy_helper.from_array(np.arange(128, dtype=np.float32) / 64, "small")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "big"], ["t"]), helper.make_node("Mul", ["t", "small"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [128, 128])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [128, 128])], [big, small])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def feeds() -> dict[str, np.ndarray]:
    return {"x": np.linspace(-1, 1, 16384, dtype=np.float32).reshape(128, 128)}


def test_inline_initializers_are_decoded_only_on_demand() -> None:
    model = ir.from_proto(weights_model())
    big = model.graph.initializers["big"].const_value
    assert not big.is_loaded and not big.is_external and not model.external_data
    assert big.shape == (128, 128) and big.nbytes == 65536  # known without decoding
    assert not big.is_loaded
    data = big.numpy()
    assert big.is_loaded and data[1, 2] == 130.0 and not data.flags.writeable


def test_save_external_and_reload_lazily_memory_mapped(tmp_path) -> None:
    path = tmp_path / "m.onnx"
    ir.save(ir.from_proto(weights_model()), path, external_data=True)
    assert sorted(os.listdir(tmp_path)) == ["m.onnx", "m.onnx.data"]
    proto = onnx.load(str(path), load_external_data=False)
    locations = {t.name: t.data_location for t in proto.graph.initializer}
    assert locations == {"big": TensorProto.EXTERNAL, "small": TensorProto.DEFAULT}  # below size_threshold stays inline

    model = ir.load(path)
    assert model.external_data
    big = model.graph.initializers["big"].const_value
    assert big.is_external and not big.is_loaded and big.external_location == "m.onnx.data"
    assert big.shape == (128, 128) and big.dtype == TensorProto.FLOAT
    data = big.numpy()
    assert isinstance(data, np.memmap) and not data.flags.writeable
    np.testing.assert_array_equal(data, np.arange(16384, dtype=np.float32).reshape(128, 128))
    assert big.is_loaded and not big.is_external


def test_our_external_data_reads_back_in_onnx_and_ort(tmp_path) -> None:
    path = tmp_path / "m.onnx"
    ir.save(ir.from_proto(weights_model()), path, external_data=True)
    loaded = onnx.load(str(path))
    assert numpy_helper.to_array(loaded.graph.initializer[0])[127, 127] == 16383.0
    onnx.checker.check_model(str(path), full_check=True)
    assert_identical(session(weights_model().SerializeToString()).run(None, feeds()), session(str(path)).run(None, feeds()))


def test_onnx_written_external_data_loads_lazily_and_saves_back(tmp_path) -> None:
    source_dir, target_dir = tmp_path / "src", tmp_path / "dst"
    source_dir.mkdir()
    target_dir.mkdir()
    onnx.save(weights_model(), str(source_dir / "m.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="weights.bin", size_threshold=1024)
    model = ir.load(source_dir / "m.onnx")
    big = model.graph.initializers["big"].const_value
    assert big.is_external and big.external_location == "weights.bin" and not big.is_loaded
    ir.save(model, target_dir / "out.onnx")  # the input's choice (external) is kept
    assert sorted(os.listdir(target_dir)) == ["out.onnx", "out.onnx.data"]
    shutil.rmtree(source_dir)  # the copy does not depend on the source any more
    reloaded = ir.load(target_dir / "out.onnx")
    assert reloaded.graph.initializers["big"].const_value.numpy()[0, 5] == 5.0
    assert_identical(session(weights_model().SerializeToString()).run(None, feeds()),
                     session(str(target_dir / "out.onnx")).run(None, feeds()))


def test_external_model_can_overwrite_itself(tmp_path) -> None:
    path = tmp_path / "m.onnx"
    ir.save(ir.from_proto(weights_model()), path, external_data=True)
    model = ir.load(path)
    next(iter(model.graph)).op_type = "Sub"
    ir.save(model, path)  # reads the old data file (memory-mapped) while replacing it
    reloaded = ir.load(path)
    assert next(iter(reloaded.graph)).op_type == "Sub"
    np.testing.assert_array_equal(reloaded.graph.initializers["big"].const_value.numpy().ravel(),
                                  np.arange(16384, dtype=np.float32))
    assert sorted(os.listdir(tmp_path)) == ["m.onnx", "m.onnx.data"]


def test_inline_save_of_an_external_model_reads_the_data_in(tmp_path) -> None:
    path = tmp_path / "m.onnx"
    ir.save(ir.from_proto(weights_model()), path, external_data=True)
    inline = tmp_path / "inline.onnx"
    ir.save(ir.load(path), inline, external_data=False)
    proto = onnx.load(str(inline), load_external_data=False)
    assert all(t.data_location == TensorProto.DEFAULT for t in proto.graph.initializer)
    assert numpy_helper.to_array(proto.graph.initializer[0])[3, 3] == 387.0


@pytest.mark.parametrize("external", [False, True])
def test_unusual_tensors_round_trip(external: bool, tmp_path) -> None:
    arrays = {
        "empty": np.zeros((1, 0), np.float32),
        "scalar": np.array(3.5, np.float64),
        "flags": np.array([True, False] * 600),
        "strings": np.array(["a", "bb"] * 600, dtype=object),  # 1200 elements: past size_threshold
        "halves": np.arange(1024, dtype=np.float16),
    }
    graph = Graph("g")
    for name, array in arrays.items():
        graph.add_initializer(Value(name, const_value=Tensor.from_array(array)))
        graph.add_output(graph.initializers[name])
    path = tmp_path / "m.onnx"
    ir.save(Model(graph, opset_imports={"": 17}), path, external_data=external)
    reloaded = onnx.load(str(path))
    assert [t.name for t in reloaded.graph.initializer] == list(arrays)
    for tensor in reloaded.graph.initializer:
        got, want = numpy_helper.to_array(tensor), arrays[tensor.name]
        assert got.shape == want.shape and got.dtype.kind == want.dtype.kind
        np.testing.assert_array_equal(got, want)
    model = ir.load(path)
    for name, want in arrays.items():
        np.testing.assert_array_equal(model.graph.initializers[name].const_value.numpy(), want)


# ---- more than 2 GB ------------------------------------------------------------------------------
def _anon_rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


class _PeakAnonymousMemory:
    """Samples this process's anonymous RSS (heap, not page cache) in a thread; `.rise` over the start after the block."""

    def __enter__(self):
        self.start = self.peak = _anon_rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _anon_rss())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _anon_rss())
        self.rise = self.peak - self.start


def _pattern(i: int, where: int) -> np.ndarray:
    return (np.arange(4096, dtype=np.float32) + 10_000 * i + where) / 7


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="memory sampling reads /proc (Linux)")
def test_model_over_2gb_round_trip(tmp_path, request) -> None:
    free = shutil.disk_usage(tmp_path).free
    if free < 6 * GIB:
        pytest.skip(f"needs 6 GB free in {tmp_path}, has {free / GIB:.1f} GB")
    count, per_tensor = 3, 700 * 2**20  # 2100 MiB in all, past the 2 GB protobuf limit
    limit = 256 * 2**20  # far below one tensor: a copy of any weight in RAM fails the test
    assert count * per_tensor > EXTERNAL_DATA_THRESHOLD
    elements = per_tensor // 4
    marks = (0, elements // 2, elements - 4096)

    source, first, second = tmp_path / "weights.raw", tmp_path / "first", tmp_path / "second"

    def remove_big_files() -> None:  # pytest keeps recent tmp_paths; do not leave gigabytes behind
        source.unlink(missing_ok=True)
        shutil.rmtree(first, ignore_errors=True)
        shutil.rmtree(second, ignore_errors=True)

    request.addfinalizer(remove_big_files)
    # weights as memory maps of a sparse file: nothing is held in RAM
    with open(source, "wb") as f:
        f.truncate(count * per_tensor)
    graph = Graph("big")
    x = graph.add_input(Value("x"))
    x.set_type(TensorProto.FLOAT, (elements,))
    op = Builder(graph)
    out = x
    for i in range(count):
        array = np.memmap(source, np.float32, "r+", offset=i * per_tensor, shape=(elements,))
        for where in marks:
            array[where:where + 4096] = _pattern(i, where)
        array.flush()
        weight = graph.add_initializer(Value(f"w{i}", const_value=Tensor.from_array(
            np.memmap(source, np.float32, "r", offset=i * per_tensor, shape=(elements,)))))
        out = op.Add(out, weight)
    out.set_type(TensorProto.FLOAT, (elements,))
    graph.add_output(out)
    model = Model(graph, opset_imports={"": 17}, ir_version=9)

    first.mkdir()
    with _PeakAnonymousMemory() as memory:
        ir.save(model, first / "model.onnx")  # no flag: external data because the weights pass 2 GB
    assert memory.rise < limit, f"saving took {memory.rise / 2**20:.0f} MiB of anonymous memory"
    assert os.path.getsize(first / "model.onnx") < 2**20
    assert os.path.getsize(first / "model.onnx.data") >= count * per_tensor
    del model, graph, x, out, weight, op, array
    source.unlink()

    # load lazily, change one node, save again (external kept), reload and check slices
    with _PeakAnonymousMemory() as memory:
        loaded = ir.load(first / "model.onnx")
        tensors = [loaded.graph.initializers[f"w{i}"].const_value for i in range(count)]
        assert loaded.external_data and all(t.is_external and not t.is_loaded for t in tensors)
        middle = loaded.graph.nodes[1]
        middle.op_type = "Sub"
        second.mkdir()
        ir.save(loaded, second / "model.onnx")
    assert memory.rise < limit, f"load+save took {memory.rise / 2**20:.0f} MiB of anonymous memory"
    del loaded, tensors, middle
    shutil.rmtree(first)

    onnx.checker.check_model(str(second / "model.onnx"))
    reloaded = ir.load(second / "model.onnx")
    assert [n.op_type for n in reloaded.graph] == ["Add", "Sub", "Add"]
    for i in range(count):
        tensor = reloaded.graph.initializers[f"w{i}"].const_value
        assert tensor.is_external and not tensor.is_loaded and tensor.shape == (elements,)
        data = tensor.numpy()
        assert isinstance(data, np.memmap)
        for where in marks:
            np.testing.assert_array_equal(data[where:where + 4096], _pattern(i, where))
        assert data[where - 1] == 0.0


def test_save_returns_the_files_it_wrote_with_a_new_files_mode(tmp_path) -> None:
    written = ir.save(ir.from_proto(weights_model()), tmp_path / "m.onnx", external_data=True)
    inline = ir.save(ir.from_proto(weights_model()), tmp_path / "i.onnx")
    assert written == [str(tmp_path / "m.onnx"), str(tmp_path / "m.onnx.data")]
    assert inline == [str(tmp_path / "i.onnx")]
    # as open() would make it under the process umask (0644 under the usual 022), not mkstemp's 0600: a model
    # served by another user must not be locked out
    with open(tmp_path / "plain", "w"):
        pass
    expected = os.stat(tmp_path / "plain").st_mode & 0o777
    assert expected != 0o600
    assert {oct(os.stat(path).st_mode & 0o777) for path in [*written, *inline]} == {oct(expected)}


def test_stored_bytes_counts_the_data_file_the_weights_are_read_from(tmp_path) -> None:
    path = tmp_path / "m.onnx"
    ir.save(ir.from_proto(weights_model()), path, external_data=True)
    stale = tmp_path / "i.onnx"
    ir.save(ir.from_proto(weights_model()), stale, external_data=True)
    ir.save(ir.load(path), stale, external_data=False)  # leaves i.onnx.data behind, which i.onnx no longer reads
    assert ir.stored_bytes(ir.load(path), path) == os.path.getsize(path) + os.path.getsize(f"{path}.data")
    assert ir.stored_bytes(ir.load(stale), stale) == os.path.getsize(stale) > 65536
