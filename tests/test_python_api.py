"""The Python package: dumps/loads/serialize round trips through stdlib pickle, the layout
decision seen from Python (zero copies, spans, broadcasts, packing), the Pickler hooks and
their composition with cloudpickle, errors and the type stub.

Needs the package installed (`pip install .[test]` or `maturin develop`).
"""

from __future__ import annotations

import gc
import io
import pickle
import subprocess
import sys
import time
import weakref

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ndpickle

# -- helpers ---------------------------------------------------------------------------------


def address(buf) -> int:
    """Address of the first byte of a buffer-like object."""
    mv = memoryview(buf).cast("B")
    if mv.nbytes == 0:
        return 0
    return np.frombuffer(mv, np.uint8).ctypes.data


def base_range(a: np.ndarray) -> tuple[int, int]:
    """Address range of the memory owning `a`."""
    root = a
    while isinstance(root.base, np.ndarray):
        root = root.base
    return root.__array_interface__["data"][0], root.__array_interface__["data"][0] + root.nbytes


def unique_nbytes(a: np.ndarray) -> int:
    """Bytes of the elements of `a` with broadcast (zero-stride) axes collapsed."""
    n = a.itemsize
    for d, s in zip(a.shape, a.strides):
        n *= 1 if s == 0 else d
    return n


def element_bytes(x: np.ndarray):
    """The bytes of every element, field by field (numpy leaves the padding of structured
    copies uninitialised, so whole-element bytes are not comparable)."""
    if x.dtype.names:
        return tuple(element_bytes(x[n]) for n in x.dtype.names)
    return x.tobytes()


def same(a: np.ndarray, b: np.ndarray) -> None:
    assert type(b) is np.ndarray
    assert b.dtype == a.dtype
    assert b.shape == a.shape
    assert element_bytes(a) == element_bytes(b)


# -- hypothesis round trips -------------------------------------------------------------------

DTYPES = [
    "<f8", ">f8", "<f4", "<f2", ">i2", "<i4", ">i8", "|u1", "|i1", "|b1", "<c16", ">c8",
    "<M8[ns]", ">m8[s]", "|S5", "<U3", ">U2", "|V3",
    [("a", "<i4"), ("b", ">f8")],
    {"names": ["x", "y"], "formats": ["<u2", "<f4"], "offsets": [0, 4], "itemsize": 12},
    [("p", "<f4", (2,)), ("q", "|u1")],
]


def all_dtypes():
    out = [np.dtype(d) for d in DTYPES]
    out.append(np.dtype("i4, i1", align=True))
    try:
        import ml_dtypes

        out += [np.dtype(ml_dtypes.bfloat16), np.dtype(ml_dtypes.float8_e4m3fn)]
    except ImportError:  # pragma: no cover
        pass
    return out


