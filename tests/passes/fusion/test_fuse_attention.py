"""fuse_attention: decomposed multi-head attention → com.microsoft MultiHeadAttention (--target ort)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from target_fusion_testing import assert_declines, assert_fuses, scalar

RULE = "fuse_attention"
RNG = np.random.default_rng(13)
HEADS, SIZE = 4, 8
HIDDEN = HEADS * SIZE
INITS = {
    "wq": RNG.uniform(-0.3, 0.3, (HIDDEN, HIDDEN)).astype(np.float32),
    "wk": RNG.uniform(-0.3, 0.3, (HIDDEN, HIDDEN)).astype(np.float32),
    "wv": RNG.uniform(-0.3, 0.3, (HIDDEN, HIDDEN)).astype(np.float32),
    "bq": RNG.uniform(-0.1, 0.1, HIDDEN).astype(np.float32),
    "split": np.array([0, 0, HEADS, SIZE], np.int64), "merge": np.array([0, 0, HIDDEN], np.int64),
    "c": scalar(math.sqrt(SIZE)), "rc": scalar(1 / math.sqrt(SIZE)), "rrc": scalar(SIZE ** -0.25),
    "causal": np.triu(np.full((5, 5), -1e4, np.float32), 1),
}
SCALES = {
    "div": "s = Div(qk, c)",
    "mul": "s = Mul(rc, qk)",
    "split": "qs = Mul(qh, rrc)\n      ks = Mul(kh, rrc)\n      s = MatMul(qs, ks)",
}


def attention(scale="div", mask="m = Add(s, mask)", batch="B", length="5", mask_type="float[B,1,1,5] mask",
              k_perm="[0,2,3,1]", softmax="p = Softmax<axis=-1>(m)", outputs=f"float[B,5,{HIDDEN}] y"):
    """BERT self-attention as torch exports it (HF eager attention, consecutive Transposes of K merged)."""
    qk = "" if scale == "split" else "qk = MatMul(qh, kh)"
    softmax = softmax if mask else softmax.replace("(m)", "(s)")
    inputs = f"float[{batch},{length},{HIDDEN}] x" + (f", {mask_type}" if mask and "mask)" in mask else "")
    return f"""
    <ir_version: 8, opset_import: ["" : 17]>
    g ({inputs}) => ({outputs}) {{
      q0 = MatMul(x, wq)
      q = Add(q0, bq)
      k = MatMul(x, wk)
      v = MatMul(x, wv)
      qr = Reshape(q, split)
      qh = Transpose<perm=[0,2,1,3]>(qr)
      kr = Reshape(k, split)
      kh = Transpose<perm={k_perm}>(kr)
      vr = Reshape(v, split)
      vh = Transpose<perm=[0,2,1,3]>(vr)
      {qk}
      {SCALES[scale]}
      {mask}
      {softmax}
      ctx = MatMul(p, vh)
      ct = Transpose<perm=[0,2,1,3]>(ctx)
      y = Reshape(ct, merge)
    }}""".replace("float[B,", f"float[{batch},")


def feeds(batch=2, mask_shape=(2, 1, 1, 5)):
    x = RNG.standard_normal((batch, 5, HIDDEN)).astype(np.float32)
    mask = np.where(RNG.random(mask_shape) < 0.3, -1e4, 0.0).astype(np.float32)
    return {"x": x, "mask": mask}


AFTER = {"MatMul": 3, "Add": 1, "com.microsoft::MultiHeadAttention": 1}


@pytest.mark.parametrize("scale", list(SCALES))
def test_bert_self_attention_with_padding_mask(scale):
    model = assert_fuses(RULE, attention(scale), INITS, {**AFTER, "Expand": 1}, target="ort", feeds=feeds())
    mha = next(n for n in model.graph if n.op_type == "MultiHeadAttention")
    assert mha.attr("num_heads") == HEADS and abs(mha.attr("scale") - 1 / math.sqrt(SIZE)) < 1e-6


def test_without_mask_and_static_batch():
    model = assert_fuses(RULE, attention(mask="", batch="2"), INITS, AFTER, target="ort")
    assert len(next(n for n in model.graph if n.op_type == "MultiHeadAttention").inputs) == 3


def test_constant_causal_mask_becomes_a_four_dim_attention_bias():
    text = attention(mask="m = Add(s, causal)")
    model = assert_fuses(RULE, text, INITS, AFTER, target="ort", feeds={"x": feeds()["x"]})
    mha = next(n for n in model.graph if n.op_type == "MultiHeadAttention")
    np.testing.assert_array_equal(mha.inputs[5].numpy(), INITS["causal"].reshape(1, 1, 5, 5))


DYNAMIC_LENGTH = attention(length="S", mask_type="float[B,1,1,S] mask").replace("float[B,5,32] y", "float[B,S,32] y")


def test_padding_mask_expands_over_a_query_length_known_only_at_run_time():
    from onnxopt.testing import assert_same_outputs, model_from_text

    after = {**AFTER, "Expand": 1, "Shape": 1, "Slice": 1, "Concat": 1}
    model = assert_fuses(RULE, DYNAMIC_LENGTH, INITS, after, target="ort", feeds=feeds())
    for length in (1, 9):
        x = RNG.standard_normal((3, length, HIDDEN)).astype(np.float32)
        mask = np.where(RNG.random((3, 1, 1, length)) < 0.3, -1e4, 0.0).astype(np.float32)
        assert_same_outputs(model_from_text(DYNAMIC_LENGTH, INITS), model, {"x": x, "mask": mask}, rtol=0, atol=1e-4)


def test_reshape_targets_read_off_another_input_fuse_by_element_count():
    # torch's dynamo export: position embeddings leave the sequence dim unknown to inference, and the head split's
    # target is built from the mask's Shape; [B, ?, 32] → [B, S, 4, 8] keeps B, so ? = S
    text = DYNAMIC_LENGTH.replace("float[B,S,32] x,", "float[B,S,32] tokens, float[1,T,32] positions,").replace(
        "q0 = MatMul(x, wq)", """x = Add(tokens, positions)
      dims = Shape(mask)
      bs = Gather<axis=0>(dims, batch_and_key)
      split = Concat<axis=0>(bs, heads_and_size)
      bsm = Gather<axis=0>(dims, batch_and_key)
      merge = Concat<axis=0>(bsm, hidden)
      q0 = MatMul(x, wq)""").replace("y = Reshape(ct, merge)", "a = Reshape(ct, merge)\n      y = MatMul(a, wo)")
    inits = {key: value for key, value in INITS.items() if key not in ("split", "merge")}
    inits.update(batch_and_key=np.array([0, 3], np.int64), heads_and_size=np.array([HEADS, SIZE], np.int64),
                 hidden=np.array([HIDDEN], np.int64), wo=RNG.uniform(-0.3, 0.3, (HIDDEN, HIDDEN)).astype(np.float32))
    tokens = RNG.standard_normal((2, 5, HIDDEN)).astype(np.float32)
    positions = RNG.standard_normal((1, 5, HIDDEN)).astype(np.float32)
    # the target computations are left for dead-code elimination
    assert_fuses(RULE, text, inits, {**AFTER, "MatMul": 4, "Add": 2, "Expand": 1, "Shape": 2, "Slice": 1,
                                     "Concat": 3, "Gather": 2}, target="ort",
                 feeds={"tokens": tokens, "positions": positions, "mask": feeds()["mask"]})


@pytest.mark.parametrize("text, reason, target", [
    (attention(), "needs --target ort", "onnx"),
    (attention(k_perm="[0,2,1,3]"), "the k Transpose has perm [0, 2, 1, 3], not [0, 2, 3, 1]", "ort"),
    (attention(softmax="p = Softmax<axis=2>(m)"), "the Softmax is over axis 2, not the last", "ort"),
    (DYNAMIC_LENGTH.replace('"" : 17', '"" : 9'), "needs opset >= 10 to expand", "ort"),
    (attention(mask_type="float[B,1,2,5] mask"), "does not broadcast over the query length", "ort"),
    (attention(mask_type="float[B,1,5,1] mask"), "is not known to be the key length", "ort"),
    (attention(outputs="float[B,5,32] y, float[B,4,5,5] p"), "its output 'p' is a graph output", "ort"),
])
def test_declines(text, reason, target):
    assert_declines(RULE, text, INITS, reason, target=target)


def test_wrong_scale_sign_declines():
    assert_declines(RULE, attention(), {**INITS, "c": scalar(-2.0)}, "the scale is not a positive constant", "ort")


def bert_layer(opset=17):
    """One post-norm BERT encoder layer as torch exports it at opset < 17 (LayerNorm and GELU decomposed)."""
    def layer_norm(x, out, tag):
        return f"""
      {tag}mean = ReduceMean<axes=[-1]>({x})
      {tag}d = Sub({x}, {tag}mean)
      {tag}sq = Pow({tag}d, two)
      {tag}var = ReduceMean<axes=[-1]>({tag}sq)
      {tag}ve = Add({tag}var, eps)
      {tag}std = Sqrt({tag}ve)
      {tag}n = Div({tag}d, {tag}std)
      {tag}g = Mul({tag}n, gamma)
      {out} = Add({tag}g, beta)"""
    block = attention().split("{", 1)[1].rsplit("}", 1)[0].replace("y = Reshape(ct, merge)", "a = Reshape(ct, merge)")
    return f"""
    <ir_version: 8, opset_import: ["" : {opset}]>
    g (float[B,5,{HIDDEN}] x, float[B,1,1,5] mask) => (float[B,5,{HIDDEN}] y) {{
      {block}
      o0 = MatMul(a, wo)
      o = Add(o0, bo)
      r1 = Add(o, x)
      {layer_norm("r1", "h", "ln1_")}
      f0 = MatMul(h, w1)
      f = Add(f0, b1)
      u = Div(f, sqrt2)
      e = Erf(u)
      e1 = Add(e, one)
      fe = Mul(f, e1)
      act = Mul(fe, half)
      f2 = MatMul(act, w2)
      f3 = Add(f2, b2)
      r2 = Add(f3, h)
      {layer_norm("r2", "y", "ln2_")}
    }}"""


LAYER_INITS = {
    **INITS, "wo": RNG.uniform(-0.3, 0.3, (HIDDEN, HIDDEN)).astype(np.float32),
    "bo": RNG.uniform(-0.1, 0.1, HIDDEN).astype(np.float32),
    "w1": RNG.uniform(-0.3, 0.3, (HIDDEN, 2 * HIDDEN)).astype(np.float32),
    "b1": RNG.uniform(-0.1, 0.1, 2 * HIDDEN).astype(np.float32),
    "w2": RNG.uniform(-0.3, 0.3, (2 * HIDDEN, HIDDEN)).astype(np.float32),
    "b2": RNG.uniform(-0.1, 0.1, HIDDEN).astype(np.float32),
    "two": scalar(2.0), "eps": scalar(1e-12), "one": scalar(1.0), "half": scalar(0.5),
    "sqrt2": scalar(math.sqrt(2.0)), "gamma": RNG.uniform(0.5, 2, HIDDEN).astype(np.float32),
    "beta": RNG.uniform(-1, 1, HIDDEN).astype(np.float32),
}


@pytest.mark.parametrize("target, target_opset, after", [
    ("onnx", None, {"MatMul": 8, "Add": 8, "Softmax": 1, "Transpose": 4, "Reshape": 4, "Mul": 2, "Div": 2,
                    "Erf": 1, "LayerNormalization": 2}),
    ("onnx", 20, {"MatMul": 8, "Add": 7, "Softmax": 1, "Transpose": 4, "Reshape": 4, "Div": 1, "Gelu": 1,
                  "LayerNormalization": 2}),
    ("ort", None, {"MatMul": 6, "Add": 1, "com.microsoft::MultiHeadAttention": 1, "Expand": 1,
                   "com.microsoft::SkipLayerNormalization": 2, "com.microsoft::BiasGelu": 1}),
])
def test_bert_layer_through_the_default_pipeline(target, target_opset, after):
    from onnxopt import optimize
    from onnxopt.testing import assert_same_outputs, model_from_text, op_histogram

    model = model_from_text(bert_layer(), LAYER_INITS)
    result = optimize(model, target=target, target_opset=target_opset).model
    assert op_histogram(result) == after, op_histogram(result)
    assert_same_outputs(model, result, feeds(), rtol=0.0, atol=1e-4)
    again = optimize(result, target=target).model
    assert op_histogram(again) == after


def test_explaining_the_pass_explains_every_variant():
    from onnxopt import optimize
    from onnxopt.testing import model_from_text

    text = attention(scale="split", mask="").replace("qs = Mul(qh, rrc)", "qs = Mul(qh, nrc)")
    inits = {**INITS, "nrc": scalar(-(SIZE ** -0.25))}
    notes = optimize(model_from_text(text, inits), target="ort", explain=["fuse_attention"]).explanations
    # the model has the unmasked split-scale variant's form, and that rule's reason is the one that helps
    assert "fuse_attention_split_scale_unmasked at node y (Reshape): the scale is not a positive constant scalar" \
        in notes, notes
    assert any(note.startswith("fuse_attention at node y") for note in notes), notes


LEGACY_TRIANGLE = "tri = Trilu<upper = 0>(t, zero)\n      cm = Not(tri)"


def causal(ones="t = ConstantOfShape<value = bool[1] {1}>(square)", triangle=LEGACY_TRIANGLE, fill="fill",
           axis="one_i"):
    """GPT-style self-attention masked to j <= i, the mask built for the run's sequence length as torch exports it
    (legacy: ConstantOfShape, Trilu, Not; dynamo: Expand(true) of the square instead of ConstantOfShape)."""
    return DYNAMIC_LENGTH.replace("float[B,S,32] x, float[B,1,1,S] mask", "float[B,S,32] x").replace(
        "m = Add(s, mask)", f"""dims = Shape(x)
      n = Gather<axis=0>(dims, {axis})
      nv = Unsqueeze(n, zero_v)
      square = Concat<axis=0>(nv, nv)
      {ones}
      {triangle}
      m = Where(cm, {fill}, s)""")


CAUSAL_INITS = {**INITS, "fill": scalar(-np.inf), "zero": np.array(0, np.int64), "one_i": np.array(1, np.int64),
                "zero_i": np.array(0, np.int64), "zero_v": np.array([0], np.int64), "true": np.array(True),
                "low": scalar(-1e4), "k1": np.array(1, np.int64)}
CAUSAL_LEFT = {"Shape": 1, "Gather": 1, "Unsqueeze": 1, "Concat": 1, "Trilu": 1}  # the mask, left for dce


@pytest.mark.parametrize("ones, triangle, built", [
    ("t = ConstantOfShape<value = bool[1] {1}>(square)", LEGACY_TRIANGLE, {"ConstantOfShape": 1, "Not": 1}),
    ("t = Expand(true, square)", "cm = Trilu<upper = 1>(t, k1)", {"Expand": 1}),
])
def test_causal_mask_becomes_unidirectional(ones, triangle, built):
    from onnxopt.testing import assert_same_outputs, model_from_text

    text = causal(ones, triangle)
    model = assert_fuses(RULE, text, CAUSAL_INITS, {**AFTER, **CAUSAL_LEFT, **built}, target="ort",
                         feeds={"x": feeds()["x"]})
    mha = next(n for n in model.graph if n.op_type == "MultiHeadAttention")
    assert mha.attr("unidirectional") == 1 and len(mha.inputs) == 3
    for length in (1, 9):
        x = RNG.standard_normal((2, length, HIDDEN)).astype(np.float32)
        assert_same_outputs(model_from_text(text, CAUSAL_INITS), model, {"x": x}, rtol=0, atol=1e-4)


@pytest.mark.parametrize("text, reason", [
    (causal(fill="low"), "the masked scores are not set to -inf"),
    (causal(triangle=LEGACY_TRIANGLE.replace("upper = 0", "upper = 1")), "the mask is not Not(Trilu(ones, upper=0))"),
    (causal(triangle=LEGACY_TRIANGLE.replace("zero", "k1")), "the Trilu's diagonal offset is not 0"),
    (causal(axis="zero_i"), "the triangle is not known to be all ones over [query length, query length]"),
])
def test_causal_declines(text, reason):
    assert_declines(RULE, text, CAUSAL_INITS, reason, target="ort")



def test_placeholder_dim_names_prove_nothing():
    # Paddle names every unknown dim "?": two "?" dims need not be one size
    from target_fusion_testing import run_pass

    from onnxopt.testing import model_from_text

    model = model_from_text(DYNAMIC_LENGTH, INITS)
    for value in (v for v in model.graph.inputs if v.name in ("x", "mask")):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.dim_param = "?"
    fired, notes = run_pass(RULE, model, "ort", explain=True)
    assert not fired and any("does not keep the batch and sequence dims" in note for note in notes), notes
