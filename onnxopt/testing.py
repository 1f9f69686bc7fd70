"""Helpers for tests and users: build models from ONNX text, compare outputs in ORT, count ops."""
from __future__ import annotations

from collections import Counter
from typing import Mapping

import numpy as np
import onnx
import onnxruntime as ort

from onnxopt.ir import Model, from_proto, serialize

_ORT_TO_NUMPY = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int16)": np.int16, "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8, "tensor(uint16)": np.uint16, "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64, "tensor(bool)": np.bool_,
}


def model_from_text(text: str, initializers: Mapping[str, np.ndarray] | None = None) -> Model:
    """Parse ONNX textual syntax (onnx.parser) into an IR Model; `initializers` adds weights by name."""
    proto = onnx.parser.parse_model(text)
    for name, array in (initializers or {}).items():
        proto.graph.initializer.append(onnx.numpy_helper.from_array(np.asarray(array), name))
    return from_proto(proto)


def op_histogram(model: Model) -> Counter:
    """Count of nodes per op type (domain-qualified for non-default domains), subgraphs included."""
    return Counter(
        f"{node.domain}::{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type
        for graph in model.graph.all_graphs()
        for node in graph
    )


def make_session(model: Model | bytes | str, optimize: bool = False, threads: int = 1) -> ort.InferenceSession:
    """A CPU ONNX Runtime session; optimize=False disables ORT's own graph rewrites (so they cannot hide ours)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 4  # a failing run raises with ORT's message; its error log would only repeat it
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    source = serialize(model) if isinstance(model, Model) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def random_inputs(session: ort.InferenceSession, seed: int = 0, dims: Mapping[str, int] | None = None) -> dict:
    """Random feeds for every session input; symbolic or unknown dims take `dims[name]` or 1."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for info in session.get_inputs():
        shape = [d if isinstance(d, int) and d >= 0 else (dims or {}).get(str(d), 1) for d in info.shape]
        dtype = _ORT_TO_NUMPY.get(info.type)
        if dtype is None:
            raise TypeError(f"input {info.name!r} has type {info.type}; give its data explicitly")
        if np.issubdtype(dtype, np.floating):
            feeds[info.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype is np.bool_:
            feeds[info.name] = rng.integers(0, 2, shape).astype(np.bool_)
        else:
            feeds[info.name] = rng.integers(0, 4, shape).astype(dtype)
    return feeds


def run(model: Model | bytes | str, feeds: Mapping[str, np.ndarray] | None = None, optimize: bool = False) -> dict:
    """Run a model on CPU (random inputs when feeds is None); returns {output name: array}."""
    session = make_session(model, optimize=optimize)
    feeds = dict(feeds) if feeds is not None else random_inputs(session)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def assert_same_outputs(
    expected: Model | bytes | str,
    actual: Model | bytes | str,
    feeds: Mapping[str, np.ndarray] | None = None,
    rtol: float = 1e-3,
    atol: float = 1e-4,
) -> None:
    """Both models give the same outputs on the same inputs; atol is scaled by max|expected| per output."""
    session = make_session(expected)
    feeds = dict(feeds) if feeds is not None else random_inputs(session)
    want = run(expected, feeds)
    got = run(actual, feeds)
    assert list(want) == list(got), f"outputs differ: {list(want)} vs {list(got)}"
    for name, ref in want.items():
        out = got[name]
        assert out.shape == ref.shape and out.dtype == ref.dtype, f"{name}: {out.dtype}{out.shape} vs {ref.dtype}{ref.shape}"
        if np.issubdtype(ref.dtype, np.floating):
            scale = float(np.max(np.abs(ref[np.isfinite(ref)]), initial=1.0))
            np.testing.assert_allclose(out, ref, rtol=rtol, atol=atol * scale, err_msg=name)
        else:
            np.testing.assert_array_equal(out, ref, err_msg=name)
