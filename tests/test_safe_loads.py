"""`ndpickle.safe_loads` / `safe_load`: the Rust safe reader from Python.

- every numpy/pyarrow golden fixture under `tests/fixtures/` loads and equals, element by
  element, what `pickle.loads` makes of the same bytes (type, dtype, shape, bytes,
  writeability);
- every stream the Rust writer produces (`write_cases.rs`: in-band, out-of-band,
  compressed) loads the same way, out-of-band arrays viewing the caller's buffers;
- every input of CPython's `test.pickletester` that CPython rejects raises
  `ndpickle.DecodeError` (and nothing else ever escapes), and every code-execution attempt
  is refused without side effects;
- limits given as keyword arguments bite.
"""

from __future__ import annotations

import builtins
import io
import json
import pickle
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import ndpickle
from conftest import writer_cases_dir, writer_manifest

FIXTURES = Path(__file__).resolve().parent / "fixtures"


# --- comparing with pickle ------------------------------------------------------------


def assert_same(expected, got, path="value"):
    """`got` (safe_loads) is what `expected` (pickle.loads) is, element by element."""
    if isinstance(expected, np.ndarray):
        assert type(got) is np.ndarray, (path, type(got))
        assert got.shape == expected.shape, (path, got.shape, expected.shape)
        if got.dtype != expected.dtype:
            # numpy 2 turns some big-endian arrays of numpy 1 pickles into native order on
            # loading; ndpickle keeps the byte order written. Same values, either order.
            assert got.dtype.newbyteorder("=") == expected.dtype.newbyteorder("="), (path, got.dtype, expected.dtype)
            got = got.astype(expected.dtype)
        if expected.dtype.names is not None:
            # Field by field: padding bytes between fields are not data (numpy leaves
            # them uninitialised in copies).
            for name in expected.dtype.names:
                assert got[name].tobytes() == expected[name].tobytes(), (path, name)
        else:
            assert got.tobytes() == expected.tobytes(), path
        assert got.flags.writeable == expected.flags.writeable, (path, got.flags.writeable)
    elif isinstance(expected, np.generic):
        assert type(got) is type(expected), (path, type(got), type(expected))
        assert_same(np.array(expected), np.array(got), path)
    elif isinstance(expected, dict):
        assert type(got) is type(expected) or (type(got) is dict and isinstance(expected, dict)), path
        assert list(got) == list(expected), path
        for k in expected:
            assert_same(expected[k], got[k], f"{path}[{k!r}]")
    elif isinstance(expected, (list, tuple)):
        assert type(got) is type(expected) and len(got) == len(expected), path
        for i, (e, g) in enumerate(zip(expected, got)):
            assert_same(e, g, f"{path}[{i}]")
    elif isinstance(expected, (set, frozenset)):
        assert type(got) is type(expected) and got == expected, path
    elif isinstance(expected, memoryview):  # a bare PickleBuffer after loads
        assert bytes(got) == bytes(expected) and memoryview(got).readonly == expected.readonly, path
    elif type(expected).__module__.startswith("pyarrow"):
        assert type(got) is type(expected), (path, type(got), type(expected))
        assert got.equals(expected), (path, got, expected)
    elif isinstance(expected, float) and expected != expected:
        assert isinstance(got, float) and got != got, path
    else:
        assert type(got) is type(expected) and got == expected, (path, got, expected)


