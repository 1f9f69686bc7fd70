"""Graph.revision: every IR mutator bumps it, reads do not; infer_types is cached while it is unchanged."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from onnxopt.ir import Node, Tensor, Value, infer_shapes, infer_types, keep_inferred_types
from onnxopt.testing import model_from_text

TEXT = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2, 3] x, bool cond) => (float[2, 3] y) {
        a = Relu(x)
        b = Neg(a)
        y = If(cond) <then_branch = t () => (float[2, 3] tz) { tz = Abs(b) },
                        else_branch = e () => (float[2, 3] ez) { ez = Sigmoid(b) }>
    }"""


def _model():
    model = model_from_text(TEXT)
    relu, neg, if_ = model.graph.nodes
    return model, relu, neg, if_


def _edits():
    def add_node(model, relu, neg, if_):
        model.graph.insert_after(relu, Node("Relu", [relu.outputs[0]]))

    def remove_node(model, relu, neg, if_):
        extra = Node("Relu", [relu.outputs[0]])
        model.graph.append(extra)
        revision = model.graph.revision
        model.graph.remove(extra)
        assert model.graph.revision != revision

    def edit_in_subgraph(model, relu, neg, if_):
        branch = if_.attr("then_branch")
        abs_ = branch.nodes[0]
        abs_.replace_input_with(0, relu.outputs[0])

    return {
        "insert": add_node,
        "remove": remove_node,
        "replace_input_with": lambda m, r, n, i: n.replace_input_with(0, m.graph.inputs[0]),
        "set_inputs": lambda m, r, n, i: n.set_inputs([m.graph.inputs[0]]),
        "set_attr": lambda m, r, n, i: r.set_attr("note", 1),
        "op_type": lambda m, r, n, i: setattr(n, "op_type", "Abs"),
        "domain": lambda m, r, n, i: setattr(n, "domain", "custom"),
        "node name": lambda m, r, n, i: setattr(n, "name", "renamed"),
        "value name": lambda m, r, n, i: setattr(r.outputs[0], "name", "renamed"),
        "set_type": lambda m, r, n, i: r.outputs[0].set_type(onnx.TensorProto.FLOAT, (2, 3)),
        "add_initializer": lambda m, r, n, i: m.graph.add_initializer(Value("w", const_value=Tensor.from_array(np.ones(2)))),
        "add_input": lambda m, r, n, i: m.graph.add_input(Value("z")),
        "add_output": lambda m, r, n, i: m.graph.add_output(r.outputs[0]),
        "replace_output": lambda m, r, n, i: m.graph.replace_output(i.outputs[0], n.outputs[0]),
        "unique_name": lambda m, r, n, i: m.graph.unique_name("fresh"),
        "sort": lambda m, r, n, i: m.graph.sort(),
        "subgraph edit": edit_in_subgraph,
    }


@pytest.mark.parametrize("edit", _edits().values(), ids=list(_edits()))
def test_every_mutator_bumps_the_root_revision(edit):
    model, relu, neg, if_ = _model()
    revision = model.graph.revision
    edit(model, relu, neg, if_)
    assert model.graph.revision != revision


def test_reading_does_not_bump_the_revision():
    model, relu, neg, if_ = _model()
    revision = model.graph.revision
    list(model.graph), model.graph.all_graphs(), relu.outputs[0].uses(), neg.attr("x"), model.clone()
    infer_types(model)
    assert model.graph.revision == revision


def test_infer_types_is_cached_until_the_model_changes(monkeypatch):
    model, relu, neg, if_ = _model()
    calls = []
    infer = onnx.shape_inference.infer_shapes
    monkeypatch.setattr(onnx.shape_inference, "infer_shapes", lambda *a, **k: calls.append(1) or infer(*a, **k))
    first = infer_types(model)
    assert infer_types(model) == first and len(calls) == 1
    first[relu.outputs[0]] = None  # the caller's copy: the cache is not affected
    assert infer_types(model)[relu.outputs[0]] is not None and len(calls) == 1
    assert infer_types(model, data_prop=False) and len(calls) == 2  # another kind of inference
    model.graph.insert_after(relu, Node("Transpose", [relu.outputs[0]]))
    after = infer_types(model)
    assert len(calls) == 3
    transposed = model.graph.nodes[1].outputs[0]
    assert [d.dim_value for d in after[transposed].tensor_type.shape.dim] == [3, 2]



