"""The cleanup and dce groups together: subgraph-heavy models, the onnx wheel's real models, a 50,000-node chain."""
from __future__ import annotations

import os
import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import onnxopt.passes  # noqa: F401
from cleanup_checks import model_from_text, run_pass
from onnxopt.ir import Builder, Graph, Model, Value, load, lint, serialize, to_proto
from onnxopt.passmanager import LintAfterEachPass, PassManager, group_members
from onnxopt.testing import assert_same_outputs, op_histogram

CLEANUP_AND_DCE = [*group_members("cleanup"), *group_members("dce")]

SUBGRAPHS = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[2,3] x, bool c) => (float[2,3] y) <int64[2] s = {2, 3}, int64[1] ax = {0}, int64 n = {2}, bool t = {1}> {
  i = Identity(x)
  r = Reshape(i, s)
  y = If(c) <then_branch = g1 () => (float[2,3] a) {
      u = Unsqueeze(r, ax)
      q = Squeeze(u, ax)
      p1 = Relu(q)
      p2 = Relu(q)
      dead = Exp(p1)
      a = Add(p1, p2)
    }, else_branch = g2 () => (float[2,3] b) {
      b = Loop(n, t, r) <body = body (int64 k, bool ci, float[2,3] xi) => (bool co, float[2,3] xo) {
        co = Identity(ci)
        t1 = Transpose<perm=[1,0]>(xi)
        t2 = Transpose<perm=[1,0]>(t1)
        c1 = Cast<to=11>(t2)
        c2 = Cast<to=1>(c1)
        xo = Neg(c2)
      }>
    }>
}
"""


def test_cleanup_group_reaches_into_if_and_loop_bodies() -> None:
    model = model_from_text(SUBGRAPHS)
    original = serialize(model)
    PassManager(["cleanup"], instruments=[LintAfterEachPass()]).run(model)
    assert op_histogram(model) == {"If": 1, "Relu": 1, "Add": 1, "Loop": 1, "Identity": 1, "Neg": 1}
    onnx.checker.check_model(to_proto(model), full_check=True)
    x = np.linspace(-3, 3, 6, dtype=np.float32).reshape(2, 3)
    for cond in (True, False):
        assert_same_outputs(original, model, {"x": x, "c": np.array(cond)}, rtol=0, atol=0)
    once = serialize(model)
    assert not any(run_pass(name, model).modified for name in CLEANUP_AND_DCE)
    assert serialize(model) == once


SIBLING_NAMES = """
<ir_version: 8, opset_import: ["" : 17]>
g (bool c, float[2,3] x) => (float[2,3] y) {
  y = If(c) <then_branch = a () => (float[2,3] oa) { k = Constant<value = float[3] {1, 2, 3}>()  t = Add(x, k)
                                                     i = Identity(t)  oa = Relu(i) },
             else_branch = b () => (float[2,3] ob) { k = Constant<value = float[3] {3, 2, 1}>()  t = Mul(x, k)
                                                     i = Identity(t)  ob = Neg(i) }>
}
"""


def test_default_pipeline_takes_branches_that_reuse_names() -> None:
    # ONNX lets sibling subgraphs define the same names (k, t, i in both branches)
    model = model_from_text(SIBLING_NAMES)
    original = serialize(model)
    PassManager(instruments=[LintAfterEachPass()]).run(model)
    assert op_histogram(model) == {"If": 1, "Add": 1, "Relu": 1, "Mul": 1, "Neg": 1}
    onnx.checker.check_model(to_proto(model), full_check=True)
    x = np.linspace(-3, 3, 6, dtype=np.float32).reshape(2, 3)
    for cond in (True, False):
        assert_same_outputs(original, model, {"x": x, "c": np.array(cond)}, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["squeezenet", "inception_v1", "shufflenet"])
def test_real_models_unchanged_in_output(onnx_data_dir: str, name: str) -> None:
    model = load(os.path.join(onnx_data_dir, "light", f"light_{name}.onnx"))
    original = serialize(model)
    PassManager(["cleanup"], instruments=[LintAfterEachPass()]).run(model)
    assert_same_outputs(original, model)  # float32, default tolerance: rtol 1e-3, atol 1e-4 × output scale
    assert not any(run_pass(name, model).modified for name in CLEANUP_AND_DCE)


def _long_chain(length: int) -> Model:
    """x → (Identity, Transpose pair, Cast pair, Reshape pair, Relu, dead Exp)* : every rule fires on a long chain."""
    graph = Graph("g")
    value = graph.add_input(Value("x", helper.make_tensor_type_proto(TensorProto.FLOAT, [2, 3])))
    op = Builder(graph)
    shape = op.const(np.array([2, 3], np.int64), "s")
    while len(graph) < length:
        value = op.Identity(value)
        value = op.Transpose(op.Transpose(value, perm=[1, 0]), perm=[1, 0])
        value = op.Cast(op.Cast(value, to=TensorProto.DOUBLE), to=TensorProto.FLOAT)
        value = op.Reshape(op.Reshape(value, shape), shape)
        value = op.Relu(value)
        op.Exp(value)
    graph.add_output(value)
    return Model(graph, opset_imports={"": 17})


@pytest.mark.slow
def test_fifty_thousand_node_chain_cleans_in_seconds() -> None:
    model = _long_chain(50_000)
    relus = op_histogram(model)["Relu"]
    start = time.perf_counter()
    for name in CLEANUP_AND_DCE:
        run_pass(name, model)
    elapsed = time.perf_counter() - start
    lint(model)
    assert op_histogram(model) == {"Relu": relus}
    assert elapsed < 20, f"cleanup took {elapsed:.1f}s on a 50,000-node chain"
