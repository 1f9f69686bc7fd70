"""Bad input: every mistake gives exit 2 and one or two lines on stderr naming it, and leaves no file behind.

Most cases run main() in-process (capfd also catches what native code prints); Ctrl-C runs a real subprocess.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from onnxopt.cli import main
from onnxopt.ir import load
from onnxopt.testing import assert_same_outputs, op_histogram

TINY = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[2, 4] x) => (float[2, 4] y) { t = Identity(x)  y = Relu(t) }
"""

MATMUL = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[2, 64] x) => (float[2, 64] y) { t = Identity(x)  y = MatMul(t, w) }
"""


def _matmul_model() -> onnx.ModelProto:
    model = onnx.parser.parse_model(MATMUL)
    weights = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    model.graph.initializer.append(numpy_helper.from_array(weights, "w"))
    return model


@pytest.fixture
def work(tmp_path):
    """A scratch directory holding tiny.onnx and matmul.onnx (with a 16 KB weight)."""
    onnx.save(onnx.parser.parse_model(TINY), tmp_path / "tiny.onnx")
    onnx.save(_matmul_model(), tmp_path / "matmul.onnx")
    return tmp_path


def _listing(directory) -> set[str]:
    return {os.path.relpath(os.path.join(root, name), directory)
            for root, dirs, files in os.walk(directory) for name in dirs + files}


def cli(capfd, *args) -> tuple[int, str, str]:
    """Run `onnxopt ARGS` in-process; returns (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    return code, out, err


def assert_user_error(code: int, err: str, *words: str) -> None:
    """Exit 2, one or two stderr lines starting `onnxopt: error:`, no traceback, and each of `words` said."""
    lines = err.strip().splitlines()
    assert code == 2, err
    assert 1 <= len(lines) <= 2, err
    assert lines[0].startswith("onnxopt: error: "), err
    assert "Traceback" not in err and "internal error" not in err, err
    for word in words:
        assert word in err, f"{word!r} not in {err!r}"


def assert_left_as_before(directory, before: set[str]) -> None:
    after = _listing(directory)
    assert after == before, f"left behind: {sorted(after - before)}; removed: {sorted(before - after)}"
    assert not [name for name in after if ".onnxopt-" in name]


def optimize_fails(capfd, work, model, *words: str, extra=()) -> None:
    """`optimize MODEL -o out.onnx` exits 2 naming `words` and writes nothing."""
    before = _listing(work)
    code, _, err = cli(capfd, "optimize", model, "-o", work / "out.onnx", *extra)
    assert_user_error(code, err, *words)
    assert_left_as_before(work, before)


# ---- the input file -------------------------------------------------------------------------------------
def test_nonexistent_path(capfd, work):
    optimize_fails(capfd, work, work / "missing.onnx", "missing.onnx", "no such file")


def test_directory_instead_of_file(capfd, work):
    (work / "models").mkdir()
    optimize_fails(capfd, work, work / "models", "is a directory")


def test_empty_file(capfd, work):
    (work / "empty.onnx").write_bytes(b"")
    optimize_fails(capfd, work, work / "empty.onnx", "empty.onnx", "is empty")


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_truncated_model(capfd, work, keep):
    data = (work / "matmul.onnx").read_bytes()
    (work / "cut.onnx").write_bytes(data[: int(len(data) * keep)])
    optimize_fails(capfd, work, work / "cut.onnx", "cut.onnx", "not an ONNX model")


def test_text_file_renamed_onnx(capfd, work):
    (work / "notes.onnx").write_text("resnet50 exported on monday\nsee the wiki for details\n")
    optimize_fails(capfd, work, work / "notes.onnx", "notes.onnx", "not an ONNX model")


@pytest.mark.parametrize("kind", ["tensor", "graph"])
def test_protobuf_that_is_not_a_model(capfd, work, kind):
    message = (numpy_helper.from_array(np.arange(6, dtype=np.float32), "t") if kind == "tensor"
               else onnx.parser.parse_model(TINY).graph)
    (work / f"{kind}.onnx").write_bytes(message.SerializeToString())
    optimize_fails(capfd, work, work / f"{kind}.onnx", f"{kind}.onnx", "not an ONNX model")


def _unknown_op_model(work):
    model = onnx.parser.parse_model(TINY)
    model.graph.node[1].op_type = "Relux"  # no such op in the default domain
    onnx.save(model, work / "unknown_op.onnx")
    return work / "unknown_op.onnx"


def test_model_failing_the_checker_stops_with_its_reason(capfd, work):
    optimize_fails(capfd, work, _unknown_op_model(work), "onnx.checker", "No Op registered for Relux", "--no-check")


def test_model_failing_the_checker_goes_through_with_no_check(capfd, work):
    code, _, err = cli(capfd, "optimize", _unknown_op_model(work), "-o", work / "out.onnx", "--no-check")
    assert code == 0, err
    result = onnx.load(work / "out.onnx")
    assert [node.op_type for node in result.graph.node] == ["Relux"]  # the Identity went, the unknown op stayed


# an exporter's rank guard: If(x.shape[1] == 1) squeezes axis 1, and the Gemm after it needs rank 2
GUARDED = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[N, T] x, float[K, 4] w, bool flag) => (float[N, 4] y) {
    y = If(flag) <
        then_branch = t () => (float[N, 4] a) { a = Gemm(x, w) },
        else_branch = e () => (float[N, 4] b) {
            s = Shape(x)
            i1 = Constant<value_int = 1>()
            one = Constant<value_int = 1>()
            d = Gather(s, i1)
            c = Equal(d, one)
            z = If(c) <
                then_branch = t2 () => (float[N] z1) { ax = Constant<value_ints = [1]>()  z1 = Squeeze(x, ax) },
                else_branch = e2 () => (float[N, T] z2) { z2 = Identity(x) }
            >
            b = Gemm(z, w)
        }
    >
}
"""


def test_input_shape_that_leaves_a_branch_unable_to_type_check(capfd, work):
    # with x=2,1 the else branch squeezes x to rank 1 and its Gemm can never run: ONNX Runtime would refuse the
    # folded model at load, so onnxopt says so instead of writing it
    onnx.save(onnx.parser.parse_model(GUARDED), work / "guarded.onnx")
    optimize_fails(capfd, work, work / "guarded.onnx", "--input-shape x=2,1", "Gemm node", "no longer type-checks",
                   extra=("--input-shape", "x=2,1"))


def test_input_shape_every_branch_accepts_goes_through(capfd, work):
    onnx.save(onnx.parser.parse_model(GUARDED), work / "guarded.onnx")
    code, _, err = cli(capfd, "optimize", work / "guarded.onnx", "-o", work / "out.onnx", "--input-shape", "x=2,3")
    assert code == 0, err
    result = load(work / "out.onnx")
    else_branch = result.graph.nodes[0].attrs["else_branch"]
    assert [node.op_type for node in else_branch] == ["Gemm"]  # the rank guard folded away
    rng = np.random.default_rng(0)
    for flag in (True, False):
        feeds = {"x": rng.standard_normal((2, 3)).astype(np.float32), "w": rng.standard_normal((3, 4)).astype(np.float32),
                 "flag": np.array(flag)}
        assert_same_outputs(str(work / "guarded.onnx"), str(work / "out.onnx"), feeds, rtol=0, atol=0)


REFLECT = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[N] x) => (float[M] y) { pads = Constant<value = int64[2] {2, 2}>()  y = Pad<mode = "reflect">(x, pads) }
"""


