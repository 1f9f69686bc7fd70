"""Shape inference: run onnx's inference on the model and record the types on the IR's Values."""
from __future__ import annotations

import logging

import onnx
from onnx import GraphProto

from onnxopt.ir.graph import Graph
from onnxopt.ir.model import Model
from onnxopt.ir.serde import serialize

logger = logging.getLogger(__name__)


def infer_shapes(model: Model, data_prop: bool = True) -> bool:
    """Annotate every value whose type onnx can infer (subgraphs included); False when inference failed."""
    try:
        inferred = onnx.shape_inference.infer_shapes(
            onnx.ModelProto.FromString(serialize(model)), strict_mode=False, data_prop=data_prop
        )
    except Exception as exc:  # inference errors on exotic models must not stop optimization
        logger.info("shape inference failed: %s", exc)
        return False
    _apply(model.graph, inferred.graph)
    return True


def _apply(graph: Graph, proto: GraphProto) -> None:
    types = {info.name: info.type for info in (*proto.value_info, *proto.output)}
    for node in graph:
        for value in node.outputs:
            inferred = types.get(value.name)
            if inferred is not None and _more_specific(inferred, value.type):
                value.type = inferred
    subgraph_protos = {}
    for node_proto in proto.node:
        for attr in node_proto.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                subgraph_protos[(node_proto.name, node_proto.output[0] if node_proto.output else "", attr.name)] = attr.g
    for node in graph:
        for key, sub in node.attrs.items():
            if isinstance(sub, Graph):
                sub_proto = subgraph_protos.get((node.name, node.outputs[0].name if node.outputs else "", key))
                if sub_proto is not None:
                    _apply(sub, sub_proto)


def _more_specific(new: onnx.TypeProto, old: onnx.TypeProto | None) -> bool:
    if old is None:
        return True
    if not new.HasField("tensor_type") or not old.HasField("tensor_type"):
        return False
    new_t, old_t = new.tensor_type, old.tensor_type
    if not old_t.HasField("shape"):
        return new_t.HasField("shape") or (new_t.elem_type and not old_t.elem_type)
    if not new_t.HasField("shape") or len(new_t.shape.dim) != len(old_t.shape.dim):
        return False
    return _known_dims(new_t) > _known_dims(old_t)


def _known_dims(tensor_type: onnx.TypeProto.Tensor) -> int:
    return sum(d.HasField("dim_value") for d in tensor_type.shape.dim)
