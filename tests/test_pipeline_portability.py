"""Provenance labels: portability says where an optimized model can run."""
from __future__ import annotations

from onnxopt.pipeline import portability
from onnxopt.testing import model_from_text


def _model(body: str, opsets: str = '"" : 17') -> str:
    return f"""<ir_version: 8, opset_import: [{opsets}]>
    g (float[2, 4] x) => (float[2, 4] y) {{ {body} }}"""


def test_standard_ops_are_portable():
    assert portability(model_from_text(_model("y = Relu(x)"))) == "standard"


def test_contrib_ops_need_onnxruntime():
    text = _model('y = com.microsoft.FastGelu(x)', '"" : 17, "com.microsoft" : 1')
    assert portability(model_from_text(text)) == "onnxruntime"


def test_ort_only_op_in_the_default_domain_is_not_standard():
    assert portability(model_from_text(_model("y = SimplifiedLayerNormalization(x)"))) == "onnxruntime"


def test_unknown_domain_is_custom():
    assert portability(model_from_text(_model("y = acme.Frobnicate(x)", '"" : 17, "acme" : 1'))) == "custom"
