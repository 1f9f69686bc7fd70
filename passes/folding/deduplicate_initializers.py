"""deduplicate_initializers: initializers with the same dtype, shape and bytes are shared."""
from __future__ import annotations

import numpy as np
from onnxopt.ir import Graph, Model, Value
from onnxopt.passmanager import Pass, PassResult, register_pass

_Key = tuple[int, tuple[int, ...], int]


def _same_content(a: Value, b: Value) -> bool:
    return bool(np.array_equal(a.const_value.numpy(), b.const_value.numpy()))


class _Index:
    """Initializers visible in a scope, grouped by (dtype, shape, bytes); fingerprinted only on a size clash."""

    def __init__(self, parent: _Index | None = None) -> None:
        self.parent = parent
        self.by_size: dict[_Key, list[Value]] = {}
        self.by_hash: dict[tuple[_Key, bytes], Value] = {}
        self.hashed: set[Value] = set()

    def _hash(self, key: _Key, value: Value) -> bytes:
        digest = value.const_value.fingerprint()
        self.hashed.add(value)
        self.by_hash.setdefault((key, digest), value)
        return digest

    def match(self, key: _Key, value: Value) -> Value | None:
        """An earlier initializer in this scope or an enclosing one with exactly the same content."""
        digest = None
        scope: _Index | None = self
        while scope is not None:
            candidates = scope.by_size.get(key)
            if candidates:
                for other in candidates:
                    if other not in scope.hashed:
                        scope._hash(key, other)
                if digest is None:
                    digest = value.const_value.fingerprint()
                found = scope.by_hash.get((key, digest))
                if found is not None and _same_content(found, value):
                    return found
            scope = scope.parent
        return None

    def add(self, key: _Key, value: Value) -> None:
        """Make `value` available to later initializers of this scope and of nested scopes."""
        self.by_size.setdefault(key, []).append(value)


def _deduplicate(graph: Graph, index: _Index) -> int:
    shared = 0
    for value in list(graph.initializers.values()):
        if not value.is_constant():
            continue  # an overridable graph input (IR >= 4) is not a constant
        tensor = value.const_value
        key = (tensor.dtype, tuple(tensor.shape), tensor.nbytes)
        keep = None if value.is_graph_output() else index.match(key, value)
        if keep is None:
            index.add(key, value)
            continue
        for node, i in value.uses():
            node.replace_input_with(i, keep)
        graph.remove_initializer(value)
        shared += 1
    for node in graph:
        for sub in node.subgraphs():
            shared += _deduplicate(sub, _Index(index))
    return shared


@register_pass
class DeduplicateInitializers(Pass):
    """w1, w2 with equal bytes → one initializer read by both; subgraphs share their own and outer initializers."""

    name = "deduplicate_initializers"
    groups = ("fold",)

    def call(self, model: Model) -> PassResult:
        shared = _deduplicate(model.graph, _Index())
        return PassResult(model, shared > 0, counters={"initializers_shared": shared} if shared else {})
