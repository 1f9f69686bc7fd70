"""quantize(): prepare → plan → collect → ranges → qparams → insert → clean-up → verify / latency check."""
from __future__ import annotations

import logging
import os
import time
from collections import deque
from itertools import islice
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple

import numpy as np

from onnxopt.calibration.collect import collect
from onnxopt.calibration.observers import Observer, make_observer
from onnxopt.calibration.datasets import Source, count_samples, load_samples
from onnxopt.ir.interface import input_specs
from onnxopt.errors import OnnxoptError
from onnxopt.ir import Model, infer_shapes, load
from onnxopt.quantization.config import QuantConfig
from onnxopt.quantization.dynamic import InsertDynamicQuantization, plan_dynamic
from onnxopt.quantization.evaluate import Evaluator
from onnxopt.quantization.plan import build_plan
from onnxopt.quantization.report import QuantReport, op_counts
from onnxopt.quantization.search import Built, search_accuracy
from onnxopt.quantization.static import quantize_static, tensor_records

logger = logging.getLogger(__name__)

PREPARE_GROUPS = ("fold", "cleanup", "fuse")
# Fusions whose result ORT cannot quantize while the decomposed form fuses into QLinear kernels:
# SiLU into QLinearSigmoid + QLinearMul, HardSwish into QLinearAdd (Clip absorbed) + QLinearMul.
NOT_QDQ_FRIENDLY = frozenset({"fuse_silu", "regroup_hard_swish"})
# After Q/DQ insertion: float readers share one DequantizeLinear, then the groups left float get those fusions (Q/DQ
# pairs break their patterns inside int8 groups). With it, `--optimize-for latency` on the PP-OCR classifier went from
# 0.90 to 0.71 of fp32.
FLOAT_GROUP_PASSES = ("share_float_dequantize", *sorted(NOT_QDQ_FRIENDLY))
QDQ_CANONICAL = ("rewrite_sum_as_add", "rewrite_div_as_mul")
PER_CHANNEL_OPSET = 13


class QuantizeResult(NamedTuple):
    """The quantized model and the report (unpacks as `model, report = quantize(...)`)."""

    model: Model
    report: QuantReport


