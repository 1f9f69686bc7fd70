"""lint: every broken invariant is reported with the node (or graph) at fault; sound graphs pass."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxopt.ir as ir
from onnxopt.errors import IRError
from onnxopt.ir import Graph, Node, Value, lint
from onnxopt.testing import model_from_text


def chain() -> tuple[ir.Model, list[Node]]:
    model = model_from_text("""
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[2] x) => (float[2] y) { a = Relu(x)  b = Neg(a)  y = Abs(b) }""")
    return model, model.graph.nodes


def test_sound_models_pass() -> None:
    model, _ = chain()
    lint(model)
    lint(model.graph)


def test_dangling_use_names_the_reader() -> None:
    model, (relu, neg, _) = chain()
    stray = Value("stray")
    neg.replace_input_with(0, stray)
    with pytest.raises(IRError, match=r"Node\(Neg, unnamed, output 'b'\) reads 'stray', which is defined nowhere"):
        lint(model)


def test_use_of_a_removed_node_output_is_dangling() -> None:
    model, (relu, neg, _) = chain()
    model.graph.remove(relu, safe=False)
    with pytest.raises(IRError, match=r"Node\(Neg, unnamed, output 'b'\) reads 'a', which is defined by "
                                      r"Node\(Relu, unnamed, output 'a'\), which was removed"):
        lint(model)


def test_stale_and_missing_use_entries() -> None:
    model, (relu, neg, abs_node) = chain()
    relu.outputs[0]._uses[(abs_node, 0)] = None  # a use abs does not make
    with pytest.raises(IRError, match=r"'a' of Node\(Relu.*stale use by Node\(Abs"):
        lint(model)
    del relu.outputs[0]._uses[(abs_node, 0)]
    del relu.outputs[0]._uses[(neg, 0)]  # a use neg makes but the value does not list
    with pytest.raises(IRError, match=r"Node\(Neg.* input 0 \('a'\) is missing from that value's use list"):
        lint(model)


def test_order_broken_names_the_reader_and_sort_repairs_it() -> None:
    model, (relu, neg, abs_node) = chain()
    graph = model.graph
    graph.remove(relu, safe=False)
    relu.set_inputs(relu.inputs)  # re-register its use of x (remove detached it)
    neg.replace_input_with(0, relu.outputs[0])
    graph.insert_after(abs_node, relu)
    with pytest.raises(IRError, match=r"Neg.* reads 'a', which is defined later in the graph"):
        lint(model)
    graph.sort()
    lint(model)
    assert [n.op_type for n in graph] == ["Relu", "Neg", "Abs"]


def test_cycle_is_reported_by_lint_and_sort() -> None:
    model, (relu, neg, abs_node) = chain()
    relu.replace_input_with(0, neg.outputs[0])  # Relu reads Neg, Neg reads Relu
    with pytest.raises(IRError, match=r"Relu.* reads 'b', which is defined later in the graph \(order broken or a cycle\)"):
        lint(model)
    with pytest.raises(IRError, match="has a cycle through Node"):
        model.graph.sort()


def test_duplicate_names_name_the_second_definer() -> None:
    model, (relu, neg, abs_node) = chain()
    neg.outputs[0]._name = "a"  # bypass the renaming machinery, as a buggy pass might
    with pytest.raises(IRError, match=r"name 'a' is defined twice \(again by Node\(Neg"):
        lint(model)


def test_duplicate_between_initializer_and_node_output() -> None:
    model, (relu, _, _) = chain()
    model.graph.add_initializer(Value("w", const_value=ir.Tensor.from_array(np.ones(2, np.float32))))
    relu.outputs[0]._name = "w"
    with pytest.raises(IRError, match=r"name 'w' is defined twice \(again by Node\(Relu"):
        lint(model)


BRANCHES = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (bool c, float[2] x) => (float[2] y) {{
      y = If(c) <then_branch = a () => (float[2] oa) {{ t = Neg(x)  oa = Relu(t) }},
                 else_branch = b () => (float[2] ob) {{ t = Abs(x)  ob = Relu({read}) }}>
    }}"""


def test_sibling_branches_may_reuse_a_name() -> None:
    lint(model_from_text(BRANCHES.format(read="t")))


def test_branch_may_not_redefine_an_outer_name() -> None:
    model = model_from_text(BRANCHES.format(read="t"))
    then_branch = next(iter(model.graph)).subgraphs()[0]
    next(iter(then_branch)).outputs[0]._name = "x"
    with pytest.raises(IRError, match=r"name 'x' is defined twice \(again by Node\(Neg"):
        lint(model)


