"""RuleSet applies rules, dispatched by root op type, over every graph; RewritePass and rule_pass make them passes."""
from __future__ import annotations

from typing import ClassVar, Iterable, Sequence

from onnxopt.ir import Graph, Model, Node, Value, carry_inferred_type, infer_shapes, recall_shape
from onnxopt.passmanager import Pass, PassContext, PassResult, register_pass
from onnxopt.rewrite.matcher import Matcher, isolation_failure
from onnxopt.rewrite.pattern import Pattern, normalize_domain
from onnxopt.rewrite.rule import Failure, Match, RewriteBuilder, Rule

# Failure levels: a later stage's reason says more than an earlier stage's (commuted alternatives may differ).
_STRUCTURE, _ISOLATION, _CHECK = 0, 1, 2


class RuleSet:
    """Rules applied in one walk over each graph (subgraphs included); the first rule that fires at a node wins."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)
        names = [rule.name for rule in self.rules]
        if len(set(names)) != len(names) or not all(names):
            raise ValueError(f"rule names must be set and distinct: {names}")

    def apply(self, model: Model, context: PassContext | None = None) -> dict[str, int]:
        """Rewrite `model` in place; return how often each rule fired. Explained rules log why they did not."""
        context = context or PassContext()
        opset, target, explain = model.opset, context.target, context.explain
        candidates: list[tuple[Rule, Pattern, str]] = []
        for rule in self.rules:
            blocked = rule.inapplicable(opset, target)
            if blocked and rule.name not in explain:
                continue
            candidates.append((rule, rule.compiled(), blocked))
        counts: dict[str, int] = {}
        if not candidates:
            return counts
        # a fixed-point pipeline runs the pass repeatedly: say each reason once
        explained = set(context.explanations) if explain else set()
        graphs = model.graph.all_graphs()
        # a rule whose pattern needs an op the model lacks cannot match; rewrites only add the kinds they create
        kinds = op_kinds(model)
        shape_rules = [(r, p) for r, p, b in candidates if r.needs_shapes and not b and p.fits(kinds)]
        if shape_rules and _untyped_match(shape_rules, model, graphs):
            infer_shapes(model)
        dispatch = _dispatch(candidates, kinds, explain)
        if not dispatch:
            return counts
        for graph in graphs:
            if graph.parent is not None and graph.parent.graph is None:
                continue  # its node was rewritten away
            for node in graph:
                entries = dispatch.get(node.op_type)
                if entries is None:
                    continue
                for rule, pattern, blocked in entries:
                    known = len(kinds)
                    reason = blocked or _apply_at(rule, pattern, node, model, target, kinds)
                    if not reason:
                        counts[rule.name] = counts.get(rule.name, 0) + 1
                        if len(kinds) != known:
                            dispatch = _dispatch(candidates, kinds, explain)
                        break
                    if rule.name in explain:
                        where = node.name or (node.outputs[0].name if node.outputs else "?")
                        line = f"{rule.name} at node {where} ({node.op_type}): {reason}"
                        if line not in explained:
                            explained.add(line)
                            context.explanations.append(line)
        return counts


def _dispatch(
    candidates: list[tuple[Rule, Pattern, str]], kinds: set[tuple[str, str]], explain: frozenset[str]
) -> dict[str, list[tuple[Rule, Pattern, str]]]:
    """Root op type → the rules to try there, in order: blocked ones only to explain them, and only those whose
    pattern fits the model's op kinds unless explained."""
    dispatch: dict[str, list[tuple[Rule, Pattern, str]]] = {}
    for rule, pattern, blocked in candidates:
        if blocked or rule.name in explain or pattern.fits(kinds):
            for op_type in pattern.root.op_types:
                dispatch.setdefault(op_type, []).append((rule, pattern, blocked))
    return dispatch


def op_kinds(model: Model) -> set[tuple[str, str]]:
    """(op_type, normalized domain) of every node in the model, subgraphs included: what Pattern.fits reads."""
    return {(op_type, normalize_domain(domain)) for op_type, domain in model.graph.op_kinds()}


def _untyped_match(rules: list[tuple[Rule, Pattern]], model: Model, graphs: list[Graph]) -> bool:
    """True when a shape-needing rule matches (structurally, isolated) where a value it reads has no shape, even from
    an earlier inference: a variable's, or the first output of a node labelled in the rule's `typed_nodes`.

    Inference serializes the whole model, so it runs only then, not before every walk that might read a shape."""
    for rule, pattern in rules:
        for graph in graphs:
            for node in graph:
                if node.op_type not in pattern.root.op_types:
                    continue
                for binding in Matcher(pattern, node).bindings():
                    if isolation_failure(pattern, binding):
                        continue
                    read = [matched.outputs[0] for p, matched in binding.nodes.items() if p.label in rule.typed_nodes]
                    if any(value is not None and not recall_shape(model, value)
                           for value in (*binding.values.values(), *read)):
                        return True
    return False


