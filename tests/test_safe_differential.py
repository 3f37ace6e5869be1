"""Hypothesis differential: ``ndpickle.safe_loads(x)`` against ``pickle.loads(x)`` for numpy
arrays of generated dtypes (scalars, strings, datetimes of every unit, structs with titles,
offsets, alignment and sub-arrays, both byte orders) and layouts (slices with steps,
transposes, broadcasts, overlapping strides), written by ``pickle.dumps`` at protocols 2-5
(in-band and out-of-band) and by ``ndpickle.dumps`` (raw and compressed).

Compared: type, dtype (with its fields, titles, offsets and itemsize), shape, strides,
the bytes of the values (struct padding excluded), writeability, and sharing (the array is pickled twice in one list and once in a dict).

200 examples in the default run; ``python -m pytest -m slow tests/test_safe_differential.py``
runs 3000.
"""

import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ndpickle

ORDERS = st.sampled_from("<>=|")


def with_order(dt: np.dtype, order: str) -> np.dtype:
    return dt if order == "|" else dt.newbyteorder(order)


scalar_dtypes = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="?"),
    hnp.unsigned_integer_dtypes(endianness="?"),
    hnp.floating_dtypes(endianness="?"),
    hnp.complex_number_dtypes(endianness="?"),
    # longdouble and clongdouble, in the platform's 16-byte storage.
    hnp.floating_dtypes(endianness="?", sizes=(8 * np.dtype(np.longdouble).itemsize,)),
    hnp.complex_number_dtypes(endianness="?", sizes=(16 * np.dtype(np.longdouble).itemsize,)),
    hnp.datetime64_dtypes(endianness="?"),
    hnp.timedelta64_dtypes(endianness="?"),
    hnp.byte_string_dtypes(max_len=8),
    hnp.unicode_string_dtypes(endianness="?", max_len=4),
    st.sampled_from([np.dtype("f2"), np.dtype(">f2")]),
)


@st.composite
def struct_dtypes(draw, depth=0):
    n = draw(st.integers(1, 3))
    names = draw(st.lists(st.text("abcxyz", min_size=1, max_size=3), min_size=n, max_size=n, unique=True))
    fields = []
    offset = 0
    for name in names:
        base = draw(scalar_dtypes if depth >= 1 else st.one_of(scalar_dtypes, struct_dtypes(depth + 1)))
        if draw(st.booleans()):
            base = np.dtype((base, tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=2)))))
        offset += draw(st.integers(0, 3))  # padding
        fields.append((name, base, offset))
        offset += base.itemsize
    spec = {
        "names": [f[0] for f in fields],
        "formats": [f[1] for f in fields],
        "offsets": [f[2] for f in fields],
        "itemsize": offset + draw(st.integers(0, 4)),
    }
    if draw(st.booleans()):
        spec["titles"] = [draw(st.sampled_from([None, "T" + f[0]])) for f in fields]
        if len({t for t in spec["titles"] if t} | set(spec["names"])) < len(
            [t for t in spec["titles"] if t]
        ) + len(spec["names"]):
            spec.pop("titles")
    if draw(st.booleans()):
        # Aligned: numpy computes offsets and itemsize itself.
        return np.dtype({k: spec[k] for k in ("names", "formats")}, align=True)
    return np.dtype(spec)


dtypes = st.one_of(scalar_dtypes, struct_dtypes())


@st.composite
def arrays(draw):
    dt = draw(dtypes)
    a = draw(hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)))
    layout = draw(st.sampled_from(["plain", "step", "transpose", "broadcast", "overlap", "readonly"]))
    if layout == "step" and a.ndim:
        a = a[:: draw(st.sampled_from([1, 2, -1, -2]))]
    elif layout == "transpose":
        a = a.T
    elif layout == "broadcast":
        a = np.broadcast_to(a, (2, *a.shape))
    elif layout == "overlap" and a.ndim == 1 and a.size >= 2:
        n = a.size - 1
        a = np.lib.stride_tricks.as_strided(a, (n, 2), (a.strides[0], a.strides[0]), writeable=False)
    elif layout == "readonly":
        a = a.copy()
        a.flags.writeable = False
    return a


WRITERS = ["p2", "p3", "p4", "p5", "p5-oob", "nd", "nd-lz4", "nd-zstd"]


def write(obj, writer):
    if writer == "p5-oob":
        bufs = []
        return pickle.dumps(obj, 5, buffer_callback=bufs.append), bufs
    if writer.startswith("p"):
        return pickle.dumps(obj, int(writer[1])), None
    comp = writer.split("-")[1] if "-" in writer else None
    return ndpickle.dumps(obj, compression=comp), None


def fields_of(dt):
    if dt.fields is None:
        return None
    return {k: (fields_of(v[0]), v[0].str, v[1], v[2:] ) for k, v in dt.fields.items()}


def value_bytes(x):
    """The bytes of ``x``'s values: a struct's fields one by one, without its padding (whose
    bytes numpy itself does not keep: a copy may change them)."""
    if x.dtype.names is None:
        return x.tobytes()
    return b"".join(value_bytes(x[name]) for name in x.dtype.names)


def same_array(want, got, where):
    assert type(got) is type(want), where
    assert got.dtype == want.dtype and got.dtype.str == want.dtype.str, (where, want.dtype, got.dtype)
    assert fields_of(got.dtype) == fields_of(want.dtype), where
    assert got.dtype.itemsize == want.dtype.itemsize and got.dtype.isalignedstruct == want.dtype.isalignedstruct
    assert got.shape == want.shape, where
    assert got.strides == want.strides, (where, want.strides, got.strides)
    assert got.flags.writeable == want.flags.writeable, where
    assert value_bytes(got) == value_bytes(want), where


def check(a, writer):
    obj = [a, a, {"k": a}]
    data, bufs = write(obj, writer)
    loads_bufs = None if bufs is None else [b.raw() for b in bufs]
    want = pickle.loads(data, buffers=loads_bufs)
    safe_bufs = None if bufs is None else [b.raw() for b in bufs]
    got = ndpickle.safe_loads(data, buffers=safe_bufs)
    for i, (w, g) in enumerate(zip([want[0], want[1], want[2]["k"]], [got[0], got[1], got[2]["k"]])):
        same_array(w, g, (writer, i))
    assert (got[0] is got[1]) == (want[0] is want[1]), writer
    assert (got[0] is got[2]["k"]) == (want[0] is want[2]["k"]), writer


COMMON = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@settings(max_examples=200, **COMMON)
@given(arrays(), st.sampled_from(WRITERS))
def test_safe_loads_matches_pickle_loads(a, writer):
    check(a, writer)


@pytest.mark.slow
@settings(max_examples=3000, **COMMON)
@given(arrays(), st.sampled_from(WRITERS))
def test_safe_loads_matches_pickle_loads_3000(a, writer):
    check(a, writer)
