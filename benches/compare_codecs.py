#!/usr/bin/env python3
"""Compare per-buffer codecs on the five benchmark datasets, in one run, in one table.

Peers: python-lz4 (block, size-prefixed), zstandard (levels 1 and 3), blosc2 (shuffle+lz4 and
shuffle+zstd, one thread, typesize = element size), and Dask's ``maybe_compress`` (lz4 and zstd).
Ours: through the Python bindings once they exist (see ``ours_python`` — the hook), and today
through the Rust table tool (``--with-rust`` runs ``cargo run --release -p ndpickle-benches --bin
codec_table -- --csv``, single thread, on the same bytes: both sides print a checksum).

The datasets mirror ``benches/src/lib.rs`` bit for bit (counter-based splitmix64).

    python3 benches/compare_codecs.py [--with-rust] [--budget SECONDS]

Ratios are raw/compressed (higher is better); speeds are GB/s of raw data, best of several runs
on one thread.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

LEN = 8 << 20
U = np.uint64


def mix(seed: int, i: np.ndarray) -> np.ndarray:
    """splitmix64 of counters ``i`` under ``seed`` (wrapping uint64 arithmetic)."""
    with np.errstate(over="ignore"):
        z = U(seed) + (i + U(1)) * U(0x9E3779B97F4A7C15)
        z = (z ^ (z >> U(30))) * U(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> U(27))) * U(0x94D049BB133111EB)
        return z ^ (z >> U(31))


def uniform(seed: int, i: np.ndarray) -> np.ndarray:
    return (mix(seed, i) >> U(11)).astype(np.float64) * (1.0 / (1 << 53))


def datasets() -> list[tuple[str, int, bytes]]:
    i8 = np.arange(LEN // 8, dtype=np.uint64)
    i4 = np.arange(LEN // 4, dtype=np.uint64)
    i1 = np.arange(LEN, dtype=np.uint64)
    walk = np.cumsum(uniform(1, i8) - 0.5)
    unif = uniform(2, i8)
    sine = (100.0 * np.sin(i8.astype(np.float64) * 1e-3)).astype(np.float32).astype(np.float64)
    labels = (mix(4, i4 >> U(6)) % U(1000)).astype(np.int32)
    y, x = i1 // U(4096), i1 % U(4096)
    ramp = ((U(3) * x + U(5) * y) >> U(4)) + (mix(5, i1) & U(3))
    image = np.where((x // U(64) + y // U(64)) % U(3) == U(0), U(0), ramp).astype(np.uint8)
    return [
        ("f64_walk", 8, walk.tobytes()),
        ("f64_uniform", 8, unif.tobytes()),
        ("f64_sine_f32", 8, sine.tobytes()),
        ("i32_labels", 4, labels.tobytes()),
        ("u8_image", 1, image.tobytes()),
    ]


def checksum(data: bytes) -> int:
    w = np.frombuffer(data, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return int(np.sum(w * np.arange(1, len(w) + 1, dtype=np.uint64), dtype=np.uint64))


def best(fn, budget: float) -> float:
    times = []
    start = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < budget:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def peers(elem: int):
    """(name, compress, decompress) triples; decompress gets what compress returned."""
    import blosc2
    import lz4.block
    import zstandard
    from distributed.protocol.compression import decompress as dask_decompress
    from distributed.protocol.compression import maybe_compress

    out = [("python-lz4", lz4.block.compress, lz4.block.decompress)]
    for level in (1, 3):
        c = zstandard.ZstdCompressor(level=level)
        d = zstandard.ZstdDecompressor()
        out.append((f"zstandard L{level}", c.compress, d.decompress))
    blosc2.set_nthreads(1)
    for codec, clevel in ((blosc2.Codec.LZ4, 1), (blosc2.Codec.LZ4, 5), (blosc2.Codec.ZSTD, 1),
                          (blosc2.Codec.ZSTD, 3)):
        cp = {"codec": codec, "clevel": clevel, "typesize": elem, "nthreads": 1,
              "filters": [blosc2.Filter.SHUFFLE]}
        name = f"blosc2 shuffle+{codec.name.lower()} c{clevel}"
        out.append((name, lambda b, cp=cp: blosc2.compress2(b, cparams=cp),
                    lambda b: blosc2.decompress2(b, dparams={"nthreads": 1})))
    for comp in ("lz4", "zstd"):
        def c(b, comp=comp):
            return maybe_compress(b, compression=comp)

        def d(r):
            name, payload = r
            return payload if name is None else dask_decompress(
                {"compression": (name,)}, [payload])[0]
        out.append((f"dask maybe_compress {comp}", c, d))
    return out


def ours_python(elem: int):
    """HOOK — ndpickle's Python bindings. Return (name, compress, decompress) triples once
    ``ndpickle`` exposes its codecs to Python (e.g. ``ndpickle.compress(buf, codec=..., shuffle=
    elem)``); until then nothing is measured here and ``--with-rust`` gives our figures."""
    try:
        import ndpickle  # noqa: F401
    except ImportError:
        return []
    if not hasattr(ndpickle, "compress"):
        return []
    return [
        ("ndpickle shuffle+lz4", lambda b: ndpickle.compress(b, codec="lz4", elem_size=elem),
         ndpickle.decompress),
    ]


def size_of(r) -> int:
    if isinstance(r, tuple):  # dask: (name, payload)
        return len(memoryview(r[1]).cast("B"))
    return len(r)


def rust_rows(root: str) -> tuple[dict, dict]:
    """Runs the Rust table tool; returns ({(dataset, config): (ratio, c, d)}, {dataset: sum})."""
    cmd = ["cargo", "run", "-q", "--release", "-p", "ndpickle-benches", "--bin", "codec_table",
           "--", "--csv"]
    p = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=True)
    rows, sums = {}, {}
    for line in p.stdout.splitlines():
        f = line.split(",")
        if f[0] == "csv":
            rows[(f[1], "ndpickle (Rust) " + f[2])] = (float(f[3]), float(f[4]), float(f[5]))
    for line in p.stderr.splitlines():
        if "checksum" in line:
            name, rest = line.split(":", 1)
            sums[name] = int(rest.split()[-1], 16)
    return rows, sums


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--with-rust", action="store_true", help="also run the Rust table tool")
    ap.add_argument("--budget", type=float, default=0.3, help="seconds per measurement")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rust, rust_sums = rust_rows(root) if args.with_rust else ({}, {})
    print("| dataset | codec | ratio | compress GB/s | decompress GB/s |")
    print("|---|---|---|---|---|")
    for name, elem, data in datasets():
        s = checksum(data)
        if name in rust_sums and rust_sums[name] != s:
            print(f"WARNING: {name} differs between Rust and numpy", file=sys.stderr)
        for pname, comp, decomp in peers(elem) + ours_python(elem):
            r = comp(data)
            back = decomp(r)
            assert bytes(back) == data, (name, pname)
            tc = best(lambda: comp(data), args.budget)
            td = best(lambda: decomp(r), args.budget)
            ratio = len(data) / size_of(r)
            print(f"| {name} | {pname} | {ratio:.3f} | {len(data) / tc / 1e9:.2f} | "
                  f"{len(data) / td / 1e9:.2f} |")
        for (ds, cname), (ratio, c, d) in sorted(rust.items()):
            if ds == name:
                print(f"| {name} | {cname} | {ratio:.3f} | {c:.2f} | {d:.2f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
