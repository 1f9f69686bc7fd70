"""Transpose, Reshape, Squeeze/Unsqueeze and Cast chains: merges, cancellations and every refusal."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from cleanup_checks import check, model_from_text, output_names
from onnxopt.passes.cleanup.merge_casts import EXACT_WIDENINGS, TARGETS, is_exact_chain
from onnxopt.testing import run

H11 = '<ir_version: 6, opset_import: ["" : 11]>'
H17 = '<ir_version: 8, opset_import: ["" : 17]>'


def graph(body: str, sig: str, header: str = H17) -> str:
    return f"{header}\ng {sig} {{\n{body}\n}}"


T3 = "(float[2,3,4] x) => "

TRANSPOSES = [
    ("compose", graph("a = Transpose<perm=[1,0,2]>(x)\n b = Transpose<perm=[0,2,1]>(a)\n y = Relu(b)",
                      T3 + "(float[3,4,2] y)"), {"Transpose": 1, "Relu": 1}, True),
    ("cancel", graph("a = Transpose<perm=[1,2,0]>(x)\n b = Transpose<perm=[2,0,1]>(a)\n y = Relu(b)",
                     T3 + "(float[2,3,4] y)"), {"Relu": 1}, True),
    ("cancel_defaults", graph("a = Transpose(x)\n b = Transpose(a)\n y = Relu(b)", T3 + "(float[2,3,4] y)"),
     {"Relu": 1}, True),
    ("one_default", graph("a = Transpose(x)\n b = Transpose<perm=[2,1,0]>(a)\n y = Relu(b)", T3 + "(float[2,3,4] y)"),
     {"Relu": 1}, True),
    ("chain_of_three", graph("a = Transpose<perm=[1,0,2]>(x)\n b = Transpose<perm=[0,2,1]>(a)\n"
                             " c = Transpose<perm=[2,1,0]>(b)\n y = Relu(c)", T3 + "(float[2,4,3] y)"),
     {"Transpose": 1, "Relu": 1}, True),
    # the outer Transpose is a graph output and x a graph input: an Identity keeps the output's name (2 nodes → 1)
    ("cancel_into_output", graph("a = Transpose<perm=[1,0,2]>(x)\n y = Transpose<perm=[1,0,2]>(a)", T3 + "(float[2,3,4] y)"),
     {"Identity": 1}, True),
    ("shared_intermediate", graph("a = Transpose<perm=[1,0,2]>(x)\n b = Transpose<perm=[1,0,2]>(a)\n y = Add(a, a)\n"
                                  " z = Relu(b)", T3 + "(float[3,2,4] y, float[2,3,4] z)"),
     {"Transpose": 2, "Add": 1, "Relu": 1}, False),
    ("intermediate_is_output", graph("a = Transpose<perm=[1,0,2]>(x)\n b = Transpose<perm=[1,0,2]>(a)\n z = Relu(b)",
                                     T3 + "(float[3,2,4] a, float[2,3,4] z)"), {"Transpose": 2, "Relu": 1}, False),
]

RESHAPES = [
    ("merge", graph("a = Reshape(x, s1)\n b = Reshape(a, s2)\n y = Relu(b)",
                    T3 + "(float[4,6] y) <int64[2] s1 = {6, 4}, int64[2] s2 = {4, -1}>"), {"Reshape": 1, "Relu": 1}, True),
    ("chain_of_three", graph("a = Reshape(x, s1)\n b = Reshape(a, s2)\n c = Reshape(b, s3)\n y = Relu(c)",
                             T3 + "(float[24] y) <int64[2] s1 = {6, 4}, int64[2] s2 = {4, -1}, int64[1] s3 = {24}>"),
     {"Reshape": 1, "Relu": 1}, True),
    # 0 copies the intermediate's dim 0 (6): from x it would copy 2
    ("zero_in_target", graph("a = Reshape(x, s1)\n b = Reshape(a, s2)\n y = Relu(b)",
                             T3 + "(float[6,4] y) <int64[2] s1 = {6, 4}, int64[2] s2 = {0, -1}>"), {"Reshape": 2, "Relu": 1}, False),
    ("shared_intermediate", graph("a = Reshape(x, s1)\n b = Reshape(a, s2)\n y = Relu(b)\n z = Neg(a)",
                                  T3 + "(float[4,6] y, float[6,4] z) <int64[2] s1 = {6, 4}, int64[2] s2 = {4, -1}>"),
     {"Reshape": 2, "Relu": 1, "Neg": 1}, False),
    ("dynamic_outer_target", graph("a = Reshape(x, s1)\n s2 = Shape(a)\n b = Reshape(a, s2)\n y = Relu(b)",
                                   T3 + "(float[6,4] y) <int64[2] s1 = {6, 4}>"), {"Reshape": 2, "Shape": 1, "Relu": 1}, False),
]

SQUEEZES = [
    ("unsqueeze_squeeze_11", graph("a = Unsqueeze<axes=[0, 3]>(x)\n b = Squeeze<axes=[3, 0]>(a)\n y = Relu(b)",
                                   T3 + "(float[2,3,4] y)", H11), {"Relu": 1}, True),
    ("squeeze_unsqueeze_11", graph("a = Squeeze<axes=[1]>(x)\n b = Unsqueeze<axes=[1]>(a)\n y = Relu(b)",
                                   "(float[2,1,4] x) => (float[2,1,4] y)", H11), {"Relu": 1}, True),
    ("unsqueeze_squeeze_13", graph("a = Unsqueeze(x, ax)\n b = Squeeze(a, ax)\n y = Relu(b)",
                                   T3 + "(float[2,3,4] y) <int64[1] ax = {-1}>"), {"Relu": 1}, True),
    ("mixed_signs_known_rank", graph("a = Unsqueeze(x, ax)\n b = Squeeze(a, bx)\n y = Relu(b)",
                                     T3 + "(float[2,3,4] y) <int64[1] ax = {-1}, int64[1] bx = {3}>"), {"Relu": 1}, True),
    ("different_axes", graph("a = Squeeze<axes=[1]>(x)\n b = Unsqueeze<axes=[0]>(a)\n y = Relu(b)",
                             "(float[2,1,4] x) => (float[1,2,4] y)", H11), {"Squeeze": 1, "Unsqueeze": 1, "Relu": 1}, False),
    ("squeeze_without_axes", graph("a = Squeeze(x)\n b = Unsqueeze(a, ax)\n y = Relu(b)",
                                   "(float[2,1,4] x) => (float[2,1,4] y) <int64[1] ax = {1}>"),
     {"Squeeze": 1, "Unsqueeze": 1, "Relu": 1}, False),
    ("shared_intermediate", graph("a = Unsqueeze(x, ax)\n b = Squeeze(a, ax)\n y = Relu(b)\n z = Neg(a)",
                                  T3 + "(float[2,3,4] y, float[1,2,3,4] z) <int64[1] ax = {0}>"),
     {"Unsqueeze": 1, "Squeeze": 1, "Relu": 1, "Neg": 1}, False),
]

F = "(float[2,3] x) => "
CASTS = [
    ("f32_f64_f32", graph("a = Cast<to=11>(x)\n b = Cast<to=1>(a)\n y = Relu(b)", F + "(float[2,3] y)"), {"Relu": 1}, True),
    ("f32_f64_f16", graph("a = Cast<to=11>(x)\n y = Cast<to=10>(a)", F + "(float16[2,3] y)"), {"Cast": 1}, True),
    ("f32_f16_f32_lossy", graph("a = Cast<to=10>(x)\n b = Cast<to=1>(a)\n y = Relu(b)", F + "(float[2,3] y)"),
     {"Cast": 2, "Relu": 1}, False),
    ("f32_i64_f32_lossy", graph("a = Cast<to=7>(x)\n y = Cast<to=1>(a)", F + "(float[2,3] y)"), {"Cast": 2}, False),
    ("i8_f32_i32", graph("a = Cast<to=1>(x)\n y = Cast<to=6>(a)", "(int8[2,3] x) => (int32[2,3] y)"), {"Cast": 1}, True),
    ("i32_f32_i32_lossy", graph("a = Cast<to=1>(x)\n y = Cast<to=6>(a)", "(int32[2,3] x) => (int32[2,3] y)"),
     {"Cast": 2}, False),
    # exact widening, but 200 → int8 would wrap from uint8 and convert implementation-defined from a float
    ("u8_f32_i8_range", graph("a = Cast<to=1>(x)\n y = Cast<to=3>(a)", "(uint8[2,3] x) => (int8[2,3] y)"),
     {"Cast": 2}, False),
    ("i16_i64_i8_wraps_alike", graph("a = Cast<to=7>(x)\n y = Cast<to=3>(a)", "(int16[2,3] x) => (int8[2,3] y)"),
     {"Cast": 1}, True),
    ("shared_intermediate", graph("a = Cast<to=11>(x)\n y = Cast<to=1>(a)\n z = Neg(a)",
                                  F + "(float[2,3] y, double[2,3] z)"), {"Cast": 2, "Neg": 1}, False),
    ("intermediate_is_output", graph("a = Cast<to=11>(x)\n y = Cast<to=1>(a)", F + "(double[2,3] a, float[2,3] y)"),
     {"Cast": 2}, False),
]


def _params(cases: list) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("text, after, fired", [c[1:] for c in cases], ids=[c[0] for c in cases])


def _check(name: str, text: str, after: dict[str, int], fired: bool) -> None:
    model = check(name, text, after, fired=fired)
    assert output_names(model) == output_names(model_from_text(text))


@_params(TRANSPOSES)
def test_merge_consecutive_transposes(text: str, after: dict[str, int], fired: bool) -> None:
    _check("merge_consecutive_transposes", text, after, fired)


@_params(RESHAPES)
def test_merge_consecutive_reshapes(text: str, after: dict[str, int], fired: bool) -> None:
    _check("merge_consecutive_reshapes", text, after, fired)


@_params(SQUEEZES)
def test_cancel_squeeze_unsqueeze(text: str, after: dict[str, int], fired: bool) -> None:
    _check("cancel_squeeze_unsqueeze", text, after, fired)


@_params(CASTS)
def test_merge_exact_casts(text: str, after: dict[str, int], fired: bool) -> None:
    _check("merge_exact_casts", text, after, fired)


def test_reshape_allowzero_target_merges() -> None:
    text = graph("a = Reshape(x, s1)\n b = Reshape<allowzero=1>(a, s2)\n y = Relu(b)",
                 "(float[2,3,4] x) => (float[4,6] y) <int64[2] s1 = {6, 4}, int64[2] s2 = {4, 6}>",
                 '<ir_version: 8, opset_import: ["" : 14]>')
    check("merge_consecutive_reshapes", text, {"Reshape": 1, "Relu": 1})


def test_exact_cast_chain_over_extreme_values() -> None:
    text = graph("a = Cast<to=11>(x)\n y = Cast<to=1>(a)", F + "(float[2,3] y)")
    info = np.finfo(np.float32)
    x = np.array([[info.max, info.tiny, np.inf], [-np.inf, np.nan, -0.0]], dtype=np.float32)
    model = check("merge_exact_casts", text, {"Identity": 1}, feeds={"x": x})
    assert output_names(model) == ["y"]


def test_chains_inside_loop_body() -> None:
    text = graph(
        "y = Loop(n, c, x) <body = b (int64 i, bool ci, float[2,3] xi) => (bool co, float[2,3] xo) {\n"
        "  co = Identity(ci)\n  t = Transpose<perm=[1,0]>(xi)\n  u = Transpose<perm=[1,0]>(t)\n  xo = Relu(u) }>",
        "(float[2,3] x) => (float[2,3] y) <int64 n = {3}, bool c = {1}>",
    )
    check("merge_consecutive_transposes", text, {"Loop": 1, "Identity": 1, "Relu": 1})


def _extremes(elem_type: int) -> np.ndarray:
    """Every boundary value of a type plus random ones: the values where a lossy or wrapping chain would differ."""
    dtype = helper.tensor_dtype_to_np_dtype(elem_type)
    if dtype == np.bool_:
        return np.array([True, False])
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        rng = np.random.default_rng(0)
        edges = np.array([info.min, info.max, 0, 1, info.min + 1, info.max - 1], dtype=dtype)
        return np.concatenate([edges, rng.integers(info.min, info.max, 64, dtype=dtype, endpoint=True)])
    info = np.finfo(dtype)
    values = [info.max, -info.max, info.tiny, info.smallest_subnormal, 0.0, -0.0, np.inf, -np.inf, np.nan,
              1.5, 2.5, -2.5, 255.5, -129.0, 65504.0, 3e9, -3e9]
    with np.errstate(over="ignore"):
        return np.array(values, dtype=np.float64).astype(dtype)


@pytest.mark.parametrize("source", [t for t in EXACT_WIDENINGS if t != TensorProto.BFLOAT16],
                         ids=lambda t: helper.tensor_dtype_to_string(t))
def test_every_accepted_cast_chain_matches_the_direct_cast_in_ort(source: int) -> None:
    # one model per source type: for each accepted (middle, target), Cast(Cast(x, middle), target) beside Cast(x, target)
    nodes, outputs = [], []
    for middle in sorted(EXACT_WIDENINGS[source]):
        for target in sorted(TARGETS):
            if not is_exact_chain(source, middle, target):
                continue
            key = f"{middle}_{target}"
            nodes += [helper.make_node("Cast", ["x"], [f"m{key}"], to=middle),
                      helper.make_node("Cast", [f"m{key}"], [f"chain{key}"], to=target),
                      helper.make_node("Cast", ["x"], [f"direct{key}"], to=target)]
            if target == TensorProto.BFLOAT16:  # numpy has no bfloat16: widen both exactly to float to read them
                nodes += [helper.make_node("Cast", [f"{kind}{key}"], [f"{kind}{key}_f"], to=TensorProto.FLOAT)
                          for kind in ("chain", "direct")]
                key, target = f"{key}_f", TensorProto.FLOAT
            outputs += [helper.make_tensor_value_info(f"{kind}{key}", target, None) for kind in ("chain", "direct")]
    x = _extremes(source)
    inputs = [helper.make_tensor_value_info("x", source, [len(x)])]
    proto = helper.make_model(helper.make_graph(nodes, "casts", inputs, outputs),
                              opset_imports=[helper.make_opsetid("", 17)])
    got = run(proto.SerializeToString(), {"x": x})
    for name in got:
        if name.startswith("chain"):
            direct = got["direct" + name[len("chain"):]]
            np.testing.assert_array_equal(got[name], direct, err_msg=name)


@st.composite
def _two_perms(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    rank = draw(st.integers(1, 5))
    return draw(st.permutations(range(rank))), draw(st.permutations(range(rank)))


@settings(max_examples=30, deadline=None)
@given(_two_perms())
def test_any_two_transposes_compose_exactly(perms: tuple[list[int], list[int]]) -> None:
    p, q = perms
    dims = [2, 3, 4, 5, 6][: len(p)]
    out_dims = [dims[p[i]] for i in q]
    text = graph(f"a = Transpose<perm={list(p)}>(x)\n b = Transpose<perm={list(q)}>(a)\n y = Relu(b)",
                 f"(float{dims} x) => (float{out_dims} y)")
    identity = [p[i] for i in q] == list(range(len(p)))
    check("merge_consecutive_transposes", text, {"Relu": 1} if identity else {"Transpose": 1, "Relu": 1})
