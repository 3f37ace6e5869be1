"""The safe reader against hostile *data*: arrays and pyarrow objects whose every part is
malformed in a way its type allows. Each case must be refused with ``DecodeError`` or come
back as a valid, usable object — never a crash, a hang, another exception or an import.

Cases that could crash the interpreter if the reader regressed run in a subprocess.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from typing import Any, Optional

import numpy as np
import pytest

import ndpickle

pa = pytest.importorskip("pyarrow")


class Call:
    """Pickles as ``func(*args)``: how a hostile pickle names any allow-listed callable."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.args


def dumps(obj: Any, protocol: int = 5) -> bytes:
    return pickle.dumps(obj, protocol=protocol)


def refused(data: bytes, match: Optional[str] = None, **kw: Any) -> ndpickle.DecodeError:
    with pytest.raises(ndpickle.DecodeError, match=match) as info:
        ndpickle.safe_loads(data, **kw)
    return info.value


def run_isolated(code: str) -> str:
    """Runs ``code`` in a fresh interpreter (a crash fails the test, not the run)."""
    r = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return r.stdout


# ---------------------------------------------------------------------------------------
# numpy


def test_unhashable_keys_and_members_are_decode_errors() -> None:
    # {[]: 1}, {[]}, {frozenset member: bytearray}: EMPTY_DICT/EMPTY_SET + unhashable item.
    for data in (b"\x80\x05}]K\x01s.", b"\x80\x05\x8f(]\x90.", b"\x80\x05(]\x91."):
        e = refused(data, "unhashable")
        assert e.kind == "Refused"


def test_dimensions_over_64_are_refused() -> None:
    ok = dumps(Call(np.ndarray, (1,) * 64, np.dtype("<f8"), bytearray(8), 0, None))
    assert ndpickle.safe_loads(ok).ndim == 64
    bad = dumps(Call(np.ndarray, (1,) * 65, np.dtype("<f8"), bytearray(8), 0, None))
    refused(bad, "65 dimensions")


@pytest.mark.parametrize(
    "spec", ["|S4294967296", "|V2147483648", "<U600000000", "<M8[4294967295s]"]
)
def test_dtype_specs_numpy_refuses(spec: str) -> None:
    data = dumps(Call(np.dtype, spec, False, True))
    with pytest.raises(Exception):
        np.dtype(spec)  # numpy itself refuses these
    refused(data, "numpy's limit")


def test_struct_dtypes_numpy_refuses() -> None:
    titles = {"names": ["a", "b"], "formats": ["<i4", "<i4"], "titles": ["t", "t"]}
    refused(dumps(Call(np.dtype, titles, False, True)), "already used")
    offset = {"names": ["a"], "formats": ["<i4"], "offsets": [2**31]}
    refused(dumps(Call(np.dtype, offset, False, True)), "numpy's limit")
    deep = [("f", "<i1", (1,) * 65)]
    refused(dumps(Call(np.dtype, deep, False, True)), "numpy allows 64")
    huge_v0 = (np.dtype("V0"), (2**40,))
    refused(dumps(Call(np.dtype, huge_v0, False, True)), "numpy's limit")


def test_zero_sized_elements_cost_nothing() -> None:
    # Writable (bytearray) with a huge shape: a copy would take forever.
    for dtype in (np.dtype("V0"), np.dtype([])):
        data = dumps(Call(np.ndarray, (2**31, 2**31), dtype, bytearray(), 0, None))
        a = ndpickle.safe_loads(data)
        assert a.shape == (2**31, 2**31) and a.flags.writeable and a.nbytes == 0
    refused(dumps(Call(np.ndarray, (2**62, 2), np.dtype("V0"), b"", 0, None)), "numpy can index")


def test_writable_broadcast_is_a_broadcast_of_one_copied_slice() -> None:
    # 32 KiB of input that pickle.loads turns into a writable (2**16, 4096) zero-stride view.
    row = np.arange(4096, dtype="<f8")
    data = dumps(Call(np.ndarray, (2**16, 4096), np.dtype("<f8"), bytearray(row.tobytes()), 0, (0, 8)))
    want = pickle.loads(data)
    got = ndpickle.safe_loads(data)
    assert got.flags.writeable and want.flags.writeable
    assert got.strides == want.strides == (0, 8)
    assert got.base is not None and len(memoryview(got.base)) == row.nbytes
    np.testing.assert_array_equal(got[12345], row)


