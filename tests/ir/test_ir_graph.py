"""Graph: remove (safe/unsafe), insert, insertion points, mutation-safe iteration, unique names, sort, clone."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

import onnxopt.ir as ir
from onnxopt.errors import IRError
from onnxopt.ir import Builder, Graph, Node, Value, lint
from onnxopt.testing import assert_same_outputs, model_from_text

TEXT = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2] x) => (float[2] y) {
        a = Relu(x)
        b = Neg(a)
        c = Abs(b)
        y = Sigmoid(c)
    }"""


def chain() -> tuple[ir.Model, list[Node]]:
    m = model_from_text(TEXT)
    return m, m.graph.nodes


def ops(graph: Graph) -> list[str]:
    return [n.op_type for n in graph]


# ---- remove --------------------------------------------------------------------------------------
def test_safe_remove_refuses_used_outputs_and_graph_outputs() -> None:
    m, (relu, neg, abs_, sig) = chain()
    with pytest.raises(IRError, match=r"cannot remove Node\(Neg.*'b' is still used by Node\(Abs"):
        m.graph.remove(neg)
    with pytest.raises(IRError, match=r"cannot remove Node\(Sigmoid.*output 'y' is a graph output"):
        m.graph.remove(sig)
    assert ops(m.graph) == ["Relu", "Neg", "Abs", "Sigmoid"]
    lint(m)


def test_removing_a_dead_chain_together_is_safe() -> None:
    m, (relu, neg, abs_, sig) = chain()
    x = m.graph.inputs[0]
    sig.replace_input_with(0, x)
    m.graph.remove([neg, abs_, relu])  # any order within the batch
    assert ops(m.graph) == ["Sigmoid"] and len(m.graph) == 1
    assert x.uses() == ((sig, 0),)  # the removed Relu no longer reads x
    lint(m)


def test_unsafe_remove_leaves_a_dangling_use_that_lint_names() -> None:
    m, (relu, neg, abs_, sig) = chain()
    m.graph.remove(neg, safe=False)
    assert neg.graph is None and relu.outputs[0].uses() == ()
    with pytest.raises(IRError, match=r"Node\(Abs.* reads 'b', which is defined by Node\(Neg.*which was removed"):
        lint(m)
    with pytest.raises(IRError, match="is not in graph"):
        m.graph.remove(neg, safe=False)


def test_replace_node_with_bypasses_a_node() -> None:
    m = model_from_text(TEXT.replace("c = Abs(b)", "c = Identity(b)"))
    relu, neg, identity, sig = m.graph.nodes
    original = ir.serialize(m)
    m.graph.replace_node_with(identity, neg.outputs[0])
    assert ops(m.graph) == ["Relu", "Neg", "Sigmoid"] and sig.inputs[0] is neg.outputs[0]
    lint(m)
    assert_same_outputs(original, m)


# ---- insert --------------------------------------------------------------------------------------
def test_insert_before_and_after_keep_the_given_order() -> None:
    m, (relu, neg, abs_, sig) = chain()
    x = m.graph.inputs[0]
    first = [Node("Identity", [x], 1, name="i1"), Node("Identity", [x], 1, name="i2")]
    m.graph.insert_before(relu, first)
    m.graph.insert_after(neg, [Node("Identity", [x], 1, name="j1"), Node("Identity", [x], 1, name="j2")])
    m.graph.insert_after(sig, Node("Identity", [x], 1, name="last"))
    assert [n.name or n.op_type for n in m.graph][:2] == ["i1", "i2"]
    assert [n.name for n in m.graph if n.op_type == "Identity"] == ["i1", "i2", "j1", "j2", "last"]
    assert ops(m.graph)[3:7] == ["Neg", "Identity", "Identity", "Abs"]
    assert list(reversed(m.graph))[0].name == "last"
    assert len(m.graph) == 9
    lint(m)


