"""The ONNX specification's node test cases as conformance checks for the folder and the default pipeline.

Two checks per case (onnx.backend.test.case.node.collect_testcases):
  fold      the case's inputs become initializers; the `fold` group must turn every output into a constant
            equal to the expected output (an output it declines to fold must still compute it in ORT);
  pipeline  the default pipeline runs with the inputs left as inputs; ORT must still give the expected outputs.
A case is skipped only where ONNX Runtime cannot run the original (SKIP) or gets the spec's answer wrong
itself while our result equals ORT's (ORT_DEVIATES); the reason is recorded.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import onnx
from onnx import ModelProto, TensorProto, numpy_helper

import onnxopt
from onnxopt.errors import ModelCheckError
from onnxopt.ir import from_proto, serialize
from onnxopt.testing import make_session

PASS, FAIL, SKIP, ORT_DEVIATES, UNFOLDED, NOT_APPLICABLE = "pass", "fail", "skip", "ort-deviates", "unfolded", "n/a"
STATUSES = (PASS, UNFOLDED, FAIL, SKIP, ORT_DEVIATES, NOT_APPLICABLE)


@dataclass
class Outcome:
    """The result of one check on one case."""

    case: str
    check: str  # "fold" or "pipeline"
    status: str  # one of STATUSES; UNFOLDED (fold only): left as nodes, which still compute the right values;
    # NOT_APPLICABLE: an input an initializer cannot hold, or a model onnxopt refuses on purpose (opset < 7)
    detail: str = ""
    seconds: float = 0.0


def load_cases() -> list:
    """Every node test case of the installed onnx, sorted by name (takes ~10 s: it builds the models)."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the generators overflow casts and divide by zero on purpose
        return sorted(collect_testcases(None), key=lambda c: c.name)


def sample(cases: Sequence, every: int = 20) -> list:
    """A fixed, deterministic sample: every `every`-th case by name."""
    return list(cases[::every])


# ---- comparing -------------------------------------------------------------------------------------------
def to_numpy(value: Any) -> Any:
    """Expected/actual values as numpy (TensorProtos decoded, scalars as 0-d arrays; lists and None kept)."""
    if isinstance(value, TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, (list, tuple)):
        return [to_numpy(v) for v in value]
    if value is None:
        return None
    return np.asarray(value)


def _rtol_for(dtype: np.dtype, rtol: float) -> float:
    """onnx's runner tolerance, widened to two units in the last place for types coarser than float32."""
    if dtype.kind == "f" and dtype.itemsize >= 4:
        return rtol
    try:
        import ml_dtypes

        mantissa = ml_dtypes.finfo(dtype).nmant
    except (ImportError, ValueError, TypeError):
        mantissa = np.finfo(dtype).nmant
    return max(rtol, 2.0 ** (1 - mantissa))


def _is_float(dtype: np.dtype) -> bool:
    if dtype.kind in "fc":
        return True
    try:
        import ml_dtypes

        ml_dtypes.finfo(dtype)
        return True
    except (ImportError, ValueError, TypeError):
        return False


def difference(expected: Any, actual: Any, rtol: float = 1e-3, atol: float = 1e-7) -> str | None:
    """None when `actual` matches `expected` (onnx's backend-test tolerances), else what differs."""
    expected, actual = to_numpy(expected), to_numpy(actual)
    if expected is None or actual is None:
        return None if expected is None and actual is None else f"expected {expected!r}, got {actual!r}"
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"expected a sequence of {len(expected)}, got {type(actual).__name__}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            reason = difference(e, a, rtol, atol)
            if reason:
                return f"[{i}] {reason}"
        return None
    if isinstance(actual, list):
        return "expected a tensor, got a sequence"
    if expected.shape != actual.shape:
        return f"shape {list(actual.shape)} instead of {list(expected.shape)}"
    if expected.dtype == object or expected.dtype.kind in "USO":
        return None if np.array_equal(expected, actual.astype(expected.dtype)) else "strings differ"
    if expected.dtype != actual.dtype:
        return f"dtype {actual.dtype} instead of {expected.dtype}"
    if not _is_float(expected.dtype):
        if np.array_equal(expected, actual):
            return None
        where = np.argwhere(expected != actual)[0]
        return f"values differ at {tuple(int(i) for i in where)}: {actual[tuple(where)]} vs {expected[tuple(where)]}"
    rtol = _rtol_for(expected.dtype, rtol)
    e, a = expected.astype(np.float64), actual.astype(np.float64)
    if np.allclose(a, e, rtol=rtol, atol=atol, equal_nan=True):
        return None
    with np.errstate(invalid="ignore"):
        excess = np.abs(a - e) - (atol + rtol * np.abs(e))
    excess[np.isnan(excess)] = np.inf  # NaN against a number, or infinities of opposite signs
    excess[(a == e) | (np.isnan(a) & np.isnan(e))] = -np.inf  # equal, the same infinity included
    where = np.unravel_index(int(np.argmax(excess)), excess.shape)
    return f"{a[where]:.7g} instead of {e[where]:.7g} at {tuple(int(i) for i in where)} (rtol {rtol:g}, atol {atol:g})"


