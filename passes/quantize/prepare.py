"""Canonicalizations that let ORT's QDQ selectors see more int8 groups (the quantizer runs them first)."""
from __future__ import annotations

from onnxopt.ir import Model, Node, Value
from onnxopt.passmanager import Pass, PassResult, register_pass


@register_pass
class RewriteSumAsAdd(Pass):
    """Sum(a, b, c) → Add(Add(a, b), c): ORT fuses Add into QLinearAdd but has no int8 Sum (old exports use Sum
    for residual connections). Exact. Subgraphs included."""

    name = "rewrite_sum_as_add"

    def call(self, model: Model) -> PassResult:
        """Replace every Sum of 2 or more inputs by a chain of Adds."""
        count = 0
        for graph in model.graph.all_graphs():
            for node in graph:
                if node.op_type != "Sum" or node.domain not in ("", "ai.onnx") or len(node.inputs) < 2:
                    continue
                if any(v is None for v in node.inputs):
                    continue
                acc = node.inputs[0]
                with graph.inserting_before(node):
                    for i, operand in enumerate(node.inputs[1:], 1):
                        last = i == len(node.inputs) - 1
                        add = Node("Add", [acc, operand], [Value(graph.unique_name(f"{node.outputs[0].name}_add{i}"))],
                                   name=graph.unique_name(node.name if last else f"{node.name}_add{i}"))
                        graph.append(add)
                        acc = add.outputs[0]
                acc.type = node.outputs[0].type
                graph.replace_node_with(node, acc)
                count += 1
        return PassResult(model, count > 0, {"sums_rewritten": count})
