#!/usr/bin/env python3
"""Compare per-buffer codecs on the eight benchmark datasets, in one run, in one table.

Peers: python-lz4 (block, size-prefixed), zstandard (levels 1 and 3), blosc2 (shuffle+lz4 and
shuffle+zstd, one thread, typesize = element size), and Dask's ``maybe_compress`` (lz4 and zstd).
Ours: through the Python bindings (``ours_python``: lz4, zstd, ± shuffle, auto; one thread), and
optionally through the Rust table tool (``--with-rust`` runs ``cargo run --release -p
ndpickle-benches --bin codec_table -- --csv``, single thread, on the same bytes: both sides print
a checksum). After the table: ours against blosc2 as ratios, and the cost of ``auto`` on random
data against the raw path (``serialize`` + the copy of every frame a transport makes).

The datasets mirror ``benches/src/lib.rs`` bit for bit (counter-based splitmix64).

    python3 benches/compare_codecs.py [--with-rust] [--budget SECONDS] [--plot PNG]

Ratios are raw/compressed (higher is better); speeds are GB/s of raw data, best of several runs
on one thread. "kept raw": the codec's policy (Dask's ``maybe_compress``, our ``auto``, or ours
refusing a frame that is not smaller than the data) sends the buffer as it is; its compress
column is then the cost of that decision.
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
#: (name, element size) of every dataset, in the order ``datasets()`` builds them.
DATASETS = [("f64_walk", 8), ("f64_uniform", 8), ("f64_sine_f32", 8), ("i32_labels", 4),
            ("u8_image", 1), ("f32_field", 4), ("i64_timestamps", 8), ("u16_counts", 2)]


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
    # The three datasets fixed before the decoder work (benches/src/lib.rs says how).
    i2 = np.arange(LEN // 2, dtype=np.uint64)
    fy, fx = i4 // U(1024), i4 % U(1024)
    noise = (mix(6, i4) >> U(44)).astype(np.float64) * (1.0 / 1_048_576.0) * 0.01
    field = ((fx * fx + U(3) * fy * fy).astype(np.float64) * 1e-6 + 20.0 + noise).astype(np.float32)
    with np.errstate(over="ignore"):
        stamps = (U(1_700_000_000_000_000_000) + i8 * U(1_000_000) + mix(7, i8) % U(1000))
    m = mix(8, i2)
    counts = np.where(m % U(100) < U(85), U(0), (m >> U(32)) % U(60)).astype(np.uint16)
    out = [
        ("f64_walk", 8, walk.tobytes()),
        ("f64_uniform", 8, unif.tobytes()),
        ("f64_sine_f32", 8, sine.tobytes()),
        ("i32_labels", 4, labels.tobytes()),
        ("u8_image", 1, image.tobytes()),
        ("f32_field", 4, field.tobytes()),
        ("i64_timestamps", 8, stamps.astype(np.int64).tobytes()),
        ("u16_counts", 2, counts.tobytes()),
    ]
    assert [(n, e) for n, e, _ in out] == DATASETS
    return out


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
    """ndpickle through its Python bindings (``ndpickle._native.compress_buffers`` /
    ``decompress_frame``, the functions ``serialize``/``deserialize`` call), one thread.

    A buffer kept raw (auto policy said no, or the frame would not be smaller) is reported
    with ratio 1 and "decompression" = using the buffer as it is."""
    try:
        from ndpickle import _native
    except ImportError:
        return []

    def make(codec, shuffle, level=None):
        def c(b):
            (r,) = _native.compress_buffers([b], [elem], codec, shuffle, level, 1)
            return ("raw", b) if r is None else (r[0], r[1])

        def d(r):
            info, frame = r
            return frame if info == "raw" else _native.decompress_frame(info, frame, True,
                                                                        None, 1)
        return c, d

    out = []
    for name, codec, shuffle, level in (("lz4", "lz4", False, None),
                                        ("shuffle+lz4", "lz4", True, None),
                                        ("zstd L1", "zstd", False, 1),
                                        ("shuffle+zstd L1", "zstd", True, 1),
                                        ("shuffle+zstd L3", "zstd", True, 3),
                                        ("auto", "auto", True, None)):
        c, d = make(codec, shuffle, level)
        out.append((f"ndpickle {name}", c, d))
    return out


def auto_overhead(budget: float) -> tuple[float, float]:
    """Throughput of ``serialize`` + the transport's copy of every frame, 64 MiB of random
    float64 (which ``auto`` keeps raw), ``compression=None`` vs ``"auto"``: (raw GB/s, auto
    GB/s). The copy is into a preallocated buffer, as a socket or shared-memory write does."""
    import ndpickle

    a = np.random.default_rng(0).random(8 << 20)
    sink = bytearray(a.nbytes + (1 << 16))

    def send(compression):
        header, frames = ndpickle.serialize(a, compression=compression, threads=1)
        at = 0
        for f in frames:
            m = memoryview(f).cast("B")
            sink[at:at + m.nbytes] = m
            at += m.nbytes
        assert header["codec"][1] is None

    send(None), send("auto")
    # Interleave the two so that machine noise hits both alike.
    t_raw, t_auto = [], []
    start = time.perf_counter()
    while len(t_raw) < 5 or time.perf_counter() - start < 4 * budget:
        for lst, comp in ((t_raw, None), (t_auto, "auto")):
            t = time.perf_counter()
            send(comp)
            lst.append(time.perf_counter() - t)
    return a.nbytes / min(t_raw) / 1e9, a.nbytes / min(t_auto) / 1e9


PLOT_CODECS = ["ndpickle shuffle+lz4", "blosc2 shuffle+lz4 c5", "ndpickle shuffle+zstd L1",
               "blosc2 shuffle+zstd c1", "ndpickle auto", "python-lz4", "zstandard L1",
               "dask maybe_compress lz4"]


def plot(results: dict, path: str) -> None:
    """Three panels (ratio, compress GB/s, decompress GB/s), datasets × selected codecs;
    speeds of buffers a policy kept raw are left out (no bar)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, _, _ in datasets_meta()]
    codecs = [c for c in PLOT_CODECS if any((n, c) in results for n in names)]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    width = 0.8 / len(codecs)
    for k, (ax, title) in enumerate(zip(axes, ("ratio (raw/compressed)", "compress GB/s",
                                               "decompress GB/s"))):
        for j, c in enumerate(codecs):
            # A buffer kept raw has no compression speed worth drawing: leave its bar out.
            vals = [np.nan if (n, c) not in results or (k and results[(n, c)][3])
                    else results[(n, c)][k] for n in names]
            ax.bar(np.arange(len(names)) + j * width, vals, width, label=c)
        ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=20)
        ax.set_title(title)
        if k == 0:
            ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.suptitle("Per-buffer codecs on 8 MiB buffers, one thread (benches/compare_codecs.py); "
                 "no bar = kept raw")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def datasets_meta() -> list[tuple[str, int, None]]:
    return [(name, elem, None) for name, elem in DATASETS]