def _first_difference(expected: Sequence, actual: Sequence, names: Sequence[str], rtol: float, atol: float):
    for name, e, a in zip(names, expected, actual):
        reason = difference(e, a, rtol, atol)
        if reason:
            return f"output {name!r}: {reason}"
    return None


# ---- running ---------------------------------------------------------------------------------------------
def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:limit]}{'…' if len(text) > limit else ''}"


# Element types numpy has no native dtype for (ml_dtypes): ORT's Python API can neither take nor return them.
NON_NUMPY_TYPES = frozenset(t for t in TensorProto.DataType.values() if t >= TensorProto.BFLOAT16)


def _tensor_elem_type(info) -> int:
    return info.type.tensor_type.elem_type if info.type.HasField("tensor_type") else 0


def with_float_interface(model: ModelProto) -> tuple[ModelProto, dict[str, int]]:
    """The model with every bfloat16/float8/int4/... graph input and output as float32 behind a Cast.

    The Casts are exact for every value those types hold, so the outputs are the model's own. Returns the
    model and {output name: original element type} for the outputs that were widened.
    """
    result = ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    casts_in = []
    for info in graph.input:
        elem = _tensor_elem_type(info)
        if elem in NON_NUMPY_TYPES:
            wide = f"{info.name}__as_float"
            casts_in.append(onnx.helper.make_node("Cast", [wide], [info.name], to=elem))
            info.name = wide
            info.type.tensor_type.elem_type = TensorProto.FLOAT
    widened: dict[str, int] = {}
    for info in graph.output:
        elem = _tensor_elem_type(info)
        if elem in NON_NUMPY_TYPES:
            wide = f"{info.name}__as_float"
            graph.node.append(onnx.helper.make_node("Cast", [info.name], [wide], to=TensorProto.FLOAT))
            widened[wide] = elem
            info.name = wide
            info.type.tensor_type.elem_type = TensorProto.FLOAT
    for i, node in enumerate(casts_in):
        graph.node.insert(i, node)
    return result, widened


def run_ort(model: ModelProto | bytes, feeds: dict[str, Any]) -> list:
    """ORT's outputs (graph rewrites off) in graph-output order; raises whatever ORT raises."""
    proto = ModelProto.FromString(model) if isinstance(model, bytes) else model
    proto, widened = with_float_interface(proto)
    session = make_session(proto.SerializeToString())
    widened_inputs = {info.name for info in proto.graph.input if info.name.endswith("__as_float")}
    inputs = {}
    for name, value in feeds.items():
        value = to_numpy(value)
        if f"{name}__as_float" in widened_inputs:
            name, value = f"{name}__as_float", value.astype(np.float32)
        inputs[name] = value
    names = [o.name for o in session.get_outputs()]
    outputs = session.run(names, inputs)
    return [
        out.astype(onnx.helper.tensor_dtype_to_np_dtype(widened[name])) if name in widened else out
        for name, out in zip(names, outputs)
    ]


def _feeds(model: ModelProto, inputs: Sequence) -> dict[str, Any]:
    return {info.name: value for info, value in zip(model.graph.input, inputs)}


def constant_inputs_model(model: ModelProto, inputs: Sequence) -> ModelProto | str:
    """The model with the given inputs as initializers (dropped from the graph inputs from IR 4 on).

    Returns a reason string when an input is not a tensor (a sequence or optional cannot be an initializer).
    """
    result = ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    for info, value in zip(model.graph.input, inputs):
        if isinstance(value, TensorProto):
            tensor = TensorProto()
            tensor.CopyFrom(value)
        elif isinstance(value, (np.ndarray, np.generic)) and info.type.HasField("tensor_type"):
            tensor = numpy_helper.from_array(np.asarray(value))
        else:
            kind = info.type.WhichOneof("value") or "untyped"
            return f"input {info.name!r} is a {kind.replace('_type', '')}, which an initializer cannot hold"
        tensor.name = info.name
        graph.initializer.append(tensor)
    if model.ir_version >= 4:  # below IR 4 an initializer must also be listed as an input (and is a constant)
        del graph.input[: len(inputs)]
    return result


def check_fold(case) -> Outcome:
    """Inputs as initializers, then `fold`: every output must be a constant equal to the expected output."""
    start = time.perf_counter()
    outcome = _check_fold(case)
    outcome.seconds = time.perf_counter() - start
    return outcome


