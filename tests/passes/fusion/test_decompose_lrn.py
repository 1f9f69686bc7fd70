"""decompose_lrn: LRN → x · exp(−β · log(Conv(x², banded α/size, bias))).

Tolerance: atol 1e-4 × max|output|, float32, against ORT's own LRN (4-D, odd sizes) or else the ONNX reference
implementation.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import onnxruntime as ort
import pytest

from onnxopt.ir import serialize
from onnxopt.passes.fusion.decompose_lrn import MAX_CHANNELS, channel_window_sum
from onnxopt.testing import model_from_text, op_histogram
from target_fusion_testing import assert_declines, assert_fuses, run_pass

RULE = "decompose_lrn"
TARGET = "ort-cpu"  # a fast LRN elsewhere (other runtimes, cuDNN): only the ORT CPU target decomposes it


def lrn(shape="1,8,5,6", attrs="size=5, alpha=0.001, beta=0.75, bias=1.0", opset=13, dtype="float", outputs=None):
    """ONNX text of a single LRN."""
    return f"""
    <ir_version: 8, opset_import: ["" : {opset}]>
    g ({dtype}[{shape}] x) => ({outputs or f"{dtype}[{shape}] y"}) {{
      y = LRN<{attrs}>(x)
    }}"""


def lrn_as_specified(x, size, alpha, beta, bias):
    """LRN in numpy, word for word from the ONNX operator specification."""
    square_sum = np.zeros_like(x, dtype=np.float64)
    channels = x.shape[1]
    for c in range(channels):
        first, last = max(0, c - (size - 1) // 2), min(channels - 1, c + -(-(size - 1) // 2))
        square_sum[:, c] = np.sum(x[:, first:last + 1].astype(np.float64) ** 2, axis=1)
    return (x / (bias + alpha / size * square_sum) ** beta).astype(x.dtype)


def feeds(shape, dtype=np.float32):
    """Inputs wide enough that the window sum dominates bias, so every term of the formula matters."""
    return {"x": (np.random.default_rng(0).standard_normal(shape) * 20).astype(dtype)}


@pytest.mark.parametrize("size", [1, 3, 5])
def test_lrn_becomes_conv_and_elementwise_ops(size):
    text = lrn(attrs=f"size={size}, alpha=0.001, beta=0.75, bias=2.0")
    model = assert_fuses(RULE, text, None, {"Mul": 3, "Conv": 1, "Log": 1, "Exp": 1}, feeds=feeds((1, 8, 5, 6)),
                         target=TARGET)
    conv = next(n for n in model.graph if n.op_type == "Conv")
    assert conv.inputs[1].const_value.shape == (8, 8, 1, 1)


@pytest.mark.parametrize("size", [2, 4])
@pytest.mark.parametrize("shape", [(2, 3, 7), (1, 8, 5, 6), (1, 6, 2, 3, 4)])
def test_matches_the_specification_where_ort_has_no_kernel(size, shape):
    # ORT's LRN runs only 4-D inputs with an odd size (and onnx.reference's LRN sums over the wrong axis)
    text = lrn(",".join(map(str, shape)), f"size={size}, alpha=0.001, beta=0.75, bias=2.0")
    model = model_from_text(text)
    x = feeds(shape)
    want = lrn_as_specified(x["x"], size, alpha=0.001, beta=0.75, bias=2.0)
    run_pass(RULE, model, TARGET)
    assert op_histogram(model) == Counter({"Mul": 3, "Conv": 1, "Log": 1, "Exp": 1})
    got = ort.InferenceSession(serialize(model), providers=["CPUExecutionProvider"]).run(None, x)[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * np.abs(want).max())


def test_the_specification_agrees_with_ort_where_ort_runs():
    model = model_from_text(lrn(attrs="size=5, alpha=0.001, beta=0.75, bias=2.0"))
    x = feeds((1, 8, 5, 6))
    got = ort.InferenceSession(serialize(model), providers=["CPUExecutionProvider"]).run(None, x)[0]
    np.testing.assert_allclose(lrn_as_specified(x["x"], 5, 0.001, 0.75, 2.0), got, rtol=1e-5)


def test_window_is_asymmetric_for_even_sizes_as_the_spec_says():
    # size 4: channels c-1 .. c+2 (floor((size-1)/2) before, ceil((size-1)/2) after)
    band = channel_window_sum(6, 4, 1.0, np.float32)
    assert band[2].tolist() == [0, 1, 1, 1, 1, 0]
    assert band[0].tolist() == [1, 1, 1, 0, 0, 0] and band[5].tolist() == [0, 0, 0, 0, 1, 1]


def test_double_input_keeps_its_type():
    model = model_from_text(lrn(dtype="double"))
    run_pass(RULE, model, TARGET)
    assert all(v.const_value.numpy().dtype == np.float64 for v in model.graph.initializers.values())


@pytest.mark.parametrize("text, reason", [
    (lrn(shape="4,8"), "rank ≥ 3"),
    (lrn(shape="1,C,5,6"), "the channel count is not static"),
    (lrn(shape=f"1,{MAX_CHANNELS + 1},2,2"), f"{MAX_CHANNELS + 1} channels"),
    (lrn(attrs="size=3, bias=0.0"), "bias ≤ 0"),
    (lrn(dtype="bfloat16", opset=18), "is bfloat16"),
    (lrn(opset=6), "opset"),
])
def test_declines(text, reason):
    assert_declines(RULE, text, None, reason, target=TARGET)


@pytest.mark.parametrize("target", ["onnx", "ort"])
def test_other_targets_keep_lrn(target):
    assert_declines(RULE, lrn(), None, "ort-cpu", target=target)
