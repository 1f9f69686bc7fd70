"""Tensor decoding: the typed-field fast path gives what numpy_helper gives, for every field it reads."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxopt.ir import Tensor


@pytest.mark.parametrize("dtype, values", [
    (TensorProto.FLOAT, [1.5, -2.25, 3e38, float("nan")]),
    (TensorProto.DOUBLE, [1 / 3, -1e300, 0.0, 2.0]),
    (TensorProto.INT64, [2**62, -(2**62), 0, 7]),
    (TensorProto.INT32, [2**31 - 1, -(2**31), 0, 7]),
    (TensorProto.UINT64, [2**64 - 1, 0, 1, 2]),
    (TensorProto.FLOAT16, [1.0, 0.5, -2.0, 65504.0]),  # packed in int32_data: numpy_helper's path
    (TensorProto.BOOL, [True, False, True, True]),
])
def test_typed_fields_decode_like_numpy_helper(dtype, values):
    proto = helper.make_tensor("t", dtype, [2, 2], values)  # typed fields, no raw_data
    assert not proto.HasField("raw_data")
    got, want = Tensor.from_proto(proto).numpy(), numpy_helper.to_array(proto)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()


def test_a_scalar_from_a_typed_field_keeps_rank_zero():
    proto = helper.make_tensor("s", TensorProto.INT64, [], [5])
    assert Tensor.from_proto(proto).numpy().shape == ()
    assert int(Tensor.from_proto(proto).numpy()) == 5 == int(numpy_helper.to_array(proto))
    assert np.isnan(Tensor.from_proto(helper.make_tensor("n", TensorProto.FLOAT, [1], [float("nan")])).numpy()[0])
