"""ort_nchwc_layout: Conv/pool chains → com.microsoft.nchwc kernels by ORT's NchwcTransformer; `--target ort-cpu`.

Tolerance: outputs match the original in ONNX Runtime (its optimizations off) within atol = 1e-4 × max|output|
(the blocked kernels sum in another order).
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest

import onnxopt
from onnxopt.ir import serialize, to_proto
from onnxopt.passes.bridge.ort_nchwc import BLOCK_KEY, NCHWC_DOMAIN, nchwc_block_size
from onnxopt.passmanager import PassContext, make_pass
from onnxopt.pipeline import portability
from onnxopt.testing import assert_same_outputs, model_from_text, op_histogram

pytestmark = pytest.mark.skipif(nchwc_block_size() < 2, reason="ONNX Runtime has no NCHWc kernels on this CPU")

RNG = np.random.default_rng(0)

CONV_NET = """
<ir_version: 8, opset_import: ["" : 13]>
g (float[1,3,16,16] x) => (float[1,32,1,1] y) {
  a = Conv<pads=[1,1,1,1]>(x, w1, b1)
  r = Relu(a)
  c = Conv<pads=[1,1,1,1]>(r, w2, b2)
  s = Add(c, r)
  p = MaxPool<kernel_shape=[2,2], strides=[2,2]>(s)
  y = GlobalAveragePool(p)
}"""


def conv_net():
    inits = {"w1": RNG.uniform(-1, 1, (32, 3, 3, 3)), "b1": RNG.uniform(-1, 1, 32),
             "w2": RNG.uniform(-0.2, 0.2, (32, 32, 3, 3)), "b2": RNG.uniform(-1, 1, 32)}
    return model_from_text(CONV_NET, {k: v.astype(np.float32) for k, v in inits.items()})


def run_layout(model) -> bool:
    return make_pass("ort_nchwc_layout", PassContext(target="ort")).call(model).modified


def test_conv_chain_runs_in_the_blocked_layout():
    model = conv_net()
    original = model.clone()
    assert run_layout(model)
    ops = op_histogram(model)
    assert ops[f"{NCHWC_DOMAIN}::Conv"] == 2 and ops[f"{NCHWC_DOMAIN}::MaxPool"] == 1
    assert "Conv" not in ops and "Relu" not in ops and "Add" not in ops  # folded into the blocked Convs
    assert_same_outputs(original, model, rtol=0.0, atol=1e-4)
    onnx.checker.check_model(to_proto(model))
    assert model.metadata_props[BLOCK_KEY] == str(nchwc_block_size())
    assert portability(model) == "onnxruntime-cpu"
    assert [v.name for v in model.graph.outputs] == ["y"]


def test_second_run_changes_nothing():
    model = conv_net()
    assert run_layout(model)
    assert not run_layout(model)


BRANCHES = """
<ir_version: 8, opset_import: ["" : 13]>
g (float[1,8,16,16] x) => (float[1,16,16,16] y, float[1,16,16,16] z, float[1,16,8,8] p) {
  a = Conv<pads=[1,1,1,1]>(x, w1)
  r = Relu(a)
  b = Conv<pads=[1,1,1,1]>(r, w2)
  c = Conv<pads=[1,1,1,1]>(r, w3)
  d = Conv<pads=[1,1,1,1]>(r, w4)
  y = Sigmoid(b)
  z = Tanh(c)
  p = MaxPool<kernel_shape=[2,2], strides=[2,2]>(d)
}"""


def test_every_run_writes_the_same_bytes():
    # ORT emits this graph in hash-map order and numbers the names it makes up in that order: left as it is, most
    # runs in one process differ from the one before
    shapes = {"w1": (16, 8, 3, 3), "w2": (16, 16, 3, 3), "w3": (16, 16, 3, 3), "w4": (16, 16, 3, 3)}
    model = model_from_text(BRANCHES, {k: RNG.uniform(-1, 1, s).astype(np.float32) for k, s in shapes.items()})
    written = set()
    for _ in range(12):
        laid_out = model.clone()
        assert run_layout(laid_out)
        written.add(serialize(laid_out))
    assert len(written) == 1
    assert_same_outputs(model, laid_out, rtol=0.0, atol=1e-4)
    assert [v.name for v in laid_out.graph.inputs] == ["x"]
    assert [v.name for v in laid_out.graph.outputs] == ["y", "z", "p"]


def test_only_the_layout_changes():
    # beside the convolution: patterns ORT's other optimizers rewrite (MatMul+Add → Gemm, Identity, Slices → Split)
    model = model_from_text("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1,16,8,8] x, float[4,8] m) => (float[1,16,8,8] y, float[4,8] z, float[1,8,8,8] s1, float[1,8,8,8] s2) {
      c = Conv<pads=[1,1,1,1]>(x, w)
      y = Relu(c)
      i = Identity(m)
      p = MatMul(i, wm)
      z = Add(p, bm)
      s1 = Slice(y, zero, eight, one)
      s2 = Slice(y, eight, sixteen, one)
    }""", {"w": RNG.uniform(-1, 1, (16, 16, 3, 3)).astype(np.float32), "wm": np.ones((8, 8), np.float32),
           "bm": np.ones(8, np.float32), "zero": np.array([0]), "eight": np.array([8]),
           "sixteen": np.array([16]), "one": np.array([1])})
    original = model.clone()
    assert run_layout(model)
    ops = op_histogram(model)
    assert {op: n for op, n in ops.items() if NCHWC_DOMAIN not in op} == {"MatMul": 1, "Add": 1, "Identity": 1,
                                                                           "Slice": 2}
    assert_same_outputs(original, model, rtol=0.0, atol=1e-4)


