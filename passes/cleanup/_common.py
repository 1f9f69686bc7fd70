"""Helpers shared by the cleanup passes: trusted type facts, constant inputs, bypassing a node safely."""
from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from onnxopt.ir import Model, Node, Value, infer_shapes
from onnxopt.ir.value import Dim

STANDARD_DOMAINS = ("", "ai.onnx")


def is_standard(node: Node) -> bool:
    """True for an operator of the default ONNX domain."""
    return node.domain in STANDARD_DOMAINS


class Facts:
    """Type facts a pass may trust: inferred types (inference runs once, on first need) and constant data.

    Declared shapes of graph outputs can be wrong and inference does not override them, and a subgraph input's
    declared shape need not hold on every loop iteration, so neither shape is trusted; root graph inputs are the
    model's interface (runtimes enforce them). Element types are trusted everywhere: runtimes reject a model
    whose declared and actual element types differ.
    """

    def __init__(self, model: Model) -> None:
        self.model = model
        self.opset = model.opset
        self._inferred = False

    def _trusted(self, value: Value, for_shape: bool) -> bool:
        if value.const_value is not None and value.is_constant():
            return True
        graph = value.graph
        if graph is None:
            return False
        if value in graph.input_set:
            return graph.parent is None or not for_shape
        if for_shape and value in graph.output_set:
            return False
        if not self._inferred:
            self._inferred = True
            infer_shapes(self.model)
        return True

    def shape(self, value: Value | None) -> tuple[Dim, ...] | None:
        """The value's dims (int, symbol or None each), or None when its rank is not known for sure."""
        if value is None or not self._trusted(value, for_shape=True):
            return None
        return value.shape

    def rank(self, value: Value | None) -> int | None:
        """The value's rank, or None when unknown."""
        shape = self.shape(value)
        return None if shape is None else len(shape)

    def dtype(self, value: Value | None) -> int | None:
        """The value's ONNX element type, or None when unknown."""
        if value is None or not self._trusted(value, for_shape=False):
            return None
        return value.dtype


def const(value: Value | None) -> np.ndarray | None:
    """The data of an initializer or of a Constant node's output, or None when it is not a known constant."""
    if value is None:
        return None
    data = value.numpy()
    if data is not None:
        return data
    producer = value.producer()
    if producer is None or producer.op_type != "Constant" or not is_standard(producer):
        return None
    if "value" in producer.attrs:
        return numpy_helper.to_array(producer.attr("value"))
    if "value_ints" in producer.attrs:
        return np.asarray(producer.attr("value_ints"), dtype=np.int64)
    if "value_int" in producer.attrs:
        return np.asarray(producer.attr("value_int"), dtype=np.int64)
    return None


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
