"""Helpers for the IR tests: semantic proto comparison, test-data reading, small models."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from google.protobuf.message import Message
from onnx import numpy_helper


def canonical(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy that differs from another model's copy only where the two models differ in meaning.

    Two things carry no meaning and are normalised: proto2 presence of a field set to its default
    (`domain: ""` written explicitly or left out), and the order of value_info entries.
    """
    copy = onnx.ModelProto.FromString(model.SerializeToString())
    _clear_defaults(copy)
    for graph in _graphs(copy):
        infos = sorted(graph.value_info, key=lambda info: info.name)
        del graph.value_info[:]
        graph.value_info.extend(infos)
    return copy


def _clear_defaults(message: Message) -> None:
    for field, value in message.ListFields():
        if field.type == field.TYPE_MESSAGE:
            for item in value if field.is_repeated else [value]:
                _clear_defaults(item)
        elif not field.is_repeated and value == field.default_value:
            message.ClearField(field.name)


def _graphs(model: onnx.ModelProto) -> list[onnx.GraphProto]:
    found: list[onnx.GraphProto] = []

    def visit(graph: onnx.GraphProto) -> None:
        found.append(graph)
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("g"):
                    visit(attr.g)
                for sub in attr.graphs:
                    visit(sub)

    visit(model.graph)
    for info in model.training_info:
        visit(info.initialization)
        visit(info.algorithm)
    return found


def assert_same_meaning(expected: onnx.ModelProto, actual: onnx.ModelProto) -> None:
    """Assert two models are equal up to presence of default fields and value_info order; name the first difference."""
    want, got = canonical(expected), canonical(actual)
    if want == got:
        return
    diff = _first_difference(want, got, "model")
    raise AssertionError(f"models differ at {diff}")


def _first_difference(a: Message, b: Message, path: str) -> str:
    fields = {f.name: f for f, _ in a.ListFields()} | {f.name: f for f, _ in b.ListFields()}
    for name, field in fields.items():
        x, y = getattr(a, name), getattr(b, name)
        if x == y:
            continue
        if field.type != field.TYPE_MESSAGE:
            return f"{path}.{name}: {x!r} != {y!r}"
        if not field.is_repeated:
            return _first_difference(x, y, f"{path}.{name}")
        if len(x) != len(y):
            return f"{path}.{name}: {len(x)} entries != {len(y)}"
        for i, (p, q) in enumerate(zip(x, y)):
            if p != q:
                return _first_difference(p, q, f"{path}.{name}[{i}]")
    return path


def read_pb(path: str, type_proto: onnx.TypeProto | None = None) -> object:
    """A test-data .pb file as numpy (tensor), list (sequence) or the value of an optional."""
    with open(path, "rb") as f:
        data = f.read()
    kind = type_proto.WhichOneof("value") if type_proto is not None else "tensor_type"
    if kind == "sequence_type":
        return numpy_helper.to_list(onnx.SequenceProto.FromString(data))
    if kind == "optional_type":
        return numpy_helper.to_optional(onnx.OptionalProto.FromString(data))
    if kind == "map_type":
        return numpy_helper.to_dict(onnx.MapProto.FromString(data))
    return numpy_helper.to_array(onnx.TensorProto.FromString(data))


def session(model: str | bytes) -> ort.InferenceSession:
    """A deterministic CPU session (one thread, no graph rewrites)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def assert_identical(expected: object, actual: object, where: str = "output") -> None:
    """Bit-for-bit equality of runtime outputs (NaNs equal), recursing into sequences."""
    if isinstance(expected, (list, tuple)):
        assert isinstance(actual, (list, tuple)) and len(actual) == len(expected), where
        for i, (e, a) in enumerate(zip(expected, actual)):
            assert_identical(e, a, f"{where}[{i}]")
        return
    expected, actual = np.asarray(expected), np.asarray(actual)
    assert expected.dtype == actual.dtype and expected.shape == actual.shape, where
    if expected.dtype.kind in "fc":
        np.testing.assert_array_equal(expected, actual, err_msg=where)  # treats NaN == NaN
    else:
        assert (expected == actual).all(), where


def assert_close(expected: object, actual: object, where: str = "output", rtol: float = 1e-3, atol: float = 1e-5) -> None:
    """Numerical closeness to reference outputs (NaNs equal), recursing into sequences."""
    if isinstance(expected, (list, tuple)):
        assert isinstance(actual, (list, tuple)) and len(actual) == len(expected), where
        for i, (e, a) in enumerate(zip(expected, actual)):
            assert_close(e, a, f"{where}[{i}]", rtol, atol)
        return
    expected, actual = np.asarray(expected), np.asarray(actual)
    assert expected.shape == actual.shape, f"{where}: shape {actual.shape} != {expected.shape}"
    if expected.dtype.kind in "fc":
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True, err_msg=where)
    else:
        assert (expected == actual).all(), where
