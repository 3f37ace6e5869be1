"""Arrow benchmark report (issue 6): criterion's figures for `to_payload` and arrow-ipc next
to pyarrow's own `pickle.dumps(protocol=5)` of the same RecordBatch, measured now.

    cargo bench -p ndpickle-benches --bench arrow
    python3 benches/arrow_report.py

Reads the Rust medians from $CARGO_TARGET_DIR/criterion (default target/) and the bytes each
side ships from arrow_bench_bytes.json written by the bench; builds the same 10-column batch
in pyarrow (see benches/benches/arrow.rs) and times pyarrow's own pickling of it, whole and
sliced (10 % from the middle). Prints one table.
"""

from __future__ import annotations

import json
import os
import pickle
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path(__file__).resolve().parent.parent / "target"))


def rust(name: str, label: str) -> float:
    path = TARGET / "criterion" / "arrow_batch" / name / label / "new" / "estimates.json"
    if not path.exists():
        sys.exit(f"missing {path}: run `cargo bench -p ndpickle-benches --bench arrow` first")
    return json.loads(path.read_text())["median"]["point_estimate"] / 1e9


def batch(n: int) -> pa.RecordBatch:
    """The bench's batch, built with pyarrow."""
    i = np.arange(n, dtype=np.int64)
    cols, names = [], []
    for k in range(4):
        cols.append(pa.array(i * (k + 1), mask=(i % 10 == k)))
        names.append(f"i{k}")
    for k in range(3):
        cols.append(pa.array(i * 0.5 + k))
        names.append(f"f{k}")
    cols.append(pa.array(i.astype(np.int32)))
    names.append("i32")
    cols.append(pa.array(i % 3 == 0, mask=(i % 7 == 0)))
    names.append("b")
    s = pa.array([f"s{j}" for j in range(1000)])
    cols.append(s.take(pa.array(i % 1000)))
    names.append("s")
    return pa.RecordBatch.from_arrays(cols, names=names)


def own_pickle(obj) -> tuple[float, int]:
    """Median seconds and total bytes (pickle + out-of-band buffers) of pyarrow's pickling."""
    times = []
    for _ in range(5):
        raws: list = []
        t = time.perf_counter()
        data = pickle.dumps(obj, protocol=5, buffer_callback=raws.append)
        times.append(time.perf_counter() - t)
    return statistics.median(times), len(data) + sum(r.raw().nbytes for r in raws)


def main() -> None:
    sizes = json.loads((TARGET / "arrow_bench_bytes.json").read_text())
    print(f"pyarrow {pa.__version__}; RecordBatch of 10 columns (see benches/benches/arrow.rs)")
    print(
        f"{'rows':>6} {'ndpickle to_payload':>20} {'arrow-ipc stream':>17} {'pyarrow pickle':>15}"
        f" {'bytes: ndpickle':>16} {'ipc':>12} {'pyarrow':>12}"
        f" {'slice 10%: ndpickle':>20} {'pyarrow':>12}"
    )
    for label, row in sizes.items():
        n = row["rows"]
        b = batch(n)
        t_py, bytes_py = own_pickle(b)
        _, bytes_py_sliced = own_pickle(b.slice(n // 2, n // 10))
        t_ours = rust("to_payload", label)
        t_ipc = rust("ipc_stream", label)
        print(
            f"{label:>6} {t_ours * 1e6:>17.1f} us {t_ipc * 1e3:>14.2f} ms {t_py * 1e3:>12.2f} ms"
            f" {row['ndpickle']:>16,} {row['ipc']:>12,} {bytes_py:>12,}"
            f" {row['ndpickle_sliced']:>20,} {bytes_py_sliced:>12,}"
        )
    small, big = sizes["10K"], sizes["10M"]
    print(
        f"to_payload 10M / 10K: {rust('to_payload', '10M') / rust('to_payload', '10K'):.2f}x"
        f" for {big['rows'] // small['rows']}x the data;"
        f" arrow-ipc 10M / ndpickle 10M: {rust('ipc_stream', '10M') / rust('to_payload', '10M'):.0f}x"
    )


if __name__ == "__main__":
    main()
