"""Builder: `op.Conv(x, w, strides=[1, 1])` creates a node at the graph's insertion point and returns its output."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from onnxopt.ir.graph import Graph
from onnxopt.ir.node import Node
from onnxopt.ir.tensor import Tensor
from onnxopt.ir.value import Value


class Builder:
    """Creates nodes and constants in a graph; attribute `op.<OpType>(*inputs, **attrs)` builds one node."""

    def __init__(self, graph: Graph, domain: str = "") -> None:
        self.graph = graph
        self.domain = domain
        self.created: list[Node] = []

    def __getattr__(self, op_type: str) -> Callable[..., Any]:
        if not op_type[:1].isupper():
            raise AttributeError(op_type)

        def make(*inputs: Value | None, _outputs: int = 1, _domain: str | None = None, _name: str = "", **attrs: Any):
            node = Node(op_type, inputs, _outputs, attrs, domain=self.domain if _domain is None else _domain)
            if _name:
                node.name = self.graph.unique_name(_name)
            self.graph.append(node)
            self.created.append(node)
            return node.outputs[0] if _outputs == 1 else node.outputs

        return make

    def const(self, array: np.ndarray | float | int, name: str = "const") -> Value:
        """A new initializer holding `array` (never overwrites an existing one)."""
        value = Value(name, const_value=Tensor.from_array(np.asarray(array)))
        return self.graph.add_initializer(value)
