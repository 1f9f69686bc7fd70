"""IR overhead: onnxopt.ir.load + save against onnx.load + onnx.save of the same file, time and peak memory.

Time: light_densenet121 (the onnx wheel's copy) and a generated 50,000-node model; each round runs both
pipelines back to back, alternating which goes first, and the ratio of the medians is reported (the
machine may be noisy and shared: trust the ratios, not the absolute times). Graph.clone() on the
50,000-node model is timed too (every pass clones before it runs, for rollback).
Memory: a generated model with large weights (300 MB by default); each pipeline runs in a fresh
subprocess that reports its peak RSS (VmHWM, or ru_maxrss off Linux) and the rise above its RSS after the imports.
Targets: time ratio <= 1.5, peak-memory ratio <= 1.3.

Run: python benchmarks/bench_ir.py [--rounds N] [--weights-mb M] [--markdown]
"""
from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import onnxopt.ir as ir

TIME_LIMIT = 1.5
MEMORY_LIMIT = 1.3
DENSENET = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light", "light_densenet121.onnx")


# ---- models ------------------------------------------------------------------------------------------
def chain_model(num_nodes: int) -> onnx.ModelProto:
    """A chain of elementwise ops on a [4, 4] tensor: a fifth carry attributes, two fifths a small weight."""
    nodes, weights = [], []
    x = "x"
    for i in range(num_nodes):
        out, kind = f"t{i}", i % 5
        if kind in (0, 1):
            weight = f"w{i}"
            weights.append(numpy_helper.from_array(np.full((4,), 0.5 + i % 7, np.float32), weight))
            nodes.append(helper.make_node("Add" if kind == 0 else "Mul", [x, weight], [out], name=f"n{i}"))
        elif kind == 2:
            nodes.append(helper.make_node("LeakyRelu", [x], [out], name=f"n{i}", alpha=0.01))
        elif kind == 3:
            nodes.append(helper.make_node("Transpose", [x], [out], name=f"n{i}", perm=[1, 0]))
        else:
            nodes.append(helper.make_node("Relu", [x], [out], name=f"n{i}"))
        x = out
    graph = helper.make_graph(
        nodes, "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 4])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [4, 4])],
        weights,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def heavy_model(megabytes: int, tensors: int = 12) -> onnx.ModelProto:
    """MatMul chain whose weights add up to about `megabytes` MB of float32, all inline."""
    side = int((megabytes * 2**20 / tensors / 4) ** 0.5)
    rng = np.random.default_rng(0)
    nodes, weights, x = [], [], "x"
    for i in range(tensors):
        weights.append(numpy_helper.from_array(rng.standard_normal((side, side), dtype=np.float32), f"w{i}"))
        nodes.append(helper.make_node("MatMul", [x, f"w{i}"], [f"t{i}"], name=f"mm{i}"))
        x = f"t{i}"
    graph = helper.make_graph(
        nodes, "heavy",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, side])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, side])],
        weights,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


# ---- pipelines -----------------------------------------------------------------------------------------
def onnx_roundtrip(src: str, dst: str) -> tuple[float, float]:
    """The baseline: onnx.load + onnx.save; (load s, save s)."""
    start = time.perf_counter()
    model = onnx.load(src)
    loaded = time.perf_counter()
    onnx.save(model, dst)
    return loaded - start, time.perf_counter() - loaded


def ir_roundtrip(src: str, dst: str) -> tuple[float, float]:
    """Through the IR: onnxopt.ir.load + onnxopt.ir.save; (load s, save s)."""
    start = time.perf_counter()
    model = ir.load(src)
    loaded = time.perf_counter()
    ir.save(model, dst)
    return loaded - start, time.perf_counter() - loaded


PIPELINES: dict[str, Callable[[str, str], tuple[float, float]]] = {"onnx": onnx_roundtrip, "ir": ir_roundtrip}


# ---- measurements --------------------------------------------------------------------------------------
def time_pair(src: str, workdir: str, rounds: int) -> dict[str, float]:
    """Medians (s) of load, save and load+save for onnx and the IR, interleaved, alternating which runs
    first in each round; and of the garbage collection that frees the IR's model afterwards.

    The IR's objects reference each other (values and their producers), so a dropped model is freed by
    the cyclic collector, not at once like onnx's ModelProto. Every run starts after a full collection,
    so neither pipeline pays for the other's garbage; what freeing the IR model costs is reported apart.
    """
    samples: dict[str, list[float]] = {}
    for name in PIPELINES:  # warm-up: imports, page cache, allocator
        PIPELINES[name](src, os.path.join(workdir, f"warm_{name}.onnx"))
    for r in range(rounds):
        order = ("onnx", "ir") if r % 2 == 0 else ("ir", "onnx")
        for name in order:
            gc.collect()
            load_s, save_s = PIPELINES[name](src, os.path.join(workdir, f"out_{name}.onnx"))
            for key, value in (("load", load_s), ("save", save_s), ("total", load_s + save_s)):
                samples.setdefault(f"{name} {key}", []).append(value)
            if name == "ir":
                start = time.perf_counter()
                gc.collect()
                samples.setdefault("ir free", []).append(time.perf_counter() - start)
    return {key: statistics.median(values) for key, values in samples.items()}