def test_verify_on_generated_inputs_the_original_cannot_run(capfd, work):
    # generated inputs give dynamic dims the size 1, which a reflect pad of 2 cannot take: say what to pass instead,
    # in one line (ONNX Runtime's own error log would repeat the message)
    onnx.save(onnx.parser.parse_model(REFLECT), work / "reflect.onnx")
    optimize_fails(capfd, work, work / "reflect.onnx", "does not run on generated inputs", "Pad", "--data DIR",
                   "--input-shape", extra=("--verify",))
    code, _, err = cli(capfd, "optimize", work / "reflect.onnx", "-o", work / "out.onnx", "--verify",
                       "--input-shape", "x=5")
    assert code == 0, err


def test_missing_external_data_file(capfd, work):
    onnx.save(_matmul_model(), work / "ext.onnx", save_as_external_data=True, location="ext.weights",
              size_threshold=0)
    os.remove(work / "ext.weights")
    optimize_fails(capfd, work, work / "ext.onnx", "ext.weights", "missing")


@pytest.mark.parametrize("opset, words", [(5, ("opset 5", "--target-opset")), (99, ("opset 99", "upgrade onnx"))])
def test_opset_out_of_range(capfd, work, opset, words):
    model = onnx.parser.parse_model(TINY.replace('"" : 17', f'"" : {opset}'))
    onnx.save(model, work / "opset.onnx")
    optimize_fails(capfd, work, work / "opset.onnx", *words)


