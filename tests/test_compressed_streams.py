"""In-band streams with compressed array data (written by Rust, `write_cases.rs`).

They load with plain `pickle.loads` wherever ndpickle is installed (the stream names
`ndpickle._decompress`), and a stock interpreter without ndpickle refuses them with an error
that names ndpickle.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

from conftest import writer_cases_dir


def _streams():
    return sorted(p.name for p in writer_cases_dir().glob("compressed.*.pkl"))


def expected():
    raw = (writer_cases_dir() / "compressed.expected").read_bytes()
    smooth = np.frombuffer(raw[: 256 * 64 * 8], np.float64).reshape(256, 64)
    labels = np.frombuffer(raw[256 * 64 * 8 : 256 * 64 * 8 + 200_000], np.int32)
    return smooth, labels, smooth[:, ::2]


@pytest.mark.parametrize("name", _streams())
def test_loads_with_ndpickle_installed(name):
    data = (writer_cases_dir() / name).read_bytes()
    assert b"_decompress" in data
    raw_size = 256 * 64 * 8 + 50_000 * 4 + 256 * 32 * 8
    if ".p2." not in name:  # protocol 2 carries bytes as latin-1 text: ~1.5x the frame
        assert len(data) < raw_size * 0.7, (len(data), raw_size)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = pickle.loads(data)
    for g, w in zip(got, expected()):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert np.array_equal(g, w)
        assert g.flags.writeable


def test_stock_unpickler_says_ndpickle_is_needed():
    name = _streams()[0]
    code = (
        "import sys, pickle; sys.modules['ndpickle'] = None\n"
        f"data = open({str(writer_cases_dir() / name)!r}, 'rb').read()\n"
        "try:\n    pickle.loads(data)\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "ndpickle" in out, out


def test_corrupt_frame_is_a_decode_error():
    import ndpickle

    name = next(n for n in _streams() if n.startswith("compressed.zstd.portable.p5"))
    data = bytearray((writer_cases_dir() / name).read_bytes())
    at = data.index(b"\x28\xb5\x2f\xfd")  # zstd magic of the first frame
    data[at + 20 : at + 40] = b"\xff" * 20
    with pytest.raises(ndpickle.DecodeError):
        pickle.loads(bytes(data))