BRANCH = """{name} () => (float[1,16,8,8] o) {{
        c = Conv<pads=[1,1,1,1]>(x, w)
        a = Slice(c, zero, eight, one)
        b = Slice(c, eight, sixteen, one)
        o = Concat<axis=1>(b, a)
    }}"""
IF_MODEL = f"""
<ir_version: 8, opset_import: ["" : 13]>
g (bool flag, float[1,16,8,8] x) => (float[1,16,8,8] y) {{
  y = If(flag) <then_branch = {BRANCH.format(name="then_g")}, else_branch = {BRANCH.format(name="else_g")}>
}}"""


def if_model():
    return model_from_text(IF_MODEL, {"w": RNG.uniform(-1, 1, (16, 16, 3, 3)).astype(np.float32),
                                      "zero": np.array([0]), "eight": np.array([8]), "sixteen": np.array([16]),
                                      "one": np.array([1])})


def test_convolutions_in_branches_stay_in_nchw():
    # ORT lays out only convolutions whose weights are the subgraph's own: these read the outer graph's
    model = if_model()
    assert not run_layout(model)
    assert op_histogram(model) == {"If": 1, "Conv": 2, "Slice": 4, "Concat": 2}


def test_model_without_conv_is_left_alone():
    model = model_from_text("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[2,8] x) => (float[2,4] y) { y = MatMul(x, w) }""", {"w": np.ones((8, 4), np.float32)})
    assert not run_layout(model)
    assert op_histogram(model) == {"MatMul": 1}


def test_conv_the_transformer_declines_is_left_alone():
    # a 1-D convolution has no blocked kernel
    model = model_from_text("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1,16,32] x) => (float[1,16,30] y) { y = Conv(x, w) }""", {"w": np.ones((16, 16, 3), np.float32)})
    assert not run_layout(model)
    assert op_histogram(model) == {"Conv": 1} and BLOCK_KEY not in model.metadata_props


def test_target_ort_cpu_is_ort_plus_the_layout():
    model = conv_net()
    result = onnxopt.optimize(model, target="ort-cpu")
    assert result.stats["ort_nchwc_layout"].changed == 1
    assert result.model.metadata_props["onnxopt.pipeline"].endswith(";target=ort-cpu")
    assert result.model.metadata_props["onnxopt.portability"] == "onnxruntime-cpu"
    assert_same_outputs(model, result.model, rtol=0.0, atol=1e-4)
    portable = onnxopt.optimize(model, target="ort").model
    assert not any(node.domain == NCHWC_DOMAIN for node in portable.graph)


def test_block_size_is_a_vector_width():
    assert nchwc_block_size() in (4, 8, 16, 32)
