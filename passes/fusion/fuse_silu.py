"""x · Sigmoid(x) (SiLU) and x · Sigmoid(αx) → Swish (opset 24); with --target ort → com.microsoft QuickGelu(α)."""
from __future__ import annotations

from onnxopt.passes.fusion._decomposed import ORT_TYPES, float_type_reason, scalar
from onnxopt.rewrite import ORT_TARGETS, Rule, rule_pass

SWISH_OPSET = 24
MS = "com.microsoft"


class FuseSilu(Rule):
    """Mul(x, Sigmoid(x)) → Swish(x) (opset 24) or, with --target ort, com.microsoft QuickGelu(x, alpha=1)."""

    name = "fuse_silu"
    needs_shapes = True
    domain_opsets = {MS: 1}

    def pattern(self, op, x):
        return op.Mul(x, op.Sigmoid(x), _commute=True)

    def check(self, m):
        reason = _emit_reason(m)
        return m.fail(reason) if reason else True

    def rewrite(self, op, m):
        return _swish(op, m, 1.0)


class FuseScaledSilu(Rule):
    """Mul(x, Sigmoid(Mul(x, α))) with constant scalar α → Swish(x, alpha=α) or com.microsoft QuickGelu(x, alpha=α)."""

    name = "fuse_scaled_silu"
    domain_opsets = {MS: 1}
    needs_shapes = True

    def pattern(self, op, x, alpha):
        return op.Mul(x, op.Sigmoid(op.Mul(x, alpha, _commute=True, _name="scale")), _commute=True)

    def check(self, m):
        if scalar(m["alpha"], m["x"]) is None:
            return m.fail("α is not a constant scalar")
        reason = _emit_reason(m)
        return m.fail(reason) if reason else True

    def rewrite(self, op, m):
        return _swish(op, m, scalar(m["alpha"], m["x"]))


def _emit_reason(m) -> str:
    """Why neither Swish (opset 24) nor, with --target ort, QuickGelu may be written ('' when one may)."""
    x = m["x"]
    if m.opset == SWISH_OPSET:
        reason = float_type_reason(x)
    elif m.target in ORT_TARGETS:
        reason = float_type_reason(x, ORT_TYPES)
    else:
        # ONNX Runtime registers its Swish kernel for opset 24 only: a Swish at 25+ would not load there
        reason = f"Swish is written at opset {SWISH_OPSET} only (ONNX Runtime's kernel), the model has {m.opset} " \
                 f"(--target ort would write com.microsoft QuickGelu)"
    return reason


def _swish(op, m, alpha: float):
    if m.opset == SWISH_OPSET:
        return op.Swish(m["x"], alpha=alpha)
    return op.QuickGelu(m["x"], alpha=alpha, _domain=MS)


rule_pass(
    (FuseSilu, FuseScaledSilu), "fuse_silu",
    doc="x · Sigmoid(x) and x · Sigmoid(αx) → Swish (opset 24); --target ort: com.microsoft QuickGelu.",
)
