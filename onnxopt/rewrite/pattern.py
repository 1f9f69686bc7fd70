"""Patterns: `op.BatchNormalization(op.Conv(x, w, b, _optional=1), scale, bias, mean, var)` describes a subgraph."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable


class Var:
    """A pattern variable: binds to whatever Value sits at its position (None for an absent optional input)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Var({self.name!r})"


class PatternNode:
    """One operator of a pattern: accepted op types, domain, inputs and how they may vary."""

    __slots__ = ("op_types", "domain", "inputs", "optional", "commute", "num_outputs", "label")

    def __init__(
        self, op_types: tuple[str, ...], domain: str, inputs: tuple[PatternInput, ...], optional: int,
        commute: bool, num_outputs: int, label: str,
    ) -> None:
        self.op_types = op_types
        self.domain = domain
        self.inputs = inputs
        self.optional = optional
        self.commute = commute
        self.num_outputs = num_outputs
        self.label = label

    @property
    def op_name(self) -> str:
        """The op type(s) as written in messages: `Conv` or `AveragePool|MaxPool`."""
        return "|".join(self.op_types)

    def accepts(self, op_type: str, domain: str) -> bool:
        """True when a node of this op type and domain can stand for this pattern node."""
        return op_type in self.op_types and normalize_domain(domain) == self.domain

    def __repr__(self) -> str:
        return f"PatternNode({self.label})"


class PatternValue:
    """Output `index` of a pattern node."""

    __slots__ = ("node", "index")

    def __init__(self, node: PatternNode, index: int) -> None:
        self.node = node
        self.index = index

    def __repr__(self) -> str:
        return f"{self.node.label}:{self.index}"


PatternInput = Var | PatternValue


def normalize_domain(domain: str) -> str:
    """'' and 'ai.onnx' are the same default domain."""
    return "" if domain == "ai.onnx" else domain


class PatternBuilder:
    """The `op` a rule's pattern() receives: `op.Conv(x, w)` adds a pattern node and returns its output.

    Keyword options: `_optional=k` (the last k listed inputs may be absent; their variables bind None),
    `_commute=True` (a two-input node matches with its inputs either way round), `_domain="com.microsoft"`,
    `_outputs=n` (returns n pattern values), `_name="conv"` (the label `m.node()` finds the node by;
    the op type by default).
    """

    def __init__(self) -> None:
        self.nodes: list[PatternNode] = []

    def __getattr__(self, op_type: str) -> Callable[..., Any]:
        if not op_type[:1].isupper():
            raise AttributeError(op_type)
        return lambda *inputs, **options: self.node(op_type, *inputs, **options)

    def node(
        self, op_types: str | tuple[str, ...], *inputs: PatternInput, _optional: int = 0, _commute: bool = False,
        _domain: str = "", _outputs: int = 1, _name: str = "",
    ) -> Any:
        """A pattern node accepting any of `op_types` (e.g. `op.node(("AveragePool", "MaxPool"), x)`)."""
        types = (op_types,) if isinstance(op_types, str) else tuple(op_types)
        for value in inputs:
            if not isinstance(value, (Var, PatternValue)):
                raise TypeError(f"pattern {types[0]}: inputs must be pattern variables or pattern ops, not {value!r}")
        if not 0 <= _optional <= len(inputs):
            raise ValueError(f"pattern {types[0]}: _optional={_optional} but {len(inputs)} inputs are listed")
        if _commute and len(inputs) != 2:
            raise ValueError(f"pattern {types[0]}: _commute needs exactly two inputs")
        node = PatternNode(types, normalize_domain(_domain), tuple(inputs), _optional, _commute, _outputs,
                           _name or "|".join(types))
        self.nodes.append(node)
        outputs = tuple(PatternValue(node, i) for i in range(_outputs))
        return outputs[0] if _outputs == 1 else outputs


@dataclass(frozen=True)
class Pattern:
    """A compiled pattern: the root node, how many root outputs it covers, its variables and nodes."""

    root: PatternNode
    num_outputs: int
    variables: tuple[str, ...]
    nodes: tuple[PatternNode, ...]

    def fits(self, kinds: set[tuple[str, str]]) -> bool:
        """False when a pattern node accepts none of these (op_type, normalized domain) kinds: every pattern node
        must match a node, so the pattern cannot match in a graph holding only these."""
        return all(any((op_type, p.domain) in kinds for op_type in p.op_types) for p in self.nodes)


def compile_pattern(fn: Callable[..., Any]) -> Pattern:
    """Call `fn(op, *vars)` with one Var per parameter after `op` and check the result is rooted at one node."""
    params = list(inspect.signature(fn).parameters)[1:]
    builder = PatternBuilder()
    result = fn(builder, *(Var(name) for name in params))
    outputs = result if isinstance(result, tuple) else (result,)
    if not outputs or not all(isinstance(v, PatternValue) for v in outputs):
        raise TypeError(f"{fn.__qualname__} must return the output(s) of a pattern op, not {result!r}")
    root = outputs[0].node
    if [(v.node, v.index) for v in outputs] != [(root, i) for i in range(len(outputs))]:
        raise TypeError(f"{fn.__qualname__} must return the first outputs of one pattern op, in order")
    reachable: dict[PatternNode, None] = {}

    def visit(node: PatternNode) -> None:
        if node not in reachable:
            reachable[node] = None
            for value in node.inputs:
                if isinstance(value, PatternValue):
                    visit(value.node)

    visit(root)
    stray = [n.label for n in builder.nodes if n not in reachable]
    if stray:
        raise TypeError(f"{fn.__qualname__}: pattern ops {stray} do not feed the returned op")
    return Pattern(root, len(outputs), tuple(params), tuple(reachable))
