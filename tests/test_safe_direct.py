"""``safe_loads``' direct path (one pass building the Python objects, for in-band pickles
read with the default limits) against the full reader it falls back to.

The direct path handles a subset of the format and leaves anything else to the full
reader, so it must (1) really take the pickles it exists for — numpy's and ndpickle's own
array forms at protocols 2 to 5, in lists and dicts with metadata — and (2) give exactly
what the full reader gives wherever it answers. The full reader is forced by passing an
explicit limit (the direct path runs with the default limits only).

The arrays come from hypothesis (every simple dtype in both byte orders, shapes, C and
Fortran order, strided views numpy packs) and the pickles from ``pickle.dumps`` and
``ndpickle.dumps``; none of them is written here.
"""

import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ndpickle
from ndpickle import _native

FULL = {"max_depth": 1000}  # the default, given explicitly: the full reader only


def full(data):
    return ndpickle.safe_loads(data, **FULL)


def same(a, b, seen=None):
    """Deep equality with types, dtypes, shapes, strides, writeability and sharing."""
    seen = {} if seen is None else seen
    assert type(a) is type(b)
    if isinstance(a, (list, dict, np.ndarray, tuple, bytearray)):
        if id(a) in seen:
            assert seen[id(a)] is b, "sharing differs"
            return
        seen[id(a)] = b
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and a.strides == b.strides
        assert a.flags.writeable == b.flags.writeable
        assert a.tobytes() == b.tobytes()
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            same(x, y, seen)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            same(a[k], b[k], seen)
    elif isinstance(a, float) and a != a:
        assert b != b
    else:
        assert a == b


def direct(data):
    took, obj = _native._direct_loads(data)
    assert took, "the direct path left this pickle to the full reader"
    return obj


# The scalar dtypes of the differential against pickle (numbers, datetimes, strings, both
# byte orders, longdouble): the single pass builds numbers and datetimes itself and the rest
# through the core's full constructor.
from test_safe_differential import scalar_dtypes  # noqa: E402

@st.composite
def arrays(draw):
    a = draw(hnp.arrays(scalar_dtypes, hnp.array_shapes(min_dims=0, max_dims=3, max_side=6)))
    view = draw(st.sampled_from(["as is", "fortran", "step", "reversed"]))
    if view == "fortran":
        a = np.asfortranarray(a)
    elif view == "step" and a.ndim:
        a = a[::2]
    elif view == "reversed" and a.ndim:
        a = a[::-1]
    return a


WRITERS = {
    "protocol 2": lambda x: pickle.dumps(x, protocol=2),
    "protocol 3": lambda x: pickle.dumps(x, protocol=3),
    "protocol 4": lambda x: pickle.dumps(x, protocol=4),
    "protocol 5": lambda x: pickle.dumps(x, protocol=5),
    "ndpickle.dumps": ndpickle.dumps,
}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(arrays(), min_size=1, max_size=4), st.sampled_from(sorted(WRITERS)))
def test_direct_path_matches_full_reader_and_pickle(arrs, writer):
    obj = {"meta": {"name": "run", "step": 3, "ok": True, "t": (1.5, None)}, "arrays": arrs,
           "again": arrs[0]}
    data = WRITERS[writer](obj)
    took, got = _native._direct_loads(data)
    want = full(data)
    same(want, pickle.loads(data))
    if took:
        same(got, want)
    # Through the public entry point, whichever path it takes.
    same(ndpickle.safe_loads(data), want)


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_direct_path_takes_the_array_pickles_it_is_for(writer):
    rng = np.random.default_rng(0)
    obj = {
        "small": [rng.random(10) for _ in range(50)],
        "ints": rng.integers(0, 100, (30, 40)).astype("<i4"),
        "strided": rng.random((50, 50))[:, ::2],
        "broadcast": np.broadcast_to(rng.random(64), (64, 64)),
        "fortran": np.asfortranarray(rng.integers(0, 255, (20, 30)).astype("u1")),
        "swapped": np.arange(5, dtype=">i2"),
        "label": "x" * 100,
        "n": 2**40,
    }
    data = WRITERS[writer](obj)
    same(direct(data), full(data))


