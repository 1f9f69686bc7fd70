"""Pooling and activations: QLinearAveragePool/GlobalAveragePool/Sigmoid/Softmax/LeakyRelu; Relu/Clip absorbed."""
from __future__ import annotations

from onnxopt.ir import Node
from onnxopt.quantization.handlers import Declined, HandlerContext, QuantSpec, float_activations, handler, is_const


@handler("AveragePool", "GlobalAveragePool", "Sigmoid", "Softmax", "LeakyRelu")
def unary(node: Node, ctx: HandlerContext) -> QuantSpec | Declined:
    """Input and output quantized with their own parameters."""
    declined = float_activations(node, (0,))
    if declined:
        return declined
    if len(node.outputs) != 1:
        return Declined("more than one output")
    return QuantSpec(activations=(0,))


@handler("HardSigmoid", "HardSwish")
def hard_activation(node: Node, ctx: HandlerContext) -> QuantSpec | Declined:
    """Stay float: ORT has no QDQ rule for them (neighbours still quantize their own inputs and outputs)."""
    return Declined(f"onnxruntime has no fused int8 {node.op_type}; Q/DQ around it would only add work")


@handler("Relu", "Clip")
def clamp(node: Node, ctx: HandlerContext) -> QuantSpec | Declined:
    """Absorbed into the producer's output range (asymmetric activations: zero point at qmin clamps like Relu)."""
    declined = float_activations(node, (0,))
    if declined:
        return declined
    if node.op_type == "Clip":
        low, high = _clip_bounds(node)
        if low is False:
            return Declined("Clip bounds are not constants")
        if (low is not None and low > 0) or (high is not None and high < 0):
            return Declined("Clip range excludes 0, so the quantized range cannot clamp it")
    return QuantSpec(outputs=(0,), absorbable=True)


def _clip_bounds(node: Node) -> tuple[float | None | bool, float | None | bool]:
    if len(node.inputs) == 1:  # opset < 11: attributes
        return node.attr("min", None), node.attr("max", None)
    bounds: list[float | None | bool] = []
    for i in (1, 2):
        value = node.inputs[i] if i < len(node.inputs) else None
        if value is None:
            bounds.append(None)
        elif not is_const(value):
            bounds.append(False)
        else:
            bounds.append(float(value.numpy()))
    return bounds[0], bounds[1]
