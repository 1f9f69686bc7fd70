"""infer_types: large weights reach onnx as typed inputs, subgraph weights included, with the same result."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

import onnxopt.ir.shapes as shapes
import onnxopt.passes  # noqa: F401  (registers extract_constants)
from onnxopt.ir import infer_types
from onnxopt.passmanager import PassContext, make_pass
from onnxopt.testing import model_from_text

BRANCHES = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[N, 40] x, bool cond) => (float[N, ?] y) {
        y = If(cond) <then_branch = t () => (float[N, ?] ty) { w = Constant<value = float[40, 30] {%s}>()  ty = MatMul(x, w) },
                      else_branch = e () => (float[N, ?] ey) { w2 = Constant<value = float[40, 50] {%s}>()  ey = MatMul(x, w2) }>
    }"""


def _model(else_name: str = "w2"):
    text = BRANCHES % (",".join(["1"] * 1200), ",".join(["1"] * 2000))
    model = model_from_text(text.replace("w2", else_name))
    make_pass("extract_constants", PassContext()).call(model)  # the weights become subgraph initializers
    return model


def _matmul_dims(model, types):
    return [[d.dim_value or d.dim_param for d in types[node.outputs[0]].tensor_type.shape.dim]
            for graph in model.graph.all_graphs()[1:] for node in graph if node.op_type == "MatMul"]


@pytest.mark.parametrize("else_name", ["w2", "w"], ids=["distinct names", "sibling branches reuse a name"])
def test_subgraph_weights_are_typed_inputs_and_give_the_same_types(monkeypatch, else_name):
    model = _model(else_name)
    seen = []
    infer = onnx.shape_inference.infer_shapes
    monkeypatch.setattr(onnx.shape_inference, "infer_shapes",
                        lambda data, **kw: seen.append(onnx.ModelProto.FromString(data)) or infer(data, **kw))
    types = infer_types(model)
    assert _matmul_dims(model, types) == [["N", 30], ["N", 50]]
    sent = seen[0]
    hoisted = [i.name for i in sent.graph.input if i.name not in ("x", "cond")]
    inline = [t.name for b in sent.graph.node[0].attribute for t in b.g.initializer]
    # a name two branches define stays in its branch: a root input would shadow the other definition
    assert (hoisted, inline) == ((["w", "w2"], []) if else_name == "w2" else ([], ["w", "w"]))

    monkeypatch.setattr(shapes, "MAX_INFERENCE_ELEMENTS", 10**6)  # every weight inline: the same types
    model.graph.inferred_types = None
    assert infer_types(model) == types


def test_the_skeleton_follows_type_and_name_edits_between_inferences(monkeypatch):
    """The skeleton's value_info entries are kept on the values: an edit since the last inference must show."""
    model = model_from_text("""
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[2, 3] x) => (float[2, 3] y) { t = Relu(x)  y = Neg(t) }""")
    t = next(iter(model.graph)).outputs[0]
    t.set_type(onnx.TensorProto.FLOAT, (2, 3))
    seen = []
    infer = onnx.shape_inference.infer_shapes
    monkeypatch.setattr(onnx.shape_inference, "infer_shapes",
                        lambda data, **kw: seen.append(onnx.ModelProto.FromString(data)) or infer(data, **kw))

    def skeleton_info() -> onnx.ValueInfoProto:
        model.graph.mark_changed()
        infer_types(model)
        (info,) = seen[-1].graph.value_info
        return info

    assert skeleton_info().type == onnx.helper.make_tensor_type_proto(onnx.TensorProto.FLOAT, None)
    t.set_type(onnx.TensorProto.DOUBLE, (2, 3))
    assert skeleton_info().type == onnx.helper.make_tensor_type_proto(onnx.TensorProto.DOUBLE, None)
    t.name = "t_renamed"
    assert skeleton_info().name == "t_renamed"


