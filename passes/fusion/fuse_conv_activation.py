"""Conv (plus a same-shape residual Add) followed by an activation → com.microsoft FusedConv (--target ort-cpu only).

Only onnxruntime's CPU provider runs FusedConv well: CUDA's kernel rejects every activation but Relu at session
creation, and runs even Relu FusedConvs slower than the Conv + Relu it fuses itself (ResNet-50 on an H200:
1.9× the plain model's latency; benchmarks/results/gpu.md). So the rules need the CPU target.
"""
from __future__ import annotations

import numpy as np

from onnxopt.passes.fusion._decomposed import ORT_TYPES, clip_bounds, float_type_reason, shape_of
from onnxopt.rewrite import Rule, rule_pass

MS = "com.microsoft"
# The activations onnxruntime's FusedConv applies (MLAS activation kinds), with their parameters' defaults.
ACTIVATIONS = ("Relu", "Sigmoid", "Tanh", "LeakyRelu", "Clip", "HardSigmoid")
FLOAT_MAX = float(np.finfo(np.float32).max)


class FuseConvActivation(Rule):
    """Act(Conv(x, W, B)) → com.microsoft FusedConv(x, W, B, activation=Act, activation_params=…)."""

    name = "fuse_conv_activation"
    requires_ort = True
    cpu_only = True
    needs_shapes = True
    domain_opsets = {MS: 1}

    def pattern(self, op, x, w, b, low, high):
        conv = op.Conv(x, w, b, _optional=1)
        return op.node(ACTIVATIONS, conv, low, high, _optional=2, _name="activation")

    def check(self, m):
        reason = float_type_reason(m["x"], ORT_TYPES)
        if not reason and activation_params(m) is None:
            reason = "the Clip bounds are not constant"
        return m.fail(reason) if reason else True

    def rewrite(self, op, m):
        return fused_conv(op, m, m["b"])


class FuseConvAddActivation(Rule):
    """Act(Add(Conv(x, W, B), z)) (or Sum) with z of the Conv output's static shape → FusedConv(x, W, B, z)."""

    name = "fuse_conv_add_activation"
    requires_ort = True
    cpu_only = True
    needs_shapes = True
    typed_nodes = ("Conv",)  # its output's shape must be the added value's
    domain_opsets = {MS: 1}

    def pattern(self, op, x, w, b, z, low, high):
        conv = op.Conv(x, w, b, _optional=1)
        residual = op.node(("Add", "Sum"), conv, z, _commute=True, _name="residual")
        return op.node(ACTIVATIONS, residual, low, high, _optional=2, _name="activation")

    def check(self, m):
        reason = float_type_reason(m["x"], ORT_TYPES)
        if reason:
            return m.fail(reason)
        conv_shape, z_shape = m.node("Conv").outputs[0].shape, shape_of(m["z"])
        if conv_shape is None or conv_shape != z_shape or not all(isinstance(d, int) for d in conv_shape):
            return m.fail(f"the added value's shape {z_shape} is not the Conv output's static shape {conv_shape}")
        if activation_params(m) is None:
            return m.fail("the Clip bounds are not constant")
        return True

    def rewrite(self, op, m):
        return fused_conv(op, m, m["b"], m["z"])


def activation_params(m) -> list[float] | None:
    """FusedConv's activation_params for the matched activation; None when Clip bounds are not constant."""
    node = m.node("activation")
    if node.op_type == "LeakyRelu":
        return [float(node.attr("alpha", 0.01))]
    if node.op_type == "HardSigmoid":
        return [float(node.attr("alpha", 0.2)), float(node.attr("beta", 0.5))]
    if node.op_type == "Clip":
        bounds = clip_bounds(node, m.opset)
        return None if bounds is None else [float(np.clip(v, -FLOAT_MAX, FLOAT_MAX)) for v in bounds]
    return []


def fused_conv(op, m, *extra):
    """The FusedConv replacing the match: the Conv's inputs and attributes, then `extra` inputs, the activation."""
    conv = m.node("Conv")
    params = activation_params(m)
    attrs = {**conv.attrs, "activation": m.node("activation").op_type}
    if params:
        attrs["activation_params"] = params
    inputs = [m["x"], m["w"], *extra]
    while inputs[-1] is None:
        inputs.pop()
    return op.FusedConv(*inputs, _domain=MS, **attrs)


rule_pass(
    (FuseConvActivation, FuseConvAddActivation), "fuse_conv_activation",
    doc="Conv (+ same-shape Add) + Relu/Sigmoid/Tanh/LeakyRelu/Clip/HardSigmoid → com.microsoft FusedConv (--target ort-cpu).",
)
