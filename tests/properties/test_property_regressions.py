"""Failing examples the property tests found, reduced by hand and kept as regression tests."""
from __future__ import annotations

import numpy as np

import onnxopt
from onnxopt.ir import serialize
from onnxopt.testing import assert_same_outputs, model_from_text, op_histogram


def test_fusion_blocked_by_a_dead_consumer_happens_in_the_first_run():
    model = model_from_text("""
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[1, 2, 4, 4] x) => (float[1, 3, 4, 4] y) {
            c = Conv<kernel_shape = [1, 1]>(x, w)
            dead = Relu(c)
            y = Add(c, b)
        }""", {"w": np.ones((3, 2, 1, 1), np.float32), "b": np.ones((1, 3, 1, 1), np.float32)})
    first = onnxopt.optimize(model).model
    second = onnxopt.optimize(first).model
    assert_same_outputs(serialize(model), first)
    assert op_histogram(first) == op_histogram(second) == {"Conv": 1}
    assert serialize(first) == serialize(second)