def time_clone(src: str, rounds: int) -> tuple[float, float, int]:
    """Medians (s) of Graph.clone() on the loaded model and of ModelProto.CopyFrom (onnx's way to take a
    snapshot), interleaved; and the node count."""
    model, proto = ir.load(src), onnx.load(src)
    ours, theirs = [], []
    for _ in range(rounds):
        gc.collect()
        start = time.perf_counter()
        copy = model.graph.clone()
        ours.append(time.perf_counter() - start)
        del copy
        gc.collect()
        start = time.perf_counter()
        onnx.ModelProto().CopyFrom(proto)
        theirs.append(time.perf_counter() - start)
    return statistics.median(ours), statistics.median(theirs), len(model.graph)


def peak_rss(pipeline: str, src: str, dst: str) -> tuple[int, int]:
    """(peak RSS, rise over the post-import RSS) in bytes of one load+save in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", pipeline, src, dst], check=True, capture_output=True, text=True
    ).stdout.split()
    return int(out[0]), int(out[1])


def _high_water_rss() -> int:
    """Peak RSS of this process in bytes: VmHWM on Linux (ru_maxrss there is inherited from the parent)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _child(pipeline: str, src: str, dst: str) -> None:
    # both pipelines import the same modules (above), so their baselines match
    base = _high_water_rss()
    PIPELINES[pipeline](src, dst)
    peak = _high_water_rss()
    print(peak, peak - base)


# ---- report --------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Print the table (Markdown with --markdown); exit 1 when a ratio misses its target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="timed rounds per model (median reported)")
    parser.add_argument("--nodes", type=int, default=50_000, help="nodes in the generated chain model")
    parser.add_argument("--weights-mb", type=int, default=300, help="weights of the memory model, in MB")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--child", nargs=3, metavar=("PIPELINE", "SRC", "DST"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child)
        return 0

    rows: list[tuple[str, str, str, str, float, float | None]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench_ir_") as tmp:
        chain = os.path.join(tmp, "chain.onnx")
        onnx.save(chain_model(args.nodes), chain)
        heavy = os.path.join(tmp, "heavy.onnx")
        onnx.save(heavy_model(args.weights_mb), heavy)
        for label, path in (("light_densenet121", DENSENET), (f"chain, {args.nodes:,} nodes", chain)):
            t = time_pair(path, tmp, args.rounds)
            for key, measure, limit in (("total", "load+save time", TIME_LIMIT), ("load", "load time", None),
                                        ("save", "save time", None)):
                base, ours = t[f"onnx {key}"], t[f"ir {key}"]
                rows.append((label, measure, _ms(base), _ms(ours), ours / base, limit))
            notes.append(f"{label}: gc.collect() freeing the IR model afterwards {_ms(t['ir free'])} "
                         f"(not in the times above; onnx frees its ModelProto at once)")
        clone_s, copy_s, count = time_clone(chain, args.rounds)
        rows.append((f"chain, {count:,} nodes", "Graph.clone() vs ModelProto.CopyFrom", _ms(copy_s), _ms(clone_s),
                     clone_s / copy_s, None))
        results = {name: peak_rss(name, heavy, os.path.join(tmp, f"mem_{name}.onnx")) for name in PIPELINES}
        (base_peak, base_rise), (peak, rise) = results["onnx"], results["ir"]
        mb = f"{os.path.getsize(heavy) / 2**20:.0f} MB weights"
        rows.append((mb, "peak RSS, load+save", _mib(base_peak), _mib(peak), peak / base_peak, MEMORY_LIMIT))
        rows.append((mb, "RSS rise over imports", _mib(base_rise), _mib(rise), rise / base_rise, None))

    header = ("model", "measure", "onnx", "onnxopt.ir", "ratio", "target")
    table = [header] + [(m, k, b, o, f"{r:.2f}x", f"<= {t}x" if t else "") for m, k, b, o, r, t in rows]
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for row in table[1:]:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for row in table:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print()
    for note in notes:
        print(note)
    print(f"medians of {args.rounds} interleaved rounds; python {sys.version.split()[0]}, onnx {onnx.__version__}, "
          f"numpy {np.__version__}, {os.cpu_count()} CPUs")
    missed = [row for row in rows if row[5] is not None and row[4] > row[5]]
    return 1 if missed else 0


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def _mib(size: int) -> str:
    return f"{size / 2**20:.0f} MiB"


if __name__ == "__main__":
    sys.exit(main())
