"""Shape inference that trusts only the model's inputs and constants, and records types on the IR's Values."""
from __future__ import annotations

import logging
import re
from collections import Counter

import onnx
from onnx import GraphProto, TypeProto
from onnx.helper import make_tensor_type_proto

from onnxopt.ir.graph import Graph
from onnxopt.ir.model import Model
from onnxopt.ir.serde import WriteView, serialize
from onnxopt.ir.value import Value

logger = logging.getLogger(__name__)

# Initializers up to this many elements reach inference with their data (shape vectors, axes, small constants
# that data propagation reads); larger ones go as typed inputs of the main graph, since their data cannot change a
# shape and serializing gigabytes of weights would dominate every pass that asks for shapes. Subgraph weights (If
# and Loop bodies of stateful speech models hold all of them) are read from there as outer-scope values.
MAX_INFERENCE_ELEMENTS = 1024


def infer_types(model: Model, data_prop: bool = True) -> dict[Value, TypeProto]:
    """Types onnx infers for node outputs from the root inputs and constants alone (subgraphs included).

    Declared shapes can be wrong in real exports and onnx propagates a declared shape instead of overriding it,
    so inference runs on a copy with every declared node-output, graph-output and subgraph-input shape removed;
    root graph inputs (the interface runtimes enforce) and declared element types are kept.
    The result is cached on the root graph until the model next changes (Graph.revision).
    """
    return dict(_current_types(model, data_prop))


def settled_type(model: Model, value: Value) -> TypeProto | None:
    """The type an earlier inference found for `value` if settled, without inferring again; None if there is none.

    Every rewrite keeps the meaning, so the shape, of the values it leaves in place, so that type stays true. It is
    settled when every dim is a number or a symbol of the model's inputs: folding cannot sharpen those. A dim
    inference could not know (none, or a symbol it made up) may become known once its inputs fold.
    """
    root = model.graph
    cached = root.inferred_types
    known = cached[2].get(value) if cached is not None and cached[1] else None
    if known is None or not known.HasField("tensor_type"):
        return None
    tensor_type = known.tensor_type
    if not tensor_type.HasField("shape") or not tensor_type.elem_type:
        return None
    symbols = None
    for dim in tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            continue
        if symbols is None:
            symbols = {d for v in root.inputs if v.shape is not None for d in v.shape if isinstance(d, str)}
        if dim.dim_param not in symbols:
            return None
    return known


