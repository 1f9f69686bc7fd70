"""fold_shapes: Shape/Size and the integer arithmetic on shape vectors fold wherever the dims involved are static."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from onnx import AttributeProto, TensorProto, TypeProto, helper

from onnxopt.ir import Graph, Model, Node, PassTypes, Tensor, Value
from onnxopt.passmanager import Pass, PassResult, register_pass
from onnxopt.ir.constants import constant_tensor
from onnxopt.passes.folding.materialize import can_replace, replace_with_constant

Elem = int | float | None
MAX_ELEMENTS = 64  # shape vectors are short; longer constants are fold_constants' business
_INT_TYPES = frozenset({
    TensorProto.INT8, TensorProto.INT16, TensorProto.INT32, TensorProto.INT64,
    TensorProto.UINT8, TensorProto.UINT16, TensorProto.UINT32, TensorProto.UINT64,
})
_FLOAT_TYPES = frozenset({TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16})


@dataclass(frozen=True)
class Vec:
    """A small 0-D/1-D tensor known element by element (None: unknown), and whether a shape went into it."""

    elems: tuple[Elem, ...]
    dtype: int
    scalar: bool = False
    from_shape: bool = False

    @property
    def known(self) -> bool:
        """Every element is known."""
        return all(e is not None for e in self.elems)

    def array(self) -> np.ndarray:
        """The (fully known) data as numpy."""
        array = np.array(self.elems, dtype=helper.tensor_dtype_to_np_dtype(self.dtype))
        return array.reshape(()) if self.scalar else array


class _Shapes:
    """Trusted static facts: inferred shapes and main-graph input shapes, never declared graph-output shapes.

    The shapes come from onnxopt.ir.infer_types, which trusts only the inputs and constants: an earlier inference's
    settled types, else one inference on the first question they do not answer (a model without Shape or Size nodes
    asks none).
    """

    def __init__(self, model: Model) -> None:
        self.model = model
        self.root = model.graph
        self._types = PassTypes(model)

    def of(self, value: Value) -> tuple | None:
        """The value's dims (int, or None when not static), or None when its rank is unknown."""
        if value.graph is not None and value in value.graph.input_set:
            if value.graph is not self.root or value.type is None or not value.type.HasField("tensor_type"):
                return None  # subgraph inputs (loop-carried values) are not checked against their declaration
            shape = _dims(value.type)
        else:
            inferred = self._types.get(value)
            shape = _dims(inferred) if inferred is not None and inferred.HasField("tensor_type") else None
        return None if shape is None else tuple(d if isinstance(d, int) else None for d in shape)


def _dims(type_proto: TypeProto) -> tuple | None:
    tensor_type = type_proto.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim)


def _constant_vec(value: Value) -> Vec | None:
    return _tensor_vec(value.const_value) if value.is_constant() else None


def _tensor_vec(tensor: Tensor | None) -> Vec | None:
    if tensor is None or tensor.dtype not in _INT_TYPES | _FLOAT_TYPES:
        return None
    if len(tensor.shape) > 1 or tensor.size > MAX_ELEMENTS:
        return None
    array = tensor.numpy()
    return Vec(tuple(array.reshape(-1).tolist()), tensor.dtype, scalar=array.ndim == 0)


