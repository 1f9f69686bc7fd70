"""Helpers shared by the cleanup passes: trusted type facts, constant inputs, bypassing a node safely."""
from __future__ import annotations

import logging

from onnx import TypeProto

from onnxopt.ir import Model, Node, PassTypes, Value
from onnxopt.ir.constants import constant_data as const  # noqa: F401  (re-exported for the passes)
from onnxopt.ir.value import Dim

logger = logging.getLogger(__name__)

STANDARD_DOMAINS = ("", "ai.onnx")


def is_standard(node: Node) -> bool:
    """True for an operator of the default ONNX domain."""
    return node.domain in STANDARD_DOMAINS


class Facts:
    """Type facts a pass may trust: shapes from onnx inference (an earlier one's settled types, else one inference on
    the first question they do not answer), and constant data.

    Declared shapes can be wrong (graph outputs are, in real exports) and onnx inference does not override a
    declared shape: it propagates it to everything downstream. So inference runs on a copy with every declared
    shape removed (value_info, graph outputs, subgraph inputs, whose shapes may change per loop iteration);
    only root graph inputs, the model's interface that runtimes enforce, keep theirs. Declared element types are
    trusted: runtimes refuse models whose declared and actual element types differ.
    """

    def __init__(self, model: Model) -> None:
        self.model = model
        self.opset = model.opset
        self._types = PassTypes(model)

    def _inferred_type(self, value: Value) -> TypeProto | None:
        return self._types.get(value)

    def shape(self, value: Value | None) -> tuple[Dim, ...] | None:
        """The value's dims (int, symbol or None each), or None when its rank is not known for sure."""
        if value is None:
            return None
        if value.const_value is not None and value.is_constant():
            return value.const_value.shape
        graph = value.graph
        if graph is not None and value in graph.input_set:
            return value.shape if graph.parent is None else None
        inferred = self._inferred_type(value)
        if inferred is None or not inferred.HasField("tensor_type") or not inferred.tensor_type.HasField("shape"):
            return None
        return tuple(
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in inferred.tensor_type.shape.dim
        )

    def rank(self, value: Value | None) -> int | None:
        """The value's rank, or None when unknown."""
        shape = self.shape(value)
        return None if shape is None else len(shape)

    def dtype(self, value: Value | None) -> int | None:
        """The value's ONNX element type, or None when unknown."""
        if value is None:
            return None
        if value.dtype is not None:
            return value.dtype
        inferred = self._inferred_type(value)
        if inferred is None or not inferred.HasField("tensor_type"):
            return None
        return inferred.tensor_type.elem_type or None


def const_ints(value: Value | None) -> list[int] | None:
    """A constant integer tensor as a flat list of ints, or None."""
    data = const(value)
    if data is None or data.dtype.kind not in "iu":
        return None
    return [int(x) for x in data.reshape(-1)]


def input_at(node: Node, index: int) -> Value | None:
    """The node's input `index`, or None when it is omitted or absent."""
    return node.inputs[index] if index < len(node.inputs) else None


def axes_of(node: Node, input_index: int) -> list[int] | None:
    """Axes given as the `axes` attribute (older opsets) or as a constant input (newer ones); None if unknown."""
    if "axes" in node.attrs:
        return list(node.attr("axes"))
    return const_ints(input_at(node, input_index))


def can_bypass(out: Value, value: Value) -> bool:
    """True when readers of `out` can read `value` instead without an Identity keeping a graph output's name.

    A graph output can be taken over only by a value this graph's nodes produce (it is then renamed);
    graph inputs, initializers, outer-scope values and values already listed as outputs cannot.
    """
    graph = out.graph
    if graph is None or out not in graph.output_set:
        return True
    return value.graph is graph and value.producer() is not None and value not in graph.output_set


def only_feeds(value: Value, node: Node) -> bool:
    """True when `value` is read by `node` alone (in one or more inputs) and is not a graph output."""
    if value.is_graph_output():
        return False
    return all(user is node for user, _ in value.iter_uses())
