"""sink_initializers: weights read only inside one subgraph move into it; what other scopes read stays put."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxopt.ir import Graph, Model, from_proto
from onnxopt.passmanager import PassManager

F = TensorProto.FLOAT
info = helper.make_tensor_value_info


def _branch(name: str, op: str, weight: str, n: int = 16) -> onnx.GraphProto:
    return helper.make_graph([helper.make_node(op, ["x", weight], [f"{name}_out"])], name, [],
                             [info(f"{name}_out", F, [n])])


def _if_model(initializers: dict[str, np.ndarray], then_weight: str, else_weight: str, main_reads: str | None = None,
              ir_version: int = 8, opset: int = 17, extra_inputs: tuple[str, ...] = (), n: int = 16) -> Model:
    """y = If(c, then: x + then_weight, else: x * else_weight) on x of n floats, and z = x - main_reads when given."""
    nodes = [helper.make_node("If", ["c"], ["y"], then_branch=_branch("then", "Add", then_weight, n),
                              else_branch=_branch("else", "Mul", else_weight, n))]
    outputs = [info("y", F, [n])]
    if main_reads:
        nodes.append(helper.make_node("Sub", ["x", main_reads], ["z"]))
        outputs.append(info("z", F, [n]))
    inputs = [info("c", TensorProto.BOOL, []), info("x", F, [n])]
    inputs += [info(name, F, list(initializers[name].shape)) for name in extra_inputs]
    graph = helper.make_graph(nodes, "g", inputs, outputs,
                              [numpy_helper.from_array(a, n) for n, a in initializers.items()])
    return from_proto(helper.make_model(graph, ir_version=ir_version, opset_imports=[helper.make_opsetid("", opset)]))


def _branches(model: Model) -> tuple[Graph, Graph]:
    node = next(iter(model.graph))
    return node.attr("then_branch"), node.attr("else_branch")


def _weights(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n).astype(np.float32)


@pytest.mark.parametrize("cond", [True, False])
def test_weights_read_in_one_branch_move_into_it(check_pass, cond):
    model = _if_model({"wt": _weights(16, 0), "we": _weights(16, 1)}, "wt", "we")
    result = check_pass("sink_initializers", model, {"If": 1, "Add": 1, "Mul": 1},
                        feeds={"c": np.array(cond), "x": _weights(16, 2)})
    assert result.counters == {"initializers_sunk": 2}
    then_branch, else_branch = _branches(model)
    assert not model.graph.initializers
    assert list(then_branch.initializers) == ["wt"] and list(else_branch.initializers) == ["we"]


def test_a_weight_sinks_through_nested_subgraphs(check_pass):
    # the weight is read only inside a Loop body that lies inside the then branch: it ends up in the body
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["v", "w"], ["v_out"])],
        "body", [info("i", TensorProto.INT64, []), info("cond_in", TensorProto.BOOL, []), info("v", F, [16])],
        [info("cond_out", TensorProto.BOOL, []), info("v_out", F, [16])],
    )
    then_branch = helper.make_graph([helper.make_node("Loop", ["trips", "", "x"], ["then_out"], body=body)], "then",
                                    [], [info("then_out", F, [16])])
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], then_branch=then_branch, else_branch=_branch("else", "Mul", "x"))],
        "g", [info("c", TensorProto.BOOL, []), info("x", F, [16])], [info("y", F, [16])],
        [numpy_helper.from_array(_weights(16, 3), "w"), numpy_helper.from_array(np.array(3, np.int64), "trips")],
    )
    model = from_proto(helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17)]))
    result = check_pass("sink_initializers", model, {"If": 1, "Loop": 1, "Identity": 1, "Add": 1, "Mul": 1},
                        feeds={"c": np.array(True), "x": _weights(16, 4)})
    assert result.counters == {"initializers_sunk": 3}  # w twice (into the branch, then the body), trips once
    then_graph = _branches(model)[0]
    loop = next(iter(then_graph))
    assert list(then_graph.initializers) == ["trips"] and list(loop.attr("body").initializers) == ["w"]


def test_a_tiny_constant_read_in_both_branches_is_copied_into_each(check_pass):
    model = _if_model({"k": np.full(1, 2.0, np.float32)}, "k", "k")
    result = check_pass("sink_initializers", model, {"If": 1, "Add": 1, "Mul": 1},
                        feeds={"c": np.array(False), "x": _weights(16, 5)})
    assert result.counters == {"initializers_copied": 1}
    then_branch, else_branch = _branches(model)
    assert not model.graph.initializers
    copies = [*then_branch.initializers.values(), *else_branch.initializers.values()]
    assert len(copies) == 2 and copies[0].name != copies[1].name
    assert all(np.array_equal(copy.numpy(), [2.0]) for copy in copies)


def test_a_weight_read_in_both_branches_stays_shared(check_pass):
    # 68 bytes, just over the copying limit: one outer weight beats a copy per branch
    model = _if_model({"w": _weights(17, 6)}, "w", "w", n=17)
    check_pass("sink_initializers", model, modified=False, feeds={"c": np.array(True), "x": _weights(17, 7)})
    assert list(model.graph.initializers) == ["w"]


def test_a_weight_the_main_graph_also_reads_stays(check_pass):
    model = _if_model({"w": _weights(16, 8), "we": _weights(16, 9)}, "w", "we", main_reads="w")
    result = check_pass("sink_initializers", model, feeds={"c": np.array(True), "x": _weights(16, 10)})
    assert result.counters == {"initializers_sunk": 1}
    assert list(model.graph.initializers) == ["w"] and list(_branches(model)[1].initializers) == ["we"]


def test_an_overridable_input_stays(check_pass):
    model = _if_model({"wt": _weights(16, 11), "we": _weights(16, 12)}, "wt", "we", extra_inputs=("wt",))
    result = check_pass("sink_initializers", model, feeds={"c": np.array(True), "x": _weights(16, 13)})
    assert result.counters == {"initializers_sunk": 1}
    assert list(model.graph.initializers) == ["wt"]


def test_a_legacy_ir3_model_is_left_alone(check_pass):
    # IR < 4: every initializer must also be a graph input, which an If branch cannot have
    model = _if_model({"wt": _weights(16, 14), "we": _weights(16, 15)}, "wt", "we", ir_version=3, opset=9,
                      extra_inputs=("wt", "we"))
    check_pass("sink_initializers", model, modified=False, compare=False)
    assert sorted(model.graph.initializers) == ["we", "wt"]


def test_the_fold_group_sinks_before_its_first_iteration():
    # sunk at the end of iteration 1, the weights would cost a second iteration that only confirms the fixed point
    model = _if_model({"wt": _weights(16, 16), "we": _weights(16, 17)}, "wt", "we")
    result = PassManager(["fold"]).run(model)
    assert result.converged and result.iterations == 1
    assert [record.name for record in result.history if record.modified] == ["sink_initializers"]
    assert not model.graph.initializers