class PassTypes:
    """Inferred types as one pass reads them: a settled type from an earlier inference answers at once; otherwise
    one inference runs on the first question it cannot answer, and its result serves the rest of the pass."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self._inferred: dict[Value, TypeProto] | None = None

    def get(self, value: Value) -> TypeProto | None:
        """The type inference gives `value`, or None."""
        if self._inferred is None:
            known = settled_type(self.model, value)
            if known is not None:
                return known
            self._inferred = infer_types(self.model)
        return self._inferred.get(value)


def carry_inferred_type(model: Model, old: Value, new: Value) -> None:
    """Record that `new` replaces `old` (same meaning), so it has the type inference gave `old`."""
    cached = model.graph.inferred_types
    if cached is not None and old in cached[2]:
        cached[2][new] = cached[2][old]


def recall_shape(model: Model, value: Value) -> bool:
    """True when `value` has a shape that inference gave it (now or before: rewrites keep the meaning of the values
    they leave), recording its settled type first. A type only declared in the file may be wrong, so it does not
    count until inference has confirmed it; inputs, initializers and outer values have the shape they declare.
    """
    if value.producer() is None:
        return value.shape is not None
    known = settled_type(model, value)
    if known is not None:
        if value.type is not known and not value.is_graph_output():
            value.type = known
        return True
    cached = model.graph.inferred_types
    if cached is None or value.shape is None:
        return False
    return cached[0] == model.graph.revision or value.type == cached[2].get(value)


def _current_types(model: Model, data_prop: bool) -> dict[Value, TypeProto]:
    root = model.graph
    cached = root.inferred_types
    if cached is not None and cached[:2] == (root.revision, data_prop):
        return cached[2]
    types = _infer_types(model, data_prop)
    root.inferred_types = (root.revision, data_prop, types)
    return types


def keep_inferred_types(model: Model, revision: int) -> None:
    """Carry the types inferred at `revision` over to the current one, after edits that only removed what
    nothing reads or reordered nodes: inference works forward from producers, so what remains is typed as before.

    A failed inference (no types) is not carried: the removed nodes may have been what it failed on.
    """
    root = model.graph
    cached = root.inferred_types
    if cached is None or cached[0] != revision or not cached[2]:
        return
    alive = {value: type_ for value, type_ in cached[2].items() if _alive(value)}
    root.inferred_types = (root.revision, cached[1], alive)


def _alive(value: Value) -> bool:
    producer = value.producer()
    return (producer.graph if producer is not None else value.graph) is not None  # an initializer once produced


def _infer_types(model: Model, data_prop: bool) -> dict[Value, TypeProto]:
    types = _run_inference(model, data_prop, {})
    ranges = _range_lengths(model, types)
    # a second run carries the lengths onnx left unknown to everything computed from them (position embeddings)
    return _run_inference(model, data_prop, ranges) or types if ranges else types


def _run_inference(model: Model, data_prop: bool, known: dict[Value, TypeProto]) -> dict[Value, TypeProto]:
    try:
        inferred = onnx.shape_inference.infer_shapes(_skeleton(model, known), strict_mode=False, data_prop=data_prop)
    except Exception as exc:  # inference errors on exotic models must not stop optimization
        logger.info("shape inference failed: %s", exc)
        return {}
    by_name: dict[str, TypeProto] = {}
    _collect(model.graph, inferred.graph, by_name)
    return {value: by_name[value.name] for graph in model.graph.all_graphs() for node in graph
            for value in node.outputs if value.name in by_name}


def _range_lengths(model: Model, types: dict[Value, TypeProto]) -> dict[Value, TypeProto]:
    """Range(0, n, 1) where n is a symbolic dim read off a shape has length n, which onnx's inference leaves unknown.

    Exporters build position ids this way (torch: arange(seq_len)); n is Gather(Shape(x), i) or Squeeze(Shape(x,
    start=i, end=i + 1)), possibly through Cast.
    """
    lengths: dict[Value, TypeProto] = {}
    for graph in model.graph.all_graphs():
        for node in graph:
            if node.op_type != "Range" or node.domain not in ("", "ai.onnx") or len(node.inputs) != 3:
                continue
            out = node.outputs[0]
            inferred = types.get(out)
            if inferred is None or not _unknown_length(inferred) or not _is_scalar(node.inputs[0], 0) \
                    or not _is_scalar(node.inputs[2], 1):
                continue
            dim = read_shape_dim(node.inputs[1], types)
            # a name one inference made up (unk__N), or a placeholder (Paddle's "?"), links nothing
            if isinstance(dim, str) and not dim.startswith("unk__") and dim != "?":
                lengths[out] = make_tensor_type_proto(inferred.tensor_type.elem_type, [dim])
    return lengths


def _unknown_length(type_: TypeProto) -> bool:
    """A 1-D tensor type whose length is not known (onnx names such dims unk__N), or one without a shape."""
    if not type_.tensor_type.HasField("shape"):
        return True
    dims = type_.tensor_type.shape.dim
    if len(dims) != 1 or dims[0].HasField("dim_value"):
        return False
    return not dims[0].dim_param or dims[0].dim_param.startswith("unk__")


def _is_scalar(value: Value | None, number: int) -> bool:
    tensor = value.const_value if value is not None and value.is_constant() else None
    return tensor is not None and tensor.size == 1 and tensor.numpy().item() == number


def read_shape_dim(value: Value | None, types: dict[Value, TypeProto] | None = None) -> int | str | None:
    """The dim a one-element value reads off a tensor's shape (Gather(Shape(x), i), or Shape(x, start=i, end=i+1),
    through Cast, Squeeze, Unsqueeze, Reshape), by x's type in `types` or, without them, as recorded on x."""
    node = value.producer() if value is not None else None
    while node is not None and node.op_type in ("Cast", "Squeeze", "Unsqueeze", "Reshape", "Identity"):
        node = node.inputs[0].producer() if node.inputs[0] is not None else None
    if node is None:
        return None
    index = None
    if node.op_type == "Gather":
        indices = node.inputs[1]
        tensor = indices.const_value if indices is not None and indices.is_constant() else None
        if node.attr("axis", 0) != 0 or tensor is None or tensor.size != 1 or tensor.numpy().item() < 0:
            return None
        index = int(tensor.numpy().item())
        node = node.inputs[0].producer()
    if node is None or node.op_type != "Shape":
        return None
    source = node.inputs[0]
    type_ = source.type if source.producer() is None or types is None else types.get(source)
    if type_ is None or not type_.tensor_type.HasField("shape"):
        return None
    dims = list(type_.tensor_type.shape.dim)[slice(node.attr("start", 0), node.attr("end", None))]
    if index is None and len(dims) != 1 or index is not None and index >= len(dims):
        return None  # without a Gather, the Shape itself must hold one dim
    dim = dims[index or 0]
    return dim.dim_value if dim.HasField("dim_value") else dim.dim_param or None


def type_check_error(model: Model) -> str | None:
    """The first error onnx's strict shape inference finds from the model's inputs and constants alone, as
    "<op> node '<name>': <reason>" (unnamed nodes: "<op> node: <reason>"), or None when it finds none."""
    try:
        onnx.shape_inference.infer_shapes(_skeleton(model), strict_mode=True, data_prop=True)
    except onnx.shape_inference.InferenceError as exc:
        found = _INNERMOST_ERROR.findall(str(exc).splitlines()[0])
        if not found:
            return str(exc).splitlines()[0]
        op_type, name, reason = found[-1]
        return f"{op_type} node{f' {name!r}' if name else ''}: {reason.strip()}"
    return None


