"""Fuzzes the Python converter: ``ndpickle.safe_loads`` on arbitrary bytes and buffers.

An input is the pickle and out-of-band buffers, separated as in the Rust targets
(``tests/common/fuzz_input.rs``: parts split at ``SEP``). ``safe_loads`` must raise
``ndpickle.DecodeError`` or return an object that is safe to use: numpy arrays readable,
pyarrow objects passing ``validate(full=True)`` and readable, and no module imported while
loading. Anything else is a finding.

A Python-level finding (a wrong exception, an invalid pyarrow object, an import, a slow
input) does not stop the run: it is written once per class to ``--findings DIR`` (default
``findings/convert``) and counted; crashes (SIGSEGV, abort) and timeouts stop libFuzzer,
which saves the input as ``crash-*`` / ``timeout-*`` as usual.

Run (cargo-fuzz style arguments are libFuzzer's)::

    python convert.py corpus/convert -runs=1000000 -max_len=8192 -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1

Replay one file: ``python convert.py --replay FILE``.
"""

from __future__ import annotations

import decimal
import hashlib
import os
import re
import sys
import time
from typing import Any, List, Optional, Set, Tuple

import atheris

import numpy as np

with atheris.instrument_imports():
    import ndpickle

try:
    import pyarrow as pa
except ImportError:  # pragma: no cover - pyarrow is in the test requirements
    pa = None
try:
    import ml_dtypes  # noqa: F401  (imported up front: the reader may use it)
except ImportError:
    pass

SEP = b"\xfe\xfdNDFZ"
MAX_PARTS = 32
LIMITS = {
    "max_alloc_bytes": 64 << 20,
    "max_copied_bytes": 16 << 20,
    "max_decompressed_bytes": 32 << 20,
}
MAX_READ = 16 << 20
SLOW_SECONDS = 2.0

FINDINGS_DIR = "findings/convert"

# The conversion runs in the (uninstrumented) extension, so Python-level coverage alone sees
# almost nothing. The outcome of each input (error kind, opcode, offset bucket; or the types
# returned) is hashed into one of FEEDBACK_BUCKETS leaves of a generated, instrumented
# decision tree: each leaf is its own basic block, so inputs reaching new outcomes count as
# new coverage and stay in the corpus.
FEEDBACK_BUCKETS = 1024


def _make_feedback(n: int) -> Any:
    def tree(lo: int, hi: int, indent: str) -> str:
        if hi - lo == 1:
            return f"{indent}return {lo}\n"
        mid = (lo + hi) // 2
        return (
            f"{indent}if h < {mid}:\n"
            + tree(lo, mid, indent + "    ")
            + f"{indent}else:\n"
            + tree(mid, hi, indent + "    ")
        )

    namespace: dict = {}
    exec("def feedback(h):\n" + tree(0, n, "    "), namespace)  # noqa: S102 - generated above
    return atheris.instrument_func(namespace["feedback"])


_feedback = _make_feedback(FEEDBACK_BUCKETS)


def outcome_key(obj: Any, depth: int = 0) -> str:
    """A short description of what was returned, for the feedback buckets."""
    if depth > 3:
        return "..."
    if isinstance(obj, (list, tuple, set, frozenset)):
        return type(obj).__name__ + "[" + ",".join(outcome_key(x, depth + 1) for x in list(obj)[:4]) + "]"
    if isinstance(obj, dict):
        return "dict[" + ",".join(outcome_key(v, depth + 1) for v in list(obj.values())[:4]) + "]"
    if isinstance(obj, np.ndarray):
        return f"nd{obj.ndim}{obj.dtype.kind}{obj.dtype.itemsize}{obj.flags.writeable}"
    if pa is not None and isinstance(obj, (pa.Array, pa.ChunkedArray)):
        return f"pa{obj.type}"
    return type(obj).__name__


def feedback(key: str) -> None:
    """Turns an outcome into coverage (see FEEDBACK_BUCKETS)."""
    _feedback(int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "little") % FEEDBACK_BUCKETS)
_seen: Set[str] = set()


def split(data: bytes) -> List[bytes]:
    """The parts of an input (the Rust ``fuzz_input::split``)."""
    parts = data.split(SEP, MAX_PARTS - 1)
    return parts