def test_inserting_before_redirects_append_and_the_builder() -> None:
    m, (relu, neg, abs_, sig) = chain()
    graph = m.graph
    op = Builder(graph)
    with graph.inserting_before(abs_):
        doubled = op.Add(neg.outputs[0], neg.outputs[0])
        with graph.inserting_before(neg):
            op.Identity(relu.outputs[0])
        graph.append(Node("Identity", [doubled], 1))
    graph.append(Node("Identity", [sig.outputs[0]], 1))
    assert ops(graph) == ["Relu", "Identity", "Neg", "Add", "Identity", "Abs", "Sigmoid", "Identity"]
    assert len(op.created) == 2
    lint(m)


def test_adding_a_node_twice_is_refused() -> None:
    m, (relu, *_rest) = chain()
    with pytest.raises(IRError, match="already belongs to a graph"):
        m.graph.append(relu)


# ---- iteration while mutating --------------------------------------------------------------------
def test_removing_the_current_node_while_iterating() -> None:
    m, (relu, neg, abs_, sig) = chain()
    seen = []
    for node in m.graph:
        seen.append(node.op_type)
        if node.op_type in ("Neg", "Abs"):
            node.outputs[0].replace_all_uses_with(node.inputs[0])
            m.graph.remove(node)
    assert seen == ["Relu", "Neg", "Abs", "Sigmoid"] and ops(m.graph) == ["Relu", "Sigmoid"]
    lint(m)


def test_removed_nodes_ahead_are_skipped_and_inserted_ones_ahead_are_visited() -> None:
    m, (relu, neg, abs_, sig) = chain()
    seen = []
    for node in m.graph:
        seen.append(node.name or node.op_type)
        if node is relu:
            abs_.outputs[0].replace_all_uses_with(abs_.inputs[0])
            m.graph.remove(abs_)  # ahead: must not be visited
            m.graph.insert_after(relu, Node("Identity", [relu.outputs[0]], 1, name="after_current"))
            m.graph.insert_before(relu, Node("Identity", [m.graph.inputs[0]], 1, name="behind"))
            m.graph.append(Node("Identity", [sig.outputs[0]], 1, name="at_end"))
    assert seen == ["Relu", "after_current", "Neg", "Sigmoid", "at_end"]
    assert [n.name or n.op_type for n in m.graph] == ["behind", "Relu", "after_current", "Neg", "Sigmoid", "at_end"]
    lint(m)


def test_nodes_snapshot_is_a_list() -> None:
    m, nodes = chain()
    snapshot = m.graph.nodes
    m.graph.append(Node("Identity", [m.graph.inputs[0]], 1))
    assert snapshot == nodes and len(m.graph.nodes) == 5


def test_graph_operations_do_not_scan_the_graph(monkeypatch) -> None:
    # replace_all_uses_with, remove, insert and replace_input_with must be O(1)-ish: no walk over the nodes
    m, (relu, neg, abs_, sig) = chain()

    def no_scan(self):
        raise AssertionError("the graph was scanned")

    monkeypatch.setattr(Graph, "__iter__", no_scan)
    monkeypatch.setattr(Graph, "__reversed__", no_scan)
    identity = Node("Identity", [neg.outputs[0]], 1)
    m.graph.insert_after(neg, identity)
    neg.outputs[0].replace_all_uses_with(identity.outputs[0])
    identity.replace_input_with(0, neg.outputs[0])
    abs_.replace_input_with(0, relu.outputs[0])
    m.graph.remove([identity])
    m.graph.insert_before(sig, Node("Identity", [abs_.outputs[0]], 1))
    monkeypatch.undo()
    lint(m)


# ---- names -------------------------------------------------------------------------------------
def test_unique_names_avoid_every_name_in_the_model() -> None:
    m = model_from_text("""
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[2] x, bool c) => (float[2] y) {
            y = If(c) <then_branch = t () => (float[2] inner) { inner = Relu(x) },
                       else_branch = e () => (float[2] inner_else) { inner_else = Abs(x) }>
        }""", {"w": np.ones(2, np.float32)})
    graph = m.graph
    then = graph.nodes[0].attrs["then_branch"]
    taken = {"x", "c", "y", "w", "inner", "inner_else"}
    made = {graph.unique_name(name) for name in taken} | {then.unique_name(name) for name in taken}
    assert not made & taken and len(made) == 2 * len(taken)
    assert then.unique_name("fresh") == "fresh" and graph.unique_name("fresh") != "fresh"