# "(op_type:If, node name: If_0): [ShapeInferenceError] Inference error(s): (op_type:LSTM, node name: …): [Shape…] why"
_INNERMOST_ERROR = re.compile(r"\(op_type:([^,)]*)(?:, node name: ([^)]*))?\): \[\w+\] ((?:(?!\(op_type:).)*)$")


def _skeleton(model: Model, known: dict[Value, TypeProto] | None = None) -> bytes:
    """The model as inference sees it: declared shapes of node outputs and subgraph inputs removed (but for the
    `known` types), large weights as typed inputs of the main graph."""
    graphs = model.graph.all_graphs()
    weights = _large_weights(model.graph, graphs)
    subgraph_inputs = {value for graph in graphs[1:] for value in graph.inputs}

    def skeleton_type(value: Value) -> TypeProto | None:
        weight = weights.get(value) or (known or {}).get(value)
        if weight is not None:
            return weight
        if value.producer() is not None or value in subgraph_inputs:
            return _without_shape(value.type)
        return value.type

    return serialize(model, WriteView(skeleton_type, dict.fromkeys(weights)))


def infer_shapes(model: Model, data_prop: bool = True) -> bool:
    """Record inferred types on node outputs (they replace declared value_info, which may be wrong).

    Graph outputs keep their declared types (they are the model's interface). False when nothing was inferred.
    """
    types = _current_types(model, data_prop)
    changed = False
    for value, inferred in types.items():
        if not value.is_graph_output() and _informative(inferred, value.type) and value.type != inferred:
            value.type = inferred
            changed = True
    if changed:
        root = model.graph
        root.mark_changed()
        # inference reads only element types of node outputs, and those recorded here are the ones it inferred:
        # inferring again would give the same types, so the cached result stays valid
        root.inferred_types = (root.revision, data_prop, types)
    return bool(types)


# The shapeless tensor types, one shared object per element type: serde then finds its cached value_info bytes.
_SHAPELESS: dict[int, TypeProto] = {}


def _without_shape(type_: TypeProto | None) -> TypeProto | None:
    if type_ is None or not type_.HasField("tensor_type") or not type_.tensor_type.HasField("shape"):
        return type_
    if not type_.denotation and type_.tensor_type.HasField("elem_type"):
        elem_type = type_.tensor_type.elem_type
        kept = _SHAPELESS.get(elem_type)
        if kept is None:
            kept = _SHAPELESS[elem_type] = make_tensor_type_proto(elem_type, None)
        return kept
    kept = TypeProto()
    kept.CopyFrom(type_)
    kept.tensor_type.ClearField("shape")
    return kept


def _large_weights(root: Graph, graphs: list[Graph]) -> dict[Value, TypeProto]:
    """The initializers inference receives as typed inputs of the root graph, with those types.

    A subgraph's weight moves only where its name is defined nowhere else (sibling subgraphs may reuse a name, and
    a root input would then shadow the other definition) and the subgraph does not list initializers as inputs.
    """
    defined = Counter(
        value.name for graph in graphs[1:]
        for value in (*graph.inputs, *graph.initializers.values(), *(out for node in graph for out in node.outputs))
    )
    if defined:
        defined.update(value.name for value in (*root.inputs, *root.initializers.values(),
                                                *(out for node in root for out in node.outputs)))
    weights: dict[Value, TypeProto] = {}
    for graph in graphs:
        hoist = graph is not root and not graph.legacy_initializer_inputs
        for name, value in graph.initializers.items():
            tensor = value.const_value
            if tensor.size <= MAX_INFERENCE_ELEMENTS or graph is not root and (not hoist or defined[name] > 1):
                continue
            weights[value] = make_tensor_type_proto(tensor.dtype, list(tensor.shape))
    return weights


def _collect(graph: Graph, proto: GraphProto, by_name: dict[str, TypeProto]) -> None:
    """Read the types in `proto`, the inferred form of `graph`, and in its subgraphs, which the IR locates: reading
    every node's attributes from the proto to find them costs more than the types themselves."""
    for info in (*proto.value_info, *proto.output):
        by_name[info.name] = info.type
    if not graph._subgraph_holders:
        return
    nodes = proto.node
    for index, node in enumerate(graph):
        if not node.subgraphs():
            continue
        for attr in nodes[index].attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                _collect(node.attrs[attr.name], attr.g, by_name)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub, sub_proto in zip(node.attrs[attr.name], attr.graphs):
                    _collect(sub, sub_proto, by_name)


def _informative(new: TypeProto, old: TypeProto | None) -> bool:
    if old is None:
        return True
    if new.HasField("tensor_type") and old.HasField("tensor_type"):
        return new.tensor_type.HasField("shape") or bool(new.tensor_type.elem_type and not old.tensor_type.elem_type)
    return False
