"""ndpickle against its Python peers, in one run, as one table.

    python benches/compare_python.py [--repeat N] [--safe-only]

For each case: time of `ndpickle.serialize` (out-of-band) and `ndpickle.dumps` (in-band)
as ratios against `pickle.dumps(protocol=5, buffer_callback=...)`, `pickle.dumps(protocol=5)`
and `cloudpickle.dumps(protocol=5, buffer_callback=...)`; load time against `pickle.loads`;
`safe_loads` against `pickle.loads` on the same bytes (when the safe reader is built in);
and the bytes each ships in-band and out-of-band. Times are the minimum of N runs
(`time.perf_counter`); ratio = peer time / ndpickle time, so > 1 means ndpickle is faster.

`--safe-only` prints only `safe_loads` against `pickle.loads` on the cases of its speed
target (>= 1.0x): 10 000 small float64 arrays written by `ndpickle.dumps`, by
`pickle.dumps(protocol=5)` and by `pickle.dumps(protocol=2)`, and a dict of 100 mixed small
arrays (`pickle.dumps(protocol=5)`).
"""

from __future__ import annotations

import argparse
import pickle
import time

import numpy as np

import ndpickle

try:
    import cloudpickle
except ImportError:  # pragma: no cover
    cloudpickle = None


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def cases():
    rng = np.random.default_rng(0)
    a = rng.random((1024, 8192))  # 64 MiB float64
    mixed = {}
    for i in range(100):
        kind = i % 5
        if kind == 0:
            mixed[f"f{i}"] = rng.random(1000)
        elif kind == 1:
            mixed[f"i{i}"] = rng.integers(0, 100, (30, 40)).astype("<i4")
        elif kind == 2:
            mixed[f"s{i}"] = rng.random((50, 50))[:, ::2]
        elif kind == 3:
            mixed[f"b{i}"] = np.broadcast_to(rng.random(64), (64, 64))
        else:
            mixed[f"u{i}"] = np.asfortranarray(rng.integers(0, 255, (20, 30)).astype("u1"))
    return [
        ("64 MiB contiguous", a),
        ("a[:, ::2] (64 MiB base)", a[:, ::2]),
        ("a[::-1]", a[::-1]),
        ("1000x1000 broadcast row", np.broadcast_to(a[0, :1000], (1000, 1000))),
        ("F order 64 MiB", np.asfortranarray(a)),
        ("10 000 small arrays", [rng.random(10) for _ in range(10_000)]),
        ("dict of 100 mixed arrays", mixed),
    ]


def sizes(frames):
    return len(frames[0]), sum(memoryview(f).nbytes for f in frames[1:])


def fmt_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--safe-only", action="store_true", help="only the safe_loads targets")
    args = ap.parse_args()
    r = args.repeat
    if args.safe_only:
        safe_targets(r)
        return

    try:
        ndpickle.safe_loads(pickle.dumps(None))
        have_reader = True
    except NotImplementedError:
        have_reader = False

    header = [
        "case",
        "ser ms",
        "x pickle5+cb",
        "x cloudpickle+cb",
        "dumps ms",
        "x pickle5",
        "load x pickle",
        "safe_loads x",
        "ndp in-band",
        "ndp oob",
        "pickle in-band",
        "pickle oob",
    ]
    rows = []
    for name, obj in cases():
        pk_bufs: list = []
        t_ser = best(lambda: ndpickle.serialize(obj), r)
        t_pk_cb = best(lambda: pickle.dumps(obj, protocol=5, buffer_callback=pk_bufs.append), r)
        t_cp = (
            best(lambda: cloudpickle.dumps(obj, protocol=5, buffer_callback=lambda b: None), r)
            if cloudpickle
            else float("nan")
        )
        t_dumps = best(lambda: ndpickle.dumps(obj), r)
        t_pk = best(lambda: pickle.dumps(obj, protocol=5), r)

        hdr, frames = ndpickle.serialize(obj)
        pk_bufs = []
        pk_data = pickle.dumps(obj, protocol=5, buffer_callback=pk_bufs.append)
        pk_raw = [b.raw() for b in pk_bufs]
        t_load = best(lambda: ndpickle.deserialize(hdr, frames), r)
        t_pk_load = best(lambda: pickle.loads(pk_data, buffers=pk_raw), r)

        inband = ndpickle.dumps(obj)
        if have_reader:
            t_safe = best(lambda: ndpickle.safe_loads(inband), r)
            t_pl = best(lambda: pickle.loads(inband), r)
            safe = f"{t_pl / t_safe:.2f}"
        else:
            safe = "n/a"
        ib, oob = sizes(frames)
        rows.append(
            [
                name,
                f"{t_ser * 1e3:.3f}",
                f"{t_pk_cb / t_ser:.1f}",
                f"{t_cp / t_ser:.1f}",
                f"{t_dumps * 1e3:.2f}",
                f"{t_pk / t_dumps:.2f}",
                f"{t_pk_load / t_load:.2f}",
                safe,
                fmt_bytes(ib),
                fmt_bytes(oob),
                fmt_bytes(len(pk_data)),
                fmt_bytes(sum(m.nbytes for m in pk_raw)),
            ]
        )

    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))
    print(
        f"\nratios = peer time / ndpickle time (>1: ndpickle faster); min of {r} runs; "
        f"numpy {np.__version__}"
        + (f", cloudpickle {cloudpickle.__version__}" if cloudpickle else "")
        + ("" if have_reader else "; safe_loads: reader not in this build")
    )
    if have_reader:
        # The safe reader on numpy's own pickles (`_reconstruct` + BUILD per array), the
        # form `pickle.dumps` writes and most files in the wild hold.
        for name, obj in cases():
            if name.startswith(("10 000", "dict of")):
                own = pickle.dumps(obj, protocol=5)
                t_safe = best(lambda: ndpickle.safe_loads(own), r)
                t_pl = best(lambda: pickle.loads(own), r)
                print(f"safe_loads of pickle.dumps(protocol=5) bytes, {name}: "
                      f"{t_safe * 1e3:.2f} ms vs pickle.loads {t_pl * 1e3:.2f} ms, "
                      f"{t_pl / t_safe:.2f}x")


def safe_targets(r: int) -> None:
    """`safe_loads` vs `pickle.loads` on the four cases of its speed target."""
    by_name = dict(cases())
    small, mixed = by_name["10 000 small arrays"], by_name["dict of 100 mixed arrays"]
    for name, data in [
        ("10 000 small arrays, ndpickle.dumps", ndpickle.dumps(small)),
        ("10 000 small arrays, pickle.dumps(protocol=5)", pickle.dumps(small, protocol=5)),
        ("10 000 small arrays, pickle.dumps(protocol=2)", pickle.dumps(small, protocol=2)),
        ("dict of 100 mixed arrays, pickle.dumps(protocol=5)", pickle.dumps(mixed, protocol=5)),
    ]:
        t_safe = best(lambda: ndpickle.safe_loads(data), r)
        t_pl = best(lambda: pickle.loads(data), r)
        print(f"{name}: safe_loads {t_safe * 1e3:.2f} ms, pickle.loads {t_pl * 1e3:.2f} ms, "
              f"{t_pl / t_safe:.2f}x")


if __name__ == "__main__":
    main()