@st.composite
def arrays(draw):
    dtype = draw(st.sampled_from(all_dtypes()))
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=4)))
    n = int(np.prod(shape)) * dtype.itemsize
    raw = draw(st.binary(min_size=n, max_size=n))
    a = np.frombuffer(bytearray(raw), dtype=dtype).reshape(shape)
    if draw(st.booleans()):
        a = np.asfortranarray(a)
    # Slice every axis with a random start, stop and (possibly negative) step.
    index = []
    for d in a.shape:
        step = draw(st.sampled_from([1, 1, 2, 3, -1, -2]))
        start = draw(st.integers(0, max(d - 1, 0)))
        index.append(slice(start if step > 0 else None, None, step))
    a = a[tuple(index)] if index else a
    if a.ndim > 1 and draw(st.booleans()):
        a = a.transpose(draw(st.permutations(range(a.ndim))))
    if draw(st.booleans()):
        # Broadcast: a new leading axis, and any length-1 axis stretched.
        new_shape = (draw(st.integers(1, 4)),) + tuple(
            draw(st.integers(1, 3)) if d == 1 else d for d in a.shape
        )
        a = np.broadcast_to(a, new_shape)
    if draw(st.booleans()):
        a = a.view()
        a.flags.writeable = False
    return a


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=arrays(), protocol=st.sampled_from([2, 3, 4, 5]))
def test_dumps_round_trip_in_band(a, protocol):
    data = ndpickle.dumps(a, protocol=protocol)
    b = pickle.loads(data)
    same(a, b)
    if protocol == 5:
        # The buffer carries the source's writeability, as numpy's own pickles do.
        assert b.flags.writeable == a.flags.writeable, (a.strides, a.flags, a.base)
    else:
        assert b.flags.writeable
    # In-band streams ship at most the span, never a broadcast's repeats.
    assert len(data) <= 2 * unique_nbytes(a) + 2048


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=arrays())
def test_serialize_round_trip_zero_copy(a):
    header, frames = ndpickle.serialize(a, compression=None)
    assert len(frames) == 2, "one array, one out-of-band buffer"
    assert len(frames[0]) < 2048, "no array data in-band"
    lo, hi = base_range(a)
    buf = frames[1]
    assert isinstance(buf, memoryview)
    nbytes = memoryview(buf).nbytes
    if nbytes and not (lo <= address(buf) and address(buf) + nbytes <= hi):
        # Not a view of the array's memory: only a sparse view is packed, to its elements.
        assert nbytes == unique_nbytes(a)
    b = ndpickle.deserialize(header, frames)
    same(a, b)
    assert b.flags.writeable == a.flags.writeable
    if nbytes and lo <= address(buf) < hi:
        # The loaded array views the very same memory.
        assert base_range(b)[0] == address(buf) or np.shares_memory(a, b)


# -- layouts seen from Python -----------------------------------------------------------------


def test_strided_view_sends_the_span_zero_copy():
    a = np.random.default_rng(0).random((512, 1024))
    v = a[:, ::2]
    header, frames = ndpickle.serialize(v, compression=None)
    assert len(frames[0]) < 512
    assert address(frames[1]) == a.ctypes.data
    assert memoryview(frames[1]).nbytes == a.nbytes - 8
    same(v, ndpickle.deserialize(header, frames))


def test_reversed_view_sends_the_span():
    a = np.arange(1000.0)
    header, frames = ndpickle.serialize(a[::-1], compression=None)
    assert address(frames[1]) == a.ctypes.data
    same(a[::-1], ndpickle.deserialize(header, frames))


def test_broadcast_ships_only_its_row():
    row = np.arange(1000.0)
    b = np.broadcast_to(row, (1000, 1000))
    header, frames = ndpickle.serialize(b, compression=None)
    assert [memoryview(f).nbytes for f in frames[1:]] == [8000]
    assert address(frames[1]) == row.ctypes.data
    same(b, ndpickle.deserialize(header, frames))
    assert len(ndpickle.dumps(b)) < 8000 + 512  # in-band too


def test_sparse_view_is_packed_once():
    a = np.arange(10_000.0).reshape(100, 100)
    v = a[::10, ::10]
    header, frames = ndpickle.serialize(v, compression=None)
    assert memoryview(frames[1]).nbytes == v.nbytes
    same(v, ndpickle.deserialize(header, frames))
    _, frames = ndpickle.serialize(v, layout="span", compression=None)
    assert address(frames[1]) == a.ctypes.data
    _, frames = ndpickle.serialize(a[:, ::2], layout="pack", compression=None)
    assert memoryview(frames[1]).nbytes == a.nbytes // 2


def test_f_order_is_zero_copy():
    a = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    header, frames = ndpickle.serialize(a, compression=None)
    assert address(frames[1]) == a.ctypes.data
    b = ndpickle.deserialize(header, frames)
    same(a, b)
    assert b.flags.f_contiguous


def test_readonly_frames_are_copied_only_when_writeable_is_promised():
    a = np.arange(10.0)
    header, frames = ndpickle.serialize(a)
    wire = [bytes(f) for f in frames]  # what a network receive gives
    b = ndpickle.deserialize(header, wire)
    same(a, b)
    assert b.flags.writeable


def test_pickler_buffer_callback_out_of_band():
    a = np.arange(100.0).reshape(10, 10)[:, ::2]
    buffers = []
    f = io.BytesIO()
    ndpickle.Pickler(f, protocol=5, buffer_callback=buffers.append).dump({"a": a, "n": 1})
    assert len(buffers) == 1 and isinstance(buffers[0], pickle.PickleBuffer)
    out = pickle.loads(f.getvalue(), buffers=buffers)
    same(a, out["a"])


