"""Transformer blocks exported by torch, optimized by onnxopt: what fuses, whether outputs hold, what latency does.

Needs torch (not an onnxopt dependency: `pip install torch`). Exports a 2-layer BERT encoder (eager and SDPA attention,
padding mask, position embeddings) and a GPT-style block (RMSNorm, packed QKV, causal mask, SiLU-gated MLP) with
random weights, through torch's legacy exporter (opsets 14 and 17) and its dynamo exporter, all with a dynamic batch
and sequence. Each export is optimized with the default target and `--target ort`; outputs are compared with the
export's in ONNX Runtime at several (batch, sequence) shapes, and the three models are timed side by side at
ORT_DISABLE_ALL and ORT_ENABLE_ALL (1 thread, median CPU time of --runs interleaved rounds, batch 1, sequence 128).
Run: python benchmarks/transformers.py [--runs 300] [--out benchmarks/results/transformers.md]
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import onnx  # noqa: E402

from _measure import session, time_interleaved  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "transformers.md"
SHAPES = ((1, 1), (2, 5), (3, 17), (1, 64))  # (batch, sequence) the outputs are compared at
TIMED = (1, 128)
TOLERANCE = 1e-4  # of the output's largest magnitude
SHOWN = ("MultiHeadAttention", "SkipLayerNormalization", "BiasGelu", "SimplifiedLayerNormalization", "QuickGelu")


def build_models():
    """name → (torch module, example inputs, input names, dynamic axes)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    torch.manual_seed(0)
    hidden, heads = 64, 4

    class BertLayer(nn.Module):
        def __init__(self, sdpa: bool) -> None:
            super().__init__()
            self.sdpa = sdpa
            self.q, self.k, self.v, self.o = (nn.Linear(hidden, hidden) for _ in range(4))
            self.ln1, self.ln2 = nn.LayerNorm(hidden, eps=1e-12), nn.LayerNorm(hidden, eps=1e-12)
            self.up, self.down = nn.Linear(hidden, 4 * hidden), nn.Linear(4 * hidden, hidden)

        def heads(self, x):
            return x.view(x.shape[0], x.shape[1], heads, hidden // heads).permute(0, 2, 1, 3)

        def forward(self, x, mask):
            q, k, v = self.heads(self.q(x)), self.heads(self.k(x)), self.heads(self.v(x))
            if self.sdpa:
                context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            else:
                scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hidden // heads) + mask
                context = torch.matmul(torch.softmax(scores, -1), v)
            context = context.permute(0, 2, 1, 3).contiguous().view(x.shape[0], x.shape[1], hidden)
            x = self.ln1(x + self.o(context))
            return self.ln2(x + self.down(F.gelu(self.up(x))))

    class Bert(nn.Module):
        def __init__(self, sdpa: bool) -> None:
            super().__init__()
            self.words, self.positions = nn.Embedding(100, hidden), nn.Embedding(128, hidden)
            self.ln = nn.LayerNorm(hidden, eps=1e-12)
            self.layers = nn.ModuleList([BertLayer(sdpa) for _ in range(2)])

        def forward(self, input_ids, attention_mask):
            positions = torch.arange(input_ids.shape[1]).unsqueeze(0)
            x = self.ln(self.words(input_ids) + self.positions(positions))
            mask = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
            for layer in self.layers:
                x = layer(x, mask)
            return x

    class RmsNorm(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(1 + 0.1 * torch.randn(hidden))

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight

    class GptBlock(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.n1, self.n2 = RmsNorm(), RmsNorm()
            self.qkv, self.o = nn.Linear(hidden, 3 * hidden, bias=False), nn.Linear(hidden, hidden, bias=False)
            self.gate, self.up = nn.Linear(hidden, 2 * hidden, bias=False), nn.Linear(hidden, 2 * hidden, bias=False)
            self.down = nn.Linear(2 * hidden, hidden, bias=False)

        def forward(self, x):
            b, t, _ = x.shape
            q, k, v = (z.view(b, t, heads, hidden // heads).transpose(1, 2)
                       for z in self.qkv(self.n1(x)).split(hidden, -1))
            scores = q @ k.transpose(-1, -2) / math.sqrt(hidden // heads)
            scores = scores.masked_fill(~torch.tril(torch.ones(t, t, dtype=torch.bool)), float("-inf"))
            x = x + self.o((torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(b, t, hidden))
            h = self.n2(x)
            return x + self.down(F.silu(self.gate(h)) * self.up(h))

    ids, mask = torch.randint(0, 100, (2, 16)), torch.ones(2, 16, dtype=torch.long)
    bert_axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
    return {
        "bert_eager": (Bert(False), (ids, mask), ["input_ids", "attention_mask"], bert_axes),
        "bert_sdpa": (Bert(True), (ids, mask), ["input_ids", "attention_mask"], bert_axes),
        "gpt_block": (GptBlock(), (torch.randn(2, 16, hidden),), ["x"], {"x": {0: "batch", 1: "seq"}}),
    }


def export(module, args, names, axes, exporter: str, path: Path) -> None:
    """Export with torch's legacy exporter at an opset ("op14", "op17") or its dynamo exporter ("dynamo")."""
    import torch

    module.eval()
    if exporter == "dynamo":
        from torch.export import Dim

        shapes = {name: {axis: Dim.AUTO for axis in axes[name]} for name in names}
        torch.onnx.export(module, args, str(path), input_names=names, output_names=["out"], dynamic_shapes=shapes,
                          dynamo=True)
    else:
        torch.onnx.export(module, args, str(path), input_names=names, output_names=["out"], dynamo=False,
                          opset_version=int(exporter[2:]), dynamic_axes={**axes, "out": {0: "batch"}})


def feeds(model_path: Path, batch: int, length: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Token ids, an attention mask with the last third padded, or hidden states, for one (batch, length)."""
    fed = {}
    for info in onnx.load(str(model_path), load_external_data=False).graph.input:
        if info.name == "input_ids":
            fed[info.name] = rng.integers(0, 100, (batch, length)).astype(np.int64)
        elif info.name == "attention_mask":
            fed[info.name] = np.ones((batch, length), np.int64)
            fed[info.name][:, length - length // 3:] = 0
        else:
            fed[info.name] = rng.standard_normal((batch, length, 64)).astype(np.float32)
    return fed


def worst_difference(original: Path, optimized: Path) -> float:
    """The largest |Δ| over SHAPES, relative to the output's largest magnitude, at ORT_DISABLE_ALL."""
    rng = np.random.default_rng(0)
    a, b = session(original, "disable"), session(optimized, "disable")
    worst = 0.0
    for batch, length in SHAPES:
        fed = feeds(original, batch, length, rng)
        x, y = a.run(None, fed)[0], b.run(None, fed)[0]
        worst = max(worst, float(np.abs(x - y).max() / max(np.abs(x).max(), 1e-6)))
    return worst


def fused(path: Path) -> str:
    counts = Counter(node.op_type for node in onnx.load(str(path)).graph.node)
    return ", ".join(f"{op}×{counts[op]}" for op in SHOWN if counts[op]) or "—"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        sys.exit("this benchmark exports its models with torch: pip install torch")
    import onnxruntime

    import onnxopt

    lines = [
        "# Transformer blocks exported by torch", "",
        f"Command: `python benchmarks/transformers.py --runs {args.runs}` (torch {torch.__version__}, onnxruntime "
        f"{onnxruntime.__version__}). Random weights, dynamic batch and sequence; outputs compared at (batch, "
        f"sequence) = {', '.join(map(str, SHAPES))}; latency at {TIMED}, 1 thread, median CPU time of {args.runs} "
        "interleaved rounds, as a ratio to the export (< 1 is faster).", "",
        "| export | nodes: export / default / `--target ort` | fused by `--target ort` | worst Δ (relative) "
        "| DISABLE_ALL: default / ort | ENABLE_ALL: default / ort |",
        "|---|---|---|--:|--:|--:|",
    ]
    with tempfile.TemporaryDirectory(prefix="onnxopt-transformers-") as tmp:
        work = Path(tmp)
        for name, (module, example, names, axes) in build_models().items():
            for exporter in ("op14", "op17", "dynamo"):
                original = work / f"{name}.{exporter}.onnx"
                export(module, example, names, axes, exporter, original)
                paths = {target: work / f"{name}.{exporter}.{target}.onnx" for target in ("default", "ort")}
                nodes = [sum(1 for _ in onnx.load(str(original), load_external_data=False).graph.node)]
                worst = 0.0
                for target, path in paths.items():
                    result = onnxopt.optimize(str(original), target="ort" if target == "ort" else "onnx")
                    onnxopt.save(result.model, path)
                    nodes.append(sum(1 for graph in result.model.graph.all_graphs() for _ in graph))
                    worst = max(worst, worst_difference(original, path))
                ratios = []
                for level in ("disable", "all"):
                    sessions = [session(p, level) for p in (original, *paths.values())]
                    fed = feeds(original, *TIMED, np.random.default_rng(1))
                    cpu, _ = time_interleaved([lambda s=s: s.run(None, fed) for s in sessions], args.runs)
                    medians = [float(np.median(ns)) for ns in cpu]
                    ratios.append(" / ".join(f"{m / medians[0]:.2f}" for m in medians[1:]))
                status = "equal" if worst <= TOLERANCE else "DIFFERS"
                lines.append(f"| {name} {exporter} | {' / '.join(map(str, nodes))} | {fused(paths['ort'])} | "
                             f"{worst:.1e} ({status}) | {ratios[0]} | {ratios[1]} |")
                print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
