"""fuse_layer_norm: decomposed layer normalization → LayerNormalization (opset ≥ 17), γ and β folded in."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onnxopt import optimize
from onnxopt.testing import assert_same_outputs, model_from_text, op_histogram
from target_fusion_testing import assert_declines, assert_fuses, scalar

RULE = "fuse_layer_norm"
RNG = np.random.default_rng(7)
GAMMA = RNG.uniform(0.5, 2.0, 8).astype(np.float32)
BETA = RNG.uniform(-1.0, 1.0, 8).astype(np.float32)
INITS = {"two": scalar(2.0), "eps": scalar(1e-5), "one": scalar(1.0), "gamma": GAMMA, "beta": BETA}


def layer_norm(opset=17, square="pow", division="div", affine="both", axes=(-1,), shape="2,5,8", keepdims=1,
               outputs="float[2,5,8] y", extra=""):
    """ONNX text of a decomposed layer norm, spelled as the arguments say (torch's export by default)."""
    if opset >= 18:
        axes_text = f"axes = Constant<value = int64[{len(axes)}] {{{', '.join(map(str, axes))}}}>()\n"
        mean = f"ReduceMean<keepdims={keepdims}>(x, axes)"
    else:
        axes_text, mean = "", f"ReduceMean<axes=[{', '.join(map(str, axes))}], keepdims={keepdims}>(x)"
    sq = "Pow(d, two)" if square == "pow" else "Mul(d, d)"
    if division == "div":
        normalize = "n = Div(d, std)"
    elif division == "reciprocal":
        normalize = "r = Reciprocal(std)\n  n = Mul(r, d)"
    else:
        normalize = "r = Div(one, std)\n  n = Mul(d, r)"
    tail = {"none": "y = Identity(n)", "scale": "y = Mul(n, gamma)",
            "both": "s = Mul(n, gamma)\n  y = Add(s, beta)"}[affine]
    return f"""
    <ir_version: 8, opset_import: ["" : {opset}]>
    g (float[{shape}] x) => ({outputs}) {{
      {axes_text}
      mean = {mean}
      d = Sub(x, mean)
      sq = {sq}
      var = {mean.replace('(x', '(sq')}
      ve = Add(var, eps)
      std = Sqrt(ve)
      {normalize}
      {tail}
      {extra}
    }}"""


@pytest.mark.parametrize("opset", [17, 18])
def test_torch_export_fuses_with_affine(opset):
    model = assert_fuses(RULE, layer_norm(opset), INITS, {"LayerNormalization": 1} if opset == 17 else
                         {"LayerNormalization": 1, "Constant": 1})
    norm = next(n for n in model.graph if n.op_type == "LayerNormalization")
    assert norm.attr("axis") == -1 and abs(norm.attr("epsilon") - 1e-5) < 1e-12
    np.testing.assert_allclose(norm.inputs[1].numpy(), GAMMA)
    np.testing.assert_allclose(norm.inputs[2].numpy(), BETA)


@pytest.mark.parametrize("division", ["div", "reciprocal", "one_over"])
@pytest.mark.parametrize("square", ["pow", "mul"])
def test_spellings(square, division):
    assert_fuses(RULE, layer_norm(square=square, division=division), INITS, {"LayerNormalization": 1})


@pytest.mark.parametrize("affine, after", [("none", {"LayerNormalization": 1, "Identity": 1}),
                                           ("scale", {"LayerNormalization": 1})])
def test_missing_affine_parts(affine, after):
    model = assert_fuses(RULE, layer_norm(affine=affine), INITS, after)
    norm = next(n for n in model.graph if n.op_type == "LayerNormalization")
    assert len(norm.inputs) == 2  # no bias input


def test_several_trailing_axes_and_positive_axes():
    model = assert_fuses(RULE, layer_norm(axes=(1, 2), affine="none"), INITS,
                         {"LayerNormalization": 1, "Identity": 1})
    norm = next(n for n in model.graph if n.op_type == "LayerNormalization")
    assert norm.attr("axis") == -2 and norm.inputs[1].numpy().shape == (5, 8)


def test_gamma_with_leading_ones_folds():
    inits = {**INITS, "gamma": GAMMA.reshape(1, 1, 8), "beta": BETA.reshape(1, 8)}
    assert_fuses(RULE, layer_norm(), inits, {"LayerNormalization": 1})


def test_folds_into_an_existing_layer_norm():
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2,8] x) => (float[2,8] y) {
      n = LayerNormalization<epsilon=0.001>(x, s, b)
      m = Mul(gamma, n)
      y = Add(m, beta)
    }"""
    inits = {"s": GAMMA[::-1].copy(), "b": BETA[::-1].copy(), "gamma": GAMMA, "beta": BETA}
    model = assert_fuses(RULE, text, inits, {"LayerNormalization": 1})
    norm = next(iter(model.graph))
    np.testing.assert_allclose(norm.inputs[1].numpy(), GAMMA[::-1] * GAMMA, rtol=1e-6)
    np.testing.assert_allclose(norm.inputs[2].numpy(), BETA[::-1] * GAMMA + BETA, rtol=1e-6)


def test_constant_nodes_are_read():
    text = layer_norm().replace("g (float", "g (float", 1)
    text = text.replace("sq = Pow(d, two)", "two = Constant<value = float {2.0}>()\n      sq = Pow(d, two)")
    text = text.replace("ve = Add(var, eps)", "eps = Constant<value = float {1e-5}>()\n      ve = Add(var, eps)")
    inits = {k: v for k, v in INITS.items() if k not in ("two", "eps")}
    # the Constant nodes stay, unread, for dead-code elimination
    assert_fuses(RULE, text, inits, {"LayerNormalization": 1, "Constant": 2})


def test_sub_graph_is_fused():
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (bool c, float[2,8] x) => (float[2,8] y) {
      y = If(c) <
        then_branch = t () => (float[2,8] o) {
          mean = ReduceMean<axes=[-1]>(x)
          d = Sub(x, mean)
          sq = Mul(d, d)
          var = ReduceMean<axes=[-1]>(sq)
          ve = Add(eps, var)
          std = Sqrt(ve)
          o = Div(d, std)
        },
        else_branch = e () => (float[2,8] o2) { o2 = Relu(x) }
      >
    }"""
    model = model_from_text(text, INITS)
    original = model.clone()
    optimize(model, [RULE], inplace=True)
    assert op_histogram(model) == {"If": 1, "LayerNormalization": 1, "Relu": 1}
    feeds = {"c": np.array(True), "x": RNG.standard_normal((2, 8)).astype(np.float32)}
    assert_same_outputs(original, model, feeds, rtol=0.0)


