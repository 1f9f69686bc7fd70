"""Op handlers: `@handler("Conv", "ConvTranspose")` maps a node to a declarative QuantSpec, or declines.

Handlers describe, they do not mutate. A spec says which inputs are activations (read through
DequantizeLinear), which are weights (int8, with a channel axis), which is the bias (int32), which
outputs get a QuantizeLinear, and whether the outputs share input 0's parameters (data movement that
ONNX Runtime runs directly on int8). Placement follows ONNX Runtime's QDQ selectors, so every group
emitted here fuses into a QLinear* kernel (or drops its Q/DQ around a data-movement op).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

from onnx import TensorProto

from onnxopt.ir import Node, Value
from onnxopt.quantization.config import QuantConfig


@dataclass(frozen=True)
class WeightInput:
    """A constant input quantized to int8 symmetric; `axis` is its output-channel axis (None: per tensor only)."""

    index: int
    axis: int | None


@dataclass(frozen=True)
class BiasInput:
    """A constant input quantized to int32 with scale = scale(activation input) × scale(weight input)."""

    index: int
    activation: int = 0
    weight: int = 1


@dataclass(frozen=True)
class QuantSpec:
    """What to quantize around one node (see the module docstring)."""

    activations: tuple[int, ...] = ()
    weights: tuple[WeightInput, ...] = ()
    bias: BiasInput | None = None
    outputs: tuple[int, ...] = (0,)
    shares_input: bool = False
    absorbable: bool = False

    @property
    def is_data_movement(self) -> bool:
        """True for ops whose outputs reuse input 0's scale and zero point."""
        return self.shares_input


@dataclass(frozen=True)
class Declined:
    """A handler's reason for leaving a node in float."""

    reason: str


@dataclass(frozen=True)
class HandlerContext:
    """What handlers may consult besides the node: the settings and the model's opset."""

    config: QuantConfig
    opset: int


Handler = Callable[[Node, HandlerContext], Union[QuantSpec, Declined]]
_HANDLERS: dict[str, Handler] = {}


def handler(*op_types: str) -> Callable[[Handler], Handler]:
    """Register a function as the handler of the given ai.onnx op types."""

    def register(fn: Handler) -> Handler:
        for op_type in op_types:
            if op_type in _HANDLERS:
                raise ValueError(f"a quantization handler for {op_type} is already registered")
            _HANDLERS[op_type] = fn
        return fn

    return register


def spec_for(node: Node, ctx: HandlerContext) -> QuantSpec | Declined:
    """The node's spec from its handler, or why it stays float."""
    if node.domain not in ("", "ai.onnx"):
        return Declined(f"custom domain {node.domain!r} is never touched")
    fn = _HANDLERS.get(node.op_type)
    if fn is None:
        return Declined(f"no quantization rule for {node.op_type}")
    return fn(node, ctx)


def supported_ops() -> list[str]:
    """Every op type that has a handler, sorted."""
    return sorted(_HANDLERS)


# ---- small checks shared by the op families -----------------------------------------------------
def is_float(value: Value | None) -> bool:
    """True for a float32 tensor (the only type quantized)."""
    return value is not None and value.dtype == TensorProto.FLOAT


def is_const(value: Value | None) -> bool:
    """True when the value's data is known (an initializer that is not an overridable input)."""
    return value is not None and value.is_constant()


def float_activations(node: Node, indices: tuple[int, ...]) -> Declined | None:
    """Declined unless every listed input exists and is float32."""
    for i in indices:
        value = node.inputs[i] if i < len(node.inputs) else None
        if not is_float(value):
            what = "missing" if value is None else f"not float32 (type {value.dtype})"
            return Declined(f"input {i} is {what}")
    return None


from onnxopt.quantization.handlers import activation, compute, data_movement, elementwise  # noqa: E402,F401

__all__ = [
    "BiasInput", "Declined", "HandlerContext", "QuantSpec", "WeightInput",
    "float_activations", "handler", "is_const", "is_float", "spec_for", "supported_ops",
]
