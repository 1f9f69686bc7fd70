"""Minimal repros of the conformance failures, one per bug, each naming the pass or IR piece at fault.

Each bug is fixed; its repro stays as a regression test.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

import onnxopt
from onnxopt.ir import from_proto, serialize
from onnxopt.testing import assert_same_outputs, model_from_text


def _model(nodes, inputs, outputs, initializers=(), opset=17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model, full_check=True)
    return model


def test_omitted_optional_output_is_kept():
    # ir lint used to reject an omitted optional output (name "") as "has no name", so every
    # LSTM/GRU/RNN/Attention with an omitted output failed to optimize.
    # LSTM(X, W, R) → ("", Y_h): the full sequence output Y is omitted, which ONNX allows.
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 1, 1])
    y_h = helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [1, 1, 1])
    weights = [helper.make_tensor("W", TensorProto.FLOAT, [1, 4, 1], [0.1] * 4),
               helper.make_tensor("R", TensorProto.FLOAT, [1, 4, 1], [0.2] * 4)]
    model = _model([helper.make_node("LSTM", ["X", "W", "R"], ["", "Y_h"], hidden_size=1)], [x], [y_h], weights)
    result = onnxopt.optimize(from_proto(model)).model
    assert_same_outputs(model.SerializeToString(), result)


def test_folded_empty_constant_is_saved():
    # Tensor.serialized_parts used memoryview.cast, which fails on a zero-element array of rank > 1.
    model = model_from_text("""
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[2] x) => (float[2] y, float[1, 0] z) {
            s = Constant<value = int64[2] {1, 0}>()
            z = ConstantOfShape(s)
            y = Relu(x)
        }""")
    result = onnxopt.optimize(model).model
    saved = onnx.ModelProto.FromString(serialize(result))
    assert onnx.numpy_helper.to_array(saved.graph.initializer[0]).shape == (1, 0)


def test_folded_float8_constant_keeps_its_type():
    # ORT hands FLOAT8E4M3FN results back as uint8; the folder stored them as a UINT8 initializer.
    model = model_from_text("""
        <ir_version: 9, opset_import: ["" : 19]>
        g () => (float8e4m3fn[2] y) { c = Constant<value = float[2] {1.0, 0.5}>()  y = Cast<to = 17>(c) }""")
    result = onnx.ModelProto.FromString(serialize(onnxopt.optimize(model, "fold").model))
    assert result.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT8E4M3FN
    assert result.graph.initializer[0].data_type == TensorProto.FLOAT8E4M3FN


def test_inlined_untyped_branch_output_keeps_the_graph_output_type():
    # An If branch output declared without a type used to load as an empty TypeProto, which the inlined value
    # then carried onto the graph output (onnx.checker: "Unrecognized type value case").
    then = helper.make_graph([helper.make_node("Neg", ["x"], ["t"])], "then", [], [onnx.ValueInfoProto(name="t")])
    other = helper.make_graph([helper.make_node("Abs", ["x"], ["e"])], "else", [], [onnx.ValueInfoProto(name="e")])
    model = _model(
        [helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        [helper.make_tensor("c", TensorProto.BOOL, [], [True])],
    )
    result = onnx.ModelProto.FromString(serialize(onnxopt.optimize(from_proto(model)).model))
    onnx.checker.check_model(result, full_check=True)
    feeds = {"x": np.array([1.0, -2.0], np.float32)}
    assert_same_outputs(model.SerializeToString(), result.SerializeToString(), feeds)


def test_silu_fusion_result_still_runs_in_onnxruntime_at_opset_25():
    model = model_from_text("""
        <ir_version: 11, opset_import: ["" : 25]>
        g (float[2, 4] x) => (float[2, 4] y) { s = Sigmoid(x)  y = Mul(x, s) }""")
    result = onnxopt.optimize(model).model
    assert_same_outputs(serialize(model), result)


def test_bfloat16_weights_of_the_same_size_are_deduplicated():
    import ml_dtypes

    weights = [onnx.numpy_helper.from_array(np.array(values, ml_dtypes.bfloat16), name)
               for name, values in (("a", [1, 2, 3]), ("b", [4, 5, 6]))]
    model = _model(
        [helper.make_node("Add", ["x", "a"], ["t"]), helper.make_node("Mul", ["t", "b"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.BFLOAT16, [3])],
        [helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [3])],
        weights,
    )
    result = onnx.ModelProto.FromString(serialize(onnxopt.optimize(from_proto(model)).model))
    assert sorted(t.name for t in result.graph.initializer) == ["a", "b"]


def test_removed_identity_keeps_the_graph_output_type():
    model = onnx.parser.parse_model("""
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[2, 3] x) => (float[2, 3] y) { t = Relu(x)  y = Identity(t) }""")
    model.graph.value_info.append(helper.make_tensor_value_info("t", TensorProto.FLOAT, None))  # rank unknown
    onnx.checker.check_model(model, full_check=True)
    result = onnx.ModelProto.FromString(serialize(onnxopt.optimize(from_proto(model)).model))
    onnx.checker.check_model(result, full_check=True)
    assert [d.dim_value for d in result.graph.output[0].type.tensor_type.shape.dim] == [2, 3]