def test_target_opset_makes_layer_norm_possible():
    old = layer_norm(13)
    model = model_from_text(old, INITS)
    assert op_histogram(optimize(model, [RULE]).model)["LayerNormalization"] == 0
    for opset in (17, 18):
        result = optimize(model, [RULE], target_opset=opset).model
        assert result.opset == opset
        assert op_histogram(result)["LayerNormalization"] == 1 and op_histogram(result)["ReduceMean"] == 0
        assert_same_outputs(model, result, rtol=0.0)


@pytest.mark.parametrize("text, inits, reason", [
    (layer_norm(16), INITS, "needs opset >= 17, the model has 16"),
    (layer_norm(), {**INITS, "two": scalar(2.001)}, "the Pow exponent is not the constant 2"),
    (layer_norm(division="one_over"), {**INITS, "one": scalar(2.0)}, "numerator is not the constant 1"),
    (layer_norm(axes=(1,)), INITS, "not a keepdims ReduceMean over the last axes"),
    (layer_norm(axes=(0, 2)), INITS, "not a keepdims ReduceMean over the last axes"),
    (layer_norm(keepdims=0, shape="2,8", outputs="float[2] y"), INITS, "not a keepdims ReduceMean"),
    (layer_norm(shape="2,5,N"), INITS, "the normalized dims of 'x' are not static"),
    (layer_norm(), {**INITS, "eps": scalar(-1.0)}, "ε is not a non-negative constant scalar"),
    (layer_norm(), {**INITS, "eps": np.full((1, 1, 1, 1), 1e-5, np.float32)}, "ε is not a non-negative constant"),
    (layer_norm(outputs="float[2,5,8] y, float[2,5,8] d"), INITS, "its output 'd' is a graph output"),
    (layer_norm(outputs="float[2,5,8] y, float[2,5,1] z", extra="z = Relu(var)"), INITS, "is also read by Relu"),
])
def test_declines(text, inits, reason):
    assert_declines(RULE, text, inits, reason)