def size_of(r) -> int:
    if isinstance(r, tuple):  # dask: (name, payload); ours: (header or "raw", frame)
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
    ap.add_argument("--plot", metavar="PNG", help="also draw the comparison to this file")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rust, rust_sums = rust_rows(root) if args.with_rust else ({}, {})
    results: dict = {}
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
            kept_raw = isinstance(r, tuple) and r[0] in (None, "raw")
            results[(name, pname)] = (ratio, len(data) / tc / 1e9,
                                      0.0 if kept_raw else len(data) / td / 1e9, kept_raw)
            dec = "kept raw" if kept_raw else f"{len(data) / td / 1e9:.2f}"
            print(f"| {name} | {pname} | {ratio:.3f} | {len(data) / tc / 1e9:.2f} | {dec} |")
        for (ds, cname), (ratio, c, d) in sorted(rust.items()):
            if ds == name:
                results[(ds, cname)] = (ratio, c, d, False)
                print(f"| {name} | {cname} | {ratio:.3f} | {c:.2f} | {d:.2f} |")
        sys.stdout.flush()

    if not any(k[1].startswith("ndpickle") for k in results):
        return
    print()
    print("Ours against blosc2, same codec and shuffle, one thread (ratio of ratios; speed "
          "ratios):")
    print()
    print("| dataset | pair | ratio ours/blosc2 | compress ours/blosc2 | decompress ours/blosc2 |")
    print("|---|---|---|---|---|")
    for name, _, _ in datasets_meta():
        for ours, theirs in (("ndpickle shuffle+lz4", "blosc2 shuffle+lz4 c5"),
                             ("ndpickle shuffle+zstd L1", "blosc2 shuffle+zstd c1"),
                             ("ndpickle (Rust) shuffle+lz4", "blosc2 shuffle+lz4 c5"),
                             ("ndpickle (Rust) shuffle+zstd1", "blosc2 shuffle+zstd c1")):
            if (name, ours) in results and (name, theirs) in results:
                o, t = results[(name, ours)][:3], results[(name, theirs)][:3]
                print(f"| {name} | {ours} / {theirs} | {o[0] / t[0]:.3f} | {o[1] / t[1]:.2f} | "
                      f"{o[2] / t[2]:.2f} |")
    raw, auto = auto_overhead(args.budget)
    print()
    print(f"auto on 64 MiB random float64 (kept raw), serialize + copy of every frame: "
          f"compression=None {raw:.2f} GB/s, auto {auto:.2f} GB/s, auto/raw {auto / raw:.3f}")
    if args.plot:
        plot(results, args.plot)
        print(f"plot written to {args.plot}")


if __name__ == "__main__":
    main()
