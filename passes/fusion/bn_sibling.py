"""Several inference BatchNormalizations reading one Conv/ConvTranspose/Gemm output: the first one folds into the
producer once the others read its output instead (their parameters rebased), one BatchNormalization fewer.

The alternative, a copy of the producer per BatchNormalization so each copy absorbs one, trades a pass over the
tensor (2 flops per element) for a whole convolution (2·C_in·k² flops per element): rebasing removes work.
"""
from __future__ import annotations

import numpy as np

from onnxopt.ir import Node, Value
from onnxopt.passes.fusion._common import FLOAT_DTYPES, MIN_OPSET, affine_of_batchnorm, batchnorm_inference_reason
from onnxopt.rewrite import Rule
from onnxopt.rewrite.matcher import describe, node_label

# the producers a following inference BatchNormalization folds into (fuse_bn_into_conv, …_conv_transpose, …_gemm)
ABSORBERS = ("Conv", "ConvTranspose", "Gemm")
# The rebased BatchNormalizations read z = s·y + t, rounded at |z|; measured in y that rounding is |t/s| + |y|,
# against |y| ≈ |mean| + √var for y itself. Allowing 2⁸ times that costs at most 8 of float32's 24 bits.
MAX_ROUNDING_GROWTH = 256.0


class RebaseBnOnSibling(Rule):
    """BN_b(y), y = Conv|ConvTranspose|Gemm(…) read by BNs only, the first z = BN_a(y) → BN_b'(z), rebased."""

    name = "rebase_bn_on_sibling"
    min_opset = MIN_OPSET

    def pattern(self, op, y, scale, bias, mean, var):
        return op.BatchNormalization(y, scale, bias, mean, var)

    def check(self, m):
        first = _first_reader(m["y"])
        if isinstance(first, str):
            return m.fail(first)
        if first is m.root:
            return m.fail(f"it is the first BatchNormalization reading {m['y'].name!r}, the one the others rebase onto")
        pending = _pending_affine(first)
        if pending is not None:
            return m.fail(f"{node_label(pending)} after {node_label(first)} folds into it first")
        growth = _rounding_growth(first)
        if not growth <= MAX_ROUNDING_GROWTH:
            return m.fail(f"rebasing onto {node_label(first)} would grow the rounding error {growth:.3g}× "
                          f"(limit {MAX_ROUNDING_GROWTH:g}×)")
        scale, mean = _rebased(m, first)
        if not (np.all(np.isfinite(scale)) and np.all(np.isfinite(mean))):
            return m.fail(f"the rebased scale or mean overflows {scale.dtype}")
        return True

    def rewrite(self, op, m):
        first = _first_reader(m["y"])
        scale, mean = _rebased(m, first)
        return op.BatchNormalization(
            first.outputs[0], op.const(scale, name=m["scale"].name), m["bias"], op.const(mean, name=m["mean"].name),
            m["var"], **m.root.attrs,
        )


def _params(bn: Node) -> list[np.ndarray]:
    return [value.numpy() for value in bn.inputs[1:5]]


def _first_reader(y: Value) -> Node | str:
    """The first node in graph order reading y when every reader is a foldable BatchNormalization, else why not."""
    producer = y.producer()
    if producer is None or producer.op_type not in ABSORBERS or producer.domain not in ("", "ai.onnx"):
        return f"its input is {describe(y)}, not one of {', '.join(ABSORBERS)}"
    weight = producer.inputs[1]
    if weight is None or weight.numpy() is None:
        return f"the {producer.op_type} weight is not constant, no BatchNormalization folds into it"
    if y.is_graph_output():
        return f"its input {y.name!r} is a graph output"
    readers = y.consumers()
    if len(readers) < 2:
        return f"{y.name!r} has one reader, nothing to rebase"
    shapes = set()
    for reader in readers:
        reason = _unfoldable(reader, y)
        if reason:
            return reason
        shapes.update(array.shape for array in _params(reader))
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        return f"the BatchNormalizations reading {y.name!r} have parameter shapes {sorted(shapes)}, not one [C]"
    readers = set(readers)
    return next(node for node in producer.graph if node in readers)


def _unfoldable(bn: Node, y: Value) -> str:
    """Why this reader of y stops the BatchNormalizations reading y from folding into y's producer ('' if none)."""
    if bn.op_type != "BatchNormalization" or bn.domain not in ("", "ai.onnx"):
        return f"{y.name!r} is also read by {node_label(bn)}"
    if bn.graph is not y.producer().graph:
        return f"{y.name!r} is also read inside a subgraph, by {node_label(bn)}"
    if [index for node, index in y.uses() if node is bn] != [0] or len(bn.inputs) != 5:
        return f"{node_label(bn)} does not read {y.name!r} as its data input alone"
    reason = batchnorm_inference_reason(bn)
    if reason:
        return f"{node_label(bn)}: {reason}"
    if any(out.has_uses() or out.is_graph_output() for out in bn.outputs[1:]):
        return f"{node_label(bn)} has its running statistics read"
    for value in bn.inputs[1:]:
        array = None if value is None else value.numpy()
        if array is None or array.dtype not in FLOAT_DTYPES:
            return f"{node_label(bn)}: its parameters are not all float constants"
    return ""


def _pending_affine(bn: Node) -> Node | None:
    """The lone constant Mul/Add reading bn's output: it folds into bn (fuse_mul/add_into_batchnorm) as long as bn
    stays a BatchNormalization, but not into the producer once the rebased siblings share the producer's output."""
    readers = bn.outputs[0].consumers()
    if len(readers) == 1 and readers[0].op_type in ("Mul", "Add") and readers[0].domain in ("", "ai.onnx") \
            and any(value is not None and value.numpy() is not None for value in readers[0].inputs):
        return readers[0]
    return None


def _rounding_growth(first: Node) -> float:
    """How much rebasing onto `first` grows the rounding error of what the others compute (inf when it loses y)."""
    scale, bias, mean, var = _params(first)
    epsilon = float(first.attr("epsilon", 1e-5))
    s, t = affine_of_batchnorm(scale, bias, mean, var, epsilon)
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.abs(t / s) / (np.abs(mean.astype(np.float64)) + np.sqrt(var.astype(np.float64) + epsilon))
    return float(np.max(growth)) if np.all(np.isfinite(growth)) else float("inf")


def _rebased(m, first: Node) -> tuple[np.ndarray, np.ndarray]:
    """The root's scale and mean for reading z = s·y + t: (y − mean)·scale/√(var+ε) on y equals
    (z − (t + s·mean))·(scale/s)/√(var+ε) on z, so bias, var and ε stay as they are."""
    a_scale, a_bias, a_mean, a_var = _params(first)
    s, t = affine_of_batchnorm(a_scale, a_bias, a_mean, a_var, float(first.attr("epsilon", 1e-5)))
    scale, mean = m.const("scale"), m.const("mean")
    with np.errstate(over="ignore"):
        return (scale.astype(np.float64) / s).astype(scale.dtype), (t + s * mean.astype(np.float64)).astype(mean.dtype)
