"""The onnxopt IR: Values with producers and uses, Nodes, Graphs (with subgraphs), Tensors, Models."""
from __future__ import annotations

from onnxopt.ir.builder import Builder
from onnxopt.ir.graph import Graph
from onnxopt.ir.lint import lint
from onnxopt.ir.model import Model
from onnxopt.ir.node import Node
from onnxopt.ir.shapes import (
    PassTypes, carry_inferred_type, infer_shapes, infer_types, keep_inferred_types, recall_shape, settled_type,
    type_check_error,
)
from onnxopt.ir.serde import from_proto, graph_to_proto, load, save, serialize, stored_bytes, to_proto
from onnxopt.ir.tensor import Tensor
from onnxopt.ir.value import Value

__all__ = [
    "Builder", "Graph", "Model", "Node", "PassTypes", "Tensor", "Value",
    "carry_inferred_type", "from_proto", "graph_to_proto", "infer_shapes", "infer_types", "keep_inferred_types",
    "lint", "load", "recall_shape", "save", "serialize", "settled_type", "stored_bytes", "to_proto",
    "type_check_error",
]
