"""Matcher: from a root node, match a pattern upward through producers; yield every consistent binding."""
from __future__ import annotations

from typing import Iterator

from onnxopt.ir import Node, Value
from onnxopt.rewrite.pattern import Pattern, PatternInput, PatternNode, Var


class Binding:
    """What one structural match bound: variables to Values (or None), pattern nodes to Nodes."""

    __slots__ = ("values", "nodes")

    def __init__(self, values: dict[str, Value | None], nodes: dict[PatternNode, Node]) -> None:
        self.values = values
        self.nodes = nodes


def describe(value: Value | None) -> str:
    """How a value comes about, for failure reasons: 'produced by Relu', 'a graph input', 'a constant'."""
    if value is None:
        return "absent"
    producer = value.producer()
    if producer is not None:
        return f"produced by {producer.op_type}"
    if value.is_constant():
        return "a constant"
    if value.is_graph_input():
        return "a graph input"
    return "a value from an outer graph"


class Matcher:
    """One attempt to match `pattern` at `root`; `reason` holds the first structural failure."""

    def __init__(self, pattern: Pattern, root: Node) -> None:
        self.pattern = pattern
        self.root = root
        self.reason = ""
        self.values: dict[str, Value | None] = {}
        self.nodes: dict[PatternNode, Node] = {}
        self.claimed: set[Node] = set()

    def bindings(self) -> Iterator[Binding]:
        """Every way the pattern fits at the root (more than one only with `_commute`)."""
        root, pattern = self.root, self.pattern
        if not pattern.root.accepts(root.op_type, root.domain):
            self._fail(f"domain {root.domain or 'ai.onnx'!r} is not the pattern's {pattern.root.domain or 'ai.onnx'!r}")
            return
        self.nodes[pattern.root] = root
        self.claimed.add(root)
        for _ in self._node(pattern.root, root):
            yield Binding(dict(self.values), dict(self.nodes))

    def _fail(self, reason: str) -> None:
        if not self.reason:
            self.reason = reason

    def _where(self, node: Node, index: int) -> str:
        if node is self.root:
            return f"input {index}"
        return f"input {index} of {node_label(node)}"

    def _node(self, p: PatternNode, node: Node) -> Iterator[None]:
        inputs = node.inputs
        count = len(inputs)
        while count and inputs[count - 1] is None:
            count -= 1
        listed = len(p.inputs)
        if count > listed:
            self._fail(f"{node_label(node)} has {count} inputs, the pattern lists {listed}")
            return
        if count < listed - p.optional:
            self._fail(f"{node_label(node)} has {count} inputs, the pattern needs {listed - p.optional}")
            return
        padded = inputs[:count] + (None,) * (listed - count)
        orders = ((0, 1), (1, 0)) if p.commute else (tuple(range(listed)),)
        for order in orders:
            yield from self._inputs(p, node, order, padded, 0)

    def _inputs(self, p: PatternNode, node: Node, order: tuple[int, ...], actual: tuple, k: int) -> Iterator[None]:
        if k == len(order):
            yield
            return
        index = order[k]
        for _ in self._value(p.inputs[k], actual[index], node, index):
            yield from self._inputs(p, node, order, actual, k + 1)

    def _value(self, want: PatternInput, value: Value | None, node: Node, index: int) -> Iterator[None]:
        if isinstance(want, Var):
            yield from self._variable(want, value, node, index)
            return
        p = want.node
        producer = value.producer() if value is not None else None
        if producer is None or producer.graph is not node.graph:
            self._fail(f"{self._where(node, index)} is {describe(value)}, not {p.op_name}")
            return
        if not p.accepts(producer.op_type, producer.domain):
            self._fail(f"{self._where(node, index)} is produced by {_qualified(producer)}, not {p.op_name}")
            return
        if value.index() != want.index:
            self._fail(f"{self._where(node, index)} is output {value.index()} of {producer.op_type}, "
                       f"not output {want.index}")
            return
        bound = self.nodes.get(p)
        if bound is not None:
            if bound is producer:
                yield
            else:
                self._fail(f"{self._where(node, index)}: {p.label} would be two different nodes")
            return
        if producer in self.claimed:
            self._fail(f"{self._where(node, index)}: {node_label(producer)} would play two pattern roles")
            return
        self.nodes[p] = producer
        self.claimed.add(producer)
        yield from self._node(p, producer)
        del self.nodes[p]
        self.claimed.discard(producer)

    def _variable(self, var: Var, value: Value | None, node: Node, index: int) -> Iterator[None]:
        if var.name in self.values:
            if self.values[var.name] is value:
                yield
            else:
                self._fail(f"{self._where(node, index)} is not the same value as the other {var.name!r}")
            return
        self.values[var.name] = value
        yield
        del self.values[var.name]


def node_label(node: Node) -> str:
    """`Conv 'conv1'`, or `Conv producing 'y'` for an unnamed node."""
    if node.name:
        return f"{node.op_type} {node.name!r}"
    return f"{node.op_type} producing {node.outputs[0].name!r}" if node.outputs else node.op_type


def _qualified(node: Node) -> str:
    return f"{node.domain}::{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type


def isolation_failure(pattern: Pattern, binding: Binding) -> str:
    """Why the matched nodes cannot be replaced as a unit ('' when they can).

    Intermediates (matched nodes other than the root) must have no readers outside the match and must not be
    graph outputs; root outputs beyond those the pattern covers must be unused; no variable may bind a value
    that a matched intermediate produces (it would vanish with the node).
    """
    matched = set(binding.nodes.values())
    root = binding.nodes[pattern.root]
    for p, node in binding.nodes.items():
        if node is root:
            continue
        for out in node.outputs:
            if out.is_graph_output():
                return f"{node_label(node)}: its output {out.name!r} is a graph output"
            for user, _ in out.iter_uses():
                if user not in matched:
                    return f"{node_label(node)}: its output {out.name!r} is also read by {node_label(user)}"
    for out in root.outputs[pattern.num_outputs:]:
        if out.is_graph_output() or out.has_uses():
            return f"output {out.index()} ({out.name!r}) of {root.op_type} is used, the rule replaces only " \
                   f"{pattern.num_outputs}"
    for name, value in binding.values.items():
        if value is not None and value.producer() in matched:
            return f"variable {name!r} is an intermediate of the pattern"
    return ""
