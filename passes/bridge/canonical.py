"""Canonical form of a graph another tool rewrote: a node order and names that depend on the graph alone.

Tools such as ONNX Runtime emit their nodes in hash-map order and number the names they make up in that order, so
two runs on one model differ. Here the order is a topological one whose ties are broken by structure (operator,
attributes, which values are read) and the made-up names are replaced by a counter in that order.
"""
from __future__ import annotations

import collections
import hashlib
import heapq
from collections.abc import Set as AbstractSet

from onnx import AttributeProto, GraphProto, NodeProto, TensorProto, numpy_helper


def canonicalize(graph: GraphProto, kept: AbstractSet[str], tag: str) -> None:
    """Reorder `graph` (and its subgraphs) canonically and rename every node and value whose name is not in `kept`
    (the names it had before the tool ran) to `{tag}_N` (values) or `{op_type}_{tag}_N` (nodes), in that order."""
    _canonicalize(graph, {}, _Namer(kept, tag))


class _Namer:
    """Fresh names from per-base counters, never one that is kept or already given."""

    def __init__(self, kept: AbstractSet[str], tag: str) -> None:
        self.kept = kept
        self.tag = tag
        self.given: set[str] = set()
        self.counters: collections.Counter[str] = collections.Counter()

    def fresh(self, base: str) -> str:
        while True:
            name = f"{base}_{self.counters[base]}"
            self.counters[base] += 1
            if name not in self.kept and name not in self.given:
                self.given.add(name)
                return name


def _canonicalize(graph: GraphProto, outer: dict[str, str], namer: _Namer) -> None:
    interface = {v.name for v in (*graph.input, *graph.output)}
    defined = _defined(graph)
    made_up = {name for name in defined if name not in namer.kept and name not in interface}
    for node in graph.node:  # tools may write them in hash-map order too
        node.attribute.sort(key=lambda attr: attr.name)
    order = _canonical_order(graph, outer, made_up)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes[i] for i in order)
    renamed = {name: new for name, new in outer.items() if name not in defined}  # inner names shadow outer ones
    renamed.update((name, name) for name in defined if name not in made_up)
    first_use: dict[str, int] = {}
    for position, node in enumerate(graph.node):
        for name in (*node.input, *_captured(node), *node.output):
            first_use.setdefault(name, position)
            if name in made_up and name not in renamed:
                renamed[name] = namer.fresh(namer.tag)
        if node.name and node.name not in namer.kept:
            node.name = namer.fresh(f"{node.op_type}_{namer.tag}")
    for node in graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
        node.output[:] = [renamed.get(name, name) for name in node.output]
        for sub in _subgraphs(node):
            _canonicalize(sub, renamed, namer)
    # in order of first use; a made-up initializer nothing reads, or value_info of a value the tool removed, goes
    _rename_in_use_order(graph.initializer, renamed, first_use, len(graph.node))
    _rename_in_use_order(graph.value_info, renamed, first_use, len(graph.node))


def _rename_in_use_order(entries, renamed: dict[str, str], first_use: dict[str, int], unused: int) -> None:
    """Keep the named entries (initializers or value_info) whose names are defined, renamed and in order of use."""
    kept = sorted((entry for entry in entries if entry.name in renamed),
                  key=lambda entry: (first_use.get(entry.name, unused), renamed[entry.name]))
    for entry in kept:
        entry.name = renamed[entry.name]
    del entries[:]
    entries.extend(kept)


def _canonical_order(graph: GraphProto, outer: dict[str, str], made_up: set[str]) -> list[int]:
    """Indices of graph.node in topological order; among ready nodes, those reading the most recently placed
    value go first (depth first), then by operator, attributes and what they read; never by the tool's order
    or made-up names, except between exact duplicates."""
    nodes = list(graph.node)
    producer = {name: (i, k) for i, node in enumerate(nodes) for k, name in enumerate(node.output) if name}
    digests = {t.name: _digest(t) for t in graph.initializer if t.name in made_up}
    reads = [[*node.input, *_captured(node)] for node in nodes]
    readers: dict[int, list[int]] = collections.defaultdict(list)
    waiting = []
    for i, names in enumerate(reads):
        before = {producer[name][0] for name in names if name in producer}
        waiting.append(len(before))
        for j in before:
            readers[j].append(i)
    position: dict[int, int] = {}

    def ref(name: str) -> tuple:
        if name in producer:
            node, k = producer[name]
            return (0, position[node], k)
        if name in digests:
            return (1, digests[name])
        return (2, outer.get(name, name))  # kept names, and the outer scope's made-up names (already renamed)

    def key(i: int) -> tuple:
        node = nodes[i]
        latest = max((position[producer[name][0]] for name in reads[i] if name in producer), default=len(nodes))
        attrs = tuple((a.name, b"" if _is_graph(a) else a.SerializeToString()) for a in node.attribute)
        named = tuple(name if name not in made_up else "" for name in node.output)
        return (-latest, node.domain, node.op_type, attrs, tuple(map(ref, node.input)),
                tuple(sorted(map(ref, _captured(node)))), named, i)

    ready = [key(i) for i, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    while ready:
        i = heapq.heappop(ready)[-1]
        position[i] = len(position)
        for j in readers[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, key(j))
    if len(position) < len(nodes):
        raise ValueError(f"graph {graph.name!r} has a cycle")
    return sorted(position, key=position.__getitem__)


def _defined(graph: GraphProto) -> list[str]:
    """Value names this graph itself defines: inputs, initializers, node outputs."""
    return [*(v.name for v in graph.input), *(t.name for t in graph.initializer),
            *(name for node in graph.node for name in node.output if name)]


def _captured(node: NodeProto) -> list[str]:
    """Names that the node's subgraphs read from enclosing scopes."""
    found: dict[str, None] = {}
    for sub in _subgraphs(node):
        inner = set(_defined(sub))
        for inner_node in sub.node:
            found.update((name, None) for name in (*inner_node.input, *_captured(inner_node))
                         if name and name not in inner)
    return list(found)


def _subgraphs(node: NodeProto) -> list[GraphProto]:
    subs = []
    for attr in node.attribute:
        if attr.type == AttributeProto.GRAPH:
            subs.append(attr.g)
        elif attr.type == AttributeProto.GRAPHS:
            subs.extend(attr.graphs)
    return subs


def _is_graph(attr: AttributeProto) -> bool:
    return attr.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS)


def _digest(tensor: TensorProto) -> str:
    """A tensor's identity by content (type, shape, values), not name."""
    array = numpy_helper.to_array(tensor)
    return hashlib.sha1(f"{tensor.data_type}{array.shape}".encode() + array.tobytes()).hexdigest()
