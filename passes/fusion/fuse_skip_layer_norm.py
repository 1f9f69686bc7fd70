"""Residual Add + LayerNormalization → com.microsoft SkipLayerNormalization (and the RMS variant), --target ort only.

onnxruntime's kernels take a rank-2 or rank-3 input normalized over its last axis; the rules require both Add
operands to have that same known shape. The Add's sum must have no other reader: a rule can only replace the
root's outputs, so the pre-norm layout (the sum is also the next residual) is left alone.
"""
from __future__ import annotations

from onnxopt.passes.fusion._decomposed import ORT_TYPES, constant, float_type_reason, negative_axis, shape_of
from onnxopt.rewrite import Rule, rule_pass

MS = "com.microsoft"


class FuseSkipLayerNorm(Rule):
    """LayerNormalization(Add(x, skip), γ, β) → com.microsoft SkipLayerNormalization(x, skip, γ, β)."""

    name = "fuse_skip_layer_norm"
    requires_ort = True
    needs_shapes = True
    domain_opsets = {MS: 1}

    def pattern(self, op, x, skip, gamma, beta):
        return op.LayerNormalization(op.Add(x, skip), gamma, beta, _optional=1, _name="norm")

    def check(self, m):
        reason = skip_norm_reason(m)
        return m.fail(reason) if reason else True

    def rewrite(self, op, m):
        inputs = [m["x"], m["skip"], m["gamma"]] + ([m["beta"]] if m["beta"] is not None else [])
        return op.SkipLayerNormalization(*inputs, epsilon=float(m.root.attr("epsilon", 1e-5)), _domain=MS)


class FuseSkipLayerNormBias(FuseSkipLayerNorm):
    """LayerNormalization(Add(Add(x, b), skip), γ, β), constant vector b → SkipLayerNormalization(x, skip, γ, β, b)."""

    name = "fuse_skip_layer_norm_bias"

    def pattern(self, op, x, b, skip, gamma, beta):
        biased = op.Add(x, b, _commute=True, _name="bias")
        return op.LayerNormalization(op.Add(biased, skip, _commute=True), gamma, beta, _optional=1, _name="norm")

    def check(self, m):
        reason = skip_norm_reason(m)
        if not reason:
            bias, x = constant(m["b"]), m["x"]
            if bias is None or bias.ndim != 1 or bias.shape[0] != shape_of(x)[-1] or constant(x) is not None:
                reason = f"{m['b'].name!r} is not a constant vector over the hidden dim"
        return m.fail(reason) if reason else True

    def rewrite(self, op, m):
        inputs = [m["x"], m["skip"], m["gamma"], m["beta"], m["b"]]
        return op.SkipLayerNormalization(*inputs, epsilon=float(m.root.attr("epsilon", 1e-5)), _domain=MS)


class FuseSkipSimplifiedLayerNorm(Rule):
    """RMSNormalization(Add(x, skip), γ) (or ORT's SimplifiedLayerNormalization) → SkipSimplifiedLayerNormalization."""

    name = "fuse_skip_simplified_layer_norm"
    requires_ort = True
    needs_shapes = True
    domain_opsets = {MS: 1}

    def pattern(self, op, x, skip, gamma):
        return op.node(("RMSNormalization", "SimplifiedLayerNormalization"), op.Add(x, skip), gamma, _name="norm")

    def check(self, m):
        reason = skip_norm_reason(m)
        return m.fail(reason) if reason else True

    def rewrite(self, op, m):
        epsilon = float(m.root.attr("epsilon", 1e-5))
        return op.SkipSimplifiedLayerNormalization(m["x"], m["skip"], m["gamma"], epsilon=epsilon, _domain=MS)


def skip_norm_reason(m) -> str:
    """Why onnxruntime's skip-normalization kernels cannot take the match ('' when they can)."""
    x, skip, norm = m["x"], m["skip"], m.node("norm")
    reason = float_type_reason(x, ORT_TYPES)
    if reason:
        return reason
    if int(norm.attr("stash_type", 1)) != 1:
        return f"the {norm.op_type} computes in another type than float (stash_type)"
    shape = shape_of(x)
    if shape is None or len(shape) not in (2, 3) or None in shape:
        return f"{x.name!r} is not known to have rank 2 or 3 (shape {shape})"
    if shape_of(skip) != shape:
        return f"the Add operands have different or unknown shapes ({shape} and {shape_of(skip)})"
    if negative_axis(norm, x) != -1:
        return f"the {norm.op_type} is not over the last axis"
    params = [m["gamma"], m["beta"]] if norm.op_type == "LayerNormalization" else [m["gamma"]]
    for value in params:
        if value is not None and (shape_of(value) is None or len(shape_of(value)) != 1):
            return f"{value.name!r} is not a vector"
    return ""


rule_pass(
    (FuseSkipLayerNormBias, FuseSkipLayerNorm, FuseSkipSimplifiedLayerNorm), "fuse_skip_layer_norm",
    doc=(
        "Add + LayerNormalization (or RMS normalization) → com.microsoft SkipLayerNormalization "
        "(SkipSimplifiedLayerNormalization) (--target ort)."
    ),
)
