"""Differential test of the safe reader against CPython's unpickler, on valid pickles of
random numpy, pyarrow and builtin objects (``pickle.dumps`` and ``ndpickle.dumps``, protocols
2 to 5, in-band and out-of-band) and byte-level mutations of them.

For every input, ``ndpickle.safe_loads`` either returns what the reference returns (values,
dtype, shape, types; pyarrow objects compared with ``equals`` after ``validate(full=True)``),
or raises ``ndpickle.DecodeError`` — never another exception, never a crash. Where the
reference fails (or returns a pyarrow object that does not validate), ``safe_loads`` must
raise ``DecodeError``. The reference is ``pickle.Unpickler`` restricted to the globals the
safe reader's allow-list names, so that a mutation never runs arbitrary code.

The hypothesis run happens in a subprocess (a crash fails the test and names the input,
saved to a file before each load): 200 examples by default, 3000 in the ``slow`` test::

    python -m pytest -m slow tests/test_hostile_differential.py
    python tests/test_hostile_differential.py hostile-slow    # the same, directly
    python tests/test_hostile_differential.py survey 1000     # list failure kinds, no stop
"""

from __future__ import annotations

import io
import math
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

import pytest

HERE = Path(__file__).resolve().parent
# Hypothesis profiles (registered in run_differential): "hostile-default" for the default
# test run, "hostile-slow" for the slow one.
PROFILES = {"hostile-default": 200, "hostile-slow": 3000}

