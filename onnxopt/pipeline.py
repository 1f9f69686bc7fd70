"""optimize(): load if needed, convert the opset if asked, run the pass pipeline, label the result."""
from __future__ import annotations

import logging
import os
from typing import Mapping, Sequence

import onnx

from onnxopt.errors import ModelCheckError, OnnxoptError, VerificationError, ort_failure
from onnxopt.ir import Model, from_proto, infer_shapes, load, to_proto, type_check_error
from onnxopt.ir.serde import graph_protos
from onnxopt.passmanager import DEFAULT_PIPELINE, PassContext, PassManager, PipelineResult, expand_pipeline
from onnxopt.rewrite.ruleset import explainable

logger = logging.getLogger(__name__)

PORTABILITY_KEY = "onnxopt.portability"
PIPELINE_KEY = "onnxopt.pipeline"
VERSION_KEY = "onnxopt.version"
TARGETS = ("onnx", "ort", "ort-cpu")
LAYOUT_PASS = "ort_nchwc_layout"  # what ort-cpu adds to ort: the CPU provider's blocked layout
MIN_OPSET = 7  # the oldest default-domain opset the passes are written for
# onnx.checker takes the model as one protobuf message; past this size only a path can be checked
CHECK_MAX_BYTES = 2**31 - 2**26


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
    verify: bool = False,
    verify_samples: int = 3,
    data: str | os.PathLike | None = None,
    safe: bool = False,
    check: bool = False,
) -> PipelineResult:
    """Optimize a model (path or Model; a Model is copied unless inplace) and return it with per-pass stats.

    verify=True compares outputs with the original in ORT and, on a mismatch, names the first bad pass
    application (VerificationError); with safe=True the pipeline reruns without that pass instead.
    check=True runs onnx.checker on the input first (ModelCheckError with the checker's reason).
    """
    import onnxopt.passes  # noqa: F401  (registers the passes)
    from onnxopt import __version__

    if target not in TARGETS:
        raise OnnxoptError(f"unknown target {target!r}; use one of: {', '.join(TARGETS)}")
    if fold_max_bytes < 0:
        raise OnnxoptError(f"fold_max_bytes (--fold-max-bytes) must be 0 or more, got {fold_max_bytes}")
    targets = explainable() if explain else {}
    unknown = [name for name in explain if name not in targets]
    if unknown:
        raise OnnxoptError(f"explain (--explain): no rule named {', '.join(map(repr, unknown))}; "
                           f"rules: {', '.join(sorted(targets))}")
    path = None
    if not isinstance(model, Model):
        path = os.fspath(model)
        model = load(path)
    elif not inplace:
        model = model.clone()
    check_opset(model, target_opset)
    if check:
        check_model(model, path)
    if target_opset is not None and target_opset != model.opset:
        model = convert_opset(model, target_opset)
    pipeline = passes if isinstance(passes, str) else ",".join(passes)
    if target == "ort-cpu":
        passes = [*expand_pipeline(passes), LAYOUT_PASS]
    context = PassContext(
        target=target,
        fold_max_bytes=fold_max_bytes,
        input_shapes={k: tuple(v) for k, v in (input_shapes or {}).items()},
        explain=frozenset(rule for name in explain for rule in targets[name]),
    )
    original = model.clone() if verify else None
    # fixed input shapes can make a branch that cannot run with them fail its static type check
    type_checked = bool(context.input_shapes) and type_check_error(model) is None
    # a failing pass rolls back only the caller's own model (inplace); a loaded or copied one is dropped anyway
    manager = PassManager(passes, context, max_iterations=max_iterations, transactional=inplace)
    result = manager.run(model)
    if type_checked:
        check_fixed_shapes(result.model, context.input_shapes)
    if original is not None:
        result = _verified(original, result, manager, context, verify_samples, data, safe)
    result.explanations = context.explanations
    model = result.model
    infer_shapes(model)  # the result carries the types onnx infers for it, whichever passes asked for shapes on the way
    model.metadata_props[VERSION_KEY] = __version__
    model.metadata_props[PIPELINE_KEY] = f"{pipeline};target={target}"
    model.metadata_props[PORTABILITY_KEY] = portability(model)
    return result


