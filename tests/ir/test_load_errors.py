"""Bad input to load and save: user-facing errors with a clear message, and no temporary files left behind."""
from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxopt.ir as ir
from onnxopt.errors import ModelLoadError, OnnxoptError, OutputPathError
from onnxopt.ir import serde
from onnxopt.ir.tensor import Tensor


def small_model() -> onnx.ModelProto:
    weight = numpy_helper.from_array(np.arange(512, dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [512])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [512])], [weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def leftovers(directory) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.startswith(".onnxopt-"))


# ---- load --------------------------------------------------------------------------------------
def test_user_errors_are_onnxopt_errors() -> None:
    assert issubclass(ModelLoadError, OnnxoptError) and issubclass(OutputPathError, OnnxoptError)
    assert ModelLoadError.exit_code == 2


def test_missing_path(tmp_path) -> None:
    path = tmp_path / "absent.onnx"
    with pytest.raises(ModelLoadError, match=r"absent\.onnx: no such file; check the path"):
        ir.load(path)


def test_directory(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="is a directory; give the path of an .onnx file"):
        ir.load(tmp_path)


def test_empty_file(tmp_path) -> None:
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    with pytest.raises(ModelLoadError, match=r"empty\.onnx is empty"):
        ir.load(path)


def test_truncated_file(tmp_path) -> None:
    data = small_model().SerializeToString()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match=r"truncated\.onnx is not an ONNX model \(protobuf parse failed"):
        ir.load(path)


@pytest.mark.parametrize("text", ["hello, this is not a model\n", "ir_version: 8\ngraph { node { op_type: 'Relu' } }\n"])
def test_text_file_named_onnx(text: str, tmp_path) -> None:
    path = tmp_path / "notes.onnx"
    path.write_text(text)
    with pytest.raises(ModelLoadError, match=r"notes\.onnx (is not an ONNX model|parses as protobuf but is not an ONNX model)"):
        ir.load(path)


@pytest.mark.parametrize("message", [
    numpy_helper.from_array(np.ones((2, 3), np.float32), "t"),
    helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [], []),
    helper.make_tensor_value_info("x", TensorProto.FLOAT, [1]),
], ids=["TensorProto", "GraphProto", "ValueInfoProto"])
def test_valid_protobuf_that_is_not_a_model(message, tmp_path) -> None:
    path = tmp_path / "other.onnx"
    path.write_bytes(message.SerializeToString())
    with pytest.raises(ModelLoadError, match=r"other\.onnx (is not an ONNX model|parses as protobuf but is not an ONNX model)"):
        ir.load(path)


def test_model_without_graph_or_opset(tmp_path) -> None:
    path = tmp_path / "shell.onnx"
    path.write_bytes(onnx.ModelProto(ir_version=8, producer_name="x").SerializeToString())
    with pytest.raises(ModelLoadError, match="no graph or opset"):
        ir.load(path)


def test_missing_external_data_file(tmp_path) -> None:
    path = tmp_path / "ext.onnx"
    ir.save(ir.from_proto(small_model()), path, external_data=True)
    (tmp_path / "ext.onnx.data").unlink()
    with pytest.raises(ModelLoadError, match=r"external data file 'ext\.onnx\.data' \(tensor 'w'\) is missing; "
                                             r"put it beside the model in "):
        ir.load(path)


def test_errors_reach_the_public_api(tmp_path) -> None:
    import onnxopt

    with pytest.raises(ModelLoadError):
        onnxopt.load(tmp_path / "absent.onnx")


# ---- save --------------------------------------------------------------------------------------
def test_save_into_a_missing_directory(tmp_path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "m.onnx"
    with pytest.raises(OutputPathError, match=r"directory .*dir does not exist; create it first"):
        ir.save(ir.from_proto(small_model()), target)
    assert not (tmp_path / "no").exists()


def test_save_onto_a_directory(tmp_path) -> None:
    (tmp_path / "m.onnx").mkdir()
    with pytest.raises(OutputPathError, match="it is a directory; give a file name"):
        ir.save(ir.from_proto(small_model()), tmp_path / "m.onnx")


def test_save_below_a_file(tmp_path) -> None:
    (tmp_path / "plain").write_text("x")
    with pytest.raises(OutputPathError, match="is a file, not a directory"):
        ir.save(ir.from_proto(small_model()), tmp_path / "plain" / "m.onnx")


def test_failed_save_leaves_no_temp_file_and_keeps_the_old_output(tmp_path, monkeypatch) -> None:
    target = tmp_path / "m.onnx"
    target.write_bytes(b"previous contents")

    def broken(*args):
        raise RuntimeError("boom while serializing")

    monkeypatch.setattr(serde, "_nodes_parts", broken)
    with pytest.raises(RuntimeError, match="boom"):
        ir.save(ir.from_proto(small_model()), target)
    assert leftovers(tmp_path) == []
    assert target.read_bytes() == b"previous contents"


def test_failed_external_save_leaves_no_temp_or_data_file(tmp_path, monkeypatch) -> None:
    target = tmp_path / "m.onnx"
    original_write = Tensor.write_external

    def write_then_fail(self, name, stream, location):
        original_write(self, name, stream, location)
        raise OSError(28, "No space left on device", str(tmp_path / ".onnxopt-x.data.tmp"))

    monkeypatch.setattr(Tensor, "write_external", write_then_fail)
    with pytest.raises(OutputPathError, match="No space left on device"):
        ir.save(ir.from_proto(small_model()), target, external_data=True)
    assert leftovers(tmp_path) == [] and sorted(os.listdir(tmp_path)) == []


def test_overwriting_the_input_is_safe(tmp_path) -> None:
    path = tmp_path / "m.onnx"
    ir.save(ir.from_proto(small_model()), path)
    model = ir.load(path)
    next(iter(model.graph)).op_type = "Sub"
    ir.save(model, path)
    reloaded = onnx.load(str(path))
    assert reloaded.graph.node[0].op_type == "Sub"
    assert numpy_helper.to_array(reloaded.graph.initializer[0]).tolist() == list(range(512))
    assert leftovers(tmp_path) == []