SETTLING = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[N, 6] x, int64[2] s) => (float[?, ?] y, float[N, 6] z, float[?, ?] f) {
        r = Relu(x)
        y = Reshape(r, s)
        z = Neg(r)
        k = Constant<value = int64[2] {3, -1}>()
        f = Reshape(r, k)
    }"""


def test_settled_types_answer_after_edits_and_unknown_dims_do_not():
    """A type whose dims are numbers or the inputs' symbols stays true after edits; one with a dim inference could
    not know (a Reshape by data it cannot see, a symbol it made up) may sharpen, so it is inferred again."""
    from onnxopt.ir import settled_type

    model = model_from_text(SETTLING)
    relu, reshape, _, _, folded = list(model.graph)
    infer_types(model)
    model.graph.mark_changed()  # any edit since
    assert [d.dim_value or d.dim_param for d in settled_type(model, relu.outputs[0]).tensor_type.shape.dim] == ["N", 6]
    assert settled_type(model, reshape.outputs[0]) is None  # rank 2, dims unknown
    types = model.graph.inferred_types[2]
    made_up = onnx.helper.make_tensor_type_proto(onnx.TensorProto.FLOAT, ["unk__0", 6])
    types[folded.outputs[0]] = made_up
    assert settled_type(model, folded.outputs[0]) is None


def test_fixing_an_input_shape_unsettles_the_types_inferred_from_it():
    from onnxopt.ir import settled_type

    model = model_from_text(SETTLING)
    relu = next(iter(model.graph))
    infer_types(model)
    assert settled_type(model, relu.outputs[0]) is not None
    make_pass("fix_input_shapes", PassContext(input_shapes={"x": (2, 6)})).call(model)
    assert settled_type(model, relu.outputs[0]) is None
    assert [d.dim_value for d in infer_types(model)[relu.outputs[0]].tensor_type.shape.dim] == [2, 6]


@pytest.mark.parametrize("weight, error", [
    ("float[3, 4] w", None),
    ("float[5, 4] w", "Gemm node: Dimension mismatch in unification between 5 and 3"),  # K: 3 in x, 5 in w
])
def test_type_check_error_names_the_innermost_failing_node(weight, error):
    model = model_from_text(f"""
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[2, 3] x, {weight}, bool cond) => (float[2, 4] y) {{
            y = If(cond) <then_branch = t () => (float[2, 4] a) {{ a = Gemm(x, w) }},
                          else_branch = e () => (float[2, 4] b) {{ b = Gemm(x, w) }}>
        }}""")
    assert shapes.type_check_error(model) == error


def _dims(model, name: str) -> list:
    value = next(out for node in model.graph for out in node.outputs if out.name == name)
    return [d.dim_value or d.dim_param for d in infer_types(model)[value].tensor_type.shape.dim]


@pytest.mark.parametrize("length", [
    "n = Gather<axis=0>(s, one)",  # torch's legacy exporter
    "s1 = Shape<start=1, end=2>(x)\n n = Squeeze(s1)",  # torch's dynamo exporter (sym_size)
    "g = Gather<axis=0>(s, one)\n n = Cast<to=7>(g)",
])
def test_a_range_over_a_symbolic_dim_has_that_length(length):
    """Position ids as exporters build them, arange(seq_len): the sequence dim reaches the embeddings' sum."""
    model = model_from_text(f"""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[B, S, 8] x) => (float[B, S, 8] y) {{
        s = Shape(x)
        {length}
        ids = Range(zero, n, one)
        e = Gather(table, ids)
        y0 = Add(x, e)
        y = Relu(y0)
    }}""", {"zero": np.array(0, np.int64), "one": np.array(1, np.int64),
            "table": np.zeros((64, 8), np.float32)})
    assert _dims(model, "ids") == ["S"]
    assert _dims(model, "y0") == ["B", "S", 8]


@pytest.mark.parametrize("start, step, seq", [(1, 1, "S"), (0, 2, "S"), (0, 1, "?")])
def test_other_ranges_keep_an_unknown_length(start, step, seq):
    """Not from 0 by 1, or over a placeholder dim (Paddle's "?", which onnx would equate with every other "?")."""
    model = model_from_text("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[B, S, 8] x) => (int64[N] ids) {
        s = Shape(x)
        n = Gather<axis=0>(s, one)
        ids = Range(start, n, step)
    }""", {"one": np.array(1, np.int64), "start": np.array(start, np.int64), "step": np.array(step, np.int64)})
    next(v for v in model.graph.inputs if v.name == "x").type.tensor_type.shape.dim[1].dim_param = seq
    assert _dims(model, "ids") != [seq]
