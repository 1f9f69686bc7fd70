"""read_dims_from_inputs: dims read off an intermediate's shape are read off the input that declares them."""
from __future__ import annotations

import numpy as np
import pytest

from onnxopt.testing import assert_same_outputs, model_from_text

H = '<ir_version: 8, opset_import: ["" : 17]>'
INITS = {"zero": np.array(0, np.int64), "one": np.array(1, np.int64), "axis0": np.array([0], np.int64),
         "eight": np.array([8], np.int64), "two": np.array([0, 1], np.int64)}


def context_reshape(reads: str = "n = Gather(s, zero)\n t = Gather(s, one)", inputs: str = "float[B, S, 8] x") -> str:
    """y = Reshape(Relu(x), [B, S, 8]) with B and S read off Relu(x)'s shape, as torch's legacy exporter sizes the
    merged heads of attention from the context in front of them."""
    return H + f"""
    g ({inputs}) => (float[B, S, 8] y) {{
        r = Relu(x)
        s = Shape(r)
        {reads}
        nv = Unsqueeze(n, axis0)
        tv = Unsqueeze(t, axis0)
        target = Concat<axis = 0>(nv, tv, eight)
        y = Reshape(r, target)
    }}"""


def test_dims_of_an_intermediate_are_read_off_the_input(check_pass):
    model = model_from_text(context_reshape(), INITS)
    result = check_pass("read_dims_from_inputs", model, {"Relu": 1, "Shape": 1, "Gather": 2, "Unsqueeze": 2,
                                                          "Concat": 1, "Reshape": 1})
    assert result.counters == {"shapes_rerouted": 1}
    shape, relu = (next(node for node in model.graph if node.op_type == op) for op in ("Shape", "Relu"))
    assert shape.inputs[0].name == "x" and [user.op_type for user, _ in relu.outputs[0].uses()] == ["Reshape"]
    original = model_from_text(context_reshape(), INITS)
    for dims in ((1, 1, 8), (3, 7, 8)):
        x = np.random.default_rng(0).standard_normal(dims).astype(np.float32)
        assert_same_outputs(original, model, {"x": x}, rtol=0, atol=0)


def test_one_gather_of_several_dims_is_rerouted_whole(check_pass):
    reads = "nt = Gather(s, two)\n n = Gather(nt, zero)\n t = Gather(nt, one)"
    check_pass("read_dims_from_inputs", model_from_text(context_reshape(reads), INITS))


@pytest.mark.parametrize("reads, inputs", [
    ("n = Gather(s, zero)\n t = Gather(s, one)\n z = ConstantOfShape(s)", "float[B, S, 8] x"),  # a non-Gather reader
    ("n = Gather(s, zero)\n t = Gather(s, one)", "float[2, 5, 8] x"),  # static dims: fold_shapes' work
    ("nt = Gather(s, two)\n n = Gather(nt, zero)\n t = Gather(nt, one)",  # two inputs in one read
     "float[B, S, 8] x, float[B] unused_b, float[S] unused_s"),
])
def test_shapes_left_alone(check_pass, reads, inputs):
    text = context_reshape(reads, inputs)
    if "unused_b" in inputs:  # B and S first declared by inputs of their own
        text = text.replace("float[B, S, 8] x, float[B] unused_b, float[S] unused_s",
                            "float[B] unused_b, float[S] unused_s, float[B, S, 8] x")
    model = model_from_text(text, INITS)
    check_pass("read_dims_from_inputs", model, modified=False, compare=False)


def test_a_name_one_input_gives_two_axes_names_no_dim(check_pass):
    # Paddle exports call every unknown dim "?": [?, ?, 8] does not say which axis a "?" elsewhere is
    model = model_from_text(context_reshape(inputs="float[B, S, 8] x"), INITS)
    for dim in next(v for v in model.graph.inputs if v.name == "x").type.tensor_type.shape.dim[:2]:
        dim.dim_param = "?"
    check_pass("read_dims_from_inputs", model, modified=False, compare=False)