def quantize(
    model: Model | str | os.PathLike,
    calibration: Source | None = None,
    *,
    config: QuantConfig | None = None,
    preprocess: Any = None,
    **options: Any,
) -> QuantizeResult:
    """Quantize a model (path or Model; a Model is not changed) to int8 QDQ (static) or dynamic int8.

    `calibration` is a directory (npy, npz, test_data_set_*, images) or an iterable of {input: array};
    static mode needs it, dynamic mode uses it only for the held-out accuracy and latency checks.
    `options` are QuantConfig fields (method="entropy", samples=500, target_sqnr=30, …), applied over
    `config`. `preprocess` is a calibration.images.Preprocess for image directories.
    """
    config = config.replace(**options) if config is not None and options else config or QuantConfig.from_options(**options)
    if config.latency_check or config.optimize_for == "latency":
        from onnxopt.bench.providers import check_available

        check_available([config.provider])  # before the work, not after it
    started = time.perf_counter()
    model = load(model) if not isinstance(model, Model) else model.clone()
    if config.dims:
        from onnxopt.bench.inputs import check_dim_names, input_specs

        check_dim_names(input_specs(model), dict(config.dims))
    report = QuantReport(mode=config.mode, method=config.method if config.mode == "static" else None)
    named = model.clone() if config.exclude_nodes else None
    if named is not None:
        name_nodes(named)  # an unnamed node goes by the name the quantizer gives it
    model, config = prepare(model, config, report)
    if named is not None:
        _check_excluded_nodes(named, model, config, report)
    if config.mode == "static" and calibration is None:
        raise OnnxoptError("static quantization needs calibration data: pass --data DIR (or calibration=...), or use --mode dynamic")
    samples = _Samples(calibration, model, config, preprocess) if calibration is not None else None

    if config.mode == "static":
        plan = build_plan(model, config)
        if not plan.specs:
            report.warnings.append("nothing to quantize: no supported op with float32 inputs and constant weights")
        collection = collect(model, plan.observed, samples.calibration(), observer_factory(config),
                             total=samples.total, progress=config.progress, threads=0)
        report.calibration_samples, report.calibration_seconds = collection.samples, collection.seconds
        ranges = collection.ranges()

        def build(keep_float: frozenset[str]) -> Built:
            sub_plan = build_plan(model, config, keep_float)
            moving = [name for name, spec in sub_plan.specs.items() if spec.shares_input]
            quantized = quantize_static(model, sub_plan, ranges, config, plan.aliases, then=FLOAT_GROUP_PASSES)[0]
            return Built(quantized, sub_plan.compute_nodes, moving)
    else:
        def build(keep_float: frozenset[str]) -> Built:
            nodes, _ = plan_dynamic(model, config, keep_float)
            result = model.clone()
            InsertDynamicQuantization(nodes, config).call(result)
            return Built(fuse_float_groups(result), nodes, [])

    held_out, overlaps = samples.held_out() if samples is not None else ([], False)
    report.holdout_samples, report.holdout_overlaps_calibration = len(held_out), overlaps
    evaluator = Evaluator(model, held_out, threads=config.threads) if held_out else None
    keep_float: frozenset[str] = frozenset()
    current = build(keep_float)

    if config.target_sqnr is not None:
        if evaluator is None:
            raise OnnxoptError("--target-sqnr needs samples to measure on: give --data DIR (or calibration=...)")
        current, keep_float, report.sqnr_steps = search_accuracy(build, current, keep_float, evaluator, config.target_sqnr)
        report.target_sqnr = config.target_sqnr
    if config.optimize_for == "latency":
        from onnxopt.quantization.latency import search_latency

        feeds = held_out[0] if held_out else None
        current, keep_float, report.latency_steps = search_latency(build, model, current, keep_float, config, feeds)
    quantized = current.model

    _describe(report, model, config, keep_float, ranges if config.mode == "static" else None,
              plan.aliases if config.mode == "static" else {})
    if evaluator is not None:
        report.outputs = evaluator.evaluate(quantized)
    if config.latency_check:
        from onnxopt.quantization.latency import latency_check

        check = latency_check(fuse_float_groups(model.clone()), quantized, config, held_out[0] if held_out else None)
        report.latency.append(check)
        if check.ratio > 1.0 and report.quantized_ops:
            report.warnings.append(
                f"the int8 model is slower than fp32 ({check.int8_ms:.3f} ms vs {check.fp32_ms:.3f} ms, ratio {check.ratio:.2f}); "
                "try --optimize-for latency"
            )
    for warning in report.warnings:
        logger.warning(warning)
    quantized.metadata_props["onnxopt.quantization"] = f"{config.mode};method={report.method}"
    report.seconds = time.perf_counter() - started
    return QuantizeResult(quantized, report)


def _check_excluded_nodes(named: Model, prepared: Model, config: QuantConfig, report: QuantReport) -> None:
    """Every excluded name must be a node of the input (`named`) or of the prepared model, which the report names;
    one the preparation fused away is reported."""
    given, kept = _node_names(named), _node_names(prepared)
    unknown = [name for name in config.exclude_nodes if name not in given and name not in kept]
    if unknown:
        raise OnnxoptError(f"exclude_nodes (--exclude-nodes): the model has no node named {', '.join(map(repr, unknown))}; "
                           "give names as the model file or onnxopt's quantization report spells them")
    report.warnings += [f"excluded node {name!r} was fused into another node while preparing the model, which is "
                        "quantized unless excluded by its own name" for name in config.exclude_nodes if name not in kept]


def _node_names(model: Model) -> set[str]:
    return {node.name for graph in model.graph.all_graphs() for node in graph}


def prepare(model: Model, config: QuantConfig, report: QuantReport) -> tuple[Model, QuantConfig]:
    """Opset fit for QDQ, fold/clean-up/fuse, unique node names and inferred types (in place where possible)."""
    from onnxopt.pipeline import convert_opset, optimize

    needed = 11 if config.mode == "dynamic" else (PER_CHANNEL_OPSET if config.per_channel else 10)
    if model.opset < needed:
        old = model.opset
        try:
            model = convert_opset(model, max(needed, PER_CHANNEL_OPSET))
            report.notes.append(f"opset upgraded from {old} to {model.opset} with onnx.version_converter "
                                f"(per-channel DequantizeLinear needs opset {PER_CHANNEL_OPSET})")
        except OnnxoptError as exc:
            if old < 10 or config.mode == "dynamic":
                raise OnnxoptError(f"the model's opset {old} is too old to quantize and converting it failed: {exc}") from None
            config = config.replace(per_channel=False)
            report.notes.append(f"per-tensor weights: opset {old} has no per-channel DequantizeLinear and "
                                f"conversion to opset {PER_CHANNEL_OPSET} failed ({exc})")
    if config.prepare:
        from onnxopt.passmanager import group_members

        import onnxopt.passes  # noqa: F401  (registers the passes)

        passes = [*QDQ_CANONICAL, *(p for g in PREPARE_GROUPS for p in group_members(g) if p not in NOT_QDQ_FRIENDLY)]
        model = optimize(model, passes, inplace=True).model
    name_nodes(model)
    infer_shapes(model)
    return model, config


