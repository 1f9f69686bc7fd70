"""A Transpose feeding Gemm's B input becomes the transB flag; the weight stays as stored."""
from __future__ import annotations

from onnxopt.passes.fusion._common import MIN_OPSET
from onnxopt.rewrite import Rule


class FuseTransposeIntoGemm(Rule):
    """Gemm(A, Transpose(B), C) → Gemm(A, B, C, transB = 1 − transB), leaving B (often a constant weight) as is."""

    name = "fuse_transpose_into_gemm"
    min_opset = MIN_OPSET

    def pattern(self, op, a, b, c):
        return op.Gemm(a, op.Transpose(b), c, _optional=1)

    def check(self, m):
        perm = m.node("Transpose").attr("perm")
        # Gemm's B is 2-D, so a Transpose without perm reverses two axes
        if perm is not None and list(perm) != [1, 0]:
            return m.fail(f"Transpose perm {list(perm)} is not [1, 0]")
        return True

    def rewrite(self, op, m):
        attrs = dict(m.root.attrs)
        attrs["transB"] = 1 - m.root.attr("transB", 0)
        inputs = [m["a"], m["b"]] + ([m["c"]] if m["c"] is not None else [])
        return op.Gemm(*inputs, **attrs)
