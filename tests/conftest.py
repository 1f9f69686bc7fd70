"""Shared fixtures: paths to the models the onnx wheel ships."""
from __future__ import annotations

import os

import onnx
import pytest

ONNX_DATA = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")


@pytest.fixture(scope="session")
def onnx_data_dir() -> str:
    """The onnx wheel's backend/test/data directory (model-zoo light models and node tests)."""
    return ONNX_DATA


@pytest.fixture(scope="session")
def resnet50_path() -> str:
    """The model-zoo ResNet-50 shipped in the onnx wheel (weights as ConstantOfShape)."""
    return os.path.join(ONNX_DATA, "light", "light_resnet50.onnx")