def fuse_float_groups(model: Model) -> Model:
    """Run FLOAT_GROUP_PASSES on a model, in place (dynamic quantization, and the float reference of the latency
    check, which then has the fusions its float groups get)."""
    from onnxopt.passmanager import PassContext, PassManager

    return PassManager(list(FLOAT_GROUP_PASSES), PassContext()).run(model).model


def name_nodes(model: Model) -> None:
    """Give every node a unique name (plans, reports and profiles refer to nodes by name)."""
    seen: set[str] = set()
    for graph in model.graph.all_graphs():
        for node in graph:
            if not node.name or node.name in seen:
                node.name = graph.unique_name(node.op_type)
            seen.add(node.name)


def _describe(
    report: QuantReport, model: Model, config: QuantConfig, keep_float: frozenset[str],
    ranges: Mapping[str, tuple[float, float]] | None, aliases: dict[str, str],
) -> None:
    ops: list[str]
    if config.mode == "static":
        from onnxopt.quantization.plan import activation_qparams

        plan = build_plan(model, config, keep_float)
        params = activation_qparams(plan, dict(ranges or {}), config, model, aliases)
        report.tensors = tensor_records(plan, params, ranges or {}, config, aliases)
        ops = [plan.op_types[name] for name in plan.specs]
        report.absorbed = list(plan.absorbed)
        report.weights = sum(len(spec.weights) for spec in plan.specs.values())
        kept = dict(plan.kept_float)
    else:
        nodes, kept = plan_dynamic(model, config, keep_float)
        by_name = {n.name: n.op_type for g in model.graph.all_graphs() for n in g}
        ops = [by_name[n] for n in nodes]
        report.weights = len(nodes)
    searched = {n: "kept float by the accuracy search (sensitive)" for step in report.sqnr_steps for n in step.nodes}
    searched.update({n: "kept float by the latency search (int8 did not pay)" for step in report.latency_steps for n in step.nodes})
    for name in keep_float:
        kept[name] = searched.get(name, "kept float")
    report.quantized_ops = op_counts(ops)
    report.kept_float = {n: r for n, r in kept.items() if not r.startswith("no quantization rule")}


def observer_factory(config: QuantConfig) -> Callable[[], Observer]:
    """Observers for the calibration method that know the activations' grid: entropy and MSE weigh rounding
    against clipping on the steps the final range gets; histograms are symmetric when the activations are."""
    grid = {"dtype": config.activation_type, "symmetric": config.symmetric_activations,
            "reduce_range": config.reduce_range}
    options = {"entropy": grid, "mse": grid, "percentile": {"symmetric": config.symmetric_activations}}
    return lambda: make_observer(config.method, **options.get(config.method, {}))


class _Samples:
    """Calibration samples then held-out ones from one lazy stream; without spare samples, the last
    calibration samples serve as held-out (kept in a bounded buffer, so memory stays constant)."""

    def __init__(self, source: Source, model: Model, config: QuantConfig, preprocess: Any) -> None:
        self.stream: Iterator[dict[str, np.ndarray]] = iter(load_samples(source, input_specs(model), None, preprocess))
        self.holdout = config.held_out_samples
        self.tail: deque[dict[str, np.ndarray]] = deque(maxlen=self.holdout)
        counted = count_samples(source)
        self.limit = config.samples
        if self.limit is None and counted is not None and counted > 2 * self.holdout:
            self.limit = counted - self.holdout  # all samples: keep the last few aside for the accuracy check
        self.total = counted if self.limit is None or counted is None else min(counted, self.limit)
        if counted is None:
            self.total = self.limit

    def calibration(self) -> Iterable[dict[str, np.ndarray]]:
        """Up to `samples` samples, remembering the last `holdout` of them."""
        for count, sample in enumerate(self.stream, 1):
            self.tail.append(sample)
            yield sample
            if self.limit is not None and count >= self.limit:
                return

    def held_out(self) -> tuple[list[dict[str, np.ndarray]], bool]:
        """The next `holdout` samples, else the last calibration ones (True: they overlap calibration)."""
        extra = list(islice(self.stream, self.holdout))
        if extra or not self.tail:
            return extra, False
        return list(self.tail), True
