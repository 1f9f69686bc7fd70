"""The rewrite engine: matching, isolation of intermediates, rewiring, naming, explain, opset gates, subgraphs."""
from __future__ import annotations

import time

import numpy as np
import onnx
import pytest

from onnxopt.ir import Graph, Model, Node, Tensor, Value, lint, to_proto
from onnxopt.passmanager import PassContext, group_members, make_pass, registered_passes
from onnxopt.rewrite import Rule, RuleSet, compile_pattern, make_rule, rule_pass
from onnxopt.testing import assert_same_outputs, model_from_text, op_histogram


class CollapseRelu(Rule):
    """Relu(Relu(x)) → Relu(x)."""

    name = "collapse_relu"

    def pattern(self, op, x):
        return op.Relu(op.Relu(x))

    def rewrite(self, op, m):
        return op.Relu(m["x"])


class MergeScales(Rule):
    """Mul(Mul(x, a), b) with constant a, b → Mul(x, a·b)."""

    name = "merge_scales"

    def pattern(self, op, x, a, b):
        return op.Mul(op.Mul(x, a, _commute=True), b, _commute=True)

    def check(self, m):
        if m.const("a") is None or m.const("b") is None:
            return m.fail("a scale is not constant")
        return True

    def rewrite(self, op, m):
        return op.Mul(m["x"], op.const(m.const("a") * m.const("b"), name=m["a"].name))


def explain(*rules: Rule, model: Model, target: str = "onnx") -> tuple[dict[str, int], list[str]]:
    context = PassContext(target=target, explain=frozenset(r.name for r in rules))
    counts = RuleSet(rules).apply(model, context)
    lint(model)
    return counts, context.explanations


def test_rewrites_chain_and_keeps_output_names():
    model = model_from_text("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2] x) => (float[2] y) {
      a = Relu(x)
      b = Relu(a)
      y = Relu(b)
    }""")
    original = model.clone()
    counts, _ = explain(CollapseRelu(), model=model)
    assert counts == {"collapse_relu": 2}
    assert op_histogram(model) == {"Relu": 1}
    assert [v.name for v in model.graph.outputs] == ["y"]
    onnx.checker.check_model(to_proto(model), full_check=True)
    assert_same_outputs(original, model)


def test_shared_or_output_intermediate_is_not_rewritten():
    model = model_from_text("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2] x) => (float[2] y, float[2] z, float[2] a2) {
      a = Relu(x)
      y = Relu(a)
      z = Sigmoid(a)
      a2 = Relu(x)
      w = Relu(a2)
      u = Relu(w)
    }""")
    counts, notes = explain(CollapseRelu(), model=model)
    # y: its inner Relu is shared with Sigmoid; w: its inner Relu is a graph output; u = Relu(Relu(..)) fires
    assert counts == {"collapse_relu": 1}
    assert any("'a' is also read by Sigmoid" in n for n in notes), notes
    assert any("'a2' is a graph output" in n for n in notes), notes
    assert any("at node a (Relu): input 0 is a graph input, not Relu" in n for n in notes), notes


def test_commutative_matching_and_unique_initializers():
    model = model_from_text("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[3] x) => (float[3] y, float[3] z) {
      p = Mul(s1, x)
      y = Mul(s2, p)
      z = Mul(x, s1)
    }""", {"s1": np.array([1.0, 2.0, 3.0], np.float32), "s2": np.array([2.0, 2.0, 2.0], np.float32)})
    original = model.clone()
    counts, _ = explain(MergeScales(), model=model)
    assert counts == {"merge_scales": 1}
    inits = model.graph.initializers
    # s1 is shared with z: never overwritten; the merged scale is a new initializer; s2 is dead and dropped
    np.testing.assert_array_equal(inits["s1"].numpy(), [1.0, 2.0, 3.0])
    assert "s2" not in inits and len(inits) == 2
    new = next(v for name, v in inits.items() if name != "s1")
    np.testing.assert_array_equal(new.numpy(), [2.0, 4.0, 6.0])
    assert_same_outputs(original, model)


def test_check_failure_is_explained_over_structural_reason():
    model = model_from_text("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[3] x, float[3] s) => (float[3] y) {
      p = Mul(x, s)
      y = Mul(c, p)
    }""", {"c": np.ones(3, np.float32)})
    counts, notes = explain(MergeScales(), model=model)
    assert counts == {}
    assert "merge_scales at node y (Mul): a scale is not constant" in notes


