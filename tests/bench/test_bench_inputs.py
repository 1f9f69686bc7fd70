"""Input specs, dynamic-dim resolution and its errors, random and given data."""
from __future__ import annotations

import numpy as np
import onnx.parser
import pytest

from onnxopt.bench.inputs import check_feeds, data_feeds, input_specs, random_feeds, resolve_shapes
from onnxopt.errors import DataError

MODEL = onnx.parser.parse_model("""
<ir_version: 8, opset_import: ["" : 17]>
g (float[batch, 3, H, W] image, int64[batch, seq] ids, uint8[2] raw, bool[1] flag) => (float[batch, 3, H, W] y) {
    y = Relu(image)
}
""")


def test_input_specs_skip_initializers() -> None:
    model = onnx.parser.parse_model("""
    <ir_version: 3, opset_import: ["" : 9]>
    g (float[2] x, float[2] w) => (float[2] y) <float[2] w = {1.0, 2.0}> { y = Add(x, w) }
    """)
    assert [s.name for s in input_specs(model)] == ["x"]
    specs = input_specs(MODEL)
    assert [(s.name, s.dtype, s.shape) for s in specs][1] == ("ids", np.dtype(np.int64), ("batch", "seq"))


def test_resolve_from_dims_and_shapes() -> None:
    specs = input_specs(MODEL)
    shapes = resolve_shapes(specs, shapes={"image": (2, 3, 8, 8)}, dims={"batch": 2, "seq": 5})
    assert shapes == {"image": (2, 3, 8, 8), "ids": (2, 5), "raw": (2,), "flag": (1,)}


def test_a_dim_no_input_uses_is_named() -> None:
    # a misspelt --dim would otherwise be ignored and the dim it meant reported as unresolved, or left at its default
    with pytest.raises(DataError, match=r"--dim names \['bacth'\], which no input's shape uses; its symbolic dims are "
                                        r"\['H', 'W', 'batch', 'seq'\]"):
        resolve_shapes(input_specs(MODEL), dims={"bacth": 2, "seq": 5})


def test_unresolved_dims_are_named() -> None:
    with pytest.raises(DataError) as err:
        resolve_shapes(input_specs(MODEL), dims={"batch": 1})
    message = str(err.value)
    assert "image[2]='H'" in message and "image[3]='W'" in message and "ids[1]='seq'" in message
    assert "--dim" in message and "--shape image=N,N,N,N" in message
    assert "\n" not in message


@pytest.mark.parametrize("shapes", [{"image": (1, 4, 8, 8)}, {"image": (1, 3, 8)}, {"nope": (1,)}])
def test_bad_shapes(shapes: dict) -> None:
    with pytest.raises(DataError):
        resolve_shapes(input_specs(MODEL), shapes=shapes, dims={"batch": 1, "seq": 2, "H": 4, "W": 4})


def test_random_feeds_ranges_and_dtypes() -> None:
    specs = input_specs(MODEL)
    shapes = resolve_shapes(specs, dims={"batch": 4, "seq": 64, "H": 8, "W": 8})
    feeds = random_feeds(specs, shapes)
    assert {k: v.dtype for k, v in feeds.items()} == {
        "image": np.float32, "ids": np.int64, "raw": np.uint8, "flag": np.bool_}
    assert feeds["image"].shape == (4, 3, 8, 8) and -1 <= feeds["image"].min() and feeds["image"].max() < 1
    assert 0 <= feeds["ids"].min() and feeds["ids"].max() < 8
    np.testing.assert_array_equal(random_feeds(specs, shapes)["image"], feeds["image"])
    check_feeds(specs, feeds, "m")


def test_an_integer_mask_is_a_padded_batchs_mask() -> None:
    # random integers as an attention mask send a BERT's masked scores to NaN, before and after optimizing
    model = onnx.parser.parse_model("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (int64[batch, seq] input_ids, int64[batch, seq] attention_mask) => (int64[batch, seq] y) {
        y = Add(input_ids, attention_mask)
    }""")
    specs = input_specs(model)
    feeds = random_feeds(specs, resolve_shapes(specs, dims={"batch": 2, "seq": 6}))
    np.testing.assert_array_equal(feeds["attention_mask"], [[1, 1, 1, 1, 0, 0]] * 2)
    assert feeds["input_ids"].max() > 1  # other integer inputs stay random


def test_data_from_iterable() -> None:
    specs = input_specs(MODEL)[:1]
    sample = {"image": np.ones((1, 3, 2, 2), np.float64)}
    feeds = data_feeds([sample, sample], specs)
    assert feeds["image"].dtype == np.float32
    with pytest.raises(DataError, match="lacks inputs"):
        data_feeds([{"other": np.ones(1)}], specs)
    with pytest.raises(DataError, match="no sample"):
        data_feeds([], specs)


def test_check_feeds_rejects_other_inputs() -> None:
    specs = input_specs(MODEL)[:1]
    with pytest.raises(DataError, match="share their inputs"):
        check_feeds(specs, {"x": np.ones(1, np.float32)}, "m")
    with pytest.raises(DataError, match="declares"):
        check_feeds(specs, {"image": np.ones((1, 4, 2, 2), np.float32)}, "m")


def test_data_from_npz_directory(tmp_path) -> None:
    pytest.importorskip("onnxopt.calibration.datasets", reason="onnxopt.calibration is not installed")
    specs = input_specs(MODEL)[:1]
    np.savez(tmp_path / "s0.npz", image=np.ones((1, 3, 2, 2), np.float32))
    feeds = data_feeds(str(tmp_path), specs)
    assert feeds["image"].shape == (1, 3, 2, 2)
