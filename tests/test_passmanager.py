"""Pass manager: registry, pipeline parsing, fixed point, statistics, rollback on failure, instruments."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

import onnxopt.passes  # noqa: F401  (registers the real passes and the onnxoptimizer bridge)
from onnxopt.errors import PassError, UnknownPassError
from onnxopt.ir import Node, Tensor, Value, infer_types, lint
from onnxopt.passmanager import (
    GROUPS, LintAfterEachPass, Pass, PassManager, PassResult, expand_pipeline, group_members, register_pass,
)
from onnxopt.testing import model_from_text, op_histogram

CHAIN = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[4] x) => (float[4] y) {
    a = Neg(x)
    b = Neg(a)
    c = Neg(b)
    y = Neg(c)
}
"""


@register_pass
class _CancelNegPairs(Pass):
    """Neg(Neg(x)) → x (test pass)."""

    name = "test_cancel_neg_pairs"

    def call(self, model):
        modified = False
        for node in model.graph:
            inner = node.inputs[0].producer() if node.op_type == "Neg" else None
            if inner is not None and inner.op_type == "Neg" and len(inner.outputs[0].uses()) == 1:
                model.graph.replace_node_with(node, inner.inputs[0])
                model.graph.remove(inner)
                modified = True
                break  # one rewrite per run: exercises the fixed-point loop
        return PassResult(model, modified)


@register_pass
class _Exploding(Pass):
    """Corrupts the graph, then raises (test pass)."""

    name = "test_exploding"

    def call(self, model):
        for node in model.graph:
            model.graph.append(Node("Relu", [node.outputs[0]]))
            raise RuntimeError("boom")
        return PassResult(model, False)


def test_pipeline_runs_to_fixed_point_and_records_stats():
    model = model_from_text(CHAIN)
    result = PassManager(["test_cancel_neg_pairs"]).run(model)
    # y = x: a graph output cannot be renamed onto the graph input, so one Identity carries it
    assert op_histogram(result.model) == {"Identity": 1}
    assert result.model.graph.outputs[0].name == "y"
    assert result.converged
    stats = result.stats["test_cancel_neg_pairs"]
    assert stats.changed == 2 and stats.runs == 3
    assert stats.nodes_removed == 4 and stats.nodes_added == 1
    assert [r.modified for r in result.history if r.name == "test_cancel_neg_pairs"] == [True, True, False]
    lint(result.model)


def test_iteration_cap_warns(caplog):
    model = model_from_text(CHAIN)
    result = PassManager(["test_cancel_neg_pairs"], max_iterations=1).run(model)
    assert not result.converged
    assert "fixed point" in caplog.text
    assert op_histogram(result.model) == {"Neg": 2}


def test_failing_pass_restores_model_and_names_pass_and_node():
    model = model_from_text(CHAIN)
    before = op_histogram(model)
    with pytest.raises(PassError, match=r"test_exploding failed on node .* after \[test_cancel_neg_pairs") as err:
        PassManager(["test_cancel_neg_pairs", "test_exploding"]).run(model)
    assert err.value.pass_name == "test_exploding"
    # rolled back to the state before the failing pass: the first pass's work stays, the corruption does not
    assert op_histogram(model) == {"Neg": 2} != before
    lint(model)


@pytest.mark.parametrize("inplace", [False, True])
def test_optimize_leaves_the_callers_model_whole_when_a_pass_fails(inplace):
    """Without inplace the caller's model is never touched (the run works on a copy it drops on failure, so it keeps
    no checkpoint); with inplace the run rolls the caller's model back to just before the failing pass."""
    from onnxopt.pipeline import optimize

    model = model_from_text(CHAIN)
    with pytest.raises(PassError, match="test_exploding"):
        optimize(model, ["test_cancel_neg_pairs", "test_exploding"], inplace=inplace)
    assert op_histogram(model) == ({"Neg": 2} if inplace else {"Neg": 4})
    lint(model)


def test_unknown_pass_lists_valid_names():
    with pytest.raises(UnknownPassError, match="valid names: fold, cleanup, fuse, dce"):
        expand_pipeline("fuse,nonsense")


def test_string_and_list_pipelines_are_the_same():
    assert expand_pipeline("test_cancel_neg_pairs, onnxoptimizer:eliminate_identity") == expand_pipeline(
        ["test_cancel_neg_pairs", "onnxoptimizer:eliminate_identity"]
    )


