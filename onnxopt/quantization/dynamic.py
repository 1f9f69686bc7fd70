"""Dynamic int8: weights quantized offline, activations at run time, in the standard-op form ORT fuses.

MatMul(A, B) becomes
    DynamicQuantizeLinear(A) → MatMulInteger(A_q, B_q, A_zp, B_zp) → Cast → Mul(·, A_scale × B_scale) [→ Add(bias)]
which ONNX Runtime fuses into one DynamicQuantizeMatMul kernel (U8 activations × S8 weights). Gemm takes the
same form (B transposed offline, alpha folded into the scale, beta × C as the bias). Conv uses ConvInteger the
same way (per-tensor weights: ORT's ConvInteger has no per-channel zero points), but ORT runs that slower than
float on most CPUs, so Conv is done only when named in include_ops.
Subgraphs are entered: no calibration is needed, so compute inside If/Loop bodies is quantized too.
"""
from __future__ import annotations

import numpy as np
from onnx import TensorProto

from onnxopt.ir import Graph, Model, Node, Tensor, Value
from onnxopt.passmanager import Pass, PassContext, PassResult
from onnxopt.quantization.config import QuantConfig
from onnxopt.quantization.qparams import QParams, quantize, weight_qparams

DEFAULT_OPS = ("MatMul", "Gemm")
SUPPORTED_OPS = ("MatMul", "Gemm", "Conv")


def plan_dynamic(model: Model, config: QuantConfig, keep_float: frozenset[str] | set[str] = frozenset()) -> tuple[list[str], dict[str, str]]:
    """Names of the nodes to quantize dynamically, and the nodes of those op types kept float with why."""
    ops = tuple(op for op in SUPPORTED_OPS if op in config.include_ops) if config.include_ops is not None else DEFAULT_OPS
    chosen: list[str] = []
    kept: dict[str, str] = {}
    for graph in model.graph.all_graphs():
        for node in graph:
            if node.domain not in ("", "ai.onnx") or node.op_type not in SUPPORTED_OPS:
                continue
            if node.name in config.exclude_nodes:
                kept[node.name] = "excluded by --exclude-nodes"
            elif node.name in keep_float:
                kept[node.name] = "kept float"
            elif node.op_type in config.exclude_ops:
                kept[node.name] = "excluded by --exclude-ops"
            elif node.op_type not in ops:
                kept[node.name] = ("dynamic Conv (ConvInteger) is usually slower than float in onnxruntime; "
                                   "add Conv to --include-ops to quantize it") if node.op_type == "Conv" else "not in --include-ops"
            else:
                reason = _unsupported(node)
                if reason:
                    kept[node.name] = reason
                else:
                    chosen.append(node.name)
    return chosen, kept


def _unsupported(node: Node) -> str | None:
    a, b = node.inputs[0], node.inputs[1]
    if a is None or a.dtype != TensorProto.FLOAT:
        return "input 0 is not float32"
    if b is None or not b.is_constant() or b.dtype != TensorProto.FLOAT:
        return "the weight is not a float32 constant"
    if node.op_type == "Gemm":
        if node.attr("transA", 0):
            return "Gemm with transA"
        c = node.inputs[2] if len(node.inputs) > 2 else None
        if c is not None and not c.is_constant():
            return "Gemm C is not a constant"
    if node.op_type == "Conv":
        c = node.inputs[2] if len(node.inputs) > 2 else None
        if c is not None and not c.is_constant():
            return "the bias is not a constant"
    if node.op_type == "MatMul" and len(b.const_value.shape) < 2:
        return "B is a vector"
    return None


class InsertDynamicQuantization(Pass):
    """MatMul/Gemm/Conv with constant float weights → DynamicQuantizeLinear + MatMulInteger/ConvInteger + rescale."""

    name = "insert_dynamic_quantization"

    def __init__(self, nodes: list[str], config: QuantConfig, context: PassContext | None = None) -> None:
        super().__init__(context)
        self.nodes = nodes
        self.config = config

    def call(self, model: Model) -> PassResult:
        """Rewrite the named nodes in place (any graph level)."""
        wanted = set(self.nodes)
        found = [node for graph in model.graph.all_graphs() for node in graph if node.name in wanted]
        weights: dict[tuple[str, int | None, float], tuple[Value, Value, Value, QParams]] = {}
        for node in found:
            _rewrite(model.graph, node, self.config, weights)
        replaced = {v for node in found for v in node.inputs[1:] if v is not None}
        for value in replaced:
            if value.is_initializer() and not value.has_uses() and not value.is_graph_input():
                value.graph.remove_initializer(value)
        for graph in model.graph.all_graphs():
            graph.sort()
        return PassResult(model, bool(found), {"dynamic_nodes": len(found)})


