"""Common-subexpression elimination: identical nodes over the same input Values are computed once."""
from __future__ import annotations

from typing import Hashable

from onnxopt.ir import Graph, Model, Node
from onnxopt.passmanager import Pass, PassResult, register_pass
from onnxopt.passes.cleanup._common import can_bypass

# Only ops whose meaning is known may merge; custom or model-local ops might be stateful or random.
KNOWN_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")
NONDETERMINISTIC = frozenset({
    "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli", "Dropout",
})
COMMUTATIVE = frozenset({
    "Add", "Mul", "Sum", "Max", "Min", "Mean", "And", "Or", "Xor", "Equal", "BitwiseAnd", "BitwiseOr", "BitwiseXor",
})


def _key(node: Node) -> Hashable:
    """Op, attributes (as serialized protos) and input Values by identity; commutative inputs in any order."""
    inputs: tuple = node.inputs
    if node.op_type in COMMUTATIVE:
        inputs = tuple(sorted(inputs, key=id))
    attrs = tuple(sorted((name, attr.SerializeToString(deterministic=True)) for name, attr in node.attrs.items()))
    present = tuple(bool(v.name) for v in node.outputs)
    return node.domain or "ai.onnx", node.op_type, node.overload, inputs, attrs, present


def _eligible(node: Node, local_functions: set[tuple[str, str]]) -> bool:
    return (
        node.domain in KNOWN_DOMAINS
        and node.op_type not in NONDETERMINISTIC
        and (node.domain, node.op_type) not in local_functions
        and bool(node.outputs)
        and not node.subgraphs()
    )


def _merge_in(graph: Graph, local_functions: set[tuple[str, str]]) -> int:
    seen: dict[Hashable, Node] = {}
    merged = 0
    for node in graph:
        if not _eligible(node, local_functions):
            continue
        key = _key(node)
        earlier = seen.get(key)
        if earlier is None:
            seen[key] = node
            continue
        pairs = list(zip(node.outputs, earlier.outputs))
        if not all(can_bypass(out, kept) for out, kept in pairs):
            continue  # both feed graph outputs: merging would need an Identity, no saving
        for out, kept in pairs:
            out.replace_all_uses_with(kept)
        graph.remove(node)
        merged += 1
    return merged


@register_pass
class EliminateCommonSubexpression(Pass):
    """Two nodes with the same op, attributes and input Values → the first one, read by both users.

    Recurses into subgraphs, each graph on its own. Skips random ops, unknown domains, model-local functions and
    nodes that carry subgraphs. Inputs compare by identity: equal constants are shared first by the initializer
    deduplication pass.
    """

    name = "eliminate_common_subexpression"
    groups = ("cleanup",)

    def call(self, model: Model) -> PassResult:
        """Merge every node into an earlier identical one, in one forward sweep per graph."""
        local_functions = {(f.domain, f.name) for f in model.functions}
        merged = sum(_merge_in(graph, local_functions) for graph in model.graph.all_graphs())
        return PassResult(model, bool(merged), {"merged": merged})
