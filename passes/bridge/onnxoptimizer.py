"""Bridge: run onnxoptimizer's passes inside an onnxopt pipeline as `onnxoptimizer[:<pass>]`."""
from __future__ import annotations

import onnxoptimizer

from onnxopt.errors import UnknownPassError
from onnxopt.ir import from_proto, to_proto
from onnxopt.passmanager import Pass, PassContext, PassResult, register_prefix


class OnnxoptimizerPass(Pass):
    """Model → onnxoptimizer.optimize(model, passes) → Model (whole-model round trip, subgraphs included)."""

    name = "onnxoptimizer"

    def __init__(self, passes: list[str], context: PassContext | None = None) -> None:
        super().__init__(context)
        self.passes = passes

    def call(self, model):
        proto = to_proto(model)
        optimized = onnxoptimizer.optimize(proto, self.passes)
        if optimized.graph == proto.graph and optimized.opset_import == proto.opset_import:
            return PassResult(model, False)
        rebuilt = from_proto(optimized, model.base_dir)
        rebuilt.functions = model.functions
        model.restore(rebuilt)
        return PassResult(model, True)


def make_onnxoptimizer_pass(sub: str, context: PassContext) -> Pass:
    """`onnxoptimizer` → its default fuse-and-eliminate set; `onnxoptimizer:<name>` → that one pass."""
    if not sub:
        return OnnxoptimizerPass(onnxoptimizer.get_fuse_and_elimination_passes(), context)
    available = onnxoptimizer.get_available_passes()
    if sub not in available:
        raise UnknownPassError(f"onnxoptimizer has no pass {sub!r}; it has: {', '.join(sorted(available))}")
    return OnnxoptimizerPass([sub], context)


register_prefix("onnxoptimizer", make_onnxoptimizer_pass)
