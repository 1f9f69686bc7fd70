"""eliminate_dead_code: dead nodes (subgraphs too), initializers, value_info, opset imports, local functions."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from cleanup_checks import check, model_from_text, run_pass
from onnxopt.ir import from_proto, lint, serialize, to_proto
from onnxopt.testing import assert_same_outputs, op_histogram

H17 = '<ir_version: 8, opset_import: ["" : 17]>'


def graph(body: str, sig: str, header: str = H17) -> str:
    return f"{header}\ng {sig} {{\n{body}\n}}"


def test_dead_branch_and_initializer_removed_inputs_kept() -> None:
    text = graph("y = Relu(x)\n d = Mul(x, w)\n e = Exp(d)\n f = Neg(unused)",
                 "(float[2,3] x, float[2,3] unused) => (float[2,3] y) <float[2,3] w = {1,2,3,4,5,6}>")
    model = check("eliminate_dead_code", text, {"Relu": 1})
    assert [v.name for v in model.graph.inputs] == ["x", "unused"]
    assert not model.graph.initializers


def test_multi_output_node_with_one_output_used_is_kept() -> None:
    text = graph("a, i = TopK<axis=1>(x, k)\n y = Relu(a)", "(float[2,3] x) => (float[2,2] y) <int64[1] k = {2}>")
    check("eliminate_dead_code", text, {"TopK": 1, "Relu": 1}, fired=False)


def test_dead_node_inside_branch_removed_outer_value_used_there_kept() -> None:
    text = graph(
        "o = Sigmoid(x)\n y = If(c) <then_branch = g1 () => (float[2,3] t) { dead = Exp(o)\n t = Relu(o) },"
        " else_branch = g2 () => (float[2,3] e) { e = Neg(x) }>",
        "(float[2,3] x, bool c) => (float[2,3] y)",
    )
    for cond in (True, False):
        check("eliminate_dead_code", text, {"Sigmoid": 1, "If": 1, "Relu": 1, "Neg": 1},
              feeds={"x": np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3), "c": np.array(cond)})


def test_dead_if_and_what_only_its_branches_read_removed() -> None:
    text = graph(
        "o = Sigmoid(x)\n y = Relu(x)\n"
        " z = If(c) <then_branch = g1 () => (float[2,3] t) { t = Relu(o) }, else_branch = g2 () => (float[2,3] e) {"
        " e = Loop(n, c, o) <body = b (int64 i, bool ci, float[2,3] xi) => (bool co, float[2,3] xo) {"
        " co = Identity(ci)\n xo = Add(xi, o) }> }>",
        "(float[2,3] x, bool c) => (float[2,3] y) <int64 n = {2}>",
    )
    model = check("eliminate_dead_code", text, {"Relu": 1}, feeds={"x": np.ones((2, 3), np.float32), "c": np.array(True)})
    assert not model.graph.initializers
    assert [user.op_type for user in model.graph.inputs[0].consumers()] == ["Relu"]


def test_unknown_domain_nodes_and_their_opset_removed() -> None:
    text = graph("y = Relu(x)\n d = custom.Thing(x)", "(float[2,3] x) => (float[2,3] y)",
                 '<ir_version: 8, opset_import: ["" : 17, "custom" : 1]>')
    model = model_from_text(text)
    assert run_pass("eliminate_dead_code", model).modified
    assert op_histogram(model) == {"Relu": 1}
    assert model.opset_imports == {"": 17}
    onnx.checker.check_model(to_proto(model), full_check=True)


FUNCTIONS = """
<ir_version: 8, opset_import: ["" : 17, "local" : 1, "unused.domain" : 1, "com.microsoft" : 1]>
g (float[2,3] x) => (float[2,3] y) {
  y = local.Twice(x)
}
<domain: "local", opset_import: ["" : 17, "local" : 1]>
Twice (a) => (b) {
  h = local.Double(a)
  b = local.Double(h)
}
<domain: "local", opset_import: ["" : 17]>
Double (a) => (b) {
  b = Add(a, a)
}
<domain: "local", opset_import: ["" : 17]>
Unused (a) => (b) {
  b = Neg(a)
}
"""


def test_unused_function_and_opset_removed_nested_calls_kept() -> None:
    model = model_from_text(FUNCTIONS)
    original = serialize(model)
    result = run_pass("eliminate_dead_code", model)
    assert result.counters == {"functions": 1, "opset_imports": 2}
    assert [f.name for f in model.functions] == ["Twice", "Double"]
    assert model.opset_imports == {"": 17, "local": 1}
    onnx.checker.check_model(to_proto(model), full_check=True)
    lint(model)
    assert_same_outputs(original, model, rtol=0, atol=0)
    assert not run_pass("eliminate_dead_code", model).modified


def test_stale_value_info_dropped() -> None:
    proto = onnx.parser.parse_model(graph("y = Relu(x)", "(float[2,3] x) => (float[2,3] y)"))
    proto.graph.value_info.extend([
        helper.make_tensor_value_info("gone", TensorProto.FLOAT, [2, 3]),
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
    ])
    model = from_proto(proto)
    result = run_pass("eliminate_dead_code", model)
    assert result.counters["value_info"] == 1
    assert [info.name for info in to_proto(model).graph.value_info] == ["x"]


def _with_initializer_input(ir_version: int) -> onnx.ModelProto:
    w = onnx.numpy_helper.from_array(np.ones((2, 3), np.float32), "w")
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3]) for n in ("x", "w")]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])]
    g = helper.make_graph(nodes, "g", inputs, outputs, [w])
    return helper.make_model(g, ir_version=ir_version, opset_imports=[helper.make_opsetid("", 9 if ir_version < 4 else 17)])


def test_legacy_initializer_listed_as_input_removed_but_a_real_overridable_input_kept() -> None:
    legacy = from_proto(_with_initializer_input(3))
    assert run_pass("eliminate_dead_code", legacy).counters["initializers"] == 1
    assert [v.name for v in legacy.graph.inputs] == ["x"]
    modern = from_proto(_with_initializer_input(8))
    assert not run_pass("eliminate_dead_code", modern).modified
    assert [v.name for v in modern.graph.inputs] == ["x", "w"]