def _counted_inference(monkeypatch):
    calls = []
    infer = onnx.shape_inference.infer_shapes
    monkeypatch.setattr(onnx.shape_inference, "infer_shapes", lambda *a, **k: calls.append(1) or infer(*a, **k))
    return calls


def test_types_kept_across_a_removal_of_unread_nodes_are_what_inference_gives_again(monkeypatch):
    model, relu, neg, if_ = _model()
    dead = Node("Transpose", [relu.outputs[0]])
    model.graph.insert_after(relu, dead)
    calls = _counted_inference(monkeypatch)
    before = infer_types(model)
    revision = model.graph.revision
    model.graph.remove(dead)
    keep_inferred_types(model, revision)
    kept = infer_types(model)
    assert len(calls) == 1 and dead.outputs[0] in before and dead.outputs[0] not in kept
    model.graph.inferred_types = None
    assert infer_types(model) == kept and len(calls) == 2


def test_types_are_not_kept_when_the_model_changed_before_the_removal(monkeypatch):
    model, relu, neg, if_ = _model()
    dead = Node("Relu", [relu.outputs[0]])
    model.graph.append(dead)
    calls = _counted_inference(monkeypatch)
    infer_types(model)
    model.graph.insert_after(relu, Node("Transpose", [relu.outputs[0]]))  # the cached types are stale now
    revision = model.graph.revision
    model.graph.remove(dead)
    keep_inferred_types(model, revision)
    transposed = model.graph.nodes[1].outputs[0]
    assert [d.dim_value for d in infer_types(model)[transposed].tensor_type.shape.dim] == [3, 2]
    assert len(calls) == 2


def test_a_failed_inference_is_not_kept_across_a_removal(monkeypatch):
    model, relu, neg, if_ = _model()
    dead = Node("Relu", [relu.outputs[0]])
    model.graph.append(dead)
    monkeypatch.setattr(onnx.shape_inference, "infer_shapes", lambda *a, **k: 1 / 0)
    assert infer_types(model) == {}
    revision = model.graph.revision
    model.graph.remove(dead)
    keep_inferred_types(model, revision)
    monkeypatch.undo()
    assert infer_types(model)[neg.outputs[0]].tensor_type.elem_type == onnx.TensorProto.FLOAT

def test_types_kept_after_infer_shapes_records_them_are_what_inference_gives_again(monkeypatch):
    model = model_from_text("""
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[N, 6] x, bool cond) => (float[N, 2, 3] y) {
            s = Shape(x)
            s_n = Slice(s, zero, one)
            target = Concat<axis = 0>(s_n, two_three)
            r = Reshape(x, target)
            y = If(cond) <then_branch = t () => (float[N, 2, 3] tz) { tz = Abs(r) },
                          else_branch = e () => (float[N, 2, 3] ez) { ez = Neg(r) }>
        }""",
        {"zero": np.array([0]), "one": np.array([1]), "two_three": np.array([2, 3])})
    assert infer_shapes(model)
    calls = []
    infer = onnx.shape_inference.infer_shapes
    monkeypatch.setattr(onnx.shape_inference, "infer_shapes", lambda *a, **k: calls.append(1) or infer(*a, **k))
    kept = infer_types(model)
    assert calls == []
    model.graph.inferred_types = None
    assert infer_types(model) == kept and calls == [1]


def test_infer_shapes_bumps_the_revision_only_when_it_records_a_new_type():
    model, relu, neg, if_ = _model()
    revision = model.graph.revision
    assert infer_shapes(model)
    assert model.graph.revision != revision
    revision = model.graph.revision
    assert infer_shapes(model)  # the same types again
    assert model.graph.revision == revision


def test_op_kinds_follow_edits_in_subgraphs_too():
    model, relu, neg, if_ = _model()
    assert model.graph.op_kinds() == {("Relu", ""), ("Neg", ""), ("If", ""), ("Abs", ""), ("Sigmoid", "")}
    kinds = model.graph.op_kinds()
    kinds.add(("Gone", ""))  # the caller's copy
    if_.attr("then_branch").nodes[0].op_type = "Tanh"
    neg.domain = "custom"
    assert model.graph.op_kinds() == {("Relu", ""), ("Neg", "custom"), ("If", ""), ("Tanh", ""), ("Sigmoid", "")}
