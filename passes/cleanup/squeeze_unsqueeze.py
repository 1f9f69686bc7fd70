"""Cancel a Squeeze and an Unsqueeze over the same axes (attribute form before opset 13, input form after)."""
from __future__ import annotations

from onnxopt.ir import Model
from onnxopt.passmanager import Pass, PassResult, register_pass
from onnxopt.passes.cleanup._common import Facts, axes_of, is_standard, only_feeds

INVERSE = {"Squeeze": "Unsqueeze", "Unsqueeze": "Squeeze"}


@register_pass
class CancelSqueezeUnsqueeze(Pass):
    """Unsqueeze(Squeeze(x, axes), axes) → x and Squeeze(Unsqueeze(x, axes), axes) → x.

    Recurses into subgraphs. Both axis lists refer to dims of the same rank (the squeezed input's, or the
    unsqueezed output's), so they are compared directly; mixed-sign lists are normalized when that rank is
    inferred. A Squeeze without axes (squeeze every 1) is left alone: which dims it removes needs static shapes.
    """

    name = "cancel_squeeze_unsqueeze"
    groups = ("cleanup",)

    def call(self, model: Model) -> PassResult:
        """Bypass every Squeeze/Unsqueeze pair that restores its input."""
        facts = Facts(model)
        cancelled = 0
        for graph in model.graph.all_graphs():
            for node in graph:
                if node.op_type not in INVERSE or not is_standard(node) or node.inputs[0] is None:
                    continue
                inner = node.inputs[0]
                first = inner.producer()
                if first is None or first.op_type != INVERSE[node.op_type] or not is_standard(first):
                    continue
                x = first.inputs[0]
                if x is None or not only_feeds(inner, node):
                    continue
                outer_axes, inner_axes = axes_of(node, 1), axes_of(first, 1)
                if not outer_axes or not inner_axes:
                    continue
                if set(outer_axes) != set(inner_axes):
                    # mixed signs: normalize by the common rank, the Unsqueeze's output (the intermediate or x)
                    rank = facts.rank(inner if first.op_type == "Unsqueeze" else x)
                    if rank is None or {i % rank for i in outer_axes} != {i % rank for i in inner_axes}:
                        continue
                graph.replace_node_with(node, x)
                first.graph.remove(first)
                cancelled += 1
        return PassResult(model, bool(cancelled), {"cancelled": cancelled})
