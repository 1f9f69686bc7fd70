"""networkx views of a graph: for whole-graph algorithms (cycles, regions) and DOT/GraphML export."""
from __future__ import annotations

import os

import networkx as nx

from onnxopt.ir.graph import Graph


def to_networkx(graph: Graph) -> nx.MultiDiGraph:
    """Nodes of the graph (by name or position) and one edge per value flowing between them."""
    g = nx.MultiDiGraph(name=graph.name)
    ids = {}
    for i, node in enumerate(graph):
        ids[node] = node.name or f"#{i}"
        g.add_node(ids[node], op_type=node.op_type, domain=node.domain)
    for value in graph.inputs:
        g.add_node(f"input:{value.name}", op_type="Input", domain="")
    for node in graph:
        for value in graph.node_dependencies(node):
            producer = value.producer()
            source = ids.get(producer) if producer is not None else (
                f"input:{value.name}" if value in graph.input_set else None
            )
            if source is not None:
                g.add_edge(source, ids[node], value=value.name)
    for value in graph.outputs:
        g.add_node(f"output:{value.name}", op_type="Output", domain="")
        producer = value.producer()
        if producer in ids:
            g.add_edge(ids[producer], f"output:{value.name}", value=value.name)
    return g


def write_graph(graph: Graph, path: str | os.PathLike) -> None:
    """Write the graph as GraphML (.graphml) or Graphviz DOT (.dot)."""
    path = os.fspath(path)
    g = to_networkx(graph)
    if path.endswith(".graphml"):
        nx.write_graphml(g, path)
        return
    with open(path, "w", encoding="utf-8") as f:
        f.write("digraph onnx {\n  rankdir=TB;\n  node [shape=box, style=rounded];\n")
        for name, data in g.nodes(data=True):
            f.write(f'  "{_escape(name)}" [label="{_escape(data["op_type"])}\\n{_escape(name)}"];\n')
        for source, target, data in g.edges(data=True):
            f.write(f'  "{_escape(source)}" -> "{_escape(target)}" [label="{_escape(data["value"])}"];\n')
        f.write("}\n")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
