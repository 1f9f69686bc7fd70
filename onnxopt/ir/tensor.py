"""Tensor: an immutable, lazily loaded numpy view of an initializer or constant."""
from __future__ import annotations

import math
import hashlib
import os
from typing import BinaryIO

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Element types whose raw bytes are exactly numpy's little-endian layout (the fast, zero-copy path).
_PLAIN_DTYPES: dict[int, np.dtype] = {
    t: np.dtype(helper.tensor_dtype_to_np_dtype(t)).newbyteorder("<")
    for t in (
        TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.INT8, TensorProto.UINT8,
        TensorProto.INT16, TensorProto.UINT16, TensorProto.INT32, TensorProto.UINT32, TensorProto.INT64,
        TensorProto.UINT64, TensorProto.BOOL,
    )
}


class Tensor:
    """Constant data: backed by a numpy array, a TensorProto (decoded on first use) or external data (memory-mapped)."""

    __slots__ = ("dtype", "shape", "_array", "_proto", "_external", "_base_dir", "_digest", "_wire")

    def __init__(self, dtype: int, shape: tuple[int, ...]) -> None:
        self.dtype = dtype
        self.shape = shape
        self._array: np.ndarray | None = None
        self._proto: TensorProto | None = None
        self._external: dict[str, str] | None = None
        self._base_dir = ""
        self._digest: bytes | None = None
        self._wire: tuple[str, bytes] | None = None  # (name, serialized(name)) of the last call

    @classmethod
    def from_array(cls, array: np.ndarray | np.generic | float | int) -> Tensor:
        """Wrap a numpy array (not copied; treat it as read-only afterwards)."""
        array = np.asarray(array)
        tensor = cls(helper.np_dtype_to_tensor_dtype(array.dtype), tuple(array.shape))
        tensor._array = array
        return tensor

    @classmethod
    def from_proto(cls, proto: TensorProto, base_dir: str = "") -> Tensor:
        """Wrap a TensorProto without decoding it; external data is resolved against base_dir."""
        tensor = cls(proto.data_type, tuple(proto.dims))
        tensor._proto = proto
        if proto.data_location == TensorProto.EXTERNAL:
            tensor._external = {e.key: e.value for e in proto.external_data}
            tensor._base_dir = base_dir
        return tensor

    @property
    def is_loaded(self) -> bool:
        """True once the data has been decoded into a numpy array."""
        return self._array is not None

    @property
    def is_external(self) -> bool:
        """True when the data lives in an external file (and is memory-mapped on use)."""
        return self._external is not None and self._array is None

    @property
    def external_location(self) -> str | None:
        """The external data file (relative to the model) while the data is not loaded yet, else None."""
        return self._external.get("location", "") if self._external is not None else None

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of the data, computed without loading it."""
        if self._array is not None:
            return int(self._array.nbytes)
        np_dtype = _PLAIN_DTYPES.get(self.dtype)
        itemsize = np_dtype.itemsize if np_dtype is not None else 1
        return self.size * itemsize

    def numpy(self) -> np.ndarray:
        """The data as a read-only numpy array (decoded or memory-mapped on first call, then cached)."""
        if self._array is None:
            self._array = self._load()
            self._array.flags.writeable = False
            self._proto = None
            self._external = None
            self._wire = None  # written from the array from now on (raw_data), as a decoded tensor always is
        return self._array

    def _load(self) -> np.ndarray:
        proto = self._proto
        assert proto is not None
        np_dtype = _PLAIN_DTYPES.get(self.dtype)
        if self._external is not None:
            path = os.path.join(self._base_dir, self._external["location"])
            if not os.path.isfile(path):
                raise FileNotFoundError(f"external data file {path} of tensor {proto.name!r} is missing")
            if np_dtype is not None:
                offset = int(self._external.get("offset", 0))
                if self.size == 0:
                    return np.zeros(self.shape, np_dtype)
                return np.memmap(path, dtype=np_dtype, mode="r", offset=offset, shape=self.shape)
            return numpy_helper.to_array(proto, self._base_dir)
        if np_dtype is not None and proto.HasField("raw_data"):
            return np.frombuffer(proto.raw_data, dtype=np_dtype).reshape(self.shape)
        typed_field = _TYPED_FIELDS.get(self.dtype)
        if typed_field is not None:  # the common typed fields, without numpy_helper's general (slower) path
            return np.array(getattr(proto, typed_field), dtype=np_dtype).reshape(self.shape)
        return numpy_helper.to_array(proto)

    def fingerprint(self) -> bytes:
        """A 16-byte hash of dtype, shape and up to 4,096 evenly spaced elements, computed once.

        Equal tensors have equal fingerprints; equal fingerprints only say the data is worth comparing.
        """
        if self._digest is None:
            hasher = hashlib.blake2b(digest_size=16)
            hasher.update(repr((self.dtype, self.shape)).encode())
            flat = self.numpy().reshape(-1)
            sample = flat[:: max(1, flat.size // 4096)]
            if sample.dtype.kind in "OSU":
                hasher.update(repr(sample.tolist()).encode())
            else:
                hasher.update(np.ascontiguousarray(sample).tobytes())  # small; also works for ml_dtypes arrays
            self._digest = hasher.digest()
        return self._digest

    def to_proto(self, name: str) -> TensorProto:
        """A TensorProto holding the data inline (external data is read in)."""
        if self._proto is not None and self._external is None:
            if self._proto.name != name:
                self._proto.name = name
            return self._proto
        return numpy_helper.from_array(np.asarray(self.numpy()), name)

    def serialized_parts(self, name: str) -> list[bytes | memoryview | TensorProto]:
        """The TensorProto's wire form in pieces, without copying raw data (protos are serialized when written)."""
        if self._proto is not None and self._external is None:
            return [self.to_proto(name)]
        array = self.numpy()
        if self.dtype not in _PLAIN_DTYPES:
            return [self.to_proto(name)]
        header = TensorProto(name=name, dims=self.shape, data_type=self.dtype).SerializeToString()
        data = _contiguous_le(array, self.dtype)
        # field 9 (raw_data), wire type 2: tag 0x4a, then the length, then the bytes
        return [header, b"\x4a", encode_varint(data.nbytes), _byte_view(data)]

    def serialized(self, name: str) -> bytes:
        """The TensorProto's bytes, data inline, kept for the next call with the same name (for small tensors,
        which every shape inference serializes again)."""
        if self._wire is None or self._wire[0] != name:
            parts = self.serialized_parts(name)
            self._wire = (name, b"".join(p.SerializeToString() if isinstance(p, TensorProto) else p for p in parts))
        return self._wire[1]

    def write_external(self, name: str, stream: BinaryIO, location: str) -> TensorProto:
        """Append the data to an open external-data file; return the proto that points at it."""
        offset = stream.tell()
        pad = (-offset) % 64
        if pad:
            stream.write(b"\0" * pad)
            offset += pad
        array = self.numpy()
        if self.dtype in _PLAIN_DTYPES:
            data = _contiguous_le(array, self.dtype)
            stream.write(_byte_view(data))
            length = data.nbytes
        else:
            raw = numpy_helper.from_array(np.asarray(array), name).raw_data
            stream.write(raw)
            length = len(raw)
        proto = TensorProto(name=name, dims=self.shape, data_type=self.dtype)
        proto.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
            entry = proto.external_data.add()
            entry.key, entry.value = key, value
        return proto

    def __repr__(self) -> str:
        return f"Tensor({onnx.helper.tensor_dtype_to_string(self.dtype)}, {list(self.shape)})"


# element types whose values a TensorProto keeps in a field of exactly that type (others are packed or widened)
_TYPED_FIELDS = {
    TensorProto.FLOAT: "float_data", TensorProto.DOUBLE: "double_data", TensorProto.INT64: "int64_data",
    TensorProto.INT32: "int32_data", TensorProto.UINT64: "uint64_data",
}


def _contiguous_le(array: np.ndarray, dtype: int) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=_PLAIN_DTYPES[dtype])


def _byte_view(data: np.ndarray) -> memoryview:
    # flat uint8 view, no copy; memoryview.cast("B") refuses shapes with a zero in them, e.g. (1, 0)
    return memoryview(data.reshape(-1).view(np.uint8))


def encode_varint(value: int) -> bytes:
    """Protobuf base-128 varint encoding of a non-negative integer."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