class _Propagation:
    """Element-wise knowledge of small integer tensors, propagated in graph order (outer graphs first)."""

    def __init__(self, shapes: _Shapes, opset: int) -> None:
        self.shapes = shapes
        self.opset = opset
        self.vecs: dict[Value, Vec] = {}

    def vec(self, value: Value | None) -> Vec | None:
        """What is known of `value`, or None."""
        if value is None:
            return None
        found = self.vecs.get(value)
        return found if found is not None else _constant_vec(value)

    def visit(self, node: Node) -> None:
        """Record what `node`'s single output is known to hold."""
        if node.domain not in ("", "ai.onnx") or len(node.outputs) != 1:
            return
        rule = _RULES.get(node.op_type)
        out = rule(self, node) if rule is not None else None
        if out is not None and len(out.elems) <= MAX_ELEMENTS:
            self.vecs[node.outputs[0]] = out

    # ---- rules --------------------------------------------------------------------------------
    def shape(self, node: Node) -> Vec | None:
        dims = self.shapes.of(node.inputs[0])
        if dims is None:
            return None
        dims = dims[slice(node.attr("start", 0), node.attr("end", None))]
        return Vec(tuple(dims), TensorProto.INT64, from_shape=True)

    def size(self, node: Node) -> Vec | None:
        dims = self.shapes.of(node.inputs[0])
        if dims is None or any(d is None for d in dims):
            return None
        return Vec((int(np.prod(dims, dtype=np.int64)),), TensorProto.INT64, scalar=True, from_shape=True)

    def gather(self, node: Node) -> Vec | None:
        data, indices = self.vec(node.inputs[0]), self.vec(node.inputs[1])
        if data is None or data.scalar or indices is None or not indices.known or node.attr("axis", 0) not in (0, -1):
            return None
        n = len(data.elems)
        if any(not -n <= int(i) < n for i in indices.elems):
            return None
        elems = tuple(data.elems[int(i)] for i in indices.elems)
        return Vec(elems, data.dtype, indices.scalar, data.from_shape or indices.from_shape)

    def slice(self, node: Node) -> Vec | None:
        data = self.vec(node.inputs[0])
        if data is None or data.scalar:
            return None
        if self.opset < 10:
            starts, ends, axes, steps = node.attr("starts"), node.attr("ends"), node.attr("axes", [0]), [1]
        else:
            given = list(node.inputs[1:5]) + [None] * (5 - len(node.inputs))
            parts = [self.vec(v) for v in given]
            if any(v is not None and (p is None or not p.known) for v, p in zip(given, parts)) or None in parts[:2]:
                return None
            starts, ends = parts[0].elems, parts[1].elems
            axes = parts[2].elems if parts[2] is not None else (0,)
            steps = parts[3].elems if parts[3] is not None else (1,)
        if starts is None or ends is None or len(starts) != 1 or tuple(axes) not in ((0,), (-1,)) or steps[0] == 0:
            return None
        elems = data.elems[slice(int(starts[0]), int(ends[0]), int(steps[0]))]
        return Vec(elems, data.dtype, from_shape=data.from_shape)

    def concat(self, node: Node) -> Vec | None:
        parts = [self.vec(v) for v in node.inputs]
        if not parts or any(p is None or p.scalar for p in parts) or node.attr("axis") not in (0, -1):
            return None
        elems = tuple(e for p in parts for e in p.elems)
        return Vec(elems, parts[0].dtype, from_shape=any(p.from_shape for p in parts))

    def unsqueeze(self, node: Node) -> Vec | None:
        data = self.vec(node.inputs[0])
        axes = node.attr("axes") if self.opset < 13 else self._known(node.inputs[1] if len(node.inputs) > 1 else None)
        if data is None or not data.scalar or axes is None or list(axes) not in ([0], [-1]):
            return None
        return Vec(data.elems, data.dtype, from_shape=data.from_shape)

    def squeeze(self, node: Node) -> Vec | None:
        data = self.vec(node.inputs[0])
        if self.opset < 13:
            axes = node.attr("axes")
        else:
            axes = self._known(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] is not None else None
        if data is None or data.scalar or len(data.elems) != 1 or (axes is not None and list(axes) not in ([0], [-1])):
            return None
        return Vec(data.elems, data.dtype, scalar=True, from_shape=data.from_shape)

    def constant(self, node: Node) -> Vec | None:
        attr = node.attrs.get("value")
        if isinstance(attr, AttributeProto) and math.prod(attr.t.dims) > MAX_ELEMENTS:
            return None  # do not copy a large tensor only to find it is not a shape
        return _tensor_vec(constant_tensor(node))

    def identity(self, node: Node) -> Vec | None:
        return self.vec(node.inputs[0])

    def cast(self, node: Node) -> Vec | None:
        data, to = self.vec(node.inputs[0]), node.attr("to")
        if data is None or to not in _INT_TYPES | _FLOAT_TYPES:
            return None
        np_type = helper.tensor_dtype_to_np_dtype(to).type
        elems = tuple(None if e is None else _cast(e, to, np_type) for e in data.elems)
        return Vec(elems, to, data.scalar, data.from_shape)

    def _known(self, value: Value | None) -> tuple | None:
        vec = self.vec(value)
        return vec.elems if vec is not None and vec.known else None


def _cast(elem: int | float, to: int, np_type: type) -> int | float | None:
    if to in _INT_TYPES:
        if isinstance(elem, float) and not math.isfinite(elem):
            return None
        value = int(np.trunc(elem)) if isinstance(elem, float) else int(elem)
        info = np.iinfo(np_type)
        return value if info.min <= value <= info.max else None  # out-of-range casts are left to the runtime
    return float(np_type(elem))