def test_old_opset_converts_when_asked(capfd, work):
    onnx.save(onnx.parser.parse_model(TINY.replace('"" : 17', '"" : 6')), work / "old.onnx")
    code, _, err = cli(capfd, "optimize", work / "old.onnx", "-o", work / "out.onnx", "--target-opset", "13")
    assert code == 0, err
    assert onnx.load(work / "out.onnx").opset_import[0].version == 13


def test_unknown_pass_name(capfd, work):
    optimize_fails(capfd, work, work / "tiny.onnx", "unknown pass 'fold_everything'", "onnxopt passes",
                   extra=("--passes", "fold,fold_everything"))


def test_unknown_rule_to_explain(capfd, work):
    # a misspelt rule would otherwise explain nothing, which reads as "nothing to explain"
    optimize_fails(capfd, work, work / "tiny.onnx", "no rule named 'fuse_bn_conv'", "fuse_bn_into_conv",
                   extra=("--explain", "fuse_bn_conv"))


def test_negative_fold_budget(capfd, work):
    optimize_fails(capfd, work, work / "tiny.onnx", "--fold-max-bytes", "0 or more", extra=("--fold-max-bytes", "-1"))


# ---- the output ----------------------------------------------------------------------------------------
def test_output_into_missing_directory(capfd, work):
    before = _listing(work)
    code, _, err = cli(capfd, "optimize", work / "tiny.onnx", "-o", work / "no" / "such" / "out.onnx")
    assert_user_error(code, err, "does not exist")
    assert_left_as_before(work, before)


@pytest.mark.parametrize("command", [
    ("optimize", "{model}", "-o", "{out}"),
    ("quantize", "{model}", "-o", "{out}", "--mode", "dynamic", "--no-latency-check"),
    ("bench", "{model}", "--runs", "2"),
])
@pytest.mark.parametrize("report, words", [
    ("no/such/report.md", ("folder", "does not exist")),
    ("report.docx", ("cannot tell the report format", ".json")),
])
def test_bad_report_path_stops_before_the_work(capfd, work, command, report, words):
    # the report is checked first: the command must not write its model and then fail on the report
    before = _listing(work)
    args = [a.format(model=work / "matmul.onnx", out=work / "out.onnx") for a in command]
    code, out, err = cli(capfd, "-q", *args, "--report", work / report)
    assert_user_error(code, err, *words)
    assert not out  # nothing measured or summarized before the error
    assert_left_as_before(work, before)


DYNAMIC_MATMUL = MATMUL.replace("float[2, 64] x", "float[batch, 64] x").replace("float[2, 64] y", "float[batch, 64] y")


@pytest.mark.parametrize("command", [
    ("optimize", "{model}", "-o", "{out}"),
    ("quantize", "{model}", "-o", "{out}", "--mode", "dynamic", "--no-latency-check"),
])
def test_report_on_dynamic_inputs_needs_their_sizes_before_the_work(capfd, work, command):
    model = onnx.parser.parse_model(DYNAMIC_MATMUL)
    model.graph.initializer.extend(_matmul_model().graph.initializer)
    onnx.save(model, work / "dynamic.onnx")
    before = _listing(work)
    args = [a.format(model=work / "dynamic.onnx", out=work / "out.onnx") for a in command]
    code, out, err = cli(capfd, "-q", *args, "--report", work / "r.json")
    assert_user_error(code, err, "x[0]='batch'", "--dim NAME=N")  # names only flags this command has
    assert "--shape" not in err and not out
    assert_left_as_before(work, before)
    code, _, err = cli(capfd, "-q", *args, "--report", work / "r.json", "--dim", "batch=3")
    assert code == 0, err
    assert json.loads((work / "r.json").read_text())["settings"]["inputs"]["x"]["shape"] == [3, 64]