def test_new_nodes_values_and_initializers_get_unique_names() -> None:
    m, (relu, *_rest) = chain()
    graph = m.graph
    first, second = Node("Relu", [graph.inputs[0]], 1), Node("Relu", [graph.inputs[0]], 1)
    graph.append([first, second])
    assert first.name and second.name and first.name != second.name
    assert first.outputs[0].name != second.outputs[0].name
    names = [v.name for n in graph for v in n.outputs]
    assert len(names) == len(set(names))
    w1 = graph.add_initializer(Value("a", const_value=ir.Tensor.from_array(np.ones(1, np.float32))))
    w2 = graph.add_initializer(Value("a", const_value=ir.Tensor.from_array(np.ones(1, np.float32))))
    assert w1.name not in ("a", w2.name) and graph.initializers[w1.name] is w1
    op = Builder(graph)
    c1, c2 = op.const(np.float32(1)), op.const(np.float32(2))
    assert c1.name != c2.name
    lint(m)
    onnx.checker.check_model(ir.to_proto(m), full_check=True)


def test_names_in_functions_are_taken() -> None:
    proto = onnx.parser.parse_model("""
        <ir_version: 8, opset_import: ["" : 17, "local" : 1]>
        g (float[2] x) => (float[2] y) { y = local.Twice(x) }
        <domain: "local", opset_import: ["" : 17]>
        Twice (a) => (b) { b = Add(a, a) }""")
    m = ir.from_proto(proto)
    assert m.graph.unique_name("Twice") != "Twice"


# ---- sort ----------------------------------------------------------------------------------------
def test_sort_keeps_a_valid_order_unchanged() -> None:
    m = model_from_text("""
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[2] x) => (float[2] y) {
            p = Relu(x)  q = Abs(x)  r = Neg(x)  s = Add(q, p)  y = Add(s, r)
        }""")
    before = m.graph.nodes
    m.graph.sort()
    assert m.graph.nodes == before


def test_sort_is_stable_while_repairing() -> None:
    m = model_from_text("""
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[2] x) => (float[2] y) {
            p = Relu(x)  q = Abs(x)  r = Neg(x)  s = Add(q, p)  y = Add(s, r)
        }""")
    graph = m.graph
    p, q, r, s, y = graph.nodes
    graph.remove(p, safe=False)
    p.set_inputs(p.inputs)
    graph.append(p)  # p now sits after its readers
    graph.sort()
    # p moves just far enough: the independent q and r keep their relative order
    assert [n.outputs[0].name for n in graph] == ["q", "r", "p", "s", "y"]
    lint(m)


def test_sort_respects_values_captured_by_subgraphs() -> None:
    m = model_from_text("""
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[2] x, bool c) => (float[2] y) {
            t = Neg(x)
            y = If(c) <then_branch = a () => (float[2] p) { p = Relu(t) }, else_branch = b () => (float[2] q) { q = Abs(x) }>
        }""")
    graph = m.graph
    neg, if_node = graph.nodes
    graph.remove(neg, safe=False)
    neg.set_inputs(neg.inputs)
    graph.append(neg)  # the If's branch reads t before Neg produces it
    with pytest.raises(IRError, match="defined later"):
        lint(m)
    graph.sort()
    assert graph.nodes == [neg, if_node]
    lint(m)