def _elementwise(op: Callable[[np.generic, np.generic], np.generic | None]) -> Callable:
    def rule(self: _Propagation, node: Node) -> Vec | None:
        parts = [self.vec(v) for v in node.inputs]
        if len(parts) != 2 or any(p is None for p in parts) or parts[0].dtype != parts[1].dtype:
            return None
        a, b = parts
        if len(a.elems) != len(b.elems) and 1 not in (len(a.elems), len(b.elems)):
            return None
        n = max(len(a.elems), len(b.elems))
        left = a.elems * n if len(a.elems) == 1 else a.elems
        right = b.elems * n if len(b.elems) == 1 else b.elems
        np_type = helper.tensor_dtype_to_np_dtype(a.dtype).type
        elems = tuple(
            None if x is None or y is None else op(np_type(x), np_type(y)) for x, y in zip(left, right)
        )
        elems = tuple(e.item() if isinstance(e, np.generic) else e for e in elems)
        return Vec(elems, a.dtype, a.scalar and b.scalar, a.from_shape or b.from_shape)

    return rule


def _div(x: np.generic, y: np.generic) -> np.generic | None:
    if isinstance(x, np.integer):
        if y == 0:
            return None
        quotient = abs(int(x)) // abs(int(y))  # integer Div truncates toward zero, as in ONNX Runtime
        return type(x)(quotient if (x < 0) == (y < 0) else -quotient)
    return x / y


def _unary(op: Callable[[np.generic], np.generic]) -> Callable:
    def rule(self: _Propagation, node: Node) -> Vec | None:
        data = self.vec(node.inputs[0])
        if data is None:
            return None
        np_type = helper.tensor_dtype_to_np_dtype(data.dtype).type
        elems = tuple(None if e is None else op(np_type(e)).item() for e in data.elems)
        return Vec(elems, data.dtype, data.scalar, data.from_shape)

    return rule


_RULES: dict[str, Callable[[_Propagation, Node], Vec | None]] = {
    "Shape": _Propagation.shape, "Size": _Propagation.size, "Gather": _Propagation.gather,
    "Slice": _Propagation.slice, "Concat": _Propagation.concat, "Unsqueeze": _Propagation.unsqueeze,
    "Squeeze": _Propagation.squeeze, "Identity": _Propagation.identity, "Constant": _Propagation.constant,
    "Cast": _Propagation.cast,
    "Add": _elementwise(lambda x, y: x + y), "Sub": _elementwise(lambda x, y: x - y),
    "Mul": _elementwise(lambda x, y: x * y), "Div": _elementwise(_div),
    "Max": _elementwise(lambda x, y: max(x, y)), "Min": _elementwise(lambda x, y: min(x, y)),
    "Neg": _unary(lambda x: -x), "Abs": _unary(abs),
}


@register_pass
class FoldShapes(Pass):
    """Gather(Shape(x), 1) with dim 1 of x static → initializer (also inside partly dynamic shapes); all subgraphs."""

    name = "fold_shapes"
    groups = ("fold",)

    def call(self, model: Model) -> PassResult:
        propagation = _Propagation(_Shapes(model), model.opset)
        graphs = model.graph.all_graphs()
        for graph in graphs:
            for node in graph:
                propagation.visit(node)
        folded = _materialize(graphs, propagation.vecs)
        return PassResult(model, folded > 0, counters={"shape_values_folded": folded} if folded else {})


def _materialize(graphs: list[Graph], vecs: dict[Value, Vec]) -> int:
    """Replace known shape-derived values at the edge of what is known; drop the nodes left unused."""
    def settled(node: Node) -> bool:
        vec = vecs.get(node.outputs[0]) if len(node.outputs) == 1 else None
        return vec is not None and vec.known and vec.from_shape

    replaced: list[Node] = []
    for graph in graphs:
        for node in graph:
            if not settled(node):
                continue
            out = node.outputs[0]
            edge = out.is_graph_output() or any(not settled(user) for user, _ in out.iter_uses())
            if edge and can_replace(out) and (out.has_uses() or out.is_graph_output()):
                replace_with_constant(out, Tensor.from_array(vecs[out].array()))
                replaced.append(node)
    _remove_unused(replaced)
    return len(replaced)


def _remove_unused(nodes: list[Node]) -> None:
    """Remove the given shape nodes once nothing reads their results, and then their producers likewise."""
    work = list(nodes)  # consumers are popped before their producers
    while work:
        node = work.pop()
        graph = node.graph
        if graph is None or node.op_type not in _RULES or node.domain not in ("", "ai.onnx"):
            continue
        if any(out.has_uses() or out.is_graph_output() for out in node.outputs):
            continue
        producers = [v.producer() for v in node.inputs if v is not None and v.producer() is not None]
        graph.remove(node)
        work.extend(producers)