def test_variance_over_other_axes_declines():
    text = layer_norm().replace("var = ReduceMean<axes=[-1], keepdims=1>(sq)", "var = ReduceMean<axes=[1, 2]>(sq)")
    assert_declines(RULE, text, INITS, "the variance is not a keepdims ReduceMean over the same axes as the mean")


def test_gamma_over_other_axes_is_left_as_mul():
    inits = {**INITS, "gamma": RNG.uniform(0.5, 2.0, (5, 1)).astype(np.float32)}
    assert_fuses(RULE, layer_norm(), inits, {"LayerNormalization": 1, "Mul": 1, "Add": 1})


def test_non_constant_gamma_is_left_as_mul():
    text = layer_norm().replace("g (float[2,5,8] x)", "g (float[2,5,8] x, float[8] gamma)")
    inits = {k: v for k, v in INITS.items() if k != "gamma"}
    feeds = {"x": RNG.standard_normal((2, 5, 8)).astype(np.float32), "gamma": GAMMA}
    assert_fuses(RULE, text, inits, {"LayerNormalization": 1, "Mul": 1, "Add": 1}, feeds=feeds)


def test_target_opset_failure_names_each_node():
    from onnxopt.errors import OnnxoptError

    model = model_from_text("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2,4,3] x, float[2] s) => (float[2,4,3] y, float[2,4,3] z) {
      a = GroupNormalization<num_groups=2>(x, s, s)
      y = Relu(a)
      z = GroupNormalization<num_groups=2, epsilon=0.1>(x, s, s)
    }""")
    with pytest.raises(OnnxoptError) as error:
        optimize(model, [RULE], target_opset=18)
    message = str(error.value)
    assert message.startswith("cannot convert the model from opset 17 to 18: GroupNormalization 'a': No Adapter")
    assert "GroupNormalization 'z'" in message and "Relu" not in message
    with pytest.raises(OnnxoptError, match="newer than the newest opset"):
        optimize(model, [RULE], target_opset=99)


def test_float16():
    inits = {k: v.astype(np.float16) for k, v in INITS.items()}
    model = assert_fuses(RULE, layer_norm().replace("float[", "float16["), inits, {"LayerNormalization": 1},
                         atol=1e-2)  # float16: 1e-2 × output scale
    assert {v.numpy().dtype for v in model.graph.initializers.values()} == {np.dtype(np.float16)}


@settings(max_examples=20, deadline=None)
@given(shape=st.sampled_from([(8,), (1, 8), (1, 1, 8), (1, 1, 1, 8), (5, 8), (5, 1), (2, 1, 8), (1,), ()]),
       with_beta=st.booleans())
def test_affine_folding_keeps_outputs_for_any_broadcast(shape, with_beta):
    """γ/β of any broadcastable shape either fold (when they vary along the normalized axis only) or stay."""
    gamma = RNG.uniform(0.5, 2.0, shape).astype(np.float32)
    beta = RNG.uniform(-1.0, 1.0, shape).astype(np.float32)
    text = layer_norm(affine="both" if with_beta else "scale")
    model = model_from_text(text, {**INITS, "gamma": gamma, "beta": beta})
    original = model.clone()
    optimize(model, [RULE], inplace=True)
    folds = len(shape) <= 3 and shape[:-1] == (1,) * (len(shape) - 1)
    histogram = op_histogram(model)
    assert histogram["LayerNormalization"] == 1
    assert histogram["Mul"] == (0 if folds else 1)
    assert_same_outputs(original, model, rtol=0.0)


def test_wrong_declared_shape_of_a_graph_output_is_not_trusted():
    """x is also a graph output, declared (wrongly) with 4 features: the normalized dims are unknown, not 4."""
    text = layer_norm(outputs="float[2,5,8] y, float[2,5,4] x").replace("g (float[2,5,8] x)", "g (float[2,5,8] x0)")
    text = text.replace("mean = ReduceMean", "x = Relu(x0)\n      mean = ReduceMean", 1)
    assert_declines(RULE, text, INITS, "the normalized dims of 'x' are not static")
