"""A Transpose of a constant MatMul weight is applied to the stored weight once."""
from __future__ import annotations

import numpy as np

from onnxopt.passes.fusion._common import MIN_OPSET
from onnxopt.rewrite import Rule


class FuseTransposeIntoMatmulWeight(Rule):
    """MatMul(A, Transpose(W)) with W constant → MatMul(A, W') with W' = W transposed, stored."""

    name = "fuse_transpose_into_matmul_weight"
    min_opset = MIN_OPSET

    def pattern(self, op, a, w):
        return op.MatMul(a, op.Transpose(w))

    def check(self, m):
        w = m.const("w")
        if w is None:
            return m.fail(f"the transposed weight {m['w'].name!r} is not constant")
        perm = m.node("Transpose").attr("perm")
        if perm is not None and sorted(perm) != list(range(w.ndim)):
            return m.fail(f"Transpose perm {perm} is not a permutation of a rank-{w.ndim} weight")
        return True

    def rewrite(self, op, m):
        w = m.const("w")
        perm = m.node("Transpose").attr("perm") or list(reversed(range(w.ndim)))
        return op.MatMul(m["a"], op.const(np.ascontiguousarray(w.transpose(perm)), name=m["w"].name))