def test_writable_copies_are_charged_to_max_alloc_bytes() -> None:
    # A read-only input (bytes) whose array the pickle asks to be writable: one copy.
    data = dumps(np.arange(1 << 16, dtype="<f8"))
    assert ndpickle.safe_loads(data).flags.writeable
    e = refused(data, "total allocation", max_alloc_bytes=64 << 10)
    assert e.kind == "Limit"


def test_zero_dim_out_of_band_buffers() -> None:
    oob: list[pickle.PickleBuffer] = []
    obj = Call(np.ndarray, (), np.dtype("<f8"), pickle.PickleBuffer(b"\0" * 8), 0, None)
    data = pickle.dumps(obj, protocol=5, buffer_callback=oob.append)
    assert len(oob) == 1
    for buf in (np.float64(2.5), np.array(2.5)):
        a = ndpickle.safe_loads(data, buffers=[buf])
        assert a.shape == () and a[()] == 2.5


def test_strict_refuses_stacked_pickles() -> None:
    data = dumps([1, 2]) + dumps("hidden")
    assert ndpickle.safe_loads(data) == pickle.loads(data) == [1, 2]
    e = refused(data, "follow the STOP", strict=True)
    assert e.kind == "TrailingData" and e.offset == len(dumps([1, 2]))


def test_decompression_bomb_stops_at_the_default_limit() -> None:
    zeros = np.zeros(1 << 27, dtype="<f8")  # 1 GiB
    data = ndpickle.dumps(zeros, compression="zstd")
    assert len(data) < 1 << 20
    e = refused(data, "total allocation")
    assert e.kind == "Limit"
    small = ndpickle.dumps(np.zeros(1 << 20, dtype="<f8"), compression="zstd")
    assert not ndpickle.safe_loads(small).any()


# ---------------------------------------------------------------------------------------
# pyarrow

RA = pa.lib._restore_array
B = pa.py_buffer


def i32(*v: int) -> Any:
    return B(np.array(v, np.int32).tobytes())


def i64_data(n: int) -> tuple[Any, ...]:
    return (pa.int64(), n, 0, 0, [None, B(b"x" * 8 * n)], [], None)


