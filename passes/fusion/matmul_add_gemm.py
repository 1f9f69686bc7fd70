"""MatMul of two matrices followed by a broadcastable Add becomes one Gemm."""
from __future__ import annotations

from onnx import TensorProto

from onnxopt.passes.fusion._common import MIN_OPSET
from onnxopt.rewrite import Rule

GEMM_TYPES = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE)


class FuseMatmulAddIntoGemm(Rule):
    """Add(MatMul(A, B), C) with A [M, K], B [K, N] and C broadcasting to [M, N] → Gemm(A, B, C)."""

    name = "fuse_matmul_add_into_gemm"
    min_opset = MIN_OPSET
    needs_shapes = True

    def pattern(self, op, a, b, c):
        return op.Add(op.MatMul(a, b), c, _commute=True)

    def check(self, m):
        a, b, c = m["a"].shape, m["b"].shape, m["c"].shape
        if a is None or len(a) != 2:
            return m.fail(f"A has shape {_show(a)}, not 2-D")
        if b is None or len(b) != 2:
            return m.fail(f"B has shape {_show(b)}, not 2-D")
        if m["a"].dtype not in GEMM_TYPES:
            return m.fail("A is not float, float16 or double")
        if c is None or len(c) > 2:
            return m.fail(f"C has shape {_show(c)}, not at most 2-D")
        product = (a[0], b[1])
        for dim, want in zip(reversed(c), reversed(product)):
            if dim != 1 and (dim is None or dim != want):
                return m.fail(f"C of shape {_show(c)} does not broadcast to the product's {_show(product)}")
        return True

    def rewrite(self, op, m):
        return op.Gemm(m["a"], m["b"], m["c"])


def _show(shape: tuple | None) -> str:
    return "unknown" if shape is None else "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
