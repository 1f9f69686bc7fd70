"""fuse_mul_into_batchnorm and fuse_add_into_batchnorm: a per-channel affine after a BatchNormalization (Caffe2's
SpatialBN + scale exports) folds into its scale and bias. Tolerance: assert_fuses' (float32 atol 1e-4 × output scale)."""
from __future__ import annotations

import pytest

from fusion_testing import assert_declines, assert_fuses, bn_params, weights
from onnxopt.passmanager import PassManager
from onnxopt.testing import assert_same_outputs, model_from_text, op_histogram

BN_THEN = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[1, 4, 5, 5] x) => (float[1, 4, 5, 5] y) {{
  n = BatchNormalization{attrs}(x, scale, bias, mean, var)
  y = {op}({lhs}, {rhs})
}}"""


def bn_then(op, k_shape, swap=False, attrs=""):
    lhs, rhs = ("k", "n") if swap else ("n", "k")
    return BN_THEN.format(op=op, lhs=lhs, rhs=rhs, attrs=attrs), {**bn_params(4), "k": weights(*k_shape, low=0.5, high=1.5)}


@pytest.mark.parametrize("rule, op", [("fuse_mul_into_batchnorm", "Mul"), ("fuse_add_into_batchnorm", "Add")])
@pytest.mark.parametrize("k_shape, swap", [((4, 1, 1), False), ((1, 4, 1, 1), True), ((), False), ((1,), True)])
def test_fuses(rule, op, k_shape, swap):
    text, inits = bn_then(op, k_shape, swap)
    assert_fuses(rule, text, inits, {"BatchNormalization": 1})


@pytest.mark.parametrize("rule, op", [("fuse_mul_into_batchnorm", "Mul"), ("fuse_add_into_batchnorm", "Add")])
def test_declines_a_constant_that_is_not_per_channel(rule, op):
    text, inits = bn_then(op, (1, 1, 1, 5))
    assert_declines(rule, text, inits, "is not per-channel")


def test_declines_training_mode():
    text, inits = bn_then("Mul", (4, 1, 1), attrs="<training_mode = 1>")
    text = text.replace("n = BatchNormalization<training_mode = 1>(x, scale, bias, mean, var)",
                        "n, rm, rv = BatchNormalization<training_mode = 1>(x, scale, bias, mean, var)")
    model = model_from_text(text, inits)
    assert not PassManager(["fuse_mul_into_batchnorm"]).run(model).stats["fuse_mul_into_batchnorm"].changed


def test_declines_a_non_constant_multiplier():
    text = BN_THEN.format(op="Mul", lhs="n", rhs="k", attrs="").replace(
        "(float[1, 4, 5, 5] x)", "(float[1, 4, 5, 5] x, float[4, 1, 1] k)")
    assert_declines("fuse_mul_into_batchnorm", text, bn_params(4), "not constant")


def test_declines_a_shared_batchnorm_output():
    text, inits = bn_then("Mul", (4, 1, 1))
    text = text.replace("=> (float[1, 4, 5, 5] y)", "=> (float[1, 4, 5, 5] y, float[1, 4, 5, 5] n)")
    assert_declines("fuse_mul_into_batchnorm", text, inits, "")


def test_caffe2_spatialbn_scale_chain_becomes_one_batchnorm():
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1, 4, 5, 5] x) => (float[1, 4, 5, 5] y) {
      n = BatchNormalization(x, scale, bias, mean, var)
      m = Mul(n, k)
      y = Add(m, d)
    }"""
    model = model_from_text(text, {**bn_params(4), "k": weights(4, 1, 1), "d": weights(4, 1, 1)})
    original = model.clone()
    result = PassManager(["fuse"]).run(model)
    assert op_histogram(result.model) == {"BatchNormalization": 1}
    assert_same_outputs(original, result.model)
