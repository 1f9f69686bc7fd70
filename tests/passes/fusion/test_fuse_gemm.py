"""MatMul/Gemm fusions: fuse_matmul_add_into_gemm, fuse_transpose_into_matmul_weight, fuse_transpose_into_gemm,
fuse_bn_into_gemm; and a Gemm with transB over a constant weight is left as it is."""
from __future__ import annotations

import numpy as np
import pytest

from fusion_testing import assert_declines, assert_fuses, bn_params, run_pass, weights
from onnxopt.passmanager import PassManager
from onnxopt.testing import model_from_text, op_histogram


def matmul_add(a_shape="float[3,5]", c_shape=(4,), swap=False, c_input=False, opset=17, t="float", dtype=np.float32):
    add = "Add(c, m)" if swap else "Add(m, c)"
    c_decl = f", {t}[{','.join(map(str, c_shape))}] c" if c_input else ""
    text = f"""
    <ir_version: 8, opset_import: ["" : {opset}]>
    g ({a_shape} a{c_decl}) => ({t}[?,?] y) {{
      m = MatMul(a, w)
      y = {add}
    }}"""
    inits = {"w": weights(5, 4, dtype=dtype)}
    if not c_input:
        inits["c"] = weights(*c_shape, dtype=dtype)
    return text, inits


@pytest.mark.parametrize("a_shape, c_shape, swap, c_input", [
    ("float[3,5]", (4,), False, False), ("float[3,5]", (1, 4), True, False), ("float[3,5]", (3, 4), False, False),
    ("float[3,5]", (3, 1), True, False), ("float[3,5]", (), False, False), ("float[N,5]", (4,), False, True),
])
def test_matmul_add_into_gemm(a_shape, c_shape, swap, c_input):
    text, inits = matmul_add(a_shape, c_shape, swap, c_input)
    assert_fuses("fuse_matmul_add_into_gemm", text, inits, {"Gemm": 1})


def test_matmul_add_into_gemm_dtypes():
    text, inits = matmul_add("float16[3,5]", t="float16", dtype=np.float16)
    assert_fuses("fuse_matmul_add_into_gemm", text, inits, {"Gemm": 1}, dtype="float16")
    text, inits = matmul_add("double[3,5]", t="double", dtype=np.float64)
    assert_fuses("fuse_matmul_add_into_gemm", text, inits, {"Gemm": 1}, dtype="float64")


@pytest.mark.parametrize("a_shape, c_shape, reason", [
    ("float[2,3,5]", (4,), "A has shape [2, 3, 5], not 2-D"),
    ("float[3,5]", (3,), "C of shape [3] does not broadcast to the product's [3, 4]"),
    ("float[3,5]", (2, 3, 4), "C has shape [2, 3, 4], not at most 2-D"),
    ("float[N,5]", (7, 4), "C of shape [7, 4] does not broadcast to the product's [N, 4]"),
    ("int32[3,5]", (4,), "A is not float, float16 or double"),
])
def test_matmul_add_into_gemm_declines(a_shape, c_shape, reason):
    dtype = np.int32 if a_shape.startswith("int32") else np.float32
    text, inits = matmul_add(a_shape, c_shape, t="int32" if dtype is np.int32 else "float", dtype=dtype)
    assert_declines("fuse_matmul_add_into_gemm", text, inits, reason)


def test_matmul_add_into_gemm_unknown_rank_shared_and_opset():
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[3,5] a, float[5,4] w, c) => (float[?,?] y) { m = MatMul(a, w)  y = Add(m, c) }"""
    assert_declines("fuse_matmul_add_into_gemm", text, {}, "C has shape unknown")
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[3,5] a) => (float[?,?] y, float[?,?] z) { m = MatMul(a, w)  y = Add(m, c)  z = Relu(m) }"""
    assert_declines("fuse_matmul_add_into_gemm", text, {"w": weights(5, 4), "c": weights(4)}, "also read by Relu")
    text, inits = matmul_add(opset=6)
    assert_declines("fuse_matmul_add_into_gemm", text, inits, "the rule needs opset >= 7, the model has 6")


@pytest.mark.parametrize("a_shape, w_shape, perm", [
    ("float[3,5]", (4, 5), ""), ("float[2,3,5]", (5, 2, 4), "<perm=[1,0,2]>"), ("float[2,3,5]", (2, 4, 5), "<perm=[0,2,1]>"),
])
def test_transpose_into_matmul_weight(a_shape, w_shape, perm):
    text = f"""
    <ir_version: 8, opset_import: ["" : 17]>
    g ({a_shape} a) => (float{"[?,?,?]" if perm else "[?,?]"} y) {{ t = Transpose{perm}(w)  y = MatMul(a, t) }}"""
    model = assert_fuses("fuse_transpose_into_matmul_weight", text, {"w": weights(*w_shape)}, {"MatMul": 1})
    assert list(model.graph.initializers) != ["w"]


def test_transpose_into_matmul_weight_declines():
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[3,5] a, float[4,5] w) => (float[?,?] y) { t = Transpose(w)  y = MatMul(a, t) }"""
    assert_declines("fuse_transpose_into_matmul_weight", text, {}, "the transposed weight 'w' is not constant")
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[3,5] a, float[3,5] b) => (float[?,?] y, float[?,?] z) { t = Transpose(w)  y = MatMul(a, t)  z = MatMul(b, t) }"""
    assert_declines("fuse_transpose_into_matmul_weight", text, {"w": weights(4, 5)}, "also read by MatMul")
    text = """
    <ir_version: 8, opset_import: ["" : 6]>
    g (float[3,5] a) => (float[?,?] y) { t = Transpose(w)  y = MatMul(a, t) }"""
    assert_declines("fuse_transpose_into_matmul_weight", text, {"w": weights(4, 5)}, "needs opset >= 7")


