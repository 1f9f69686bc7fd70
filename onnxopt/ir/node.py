"""Node: one operator application; its inputs are Values, its outputs are Values it creates."""
from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from onnx import AttributeProto, NodeProto, helper

from onnxopt.ir.value import Value

if TYPE_CHECKING:
    from onnxopt.ir.graph import Graph

AttrValue = Any


class Node:
    """An operator node; attributes hold AttributeProtos, or Graphs for subgraph attributes."""

    __slots__ = (
        "_op_type", "_domain", "_overload", "_name", "_doc_string", "_inputs", "outputs", "attrs", "graph",
        "_proto", "_proto_attrs", "_source", "_prev", "_next", "_erased", "__weakref__",
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
        self._op_type = op_type
        self._domain = domain
        self._overload = ""
        self._name = name
        self._doc_string = ""
        self.graph: Graph | None = None
        self._proto: NodeProto | None = None
        self._proto_attrs: tuple[AttributeProto, ...] = ()
        # the proto it was loaded from, even after edits: the source of fields the IR does not model
        self._source: NodeProto | None = None
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
            value._producer = self
            value._index = i
        self.attrs: dict[str, AttrValue] = {}
        if attrs:
            for key, value in attrs.items():
                self.set_attr(key, value)

    # Changing any field that the NodeProto holds drops the cached original proto (see `proto`).
    @property
    def op_type(self) -> str:
        """The operator's name, e.g. "Conv"."""
        return self._op_type

    @op_type.setter
    def op_type(self, value: str) -> None:
        self._op_type, self._proto = value, None
        self._changed()

    @property
    def domain(self) -> str:
        """The operator set domain ("" for ai.onnx)."""
        return self._domain

    @domain.setter
    def domain(self, value: str) -> None:
        self._domain, self._proto = value, None
        self._changed()

    @property
    def overload(self) -> str:
        """The overload of a model-local function call ("" otherwise)."""
        return self._overload

    @overload.setter
    def overload(self, value: str) -> None:
        self._overload, self._proto = value, None
        self._changed()

    @property
    def name(self) -> str:
        """The node's name (unique within the model once the node is in a graph)."""
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name, self._proto = value, None
        self._changed()

    @property
    def doc_string(self) -> str:
        """Free-form documentation kept through round trips."""
        return self._doc_string

    @doc_string.setter
    def doc_string(self, value: str) -> None:
        self._doc_string, self._proto = value, None
        self._changed()

    def _changed(self) -> None:
        if self.graph is not None:
            self.graph.mark_changed()

    @property
    def proto(self) -> NodeProto | None:
        """The NodeProto this node was loaded from while the node is unchanged since (saving reuses it), else None."""
        proto = self._proto
        if proto is None:
            return None
        # attrs is a plain dict, so edits to it are detected here: the values must still be the loaded protos
        attrs, loaded = self.attrs, self._proto_attrs
        if len(attrs) != len(loaded) or (loaded and not all(map(operator.is_, attrs.values(), loaded))):
            self._proto = None
            return None
        return proto

    @proto.setter
    def proto(self, proto: NodeProto | None) -> None:
        self._proto = proto
        self._proto_attrs = tuple(self.attrs.values()) if proto is not None else ()

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
        self._proto = None
        self._changed()

    def set_inputs(self, values: Iterable[Value | None]) -> None:
        """Replace the whole input list (its length may change)."""
        for i, old in enumerate(self._inputs):
            if old is not None:
                old._uses.pop((self, i), None)
        self._inputs = tuple(values)
        for i, value in enumerate(self._inputs):
            if value is not None:
                value._uses[(self, i)] = None
        self._proto = None
        self._changed()

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

        held = bool(self.subgraphs())
        if isinstance(value, Graph):
            value.parent = self
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], Graph):
            value = tuple(value)
            for graph in value:
                graph.parent = self
        elif not isinstance(value, AttributeProto):
            value = helper.make_attribute(name, value)
        self.attrs[name] = value
        self._proto = None
        if self.graph is not None and not self._erased:
            self.graph._subgraph_holders += bool(self.subgraphs()) - held
        self._changed()

    def subgraphs(self) -> list[Graph]:
        """The graphs held in this node's attributes (If branches, Loop/Scan bodies)."""
        found: list[Graph] = []
        for value in self.attrs.values():
            if isinstance(value, AttributeProto):  # every attribute that is not a graph stays a proto
                continue
            if isinstance(value, tuple):
                found.extend(value)
            else:
                found.append(value)
        return found

    def predecessors(self) -> list[Node]:
        """Distinct producer nodes of this node's inputs."""
        return list(dict.fromkeys(v._producer for v in self._inputs if v is not None and v._producer is not None))

    def successors(self) -> list[Node]:
        """Distinct nodes reading any of this node's outputs."""
        return list(dict.fromkeys(node for out in self.outputs for node, _ in out._uses))

    def __repr__(self) -> str:
        domain = f"{self.domain}::" if self.domain else ""
        if self.name or not self.outputs:
            return f"Node({domain}{self.op_type}, {self.name!r})"
        # many files leave node names empty: the first output then identifies the node
        return f"Node({domain}{self.op_type}, unnamed, output {self.outputs[0].name!r})"
