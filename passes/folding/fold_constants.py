"""fold_constants: nodes whose inputs are all constant are evaluated (a whole graph's worth per ORT session)."""
from __future__ import annotations

import functools
import math

import numpy as np
from onnx import AttributeProto, TensorProto, helper

from onnxopt.ir import Graph, Model, Node, Value
from onnxopt.passmanager import Pass, PassResult, register_pass
from onnxopt.passes.folding.evaluate import evaluate_regions
from onnxopt.passes.folding.extract_constants import extract_graph_constants
from onnxopt.passes.folding.materialize import adopt_initializer, can_replace, constant_in_place, replace_with_constant

NONDETERMINISTIC = frozenset(
    {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}
)
# Ops whose results are not plain tensors (sequences, optionals) or that must stay to keep the model's meaning:
# DequantizeLinear of a constant is how QDQ models store int8 weights.
NOT_FOLDED = NONDETERMINISTIC | frozenset(
    {
        "Constant", "DequantizeLinear", "If", "Loop", "Scan", "SequenceMap",
        "SequenceConstruct", "SequenceEmpty", "SequenceInsert", "SequenceErase", "SequenceAt", "SequenceLength",
        "SplitToSequence", "ConcatFromSequence", "Optional", "OptionalGetElement", "OptionalHasElement",
    }
)
# Ops whose output can be far larger than their inputs: folded only while the result stays small.
GROWING = frozenset({"ConstantOfShape", "Expand", "Tile", "Range"})
# Inputs that hold a model's parameters: a constant computed only for these is folded whatever its size.
PARAMETER_INPUTS: dict[str, tuple[int, ...]] = {
    "Conv": (1, 2), "ConvTranspose": (1, 2), "ConvInteger": (1, 3), "DeformConv": (1, 3),
    "QLinearConv": (1, 2, 3, 4, 5, 6, 7, 8), "Gemm": (1, 2), "MatMul": (1,), "MatMulInteger": (1, 3),
    "QLinearMatMul": (1, 2, 3, 4, 5, 6, 7), "BatchNormalization": (1, 2, 3, 4), "InstanceNormalization": (1, 2),
    "LayerNormalization": (1, 2), "GroupNormalization": (1, 2), "RMSNormalization": (1,), "PRelu": (1,),
    "LSTM": (1, 2, 3, 7), "GRU": (1, 2, 3), "RNN": (1, 2, 3), "Gather": (0,),
    "QuantizeLinear": (1, 2), "DequantizeLinear": (0, 1, 2),
}


def is_foldable(node: Node) -> bool:
    """True for a standard, deterministic op with tensor results and no subgraph."""
    if node.domain not in ("", "ai.onnx") or node.op_type in NOT_FOLDED:
        return False
    if node.op_type == "Dropout" and len(node.inputs) > 2 and node.inputs[2] is not None:
        return False  # training_mode may make it random
    return not node.subgraphs()


def is_parameter_use(node: Node, index: int) -> bool:
    """True when input `index` of `node` is a weight, bias or normalization parameter."""
    return node.domain in ("", "ai.onnx") and index in PARAMETER_INPUTS.get(node.op_type, ())


def estimated_bytes(node: Node) -> int | None:
    """Output size of a GROWING op whose inputs are all initializers, or None when it cannot tell."""
    inputs = [v.const_value if v is not None else None for v in node.inputs]
    try:
        if node.op_type == "ConstantOfShape":
            attr = node.attrs.get("value")
            dtype = attr.t.data_type if isinstance(attr, AttributeProto) else TensorProto.FLOAT
            return math.prod(int(d) for d in inputs[0].numpy().reshape(-1)) * _itemsize(dtype)
        data = inputs[0]
        if node.op_type == "Expand":
            shape = np.broadcast_shapes(data.shape, tuple(int(d) for d in inputs[1].numpy().reshape(-1)))
            return math.prod(shape) * _itemsize(data.dtype)
        if node.op_type == "Tile":
            repeats = [int(r) for r in inputs[1].numpy().reshape(-1)]
            return math.prod(d * r for d, r in zip(data.shape, repeats)) * _itemsize(data.dtype)
        if node.op_type == "Range":
            start, limit, delta = (float(t.numpy().reshape(-1)[0]) for t in inputs)
            return max(math.ceil((limit - start) / delta), 0) * _itemsize(data.dtype)
    except (ValueError, IndexError, TypeError, AttributeError, ZeroDivisionError, OverflowError):
        return None
    return None


@functools.cache
def _itemsize(dtype: int) -> int:
    return np.dtype(helper.tensor_dtype_to_np_dtype(dtype)).itemsize


