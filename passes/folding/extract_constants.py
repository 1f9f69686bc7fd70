"""extract_constants: Constant nodes become initializers (subgraphs included)."""
from __future__ import annotations

import numpy as np
from onnx import AttributeProto, TensorProto, helper

from onnxopt.ir import Graph, Model, Node, Tensor
from onnxopt.passmanager import Pass, PassResult, register_pass
from onnxopt.passes.folding.materialize import can_replace, replace_with_constant

_ATTRIBUTE_TYPES = {
    "value": AttributeProto.TENSOR, "value_float": AttributeProto.FLOAT, "value_floats": AttributeProto.FLOATS,
    "value_int": AttributeProto.INT, "value_ints": AttributeProto.INTS, "value_string": AttributeProto.STRING,
    "value_strings": AttributeProto.STRINGS,
}


def constant_tensor(node: Node) -> Tensor | None:
    """The data of a dense Constant node, or None (sparse_value, attribute references, malformed nodes)."""
    if len(node.attrs) != 1:
        return None
    (key, attr), = node.attrs.items()
    if not isinstance(attr, AttributeProto) or attr.ref_attr_name:
        return None
    if attr.type != _ATTRIBUTE_TYPES.get(key):
        return None  # sparse_value, or an attribute whose type does not match its name
    if key == "value":
        proto = TensorProto()
        proto.CopyFrom(attr.t)
        proto.ClearField("name")
        return Tensor.from_proto(proto)
    if key in ("value_float", "value_floats"):
        return Tensor.from_array(np.array(attr.f if key == "value_float" else list(attr.floats), dtype=np.float32))
    if key in ("value_int", "value_ints"):
        return Tensor.from_array(np.array(attr.i if key == "value_int" else list(attr.ints), dtype=np.int64))
    if key == "value_string":
        return Tensor.from_proto(helper.make_tensor("", TensorProto.STRING, [], [attr.s]))
    return Tensor.from_proto(helper.make_tensor("", TensorProto.STRING, [len(attr.strings)], list(attr.strings)))


def is_constant_node(node: Node) -> bool:
    """True for a standard-domain Constant node."""
    return node.op_type == "Constant" and node.domain in ("", "ai.onnx")


def extract_graph_constants(graph: Graph) -> int:
    """Turn the dense Constant nodes of `graph` (not its subgraphs) into initializers; returns how many."""
    count = 0
    for node in graph:
        if not is_constant_node(node) or len(node.outputs) != 1 or not can_replace(node.outputs[0]):
            continue
        tensor = constant_tensor(node)
        if tensor is None:
            continue
        replace_with_constant(node.outputs[0], tensor)
        graph.remove(node)
        count += 1
    return count


@register_pass
class ExtractConstants(Pass):
    """Constant(value=T) → initializer T under the same name (sparse constants stay nodes); recurses into subgraphs."""

    name = "extract_constants"
    groups = ("fold",)

    def call(self, model: Model) -> PassResult:
        count = sum(extract_graph_constants(graph) for graph in model.graph.all_graphs())
        return PassResult(model, count > 0, counters={"constants_extracted": count} if count else {})
