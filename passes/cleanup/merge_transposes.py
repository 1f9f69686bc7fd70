"""Merge consecutive Transposes into one, or into nothing when they cancel."""
from __future__ import annotations

from onnxopt.ir import Model, Node
from onnxopt.passmanager import Pass, PassResult, register_pass
from onnxopt.passes.cleanup._common import is_standard, only_feeds


def _perm(node: Node, rank: int) -> list[int]:
    perm = node.attr("perm")
    return list(perm) if perm is not None else list(reversed(range(rank)))


@register_pass
class MergeConsecutiveTransposes(Pass):
    """Transpose(Transpose(x, p), q) → Transpose(x, [p[i] for i in q]), or x when that is the identity.

    Recurses into subgraphs. The inner Transpose must feed only the outer one; chains merge in one run.
    """

    name = "merge_consecutive_transposes"
    groups = ("cleanup",)

    def call(self, model: Model) -> PassResult:
        """Merge every Transpose into the Transpose that produces its input."""
        merged = cancelled = 0
        for graph in model.graph.all_graphs():
            for node in graph:
                if node.op_type != "Transpose" or not is_standard(node) or node.inputs[0] is None:
                    continue
                inner = node.inputs[0]
                first = inner.producer()
                if first is None or first.op_type != "Transpose" or not is_standard(first):
                    continue
                if first.inputs[0] is None or not only_feeds(inner, node):
                    continue
                known = node.attr("perm", first.attr("perm"))
                if known is None:
                    perm = None  # both reverse all dims: they cancel whatever the rank
                else:
                    p, q = _perm(first, len(known)), _perm(node, len(known))
                    if len(p) != len(q):
                        continue
                    perm = [p[i] for i in q]
                x = first.inputs[0]
                if perm is None or perm == list(range(len(perm))):
                    graph.replace_node_with(node, x)
                    cancelled += 1
                else:
                    node.replace_input_with(0, x)
                    node.set_attr("perm", perm)
                    merged += 1
                first.graph.remove(first)
        counters = {"merged": merged, "cancelled": cancelled}
        return PassResult(model, bool(merged or cancelled), counters)
