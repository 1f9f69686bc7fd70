"""Multi-head scaled dot-product attention as exporters decompose it → com.microsoft MultiHeadAttention (--target ort).

The subgraph from the projected query/key/value ([batch, sequence, hidden]) to the merged context: reshape to heads,
transpose, Q·Kᵀ, scale, optional additive mask, Softmax, ·V, transpose and reshape back. The head count and sizes
come from inferred static shapes, never from the Reshape targets, so a dynamic batch or sequence is fine, and a
padding mask [batch, 1, 1, key length] is expanded over the query length at run time. A causal mask written as
Where(j > i, -inf, scores) over a square of the query length becomes MultiHeadAttention's unidirectional=1.
The scale is applied to the scores (Div or Mul) or, as torch's SDPA export does, as √scale on Q and on Kᵀ.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import onnx

from onnxopt.passes.fusion._decomposed import ORT_TYPES, constant, float_type_reason, scalar, shape_of
from onnxopt.ir.shapes import read_shape_dim
from onnxopt.rewrite import Rule, rule_pass

MS = "com.microsoft"
HEADS_PERM = [0, 2, 1, 3]  # [B, S, N, H] ↔ [B, N, S, H]
QUERY_LENGTH = "query length"  # in a mask's Expand target: the query's sequence length, read at run time
SLICE_INPUTS_OPSET = 10  # Slice takes its starts and ends as inputs
KEY_PERM = [0, 2, 3, 1]  # [B, L, N, H] → [B, N, H, L], as consecutive transposes merge


class FuseAttention(Rule):
    """Reshape(Transpose(Softmax(Q·Kᵀ / c + mask) · V)) over heads → com.microsoft MultiHeadAttention(q, k, v)."""

    name = "fuse_attention"
    requires_ort = True
    needs_shapes = True
    typed_nodes = ("q_heads", "k_heads", "v_heads", "merge_heads")  # their inferred shapes give heads and sizes
    domain_opsets = {MS: 1}
    split_scale = False
    mask_form = "add"  # the scores are masked by Add(scores, mask), Where(causal, fill, scores) ("causal") or not ("")

    def pattern(self, op, q, k, v, q_shape, k_shape, v_shape, c, cq, ck, mask, fill, out_shape):
        qh = op.Transpose(op.Reshape(q, q_shape, _name="q_heads"), _name="q_perm")
        kh = op.Transpose(op.Reshape(k, k_shape, _name="k_heads"), _name="k_perm")
        vh = op.Transpose(op.Reshape(v, v_shape, _name="v_heads"), _name="v_perm")
        if self.split_scale:
            scores = op.MatMul(op.Mul(qh, cq, _commute=True, _name="q_scale"),
                               op.Mul(kh, ck, _commute=True, _name="k_scale"))
        else:
            scores = op.node(("Div", "Mul"), op.MatMul(qh, kh, _name="qk"), c, _commute=True, _name="scale")
        if self.mask_form == "add":
            scores = op.Add(scores, mask, _commute=True, _name="mask")
        elif self.mask_form == "causal":
            scores = op.Where(mask, fill, scores, _name="mask")
        context = op.MatMul(op.Softmax(scores), vh, _name="pv")
        return op.Reshape(op.Transpose(context, _name="context_perm"), out_shape, _name="merge_heads")

    def check(self, m):
        reason = float_type_reason(m["q"], ORT_TYPES) or _perm_reason(m) or _softmax_reason(m)
        if reason:
            return m.fail(reason)
        heads = _heads(m)
        if isinstance(heads, str):
            return m.fail(heads)
        if _scale(m, self.split_scale) is None:
            return m.fail("the scale is not a positive constant scalar")
        if self.mask_form == "causal":
            reason = _causal_reason(m, heads)
            return m.fail(reason) if reason else True
        expansion = _mask_expansion(m, heads) if self.mask_form == "add" else None
        return m.fail(expansion) if isinstance(expansion, str) else True

    def rewrite(self, op, m):
        heads = _heads(m)
        inputs = [m["q"], m["k"], m["v"]]
        if self.mask_form == "add":
            inputs += [None, None, _attention_bias(op, m, heads)]  # bias and key_padding_mask absent
        causal = {"unidirectional": 1} if self.mask_form == "causal" else {}
        return op.MultiHeadAttention(*inputs, num_heads=heads.count, scale=_scale(m, self.split_scale), **causal,
                                     _domain=MS)


def _attention_bias(op, m, heads: Heads):
    """The additive mask as MultiHeadAttention's [batch|1, heads|1, S, L] attention_bias.

    A constant mask is broadcast into a new initializer; any other, or one broadcast over a query length known only
    at run time, gets an Expand (to [1, 1, S, 1] with S read off the query's shape).
    """
    mask, data = m["mask"], constant(m["mask"])
    expansion = _mask_expansion(m, heads)
    if expansion is None:
        return mask
    if QUERY_LENGTH in expansion:
        length = op.Slice(op.Shape(m["q"]), op.const(np.array([1], np.int64), name="query_length_start"),
                          op.const(np.array([2], np.int64), name="query_length_end"))
        ones = op.const(np.array([1, 1], np.int64), name="attention_bias_ones")
        shape = op.Concat(ones, length, op.const(np.array([1], np.int64), name="attention_bias_one"), axis=0)
        return op.Expand(mask, shape)
    if data is None:
        return op.Expand(mask, op.const(np.array(expansion, np.int64), name="attention_bias_shape"))
    padded = data.reshape((1,) * (4 - data.ndim) + data.shape)
    full = np.broadcast_to(padded, np.broadcast_shapes(padded.shape, tuple(expansion)))
    return op.const(np.ascontiguousarray(full), name=mask.name)


MASK_FORMS = {"add": "with an additive mask", "": "without mask", "causal": "with a causal mask"}
MASK_SUFFIX = {"add": "", "": "_unmasked", "causal": "_causal"}


def _variants() -> list[type[Rule]]:
    rules: list[type[Rule]] = [FuseAttention]
    for split in (False, True):
        for form, words in MASK_FORMS.items():
            if not split and form == "add":
                continue
            name = "fuse_attention" + ("_split_scale" if split else "") + MASK_SUFFIX[form]
            scale = "√scale on Q and Kᵀ" if split else "scaled scores"
            doc = f"{FuseAttention.__doc__.splitlines()[0]} ({scale}, {words})"
            rules.append(type(name.title().replace("_", ""), (FuseAttention,), {
                "name": name, "split_scale": split, "mask_form": form, "__doc__": doc, "__module__": __name__,
            }))
    return rules


def _perm_reason(m) -> str:
    for label, perm in (("q_perm", HEADS_PERM), ("k_perm", KEY_PERM), ("v_perm", HEADS_PERM),
                        ("context_perm", HEADS_PERM)):
        if list(m.node(label).attr("perm") or []) != perm:
            return f"the {label.split('_')[0]} Transpose has perm {m.node(label).attr('perm')}, not {perm}"
    return ""


def _softmax_reason(m) -> str:
    softmax = m.node("Softmax")
    axis = softmax.attr("axis", -1 if m.opset >= 13 else 1)
    return "" if axis in (-1, 3) else f"the Softmax is over axis {axis}, not the last"


PLACEHOLDERS = ("?", "")  # names exporters give any unknown dim (Paddle writes "?"): they say nothing about equality


def _same(a, b) -> bool:
    """Two dims are known equal: the same int, or the same symbolic name (not a placeholder)."""
    return a is not None and a not in PLACEHOLDERS and a == b


class Heads(NamedTuple):
    """The head split, and the dims the fused node sees: batch, query length and key length, each as the set of the
    names and numbers shapes give it (all known to be equal)."""

    count: int
    size: int
    v_size: int
    batch: frozenset
    length: frozenset
    key_length: frozenset


def _among(dim, aliases: frozenset) -> bool:
    """`dim` is known to be the dim that `aliases` name."""
    return dim is not None and dim in aliases


def _aliases(*dims) -> frozenset:
    return frozenset(d for d in dims if d is not None and d not in PLACEHOLDERS)


def _heads(m) -> Heads | str:
    """The head split from static inferred shapes, and the batch and sequence dims, or the reason they are not known.

    A Reshape [B, S, hidden] → [B', S', heads, size] keeps the element count, so once hidden = heads · size is
    static and B' = B (or S' = S) is known, the other pair is equal too: exporters often build the target from
    another input's Shape, which inference cannot relate to this one's dims.
    """
    q, k, v = shape_of(m["q"]), shape_of(m["k"]), shape_of(m["v"])
    split = {name: m.node(f"{name}_heads").outputs[0].shape for name in "qkv"}
    if any(s is None or len(s) != 3 for s in (q, k, v)) or any(s is None or len(s) != 4 for s in split.values()):
        return "the query/key/value are not known to be [batch, sequence, hidden] split into [.., heads, size]"
    dims = {}
    for name, source in zip("qkv", (q, k, v)):
        shaped = split[name]
        if not all(isinstance(d, int) for d in (*shaped[2:], source[2])) or shaped[2] * shaped[3] != source[2]:
            return f"the {name} Reshape does not split a static hidden size into static heads"
        if not (_same(shaped[0], source[0]) or _same(shaped[1], source[1])):
            return f"the {name} Reshape does not keep the batch and sequence dims"
        dims[name] = (_aliases(source[0], shaped[0]), _aliases(source[1], shaped[1]))
    heads, size, v_size = split["q"][2], split["q"][3], split["v"][3]
    if split["k"][2:] != (heads, size) or split["v"][2] != heads:
        return "the query, key and value are split into different heads"
    (batch, length), (k_batch, key_length), (v_batch, v_length) = dims["q"], dims["k"], dims["v"]
    if not (batch & k_batch and batch & v_batch and key_length & v_length):
        return "the query, key and value batch/sequence dims are not known to match"
    found = Heads(heads, size, v_size, batch | k_batch | v_batch, length, key_length | v_length)
    if not _merges_heads(m, found):
        return "the final Reshape does not merge the heads back into [batch, sequence, hidden]"
    return found


def _merges_heads(m, heads: Heads) -> bool:
    """The final Reshape gives [batch, sequence, hidden]: by its inferred shape (two of the three known, the third
    following from the element count), or (for a graph output, whose declared shape is not trusted) by a constant
    target that copies or restates batch and sequence."""
    hidden = heads.count * heads.v_size
    merged = shape_of(m.root.outputs[0])
    if merged is not None:
        known = (_among(merged[0], heads.batch), _among(merged[1], heads.length), merged[2] == hidden)
        return len(merged) == 3 and sum(known) >= 2
    target = constant(m["out_shape"])
    if target is None or target.shape != (3,):
        return False
    copies = not m.root.attr("allowzero", 0)
    keeps = all(t == 0 and copies or t in {d for d in aliases if isinstance(d, int)}
                for t, aliases in zip(target[:2].tolist(), (heads.batch, heads.length)))
    return keeps and int(target[2]) in (hidden, -1)


def _scale(m, split: bool) -> float | None:
    """The softmax scale: c·c' for √scale on Q and Kᵀ, 1/c for Div(scores, c), c for Mul; None unless positive.

    The heads (and the scores) have the rank of the head split's typed output, which is what a constant must not
    raise by broadcasting."""
    heads = m.node("q_heads").outputs[0]
    if split:
        cq, ck = scalar(m["cq"], heads), scalar(m["ck"], heads)
        value = None if cq is None or ck is None else cq * ck
    else:
        node = m.node("scale")
        scores = m.node("qk").outputs[0]
        c = scalar(m["c"], heads)
        if c is None or c == 0 or node.op_type == "Div" and node.inputs[0] is not scores:
            return None
        value = 1 / c if node.op_type == "Div" else c
    return value if value is not None and value > 0 else None


def _mask_expansion(m, heads: Heads) -> list | None | str:
    """The Expand target that makes the additive mask [batch|1, heads|1, S, L] as MultiHeadAttention reads it
    (QUERY_LENGTH where S is only known at run time).

    None when the mask already has that shape; the reason when it cannot be given that shape.
    """
    mask = shape_of(m["mask"])
    if mask is None or len(mask) > 4:
        return "the mask's shape is unknown or of rank above 4"
    dims = (1,) * (4 - len(mask)) + tuple(mask)
    if not (dims[0] == 1 or _among(dims[0], heads.batch)) or dims[1] not in (1, heads.count):
        return f"the mask's shape {list(mask)} does not broadcast per batch and head"
    if not _among(dims[3], heads.key_length):
        key_length = " = ".join(sorted(map(str, heads.key_length))) or "unknown"
        return f"the mask's last dim {dims[3]} is not known to be the key length ({key_length})"
    if _among(dims[2], heads.length):
        return None if len(mask) == 4 else [1, 1, 1, 1]
    if dims[2] != 1:
        return f"the mask's shape {list(mask)} does not broadcast over the query length"
    static = [d for d in heads.length if isinstance(d, int)]
    if static:
        return [1, 1, static[0], 1]
    if m.opset < SLICE_INPUTS_OPSET:
        return f"a mask broadcast over a dynamic query length needs opset >= {SLICE_INPUTS_OPSET} to expand"
    return [1, 1, QUERY_LENGTH, 1]


LOWEST_FILL = -1e30  # a masked score at most this (-inf, a float's lowest) gets no weight, exactly as MHA's masking


def _causal_reason(m, heads: Heads) -> str:
    """Why Where(mask, fill, scores) is not the causal mask MultiHeadAttention applies with unidirectional=1 ('' if it
    is): mask[i, j] true for j > i over a square of the query length, the fill -inf or a float's lowest."""
    fill = constant(m["fill"])
    if fill is None or fill.size != 1 or not float(fill.reshape(())) <= LOWEST_FILL:
        return "the masked scores are not set to -inf (or a float's lowest)"
    if not heads.length & heads.key_length:
        return "the query and key lengths are not known to be equal, as a causal mask needs"
    mask = m["mask"].producer()
    if mask is not None and mask.op_type == "Not":
        triangle, upper, diagonal = mask.inputs[0].producer(), 0, 0  # not (j <= i)
    else:
        triangle, upper, diagonal = mask, 1, 1  # j >= i + 1
    if triangle is None or triangle.op_type != "Trilu" or triangle.attr("upper", 1) != upper:
        return "the mask is not Not(Trilu(ones, upper=0)) or Trilu(ones, k=1, upper=1)"
    k = constant(triangle.inputs[1]) if len(triangle.inputs) > 1 and triangle.inputs[1] is not None else np.array(0)
    if k is None or k.size != 1 or int(k.reshape(())) != diagonal:
        return f"the Trilu's diagonal offset is not {diagonal}"
    if not _square_of(triangle.inputs[0], heads.length):
        return "the triangle is not known to be all ones over [query length, query length]"
    return ""


