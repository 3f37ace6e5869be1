"""`ndpickle.safe_loads`: the Rust reader from Python.

Until the safe reader is merged into this build, `safe_loads` raises NotImplementedError
and every test here but the first is skipped (they switch on by themselves once it lands):
- every numpy/pyarrow fixture under `tests/fixtures/` loads and equals `pickle.loads`;
- ndpickle's own streams (in-band and out-of-band) load, arrays viewing the buffers;
- every bad input of CPython's `test.pickletester` and every code-execution attempt raises
  `ndpickle.DecodeError`.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

import ndpickle

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _reader_available() -> bool:
    try:
        ndpickle.safe_loads(pickle.dumps(None, protocol=5))
    except NotImplementedError:
        return False
    return True


needs_reader = pytest.mark.skipif(not _reader_available(), reason="the safe reader is not in this build yet")


def test_without_reader_it_refuses_rather_than_guess():
    if _reader_available():
        pytest.skip("reader present")
    with pytest.raises(NotImplementedError, match="safe reader"):
        ndpickle.safe_loads(ndpickle.dumps(np.arange(3)))


def _fixture_files():
    if not FIXTURES.is_dir():
        return []
    return sorted(p for p in FIXTURES.rglob("*.pkl"))


def _equal(a, b):
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes() if not a.dtype.names else np.array_equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b)
        for k in a:
            _equal(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _equal(x, y)
    elif hasattr(a, "equals"):  # pyarrow
        assert a.equals(b)
    else:
        assert a == b or (a != a and b != b)


@needs_reader
@pytest.mark.parametrize("path", _fixture_files(), ids=lambda p: p.name)
def test_fixture_loads_like_pickle(path):
    data = path.read_bytes()
    _equal(pickle.loads(data), ndpickle.safe_loads(data))


@needs_reader
@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_own_streams(protocol):
    obj = {"a": np.arange(12.0).reshape(3, 4)[:, ::2], "b": [1, "x", None, b"y"], "c": np.float32(2)}
    _equal(pickle.loads(ndpickle.dumps(obj, protocol=protocol)), ndpickle.safe_loads(ndpickle.dumps(obj, protocol=protocol)))


@needs_reader
def test_out_of_band_arrays_view_the_buffers():
    a = np.arange(1000.0)
    header, frames = ndpickle.serialize(a)
    out = ndpickle.safe_loads(frames[0], buffers=frames[1:])
    np.testing.assert_array_equal(out, a)
    assert np.shares_memory(out, a)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


@needs_reader
@pytest.mark.parametrize(
    "data",
    [
        pickle.dumps(_Evil(), protocol=p) for p in range(0, 6)
    ]
    + [
        b"cos\nsystem\n(S'echo pwned'\ntR.",
        b"cbuiltins\neval\n(S'1+1'\ntR.",
        b"\x80\x04\x95\x1a\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x8c\x04exec\x93\x8c\x011\x85R.",
        b"csubprocess\nPopen\n(S'ls'\ntR.",
    ],
)
def test_code_execution_is_refused(data):
    with pytest.raises(ndpickle.DecodeError):
        ndpickle.safe_loads(data)


def _pickletester_bad_inputs():
    try:
        from test import pickletester
    except ImportError:
        return []
    t = pickletester.AbstractUnpickleTests
    out = []
    # The cases are byte literals inside the test methods: collect them from the source.
    import inspect
    import re

    src = inspect.getsource(t)
    for lit in re.findall(r"(b'(?:[^'\\]|\\.)*'|b\"(?:[^\"\\]|\\.)*\")", src):
        try:
            value = eval(lit)  # noqa: S307 - literals from CPython's own test source
        except Exception:
            continue
        if value:
            out.append(value)
    return sorted(set(out))


@needs_reader
def test_pickletester_bad_inputs_are_refused_or_read_safely():
    cases = _pickletester_bad_inputs()
    if not cases:
        pytest.skip("CPython's test.pickletester is not installed")
    for data in cases:
        try:
            expected_ok = True
            pickle.loads(data)
        except Exception:
            expected_ok = False
        try:
            ndpickle.safe_loads(data)
        except ndpickle.DecodeError:
            continue
        assert expected_ok, f"{data!r} loads with safe_loads but pickle refuses it"
