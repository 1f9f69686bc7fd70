"""Subgraphs (If, Loop, Scan): captured outer values resolve to the outer Value, use-def crosses the boundary."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from irhelpers import assert_identical, assert_same_meaning, session
from onnx import TensorProto, helper

import onnxopt.ir as ir
from onnxopt.errors import IRError
from onnxopt.ir import Builder, Node, lint
from onnxopt.testing import model_from_text

IF_TEXT = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2] x, bool c) => (float[2] y) {
        t = Neg(x)
        y = If(c) <then_branch = then_g () => (float[2] p) { p = Relu(t) },
                   else_branch = else_g () => (float[2] q) { q = Mul(t, x) }>
    }"""

LOOP_TEXT = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (int64 n, float[2] x, bool flag) => (float[2] out, float[N, 2] scanned) {
        w = Abs(x)
        cond = Constant<value = bool {1}>()
        out, scanned = Loop(n, cond, x) <body = body (int64 i, bool c_in, float[2] acc) => (bool c_out, float[2] acc_out, float[2] s) {
            c_out = Identity(c_in)
            step = If(flag) <then_branch = inc () => (float[2] a) { a = Add(acc, w) },
                             else_branch = dec () => (float[2] b) { b = Sub(acc, w) }>
            acc_out = Identity(step)
            s = Mul(acc_out, x)
        }>
    }"""


def if_model() -> tuple[ir.Model, dict[str, Node]]:
    m = model_from_text(IF_TEXT)
    nodes = {n.op_type: n for g in m.graph.all_graphs() for n in g}
    return m, nodes


def loop_model() -> tuple[ir.Model, dict[str, Node]]:
    m = model_from_text(LOOP_TEXT)
    nodes = {n.outputs[0].name: n for g in m.graph.all_graphs() for n in g}
    return m, nodes


def test_captured_values_are_the_outer_values() -> None:
    m, n = if_model()
    t, x = n["Neg"].outputs[0], m.graph.inputs[0]
    assert n["Relu"].inputs[0] is t and n["Mul"].inputs == (t, x)
    assert t.graph is m.graph and n["Relu"].graph is n["If"].attrs["then_branch"]
    assert set(t.uses()) == {(n["Relu"], 0), (n["Mul"], 0)}
    assert t.consumers() == [n["Relu"], n["Mul"]]
    assert set(x.consumers()) == {n["Neg"], n["Mul"]}
    then, other = n["If"].subgraphs()
    assert then.parent is n["If"] and then.root() is m.graph
    assert then.captured_values() == [t] and other.captured_values() == [t, x]
    assert set(m.graph.node_dependencies(n["If"])) == {m.graph.inputs[1], t, x}
    lint(m)


def test_removing_an_outer_producer_read_only_inside_a_branch_is_refused() -> None:
    m, n = if_model()
    with pytest.raises(IRError, match=r"cannot remove Node\(Neg.*'t' is still used by Node\(Relu"):
        m.graph.remove(n["Neg"])
    lint(m)


def test_replace_all_uses_of_an_outer_value_rewires_the_branches() -> None:
    m, n = if_model()
    t, x = n["Neg"].outputs[0], m.graph.inputs[0]
    t.replace_all_uses_with(x)
    assert n["Relu"].inputs[0] is x and n["Mul"].inputs == (x, x) and t.uses() == ()
    m.graph.remove(n["Neg"])
    lint(m)
    saved = ir.to_proto(m)
    onnx.checker.check_model(saved, full_check=True)
    feeds = {"x": np.array([1.5, -2.0], np.float32), "c": np.array(True)}
    assert session(saved.SerializeToString()).run(None, feeds)[0].tolist() == [1.5, 0.0]


def test_inner_value_replaced_by_an_outer_one_keeps_the_branch_output_name() -> None:
    m, n = if_model()
    then = n["If"].attrs["then_branch"]
    p = n["Relu"].outputs[0]
    p.replace_all_uses_with(n["Neg"].outputs[0])
    then.remove(n["Relu"])
    assert [o.name for o in then.outputs] == ["p"] and then.outputs[0].producer().op_type == "Identity"
    lint(m)
    onnx.checker.check_model(ir.to_proto(m), full_check=True)


def test_nested_capture_reaches_the_outermost_graph() -> None:
    m, n = loop_model()
    w, x, flag = n["w"].outputs[0], m.graph.inputs[1], m.graph.inputs[2]
    add, sub, step_if = n["a"], n["b"], n["step"]
    assert add.inputs[1] is w and sub.inputs[1] is w and step_if.inputs[0] is flag
    assert set(w.consumers()) == {add, sub}
    assert len(m.graph.all_graphs()) == 4  # main, body, inc, dec
    body = n["out"].attrs["body"]
    assert set(body.captured_values()) == {w, flag, x}
    with pytest.raises(IRError, match=r"'w' is still used by Node\((Add|Sub)"):
        m.graph.remove(n["w"])
    lint(m)


def test_lint_catches_a_capture_of_a_value_defined_after_the_node() -> None:
    m, n = if_model()
    graph = m.graph
    graph.remove(n["Neg"], safe=False)
    n["Neg"].set_inputs(n["Neg"].inputs)
    graph.append(n["Neg"])
    with pytest.raises(IRError, match=r"Node\(Relu.* reads 't', which is defined later"):
        lint(m)
    graph.sort()
    lint(m)


def test_new_inner_names_are_unique_across_scopes() -> None:
    m, n = if_model()
    then = n["If"].attrs["then_branch"]
    op = Builder(then)
    with then.inserting_before(n["Relu"]):
        v = op.Neg(m.graph.inputs[0])
    outer_names = {v_.name for v_ in (*m.graph.inputs, *(o for node in m.graph for o in node.outputs))}
    assert v.name not in outer_names and v.producer().name not in {node.name for node in m.graph}
    lint(m)


@pytest.mark.parametrize("cond", [True, False])
def test_if_round_trip_runs_identically(cond: bool, tmp_path) -> None:
    original = onnx.parser.parse_model(IF_TEXT)
    path = tmp_path / "if.onnx"
    ir.save(ir.from_proto(original), path)
    saved = onnx.load(str(path))
    assert_same_meaning(original, saved)
    onnx.checker.check_model(saved, full_check=True)
    feeds = {"x": np.array([1.5, -2.0], np.float32), "c": np.array(cond)}
    assert_identical(session(original.SerializeToString()).run(None, feeds), session(str(path)).run(None, feeds))


@pytest.mark.parametrize("flag", [True, False])
def test_loop_round_trip_runs_identically(flag: bool, tmp_path) -> None:
    original = onnx.parser.parse_model(LOOP_TEXT)
    path = tmp_path / "loop.onnx"
    ir.save(ir.from_proto(original), path)
    saved = onnx.load(str(path))
    assert_same_meaning(original, saved)
    onnx.checker.check_model(saved, full_check=True)
    feeds = {"n": np.array(3, np.int64), "x": np.array([1.0, -2.0], np.float32), "flag": np.array(flag)}
    assert_identical(session(original.SerializeToString()).run(None, feeds), session(str(path)).run(None, feeds))


def test_edited_subgraph_is_saved_and_still_runs(tmp_path) -> None:
    m, n = loop_model()
    n["a"].op_type = "Mul"  # acc * w instead of acc + w, inside a branch inside the body
    path = tmp_path / "edited.onnx"
    ir.save(m, path)
    saved = onnx.load(str(path))
    onnx.checker.check_model(saved, full_check=True)
    inc = saved.graph.node[2].attribute[0].g.node[1].attribute[0].g  # Loop.body → If.then_branch
    assert [node.op_type for node in inc.node] == ["Mul"]
    feeds = {"n": np.array(2, np.int64), "x": np.array([2.0, -3.0], np.float32), "flag": np.array(True)}
    out, _ = session(str(path)).run(None, feeds)
    assert out.tolist() == [8.0, -27.0]  # x * |x| * |x|


def test_scan_round_trip_and_capture(tmp_path) -> None:
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "row"], ["s_next"]), helper.make_node("Mul", ["s_next", "k"], ["out_row"])],
        "scan_body",
        [helper.make_tensor_value_info("s_in", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("row", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("s_next", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("out_row", TensorProto.FLOAT, [2])])
    graph = helper.make_graph(
        [helper.make_node("Abs", ["init"], ["k"]),
         helper.make_node("Scan", ["init", "xs"], ["final", "ys"], body=body, num_scan_inputs=1)], "g",
        [helper.make_tensor_value_info("init", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("xs", TensorProto.FLOAT, [3, 2])],
        [helper.make_tensor_value_info("final", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("ys", TensorProto.FLOAT, [3, 2])])
    original = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m = ir.from_proto(original)
    k = m.graph.nodes[0].outputs[0]
    assert [node.op_type for node, _ in k.uses()] == ["Mul"]
    lint(m)
    path = tmp_path / "scan.onnx"
    ir.save(m, path)
    assert_same_meaning(original, onnx.load(str(path)))
    feeds = {"init": np.array([1.0, -1.0], np.float32), "xs": np.arange(6, dtype=np.float32).reshape(3, 2)}
    assert_identical(session(original.SerializeToString()).run(None, feeds), session(str(path)).run(None, feeds))


def test_clone_maps_captured_values_to_the_clone() -> None:
    m, n = loop_model()
    copy = m.clone()
    c_nodes = {node.outputs[0].name: node for g in copy.graph.all_graphs() for node in g}
    w_copy = c_nodes["w"].outputs[0]
    assert c_nodes["a"].inputs[1] is w_copy and c_nodes["a"].inputs[1] is not n["w"].outputs[0]
    assert set(w_copy.consumers()) == {c_nodes["a"], c_nodes["b"]}
    assert set(n["w"].outputs[0].consumers()) == {n["a"], n["b"]}
    lint(copy)
    assert ir.serialize(copy) == ir.serialize(m)
    c_nodes["a"].op_type = "Mul"
    assert n["a"].op_type == "Add"


def test_subgraph_docs_and_value_info_survive_a_rebuilt_parent(tmp_path) -> None:
    then = helper.make_graph([helper.make_node("Neg", ["x"], ["u"], doc_string="inner doc"),
                              helper.make_node("Relu", ["u"], ["p"])], "then", [],
                             [helper.make_tensor_value_info("p", TensorProto.FLOAT, [2], doc_string="branch out")],
                             doc_string="then doc",
                             value_info=[helper.make_tensor_value_info("u", TensorProto.FLOAT, [2])])
    other = helper.make_graph([helper.make_node("Abs", ["x"], ["q"])], "else", [],
                              [helper.make_tensor_value_info("q", TensorProto.FLOAT, [2])])
    graph = helper.make_graph([helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other, name="branch")],
                              "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
                                    helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    original = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m = ir.from_proto(original)
    assert m.graph.nodes[0].proto is None  # nodes with subgraphs are always rebuilt on save
    path = tmp_path / "docs.onnx"
    ir.save(m, path)
    assert_same_meaning(original, onnx.load(str(path)))


def test_subgraphs_are_found_after_every_way_a_holder_comes_and_goes() -> None:
    m = model_from_text(LOOP_TEXT)
    def names(graph):
        found = [g.name for g in graph.subgraphs()]
        assert [g.name for g in graph.all_graphs()[1:]] == found  # the cached list follows every edit
        return found

    assert names(m.graph) == ["body", "inc", "dec"]
    assert names(m.clone().graph) == ["body", "inc", "dec"]
    plain = model_from_text(IF_TEXT.replace("If(c)", "Where(c, x, x)").split("<then")[0] + "\n    }")
    assert names(plain.graph) == []
    neg = plain.graph.nodes[0]
    branch = model_from_text(IF_TEXT).graph.nodes[1].attr("then_branch")
    neg.set_attr("body", branch)  # a subgraph attribute set on a node already in the graph
    assert names(plain.graph) == ["then_g"]
    neg.set_attr("body", 1)
    assert names(plain.graph) == []
    loop = m.graph.nodes[2]
    m.graph.remove(loop, safe=False)
    assert names(m.graph) == []
    m.graph.append(loop)
    assert names(m.graph) == ["body", "inc", "dec"]


def test_lint_catches_a_subgraph_attribute_written_around_set_attr() -> None:
    m = model_from_text(IF_TEXT)
    neg = m.graph.nodes[0]
    neg.attrs["body"] = m.graph.nodes[1].attr("then_branch").clone()
    with pytest.raises(IRError, match="nodes with subgraphs"):
        lint(m)