def _verified(
    original: Model, result: PipelineResult, manager: PassManager, context: PassContext, samples: int,
    data: str | os.PathLike | None, safe: bool,
) -> PipelineResult:
    from onnxopt.verify import bisect, compare_outputs, input_specs, run_model, sample_feeds, verify

    feeds = sample_feeds(result.model, samples, data)  # its interface is the narrower one (--input-shape)
    try:
        reference = run_model(original, feeds)
    except Exception as exc:  # e.g. a value-dependent model (a sample rate that must be 8000 or 16000)
        dynamic = any(not isinstance(d, int) or d <= 0 for s in input_specs(result.model) for d in (s.shape or ()))
        hint = " (or set its dynamic dims, generated as 1, with --input-shape NAME=DIMS)" if dynamic else ""
        raise VerificationError(
            f"the original model does not run on generated inputs ({ort_failure(exc)}); give real inputs with "
            f"--data DIR{hint}"
        ) from None
    report = compare_outputs(reference, run_model(result.model, feeds))
    if report.ok:
        result.verification = report
        return result
    index, nodes = bisect(original, result.history, context, feeds)
    report.culprit, report.culprit_index, report.culprit_nodes = result.history[index], index, nodes
    if not safe:
        raise VerificationError(f"the optimized model's outputs differ from the original's\n{report.summary()}")
    culprit = report.culprit.name
    names = [name for name in manager.names if name != culprit]
    retry = PassManager(names, context, max_iterations=manager.max_iterations).run(original.clone())
    second = verify(original, retry.model, feeds)
    if not second.ok:
        raise VerificationError(f"outputs still differ without {culprit}\n{second.summary()}")
    retry.verification = second
    retry.excluded_passes = [culprit]
    logger.warning("--safe: %s changed the outputs (%s); wrote the result of the pipeline without it",
                   culprit, ", ".join(nodes[:5]) or "no node removed")
    return retry


def check_opset(model: Model, target_opset: int | None = None) -> None:
    """ModelCheckError when the default-domain opset is newer than onnx knows, or older than MIN_OPSET and not
    being converted to MIN_OPSET or newer."""
    if "" not in model.opset_imports and "ai.onnx" not in model.opset_imports:
        return  # no standard ops at all (e.g. an ai.onnx.ml-only model)
    opset, latest = model.opset, onnx.defs.onnx_opset_version()
    if opset > latest:
        raise ModelCheckError(f"the model uses opset {opset}, newer than this onnx {onnx.__version__} knows "
                              f"(up to {latest}); upgrade onnx (pip install -U onnx)")
    if opset < MIN_OPSET and (target_opset is None or target_opset < MIN_OPSET):
        raise ModelCheckError(f"the model uses opset {opset}; onnxopt needs opset {MIN_OPSET} or newer: "
                              f"convert it with --target-opset {MIN_OPSET} (or newer)")


def check_fixed_shapes(model: Model, input_shapes: Mapping[str, Sequence[int]]) -> None:
    """OnnxoptError when the model, type-checked before its input shapes were fixed, fails onnx's strict shape
    inference with them: ONNX Runtime folds the same shapes and refuses such a model at load, optimized or not."""
    error = type_check_error(model)
    if error is None:
        return
    given = " ".join(f"{name}={','.join(map(str, dims))}" for name, dims in input_shapes.items())
    raise OnnxoptError(f"with --input-shape {given} the model no longer type-checks ({error}), typically an If "
                       f"branch that cannot run with these shapes, and ONNX Runtime refuses such a model at load, "
                       f"optimized or not; leave those dims dynamic or fix shapes that every branch accepts")


def check_model(model: Model, path: str | None = None) -> None:
    """onnx.checker without the full (shape inference) check; ModelCheckError says why it rejects the model.

    Reads `path` when given (external data stays on disk); an in-memory model past the protobuf limit is not
    checked.
    """
    if path is None and sum(v.const_value.nbytes for v in model.graph.initializers.values()) > CHECK_MAX_BYTES:
        logger.info("not running onnx.checker: the model is larger than 2 GB")
        return
    try:
        onnx.checker.check_model(path if path is not None else to_proto(model), full_check=False)
    except onnx.checker.ValidationError as exc:
        message, _, context = str(exc).partition("==> Context:")
        reason = " ".join(message.split()).rstrip(".") + (f" ({' '.join(context.split())})" if context.strip() else "")
        where = f"{path}: " if path is not None else ""
        raise ModelCheckError(f"{where}onnx.checker rejects the model: {reason}; fix the model, or pass "
                              f"--no-check to optimize it anyway") from None


