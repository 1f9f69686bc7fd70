"""Lossless round trip through the IR of everything a ModelProto can carry, and edits reaching the file."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from irhelpers import assert_same_meaning, canonical
from onnx import AttributeProto, TensorProto, helper, numpy_helper

import onnxopt.ir as ir


def _function() -> onnx.FunctionProto:
    """local.fn::ScaledRelu(x) = Relu(x) * alpha, alpha an attribute with a default."""
    alpha = helper.make_attribute("alpha", 2.0)
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Constant", [], ["a"], value_float=1.0),
        helper.make_node("Mul", ["r", "a"], ["y"], doc_string="scales"),
    ]
    nodes[1].attribute[0].ClearField("f")
    nodes[1].attribute[0].ref_attr_name = "alpha"
    fn = helper.make_function("local.fn", "ScaledRelu", ["x"], ["y"], nodes, [helper.make_opsetid("", 21)],
                              attributes=[], doc_string="function doc")
    fn.attribute_proto.append(alpha)
    return fn


def rich_model() -> onnx.ModelProto:
    """A model using every part of the format the IR must keep: custom domains and attributes of every
    kind, a model-local function, docs everywhere, metadata, value_info, sparse initializers,
    quantization annotations, training info and unusual tensor types."""
    custom_attrs = {
        "f": 0.5, "i": -3, "s": "text", "floats": [1.0, 2.5], "ints": [1, 2, 3], "strings": ["a", "b"],
        "t": numpy_helper.from_array(np.arange(3, dtype=np.int32), "t"),
        "tensors": [numpy_helper.from_array(np.ones(2, np.float32), "t1")],
    }
    fancy = helper.make_node("Fancy", ["x"], ["f0", "f1"], name="fancy", domain="com.example",
                             doc_string="a custom op", **custom_attrs)
    fancy.attribute.append(helper.make_attribute("tp", helper.make_tensor_type_proto(TensorProto.FLOAT, [2, None])))
    sparse_attr = helper.make_sparse_tensor(
        numpy_helper.from_array(np.array([5.0], np.float32), "sv"), numpy_helper.from_array(np.array([1], np.int64), "si"), [4])
    fancy.attribute.append(helper.make_attribute("sp", sparse_attr))
    fancy.attribute.append(AttributeProto(name="raw_bytes", type=AttributeProto.STRING, s=b"\xff\xfe not utf-8"))
    fancy.metadata_props.add(key="origin", value="exporter-frame-3")
    nodes = [
        fancy,
        helper.make_node("ScaledRelu", ["f0"], ["h"], name="call", domain="local.fn", alpha=3.0),
        helper.make_node("Add", ["h", "w"], ["s"], name="add", doc_string="adds the weight"),
        helper.make_node("Add", ["s", "sparse_w"], ["y"], name="add_sparse"),
        helper.make_node("Cast", ["f1"], ["z"], name="cast", to=TensorProto.BFLOAT16),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4], doc_string="the input")
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4], doc_string="the output")
    z = helper.make_tensor_value_info("z", TensorProto.BFLOAT16, ["batch"])
    initializers = [
        numpy_helper.from_array(np.linspace(0, 1, 4, dtype=np.float32), "w"),
        helper.make_tensor("strings", TensorProto.STRING, [2], [b"ab", b"cd"]),
        helper.make_tensor("half", TensorProto.FLOAT16, [2], [1.5, -2.0]),
        helper.make_tensor("bf16", TensorProto.BFLOAT16, [1], [16256]),
        helper.make_tensor("i4", TensorProto.INT4, [3], [1, -2, 7]),
        helper.make_tensor("typed_fields", TensorProto.INT64, [3], [7, 8, 9]),  # int64_data, not raw_data
    ]
    initializers[0].doc_string = "weight doc"
    graph = helper.make_graph(nodes, "main", [x], [y, z], initializers, doc_string="graph doc",
                              value_info=[helper.make_tensor_value_info("h", TensorProto.FLOAT, ["batch", 4],
                                                                        doc_string="hidden")])
    graph.value_info.append(helper.make_tensor_value_info("not_in_graph", TensorProto.INT8, [1]))
    graph.sparse_initializer.append(helper.make_sparse_tensor(
        numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "sparse_w"),
        numpy_helper.from_array(np.array([0, 3], np.int64), "sparse_w_idx"), [4]))
    annotation = graph.quantization_annotation.add(tensor_name="s")
    annotation.quant_parameter_tensor_names.add(key="SCALE_TENSOR", value="w")
    graph.metadata_props.add(key="graph_key", value="graph_value")
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.example", 2),
                       helper.make_opsetid("local.fn", 1), helper.make_opsetid("ai.onnx.ml", 3)],
        producer_name="exporter", producer_version="1.2.3", domain="org.example", model_version=7,
        doc_string="model doc", functions=[_function()],
    )
    model.ir_version = 10
    helper.set_model_props(model, {"b": "2", "a": "1", "empty": ""})
    training = model.training_info.add()
    training.initialization.CopyFrom(helper.make_graph(
        [helper.make_node("RandomNormal", [], ["w_init"], shape=[4])], "init", [],
        [helper.make_tensor_value_info("w_init", TensorProto.FLOAT, [4])]))
    training.algorithm.CopyFrom(helper.make_graph(
        [helper.make_node("Neg", ["w"], ["w_new"])], "step", [],
        [helper.make_tensor_value_info("w_new", TensorProto.FLOAT, [4])]))
    training.initialization_binding.add(key="w", value="w_init")
    training.update_binding.add(key="w", value="w_new")
    return model


def _round_trip(proto: onnx.ModelProto, tmp_path, touch: bool = False) -> onnx.ModelProto:
    model = ir.from_proto(onnx.ModelProto.FromString(proto.SerializeToString()))
    if touch:  # force every node through node_to_proto instead of reusing its loaded proto
        for graph in model.graph.all_graphs():
            for node in graph:
                node.proto = None
    path = tmp_path / "out.onnx"
    ir.save(model, path)
    return onnx.load(str(path))


def test_rich_model_is_valid() -> None:
    onnx.checker.check_model(rich_model())


def test_unchanged_round_trip_keeps_everything(tmp_path) -> None:
    original = rich_model()
    assert_same_meaning(original, _round_trip(original, tmp_path))


def test_round_trip_of_rebuilt_nodes_keeps_everything(tmp_path) -> None:
    original = rich_model()
    assert_same_meaning(original, _round_trip(original, tmp_path, touch=True))


@pytest.mark.parametrize("via", ["serialize", "to_proto", "save"])
def test_every_writer_keeps_everything(via: str, tmp_path) -> None:
    original = rich_model()
    model = ir.from_proto(original)
    if via == "serialize":
        result = onnx.ModelProto.FromString(ir.serialize(model))
    elif via == "to_proto":
        result = ir.to_proto(model)
    else:
        ir.save(model, tmp_path / "m.onnx")
        result = onnx.load(str(tmp_path / "m.onnx"))
    assert_same_meaning(original, result)


def test_second_round_trip_is_byte_identical(tmp_path) -> None:
    first = tmp_path / "first.onnx"
    second = tmp_path / "second.onnx"
    ir.save(ir.from_proto(rich_model()), first)
    ir.save(ir.load(first), second)
    assert first.read_bytes() == second.read_bytes()


def test_ir_view_of_the_rich_model() -> None:
    model = ir.from_proto(rich_model())
    assert model.opset_imports == {"": 21, "com.example": 2, "local.fn": 1, "ai.onnx.ml": 3}
    assert (model.ir_version, model.producer_name, model.producer_version) == (10, "exporter", "1.2.3")
    assert (model.domain, model.model_version, model.doc_string) == ("org.example", 7, "model doc")
    assert list(model.metadata_props.items()) == [("b", "2"), ("a", "1"), ("empty", "")]
    assert [f.name for f in model.functions] == ["ScaledRelu"]
    graph = model.graph
    assert graph.doc_string == "graph doc" and graph.name == "main"
    fancy = next(n for n in graph if n.name == "fancy")
    assert (fancy.domain, fancy.op_type, fancy.doc_string) == ("com.example", "Fancy", "a custom op")
    assert fancy.attr("f") == 0.5 and fancy.attr("ints") == [1, 2, 3] and fancy.attr("s") == "text"
    assert fancy.attr("strings") == ["a", "b"]
    assert fancy.attr("raw_bytes").encode("utf-8", errors="surrogateescape") == b"\xff\xfe not utf-8"
    assert graph.inputs[0].doc_string == "the input"
    hidden = next(n for n in graph if n.name == "call").outputs[0]
    assert hidden.doc_string == "hidden" and hidden.shape == ("batch", 4)
    assert [o.name for o in graph.outputs] == ["y", "z"]
    assert graph.outputs[1].shape == ("batch",) and graph.outputs[1].dtype == TensorProto.BFLOAT16
    assert [s.values.name for s in graph.sparse_initializers] == ["sparse_w"]
    assert next(n for n in graph if n.name == "add_sparse").inputs[1].name == "sparse_w"
    assert graph.initializers["typed_fields"].const_value.numpy().tolist() == [7, 8, 9]
    assert graph.initializers["half"].const_value.numpy().tolist() == [1.5, -2.0]
    strings = graph.initializers["strings"].const_value.numpy().tolist()
    assert [s.decode() if isinstance(s, bytes) else s for s in strings] == ["ab", "cd"]
    ir.lint(model)


def test_legacy_ir3_initializers_stay_graph_inputs(tmp_path) -> None:
    w = numpy_helper.from_array(np.ones(2, np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("w", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], [w])
    original = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 8)])
    original.ir_version = 3
    model = ir.from_proto(original)
    w_value = model.graph.initializers["w"]
    assert w_value.is_graph_input() and w_value.is_initializer() and w_value.is_constant()
    assert_same_meaning(original, _round_trip(original, tmp_path))


def test_initializer_shadowed_by_input_is_not_constant_in_ir4() -> None:
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("w", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], [numpy_helper.from_array(np.ones(2, np.float32), "w")])
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    w_value = model.graph.initializers["w"]
    assert w_value.is_graph_input() and not w_value.is_constant() and w_value.numpy() is None


# ---- edits reach the file ---------------------------------------------------------------------
def _simple() -> ir.Model:
    graph = helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["t"], name="tr", perm=[1, 0]),
         helper.make_node("Relu", ["t"], ["y"], name="relu")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 2])])
    return ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def _saved_node(model: ir.Model, name: str) -> onnx.NodeProto:
    return next(n for n in ir.to_proto(model).graph.node if n.name == name)


def test_attribute_replaced_in_the_dict_is_saved() -> None:
    model = _simple()
    node = next(iter(model.graph))
    node.attrs["perm"] = helper.make_attribute("perm", [0, 1])
    assert list(_saved_node(model, "tr").attribute[0].ints) == [0, 1]


def test_attribute_set_removed_and_added_are_saved() -> None:
    model = _simple()
    node = next(iter(model.graph))
    node.set_attr("perm", [1, 0])
    assert list(_saved_node(model, "tr").attribute[0].ints) == [1, 0]
    del node.attrs["perm"]
    assert not _saved_node(model, "tr").attribute
    relu = list(model.graph)[1]
    relu.attrs["note"] = helper.make_attribute("note", "x")
    assert _saved_node(model, "relu").attribute[0].s == b"x"


def test_attribute_proto_mutated_in_place_is_saved() -> None:
    model = _simple()
    next(iter(model.graph)).attrs["perm"].ints[:] = [0, 1]
    assert list(_saved_node(model, "tr").attribute[0].ints) == [0, 1]


@pytest.mark.parametrize("field,value", [("op_type", "Abs"), ("domain", "com.example"), ("doc_string", "new doc"),
                                         ("name", "renamed"), ("overload", "v2")])
def test_node_field_edits_are_saved(field: str, value: str) -> None:
    model = _simple()
    relu = list(model.graph)[1]
    setattr(relu, field, value)
    saved = ir.to_proto(model).graph.node[1]
    assert getattr(saved, field) == value


def test_value_rename_and_new_input_are_saved() -> None:
    model = _simple()
    transpose, relu = model.graph
    transpose.outputs[0].name = "renamed_t"
    saved = ir.to_proto(model).graph
    assert saved.node[0].output[0] == "renamed_t" and saved.node[1].input[0] == "renamed_t"
    relu.replace_input_with(0, model.graph.inputs[0])
    assert ir.to_proto(model).graph.node[1].input[0] == "x"


def test_type_edits_are_saved_as_value_info() -> None:
    model = _simple()
    transpose = next(iter(model.graph))
    transpose.outputs[0].set_type(TensorProto.FLOAT, (3, "n"))
    info = {v.name: v for v in ir.to_proto(model).graph.value_info}["t"]
    assert info.type == helper.make_tensor_type_proto(TensorProto.FLOAT, [3, "n"])


def test_new_nodes_and_initializers_are_saved_and_valid() -> None:
    model = _simple()
    graph = model.graph
    relu = list(graph)[1]
    op = ir.Builder(graph)
    with graph.inserting_before(relu):
        scaled = op.Mul(relu.inputs[0], op.const(np.float32(2.0), "two"))
    relu.replace_input_with(0, scaled)
    saved = ir.to_proto(model)
    onnx.checker.check_model(saved, full_check=True)
    assert [n.op_type for n in saved.graph.node] == ["Transpose", "Mul", "Relu"]
    assert [t.name for t in saved.graph.initializer] == ["two"]


def test_canonical_ignores_only_presence_and_value_info_order() -> None:
    a = rich_model()
    b = onnx.ModelProto.FromString(a.SerializeToString())
    b.opset_import[0].domain = ""  # explicit default: same meaning
    b.graph.value_info.reverse()
    assert canonical(a) == canonical(b)
    b.graph.node[0].attribute[0].f = 0.25
    assert canonical(a) != canonical(b)


def test_nodes_holding_subgraphs_are_written_as_their_protos_serialize(tmp_path) -> None:
    rich = rich_model()
    inner = helper.make_node("If", ["c"], ["inner_out"], name="inner_if", doc_string="nested",
                             then_branch=rich.graph, else_branch=rich.graph)
    outer_branch = helper.make_graph([inner], "outer_then", [], [helper.make_tensor_value_info("inner_out", 1, None)],
                                     [numpy_helper.from_array(np.ones(2, np.float32), "branch_w")])
    outer_branch.metadata_props.add(key="k", value="v")
    scan_body = helper.make_graph([helper.make_node("Neg", ["s_in"], ["s_out"])], "body",
                                  [helper.make_tensor_value_info("s_in", 1, [2])],
                                  [helper.make_tensor_value_info("s_out", 1, [2])])
    outer = helper.make_node("If", ["c"], ["y"], name="outer_if", then_branch=outer_branch, else_branch=rich.graph)
    scan = helper.make_node("Scan", ["x"], ["scanned"], name="scan", body=scan_body, num_scan_inputs=1)
    graph = helper.make_graph([outer, scan], "g", [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                                                   helper.make_tensor_value_info("x", 1, [3, 2])],
                              [helper.make_tensor_value_info("y", 1, None), helper.make_tensor_value_info("scanned", 1, None)])
    proto = helper.make_model(graph, opset_imports=rich.opset_import)
    model = ir.from_proto(onnx.ModelProto.FromString(proto.SerializeToString()))
    ir.save(model, tmp_path / "out.onnx")
    written = (tmp_path / "out.onnx").read_bytes()
    assert outer.SerializeToString() in written and scan.SerializeToString() in written


def test_tensor_wire_form_is_kept_until_the_tensor_is_decoded() -> None:
    proto = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.5, -2.0])  # float_data, not raw_data
    tensor = ir.Tensor.from_proto(proto)
    first = tensor.serialized("w")
    assert first == proto.SerializeToString() and tensor.serialized("w") is first
    assert TensorProto.FromString(tensor.serialized("v")).name == "v"
    tensor.numpy()  # decoding drops the proto: from now on the data is written as raw_data
    decoded = TensorProto.FromString(tensor.serialized("w"))
    assert decoded.raw_data and not decoded.float_data
    np.testing.assert_array_equal(numpy_helper.to_array(decoded), [1.5, -2.0])


def test_a_rebuilt_node_keeps_its_proto_until_the_next_edit() -> None:
    model = _simple()
    transpose, relu = model.graph
    relu.replace_input_with(0, model.graph.inputs[0])
    assert relu.proto is None
    assert _saved_node(model, "relu").input == ["x"]
    kept = relu.proto
    assert kept is not None and _saved_node(model, "relu").input == ["x"] and relu.proto is kept
    edits = [
        lambda: setattr(model.graph.inputs[0], "name", "x_renamed"),  # the value relu reads
        lambda: relu.replace_input_with(0, transpose.outputs[0]),
        lambda: relu.set_attr("note", 1),
        lambda: setattr(relu, "doc_string", "edited"),
    ]
    for edit in edits:
        _saved_node(model, "relu")
        edit()
        assert relu.proto is None
    saved = _saved_node(model, "relu")
    assert (list(saved.input), saved.doc_string, [a.name for a in saved.attribute]) == (["t"], "edited", ["note"])


def test_value_info_written_again_after_a_type_name_or_doc_edit() -> None:
    model = _simple()
    t = next(iter(model.graph)).outputs[0]
    t.set_type(TensorProto.FLOAT, (3, 2))

    def saved_info() -> onnx.ValueInfoProto:
        (info,) = ir.to_proto(model).graph.value_info
        return info

    assert saved_info().type == helper.make_tensor_type_proto(TensorProto.FLOAT, [3, 2])
    t.set_type(TensorProto.FLOAT16, (3, "n"))  # a new type object: the entry kept from the last save is stale
    assert saved_info().type == helper.make_tensor_type_proto(TensorProto.FLOAT16, [3, "n"])
    t.name = "t_renamed"
    assert saved_info().name == "t_renamed"
    t.doc_string = "documented"
    assert saved_info().doc_string == "documented"