def test_optional_inputs_bind_none_and_extra_inputs_fail():
    class ConvBias(Rule):
        name = "conv_bias"

        def pattern(self, op, x, w, b):
            return op.Relu(op.Conv(x, w, b, _optional=1))

        def check(self, m):
            return m.fail(f"bias is {'absent' if m['b'] is None else m['b'].name}")

    class ConvNoBias(Rule):
        name = "conv_no_bias"

        def pattern(self, op, x, w):
            return op.Relu(op.Conv(x, w))

        def check(self, m):
            return m.fail("look only")

    model = model_from_text("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1,1,3,3] x, float[1,1,1,1] w, float[1] b) => (float[1,1,3,3] y, float[1,1,3,3] z) {
      c1 = Conv(x, w)
      y = Relu(c1)
      c2 = Conv(x, w, b)
      z = Relu(c2)
    }""")
    _, notes = explain(ConvBias(), ConvNoBias(), model=model)
    assert "conv_bias at node y (Relu): bias is absent" in notes
    assert "conv_bias at node z (Relu): bias is b" in notes
    assert "conv_no_bias at node z (Relu): Conv producing 'c2' has 3 inputs, the pattern lists 2" in notes


def test_repeated_variable_must_bind_the_same_value():
    class Swish(Rule):
        """Mul(x, Sigmoid(x)) → Swish-like marker."""

        name = "find_swish"

        def pattern(self, op, x):
            return op.Mul(x, op.Sigmoid(x), _commute=True)

        def rewrite(self, op, m):
            return op.HardSwish(m["x"])

    model = model_from_text("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2] x, float[2] t) => (float[2] y, float[2] z) {
      s = Sigmoid(x)
      y = Mul(s, x)
      s2 = Sigmoid(t)
      z = Mul(x, s2)
    }""")
    counts, notes = explain(Swish(), model=model)
    assert counts == {"find_swish": 1}
    assert op_histogram(model) == {"HardSwish": 1, "Sigmoid": 1, "Mul": 1}
    assert any("not the same value as the other 'x'" in n for n in notes), notes


