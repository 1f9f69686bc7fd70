"""InsertQDQ: the pass that writes a quantization plan into the graph, given the parameters as data."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from onnxopt.ir import Graph, Model, Node, Tensor, Value
from onnxopt.passmanager import Pass, PassContext, PassResult
from onnxopt.quantization.config import QuantConfig
from onnxopt.quantization.plan import QuantPlan
from onnxopt.quantization.qparams import QParams, quantize, quantize_bias, weight_qparams


class InsertQDQ(Pass):
    """float ops → DequantizeLinear → op → QuantizeLinear → DequantizeLinear, with int8 weights and int32 biases.

    Works on the main graph only: static plans never cover subgraphs (their tensors cannot be observed).
    Every reader gets its own DequantizeLinear (ORT's QDQ groups need DQs they do not share).
    """

    name = "insert_qdq"

    def __init__(
        self, plan: QuantPlan, params: Mapping[str, QParams], config: QuantConfig, context: PassContext | None = None
    ) -> None:
        super().__init__(context)
        self.plan = plan
        self.params = params
        self.config = config

    def call(self, model: Model) -> PassResult:
        """Insert the planned Q/DQ nodes in place."""
        plan, graph = self.plan, model.graph
        values = _values_by_name(graph)
        nodes = {node.name: node for node in graph}
        tensors = {name: values[name] for name in plan.tensors}
        targets = {name: nodes[name] for name in plan.specs}
        bias_sources = {
            name: targets[name].inputs[spec.bias.activation].name
            for name, spec in plan.specs.items() if spec.bias is not None
        }
        for act_name in plan.absorbed:
            act = nodes[act_name]
            x, y = act.inputs[0], act.outputs[0]
            y_name = y.name
            y.replace_all_uses_with(x)
            graph.remove(act)
            if y_name in tensors:
                tensors[y_name] = x
        writer = _Writer(graph)
        for name, tensor in plan.tensors.items():
            value, qp = tensors[name], self.params[name]
            readers = [
                (node, i) for node, i in value.uses()
                if tensor.produced or (node.name in plan.specs and node.graph is graph and i in plan.specs[node.name].activations)
            ]
            scale, zero_point = writer.qparams(tensor.source if not tensor.constant else name, qp)
            if tensor.constant:
                writer.replaced.append(value)
                quantized = writer.constant(f"{name}_quantized", quantize(value.numpy(), qp))
                for node, i in readers:
                    writer.dequantize(quantized, scale, zero_point, None, node, i, f"{name}_DequantizeLinear")
                continue
            q_out = writer.quantize(value, scale, zero_point)
            for node, i in readers:
                writer.dequantize(q_out, scale, zero_point, None, node, i, f"{name}_DequantizeLinear")
            if tensor.produced and value.is_graph_output():
                dq = writer.dequantize(q_out, scale, zero_point, None, None, 0, f"{name}_DequantizeLinear")
                graph.replace_output(value, dq)
        weight_params: dict[tuple[str, int], QParams] = {}
        for name, spec in plan.specs.items():
            node = targets[name]
            for weight in spec.weights:
                axis = weight.axis if self.config.per_channel else None
                weight_params[(name, weight.index)] = writer.weight(node, weight.index, axis, self.config.reduce_range)
            if spec.bias is not None:
                w_qp = weight_params[(name, spec.bias.weight)]
                x_qp = self.params[bias_sources[name]]
                writer.bias(node, spec.bias.index, x_qp, w_qp)
        writer.drop_replaced()
        graph.sort()
        return PassResult(model, bool(plan.specs), {"quantized_nodes": len(plan.specs)})


def _values_by_name(graph: Graph) -> dict[str, Value]:
    values: dict[str, Value] = {v.name: v for v in graph.inputs}
    values.update(graph.initializers)
    for node in graph:
        for out in node.outputs:
            values[out.name] = out
    return values


class _Writer:
    """Creates the Q/DQ nodes and quantized initializers, sharing scale/zero-point initializers per source."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.shared: dict[str, tuple[Value, Value]] = {}
        self.weights: dict[tuple[str, int | None], tuple[Value, Value, Value, QParams]] = {}
        self.replaced: list[Value] = []

    def constant(self, name: str, array: np.ndarray) -> Value:
        return self.graph.add_initializer(Value(name, const_value=Tensor.from_array(np.asarray(array))))

    def qparams(self, key: str, qp: QParams) -> tuple[Value, Value]:
        if key not in self.shared:
            self.shared[key] = (self.constant(f"{key}_scale", qp.scale), self.constant(f"{key}_zero_point", qp.zero_point))
        return self.shared[key]

    def quantize(self, value: Value, scale: Value, zero_point: Value) -> Value:
        graph = self.graph
        node = Node("QuantizeLinear", [value, scale, zero_point], [Value(graph.unique_name(f"{value.name}_quantized"))],
                    name=graph.unique_name(f"{value.name}_QuantizeLinear"))
        producer = value.producer()
        if producer is not None and producer.graph is graph:
            graph.insert_after(producer, node)
        else:
            first = next(iter(graph), None)
            graph.insert_before(first, node) if first is not None else graph.append(node)
        return node.outputs[0]

    def dequantize(
        self, q: Value, scale: Value, zero_point: Value, axis: int | None, reader: Node | None, index: int, base: str
    ) -> Value:
        graph = self.graph
        attrs = {"axis": axis} if axis is not None else {}
        node = Node("DequantizeLinear", [q, scale, zero_point], [Value(graph.unique_name(f"{base}_out"))],
                    attrs, name=graph.unique_name(base))
        if reader is not None and reader.graph is graph:
            graph.insert_before(reader, node)
        else:
            producer = q.producer()
            if producer is not None:
                graph.insert_after(producer, node)
            else:
                first = next(iter(graph), None)
                graph.insert_before(first, node) if first is not None else graph.append(node)
        if reader is not None:
            reader.replace_input_with(index, node.outputs[0])
        return node.outputs[0]

    def weight(self, node: Node, index: int, axis: int | None, reduce_range: bool) -> QParams:
        w = node.inputs[index]
        self.replaced.append(w)
        key = (w.name, axis)
        if key not in self.weights:
            data = w.numpy()
            qp = weight_qparams(data, axis, "int8", reduce_range)
            self.weights[key] = (
                self.constant(f"{w.name}_quantized", quantize(data, qp)),
                self.constant(f"{w.name}_scale", qp.scale),
                self.constant(f"{w.name}_zero_point", qp.zero_point),
                qp,
            )
        q, scale, zero_point, qp = self.weights[key]
        self.dequantize(q, scale, zero_point, qp.axis, node, index, f"{w.name}_DequantizeLinear")
        return qp

    def bias(self, node: Node, index: int, x_qp: QParams, w_qp: QParams) -> None:
        b = node.inputs[index]
        self.replaced.append(b)
        data = np.asarray(b.numpy(), dtype=np.float32).reshape(-1)
        channels = w_qp.scale.size
        if data.size == 1 and channels > 1:
            data = np.full(channels, data[0], dtype=np.float32)
        q, qp = quantize_bias(data, x_qp.scale, w_qp.scale)
        q_value = self.constant(f"{b.name}_quantized", q)
        scale = self.constant(f"{b.name}_scale", qp.scale)
        zero_point = self.constant(f"{b.name}_zero_point", qp.zero_point)
        self.dequantize(q_value, scale, zero_point, qp.axis, node, index, f"{b.name}_DequantizeLinear")

    def drop_replaced(self) -> None:
        for value in dict.fromkeys(self.replaced):
            if value.is_initializer() and not value.has_uses() and not value.is_graph_output() and not value.is_graph_input():
                self.graph.remove_initializer(value)
