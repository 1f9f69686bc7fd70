"""inspect: what a model holds: interface, opsets, op histogram, parameters, custom domains, provenance."""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

from onnx import helper

from onnxopt.ir import Model, Value, stored_bytes


@dataclass
class ModelSummary:
    """A model's facts, ready to print or serialize."""

    path: str
    file_bytes: int
    ir_version: int
    opsets: dict[str, int]
    inputs: list[tuple[str, str, list]]
    outputs: list[tuple[str, str, list]]
    op_histogram: Counter
    nodes: int
    parameters: int
    parameter_bytes: int
    custom_domains: list[str]
    metadata: dict[str, str] = field(default_factory=dict)

    def to_text(self) -> str:
        """A human-readable multi-line report."""
        lines = [
            f"model       {self.path}  ({_size(self.file_bytes)}, IR v{self.ir_version})",
            "opsets      " + ", ".join(f"{d or 'ai.onnx'} {v}" for d, v in sorted(self.opsets.items())),
        ]
        for title, entries in (("inputs", self.inputs), ("outputs", self.outputs)):
            for i, (name, dtype, shape) in enumerate(entries):
                lines.append(f"{title if i == 0 else '':<11} {name}: {dtype}{shape}")
        lines.append(f"nodes       {self.nodes}")
        lines.append(f"parameters  {self.parameters:,} ({_size(self.parameter_bytes)})")
        lines.append("custom      " + (", ".join(self.custom_domains) or "none"))
        for key, value in sorted(self.metadata.items()):
            if key.startswith("onnxopt."):
                lines.append(f"{key[8:]:<11} {value}")
        lines.append("ops")
        width = max((len(op) for op in self.op_histogram), default=0)
        for op, count in self.op_histogram.most_common():
            lines.append(f"  {op:<{width}}  {count}")
        return "\n".join(lines)


def summarize(model: Model, path: str = "") -> ModelSummary:
    """Collect a ModelSummary of a loaded model."""
    from onnxopt.testing import op_histogram

    graphs = model.graph.all_graphs()
    weights = [v.const_value for g in graphs for v in g.initializers.values()]
    domains = sorted({n.domain for g in graphs for n in g} - {"", "ai.onnx", "ai.onnx.ml"})
    return ModelSummary(
        path=path,
        file_bytes=stored_bytes(model, path) if path and os.path.isfile(path) else 0,
        ir_version=model.ir_version,
        opsets=dict(model.opset_imports),
        inputs=[_describe(v) for v in model.graph.inputs if not v.is_initializer()],
        outputs=[_describe(v) for v in model.graph.outputs],
        op_histogram=op_histogram(model),
        nodes=sum(len(g) for g in graphs),
        parameters=sum(t.size for t in weights),
        parameter_bytes=sum(t.nbytes for t in weights),
        custom_domains=domains,
        metadata=dict(model.metadata_props),
    )


def _describe(value: Value) -> tuple[str, str, list]:
    dtype = helper.tensor_dtype_to_np_dtype(value.dtype).name if value.dtype else "?"
    shape = list(value.shape) if value.shape is not None else ["?"]
    return value.name, dtype, ["?" if d is None else d for d in shape]


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
