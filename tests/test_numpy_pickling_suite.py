"""numpy's own pickling tests, run with pickling through ndpickle.

The test classes are imported from the installed numpy test modules (nothing is copied):
`test_multiarray.py::TestPickling` and `test_dtype.py::TestPickling`. Each test method runs
with the module's `pickle` replaced by a namespace whose `dumps` pickles through
`ndpickle.Pickler` and whose `loads` is `ndpickle.loads`.
"""

from __future__ import annotations

import inspect
import io
import pickle
import types

import pytest

import ndpickle

tm = pytest.importorskip("numpy._core.tests.test_multiarray")
td = pytest.importorskip("numpy._core.tests.test_dtype")


def _dumps(obj, protocol=None, *, fix_imports=True, buffer_callback=None):
    f = io.BytesIO()
    ndpickle.Pickler(
        f, protocol, fix_imports=fix_imports, buffer_callback=buffer_callback
    ).dump(obj)
    return f.getvalue()


def _loads(data, *, fix_imports=True, encoding="ASCII", errors="strict", buffers=None):
    if encoding != "ASCII" or errors != "strict" or not fix_imports:
        return pickle.loads(
            data, fix_imports=fix_imports, encoding=encoding, errors=errors, buffers=buffers
        )
    return ndpickle.loads(data, buffers=buffers)


SHIM = types.SimpleNamespace(**{k: getattr(pickle, k) for k in dir(pickle) if not k.startswith("__")})
SHIM.dumps = _dumps
SHIM.loads = _loads

# Where ndpickle deliberately differs from numpy: numpy copies a non-contiguous array
# in-band, ndpickle sends its span out-of-band with no copy (DESIGN §3.4); numpy turns a
# byte-swapped datetime64 native, ndpickle keeps the dtype as it is.
DELIBERATE = {
    ("test_multiarray", "test_non_contiguous_array"): "ndpickle sends non-contiguous arrays "
    "out-of-band (the span, zero copies); numpy asserts that no buffer is produced",
    ("test_multiarray", "test_datetime64_byteorder"): "ndpickle keeps the dtype exactly "
    "(>M8[ns] stays big-endian, values equal); numpy's own pickle turns it native",
}


def _cases():
    out = []
    for mod in (tm, td):
        cls = mod.TestPickling
        modname = mod.__name__.rsplit(".", 1)[1]
        for name, fn in inspect.getmembers(cls, inspect.isfunction):
            if not name.startswith("test"):
                continue
            marks = list(getattr(fn, "pytestmark", []))
            params = [m for m in marks if m.name == "parametrize"]
            # Expand parametrisations (numpy's own decorators) into explicit cases.
            combos = [dict()]
            for m in params:
                argnames, values = m.args[0], m.args[1]
                names = [a.strip() for a in argnames.split(",")] if isinstance(argnames, str) else list(argnames)
                new = []
                for c in combos:
                    for v in values:
                        vals = v if len(names) > 1 else (v,)
                        new.append({**c, **dict(zip(names, vals))})
                combos = new
            other = [m for m in marks if m.name != "parametrize"]
            for i, kwargs in enumerate(combos):
                pmarks = []
                for m in other:
                    if m.name == "skipif" and m.args and m.args[0]:
                        pmarks.append(pytest.mark.skip(reason=m.kwargs.get("reason", "numpy skipif")))
                    elif m.name == "xfail":
                        pmarks.append(pytest.mark.xfail(reason=m.kwargs.get("reason", "numpy xfail")))
                if (modname, name) in DELIBERATE:
                    pmarks.append(pytest.mark.xfail(reason=DELIBERATE[(modname, name)], strict=True))
                out.append(
                    pytest.param(mod, cls, name, kwargs, id=f"{modname}::{name}[{i}]", marks=pmarks)
                )
    return out


@pytest.mark.parametrize("mod,cls,name,kwargs", _cases())
def test_numpy_pickling(monkeypatch, mod, cls, name, kwargs):
    monkeypatch.setattr(mod, "pickle", SHIM)
    getattr(cls(), name)(**kwargs)


def test_the_shim_is_used(monkeypatch):
    """The monkeypatched module really pickles through ndpickle's reducer."""
    import numpy as np

    monkeypatch.setattr(tm, "pickle", SHIM)
    buffers: list = []
    tm.pickle.dumps(np.arange(12).reshape(3, 4)[:, :2], protocol=5, buffer_callback=buffers.append)
    assert len(buffers) == 1  # numpy itself would have produced none