def pickle_loads(data, buffers=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy 1.x module paths under numpy 2
        return pickle.loads(data, buffers=buffers)


# --- golden fixtures ------------------------------------------------------------------


def _fixture_cases():
    out = []
    for manifest in sorted(FIXTURES.glob("*/manifest.json")):
        for f in json.loads(manifest.read_text())["files"]:
            out.append(pytest.param(manifest.parent / f["file"], f["buffers"], id=f"{manifest.parent.name}/{f['file']}"))
    return out


FIXTURE_CASES = _fixture_cases()


def test_fixtures_are_there():
    sets = {p.values[0].parent.name for p in FIXTURE_CASES}
    assert {"numpy1", "numpy2", "portable1", "portable2", "pyarrow"} <= sets, sets
    assert len(FIXTURE_CASES) > 500


def _fixture(path: Path, nbuf: int):
    data = path.read_bytes()
    stem = path.name[: -len(".pkl")]
    buffers = [bytearray((path.parent / f"{stem}.buf{i}").read_bytes()) for i in range(nbuf)]
    return data, buffers


@pytest.mark.parametrize("path, nbuf", FIXTURE_CASES)
def test_fixture_loads_like_pickle(path, nbuf):
    if path.parent.name == "pyarrow":
        pytest.importorskip("pyarrow")
    data, buffers = _fixture(path, nbuf)
    expected = pickle_loads(data, buffers=[bytearray(b) for b in buffers] if nbuf else None)
    got = ndpickle.safe_loads(data, buffers=buffers if nbuf else None)
    assert_same(expected, got)
    if nbuf:
        # Without its buffers the pickle fails cleanly.
        with pytest.raises(ndpickle.DecodeError, match="out-of-band"):
            ndpickle.safe_loads(data)


def _arrays(v):
    if isinstance(v, np.ndarray):
        yield v
    elif isinstance(v, dict):
        for x in v.values():
            yield from _arrays(x)
    elif isinstance(v, (list, tuple)):
        for x in v:
            yield from _arrays(x)


def test_numpy_fixture_arrays_view_out_of_band_buffers():
    """Wherever pickle's arrays view the out-of-band buffers, safe_loads's do too."""
    checked = 0
    for p in FIXTURE_CASES:
        path, nbuf = p.values
        if nbuf == 0 or path.parent.name == "pyarrow":
            continue
        data, buffers = _fixture(path, nbuf)
        ours = ndpickle.safe_loads(data, buffers=buffers)
        theirs_bufs = [bytearray(b) for b in buffers]
        theirs = pickle_loads(data, buffers=theirs_bufs)
        views = [np.frombuffer(b, np.uint8) for b in buffers]
        their_views = [np.frombuffer(b, np.uint8) for b in theirs_bufs]
        for a, b in zip(_arrays(ours), _arrays(theirs)):
            if b.nbytes and any(np.shares_memory(b, v) for v in their_views):
                assert any(np.shares_memory(a, v) for v in views), path
                checked += 1
    assert checked > 100


def test_pyarrow_buffers_are_views():
    pa = pytest.importorskip("pyarrow")
    a = pa.array(np.arange(10_000, dtype=np.int64))
    bufs = []
    data = pickle.dumps(a, protocol=5, buffer_callback=bufs.append)
    raws = [b.raw() for b in bufs]
    got = ndpickle.safe_loads(data, buffers=raws)
    assert got.equals(a)
    values = got.buffers()[1]
    src = np.frombuffer(raws[-1], np.uint8)
    lo = src.__array_interface__["data"][0]
    assert lo <= values.address < lo + src.nbytes


def test_pyarrow_objects_need_pyarrow(tmp_path):
    pytest.importorskip("pyarrow")
    path = next(p.values[0] for p in FIXTURE_CASES if p.values[0].parent.name == "pyarrow")
    code = (
        "import sys; sys.modules['pyarrow'] = None; sys.modules['pyarrow.lib'] = None\n"
        "import ndpickle\n"
        f"data = open({str(path)!r}, 'rb').read()\n"
        "try:\n    ndpickle.safe_loads(data)\n"
        "except ndpickle.DecodeError as e:\n    print('DecodeError', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("DecodeError") and "pyarrow cannot be imported" in out, out


# --- the writer's streams -------------------------------------------------------------


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        rows = writer_manifest()
        metafunc.parametrize("case", rows, ids=[r["stem"] for r in rows])


def test_writer_case(case):
    d = writer_cases_dir()
    data = (d / f"{case['stem']}.pkl").read_bytes()
    assert_same(pickle_loads(data), ndpickle.safe_loads(data))
    if case["protocol"] != 5:
        return
    data = (d / f"{case['stem']}.oob.pkl").read_bytes()
    raw = [(d / f"{case['stem']}.oob.{i}.buf").read_bytes() for i in range(case["buffers"])]
    expected = pickle_loads(data, buffers=[bytearray(b) for b in raw])
    buffers = [bytearray(b) for b in raw]
    got = ndpickle.safe_loads(data, buffers=buffers)
    assert_same(expected, got)
    views = [np.frombuffer(b, np.uint8) for b in buffers]
    for a in _arrays(got):
        if a.nbytes:
            assert any(np.shares_memory(a, v) for v in views), "copied instead of viewed"


def _compressed_streams():
    return sorted(writer_cases_dir().glob("compressed.*.pkl"))


def test_compressed_streams_load():
    streams = _compressed_streams()
    assert len(streams) >= 30
    raw = (writer_cases_dir() / "compressed.expected").read_bytes()
    smooth = np.frombuffer(raw[: 256 * 64 * 8], np.float64).reshape(256, 64)
    labels = np.frombuffer(raw[256 * 64 * 8 : 256 * 64 * 8 + 200_000], np.int32)
    for path in streams:
        data = path.read_bytes()
        got = ndpickle.safe_loads(data)
        assert_same(pickle_loads(data), got, path.name)
        assert np.array_equal(got[0], smooth) and np.array_equal(got[1], labels), path.name
        assert np.array_equal(got[2], smooth[:, ::2]), path.name


def test_compressed_stream_limits():
    path = next(p for p in _compressed_streams() if ".zstd.portable.p5" in p.name)
    data = path.read_bytes()
    with pytest.raises(ndpickle.DecodeError) as e:
        ndpickle.safe_loads(data, max_decompressed_bytes=100_000)
    assert e.value.kind == "Limit" and e.value.opcode == "REDUCE"
    with pytest.raises(ndpickle.DecodeError) as e:
        ndpickle.safe_loads(data, max_alloc_bytes=300_000)
    assert e.value.kind == "Limit"
    assert "total allocation" in str(e.value)


def test_compressed_stream_corrupt_frame():
    path = next(p for p in _compressed_streams() if ".zstd.portable.p5" in p.name)
    data = bytearray(path.read_bytes())
    at = data.index(b"\x28\xb5\x2f\xfd")  # zstd magic of the first frame
    data[at + 20 : at + 40] = b"\xff" * 20
    with pytest.raises(ndpickle.DecodeError) as e:
        ndpickle.safe_loads(bytes(data))
    assert e.value.kind == "Codec"


def _decompress_call(header: bytes, frame: bytes) -> bytes:
    return (
        b"\x80\x04\x8c\x08ndpickle\x8c\x0b_decompress\x93"
        + b"B" + struct.pack("<I", len(header)) + header
        + b"B" + struct.pack("<I", len(frame)) + frame
        + b"\x88\x87R."
    )


def test_decompression_bomb_header():
    # A valid lz4 header claiming 2**40 raw bytes in 1024 blocks of 1 GiB.
    n = 1024
    header = b"NDPZ\x01\x01\x00\x00" + struct.pack("<iIQII", 0, 1, 1 << 40, 1 << 30, n) + struct.pack("<I", 4) * n
    frame = b"\x00" * (4 * n)
    with pytest.raises(ndpickle.DecodeError) as e:
        ndpickle.safe_loads(_decompress_call(header, frame))
    assert e.value.kind == "Limit"
    # Wrong header length: one trailing byte.
    with pytest.raises(ndpickle.DecodeError) as e:
        ndpickle.safe_loads(_decompress_call(header + b"\x00", frame))
    assert e.value.kind == "Codec"
    with pytest.raises(ndpickle.DecodeError) as e:
        ndpickle.safe_loads(_decompress_call(header[:20], frame))
    assert e.value.kind == "Truncated"


# --- zero copy ------------------------------------------------------------------------


def test_out_of_band_arrays_view_the_buffers():
    a = np.arange(1000.0)
    header, frames = ndpickle.serialize(a)
    out = ndpickle.safe_loads(frames[0], buffers=frames[1:])
    np.testing.assert_array_equal(out, a)
    assert np.shares_memory(out, a)
    assert out.__array_interface__["data"][0] == a.__array_interface__["data"][0]
    # Dense strided and reversed views travel as their span and come back as views of it.
    for b in (np.arange(600.0).reshape(20, 30)[:, 2:], np.arange(600.0).reshape(20, 30)[::-1, ::-1]):
        header, frames = ndpickle.serialize(b)
        out = ndpickle.safe_loads(frames[0], buffers=frames[1:])
        np.testing.assert_array_equal(out, b)
        assert out.strides == b.strides
        assert np.shares_memory(out, b)


def test_in_band_read_only_arrays_view_the_input():
    a = np.arange(1000, dtype=np.int32)
    a.flags.writeable = False
    data = pickle.dumps(a, protocol=5)  # numpy writes read-only data as bytes
    out = ndpickle.safe_loads(data)
    np.testing.assert_array_equal(out, a)
    assert not out.flags.writeable
    assert np.shares_memory(out, np.frombuffer(data, np.uint8))


def test_writable_arrays_over_read_only_memory_are_copied_once():
    a = np.arange(100.0)
    bufs = []
    data = pickle.dumps(a, protocol=5, buffer_callback=bufs.append)
    ro = bytes(bufs[0].raw())
    out = ndpickle.safe_loads(data, buffers=[ro])
    assert out.flags.writeable and not np.shares_memory(out, np.frombuffer(ro, np.uint8))
    rw = bytearray(ro)
    out = ndpickle.safe_loads(data, buffers=[rw])
    assert out.flags.writeable and np.shares_memory(out, np.frombuffer(rw, np.uint8))


# --- bad inputs -----------------------------------------------------------------------


def test_pickletester_inputs():
    pytest.importorskip("test.pickletester")
    from test_pickletester import collect

    cases, _ = collect()
    bad = [d for d, ok in cases.items() if not ok]
    assert len(bad) >= 100
    accepted_good = 0
    for data, ok in cases.items():
        try:
            got = ndpickle.safe_loads(data)
        except ndpickle.DecodeError:
            continue
        except Exception as e:  # anything but DecodeError is a bug
            pytest.fail(f"{type(e).__name__}: {e} on {data!r}")
        assert ok, f"{data!r} loads with safe_loads but CPython refuses it: {got!r}"
        accepted_good += 1
    assert accepted_good >= 20


class _Evil:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def _global_op(module: str, name: str, proto: int) -> bytes:
    if proto >= 4:
        m, n = module.encode(), name.encode()
        return b"\x8c" + bytes([len(m)]) + m + b"\x8c" + bytes([len(n)]) + n + b"\x93"
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _attempts(canary: Path):
    """(id, pickle) pairs that would run code (and touch `canary` or set builtins.PWNED)."""
    shell = f"touch {canary}"
    py = "import builtins; builtins.PWNED = 1"
    targets = [
        ("os", "system", shell),
        ("posix", "system", shell),
        ("nt", "system", shell),
        ("subprocess", "getoutput", shell),
        ("subprocess", "check_output", shell),
        ("builtins", "eval", "__import__('builtins').__setattr__('PWNED', 1)"),
        ("builtins", "exec", py),
        ("__builtin__", "exec", py),
        ("builtins", "__import__", "os"),
        ("builtins", "getattr", "x"),
        ("builtins", "compile", py),
        ("builtins", "open", str(canary)),
        ("importlib", "import_module", "os"),
        ("numpy", "load", str(canary)),
        ("numpy.testing._private.utils", "runstring", py),
        ("pickle", "loads", b"N."),
        ("numpy", "ndarray.__class__.__subclasses__", None),
        ("builtins", "object.__subclasses__", None),
        ("ndpickle", "loads", b"N."),
        ("pyarrow.lib", "_reconstruct_table.__globals__", None),
    ]
    out = []
    for module, name, arg in targets:
        arg_ops = b")" if arg is None else pickle.dumps((arg,), protocol=2)[2:-1]
        for proto in (0, 2, 4):
            g = _global_op(module, name, proto)
            pre = b"" if proto == 0 else b"\x80" + bytes([proto])
            out.append((f"{module}.{name}-GLOBAL-REDUCE-p{proto}", pre + g + arg_ops + b"R."))
        # INST and OBJ (protocol 0/1 object creation).
        a = pickle.dumps(arg, protocol=0)[:-1] if arg is not None else b""
        out.append((f"{module}.{name}-INST", b"(" + a + b"i" + module.encode() + b"\n" + name.encode() + b"\n."))
        out.append((f"{module}.{name}-OBJ", b"(" + _global_op(module, name, 0) + a + b"o."))
        # NEWOBJ and NEWOBJ_EX.
        out.append((f"{module}.{name}-NEWOBJ", b"\x80\x04" + _global_op(module, name, 4) + arg_ops + b"\x81."))
        out.append((f"{module}.{name}-NEWOBJ_EX", b"\x80\x04" + _global_op(module, name, 4) + arg_ops + b"}\x92."))
        # Through an allowed reconstructor: copyreg._reconstructor(cls, object, arg).
        out.append(
            (
                f"{module}.{name}-copyreg",
                b"\x80\x02ccopyreg\n_reconstructor\n" + _global_op(module, name, 2) + b"cbuiltins\nobject\n"
                + (pickle.dumps(arg, protocol=2)[2:-1] if arg is not None else b"N") + b"\x87R.",
            )
        )
        # As BUILD state target and as an argument of numpy / pyarrow reconstructors.
        out.append(
            (
                f"{module}.{name}-numpy-arg",
                b"\x80\x02cnumpy.core.multiarray\n_reconstruct\n" + _global_op(module, name, 2)
                + b"K\x00\x85C\x01b\x87R.",
            )
        )
    # Real pickles of objects that reduce to code execution.
    import os

    for proto in range(0, 6):
        out.append((f"os.system-pickle-p{proto}", pickle.dumps(_Evil(os.system, shell), protocol=proto)))
        out.append((f"exec-pickle-p{proto}", pickle.dumps(_Evil(builtins.exec, py), protocol=proto)))
    # Attribute chain via getattr(getattr(...)) nested reduce.
    out.append(
        (
            "getattr-chain",
            b"\x80\x02cbuiltins\ngetattr\ncbuiltins\ngetattr\ncbuiltins\nobject\nX\t\x00\x00\x00__class__\x86R"
            b"X\x0e\x00\x00\x00__subclasses__\x86R)R.",
        )
    )
    # Persistent ids (pickle would call persistent_load) and extension codes.
    out.append(("persid", b"Pos.system\n."))
    out.append(("binpersid", b"\x80\x02X\x01\x00\x00\x00xQ."))
    out.append(("ext1", b"\x80\x02\x82\x01."))
    return out


def test_code_execution_is_refused(tmp_path):
    canary = tmp_path / "pwned"
    attempts = _attempts(canary)
    assert len(attempts) > 150
    for ident, data in attempts:
        with pytest.raises(ndpickle.DecodeError) as e:
            ndpickle.safe_loads(data)
        assert e.value.kind in {"ForbiddenGlobal", "Refused", "Type", "UnknownOpcode", "StackUnderflow"}, (
            ident,
            e.value.kind,
            str(e.value),
        )
    assert not canary.exists()
    assert not hasattr(builtins, "PWNED")


def test_attempts_are_real(tmp_path):
    """The attempts above do run code under plain pickle (so refusing them means something)."""
    canary = tmp_path / "pwned"
    for ident, data in _attempts(canary):
        if ident in ("os.system-GLOBAL-REDUCE-p2", "builtins.exec-GLOBAL-REDUCE-p4", "os.system-INST"):
            pickle.loads(data)
    assert canary.exists() and getattr(builtins, "PWNED", 0) == 1
    del builtins.PWNED


def test_decode_error_attributes():
    with pytest.raises(pickle.UnpicklingError) as e:
        ndpickle.safe_loads(b"\x80\x04]a.")  # APPEND with nothing to append
    assert isinstance(e.value, ndpickle.DecodeError)
    assert (e.value.offset, e.value.opcode, e.value.kind) == (3, "APPEND", "StackUnderflow")
    assert str(e.value).startswith("at byte 3 (APPEND)")


# --- limits ---------------------------------------------------------------------------


def _dup_bomb(n: int) -> bytes:
    # A 1000-item list duplicated n times into a tuple: shared, so built once.
    return b"\x80\x04](" + b"K\x01" * 1000 + b"e\x940(" + b"h\x00" * n + b"t."


def _call_arg_bomb(n: int) -> bytes:
    # A memoised 1000-character str passed to n calls `_codecs.encode(s, 'latin1')`: call
    # arguments are plain values, so each use is a copy, charged.
    s = b"X\xe8\x03\x00\x00" + b"a" * 1000 + b"q\x02"
    call = b"h\x01h\x02X\x06\x00\x00\x00latin1\x86R"
    return b"\x80\x02c_codecs\nencode\nq\x01" + s + b"(" + call * n + b"t."


def test_limits_bite():
    data = _dup_bomb(200)
    got = ndpickle.safe_loads(data, max_copied_bytes=0)
    assert len(got) == 200 and got[0] == [1] * 1000 and all(x is got[0] for x in got)
    data = _call_arg_bomb(200)
    got = ndpickle.safe_loads(data)
    assert got == (b"a" * 1000,) * 200
    with pytest.raises(ndpickle.DecodeError) as e:
        ndpickle.safe_loads(data, max_copied_bytes=100_000)
    assert e.value.kind == "Limit" and "shared references" in str(e.value)
    assert e.value.offset is not None and e.value.opcode is not None

    nested = b"\x80\x04" + b"]" * 50 + b"a" * 49 + b"."
    assert ndpickle.safe_loads(nested, max_depth=50) is not None
    with pytest.raises(ndpickle.DecodeError, match="nesting depth"):
        ndpickle.safe_loads(nested, max_depth=10)

    memo = b"\x80\x04K\x01\x94K\x02\x94K\x03\x94\x87."
    assert ndpickle.safe_loads(memo, max_memo_entries=3) == (1, 2, 3)
    with pytest.raises(ndpickle.DecodeError, match="memo entries"):
        ndpickle.safe_loads(memo, max_memo_entries=2)

    many = b"\x80\x04(" + b"N" * 10_000 + b"l."
    with pytest.raises(ndpickle.DecodeError, match="total allocation"):
        ndpickle.safe_loads(many, max_alloc_bytes=4096)


def test_limit_arguments_are_checked():
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_width'"):
        ndpickle.safe_loads(b"N.", max_width=3)
    with pytest.raises(TypeError, match="must be an int"):
        ndpickle.safe_loads(b"N.", max_depth="3")
    with pytest.raises(TypeError, match="must be an int"):
        ndpickle.safe_loads(b"N.", max_depth=True)
    with pytest.raises(ValueError, match="non-negative"):
        ndpickle.safe_loads(b"N.", max_alloc_bytes=-1)
    with pytest.raises(ValueError, match="non-negative"):
        ndpickle.safe_loads(b"N.", max_alloc_bytes=2**64)
    with pytest.raises(ValueError, match="at least 1"):
        ndpickle.safe_loads(b"N.", max_depth=0)
    with pytest.raises(ValueError, match="at least 1024"):
        ndpickle.safe_loads(b"N.", max_alloc_bytes=10)
    with pytest.raises(ValueError, match="at least 1"):
        ndpickle.safe_loads(b"N.", max_decompressed_bytes=0)
    assert ndpickle.safe_loads(b"N.", max_copied_bytes=0, max_memo_entries=1) is None


def test_inputs_must_be_buffers():
    with pytest.raises(TypeError):
        ndpickle.safe_loads("N.")
    with pytest.raises(TypeError):
        ndpickle.safe_loads(b"N.", buffers=[1])
    with pytest.raises(BufferError):
        ndpickle.safe_loads(np.frombuffer(b"N.N.", np.uint8)[::2])
    with pytest.raises(ndpickle.DecodeError) as e:
        ndpickle.safe_loads(b"")
    assert e.value.kind == "UnexpectedEof" and e.value.offset == 0
    # Any C-contiguous buffer works: memoryview, bytearray, numpy array.
    data = pickle.dumps({"x": 1}, protocol=5)
    for form in (memoryview(data), bytearray(data), np.frombuffer(data, np.uint8)):
        assert ndpickle.safe_loads(form) == {"x": 1}


# --- safe_load ------------------------------------------------------------------------


def test_safe_load_paths_and_files(tmp_path):
    obj = {"a": np.arange(10_000.0), "b": [1, "x"]}
    path = tmp_path / "obj.pkl"
    ndpickle.dump(obj, path)
    for src in (path, str(path)):
        got = ndpickle.safe_load(src)
        assert_same(pickle.loads(path.read_bytes()), got)
    with open(path, "rb") as f:
        assert_same(pickle.loads(path.read_bytes()), ndpickle.safe_load(f))
    assert_same(pickle.loads(path.read_bytes()), ndpickle.safe_load(io.BytesIO(path.read_bytes())))
    # Read-only data in a mapped file is viewed, not copied, and keeps the mapping alive.
    a = np.arange(1000, dtype=np.int16)
    a.flags.writeable = False
    path.write_bytes(pickle.dumps(a, protocol=5))
    got = ndpickle.safe_load(path)
    np.testing.assert_array_equal(got, a)
    assert not got.flags.writeable
    import mmap

    base = got
    while isinstance(base, np.ndarray) or isinstance(base, memoryview):
        base = base.base if isinstance(base, np.ndarray) else base.obj
    assert isinstance(base, mmap.mmap)
    # Limits pass through; empty files fail cleanly.
    with pytest.raises(ndpickle.DecodeError, match="memo entries"):
        ndpickle.safe_load(path, max_memo_entries=1)
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    with pytest.raises(ndpickle.DecodeError) as e:
        ndpickle.safe_load(empty)
    assert e.value.kind == "UnexpectedEof"


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_an_array_referred_to_twice_is_one_object(protocol):
    # Tied weights: pickle's memo makes the second reference the same object, and so does
    # the safe reader (for arrays of 64 KiB and more), instead of two copies of the data.
    a = np.arange(100_000.0)
    b = a.copy()
    for blob in (pickle.dumps({"x": a, "y": a, "z": b}, protocol=protocol),
                 ndpickle.dumps({"x": a, "y": a, "z": b}, protocol=protocol)):
        got = ndpickle.safe_loads(blob)
        assert got["x"] is got["y"]
        assert got["z"] is not got["x"] and not np.shares_memory(got["z"], got["x"])
        np.testing.assert_array_equal(got["x"], a)
    got = ndpickle.safe_loads(ndpickle.dumps([a, a], compression="lz4"))
    assert got[0] is got[1] and got[0].flags.writeable


class _ArrayOverArray:
    """Reduces to numpy.ndarray(shape, dtype, <another array>)."""

    def __init__(self, base):
        self.base = base

    def __reduce__(self):
        return (np.ndarray, ((4,), np.dtype("f8"), self.base, 0, None))


def test_array_buffer_must_be_contiguous():
    # numpy takes a C- or Fortran-contiguous array as a buffer, in memory order ...
    fortran = np.arange(4.0).reshape(2, 2).T
    for blob in (pickle.dumps(_ArrayOverArray(fortran), protocol=5),
                 ndpickle.dumps(_ArrayOverArray(fortran))):
        np.testing.assert_array_equal(pickle.loads(blob), [0.0, 1.0, 2.0, 3.0])
        np.testing.assert_array_equal(ndpickle.safe_loads(blob), [0.0, 1.0, 2.0, 3.0])
    # ... and refuses a strided one (ndpickle sends it as a strided view; numpy's own
    # pickle would have made it contiguous).
    blob = ndpickle.dumps(_ArrayOverArray(np.arange(8.0)[::2]))
    with pytest.raises(ValueError, match="not contiguous"):
        pickle.loads(blob)
    with pytest.raises(ndpickle.DecodeError, match="must be contiguous"):
        ndpickle.safe_loads(blob)


@pytest.mark.parametrize("dt", [np.longdouble, np.clongdouble])
@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_longdouble_arrays_and_scalars_load_as_pickle_loads_them(dt, protocol):
    a = np.arange(12, dtype=dt).reshape(3, 4) / 3
    for obj in (a, a[:, ::2], a.T, a.astype(a.dtype.newbyteorder(">")), dt(1) / 3,
                np.zeros(2, np.dtype([("x", dt), ("y", "i1")], align=True))):
        data = pickle.dumps(obj, protocol=protocol)
        got, want = ndpickle.safe_loads(data), pickle.loads(data)
        assert type(got) is type(want) and got.dtype == want.dtype
        assert got.tobytes() == want.tobytes()
    # ndpickle's own writers: a plain pickle for numpy, and the safe path back.
    assert pickle.loads(ndpickle.dumps(a, protocol=protocol)).tobytes() == a.tobytes()
    header, frames = ndpickle.serialize({"a": a})
    assert ndpickle.safe_deserialize(header, frames)["a"].tobytes() == a.tobytes()


@pytest.mark.parametrize("protocol", [2, 5])
def test_unicode_arrays_with_code_points_over_10ffff_are_refused(protocol):
    # numpy keeps whatever 4-byte words it is given; reading such an element raises
    # SystemError (Python has no str for it). safe_loads refuses the array instead.
    bad = np.frombuffer(struct.pack("<3I", 0x41, 0x110000, 0x42), dtype="<U1")
    for obj in (bad, bad[1:], bad.astype(">U1"),
                np.frombuffer(struct.pack("<2I", 7, 0xFFFFFFFF), dtype=[("n", "<i4"), ("s", "<U1")])):
        with pytest.raises(ndpickle.DecodeError, match=r"over U\+10FFFF"):
            ndpickle.safe_loads(pickle.dumps(obj, protocol=protocol))
    # A view of a struct's U field: its gaps (the other field, -1 here) are not elements.
    rec = np.zeros(1000, [("n", "<i4"), ("s", "<U1")])
    rec["n"], rec["s"] = -1, "x"
    view = rec["s"]
    assert ndpickle.safe_loads(ndpickle.dumps(view, protocol=protocol)).tolist() == view.tolist()
    if protocol == 5:
        header, frames = ndpickle.serialize(view)
        assert ndpickle.safe_deserialize(header, frames).tolist() == view.tolist()
    fine = np.array(["\ud800x", "\U0010ffff"])  # lone surrogates and U+10FFFF are str
    got = ndpickle.safe_loads(pickle.dumps(fine, protocol=protocol))
    assert got.tolist() == fine.tolist()


def test_large_strided_views_load_writable_over_one_copy():
    # Spans of 1 MiB or more are copied into huge-page-hinted Rust memory rather than a
    # bytearray; what numpy sees must not change: values, strides, writability, and the
    # input bytes untouched by writes.
    base = np.arange(1 << 18, dtype=np.float64).reshape(512, 512)  # 2 MiB
    for view in (base[:, ::2], base[::-1], base.T[::3], base[::-2, 1::3]):
        data = ndpickle.dumps(view)
        snapshot = bytes(data)
        got = ndpickle.safe_loads(data)
        expected = pickle.loads(data)
        np.testing.assert_array_equal(got, expected)
        assert got.strides == expected.strides
        assert got.flags.writeable
        got[...] = -1
        assert (got == -1).all()
        assert data == snapshot
        np.testing.assert_array_equal(pickle.loads(data), view)


def test_small_strided_views_load_writable_over_one_copy():
    # Below 1 MiB a strided, reversed or broadcast view's span is copied into a uint8 numpy
    # array the loaded view sits on (two C-API calls, no Python-level numpy.ndarray call);
    # numpy must see what pickle gives: values, strides, writability, and the input bytes
    # untouched by writes; the copy stays alive as long as the view.
    base = np.arange(64 * 64, dtype=np.float64).reshape(64, 64)
    row = np.arange(16, dtype=np.int16)
    views = (base[:, ::2], base[::-1], base.T[::3], base[::-2, 1::3],
             np.broadcast_to(row, (8, 16)), base[5:6, ::-7])
    for view in views:
        for data in (ndpickle.dumps(view), ndpickle.dumps([view, {"k": view}])):
            snapshot = bytes(data)
            got = ndpickle.safe_loads(data)
            expected = pickle.loads(data)
            if isinstance(got, list):
                assert got[1]["k"] is got[0]
                got, expected = got[0], expected[0]
            np.testing.assert_array_equal(got, expected)
            assert got.strides == expected.strides and got.dtype == expected.dtype
            assert got.flags.writeable == expected.flags.writeable
            keep = got[...]
            del got
            np.testing.assert_array_equal(keep, expected)  # the copy outlives the first view
            if keep.flags.writeable:  # broadcasts load read-only, as numpy makes them
                keep[...] = 7
                assert (keep == 7).all()
            assert data == snapshot