# -- API -------------------------------------------------------------------------------------


def test_all_is_explicit():
    for name in ndpickle.__all__:
        assert hasattr(ndpickle, name), name
    for name in ["dumps", "loads", "dump", "load", "serialize", "deserialize", "safe_loads",
                 "safe_load", "Pickler", "Unpickler", "DecodeError", "EncodeError"]:
        assert name in ndpickle.__all__


# np.matrix (a subclass left to numpy's own reducer) warns on creation; that is numpy's doing.
@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_mixed_objects_all_protocols():
    obj = {
        "a": np.arange(6, dtype="<i4").reshape(2, 3),
        "s": "text",
        "t": (1, 2.5, None, b"xy", bytearray(b"z")),
        "o": np.array([{"x": 1}, None], dtype=object),
        "m": np.ma.masked_array([1, 2, 3], mask=[0, 1, 0]),
        "mat": np.matrix([[1, 2], [3, 4]]),
        "scalar": np.float32(1.5),
        "dt": np.dtype(">u2"),
    }
    for protocol in range(0, 6):
        out = pickle.loads(ndpickle.dumps(obj, protocol=protocol))
        same(obj["a"], out["a"])
        assert out["s"] == "text" and out["t"] == obj["t"]
        assert out["o"][0] == {"x": 1} and out["o"][1] is None
        assert type(out["m"]) is np.ma.MaskedArray and out["m"].mask.tolist() == [0, 1, 0]
        assert type(out["mat"]) is np.matrix
        assert out["scalar"] == np.float32(1.5) and out["dt"] == np.dtype(">u2")


def test_shared_arrays_keep_identity():
    a = np.arange(5.0)
    out = ndpickle.loads(ndpickle.dumps([a, a]))
    assert out[0] is out[1]


def test_dump_load_paths_and_files(tmp_path):
    a = np.arange(20.0).reshape(4, 5)[::-1]
    p = tmp_path / "x.pkl"
    ndpickle.dump({"a": a}, p)
    same(a, ndpickle.load(p)["a"])
    same(a, pickle.loads(p.read_bytes())["a"])
    ndpickle.dump(a, str(p))
    with open(p, "rb") as f:
        same(a, ndpickle.load(f))
    buf = io.BytesIO()
    ndpickle.dump(a, buf, protocol=4)
    buf.seek(0)
    same(a, ndpickle.load(buf))


def test_compression_options_are_checked():
    with pytest.raises(ValueError, match="unknown compression"):
        ndpickle.dumps(np.zeros(3), compression="gzip")
    with pytest.raises(ValueError, match="level"):
        ndpickle.dumps(np.zeros(3), level=3)
    with pytest.raises(ValueError, match="level"):
        ndpickle.serialize(np.zeros(3), compression="lz4", level=3)
    with pytest.raises(ValueError, match="unknown compression"):
        ndpickle.serialize(np.zeros(3), compression="brotli")


def test_bad_options():
    with pytest.raises(ValueError, match="layout"):
        ndpickle.dumps(np.zeros(3), layout="diagonal")
    with pytest.raises(ValueError, match="span_threshold"):
        ndpickle.Pickler(io.BytesIO(), 5, span_threshold=0.0)
    with pytest.raises(ValueError):
        ndpickle.dumps(np.zeros(3), protocol=6)


def test_exceptions():
    assert issubclass(ndpickle.DecodeError, pickle.UnpicklingError)
    assert issubclass(ndpickle.EncodeError, pickle.PicklingError)
    assert ndpickle.DecodeError.__module__ == "ndpickle"
    e = ndpickle.DecodeError("x")
    assert e.offset is None and e.opcode is None


def test_pickler_and_unpickler_are_the_c_classes_subclassed():
    assert issubclass(ndpickle.Pickler, pickle.Pickler)
    assert issubclass(ndpickle.Unpickler, pickle.Unpickler)
    f = io.BytesIO()
    ndpickle.Pickler(f, 5, fix_imports=True, buffer_callback=None).dump(np.zeros(2))
    f.seek(0)
    same(np.zeros(2), ndpickle.Unpickler(f).load())


