"""Loads hostile cases with ndpickle's safe reader and says what happened, one JSON line per
case on stdout; run by ``tests/test_hostile_corpus.py`` in a subprocess it watches (timeout,
RSS cap), so that a crash or a hang names its case.

The test forks it from a multiprocessing fork server with numpy and pyarrow imported
(:func:`run_batch`); by hand, the case paths (``.pkl`` files) come one per line on stdin and
it prints ``{"start": i}`` before loading and ``{"done": i, "problems": [...]}`` after.
Each case is loaded twice: ``safe_loads(bytes, buffers=[bytes...])`` and
``safe_load(path, buffers=[bytearray...])`` (the path is memory-mapped). A case passes when
each load either raises ``ndpickle.DecodeError`` or returns a valid, usable object (see
:func:`check_value`), imports nothing outside numpy/pyarrow/ml_dtypes/the standard library,
and takes at most ``max(2 s, 2 s per MB)`` of CPU time.
"""

from __future__ import annotations

import gc
import json
import math
import resource
import sys
import time
from pathlib import Path
from typing import Any, Callable

import ml_dtypes  # noqa: F401 - imported before the loads, as a user of them would have
import numpy as np
import pyarrow as pa

import ndpickle

# Top-level packages a load may import besides the standard library.
ALLOWED_IMPORTS = frozenset({"numpy", "pyarrow", "ml_dtypes", "ndpickle"})
# Rows of a pyarrow array read back (head and tail) after full validation.
READ_ROWS = 1000


def cpu_budget(nbytes: int) -> float:
    """Most CPU seconds one load of ``nbytes`` of input may take: 2 s per MB, at least 2 s."""
    return max(2.0, 2.0 * nbytes / 1e6)


def case_buffers(pkl: Path, writable: bool) -> list[Any]:
    """The out-of-band buffers of a case, as the objects its ``.json`` asks for."""
    files = []
    i = 0
    while (pkl.with_suffix(f".buf{i}")).exists():
        files.append(pkl.with_suffix(f".buf{i}").read_bytes())
        i += 1
    meta = pkl.with_suffix(".json")
    kinds = json.loads(meta.read_text()).get("buffers", []) if meta.exists() else []
    out: list[Any] = []
    for i, data in enumerate(files):
        kind = kinds[i] if i < len(kinds) else ("bytearray" if writable else "bytes")
        if kind == "0d":
            # A 0-d buffer: a memoryview with ndim 0 over all the bytes.
            a = np.frombuffer(data, dtype=np.dtype((np.void, max(len(data), 1))) if data else "u1")
            out.append(memoryview(a.reshape(()) if data else a))
        elif kind == "bytearray":
            out.append(bytearray(data))
        else:
            out.append(bytes(data))
    return out


def _touch_array(a: np.ndarray) -> None:
    """Reads every byte a numpy array reaches (once per broadcast slice) and uses it."""
    if a.dtype.hasobject:
        raise AssertionError(f"array of dtype {a.dtype} holds Python objects")
    if a.ndim > 64:
        raise AssertionError(f"array with {a.ndim} dimensions")
    if a.dtype.itemsize == 0 or a.size == 0:
        return
    core = a[tuple(0 if s == 0 else slice(None) for s in a.strides)]
    core.tobytes()
    if core.dtype.kind in "biufc":
        np.asarray(core).sum()
    if core.dtype.names:
        for name in core.dtype.names:
            core[name].tobytes()
    if a.flags.writeable:
        first = (0,) * a.ndim
        a[first] = a[first]


def _check_arrow(x: Any) -> None:
    """Fully validates a pyarrow object and reads it."""
    if isinstance(x, pa.ChunkedArray):
        x.validate(full=True)
        for chunk in x.chunks:
            _check_arrow(chunk)
    elif isinstance(x, pa.Array):
        x.validate(full=True)
        if pa.types.is_timestamp(x.type) and x.type.tz:
            # Reading zoned timestamps needs a time-zone database, not what is tested here.
            x = x.cast(pa.timestamp(x.type.unit))
        n = len(x)
        x.slice(0, READ_ROWS).to_pylist()
        x.slice(max(0, n - READ_ROWS)).to_pylist()
    elif isinstance(x, (pa.RecordBatch, pa.Table)):
        x.validate(full=True)
        for col in x.columns:
            _check_arrow(col)
        str(x.schema)
    elif isinstance(x, pa.Scalar):
        x.validate(full=True)
        x.as_py()
    elif isinstance(x, pa.Buffer):
        x.to_pybytes()
    elif isinstance(x, (pa.DataType, pa.Field, pa.Schema)):
        str(x)
    elif isinstance(x, pa.KeyValueMetadata):
        dict(x)
    else:
        raise AssertionError(f"unexpected pyarrow object {type(x).__name__}")


_PLAIN = (type(None), bool, int, float, complex, str, bytes, bytearray)


