"""The rewrite-rule engine: patterns, matching by root op type, Rule, RuleSet, RewritePass (rules live in passes/).

A rule reads like the subgraph it matches::

    class FuseBnIntoConv(Rule):
        "BatchNormalization(Conv(x, W, B)) → Conv(x, W', B')."
        name = "fuse_bn_into_conv"

        def pattern(self, op, x, w, b, scale, bias, mean, var):
            return op.BatchNormalization(op.Conv(x, w, b, _optional=1), scale, bias, mean, var)

        def check(self, m):
            return True if m.const("w") is not None else m.fail("the weight is not constant")

        def rewrite(self, op, m):
            return op.Conv(m["x"], op.const(...), op.const(...), **m.node("Conv").attrs)

    rule_pass(FuseBnIntoConv)   # registers the pass `fuse_bn_into_conv` in group `fuse`
"""
from __future__ import annotations

from onnxopt.rewrite.matcher import describe
from onnxopt.rewrite.pattern import Pattern, PatternBuilder, Var, compile_pattern
from onnxopt.rewrite.rule import ORT_TARGETS, Failure, Match, RewriteBuilder, Rule, make_rule
from onnxopt.rewrite.ruleset import RewritePass, RuleSet, rule_pass

__all__ = [
    "ORT_TARGETS", "Failure", "Match", "Pattern", "PatternBuilder", "RewriteBuilder", "RewritePass", "Rule", "RuleSet", "Var",
    "compile_pattern", "describe", "make_rule", "rule_pass",
]
