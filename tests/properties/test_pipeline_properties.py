"""Properties of the default pipeline on random valid models (random_models.py).

For every model: the result passes onnx.checker (full check), computes the same outputs in ONNX Runtime,
a second run changes nothing (same op histogram, same bytes), and an independent run gives the same bytes.
Examples are derandomized, so CI sees the same models every time.
"""
from __future__ import annotations

import onnx
from hypothesis import HealthCheck, given, note, settings

import onnxopt
from onnxopt.ir import from_proto, serialize
from onnxopt.passmanager import DEFAULT_PIPELINE
from onnxopt.testing import assert_same_outputs, make_session, op_histogram, random_inputs

from random_models import random_models

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check_pipeline_properties(model: onnx.ModelProto, passes: str = ",".join(DEFAULT_PIPELINE)) -> None:
    """Every property at once (the optimized model is built once and reused)."""
    note(f"input model:\n{onnx.printer.to_text(model.graph)}")
    onnx.checker.check_model(model, full_check=True)  # the generator's own promise
    original = model.SerializeToString()
    first = onnxopt.optimize(from_proto(model), passes).model
    optimized = serialize(first)
    note(f"optimized:\n{onnx.printer.to_text(onnx.ModelProto.FromString(optimized).graph)}")

    onnx.checker.check_model(onnx.ModelProto.FromString(optimized), full_check=True)

    for seed in (0, 1):
        feeds = random_inputs(make_session(original), seed=seed)
        assert_same_outputs(original, optimized, feeds)

    second = onnxopt.optimize(first, passes).model
    assert op_histogram(second) == op_histogram(first)
    assert serialize(second) == optimized, "a second run changed the model"

    again = onnxopt.optimize(from_proto(onnx.ModelProto.FromString(original)), passes).model
    assert serialize(again) == optimized, "two runs on the same input gave different bytes"


@SETTINGS
@given(random_models())
def test_default_pipeline_properties(model):
    check_pipeline_properties(model)
