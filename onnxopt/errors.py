"""Errors: OnnxoptError for user mistakes (the CLI prints one line, exits 2); IRError; PassError."""
from __future__ import annotations

import re


class OnnxoptError(Exception):
    """A user-facing error: the message says what is wrong and what to do."""

    exit_code = 2


class ModelLoadError(OnnxoptError):
    """The input is missing, not a file, or not a loadable ONNX model."""


class ModelCheckError(OnnxoptError):
    """The model fails onnx.checker."""


class OutputPathError(OnnxoptError):
    """The output cannot be written where asked."""


class UnknownPassError(OnnxoptError):
    """A pass or group name that is not registered."""


class DataError(OnnxoptError):
    """Calibration or benchmark input data that does not fit the model."""


class ProviderError(OnnxoptError):
    """An execution provider that the installed onnxruntime build lacks."""


class VerificationError(OnnxoptError):
    """The optimized model's outputs differ from the original's."""


class IRError(Exception):
    """The IR is inconsistent (a bug in a pass, or a malformed model); names the node at fault."""


class PassError(Exception):
    """A pass raised; the message names the pass, the node, and the passes that ran before."""

    def __init__(self, message: str, pass_name: str = "", node_name: str = "") -> None:
        super().__init__(message)
        self.pass_name = pass_name
        self.node_name = node_name


def ort_failure(exc: Exception) -> str:
    """ONNX Runtime's error from a failed run in one line: the innermost failing node and its reason (ORT nests a
    message per enclosing If/Loop)."""
    text = " ".join(str(exc).split())
    nodes = re.findall(r"Name:'([^']*)'", text)
    reason = _SOURCE_LOCATION.sub("", text.split("Status Message: ")[-1])
    return (f"node '{nodes[-1]}': " if nodes and nodes[-1] else "") + reason[:300]


# "/onnxruntime_src/…/reshape_helper.h:91 onnxruntime::ReshapeHelper::ReshapeHelper(const …&, bool) " before the reason
_SOURCE_LOCATION = re.compile(r"\S+\.(?:cc|cpp|h):\d+ (?:[\w:~<>]+\([^()]*\) )?")
