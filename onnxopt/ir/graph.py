"""Graph: an ordered, mutation-safe list of nodes with inputs, outputs and initializers."""
from __future__ import annotations

import contextlib
import gc
import heapq
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

from onnx import ValueInfoProto

from onnxopt.errors import IRError
from onnxopt.ir.node import Node
from onnxopt.ir.value import Value

if TYPE_CHECKING:
    from onnx import SparseTensorProto, StringStringEntryProto, TensorAnnotation

    from onnxopt.ir.tensor import Tensor


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many IR objects (it would rescan them repeatedly)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Graph:
    """A (sub)graph. Iterating while inserting or removing nodes is safe; removed nodes are skipped."""

    def __init__(self, name: str = "graph") -> None:
        self.name = name
        self.doc_string = ""
        self.parent: Node | None = None
        self.initializers: dict[str, Value] = {}
        self.sparse_initializers: list[SparseTensorProto] = []
        self.quantization_annotation: list[TensorAnnotation] = []
        self.metadata_props: list[StringStringEntryProto] = []
        self.orphan_value_info: list[ValueInfoProto] = []
        self.legacy_initializer_inputs = False
        self._inputs: list[Value] = []
        self._outputs: list[Value] = []
        self.input_set: set[Value] = set()
        self.output_set: set[Value] = set()
        self._first: Node | None = None
        self._last: Node | None = None
        self._count = 0
        self._subgraph_holders = 0  # nodes with subgraph attributes: most graphs have none, so no walk is needed
        self._insert_before: Node | None = None
        self._names: set[str] = set()
        self._name_counter = 0
        self.nodes_added = 0
        self.nodes_removed = 0
        # bumped by every edit anywhere in the model (kept on the root graph): facts derived from the model, such as
        # cached shape inference or a pass having found nothing to do, hold while it is unchanged
        self.revision = 0
        self.inferred_types: tuple | None = None  # onnxopt.ir.shapes' cache: (revision, data_prop, types)
        self._all_graphs: tuple[Graph, int, list[Graph]] | None = None  # (root, its revision, all_graphs())
        self._op_kinds: tuple[Graph, int, set[tuple[str, str]]] | None = None  # (root, its revision, op_kinds())

    # ---- inputs, outputs, initializers -------------------------------------------------------
    @property
    def inputs(self) -> tuple[Value, ...]:
        """Graph inputs, in order."""
        return tuple(self._inputs)

    @property
    def outputs(self) -> tuple[Value, ...]:
        """Graph outputs, in order."""
        return tuple(self._outputs)

    def mark_changed(self) -> None:
        """Record an edit to this graph (every mutator calls it; edit through them, not through the fields)."""
        self.root().revision += 1

    def add_input(self, value: Value) -> Value:
        """Append a graph input."""
        self.mark_changed()
        self._own(value)
        self._inputs.append(value)
        self.input_set.add(value)
        return value

    def set_inputs(self, values: Sequence[Value]) -> None:
        """Replace the list of graph inputs."""
        self.mark_changed()
        for value in values:
            self._own(value)
        self._inputs = list(values)
        self.input_set = set(values)

    def add_output(self, value: Value) -> None:
        """Append a graph output."""
        self.mark_changed()
        self._outputs.append(value)
        self.output_set.add(value)

    def set_outputs(self, values: Sequence[Value]) -> None:
        """Replace the list of graph outputs."""
        self.mark_changed()
        self._outputs = list(values)
        self.output_set = set(values)

    def replace_output(self, old: Value, new: Value) -> None:
        """Make the graph output `old` be `new` under the old name, so the graph's interface is unchanged."""
        self.mark_changed()
        name = old.name
        if new.graph is not self or new.producer() is None or new in self.output_set:
            # inputs, initializers, outer values and existing outputs keep their own names: copy through Identity
            identity = Node("Identity", [new], [Value()])
            self.append(identity)
            new = identity.outputs[0]
        new.type = old.type if old.type is not None else new.type  # the declared interface type wins
        self._outputs = [new if v is old else v for v in self._outputs]
        self.output_set.discard(old)
        self.output_set.add(new)
        old.name = self.unique_name(name)
        new.name = name

    def promote_to_initializer(self, value: Value, tensor: Tensor) -> None:
        """Make `value`, the only output of a node of this graph, an initializer holding `tensor`, and remove the
        node: its readers keep the same Value, so nothing is renamed or re-wired."""
        node = value.producer()
        if node is None or node.graph is not self or len(node.outputs) != 1 or value in self.output_set:
            raise IRError(f"{value.name!r} is not the only output of a node of graph {self.name!r} (or is an output)")
        placeholder = Value()
        placeholder._producer = node
        node.outputs = (placeholder,)
        value._producer = None
        self.remove(node)
        value.const_value = tensor
        self.initializers[value.name] = value

    def add_initializer(self, value: Value) -> Value:
        """Register a constant value (its const_value must be set) under a unique name."""
        if value.const_value is None:
            raise IRError(f"initializer {value.name!r} has no data")
        self.mark_changed()
        name = value.name
        if not name or (self.initializers.get(name) is not value and name in self.root()._names):
            # taken by any value of the model (not only another initializer): a second definition is invalid
            value.name = self.unique_name(name or "const")
        self._own(value)
        self.initializers[value.name] = value
        return value

    def remove_initializer(self, value: Value) -> None:
        """Drop an initializer that nothing uses any more."""
        if value.has_uses() or value in self.output_set:
            raise IRError(f"initializer {value.name!r} is still used")
        self.mark_changed()
        self.initializers.pop(value.name, None)
        if value in self.input_set:
            self._inputs.remove(value)
            self.input_set.discard(value)
        value.graph = None

    def move_initializer(self, value: Value, into: Graph) -> None:
        """Make an initializer of this graph one of `into`, a graph nested in it; readers keep the same Value."""
        if self.initializers.get(value.name) is not value or value in self.input_set or value in self.output_set:
            raise IRError(f"{value.name!r} is not a plain initializer of graph {self.name!r}")
        self.mark_changed()
        del self.initializers[value.name]
        into._own(value)
        into.initializers[value.name] = value

    def _own(self, value: Value) -> None:
        value.graph = self
        self.register_name(value.name)

    # ---- names -------------------------------------------------------------------------------
    def root(self) -> Graph:
        """The outermost graph (subgraphs share its name table)."""
        graph = self
        while graph.parent is not None and graph.parent.graph is not None:
            graph = graph.parent.graph
        return graph

    def register_name(self, name: str) -> None:
        """Mark a name as taken in the model's name table."""
        if name:
            self.root()._names.add(name)

    def unique_name(self, base: str) -> str:
        """A name not yet used anywhere in the model, derived from `base`; it is reserved at once."""
        root = self.root()
        root.revision += 1  # a reserved name changes the names given later
        names = root._names
        name = base
        while not name or name in names:
            root._name_counter += 1
            name = f"{base}_{root._name_counter}"
        names.add(name)
        return name

    # ---- node list ---------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Node]:
        node = self._first
        while node is not None:
            if not node._erased:
                yield node
            node = node._next

    def __reversed__(self) -> Iterator[Node]:
        node = self._last
        while node is not None:
            if not node._erased:
                yield node
            node = node._prev

    def __len__(self) -> int:
        return self._count

    @property
    def nodes(self) -> list[Node]:
        """A snapshot list of the nodes in order."""
        return list(self)

    def _adopt(self, node: Node) -> None:
        if node.graph is not None and not node._erased:
            raise IRError(f"{node} already belongs to a graph")
        self.mark_changed()
        node.graph = self
        node._erased = False
        if not node.name:
            node.name = self.unique_name(f"{node.op_type}")
        else:
            self.register_name(node.name)
        for value in node.outputs:
            if not value.name:
                value.name = self.unique_name(f"{node.name}_out{value.index()}")
            self._own(value)
        subs = node.subgraphs()
        for sub in subs:
            sub.parent = node
        self._subgraph_holders += bool(subs)
        self._count += 1
        self.root().nodes_added += 1

    def append(self, nodes: Node | Iterable[Node]) -> None:
        """Add nodes at the insertion point (the end, unless inside `inserting_before`)."""
        if self._insert_before is not None:
            self.insert_before(self._insert_before, nodes)
            return
        for node in [nodes] if isinstance(nodes, Node) else list(nodes):
            self._adopt(node)
            node._prev, node._next = self._last, None
            if self._last is None:
                self._first = node
            else:
                self._last._next = node
            self._last = node

    def insert_before(self, ref: Node, nodes: Node | Iterable[Node]) -> None:
        """Insert nodes, in order, just before `ref`."""
        for node in [nodes] if isinstance(nodes, Node) else list(nodes):
            self._adopt(node)
            node._prev, node._next = ref._prev, ref
            if ref._prev is None:
                self._first = node
            else:
                ref._prev._next = node
            ref._prev = node

    def insert_after(self, ref: Node, nodes: Node | Iterable[Node]) -> None:
        """Insert nodes, in order, just after `ref`."""
        for node in [nodes] if isinstance(nodes, Node) else list(nodes):
            self._adopt(node)
            node._prev, node._next = ref, ref._next
            if ref._next is None:
                self._last = node
            else:
                ref._next._prev = node
            ref._next = node
            ref = node

    @contextlib.contextmanager
    def inserting_before(self, node: Node) -> Iterator[None]:
        """Within the block, `append` inserts before `node`."""
        saved, self._insert_before = self._insert_before, node
        try:
            yield
        finally:
            self._insert_before = saved

    def remove(self, nodes: Node | Iterable[Node], safe: bool = True) -> None:
        """Remove nodes; with safe=True refuse while an output is read outside the set or is a graph output."""
        batch = [nodes] if isinstance(nodes, Node) else list(nodes)
        if safe:
            doomed = set(batch)
            for node in batch:
                for out in node.outputs:
                    if out in self.output_set:
                        raise IRError(f"cannot remove {node}: its output {out.name!r} is a graph output")
                    for user, _ in out.iter_uses():
                        if user not in doomed:
                            raise IRError(f"cannot remove {node}: {out.name!r} is still used by {user}")
        self.mark_changed()
        for node in batch:
            if node.graph is not self or node._erased:
                raise IRError(f"{node} is not in graph {self.name!r}")
            node.detach()
            subs = node.subgraphs()
            self._subgraph_holders -= bool(subs)
            for sub in subs:  # a removed If/Loop no longer reads the outer values its bodies captured
                for inner_graph in sub.all_graphs():
                    for inner in inner_graph:
                        inner.detach()
            prev, nxt = node._prev, node._next
            if prev is None:
                self._first = nxt
            else:
                prev._next = nxt
            if nxt is None:
                self._last = prev
            else:
                nxt._prev = prev
            node._erased = True
            node.graph = None
            self._count -= 1
            self.root().nodes_removed += 1

    def replace_node_with(self, node: Node, value: Value) -> None:
        """Bypass a single-output node: its readers (and a graph output) read `value`; the node is removed."""
        node.outputs[0].replace_all_uses_with(value)
        self.remove(node)

    # ---- structure ---------------------------------------------------------------------------
    def subgraphs(self) -> Iterator[Graph]:
        """Every graph nested in this one's nodes, recursively (depth first)."""
        if not self._subgraph_holders:
            return
        for node in self:
            for sub in node.subgraphs():
                yield sub
                yield from sub.subgraphs()

    def all_graphs(self) -> list[Graph]:
        """This graph and every nested subgraph (computed again only after the model changed)."""
        root = self.root()
        cached = self._all_graphs
        if cached is None or cached[0] is not root or cached[1] != root.revision:
            cached = self._all_graphs = (root, root.revision, [self, *self.subgraphs()])
        return list(cached[2])

    def op_kinds(self) -> set[tuple[str, str]]:
        """(op_type, domain) of the nodes here and in nested subgraphs (computed again only after the model changed)."""
        root = self.root()
        cached = self._op_kinds
        if cached is None or cached[0] is not root or cached[1] != root.revision:
            kinds = {(node.op_type, node.domain) for graph in self.all_graphs() for node in graph}
            cached = self._op_kinds = (root, root.revision, kinds)
        return set(cached[2])

    def captured_values(self) -> list[Value]:
        """Values read inside this graph (or its subgraphs) that are defined in an outer scope."""
        inner = set(self.all_graphs())
        captured: dict[Value, None] = {}
        for graph in inner:
            for node in graph:
                for value in node.inputs:
                    if value is not None and value.graph not in inner:
                        captured[value] = None
        return list(captured)

    def node_dependencies(self, node: Node) -> list[Value]:
        """All values a node needs: its inputs plus outer values captured by its subgraphs."""
        deps = [v for v in node.inputs if v is not None]
        for sub in node.subgraphs():
            deps.extend(sub.captured_values())
        return deps

    def sort(self) -> None:
        """Reorder nodes topologically, keeping the current order wherever it is already valid."""
        self.mark_changed()
        order = {node: i for i, node in enumerate(self)}
        waiting: dict[Node, int] = {}
        readers: dict[Node, list[Node]] = {}
        for node in order:
            producers = {
                v.producer() for v in self.node_dependencies(node) if v.producer() in order
            }
            producers.discard(node)
            waiting[node] = len(producers)
            for producer in producers:
                readers.setdefault(producer, []).append(node)
        ready = [(i, ) for node, i in order.items() if waiting[node] == 0]
        heapq.heapify(ready)
        by_index = list(order)
        result: list[Node] = []
        while ready:
            (i,) = heapq.heappop(ready)
            node = by_index[i]
            result.append(node)
            for reader in readers.get(node, ()):
                waiting[reader] -= 1
                if waiting[reader] == 0:
                    heapq.heappush(ready, (order[reader],))
        if len(result) != len(order):
            stuck = next(node for node in order if waiting[node] > 0)
            raise IRError(f"graph {self.name!r} has a cycle through {stuck}")
        prev = None
        for node in result:
            node._prev = prev
            if prev is None:
                self._first = node
            else:
                prev._next = node
            prev = node
        if prev is not None:
            prev._next = None
        self._last = prev

    def clone(self, value_map: dict[Value, Value] | None = None) -> Graph:
        """A structural copy sharing the (immutable) tensors and attribute protos; outer values map via value_map."""
        with gc_paused():
            return self._clone({} if value_map is None else value_map)

    def _clone(self, value_map: dict[Value, Value]) -> Graph:
        copy = Graph(self.name)
        copy.doc_string = self.doc_string
        copy.legacy_initializer_inputs = self.legacy_initializer_inputs
        copy.sparse_initializers = list(self.sparse_initializers)
        copy.quantization_annotation = list(self.quantization_annotation)
        copy.metadata_props = list(self.metadata_props)
        copy.orphan_value_info = list(self.orphan_value_info)
        copy._names = set(self._names)
        copy._name_counter = self._name_counter
        mapped = value_map.get

        def copy_value(value: Value) -> Value:
            new = Value(value._name, value.type, value.const_value)
            new.doc_string = value.doc_string
            new.graph = copy
            value_map[value] = new
            return new

        for name, value in self.initializers.items():
            copy.initializers[name] = mapped(value) or copy_value(value)
        copy._inputs = [mapped(v) or copy_value(v) for v in self._inputs]
        copy.input_set = set(copy._inputs)
        prev = None
        count = 0
        holders = 0
        for node in self:
            inputs = [None if v is None else mapped(v) or copy_value(v) for v in node._inputs]
            outputs = [mapped(v) or copy_value(v) for v in node.outputs]
            new = Node(node._op_type, inputs, outputs, domain=node._domain, name=node._name)
            new._overload, new._doc_string = node._overload, node._doc_string
            new.graph = copy
            holds = False
            for key, attr in node.attrs.items():
                if isinstance(attr, Graph):
                    attr = attr._clone(value_map)
                    attr.parent = new
                    holds = True
                elif isinstance(attr, tuple):
                    attr = tuple(g._clone(value_map) for g in attr)
                    for g in attr:
                        g.parent = new
                    holds = holds or bool(attr)
                new.attrs[key] = attr
            holders += holds
            # the proto stays valid for the copy exactly when it is valid for the original (same attr objects)
            new._proto, new._proto_attrs, new._source = node._proto, node._proto_attrs, node._source
            new._prev = prev
            if prev is None:
                copy._first = new
            else:
                prev._next = new
            prev = new
            count += 1
        copy._last, copy._count, copy._subgraph_holders = prev, count, holders
        copy.set_outputs([mapped(v) or copy_value(v) for v in self._outputs])
        return copy

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self)} nodes)"
