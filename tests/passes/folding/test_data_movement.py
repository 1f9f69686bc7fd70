"""Data-movement regions evaluated in numpy: byte-equal to ONNX Runtime on every op and form, None where unsupported."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, ValueInfoProto, helper, numpy_helper

from onnxopt.ir import from_proto
from onnxopt.passes.folding import evaluate
from onnxopt.passes.folding.data_movement import evaluate_data_movement
from onnxopt.passmanager import PassContext, make_pass

I64 = np.int64
X = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
BIG = np.iinfo(np.int64).max


def _model(op: str, inputs: list, opset: int, **attrs):
    names = [f"i{k}" if x is not None else "" for k, x in enumerate(inputs)]
    inits = [numpy_helper.from_array(np.asarray(x), name) for x, name in zip(inputs, names) if x is not None]
    node = helper.make_node(op, names, ["y"], **attrs)
    graph = helper.make_graph([node], "g", [], [ValueInfoProto(name="y")], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _numpy(proto, opset: int):
    model = from_proto(proto)
    node = next(iter(model.graph))
    result = evaluate_data_movement([node], node.outputs, opset, {})
    return None if result is None else result[node.outputs[0]].numpy()


CASES = [
    ("Reshape", [X, np.array([0, -1], I64)], 14, {}),
    ("Reshape", [X, np.array([4, 6], I64)], 14, {"allowzero": 1}),
    ("Reshape", [np.zeros((0, 3), np.float32), np.array([3, 0], I64)], 14, {"allowzero": 1}),
    ("Transpose", [X], 13, {"perm": [2, 0, 1]}),
    ("Transpose", [X], 13, {}),
    ("Concat", [X, X[:, :, :2]], 13, {"axis": -1}),
    ("Concat", [np.array([1, 2], I64), np.array([3], I64)], 13, {"axis": 0}),
    ("Unsqueeze", [X], 11, {"axes": [0, -1]}),
    ("Unsqueeze", [X, np.array([3, 1], I64)], 13, {}),
    ("Squeeze", [X[:1, :, :1]], 13, {}),
    ("Squeeze", [X[:1, :, :1], np.array([-1], I64)], 13, {}),
    ("Squeeze", [X[:1]], 11, {"axes": [0]}),
    ("Slice", [X, np.array([-1], I64), np.array([-BIG], I64), np.array([2], I64), np.array([-1], I64)], 13, {}),
    ("Slice", [X, np.array([1, 0], I64), np.array([1000, 2], I64), np.array([0, -1], I64)], 13, {}),
    ("Slice", [X, np.array([0], I64), np.array([4], I64), np.array([2], I64), np.array([3], I64)], 13, {}),
    ("Slice", [X, np.array([2], I64), np.array([1], I64)], 13, {}),
    ("Slice", [X, np.array([-5], I64), np.array([-BIG], I64), np.array([1], I64), np.array([-2], I64)], 13, {}),
    ("Gather", [X, np.array([[-1, 0], [2, 1]], I64)], 13, {"axis": 1}),
    ("Gather", [np.array([5, 6, 7], I64), np.array(-1, I64)], 13, {}),
    ("Flatten", [X], 13, {"axis": 0}),
    ("Flatten", [X], 13, {"axis": -1}),
    ("Flatten", [X], 13, {"axis": 2}),
    ("ConstantOfShape", [np.array([2, 3], I64)], 13,
     {"value": numpy_helper.from_array(np.array([7], I64))}),
    ("ConstantOfShape", [np.array([2], I64)], 13, {}),
    ("ConstantOfShape", [np.array([], I64)], 13, {"value": numpy_helper.from_array(np.array([True]))}),
    ("Expand", [np.arange(3, dtype=np.float32).reshape(3, 1), np.array([2, 1, 4], I64)], 13, {}),
    ("Identity", [np.array([1, 2], np.uint8)], 13, {}),
    ("Cast", [np.array([2**40, -3], I64)], 13, {"to": TensorProto.INT32}),
    ("Cast", [np.array([2**31 - 1, -3], np.int32)], 13, {"to": TensorProto.FLOAT}),
    ("Cast", [np.array([1.0001, 65519.0, 1e-8], np.float32)], 13, {"to": TensorProto.FLOAT16}),
    ("Cast", [np.array([1 / 3, 1e300], np.float64)], 13, {"to": TensorProto.FLOAT}),
    ("Cast", [np.array([True, False])], 13, {"to": TensorProto.INT64}),
    ("Cast", [np.array([0, 5], I64)], 13, {"to": TensorProto.BOOL}),
]


@pytest.mark.parametrize("op, inputs, opset, attrs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_numpy_gives_the_bytes_onnx_runtime_gives(op, inputs, opset, attrs):
    proto = _model(op, inputs, opset, **attrs)
    (expected,) = evaluate._run_ort(proto, ["y"])
    got = _numpy(proto, opset)
    assert got is not None, "numpy evaluation declined a supported form"
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert got.tobytes() == expected.tobytes()


@pytest.mark.parametrize("op, inputs, opset, attrs, why", [
    ("Add", [X, X], 13, {}, "arithmetic"),
    ("Cast", [np.array([np.nan, 3e9], np.float32)], 13, {"to": TensorProto.INT32}, "float to int is runtime-defined"),
    ("Cast", [np.array([1 / 3], np.float64)], 13, {"to": TensorProto.FLOAT16}, "may round twice in a runtime"),
    ("Slice", [X], 9, {"starts": [0], "ends": [1]}, "the attribute form"),
    ("Reshape", [X], 4, {"shape": [6, 4]}, "the attribute form"),
    ("Gather", [X, np.array([5], I64)], 13, {"axis": 1}, "out-of-range index: ONNX Runtime reports it"),
    ("Squeeze", [X, np.array([0], I64)], 13, {}, "squeezing a dim of 2"),
])
def test_declines_what_it_does_not_implement(op, inputs, opset, attrs, why):
    assert _numpy(_model(op, inputs, opset, **attrs), opset) is None, why


def test_a_data_movement_region_folds_without_an_onnx_runtime_session(monkeypatch):
    def no_session(*args):
        raise AssertionError("a data-movement region reached ONNX Runtime")

    monkeypatch.setattr(evaluate, "_run_ort", no_session)
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    nodes = [
        helper.make_node("Transpose", ["w"], ["wt"], perm=[1, 0]),
        helper.make_node("Slice", ["wt", "s", "e"], ["ws"]),
        helper.make_node("Reshape", ["ws", "shape"], ["wr"]),
        helper.make_node("Add", ["x", "wr"], ["y"]),
    ]
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array([1], I64), "s"),
             numpy_helper.from_array(np.array([3], I64), "e"), numpy_helper.from_array(np.array([-1], I64), "shape")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [6])], initializer=inits)
    model = from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    make_pass("fold_constants", PassContext()).call(model)
    assert [node.op_type for node in model.graph] == ["Add"]
    folded = next(iter(model.graph)).inputs[1].const_value.numpy()
    np.testing.assert_array_equal(folded, w.T[1:3].reshape(-1))
