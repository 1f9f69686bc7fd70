"""extract_constants: every dense Constant attribute form becomes an initializer."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from onnxopt.ir import from_proto, serialize
from onnxopt.testing import model_from_text


def test_every_dense_attribute_form_becomes_an_initializer(check_pass):
    model = model_from_text("""
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[2] x, int64[2] i) => (float[2] y, int64[2] j, string[2] s, string t, float[2] u) {
            cf = Constant<value_float = 2.0>()
            cfs = Constant<value_floats = [1.0, 3.0]>()
            ci = Constant<value_int = 4>()
            cis = Constant<value_ints = [5, 6]>()
            ct = Constant<value = float[2] {7.0, 8.0}>()
            s = Constant<value_strings = ["a", "b"]>()
            t = Constant<value_string = "c">()
            a = Mul(x, cf)
            b = Add(a, cfs)
            y = Sub(b, ct)
            k = Add(i, ci)
            j = Mul(k, cis)
            u = Identity(ct)
        }
    """)
    result = check_pass("extract_constants", model, {"Mul": 2, "Add": 2, "Sub": 1, "Identity": 1})
    assert result.counters == {"constants_extracted": 7}
    graph = model.graph
    assert {"cf", "cfs", "ci", "cis", "ct", "s", "t"} <= set(graph.initializers)
    assert graph.initializers["cf"].numpy().dtype == np.float32 and graph.initializers["cf"].numpy().shape == ()
    assert graph.initializers["ci"].numpy().dtype == np.int64
    assert [v.name for v in graph.outputs] == ["y", "j", "s", "t", "u"]
    assert list(graph.initializers["s"].numpy()) == ["a", "b"]


def test_sparse_constant_stays_a_node(check_pass):
    sparse = helper.make_sparse_tensor(
        helper.make_tensor("v", TensorProto.FLOAT, [1], [5.0]), helper.make_tensor("i", TensorProto.INT64, [1], [1]),
        [3],
    )
    node = helper.make_node("Constant", [], ["c"], sparse_value=sparse)
    add = helper.make_node("Add", ["x", "c"], ["y"])
    f3 = helper.make_tensor_value_info
    graph = helper.make_graph([node, add], "g", [f3("x", TensorProto.FLOAT, [3])], [f3("y", TensorProto.FLOAT, [3])])
    model = from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    check_pass("extract_constants", model, {"Constant": 1, "Add": 1}, modified=False)


def test_constants_inside_if_branches(check_pass):
    model = model_from_text("""
        <ir_version: 8, opset_import: ["" : 17]>
        g (bool c, float[2] x) => (float[2] y) {
            y = If(c) <
                then_branch = t () => (float[2] a) { k = Constant<value_floats = [1.0, 2.0]>() a = Add(x, k) },
                else_branch = e () => (float[2] b) { b = Neg(x) }
            >
        }
    """)
    check_pass(
        "extract_constants", model, {"If": 1, "Add": 1, "Neg": 1},
        feeds={"c": np.array(True), "x": np.array([1, 2], np.float32)},
    )
    then_branch = next(iter(model.graph)).attr("then_branch")
    assert list(then_branch.initializers) == ["k"]


def test_ir3_initializers_are_listed_as_inputs(check_pass):
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["k"], value_floats=[1.0, 2.0]), helper.make_node("Add", ["x", "k"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    model = from_proto(helper.make_model(graph, ir_version=3, opset_imports=[helper.make_opsetid("", 9)]))
    check_pass("extract_constants", model, {"Add": 1})
    proto = onnx.ModelProto.FromString(serialize(model))
    assert [i.name for i in proto.graph.input] == ["x", "k"]