def test_groups_expand_to_members():
    for group in GROUPS:
        assert expand_pipeline(group) == group_members(group)


def test_lint_instrument_catches_broken_pass():
    @register_pass
    class _Dangling(Pass):
        """Leaves a dangling use (test pass)."""

        name = "test_dangling"

        def call(self, model):
            node = model.graph.nodes[0]
            node._inputs = (None,)  # bypasses use bookkeeping on purpose
            return PassResult(model, True)

    with pytest.raises(PassError, match="test_dangling"):
        PassManager(["test_dangling"], instruments=[LintAfterEachPass()]).run(model_from_text(CHAIN))


def test_onnxoptimizer_bridge_runs_inside_pipeline():
    model = model_from_text(
        """<ir_version: 8, opset_import: ["" : 17]> g (float[4] x) => (float[4] y) { t = Identity(x)  y = Relu(t) }"""
    )
    result = PassManager(["onnxoptimizer:eliminate_identity"]).run(model)
    assert op_histogram(result.model) == {"Relu": 1}
    assert result.model.graph.outputs[0].name == "y"


def test_unknown_onnxoptimizer_pass():
    with pytest.raises(UnknownPassError, match="onnxoptimizer has no pass"):
        PassManager(["onnxoptimizer:no_such_pass"])


def test_initializer_byte_stats():
    @register_pass
    class _ShrinkWeight(Pass):
        """w (256 zeros) → one zero, broadcast (test pass)."""

        name = "test_shrink_weight"

        def call(self, model):
            weight = model.graph.initializers["w"] if "w" in model.graph.initializers else None
            if weight is None:
                return PassResult(model, False)
            zero = model.graph.add_initializer(Value("zero", const_value=Tensor.from_array(np.zeros(1, np.float32))))
            for node, index in weight.uses():
                node.replace_input_with(index, zero)
            model.graph.remove_initializer(weight)
            return PassResult(model, True)

    model = model_from_text(
        """<ir_version: 8, opset_import: ["" : 17]> g (float[256] x) => (float[256] y) { y = Add(x, w) }""",
        {"w": np.zeros(256, np.float32)},
    )
    stats = PassManager(["test_shrink_weight"]).run(model).stats["test_shrink_weight"]
    assert (stats.initializer_bytes_before, stats.initializer_bytes_after) == (1024, 4)


def test_user_error_raised_by_a_pass_reaches_the_caller_unwrapped():
    from onnxopt.errors import OnnxoptError

    @register_pass
    class _UserMistake(Pass):
        """Rejects its input like a bad --input-shape would (test pass)."""

        name = "test_user_mistake"

        def call(self, model):
            raise OnnxoptError("input 'x' has rank 2; --input-shape gave 3 dims")

    model = model_from_text(CHAIN)
    with pytest.raises(OnnxoptError, match="--input-shape"):
        PassManager(["test_user_mistake"]).run(model)
    assert op_histogram(model) == {"Neg": 4}


@register_pass
class _Observer(Pass):
    """Changes nothing; records each call (test pass)."""

    name = "test_observer"
    calls: list[int] = []

    def call(self, model):
        _Observer.calls.append(len(model.graph))
        return PassResult(model, False)


@register_pass
class _TagOnce(Pass):
    """Writes an attribute straight into Node.attrs, around the IR's mutators, once (test pass)."""

    name = "test_tag_once"

    def call(self, model):
        node = model.graph.nodes[0]
        if "tag" in node.attrs:
            return PassResult(model, False)
        node.attrs["tag"] = onnx.helper.make_attribute("tag", 1)
        return PassResult(model, True)


def test_a_pass_is_skipped_only_while_the_model_is_unchanged_since_it_found_nothing():
    _Observer.calls.clear()
    result = PassManager(["test_cancel_neg_pairs", "test_observer"]).run(model_from_text(CHAIN))
    # iterations 1 and 2 cancel a pair before the observer runs; in iteration 3 nothing changed since its last run
    assert _Observer.calls == [2, 1]
    stats = result.stats["test_observer"]
    assert (stats.runs, stats.skipped, stats.changed) == (3, 1, 0)
    assert [(r.iteration, r.modified) for r in result.history if r.name == "test_observer"] == [
        (1, False), (2, False), (3, False)]
    assert result.stats["test_cancel_neg_pairs"].skipped == 0

    _Observer.calls.clear()
    result = PassManager(["test_observer", "test_cancel_neg_pairs"]).run(model_from_text(CHAIN))
    assert _Observer.calls == [4, 2, 1]  # the model changed after each of its runs: never skipped
    assert result.stats["test_observer"].skipped == 0


