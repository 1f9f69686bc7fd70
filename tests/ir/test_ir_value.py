"""Value: producer, uses, consumers, replace_all_uses_with (graph outputs keep their names), renames, types."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto

import onnxopt.ir as ir
from onnxopt.ir import Node, Tensor, Value, lint
from onnxopt.testing import assert_same_outputs, model_from_text

TEXT = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2] x, float[2] z) => (float[2] y, float[2] s) {
        a = Relu(x)
        b = Add(a, a)
        c = Mul(a, b)
        y = Neg(c)
        s = Sigmoid(b)
    }"""


def model() -> tuple[ir.Model, dict[str, Node]]:
    m = model_from_text(TEXT, {"w": np.array([1.0, 2.0], np.float32)})
    return m, {node.outputs[0].name: node for node in m.graph}


def test_producer_index_and_kind() -> None:
    m, nodes = model()
    graph = m.graph
    a = nodes["a"].outputs[0]
    assert a.producer() is nodes["a"] and a.index() == 0
    x, z = graph.inputs
    assert x.producer() is None and x.is_graph_input() and not x.is_graph_output()
    w = graph.initializers["w"]
    assert w.producer() is None and w.is_initializer() and w.is_constant() and not w.is_graph_input()
    assert nodes["y"].outputs[0].is_graph_output()
    split = Node("Split", [x], 2)
    assert [v.producer() for v in split.outputs] == [split, split] and [v.index() for v in split.outputs] == [0, 1]


def test_uses_list_every_input_slot_and_consumers_are_distinct() -> None:
    m, nodes = model()
    a = nodes["a"].outputs[0]
    assert a.uses() == ((nodes["b"], 0), (nodes["b"], 1), (nodes["c"], 0))
    assert a.consumers() == [nodes["b"], nodes["c"]]
    assert a.has_uses()
    assert nodes["y"].outputs[0].uses() == () and not nodes["y"].outputs[0].has_uses()
    assert m.graph.inputs[1].uses() == ()  # z is an input nobody reads
    assert nodes["c"].predecessors() == [nodes["a"], nodes["b"]]
    assert nodes["b"].successors() == [nodes["c"], nodes["s"]]


def test_replace_input_with_moves_the_use() -> None:
    m, nodes = model()
    a, x = nodes["a"].outputs[0], m.graph.inputs[0]
    nodes["b"].replace_input_with(1, x)
    assert a.uses() == ((nodes["b"], 0), (nodes["c"], 0))
    assert x.uses() == ((nodes["a"], 0), (nodes["b"], 1))
    nodes["c"].replace_input_with(0, None)
    assert a.uses() == ((nodes["b"], 0),) and nodes["c"].inputs == (None, nodes["b"].outputs[0])


def test_set_inputs_can_change_the_arity() -> None:
    m, nodes = model()
    a, b = nodes["a"].outputs[0], nodes["b"].outputs[0]
    nodes["c"].set_inputs([b, b, a])
    assert set(b.uses()) == {(nodes["c"], 0), (nodes["c"], 1), (nodes["s"], 0)}
    assert set(a.uses()) == {(nodes["b"], 0), (nodes["b"], 1), (nodes["c"], 2)}
    lint(m)


def test_replace_all_uses_with_a_node_output() -> None:
    m, nodes = model()
    original = ir.to_proto(m)
    a, b = nodes["a"].outputs[0], nodes["b"].outputs[0]
    identity = Node("Identity", [a], [Value("a2")])
    m.graph.insert_after(nodes["a"], identity)
    a2 = identity.outputs[0]
    a.replace_all_uses_with(a2)  # the identity's own read moves too (a self-loop) ...
    assert a.uses() == () and identity.inputs[0] is a2
    identity.replace_input_with(0, a)  # ... so point it back, as a pass inserting after `a` does
    assert a.uses() == ((identity, 0),)
    assert {n.op_type for n, _ in a2.uses()} == {"Add", "Mul"}
    lint(m)
    assert_same_outputs(original.SerializeToString(), m)
    assert b.consumers() == [nodes["c"], nodes["s"]]


def test_replace_all_uses_of_a_graph_output_keeps_the_output_name() -> None:
    m, nodes = model()
    original = ir.to_proto(m)
    c, y = nodes["c"].outputs[0], nodes["y"].outputs[0]
    replacement = Node("Neg", [c], [Value("fresh")])
    m.graph.insert_after(nodes["y"], replacement)
    y.replace_all_uses_with(replacement.outputs[0])
    m.graph.remove(nodes["y"])
    assert [o.name for o in m.graph.outputs] == ["y", "s"]
    assert m.graph.outputs[0] is replacement.outputs[0]
    assert y.name != "y" and not y.is_graph_output()
    lint(m)
    saved = ir.to_proto(m)
    assert [o.name for o in saved.graph.output] == ["y", "s"]
    onnx.checker.check_model(saved, full_check=True)
    assert_same_outputs(original.SerializeToString(), m)


@pytest.mark.parametrize("kind", ["graph input", "initializer", "another graph output"])
def test_replace_a_graph_output_by_a_value_that_keeps_its_own_name(kind: str) -> None:
    m, nodes = model()
    graph = m.graph
    new = {"graph input": graph.inputs[0], "initializer": graph.initializers["w"],
           "another graph output": nodes["s"].outputs[0]}[kind]
    name_before = new.name
    y = nodes["y"].outputs[0]
    y.replace_all_uses_with(new)
    graph.remove(nodes["y"])
    assert new.name == name_before  # an Identity carries the output name instead
    out = graph.outputs[0]
    assert out.name == "y" and out.producer().op_type == "Identity" and out.producer().inputs[0] is new
    lint(m)
    saved = ir.to_proto(m)
    onnx.checker.check_model(saved, full_check=True)
    assert [o.name for o in saved.graph.output] == ["y", "s"]


def test_rename_reaches_readers_producer_and_initializer_table() -> None:
    m, nodes = model()
    a = nodes["a"].outputs[0]
    a.name = "renamed"
    saved = ir.to_proto(m).graph
    assert saved.node[0].output[0] == "renamed" and list(saved.node[1].input) == ["renamed", "renamed"]
    w = m.graph.initializers["w"]
    w.name = "weight"
    assert m.graph.initializers["weight"] is w and "w" not in m.graph.initializers
    assert m.graph.unique_name("renamed") != "renamed"  # the new name is taken


def test_types_and_constant_data() -> None:
    m, nodes = model()
    x = m.graph.inputs[0]
    assert x.dtype == TensorProto.FLOAT and x.shape == (2,)
    a = nodes["a"].outputs[0]
    assert a.dtype is None and a.shape is None
    a.set_type(TensorProto.FLOAT16, (2, "n", None))
    assert a.dtype == TensorProto.FLOAT16 and a.shape == (2, "n", None)
    w = m.graph.initializers["w"]
    assert w.dtype == TensorProto.FLOAT and w.shape == (2,)
    assert w.numpy().tolist() == [1.0, 2.0] and x.numpy() is None
    c = Value("c", const_value=Tensor.from_array(np.arange(6, dtype=np.int64).reshape(2, 3)))
    assert c.shape == (2, 3) and c.dtype == TensorProto.INT64 and c.is_constant()


def test_identity_semantics_and_repr() -> None:
    a, b = Value("same"), Value("same")
    assert a != b and len({a, b}) == 2
    assert repr(a) == "Value('same')"
