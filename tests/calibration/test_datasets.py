"""Calibration datasets: one test per directory layout and per error, on real files in tmp_path."""
from __future__ import annotations

import builtins
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from onnxopt.calibration.datasets import (
    count_samples,
    load_samples,
)
from onnxopt.calibration.images import Preprocess
from onnxopt.errors import DataError
from onnxopt.ir.interface import InputSpec, input_specs

RNG = np.random.default_rng(3)
IMAGE = InputSpec("image", np.dtype(np.float32), ("N", 3, 4, 6))
TOKENS = InputSpec("ids", np.dtype(np.int64), (1, None))
MASK = InputSpec("mask", np.dtype(np.float32), (1, "seq"))


def image_array(n: int = 1) -> np.ndarray:
    return RNG.normal(size=(n, 3, 4, 6)).astype(np.float32)


def two_inputs(seq: int = 5) -> dict[str, np.ndarray]:
    return {"ids": np.arange(seq, dtype=np.int64)[None], "mask": np.ones((1, seq), np.float32)}


def write_pb_set(directory: Path, tensors: list[tuple[str, np.ndarray]]) -> None:
    directory.mkdir()
    for i, (name, array) in enumerate(tensors):
        (directory / f"input_{i}.pb").write_bytes(numpy_helper.from_array(array, name).SerializeToString())


# --- specs ---------------------------------------------------------------------------------


def test_input_specs_skip_initializers_and_read_dims() -> None:
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, None]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, [3]),
            helper.make_tensor_value_info("ids", TensorProto.INT64, None),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.zeros(3, np.float32), "w")],
    )
    specs = input_specs(helper.make_model(graph))
    assert specs == [
        InputSpec("x", np.dtype(np.float32), ("batch", 3, None)),
        InputSpec("ids", np.dtype(np.int64), None),
    ]


def test_non_tensor_model_input_is_refused() -> None:
    seq = helper.make_tensor_sequence_value_info("s", TensorProto.FLOAT, None)
    graph = helper.make_graph([], "g", [seq], [seq])
    with pytest.raises(DataError, match="'s' is not a typed tensor"):
        input_specs(helper.make_model(graph))


# --- layouts --------------------------------------------------------------------------------


def test_npy_layout_in_natural_order(tmp_path: Path) -> None:
    arrays = {i: image_array() for i in (0, 2, 10)}
    for i, array in arrays.items():
        np.save(tmp_path / f"sample_{i}.npy", array)
    samples = list(load_samples(tmp_path, [IMAGE]))
    assert [set(s) for s in samples] == [{"image"}] * 3
    for sample, i in zip(samples, (0, 2, 10)):
        np.testing.assert_array_equal(sample["image"], arrays[i])
    assert count_samples(tmp_path) == 3 and count_samples(tmp_path, limit=2) == 2


