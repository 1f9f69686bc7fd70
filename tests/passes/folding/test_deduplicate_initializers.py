"""deduplicate_initializers: equal dtype, shape and bytes share one initializer; nothing else does."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from onnxopt.ir import from_proto
from onnxopt.testing import model_from_text

H = '<ir_version: 8, opset_import: ["" : 17]>'
TEXT = H + """
    g (float[2] x) => (float[2] y) { a = Add(x, w1) b = Mul(a, w2) c = Sub(b, w3) d = Add(c, w4) y = Mul(d, w5) }
"""


def test_identical_initializers_are_shared(check_pass):
    model = model_from_text(TEXT, {
        "w1": np.array([1, 2], np.float32),
        "w2": np.array([1, 2], np.float32),      # same as w1
        "w3": np.array([1, 3], np.float32),      # same size, other content
        "w4": np.array([2, 1], np.float32),      # same bytes reordered
        "w5": np.array([1, 2], np.float32),      # same as w1 again
    })
    result = check_pass("deduplicate_initializers", model, {"Add": 2, "Mul": 2, "Sub": 1})
    assert result.counters == {"initializers_shared": 2}
    assert sorted(model.graph.initializers) == ["w1", "w3", "w4"]
    assert [n.inputs[1].name for n in model.graph] == ["w1", "w1", "w3", "w4", "w1"]


def test_different_dtype_with_same_bytes_is_not_shared(check_pass):
    text = H + "g (int32[2] x) => (int32[2] y, float[2] z) { y = Add(x, i) z = Identity(f) }"
    model = model_from_text(text, {"i": np.zeros(2, np.int32), "f": np.zeros(2, np.float32)})
    check_pass("deduplicate_initializers", model, {"Add": 1, "Identity": 1}, modified=False)


def test_overridable_input_is_not_shared(check_pass):
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["a"]), helper.make_node("Mul", ["a", "k"], ["y"])], "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in ("x", "w")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        [onnx.numpy_helper.from_array(np.ones(2, np.float32), n) for n in ("w", "k")],
    )
    model = from_proto(helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17)]))
    check_pass("deduplicate_initializers", model, {"Add": 1, "Mul": 1}, modified=False)


def test_subgraph_initializer_shares_the_outer_one(check_pass):
    branch = helper.make_graph(
        [helper.make_node("Add", ["x", "k"], ["a"])], "t", [],
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2])],
        [onnx.numpy_helper.from_array(np.array([1, 2], np.float32), "k")],
    )
    other = helper.make_graph([helper.make_node("Mul", ["x", "w"], ["b"])], "e", [],
                              [helper.make_tensor_value_info("b", TensorProto.FLOAT, [2])])
    f = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=other)], "g",
        [f("c", TensorProto.BOOL, []), f("x", TensorProto.FLOAT, [2])], [f("y", TensorProto.FLOAT, [2])],
        [onnx.numpy_helper.from_array(np.array([1, 2], np.float32), "w")],
    )
    model = from_proto(helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17)]))
    check_pass("deduplicate_initializers", model, {"If": 1, "Add": 1, "Mul": 1},
               feeds={"c": np.array(True), "x": np.array([3, 4], np.float32)})
    assert not next(iter(model.graph)).attr("then_branch").initializers