def portability(model: Model) -> str:
    """'standard' when every op is an ai.onnx op the onnx spec defines, 'onnxruntime' when the others are
    ONNX Runtime ops (com.microsoft, or ORT-only ops in the default domain), 'onnxruntime-cpu' when some are ORT's
    CPU-only blocked-layout kernels (com.microsoft.nchwc), else 'custom'."""
    nodes = [node for graph in model.graph.all_graphs() for node in graph]
    domains = {node.domain for node in nodes} - {"", "ai.onnx"}
    nonstandard = any(node.domain in ("", "ai.onnx") and not onnx.defs.has(node.op_type) for node in nodes)
    if not domains and not nonstandard:
        return "standard"
    if domains <= {"com.microsoft", "ai.onnx.ml"}:
        return "onnxruntime"
    return "onnxruntime-cpu" if domains <= {"com.microsoft", "ai.onnx.ml", "com.microsoft.nchwc"} else "custom"


def convert_opset(model: Model, opset: int) -> Model:
    """Convert with onnx.version_converter; a failure lists each node that cannot be converted and why."""
    if opset < model.opset:
        raise OnnxoptError(f"--target-opset {opset} is older than the model's opset {model.opset}; give a newer one")
    latest = onnx.defs.onnx_opset_version()
    if opset > latest:
        raise OnnxoptError(f"--target-opset {opset} is newer than the newest opset this onnx {onnx.__version__} "
                           f"knows ({latest}); give {latest} or less")
    proto = to_proto(model)
    try:
        converted = onnx.version_converter.convert_version(proto, opset)
    except Exception as exc:
        failures = unconvertible_nodes(proto, opset) or [_converter_message(exc)]
        shown = "; ".join(failures[:_MAX_REPORTED])
        more = f"; and {len(failures) - _MAX_REPORTED} more" if len(failures) > _MAX_REPORTED else ""
        raise OnnxoptError(f"cannot convert the model from opset {model.opset} to {opset}: {shown}{more}") from None
    result = from_proto(converted, model.base_dir)
    result.metadata_props.update(model.metadata_props)
    result.external_data = model.external_data  # the weights come back inline; the output keeps the input's choice
    return result


_MAX_REPORTED = 10


def unconvertible_nodes(proto: onnx.ModelProto, opset: int) -> list[str]:
    """'Op 'name': reason' for every node the version converter cannot take to `opset` on its own.

    Each node is converted alone in a one-node model (nodes alike in op, attributes and constant inputs are tried
    once); nodes holding subgraphs are judged by their body's nodes.
    """
    try:
        typed = onnx.shape_inference.infer_shapes(proto, strict_mode=False)
    except Exception:  # the report must not fail on models inference cannot handle
        typed = proto
    failures: list[str] = []
    verdicts: dict[bytes, str] = {}
    for graph in graph_protos(typed.graph):
        types = {info.name: info.type for info in (*graph.input, *graph.value_info, *graph.output)}
        constants = {tensor.name: tensor for tensor in graph.initializer}
        for node in graph.node:
            if any(attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for attr in node.attribute):
                continue
            key = _node_key(node, constants)
            if key not in verdicts:
                verdicts[key] = _single_node_failure(proto, node, types, constants, opset)
            if verdicts[key]:
                failures.append(f"{node.op_type} {node.name or node.output[0]!r}: {verdicts[key]}")
    return failures


def _node_key(node: onnx.NodeProto, constants: dict[str, onnx.TensorProto]) -> bytes:
    alike = onnx.NodeProto(op_type=node.op_type, domain=node.domain, attribute=node.attribute)
    shape = [name in constants for name in node.input] + [bool(name) for name in node.input]
    return alike.SerializeToString() + bytes(shape) + bytes(len(node.output))


def _single_node_failure(
    proto: onnx.ModelProto, node: onnx.NodeProto, types: dict[str, onnx.TypeProto],
    constants: dict[str, onnx.TensorProto], opset: int,
) -> str:
    float_type = onnx.helper.make_tensor_type_proto(onnx.TensorProto.FLOAT, None)
    names = [name for name in dict.fromkeys(node.input) if name]
    inputs = [onnx.helper.make_value_info(n, types.get(n, float_type)) for n in names if n not in constants]
    outputs = [onnx.helper.make_value_info(n, types.get(n, float_type)) for n in node.output if n]
    graph = onnx.helper.make_graph([node], "node", inputs, outputs, [constants[n] for n in names if n in constants])
    single = onnx.helper.make_model(graph, opset_imports=proto.opset_import, ir_version=proto.ir_version)
    try:
        onnx.version_converter.convert_version(single, opset)
    except Exception as exc:
        return _converter_message(exc)
    return ""


def _converter_message(exc: Exception) -> str:
    """The converter's reason without its source location ('…Assertion `false` failed: No Adapter …')."""
    line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return line.split(" failed: ", 1)[-1]
