"""``ndpickle.serialize`` of one plain ``numpy.ndarray`` takes a native path (the core writes
the pickle, no Python pickler): it must give what the pickler path gives, frame for frame
in the header, and arrays equal in value, dtype, strides and writeability after loading with
``ndpickle.deserialize`` and with stock ``pickle.loads``."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import ndpickle
from ndpickle import _native


def _pickler_path(a, compression, span_threshold=0.5):
    data, buffers = ndpickle._pickle_out_of_band(a, "auto", span_threshold)
    return _native.serialize(data, buffers, compression, True, None, None)


def _readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


CASES = {
    "c": np.random.default_rng(0).random((100, 50)),
    "fortran": np.asfortranarray(np.arange(600.0).reshape(30, 20)),
    "reversed": np.arange(1200.0).reshape(40, 30)[::-1, ::-1],
    "dense strided": np.arange(10000.0).reshape(100, 100)[:, :90],
    "sparse strided": np.arange(10000.0).reshape(100, 100)[:, ::3],
    "transposed": np.arange(24.0).reshape(2, 3, 4).transpose(1, 0, 2),
    "read-only broadcast": np.broadcast_to(np.arange(8.0), (5, 8)),
    "read-only": _readonly(np.arange(10)),
    "empty": np.zeros((0, 3)),  # numpy 2 gives it zero strides
    "empty 1-d": np.zeros((0,)),
    "0-d": np.array(3.5),
    "struct": np.zeros(4, [("a", "<i4"), ("b", ">f8", (2,))]),
    "aligned struct": np.zeros(3, np.dtype([("a", "i1"), ("b", "<f8")], align=True)),
    "str": np.array(["ab", "c"]),
    "bytes": np.array([b"ab", b"c"]),
    "datetime": np.arange(3).astype("M8[ns]"),
    "timedelta": np.arange(3).astype("m8[s]"),
    "float16": np.ones(5, np.float16),
    "complex64": np.ones(3, np.complex64),
    "bool": np.array([True, False]),
    "big-endian": np.arange(6, dtype=">i8"),
    "large": np.random.default_rng(1).random(1 << 18),
    "compressible": np.repeat(np.arange(64.0), 4096),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("compression", [None, "auto", "lz4", "zstd"])
def test_native_path_matches_the_pickler_path(name, compression):
    a = CASES[name]
    fast = _native.serialize_array(a, compression, True, None, None, 0.5)
    assert fast is not None, name
    header, frames = fast
    h2, f2 = _pickler_path(a, compression)
    assert header.keys() == h2.keys()
    for key in ("compressed", "compression", "codec", "filter", "writeable"):
        assert header[key] == h2[key], (key, header[key], h2[key])
    assert header["lengths"][1:] == h2["lengths"][1:]
    assert len(frames) == len(f2)
    for loaded in (ndpickle.deserialize(header, frames), ndpickle.deserialize(h2, f2)):
        assert loaded.dtype == a.dtype and loaded.shape == a.shape
        np.testing.assert_array_equal(loaded, a)
    fast_loaded = ndpickle.deserialize(header, frames)
    slow_loaded = ndpickle.deserialize(h2, f2)
    assert fast_loaded.strides == slow_loaded.strides
    assert fast_loaded.flags.writeable == slow_loaded.flags.writeable
    if compression is None:
        stock = pickle.loads(frames[0], buffers=frames[1:])
        np.testing.assert_array_equal(stock, a)
        assert stock.strides == slow_loaded.strides


def test_serialize_takes_the_native_path_for_plain_arrays(monkeypatch):
    calls = []
    real = _native.serialize_array

    def spy(*args):
        out = real(*args)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(ndpickle._native, "serialize_array", spy)
    a = np.arange(10.0)
    np.testing.assert_array_equal(ndpickle.deserialize(*ndpickle.serialize(a)), a)
    assert calls == [True]
    # Layouts other than "auto" and other objects take the pickler.
    ndpickle.serialize(a, layout="pack")
    ndpickle.serialize([a])
    assert calls == [True]


@pytest.mark.parametrize(
    "a",
    [
        np.ma.array([1, 2]),
        np.array([None, 1], dtype=object),
        np.zeros(2, [("o", "O")]),
        np.matrix([[1, 2]]),
        np.zeros(3, "V0"),
    ],
    ids=["masked", "object", "object field", "matrix", "V0"],
)
def test_what_the_native_path_leaves_to_the_pickler(a):
    assert _native.serialize_array(a, None, True, None, None, 0.5) is None
    out = ndpickle.deserialize(*ndpickle.serialize(a, compression=None))
    assert type(out) is type(a)


def test_a_writable_broadcast_stays_writable():
    x = np.broadcast_to(np.arange(10), (20, 10))
    x.setflags(write=True)
    assert _native.serialize_array(x, None, True, None, None, 0.5) is None
    y = ndpickle.deserialize(*ndpickle.serialize(x))
    assert y.flags.writeable and y.strides == x.strides


def test_span_threshold_is_checked():
    with pytest.raises(ValueError, match="span_threshold"):
        _native.serialize_array(np.arange(3), None, True, None, None, 0.0)


@pytest.mark.parametrize(
    "dtype",
    [
        np.dtype("float64"),
        np.dtype(">f8"),
        np.dtype("<i2"),
        np.dtype(np.int64).newbyteorder(">"),
        np.dtype("f8", metadata={"unit": "m"}),
        np.dtype("u1"),
    ],
    ids=["builtin f8", "big-endian f8", "builtin i2", "swapped i8", "metadata", "builtin u1"],
)
def test_every_dtype_spelling_keeps_its_dtype(dtype):
    # numpy's builtin dtypes are recognised by identity; others (byte-swapped, with
    # metadata) take the long way, and the metadata one is left to numpy's reduce.
    a = np.arange(12).astype(dtype).reshape(3, 4)
    header, frames = ndpickle.serialize(a, compression=None)
    for out in (
        ndpickle.deserialize(header, frames),
        pickle.loads(frames[0], buffers=frames[1:]),
    ):
        assert out.dtype == a.dtype and out.dtype.str == a.dtype.str
        np.testing.assert_array_equal(out, a)
    if dtype.metadata:
        assert _native.serialize_array(a, None, True, None, None, 0.5) is None
    else:
        assert _native.serialize_array(a, None, True, None, None, 0.5) is not None
