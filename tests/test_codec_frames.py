"""Cross-checks ndpickle's codec frames against python-lz4, zstandard and Dask, both ways.

Runs the Rust example ``codec_frames`` (built with cargo) to write frames, decodes them with the
reference libraries, and has it decode frames those libraries wrote.
"""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import lz4.block
import numpy as np
import pytest
import zstandard

ROOT = Path(__file__).resolve().parents[1]


def run_example(*args: str) -> str:
    cmd = ["cargo", "run", "-q", "-p", "ndpickle", "--example", "codec_frames", "--", *args]
    return subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True,
                          env=os.environ).stdout


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("frames")
    run_example("write", str(d))
    return d


def read_header(b: bytes) -> dict:
    """Parses the FrameInfo header as documented in crates/ndpickle/src/codec/header.rs."""
    magic, version, codec, filt, flags, level, elem, raw_len, block_size, n = struct.unpack_from(
        "<4sBBBBiIQII", b, 0)
    assert magic == b"NDPZ" and version == 1
    lens = struct.unpack_from(f"<{n}I", b, 32)
    assert len(b) == 32 + 4 * n
    return dict(codec=codec, filter=filt, split=bool(flags & 1), level=level, elem=elem,
                raw_len=raw_len, block_size=block_size, block_lens=lens)


def decode_block(codec: int, data: bytes) -> bytes:
    if codec == 1:
        return lz4.block.decompress(data)
    return zstandard.ZstdDecompressor().decompress(data)


def unshuffle(buf: bytes, elem: int) -> bytes:
    n = len(buf) // elem
    planes = np.frombuffer(buf, dtype=np.uint8, count=n * elem).reshape(elem, n)
    return planes.T.tobytes() + buf[n * elem:]


def decode_with_reference_libs(hdr: dict, frame: bytes) -> bytes:
    """A from-the-docs decoder using only python-lz4 / zstandard / numpy."""
    out, pos = [], 0
    for i, clen in enumerate(hdr["block_lens"]):
        block = frame[pos:pos + clen]
        pos += clen
        blen = min(hdr["block_size"], hdr["raw_len"] - i * hdr["block_size"])
        if hdr["split"]:
            e = hdr["elem"]
            m = blen // e
            table = struct.unpack_from(f"<{e}I", block, 0)
            p = 4 * e
            planes = []
            for entry in table:
                ln = entry & 0x3FFFFFFF
                s = block[p:p + ln]
                p += ln
                if entry & 0x40000000:  # one byte repeated m times
                    assert ln == 1
                    planes.append(s * m)
                else:  # raw plane, or a codec frame
                    planes.append(s if entry & 0x80000000 else decode_block(hdr["codec"], s))
            shuffled = b"".join(planes) + block[p:]
        else:
            shuffled = decode_block(hdr["codec"], block)
        assert len(shuffled) == blen
        out.append(unshuffle(shuffled, hdr["elem"]) if hdr["filter"] == 1 else shuffled)
    assert pos == len(frame)
    return b"".join(out)


CASES = ["lz4_plain", "lz4_empty", "zstd_plain", "zstd_empty", "lz4_shuffle8_blocks",
         "zstd_shuffle4_blocks", "lz4_blocks"]


@pytest.mark.parametrize("name", CASES)
def test_reference_libraries_decode_our_frames(frames: Path, name: str) -> None:
    raw = (frames / f"{name}.raw").read_bytes()
    frame = (frames / f"{name}.frame").read_bytes()
    hdr = read_header((frames / f"{name}.hdr").read_bytes())
    assert hdr["raw_len"] == len(raw)
    assert decode_with_reference_libs(hdr, frame) == raw
    plain = hdr["filter"] == 0 and len(hdr["block_lens"]) == 1
    assert plain == name.endswith(("_plain", "_empty"))
    if plain and hdr["codec"] == 1:
        assert lz4.block.decompress(frame) == raw
    if plain and hdr["codec"] == 2:
        assert zstandard.ZstdDecompressor().decompress(frame) == raw


@pytest.mark.parametrize("name", ["lz4_plain", "zstd_plain"])
def test_dask_decompresses_plain_frames(frames: Path, name: str) -> None:
    compression = pytest.importorskip("distributed.protocol.compression")
    raw = (frames / f"{name}.raw").read_bytes()
    frame = (frames / f"{name}.frame").read_bytes()
    codec = "lz4" if name.startswith("lz4") else "zstd"
    out = compression.decompress({"compression": (codec,)}, [frame])
    assert bytes(out[0]) == raw


def test_we_decode_reference_frames(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    for i, n in enumerate([0, 1, 1000, 70_000]):
        raw = np.cumsum(rng.normal(size=n)).tobytes() + bytes(i)
        (tmp_path / f"py_{i}.raw").write_bytes(raw)
        (tmp_path / f"py_{i}.lz4").write_bytes(lz4.block.compress(raw))
        (tmp_path / f"pyz_{i}.raw").write_bytes(raw)
        (tmp_path / f"pyz_{i}.zst").write_bytes(zstandard.ZstdCompressor(level=3).compress(raw))
    assert "checked 8 frames" in run_example("check", str(tmp_path))
