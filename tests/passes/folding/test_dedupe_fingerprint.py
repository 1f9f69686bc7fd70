"""deduplicate_initializers compares data in full: a shared fingerprint alone never merges two weights."""
from __future__ import annotations

import numpy as np

from onnxopt.ir import Tensor
from onnxopt.passmanager import PassManager
from onnxopt.testing import assert_same_outputs, model_from_text

MODEL = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[10000] x) => (float[10000] y) {
    a = Add(x, w1)
    y = Add(a, w2)
}
"""


def test_tensors_differing_between_sampled_elements_share_a_fingerprint_but_stay_apart():
    w1 = np.zeros(10000, np.float32)
    w2 = w1.copy()
    w2[1] = 1.0  # the fingerprint samples every second element here: index 1 is not seen
    assert Tensor.from_array(w1).fingerprint() == Tensor.from_array(w2).fingerprint()
    model = model_from_text(MODEL, {"w1": w1, "w2": w2})
    original = model.clone()
    result = PassManager(["deduplicate_initializers"]).run(model)
    assert len(result.model.graph.initializers) == 2
    assert_same_outputs(original, result.model)


def test_equal_tensors_are_shared():
    w = np.arange(10000, dtype=np.float32)
    model = model_from_text(MODEL, {"w1": w, "w2": w.copy()})
    result = PassManager(["deduplicate_initializers"]).run(model)
    assert len(result.model.graph.initializers) == 1
