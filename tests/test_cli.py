"""The command line: real subprocesses for the entry point, in-process main() for the rest."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import onnx
import pytest

from onnxopt.cli import main
from onnxopt.testing import assert_same_outputs

TINY = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[2, 4] x) => (float[2, 4] y) { t = Identity(x)  y = Relu(t) }
"""


@pytest.fixture
def tiny_path(tmp_path):
    path = tmp_path / "tiny.onnx"
    onnx.save(onnx.parser.parse_model(TINY), path)
    return str(path)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "onnxopt", *args], capture_output=True, text=True, timeout=120)


def test_console_script_optimizes(tmp_path, resnet50_path):
    out = tmp_path / "r50.onnx"
    exe = shutil.which("onnxopt") or pytest.skip("console script not on PATH")
    proc = subprocess.run([exe, "optimize", resnet50_path, "-o", str(out), "--stats"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "runs" in proc.stdout and "nodes" in proc.stdout
    onnx.checker.check_model(onnx.load(out), full_check=True)
    assert_same_outputs(resnet50_path, str(out))


@pytest.mark.parametrize(
    "args, message",
    [
        (["optimize", "{missing}", "-o", "{out}"], "no such file"),
        (["optimize", "{dir}", "-o", "{out}"], "is a directory"),
        (["optimize", "{tiny}", "-o", "{out}", "--passes", "fold,nope"], "unknown pass 'nope'"),
        (["optimize", "{tiny}", "-o", "{nodir}"], "does not exist"),
        (["inspect", "{missing}"], "no such file"),
    ],
)
def test_user_errors_are_one_line_exit_2_and_write_nothing(tmp_path, tiny_path, capsys, args, message):
    names = {
        "missing": str(tmp_path / "missing.onnx"), "out": str(tmp_path / "out.onnx"), "dir": str(tmp_path),
        "tiny": tiny_path, "nodir": str(tmp_path / "no" / "such" / "out.onnx"),
    }
    before = set(os.listdir(tmp_path))
    code = main([a.format(**names) for a in args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert set(os.listdir(tmp_path)) == before


def test_subprocess_error_has_no_traceback(tmp_path):
    proc = run_cli("optimize", str(tmp_path / "x.onnx"), "-o", str(tmp_path / "y.onnx"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("onnxopt: error:") and "Traceback" not in proc.stderr


def test_output_equal_to_input_is_replaced_atomically(tiny_path, tmp_path):
    assert main(["optimize", tiny_path, "-o", tiny_path, "--passes", "onnxoptimizer"]) == 0
    model = onnx.load(tiny_path)
    assert [n.op_type for n in model.graph.node] == ["Relu"]
    assert [p for p in os.listdir(tmp_path) if p.startswith(".onnxopt-")] == []


def test_input_is_never_modified(tiny_path, tmp_path):
    before = open(tiny_path, "rb").read()
    assert main(["optimize", tiny_path, "-o", str(tmp_path / "o.onnx"), "--passes", "onnxoptimizer"]) == 0
    assert open(tiny_path, "rb").read() == before


def test_passes_lists_groups_and_descriptions(capsys):
    assert main(["passes"]) == 0
    out = capsys.readouterr().out
    for word in ("fold", "cleanup", "fuse", "dce", "onnxoptimizer:<pass>"):
        assert word in out


def test_inspect_shows_interface_ops_and_graph_export(resnet50_path, tmp_path, capsys):
    dot = tmp_path / "g.dot"
    graphml = tmp_path / "g.graphml"
    assert main(["inspect", resnet50_path, "--graph", str(dot)]) == 0
    out = capsys.readouterr().out
    assert "gpu_0/data_0: float32[1, 3, 224, 224]" in out and "Conv" in out and "ai.onnx 9" in out
    assert dot.read_text().startswith("digraph")
    assert main(["inspect", resnet50_path, "--graph", str(graphml)]) == 0
    import networkx as nx

    assert nx.read_graphml(graphml).number_of_nodes() > 400


def test_optimize_records_provenance(tiny_path, tmp_path, capsys):
    out = tmp_path / "o.onnx"
    assert main(["optimize", tiny_path, "-o", str(out), "--passes", "onnxoptimizer"]) == 0
    props = {p.key: p.value for p in onnx.load(out).metadata_props}
    assert props["onnxopt.portability"] == "standard"
    assert props["onnxopt.pipeline"].startswith("onnxoptimizer")
    assert main(["inspect", str(out)]) == 0
    assert "portability standard" in capsys.readouterr().out


def test_optimize_for_ort_cpu_labels_the_blocked_layout(resnet50_path, tmp_path, capsys):
    out = tmp_path / "o.onnx"
    assert main(["optimize", resnet50_path, "-o", str(out), "--target", "ort-cpu", "--verify"]) == 0
    assert main(["inspect", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "verified" in shown and "portability onnxruntime-cpu" in shown and "com.microsoft.nchwc::Conv" in shown


def test_bench_writes_reports_and_flags_unavailable_provider(tiny_path, tmp_path, capsys):
    report = tmp_path / "r.json"
    assert main(["bench", tiny_path, tiny_path, "--runs", "5", "--warmup", "1", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "median ms" in out and "baseline" in out
    import json

    assert len(json.loads(report.read_text())["results"]) == 2
    assert main(["bench", tiny_path, "--providers", "tensorrt"]) == 2
    err = capsys.readouterr().err
    assert "not available" in err and err.count("\n") == 1


def test_optimize_report_holds_benchmark_and_pass_statistics(tiny_path, tmp_path):
    import json

    report = tmp_path / "opt.json"
    assert main(["optimize", tiny_path, "-o", str(tmp_path / "o.onnx"), "--report", str(report), "-q"]) == 0
    doc = json.loads(report.read_text())
    assert [m["name"] for m in doc["models"]] == ["input", "output"]
    assert doc["results"][1]["outputs"]["ok"]
    section = doc["sections"][0]
    assert section["title"] == "Optimization passes" and "eliminate_nop" in section["data"]["passes"]


def _external_weights_model(path) -> None:
    """y = x @ w with a 256 KiB w kept in `<path>.data`, as torch's dynamo exporter writes its models."""
    import numpy as np

    model = onnx.parser.parse_model("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2, 256] x) => (float[2, 256] y) { t = Identity(x)  y = MatMul(t, w) }
    """)
    weight = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)
    model.graph.initializer.append(onnx.numpy_helper.from_array(weight, "w"))
    onnx.save(model, path, save_as_external_data=True, location=os.path.basename(path) + ".data", size_threshold=0)


def _sizes(line: str) -> tuple[float, float]:
    import re

    before, after = re.search(r"size ([\d.]+) MB → ([\d.]+) MB", line).groups()
    return float(before), float(after)


def test_sizes_count_the_weights_data_files(tmp_path, tiny_path, capsys):
    from onnxopt.bench import benchmark

    source = tmp_path / "m.onnx"
    _external_weights_model(source)
    for extra, out in ([], "o.onnx"), (["--target-opset", "18"], "c.onnx"):
        assert main(["optimize", str(source), "-o", str(tmp_path / out), *extra]) == 0
        assert _sizes(capsys.readouterr().out) == (0.26, 0.26)
        assert (tmp_path / f"{out}.data").is_file()  # the input's choice of a data file is kept, converted or not
    shutil.copy(tmp_path / "o.onnx.data", tmp_path / "t.onnx.data")  # a data file the new t.onnx does not read
    assert main(["optimize", tiny_path, "-o", str(tmp_path / "t.onnx")]) == 0
    assert _sizes(capsys.readouterr().out)[1] < 0.01
    result = benchmark([str(source)], runs=1, warmup=0, progress=False)
    assert result.models[0].file_size == os.path.getsize(source) + os.path.getsize(f"{source}.data")


def test_a_reader_that_leaves_early_is_no_error(monkeypatch, capsys):
    # `onnxopt passes | head -1`: the pipe's reader is gone before onnxopt has printed everything
    read, write = os.pipe()
    os.close(read)
    stdout = os.fdopen(write, "w", buffering=1)  # line-buffered: the first line already meets the closed pipe
    monkeypatch.setattr(sys, "stdout", stdout)
    assert main(["passes"]) == 141
    stdout.write("more\n")  # what Python's exit flush would do: it now goes nowhere, without an error
    stdout.close()
    assert capsys.readouterr().err == ""
