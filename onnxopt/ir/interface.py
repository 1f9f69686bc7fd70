"""A model's input interface as plain specs (name, numpy dtype, dims), shared by calibration, bench and verify."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TypeProto, helper

from onnxopt.errors import DataError
from onnxopt.ir.model import Model

Dim = int | str | None


@dataclass(frozen=True)
class InputSpec:
    """A model input: name, numpy dtype and dims (int static; str or None dynamic); shape None: rank unknown."""

    name: str
    dtype: np.dtype
    shape: tuple[Dim, ...] | None


def input_specs(model: Model | onnx.ModelProto) -> list[InputSpec]:
    """The inputs a caller feeds (graph inputs that are not initializers), in graph order.

    Exporters write -1 or 0 for dynamic dims (Paddle), so only positive dims count as static.
    """
    if isinstance(model, Model):
        entries = [(v.name, v.type) for v in model.graph.inputs if not v.is_initializer()]
    else:
        initializers = {t.name for t in model.graph.initializer}
        entries = [(v.name, v.type) for v in model.graph.input if v.name not in initializers]
    return [_spec(name, type_proto) for name, type_proto in entries]


def _spec(name: str, type_proto: TypeProto | None) -> InputSpec:
    if type_proto is None or not type_proto.HasField("tensor_type") or not type_proto.tensor_type.elem_type:
        raise DataError(f"model input {name!r} is not a typed tensor; onnxopt feeds tensor inputs only")
    tensor_type = type_proto.tensor_type
    shape = None
    if tensor_type.HasField("shape"):
        shape = tuple(
            (d.dim_value if d.dim_value > 0 else None) if d.HasField("dim_value") else (d.dim_param or None)
            for d in tensor_type.shape.dim
        )
    return InputSpec(name, np.dtype(helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)), shape)