HOSTILE_ARRAYS = {
    "string offsets past the data": (pa.string(), 3, 0, 0, [None, i32(0, 2, 1000, 1001), B(b"abcd")], [], None),
    "negative offset": (pa.int64(), 3, 0, -5, [None, B(b"x" * 24)], [], None),
    "negative length": (pa.int64(), -3, 0, 0, [None, B(b"x" * 24)], [], None),
    "length 2**40 over 24 bytes": (pa.int64(), 2**40, 0, 0, [None, B(b"x" * 24)], [], None),
    "null count that lies": (pa.int64(), 3, 2, 0, [None, B(b"x" * 24)], [], None),
    "null count over the length": (pa.int64(), 3, 9, 0, [None, B(b"x" * 24)], [], None),
    "struct type without its child": (pa.struct([("a", pa.int64())]), 3, 0, 0, [None], [], None),
    "missing buffers": (pa.string(), 3, 0, 0, [None], [], None),
    "a buffer that is no Buffer": (pa.int64(), 1, 0, 0, [None, 12], [], None),
    "dictionary type without dictionary": (pa.dictionary(pa.int32(), pa.string()), 3, 0, 0, [None, B(b"\0" * 12)], [], None),
    "dictionary index out of range": (
        pa.dictionary(pa.int32(), pa.string()), 3, 0, 0, [None, i32(0, 7, 1)], [],
        (pa.string(), 2, 0, 0, [None, i32(0, 1, 2), B(b"ab")], [], None),
    ),
    "dictionary of the wrong type": (
        pa.dictionary(pa.int32(), pa.string()), 1, 0, 0, [None, i32(0)], [], i64_data(1),
    ),
    "run ends of the wrong type": (
        pa.run_end_encoded(pa.int32(), pa.int64()), 3, 0, 0, [None], [i64_data(1), i64_data(1)], None,
    ),
    "run ends past the values": (
        pa.run_end_encoded(pa.int32(), pa.int64()), 3, 0, 0, [None],
        [(pa.int32(), 1, 0, 0, [None, i32(3)], [], None), i64_data(0)], None,
    ),
    "list child of the wrong type": (
        pa.list_(pa.int64()), 1, 0, 0, [None, i32(0, 1)],
        [(pa.string(), 1, 0, 0, [None, i32(0, 1), B(b"a")], [], None)], None,
    ),
    "list offsets past the child": (pa.list_(pa.int64()), 1, 0, 0, [None, i32(0, 9)], [i64_data(2)], None),
    "map entries with nulls": (
        pa.map_(pa.int64(), pa.int64()), 1, 0, 0, [None, i32(0, 1)],
        [(pa.struct([pa.field("key", pa.int64(), nullable=False), pa.field("value", pa.int64())]),
          1, 1, 0, [B(b"\0")], [i64_data(1), i64_data(1)], None)], None,
    ),
    "sparse union type code outside the union": (
        pa.sparse_union([pa.field("a", pa.int64())]), 3, 0, 0, [None, B(bytes([0, 5, 9]))], [i64_data(3)], None,
    ),
    "dense union offset past the child": (
        pa.dense_union([pa.field("a", pa.int64())]), 1, 0, 0, [None, B(b"\0"), i32(7)], [i64_data(1)], None,
    ),
    "string view into a missing buffer": (pa.string_view(), 1, 0, 0, [None, i32(100, 0, 0, 0)], [], None),
    "invalid UTF-8": (pa.string(), 1, 0, 0, [None, i32(0, 2), B(b"\xff\xfe")], [], None),
    "extension storage of the wrong type": (pa.uuid(), 1, 0, 0, [None, B(b"x" * 8)], [], None),
    "five items": (pa.int64(), 1, 0, 0, [None]),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_ARRAYS))
def test_hostile_pyarrow_array_data_is_refused(name: str) -> None:
    data = dumps(Call(RA, HOSTILE_ARRAYS[name]))
    out = run_isolated(
        f"""
        import ndpickle, sys
        data = {data!r}
        try:
            x = ndpickle.safe_loads(data)
        except ndpickle.DecodeError as e:
            print("refused", e)
        else:
            print("accepted", type(x).__name__)
        """
    )
    assert out.startswith("refused"), out


def test_from_buffers_forms_are_checked_too() -> None:
    bad = [
        Call(pa.Array.from_buffers, pa.dictionary(pa.int32(), pa.string()), 3, [None, B(b"\0" * 12)]),
        Call(pa.Array.from_buffers, pa.string(), 3, [None]),
        Call(pa.DictionaryArray.from_buffers, pa.dictionary(pa.int8(), pa.string()), 1, [None, B(b"\x05")], pa.array(["a"])),
        Call(pa.RecordBatch.from_arrays, [[1, 2, 3]], ["a"]),
        Call(pa.chunked_array, [[1, 2]], pa.int64()),
        Call(pa.lib.type_for_alias, "no such type"),
        Call(pa.lib.timestamp, "fortnights"),
        Call(pa.lib.decimal128, 99),
    ]
    for obj in bad:
        refused(dumps(obj))


def test_valid_pyarrow_objects_load_validated() -> None:
    t = pa.table({"i": [1, None, 3], "s": ["a", None, "c"], "l": [[1], None, [2, 3]]})
    objs = [
        t,
        t.slice(1, 2),
        t.to_batches()[0],
        pa.chunked_array([[1, 2], [3]]),
        pa.array(["x", "y"]).dictionary_encode(),
        pa.array([{"a": 1, "b": "x"}, None]),
        pa.array([[(1, 2)], []], pa.map_(pa.int64(), pa.int64())),
        pa.array([1, 2, 2], pa.int64()).slice(1),
        pa.schema([("a", pa.int64())]),
    ]
    for obj in objs:
        got = ndpickle.safe_loads(dumps(obj))
        assert got.equals(obj)
        if hasattr(got, "validate"):
            got.validate(full=True)


