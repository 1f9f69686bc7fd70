"""read_dims_from_inputs: a dim read off an intermediate tensor's shape is read off the graph input it comes from."""
from __future__ import annotations

import numpy as np

from onnxopt.ir import Graph, Model, Node, PassTypes, Tensor, Value
from onnxopt.passmanager import Pass, PassResult, register_pass

_Plan = list[tuple[Node, Value, np.ndarray]]  # (Gather, the input to read, the indices into that input's shape)


def _input_dims(graph: Graph) -> dict[str, tuple[Value, int]]:
    """Each symbolic dim of the main graph's inputs → the first input declaring it and its axis there.

    A name one input gives to two of its axes ("?" for both H and W, as Paddle exports write) names no one dim.
    """
    found: dict[str, tuple[Value, int]] = {}
    ambiguous: set[str] = set()
    for value in graph.inputs:
        if value.is_initializer():
            continue
        names = [dim for dim in value.shape or () if isinstance(dim, str)]
        ambiguous.update(name for name in names if names.count(name) > 1)
        for axis, dim in enumerate(value.shape or ()):
            if isinstance(dim, str):
                found.setdefault(dim, (value, axis))
    return {name: place for name, place in found.items() if name not in ambiguous}


def _reroute_plan(shape: Node, types: PassTypes, sources: dict[str, tuple[Value, int]]) -> _Plan | None:
    """How every reader of `shape`'s output reads the same dims off a graph input, or None if one cannot."""
    x, out = shape.inputs[0], shape.outputs[0]
    inferred = types.get(x) if x is not None and x.producer() is not None else None
    if inferred is None or not inferred.tensor_type.HasField("shape") or out.is_graph_output():
        return None
    dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in inferred.tensor_type.shape.dim]
    dims = dims[slice(shape.attr("start", 0), shape.attr("end", None))]
    plan: _Plan = []
    for user, index in out.uses():
        indices = user.inputs[1] if len(user.inputs) > 1 else None
        if user.op_type != "Gather" or user.domain not in ("", "ai.onnx") or index != 0 or user.attr("axis", 0) != 0 \
                or indices is None or not indices.is_constant():
            return None
        positions = indices.const_value.numpy()
        read = [dims[int(i)] if -len(dims) <= i < len(dims) else None for i in positions.reshape(-1)]
        if not read or not all(isinstance(d, str) and d in sources for d in read):
            return None  # static dims are fold_shapes' to fold; made-up ones (unk__N) name nothing declared
        inputs = {sources[d][0] for d in read}
        if len(inputs) != 1:
            return None
        axes = np.array([sources[d][1] for d in read], dtype=positions.dtype).reshape(positions.shape)
        plan.append((user, inputs.pop(), axes))
    return plan or None


@register_pass
class ReadDimsFromInputs(Pass):
    """Gather(Shape(x), i), x's dim i being input g's dim j by name → Gather(Shape(g), j); main graph only.

    Exporters size a Reshape from the tensor in front of it (torch's legacy exporter reads attention's context before
    its heads are merged), and that extra Shape reader ties the tensor to a subgraph a fusion must then leave alone.
    Inference names every dim after the inputs' symbols (a name two inputs share is one size, as ONNX declares), so
    the dim can be read where it enters the graph. A Shape is rerouted only when all its readers are, so the graph
    never grows; subgraphs are left alone (their dims may come from loop-carried values).
    """

    name = "read_dims_from_inputs"
    groups = ("fold",)

    def call(self, model: Model) -> PassResult:
        graph = model.graph
        sources = _input_dims(graph)
        if not sources:
            return PassResult(model, False)
        types = PassTypes(model)
        input_shapes = {node.inputs[0]: node.outputs[0] for node in graph
                        if node.op_type == "Shape" and not node.attrs and node.inputs[0] in graph.input_set}
        rerouted = 0
        for node in graph:
            if node.op_type != "Shape" or node.domain not in ("", "ai.onnx"):
                continue
            plan = _reroute_plan(node, types, sources)
            if plan is None:
                continue
            for gather, source, axes in plan:
                read = input_shapes.get(source)
                if read is None:
                    shape = Node("Shape", [source], [Value(graph.unique_name(f"{source.name}_shape"))])
                    graph.insert_before(next(iter(graph)), shape)
                    read = input_shapes[source] = shape.outputs[0]
                index = graph.add_initializer(Value(graph.unique_name(f"{source.name}_axes"),
                                                    const_value=Tensor.from_array(axes)))
                gather.replace_input_with(0, read)
                gather.replace_input_with(1, index)
            graph.remove(node)
            rerouted += 1
        return PassResult(model, rerouted > 0, counters={"shapes_rerouted": rerouted} if rerouted else {})
