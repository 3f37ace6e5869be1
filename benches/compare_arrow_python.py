"""pyarrow objects from Python: ndpickle against pickle + pyarrow's own reducer, in one run.

    python benches/compare_arrow_python.py [--repeat N] [--rows N] [--big-rows N]

The table has --rows rows (default 1 M) of five columns: int64 (10 % nulls), float64,
string, list<float64> and dictionary<int32, string> (50 categories). Printed:

- bytes: what `ndpickle.dumps` and `ndpickle.serialize` ship (pickle + buffers) for a 10 %
  slice and a 5-element string slice, as a share of `pickle.dumps(table)` and of
  `pickle.dumps(slice)` (pyarrow ships a slice's whole parent buffers);
- `serialize` of a 100-row slice of a 1 K-row table and of a --big-rows (default 10 M) row
  table: the time ratio big / small (O(1) in the table size means near 1);
- `dumps` of the whole table: pickle.dumps time / ndpickle.dumps time (> 1: ndpickle faster),
  and the same for `serialize` against `pickle.dumps(buffer_callback=...)`.

Times are the minimum of N runs (`time.perf_counter`); compared calls run alternately.
"""

from __future__ import annotations

import argparse
import pickle
import time
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import ndpickle


def best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def best_pair(fa: Callable[[], Any], fb: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Minimum times of ``fa`` and ``fb`` run alternately (both see the same machine load)."""
    ta, tb = [], []
    for _ in range(repeat):
        ta.append(best(fa, 1))
        tb.append(best(fb, 1))
    return min(ta), min(tb)


def table(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    valid = rng.random(n) > 0.1
    lens = rng.integers(0, 4, n)
    offs = np.concatenate([[0], np.cumsum(lens)]).astype(np.int32)
    lists = pa.ListArray.from_arrays(pa.array(offs), pa.array(rng.random(int(offs[-1]))))
    cats = pa.DictionaryArray.from_arrays(
        pa.array(rng.integers(0, 50, n).astype(np.int32)),
        pa.array([f"category-{i}" for i in range(50)]),
    )
    return pa.table(
        {
            "i": pa.array(rng.integers(0, 1 << 40, n), mask=~valid),
            "f": pa.array(rng.random(n)),
            "s": pc.cast(pa.array(rng.integers(0, 10**9, n)), pa.string()),
            "l": lists,
            "d": cats,
        }
    )


def shipped(header_frames: tuple[dict[str, Any], list[Any]]) -> int:
    return sum(memoryview(f).nbytes for f in header_frames[1])


def fmt(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--big-rows", type=int, default=10_000_000)
    args = ap.parse_args()
    n = args.rows
    t = table(n)
    whole = len(pickle.dumps(t, 5))
    tenth = t.slice(n // 2, n // 10)
    strings = t.column("s").chunk(0).slice(n // 2, 5)
    print(f"pyarrow {pa.__version__}, ndpickle {ndpickle.__version__}, {n} rows, "
          f"pickle.dumps(table) = {fmt(whole)}")  # fmt: skip
    print()
    print(f"{'bytes shipped':32} {'pickle':>10} {'ndp.dumps':>10} {'ndp.serialize':>13} "
          f"{'dumps/pickle(table)':>20} {'dumps/pickle(slice)':>20}")  # fmt: skip
    for name, obj in [("10 % table slice", tenth), ("5-element string slice", strings)]:
        theirs = len(pickle.dumps(obj, 5))
        ours = len(ndpickle.dumps(obj))
        ser = shipped(ndpickle.serialize(obj))
        print(f"{name:32} {fmt(theirs):>10} {fmt(ours):>10} {fmt(ser):>13} "
              f"{ours / whole:>19.2%} {ours / theirs:>19.2%}")  # fmt: skip
    print()
    # serialize of a fixed-size slice: O(1) in the table size.
    small = table(1000, seed=1)
    big = table(args.big_rows, seed=2)
    rows = 100
    mid = args.big_rows // 2
    ts, tb = best_pair(
        lambda: ndpickle.serialize(small.slice(450, rows)),
        lambda: ndpickle.serialize(big.slice(mid, rows)),
        args.repeat * 20,
    )
    tsn, tbn = best_pair(
        lambda: ndpickle.serialize(small.slice(450, rows), compression=None),
        lambda: ndpickle.serialize(big.slice(mid, rows), compression=None),
        args.repeat * 20,
    )
    print(f"serialize of a {rows}-row slice: 1 K-row table {ts * 1e6:.0f} us, "
          f"{args.big_rows:,}-row table {tb * 1e6:.0f} us, big/small {tb / ts:.2f}x "
          f"(compression=None: {tsn * 1e6:.0f} us, {tbn * 1e6:.0f} us, "
          f"{tbn / tsn:.2f}x)")  # fmt: skip
    big = small  # frees the big table before the whole-table timings
    print()
    # Whole-table speed.
    tp, tn = best_pair(lambda: pickle.dumps(t, 5), lambda: ndpickle.dumps(t), args.repeat)
    bufs: list[Any] = []
    tpo, tso = best_pair(
        lambda: (bufs.clear(), pickle.dumps(t, 5, buffer_callback=bufs.append)),
        lambda: ndpickle.serialize(t, compression=None),
        args.repeat,
    )
    data = ndpickle.dumps(t)
    tl, tsl = best_pair(lambda: pickle.loads(data), lambda: ndpickle.safe_loads(data), args.repeat)
    print(f"{'whole table':32} {'pickle':>10} {'ndpickle':>10} {'ratio':>8}")
    print(f"{'dumps (in-band)':32} {tp * 1e3:>8.1f}ms {tn * 1e3:>8.1f}ms {tp / tn:>7.2f}x")
    print(f"{'out-of-band (serialize, raw)':32} {tpo * 1e3:>8.1f}ms {tso * 1e3:>8.1f}ms "
          f"{tpo / tso:>7.2f}x")  # fmt: skip
    print(f"{'loads of ndpickle bytes':32} {tl * 1e3:>8.1f}ms {tsl * 1e3:>8.1f}ms {tl / tsl:>7.2f}x"
          "  (pickle.loads vs safe_loads)")  # fmt: skip


if __name__ == "__main__":
    main()
