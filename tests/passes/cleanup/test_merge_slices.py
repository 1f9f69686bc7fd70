"""merge_consecutive_slices: Slice(Slice(x)) on disjoint axes → one Slice; declines otherwise."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

import onnxopt.passes  # noqa: F401  (registers the passes)
from onnxopt.ir import lint, serialize, to_proto
from onnxopt.passmanager import PassContext, make_pass
from onnxopt.testing import assert_same_outputs, model_from_text, op_histogram

H = '<ir_version: 8, opset_import: ["" : 17]>\n'
FEEDS = {"x": np.arange(2 * 8 * 6, dtype=np.float32).reshape(2, 8, 6)}


def _model(body: str, **weights):
    return model_from_text(H + "g (float[2, 8, 6] x) => (float[?, ?, ?] y) {" + body + "}",
                           {k: np.array(v, np.int64) for k, v in weights.items()})


def _run(model):
    return make_pass("merge_consecutive_slices", PassContext()).call(model)


def test_slices_on_disjoint_axes_merge_into_one():
    model = _model("t = Slice(x, s1, e1, a1)  y = Slice(t, s2, e2, a2, p2)",
                   s1=[1], e1=[7], a1=[1], s2=[-1], e2=[0], a2=[-1], p2=[-2])
    original = serialize(model)
    assert _run(model).modified
    assert op_histogram(model) == {"Slice": 1}
    # exact: slicing only moves elements
    assert_same_outputs(original, model, FEEDS, rtol=0, atol=0)
    onnx.checker.check_model(to_proto(model), full_check=True)
    lint(model)
    assert not _run(model).modified


@pytest.mark.parametrize("body, weights", [
    ("t = Slice(x, s1, e1, a1)  y = Slice(t, s1, e1, a1)", {}),  # the same axis twice
    ("t = Slice(x, s1, e1, a1)  u = Relu(t)  y = Slice(t, s2, e2, a2)", {}),  # the inner one has another reader
])
def test_declines(body, weights):
    model = _model(body, s1=[1], e1=[7], a1=[1], s2=[0], e2=[3], a2=[2], **weights)
    if "Relu" in body:
        model.graph.add_output(model.graph.nodes[1].outputs[0])
    assert not _run(model).modified
    assert op_histogram(model)["Slice"] == 2


def test_declines_non_constant_starts():
    model = model_from_text(H + """g (float[2, 8, 6] x, int64[1] s) => (float[?, ?, ?] y) {
        t = Slice(x, s, e1, a1)  y = Slice(t, s2, e2, a2) }""",
        {k: np.array(v, np.int64) for k, v in dict(e1=[7], a1=[1], s2=[0], e2=[3], a2=[2]).items()})
    assert not _run(model).modified