def test_npz_layout_keyed_by_input_name(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", **two_inputs(5))
    np.savez(tmp_path / "b.npz", **two_inputs(7))
    samples = list(load_samples(str(tmp_path), [TOKENS, MASK]))
    assert [s["ids"].shape for s in samples] == [(1, 5), (1, 7)]


def test_pb_layout_matched_by_stored_names(tmp_path: Path) -> None:
    sample = two_inputs(4)
    write_pb_set(tmp_path / "test_data_set_0", [("mask", sample["mask"]), ("ids", sample["ids"])])
    (tmp_path / "test_data_set_0" / "output_0.pb").write_bytes(b"ignored")
    (loaded,) = load_samples(tmp_path, [TOKENS, MASK])
    np.testing.assert_array_equal(loaded["ids"], sample["ids"])
    np.testing.assert_array_equal(loaded["mask"], sample["mask"])


def test_pb_layout_matched_by_position_without_names(tmp_path: Path) -> None:
    for i in (0, 1, 10):
        write_pb_set(tmp_path / f"test_data_set_{i}", [("", np.full((1, 3), i, np.int64)), ("", np.ones((1, 3), np.float32))])
    samples = list(load_samples(tmp_path, [TOKENS, MASK]))
    assert [int(s["ids"][0, 0]) for s in samples] == [0, 1, 10]


def test_image_layout_with_preprocess_toml(tmp_path: Path) -> None:
    pixels = RNG.integers(0, 256, (8, 12, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "cat.png")
    Image.fromarray(pixels).save(tmp_path / "dog.bmp")
    (tmp_path / "labels.txt").write_text("cat\ndog\n")
    (tmp_path / "preprocess.toml").write_text(
        'channel_order = "BGR"\nscale = 1.0\nmean = [10.0, 20.0, 30.0]\nstd = [2.0, 2.0, 2.0]\n'
    )
    samples = list(load_samples(tmp_path, [IMAGE]))
    assert len(samples) == 2 and samples[0]["image"].shape == (1, 3, 4, 6)
    resized = np.asarray(Image.fromarray(pixels).resize((6, 4), Image.Resampling.BILINEAR), np.float32)
    expected = ((resized[..., ::-1] - [10, 20, 30]) / 2).transpose(2, 0, 1)[None]
    np.testing.assert_allclose(samples[0]["image"], expected, rtol=1e-6)


def test_image_layout_nhwc_grayscale_size_from_cli_values(tmp_path: Path) -> None:
    Image.fromarray(RNG.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(tmp_path / "x.jpg")
    spec = InputSpec("x", np.dtype(np.float32), (1, None, None, 1))
    pre = Preprocess().with_values(size="5x7", mean="0.5", std="0.25", scale="1/255")
    (sample,) = load_samples(tmp_path, [spec], preprocess=pre)
    assert sample["x"].shape == (1, 5, 7, 1)
    assert sample["x"].min() >= (0 - 0.5) / 0.25 and sample["x"].max() <= (1 - 0.5) / 0.25


def test_iterable_source_and_limit() -> None:
    data = [{"image": image_array()} for _ in range(5)]
    assert len(list(load_samples(data, [IMAGE], limit=3))) == 3
    assert count_samples(data) == 5 and count_samples(iter(data)) is None


def test_samples_are_read_lazily(tmp_path: Path) -> None:
    np.save(tmp_path / "0.npy", image_array())
    np.save(tmp_path / "1.npy", image_array(2).astype(np.float64))
    samples = load_samples(tmp_path, [IMAGE])
    assert next(samples)["image"].dtype == np.float32
    with pytest.raises(DataError):
        next(samples)


# --- errors ---------------------------------------------------------------------------------


def one_line_error(source, specs, match: str, **kw) -> str:
    with pytest.raises(DataError, match=match) as info:
        list(load_samples(source, specs, **kw))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_empty_directory(tmp_path: Path) -> None:
    one_line_error(tmp_path, [IMAGE], "is empty")


def test_missing_directory(tmp_path: Path) -> None:
    one_line_error(tmp_path / "nope", [IMAGE], "does not exist")


def test_unknown_layout(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("1,2,3\n")
    one_line_error(tmp_path, [IMAGE], r"unknown calibration data layout \(found data.csv\)")


def test_mixed_layouts(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", image_array())
    np.savez(tmp_path / "b.npz", image=image_array())
    one_line_error(tmp_path, [IMAGE], r"mixed calibration data layouts \(1 npy, 1 npz\)")


def test_npy_for_a_multi_input_model(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", image_array())
    one_line_error(tmp_path, [TOKENS, MASK], "single-input models only.*use \\*.npz")


def test_wrong_dtype_names_file_input_expected_and_found(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", image_array().astype(np.float64))
    message = one_line_error(tmp_path, [IMAGE], "expected dtype float32, found float64")
    assert str(tmp_path / "a.npy") in message and "'image'" in message


def test_wrong_rank(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", image_array()[0])
    one_line_error(tmp_path, [IMAGE], r"expected rank 4 \[N, 3, 4, 6\], found rank 3 \[3, 4, 6\]")


def test_wrong_static_dim(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros((2, 3, 5, 6), np.float32))
    one_line_error(tmp_path, [IMAGE], r"expected shape \[N, 3, 4, 6\], found \[2, 3, 5, 6\] \(dim 2\)")


def test_nan_and_inf_values(tmp_path: Path) -> None:
    array = image_array()
    array[0, 0, 0, :3] = [np.nan, np.inf, -np.inf]
    np.save(tmp_path / "a.npy", array)
    one_line_error(tmp_path, [IMAGE], "expected finite values, found 1 NaN and 2 Inf")


def test_npz_missing_input(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", ids=two_inputs()["ids"])
    one_line_error(tmp_path, [TOKENS, MASK], r"a.npz: input 'mask': expected an array, found none \(has: ids\)")


def test_npz_unknown_input(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", **two_inputs(), labels=np.zeros(1))
    one_line_error(tmp_path, [TOKENS, MASK], "input 'labels': expected one of the model inputs")


def test_corrupt_npy(tmp_path: Path) -> None:
    (tmp_path / "a.npy").write_bytes(b"not numpy")
    one_line_error(tmp_path, [IMAGE], "a.npy: not a readable .npy file")


def test_pb_count_mismatch_without_names(tmp_path: Path) -> None:
    write_pb_set(tmp_path / "test_data_set_0", [("", np.zeros((1, 3), np.int64))])
    one_line_error(tmp_path, [TOKENS, MASK], "expected 2 input_\\*.pb files .* found 1")


def test_pb_set_without_inputs(tmp_path: Path) -> None:
    (tmp_path / "test_data_set_0").mkdir()
    one_line_error(tmp_path, [TOKENS, MASK], "expected input_\\*.pb files, found none")


def test_iterable_item_that_is_not_a_dict() -> None:
    one_line_error([np.zeros(3)], [IMAGE], "sample 0: expected a dict of input name")


def test_negative_limit() -> None:
    one_line_error([], [IMAGE], "limit must be 0 or more", limit=-1)


def test_image_with_dynamic_size_and_no_size_given(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    spec = InputSpec("x", np.dtype(np.float32), (1, 3, "h", "w"))
    one_line_error(tmp_path, [spec], r"dynamic image size .*\(--size HEIGHT,WIDTH")


def test_corrupt_image(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"not an image")
    one_line_error(tmp_path, [IMAGE], "a.png: not a readable image")


def test_bad_preprocess_toml(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    (tmp_path / "preprocess.toml").write_text("colour = 3\n")
    one_line_error(tmp_path, [IMAGE], "preprocess.toml: preprocess: unknown setting 'colour'")
    (tmp_path / "preprocess.toml").write_text("mean = [1, 2]\n")
    one_line_error(tmp_path, [IMAGE], "preprocess mean: expected 1 or 3 values, found 2")
    (tmp_path / "preprocess.toml").write_text("layout = 'CHW'\n")
    one_line_error(tmp_path, [IMAGE], "expected NCHW or NHWC, found 'CHW'")


def test_bad_cli_preprocess_values() -> None:
    with pytest.raises(DataError, match="preprocess size: expected HEIGHT,WIDTH"):
        Preprocess().with_values(size="224,224,3")
    with pytest.raises(DataError, match="preprocess mean: expected numbers"):
        Preprocess().with_values(mean="red")


def test_images_without_pillow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    real_import = builtins.__import__

    def no_pil(name, *args, **kwargs):
        if name == "PIL" or name.startswith("PIL."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pil)
    one_line_error(tmp_path, [IMAGE], r"install 'onnxopt\[images\]'")


def test_model_roundtrip_specs_validate_a_real_model(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["image"], ["y"])],
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 4, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    onnx.save(helper.make_model(graph), tmp_path / "m.onnx")
    specs = input_specs(onnx.load(tmp_path / "m.onnx"))
    assert specs == [IMAGE]
