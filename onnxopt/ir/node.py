"""Node: one operator application; its inputs are Values, its outputs are Values it creates."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Sequence

from onnx import AttributeProto, NodeProto, helper

from onnxopt.ir.value import Value

if TYPE_CHECKING:
    from onnxopt.ir.graph import Graph

AttrValue = Any


class Node:
    """An operator node; attributes hold AttributeProtos, or Graphs for subgraph attributes."""

    __slots__ = (
        "op_type", "domain", "overload", "name", "doc_string", "_inputs", "outputs", "attrs", "graph",
        "proto", "_prev", "_next", "_erased", "__weakref__",
    )

    def __init__(
        self,
        op_type: str,
        inputs: Sequence[Value | None] = (),
        outputs: Sequence[Value] | int = 1,
        attrs: dict[str, AttrValue] | None = None,
        domain: str = "",
        name: str = "",
    ) -> None:
        self.op_type = op_type
        self.domain = domain
        self.overload = ""
        self.name = name
        self.doc_string = ""
        self.graph: Graph | None = None
        self.proto: NodeProto | None = None  # the original proto while the node is unchanged since load
        self._prev: Node | None = None
        self._next: Node | None = None
        self._erased = False
        self._inputs: tuple[Value | None, ...] = tuple(inputs)
        for i, value in enumerate(self._inputs):
            if value is not None:
                value._uses[(self, i)] = None
        if isinstance(outputs, int):
            outputs = [Value() for _ in range(outputs)]
        self.outputs: tuple[Value, ...] = tuple(outputs)
        for i, value in enumerate(self.outputs):
            value._producer, value._index = self, i
        self.attrs: dict[str, AttrValue] = {}
        for key, value in (attrs or {}).items():
            self.set_attr(key, value)

    @property
    def inputs(self) -> tuple[Value | None, ...]:
        """Input values; None marks an omitted optional input."""
        return self._inputs

    def replace_input_with(self, index: int, value: Value | None) -> None:
        """Point input `index` at `value`, keeping both values' use lists right."""
        old = self._inputs[index]
        if old is value:
            return
        if old is not None:
            old._uses.pop((self, index), None)
        if value is not None:
            value._uses[(self, index)] = None
        self._inputs = self._inputs[:index] + (value,) + self._inputs[index + 1 :]
        self.proto = None

    def set_inputs(self, values: Iterable[Value | None]) -> None:
        """Replace the whole input list (its length may change)."""
        for i, old in enumerate(self._inputs):
            if old is not None:
                old._uses.pop((self, i), None)
        self._inputs = tuple(values)
        for i, value in enumerate(self._inputs):
            if value is not None:
                value._uses[(self, i)] = None
        self.proto = None

    def detach(self) -> None:
        """Drop this node's uses of its inputs (used when it leaves the graph)."""
        for i, old in enumerate(self._inputs):
            if old is not None:
                old._uses.pop((self, i), None)

    def attr(self, name: str, default: AttrValue = None) -> AttrValue:
        """An attribute as a Python value (str for strings, Graph for subgraphs), or `default`."""
        value = self.attrs.get(name)
        if value is None:
            return default
        if not isinstance(value, AttributeProto):
            return value
        if value.ref_attr_name:
            return default
        decoded = helper.get_attribute_value(value)
        if value.type == AttributeProto.STRING:
            return decoded.decode("utf-8", errors="surrogateescape")
        if value.type == AttributeProto.STRINGS:
            return [s.decode("utf-8", errors="surrogateescape") for s in decoded]
        return decoded

    def set_attr(self, name: str, value: AttrValue) -> None:
        """Set an attribute from a Python value, an AttributeProto, or a Graph (list of Graphs)."""
        from onnxopt.ir.graph import Graph

        if isinstance(value, Graph):
            value.parent = self
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], Graph):
            value = tuple(value)
            for graph in value:
                graph.parent = self
        elif not isinstance(value, AttributeProto):
            value = helper.make_attribute(name, value)
        self.attrs[name] = value
        self.proto = None

    def subgraphs(self) -> list[Graph]:
        """The graphs held in this node's attributes (If branches, Loop/Scan bodies)."""
        from onnxopt.ir.graph import Graph

        found: list[Graph] = []
        for value in self.attrs.values():
            if isinstance(value, Graph):
                found.append(value)
            elif isinstance(value, tuple):
                found.extend(value)
        return found

    def predecessors(self) -> list[Node]:
        """Distinct producer nodes of this node's inputs."""
        return list(dict.fromkeys(v._producer for v in self._inputs if v is not None and v._producer is not None))

    def successors(self) -> list[Node]:
        """Distinct nodes reading any of this node's outputs."""
        return list(dict.fromkeys(node for out in self.outputs for node, _ in out._uses))

    def __repr__(self) -> str:
        domain = f"{self.domain}::" if self.domain else ""
        return f"Node({domain}{self.op_type}, {self.name!r})"
