"""Rule passes that run shape inference only when a match of a shape-needing rule lacks the types it reads.

The engine infers shapes before every walk in which a shape-needing rule's root op type occurs at all. The roots
here are as common as Mul, Div, Reshape and Relu, and one inference serializes the whole model, weights included
(about 5 s for VGG-19), so that dominated optimize time. These passes first match the patterns structurally (cheap)
and infer only when a match has a value whose type is unknown: a variable's value, or the output of a matched
node the rule lists in `typed_nodes` (pattern labels). Once the engine infers lazily, use rule_pass.
"""
from __future__ import annotations

from typing import Sequence

from onnxopt.ir import Model, infer_shapes
from onnxopt.passmanager import PassResult, register_pass
from onnxopt.rewrite import Rule, RuleSet
from onnxopt.rewrite.matcher import Matcher, isolation_failure
from onnxopt.rewrite.ruleset import RewritePass, op_kinds


class ShapesOnDemandPass(RewritePass):
    """Apply the class's rules over every graph, subgraphs included; infer shapes first only if a match needs them."""

    def call(self, model: Model) -> PassResult:
        """Infer shapes when a shape-needing rule matches untyped values, then run the rules once."""
        rules = [rule() for rule in self.rules]
        if any(rule.needs_shapes and _untyped_match(rule, model, self.context.target) for rule in rules):
            infer_shapes(model)
        for rule in rules:
            rule.needs_shapes = False  # per instance: the types are there now, or no match reads them
        counts = RuleSet(rules).apply(model, self.context)
        return PassResult(model, bool(counts), counts)


def _untyped_match(rule: Rule, model: Model, target: str) -> bool:
    """True when the rule's pattern matches (structurally, isolated) somewhere with a value of unknown shape that
    the rule reads: a variable's, or the first output of a node labelled in the rule's `typed_nodes`."""
    if rule.inapplicable(model.opset, target):
        return False
    rule_typed_nodes = getattr(rule, "typed_nodes", ())
    pattern = rule.compiled()
    if not pattern.fits(op_kinds(model)):
        return False  # the model lacks one of the pattern's ops
    for graph in model.graph.all_graphs():
        for node in graph:
            if node.op_type not in pattern.root.op_types:
                continue
            for binding in Matcher(pattern, node).bindings():
                if isolation_failure(pattern, binding):
                    continue
                read = [matched.outputs[0] for p, matched in binding.nodes.items() if p.label in rule_typed_nodes]
                if any(value is not None and value.shape is None for value in (*binding.values.values(), *read)):
                    return True
    return False


def shapes_on_demand_pass(rules: Sequence[type[Rule]], name: str, doc: str) -> type[RewritePass]:
    """Register a `fuse` pass named `name` applying `rules`, with shape inference on demand."""
    class_name = "".join(part.title() for part in name.split("_")) + "Pass"
    cls = type(class_name, (ShapesOnDemandPass,), {
        "name": name, "groups": ("fuse",), "rules": tuple(rules), "__doc__": doc, "__module__": rules[0].__module__,
    })
    return register_pass(cls)
