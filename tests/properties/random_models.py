"""A hypothesis strategy for random valid ONNX models: DAGs of elementwise ops, Conv, MatMul, Gemm,
BatchNormalization, Reshape, Transpose, Concat, Split and Slice over float32 values with random static shapes,
fed by weights that are initializers, Constant nodes or small constant subgraphs (folding targets).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import onnx
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
UNARY = ("Relu", "Sigmoid", "Tanh", "Neg", "Abs", "Identity", "LeakyRelu", "Dropout")
BINARY = ("Add", "Sub", "Mul", "Max", "Min", "Div")
OPS = ("unary", "binary", "conv", "batchnorm", "matmul", "gemm", "reshape", "transpose", "concat", "split", "slice")


@dataclass
class _Builder:
    """The growing graph: nodes, initializers, and the float values (name → shape) ops may read."""

    draw: object
    rng: np.random.Generator
    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    values: dict[str, tuple[int, ...]] = field(default_factory=dict)
    count: int = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def node(self, op: str, inputs: list[str], outputs: int = 1, **attrs) -> list[str]:
        names = [self.name(op.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, names, name=self.name(f"n_{op}_"), **attrs))
        return names

    def int64(self, values: list[int]) -> str:
        """An int64 vector, as an initializer or a Constant node."""
        array = np.asarray(values, np.int64)
        if self.draw(st.booleans()):
            name = self.name("i")
            self.initializers.append(numpy_helper.from_array(array, name))
            return name
        return self.node("Constant", [], value=numpy_helper.from_array(array, "v"))[0]

    def constant(self, shape: tuple[int, ...], low: float = -1.0, high: float = 1.0) -> str:
        """A float constant of `shape`: an initializer, a Constant node, or a foldable subgraph computing it."""
        array = self.rng.uniform(low, high, shape).astype(np.float32)
        how = self.draw(st.sampled_from(("initializer", "initializer", "node", "subgraph")))
        if how == "initializer":
            name = self.name("w")
            self.initializers.append(numpy_helper.from_array(array, name))
            return name
        if how == "node":
            return self.node("Constant", [], value=numpy_helper.from_array(array, "v"))[0]
        # array = (array / 2) * 2, or transpose(transpose(array)), so that folding must compute it
        if len(shape) >= 2 and self.draw(st.booleans()):
            perm = list(range(len(shape)))[::-1]
            stored = self.name("w")
            self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array.transpose(perm)), stored))
            return self.node("Transpose", [stored], perm=perm)[0]
        half = self.name("w")
        self.initializers.append(numpy_helper.from_array(array / np.float32(2), half))
        two = self.node("Constant", [], value=numpy_helper.from_array(np.array(2, np.float32), "v"))[0]
        return self.node("Mul", [half, two])[0]

    def pick(self, condition=lambda shape: True) -> str | None:
        """A value whose shape satisfies `condition` (None when there is none)."""
        names = [n for n, shape in self.values.items() if condition(shape)]
        return self.draw(st.sampled_from(names)) if names else None

    def add(self, name: str, shape: tuple[int, ...]) -> None:
        self.values[name] = tuple(int(d) for d in shape)


def _unary(b: _Builder, x: str) -> None:
    op = b.draw(st.sampled_from(UNARY))
    attrs = {"alpha": b.draw(st.sampled_from([0.01, 0.2]))} if op == "LeakyRelu" else {}
    b.add(b.node(op, [x], **attrs)[0], b.values[x])


def _binary(b: _Builder, x: str) -> None:
    shape = b.values[x]
    op = b.draw(st.sampled_from(BINARY))
    same = [n for n, s in b.values.items() if s == shape and n != x]
    if op != "Div" and same and b.draw(st.booleans()):
        other = b.draw(st.sampled_from(same))
    else:  # a broadcast constant: a suffix of the shape with some dims 1, or a scalar
        rank = b.draw(st.integers(0, len(shape)))
        suffix = tuple(d if b.draw(st.booleans()) else 1 for d in shape[len(shape) - rank:])
        other = b.constant(suffix, 0.5, 2.0) if op == "Div" else b.constant(suffix)
    inputs = [x, other] if b.draw(st.booleans()) or op == "Div" else [other, x]
    b.add(b.node(op, inputs)[0], shape)


def _conv(b: _Builder, x: str) -> None:
    n, c, h, w = b.values[x]
    depthwise = c > 1 and b.draw(st.booleans())
    group = c if depthwise else 1
    m = c * b.draw(st.integers(1, 2)) if depthwise else b.draw(st.integers(1, 4))
    kh, kw = b.draw(st.integers(1, min(3, h))), b.draw(st.integers(1, min(3, w)))
    pad, stride = b.draw(st.integers(0, 1)), b.draw(st.integers(1, 2))
    weight = b.constant((m, c // group, kh, kw))
    inputs = [x, weight] + ([b.constant((m,))] if b.draw(st.booleans()) else [])
    out_h, out_w = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    y = b.node("Conv", inputs, group=group, kernel_shape=[kh, kw], pads=[pad] * 4, strides=[stride] * 2)[0]
    b.add(y, (n, m, out_h, out_w))


def _batchnorm(b: _Builder, x: str) -> None:
    shape = b.values[x]
    c = shape[1]
    params = [b.constant((c,)), b.constant((c,)), b.constant((c,)), b.constant((c,), 0.5, 2.0)]
    y = b.node("BatchNormalization", [x, *params], epsilon=b.draw(st.sampled_from([1e-5, 1e-3])))[0]
    b.add(y, shape)


def _matmul(b: _Builder, x: str) -> None:
    shape = b.values[x]
    m = b.draw(st.integers(1, 4))
    y = b.node("MatMul", [x, b.constant((shape[-1], m))])[0]
    if b.draw(st.booleans()):  # MatMul + Add: a Gemm fusion candidate
        y = b.node("Add", [y, b.constant((m,))])[0]
    b.add(y, (*shape[:-1], m))


def _gemm(b: _Builder, x: str) -> None:
    n, k = b.values[x]
    m = b.draw(st.integers(1, 4))
    trans_b = b.draw(st.integers(0, 1))
    inputs = [x, b.constant((m, k) if trans_b else (k, m))]
    if b.draw(st.booleans()):
        inputs.append(b.constant(b.draw(st.sampled_from([(m,), (1, m), (n, m)]))))
    alpha, beta = b.draw(st.sampled_from([1.0, 0.5])), b.draw(st.sampled_from([1.0, 2.0]))
    b.add(b.node("Gemm", inputs, transB=trans_b, alpha=alpha, beta=beta)[0], (n, m))


def _reshape(b: _Builder, x: str) -> None:
    shape = b.values[x]
    kind = b.draw(st.sampled_from(("flatten", "merge", "unsqueeze", "squeeze", "copy")))
    if kind == "flatten" or len(shape) < 2:
        target = [shape[0], math.prod(shape[1:])] if len(shape) > 1 else [shape[0], 1]
    elif kind == "merge":
        i = b.draw(st.integers(0, len(shape) - 2))
        target = [*shape[:i], shape[i] * shape[i + 1], *shape[i + 2:]]
    elif kind == "unsqueeze" and len(shape) < 5:
        i = b.draw(st.integers(0, len(shape)))
        target = [*shape[:i], 1, *shape[i:]]
    elif kind == "squeeze" and 1 in shape[1:]:
        i = shape.index(1, 1)
        target = [*shape[:i], *shape[i + 1:]]
    else:
        target = list(shape)
    spec = list(target)
    if b.draw(st.booleans()):
        spec[b.draw(st.integers(0, len(spec) - 1))] = -1
    if len(spec) <= len(shape) and spec[0] == shape[0] and b.draw(st.booleans()):
        spec[0] = 0  # copy the input's dim 0
    if spec[0] == shape[0] and b.draw(st.booleans()):
        # torch-style shape arithmetic: Concat(Slice(Shape(x), 0, 1), rest) — fold_shapes' target
        head = b.node("Slice", [b.node("Shape", [x])[0], b.int64([0]), b.int64([1])])[0]
        shape_input = b.node("Concat", [head, b.int64(spec[1:])], axis=0)[0] if len(spec) > 1 else head
    else:
        shape_input = b.int64(spec)
    b.add(b.node("Reshape", [x, shape_input])[0], tuple(target))


def _transpose(b: _Builder, x: str) -> None:
    shape = b.values[x]
    perm = b.draw(st.permutations(range(len(shape))))
    b.add(b.node("Transpose", [x], perm=list(perm))[0], tuple(shape[p] for p in perm))


def _concat(b: _Builder, x: str) -> None:
    shape = b.values[x]
    axis = b.draw(st.integers(0, len(shape) - 1))
    size = b.draw(st.integers(1, 3))
    other_shape = tuple(size if i == axis else d for i, d in enumerate(shape))
    other = x if b.draw(st.booleans()) else b.constant(other_shape)
    if other == x:
        other_shape = shape
    signed_axis = axis - len(shape) if b.draw(st.booleans()) else axis
    y = b.node("Concat", [x, other], axis=signed_axis)[0]
    b.add(y, tuple(d + other_shape[i] if i == axis else d for i, d in enumerate(shape)))


def _split(b: _Builder, x: str) -> None:
    shape = b.values[x]
    axes = [i for i, d in enumerate(shape) if d >= 2]
    if not axes:
        return _unary(b, x)
    axis = b.draw(st.sampled_from(axes))
    first = b.draw(st.integers(1, shape[axis] - 1))
    sizes = [first, shape[axis] - first]
    outputs = b.node("Split", [x, b.int64(sizes)], outputs=2, axis=axis)
    for name, size in zip(outputs, sizes):
        b.add(name, tuple(size if i == axis else d for i, d in enumerate(shape)))
    return None


def _slice(b: _Builder, x: str) -> None:
    shape = b.values[x]
    axis = b.draw(st.integers(0, len(shape) - 1))
    dim = shape[axis]
    step = b.draw(st.sampled_from([1, 1, 2, -1]))
    if step > 0:
        start = b.draw(st.integers(0, dim - 1))
        end = b.draw(st.sampled_from([dim, 2**62, b.draw(st.integers(start + 1, dim))]))
        start = start - dim if b.draw(st.booleans()) else start  # a negative start means the same position
    else:
        start = b.draw(st.integers(0, dim - 1))
        end = b.draw(st.sampled_from([-(2**62), -dim - 1]))
    length = len(range(dim)[slice(start, end, step)])
    inputs = [x, b.int64([start]), b.int64([end]), b.int64([axis])]
    if step != 1 or b.draw(st.booleans()):
        inputs.append(b.int64([step]))
    y = b.node("Slice", inputs)[0]
    b.add(y, tuple(length if i == axis else d for i, d in enumerate(shape)))


_BUILDERS = {
    "unary": (_unary, lambda s: True), "binary": (_binary, lambda s: True), "conv": (_conv, lambda s: len(s) == 4),
    "batchnorm": (_batchnorm, lambda s: len(s) >= 2), "matmul": (_matmul, lambda s: len(s) >= 2),
    "gemm": (_gemm, lambda s: len(s) == 2), "reshape": (_reshape, lambda s: True),
    "transpose": (_transpose, lambda s: len(s) >= 2), "concat": (_concat, lambda s: True),
    "split": (_split, lambda s: True), "slice": (_slice, lambda s: True),
}


@st.composite
def random_models(draw, max_ops: int = 8) -> onnx.ModelProto:
    """A valid float32 model (opset 17) of 1..max_ops random ops on one or two graph inputs."""
    b = _Builder(draw, np.random.default_rng(draw(st.integers(0, 2**16))))
    inputs = []
    for i in range(draw(st.integers(1, 2))):
        if draw(st.booleans()):  # NCHW, for Conv
            shape = (draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(3, 6)), draw(st.integers(3, 6)))
        else:
            shape = tuple(draw(st.lists(st.integers(1, 4), min_size=2, max_size=3)))
        name = f"x{i}"
        inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
        b.add(name, shape)
    produced: list[str] = []
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(OPS))
        build, fits = _BUILDERS[op]
        x = b.pick(fits)
        if x is None:
            continue
        before = set(b.values)
        build(b, x)
        produced += [name for name in b.values if name not in before]
    if not produced:
        _unary(b, "x0")
        produced = [name for name in b.values if name not in {i.name for i in inputs}]
    outputs = [produced[-1]]
    outputs += [n for n in produced[:-1] if draw(st.integers(0, 3)) == 0]
    graph = helper.make_graph(
        b.nodes, "random", inputs,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, b.values[n]) for n in outputs],
        b.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)
    return model
