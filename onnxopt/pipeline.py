"""optimize(): load if needed, convert the opset if asked, run the pass pipeline, label the result."""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import onnx

from onnxopt.errors import OnnxoptError
from onnxopt.ir import Model, from_proto, load, to_proto
from onnxopt.passmanager import DEFAULT_PIPELINE, PassContext, PassManager, PipelineResult

PORTABILITY_KEY = "onnxopt.portability"
PIPELINE_KEY = "onnxopt.pipeline"
VERSION_KEY = "onnxopt.version"
TARGETS = ("onnx", "ort")


def optimize(
    model: Model | str | os.PathLike,
    passes: str | Sequence[str] = DEFAULT_PIPELINE,
    *,
    target: str = "onnx",
    target_opset: int | None = None,
    fold_max_bytes: int = 4 * 1024 * 1024,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    explain: Sequence[str] = (),
    max_iterations: int = 8,
    inplace: bool = False,
) -> PipelineResult:
    """Optimize a model (path or Model; a Model is copied unless inplace) and return it with per-pass stats."""
    import onnxopt.passes  # noqa: F401  (registers the passes)
    from onnxopt import __version__

    if target not in TARGETS:
        raise OnnxoptError(f"unknown target {target!r}; use one of: {', '.join(TARGETS)}")
    if not isinstance(model, Model):
        model = load(model)
    elif not inplace:
        model = model.clone()
    if target_opset is not None and target_opset != model.opset:
        model = convert_opset(model, target_opset)
    context = PassContext(
        target=target,
        fold_max_bytes=fold_max_bytes,
        input_shapes={k: tuple(v) for k, v in (input_shapes or {}).items()},
        explain=frozenset(explain),
    )
    result = PassManager(passes, context, max_iterations=max_iterations).run(model)
    result.explanations = context.explanations
    pipeline = passes if isinstance(passes, str) else ",".join(passes)
    model = result.model
    model.metadata_props[VERSION_KEY] = __version__
    model.metadata_props[PIPELINE_KEY] = f"{pipeline};target={target}"
    model.metadata_props[PORTABILITY_KEY] = portability(model)
    return result


def portability(model: Model) -> str:
    """'standard' when only ai.onnx ops are used, 'onnxruntime' when com.microsoft ops are, else 'custom'."""
    domains = {node.domain for graph in model.graph.all_graphs() for node in graph} - {"", "ai.onnx"}
    if not domains:
        return "standard"
    return "onnxruntime" if domains <= {"com.microsoft", "ai.onnx.ml"} else "custom"


def convert_opset(model: Model, opset: int) -> Model:
    """Convert with onnx.version_converter; a failure names the op that could not be converted."""
    if opset < model.opset:
        raise OnnxoptError(f"--target-opset {opset} is older than the model's opset {model.opset}; give a newer one")
    try:
        converted = onnx.version_converter.convert_version(to_proto(model), opset)
    except Exception as exc:
        raise OnnxoptError(f"cannot convert the model to opset {opset}: {str(exc).splitlines()[0]}") from None
    result = from_proto(converted, model.base_dir)
    result.metadata_props.update(model.metadata_props)
    return result
