"""Canonicalizations that let ORT's QDQ selectors see more int8 groups (the quantizer runs them first)."""
from __future__ import annotations

import numpy as np

from onnxopt.ir import Model, Node, Tensor, Value
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


@register_pass
class RewriteDivAsMul(Pass):
    """Div(x, c) → Mul(x, 1/c) for a float constant c without zeros: ORT fuses Mul into QLinearMul but has no int8
    Div (exports write hard-swish as x·relu6(x+3)/6). 1/c is rounded once, so results may differ by an ulp."""

    name = "rewrite_div_as_mul"

    def call(self, model: Model) -> PassResult:
        """Replace divisions by float constants with multiplications by their reciprocals."""
        count = 0
        for graph in model.graph.all_graphs():
            for node in graph:
                if node.op_type != "Div" or node.domain not in ("", "ai.onnx") or len(node.inputs) != 2:
                    continue
                divisor = node.inputs[1]
                data = divisor.numpy() if divisor is not None else None
                if data is None or data.dtype.kind != "f" or data.size > 4096 or not np.all(np.isfinite(data)) or np.any(data == 0):
                    continue
                reciprocal = Value(graph.unique_name(f"{divisor.name}_reciprocal"),
                                   const_value=Tensor.from_array((1 / data.astype(np.float64)).astype(data.dtype)))
                graph.add_initializer(reciprocal)
                mul = Node("Mul", [node.inputs[0], reciprocal], [Value(graph.unique_name(f"{node.outputs[0].name}_mul"))],
                           name=graph.unique_name(f"{node.name}_as_mul"))
                graph.insert_before(node, mul)
                mul.outputs[0].type = node.outputs[0].type
                graph.replace_node_with(node, mul.outputs[0])
                if not divisor.has_uses() and divisor.is_initializer() and not divisor.is_graph_input():
                    graph.remove_initializer(divisor)
                count += 1
        return PassResult(model, count > 0, {"divisions_rewritten": count})
