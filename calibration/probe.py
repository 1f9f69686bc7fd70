"""The calibration probe: one ONNX Runtime session over the model with every observed tensor as an extra output.

A float32 tensor watched by a min-max observer is also reduced inside the graph (ReduceMin, ReduceMax and a
ReduceSum that is finite only when the tensor holds no NaN or infinity), so a run hands back three scalars for
it instead of a copy of the whole tensor; the tensor itself is fetched only when those scalars cannot stand for
it (NaN, infinity or an outlier), exactly as the observer would have seen it.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

from onnxopt.calibration.observers import MinMaxObserver, Observer
from onnxopt.errors import DataError, ModelLoadError, ort_failure
from onnxopt.ir import Model, Node, Value, infer_types, serialize

REDUCTIONS = ("ReduceMin", "ReduceMax", "ReduceSum")


class Probe:
    """Runs samples through the model and updates the observer of every observed tensor (inputs included)."""

    def __init__(self, model: Model, observers: Mapping[str, Observer], threads: int = 0) -> None:
        inputs = {v.name for v in model.graph.inputs}
        self.observers = observers
        self.fed = [name for name in observers if name in inputs]
        outputs = [name for name in observers if name not in inputs]
        probe, self.reduced = _probe_model(model, outputs, observers)  # tensor → its (min, max, sum) outputs
        self.fetched = [name for name in outputs if name not in self.reduced]  # tensors copied out whole
        self.session = _session(probe, threads)

    def observe(self, sample: Mapping[str, np.ndarray], where: str = "sample") -> None:
        """Run one sample and fold every observed tensor of it into its observer (`where` names the sample in
        the DataError raised when onnxruntime cannot run it)."""
        feeds = dict(sample)
        fetch = self.fetched + [name for names in self.reduced.values() for name in names]
        results = self._run(fetch, feeds, where)
        arrays = dict(zip(self.fetched, results))
        scalars = iter(results[len(self.fetched):])
        doubtful = [name for name, lo, hi, total in zip(self.reduced, scalars, scalars, scalars)
                    if not _fold(self.observers[name], float(lo), float(hi), float(total))]
        if doubtful:
            arrays.update(zip(doubtful, self._run(doubtful, feeds, where)))
            for name in doubtful:  # it may well hold such values again: fetch it whole from now on
                del self.reduced[name]
                self.fetched.append(name)
        for name, array in arrays.items():
            observe_array(self.observers[name], array)
        for name in self.fed:
            observe_array(self.observers[name], sample[name])

    def _run(self, fetch: list[str], feeds: dict[str, np.ndarray], where: str) -> list[np.ndarray]:
        if not fetch:
            return []
        try:
            return self.session.run(fetch, feeds)
        except Exception as exc:  # onnxruntime raises its own exception types for bad feeds
            raise DataError(f"{where}: onnxruntime could not run it: {ort_failure(exc)}") from None


def observe_array(observer: Observer, array: np.ndarray) -> None:
    """Update an observer; a min-max observer gets just the batch's min and max when both are finite and
    within its outlier limit (the same state, without its float64 pass over every value)."""
    if isinstance(observer, MinMaxObserver) and array.size and array.dtype.kind == "f":
        lo, hi = float(array.min()), float(array.max())
        if math.isfinite(lo) and math.isfinite(hi) and _inside(observer, lo, hi):
            observer.update_extremes(lo, hi)
            return
    observer.update(array)


def _fold(observer: MinMaxObserver, lo: float, hi: float, total: float) -> bool:
    """Fold a tensor's in-graph min and max into its observer; False when the tensor itself must decide: its sum
    is not finite (a NaN, whose place in ORT's reduction decides what min and max say, or an infinity) or an
    extreme lies beyond the outlier limit."""
    if not math.isfinite(total):
        return False
    if lo > hi:  # an empty tensor: nothing to observe
        return True
    if not _inside(observer, lo, hi):
        return False
    observer.update_extremes(lo, hi)
    return True


def _inside(observer: MinMaxObserver, lo: float, hi: float) -> bool:
    limit = observer.outlier_limit
    return limit is None or max(-lo, hi) <= limit


def _probe_model(
    model: Model, outputs: Sequence[str], observers: Mapping[str, Observer]
) -> tuple[Model, dict[str, tuple[str, str, str]]]:
    """A copy of the model with `outputs` as graph outputs, and the names of the (min, max, sum) outputs added for
    each float32 tensor that a min-max observer watches (types are inferred when some are not recorded)."""
    probe = model.clone()
    graph = probe.graph
    by_name = {out.name: out for node in graph for out in node.outputs}
    by_name.update(graph.initializers)
    present = {v.name for v in graph.outputs}
    missing = [name for name in outputs if name not in by_name]
    if missing:
        raise DataError(f"cannot observe {missing[:3]}: no such tensor in the model")
    untyped = any(by_name[name].type is None for name in outputs)
    inferred = infer_types(probe) if untyped else {}
    scalar = helper.make_tensor_type_proto(TensorProto.FLOAT, [])
    reduced: dict[str, tuple[str, str, str]] = {}
    for name in outputs:
        value = by_name[name]
        known = value.type or inferred.get(value)
        value.type = known or helper.make_tensor_type_proto(TensorProto.FLOAT, None)
        is_float = known is not None and known.tensor_type.elem_type == TensorProto.FLOAT
        if name not in present:
            graph.add_output(value)
        if is_float and isinstance(observers[name], MinMaxObserver):
            stats = [Value(type=scalar) for _ in REDUCTIONS]
            graph.append([Node(op, [value], [out], {"keepdims": 0}) for op, out in zip(REDUCTIONS, stats)])
            for out in stats:
                graph.add_output(out)
            reduced[name] = (stats[0].name, stats[1].name, stats[2].name)
    return probe, reduced


def _session(probe: Model, threads: int) -> ort.InferenceSession:
    """A CPU session with basic optimizations only (no fusion removes an observed tensor: they are graph outputs)
    and no spinning: between runs the caller loads the next sample, and spinning workers would take its cores."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.intra_op_num_threads = threads
    options.log_severity_level = 4  # a failing run raises with ORT's message; its error log would only repeat it
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(serialize(probe), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT's errors: an op it does not know (a custom op without its library), say
        raise ModelLoadError(f"calibration runs the model in onnxruntime, which cannot load it: {ort_failure(exc)}") from None
