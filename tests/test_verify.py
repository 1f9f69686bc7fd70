"""--verify: tolerance rules, bisection to the culprit pass application, --safe reruns without it."""
from __future__ import annotations

import math

import numpy as np
import pytest

from onnxopt import optimize
from onnxopt.errors import VerificationError
from onnxopt.passmanager import Pass, PassResult, register_pass
from onnxopt.testing import model_from_text, op_histogram
from onnxopt.verify import compare_outputs

MODEL = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[2, 8] x) => (float[2, 8] y) {
    a = Identity(x)
    b = Sigmoid(a)
    c = Neg(b)
    y = Abs(c)
}
"""


@register_pass
class _DropIdentity(Pass):
    """Identity(x) → x, correct (test pass)."""

    name = "test_verify_drop_identity"

    def call(self, model):
        for node in model.graph:
            if node.op_type == "Identity" and not node.outputs[0].is_graph_output():
                model.graph.replace_node_with(node, node.inputs[0])
                return PassResult(model, True)
        return PassResult(model, False)


@register_pass
class _SigmoidToTanh(Pass):
    """Sigmoid → Tanh, deliberately wrong (test pass)."""

    name = "test_verify_sigmoid_to_tanh"

    def call(self, model):
        for node in model.graph:
            if node.op_type == "Sigmoid":
                node.op_type = "Tanh"
                return PassResult(model, True)
        return PassResult(model, False)


PIPELINE = ["test_verify_drop_identity", "test_verify_sigmoid_to_tanh"]


def test_correct_pipeline_verifies():
    result = optimize(model_from_text(MODEL), ["test_verify_drop_identity"], verify=True)
    assert result.verification.ok and result.verification.samples == 3


def test_bisection_names_the_culprit_pass_and_node():
    with pytest.raises(VerificationError) as err:
        optimize(model_from_text(MODEL), PIPELINE, verify=True)
    message = str(err.value)
    assert "first bad pass application: test_verify_sigmoid_to_tanh" in message
    assert "test_verify_drop_identity" not in message.split("first bad")[1]


def test_safe_reruns_without_the_culprit():
    result = optimize(model_from_text(MODEL), PIPELINE, verify=True, safe=True)
    assert result.excluded_passes == ["test_verify_sigmoid_to_tanh"]
    assert result.verification.ok
    assert op_histogram(result.model) == {"Sigmoid": 1, "Neg": 1, "Abs": 1}


def _outputs(**arrays):
    return [dict(arrays)]


def test_float_tolerance_scales_with_magnitude():
    ref = np.array([1000.0, -2000.0], np.float32)
    near = ref + np.float32(0.1)  # 0.1 ≤ 1e-4 × 2000
    far = ref + np.float32(1.0)
    assert compare_outputs(_outputs(y=ref), _outputs(y=near), rtol=0).ok
    assert not compare_outputs(_outputs(y=ref), _outputs(y=far), rtol=0).ok


def test_integers_must_be_exact_and_nan_positions_equal():
    ints = np.array([1, 2, 3], np.int64)
    assert not compare_outputs(_outputs(y=ints), _outputs(y=ints + np.array([0, 0, 1]))).ok
    with_nan = np.array([1.0, np.nan], np.float32)
    moved_nan = np.array([np.nan, 1.0], np.float32)
    assert compare_outputs(_outputs(y=with_nan), _outputs(y=with_nan.copy())).ok
    report = compare_outputs(_outputs(y=with_nan), _outputs(y=moved_nan))
    assert not report.ok and "NaN" in report.checks[0].detail


def test_outputs_that_are_never_finite_are_named_as_unchecked():
    nan = np.full(3, np.nan, np.float32)
    report = compare_outputs(_outputs(y=nan), _outputs(y=nan.copy()))
    assert report.ok and report.unchecked == ["y"]
    assert "y is NaN or infinite everywhere on them" in report.summary() and "--data" in report.summary()
    partly = np.array([1.0, np.nan, 2.0], np.float32)
    assert compare_outputs(_outputs(y=partly), _outputs(y=partly.copy())).unchecked == []


def test_sqnr_mode_for_quantized_models():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal(1000).astype(np.float32)
    noisy = ref + 0.01 * rng.standard_normal(1000).astype(np.float32)  # ≈ 40 dB
    assert compare_outputs(_outputs(y=ref), _outputs(y=noisy), min_sqnr_db=30).ok
    report = compare_outputs(_outputs(y=ref), _outputs(y=noisy), min_sqnr_db=50)
    assert not report.ok and math.isfinite(report.checks[0].sqnr_db)


def test_verify_feeds_the_fixed_input_shape():
    model = model_from_text("""
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[N, 3, H, W] x) => (float[N, 3, H, W] y) { y = Relu(x) }""")
    result = optimize(model, ["fold"], input_shapes={"x": (1, 3, 8, 8)}, verify=True)
    assert result.verification.ok


def test_original_that_cannot_run_on_generated_inputs_asks_for_data():
    model = model_from_text("""
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[4] x, int64[1] n) => (float[4] y) { r = Reshape(x, n)  y = Identity(r) }""")
    with pytest.raises(VerificationError, match="give real inputs with --data DIR"):
        optimize(model, ["test_verify_drop_identity"], verify=True)
