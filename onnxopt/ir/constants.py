"""Constant data a pass may read: initializers and the outputs of dense Constant nodes."""
from __future__ import annotations

import numpy as np
from onnx import AttributeProto, TensorProto, helper

from onnxopt.ir.node import Node
from onnxopt.ir.tensor import Tensor
from onnxopt.ir.value import Value

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


def constant_data(value: Value | None) -> np.ndarray | None:
    """The data of a constant initializer or of a standard Constant node's output, else None."""
    if value is None:
        return None
    data = value.numpy()
    if data is not None:
        return data
    producer = value.producer()
    if producer is None or producer.op_type != "Constant" or producer.domain not in ("", "ai.onnx"):
        return None
    tensor = constant_tensor(producer)
    return None if tensor is None else tensor.numpy()