def test_variable_bound_to_an_intermediate_is_rejected():
    class AddSelfRelu(Rule):
        name = "add_relu"

        def pattern(self, op, x, y):
            return op.Add(op.Relu(x), y)

        def rewrite(self, op, m):
            return op.Add(m["x"], m["y"])

    model = model_from_text("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2] x) => (float[2] y) {
      r = Relu(x)
      y = Add(r, r)
    }""")
    counts, notes = explain(AddSelfRelu(), model=model)
    assert counts == {}
    assert notes == ["add_relu at node y (Add): variable 'y' is an intermediate of the pattern"]


def test_domain_and_alternative_op_types():
    class Pool(Rule):
        name = "pool_of_relu"

        def pattern(self, op, x):
            return op.node(("MaxPool", "AveragePool"), op.Relu(x))

        def rewrite(self, op, m):
            return op.Identity(m["x"])

    class Contrib(Rule):
        name = "contrib_only"

        def pattern(self, op, x):
            return op.Gelu(x, _domain="com.microsoft")

        def rewrite(self, op, m):
            return op.Identity(m["x"])

    model = model_from_text("""
    <ir_version: 8, opset_import: ["" : 17, "com.microsoft" : 1]>
    g (float[1,1,4] x) => (float[1,1,4] y, float[1,1,4] z, float[1,1,4] w) {
      r = Relu(x)
      y = MaxPool<kernel_shape=[1]>(r)
      r2 = Relu(x)
      z = AveragePool<kernel_shape=[1]>(r2)
      w = com.microsoft.Gelu(x)
    }""")
    counts, notes = explain(Pool(), Contrib(), model=model)
    assert counts == {"pool_of_relu": 2, "contrib_only": 1}
    model = model_from_text("""
    <ir_version: 8, opset_import: ["" : 20]>
    g (float[2] x) => (float[2] y) { y = Gelu(x) }""")
    counts, notes = explain(Contrib(), model=model)
    assert counts == {} and "is not the pattern's 'com.microsoft'" in notes[0]


def test_multiple_root_outputs_and_unused_extra_outputs():
    class SplitOfIdentity(Rule):
        name = "split_of_identity"

        def pattern(self, op, x):
            return op.Split(op.Identity(x), _outputs=2)

        def rewrite(self, op, m):
            return op.Split(m["x"], _outputs=2, **m.node("Split").attrs)

    class DropoutToIdentity(Rule):
        name = "drop_dropout"

        def pattern(self, op, x):
            return op.Dropout(x)

        def rewrite(self, op, m):
            return m["x"]

    model = model_from_text("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[4] x) => (float[2] a, float[2] b, float[4] d, bool[4] mask) {
      i = Identity(x)
      a, b = Split(i)
      d0 = Dropout(x)
      d = Relu(d0)
      e, mask = Dropout(x)
    }""")
    original = model.clone()
    counts, notes = explain(SplitOfIdentity(), DropoutToIdentity(), model=model)
    assert counts == {"split_of_identity": 1, "drop_dropout": 1}
    assert notes == ["drop_dropout at node e (Dropout): output 1 ('mask') of Dropout is used, the rule replaces only 1"]
    assert op_histogram(model) == {"Split": 1, "Relu": 1, "Dropout": 1}
    assert [v.name for v in model.graph.outputs] == ["a", "b", "d", "mask"]
    assert_same_outputs(original, model)


def test_rewrite_returning_an_input_for_a_graph_output_keeps_the_name():
    drop = make_rule("drop_identity", lambda op, x: op.Identity(x), lambda op, m: m["x"],
                     doc="Identity(x) → x.")
    model = model_from_text("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2] x) => (float[2] y) { t = Relu(x)  y = Identity(t) }""")
    counts, _ = explain(drop(), model=model)
    assert counts == {"drop_identity": 1}
    assert [v.name for v in model.graph.outputs] == ["y"]
    assert op_histogram(model) == {"Relu": 1}


def test_opset_range_and_target_gate_the_rule():
    class NewOnly(CollapseRelu):
        name = "new_only"
        min_opset = 18

    class OrtOnly(CollapseRelu):
        name = "ort_only"
        requires_ort = True

        def rewrite(self, op, m):
            return op.FusedRelu(m["x"], _domain="com.example.test")

    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2] x) => (float[2] y) { a = Relu(x)  y = Relu(a) }"""
    model = model_from_text(text)
    counts, notes = explain(NewOnly(), OrtOnly(), model=model)
    assert counts == {}
    assert "new_only at node y (Relu): the rule needs opset >= 18, the model has 17 (--target-opset 18 converts it)" \
        in notes
    assert any(n.startswith("ort_only at node y (Relu): the rule emits onnxruntime-only ops") for n in notes)
    model = model_from_text(text)
    counts, _ = explain(OrtOnly(), model=model, target="ort")
    assert counts == {"ort_only": 1} and model.opset_imports["com.example.test"] == 1


def test_rewrites_inside_subgraphs():
    model = model_from_text("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (bool c, float[2] x) => (float[2] y) {
      y = If(c) <
        then_branch = t () => (float[2] o) { a = Relu(x)  o = Relu(a) },
        else_branch = e () => (float[2] o2) { o2 = Relu(x) }
      >
    }""")
    original = model.clone()
    counts, _ = explain(CollapseRelu(), model=model)
    assert counts == {"collapse_relu": 1}
    assert op_histogram(model) == {"If": 1, "Relu": 2}
    onnx.checker.check_model(to_proto(model), full_check=True)
    for flag in (True, False):
        assert_same_outputs(original, model, {"c": np.array(flag), "x": np.array([-1.0, 2.0], np.float32)})