class _Run:
    """State of one fold_constants application (kept out of the pass object)."""

    def __init__(self, model: Model, max_bytes: int) -> None:
        self.model = model
        self.max_bytes = max_bytes
        self.unfoldable: set[Node] = set()
        self.skipped_large: set[Node] = set()
        self.folded = 0
        self.ifs_inlined = 0
        self.extracted = 0

    def fold_graph(self, graph: Graph) -> None:
        """Fold `graph` to a fixed point, then its subgraphs (outer constants are constants inside them)."""
        self.extracted += extract_graph_constants(graph)
        while self.fold_round(graph) | self.inline_constant_ifs(graph):
            self.extracted += extract_graph_constants(graph)  # inlined branches may bring Constant nodes
        for node in graph:
            for sub in node.subgraphs():
                self.fold_graph(sub)

    def fold_round(self, graph: Graph) -> bool:
        """Evaluate every node that is constant now; growing ops wait until their inputs are initializers."""
        nodes = list(graph)
        candidates = self._candidates(nodes)
        if not candidates:
            return False
        parameter_only = self._parameter_only(nodes, candidates)
        batch: dict[Node, None] = {}
        for node in nodes:
            if node not in candidates or not all(v is None or v.is_constant() or v.producer() in batch
                                                 for v in node.inputs):
                continue
            if node.op_type in GROWING:
                if any(v is not None and v.producer() in batch for v in node.inputs):
                    continue  # sized next round, once its inputs exist
                size = estimated_bytes(node)
                inputs_size = sum(v.const_value.nbytes for v in node.inputs if v is not None)
                if size is not None and size > self.max_bytes and size > inputs_size and not parameter_only[node]:
                    self.skipped_large.add(node)
                    continue
            batch[node] = None
        wanted = [
            out for node in batch for out in node.outputs
            if out.is_graph_output() or any(user not in batch for user, _ in out.iter_uses())
        ]
        if not wanted:
            return False
        values, failed = evaluate_regions(list(batch), wanted, self.model)
        self.unfoldable |= failed
        done = [node for node in batch if node not in failed]
        done_set = set(done)
        in_place: set[Node] = set()  # nodes whose output became the initializer (and which are gone already)
        for node in done:
            for out in node.outputs:
                if out.is_graph_output() or any(user not in done_set for user, _ in out.iter_uses()):
                    if constant_in_place(out, values[out]):
                        in_place.add(node)
                    else:
                        replace_with_constant(out, values[out])
        graph.remove([node for node in done if node not in in_place])
        self.folded += len(done)
        return bool(done)

    def _candidates(self, nodes: list[Node]) -> set[Node]:
        """Nodes that could be folded if size did not matter: foldable ops over constants or other candidates."""
        candidates: set[Node] = set()
        for node in nodes:
            if (
                node not in self.unfoldable
                and is_foldable(node)
                and all(v is None or v.is_constant() or v.producer() in candidates for v in node.inputs)
                and all(can_replace(out) for out in node.outputs)
            ):
                candidates.add(node)
        return candidates

    @staticmethod
    def _parameter_only(nodes: list[Node], candidates: set[Node]) -> dict[Node, bool]:
        """For each candidate: are all its results read only as parameters (directly or through candidates)?"""
        result: dict[Node, bool] = {}
        for node in reversed(nodes):
            if node in candidates:
                result[node] = all(
                    not out.is_graph_output()
                    and all(is_parameter_use(user, i) or result.get(user, False) for user, i in out.iter_uses())
                    for out in node.outputs
                )
        return result

    def inline_constant_ifs(self, graph: Graph) -> bool:
        """Replace each If whose condition is constant by the nodes of the branch it takes."""
        inlined = False
        for node in graph:
            if node.op_type != "If" or node.domain not in ("", "ai.onnx") or not node.inputs:
                continue
            cond = node.inputs[0]
            if cond is None or not cond.is_constant() or cond.const_value.size != 1:
                continue
            taken = node.attr("then_branch" if bool(cond.numpy().reshape(-1)[0]) else "else_branch")
            if isinstance(taken, Graph) and len(taken.outputs) == len(node.outputs) and not taken.inputs:
                _inline_branch(node, taken)
                self.ifs_inlined += 1
                inlined = True
        return inlined


def _inline_branch(node: Node, branch: Graph) -> None:
    """Move the branch's nodes and initializers before `node` under fresh names, then drop `node`."""
    graph = node.graph
    assert graph is not None
    for name, value in list(branch.initializers.items()):
        del branch.initializers[name]
        value.graph = None
        adopt_initializer(graph, value)  # under a fresh name: the branch's names may recur elsewhere
    for inner in list(branch):
        for out in inner.outputs:
            if out.name:
                out.name = graph.unique_name(out.name)
        _move_before(inner, node)
    renames: list[tuple[Value, str]] = []
    taken: set[Value] = set()
    for old, new in zip(node.outputs, branch.outputs):
        if new.type is None or new.type.WhichOneof("value") is None:
            new.type = old.type
        for user, index in old.uses():
            user.replace_input_with(index, new)
        if old.is_graph_output():
            graph.replace_output(old, new)
        elif new.graph is graph and new.producer() is not None and new not in taken:
            renames.append((new, old.name))
        taken.add(new)
    graph.remove(node)  # also drops the uses held by the branch not taken
    for value, name in renames:
        if not value.is_graph_output():
            value.name = name


def _move_before(node: Node, anchor: Node) -> None:
    """Move `node`, subgraphs included, from its graph to just before `anchor` (in an enclosing graph)."""
    assert node.graph is not None and anchor.graph is not None
    inputs = node.inputs
    node.graph.remove(node, safe=False)  # this drops the uses its subgraphs hold too; they are restored below
    anchor.graph.insert_before(anchor, node)
    node.set_inputs(inputs)
    for sub in node.subgraphs():
        for inner_graph in sub.all_graphs():
            for inner in inner_graph:
                inner.set_inputs(inner.inputs)


@register_pass
class FoldConstants(Pass):
    """op(constants…) → initializer; If(constant cond) → the taken branch inline; recurses into subgraphs."""

    name = "fold_constants"
    groups = ("fold",)

    def call(self, model: Model) -> PassResult:
        run = _Run(model, self.context.fold_max_bytes)
        run.fold_graph(model.graph)
        counters = {
            "constants_extracted": run.extracted, "folded_nodes": run.folded, "ifs_inlined": run.ifs_inlined,
            "skipped_large": len(run.skipped_large), "not_evaluable": len(run.unfoldable),
        }
        modified = bool(run.extracted or run.folded or run.ifs_inlined)
        return PassResult(model, modified, counters={k: v for k, v in counters.items() if v})