FIXED_LENGTH = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[S, 64] x) => (float[4, 128] y) { t = MatMul(x, w)  y = Reshape(t, four_rows) }
"""


def test_latency_check_on_generated_inputs_is_sized_with_dim(capfd, work):
    # an export that only runs at one sequence length (torch's legacy exporter bakes it into Reshape targets)
    model = onnx.parser.parse_model(FIXED_LENGTH)
    model.graph.initializer.extend([*_matmul_model().graph.initializer,
                                    numpy_helper.from_array(np.array([4, 128], np.int64), "four_rows")])
    onnx.save(model, work / "fixed.onnx")
    before = _listing(work)
    args = ("quantize", work / "fixed.onnx", "-o", work / "q.onnx", "--mode", "dynamic")
    code, _, err = cli(capfd, *args)
    assert_user_error(code, err, "latency check failed", "Input shape:{1,64}", "--dim NAME=N sizes them")
    code, _, err = cli(capfd, *args, "--dim", "T=4")
    assert_user_error(code, err, "--dim names ['T']", "its symbolic dims are ['S']")
    assert_left_as_before(work, before)
    code, out, err = cli(capfd, *args, "--dim", "S=8")
    assert code == 0 and "latency (cpu" in out, err


@pytest.mark.parametrize("graph, words", [
    ("no/such/g.dot", ("folder", "does not exist")),
    ("g.svg", ("cannot tell the graph format", ".dot or .graphml")),
])
def test_bad_graph_path(capfd, work, graph, words):
    before = _listing(work)
    code, out, err = cli(capfd, "inspect", work / "tiny.onnx", "--graph", work / graph)
    assert_user_error(code, err, *words)
    assert not out
    assert_left_as_before(work, before)


def test_output_path_is_checked_before_the_work(capfd, work):
    # a bad -o stops the command first: nothing is optimized or calibrated only to fail at the end
    (work / "empty").mkdir()
    before = _listing(work)
    for args in (("optimize", work / "tiny.onnx", "-o", work / "no" / "out.onnx", "--explain", "no_such_rule"),
                 ("quantize", work / "matmul.onnx", "-o", work / "no" / "q.onnx", "--data", work / "empty")):
        code, _, err = cli(capfd, "-q", *args)
        assert_user_error(code, err, "does not exist; create it first")
    assert_left_as_before(work, before)


def test_output_whose_parent_is_a_file(capfd, work):
    before = _listing(work)
    code, _, err = cli(capfd, "optimize", work / "tiny.onnx", "-o", work / "tiny.onnx" / "out.onnx")
    assert_user_error(code, err, "is a file, not a directory")
    assert_left_as_before(work, before)
    assert onnx.load(work / "tiny.onnx").graph.node[0].op_type == "Identity"


def test_output_unwritable(capfd, work):
    if os.geteuid() == 0:  # root writes through permission bits: use a filesystem that takes no new files
        target = "/proc/onnxopt-bad-input-test.onnx"
        watched = None
    else:
        locked = work / "locked"
        locked.mkdir()
        os.chmod(locked, 0o555)
        target, watched = locked / "out.onnx", locked
    before = _listing(work)
    try:
        code, _, err = cli(capfd, "optimize", work / "tiny.onnx", "-o", target)
    finally:
        if watched is not None:
            os.chmod(watched, 0o755)
    assert_user_error(code, err, "cannot write", str(target))
    assert_left_as_before(work, before)
    assert not os.path.exists(target)


def test_output_that_is_a_pipe_is_not_replaced(capfd, work):
    os.mkfifo(work / "pipe.onnx")
    before = _listing(work)
    code, _, err = cli(capfd, "optimize", work / "tiny.onnx", "-o", work / "pipe.onnx")
    assert_user_error(code, err, "not a regular file")
    assert_left_as_before(work, before)
    assert not os.path.isfile(work / "pipe.onnx")


def test_output_equal_to_input_is_replaced_atomically(capfd, work):
    path = work / "matmul.onnx"
    original = path.read_bytes()
    inode = os.stat(path).st_ino
    code, _, err = cli(capfd, "optimize", path, "-o", path)
    assert code == 0, err
    assert os.stat(path).st_ino != inode  # a new file renamed over the old one, not a rewrite in place
    assert _listing(work) == {"tiny.onnx", "matmul.onnx"}
    assert op_histogram(load(path))["Identity"] == 0
    assert_same_outputs(original, str(path))


def test_output_equal_to_input_with_external_data(capfd, work):
    path = work / "ext.onnx"
    onnx.save(_matmul_model(), path, save_as_external_data=True, location="ext.onnx.data", size_threshold=0)
    original = onnx.load(path)
    for _ in range(2):  # the second run reads the weights from the very file it replaces
        code, _, err = cli(capfd, "optimize", path, "-o", path)
        assert code == 0, err
    assert _listing(work) == {"tiny.onnx", "matmul.onnx", "ext.onnx", "ext.onnx.data"}
    assert_same_outputs(original.SerializeToString(), str(path))


# ---- what the passes must leave alone ------------------------------------------------------------------
CUSTOM = """
<ir_version: 8, opset_import: ["" : 17, "com.microsoft" : 1]>
g (float[2, 8] x) => (float[2, 8] y) {
    t = Identity(x)
    s = Constant<value = float[1] {2.0}>()
    u = Mul(s, s)
    v = com.microsoft.Gelu(t)
    m = com.microsoft.FusedMatMul<alpha = 0.5, transB = 1>(v, w)
    y = Mul(m, u)
}
"""


@pytest.mark.parametrize("target", ["onnx", "ort"])
def test_custom_domain_ops_are_left_alone_and_still_run(capfd, work, target):
    model = onnx.parser.parse_model(CUSTOM)
    weights = np.random.default_rng(1).standard_normal((8, 8)).astype(np.float32)
    model.graph.initializer.append(numpy_helper.from_array(weights, "w"))
    onnx.save(model, work / "custom.onnx")
    code, _, err = cli(capfd, "optimize", work / "custom.onnx", "-o", work / "out.onnx", "--target", target)
    assert code == 0, err
    histogram = op_histogram(load(work / "out.onnx"))
    assert histogram["com.microsoft::Gelu"] == 1 and histogram["com.microsoft::FusedMatMul"] == 1
    assert histogram["Identity"] == 0  # the standard ops around them were still optimized
    onnx.checker.check_model(onnx.load(work / "out.onnx"))
    assert_same_outputs(str(work / "custom.onnx"), str(work / "out.onnx"))


# ---- input data: onnxopt bench --data reads the first sample, onnxopt quantize --data every one ----------
def _data_dir(work, name: str, files: dict[str, np.ndarray | dict]) -> str:
    directory = work / name
    directory.mkdir()
    for file, value in files.items():
        if file.endswith(".npz"):
            np.savez(directory / file, **value)
        else:
            np.save(directory / file, value)
    return directory


def _nan_sample() -> np.ndarray:
    sample = np.zeros((2, 4), np.float32)
    sample[1, 2] = np.nan
    return sample


@pytest.mark.parametrize(
    "name, files, words",
    [
        ("empty", {}, ("empty", "is empty")),
        ("mixed", {"a.npy": np.zeros((2, 4), np.float32), "b.npz": {"x": np.zeros((2, 4), np.float32)}},
         ("mixed", "mixed calibration data layouts")),
        ("shape", {"s0.npy": np.zeros((3, 5), np.float32)}, ("s0.npy", "expected shape [2, 4]", "[3, 5]")),
        ("dtype", {"s0.npy": np.zeros((2, 4), np.float64)}, ("s0.npy", "expected dtype float32", "float64")),
        ("nan", {"s0.npy": _nan_sample()}, ("s0.npy", "NaN")),
    ],
)
def test_bad_benchmark_data(capfd, work, name, files, words):
    data = _data_dir(work, name, files)
    before = _listing(work)
    code, _, err = cli(capfd, "-q", "bench", work / "tiny.onnx", "--runs", "3", "--warmup", "0", "--data", data,
                       "--report", work / "report.json")
    assert_user_error(code, err, *words)
    assert_left_as_before(work, before)


def test_benchmark_shape_the_model_cannot_run(capfd, work):
    # a reflect pad of 2 cannot take a length-1 input: one line naming the node and the flags to fix it, no report
    onnx.save(onnx.parser.parse_model(REFLECT), work / "reflect.onnx")
    before = _listing(work)
    code, _, err = cli(capfd, "-q", "bench", work / "reflect.onnx", "--runs", "3", "--shape", "x=1",
                       "--report", work / "report.json")
    assert_user_error(code, err, "'reflect' does not run on the benchmark inputs", "Pad reflect", "--shape", "--data")
    assert_left_as_before(work, before)


def _calibration_files(bad: np.ndarray) -> dict[str, np.ndarray]:
    """A good first sample, then the bad one: the error must name the second file."""
    return {"s0.npy": np.zeros((2, 64), np.float32), "s1.npy": bad}


@pytest.mark.parametrize(
    "name, files, words",
    [
        ("empty", {}, ("empty", "is empty")),
        ("mixed", {"a.npy": np.zeros((2, 64), np.float32), "b.npz": {"x": np.zeros((2, 64), np.float32)}},
         ("mixed calibration data layouts",)),
        ("shape", _calibration_files(np.zeros((2, 32), np.float32)), ("s1.npy", "expected shape [2, 64]", "[2, 32]")),
        ("dtype", _calibration_files(np.zeros((2, 64), np.float16)), ("s1.npy", "expected dtype float32", "float16")),
        ("nan", _calibration_files(np.full((2, 64), np.nan, np.float32)), ("s1.npy", "NaN")),
    ],
)
def test_bad_calibration_data(capfd, work, name, files, words):
    data = _data_dir(work, name, files)
    before = _listing(work)
    code, _, err = cli(capfd, "-q", "quantize", work / "matmul.onnx", "-o", work / "q.onnx", "--data", data,
                       "--no-latency-check", "--report", work / "q.json")
    assert_user_error(code, err, *words)
    assert_left_as_before(work, before)


REFLECT_MUL = REFLECT.replace("y = Pad", "p = Pad").replace("(x, pads) }", "(x, pads)  y = Mul(p, p) }")


@pytest.mark.parametrize("text, words", [
    (REFLECT_MUL, ("calibration sample 0", "could not run it", "Pad reflect")),
    (REFLECT, ("held-out sample 0", "could not run the float model", "Pad reflect")),  # nothing to calibrate
])
def test_samples_the_model_cannot_run(capfd, work, text, words):
    # each sample matches the declared shape (x: float[N]) but a reflect pad of 2 cannot take N = 1
    onnx.save(onnx.parser.parse_model(text), work / "reflect.onnx")
    data = _data_dir(work, "short", {f"s{i}.npy": np.ones(1, np.float32) for i in range(2)})
    before = _listing(work)
    code, _, err = cli(capfd, "-q", "quantize", work / "reflect.onnx", "-o", work / "q.onnx", "--data", data,
                       "--no-latency-check")
    assert_user_error(code, err, *words)
    assert_left_as_before(work, before)


CUSTOM_OP = """
<ir_version: 8, opset_import: ["" : 17, "my.domain" : 1]>
g (float[2, 64] x) => (float[2, 64] y) { t = MatMul(x, w)  y = my.domain.Custom(t) }
"""


def _custom_op_model(work) -> str:
    """A model with a custom op whose kernel library onnxruntime was not given: it loads in onnx, not in ORT."""
    model = onnx.parser.parse_model(CUSTOM_OP)
    model.graph.initializer.append(numpy_helper.from_array(np.eye(64, dtype=np.float32), "w"))
    onnx.save(model, work / "custom.onnx")
    return work / "custom.onnx"


def test_benchmark_of_a_model_onnxruntime_cannot_load(capfd, work):
    path = _custom_op_model(work)
    before = _listing(work)
    code, _, err = cli(capfd, "-q", "bench", path, "--runs", "3", "--report", work / "report.json")
    assert_user_error(code, err, "onnxruntime cannot load 'custom'", "my.domain:Custom")
    assert_left_as_before(work, before)


def test_latency_check_of_a_model_onnxruntime_cannot_load(capfd, work):
    path = _custom_op_model(work)
    before = _listing(work)
    code, _, err = cli(capfd, "-q", "quantize", path, "-o", work / "q.onnx", "--mode", "dynamic")
    assert_user_error(code, err, "latency check failed", "my.domain:Custom", "--no-latency-check")
    assert_left_as_before(work, before)
    code, _, err = cli(capfd, "-q", "quantize", path, "-o", work / "q.onnx", "--mode", "dynamic", "--no-latency-check")
    assert code == 0, err
    result = load(work / "q.onnx")
    assert op_histogram(result)["my.domain::Custom"] == 1 and "MatMulInteger" in op_histogram(result)


@pytest.mark.parametrize("mode, words", [
    ("static", ("calibration runs the model in onnxruntime, which cannot load it",)),
    ("dynamic", ("scoring runs the model in onnxruntime, which cannot load it",)),  # held-out scoring needs ORT too
])
def test_quantize_with_data_of_a_model_onnxruntime_cannot_load(capfd, work, mode, words):
    path = _custom_op_model(work)
    data = _data_dir(work, "samples", {f"s{i}.npy": np.ones((2, 64), np.float32) for i in range(2)})
    before = _listing(work)
    code, _, err = cli(capfd, "-q", "quantize", path, "-o", work / "q.onnx", "--mode", mode, "--data", data,
                       "--no-latency-check")
    assert_user_error(code, err, *words, "my.domain:Custom")
    assert_left_as_before(work, before)


def test_exclude_nodes_with_a_name_the_model_lacks(capfd, work):
    data = _data_dir(work, "samples", {f"s{i}.npy": np.ones((2, 64), np.float32) for i in range(2)})
    before = _listing(work)
    code, _, err = cli(capfd, "-q", "quantize", work / "matmul.onnx", "-o", work / "q.onnx", "--data", data,
                       "--no-latency-check", "--exclude-nodes", "MatMul_1,matmull")
    assert_user_error(code, err, "--exclude-nodes", "no node named 'MatMul_1', 'matmull'")
    assert_left_as_before(work, before)


# ---- Ctrl-C --------------------------------------------------------------------------------------------
READY = "import sys, onnxopt.cli; print('ready', flush=True); sys.exit(onnxopt.cli.main(sys.argv[1:]))"


def test_ctrl_c_during_benchmark_exits_130_and_writes_no_report(work):
    report = work / "report.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", READY, "bench", str(work / "matmul.onnx"), "--runs", "10000000", "--warmup", "0",
         "--report", str(report)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(2.0)  # inside main(): loading onnxruntime, building the session or timing runs
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "interrupted" in lines[0] and "Traceback" not in err, err
    assert not report.exists()
    assert_left_as_before(work, {"tiny.onnx", "matmul.onnx"})


def test_ctrl_c_during_calibration_exits_130_and_writes_nothing(work):
    # The second calibration sample is a FIFO: reading it blocks, so the signal lands mid-calibration for sure.
    data = _data_dir(work, "calibration", {"s0.npy": np.zeros((2, 64), np.float32)})
    os.mkfifo(data / "s1.npy")
    proc = subprocess.Popen(
        [sys.executable, "-m", "onnxopt", "quantize", str(work / "matmul.onnx"), "-o", str(work / "q.onnx"),
         "--data", str(data), "--no-latency-check", "--report", str(work / "q.json")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    writer = None
    try:
        deadline = time.monotonic() + 60
        while writer is None and proc.poll() is None and time.monotonic() < deadline:
            try:  # succeeds only once the quantizer has the FIFO open for reading
                writer = os.open(data / "s1.npy", os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.05)
        assert writer is not None, proc.stderr.read() if proc.poll() is not None else "never read the samples"
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if writer is not None:
            os.close(writer)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "interrupted" in lines[0] and "Traceback" not in err, err
    assert not (work / "q.onnx").exists() and not (work / "q.json").exists()
    assert not [name for name in _listing(work) if ".onnxopt-" in name]