def test_check_returning_none_is_a_failure():
    class Forgetful(CollapseRelu):
        name = "forgetful"

        def check(self, m):
            pass

    model = model_from_text("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2] x) => (float[2] y) { a = Relu(x)  y = Relu(a) }""")
    counts, notes = explain(Forgetful(), model=model)
    assert counts == {} and notes[-1].endswith("check returned None (return True to accept)")


def test_match_node_labels():
    seen = {}

    class Labels(Rule):
        name = "labels"

        def pattern(self, op, x):
            return op.Add(op.Relu(x, _name="inner"), op.Relu(x, _name="other"))

        def check(self, m):
            seen["inner"] = m.node("inner").outputs[0].name
            seen["root"] = m.node("Add") is m.root
            with pytest.raises(KeyError):
                m.node("Relu")
            return m.fail("look only")

    model = model_from_text("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2] x) => (float[2] y) { a = Relu(x)  b = Relu(x)  y = Add(a, b) }""")
    explain(Labels(), model=model)
    assert seen == {"inner": "a", "root": True}


def test_pattern_compile_errors():
    with pytest.raises(TypeError, match="pattern variables or pattern ops"):
        compile_pattern(lambda op, x: op.Relu(x, 1.0))
    with pytest.raises(TypeError, match="do not feed"):
        compile_pattern(lambda op, x: (op.Sigmoid(x), op.Relu(x))[1])
    with pytest.raises(ValueError, match="_commute"):
        compile_pattern(lambda op, x: op.Relu(x, _commute=True))


def test_rule_pass_registers_a_pass():
    class CollapseSigmoid(Rule):
        """Sigmoid(Sigmoid(x)) → Sigmoid(x) (engine test only)."""

        name = "engine_test_collapse_sigmoid"

        def pattern(self, op, x):
            return op.Sigmoid(op.Sigmoid(x))

        def rewrite(self, op, m):
            return op.Sigmoid(m["x"])

    cls = rule_pass(CollapseSigmoid, groups=("cleanup",))
    assert registered_passes()[cls.name] is cls and cls.name in group_members("cleanup")
    assert cls.description() == "Sigmoid(Sigmoid(x)) → Sigmoid(x) (engine test only)."
    model = model_from_text("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2] x) => (float[2] y) { a = Sigmoid(x)  y = Sigmoid(a) }""")
    result = make_pass(cls.name, PassContext()).call(model)
    assert result.modified and result.counters == {cls.name: 1}
    assert not make_pass(cls.name, PassContext()).call(model).modified


def _chain(pairs: int) -> Model:
    """x → (Relu → Relu) × pairs → y, built directly in the IR (fast)."""
    graph = Graph("chain")
    x = graph.add_input(Value("x"))
    x.set_type(onnx.TensorProto.FLOAT, (4,))
    nodes = []
    value = x
    for _ in range(2 * pairs):
        node = Node("Relu", [value])
        nodes.append(node)
        value = node.outputs[0]
    graph.append(nodes)
    graph.add_output(value)
    return Model(graph, {"": 17})


def test_fifty_thousand_nodes_rewrite_in_seconds():
    model = _chain(25_000)
    start = time.perf_counter()
    counts = RuleSet([CollapseRelu(), MergeScales()]).apply(model)
    elapsed = time.perf_counter() - start
    # each rewrite's new Relu pairs with the next one, so the chain collapses in one walk
    assert counts == {"collapse_relu": 49_999}
    assert len(model.graph) == 1
    assert elapsed < 10, elapsed