def _square_of(value, length: frozenset) -> bool:
    """`value` is ones (true) of shape [S, S], S the query length: ConstantOfShape or Expand of a non-zero scalar."""
    node = value.producer() if value is not None else None
    if node is None or node.op_type not in ("ConstantOfShape", "Expand"):
        return False
    if node.op_type == "ConstantOfShape":
        one = node.attr("value")
        one = onnx.numpy_helper.to_array(one) if one is not None else np.zeros(1)
    else:
        one = constant(node.inputs[0])
    if one is None or one.size != 1 or not one.reshape(()).item():
        return False
    shape = node.inputs[1] if node.op_type == "Expand" else node.inputs[0]
    data = constant(shape)
    if data is not None:
        return data.shape == (2,) and data[0] == data[1] and int(data[0]) in length
    concat = shape.producer()
    if concat is None or concat.op_type != "Concat" or len(concat.inputs) != 2:
        return False
    return all(_is_length(part, length) for part in concat.inputs)


def _is_length(value, length: frozenset) -> bool:
    """A one-element value known to hold the query length: a constant, or a dim read off a shape."""
    data = constant(value)
    if data is not None:
        return data.size == 1 and int(data.reshape(())) in length
    return read_shape_dim(value) in length


ATTENTION_RULES = tuple(_variants())
rule_pass(
    ATTENTION_RULES, "fuse_attention",
    doc="Decomposed multi-head attention → com.microsoft MultiHeadAttention (--target ort).",
)
