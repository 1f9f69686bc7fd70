"""Data movement (Reshape, Transpose, MaxPool, …): outputs share input 0's parameters, so ORT drops the
Q/DQ around them and moves int8 data. Active only next to other quantized tensors (see plan.py).
"""
from __future__ import annotations

from onnxopt.ir import Node
from onnxopt.quantization.handlers import Declined, HandlerContext, QuantSpec, float_activations, handler, is_const

SHARED_OPS = (
    "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Split", "Slice", "Gather", "Expand", "Tile",
    "GatherElements",
)


@handler(*SHARED_OPS)
def data_movement(node: Node, ctx: HandlerContext) -> QuantSpec | Declined:
    """Input 0 and every output share one scale and zero point."""
    declined = float_activations(node, (0,))
    if declined:
        return declined
    if is_const(node.inputs[0]):
        return Declined("input 0 is a constant (a table lookup, not an activation)")
    return QuantSpec(activations=(0,), outputs=tuple(range(len(node.outputs))), shares_input=True)


@handler("MaxPool")
def max_pool(node: Node, ctx: HandlerContext) -> QuantSpec | Declined:
    """int8 MaxPool exists from opset 12; the Indices output keeps it float."""
    declined = float_activations(node, (0,))
    if declined:
        return declined
    if ctx.opset < 12:
        return Declined("int8 MaxPool needs opset 12")
    if len(node.outputs) > 1:
        return Declined("the Indices output is used")
    return QuantSpec(activations=(0,), shares_input=True)


@handler("Resize")
def resize(node: Node, ctx: HandlerContext) -> QuantSpec | Declined:
    """Nearest-neighbour Resize only: ORT keeps linear/cubic Resize float between Q/DQ."""
    declined = float_activations(node, (0,))
    if declined:
        return declined
    if node.attr("mode", "nearest") != "nearest":
        return Declined(f"onnxruntime fuses only nearest Resize, not {node.attr('mode')}")
    return QuantSpec(activations=(0,), shares_input=True)


@handler("Pad")
def pad(node: Node, ctx: HandlerContext) -> QuantSpec | Declined:
    """Stays float: ORT has no QDQ rule for Pad (fold it into the next Conv's pads instead)."""
    return Declined("onnxruntime has no fused int8 Pad")