def finding(kind: str, detail: str, data: bytes) -> None:
    """Records one finding class (first input of each class is kept)."""
    detail = re.sub(r"0x[0-9a-f]+|\d+", "N", detail)[:120]
    key = f"{kind}: {detail}"
    if key in _seen:
        return
    _seen.add(key)
    os.makedirs(FINDINGS_DIR, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    path = os.path.join(FINDINGS_DIR, f"{kind}-{name}")
    with open(path, "wb") as f:
        f.write(data)
    with open(os.path.join(FINDINGS_DIR, "index.txt"), "a") as f:
        f.write(f"{path}\t{key}\n")
    print(f"FINDING {key} -> {path}", file=sys.stderr, flush=True)


def check_pyarrow(obj: Any, data: bytes) -> None:
    """Validates and reads a pyarrow array-like object."""
    try:
        obj.validate(full=True)
    except Exception as e:  # noqa: BLE001 - any failure is the finding
        finding("pyarrow-invalid", f"{type(obj).__name__}: {type(e).__name__}: {e}", data)
        return
    small = (len(obj) if isinstance(obj, (pa.Array, pa.ChunkedArray)) else obj.num_rows) <= 10_000
    if not small:
        return
    # Every buffer read by Arrow itself: an IPC stream write touches all of them.
    if isinstance(obj, pa.Array):
        obj = pa.RecordBatch.from_arrays([obj], ["x"])
    elif isinstance(obj, pa.ChunkedArray):
        obj = pa.table({"x": obj})
    try:
        with pa.ipc.new_stream(pa.BufferOutputStream(), obj.schema) as w:
            w.write(obj)
    except pa.ArrowNotImplementedError:
        pass  # a valid type IPC does not carry
    try:
        obj.to_pylist()
    except (OverflowError, ValueError, pa.ArrowInvalid, pa.ArrowNotImplementedError,
            decimal.InvalidOperation):
        # Valid data Python cannot represent (dates out of datetime's range, durations over
        # C int, a time zone without the zoneinfo database, a decimal whose scale is over its
        # precision: pyarrow's own as_py cannot parse the string it makes): pickle.loads'
        # object raises the same; anything else (or a crash) stays a finding.
        pass


def check(obj: Any, data: bytes, depth: int = 0) -> None:
    """Uses what ``safe_loads`` returned, recursively."""
    if depth > 100:
        return
    if isinstance(obj, (list, tuple, set, frozenset)):
        for x in obj:
            check(x, data, depth + 1)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            check(k, data, depth + 1)
            check(v, data, depth + 1)
    elif isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            finding("numpy-object-dtype", str(obj.dtype), data)
            return
        if obj.nbytes <= MAX_READ:
            obj.tobytes()
            obj.copy()
            repr(obj[:3] if obj.ndim else obj)
    elif isinstance(obj, (np.generic, np.dtype)):
        repr(obj)
    elif pa is not None and isinstance(
        obj, (pa.Array, pa.ChunkedArray, pa.RecordBatch, pa.Table)
    ):
        check_pyarrow(obj, data)
    elif pa is not None and isinstance(obj, (pa.DataType, pa.Field, pa.Schema, pa.Scalar)):
        repr(obj)


def same(a: Any, b: Any, depth: int = 0) -> bool:
    """Whether two loads gave the same objects (types, dtypes, shapes, strides,
    writeability, bytes; values by ``==`` elsewhere, NaN equal to NaN)."""
    if type(a) is not type(b) or depth > 50:
        return False
    if isinstance(a, np.ndarray):
        return (a.dtype == b.dtype and a.shape == b.shape and a.strides == b.strides
                and a.flags.writeable == b.flags.writeable and a.tobytes() == b.tobytes())
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y, depth + 1) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k], depth + 1) for k in a)
    if isinstance(a, float) and a != a:
        return b != b
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - incomparable values are a difference
        return False


def check_direct(data: bytes) -> None:
    """``safe_loads``' single pass against the full reader on the same bytes: where the
    single pass answers, the full reader (forced by an explicit, default limit) must give
    the same objects; it must never answer where the full reader refuses."""
    try:
        took, got = ndpickle._native._direct_loads(data)
    except Exception as e:  # noqa: BLE001 - the single pass never raises
        finding(f"direct-exception-{type(e).__name__}", str(e), data)
        return
    if not took:
        return
    try:
        want = ndpickle.safe_loads(data, max_depth=1000)
    except ndpickle.DecodeError as e:
        finding("direct-accepts-refused", str(e), data)
        return
    if not same(got, want):
        finding("direct-differs", f"{outcome_key(got)} vs {outcome_key(want)}", data)


def one_input(data: bytes) -> None:
    """The fuzz target."""
    parts = split(data)
    if len(parts) == 1:
        check_direct(parts[0])
    # Imports only add modules: the set is built only when the count changed.
    loaded = len(sys.modules)
    t = time.monotonic()
    try:
        obj = ndpickle.safe_loads(parts[0], buffers=parts[1:], **LIMITS)
    except ndpickle.DecodeError as e:
        obj = None
        ok = False
        off = getattr(e, "offset", None)
        bucket = -1 if off is None else min(int(off).bit_length(), 24)
        feedback(f"E{getattr(e, 'kind', '')}{getattr(e, 'opcode', '')}{bucket}")
    except RecursionError as e:
        finding("exception-RecursionError", str(e), data)
        return
    except Exception as e:  # noqa: BLE001 - anything but DecodeError is the finding
        finding(f"exception-{type(e).__name__}", str(e), data)
        return
    else:
        ok = True
    took = time.monotonic() - t
    new = set(sys.modules) - BASELINE if len(sys.modules) != loaded else ()
    if new:
        finding("import-during-load", ",".join(sorted(new)[:5]), data)
    if took > SLOW_SECONDS:
        finding("slow", f"{took:.1f}s", data)
    if not ok:
        return
    feedback("L" + outcome_key(obj))
    try:
        check(obj, data)
    except Exception as e:  # noqa: BLE001 - a returned object that fails to be used
        finding(f"unusable-{type(e).__name__}", str(e), data)


# The modules loaded before the first input (a module imported during a load is a finding;
# after the first finding of each, it stays in ``sys.modules``, so later loads do not repeat it).
BASELINE: Set[str] = set()


def replay(path: str) -> Tuple[str, Optional[BaseException]]:
    """Runs one input and says what happened (for regression checks)."""
    with open(path, "rb") as f:
        data = f.read()
    parts = split(data)
    try:
        obj = ndpickle.safe_loads(parts[0], buffers=parts[1:], **LIMITS)
    except ndpickle.DecodeError as e:
        return "DecodeError", e
    except Exception as e:  # noqa: BLE001
        return type(e).__name__, e
    check(obj, data)
    return "loaded", None


def main() -> None:
    global FINDINGS_DIR
    args = sys.argv[:]
    if "--findings" in args:
        i = args.index("--findings")
        FINDINGS_DIR = args[i + 1]
        del args[i : i + 2]
    if len(args) > 2 and args[1] == "--replay":
        for p in args[2:]:
            print(p, *replay(p), flush=True)
        return
    BASELINE.update(sys.modules)
    atheris.Setup(args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