def _rewrite(root: Graph, node: Node, config: QuantConfig, cache: dict) -> None:
    graph = node.graph
    w = node.inputs[1]
    data = np.asarray(w.numpy(), dtype=np.float32)
    scale_factor = 1.0
    bias: np.ndarray | None = None
    if node.op_type == "Gemm":
        if node.attr("transB", 0):
            data = data.T
        scale_factor = float(node.attr("alpha", 1.0))
        c = node.inputs[2] if len(node.inputs) > 2 else None
        if c is not None:
            bias = float(node.attr("beta", 1.0)) * np.asarray(c.numpy(), dtype=np.float32)
        axis = 1 if config.per_channel else None
    elif node.op_type == "MatMul":
        axis = data.ndim - 1 if config.per_channel and data.ndim == 2 else None
    else:
        axis = None  # ORT's ConvInteger takes only a per-tensor weight zero point
        c = node.inputs[2] if len(node.inputs) > 2 else None
        if c is not None:
            bias = np.asarray(c.numpy(), dtype=np.float32).reshape(1, -1, *([1] * (data.ndim - 2)))
    key = (w.name, axis, node.attr("transB", 0) if node.op_type == "Gemm" else 0)
    if key not in cache:
        qp = weight_qparams(data, axis, "int8", config.reduce_range)
        cache[key] = (
            _const(root, f"{w.name}_quantized", quantize(data, qp)),
            _const(root, f"{w.name}_zero_point", qp.zero_point),
            qp,
        )
    w_q, w_zp, qp = cache[key]
    w_scale = np.asarray(qp.scale, dtype=np.float32) * np.float32(scale_factor)
    if node.op_type == "Conv" and w_scale.ndim == 1:
        w_scale = w_scale.reshape(1, -1, *([1] * (data.ndim - 2)))
    base = node.name
    with graph.inserting_before(node):
        dql = Node("DynamicQuantizeLinear", [node.inputs[0]], [Value(graph.unique_name(f"{base}_input_quantized")),
                   Value(graph.unique_name(f"{base}_input_scale")), Value(graph.unique_name(f"{base}_input_zero_point"))],
                   name=graph.unique_name(f"{base}_DynamicQuantizeLinear"))
        graph.append(dql)
        a_q, a_scale, a_zp = dql.outputs
        if node.op_type == "Conv":
            attrs = {k: v for k, v in node.attrs.items()}
            integer = Node("ConvInteger", [a_q, w_q, a_zp, w_zp], [Value(graph.unique_name(f"{base}_int32"))],
                           name=graph.unique_name(f"{base}_ConvInteger"))
            for k, v in attrs.items():
                integer.set_attr(k, v)
        else:
            integer = Node("MatMulInteger", [a_q, w_q, a_zp, w_zp], [Value(graph.unique_name(f"{base}_int32"))],
                           name=graph.unique_name(f"{base}_MatMulInteger"))
        graph.append(integer)
        cast = Node("Cast", [integer.outputs[0]], [Value(graph.unique_name(f"{base}_float"))], {"to": TensorProto.FLOAT},
                    name=graph.unique_name(f"{base}_Cast"))
        graph.append(cast)
        scale_const = _const(root, f"{w.name}_scale", w_scale)
        scale = Node("Mul", [a_scale, scale_const], [Value(graph.unique_name(f"{base}_scale"))],
                     name=graph.unique_name(f"{base}_scale_Mul"))
        graph.append(scale)
        out = Node("Mul", [cast.outputs[0], scale.outputs[0]], [Value(graph.unique_name(f"{base}_rescaled"))],
                   name=graph.unique_name(f"{base}_rescale_Mul"))
        graph.append(out)
        result = out.outputs[0]
        if bias is not None:
            add = Node("Add", [result, _const(root, f"{base}_bias", bias)], [Value(graph.unique_name(f"{base}_biased"))],
                       name=graph.unique_name(f"{base}_bias_Add"))
            graph.append(add)
            result = add.outputs[0]
    result.type = node.outputs[0].type
    node.outputs[0].replace_all_uses_with(result)
    graph.remove(node)


def _const(graph: Graph, name: str, array: np.ndarray) -> Value:
    return graph.add_initializer(Value(name, const_value=Tensor.from_array(np.asarray(array))))