def _apply_at(rule: Rule, pattern: Pattern, root: Node, model: Model, target: str, kinds: set[tuple[str, str]]) -> str:
    """Match, check and rewrite at `root`; '' when the rule fired (`kinds` then gains the created nodes' kinds),
    else the most informative reason it did not."""
    matcher = Matcher(pattern, root)
    level, reason = -1, ""
    for binding in matcher.bindings():
        failure, stage = isolation_failure(pattern, binding), _ISOLATION
        if not failure:
            m = Match(root, model.opset, target, binding.values, binding.nodes)
            verdict = rule.check(m)
            if isinstance(verdict, Failure):
                failure = verdict.reason or "check declined"
            elif verdict is None:
                failure = "check returned None (return True to accept)"
            elif not verdict:
                failure = "check declined"
            else:
                kinds.update((node.op_type, normalize_domain(node.domain)) for node in _replace(rule, pattern, m, model))
                return ""
            stage = _CHECK
        if stage > level:
            level, reason = stage, failure
    return reason or matcher.reason


def _replace(rule: Rule, pattern: Pattern, m: Match, model: Model) -> list[Node]:
    """Build the replacement before the root, re-wire the root's readers, drop dead matched nodes and weights;
    return the nodes it created."""
    root, graph = m.root, m.graph
    op = RewriteBuilder(graph)
    with graph.inserting_before(root):
        result = rule.rewrite(op, m)
    outputs: Sequence[Value] = (result,) if isinstance(result, Value) else tuple(result)
    if len(outputs) != pattern.num_outputs:
        raise TypeError(f"rule {rule.name} returned {len(outputs)} values for {pattern.num_outputs} root outputs")
    created = set(op.created)
    for node in op.created:
        if node.domain not in ("", "ai.onnx") and node.domain not in model.opset_imports:
            model.opset_imports[node.domain] = rule.domain_opsets.get(node.domain, 1)
    for old, new in zip(root.outputs, outputs):
        if new.type is None and old.type is not None and old.type.WhichOneof("value"):
            new.type = old.type
        carry_inferred_type(model, old, new)
        keep_name = new.producer() in created and not old.is_graph_output()
        name = old.name
        old.replace_all_uses_with(new)  # a graph output keeps its name: the graph renames `new` to it
        if keep_name:
            old.name = graph.unique_name(name)
            new.name = name
    read: dict[Value, None] = {}
    pending = m.nodes
    removed = True
    while removed:
        removed = False
        for node in list(pending):
            if any(out.has_uses() or out.is_graph_output() for out in node.outputs):
                continue  # the rewrite kept using it
            read.update((v, None) for v in node.inputs if v is not None)
            graph.remove(node)
            pending.remove(node)
            removed = True
    for value in read:
        if value.is_initializer() and not value.has_uses() and not value.is_graph_output() \
                and not value.is_graph_input():
            value.graph.remove_initializer(value)
    return op.created


class RewritePass(Pass):
    """Apply the class's rules over every graph, subgraphs included (If/Loop bodies are rewritten too)."""

    rules: ClassVar[tuple[type[Rule], ...]] = ()

    def call(self, model: Model) -> PassResult:
        """Run the rules once over the model; counters say how often each fired."""
        counts = RuleSet(rule() for rule in self.rules).apply(model, self.context)
        return PassResult(model, bool(counts), counts)


def rule_pass(
    rules: type[Rule] | Sequence[type[Rule]], name: str = "", groups: Sequence[str] = ("fuse",), doc: str = ""
) -> type[RewritePass]:
    """Register a pass that applies `rules` (one Rule class, named after it, or several under `name`, with `doc`)."""
    rules = (rules,) if isinstance(rules, type) else tuple(rules)
    name = name or rules[0].name
    doc = doc or (rules[0].__doc__ if len(rules) == 1 else f"Apply the rules {', '.join(r.name for r in rules)}.")
    class_name = "".join(part.title() for part in name.split("_")) + "Pass"
    cls = type(class_name, (RewritePass,), {
        "name": name, "groups": tuple(groups), "rules": rules, "__doc__": doc, "__module__": rules[0].__module__,
    })
    return register_pass(cls)


def explainable() -> dict[str, tuple[str, ...]]:
    """What --explain takes: each rule's name (for itself) and each rewrite pass's name (for all the rules it applies,
    so `fuse_attention` explains its variants too)."""
    from onnxopt.passmanager import registered_passes

    passes = [cls for cls in registered_passes().values() if issubclass(cls, RewritePass)]
    names = {rule.name: (rule.name,) for cls in passes for rule in cls.rules}
    names.update({cls.name: tuple(rule.name for rule in cls.rules) for cls in passes})
    return names