# Module prefixes and names the reference unpickler may resolve (the safe reader's
# allow-list; see crates/ndpickle/src/read/allow.rs).
_NUMPY_MODULES = {
    "numpy",
    "numpy.core.multiarray",
    "numpy._core.multiarray",
    "numpy.core._multiarray_umath",
    "numpy._core._multiarray_umath",
    "numpy.core.numeric",
    "numpy._core.numeric",
}
_NUMPY_NAMES = {"_reconstruct", "scalar", "ndarray", "dtype", "_frombuffer"}
_BUILTINS = {
    ("builtins", "bytearray"),
    ("builtins", "bytes"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
    ("builtins", "object"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),
    ("copyreg", "_reconstructor"),
    ("ndpickle", "_decompress"),
    ("ndpickle", "_decompress_target"),
    ("ndpickle", "_decompress_into"),
}
_PYARROW_NAMES = {
    "_restore_array", "_reconstruct_record_batch", "_reconstruct_table", "py_buffer",
    "type_for_alias", "chunked_array", "schema", "field", "scalar", "KeyValueMetadata",
    "Array.from_buffers", "DictionaryArray.from_buffers", "RecordBatch.from_arrays",
    "Table.from_batches", "Table.from_arrays", "null", "bool_", "int8", "int16", "int32",
    "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64", "time32",
    "time64", "timestamp", "date32", "date64", "duration", "month_day_nano_interval", "binary",
    "large_binary", "binary_view", "string", "utf8", "large_string", "large_utf8",
    "string_view", "decimal32", "decimal64", "decimal128", "decimal256", "list_", "large_list",
    "list_view", "large_list_view", "map_", "struct", "dictionary", "run_end_encoded", "union",
    "sparse_union", "dense_union", "fixed_size_binary",
}


class RefUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only the allow-listed globals."""

    def find_class(self, module: str, name: str) -> Any:
        module = {"__builtin__": "builtins", "copy_reg": "copyreg"}.get(module, module)
        ok = (
            (module in _NUMPY_MODULES and name in _NUMPY_NAMES)
            or (module, name) in _BUILTINS
            or (module in ("pyarrow", "pyarrow.lib") and name in _PYARROW_NAMES)
            or (module == "ml_dtypes" and name.isidentifier() and not name.startswith("_"))
        )
        if not ok:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        obj = super().find_class(module, name)
        if module == "ml_dtypes" and not isinstance(obj, type):
            raise pickle.UnpicklingError(f"{module}.{name} is not a dtype")
        return obj


def ref_loads(data: bytes, buffers: Optional[list[bytes]]) -> Any:
    """The reference result."""
    return RefUnpickler(io.BytesIO(data), buffers=buffers).load()


class _Unequal(AssertionError):
    pass


def same(a: Any, b: Any, seen: Optional[set[tuple[int, int]]] = None) -> None:
    """Raises ``_Unequal`` unless ``a`` (safe reader) and ``b`` (reference) are the same value."""
    import numpy as np
    import pyarrow as pa

    if seen is None:
        seen = set()
    key = (id(a), id(b))
    if key in seen:
        return
    seen.add(key)

    def fail(why: str) -> None:
        raise _Unequal(f"{why}: safe={a!r:.200} ref={b!r:.200}")

    if isinstance(b, np.ndarray):
        if not isinstance(a, np.ndarray):
            fail("not an ndarray")
        if a.dtype != b.dtype or a.dtype.str != b.dtype.str or a.shape != b.shape:
            fail(f"dtype/shape {a.dtype}{a.shape} vs {b.dtype}{b.shape}")
        if a.dtype.itemsize and a.size and a.tobytes() != b.tobytes():
            fail("array bytes differ")
        return
    if isinstance(b, np.generic):
        if type(a) is not type(b) or np.asarray(a).tobytes() != np.asarray(b).tobytes():
            fail("numpy scalar differs")
        return
    if isinstance(b, np.dtype):
        if not isinstance(a, np.dtype) or a != b or a.str != b.str or a.isalignedstruct != b.isalignedstruct:
            fail("dtype differs")
        return
    if type(b).__module__.split(".")[0] == "pyarrow":
        if type(a) is not type(b):
            fail("pyarrow type differs")
        if hasattr(b, "equals") and not a.equals(b):
            fail("pyarrow values differ")
        if not hasattr(b, "equals") and a != b:
            fail("pyarrow object differs")
        return
    if type(a) is not type(b):
        fail(f"type {type(a).__name__} vs {type(b).__name__}")
    if isinstance(b, float):
        if not ((math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))):
            fail("float differs")
    elif isinstance(b, complex):
        same(a.real, b.real, seen)
        same(a.imag, b.imag, seen)
    elif isinstance(b, (list, tuple)):
        if len(a) != len(b):
            fail("length differs")
        for x, y in zip(a, b):
            same(x, y, seen)
    elif isinstance(b, dict):
        if len(a) != len(b):
            fail("length differs")
        for (k1, v1), (k2, v2) in zip(a.items(), b.items()):
            same(k1, k2, seen)
            same(v1, v2, seen)
    elif isinstance(b, memoryview):
        if a.tobytes() != b.tobytes():
            fail("buffer differs")
    elif a != b:
        fail("differs")


def _validate_ref(x: Any) -> None:
    """Fully validates every pyarrow object in the reference's result (an invalid one means the
    reference accepted data a safe reader must refuse)."""
    import pyarrow as pa

    stack, seen = [x], set()
    while stack:
        y = stack.pop()
        if id(y) in seen:
            continue
        seen.add(id(y))
        if isinstance(y, (list, tuple, set, frozenset)):
            stack.extend(y)
        elif isinstance(y, dict):
            stack.extend(y.keys())
            stack.extend(y.values())
        elif isinstance(y, (pa.Array, pa.ChunkedArray, pa.RecordBatch, pa.Table, pa.Scalar)):
            y.validate(full=True)


# ---------------------------------------------------------------------------------------
# The hypothesis test (run in a subprocess by the pytest tests below).


def _strategies() -> Any:
    import numpy as np
    import pyarrow as pa
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    def byte_orders(s: Any) -> Any:
        return s.flatmap(lambda d: st.sampled_from([d, d.newbyteorder(">"), d.newbyteorder("<")]))

    dtypes = st.one_of(
        byte_orders(hnp.scalar_dtypes()),
        byte_orders(hnp.datetime64_dtypes()),
        byte_orders(hnp.timedelta64_dtypes()),
        hnp.byte_string_dtypes(max_len=6),
        byte_orders(hnp.unicode_string_dtypes(max_len=4)),
        hnp.nested_dtypes(max_itemsize=48),
    )
    arrays = hnp.arrays(dtypes, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))

    def view(a: Any, how: str) -> Any:
        if a.ndim == 0:
            return a
        if how == "T":
            return a.T
        if how == "rev":
            return a[::-1]
        if how == "step":
            return a[::2]
        if how == "bcast" and a.shape[0] >= 1:
            return np.broadcast_to(a[:1], (3,) + a.shape[1:])
        if how == "fortran":
            return np.asfortranarray(a)
        return a

    np_objs = st.builds(view, arrays, st.sampled_from(["", "T", "rev", "step", "bcast", "fortran"]))
    np_scalars = st.builds(lambda a: a.reshape(-1)[0] if a.size else a, hnp.arrays(hnp.scalar_dtypes(), 1))
    np_dtypes = st.one_of(
        dtypes,
        st.builds(lambda d, n: np.dtype((d, (n,))), hnp.integer_dtypes(), st.integers(1, 3)),
    )

    ints = st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), max_size=8)
    strs = st.lists(st.one_of(st.none(), st.text(max_size=6)), max_size=8)
    pa_objs = st.one_of(
        ints.map(lambda v: pa.array(v, pa.int64())),
        strs.map(pa.array),
        strs.map(lambda v: pa.array(v, pa.large_string())),
        strs.map(lambda v: pa.array(v, pa.string_view())),
        st.lists(st.one_of(st.none(), st.lists(st.integers(-5, 5), max_size=3)), max_size=5).map(pa.array),
        st.lists(st.text(max_size=3), max_size=6).map(lambda v: pa.array(v).dictionary_encode()),
        st.lists(st.tuples(st.integers(0, 9), st.text(max_size=3)), max_size=5).map(
            lambda v: pa.array([{"a": x, "b": y} for x, y in v], pa.struct([("a", pa.int8()), ("b", pa.string())]))
        ),
        st.lists(ints, min_size=1, max_size=3).map(lambda cs: pa.chunked_array(cs, pa.int64())),
        ints.map(lambda v: pa.table({"x": pa.array(v, pa.int64()), "y": pa.array([str(i) for i in range(len(v))])})),
        ints.map(lambda v: pa.record_batch([pa.array(v, pa.int64())], names=["x"])),
        ints.map(lambda v: pa.array(v, pa.int64()).slice(1)),
    )
    leaf = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
        st.binary(max_size=16), st.binary(max_size=16).map(bytearray), st.complex_numbers(),
    )
    hashable = st.one_of(st.integers(), st.text(max_size=4), st.binary(max_size=4), st.booleans())
    builtins = st.recursive(
        leaf,
        lambda kids: st.one_of(
            st.lists(kids, max_size=4),
            st.lists(kids, max_size=4).map(tuple),
            st.dictionaries(hashable, kids, max_size=4),
            st.sets(hashable, max_size=4),
            st.frozensets(hashable, max_size=4),
        ),
        max_leaves=12,
    )
    objs = st.one_of(
        np_objs, np_scalars, np_dtypes, pa_objs, builtins,
        st.lists(st.one_of(np_objs, pa_objs, builtins), max_size=3),
        st.dictionaries(st.text(max_size=3), st.one_of(np_objs, pa_objs), max_size=3),
    )
    mutation = st.tuples(st.sampled_from(["flip", "set", "del", "ins", "int32", "trunc"]), st.integers(0, 2**31), st.integers(0, 255))
    return objs, st.lists(mutation, max_size=3)


def _serialize(obj: Any, proto: int, writer: str, oob: bool) -> tuple[bytes, Optional[list[bytes]]]:
    import ndpickle

    bufs: list[pickle.PickleBuffer] = []
    cb = bufs.append if (oob and proto == 5) else None
    if writer == "ndpickle":
        try:
            data = ndpickle.dumps(obj, protocol=proto, buffer_callback=cb)
        except Exception:  # noqa: BLE001 - objects ndpickle's writer does not take: use pickle
            bufs.clear()
            data = pickle.dumps(obj, proto, buffer_callback=cb)
    elif writer == "ndpickle-zstd" and proto == 5:
        data = ndpickle.dumps(obj, compression="zstd")
        cb = None
    else:
        data = pickle.dumps(obj, proto, buffer_callback=cb)
    return data, ([bytes(b.raw()) for b in bufs] if cb is not None else None)


def _mutate(data: bytes, buffers: Optional[list[bytes]], muts: list[tuple[str, int, int]]) -> tuple[bytes, Optional[list[bytes]]]:
    import struct

    b = bytearray(data)
    for op, pos, val in muts:
        if not b:
            break
        i = pos % len(b)
        if op == "flip":
            b[i] ^= 1 << (val % 8)
        elif op == "set":
            b[i] = val
        elif op == "del":
            del b[i : i + 1 + val % 3]
        elif op == "ins":
            b[i:i] = bytes([val])
        elif op == "int32":
            b[i : i + 4] = struct.pack("<I", [0, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, val << 24][val % 5])
        elif op == "trunc" and buffers:
            k = val % len(buffers)
            buffers = list(buffers)
            buffers[k] = buffers[k][: pos % (len(buffers[k]) + 1)]
        elif op == "trunc":
            del b[i:]
    return bytes(b), buffers


def _collect(printed: list[str]) -> list[str]:
    """Runs the garbage collector and returns (and clears) what CPython printed meanwhile."""
    import gc

    gc.collect()
    out = list(printed)
    printed.clear()
    return out


def run_differential(profile: str, last_path: str, survey: Optional[dict[str, Any]] = None) -> None:
    """The hypothesis property under ``profile`` (a name in ``PROFILES``, or a number of
    examples); each input is written to
    ``last_path`` (pickle + buffers, pickled) before it is loaded. With ``survey`` (a dict),
    failures are collected there (one example per kind) instead of stopping the run."""
    import ml_dtypes  # noqa: F401 - imported as by a user of them
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    import ndpickle
    sys.path.insert(0, str(HERE / "hostile"))
    from worker import check_value

    objs, mutations = _strategies()
    # Errors CPython prints instead of raising (PyErr_Print goes through sys.excepthook):
    # "deallocated bytearray object has exported buffers" is a buffer released too late.
    printed: list[str] = []
    sys.excepthook = lambda t, v, tb: printed.append(f"{t.__name__}: {v}")

    for name, n in PROFILES.items():
        settings.register_profile(
            name,
            max_examples=n,
            deadline=None,
            database=None,
            print_blob=True,
            suppress_health_check=list(HealthCheck),
            # The default run sees the same examples every time; the slow one draws anew.
            derandomize=name == "hostile-default",
        )
    if profile in PROFILES:
        chosen = settings.get_profile(profile)
    else:
        chosen = settings(settings.get_profile("hostile-default"), max_examples=int(profile))

    import numpy as np
    import pyarrow as pa
    from hypothesis import example

    alias_at = pickle.dumps(pa.array([1, 2], pa.int64()), 5).index(b"int64") + 4

    @chosen
    # Pinned inputs of known failure classes (see tests/hostile/KNOWN_FAILURES.md).
    @example(obj=np.array("NaT", dtype=">M8[Y]"), proto=2, writer="pickle", oob=False, muts=[])
    @example(obj=pa.array([1, 2], pa.int64()), proto=5, writer="pickle", oob=False, muts=[("set", alias_at, ord("x"))])
    @given(
        obj=objs,
        proto=st.integers(2, 5),
        writer=st.sampled_from(["pickle", "ndpickle", "ndpickle-zstd"]),
        oob=st.booleans(),
        muts=mutations,
    )
    def prop(obj: Any, proto: int, writer: str, oob: bool, muts: list[tuple[str, int, int]]) -> None:
        if survey is None:
            return check(obj, proto, writer, oob, muts)
        try:
            check(obj, proto, writer, oob, muts)
        except AssertionError as e:
            import re

            kind = re.sub(r"\d+", "N", str(e).split(":")[0] + ":" + str(e).split(":")[1][:60] if ":" in str(e) else str(e))[:120]
            if kind not in survey:
                with open(last_path, "rb") as f:
                    survey[kind] = (str(e)[:500], pickle.load(f))

    def check(obj: Any, proto: int, writer: str, oob: bool, muts: list[tuple[str, int, int]]) -> None:
        try:
            data, buffers = _serialize(obj, proto, writer, oob)
        except Exception:  # noqa: BLE001 - an object no writer takes at this protocol
            return
        data, buffers = _mutate(data, buffers, muts)
        with open(last_path, "wb") as f:
            pickle.dump((data, buffers), f)
        ref_err: Optional[BaseException] = None
        printed.clear()
        ref: Any = None
        try:
            ref = ref_loads(data, buffers)
            _validate_ref(ref)
        except MemoryError:
            return  # a mutation the reference cannot afford either; nothing to compare
        except Exception as e:  # noqa: BLE001 - the reference refused; so must we
            ref_err = e
        ref_printed = _collect(printed)
        if ref_printed:
            raise AssertionError(
                f"after pickle.loads (ndpickle's decompress helpers), Python printed: {ref_printed[0][:300]}"
            )
        try:
            got = ndpickle.safe_loads(data, buffers=buffers)
        except ndpickle.DecodeError:
            after = _collect(printed)
            if after:
                raise AssertionError(f"after safe_loads refused, Python printed: {after[0][:300]}")
            return
        except BaseException as e:
            raise AssertionError(
                f"safe_loads raised {type(e).__module__}.{type(e).__qualname__}: {e} "
                f"(reference: {ref_err!r:.200})"
            ) from e
        try:
            check_value(got)
        except Exception as e:  # noqa: BLE001
            raise AssertionError(
                f"safe_loads returned an invalid object: {type(e).__qualname__}: {e} "
                f"(reference: {ref_err!r:.200})"
            ) from e
        if ref_err is not None:
            raise AssertionError(f"safe_loads returned {got!r:.200} where the reference failed: {ref_err!r:.300}")
        try:
            same(got, ref)
        finally:
            del got
            safe_printed = _collect(printed)
            if safe_printed:
                raise AssertionError(f"after safe_loads, Python printed: {safe_printed[0][:300]}")

    try:
        prop()
    finally:
        sys.excepthook = sys.__excepthook__


def _run_subprocess(profile: str, timeout: float) -> None:
    fd, last = tempfile.mkstemp(prefix="ndpickle-diff-", suffix=".pkl")
    os.close(fd)
    try:
        proc = subprocess.run(
            [sys.executable, __file__, profile, last],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(os.environ, PYTHONFAULTHANDLER="1"),
        )
        if proc.returncode != 0:
            with open(last, "rb") as f:
                data, buffers = pickle.load(f)
            out = (proc.stdout + proc.stderr)[-6000:]
            raise AssertionError(
                f"differential run failed (exit {proc.returncode}); last input "
                f"{data!r:.600} buffers={buffers!r:.200}\n{out}"
            )
    finally:
        os.unlink(last)


def test_differential_default() -> None:
    """200 examples: safe_loads equals the reference or raises DecodeError."""
    _run_subprocess("hostile-default", timeout=900)


@pytest.mark.slow
def test_differential_slow() -> None:
    """3000 examples of the same."""
    _run_subprocess("hostile-slow", timeout=7200)


if __name__ == "__main__" and sys.argv[1:2] == ["survey"]:
    # Lists the kinds of failure among N examples, one input of each saved as survey-K.pkl.
    found: dict[str, Any] = {}
    run_differential(sys.argv[2], os.path.join(tempfile.gettempdir(), "ndpickle-diff-last.pkl"), found)
    for k, (kind, (msg, case)) in enumerate(sorted(found.items())):
        path = os.path.join(tempfile.gettempdir(), f"ndpickle-diff-survey-{k}.pkl")
        with open(path, "wb") as f:
            pickle.dump(case, f)
        print(f"{kind}\n    {msg[:300]}\n    input: {path}")
elif __name__ == "__main__":
    profile = sys.argv[1] if len(sys.argv) > 1 else "hostile-slow"
    last = sys.argv[2] if len(sys.argv) > 2 else os.path.join(tempfile.gettempdir(), "ndpickle-diff-last.pkl")
    run_differential(profile, last)
