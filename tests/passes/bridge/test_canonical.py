"""canonicalize: the node order and made-up names of a rewritten graph follow from its structure alone."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnxopt.passes.bridge.canonical import canonicalize

KEPT = {"x", "c", "w", "y", "z", "s", "relu", "o1", "o2"}  # the names the graph had before the tool ran


def rewritten(order: list[int], names: dict[str, str]) -> onnx.GraphProto:
    """One rewritten graph as a tool might emit it: nodes in `order`, made-up names spelled as `names` says; out of
    node order, it also lists initializers, value_info and attributes backwards."""
    backwards = order != sorted(order)
    t, a, b, k1, k2 = (names[n] for n in ("t", "a", "b", "k1", "k2"))
    nodes = [
        helper.make_node("Conv", ["x", "w"], [t], name=names["conv_t"]),
        helper.make_node("Conv", [t, k1], [a], name=names["conv_a"]),
        helper.make_node("Conv", [t, k2], [b], name=names["conv_b"]),
        helper.make_node("Relu", [a], ["y"], name="relu"),
        helper.make_node("Sigmoid", [b], ["z"], name=names["sigmoid"]),
        helper.make_node("If", ["c"], ["s"], name=names["if"], then_branch=branch("then", names["then"], b),
                         else_branch=branch("else", names["else"], a)),
    ]
    weights = {"w": 1.0, k1: 2.0, k2: 3.0}
    initializers = [numpy_helper.from_array(np.full((4, 4, 1, 1), weights[n], np.float32), n)
                    for n in sorted(weights, reverse=backwards)]
    value_info = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4, 8, 8]) for n in (b, a, t, "gone")]
    if backwards:
        value_info.reverse()
        for node in nodes:
            node.attribute.sort(key=lambda attr: attr.name, reverse=True)
    return helper.make_graph(
        [nodes[i] for i in order], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8]),
         helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "z", "s")],
        initializers, value_info=value_info)


def branch(graph_name: str, node_name: str, read: str) -> onnx.GraphProto:
    """An If branch that passes on a value of the enclosing graph as o1 (then) or o2 (else)."""
    out = "o1" if graph_name == "then" else "o2"
    return helper.make_graph([helper.make_node("Identity", [read], [out], name=node_name)], graph_name, [],
                             [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)])


FIRST = {"t": "tok_0", "a": "tok_1", "b": "tok_2", "k1": "tok_3", "k2": "tok_4", "conv_t": "Conv",
         "conv_a": "Conv_tok_1", "conv_b": "Conv_tok_2", "sigmoid": "Sigmoid", "if": "If", "then": "Id", "else": "Id_1"}
SECOND = {"t": "tok_7", "a": "tok_4", "b": "tok_3", "k1": "tok_0", "k2": "tok_9", "conv_t": "Conv_tok_8",
          "conv_a": "Conv", "conv_b": "Conv_tok_5", "sigmoid": "Sigmoid_tok_6", "if": "If_2", "then": "Id_3",
          "else": "Id"}


def test_order_and_names_do_not_depend_on_the_tool():
    first, second = rewritten([0, 1, 2, 3, 4, 5], FIRST), rewritten([0, 2, 4, 1, 5, 3], SECOND)
    assert first.SerializeToString() != second.SerializeToString()
    for graph in (first, second):
        canonicalize(graph, KEPT, "tag")
    assert first.SerializeToString() == second.SerializeToString()


def test_made_up_names_are_replaced_and_kept_ones_stay():
    graph = rewritten([0, 2, 4, 1, 5, 3], SECOND)
    canonicalize(graph, KEPT, "tag")
    assert [(n.name, list(n.input), list(n.output)) for n in graph.node] == [
        ("Conv_tag_0", ["x", "w"], ["tag_0"]),
        ("Conv_tag_1", ["tag_0", "tag_1"], ["tag_2"]),  # of two like nodes, the weights' contents decide
        ("Sigmoid_tag_0", ["tag_2"], ["z"]),  # depth first: a reader of the value placed last goes next
        ("Conv_tag_2", ["tag_0", "tag_3"], ["tag_4"]),
        ("If_tag_0", ["c"], ["s"]),
        ("relu", ["tag_4"], ["y"]),
    ]
    branches = {attr.name: attr.g for attr in graph.node[-2].attribute}
    assert [list(n.input) for n in branches["then_branch"].node] == [["tag_2"]]  # outer values, renamed
    assert [list(n.input) for n in branches["else_branch"].node] == [["tag_4"]]
    assert [n.name for n in (*branches["else_branch"].node, *branches["then_branch"].node)] == [
        "Identity_tag_0", "Identity_tag_1"]  # attributes in name order
    assert [t.name for t in graph.initializer] == ["w", "tag_1", "tag_3"]  # in order of first use
    assert [v.name for v in graph.value_info] == ["tag_0", "tag_2", "tag_4"]  # "gone" named no value
    assert [v.name for v in graph.output] == ["y", "z", "s"]
