"""Maps passes/ and calibration/ into the onnxopt package and lists every sub-package."""
from setuptools import find_packages, setup

ROOTS = {"onnxopt": "onnxopt", "onnxopt.passes": "passes", "onnxopt.calibration": "calibration"}

setup(
    package_dir=ROOTS,
    packages=[pkg for prefix, root in ROOTS.items() for pkg in [prefix, *(f"{prefix}.{sub}" for sub in find_packages(root))]],
)
