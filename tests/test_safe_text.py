"""``safe_loads``' ``encoding``, ``errors`` and ``fix_imports`` against ``pickle.loads``, and
strings with lone surrogates, with pickles CPython writes (Python 2 ``str`` pickles are
hand-written with the opcodes Python 2's pickler emits)."""

import pickle

import numpy as np
import pytest

import ndpickle


def py2_str(b: bytes, op: str) -> bytes:
    """A pickle of a Python 2 ``str`` with ``b``'s bytes, written with opcode ``op``."""
    if op == "SHORT_BINSTRING":
        return b"\x80\x02U" + bytes([len(b)]) + b + b"q\x00."
    if op == "BINSTRING":
        return b"\x80\x02T" + len(b).to_bytes(4, "little") + b + b"q\x00."
    return b"S" + repr(b)[1:].encode() + b"\np0\n."  # STRING, protocol 0


CASES = [b"", b"abc", b"caf\xe9", b"\xff\x00\x80", "\u20ac".encode("utf-8")]
OPS = ["SHORT_BINSTRING", "BINSTRING", "STRING"]
SETTINGS = [
    {},
    {"encoding": "latin1"},
    {"encoding": "bytes"},
    {"encoding": "utf-8"},
    {"encoding": "utf-8", "errors": "replace"},
    {"encoding": "ASCII", "errors": "ignore"},
    {"encoding": "cp1252", "errors": "backslashreplace"},
    {"encoding": "koi8_r"},
]


def outcome(f, data, kw):
    try:
        v = f(data, **kw)
    except ndpickle.DecodeError as e:
        return ("error", "DecodeError", str(e))
    except Exception as e:  # pickle's own errors
        return ("error", type(e).__name__, str(e))
    return ("ok", type(v), v)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("kw", SETTINGS, ids=repr)
def test_python2_str_decodes_as_pickle_loads_does(op, kw):
    for b in CASES:
        data = py2_str(b, op)
        want = outcome(pickle.loads, data, kw)
        got = outcome(ndpickle.safe_loads, data, kw)
        if want[0] == "ok":
            assert got == want, (b, op, kw)
        else:
            # pickle raises the codec's error; safe_loads only DecodeError, naming it.
            assert got[0] == "error" and got[1] == "DecodeError", (b, op, kw, got)
            assert want[1] in got[2], (want, got)


def test_python2_containers_with_bytes_encoding():
    # Python 2's pickle of {'k': ['v', u'w']} at protocol 2.
    data = b"\x80\x02}q\x00U\x01kq\x01]q\x02(U\x01vq\x03X\x01\x00\x00\x00wq\x04es."
    for kw in ({}, {"encoding": "bytes"}, {"encoding": "latin1"}):
        assert ndpickle.safe_loads(data, **kw) == pickle.loads(data, **kw)


def test_numpy_python2_pickle_keeps_loading():
    # numpy's Python 2 pickle of np.array([1.5, -2.0]) (rawdata is a Python 2 str).
    raw = np.array([1.5, -2.0]).tobytes()
    data = (
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00\x85U\x01b\x87R"
        b"(K\x01K\x02\x85cnumpy\ndtype\nq\x03U\x02f8K\x00K\x01\x87Rq\x04(K\x03U\x01<NNNJ\xff\xff\xff\xff"
        b"J\xff\xff\xff\xffK\x00tbK\x00U\x10" + raw + b"tb."
    )
    want = pickle.loads(data, encoding="latin1")
    for kw in ({}, {"encoding": "latin1"}, {"encoding": "bytes"}):
        got = ndpickle.safe_loads(data, **kw)
        assert got.dtype == want.dtype and got.tolist() == want.tolist(), kw


def test_fix_imports():
    # Python 2's pickle of set([1]) names __builtin__.set.
    data = b"\x80\x02c__builtin__\nset\nq\x00]q\x01K\x01a\x85q\x02Rq\x03."
    assert ndpickle.safe_loads(data) == pickle.loads(data) == {1}
    with pytest.raises(Exception):
        pickle.loads(data, fix_imports=False)
    with pytest.raises(ndpickle.DecodeError, match="__builtin__"):
        ndpickle.safe_loads(data, fix_imports=False)


def test_bad_keyword_types_are_type_errors():
    with pytest.raises(TypeError):
        ndpickle.safe_loads(b"N.", encoding=1)
    with pytest.raises(TypeError):
        ndpickle.safe_loads(b"N.", errors=None)


@pytest.mark.parametrize("proto", range(pickle.HIGHEST_PROTOCOL + 1))
def test_lone_surrogates_round_trip(proto):
    for s in ["\ud800", "a\udfffb", "\ud83d\ude00", "\udc80" * 3 + "x", "\U0001f600\ud800"]:
        data = pickle.dumps([s, {s: s}], proto)
        got = ndpickle.safe_loads(data)
        assert got == pickle.loads(data) == [s, {s: s}], (s, proto)


def test_invalid_utf8_is_still_refused():
    for bad in (b"\xff", b"\xed\xa0", b"\xc0\x80", b"\xf4\x90\x80\x80"):
        data = b"\x80\x04\x8c" + bytes([len(bad)]) + bad + b"."
        with pytest.raises(Exception):
            pickle.loads(data)
        with pytest.raises(ndpickle.DecodeError):
            ndpickle.safe_loads(data)
