"""pyarrow objects through ``ndpickle.Pickler`` / ``dumps`` / ``serialize``
(python/ndpickle/_arrow.py): loaded by stock ``pickle`` + pyarrow and by ``safe_loads``,
equal and valid (``validate(full=True)``), shipping only the bytes a slice uses, out-of-band
as views of the Arrow memory (checked by address); pyarrow's own pickle tests run with
ndpickle's writer; a pyarrow table through the Dask family."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pc = pytest.importorskip("pyarrow.compute")

import ndpickle  # noqa: E402

N = 45  # elements per test array: several bitmap bytes, a slice at every bit offset


def _valid(rng: np.random.Generator, nulls: bool) -> Any:
    """A validity mask (True = valid), or None."""
    if not nulls:
        return None
    return rng.random(N) > 0.3


def _ints(rng: np.random.Generator, n: int = N) -> np.ndarray:
    return rng.integers(-1000, 1000, n)


def _strings(rng: np.random.Generator, n: int = N) -> list[str]:
    return ["".join("abcdé"[j] for j in rng.integers(0, 5, rng.integers(0, 9))) for _ in range(n)]


def _mask(values: list[Any], valid: Any) -> list[Any]:
    return values if valid is None else [v if ok else None for v, ok in zip(values, valid)]


def _lists(rng: np.random.Generator, n: int = N) -> list[list[int]]:
    return [list(_ints(rng, int(rng.integers(0, 5)))) for _ in range(n)]


# Array builders: (rng, nulls) -> array of N elements.
MAKERS: dict[str, Callable[[np.random.Generator, bool], Any]] = {}


def maker(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def deco(f: Callable[..., Any]) -> Callable[..., Any]:
        MAKERS[name] = f
        return f

    return deco


for _name, _t in [
    ("int8", pa.int8()), ("int16", pa.int16()), ("int32", pa.int32()), ("int64", pa.int64()),
    ("uint8", pa.uint8()), ("uint16", pa.uint16()), ("uint32", pa.uint32()),
    ("uint64", pa.uint64()), ("float32", pa.float32()), ("float64", pa.float64()),
    ("date32", pa.date32()), ("date64", pa.date64()), ("time32", pa.time32("ms")),
    ("time64", pa.time64("ns")), ("timestamp", pa.timestamp("us")),
    ("timestamp_tz", pa.timestamp("ns", "Europe/Paris")), ("duration", pa.duration("s")),
]:  # fmt: skip
    def _prim(rng: np.random.Generator, nulls: bool, t: Any = _t) -> Any:
        v = np.abs(_ints(rng)) if not pa.types.is_signed_integer(t) else _ints(rng)
        if pa.types.is_date64(t):
            v = v * 86_400_000
        valid = _valid(rng, nulls)
        mask = None if valid is None else ~valid
        base = {8: pa.int8(), 16: pa.int16(), 32: pa.int32(), 64: pa.int64()}[t.bit_width]
        return pa.array(v, pa.int64(), mask=mask).cast(base, safe=False).view(t)

    MAKERS[_name] = _prim


@maker("float16")
def _f16(rng, nulls):
    valid = _valid(rng, nulls)
    return pa.array(rng.random(N).astype(np.float16), mask=None if valid is None else ~valid)


@maker("bool")
def _bool(rng, nulls):
    return pa.array(_mask(list(rng.random(N) > 0.5), _valid(rng, nulls)), pa.bool_())


@maker("null")
def _null(rng, nulls):
    return pa.nulls(N)


@maker("string")
def _string(rng, nulls):
    return pa.array(_mask(_strings(rng), _valid(rng, nulls)), pa.string())


@maker("large_string")
def _large_string(rng, nulls):
    return pa.array(_mask(_strings(rng), _valid(rng, nulls)), pa.large_string())


@maker("binary")
def _binary(rng, nulls):
    return pa.array(_mask([s.encode() for s in _strings(rng)], _valid(rng, nulls)), pa.binary())


@maker("large_binary")
def _large_binary(rng, nulls):
    vals = [s.encode() for s in _strings(rng)]
    return pa.array(_mask(vals, _valid(rng, nulls)), pa.large_binary())


@maker("string_view")
def _string_view(rng, nulls):
    vals = [s * 5 for s in _strings(rng)]  # some longer than 12 bytes: in the data buffers
    return pa.array(_mask(vals, _valid(rng, nulls)), pa.string_view())


@maker("binary_view")
def _binary_view(rng, nulls):
    vals = [(s * 5).encode() for s in _strings(rng)]
    return pa.array(_mask(vals, _valid(rng, nulls)), pa.binary_view())


@maker("fixed_size_binary")
def _fsb(rng, nulls):
    vals = [bytes(rng.integers(0, 256, 3, dtype=np.uint8)) for _ in range(N)]
    return pa.array(_mask(vals, _valid(rng, nulls)), pa.binary(3))


@maker("decimal128")
def _dec128(rng, nulls):
    from decimal import Decimal

    vals = [Decimal(int(i)) / 100 for i in _ints(rng)]
    return pa.array(_mask(vals, _valid(rng, nulls)), pa.decimal128(12, 2))


@maker("decimal256")
def _dec256(rng, nulls):
    from decimal import Decimal

    vals = [Decimal(int(i)) / 10 for i in _ints(rng)]
    return pa.array(_mask(vals, _valid(rng, nulls)), pa.decimal256(40, 1))


@maker("decimal32")
def _dec32(rng, nulls):
    return _dec128(rng, nulls).cast(pa.decimal32(7, 2))


@maker("decimal64")
def _dec64(rng, nulls):
    return _dec128(rng, nulls).cast(pa.decimal64(12, 2))


@maker("month_day_nano")
def _mdn(rng, nulls):
    vals = [pa.MonthDayNano([int(i), int(i) % 28, int(i) * 1000]) for i in _ints(rng)]
    return pa.array(_mask(vals, _valid(rng, nulls)), pa.month_day_nano_interval())


@maker("list")
def _list(rng, nulls):
    return pa.array(_mask(_lists(rng), _valid(rng, nulls)), pa.list_(pa.int64()))


@maker("large_list")
def _large_list(rng, nulls):
    return pa.array(_mask(_lists(rng), _valid(rng, nulls)), pa.large_list(pa.int32()))


@maker("list_of_strings")
def _list_str(rng, nulls):
    vals = [_strings(rng, int(rng.integers(0, 4))) for _ in range(N)]
    return pa.array(_mask(vals, _valid(rng, nulls)), pa.list_(pa.string()))


@maker("list_view")
def _list_view(rng, nulls):
    return pa.array(_mask(_lists(rng), _valid(rng, nulls)), pa.list_view(pa.int64()))


@maker("large_list_view")
def _large_list_view(rng, nulls):
    return pa.array(_mask(_lists(rng), _valid(rng, nulls)), pa.large_list_view(pa.int16()))


@maker("fixed_size_list")
def _fsl(rng, nulls):
    vals = [list(_ints(rng, 3)) for _ in range(N)]
    return pa.array(_mask(vals, _valid(rng, nulls)), pa.list_(pa.int32(), 3))


@maker("struct")
def _struct(rng, nulls):
    valid = _valid(rng, nulls)
    a = _string(rng, nulls)
    b = pa.array(_ints(rng))
    c = _bool(rng, nulls)
    return pa.StructArray.from_arrays(
        [a, b, c], names=["a", "b", "c"], mask=None if valid is None else pa.array(~valid)
    )


@maker("struct_of_sliced_children")
def _struct_sliced(rng, nulls):
    # Children whose own offsets differ from each other and from the struct's.
    a = MAKERS["int64"](np.random.default_rng(1), nulls)
    full = pa.concat_arrays([a, a])
    s = pa.array(_mask(_strings(rng, 2 * N), None))
    return pa.StructArray.from_arrays([full.slice(3, N), s.slice(11, N)], names=["x", "y"])


@maker("map")
def _map(rng, nulls):
    pairs = [[(k, int(v)) for k, v in zip(_strings(rng, 2), _ints(rng, 2))] for _ in range(N)]
    vals = [p[: int(rng.integers(0, 3))] for p in pairs]
    return pa.array(_mask(vals, _valid(rng, nulls)), pa.map_(pa.string(), pa.int64()))


@maker("dictionary")
def _dictionary(rng, nulls):
    vals = [["red", "green", "blue", "cyan"][i % 4] for i in _ints(rng)]
    return pa.array(_mask(vals, _valid(rng, nulls))).dictionary_encode()


@maker("dictionary_ordered_int8")
def _dictionary_ordered(rng, nulls):
    d = _dictionary(rng, nulls)
    t = pa.dictionary(pa.int8(), pa.string(), ordered=True)
    return pa.DictionaryArray.from_arrays(d.indices.cast(pa.int8()), d.dictionary).cast(t)


@maker("run_end_encoded")
def _ree(rng, nulls):
    vals = np.repeat(_ints(rng, 12), 4)[:N]
    return pc.run_end_encode(pa.array(_mask(list(vals), _valid(rng, nulls)), pa.int64()))


@maker("sparse_union")
def _sparse(rng, nulls):
    ids = pa.array(rng.integers(0, 2, N), pa.int8())
    return pa.UnionArray.from_sparse(
        ids, [MAKERS["int64"](rng, nulls), _string(rng, nulls)], ["i", "s"], [0, 1]
    )


@maker("dense_union")
def _dense(rng, nulls):
    ids = rng.integers(0, 2, N).astype(np.int8)
    offs = np.zeros(N, np.int32)
    counts = [0, 0]
    for i, t in enumerate(ids):
        offs[i] = counts[t]
        counts[t] += 1
    kids = [
        MAKERS["float64"](rng, nulls).slice(0, counts[0]),
        _string(rng, nulls).slice(0, counts[1]),
    ]
    return pa.UnionArray.from_dense(pa.array(ids), pa.array(offs), kids, ["f", "s"])


@maker("uuid")
def _uuid(rng, nulls):
    storage = _fsb(rng, nulls).cast(pa.binary(3))
    raw = [None if v is None else v * 6 for v in storage.to_pylist()]  # 18 bytes -> 16
    st = pa.array([None if v is None else v[:16] for v in raw], pa.binary(16))
    return pa.ExtensionArray.from_storage(pa.uuid(), st)


@maker("json")
def _json(rng, nulls):
    vals = [f'{{"k": {int(i)}}}' for i in _ints(rng)]
    return pa.ExtensionArray.from_storage(pa.json_(), pa.array(_mask(vals, _valid(rng, nulls))))


@maker("bool8")
def _bool8(rng, nulls):
    return pa.ExtensionArray.from_storage(pa.bool8(), MAKERS["int8"](rng, nulls))


@maker("fixed_shape_tensor")
def _tensor(rng, nulls):
    t = pa.fixed_shape_tensor(pa.int32(), (2, 2))
    return pa.ExtensionArray.from_storage(t, _fsl4(rng, nulls))


def _fsl4(rng, nulls):
    vals = [list(_ints(rng, 4)) for _ in range(N)]
    return pa.array(_mask(vals, _valid(rng, nulls)), pa.list_(pa.int32(), 4))


@maker("opaque")
def _opaque(rng, nulls):
    t = pa.opaque(pa.int64(), "geometry", "vendor.example")
    return pa.ExtensionArray.from_storage(t, MAKERS["int64"](rng, nulls))


@maker("nested_list_struct")
def _nested(rng, nulls):
    inner = _struct(rng, nulls)
    offs = np.concatenate([[0], np.cumsum(rng.integers(0, 3, N))]).astype(np.int32)
    offs = np.minimum(offs, len(inner))
    return pa.ListArray.from_arrays(pa.array(offs), inner)


NO_NULLS = {"null", "struct_of_sliced_children", "nested_list_struct"}


def cases() -> list[Any]:
    out = []
    for name in MAKERS:
        for nulls in (False, True):
            if nulls and name in NO_NULLS:
                continue
            out.append(pytest.param(name, nulls, id=f"{name}-{'nulls' if nulls else 'dense'}"))
    return out


def windows(a: Any) -> list[tuple[str, Any]]:
    """The array itself and slices at every bit offset 0-7, plus a slice of a slice."""
    out = [("whole", a)]
    for off in range(8):
        out.append((f"slice({off})", a.slice(off, len(a) - off - 5)))
    out.append(("slice(9,1)", a.slice(9, 1)))
    out.append(("slice(13,0)", a.slice(13, 0)))
    out.append(("slice(len)", a.slice(len(a))))
    out.append(("slice-of-slice", a.slice(3, 30).slice(6, 20)))
    return out


def out_of_band(obj: Any, protocol: int = 5) -> tuple[bytes, list[pickle.PickleBuffer]]:
    bufs: list[pickle.PickleBuffer] = []
    f = io.BytesIO()
    ndpickle.Pickler(f, protocol, buffer_callback=bufs.append).dump(obj)
    return f.getvalue(), bufs


def check_equal(got: Any, expected: Any) -> None:
    assert type(got) is type(expected), (type(got), type(expected))
    if isinstance(expected, (pa.Array, pa.ChunkedArray, pa.RecordBatch, pa.Table)):
        got.validate(full=True)
        assert got.type == expected.type if hasattr(expected, "type") else True
        assert got.equals(expected), (got, expected)
        if isinstance(expected, (pa.RecordBatch, pa.Table)):
            assert got.schema.equals(expected.schema, check_metadata=True)
    else:
        assert got.equals(expected)


@pytest.mark.parametrize("name,nulls", cases())
def test_every_type_and_window_loads_with_stock_pickle(name, nulls):
    a = MAKERS[name](np.random.default_rng(len(name)), nulls)
    assert len(a) == N
    if nulls and name not in NO_NULLS and not name.endswith("union") and name != "run_end_encoded":
        assert a.null_count > 0
    for label, w in windows(a):
        # In-band, protocol 5 and 4; out-of-band; every form is pyarrow's public API.
        for data in (ndpickle.dumps(w), ndpickle.dumps(w, protocol=4)):
            assert b"_restore_array" not in data, label
            check_equal(pickle.loads(data), w)
            check_equal(ndpickle.safe_loads(data), w)
        data, bufs = out_of_band(w)
        check_equal(pickle.loads(data, buffers=bufs), w)
        check_equal(ndpickle.safe_loads(data, buffers=bufs), w)
        header, frames = ndpickle.serialize(w, compression="zstd")
        check_equal(ndpickle.deserialize(header, frames), w)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_slices_ship_fewer_bytes_than_pyarrow(name):
    rng = np.random.default_rng(3)
    a = pa.concat_arrays([MAKERS[name](rng, True if name not in NO_NULLS else False)] * 40)
    s = a.slice(700, 20)
    ours, theirs = len(ndpickle.dumps(s)), len(pickle.dumps(s, 5))
    if name in ("dense_union", "list_view", "large_list_view", "string_view", "binary_view",
                "null"):  # fmt: skip
        # Children / variadic data travel whole, as in the Rust writer; never more than pyarrow.
        assert ours <= theirs * 1.05 + 200, (ours, theirs)
    else:
        assert ours < theirs / 3, (ours, theirs)


def test_five_element_string_slice_is_small():
    col = pc.cast(pa.array(np.arange(1_000_000)), pa.string())
    s = col.slice(500_000, 5)
    assert len(pickle.dumps(s)) > 4_000_000  # pyarrow ships the whole column
    data = ndpickle.dumps(s)
    assert len(data) <= 4096, len(data)
    check_equal(pickle.loads(data), s)


def big_table(n: int) -> Any:
    rng = np.random.default_rng(0)
    ints = rng.integers(0, 1 << 40, n)
    strs = pc.cast(pa.array(rng.integers(0, 10**9, n)), pa.string())
    lens = rng.integers(0, 4, n)
    offs = np.concatenate([[0], np.cumsum(lens)]).astype(np.int32)
    lists = pa.ListArray.from_arrays(pa.array(offs), pa.array(rng.random(int(offs[-1]))))
    cats = pa.DictionaryArray.from_arrays(
        pa.array(rng.integers(0, 50, n).astype(np.int32)),
        pa.array([f"category-{i}" for i in range(50)]),
    )
    valid = rng.random(n) > 0.1
    return pa.table({
        "i": pa.array(ints, mask=~valid), "f": pa.array(rng.random(n)), "s": strs,
        "l": lists, "d": cats,
    })  # fmt: skip


def test_table_slice_ships_its_share():
    t = big_table(200_000)
    s = t.slice(40_000, 20_000)
    theirs = len(pickle.dumps(s, 5))
    ours = len(ndpickle.dumps(s))
    assert theirs >= len(pickle.dumps(t, 5)) * 0.99  # pyarrow: the whole table
    assert ours <= 0.12 * theirs, (ours, theirs)
    check_equal(pickle.loads(ndpickle.dumps(s)), s)
    check_equal(ndpickle.safe_loads(ndpickle.dumps(s)), s)


def arrow_ranges(obj: Any) -> list[tuple[int, int]]:
    """(address, end) of every buffer of a pyarrow object, children and dictionaries too."""
    arrays: list[Any] = []
    if isinstance(obj, pa.Table):
        arrays = [c for col in obj.columns for c in col.chunks]
    elif isinstance(obj, pa.ChunkedArray):
        arrays = list(obj.chunks)
    else:
        arrays = [obj]
    out = []
    while arrays:
        a = arrays.pop()
        out += [(b.address, b.address + b.size) for b in a.buffers() if b is not None]
        if isinstance(a, pa.DictionaryArray):
            arrays.append(a.dictionary)
    return out


def address(buf: Any) -> int:
    return np.frombuffer(buf, np.uint8).ctypes.data if memoryview(buf).nbytes else 0


def test_out_of_band_frames_view_the_arrow_memory():
    t = big_table(50_000)
    s = t.slice(10_000, 5_000)
    ranges = arrow_ranges(t)
    header, frames = ndpickle.serialize(s, compression=None)
    copies = 0
    for f in frames[1:]:
        n = memoryview(f).nbytes
        inside = any(lo <= address(f) and address(f) + n <= hi for lo, hi in ranges)
        if not inside:
            # Only rebased offsets are copies: (rows + 1) offsets of at most 8 bytes.
            assert n <= (5_000 + 1) * 8, n
            copies += 1
    assert copies <= 3  # the string and list offsets (rebased)
    # The float column's frame is exactly its values window: address by address.
    f_col = s.column("f").chunk(0)
    want = f_col.buffers()[1].address + f_col.offset * 8
    assert want in [address(f) for f in frames[1:]]
    # Loading in the same process views the frames: the loaded column is the same memory.
    back = ndpickle.deserialize(header, frames)
    check_equal(back, s)
    got = back.column("f").chunk(0)
    assert got.buffers()[1].address + got.offset * 8 == want


def test_pickler_buffers_are_zero_copy_and_aligned():
    a = pc.cast(pa.array(np.arange(10_000)), pa.float64())  # memory from Arrow's allocator
    assert a.buffers()[1].address % 64 == 0
    data, bufs = out_of_band(a)
    raws = [b.raw() for b in bufs]
    assert [address(r) for r in raws] == [a.buffers()[1].address]
    back = pickle.loads(data, buffers=bufs)
    assert back.buffers()[1].address == a.buffers()[1].address  # 64-byte aligned, kept
    # A window starts where the slice's first element is.
    s = a.slice(16, 100)
    data, bufs = out_of_band(s)
    assert [address(b.raw()) for b in bufs] == [a.buffers()[1].address + 16 * 8]
    assert [b.raw().nbytes for b in bufs] == [800]


def test_buffers_carry_the_item_size_for_the_shuffle():
    a = pa.array(np.linspace(0, 1, 1 << 16))
    _, bufs = out_of_band(a)
    assert memoryview(bufs[0]).itemsize == 8
    shuffled = ndpickle.serialize(a, compression="lz4")
    plain = ndpickle.serialize(a, compression="lz4", shuffle=False)
    size = lambda hf: sum(memoryview(f).nbytes for f in hf[1][1:])  # noqa: E731
    assert size(shuffled) < size(plain)
    check_equal(ndpickle.deserialize(*shuffled), a)


def test_dictionary_is_written_once_per_chunked_array():
    words = pa.array([f"word-{i:06d}" for i in range(20_000)])
    idx = pa.array(np.arange(100_000, dtype=np.int32) % 20_000)
    d = pa.DictionaryArray.from_arrays(idx, words)
    c = pa.chunked_array([d.slice(i * 10_000, 10_000) for i in range(10)])
    dict_bytes = words.nbytes
    data = ndpickle.dumps(c)
    assert dict_bytes < len(data) < dict_bytes + 100_000 * 4 + 20_000, len(data)
    assert len(pickle.dumps(c, 5)) > 10 * dict_bytes  # pyarrow: once per chunk
    back = pickle.loads(data)
    check_equal(back, c)
    # The loaded chunks share one dictionary again.
    assert len({ch.dictionary.buffers()[2].address for ch in back.chunks}) == 1
    # A table's batches share it too.
    t = pa.table({"d": c})
    assert len(ndpickle.dumps(t)) < dict_bytes + 100_000 * 4 + 20_000
    check_equal(ndpickle.safe_loads(ndpickle.dumps(t)), t)


def test_clear_memo_forgets_dictionaries():
    d = pa.array([f"w{i}" for i in range(5000)]).dictionary_encode()
    f = io.BytesIO()
    p = ndpickle.Pickler(f, 5)
    p.dump(d.slice(0, 10))
    p.clear_memo()
    p.dump(d.slice(10, 10))
    f.seek(0)
    first, second = pickle.load(f), pickle.load(f)
    check_equal(first, d.slice(0, 10))
    check_equal(second, d.slice(10, 10))


def test_schema_field_and_types_use_factories():
    schema = pa.schema(
        [
            pa.field("a", pa.timestamp("ms", "UTC"), False, {"k": "v"}),
            pa.field("b", pa.map_(pa.string(), pa.list_(pa.int8(), 2))),
            pa.field("c", pa.dictionary(pa.int16(), pa.string(), True)),
            pa.field("d", pa.dense_union([pa.field("x", pa.int8())], [5])),
            pa.field("e", pa.run_end_encoded(pa.int16(), pa.float32())),
            pa.field("f", pa.uuid()),
        ],
        metadata={"origin": "test"},
    )
    for obj in (schema, schema.field("b"), schema.field("a").type, pa.decimal128(5, 1)):
        data = ndpickle.dumps(obj)
        assert b"type_for_alias" not in data
        assert pickle.loads(data).equals(obj)
        assert ndpickle.safe_loads(data).equals(obj)
        assert pickle.loads(data) == obj


def test_record_batch_and_table_round_trip_with_metadata():
    t = big_table(1000).replace_schema_metadata({"who": "test"})
    for obj in (t, t.slice(100, 10), t.to_batches()[0].slice(5, 50), t.slice(0, 0), t.column("s")):
        data = ndpickle.dumps(obj)
        check_equal(pickle.loads(data), obj)
        check_equal(ndpickle.safe_loads(data), obj)


def test_what_the_form_does_not_represent_goes_to_pyarrow():
    a = pa.array([1, 2, 3]).slice(1)
    # Below protocol 4 (no dotted global names): pyarrow's own reducer.
    for proto in (2, 3):
        data = ndpickle.dumps(a, protocol=proto)
        assert b"_restore_array" in data
        check_equal(pickle.loads(data), a)
    # Tables and batches without columns: from_arrays/from_batches cannot carry a row count.
    empty = pa.table({"x": [1, 2, 3]}).drop_columns(["x"])
    for obj in (empty, empty.to_batches()[0]):
        data = ndpickle.dumps(obj)
        assert data == pickle.dumps(obj, 5)
        assert pickle.loads(data).equals(pickle.loads(pickle.dumps(obj)))
    # Buffers, scalars and other pyarrow objects keep pyarrow's reducers.
    for obj in (pa.py_buffer(b"abc"), pa.scalar(3), pa.scalar("x")):
        assert pickle.loads(ndpickle.dumps(obj)).equals(obj)


class Pair(pa.ExtensionType):
    """A Python-defined extension type (module-level so that pickle finds it)."""

    def __init__(self) -> None:
        super().__init__(pa.struct([("a", pa.int32()), ("b", pa.string())]), "test.pair")

    def __arrow_ext_serialize__(self) -> bytes:
        return b""

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type: Any, serialized: bytes) -> "Pair":
        return Pair()


def test_python_extension_types_load_with_pickle():
    storage = pa.array([{"a": i, "b": str(i)} for i in range(100)], Pair().storage_type)
    a = pa.ExtensionArray.from_storage(Pair(), storage).slice(10, 5)
    data = ndpickle.dumps(a)
    assert len(data) < len(pickle.dumps(a))
    check_equal(pickle.loads(data), a)
    with pytest.raises(ndpickle.DecodeError):
        ndpickle.safe_loads(data)  # the test module's class is not allow-listed


def test_combines_with_cloudpickle():
    cloudpickle = pytest.importorskip("cloudpickle")

    class CloudPickler(ndpickle.Pickler, cloudpickle.Pickler):
        pass

    t = big_table(1000).slice(10, 20)
    f = io.BytesIO()
    CloudPickler(f, 5).dump({"t": t, "f": lambda x: x + 1})
    back = pickle.loads(f.getvalue())
    check_equal(back["t"], t)
    assert back["f"](1) == 2


def test_numpy_only_pickles_do_not_import_pyarrow():
    code = (
        "import sys, ndpickle, numpy as np\n"
        "ndpickle.dumps({'a': np.arange(3), 'b': [1, 'x']})\n"
        "print('pyarrow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_pandas_frames_with_pyarrow_columns():
    pd = pytest.importorskip("pandas")
    t = big_table(100_000).drop_columns(["l"])
    df = t.to_pandas(types_mapper=pd.ArrowDtype)
    for frame in (df, df.iloc[20_000:30_000], df.iloc[5:10]):
        ours, theirs = ndpickle.dumps(frame), pickle.dumps(frame, 5)
        assert len(ours) <= len(theirs), (len(ours), len(theirs))
        pd.testing.assert_frame_equal(pickle.loads(ours), frame)
        header, frames = ndpickle.serialize(frame)
        pd.testing.assert_frame_equal(ndpickle.deserialize(header, frames), frame)


# -- pyarrow's own pickle tests ---------------------------------------------------------------

PYARROW_TESTS = Path(pa.__file__).parent / "tests"
PLUGIN = Path(__file__).parent / "pyarrow_pickle_plugin.py"


@pytest.mark.parametrize("loads", ["pickle", "safe"])
def test_pyarrow_pickle_suite(loads, tmp_path):
    """The installed pyarrow/tests that take the `pickle_module` fixture, with a pickle
    module whose dumps is ndpickle.dumps (and loads pickle.loads or safe_loads)."""
    if not PYARROW_TESTS.is_dir():
        pytest.skip("pyarrow installed without its tests")
    files = [str(PYARROW_TESTS / f) for f in (
        "test_array.py", "test_table.py", "test_types.py", "test_schema.py",
        "test_extension_type.py", "test_scalars.py",
    )]  # fmt: skip
    report = tmp_path / "report.txt"
    env = {**os.environ, "NDPICKLE_PICKLE_LOADS": loads, "NDPICKLE_PICKLE_REPORT": str(report)}
    # The child runs elsewhere: the caller's PYTHONPATH entries made absolute, the plugin first.
    paths = [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([str(PLUGIN.parent), *paths])
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "pyarrow_pickle_plugin",
         "-p", "no:cacheprovider", "-k", "builtin_pickle", "-o", "addopts=",
         "--rootdir", str(PYARROW_TESTS), *files],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    lines = report.read_text().splitlines() if report.exists() else []
    passed = [x for x in lines if x.startswith("passed ")]
    failed = [x for x in lines if x.startswith("failed ")]
    refused = [x for x in lines if x.startswith("refused ")]
    assert len(passed) >= 50, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not failed, "\n".join(failed) + proc.stdout[-5000:]
    # Our writer wrote the arrays of these tests: it did not just defer to pyarrow.
    assert any(x.startswith("wrote ") for x in lines)
    if loads == "pickle":
        assert not refused
    else:
        # safe_loads refuses only globals outside its allow-list: the tests' own Python
        # extension classes and, at protocols 2-3, names pickle reaches through `getattr`
        # (pyarrow's DictionaryScalar._reconstruct). Every array, table, schema, type and
        # scalar form loads.
        for x in refused:
            if "test_union" in x and "refused its arguments: ArrowNotImplementedError" in x:
                # pyarrow cannot rebuild union scalars itself (the test expects
                # pickle.loads to raise ArrowNotImplementedError); safe_loads raises only
                # DecodeError.
                continue
            name = x.split("global ")[-1]
            assert "ForbiddenGlobal" in x, x
            assert "pyarrow.lib." not in name, x
        assert len(refused) <= 10


# -- Dask ------------------------------------------------------------------------------------


def test_pyarrow_partition_through_the_dask_family():
    pytest.importorskip("distributed")
    pd = pytest.importorskip("pandas")
    import ndpickle.dask
    from distributed import Client, LocalCluster
    from distributed.protocol import dumps, loads, to_serialize
    from distributed.protocol.serialize import register_serialization_family

    t = big_table(100_000)
    part = t.slice(30_000, 10_000)  # one partition of a larger table
    frame = part.drop_columns(["l"]).to_pandas(types_mapper=pd.ArrowDtype)

    def wire(obj: Any, family: str) -> tuple[int, Any]:
        frames = dumps({"x": to_serialize(obj)}, serializers=[family], on_error="raise")
        return sum(memoryview(f).nbytes for f in frames), loads(frames, deserializers=[family])["x"]

    ours, back = wire(part, "ndpickle")
    check_equal(back, part)
    theirs, _ = wire(part, "pickle")
    assert ours < theirs / 5, (ours, theirs)  # Dask's pickle family ships the parent buffers

    calls = {"dumps": 0, "loads": 0}

    def counting_dumps(x: Any, context: Any = None) -> Any:
        calls["dumps"] += 1
        return ndpickle.dask.dumps(x, context)

    def counting_loads(header: Any, frames: Any) -> Any:
        calls["loads"] += 1
        return ndpickle.dask.loads(header, frames)

    register_serialization_family("ndpickle-arrow-counted", counting_dumps, counting_loads)
    names = ["ndpickle-arrow-counted", "dask", "pickle", "msgpack"]
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                      host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster, serializers=names, deserializers=names) as client:  # fmt: skip
        fut = client.scatter(part, direct=True)
        total = client.submit(lambda p: pc.sum(p.column("f")).as_py(), fut).result()
        half = client.submit(lambda p: p.slice(0, 5_000), fut).result()
        back = client.gather(fut)
        ffut = client.scatter(frame, direct=True)
        frame_back = client.gather(ffut)
    assert total == pytest.approx(pc.sum(part.column("f")).as_py())
    check_equal(back, part)
    check_equal(half, part.slice(0, 5_000))
    pd.testing.assert_frame_equal(frame_back, frame)
    # Every transfer was encoded by the family; uncompressed frames are marked as Dask's
    # "pickle" family (stock peers decode them too), so not every load comes back here.
    assert calls["dumps"] >= 3 and calls["loads"] >= 1, calls


def test_empty_slices_of_nested_arrays_load_safely():
    # An empty slice keeps its offset and its parent's children: the safe reader's checks
    # that children cover the rows (struct, sparse union, fixed-size list) and that offsets
    # lie within the values (lists) accept every real one.
    st = pa.array([{"a": i, "b": str(i)} for i in range(10)])
    fl = pa.array([[1.0, 2.0]] * 10, pa.list_(pa.float32(), 2))
    un = pa.UnionArray.from_sparse(pa.array([0, 1] * 5, pa.int8()),
                                   [pa.array(range(10)), pa.array([str(i) for i in range(10)])])
    ll = pa.array([[1], [2, 3]] * 5, pa.large_list(pa.int64()))
    for a in (st, fl, un, ll):
        for part in (a[5:5], a[10:], a[3:7], a[0:0]):
            got = ndpickle.safe_loads(pickle.dumps(part, protocol=5))
            assert got.equals(part) and got.offset == part.offset, (a.type, part.offset)


def test_dictionary_scalars_load_safely():
    d = pa.array(["a", "b", "a", None]).dictionary_encode()
    ordered = pa.DictionaryArray.from_arrays(pa.array([0, 1], pa.int8()), pa.array(["x", "y"]), ordered=True)
    for array in (d, pa.array([1, 5, 1]).dictionary_encode(), ordered):
        for i in range(len(array)):
            s = array[i]
            for protocol in (4, 5):
                got = ndpickle.safe_loads(pickle.dumps(s, protocol=protocol))
                assert type(got) is type(s) and got.equals(s) and got.type == s.type
                assert got.is_valid == s.is_valid
    # An index past the dictionary, or of the wrong type, is refused, not built.
    class Forged:
        def __init__(self, index):
            self.index = index

        def __reduce__(self):
            return (pa.lib.DictionaryScalar._reconstruct, (d.type, True, self.index, d.dictionary))

    assert ndpickle.safe_loads(pickle.dumps(Forged(pa.scalar(1, pa.int32())), protocol=5)).equals(d[1])
    for index in (pa.scalar(7, pa.int32()), pa.scalar(-1, pa.int32()), pa.scalar(1, pa.int64())):
        with pytest.raises(ndpickle.DecodeError):
            ndpickle.safe_loads(pickle.dumps(Forged(index), protocol=5))
