"""Small float models built in the tests (a CNN, a transformer block) and ORT helpers for QDQ checks."""
from __future__ import annotations

import os
import tempfile
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort

from onnxopt.ir import Model, serialize
from onnxopt.testing import model_from_text

RNG = np.random.default_rng(11)


def weights(*shape: int, scale: float = 0.3, seed: int | None = None) -> np.ndarray:
    rng = RNG if seed is None else np.random.default_rng(seed)
    return (rng.standard_normal(shape) * scale).astype(np.float32)


CNN = """
<ir_version: 8, opset_import: ["" : {opset}]>
cnn (float[1, 3, 16, 16] x) => (float[1, 10] y) {{
  c1 = Conv<pads=[1, 1, 1, 1]>(x, W1, B1)
  r1 = Relu(c1)
  p1 = MaxPool<kernel_shape=[2, 2], strides=[2, 2]>(r1)
  c2 = Conv<pads=[1, 1, 1, 1]>(p1, W2, B2)
  r2 = Relu(c2)
  c3 = Conv<pads=[1, 1, 1, 1]>(r2, W3, B3)
  p1b = Conv(p1, W4, B4)
  a = Add(c3, p1b)
  r3 = Relu(a)
  g = GlobalAveragePool(r3)
  f = Flatten(g)
  y = Gemm<transB=1>(f, FC, FB)
}}
"""


def cnn(opset: int = 17) -> Model:
    """Conv-Relu-MaxPool-Conv-Relu-Conv + 1×1 shortcut, Add-Relu, GlobalAveragePool, Flatten, Gemm."""
    return model_from_text(CNN.format(opset=opset), {
        "W1": weights(8, 3, 3, 3), "B1": weights(8, scale=0.1), "W2": weights(16, 8, 3, 3, scale=0.2),
        "B2": weights(16, scale=0.1), "W3": weights(16, 16, 3, 3, scale=0.15), "B3": weights(16, scale=0.1),
        "W4": weights(16, 8, 1, 1), "B4": weights(16, scale=0.1), "FC": weights(10, 16), "FB": weights(10, scale=0.1),
    })


TRANSFORMER = """
<ir_version: 8, opset_import: ["" : 17]>
block (float[1, 8, 32] x) => (float[1, 8, 32] y) {
  q0 = MatMul(x, Wq)
  q = Add(q0, Bq)
  k0 = MatMul(x, Wk)
  k = Add(k0, Bk)
  v0 = MatMul(x, Wv)
  v = Add(v0, Bv)
  qh = Reshape(q, heads)
  qt = Transpose<perm=[0, 2, 1, 3]>(qh)
  kh = Reshape(k, heads)
  kt = Transpose<perm=[0, 2, 3, 1]>(kh)
  vh = Reshape(v, heads)
  vt = Transpose<perm=[0, 2, 1, 3]>(vh)
  s = MatMul(qt, kt)
  ss = Mul(s, scale)
  p = Softmax<axis=-1>(ss)
  o = MatMul(p, vt)
  ot = Transpose<perm=[0, 2, 1, 3]>(o)
  om = Reshape(ot, merged)
  proj0 = MatMul(om, Wo)
  proj = Add(proj0, Bo)
  h = Add(x, proj)
  n = LayerNormalization<axis=-1>(h, Ln, Lb)
  m0 = MatMul(n, W1)
  m1 = Add(m0, B1)
  m2 = Relu(m1)
  m3 = MatMul(m2, W2)
  m4 = Add(m3, B2)
  y = Add(h, m4)
}
"""


def transformer_block() -> Model:
    """One pre-LN-free attention block (4 heads of 8) with a ReLU MLP, as exporters write it."""
    d = 32
    return model_from_text(TRANSFORMER, {
        "Wq": weights(d, d, scale=0.2), "Bq": weights(d, scale=0.05), "Wk": weights(d, d, scale=0.2),
        "Bk": weights(d, scale=0.05), "Wv": weights(d, d, scale=0.2), "Bv": weights(d, scale=0.05),
        "Wo": weights(d, d, scale=0.2), "Bo": weights(d, scale=0.05),
        "heads": np.array([1, 8, 4, 8], np.int64), "merged": np.array([1, 8, 32], np.int64),
        "scale": np.array(1 / np.sqrt(8), np.float32),
        "Ln": np.ones(d, np.float32), "Lb": np.zeros(d, np.float32),
        "W1": weights(d, 64, scale=0.2), "B1": weights(64, scale=0.05), "W2": weights(64, d, scale=0.15),
        "B2": weights(d, scale=0.05),
    })


def samples(model: Model, count: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Normal random samples for every float input of the model."""
    rng = np.random.default_rng(seed)
    result = []
    for _ in range(count):
        result.append({
            v.name: rng.standard_normal([d if isinstance(d, int) else 1 for d in v.shape]).astype(np.float32)
            for v in model.graph.inputs if not v.is_initializer()
        })
    return result


def ort_optimized(model: Model, level: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL) -> onnx.ModelProto:
    """The model as ONNX Runtime's CPU provider rewrites it (QDQ groups fused into int8 kernels)."""
    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        options.optimized_model_filepath = os.path.join(tmp, "optimized.onnx")
        options.log_severity_level = 3
        ort.InferenceSession(serialize(model), options, providers=["CPUExecutionProvider"])
        return onnx.load(options.optimized_model_filepath)


def ort_ops(model: Model) -> Counter:
    """Op types (domain dropped) in ORT's optimized form of the model."""
    return Counter(node.op_type for node in ort_optimized(model).graph.node)


def stray_float_groups(model: Model, op_types: set[str]) -> list[str]:
    """Nodes of `op_types` that ORT left running in float between DequantizeLinear and QuantizeLinear."""
    optimized = ort_optimized(model)
    producers = {out: node for node in optimized.graph.node for out in node.output}
    stray = []
    for node in optimized.graph.node:
        if node.op_type in op_types and any(
            producers.get(i) is not None and producers[i].op_type == "DequantizeLinear" for i in node.input
        ):
            stray.append(node.name)
    return stray


def run(model: Model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(serialize(model), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def sqnr(reference: np.ndarray, actual: np.ndarray) -> float:
    noise = float(np.sum((reference.astype(np.float64) - actual) ** 2))
    return np.inf if noise == 0 else 10 * np.log10(float(np.sum(reference.astype(np.float64) ** 2)) / noise)
