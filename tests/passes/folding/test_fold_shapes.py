"""fold_shapes and fix_input_shapes: shape arithmetic folds where dims are static, also around a dynamic batch."""
from __future__ import annotations

import numpy as np
import pytest

from onnxopt.errors import OnnxoptError
from onnxopt.passmanager import PassContext, make_pass
from onnxopt.testing import model_from_text

H = '<ir_version: 8, opset_import: ["" : 17]>'
FEEDS = {"x": np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)}


def test_static_channel_dim_folds_next_to_dynamic_batch(check_pass):
    model = model_from_text(H + """
        g (float[N, 3, 4, 4] x) => (float[N, 48] y, int64 c) {
            s = Shape(x)
            i0 = Constant<value_int = 0>()
            i1 = Constant<value_int = 1>()
            a0 = Constant<value_ints = [0]>()
            n = Gather(s, i0)
            c = Gather(s, i1)
            nv = Unsqueeze(n, a0)
            cv = Unsqueeze(c, a0)
            hw = Slice(s, two, four)
            area = ReduceProd<keepdims = 1>(hw)
            rest = Mul(cv, area)
            target = Concat<axis = 0>(nv, rest)
            y = Reshape(x, target)
        }
    """, {"two": np.array([2], np.int64), "four": np.array([4], np.int64)})
    result = check_pass("fold_shapes", model, {"Shape": 1, "Constant": 2, "Gather": 1, "Unsqueeze": 1, "Mul": 1,
                                               "ReduceProd": 1, "Concat": 1, "Reshape": 1}, feeds=FEEDS)
    assert result.counters == {"shape_values_folded": 3}  # c (a graph output), cv and hw
    graph = model.graph
    np.testing.assert_array_equal(graph.initializers["hw"].numpy(), [4, 4])
    assert graph.initializers["c"].numpy().shape == () and graph.initializers["c"].numpy() == 3


def test_batch_dim_alone_is_not_folded(check_pass):
    model = model_from_text(H + """
        g (float[N, 3, 4, 4] x) => (int64[1] y) {
            s = Shape(x)
            i0 = Constant<value_ints = [0]>()
            y = Gather(s, i0)
        }
    """)
    check_pass("fold_shapes", model, {"Shape": 1, "Constant": 1, "Gather": 1}, feeds=FEEDS, modified=False)


def test_fully_static_reshape_target_and_arithmetic(check_pass):
    model = model_from_text(H + """
        g (float[2, 3, 4, 4] x) => (float[2, 3, 2, 8] y, int64 n, float q) {
            s = Shape<start = 1>(x)
            n = Size(x)
            st = Constant<value_ints = [1]>()
            en = Constant<value_ints = [2]>()
            h = Slice(s, st, en)
            half = Constant<value_ints = [2]>()
            h2 = Div(h, half)
            w2 = Mul(h, half)
            b = Shape<end = 1>(x)
            c = Shape<start = -3, end = -2>(x)
            t = Concat<axis = 0>(b, c, h2, w2)
            y = Reshape(x, t)
            ax = Constant<value_ints = [0]>()
            hs = Squeeze(h, ax)
            hf = Cast<to = 1>(hs)
            q = Div(hf, three)
        }
    """, {"three": np.array(3, np.float32)})
    check_pass("fold_shapes", model, {"Reshape": 1}, feeds={"x": FEEDS["x"]})
    np.testing.assert_array_equal(model.graph.initializers["t"].numpy(), [2, 3, 2, 8])
    assert model.graph.initializers["q"].numpy().dtype == np.float32


def test_declared_output_shape_is_not_trusted(check_pass):
    model = model_from_text(H + """
        g (float[1, 4] x, int64[2] t) => (float[2, 2] y, int64[2] s) { y = Reshape(x, t) s = Shape(y) }
    """)
    feeds = {"x": np.ones((1, 4), np.float32), "t": np.array([1, 4], np.int64)}  # y is [1, 4], not as declared
    check_pass("fold_shapes", model, {"Reshape": 1, "Shape": 1}, feeds=feeds, modified=False)
    assert model.graph.outputs[0].shape == (2, 2)  # the declared interface itself is left alone