def test_subclass_may_override_reducer_override():
    seen = []

    class Logging(ndpickle.Pickler):
        def reducer_override(self, obj):
            seen.append(type(obj).__name__)
            return super().reducer_override(obj)

    f = io.BytesIO()
    bufs = []
    Logging(f, 5, buffer_callback=bufs.append).dump([np.arange(4.0)[::2], {1}])
    assert "ndarray" in seen
    assert len(bufs) == 1
    out = pickle.loads(f.getvalue(), buffers=bufs)
    same(np.arange(4.0)[::2], out[0])


def test_composes_with_cloudpickle():
    cloudpickle = pytest.importorskip("cloudpickle")

    class CloudPickler(ndpickle.Pickler, cloudpickle.Pickler):
        """cloudpickle's functions and classes by value, ndpickle's arrays."""

    a = np.arange(100.0).reshape(10, 10)
    k = 3.0
    f = io.BytesIO()
    bufs = []
    CloudPickler(f, 5, buffer_callback=bufs.append).dump(
        {"fn": lambda x: x * k, "view": a[:, ::2]}
    )
    assert len(bufs) == 1 and address(bufs[0].raw()) == a.ctypes.data
    out = pickle.loads(f.getvalue(), buffers=bufs)
    assert out["fn"](2) == 6.0
    same(a[:, ::2], out["view"])


def test_no_reference_leaks():
    a = np.arange(1000.0).reshape(10, 100)
    views = [a, a[:, ::2], a[::-1], np.broadcast_to(a[0], (5, 100)), a[::3, ::7]]
    refs = [weakref.ref(v) for v in views]
    for protocol in (2, 5):
        for v in views:
            pickle.loads(ndpickle.dumps(v, protocol=protocol))
            ndpickle.deserialize(*ndpickle.serialize(v))
    del views, v, a
    gc.collect()
    assert all(r() is None for r in refs)


def test_many_small_arrays_not_slower_than_pickle():
    small = [np.arange(10.0) for _ in range(10_000)]

    def best(fn):
        t = []
        for _ in range(5):
            s = time.perf_counter()
            fn()
            t.append(time.perf_counter() - s)
        return min(t)

    ours = best(lambda: ndpickle.dumps(small))
    theirs = best(lambda: pickle.dumps(small, protocol=5))
    assert ours <= theirs * 1.1, (ours, theirs)


def test_stub_matches_the_extension():
    pytest.importorskip("mypy")
    r = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "ndpickle._native"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def _numpy1_python():
    import os
    from pathlib import Path

    env = os.environ.get("NDPICKLE_NUMPY1_PYTHON")
    local = Path(__file__).resolve().parent.parent / ".venv-np1" / "bin" / "python"
    return env or (str(local) if local.exists() else None)


