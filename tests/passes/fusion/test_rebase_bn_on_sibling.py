"""rebase_bn_on_sibling: BatchNormalizations sharing a Conv/ConvTranspose/Gemm output read the first one's output
instead, so that one folds into the producer. Tolerance: assert_fuses' (float32 atol 1e-4 × output scale)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from fusion_testing import assert_declines, assert_fuses, bn_params, run_pass, weights
from onnxopt.ir import lint, to_proto
from onnxopt.passmanager import PassManager
from onnxopt.testing import assert_same_outputs, model_from_text, op_histogram

RULE = "rebase_bn_on_sibling"

FAN_OUT = """
<ir_version: 8, opset_import: ["" : {opset}]>
g ({t}[1,4,6,6] x) => ({t}[1,6,6,6] ya, {t}[1,6,6,6] yb, {t}[1,6,6,6] yc) {{
  c = Conv<pads=[1,1,1,1]>(x, w, b)
  ya = BatchNormalization<epsilon=0.001>(c, sa, ba, ma, va)
  yb = BatchNormalization(c, sb, bb, mb, vb)
  yc = BatchNormalization<epsilon=0.01>(c, sc, bc, mc, vc)
}}"""


def named_bn(suffix: str, channels: int = 6, dtype=np.float32) -> dict[str, np.ndarray]:
    """bn_params under the names s<suffix>, b<suffix>, m<suffix>, v<suffix>."""
    return {f"{key[0]}{suffix}": value for key, value in bn_params(channels, dtype).items()}


def fan_out(opset=17, t="float", dtype=np.float32):
    inits = {"w": weights(6, 4, 3, 3, dtype=dtype), "b": weights(6, dtype=dtype)}
    for suffix in "abc":
        inits.update(named_bn(suffix, dtype=dtype))
    return FAN_OUT.format(opset=opset, t=t), inits


def readers(model, name):
    return [node.outputs[0].name for node in model.graph if any(v is not None and v.name == name for v in node.inputs)]


@pytest.mark.parametrize("opset", [9, 17])
def test_rebases_onto_the_first(opset):
    text, inits = fan_out(opset=opset)
    model = assert_fuses(RULE, text, inits, {"Conv": 1, "BatchNormalization": 3})
    first = next(node for node in model.graph if node.op_type == "BatchNormalization")
    assert readers(model, "c") == [first.outputs[0].name]
    assert sorted(readers(model, first.outputs[0].name)) == ["yb", "yc"]


def test_float16():
    text, inits = fan_out(t="float16", dtype=np.float16)
    model = assert_fuses(RULE, text, inits, {"Conv": 1, "BatchNormalization": 3}, dtype="float16")
    assert {v.numpy().dtype for v in model.graph.initializers.values()} == {np.dtype(np.float16)}


def fuse_group(text, inits, after, feeds=None):
    """The whole `fuse` group: to a fixed point, exactly `after`, same outputs, checker, lint, idempotent."""
    model = model_from_text(text, inits)
    original = model.clone()
    assert PassManager("fuse").run(model).converged
    assert op_histogram(model) == after, op_histogram(model)
    lint(model)
    onnx.checker.check_model(to_proto(model), full_check=True)
    assert_same_outputs(original, model, feeds, rtol=0.0, atol=1e-4)
    assert not any(r.modified for r in PassManager("fuse").run(model).history)
    return model


def test_the_first_folds_into_the_conv():
    text, inits = fan_out()
    fuse_group(text, inits, {"Conv": 1, "BatchNormalization": 2})


@pytest.mark.parametrize("producer, weight", [
    ("ConvTranspose<strides=[2,2]>(x, w)", (4, 6, 2, 2)),
    ("Gemm<transB=1>(x, w)", (6, 4)),
])
def test_other_producers(producer, weight):
    shape = "[1,6,12,12]" if producer.startswith("ConvTranspose") else "[2,6]"
    in_shape = "[1,4,6,6]" if producer.startswith("ConvTranspose") else "[2,4]"
    text = f"""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float{in_shape} x) => (float{shape} ya, float{shape} yb) {{
      c = {producer}
      ya = BatchNormalization(c, sa, ba, ma, va)
      yb = BatchNormalization(c, sb, bb, mb, vb)
    }}"""
    inits = {"w": weights(*weight), **named_bn("a"), **named_bn("b")}
    fuse_group(text, inits, {producer.split("<")[0]: 1, "BatchNormalization": 1})


def test_caffe2_scale_after_each_batchnorm_folds_first():
    """SpatialBN + Mul + Add per branch: the Mul/Add fold into their BatchNormalization before the rebase, else the
    first one's Mul/Add would be stranded after the Conv, which the siblings also read."""
    text = """
    <ir_version: 8, opset_import: ["" : 9]>
    g (float[1,4,6,6] x) => (float[1,6,6,6] ra, float[1,6,6,6] rb) {
      c = Conv(x, w)
      na = BatchNormalization(c, sa, ba, ma, va)
      ka = Mul(na, ka_w)
      ya = Add(ka, ka_b)
      ra = Relu(ya)
      nb = BatchNormalization(c, sb, bb, mb, vb)
      kb = Mul(nb, kb_w)
      yb = Add(kb, kb_b)
      rb = Relu(yb)
    }"""
    inits = {"w": weights(6, 4, 1, 1), **named_bn("a"), **named_bn("b")}
    for branch in "ab":
        inits[f"k{branch}_w"] = weights(6, 1, 1, low=0.5, high=1.5)
        inits[f"k{branch}_b"] = weights(6, 1, 1)
    fuse_group(text, inits, {"Conv": 1, "BatchNormalization": 1, "Relu": 2})


