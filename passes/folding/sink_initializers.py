"""sink_initializers: an initializer read only inside one subgraph becomes that subgraph's own.

Exporters (torch.onnx's dynamo exporter among them) keep every weight in the main graph, so If branches and Loop
bodies read them from the outer scope. ONNX Runtime hands each outer value to the subgraph as an implicit input
at every execution of the node; a subgraph's own initializers are set up once, with its session. On Silero VAD's
opset-18 export this costs about 6% of its latency.
"""
from __future__ import annotations

from onnxopt.ir import Graph, Model, Node, Value
from onnxopt.passmanager import Pass, PassResult, register_pass

# A constant this small (a scalar, a short shape vector) read in several subgraphs is copied into each of them.
SMALL_BYTES = 64


def _child_holding(graph: Graph, inner: Graph) -> Graph:
    """The subgraph of one of `graph`'s nodes that contains `inner` (a graph nested somewhere inside `graph`)."""
    while inner.parent.graph is not graph:
        inner = inner.parent.graph
    return inner


def _readers_by_subgraph(value: Value, graph: Graph) -> dict[Graph, list[tuple[Node, int]]] | None:
    """The uses of `value`, grouped by the subgraph of `graph` they lie in; None when `graph` itself reads it."""
    readers: dict[Graph, list[tuple[Node, int]]] = {}
    for node, index in value.uses():
        if node.graph is graph:
            return None
        readers.setdefault(_child_holding(graph, node.graph), []).append((node, index))
    return readers


def _sink(graph: Graph) -> tuple[int, int]:
    """Sink the initializers of `graph`, then those of its subgraphs; returns (moved, copied)."""
    moved = copied = 0
    for value in list(graph.initializers.values()):
        if not value.is_constant() or value.is_graph_output():  # an overridable input is not a constant
            continue
        readers = _readers_by_subgraph(value, graph)
        if not readers:
            continue
        if len(readers) == 1:
            graph.move_initializer(value, next(iter(readers)))
            moved += 1
        elif value.const_value.nbytes <= SMALL_BYTES:
            for sub, uses in readers.items():
                copy = sub.add_initializer(Value(value.name, const_value=value.const_value))
                for node, index in uses:
                    node.replace_input_with(index, copy)
            graph.remove_initializer(value)
            copied += 1
    for node in graph:
        for sub in node.subgraphs():
            sub_moved, sub_copied = _sink(sub)
            moved += sub_moved
            copied += sub_copied
    return moved, copied


@register_pass
class SinkInitializers(Pass):
    """w in an outer graph, read only inside one subgraph → w that subgraph's initializer (tiny ones: a copy in each).

    Recurses: an initializer moved into a branch sinks further into a Loop body inside it. IR < 4 models are left
    alone (their initializers must also be graph inputs, which If branches cannot have).
    """

    name = "sink_initializers"
    groups = ("fold",)
    tidies_input = True

    def call(self, model: Model) -> PassResult:
        if model.graph.legacy_initializer_inputs or next(model.graph.subgraphs(), None) is None:
            return PassResult(model, False)
        moved, copied = _sink(model.graph)
        counters = {key: n for key, n in (("initializers_sunk", moved), ("initializers_copied", copied)) if n}
        return PassResult(model, bool(counters), counters=counters)
