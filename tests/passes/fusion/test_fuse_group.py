"""The `fuse` group as a whole: a mixed model to a fixed point, idempotence, --explain, and speed on a large model."""
from __future__ import annotations

import time

import numpy as np
import onnx

from fusion_testing import bn_params, weights
from onnxopt.ir import Graph, Model, Node, Tensor, Value, lint, to_proto
from onnxopt.passmanager import LintAfterEachPass, PassContext, PassManager, group_members, make_pass
from onnxopt.testing import assert_same_outputs, model_from_text, op_histogram

MIXED = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[1,3,8,8] x) => (float[1,5] y) {
  p = Pad(x, pads)
  c = Conv(p, w1)
  m = Mul(c, s1)
  a = Add(m, t1)
  r = Relu(a)
  q = Pad(r, pads, ninf)
  mp = MaxPool<kernel_shape=[3,3], strides=[2,2]>(q)
  d = ConvTranspose<strides=[2,2]>(mp, w2, b2)
  n = BatchNormalization(d, scale, bias, mean, var)
  f = Flatten(n)
  k = MatMul(f, tw)
  z = Add(k, c3)
  y = BatchNormalization(z, scale5, bias5, mean5, var5)
}"""


def mixed_model() -> Model:
    bn5 = {f"{k}5": v for k, v in bn_params(5).items()}
    inits = {
        "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "ninf": np.array(-np.inf, np.float32),
        "w1": weights(4, 3, 3, 3), "s1": weights(4, 1, 1, low=0.5, high=2), "t1": weights(1, 4, 1, 1),
        "w2": weights(4, 2, 2, 2), "b2": weights(2), **bn_params(2), "tw": weights(128, 5), "c3": weights(5), **bn5,
    }
    inits["tw"] = inits["tw"].T.copy()
    text = MIXED.replace("k = MatMul(f, tw)", "tt = Transpose(tw)\n  k = MatMul(f, tt)")
    return model_from_text(text, inits)


def test_mixed_model_reaches_a_fixed_point():
    model = mixed_model()
    original = model.clone()
    result = PassManager("fuse", instruments=[LintAfterEachPass()]).run(model)
    assert result.converged
    assert op_histogram(model) == {"Conv": 1, "Relu": 1, "MaxPool": 1, "ConvTranspose": 1, "Flatten": 1, "Gemm": 1}
    fired = {r.name for r in result.history if r.modified}
    assert fired == {
        "fuse_pad_into_conv", "fuse_pad_into_pool", "fuse_mul_into_conv", "fuse_add_into_conv",
        "fuse_bn_into_conv_transpose", "fuse_transpose_into_matmul_weight", "fuse_matmul_add_into_gemm",
        "fuse_bn_into_gemm",
    }
    onnx.checker.check_model(to_proto(model), full_check=True)
    assert_same_outputs(original, model, rtol=0.0, atol=1e-4)
    again = PassManager("fuse").run(model)
    assert not any(r.modified for r in again.history)


def test_explain_through_the_pass_manager():
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1,4,6,6] x) => (float[1,4,6,6] y) {
      r = Relu(x)
      y = BatchNormalization(r, scale, bias, mean, var)
    }"""
    model = model_from_text(text, bn_params(4))
    context = PassContext(explain=frozenset({"fuse_bn_into_conv"}))
    PassManager("fuse", context=context).run(model)
    assert context.explanations == [
        "fuse_bn_into_conv at node y (BatchNormalization): input 0 is produced by Relu, not Conv"]
    PassManager("fuse", context=context).run(model)
    assert len(context.explanations) == 1  # said once, however often the pass runs


def conv_bn_relu_chain(blocks: int) -> Model:
    """x → (Conv → BatchNormalization → Relu) × blocks, built directly in the IR."""
    graph = Graph("chain")
    x = graph.add_input(Value("x"))
    x.set_type(onnx.TensorProto.FLOAT, (1, 2, 4, 4))

    def init(name: str, array: np.ndarray) -> Value:
        return graph.add_initializer(Value(name, const_value=Tensor.from_array(array)))

    w = init("w", np.full((2, 2, 1, 1), 0.5, np.float32))
    params = [init(name, np.ones(2, np.float32)) for name in ("scale", "bias", "mean", "var")]
    nodes, value = [], x
    for _ in range(blocks):
        conv = Node("Conv", [value, w])
        bn = Node("BatchNormalization", [conv.outputs[0], *params])
        relu = Node("Relu", [bn.outputs[0]])
        nodes += [conv, bn, relu]
        value = relu.outputs[0]
    graph.append(nodes)
    graph.add_output(value)
    return Model(graph, {"": 17})


def test_large_model_is_linear():
    """5,000 fusions in a 15,000-node model (a 50,000-node one takes ~6 s on a dev box; see the engine tests)."""
    model = conv_bn_relu_chain(5_000)
    start = time.perf_counter()
    for name in group_members("fuse"):
        make_pass(name, PassContext()).call(model)
    elapsed = time.perf_counter() - start
    assert op_histogram(model) == {"Conv": 5_000, "Relu": 5_000}
    lint(model)
    assert elapsed < 20, elapsed
