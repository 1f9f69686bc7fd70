"""Graph.remove on nodes that carry subgraphs."""
from __future__ import annotations

from onnxopt.ir import lint
from onnxopt.testing import model_from_text


def test_removing_an_if_releases_the_outer_values_its_branches_read():
    model = model_from_text(
        """
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[2] x, bool c) => (float[2] y) {
            t = Neg(x)
            u = If(c) <then_branch = a () => (float[2] p) { p = Relu(t) }, else_branch = b () => (float[2] q) { q = Abs(t) }>
            y = Identity(x)
        }"""
    )
    graph = model.graph
    neg, if_node = graph.nodes[0], graph.nodes[1]
    assert len(neg.outputs[0].uses()) == 2
    graph.remove(if_node)
    assert neg.outputs[0].uses() == ()
    graph.remove(neg)
    lint(model)