@pytest.mark.parametrize(
    "obj",
    [
        [[1, 2]] * 2,  # a list shared twice: the full reader keeps the sharing
        {"a": bytearray(b"x")} | {"b": None},
        np.array([1, 2], dtype=object),
        np.zeros(3, [("a", "<i4"), ("b", "<f8")]),
        np.zeros(1 << 17),  # large data: viewed by the full reader
        {1, 2},
        2**100,
    ],
    ids=["shared list", "bytearray", "object dtype", "struct", "large", "set", "big int"],
)
def test_what_the_direct_path_leaves_goes_to_the_full_reader(obj):
    for protocol in (2, 5):
        data = pickle.dumps(obj, protocol=protocol)
        want = pickle.loads(data)
        got = ndpickle.safe_loads(data) if not isinstance(obj, np.ndarray) or obj.dtype != object else None
        if got is not None:
            if isinstance(want, np.ndarray):
                np.testing.assert_array_equal(got, want)
            elif isinstance(want, set):
                assert got == want
            else:
                same(got, want)


def test_recursive_list_comes_back_recursive():
    a = []
    a.append(a)
    got = ndpickle.safe_loads(pickle.dumps(a, protocol=5))
    assert got[0] is got


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80\x05",
        pickle.dumps([np.arange(3.0)], protocol=5)[:-1],  # no STOP
        pickle.dumps([np.arange(3.0)], protocol=5)[:40],  # cut in the middle
        b"\x80\x05cos\nsystem\n(S'echo hi'\ntR.",
        b"\x80\x05K\x01K\x02e.",  # APPEND onto an int
        b"\x80\x05]h\x00.",  # GET of a memo entry that was never set
        b"\x80\x05](\x94K\x01.",  # MEMOIZE of the mark (found by the convert fuzz target)
        b"\x80\x05](K\x01e(a.",  # APPEND onto the mark
        b"\x80\x05K\x01(b.",  # BUILD onto the mark
    ],
    ids=["empty", "no opcodes", "no stop", "truncated", "os.system", "append on int", "bad get",
         "memoize mark", "append on mark", "build on mark"],
)
def test_bad_input_gives_the_full_readers_error(data):
    assert _native._direct_loads(data) == (False, None)
    with pytest.raises(ndpickle.DecodeError) as direct_err:
        ndpickle.safe_loads(data)
    with pytest.raises(ndpickle.DecodeError) as full_err:
        full(data)
    assert str(direct_err.value) == str(full_err.value)


def test_explicit_limits_and_trailing_bytes_use_the_full_reader():
    data = ndpickle.dumps([np.arange(10.0) + i for i in range(20)])
    assert _native._direct_loads(data)[0]
    with pytest.raises(ndpickle.DecodeError):
        ndpickle.safe_loads(data, max_alloc_bytes=1024)
    with pytest.raises(ndpickle.DecodeError):
        ndpickle.safe_loads(data + b"junk", strict=True)
    same(ndpickle.safe_loads(data + b"junk"), full(data))


def test_shared_tuples_as_dtype_arguments_cost_linear_work():
    # t[k+1] = (t[k], t[k]) through the memo, 60 levels deep, handed to numpy.dtype: the
    # single pass turns call arguments into plain values, which would copy the shared tuples
    # 2**60 times; each value is charged, so it gives up and the full reader refuses it
    # within its copy limit.
    p = bytearray(b"\x80\x04cnumpy\ndtype\nK\x01\x85\x940")
    for i in range(60):
        p += b"h" + bytes([i]) + b"h" + bytes([i]) + b"\x86\x940"
    p += b"h" + bytes([60]) + b"\x85R."
    assert _native._direct_loads(bytes(p)) == (False, None)
    with pytest.raises(ndpickle.DecodeError, match="copied through shared references"):
        ndpickle.safe_loads(bytes(p))


def test_protocol_2_data_goes_to_numpy_without_a_second_copy():
    # Protocol 2 spells array data as latin-1 text that `_codecs.encode` turns into bytes:
    # decoded once in Rust, that memory is the array's (as the full reader hands it over),
    # not copied again; small arrays are copied into numpy's own memory by both readers.
    a = np.arange(2048, dtype=np.float64)  # 16 KiB
    data = pickle.dumps([a, a + 1], protocol=2)
    got = direct(data)
    want = full(data)
    same(got, want)
    for g in got:
        assert type(g.base).__name__ == "RawBuffer" and g.flags.writeable
    g = got[0]
    g[0] = -1.0
    assert got[0][0] == -1.0 and got[1][0] == 1.0
