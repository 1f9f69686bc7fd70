"""Value: a named edge of the graph, with its producer, its uses and optionally constant data."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import numpy as np
from onnx import TypeProto, helper

from onnxopt.ir.tensor import Tensor

if TYPE_CHECKING:
    from onnxopt.ir.graph import Graph
    from onnxopt.ir.node import Node

Dim = int | str | None


class Value:
    """An SSA value: produced by one node output, a graph input or an initializer; used by node inputs."""

    __slots__ = (
        "_name", "type", "const_value", "doc_string", "graph", "_producer", "_index", "_uses", "_wire", "__weakref__",
    )

    def __init__(self, name: str = "", type: TypeProto | None = None, const_value: Tensor | None = None) -> None:
        self._name = name
        self.type = type
        self.const_value = const_value
        self.doc_string = ""
        self.graph: Graph | None = None
        self._producer: Node | None = None
        self._index = 0
        self._uses: dict[tuple[Node, int], None] = {}
        # serde's cache of its value_info entry: (type written, name, doc_string, bytes); types are never edited in place
        self._wire: tuple[TypeProto, str, str, bytes] | None = None

    @property
    def name(self) -> str:
        """The value's name; renaming marks its producer and users as changed."""
        return self._name

    @name.setter
    def name(self, new: str) -> None:
        old = self._name
        if new == old:
            return
        self._name = new
        graph = self.graph
        if graph is not None:
            graph.mark_changed()
            graph.register_name(new)
            if graph.initializers.get(old) is self:
                del graph.initializers[old]
                graph.initializers[new] = self
        if self._producer is not None:
            self._producer.proto = None
        for node, _ in self._uses:
            node.proto = None

    def producer(self) -> Node | None:
        """The node whose output this is, or None for graph inputs and initializers."""
        return self._producer

    def index(self) -> int:
        """Which output of its producer this value is."""
        return self._index

    def uses(self) -> tuple[tuple[Node, int], ...]:
        """Every (node, input index) that reads this value, subgraph nodes included."""
        return tuple(self._uses)

    def consumers(self) -> list[Node]:
        """The distinct nodes that read this value, in first-use order."""
        return list(dict.fromkeys(node for node, _ in self._uses))

    def has_uses(self) -> bool:
        """True when any node input reads this value."""
        return bool(self._uses)

    def is_graph_input(self) -> bool:
        """True for an input of the graph it belongs to (initializers included only in IR < 4 models)."""
        return self.graph is not None and self in self.graph.input_set

    def is_graph_output(self) -> bool:
        """True when the graph it belongs to lists it as an output."""
        return self.graph is not None and self in self.graph.output_set

    def is_initializer(self) -> bool:
        """True for a named initializer of its graph."""
        return self.graph is not None and self.graph.initializers.get(self._name) is self

    def is_constant(self) -> bool:
        """True when the data is known: an initializer, unless it is also an overridable input (IR >= 4)."""
        if self.const_value is None:
            return False
        graph = self.graph
        return graph is None or graph.legacy_initializer_inputs or self not in graph.input_set

    def replace_all_uses_with(self, new: Value) -> None:
        """Make every reader of this value read `new` instead (graph outputs included)."""
        for node, i in tuple(self._uses):
            node.replace_input_with(i, new)
        graph = self.graph
        if graph is not None and self in graph.output_set:
            graph.replace_output(self, new)

    def iter_uses(self) -> Iterator[tuple[Node, int]]:
        """Iterate over uses without copying (do not mutate while iterating)."""
        return iter(self._uses)

    @property
    def dtype(self) -> int | None:
        """The ONNX element type of a tensor value, or None when unknown."""
        if self.const_value is not None:
            return self.const_value.dtype
        if self.type is not None and self.type.HasField("tensor_type"):
            return self.type.tensor_type.elem_type or None
        return None

    @property
    def shape(self) -> tuple[Dim, ...] | None:
        """Dims (int, symbolic name, or None when unknown), or None when even the rank is unknown."""
        if self.const_value is not None:
            return self.const_value.shape
        if self.type is None or not self.type.HasField("tensor_type"):
            return None
        tensor_type = self.type.tensor_type
        if not tensor_type.HasField("shape"):
            return None
        return tuple(
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor_type.shape.dim
        )

    def set_type(self, elem_type: int, shape: tuple[Dim, ...] | None) -> None:
        """Set the value's tensor type and shape."""
        if self.graph is not None:
            self.graph.mark_changed()
        self.type = helper.make_tensor_type_proto(elem_type, list(shape) if shape is not None else None)

    def numpy(self) -> np.ndarray | None:
        """The constant data as numpy, or None when the value is not constant."""
        return self.const_value.numpy() if self.is_constant() else None

    def __repr__(self) -> str:
        return f"Value({self._name!r})"