def check_value(value: Any) -> None:
    """Raises if ``value`` is not a tree of builtins, numpy and pyarrow objects that are valid
    and readable in full (no cycles needed: a visited set guards them)."""
    stack = [value]
    seen: set[int] = set()
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, _PLAIN):
            if isinstance(x, float):
                math.isnan(x)
            continue
        if isinstance(x, (list, tuple)):
            stack.extend(x)
        elif isinstance(x, dict):
            for k, v in x.items():
                hash(k)
                stack.append(k)
                stack.append(v)
        elif isinstance(x, (set, frozenset)):
            for v in x:
                hash(v)
                stack.append(v)
        elif isinstance(x, np.ndarray):
            _touch_array(x)
        elif isinstance(x, np.generic):
            np.asarray(x).tobytes()
            if np.asarray(x).dtype.hasobject:
                raise AssertionError("object scalar")
        elif isinstance(x, np.dtype):
            str(x)
            hash(x)
            if x.hasobject:
                raise AssertionError(f"object dtype {x}")
        elif isinstance(x, memoryview):
            x.tobytes()
        elif type(x).__module__.split(".")[0] == "pyarrow":
            _check_arrow(x)
        else:
            raise AssertionError(f"unexpected type {type(x).__module__}.{type(x).__qualname__}")


class _ImportRecorder:
    """A meta-path finder that finds nothing and remembers every module looked for, so that
    an attempted import of a package that is not installed (pandas) is seen too."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        self.names.add(name)
        return None


def _new_modules(before: set[str], attempted: set[str]) -> list[str]:
    bad = []
    for m in (set(sys.modules) - before) | attempted:
        top = m.split(".")[0]
        # _sysconfigdata_<abi>_<platform> is the standard library's, under a per-build name.
        stdlib = top in sys.stdlib_module_names or top.startswith("_sysconfigdata_")
        if top not in ALLOWED_IMPORTS and not stdlib:
            bad.append(m)
    return sorted(bad)


# What CPython prints instead of raising (PyErr_Print goes through sys.excepthook), e.g.
# "deallocated bytearray object has exported buffers": a buffer released after its object.
_PRINTED: list[str] = []


def _excepthook(t: type, v: BaseException, tb: Any) -> None:
    _PRINTED.append(f"{t.__name__}: {v}")



def load_once(label: str, load: Callable[[], Any], nbytes: int) -> list[str]:
    """Runs one load; returns the problems found (empty: refused cleanly or returned a
    valid object)."""
    problems = []
    _PRINTED.clear()
    sys.excepthook = _excepthook
    before = set(sys.modules)
    recorder = _ImportRecorder()
    sys.meta_path.insert(0, recorder)
    t0 = time.process_time()
    value: Any = None
    ok = False
    try:
        value = load()
        ok = True
    except ndpickle.DecodeError:
        pass
    except BaseException as e:  # noqa: BLE001 - any other exception is the finding
        problems.append(f"{label}: {type(e).__module__}.{type(e).__qualname__}: {str(e)[:200]}")
    cpu = time.process_time() - t0
    sys.meta_path.remove(recorder)
    if cpu > cpu_budget(nbytes):
        problems.append(f"{label}: took {cpu:.1f} s of CPU (budget {cpu_budget(nbytes):.1f} s)")
    bad = _new_modules(before, recorder.names)
    if bad:
        problems.append(f"{label}: imported (or tried to import) {', '.join(bad[:5])}")
    if ok:
        try:
            check_value(value)
        except BaseException as e:  # noqa: BLE001
            problems.append(
                f"{label}: returned an unusable object: {type(e).__qualname__}: {str(e)[:200]}"
            )
    del value
    gc.collect()
    sys.excepthook = sys.__excepthook__
    if _PRINTED:
        problems.append(f"{label}: Python printed {_PRINTED[0][:200]}")
        _PRINTED.clear()
    return problems


def run_case(pkl: Path) -> list[str]:
    """Both loads of one case."""
    data = pkl.read_bytes()
    bufs_ro = case_buffers(pkl, writable=False)
    nbytes = len(data) + sum(p.stat().st_size for p in pkl.parent.glob(pkl.stem + ".buf*"))
    problems = load_once("safe_loads", lambda: ndpickle.safe_loads(data, buffers=bufs_ro or None), nbytes)
    bufs_rw = case_buffers(pkl, writable=True)
    problems += load_once("safe_load", lambda: ndpickle.safe_load(str(pkl), buffers=bufs_rw or None), nbytes)
    return problems


def _limit_address_space(extra: int) -> None:
    """Caps the address space at what is mapped now plus ``extra`` bytes (a backstop for the
    parent's RSS watchdog against allocations too quick for it to see)."""
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + extra, vm + extra))


def run_batch(paths: list[str], conn: Any, extra: int, stderr_path: str) -> None:
    """Runs cases in order, sending ``("start", i)`` and ``("done", i, problems)`` over the
    multiprocessing connection ``conn`` (the entry point of the forked worker process);
    file descriptor 2 goes to ``stderr_path`` so that a crash's last words are kept."""
    import faulthandler
    import os

    fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 2)
    os.close(fd)
    faulthandler.enable()
    _limit_address_space(extra)
    for i, p in enumerate(paths):
        conn.send(("start", i))
        conn.send(("done", i, run_case(Path(p))))
    conn.close()


def main() -> None:
    """Command line: case paths on stdin, JSON lines on stdout (for running cases by hand)."""
    extra = int(sys.argv[1]) if len(sys.argv) > 1 else 3 << 30
    _limit_address_space(extra)
    out = sys.stdout
    for i, line in enumerate(sys.stdin):
        path = Path(line.strip())
        out.write(json.dumps({"start": i}) + "\n")
        out.flush()
        problems = run_case(path)
        out.write(json.dumps({"done": i, "problems": problems}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
