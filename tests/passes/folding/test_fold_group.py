"""The whole `fold` group through the pass manager on an exporter-style graph and on light_resnet50."""
from __future__ import annotations

import numpy as np
import onnx

from onnxopt.ir import load, serialize
from onnxopt.passmanager import LintAfterEachPass, PassContext, PassManager
from onnxopt.testing import assert_same_outputs, model_from_text, op_histogram

TORCH_STYLE = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[N, 4, 6] x) => (float[N, 2, 2, 6] y) {
        s = Shape(x)
        i0 = Constant<value_int = 0>()
        i1 = Constant<value_int = 1>()
        ax = Constant<value_ints = [0]>()
        n = Gather(s, i0)
        c = Gather(s, i1)
        heads = Constant<value_int = 2>()
        per_head = Div(c, heads)
        nv = Unsqueeze(n, ax)
        hv = Unsqueeze(heads, ax)
        pv = Unsqueeze(per_head, ax)
        minus = Constant<value_ints = [-1]>()
        target = Concat<axis = 0>(nv, hv, pv, minus)
        r = Reshape(x, target)
        shift = ConstantOfShape<value = float[1] {0.5}>(minus_shape)
        y = Add(r, shift)
    }
"""


def _optimize(model, context=None):
    return PassManager("fold", context=context, instruments=[LintAfterEachPass()]).run(model)


def test_fold_group_on_exporter_shape_arithmetic():
    model = model_from_text(TORCH_STYLE, {"minus_shape": np.array([6], np.int64)})
    original = serialize(model)
    result = _optimize(model)
    assert result.converged
    assert dict(op_histogram(model)) == {"Shape": 1, "Gather": 1, "Unsqueeze": 1, "Concat": 1, "Reshape": 1, "Add": 1}
    onnx.checker.check_model(onnx.ModelProto.FromString(serialize(model)), full_check=True)
    feeds = {"x": np.random.default_rng(0).standard_normal((3, 4, 6)).astype(np.float32)}
    assert_same_outputs(original, model, feeds, rtol=1e-6, atol=1e-6)
    assert not any(record.modified for record in _optimize(model).history)


def test_fold_group_with_fixed_input_shape_leaves_only_compute():
    model = model_from_text(TORCH_STYLE, {"minus_shape": np.array([6], np.int64)})
    original = serialize(model)
    _optimize(model, PassContext(input_shapes={"x": (3, 4, 6)}))
    assert dict(op_histogram(model)) == {"Reshape": 1, "Add": 1}
    feeds = {"x": np.random.default_rng(0).standard_normal((3, 4, 6)).astype(np.float32)}
    assert_same_outputs(original, model, feeds, rtol=1e-6, atol=1e-6)


def test_fold_group_on_light_resnet50(resnet50_path):
    model = load(resnet50_path)
    original = serialize(model)
    before = op_histogram(model)
    _optimize(model)
    after = op_histogram(model)
    assert "ConstantOfShape" not in after
    del before["ConstantOfShape"]
    assert after == before
    onnx.checker.check_model(onnx.ModelProto.FromString(serialize(model)), full_check=True)
    assert_same_outputs(original, model, rtol=1e-6, atol=1e-6)


def test_if_on_a_static_dim_is_inlined_in_the_first_iteration():
    # exporters guard squeezes with If(dim == 1): fold_shapes runs before fold_constants, so the condition folds and
    # the If inlines in one iteration, and the second only confirms the fixed point
    model = model_from_text("""
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[N, 1, 5] x) => (float[N, 5] y) {
            s = Shape(x)
            i1 = Constant<value_int = 1>()
            one = Constant<value_int = 1>()
            d = Gather(s, i1)
            c = Equal(d, one)
            y = If(c) <
                then_branch = t () => (float[N, 5] a) { ax = Constant<value_ints = [1]>()  a = Squeeze(x, ax) },
                else_branch = e () => (float[N, 5] b) { b = Flatten(x) }
            >
        }
    """)
    original = serialize(model)
    result = _optimize(model)
    assert dict(op_histogram(model)) == {"Squeeze": 1}
    assert result.iterations == 2
    assert not any(record.modified for record in result.history if record.iteration > 1)
    feeds = {"x": np.random.default_rng(0).standard_normal((3, 1, 5)).astype(np.float32)}
    assert_same_outputs(original, model, feeds, rtol=0, atol=0)