def test_inferred_shape_of_a_graph_output_is_used(check_pass):
    model = model_from_text(H + """
        g (float[1, 4] x) => (float[1, 4] y, int64[2] s) { y = Relu(x) s = Shape(y) }
    """)
    check_pass("fold_shapes", model, {"Relu": 1}, feeds={"x": np.ones((1, 4), np.float32)})
    np.testing.assert_array_equal(model.graph.initializers["s"].numpy(), [1, 4])


def test_shape_inside_if_branch_of_outer_static_value(check_pass):
    model = model_from_text(H + """
        g (bool c, float[2, 3] x) => (int64[1] y) {
            y = If(c) <
                then_branch = t () => (int64[1] a) { s = Shape(x) i = Constant<value_ints = [1]>() a = Gather(s, i) },
                else_branch = e () => (int64[1] b) { b = Constant<value_ints = [0]>() }
            >
        }
    """)
    check_pass("fold_shapes", model, {"If": 1, "Constant": 1},
               feeds={"c": np.array(True), "x": np.ones((2, 3), np.float32)})


def test_fix_input_shapes_then_batch_folds(check_pass):
    model = model_from_text(H + """
        g (float[N, 3, 4, 4] x) => (int64[1] y) { s = Shape(x) i0 = Constant<value_ints = [0]>() y = Gather(s, i0) }
    """)
    context = PassContext(input_shapes={"x": (2, 3, 4, 4)})
    check_pass("fix_input_shapes", model, None, context=context, feeds=FEEDS)
    assert model.graph.inputs[0].shape == (2, 3, 4, 4)
    check_pass("fold_shapes", model, {}, feeds=FEEDS)


@pytest.mark.parametrize("shapes, message", [
    ({"z": (1, 3, 4, 4)}, "no input of"),
    ({"x": (1, 3, 4)}, "rank 3"),
    ({"x": (1, 5, 4, 4)}, "fixed at 3"),
])
def test_fix_input_shapes_rejects_mismatches(shapes, message):
    model = model_from_text(H + "g (float[N, 3, 4, 4] x) => (float[N, 3, 4, 4] y) { y = Relu(x) }")
    with pytest.raises(OnnxoptError, match=message):
        make_pass("fix_input_shapes", PassContext(input_shapes=shapes)).call(model)


def test_fix_input_shapes_treats_minus_one_dims_as_dynamic():
    # Paddle exports write -1 for dynamic dims; such a dim can be fixed like a symbolic one
    model = model_from_text(H + "g (float[N, 3, 4, 4] x) => (float[N, 3, 4, 4] y) { y = Relu(x) }")
    model.graph.inputs[0].set_type(1, (-1, 3, 4, 4))
    make_pass("fix_input_shapes", PassContext(input_shapes={"x": (2, 3, 4, 4)})).call(model)
    assert model.graph.inputs[0].shape == (2, 3, 4, 4)


def test_shapes_are_inferred_only_when_a_shape_or_size_is_asked(monkeypatch):
    import onnxopt.ir.shapes as shapes

    calls = []
    infer = shapes.infer_types
    monkeypatch.setattr(shapes, "infer_types", lambda model: calls.append(1) or infer(model))
    without = model_from_text(H + "g (float[2, 3] x) => (float[3, 2] y) { t = Relu(x)  y = Transpose(t) }")
    assert not make_pass("fold_shapes", PassContext()).call(without).modified
    assert calls == []
    with_shape = model_from_text(H + "g (float[2, 3] x) => (float[2, 3] y) { t = Relu(x)  s = Shape(t)  y = Reshape(x, s) }")
    assert make_pass("fold_shapes", PassContext()).call(with_shape).modified
    assert calls == [1]
