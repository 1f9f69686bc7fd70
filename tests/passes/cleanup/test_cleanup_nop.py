"""eliminate_nop: one positive and the negative cases per row of the no-op table. Outputs compared exactly."""
from __future__ import annotations

import numpy as np
import pytest

from cleanup_checks import check, model_from_text, output_names, run_pass
from onnxopt.ir import serialize
from onnxopt.testing import assert_same_outputs

H13 = '<ir_version: 8, opset_import: ["" : 13]>'
H17 = '<ir_version: 8, opset_import: ["" : 17]>'
H18 = '<ir_version: 8, opset_import: ["" : 18]>'


def graph(body: str, sig: str = "(float[2,3] x) => (float[2,3] y)", header: str = H17) -> str:
    return f"{header}\ng {sig} {{\n{body}\n}}"


# (id, model text, histogram after, fired)
CASES = [
    ("identity", graph("a = Identity(x)\n y = Relu(a)"), {"Relu": 1}, True),
    ("identity_chain", graph("a = Identity(x)\n b = Identity(a)\n y = Relu(b)"), {"Relu": 1}, True),
    # the output keeps its name: Relu's output takes it over
    ("identity_to_output", graph("a = Relu(x)\n y = Identity(a)"), {"Relu": 1}, True),
    # a graph input cannot be renamed to the output's name: the Identity must stay
    ("identity_input_to_output", graph("y = Identity(x)"), {"Identity": 1}, False),
    ("identity_output_to_output", graph("y = Relu(x)\n z = Identity(y)",
                                        "(float[2,3] x) => (float[2,3] y, float[2,3] z)"), {"Relu": 1, "Identity": 1}, False),
    ("dropout_13", graph("a = Dropout(x)\n y = Relu(a)", header=H13), {"Relu": 1}, True),
    ("dropout_training_false", graph("a = Dropout(x, r, t)\n y = Relu(a)",
                                     "(float[2,3] x) => (float[2,3] y) <float r = {0.5}, bool t = {0}>"), {"Relu": 1}, True),
    ("dropout_ratio_zero_training", graph("a = Dropout(x, r, t)\n y = Relu(a)",
                                          "(float[2,3] x) => (float[2,3] y) <float r = {0.0}, bool t = {1}>"), {"Relu": 1}, True),
    ("dropout_mask_unused", graph("a, m = Dropout(x)\n y = Relu(a)"), {"Relu": 1}, True),
    ("dropout_mask_used", graph("a, m = Dropout(x)\n y = Relu(a)", "(float[2,3] x) => (float[2,3] y, bool[2,3] m)"),
     {"Dropout": 1, "Relu": 1}, False),
    ("transpose_identity", graph("a = Transpose<perm=[0,1]>(x)\n y = Relu(a)"), {"Relu": 1}, True),
    ("transpose_swap", graph("a = Transpose<perm=[1,0]>(x)\n y = Relu(a)", "(float[2,3] x) => (float[3,2] y)"),
     {"Transpose": 1, "Relu": 1}, False),
    ("transpose_default_rank1", graph("a = Transpose(x)\n y = Relu(a)", "(float[3] x) => (float[3] y)"), {"Relu": 1}, True),
    ("transpose_default_rank2", graph("a = Transpose(x)\n y = Relu(a)", "(float[2,3] x) => (float[3,2] y)"),
     {"Transpose": 1, "Relu": 1}, False),
    ("cast_same", graph("a = Cast<to=1>(x)\n y = Relu(a)"), {"Relu": 1}, True),
    ("cast_other", graph("a = Cast<to=11>(x)\n y = Relu(a)", "(float[2,3] x) => (double[2,3] y)"),
     {"Cast": 1, "Relu": 1}, False),
    ("reshape_same", graph("a = Reshape(x, s)\n y = Relu(a)", "(float[2,3] x) => (float[2,3] y) <int64[2] s = {2, 3}>"),
     {"Relu": 1}, True),
    ("reshape_zero_minus_one", graph("a = Reshape(x, s)\n y = Relu(a)",
                                     "(float[N,3] x) => (float[N,3] y) <int64[2] s = {0, -1}>"), {"Relu": 1}, True),
    ("reshape_symbolic_batch", graph("a = Reshape(x, s)\n y = Relu(a)",
                                     "(float[N,3] x) => (float[N,3] y) <int64[2] s = {-1, 3}>"), {"Relu": 1}, True),
    ("reshape_other", graph("a = Reshape(x, s)\n y = Relu(a)", "(float[2,3] x) => (float[3,2] y) <int64[2] s = {3, 2}>"),
     {"Reshape": 1, "Relu": 1}, False),
    ("reshape_dynamic_target", graph("s = Shape(x)\n a = Reshape(x, s)\n y = Relu(a)"),
     {"Shape": 1, "Reshape": 1, "Relu": 1}, False),
    ("expand_same", graph("a = Expand(x, s)\n y = Relu(a)", "(float[2,3] x) => (float[2,3] y) <int64[2] s = {1, 3}>"),
     {"Relu": 1}, True),
    ("expand_broadcasts", graph("a = Expand(x, s)\n y = Relu(a)", "(float[1,3] x) => (float[2,3] y) <int64[2] s = {2, 3}>"),
     {"Expand": 1, "Relu": 1}, False),
    ("expand_adds_rank", graph("a = Expand(x, s)\n y = Relu(a)",
                               "(float[2,3] x) => (float[1,2,3] y) <int64[3] s = {1, 2, 3}>"), {"Expand": 1, "Relu": 1}, False),
    ("flatten_rank2", graph("a = Flatten<axis=1>(x)\n y = Relu(a)"), {"Relu": 1}, True),
    ("flatten_rank3", graph("a = Flatten<axis=1>(x)\n y = Relu(a)", "(float[2,3,1] x) => (float[2,3] y)"),
     {"Flatten": 1, "Relu": 1}, False),
    ("flatten_axis0", graph("a = Flatten<axis=0>(x)\n y = Relu(a)", "(float[2,3] x) => (float[1,6] y)"),
     {"Flatten": 1, "Relu": 1}, False),
    ("pad_zero", graph("a = Pad(x, p)\n y = Relu(a)", "(float[2,3] x) => (float[2,3] y) <int64[4] p = {0, 0, 0, 0}>"),
     {"Relu": 1}, True),
    ("pad_nonzero", graph("a = Pad(x, p)\n y = Relu(a)", "(float[2,3] x) => (float[2,4] y) <int64[4] p = {0, 1, 0, 0}>"),
     {"Pad": 1, "Relu": 1}, False),
    ("slice_all_int64max", graph("a = Slice(x, s, e)\n y = Relu(a)",
                                 "(float[N,3] x) => (float[N,3] y) <int64[1] s = {0}, int64[1] e = {9223372036854775807}>"),
     {"Relu": 1}, True),
    ("slice_all_static", graph("a = Slice(x, s, e, ax)\n y = Relu(a)",
                               "(float[2,3] x) => (float[2,3] y) <int64[1] s = {-5}, int64[1] e = {3}, int64[1] ax = {-1}>"),
     {"Relu": 1}, True),
    ("slice_part", graph("a = Slice(x, s, e, ax)\n y = Relu(a)",
                         "(float[2,3] x) => (float[2,2] y) <int64[1] s = {1}, int64[1] e = {3}, int64[1] ax = {1}>"),
     {"Slice": 1, "Relu": 1}, False),
    ("slice_step", graph("a = Slice(x, s, e, ax, st)\n y = Relu(a)",
                         "(float[2,3] x) => (float[2,2] y) <int64[1] s = {0}, int64[1] e = {3}, int64[1] ax = {1}, "
                         "int64[1] st = {2}>"), {"Slice": 1, "Relu": 1}, False),
    ("slice_unknown_dim", graph("a = Slice(x, s, e)\n y = Relu(a)",
                                "(float[N,3] x) => (float[N,3] y) <int64[1] s = {0}, int64[1] e = {100}>"),
     {"Slice": 1, "Relu": 1}, False),
    ("concat_one", graph("a = Concat<axis=0>(x)\n y = Relu(a)"), {"Relu": 1}, True),
    ("concat_two", graph("a = Concat<axis=0>(x, x)\n y = Relu(a)", "(float[2,3] x) => (float[4,3] y)"),
     {"Concat": 1, "Relu": 1}, False),
    ("split_one", graph("a = Split<axis=1, num_outputs=1>(x)\n y = Relu(a)", header=H18), {"Relu": 1}, True),
    ("split_two", graph("a, b = Split<axis=1, num_outputs=2>(x)\n y = Add(a, b)", "(float[2,4] x) => (float[2,2] y)", H18),
     {"Split": 1, "Add": 1}, False),
]


