"""Dead-code elimination: nodes, initializers, value_info, opset imports and local functions nothing needs."""
from __future__ import annotations

from typing import Iterable

from onnx import AttributeProto, FunctionProto, NodeProto

from onnxopt.ir import Graph, Model, Node
from onnxopt.passmanager import Pass, PassResult, register_pass

DEFAULT_DOMAINS = ("", "ai.onnx")


def _discard(node: Node) -> None:
    """Remove a node and everything in its subgraphs, so values they read from outer scopes lose those uses."""
    for sub in node.subgraphs():
        for inner in list(sub):
            _discard(inner)
    node.graph.remove(node, safe=False)


def _is_dead(node: Node) -> bool:
    return not any(out.has_uses() or out.is_graph_output() for out in node.outputs)


def _sweep(graph: Graph) -> int:
    """Remove dead nodes of `graph` and its subgraphs; returns how many were removed.

    One reverse pass suffices: every reader of a value (in this graph or in a later node's subgraph) comes after
    its producer, and a node's subgraphs are swept before the node's own outer inputs are judged.
    """
    removed = 0
    for node in reversed(graph):
        for sub in node.subgraphs():
            removed += _sweep(sub)
        if _is_dead(node):
            removed += _count(node)
            _discard(node)
    return removed


def _count(node: Node) -> int:
    return 1 + sum(len(graph) for sub in node.subgraphs() for graph in sub.all_graphs())


def _drop_unused_initializers(graph: Graph) -> int:
    """Remove initializers nothing reads; an initializer that is also an input stays unless it is a legacy
    (IR < 4) listing, where it is a constant rather than part of the model's interface."""
    dead = [
        value for value in graph.initializers.values()
        if not value.has_uses() and not value.is_graph_output()
        and (value not in graph.input_set or graph.legacy_initializer_inputs)
    ]
    for value in dead:
        graph.remove_initializer(value)
    return len(dead)


def _model_names(model: Model) -> set[str]:
    """Every value name defined anywhere in the model: inputs, initializers and node outputs of every graph."""
    names: set[str] = set()
    for graph in model.graph.all_graphs():
        names.update(v.name for v in graph.inputs)
        names.update(graph.initializers)
        names.update(out.name for node in graph for out in node.outputs)
    return names


def _drop_stale_value_info(graph: Graph, names: set[str]) -> int:
    """Drop value_info entries (those not attached to this graph's node outputs) that name no value at all."""
    kept = [info for info in graph.orphan_value_info if info.name in names]
    dropped = len(graph.orphan_value_info) - len(kept)
    graph.orphan_value_info = kept
    return dropped


def _proto_calls(nodes: Iterable[NodeProto]) -> Iterable[NodeProto]:
    """Every NodeProto in a function body, nested graph attributes included."""
    for node in nodes:
        yield node
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH:
                yield from _proto_calls(attr.g.node)
            elif attr.type == AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _proto_calls(g.node)


def _used_functions(model: Model) -> list[FunctionProto]:
    """Local functions called from the graph, directly or through other functions."""
    by_key = {(f.domain, f.name, f.overload): f for f in model.functions}
    used: dict[tuple[str, str, str], None] = {}
    pending = [
        (node.domain, node.op_type, node.overload) for graph in model.graph.all_graphs() for node in graph
    ]
    while pending:
        key = pending.pop()
        if key in used or key not in by_key:
            continue
        used[key] = None
        pending.extend((n.domain, n.op_type, n.overload) for n in _proto_calls(by_key[key].node))
    return [f for f in model.functions if (f.domain, f.name, f.overload) in used]


def _drop_unused_opset_imports(model: Model) -> int:
    """Drop imports of domains no node, subgraph or local function uses; the default domain always stays."""
    used = {node.domain for graph in model.graph.all_graphs() for node in graph}
    for function in model.functions:
        used.add(function.domain)
        used.update(op.domain for op in function.opset_import)
        used.update(node.domain for node in _proto_calls(function.node))
    unused = [domain for domain in model.opset_imports if domain not in DEFAULT_DOMAINS and domain not in used]
    for domain in unused:
        del model.opset_imports[domain]
    return len(unused)


@register_pass
class EliminateDeadCode(Pass):
    """Nodes no graph output needs, unused initializers, value_info, opset imports, local functions → removed.

    Recurses into subgraphs: a branch's own dead nodes go; an outer node read only inside a branch stays.
    Graph inputs and outputs are never removed (an unused initializer that an IR < 4 model lists among its inputs
    is a weight, not an input, and goes). Like onnxoptimizer's eliminate_deadend, unused nodes of any
    domain are removed: an ONNX node's only effect is its outputs. Models with training_info keep their
    initializers and opset imports, which the training graphs may name.
    """

    name = "eliminate_dead_code"
    groups = ("dce",)
    removes_only_unread = True
    tidies_input = True

    def call(self, model: Model) -> PassResult:
        """Sweep every graph backwards from its outputs, then drop what the sweep left unreferenced."""
        counters = {"nodes": _sweep(model.graph)}
        graphs = model.graph.all_graphs()
        if not model.training_info:
            counters["initializers"] = sum(_drop_unused_initializers(graph) for graph in graphs)
        names = _model_names(model)
        counters["value_info"] = sum(_drop_stale_value_info(graph, names) for graph in graphs)
        functions = _used_functions(model)
        counters["functions"] = len(model.functions) - len(functions)
        model.functions = functions
        if not model.training_info:
            counters["opset_imports"] = _drop_unused_opset_imports(model)
        counters = {key: count for key, count in counters.items() if count}
        return PassResult(model, bool(counters), counters)