@pytest.mark.parametrize(
    "value,type_",
    [(3, "int64"), (-2, "int8"), (7, "uint16"), (1.5, "float64"), (0.25, "float16"),
     (True, "bool_"), ("héllo", "string"), ("x", "large_string"), (b"\0\1", "binary"),
     (None, "int32"), (None, "string")],
)
def test_scalars_of_plain_types_load(value: Any, type_: str) -> None:
    s = pa.scalar(value, getattr(pa, type_)())
    got = ndpickle.safe_loads(dumps(s))
    assert got.equals(s) and got.type == s.type


def test_scalars_refuse_out_of_range_values() -> None:
    refused(dumps(Call(pa.scalar, 300, pa.int8())))
    refused(dumps(Call(pa.scalar, "x", pa.int8())))


def test_loading_pyarrow_objects_imports_nothing_else() -> None:
    # Every pyarrow form, loaded in a fresh interpreter that has imported only ndpickle,
    # numpy and pyarrow: no module outside those (pandas above all) may appear.
    objs = [pa.table({"a": [1, 2], "s": ["x", None]}), pa.scalar(3), pa.scalar("s"),
            pa.scalar(None, pa.int64()), pa.array([1.5]), pa.chunked_array([[1]])]
    data = dumps(objs)
    out = run_isolated(
        f"""
        import sys, ndpickle, numpy, pyarrow
        before = set(sys.modules)
        seen = []
        class Recorder:
            def find_spec(self, name, path=None, target=None):
                seen.append(name)
                return None
        sys.meta_path.insert(0, Recorder())
        objs = ndpickle.safe_loads({data!r})
        ok = {"numpy", "pyarrow", "ml_dtypes", *sys.stdlib_module_names}
        new = sorted(m for m in set(sys.modules) - before if m.split('.')[0] not in ok)
        tried = sorted(m for m in seen if m.split('.')[0] not in ok)
        print(len(objs), new, tried)
        """
    )
    assert out.strip() == "6 [] []", out


def test_scalars_of_other_types_wait_for_pandas() -> None:
    # A list scalar goes through pyarrow's conversion of Python values, which imports
    # pandas: refused until pandas is imported (when it is installed), loaded then.
    data = dumps(pa.scalar([1, 2], pa.list_(pa.int64())))
    out = run_isolated(
        f"""
        import sys, ndpickle
        try:
            ndpickle.safe_loads({data!r})
        except ndpickle.DecodeError as e:
            print("refused", "pandas" in str(e), "pandas" in sys.modules)
        """
    )
    assert out.strip() == "refused True False", out


def test_converter_fuzz_findings_replay() -> None:
    # Inputs the converter fuzz target (crates/ndpickle/fuzz/convert.py) found crashing,
    # raising other exceptions or returning invalid objects, before the fixes: parts split at
    # the fuzz input separator are the pickle and its out-of-band buffers.
    from pathlib import Path

    inputs = sorted(str(p) for p in (Path(__file__).parent / "hostile" / "fuzz").glob("*.bin"))
    assert len(inputs) >= 50
    out = run_isolated(
        f"""
        import sys, ndpickle
        import pyarrow as pa
        for path in {inputs!r}:
            print(path, flush=True)
            parts = open(path, "rb").read().split(b"\\xfe\\xfdNDFZ", 31)
            try:
                obj = ndpickle.safe_loads(parts[0], buffers=parts[1:])
            except ndpickle.DecodeError:
                continue
            stack = [obj]
            while stack:
                o = stack.pop()
                if hasattr(o, "validate"):
                    o.validate(full=True)
                if isinstance(o, (pa.Array, pa.ChunkedArray)):
                    o = pa.table({{"x": o}})
                if isinstance(o, (pa.RecordBatch, pa.Table)):
                    # Arrow reads every buffer: some valid-looking arrays abort here.
                    try:
                        with pa.ipc.new_stream(pa.BufferOutputStream(), o.schema) as w:
                            w.write(o)
                    except pa.ArrowNotImplementedError:
                        pass
                if isinstance(o, (list, tuple)):
                    stack.extend(o)
                elif isinstance(o, dict):
                    stack.extend(o.values())
        print("done")
        """
    )
    assert out.strip().endswith("done"), out[-500:]
