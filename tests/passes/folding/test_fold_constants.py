"""fold_constants: constant regions evaluated with ORT (reference fallback), size guard, If folding, subgraphs."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from onnxopt.ir import from_proto, load, serialize
from onnxopt.passes.folding import evaluate
from onnxopt.passmanager import PassContext
from onnxopt.testing import model_from_text, op_histogram

H = '<ir_version: 8, opset_import: ["" : 17]>'
SMALL = PassContext(fold_max_bytes=1024)


def test_exporter_ops_fold_to_initializers(check_pass):
    model = model_from_text(H + """
        g (float[2, 3] x) => (float[2, 3] y, int64[3] r, float[2, 3] z) {
            shape = Constant<value_ints = [2, 3]>()
            ones = ConstantOfShape<value = float[1] {1.5}>(shape)
            start = Constant<value_int = 0>()
            limit = Constant<value_int = 6>()
            delta = Constant<value_int = 2>()
            r = Range(start, limit, delta)
            rf = Cast<to = 1>(r)
            cond = Constant<value = bool[3] {1, 0, 1}>()
            nine = Constant<value_float = 9.0>()
            w = Where(cond, rf, nine)
            axes = Constant<value_ints = [0]>()
            row = Unsqueeze(w, axes)
            one = Constant<value_int = 1>()
            cols = Gather(shape, one)
            two = Unsqueeze(cols, axes)
            e1 = Constant<value_ints = [1]>()
            first = Slice(shape, axes, e1)
            target = Concat<axis = 0>(first, two)
            wide = Expand(row, target)
            y = Add(x, wide)
            z = Mul(x, ones)
        }
    """)
    result = check_pass("fold_constants", model, {"Add": 1, "Mul": 1})
    assert result.counters["folded_nodes"] == 10
    assert model.graph.initializers["wide"].numpy().shape == (2, 3)
    np.testing.assert_array_equal(model.graph.initializers["r"].numpy(), [0, 2, 4])
    assert [v.name for v in model.graph.outputs] == ["y", "r", "z"]


def test_random_op_is_not_folded(check_pass):
    model = model_from_text(H + """
        g (float[2] x) => (float[2] y) { r = RandomNormalLike(c) y = Add(x, r) }
    """, {"c": np.ones(2, np.float32)})
    check_pass("fold_constants", model, {"RandomNormalLike": 1, "Add": 1}, modified=False, compare=False)


def test_custom_domain_is_not_folded(check_pass):
    model = model_from_text("""
        <ir_version: 8, opset_import: ["" : 17, "custom.ops" : 1]>
        g (float[2] x) => (float[2] y) { r = custom.ops.Scale(c) s = Neg(r) y = Add(x, s) }
    """, {"c": np.ones(2, np.float32)})
    check_pass("fold_constants", model, {"custom.ops::Scale": 1, "Neg": 1, "Add": 1}, modified=False, compare=False)


def test_dequantize_of_constant_weight_stays(check_pass):
    model = model_from_text(H + """
        g (float[2] x) => (float[2] y) { d = DequantizeLinear(q, s) y = Add(x, d) }
    """, {"q": np.array([3, -4], np.int8), "s": np.array(0.5, np.float32)})
    check_pass("fold_constants", model, {"DequantizeLinear": 1, "Add": 1}, modified=False)


@pytest.mark.parametrize("make", ["ConstantOfShape<value = float[1] {0.5}>(shape)", "Expand(half, shape)"])
def test_oversize_result_is_skipped_and_counted(check_pass, make):
    model = model_from_text(H + f"""
        g (float[16, 32] x) => (float[16, 32] y) {{ big = {make} y = Add(x, big) }}
    """, {"shape": np.array([16, 32], np.int64), "half": np.array(0.5, np.float32)})
    op = make.split("<")[0].split("(")[0]
    result = check_pass("fold_constants", model, {op: 1, "Add": 1}, context=SMALL, modified=False)
    assert result.counters == {"skipped_large": 1}


def test_oversize_result_feeding_conv_weight_is_folded(check_pass):
    model = model_from_text(H + """
        g (float[1, 32, 4, 4] x) => (float[1, 16, 4, 4] y) {
            w0 = ConstantOfShape<value = float[1] {0.5}>(shape)
            w = Mul(w0, scale)
            b = Expand(half, channels)
            y = Conv(x, w, b)
        }
    """, {
        "shape": np.array([16, 32, 1, 1], np.int64), "scale": np.array(0.25, np.float32),
        "half": np.array(0.5, np.float32), "channels": np.array([16], np.int64),
    })
    result = check_pass("fold_constants", model, {"Conv": 1}, context=SMALL)
    assert "skipped_large" not in result.counters
    assert model.graph.initializers["w"].numpy().shape == (16, 32, 1, 1)


def test_oversize_result_read_as_weight_and_as_activation_is_skipped(check_pass):
    model = model_from_text(H + """
        g (float[1, 32, 4, 4] x) => (float[1, 16, 4, 4] y, float[16, 32, 1, 1] z) {
            w = ConstantOfShape<value = float[1] {0.5}>(shape)
            y = Conv(x, w)
            z = Neg(w)
        }
    """, {"shape": np.array([16, 32, 1, 1], np.int64)})
    result = check_pass("fold_constants", model, {"ConstantOfShape": 1, "Conv": 1, "Neg": 1}, context=SMALL,
                        modified=False)
    assert result.counters == {"skipped_large": 1}


def _input_initializer_model(ir_version: int):
    graph = helper.make_graph(
        [helper.make_node("Mul", ["w", "w"], ["w2"]), helper.make_node("Add", ["x", "w2"], ["y"])], "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in ("x", "w")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        [onnx.numpy_helper.from_array(np.array([1, 2], np.float32), "w")],
    )
    opset = 9 if ir_version < 4 else 17
    return from_proto(helper.make_model(graph, ir_version=ir_version, opset_imports=[helper.make_opsetid("", opset)]))


def test_initializer_that_is_a_graph_input_is_not_constant_in_ir4(check_pass):
    check_pass("fold_constants", _input_initializer_model(8), {"Mul": 1, "Add": 1}, modified=False)


def test_initializer_that_is_a_graph_input_is_constant_in_ir3(check_pass):
    model = _input_initializer_model(3)
    check_pass("fold_constants", model, {"Add": 1}, feeds={"x": np.array([1, 1], np.float32)})
    assert model.graph.initializers["w2"] in model.graph.input_set  # IR 3: every initializer is an input too


def test_if_with_constant_condition_is_inlined(check_pass):
    model = model_from_text(H + """
        g (float[2] x) => (float[2] y, float[2] v) {
            c = Constant<value = bool {1}>()
            y, v = If(c) <
                then_branch = t () => (float[2] a, float[2] n) {
                    k = Constant<value_floats = [1.0, 2.0]>()
                    m = Mul(k, k)
                    a = Add(x, m)
                    n = Neg(a)
                },
                else_branch = e () => (float[2] b, float[2] p) { b = Neg(x) p = Identity(x) }
            >
            u = Relu(y)
        }
    """)
    result = check_pass("fold_constants", model, {"Add": 1, "Neg": 1, "Relu": 1})
    assert result.counters["ifs_inlined"] == 1
    assert [v.name for v in model.graph.outputs] == ["y", "v"]
    assert [n.outputs[0].name for n in model.graph] == ["y", "v", "u"]
    assert [user.op_type for user in model.graph.inputs[0].consumers()] == ["Add"]  # not the dropped branch


def test_inlined_branch_keeps_its_nested_if(check_pass):
    model = model_from_text(H + """
        g (bool d, float[2] x) => (float[2] y) {
            c = Constant<value = bool {0}>()
            one = Constant<value_float = 1.0>()
            y = If(c) <
                then_branch = t () => (float[2] a) { a = Neg(x) },
                else_branch = e () => (float[2] b) {
                    s = Sub(x, one)
                    t = Constant<value = bool {1}>()
                    b = If(d) <
                        then_branch = t2 () => (float[2] p) { p = Mul(s, one) },
                        else_branch = e2 () => (float[2] q) { q = If(t) <
                            then_branch = t3 () => (float[2] r) { r = Add(s, x) },
                            else_branch = e3 () => (float[2] u) { u = Identity(s) }
                        > }
                    >
                }
            >
        }
    """)
    for cond in (True, False):
        check_pass("fold_constants", model.clone(), {"Sub": 1, "If": 1, "Mul": 1, "Add": 1},
                   feeds={"d": np.array(cond), "x": np.array([1, 2], np.float32)})


def test_if_subgraph_is_folded_with_outer_constants(check_pass):
    model = model_from_text(H + """
        g (bool c, float[2] x) => (float[2] y) {
            k = Constant<value_floats = [1.0, 2.0]>()
            y = If(c) <
                then_branch = t () => (float[2] a) {
                    j = Constant<value_floats = [3.0, 4.0]>() m = Mul(k, j) a = Add(x, m)
                },
                else_branch = e () => (float[2] b) { s = Sub(k, k) b = Neg(s) }
            >
        }
    """)
    for cond in (True, False):
        check_pass("fold_constants", model.clone(), {"If": 1, "Add": 1},
                   feeds={"c": np.array(cond), "x": np.array([1, 2], np.float32)})


def test_ir3_subgraph_constants_are_hoisted_to_main_graph_inputs(check_pass):
    then = helper.make_graph(
        [helper.make_node("Mul", ["k", "k"], ["m"]), helper.make_node("Add", ["x", "m"], ["a"])], "t", [],
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2])],
    )
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["b"])], "e", [],
                              [helper.make_tensor_value_info("b", TensorProto.FLOAT, [2])])
    f = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)], "g",
        [f("c", TensorProto.BOOL, []), f("x", TensorProto.FLOAT, [2]), f("k", TensorProto.FLOAT, [2])],
        [f("y", TensorProto.FLOAT, [2])], [onnx.numpy_helper.from_array(np.array([2, 3], np.float32), "k")],
    )
    model = from_proto(helper.make_model(graph, ir_version=3, opset_imports=[helper.make_opsetid("", 9)]))
    check_pass("fold_constants", model, {"If": 1, "Add": 1, "Neg": 1},
               feeds={"c": np.array(True), "x": np.array([1, 2], np.float32)})
    assert "m" in model.graph.initializers and model.graph.initializers["m"] in model.graph.input_set


def test_loop_body_is_folded(check_pass):
    model = model_from_text(H + """
        g (int64 n, float[2] x) => (float[2] y) {
            k = Constant<value_floats = [1.0, 2.0]>()
            t = Constant<value = bool {1}>()
            y = Loop(n, t, x) <body = b (int64 i, bool cin, float[2] s) => (bool cout, float[2] s2) {
                two = Constant<value_float = 2.0>()
                step = Mul(k, two)
                s2 = Add(s, step)
                cout = Identity(cin)
            }>
        }
    """)
    check_pass("fold_constants", model, {"Loop": 1, "Add": 1, "Identity": 1},
               feeds={"n": np.array(3, np.int64), "x": np.array([1, 2], np.float32)})


def _counting(monkeypatch, name: str, fail=lambda proto: False) -> list:
    calls = []
    real = getattr(evaluate, name)

    def runner(proto, names):
        calls.append(len(proto.graph.node))
        if fail(proto):
            raise RuntimeError("unsupported")
        return real(proto, names)

    monkeypatch.setattr(evaluate, name, runner)
    return calls


def _chains_model():
    return model_from_text(H + """
        g (float[2] x) => (float[2] y) {
            a = Mul(k, k)
            b = Add(a, k)
            c = Neg(k)
            d = Add(x, b)
            y = Mul(d, c)
        }
    """, {"k": np.array([1, 2], np.float32)})


def test_one_session_evaluates_every_region(check_pass, monkeypatch):
    ort_calls = _counting(monkeypatch, "_run_ort")
    check_pass("fold_constants", _chains_model(), {"Add": 1, "Mul": 1})
    assert ort_calls == [3]


def test_reference_evaluator_is_the_fallback(check_pass, monkeypatch):
    _counting(monkeypatch, "_run_ort", fail=lambda proto: True)
    reference_calls = _counting(monkeypatch, "_run_reference")
    check_pass("fold_constants", _chains_model(), {"Add": 1, "Mul": 1})
    assert reference_calls == [2, 1]  # only the regions ORT failed on: {a, b} and {c}


def test_failing_batch_falls_back_to_regions_then_nodes(check_pass, monkeypatch):
    ort_calls = _counting(monkeypatch, "_run_ort", fail=lambda proto: len(proto.graph.node) > 1)
    _counting(monkeypatch, "_run_reference", fail=lambda proto: True)
    result = check_pass("fold_constants", _chains_model(), {"Add": 1, "Mul": 1})
    assert result.counters["folded_nodes"] == 3
    assert ort_calls == [3, 2, 1, 1, 1]  # all, region {a, b} fails, then a, b; region {c} alone works


def test_node_no_runtime_can_evaluate_stays(check_pass, monkeypatch):
    _counting(monkeypatch, "_run_ort", fail=lambda proto: any(n.op_type == "Neg" for n in proto.graph.node))
    _counting(monkeypatch, "_run_reference", fail=lambda proto: any(n.op_type == "Neg" for n in proto.graph.node))
    result = check_pass("fold_constants", _chains_model(), {"Add": 1, "Mul": 1, "Neg": 1})
    assert result.counters["not_evaluable"] == 1


def test_float8_result_keeps_its_type(check_pass):
    model = model_from_text("""
        <ir_version: 9, opset_import: ["" : 19]>
        g (float[2] x) => (float[2] y, float8e4m3fn[2] e) { e = Cast<to = 17>(c) f = Cast<to = 1>(e) y = Add(x, f) }
    """, {"c": np.array([1.0, 0.3], np.float32)})
    check_pass("fold_constants", model, {"Add": 1})  # ORT returns float8 as uint8: onnx.reference computes e
    assert model.graph.initializers["e"].const_value.dtype == TensorProto.FLOAT8E4M3FN
    assert model.graph.initializers["f"].numpy().tolist() == [1.0, 0.3125]  # rounded through float8


def test_light_resnet50_weights_fold(check_pass, resnet50_path, monkeypatch):
    model = load(resnet50_path)
    before = op_histogram(model)
    ort_calls = _counting(monkeypatch, "_run_ort")
    after = dict(before)
    del after["ConstantOfShape"]
    result = check_pass("fold_constants", model, after, context=SMALL)
    assert result.counters["folded_nodes"] == before["ConstantOfShape"]
    assert ort_calls == []  # ConstantOfShape only fills: numpy computes those bytes without a session
    onnx.checker.check_model(onnx.ModelProto.FromString(serialize(model)), full_check=True)
