"""Second half of the end-to-end demo: plain `pickle` + numpy load what Rust wrote.

    python scripts/demo_load.py DIR

Loads DIR/dataset.pkl (in-band) and DIR/dataset.oob.pkl with its buffer files
(out-of-band), checks that both give the same arrays, and prints what arrived, how many
bytes unpickling copied, and how fast it was. Nothing from ndpickle is imported.
"""

from __future__ import annotations

import pickle
import sys
import time
import warnings
from pathlib import Path

import numpy as np


def main(d: Path) -> None:
    warnings.simplefilter("error")  # any numpy warning fails the demo
    raw = (d / "dataset.pkl").read_bytes()
    t = time.perf_counter()
    inband = pickle.loads(raw)
    t_in = time.perf_counter() - t

    buffers = []
    i = 0
    while (d / f"dataset.buf.{i}").exists():
        buffers.append(bytearray((d / f"dataset.buf.{i}").read_bytes()))
        i += 1
    oob_pickle = (d / "dataset.oob.pkl").read_bytes()
    t = time.perf_counter()
    oob = pickle.loads(oob_pickle, buffers=buffers)
    t_oob = time.perf_counter() - t

    print(f"python {sys.version.split()[0]} + numpy {np.__version__}, plain pickle.loads:")
    print(f"  {'entry':22} {'dtype':14} {'shape':14} {'writable':8}  out-of-band view")
    copied_oob = 0
    array_bytes = 0
    for key, value in oob.items():
        other = inband[key]
        if isinstance(value, np.ndarray):
            assert value.dtype == other.dtype and value.shape == other.shape
            assert np.array_equal(value, other), key
            shares = any(np.shares_memory(value, np.frombuffer(b, np.uint8)) for b in buffers)
            array_bytes += value.nbytes
            if not shares:
                copied_oob += value.nbytes
            note = "zero-copy view of its buffer" if shares else "copied"
            if value.strides and 0 in value.strides:
                note += " (broadcast: strides keep the zeros)"
            print(f"  {key:22} {str(value.dtype):14} {str(value.shape):14} {str(value.flags.writeable):8}  {note}")
        else:
            assert value == other, key
            print(f"  {key:22} {type(value).__name__:14} {repr(value)[:40]}")
    print(f"  in-band:     {len(raw) / 1e6:6.1f} MB stream -> {array_bytes / 1e6:.1f} MB of arrays in {t_in * 1e3:.2f} ms (data copied out of the stream once)")
    print(f"  out-of-band: {len(oob_pickle)} byte pickle + {sum(map(len, buffers)) / 1e6:.1f} MB buffers in {t_oob * 1e3:.3f} ms; bytes copied by unpickling: {copied_oob}")
    print("  both loads agree on every entry.")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-out"))