@pytest.mark.parametrize("text, after, fired", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_eliminate_nop(text: str, after: dict[str, int], fired: bool) -> None:
    model = check("eliminate_nop", text, after, fired=fired)
    assert output_names(model) == output_names(model_from_text(text))


def test_dropout_opset10_mask_output_unused() -> None:
    text = graph("a, m = Dropout<ratio=0.3>(x)\n y = Relu(a)", header='<ir_version: 5, opset_import: ["" : 10]>')
    check("eliminate_nop", text, {"Relu": 1})


def test_dropout_training_mode_from_input_is_kept() -> None:
    text = graph("a = Dropout(x, r, t)\n y = Relu(a)", "(float[2,3] x, bool t) => (float[2,3] y) <float r = {0.5}>")
    feeds = {"x": np.ones((2, 3), np.float32), "t": np.array(False)}  # training mode would be random
    check("eliminate_nop", text, {"Dropout": 1, "Relu": 1}, fired=False, feeds=feeds)


def test_reshape_of_symbolic_dim_to_a_number_is_kept() -> None:
    text = graph("a = Reshape(x, s)\n y = Relu(a)", "(float[N,3] x) => (float[N,3] y) <int64[2] s = {2, 3}>")
    check("eliminate_nop", text, {"Reshape": 1, "Relu": 1}, fired=False, feeds={"x": np.ones((2, 3), np.float32)})


def test_wrong_declared_output_shape_is_not_trusted() -> None:
    # y is declared [2, 3] but really is [3, 2], and onnx inference would carry that mistake on to z: neither
    # Reshape is a no-op whatever the declarations say
    text = graph("y = Transpose<perm=[1,0]>(x)\n z = Relu(y)\n r = Reshape(y, s)\n q = Reshape(z, s)\n w = Add(r, q)",
                 "(float[2,3] x) => (float[2,3] y, float[2,3] w) <int64[2] s = {2, 3}>")
    model = model_from_text(text)
    original = serialize(model)
    assert not run_pass("eliminate_nop", model).modified
    assert_same_outputs(original, model, rtol=0, atol=0)


def test_nops_inside_if_branches() -> None:
    text = graph(
        "t = Relu(x)\n y = If(c) <then_branch = g1 () => (float[2,3] a) { i = Identity(t)\n a = Neg(i) },"
        " else_branch = g2 () => (float[2,3] b) { b = Identity(t) }>",
        "(float[2,3] x, bool c) => (float[2,3] y)",
    )
    # the then-branch Identity goes; the else-branch one returns an outer value under the branch's output name
    for cond in (True, False):
        check("eliminate_nop", text, {"Relu": 1, "If": 1, "Neg": 1, "Identity": 1},
              feeds={"x": np.arange(6, dtype=np.float32).reshape(2, 3) - 2, "c": np.array(cond)})