def test_new_initializer_names_avoid_value_names():
    class Scale(Rule):
        name = "scale_relu"

        def pattern(self, op, x):
            return op.Relu(x)

        def rewrite(self, op, m):
            return op.Mul(op.Relu(m["x"]), op.const(np.float32(1.0), name="y"))

    model = model_from_text("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2] x) => (float[2] y) { y = Relu(x) }""")
    RuleSet([Scale()]).apply(model)
    lint(model)
    assert "y" not in model.graph.initializers
    assert isinstance(next(iter(model.graph.initializers.values())).const_value, Tensor)


def test_two_outputs_of_one_intermediate():
    class SplitAdd(Rule):
        name = "split_add"

        def pattern(self, op, x):
            first, second = op.Split(x, _outputs=2)
            return op.Add(first, second, _commute=True)

        def rewrite(self, op, m):
            return op.ReduceSum(op.Reshape(m["x"], op.const(np.array([2, -1], np.int64))),
                                op.const(np.array([0], np.int64)), keepdims=0)

    model = model_from_text("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[4] x) => (float[2] y, float[2] z) { a, b = Split(x)  y = Add(b, a)  c, d = Split(x)  z = Add(c, c) }""")
    original = model.clone()
    counts, notes = explain(SplitAdd(), model=model)
    assert counts == {"split_add": 1}
    assert notes == ["split_add at node z (Add): input 1 is output 0 of Split, not output 1"]
    assert_same_outputs(original, model)


class SigmoidToTanh(Rule):
    """Sigmoid(x) → Tanh(x) (test rule: creates the op ReluOfTanh matches)."""

    name = "sigmoid_to_tanh"

    def pattern(self, op, x):
        return op.Sigmoid(x)

    def rewrite(self, op, m):
        return op.Tanh(m["x"])


class ReluOfTanh(Rule):
    """Relu(Tanh(x)) → Tanh(x) (test rule)."""

    name = "relu_of_tanh"

    def pattern(self, op, x):
        return op.Relu(op.Tanh(x))

    def rewrite(self, op, m):
        return op.Tanh(m["x"])


def test_pattern_fits_only_kinds_that_hold_every_pattern_op():
    pattern = compile_pattern(ReluOfTanh().pattern)
    assert pattern.fits({("Relu", ""), ("Tanh", "")})
    assert not pattern.fits({("Relu", ""), ("Sigmoid", "")})
    assert not pattern.fits({("Relu", ""), ("Tanh", "com.example")})
    assert compile_pattern(lambda op, x: op.node(("AveragePool", "MaxPool"), x)).fits({("MaxPool", "")})


def test_a_rule_whose_ops_are_missing_is_not_tried_unless_explained_or_created_meanwhile(monkeypatch):
    import onnxopt.rewrite.ruleset as ruleset

    tried = []
    apply_at = ruleset._apply_at
    monkeypatch.setattr(ruleset, "_apply_at", lambda rule, *args: tried.append(rule.name) or apply_at(rule, *args))
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2] x) => (float[2] y) {
      a = Sigmoid(x)
      y = Relu(a)
    }"""
    model = model_from_text(text.replace("Sigmoid", "Abs"))
    assert RuleSet([ReluOfTanh()]).apply(model) == {} and tried == []  # no Tanh anywhere
    _, notes = explain(ReluOfTanh(), model=model)
    assert tried == ["relu_of_tanh"] and notes == ["relu_of_tanh at node y (Relu): input 0 is produced by Abs, not Tanh"]

    tried.clear()
    model = model_from_text(text)  # Sigmoid becomes Tanh before the walk reaches the Relu
    assert RuleSet([SigmoidToTanh(), ReluOfTanh()]).apply(model) == {"sigmoid_to_tanh": 1, "relu_of_tanh": 1}
    assert op_histogram(model) == {"Tanh": 1}
