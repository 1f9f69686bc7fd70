"""fuse_mish: x · tanh(softplus(x)) → Mish (opset ≥ 18)."""
from __future__ import annotations

import pytest

from target_fusion_testing import assert_declines, assert_fuses


def mish(opset=18, product="y = Mul(x, t)", outputs="float[2,3,8] y"):
    """ONNX text of Mish as torch exports it before opset 18."""
    return f"""
    <ir_version: 8, opset_import: ["" : {opset}]>
    g (float[2,3,8] x) => ({outputs}) {{
      sp = Softplus(x)
      t = Tanh(sp)
      {product}
    }}"""


@pytest.mark.parametrize("product", ["y = Mul(x, t)", "y = Mul(t, x)"])
def test_fuses(product):
    assert_fuses("fuse_mish", mish(product=product), None, {"Mish": 1})


@pytest.mark.parametrize("text, reason", [
    (mish(17), "needs opset >= 18, the model has 17"),
    (mish(outputs="float[2,3,8] y, float[2,3,8] sp"), "its output 'sp' is a graph output"),
    (mish(product="y = Mul(t, t)"), "not the same value as the other 'x'"),
])
def test_declines(text, reason):
    assert_declines("fuse_mish", text, None, reason)