def _check_fold(case) -> Outcome:
    names = [o.name for o in case.model.graph.output]
    unfolded_ops: set[str] = set()
    for inputs, expected in case.data_sets:
        proto = constant_inputs_model(case.model, inputs)
        if isinstance(proto, str):
            return Outcome(case.name, "fold", NOT_APPLICABLE, proto)
        try:
            result = onnxopt.optimize(from_proto(proto), "fold").model
        except ModelCheckError as exc:  # a model onnxopt refuses on purpose (opset < 7)
            return Outcome(case.name, "fold", NOT_APPLICABLE, f"refused: {exc}")
        except Exception as exc:  # a crash of the folder is a failure, whatever it raised
            return Outcome(case.name, "fold", FAIL, f"fold raised {_one_line(exc)}")
        folded = []
        for value in result.graph.outputs:
            if value.const_value is not None:
                folded.append(value.const_value.numpy())
            else:
                folded.append(None)
                producer = value.producer()
                unfolded_ops.add(producer.op_type if producer is not None else f"input {value.name}")
        if all(v is not None for v in folded):
            actual, what = folded, "folded constant"
        else:  # not (entirely) folded: what is left must still compute the expected outputs
            what = "partly folded model"
            try:
                actual = run_ort(serialize(result), {})
            except Exception as exc:
                try:
                    run_ort(case.model, _feeds(case.model, inputs))
                except Exception as original_exc:
                    return Outcome(case.name, "fold", SKIP, f"ORT cannot run the original: {_one_line(original_exc)}")
                return Outcome(case.name, "fold", FAIL, f"the folded model no longer runs in ORT: {_one_line(exc)}")
        reason = _first_difference(expected, actual, names, case.rtol, case.atol)
        if reason:
            deviation = _ort_deviation(case, inputs, expected, actual, names)
            if deviation:
                return Outcome(case.name, "fold", ORT_DEVIATES, deviation)
            return Outcome(case.name, "fold", FAIL, f"{what} differs from the spec: {reason}")
    if unfolded_ops:
        return Outcome(case.name, "fold", UNFOLDED, f"left {', '.join(sorted(unfolded_ops))} unfolded")
    return Outcome(case.name, "fold", PASS)


def _ort_deviation(case, inputs: Sequence, expected: Sequence, actual: Sequence, names: Sequence[str]) -> str | None:
    """When ORT's own output for the original differs from the spec and equals `actual`: say so; else None."""
    try:
        reference = run_ort(case.model, _feeds(case.model, inputs))
    except Exception:
        return None
    ort_reason = _first_difference(expected, reference, names, case.rtol, case.atol)
    if ort_reason is None or _first_difference(reference, actual, names, case.rtol, case.atol) is not None:
        return None
    return f"ORT's own output for the original differs from the spec the same way: {ort_reason}"


def check_pipeline(case) -> Outcome:
    """The default pipeline with inputs left as inputs: ORT must still give the expected outputs."""
    start = time.perf_counter()
    outcome = _check_pipeline(case)
    outcome.seconds = time.perf_counter() - start
    return outcome


def _check_pipeline(case) -> Outcome:
    names = [o.name for o in case.model.graph.output]
    try:
        result = onnxopt.optimize(from_proto(case.model)).model
        optimized = serialize(result)
    except ModelCheckError as exc:
        return Outcome(case.name, "pipeline", NOT_APPLICABLE, f"refused: {exc}")
    except Exception as exc:
        return Outcome(case.name, "pipeline", FAIL, f"the pipeline raised {_one_line(exc)}")
    try:
        onnx.checker.check_model(case.model)
    except onnx.checker.ValidationError:
        pass  # the original already fails the checker; nothing to hold the result to
    else:
        try:
            onnx.checker.check_model(ModelProto.FromString(optimized))
        except onnx.checker.ValidationError as exc:
            return Outcome(case.name, "pipeline", FAIL, f"onnx.checker rejects the result: {_one_line(exc)}")
    for inputs, expected in case.data_sets:
        feeds = _feeds(case.model, inputs)
        try:
            reference = run_ort(case.model, feeds)
        except Exception as exc:
            return Outcome(case.name, "pipeline", SKIP, f"ORT cannot run the original: {_one_line(exc)}")
        try:
            actual = run_ort(optimized, feeds)
        except Exception as exc:
            return Outcome(case.name, "pipeline", FAIL, f"the optimized model no longer runs in ORT: {_one_line(exc)}")
        reason = _first_difference(expected, actual, names, case.rtol, case.atol)
        if reason is None:
            continue
        ort_reason = _first_difference(expected, reference, names, case.rtol, case.atol)
        if ort_reason is None:
            return Outcome(case.name, "pipeline", FAIL, f"optimized model differs from the spec: {reason}")
        if _first_difference(reference, actual, names, case.rtol, case.atol) is None:
            return Outcome(case.name, "pipeline", ORT_DEVIATES,
                           f"ORT's own output for the original differs from the spec the same way: {ort_reason}")
        return Outcome(case.name, "pipeline", FAIL, f"optimized model differs from the original in ORT: {reason}")
    return Outcome(case.name, "pipeline", PASS)


def check_case(case) -> list[Outcome]:
    """Both checks for one case."""
    return [check_fold(case), check_pipeline(case)]