@pytest.mark.parametrize("trans_b, c", [(0, True), (1, False)])
def test_transpose_into_gemm_keeps_the_weight(trans_b, c):
    w_shape = (4, 5) if trans_b else (5, 4)
    text = f"""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[3,5] a) => (float[?,?] y) {{ t = Transpose<perm=[1,0]>(w)  y = Gemm<transB={1 - trans_b}>(a, t{", c" if c else ""}) }}"""
    inits = {"w": weights(*w_shape), "c": weights(4)}
    model = assert_fuses("fuse_transpose_into_gemm", text, inits, {"Gemm": 1})
    gemm = next(iter(model.graph))
    assert gemm.inputs[1] is model.graph.initializers["w"] and gemm.attr("transB") == trans_b


def gemm_bn(trans_b=0, c_shape=(4,), beta=1.0, opset=17, t="float", dtype=np.float32, bn_attrs=""):
    c = "" if c_shape is None else ", c"
    text = f"""
    <ir_version: 8, opset_import: ["" : {opset}]>
    g ({t}[3,5] a) => ({t}[3,4] y) {{
      g = Gemm<transB={trans_b}, alpha=0.5, beta={beta}>(a, w{c})
      y = BatchNormalization{bn_attrs}(g, scale, bias, mean, var)
    }}"""
    inits = {"w": weights(*((4, 5) if trans_b else (5, 4)), dtype=dtype), **bn_params(4, dtype)}
    if c_shape is not None:
        inits["c"] = weights(*c_shape, dtype=dtype)
    return text, inits


@pytest.mark.parametrize("trans_b, c_shape, beta", [
    (0, (4,), 1.0), (1, (4,), 2.0), (1, None, 1.0), (0, (3, 1), 0.5), (1, (3, 4), 1.0), (0, (), 1.0),
])
def test_bn_into_gemm(trans_b, c_shape, beta):
    text, inits = gemm_bn(trans_b, c_shape, beta)
    model = assert_fuses("fuse_bn_into_gemm", text, inits, {"Gemm": 1})
    gemm = next(iter(model.graph))
    assert gemm.attr("transB") == trans_b and gemm.inputs[1].shape == inits["w"].shape


def test_bn_into_gemm_dtypes():
    text, inits = gemm_bn(1, t="float16", dtype=np.float16)
    assert_fuses("fuse_bn_into_gemm", text, inits, {"Gemm": 1}, dtype="float16")
    text, inits = gemm_bn(0, t="double", dtype=np.float64)
    assert_fuses("fuse_bn_into_gemm", text, inits, {"Gemm": 1}, dtype="float64")


def test_bn_into_gemm_declines():
    text, inits = gemm_bn(opset=15, bn_attrs="<training_mode=1>")
    assert_declines("fuse_bn_into_gemm", text, inits, "training mode")
    text, inits = gemm_bn(opset=6, bn_attrs="<is_test=1>")
    assert_declines("fuse_bn_into_gemm", text, inits, "the rule needs opset >= 7, the model has 6")
    text, inits = gemm_bn()
    del inits["w"]
    text = text.replace("[3,5] a)", "[3,5] a, float[5,4] w)")
    assert_declines("fuse_bn_into_gemm", text, inits, "the Gemm weight B ('w') is not constant")
    text, inits = gemm_bn()
    text = text.replace("(float[3,4] y)", "(float[3,4] y, float[3,4] g)")
    assert_declines("fuse_bn_into_gemm", text, inits, "'g' is a graph output")


def test_gemm_with_trans_b_constant_weight_is_left_as_is():
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[3,5] a) => (float[3,4] y) { y = Gemm<transB=1>(a, w, c) }"""
    model = model_from_text(text, {"w": weights(4, 5), "c": weights(4)})
    result = PassManager("fuse").run(model)
    assert not any(r.modified for r in result.history)
    gemm = next(iter(model.graph))
    assert gemm.attr("transB") == 1 and gemm.inputs[1].name == "w" and op_histogram(model) == {"Gemm": 1}


def test_matmul_chain_becomes_gemm_then_absorbs_bn():
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[3,5] a) => (float[3,4] y) {
      t = Transpose(w)
      m = MatMul(a, t)
      s = Add(m, c)
      y = BatchNormalization(s, scale, bias, mean, var)
    }"""
    model = model_from_text(text, {"w": weights(4, 5), "c": weights(4), **bn_params(4)})
    original = model.clone()
    PassManager("fuse").run(model)
    assert op_histogram(model) == {"Gemm": 1}
    from onnxopt.testing import assert_same_outputs
    assert_same_outputs(original, model, rtol=0.0, atol=1e-4)
    assert not run_pass("fuse_bn_into_gemm", model)[0]


def test_a_wrong_declared_shape_is_not_trusted_until_inference_confirms_it():
    """r is 3-D, but the file declares it 2-D in value_info: the rule must see the inferred rank and decline."""
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2,3,5] a) => (float[?,?,?] y) <float[3,5] r> { r = Relu(a)  m = MatMul(r, w)  y = Add(m, c) }"""
    assert_declines("fuse_matmul_add_into_gemm", text, {"w": weights(5, 4), "c": weights(4)},
                    "A has shape [2, 3, 5], not 2-D")