def test_undefined_graph_output() -> None:
    model, _ = chain()
    model.graph.add_output(Value("ghost"))
    with pytest.raises(IRError, match="graph 'g' output 'ghost' is not defined"):
        lint(model)


def test_nameless_value_is_reported() -> None:
    model, (relu, neg, _) = chain()
    relu.outputs[0]._name = ""
    with pytest.raises(IRError, match=r"a value of Node\(Relu.* has no name"):
        lint(model)


def test_node_in_the_wrong_graph() -> None:
    model, (relu, _, _) = chain()
    relu.graph = Graph("elsewhere")
    with pytest.raises(IRError, match=r"Node\(Relu.* is listed in graph 'g' but points at another graph"):
        lint(model)


def test_wrong_producer() -> None:
    model, (relu, neg, _) = chain()
    relu.outputs[0]._producer = neg
    with pytest.raises(IRError, match=r"Node\(Relu.* output 0 \('a'\) names another producer"):
        lint(model)


def test_subgraph_with_wrong_parent() -> None:
    model = model_from_text("""
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[2] x, bool c) => (float[2] y) {
            y = If(c) <then_branch = t () => (float[2] p) { p = Relu(x) }, else_branch = e () => (float[2] q) { q = Abs(x) }>
        }""")
    if_node = model.graph.nodes[0]
    lint(model)
    if_node.attrs["then_branch"].parent = None
    with pytest.raises(IRError, match=r"subgraph 't' of Node\(If.* has the wrong parent"):
        lint(model)


def test_omitted_optional_output_is_fine_but_a_read_nameless_one_is_not() -> None:
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 1, 1])
    y_h = helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [1, 1, 1])
    weights = [helper.make_tensor("W", TensorProto.FLOAT, [1, 4, 1], [0.1] * 4),
               helper.make_tensor("R", TensorProto.FLOAT, [1, 4, 1], [0.2] * 4)]
    graph = helper.make_graph([helper.make_node("LSTM", ["X", "W", "R"], ["", "Y_h"], hidden_size=1)], "g", [x], [y_h], weights)
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    lint(model)
    lstm = model.graph.nodes[0]
    assert lstm.outputs[0].name == ""
    assert ir.to_proto(model).graph.node[0].output[:] == ["", "Y_h"]
    model.graph.append(Node("Relu", [lstm.outputs[0]], [Value("r")]))
    with pytest.raises(IRError, match=r"a value of Node\(LSTM.* has no name"):
        lint(model)


def test_sparse_initializer_readers_are_defined_also_in_subgraphs() -> None:
    sparse = helper.make_sparse_tensor(numpy_helper.from_array(np.array([1.0], np.float32), "sp"),
                                       numpy_helper.from_array(np.array([1], np.int64), "sp_idx"), [2])
    then = helper.make_graph([helper.make_node("Add", ["x", "sp"], ["p"])], "then", [],
                             [helper.make_tensor_value_info("p", TensorProto.FLOAT, [2])])
    other = helper.make_graph([helper.make_node("Identity", ["sp"], ["q"])], "else", [],
                              [helper.make_tensor_value_info("q", TensorProto.FLOAT, [2])])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "sp"], ["m"]), helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("m", TensorProto.FLOAT, [2])])
    graph.sparse_initializer.append(sparse)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(proto)
    lint(ir.from_proto(proto))


def test_out_of_order_file_loads_with_whole_use_def_and_sort_repairs_it() -> None:
    graph = helper.make_graph(
        [helper.make_node("Neg", ["a"], ["y"], name="reader"), helper.make_node("Relu", ["x"], ["a"], name="producer")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    reader, producer = model.graph.nodes
    assert reader.inputs[0] is producer.outputs[0]
    assert producer.outputs[0].consumers() == [reader]
    with pytest.raises(IRError, match=r"Node\(Neg, 'reader'\) reads 'a', which is defined later"):
        lint(model)
    model.graph.sort()
    lint(model)
    onnx.checker.check_model(ir.to_proto(model), full_check=True)


def test_undefined_name_in_a_file_is_kept_and_named() -> None:
    graph = helper.make_graph(
        [helper.make_node("Neg", ["nowhere"], ["y"], name="reader")], "g", [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    with pytest.raises(IRError, match=r"Node\(Neg, 'reader'\) reads 'nowhere', which is defined nowhere"):
        lint(model)
    assert ir.to_proto(model).graph.node[0].input[:] == ["nowhere"]
