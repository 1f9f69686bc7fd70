"""extract_constants: Constant nodes become initializers (subgraphs included)."""
from __future__ import annotations

from onnxopt.ir import Graph, Model, Node
from onnxopt.ir.constants import constant_tensor
from onnxopt.passmanager import Pass, PassResult, register_pass
from onnxopt.passes.folding.materialize import can_replace, constant_in_place, replace_with_constant

def is_constant_node(node: Node) -> bool:
    """True for a standard-domain Constant node."""
    return node.op_type == "Constant" and node.domain in ("", "ai.onnx")


def extract_graph_constants(graph: Graph) -> int:
    """Turn the dense Constant nodes of `graph` (not its subgraphs) into initializers; returns how many."""
    count = 0
    for node in graph:
        if not is_constant_node(node) or len(node.outputs) != 1 or not can_replace(node.outputs[0]):
            continue
        tensor = constant_tensor(node)
        if tensor is None:
            continue
        if not constant_in_place(node.outputs[0], tensor):
            replace_with_constant(node.outputs[0], tensor)
            graph.remove(node)
        count += 1
    return count


@register_pass
class ExtractConstants(Pass):
    """Constant(value=T) → initializer T under the same name (sparse constants stay nodes); recurses into subgraphs."""

    name = "extract_constants"
    groups = ("fold",)

    def call(self, model: Model) -> PassResult:
        count = sum(extract_graph_constants(graph) for graph in model.graph.all_graphs())
        return PassResult(model, count > 0, counters={"constants_extracted": count} if count else {})