# ---- clone ---------------------------------------------------------------------------------------
def test_clone_is_independent() -> None:
    m, (relu, neg, abs_, sig) = chain()
    before = ir.serialize(m)
    copy = m.graph.clone()
    lint(copy)
    c_relu, c_neg, c_abs, c_sig = copy.nodes
    assert c_relu is not relu and c_relu.outputs[0] is not relu.outputs[0]
    assert c_neg.inputs[0] is c_relu.outputs[0] and copy.inputs[0] is not m.graph.inputs[0]
    assert c_relu.outputs[0].uses() == ((c_neg, 0),)  # the original's uses are not shared
    # mutate the copy every way a pass does
    c_abs.outputs[0].replace_all_uses_with(c_neg.outputs[0])
    copy.remove(c_abs)
    c_neg.name = "renamed"
    c_relu.outputs[0].name = "renamed_value"
    c_sig.set_attr("note", 1)
    Builder(copy).Identity(copy.outputs[0])
    copy.add_initializer(Value("w", const_value=ir.Tensor.from_array(np.ones(2, np.float32))))
    lint(copy)
    lint(m)
    assert ir.serialize(m) == before
    assert relu.outputs[0].uses() == ((neg, 0),) and abs_.graph is m.graph
    assert "w" not in m.graph.initializers


def test_clone_saves_identically_and_shares_tensors() -> None:
    m = model_from_text(TEXT, {"w": np.arange(4, dtype=np.float32)})
    copy = m.clone()
    assert ir.serialize(copy) == ir.serialize(m)
    assert copy.graph.initializers["w"].const_value is m.graph.initializers["w"].const_value
    assert copy.graph.initializers["w"] is not m.graph.initializers["w"]


def test_clone_of_an_edited_node_does_not_resurrect_its_old_proto() -> None:
    m, (relu, neg, abs_, sig) = chain()
    neg.set_attr("unused", 3)
    neg.attrs.pop("unused")
    proto_before = m.graph.nodes[1].proto
    copy = m.graph.clone()
    assert (copy.nodes[1].proto is None) == (proto_before is None)
    m2 = ir.Model(copy, opset_imports=dict(m.opset_imports), ir_version=m.ir_version)
    assert not ir.to_proto(m2).graph.node[1].attribute


def test_model_clone_and_restore() -> None:
    m, (relu, neg, abs_, sig) = chain()
    snapshot = m.clone()
    abs_.outputs[0].replace_all_uses_with(neg.outputs[0])
    m.graph.remove(abs_)
    m.metadata_props["k"] = "v"
    m.restore(snapshot)
    assert ops(m.graph) == ["Relu", "Neg", "Abs", "Sigmoid"] and "k" not in m.metadata_props
    lint(m)


# ---- promote_to_initializer ----------------------------------------------------------------------
def test_promote_to_initializer_keeps_the_value_its_name_and_readers() -> None:
    m = model_from_text("""
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[2] x) => (float[2] y) { k = Constant<value = float[2] {1, 2}>()  y = Add(x, k) }""")
    const, add = m.graph.nodes
    k = const.outputs[0]
    add_proto = add.proto
    m.graph.promote_to_initializer(k, ir.Tensor.from_array(np.array([1, 2], np.float32)))
    assert ops(m.graph) == ["Add"] and m.graph.initializers == {"k": k}
    assert k.producer() is None and k.is_constant() and add.inputs[1] is k and k.name == "k"
    assert add.proto is add_proto  # the reader is unchanged, so its cached proto stays valid
    lint(m)
    assert_same_outputs(model_from_text("""
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[2] x) => (float[2] y) { k = Constant<value = float[2] {1, 2}>()  y = Add(x, k) }"""), m)


def test_promote_to_initializer_refuses_graph_outputs_and_values_without_a_producer() -> None:
    m = model_from_text("""
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[2] x) => (float[2] y) { y = Constant<value = float[2] {1, 2}>() }""")
    data = ir.Tensor.from_array(np.array([1, 2], np.float32))
    with pytest.raises(IRError, match="is an output"):
        m.graph.promote_to_initializer(m.graph.outputs[0], data)
    with pytest.raises(IRError):
        m.graph.promote_to_initializer(m.graph.inputs[0], data)
    assert ops(m.graph) == ["Constant"]
