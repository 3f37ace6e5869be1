#!/usr/bin/env python3
"""Compare dataset files: dump and load time and peak memory, ndpickle against joblib, numpy
and safetensors, in one run, in one table.

    python3 benches/compare_files.py [--mb 256] [--dir DIR]

The dataset is a dict of three arrays (float64 random walk 1/2, float32 sine 1/4, int32 labels
1/4 of ``--mb``). Every dump and every load runs in its own fresh subprocess, which reports its
wall time and its peak memory above what it held just before the operation (Linux: the peak
resident size ``VmHWM``, reset through ``/proc/self/clear_refs`` before the operation; for dumps
the dataset is already in memory and not counted). "load + read" also sums every array (so
memory-mapped data is actually paged in); the load peak is taken before that read. Files are
read from a warm page cache (they were just written), so load times are memory-bound, not
disk-bound. Ratios are against ``pickle`` (protocol 5) on the same data.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, os, resource, sys, time
import numpy as np

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()

def reset_peak():
    # Linux: writing 5 to clear_refs resets the peak resident size (VmHWM) to the current one.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")

def peak():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")

def dataset(mb):
    n = (mb << 20) // 16
    rng = np.random.default_rng(0)
    return {
        "walk": np.cumsum(rng.standard_normal(n)),
        "sine": (100 * np.sin(np.arange(n, dtype=np.float32) * np.float32(1e-3))),
        "labels": ((np.arange(n, dtype=np.int64) // 64) * 2654435761 % 1000).astype(np.int32),
    }

def dump(method, data, path):
    if method == "pickle":
        import pickle
        with open(path, "wb") as f:
            pickle.dump(data, f, protocol=5)
    elif method.startswith("ndpickle"):
        import ndpickle
        comp = "lz4" if "lz4" in method else None
        ndpickle.dump(data, path, compression=comp)
    elif method.startswith("joblib"):
        import joblib
        joblib.dump(data, path)
    elif method.startswith("numpy"):
        os.makedirs(path, exist_ok=True)
        for k, v in data.items():
            np.save(os.path.join(path, k + ".npy"), v)
    elif method == "safetensors":
        from safetensors.numpy import save_file
        save_file(data, path)

def load(method, path):
    if method == "pickle":
        import pickle
        with open(path, "rb") as f:
            return pickle.load(f)
    if method.startswith("ndpickle"):
        import ndpickle
        return ndpickle.load(path, mmap_mode="r" if "mmap" in method else None)
    if method.startswith("joblib"):
        import joblib
        return joblib.load(path, mmap_mode="r" if "mmap" in method else None)
    if method.startswith("numpy"):
        mode = "r" if "mmap" in method else None
        return {f[:-4]: np.load(os.path.join(path, f), mmap_mode=mode)
                for f in sorted(os.listdir(path))}
    if method == "safetensors":
        from safetensors.numpy import load_file
        return load_file(path)

op, method, path, mb = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if op == "dump":
    data = dataset(mb)
    nbytes = sum(v.nbytes for v in data.values())
    reset_peak()
    base = rss()
    t = time.perf_counter()
    dump(method, data, path)
    dt = time.perf_counter() - t
    print(json.dumps({"s": dt, "extra": max(peak() - base, 0), "nbytes": nbytes}))
else:
    import ndpickle, joblib  # imports outside the timing
    from safetensors.numpy import load_file
    reset_peak()
    base = rss()
    t = time.perf_counter()
    out = load(method, path)
    dt = time.perf_counter() - t
    extra = max(peak() - base, 0)
    total = sum(float(np.asarray(v).sum(dtype=np.float64)) for v in out.values())
    dt_read = time.perf_counter() - t
    nbytes = sum(v.nbytes for v in out.values())
    print(json.dumps({"s": dt, "s_read": dt_read, "extra": extra,
                      "nbytes": nbytes, "check": total}))
"""

# (label, dump method, load method); rows sharing a dump method reuse its file.
ROWS = [
    ("pickle protocol 5", "pickle", "pickle"),
    ("ndpickle", "ndpickle", "ndpickle"),
    ("ndpickle mmap_mode='r'", "ndpickle", "ndpickle-mmap"),
    ("ndpickle lz4+shuffle", "ndpickle-lz4", "ndpickle-lz4"),
    ("joblib", "joblib", "joblib"),
    ("joblib mmap_mode='r'", "joblib", "joblib-mmap"),
    ("numpy.save/load (.npy per array)", "numpy", "numpy"),
    ("numpy.load mmap_mode='r'", "numpy", "numpy-mmap"),
    ("safetensors.numpy", "safetensors", "safetensors"),
]


def child(*args: str) -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return json.loads(r.stdout)


def size_of(path: str) -> int:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    return os.path.getsize(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=256, help="dataset size in MiB")
    ap.add_argument("--dir", help="where to write the files (default: a temporary directory)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        dumped: dict[str, dict] = {}
        rows = []
        for label, dm, lm in ROWS:
            path = os.path.join(d, dm)
            if dm not in dumped:
                dumped[dm] = child("dump", dm, path, str(args.mb))
                dumped[dm]["size"] = size_of(path)
            ld = child("load", lm, path, str(args.mb))
            rows.append((label, dumped[dm], ld))
        base_d, base_l = rows[0][1], rows[0][2]
        checks = {round(r[2]["check"], 3) for r in rows}
        assert len(checks) == 1, f"loaders disagree: {checks}"
        nbytes = base_d["nbytes"]
        print(f"Dataset: {nbytes / 2**20:.0f} MiB in 3 arrays; times in seconds, peak memory "
              "in MiB above the process's size before the operation; ratios vs pickle.")
        print()
        print("| method | file MiB | dump s | dump peak MiB | load s | load peak MiB "
              "| load+read s | load ×pickle | load+read ×pickle |")
        print("|---|---|---|---|---|---|---|---|---|")
        for label, dd, ld in rows:
            print(f"| {label} | {dd['size'] / 2**20:.0f} | {dd['s']:.3f} | "
                  f"{dd['extra'] / 2**20:.0f} | {ld['s']:.4f} | {ld['extra'] / 2**20:.0f} | "
                  f"{ld['s_read']:.3f} | {base_l['s'] / ld['s']:.1f} | "
                  f"{base_l['s_read'] / ld['s_read']:.2f} |")


if __name__ == "__main__":
    main()