def test_declines_while_a_mul_waits_to_fold_into_the_first():
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1,4,6,6] x) => (float[1,6,6,6] ya, float[1,6,6,6] yb) {
      c = Conv(x, w)
      na = BatchNormalization(c, sa, ba, ma, va)
      ya = Mul(na, k)
      yb = BatchNormalization(c, sb, bb, mb, vb)
    }"""
    inits = {"w": weights(6, 4, 1, 1), "k": weights(6, 1, 1), **named_bn("a"), **named_bn("b")}
    assert_declines(RULE, text, inits, "Mul producing 'ya' after BatchNormalization producing 'na' folds into it first")


def test_first_in_graph_order_not_in_use_order():
    """The rebased node goes where the old one was, so it may only read a BatchNormalization placed before it."""
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1,4,6,6] x) => (float[1,6,6,6] ya, float[1,6,6,6] yb) {
      c = Conv(x, w)
      d = Conv(x, w)
      ya = BatchNormalization(d, sa, ba, ma, va)
      yb = BatchNormalization(c, sb, bb, mb, vb)
    }"""
    model = model_from_text(text, {"w": weights(6, 4, 1, 1), **named_bn("a"), **named_bn("b")})
    first = next(node for node in model.graph if node.op_type == "BatchNormalization")
    first.replace_input_with(0, next(iter(model.graph)).outputs[0])  # c's uses are now yb, then ya
    original = model.clone()
    assert run_pass(RULE, model)[0]
    assert readers(model, "c") == ["ya"] and readers(model, "ya") == ["yb"]
    assert_same_outputs(original, model, rtol=0.0, atol=1e-4)


def test_rounding_growth_near_the_limit_keeps_outputs():
    text, inits = fan_out()
    inits.update(sa=np.ones(6, np.float32), ma=np.zeros(6, np.float32), va=np.ones(6, np.float32),
                 ba=np.full(6, 200.0, np.float32))
    feeds = {"x": np.random.default_rng(2).standard_normal((1, 4, 6, 6)).astype(np.float32)}
    model = fuse_group(text, inits, {"Conv": 1, "BatchNormalization": 2}, feeds)
    assert len(readers(model, "c")) == 0  # the Conv now computes ya


def test_declines_rounding_growth_past_the_limit():
    text, inits = fan_out()
    inits.update(sa=np.ones(6, np.float32), ma=np.zeros(6, np.float32), va=np.ones(6, np.float32),
                 ba=np.full(6, 1000.0, np.float32))
    assert_declines(RULE, text, inits, "would grow the rounding error 1e+03× (limit 256×)")


def test_declines_a_zero_scale_in_the_first():
    text, inits = fan_out()
    inits["sa"][2] = 0.0
    assert_declines(RULE, text, inits, "would grow the rounding error inf×")


def test_the_first_itself_stays():
    text, inits = fan_out()
    modified, notes = run_pass(RULE, model_from_text(text, inits), explain=True)
    assert modified and notes == [f"{RULE} at node ya (BatchNormalization): it is the first BatchNormalization reading "
                                  "'c', the one the others rebase onto"]


def test_declines_another_reader():
    text, inits = fan_out()
    text = text.replace("yc = BatchNormalization<epsilon=0.01>(c, sc, bc, mc, vc)", "yc = Relu(c)")
    assert_declines(RULE, text, inits, "'c' is also read by Relu producing 'yc'")


def test_declines_a_single_reader():
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1,4,6,6] x) => (float[1,6,6,6] ya) {
      c = Conv(x, w)
      ya = BatchNormalization(c, sa, ba, ma, va)
    }"""
    assert_declines(RULE, text, {"w": weights(6, 4, 1, 1), **named_bn("a")}, "'c' has one reader, nothing to rebase")


def test_declines_a_producer_nothing_folds_into():
    text, inits = fan_out()
    text = text.replace("c = Conv<pads=[1,1,1,1]>(x, w, b)", "c = Relu(x)").replace("[1,4,6,6] x", "[1,6,6,6] x")
    assert_declines(RULE, text, inits, "its input is produced by Relu, not one of Conv, ConvTranspose, Gemm")


def test_declines_a_non_constant_weight():
    text, inits = fan_out()
    text = text.replace("(float[1,4,6,6] x)", "(float[1,4,6,6] x, float[6,4,3,3] w)")
    del inits["w"]
    assert_declines(RULE, text, inits, "the Conv weight is not constant, no BatchNormalization folds into it")


def test_declines_a_graph_output():
    text, inits = fan_out()
    text = text.replace("{t}[1,6,6,6] yc)".format(t="float"), "float[1,6,6,6] yc, float[1,6,6,6] c)")
    assert_declines(RULE, text, inits, "its input 'c' is a graph output")


def test_declines_a_sibling_in_training_mode():
    text, inits = fan_out(opset=15)
    text = text.replace("yc = BatchNormalization<epsilon=0.01>", "yc, rm, rv = BatchNormalization<training_mode=1>")
    assert_declines(RULE, text, inits, "BatchNormalization producing 'yc': BatchNormalization is in training mode")


def test_declines_non_constant_sibling_parameters():
    text, inits = fan_out()
    text = text.replace("(float[1,4,6,6] x)", "(float[1,4,6,6] x, float[6] mc)")
    del inits["mc"]
    assert_declines(RULE, text, inits, "BatchNormalization producing 'yc': its parameters are not all float constants")
