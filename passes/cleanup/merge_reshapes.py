"""Merge a Reshape of a Reshape into one Reshape of the original input."""
from __future__ import annotations

from onnxopt.ir import Model
from onnxopt.passmanager import Pass, PassResult, register_pass
from onnxopt.passes.cleanup._common import const_ints, is_standard, only_feeds


@register_pass
class MergeConsecutiveReshapes(Pass):
    """Reshape(Reshape(x, s1), s2) → Reshape(x, s2) when s2 is constant and has no 0 that copies an inner dim.

    Recurses into subgraphs. The inner Reshape must feed only the outer one. Opset 5+ (shape as an input).
    """

    name = "merge_consecutive_reshapes"
    groups = ("cleanup",)

    def call(self, model: Model) -> PassResult:
        """Make every Reshape read the input of the Reshape that feeds it, removing that one."""
        if model.opset < 5:
            return PassResult(model, False)
        merged = 0
        for graph in model.graph.all_graphs():
            for node in graph:
                if node.op_type != "Reshape" or not is_standard(node) or node.inputs[0] is None:
                    continue
                inner = node.inputs[0]
                first = inner.producer()
                if first is None or first.op_type != "Reshape" or not is_standard(first) or first.inputs[0] is None:
                    continue
                target = const_ints(node.inputs[1])
                if target is None or not only_feeds(inner, node):
                    continue
                if 0 in target and not node.attr("allowzero", 0):
                    continue  # a 0 copies a dim of the intermediate, which x may not have
                node.replace_input_with(0, first.inputs[0])
                first.graph.remove(first)
                merged += 1
        return PassResult(model, bool(merged), {"merged": merged})
