"""lint: check IR invariants (order, single producer, consistent uses, unique names, defined outputs).

Names are unique within a graph and the scopes around it; sibling subgraphs (an If's two branches) may reuse
a name, as ONNX allows.
"""
from __future__ import annotations

from onnxopt.errors import IRError
from onnxopt.ir.graph import Graph
from onnxopt.ir.model import Model


def lint(model: Model | Graph) -> None:
    """Raise IRError naming the first node that breaks an invariant; return None when the IR is sound."""
    graph = model.graph if isinstance(model, Model) else model
    names: dict[str, object] = {}
    _lint_graph(graph, set(), names)


def _lint_graph(graph: Graph, outer: set, names: dict[str, object]) -> None:
    holders = sum(1 for node in graph if node.subgraphs())
    if graph._subgraph_holders != holders:
        raise IRError(f"graph {graph.name!r} counts {graph._subgraph_holders} nodes with subgraphs but has {holders} "
                      f"(set subgraph attributes with Node.set_attr)")
    defined = set(outer)
    for value in [*graph.inputs, *graph.initializers.values()]:
        _claim(names, value.name, value, f"graph {graph.name!r}")
        _check_uses(value, f"graph {graph.name!r}")
        defined.add(value)
    for node in graph:
        if node.graph is not graph:
            raise IRError(f"{node} is listed in graph {graph.name!r} but points at another graph")
        for i, value in enumerate(node.inputs):
            if value is None:
                continue
            if (node, i) not in value._uses:
                raise IRError(f"{node} input {i} ({value.name!r}) is missing from that value's use list")
            if value not in defined and _is_sparse_initializer(value):
                _claim(names, value.name, value, f"graph {value.graph.name!r} (sparse initializer)")
                defined.add(value)
            if value not in defined:
                producer = value.producer()
                if producer is None:
                    where = "nowhere"
                elif producer._erased or producer.graph is None:
                    where = f"by {producer}, which was removed"
                else:
                    where = "later in the graph (order broken or a cycle)"
                raise IRError(f"{node} reads {value.name!r}, which is defined {where}")
        for sub in node.subgraphs():
            if sub.parent is not node:
                raise IRError(f"subgraph {sub.name!r} of {node} has the wrong parent")
            _lint_graph(sub, defined, dict(names))
        for i, value in enumerate(node.outputs):
            if value.producer() is not node or value.index() != i:
                raise IRError(f"{node} output {i} ({value.name!r}) names another producer")
            if not value.name and not value.has_uses() and not value.is_graph_output():
                continue  # an omitted optional output (ONNX writes its name as "")
            _claim(names, value.name, value, str(node))
            defined.add(value)
        for value in node.outputs:
            _check_uses(value, str(node))
    for value in graph.outputs:
        if value not in defined:
            raise IRError(f"graph {graph.name!r} output {value.name!r} is not defined")


def _is_sparse_initializer(value) -> bool:
    # sparse initializers stay protos in Graph.sparse_initializers; the Value that reads one has its name
    graph = value.graph
    return (value.producer() is None and graph is not None
            and any(sparse.values.name == value.name for sparse in graph.sparse_initializers))


def _check_uses(value, where: str) -> None:
    for user, i in value.iter_uses():
        if user._erased or i >= len(user.inputs) or user.inputs[i] is not value:
            raise IRError(f"{value.name!r} of {where} lists a stale use by {user} input {i}")


def _claim(names: dict[str, object], name: str, value: object, where: str) -> None:
    if not name:
        raise IRError(f"a value of {where} has no name")
    other = names.setdefault(name, value)
    if other is not value:
        raise IRError(f"name {name!r} is defined twice (again by {where})")
