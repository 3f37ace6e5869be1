"""The ``serialize()`` wire format as one native module builds and reads it, and the portable
dtype form ``ndpickle.Pickler`` writes for every dtype the core models."""

from __future__ import annotations

import pickle
import pickletools
from typing import Any

import numpy as np
import pytest

import ndpickle


def walk(n: int = 200_000) -> np.ndarray:
    return np.cumsum(np.random.default_rng(7).integers(-3, 4, n)).astype(np.int64)


def test_header_says_which_frames_are_compressed() -> None:
    data = {"walk": walk(), "noise": np.random.default_rng(1).random(50_000)}
    header, frames = ndpickle.serialize(data, compression="lz4")
    assert header["compressed"][0] is False
    assert header["compressed"] == [info is not None for info in header["frame-info"]]
    assert any(header["compressed"][1:]), "the walk compresses"
    for i, compressed in enumerate(header["compressed"]):
        assert (memoryview(frames[i]).nbytes < header["lengths"][i]) == compressed


@pytest.mark.parametrize("safe", [False, True])
def test_headers_without_the_compressed_key_still_read(safe: bool) -> None:
    a = walk()
    header, frames = ndpickle.serialize(a, compression="zstd")
    old = {k: v for k, v in header.items() if k != "compressed"}
    load = ndpickle.safe_deserialize if safe else ndpickle.deserialize
    np.testing.assert_array_equal(load(old, frames), a)


@pytest.mark.parametrize("safe", [False, True])
def test_a_shuffled_frame_at_raw_length_is_not_taken_as_raw(safe: bool) -> None:
    # Transports only decode plain frames (those with a "compression" name): a shuffled
    # frame the header calls compressed must be decoded, whatever its length.
    a = walk()
    header, frames = ndpickle.serialize(a, compression="lz4", shuffle=True)
    assert header["compressed"][1] and header["compression"][1] is None
    raw = [frames[0], a.tobytes()]
    load = ndpickle.safe_deserialize if safe else ndpickle.deserialize
    with pytest.raises(ndpickle.DecodeError):
        load(header, raw)


def test_a_plain_frame_decoded_on_the_way_is_used_as_is() -> None:
    a = walk()
    header, frames = ndpickle.serialize(a, compression="lz4", shuffle=False)
    assert header["compression"][1] == "lz4"
    decoded = [frames[0], a.tobytes()]
    np.testing.assert_array_equal(ndpickle.deserialize(header, decoded), a)
    np.testing.assert_array_equal(ndpickle.safe_deserialize(header, decoded), a)


def test_compressed_flag_without_frame_info_is_refused() -> None:
    header, frames = ndpickle.serialize(walk(), compression="lz4")
    bad = dict(header, **{"frame-info": [None] * len(frames)})
    with pytest.raises(ValueError, match="frame-info"):
        ndpickle.deserialize(bad, frames)
    with pytest.raises(ndpickle.DecodeError, match="frame-info"):
        ndpickle.safe_deserialize(bad, frames)
    with pytest.raises(ValueError, match="not a list"):
        ndpickle.deserialize(dict(header, compressed=3), frames)


def test_the_decompress_globals_are_the_native_functions() -> None:
    names = ndpickle._native.PICKLE_GLOBALS
    assert set(names) == {"_decompress", "_decompress_target", "_decompress_into"}
    for name, fn in names.items():
        assert getattr(ndpickle, name) is fn
    blob = ndpickle.dumps(walk(), compression="lz4")
    assert b"_decompress" in blob
    np.testing.assert_array_equal(pickle.loads(blob), walk())


def dtype_ops(blob: bytes) -> list[str]:
    return [op.name for op, _, _ in pickletools.genops(blob)]


ALIGNED_SUBARRAY = np.dtype([("a", np.dtype([("b", "i1")], align=True), (2,))])

DTYPES: list[Any] = [
    "<f8",
    ">i4",
    "?",
    "S5",
    "<U7",
    "V3",
    "<M8[ns]",
    ">m8[10s]",
    "c16",
    np.dtype([("x", "<f4"), ("y", "i1", (2, 3))]),
    np.dtype({"names": ["a", "b"], "formats": ["i1", "<f8"], "offsets": [0, 8], "itemsize": 24}),
    np.dtype([("a", "u1"), ("b", "<i8")], align=True),
    np.dtype([(("title", "a"), "<i2"), ("b", "u1")]),
    ALIGNED_SUBARRAY,
    np.dtype(("<f8", (2, 2))),
]


@pytest.mark.parametrize("spec", DTYPES, ids=[str(d) for d in DTYPES])
@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_dtypes_take_the_portable_form(spec: Any, protocol: int) -> None:
    dt = np.dtype(spec)
    a = np.zeros(3, dt)
    blob = ndpickle.dumps(a, protocol=protocol)
    assert "BUILD" not in dtype_ops(blob), "numpy.dtype(spec, align, True), no state"
    back = pickle.loads(blob)
    assert back.dtype == a.dtype and back.dtype.isalignedstruct == a.dtype.isalignedstruct
    assert back.tobytes() == a.tobytes()
    assert pickle.loads(ndpickle.dumps(dt, protocol=protocol)) == dt


def test_the_aligned_subarray_struct_pickles() -> None:
    # It used to fail with "TypeError: 'NoneType' object is not iterable".
    a = np.zeros(2, ALIGNED_SUBARRAY)
    a["a"]["b"] = [[1, 2], [3, 4]]
    header, frames = ndpickle.serialize(a)
    for back in (ndpickle.deserialize(header, frames), pickle.loads(ndpickle.dumps(a))):
        assert back.dtype == a.dtype
        np.testing.assert_array_equal(back["a"]["b"], a["a"]["b"])


def test_dtypes_the_core_does_not_model_keep_numpys_reduce() -> None:
    dt = np.dtype("<f8", metadata={"unit": "m"})
    back = pickle.loads(ndpickle.dumps(np.zeros(3, dt)))
    assert back.dtype == dt and back.dtype.metadata == {"unit": "m"}


@pytest.mark.parametrize("readonly", [False, True])
def test_packed_views_keep_their_writeability(readonly: bool) -> None:
    base = np.arange(10_000.0).reshape(100, 100)
    view = base[::10, ::10]
    if readonly:
        view.flags.writeable = False
    header, frames = ndpickle.serialize(view, compression=None)
    assert header["lengths"][1] == view.nbytes, "packed, not a span"
    back = ndpickle.deserialize(header, frames)
    np.testing.assert_array_equal(back, view)
    assert back.flags.writeable == (not readonly)
