"""Writer benchmark report (issue 2): criterion's Rust figures next to CPython's
`pickle.dumps(protocol=5)` on equivalent numpy arrays, measured in the same run.

    cargo bench -p ndpickle-benches --bench write
    python3 benches/writer_report.py

Prints one table: the Rust medians read from target/criterion, the pickle timings measured
now, and the ratios the README quotes (to_payload flatness, to_writer vs copy_from_slice,
ndpickle vs pickle).
"""

from __future__ import annotations

import json
import pickle
import statistics
import sys
import time
from pathlib import Path

import numpy as np

CRITERION = Path(__file__).resolve().parent.parent / "target" / "criterion"


def rust(group: str, name: str) -> float:
    """Median time in seconds of one criterion benchmark."""
    path = CRITERION / group / name / "new" / "estimates.json"
    if not path.exists():
        sys.exit(f"missing {path}: run `cargo bench -p ndpickle-benches --bench write` first")
    return json.loads(path.read_text())["median"]["point_estimate"] * 1e-9


def timeit(fn, repeat: int = 7, number: int = 1) -> float:
    """Median seconds per call."""
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        runs.append((time.perf_counter() - t) / number)
    return statistics.median(runs)


def fmt(t: float) -> str:
    if t < 1e-6:
        return f"{t * 1e9:8.0f} ns"
    if t < 1e-3:
        return f"{t * 1e6:8.1f} us"
    return f"{t * 1e3:8.2f} ms"


def main() -> None:
    rows = []
    sizes = {"1KiB": 1 << 10, "1MiB": 1 << 20, "256MiB": 256 << 20}
    for label, n in sizes.items():
        a = np.arange(n // 8, dtype=np.float64)
        py = timeit(lambda: pickle.dumps(a, protocol=5, buffer_callback=lambda b: None), number=100 if n < 1 << 21 else 5)
        rows.append((f"out-of-band {label}", rust("to_payload", label), py))
    a = np.arange((64 << 20) // 8, dtype=np.float64)
    src = a.view(np.uint8)
    dst = np.empty_like(src)
    copy = timeit(lambda: np.copyto(dst, src), repeat=9)
    py_inband = timeit(lambda: pickle.dumps(a, protocol=5), repeat=5)
    rows.append(("in-band 64MiB to_writer", rust("in_band_64MiB", "to_writer"), py_inband))
    rows.append(("in-band 64MiB to_vec", rust("in_band_64MiB", "to_vec"), py_inband))
    small = [np.arange(10, dtype=np.float64).reshape(2, 5) + k for k in range(10_000)]
    py_small = timeit(lambda: pickle.dumps(small, protocol=5), repeat=5)
    rows.append(("10 000 small arrays to_vec", rust("small_arrays_10000", "to_vec"), py_small))
    py_small_oob = timeit(lambda: pickle.dumps(small, protocol=5, buffer_callback=lambda b: None), repeat=5)
    rows.append(("10 000 small arrays to_payload", rust("small_arrays_10000", "to_payload"), py_small_oob))

    print(f"{'case':34} {'ndpickle (Rust)':>16} {'pickle+numpy':>14} {'pickle/ndpickle':>16}")
    for name, r, p in rows:
        print(f"{name:34} {fmt(r):>16} {fmt(p):>14} {p / r:15.2f}x")
    flat = rust("to_payload", "256MiB") / rust("to_payload", "1KiB")
    base = rust("in_band_64MiB", "copy_from_slice")
    print()
    print(f"to_payload 256MiB / 1KiB time ratio: {flat:.2f} (flat: zero copies; goal <= 2)")
    print(f"to_writer 64MiB throughput vs copy_from_slice in the same run: {base / rust('in_band_64MiB', 'to_writer'):.2f}x (goal >= 0.8)")
    print(f"to_vec 64MiB throughput vs copy_from_slice: {base / rust('in_band_64MiB', 'to_vec'):.2f}x (includes faulting in a fresh 64 MiB allocation)")
    print(f"numpy copyto 64MiB (this process, for scale): {fmt(copy)}")


if __name__ == "__main__":
    main()
