"""`--target ort` models load and agree on the CUDA provider: run where it is available, skipped elsewhere."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from onnxopt.ir import serialize
from onnxopt.pipeline import optimize
from onnxopt.testing import model_from_text, op_histogram

pytestmark = pytest.mark.skipif("CUDAExecutionProvider" not in ort.get_available_providers(),
                                reason="this onnxruntime build has no CUDAExecutionProvider")

CONV_ACTIVATIONS = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[1, 3, 8, 8] x) => (float[1, 4, 8, 8] y) {
  c = Conv<pads=[1, 1, 1, 1]>(x, W, B)
  h = HardSigmoid<alpha=0.2, beta=0.5>(c)
  d = Conv<pads=[1, 1, 1, 1]>(h, W2, B2)
  y = Relu(d)
}
"""


def test_target_ort_runs_on_cuda_like_on_cpu():
    rng = np.random.default_rng(0)
    inits = {"W": rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "B": np.zeros(4, np.float32),
             "W2": rng.standard_normal((4, 4, 3, 3)).astype(np.float32), "B2": np.zeros(4, np.float32)}
    model = optimize(model_from_text(CONV_ACTIVATIONS, inits), target="ort").model
    assert "com.microsoft::FusedConv" not in op_histogram(model)  # CUDA's FusedConv refuses HardSigmoid
    data = serialize(model)
    x = {"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)}
    cuda = ort.InferenceSession(data, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    cpu = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(cuda.run(None, x)[0], cpu.run(None, x)[0], rtol=1e-3, atol=1e-3)