def test_a_pass_that_reports_a_change_invalidates_skipping_even_around_the_mutators():
    _Observer.calls.clear()
    result = PassManager(["test_observer", "test_tag_once"]).run(model_from_text(CHAIN))
    assert _Observer.calls == [4, 4]
    assert result.stats["test_observer"].skipped == 0 and result.iterations == 2


def test_failure_in_a_later_iteration_rolls_back_to_just_before_the_failing_pass():
    @register_pass
    class _ExplodeWithoutNeg(Pass):
        """Corrupts the graph, then raises, once no Neg is left (test pass)."""

        name = "test_explode_without_neg"

        def call(self, model):
            if "Neg" in op_histogram(model):
                return PassResult(model, False)
            model.graph.append(Node("Relu", [model.graph.inputs[0]]))
            raise RuntimeError("boom")

    model = model_from_text(CHAIN)
    with pytest.raises(PassError, match="test_explode_without_neg failed"):
        PassManager(["test_cancel_neg_pairs", "test_explode_without_neg"]).run(model)
    assert op_histogram(model) == {"Identity": 1}  # both cancellations (iterations 1 and 2) replayed
    lint(model)


@register_pass
class _TypeReader(Pass):
    """Reads inferred types, changes nothing (test pass)."""

    name = "test_type_reader"

    def call(self, model):
        infer_types(model)
        return PassResult(model, False)


@register_pass
class _RemoveUnreadNeg(Pass):
    """Removes one Neg that nothing reads, without declaring that it only removes (test pass)."""

    name = "test_remove_unread_neg"

    def call(self, model):
        dead = [node for node in model.graph if node.op_type == "Neg" and not node.outputs[0].has_uses()]
        if not dead:
            return PassResult(model, False)
        model.graph.remove(dead[0])
        return PassResult(model, True)


@register_pass
class _DropSecondOutput(Pass):
    """(y, z) outputs → (y): z's producer becomes dead in the middle of the pipeline (test pass)."""

    name = "test_drop_second_output"

    def call(self, model):
        if len(model.graph.outputs) < 2:
            return PassResult(model, False)
        model.graph.set_outputs(model.graph.outputs[:1])
        return PassResult(model, True)


NEG_OUTPUT = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[4] x) => (float[4] y, float[4] z) {
    y = Relu(x)
    z = Neg(y)
}
"""


@pytest.mark.parametrize("remover, inferences", [("eliminate_dead_code", 1), ("test_remove_unread_neg", 2)])
def test_shape_inference_is_kept_across_dead_code_elimination_only(monkeypatch, remover, inferences):
    calls = []
    infer = onnx.shape_inference.infer_shapes
    monkeypatch.setattr(onnx.shape_inference, "infer_shapes", lambda *a, **k: calls.append(1) or infer(*a, **k))
    # the Neg dies after the dead code the input brings was removed, and before the reader first infers types
    result = PassManager(["test_drop_second_output", "test_type_reader", remover]).run(model_from_text(NEG_OUTPUT))
    assert result.stats["test_type_reader"].runs == 2 and result.stats["test_type_reader"].skipped == 0
    assert op_histogram(result.model) == {"Relu": 1} and len(calls) == inferences


def test_what_the_input_leaves_dead_goes_before_the_first_iteration():
    # an unused initializer removed at the end of iteration 1 would cost a second iteration confirming nothing
    model = model_from_text(
        """<ir_version: 8, opset_import: ["" : 17]> g (float[4] x) => (float[4] y) { y = Relu(x) }""",
        {"w": np.zeros(256, np.float32)},
    )
    result = PassManager(["fold", "cleanup"]).run(model)
    assert result.converged and result.iterations == 1
    assert not model.graph.initializers
    assert [record.name for record in result.history if record.modified] == ["eliminate_dead_code"]