def test_streams_load_under_numpy1(tmp_path):
    """What numpy 2 + ndpickle writes, numpy 1.26 loads with plain pickle and warnings as
    errors — aligned structs included (written as a portable dtype spec)."""
    py = _numpy1_python()
    if py is None:
        pytest.skip("set NDPICKLE_NUMPY1_PYTHON (or create .venv-np1) to run")
    a = np.arange(24.0).reshape(4, 6)
    objs = {
        "s": a[:, ::2], "r": a[::-1], "b": np.broadcast_to(a[0], (5, 6)),
        "f": np.asfortranarray(a), "p": a[::3, ::4],
        "al": np.zeros(2, dtype=np.dtype("i4, i1", align=True)),
        "nal": np.zeros(2, np.dtype([("o", np.dtype("i4, i1", align=True)), ("z", "u1")])),
    }
    for p in (2, 3, 4, 5):
        (tmp_path / f"{p}.pkl").write_bytes(ndpickle.dumps(objs, protocol=p))
    code = (
        "import pickle, sys, numpy as np\n"
        "a = np.arange(24.0).reshape(4, 6)\n"
        "for p in (2, 3, 4, 5):\n"
        "    with open(f'{sys.argv[1]}/{p}.pkl', 'rb') as f: o = pickle.load(f)\n"
        "    assert (o['s'] == a[:, ::2]).all() and (o['r'] == a[::-1]).all()\n"
        "    assert (o['b'] == a[0]).all() and o['f'].flags.f_contiguous and (o['p'] == a[::3, ::4]).all()\n"
        "    assert o['al'].dtype.isalignedstruct and o['al'].dtype.itemsize == 8\n"
        "    assert o['nal'].dtype.itemsize == 9\n"
        "print(np.__version__)\n"
    )
    r = subprocess.run([py, "-W", "error", "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("1.")


def test_aligned_struct_dtype_round_trip():
    dt = np.dtype({"names": ["r", "b"], "formats": ["u1", "<f8"], "titles": ["Red", None]}, align=True)
    x = np.zeros(3, dt)
    out = pickle.loads(ndpickle.dumps(x))
    assert out.dtype == dt and out.dtype.isalignedstruct


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_views_of_an_array_already_sent_refer_to_it(protocol):
    # A base array and views into it (slices, transposes, reversed): the memory travels
    # once, and after loading the views share the base's memory again.
    rng = np.random.default_rng(4)
    a = rng.random((256, 256))
    obj = {"a": a, "cols": a[:, ::2], "T": a.T, "rows": a[10:200], "rev": a[::-1]}
    blob = ndpickle.dumps(obj, protocol=protocol)
    plain = pickle.dumps(obj, protocol=protocol)
    assert len(blob) < 1.2 * a.nbytes * (2 if protocol < 3 else 1) < len(plain)
    for load in (pickle.loads, ndpickle.loads, ndpickle.safe_loads):
        got = load(blob)
        for k, v in obj.items():
            np.testing.assert_array_equal(got[k], v, err_msg=k)
        if load is not ndpickle.safe_loads:
            assert all(np.shares_memory(got[k], got["a"]) for k in obj)
    if protocol == 5:
        header, frames = ndpickle.serialize(obj, compression=None)
        assert len(frames) == 2, "one out-of-band buffer for all five arrays"
        got = ndpickle.deserialize(header, frames)
        assert all(np.shares_memory(got[k], got["a"]) for k in obj)
    # A read-only base does not lend its memory to a writable view (protocol 5 keeps the
    # read-only flag; below it every array loads writable).
    ro = a.copy()
    ro.flags.writeable = False
    rv = ro[::2]
    mixed = ndpickle.loads(ndpickle.dumps({"ro": ro, "rv": rv, "w": a, "wv": a[::2]},
                                          protocol=protocol))
    assert mixed["wv"].flags.writeable
    np.testing.assert_array_equal(mixed["rv"], rv)
    assert np.shares_memory(mixed["rv"], mixed["ro"])
    assert not np.shares_memory(mixed["wv"], mixed["ro"])
    if protocol == 5:
        assert not mixed["ro"].flags.writeable and not mixed["rv"].flags.writeable


def test_small_views_are_sent_on_their_own():
    a = np.arange(100.0)  # under the 64 KiB threshold: no lookup, no reference
    blob = ndpickle.dumps({"a": a, "v": a[::2]})
    got = pickle.loads(blob)
    np.testing.assert_array_equal(got["v"], a[::2])
    assert not np.shares_memory(got["v"], got["a"])


def test_clear_memo_forgets_the_arrays_views_refer_to():
    a = np.random.default_rng(5).random((128, 128))
    buf = io.BytesIO()
    p = ndpickle.Pickler(buf, 5)
    p.dump(a)
    ref = weakref.ref(a)
    p.clear_memo()
    # After clear_memo a view is written on its own, not as a reference to `a`, which is
    # neither in pickle's memo nor kept alive by the reducer any more.
    p.dump(a[::2])
    first = pickle.Unpickler(io.BytesIO(buf.getvalue()))
    np.testing.assert_array_equal(first.load(), a)
    np.testing.assert_array_equal(first.load(), a[::2])
    p.clear_memo()  # pickle's memo held the view, and the view holds `a`
    del a
    gc.collect()
    assert ref() is None, "the pickler still holds the array"
    assert p is not None
