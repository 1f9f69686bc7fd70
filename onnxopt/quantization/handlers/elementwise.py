"""Add, Mul and Concat: every input an activation (constants quantized like activations) → QLinearAdd/Mul/Concat."""
from __future__ import annotations

from onnxopt.ir import Node
from onnxopt.quantization.handlers import Declined, HandlerContext, QuantSpec, float_activations, handler, is_const


@handler("Add", "Mul")
def binary(node: Node, ctx: HandlerContext) -> QuantSpec | Declined:
    """Both inputs and the output quantized, each with its own parameters."""
    declined = float_activations(node, (0, 1))
    if declined:
        return declined
    if all(is_const(v) for v in node.inputs):
        return Declined("both inputs are constants (fold them first)")
    return QuantSpec(activations=(0, 1))


@handler("Concat")
def concat(node: Node, ctx: HandlerContext) -> QuantSpec | Declined:
    """Every input quantized with its own parameters; QLinearConcat requantizes them to the output's."""
    indices = tuple(range(len(node.inputs)))
    declined = float_activations(node, indices)
    if declined:
        return declined
    if all(is_const(v) for v in node.inputs):
        return Declined("every input is a constant (fold them first)")
    return QuantSpec(activations=indices)
