"""Turning computed data into initializers: where they live, how they keep names, IR < 4 graph inputs."""
from __future__ import annotations

from onnxopt.ir import Graph, Tensor, Value


def constant_home(graph: Graph) -> Graph:
    """The graph a new constant read in `graph` is stored in.

    IR < 4 requires every initializer to be a graph input too, which subgraphs cannot have (If branches take no
    inputs), so there constants go to the main graph and are captured; otherwise they stay where they are read.
    """
    return graph.root() if graph.legacy_initializer_inputs else graph


def can_replace(value: Value) -> bool:
    """True when `value` can become an initializer without changing its graph's interface."""
    graph = value.graph
    return graph is not None and (not value.is_graph_output() or constant_home(graph) is graph)


def add_constant(graph: Graph, tensor: Tensor, name: str) -> Value:
    """A new initializer readable from `graph`, named after `name` (made unique)."""
    const = Value(name, const_value=tensor)
    adopt_initializer(graph, const)
    return const


def adopt_initializer(graph: Graph, const: Value) -> None:
    """Register a detached constant Value as an initializer readable from `graph` (an input too in IR < 4)."""
    home = constant_home(graph)
    home.add_initializer(const)
    _list_as_input(home, const)


def _list_as_input(home: Graph, const: Value) -> None:
    """IR < 4 requires every initializer to be a graph input too, with its type."""
    if home.legacy_initializer_inputs:
        const.set_type(const.const_value.dtype, const.const_value.shape)
        home.add_input(const)


def constant_in_place(value: Value, tensor: Tensor) -> bool:
    """Make `value` itself an initializer holding `tensor` and remove its producer, when it is the producer's only
    output, stays in its graph and is no graph output (readers keep the value: nothing renamed or re-wired).
    False when it cannot: use replace_with_constant."""
    graph = value.graph
    producer = value.producer()
    if graph is None or constant_home(graph) is not graph or value.is_graph_output() or producer is None \
            or len(producer.outputs) != 1:
        return False
    graph.promote_to_initializer(value, tensor)
    _list_as_input(graph, value)
    return True


def replace_with_constant(value: Value, tensor: Tensor) -> Value:
    """Make every reader of `value` (and its graph's output list) read a new initializer holding `tensor`.

    The initializer takes over the value's name (graph outputs keep theirs); the caller removes the value's
    producer right after.
    """
    graph = value.graph
    assert graph is not None and can_replace(value), value
    name = value.name
    const = add_constant(graph, tensor, name)
    for node, index in value.uses():
        node.replace_input_with(index, const)
    if value.is_graph_output():
        if const.type is None:
            const.set_type(tensor.dtype, tensor.shape)
        graph.set_outputs([const if v is value else v for v in graph.outputs])
    value.name = graph.unique_name(f"{name}_replaced")
    const.name = name
    return const
