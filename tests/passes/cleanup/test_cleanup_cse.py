"""eliminate_common_subexpression: merges, the graph-output naming rule, and each refusal."""
from __future__ import annotations

import numpy as np
import pytest

from cleanup_checks import check, model_from_text, output_names, run_pass

H17 = '<ir_version: 8, opset_import: ["" : 17]>'
SIG = "(float[2,3] x, float[2,3] w) => (float[2,3] y)"


def graph(body: str, sig: str = SIG, header: str = H17) -> str:
    return f"{header}\ng {sig} {{\n{body}\n}}"


CASES = [
    ("duplicate", graph("a = Relu(x)\n b = Relu(x)\n y = Add(a, b)"), {"Relu": 1, "Add": 1}, True),
    ("cascade", graph("a = Relu(x)\n b = Relu(x)\n c = Neg(a)\n d = Neg(b)\n y = Add(c, d)"),
     {"Relu": 1, "Neg": 1, "Add": 1}, True),
    ("same_attributes", graph("a = Softmax<axis=1>(x)\n b = Softmax<axis=1>(x)\n y = Sub(a, b)"),
     {"Softmax": 1, "Sub": 1}, True),
    ("commutative", graph("a = Mul(x, w)\n b = Mul(w, x)\n y = Sub(a, b)"), {"Mul": 1, "Sub": 1}, True),
    ("not_commutative", graph("a = Sub(x, w)\n b = Sub(w, x)\n y = Add(a, b)"), {"Sub": 2, "Add": 1}, False),
    ("different_attributes", graph("a = Softmax<axis=1>(x)\n b = Softmax<axis=0>(x)\n y = Sub(a, b)"),
     {"Softmax": 2, "Sub": 1}, False),
    ("different_inputs", graph("a = Relu(x)\n b = Relu(w)\n y = Add(a, b)"), {"Relu": 2, "Add": 1}, False),
    ("different_ops", graph("a = Relu(x)\n b = Neg(x)\n y = Add(a, b)"), {"Relu": 1, "Neg": 1, "Add": 1}, False),
    ("multi_output", graph("a, i = TopK<axis=1>(x, k)\n b, j = TopK<axis=1>(x, k)\n y = Sub(a, b)\n z = Sub(i, j)",
                           "(float[2,3] x) => (float[2,2] y, int64[2,2] z) <int64[1] k = {2}>"),
     {"TopK": 1, "Sub": 2}, True),
    # y keeps its name: the kept Relu's output is renamed to it
    ("one_is_output", graph("y = Relu(x)\n b = Relu(x)\n z = Neg(b)", "(float[2,3] x) => (float[2,3] z, float[2,3] y)"),
     {"Relu": 1, "Neg": 1}, True),
    # both are graph outputs: merging would need an Identity, so both stay
    ("both_outputs", graph("y = Relu(x)\n z = Relu(x)", "(float[2,3] x) => (float[2,3] y, float[2,3] z)"),
     {"Relu": 2}, False),
    ("inside_branch", graph(
        "y = If(c) <then_branch = g1 () => (float[2,3] t) { p = Relu(x)\n q = Relu(x)\n t = Add(p, q) },"
        " else_branch = g2 () => (float[2,3] e) { e = Neg(x) }>", "(float[2,3] x, bool c) => (float[2,3] y)"),
     {"If": 1, "Relu": 1, "Add": 1, "Neg": 1}, True),
]


@pytest.mark.parametrize("text, after, fired", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_eliminate_common_subexpression(text: str, after: dict[str, int], fired: bool) -> None:
    model = check("eliminate_common_subexpression", text, after, fired=fired)
    assert output_names(model) == output_names(model_from_text(text))


def test_random_ops_are_not_merged() -> None:
    text = graph("a = RandomUniformLike<seed=1.0>(x)\n b = RandomUniformLike<seed=1.0>(x)\n y = Sub(a, b)")
    model = model_from_text(text)
    assert not run_pass("eliminate_common_subexpression", model).modified


def test_identical_ifs_are_not_merged() -> None:
    branch = "<then_branch = g{0} () => (float[2,3] t{0}) {{ t{0} = Relu(x) }}, else_branch = h{0} () => (float[2,3] e{0}) {{ e{0} = Neg(x) }}>"
    text = graph(f"a = If(c) {branch.format(1)}\n b = If(c) {branch.format(2)}\n y = Add(a, b)",
                 "(float[2,3] x, bool c) => (float[2,3] y)")
    check("eliminate_common_subexpression", text, {"If": 2, "Relu": 2, "Neg": 2, "Add": 1}, fired=False,
          feeds={"x": np.ones((2, 3), np.float32), "c": np.array(True)})
