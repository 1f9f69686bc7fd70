"""Decomposed GELU, exact (erf) and tanh-approximated, → Gelu (opset ≥ 20); with --target ort → Gelu/FastGelu/BiasGelu.

Exporters multiply x, ½ and (1 + erf(x/√2)) in every association and operand order; one rule per association
covers them (operand order is matched commutatively). The tanh form's x³ is Pow(x, 3) or x·x·x.
"""
from __future__ import annotations

import math

import numpy as np

from onnxopt.passes.fusion._decomposed import ORT_TYPES, constant, float_type_reason, is_scalar, rank, shape_of
from onnxopt.rewrite import ORT_TARGETS, Rule, rule_pass

GELU_OPSET = 20
MS = "com.microsoft"
SQRT_2 = math.sqrt(2.0)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
TANH_CUBIC = 0.044715
FORMS = ("erf", "tanh_pow", "tanh_mul")
PRODUCTS = ("x_h", "x_half", "h_half")


class FuseGelu(Rule):
    """x · (1 + erf(x / √2)) · ½ → Gelu(x); the tanh form 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))) → Gelu(tanh)."""

    name = "fuse_gelu"
    needs_shapes = True
    domain_opsets = {MS: 1}
    form = "erf"
    product = "x_h"

    def pattern(self, op, x, half, one, c, three, a, k):
        if self.form == "erf":
            h = op.Add(op.Erf(op.node(("Div", "Mul"), x, c, _commute=True, _name="scale_in")), one, _commute=True)
        else:
            cube = op.Pow(x, three) if self.form == "tanh_pow" else op.Mul(op.Mul(x, x), x, _commute=True)
            inner = op.Mul(op.Add(x, op.Mul(cube, a, _commute=True), _commute=True), k, _commute=True)
            h = op.Add(op.Tanh(inner), one, _commute=True)
        if self.product == "x_h":
            return op.Mul(op.Mul(x, h, _commute=True), half, _commute=True)
        if self.product == "x_half":
            return op.Mul(op.Mul(x, half, _commute=True), h, _commute=True)
        return op.Mul(x, op.Mul(h, half, _commute=True), _commute=True)

    def check(self, m):
        x = m["x"]
        if m.opset < GELU_OPSET and m.target not in ORT_TARGETS:
            return m.fail(f"Gelu needs opset >= {GELU_OPSET}, the model has {m.opset} "
                          f"(--target ort would write com.microsoft Gelu/FastGelu)")
        reason = float_type_reason(x)
        if not reason and m.opset < GELU_OPSET:
            reason = float_type_reason(x, ORT_TYPES)
        if reason:
            return m.fail(reason)
        if not is_scalar(m["half"], 0.5, x) or not is_scalar(m["one"], 1.0, x):
            return m.fail("the constants are not ½ and 1")
        if self.form == "erf":
            scale_in = m.node("scale_in")
            if scale_in.op_type == "Div":
                if scale_in.inputs[0] is not x or not is_scalar(m["c"], SQRT_2, x):
                    return m.fail("the erf argument is not x / √2")
            elif not is_scalar(m["c"], 1 / SQRT_2, x):
                return m.fail("the erf argument is not x · (1/√2)")
            return True
        if self.form == "tanh_pow" and not is_scalar(m["three"], 3.0):
            return m.fail("the Pow exponent is not 3")
        if not is_scalar(m["a"], TANH_CUBIC, x) or not is_scalar(m["k"], SQRT_2_OVER_PI, x):
            return m.fail(f"the tanh argument is not √(2/π)·(x + {TANH_CUBIC}·x³)")
        return True

    def rewrite(self, op, m):
        x = m["x"]
        if m.target in ORT_TARGETS and not float_type_reason(x, ORT_TYPES):
            return op.Gelu(x, _domain=MS) if self.form == "erf" else op.FastGelu(x, _domain=MS)
        return op.Gelu(x) if self.form == "erf" else op.Gelu(x, approximate="tanh")


def _variants() -> list[type[Rule]]:
    rules: list[type[Rule]] = []
    for form in FORMS:
        for product in PRODUCTS:
            if (form, product) == (FuseGelu.form, FuseGelu.product):
                rules.append(FuseGelu)
                continue
            name = f"fuse_gelu_{form}_{product}"
            doc = f"{FuseGelu.__doc__.splitlines()[0]} ({form} form, product {product})"
            rules.append(type(name.title().replace("_", ""), (FuseGelu,), {
                "name": name, "form": form, "product": product, "__doc__": doc, "__module__": __name__,
            }))
    return rules


class FuseBiasGelu(Rule):
    """com.microsoft Gelu(x + b) → BiasGelu(x, b) and FastGelu(x + b) → FastGelu(x, b) for a constant bias vector b."""

    name = "fuse_bias_gelu"
    requires_ort = True
    needs_shapes = True

    def pattern(self, op, x, b):
        return op.node(("Gelu", "FastGelu"), op.Add(x, b, _commute=True), _domain=MS, _name="gelu")

    def check(self, m):
        x, b = m["x"], constant(m["b"])
        if b is None or constant(x) is not None:
            return m.fail("the added value is not a constant bias")
        shape = shape_of(x)
        if not shape or not isinstance(shape[-1], int):
            return m.fail(f"the last dim of {x.name!r} is unknown")
        if _bias_vector(b, rank(x), shape[-1]) is None:
            return m.fail(f"the bias shape {list(b.shape)} is not [{shape[-1]}] along the last axis")
        return True

    def rewrite(self, op, m):
        x = m["x"]
        bias, size = m["b"], shape_of(x)[-1]
        if constant(bias).shape != (size,):
            bias = op.const(_bias_vector(constant(bias), rank(x), size), name=bias.name)
        gelu = m.node("gelu")
        if gelu.op_type == "Gelu" and gelu.attr("approximate", "none") != "tanh":
            return op.BiasGelu(x, bias, _domain=MS)
        return op.FastGelu(x, bias, _domain=MS)


class FuseBiasStandardGelu(FuseBiasGelu):
    """Gelu(x + b) of opset 20 (as torch's dynamo exporter writes it) → com.microsoft BiasGelu(x, b), or FastGelu(x, b)
    for approximate="tanh"."""

    name = "fuse_bias_standard_gelu"
    min_opset = GELU_OPSET

    def pattern(self, op, x, b):
        return op.Gelu(op.Add(x, b, _commute=True), _name="gelu")


def _bias_vector(b: np.ndarray, x_rank: int | None, size: int) -> np.ndarray | None:
    """The bias as a length-`size` vector when it only varies along the last axis and does not raise x's rank."""
    if b.ndim == 0 or b.shape[-1] != size or any(d != 1 for d in b.shape[:-1]):
        return None
    if b.ndim > 1 and (x_rank is None or b.ndim > x_rank):
        return None
    return b.reshape(size)


GELU_RULES = tuple(_variants())
rule_pass(
    GELU_RULES, "fuse_gelu", doc="Decomposed GELU (erf or tanh form) → Gelu (opset ≥ 20); --target ort: Gelu/FastGelu.",
)
rule_pass(
    (FuseBiasGelu, FuseBiasStandardGelu), "fuse_bias_gelu",
    doc="Gelu(x + b) (com.microsoft, or opset 20's) → BiasGelu(x, b), FastGelu(x + b) → FastGelu(x, b) (--target ort).",
)
