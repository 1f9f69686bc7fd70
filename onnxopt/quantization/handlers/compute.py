"""Conv, MatMul and Gemm: activation × int8 weight (+ int32 bias) → QLinearConv / QLinearMatMul / QGemm."""
from __future__ import annotations

from onnxopt.ir import Node
from onnxopt.quantization.handlers import (
    BiasInput, Declined, HandlerContext, QuantSpec, WeightInput, float_activations, handler, is_const, is_float,
)


@handler("Conv")
def conv(node: Node, ctx: HandlerContext) -> QuantSpec | Declined:
    """X activation, W int8 per output channel (axis 0), B int32."""
    bias = _weight_and_bias(node, "the weight")
    if isinstance(bias, Declined):
        return bias
    return QuantSpec(activations=(0,), weights=(WeightInput(1, 0),), bias=bias)


@handler("ConvTranspose")
def conv_transpose(node: Node, ctx: HandlerContext) -> QuantSpec | Declined:
    """X activation, W int8 per output channel (axis 1, group 1 only), B int32 — for providers that fuse it."""
    if ctx.config.provider == "cpu":
        # ORT's CPU QDQ selectors have no ConvTranspose rule: the Q/DQ pairs would run as overhead.
        return Declined("onnxruntime's CPU provider has no fused int8 ConvTranspose")
    bias = _weight_and_bias(node, "the weight")
    if isinstance(bias, Declined):
        return bias
    axis = 1 if node.attr("group", 1) == 1 else None
    return QuantSpec(activations=(0,), weights=(WeightInput(1, axis),), bias=bias)


@handler("MatMul")
def matmul(node: Node, ctx: HandlerContext) -> QuantSpec | Declined:
    """A activation; B an int8 weight (per column when 2-D) or a second activation (attention)."""
    declined = float_activations(node, (0, 1))
    if declined:
        return declined
    b = node.inputs[1]
    if is_const(b):
        # QLinearMatMul takes per-column scales for a 2-D B only
        axis = 1 if len(b.const_value.shape) == 2 else None
        return QuantSpec(activations=(0,), weights=(WeightInput(1, axis),))
    return QuantSpec(activations=(0, 1))


@handler("Gemm")
def gemm(node: Node, ctx: HandlerContext) -> QuantSpec | Declined:
    """A activation, B int8 per output column, C int32 (QGemm needs beta = 1 with a bias)."""
    bias = _weight_and_bias(node, "B")
    if isinstance(bias, Declined):
        return bias
    if bias is not None:
        if node.attr("beta", 1.0) != 1.0:
            return Declined("QGemm needs beta = 1 when C is present")
        c = node.inputs[2].const_value
        if len(c.shape) > 1 and any(d != 1 for d in c.shape[:-1]):
            return Declined(f"C of shape {list(c.shape)} is not a per-column bias")
    axis = 0 if node.attr("transB", 0) else 1
    return QuantSpec(activations=(0,), weights=(WeightInput(1, axis),), bias=bias)


def _weight_and_bias(node: Node, weight: str) -> BiasInput | Declined | None:
    """Checks shared by Conv, ConvTranspose and Gemm: float inputs, a constant weight (input 1), the bias (input 2)."""
    declined = float_activations(node, (0, 1))
    if declined:
        return declined
    if not is_const(node.inputs[1]):
        return Declined(f"{weight} is not a constant")
    return _bias(node, 2)


def _bias(node: Node, index: int) -> BiasInput | Declined | None:
    value = node.inputs[index] if index < len(node.inputs) else None
    if value is None:
        return None
    if not is_float(value) or not is_const(value):
        return Declined("the bias is not a float32 constant")
    return BiasInput(index)
