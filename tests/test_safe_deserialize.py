"""``safe_deserialize``: ``serialize()`` payloads read back without running code, compressed
frames decompressed by the safe reader within its limits, and every malformed payload a
``DecodeError``."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest

import ndpickle

ARRAYS = {
    "walk": np.cumsum(np.random.default_rng(1).standard_normal(300_000)),
    "labels": np.repeat(np.arange(100, dtype=np.int32), 3000),
    "reversed": np.arange(200_000, dtype=np.float32)[::-1],
    "strided": np.arange(400_000, dtype=np.int64).reshape(400, 1000)[:, ::3],
    "broadcast": np.broadcast_to(np.arange(1000.0), (500, 1000)),
    "small": np.arange(5, dtype=np.uint8),
}


@pytest.mark.parametrize("compression", [None, "auto", "lz4", "zstd"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_round_trips_like_deserialize(compression: Any, shuffle: bool) -> None:
    obj = {"meta": {"run": 3, "tags": ["a", "b"]}, **ARRAYS}
    header, frames = ndpickle.serialize(obj, compression=compression, shuffle=shuffle)
    want = ndpickle.deserialize(header, frames)
    got = ndpickle.safe_deserialize(header, frames)
    assert got["meta"] == want["meta"]
    for k, a in ARRAYS.items():
        np.testing.assert_array_equal(got[k], a)
        assert got[k].dtype == want[k].dtype and got[k].strides == want[k].strides


def test_frames_decompressed_on_the_way_are_used_as_they_are() -> None:
    # Dask's transport decompresses frames whose header names a plain codec.
    header, frames = ndpickle.serialize(ARRAYS["labels"], compression="lz4", shuffle=False)
    assert header["compression"][1] == "lz4"
    raw = [frames[0]] + [
        ndpickle._native.decompress_frame(info, f) if info is not None else f
        for f, info in zip(frames[1:], header["frame-info"][1:])
    ]
    np.testing.assert_array_equal(ndpickle.safe_deserialize(header, raw), ARRAYS["labels"])


def test_code_in_the_pickle_frame_is_refused() -> None:
    header, frames = ndpickle.serialize(ARRAYS["small"])

    class Evil:
        def __reduce__(self) -> Any:
            import os

            return os.system, ("echo pwned",)

    frames = [pickle.dumps(Evil(), protocol=5)] + list(frames[1:])
    with pytest.raises(ndpickle.DecodeError, match="not allowed"):
        ndpickle.safe_deserialize(header, frames)


def test_decompression_is_bounded_by_the_limits() -> None:
    zeros = np.zeros(1 << 24, dtype=np.float64)  # 128 MiB, compresses to almost nothing
    header, frames = ndpickle.serialize(zeros, compression="zstd")
    assert sum(memoryview(f).nbytes for f in frames) < 1 << 20
    assert not ndpickle.safe_deserialize(header, frames).any()
    with pytest.raises(ndpickle.DecodeError, match="limit") as e:
        ndpickle.safe_deserialize(header, frames, max_decompressed_bytes=1 << 20)
    assert e.value.kind == "Limit"
    with pytest.raises(ndpickle.DecodeError, match="total allocation"):
        ndpickle.safe_deserialize(header, frames, max_alloc_bytes=1 << 26)


def malformed() -> list[tuple[str, Any, Any]]:
    header, frames = ndpickle.serialize(ARRAYS["walk"], compression="lz4")
    frames = list(frames)
    assert header["frame-info"][1] is not None
    info = bytes(header["frame-info"][1])
    cases: list[tuple[str, Any, Any]] = [
        ("not a dict", ["serializer"], frames),
        ("another serializer", {**header, "serializer": "pickle"}, frames),
        ("no frames", header, []),
        ("too few frames", header, frames[:1]),
        ("lengths not a list", {**header, "lengths": 5}, frames),
        ("negative length", {**header, "lengths": [len(frames[0]), -1]}, frames),
        ("frame-info not bytes", {**header, "frame-info": [None, 17]}, frames),
        ("frame is no buffer", header, [frames[0], 12]),
        ("raw frame of the wrong length", {**header, "frame-info": [None, None]}, frames),
        ("truncated frame", header, [frames[0], bytes(frames[1])[:100]]),
        ("corrupt frame", header, [frames[0], bytes(len(memoryview(frames[1])))]),
        ("corrupt frame header", {**header, "frame-info": [None, b"\xff" + info[1:]]}, frames),
        ("frame header with trailing bytes", {**header, "frame-info": [None, info + b"x"]}, frames),
        ("truncated pickle", header, [bytes(frames[0])[:-3], frames[1]]),
    ]
    return cases


@pytest.mark.parametrize("name,header,frames", malformed(), ids=[c[0] for c in malformed()])
def test_malformed_payloads_are_decode_errors(name: str, header: Any, frames: Any) -> None:
    with pytest.raises(ndpickle.DecodeError):
        ndpickle.safe_deserialize(header, frames)


def test_pyarrow_slices_from_serialize_read_back_validated() -> None:
    pa = pytest.importorskip("pyarrow")
    n = 1000
    t = pa.table({"a": list(range(n)), "s": [str(i) for i in range(n)], "l": [[i] for i in range(n)]})
    part = t.slice(100, 300)
    for compression in (None, "lz4", "zstd", "auto"):
        header, frames = ndpickle.serialize(part, compression=compression)
        back = ndpickle.safe_deserialize(header, frames)
        back.validate(full=True)
        assert back.equals(part), compression
