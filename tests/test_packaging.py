"""Packaging: the built distribution holds every sub-package of onnxopt/, passes/ and calibration/ under
onnxopt.*, and they import from it (an editable install would hide a missing one).

A real wheel is built offline (pip wheel --no-build-isolation) when the installed setuptools can make
one (it needs the `wheel` package before setuptools 70.1); otherwise `setup.py build_py` lays out the
same tree that bdist_wheel would pack, which is what this test is about.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# source folder → import prefix, as setup.py maps them
ROOTS = {"onnxopt": "onnxopt", "passes": "onnxopt/passes", "calibration": "onnxopt/calibration"}


def source_packages() -> dict[str, set[str]]:
    """{installed package dir: its .py files} for every folder with an __init__.py under the three roots."""
    found: dict[str, set[str]] = {}
    for root, prefix in ROOTS.items():
        for folder, dirs, files in os.walk(REPO / root):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            if "__init__.py" not in files:
                dirs[:] = []  # not a package: nothing below it is installed either
                continue
            rel = os.path.relpath(folder, REPO / root)
            installed = prefix if rel == "." else f"{prefix}/{rel.replace(os.sep, '/')}"
            found[installed] = {f for f in files if f.endswith(".py")}
    return found


def _can_build_wheel_offline() -> bool:
    if importlib.util.find_spec("wheel") is not None:
        return True
    import setuptools

    major, minor = (int(p) for p in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1)  # bdist_wheel moved into setuptools


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[str, Path]:
    """('wheel' or 'build_py', the folder holding the installed layout)."""
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".ci", "__pycache__", "*.egg-info", "build", "dist", "tests", "benchmarks", ".*cache", ".hypothesis"))
    layout = tmp / "layout"
    if _can_build_wheel_offline():
        out = tmp / "wheel"
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                        "-q", str(src), "-w", str(out)], check=True, capture_output=True)
        (wheel,) = out.glob("onnxopt-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(layout)
        return "wheel", layout
    subprocess.run([sys.executable, "setup.py", "-q", "build_py", "-d", str(layout)], cwd=src, check=True,
                   capture_output=True)
    return "build_py", layout


def test_every_subpackage_is_in_the_distribution(built) -> None:
    kind, layout = built
    expected = source_packages()
    assert {"onnxopt", "onnxopt/ir", "onnxopt/passes", "onnxopt/calibration"} <= set(expected)
    assert any(p.startswith("onnxopt/passes/") for p in expected), "no sub-package of passes/ found"
    missing = [f"{pkg}/{name}" for pkg, names in expected.items() for name in names if not (layout / pkg / name).is_file()]
    assert not missing, f"{kind} lacks {missing}"


def test_nothing_else_is_installed_at_the_top_level(built) -> None:
    kind, layout = built
    top = {p.name for p in layout.iterdir() if not p.name.endswith((".dist-info", ".data"))}
    assert top == {"onnxopt"}, f"{kind} installs {sorted(top)}"
    assert not (layout / "onnxopt" / "tests").exists()


def test_subpackages_import_from_the_distribution(built) -> None:
    kind, layout = built
    modules = sorted(pkg.replace("/", ".") for pkg in source_packages())
    # -S: no site processing, so the editable install's finder is absent; dependencies come from purelib/platlib
    paths = [str(layout), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    script = (
        "import importlib, sys\n"
        f"sys.path[:0] = {paths!r}\n"
        f"for name in {modules!r}:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert module.__file__.startswith({str(layout)!r}), (name, module.__file__)\n"
    )
    result = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True, cwd=layout)
    assert result.returncode == 0, f"{kind}: {result.stderr[-2000:]}"
