"""Which ops ONNX Runtime's QDQ selectors turn into int8 kernels (CPU provider, checked against ORT 1.18–1.22+).

Facts about the runtime, kept as data so plan-free clean-ups can tell useful Q/DQ pairs from overhead.
"""
from __future__ import annotations

# DQ inputs + op + Q output → one QLinear*/QGemm/… kernel.
FUSED_TARGETS = frozenset({
    "Conv", "MatMul", "Gemm", "Add", "Mul", "Concat", "AveragePool", "GlobalAveragePool", "Sigmoid", "Softmax",
    "LeakyRelu", "Where",
})
# DQ → op → Q with equal parameters → the op runs on int8 data directly.
DATA_MOVEMENT = frozenset({
    "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Split", "Slice", "Gather", "GatherElements",
    "Expand", "Tile", "MaxPool", "Resize", "ReduceMax", "ReduceMin",
})
QDQ_AWARE = FUSED_TARGETS | DATA_MOVEMENT


def is_qdq_aware(op_type: str, domain: str) -> bool:
    """True when ORT can fuse this op with Q/DQ neighbours into an int8 kernel."""
    return domain in ("", "ai.onnx") and op_type in QDQ_AWARE
