"""Rule (pattern, check, rewrite), the Match a check and rewrite read, and the builder a rewrite writes with."""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from onnxopt.ir import Builder, Graph, Node, Tensor, Value
from onnxopt.rewrite.pattern import Pattern, PatternNode, compile_pattern


class Failure:
    """A declined match and why; falsy, so `return m.fail("...")` reads as a failed check."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"Failure({self.reason!r})"


ORT_TARGETS = ("ort", "ort-cpu")  # targets whose models may hold onnxruntime contrib ops


class Match:
    """One place a pattern matched: `m["x"]` is the Value bound to variable x, `m.node("Conv")` a matched node."""

    __slots__ = ("root", "graph", "opset", "target", "_values", "_nodes")

    def __init__(
        self, root: Node, opset: int, target: str, values: dict[str, Value | None], nodes: dict[PatternNode, Node]
    ) -> None:
        self.root = root
        self.graph: Graph = root.graph
        self.opset = opset
        self.target = target
        self._values = values
        self._nodes = nodes

    def __getitem__(self, var: str) -> Value | None:
        """The Value bound to a pattern variable (None for an absent optional input)."""
        return self._values[var]

    def const(self, var: str) -> np.ndarray | None:
        """The variable's data when it is a constant (an initializer that is not an overridable input), else None."""
        value = self._values[var]
        return value.numpy() if value is not None else None

    def node(self, label: str) -> Node:
        """The matched node labelled `label` (its `_name=`, else its op type); ambiguous labels raise KeyError."""
        found = [node for p, node in self._nodes.items() if p.label == label]
        if len(found) != 1:
            raise KeyError(f"pattern has {len(found)} nodes labelled {label!r}; give one `_name=`")
        return found[0]

    @property
    def nodes(self) -> list[Node]:
        """Every matched node, root first."""
        return list(self._nodes.values())

    def fail(self, reason: str) -> Failure:
        """Decline this match; `reason` is what `--explain` shows."""
        return Failure(reason)


class RewriteBuilder(Builder):
    """The `op` a rewrite receives: nodes go at the root's position; `op.const` always makes a new initializer."""

    def node(self, op_type: str, *inputs: Value | None, **options: Any) -> Any:
        """`op.node("MaxPool", x, ...)` is `op.MaxPool(x, ...)`, for an op type held in a variable."""
        return getattr(self, op_type)(*inputs, **options)

    def const(self, array: np.ndarray | float | int, name: str = "const") -> Value:
        """A new initializer with a name unique in the model (an existing tensor is never overwritten)."""
        value = Value(self.graph.unique_name(name), const_value=Tensor.from_array(np.asarray(array)))
        return self.graph.add_initializer(value)


class Rule:
    """A rewrite rule: `pattern(op, *vars)` describes the subgraph, `check(m)` accepts it, `rewrite(op, m)` replaces it.

    Class attributes: `name` (snake_case, also the pass name), `min_opset`/`max_opset` (the default-domain opsets in
    which the rule may emit its ops), `requires_ort` (only with target "ort" or "ort-cpu"), `cpu_only` (only with
    target "ort-cpu": ops that onnxruntime's other providers reject or run slower), `needs_shapes` (check() reads shapes:
    shape inference runs first when a match has a variable, or the first output of a node whose pattern label is in
    `typed_nodes`, without a known shape), `domain_opsets` (versions to import for non-default domains the rewrite
    emits).
    """

    name: ClassVar[str] = ""
    min_opset: ClassVar[int] = 1
    max_opset: ClassVar[int | None] = None
    requires_ort: ClassVar[bool] = False
    cpu_only: ClassVar[bool] = False
    needs_shapes: ClassVar[bool] = False
    typed_nodes: ClassVar[tuple[str, ...]] = ()
    domain_opsets: ClassVar[dict[str, int]] = {}

    def pattern(self, op: Any, *variables: Any) -> Any:
        """Return the pattern's root output(s), built with the pattern builder `op`."""
        raise NotImplementedError

    def check(self, m: Match) -> bool | Failure:
        """True to accept the match, or `m.fail("reason")` to decline it."""
        return True

    def rewrite(self, op: RewriteBuilder, m: Match) -> Value | Sequence[Value]:
        """Build the replacement with `op` and return the value(s) that replace the root's output(s)."""
        raise NotImplementedError

    @classmethod
    def compiled(cls) -> Pattern:
        """The rule's pattern, compiled once per class."""
        pattern = cls.__dict__.get("_pattern")
        if pattern is None:
            pattern = compile_pattern(cls().pattern)
            cls._pattern = pattern
        return pattern

    @classmethod
    def inapplicable(cls, opset: int, target: str) -> str:
        """Why the rule may not fire in a model of this opset and target ('' when it may)."""
        if opset < cls.min_opset:
            return (f"the rule needs opset >= {cls.min_opset}, the model has {opset} "
                    f"(--target-opset {cls.min_opset} converts it)")
        if cls.max_opset is not None and opset > cls.max_opset:
            return f"the rule needs opset <= {cls.max_opset}, the model has {opset}"
        if cls.requires_ort and target not in ORT_TARGETS:
            return f"the rule emits onnxruntime-only ops and needs --target ort (target is {target!r})"
        if cls.cpu_only and target != "ort-cpu":
            return f"the rule emits ops only onnxruntime's CPU provider runs well and needs --target ort-cpu (target is {target!r})"
        return ""


def make_rule(
    name: str,
    pattern: Callable[..., Any],
    rewrite: Callable[[RewriteBuilder, Match], Any],
    check: Callable[[Match], bool | Failure] | None = None,
    doc: str = "",
    **options: Any,
) -> type[Rule]:
    """A Rule class from plain functions: one row of a table of trivial rules.

    `pattern(op, x, ...)`, `rewrite(op, m)` and `check(m)` take what the Rule methods take, without self;
    options are the Rule class attributes (min_opset, max_opset, requires_ort, needs_shapes, domain_opsets).
    """
    body: dict[str, Any] = {
        "name": name,
        "__doc__": doc or f"{name} (table rule)",
        "pattern": staticmethod(pattern),
        "rewrite": staticmethod(rewrite),
        **options,
    }
    if check is not None:
        body["check"] = staticmethod(check)
    class_name = "".join(part.title() for part in name.split("_"))
    return type(class_name, (Rule,), body)
