"""Per-buffer compression in ``serialize``/``dumps``, aligned dataset files from ``dump``, and
memory-mapped ``load``: round trips, cross-checks against python-lz4 / zstandard / Dask,
error paths, and (marked ``slow``, deselected by default) peak memory and mmap timing on
1 GiB. Run the slow ones with::

    python -m pytest -m slow tests/test_files_and_compression.py -v
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import lz4.block
import numpy as np
import pytest
import zstandard

import ndpickle

CODECS = [None, "auto", "lz4", "zstd"]


def dataset() -> dict:
    """Arrays of several dtypes and layouts, each large enough (≥ 64 KiB) for ``auto``."""
    rng = np.random.default_rng(5)
    walk = np.cumsum(rng.standard_normal(40_000))
    labels = (np.arange(60_000, dtype=np.int32) // 1000) % 7
    image = (np.add.outer(np.arange(300), np.arange(400)) % 251).astype(np.uint8)
    noise = rng.random(20_000)
    readonly = np.sin(np.linspace(0, 50, 30_000)).astype(np.float32)
    readonly.flags.writeable = False
    return {
        "walk": walk,
        "labels_f": np.asfortranarray(labels.reshape(300, 200)),
        "image": image,
        "noise": noise,
        "complex": (walk[:20_000] + 1j * walk[20_000:]).astype(np.complex64),
        "strided": walk.reshape(200, 200)[:, ::2],
        "reversed": labels[::-1],
        "broadcast": np.broadcast_to(walk[:10_000], (4, 10_000)),
        "readonly": readonly,
        "small": np.arange(5, dtype=np.int16),
        "empty": np.zeros((0, 3)),
        "meta": ["text", 3, None, b"bytes", {"nested": (1.5, True)}],
    }


def check_same(expected: dict, got: dict, *, writable: bool | None = None) -> None:
    assert expected.keys() == got.keys()
    for k, v in expected.items():
        g = got[k]
        if isinstance(v, np.ndarray):
            assert isinstance(g, np.ndarray), k
            assert g.dtype == v.dtype and g.shape == v.shape, k
            np.testing.assert_array_equal(g, v, err_msg=k)
            if writable is not None and k not in ("readonly", "empty", "broadcast"):
                assert g.flags.writeable == writable, k
        else:
            assert g == v, k


# -- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("compression", CODECS)
def test_serialize_round_trip(compression, shuffle):
    data = dataset()
    header, frames = ndpickle.serialize(data, compression=compression, shuffle=shuffle)
    n = len(frames)
    for key in ("compression", "codec", "filter", "frame-info", "lengths", "writeable"):
        assert len(header[key]) == n, key
    assert header["compression"][0] is None and header["codec"][0] is None
    if compression in ("lz4", "zstd"):
        # At least the integer and image buffers shrink, with the codec asked for.
        assert header["codec"].count(compression) >= 3
    if compression is None:
        assert set(header["codec"]) == {None}
        assert all(memoryview(f).nbytes == n for f, n in zip(frames, header["lengths"]))
    for i in range(1, n):
        if header["codec"][i] is not None:
            assert memoryview(frames[i]).nbytes < header["lengths"][i]
            assert header["filter"][i] in (None, "shuffle")
            if not shuffle:
                assert header["filter"][i] is None
                assert header["compression"][i] == header["codec"][i], "plain frames for Dask"
    check_same(data, ndpickle.deserialize(header, frames))
    # Off the wire: every frame arrives as read-only bytes.
    out = ndpickle.deserialize(header, [bytes(f) for f in frames])
    check_same(data, out)
    assert out["walk"].flags.writeable and not out["readonly"].flags.writeable


def test_serialize_without_compression_is_zero_copy():
    a = np.arange(1_000_000.0)
    header, frames = ndpickle.serialize(a, compression=None)
    view = np.frombuffer(frames[1], dtype=np.float64)
    assert np.shares_memory(view, a)
    b = ndpickle.deserialize(header, frames)
    assert np.shares_memory(b, a)


def test_auto_keeps_random_data_raw_and_compresses_the_rest():
    rng = np.random.default_rng(0)
    noise, walk = rng.random(1 << 17), np.cumsum(rng.standard_normal(1 << 17))
    header, frames = ndpickle.serialize([noise, walk])
    assert header["codec"][1:] == [None, "lz4"]
    view = np.frombuffer(frames[1], dtype=np.float64)
    assert np.shares_memory(view, noise), "kept raw = the array's own memory"
    assert memoryview(frames[2]).nbytes < 0.9 * walk.nbytes


@pytest.mark.parametrize("dtype", ["<f8", "<i4", "<c16", "<f2"])
@pytest.mark.parametrize("compression", ["lz4", "zstd"])
def test_packed_views_shuffle_by_their_item_size(dtype, compression):
    # A sparse strided view is packed into a new buffer before it is compressed; the shuffle
    # must still work on the dtype's elements, as for the contiguous array (packed as bytes
    # it did not compress at all).
    rng = np.random.default_rng(3)
    base = np.cumsum(rng.random((400, 1000)) - 0.5, axis=1).astype(dtype)
    view = base[:, ::10]
    dense = np.ascontiguousarray(view)
    sizes = []
    for x in (view, dense):
        header, frames = ndpickle.serialize(x, compression=compression, shuffle=True)
        assert header["codec"][1] == compression, header
        sizes.append(sum(memoryview(f).nbytes for f in frames[1:]))
        assert np.array_equal(ndpickle.deserialize(header, frames), x)
    assert sizes[0] == sizes[1]
    data = ndpickle.dumps(view, compression=compression)
    assert abs(len(data) - len(ndpickle.dumps(dense, compression=compression))) < 64
    assert np.array_equal(ndpickle.loads(data), view)
    assert np.array_equal(ndpickle.safe_loads(data), view)


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("compression", CODECS)
def test_dumps_loads_round_trip(compression, shuffle):
    data = dataset()
    blob = ndpickle.dumps(data, compression=compression, shuffle=shuffle)
    check_same(data, ndpickle.loads(blob), writable=True)
    check_same(data, pickle.loads(blob))
    if compression is not None:
        assert b"_decompress" in blob
        assert len(blob) < len(ndpickle.dumps(data))
    else:
        assert b"_decompress" not in blob


@pytest.mark.parametrize("mmap_mode", [None, "r", "c"])
@pytest.mark.parametrize("compression", CODECS)
def test_dump_load_round_trip(tmp_path, compression, mmap_mode):
    data = dataset()
    path = tmp_path / "data.pkl"
    ndpickle.dump(data, path, compression=compression)
    out = ndpickle.load(path, mmap_mode=mmap_mode)
    # mode "r" gives read-only arrays, also over data decompressed from the mapping.
    check_same(data, out, writable=(mmap_mode != "r"))
    # The same stream through a file object.
    buf = io.BytesIO()
    ndpickle.dump(data, buf, compression=compression)
    if compression in (None, "lz4"):  # deterministic codecs: identical bytes
        assert buf.getvalue() == path.read_bytes()
    buf.seek(0)
    check_same(data, ndpickle.load(buf))


def test_dump_streams_aligned_payloads(tmp_path):
    data = dataset()
    path = tmp_path / "aligned.pkl"
    ndpickle.dump(data, path)
    raw = path.read_bytes()
    for k in ("walk", "noise", "image", "readonly"):
        a = data[k]
        at = raw.find(a.tobytes())
        assert at > 0 and at % 64 == 0, k
    out = ndpickle.load(path, mmap_mode="r")
    for k, v in out.items():
        if isinstance(v, np.ndarray) and v.nbytes:
            assert v.ctypes.data % 64 == 0 or v.strides[0] < 0, k


def test_dump_to_file_object_writes_bounded_pieces():
    class Recorder(io.RawIOBase):
        def __init__(self):
            self.pieces: list[int] = []
            self.data = bytearray()

        def writable(self):
            return True

        def write(self, b):
            self.pieces.append(len(b))
            self.data += b
            return len(b)

    a = np.arange(3_000_000, dtype=np.float64)
    rec = Recorder()
    ndpickle.dump({"a": a}, rec)
    assert max(rec.pieces) <= 1 << 20
    assert sum(rec.pieces) == len(rec.data)
    np.testing.assert_array_equal(pickle.loads(bytes(rec.data))["a"], a)


def test_dump_protocol_4_still_works(tmp_path):
    a = np.arange(100.0)
    ndpickle.dump(a, tmp_path / "p4.pkl", protocol=4)
    np.testing.assert_array_equal(ndpickle.load(tmp_path / "p4.pkl"), a)
    with pytest.raises(ValueError, match="protocol 5"):
        ndpickle.dump(a, tmp_path / "x.pkl", protocol=4, compression="lz4")


# -- memory mapping -----------------------------------------------------------------------------


def mapping_of(path: Path) -> list[tuple[int, int]]:
    """Address ranges at which this process maps ``path`` (Linux ``/proc/self/maps``)."""
    ranges = []
    with open("/proc/self/maps") as f:
        for line in f:
            if line.rstrip().endswith(str(path)):
                lo, hi = line.split()[0].split("-")
                ranges.append((int(lo, 16), int(hi, 16)))
    return ranges


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
@pytest.mark.parametrize("mode", ["r", "c"])
def test_mmap_load_views_the_mapping(tmp_path, mode):
    a = np.cumsum(np.random.default_rng(1).standard_normal(4_000_000))  # 32 MB
    path = tmp_path / "big.pkl"
    ndpickle.dump({"a": a, "b": a[:10]}, path)
    t = time.perf_counter()
    out = ndpickle.load(path, mmap_mode=mode)
    elapsed = time.perf_counter() - t
    b = out["a"]
    np.testing.assert_array_equal(b, a)
    assert elapsed < 0.05, f"mmap load took {elapsed * 1e3:.1f} ms"
    # The array's memory is the file's mapping, at the payload's offset in the file.
    ranges = mapping_of(path)
    assert any(lo <= b.ctypes.data and b.ctypes.data + b.nbytes <= hi for lo, hi in ranges)
    base = b.base
    while not isinstance(base, ndpickle.RawBuffer):
        base = base.base
    offset = b.ctypes.data - base.address
    assert path.read_bytes()[offset : offset + 64] == a.tobytes()[:64]
    # np.memmap of the same bytes sees the same data.
    disk = np.memmap(path, mode="r", dtype=np.float64, offset=offset, shape=a.shape)
    np.testing.assert_array_equal(disk, b)
    # The mapping outlives everything but one array.
    del out, base
    import gc

    gc.collect()
    assert mapping_of(path)
    np.testing.assert_array_equal(b[-5:], a[-5:])
    del b, disk
    gc.collect()
    assert not mapping_of(path), "the mapping is released with the last array"


def test_mmap_read_only_arrays(tmp_path):
    path = tmp_path / "r.pkl"
    ndpickle.dump(np.arange(100_000.0), path)
    out = ndpickle.load(path, mmap_mode="r")
    assert not out.flags.writeable
    with pytest.raises(ValueError):
        out[0] = 1.0


def test_mmap_copy_on_write_never_reaches_the_file(tmp_path):
    path = tmp_path / "c.pkl"
    ndpickle.dump({"a": np.arange(100_000.0)}, path)
    before = path.read_bytes()
    out = ndpickle.load(path, mmap_mode="c")
    assert out["a"].flags.writeable
    out["a"][:] = -1.0
    assert (out["a"] == -1.0).all()
    del out
    assert path.read_bytes() == before
    np.testing.assert_array_equal(ndpickle.load(path, mmap_mode="r")["a"], np.arange(100_000.0))


def test_mmap_falls_back_for_objects_the_reader_does_not_rebuild(tmp_path):
    path = tmp_path / "obj.pkl"
    obj = {"a": np.arange(10.0), "frac": __import__("fractions").Fraction(1, 3)}
    ndpickle.dump(obj, path)
    out = ndpickle.load(path, mmap_mode="r")
    assert out["frac"] == obj["frac"]
    np.testing.assert_array_equal(out["a"], obj["a"])


def run_without_ndpickle(code: str) -> subprocess.CompletedProcess[str]:
    """Runs ``code`` in a Python where ``import ndpickle`` fails (numpy only)."""
    prelude = "import sys; sys.modules['ndpickle'] = None\n"
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True)


def test_plain_file_loads_with_numpy_alone_and_compressed_file_names_ndpickle(tmp_path):
    a = np.arange(50_000.0)
    plain, packed = tmp_path / "plain.pkl", tmp_path / "packed.pkl"
    ndpickle.dump({"a": a}, plain)
    ndpickle.dump({"a": a}, packed, compression="lz4")
    code = "import pickle, numpy as np; d = pickle.load(open({!r}, 'rb')); print(d['a'].sum())"
    ok = run_without_ndpickle(code.format(str(plain)))
    assert ok.returncode == 0, ok.stderr
    assert float(ok.stdout) == a.sum()
    bad = run_without_ndpickle(code.format(str(packed)))
    assert bad.returncode != 0
    assert "ndpickle" in bad.stderr.splitlines()[-1]


# -- large buffers compressed chunk by chunk (_decompress_target / _decompress_into) ------------


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 100 000 raw bytes (above auto's 64 KiB minimum, so that auto compresses
    them too), so that the dataset's arrays take several each."""
    monkeypatch.setattr(ndpickle, "_COMPRESS_CHUNK", 100_000)


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("compression", ["auto", "lz4", "zstd"])
def test_chunked_dump_load_round_trip(tmp_path, small_chunks, compression, shuffle):
    import pickletools

    data = dataset()
    path = tmp_path / "chunked.pkl"
    ndpickle.dump(data, path, compression=compression, shuffle=shuffle)
    blob = path.read_bytes()
    # labels_f (240 000 bytes, compressible under every setting) alone is 3 chunks.
    assert blob.count(b"_decompress_into") >= 3
    assert blob.count(b"_decompress_target") >= 1
    pickletools.dis(blob, out=io.StringIO())  # a well-formed stream
    with open(path, "rb") as f:
        check_same(data, pickle.load(f), writable=True)
    check_same(data, ndpickle.load(path), writable=True)
    check_same(data, ndpickle.load(path, mmap_mode="r"), writable=False)
    check_same(data, ndpickle.safe_load(path), writable=True)
    check_same(data, ndpickle.safe_loads(blob), writable=True)
    # The same bytes through a file object.
    buf = io.BytesIO()
    ndpickle.dump(data, buf, compression=compression, shuffle=shuffle)
    if compression != "auto":
        assert buf.getvalue() == blob
    buf.seek(0)
    check_same(data, ndpickle.load(buf))


def test_chunked_read_only_buffer_loads_read_only(tmp_path, small_chunks):
    a = np.cumsum(np.ones(100_000))
    a.flags.writeable = False
    path = tmp_path / "ro.pkl"
    ndpickle.dump({"a": a}, path, compression="lz4")
    assert path.read_bytes().count(b"_decompress_into") == 8
    for out in (ndpickle.load(path), ndpickle.safe_load(path)):
        np.testing.assert_array_equal(out["a"], a)
        assert not out["a"].flags.writeable


def test_chunked_file_without_ndpickle_names_it(tmp_path, small_chunks):
    path = tmp_path / "chunked.pkl"
    ndpickle.dump({"a": np.arange(100_000.0)}, path, compression="lz4")
    assert b"_decompress_into" in path.read_bytes()
    code = "import pickle; pickle.load(open({!r}, 'rb'))".format(str(path))
    bad = run_without_ndpickle(code)
    assert bad.returncode != 0
    assert "ndpickle" in bad.stderr.splitlines()[-1]


def test_safe_loads_hands_decompressed_memory_to_numpy(small_chunks):
    a = np.cumsum(np.random.default_rng(3).standard_normal(1 << 16))
    for blob in (ndpickle.dumps(a, compression="lz4"), ndpickle.dumps([a, a[::-1].copy()],
                                                                       compression="zstd")):
        out = ndpickle.safe_loads(blob)
        for got in (out if isinstance(out, list) else [out]):
            # A view of the Rust memory the data was decompressed into, not a copy of it
            # (a copy owns its data and has no base), and writable as the pickle asks.
            assert got.flags.writeable and not got.flags.owndata
            assert type(got.base).__name__ == "RawBuffer"
            got[0] = -1.0
            assert got[0] == -1.0
    # A read-only array stays read-only.
    ro = a.copy()
    ro.flags.writeable = False
    got = ndpickle.safe_loads(ndpickle.dumps(ro, compression="lz4"))
    np.testing.assert_array_equal(got, ro)
    assert not got.flags.writeable


def test_one_chunk_keeps_the_single_frame_form(tmp_path):
    path = tmp_path / "one.pkl"
    ndpickle.dump({"a": np.arange(100_000.0)}, path, compression="lz4")
    blob = path.read_bytes()
    assert b"_decompress" in blob and b"_decompress_into" not in blob


def _chunk(data: bytes) -> tuple[bytes, bytes]:
    (c,) = ndpickle._native.compress_buffers([data], [1], "lz4", False)
    return c[0], bytes(c[1])


def test_decompress_into_checks_order_bounds_and_completion():
    raw = (np.arange(30_000, dtype=np.int32) // 100).tobytes()  # 120 000 bytes
    (h1, f1), (h2, f2) = _chunk(raw[:60_000]), _chunk(raw[60_000:])
    t = ndpickle._decompress_target(len(raw))
    assert ndpickle._decompress_into(t, 0, h1, f1) is t
    out = ndpickle._decompress_into(t, 60_000, h2, f2, True)
    assert isinstance(out, bytearray) and out == raw
    # Read-only result: a zero-copy read-only view.
    t = ndpickle._decompress_target(len(raw))
    ndpickle._decompress_into(t, 0, h1, f1)
    view = ndpickle._decompress_into(t, 60_000, h2, f2, False)
    assert isinstance(view, memoryview) and view.readonly and bytes(view) == raw
    with pytest.raises(ndpickle.DecodeError, match="already complete"):
        ndpickle._decompress_into(t, 120_000, h2, f2, True)
    # Gap, overlap, out of order.
    for off in (1, 59_999, 60_000):
        t = ndpickle._decompress_target(len(raw))
        with pytest.raises(ndpickle.DecodeError, match="in order and contiguous"):
            ndpickle._decompress_into(t, off, h1, f1)
    # Past the end; incomplete fill.
    t = ndpickle._decompress_target(100_000)
    ndpickle._decompress_into(t, 0, h1, f1)
    with pytest.raises(ndpickle.DecodeError, match="runs past the end"):
        ndpickle._decompress_into(t, 60_000, h2, f2, True)
    t = ndpickle._decompress_target(len(raw) + 1)
    ndpickle._decompress_into(t, 0, h1, f1)
    with pytest.raises(ndpickle.DecodeError, match="fill 120000 of the buffer's 120001"):
        ndpickle._decompress_into(t, 60_000, h2, f2, True)
    # Wrong types, truncated frame, header with trailing bytes.
    with pytest.raises(ndpickle.DecodeError, match="_decompress_target"):
        ndpickle._decompress_into(bytearray(len(raw)), 0, h1, f1)
    with pytest.raises(TypeError):
        ndpickle._decompress_into(ndpickle._decompress_target(10), "0", h1, f1)
    with pytest.raises(ndpickle.DecodeError):
        ndpickle._decompress_into(ndpickle._decompress_target(len(raw)), 0, h1, f1[:-5])
    with pytest.raises(ndpickle.DecodeError, match="trailing"):
        ndpickle._decompress_into(ndpickle._decompress_target(len(raw)), 0, h1 + b"\0", f1)


# -- the frames are the reference libraries' frames ---------------------------------------------


@pytest.mark.parametrize("codec", ["lz4", "zstd"])
def test_unshuffled_frames_decode_with_reference_libraries(codec):
    data = dataset()
    header, frames = ndpickle.serialize(data, compression=codec, shuffle=False)
    raws = ndpickle.serialize(data, compression=None)[1]
    decoded = 0
    for i in range(1, len(frames)):
        if header["codec"][i] is None:
            continue
        frame = bytes(frames[i])
        if codec == "lz4":
            out = lz4.block.decompress(frame)
        else:
            out = zstandard.ZstdDecompressor().decompress(frame)
        assert out == bytes(raws[i])
        decoded += 1
    assert decoded >= 3


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("compression", ["auto", "lz4", "zstd"])
def test_dask_decompress_then_deserialize(compression, shuffle):
    dask_compression = pytest.importorskip("distributed.protocol.compression")
    data = dataset()
    header, frames = ndpickle.serialize(data, compression=compression, shuffle=shuffle)
    # What Dask does with a family's (header, frames) on receive.
    received = dask_compression.decompress(header, [bytes(f) for f in frames])
    if not shuffle:
        assert all(
            memoryview(f).nbytes == n for f, n in zip(received, header["lengths"])
        ), "Dask decoded every compressed frame"
    # Header round-trips through msgpack like Dask's.
    msgpack = pytest.importorskip("msgpack")
    header = msgpack.loads(msgpack.dumps(header), use_list=True)
    check_same(data, ndpickle.deserialize(header, received))


# -- errors -------------------------------------------------------------------------------------


def compressed_pair(codec="lz4", shuffle=False):
    a = np.cumsum(np.random.default_rng(2).integers(-3, 4, 100_000))
    header, frames = ndpickle.serialize(a, compression=codec, shuffle=shuffle)
    assert header["codec"][1] == codec
    return header, [bytes(f) for f in frames]


@pytest.mark.parametrize("codec", ["lz4", "zstd"])
@pytest.mark.parametrize("shuffle", [True, False])
def test_truncated_and_corrupt_frames_raise_decode_error(codec, shuffle):
    header, frames = compressed_pair(codec, shuffle)
    f = frames[1]
    with pytest.raises(ndpickle.DecodeError):
        ndpickle.deserialize(header, [frames[0], f[: len(f) // 2]])
    with pytest.raises(ndpickle.DecodeError):
        ndpickle.deserialize(header, [frames[0], bytes(len(f))])
    with pytest.raises(ndpickle.DecodeError):
        ndpickle.deserialize(header, [frames[0], f + b"\0"])


def test_decompression_bomb_is_refused_before_allocating():
    header, frames = compressed_pair("zstd")
    n = header["lengths"][1]
    small = dict(header, lengths=[header["lengths"][0], n // 2])
    with pytest.raises(ndpickle.DecodeError, match="decompressed buffer size") as e:
        ndpickle.deserialize(small, frames)
    assert e.value.kind == "Limit"
    # A zstd frame of 1 GiB of zeros (about 40 KB) claimed as 1 KiB: refused up front.
    bomb = zstandard.ZstdCompressor().compress(bytes(1 << 30))
    with pytest.raises(ndpickle.DecodeError):
        ndpickle._decompress(header["frame-info"][1], bomb, True, max_len=1024)


def test_lying_frame_header_raises_decode_error():
    header, frames = compressed_pair("lz4")
    frame = bytearray(frames[1])
    frame[:4] = (len(frame) * 1000).to_bytes(4, "little")  # lz4's own size prefix lies
    with pytest.raises(ndpickle.DecodeError):
        ndpickle.deserialize(header, [frames[0], bytes(frame)])
    info = bytearray(header["frame-info"][1])
    info[:4] = b"XXXX"
    with pytest.raises(ndpickle.DecodeError):
        ndpickle._decompress(bytes(info), frames[1])
    with pytest.raises(ndpickle.DecodeError, match="trailing"):
        ndpickle._decompress(header["frame-info"][1] + b"\0", frames[1])


def test_corrupt_in_band_frame_raises_decode_error():
    a = np.cumsum(np.random.default_rng(3).standard_normal(100_000))
    blob = bytearray(ndpickle.dumps(a, compression="zstd", shuffle=False))
    magic = blob.find(b"\x28\xb5\x2f\xfd")  # zstd frame magic
    assert magic > 0
    blob[magic : magic + 4] = b"\0\0\0\0"
    with pytest.raises(ndpickle.DecodeError):
        pickle.loads(bytes(blob))


def test_raw_frame_of_the_wrong_length_raises():
    a = np.arange(10.0)
    header, frames = ndpickle.serialize(a, compression=None)
    with pytest.raises(ndpickle.DecodeError, match="header says"):
        ndpickle.deserialize(header, [frames[0], bytes(frames[1])[:-8]])
    with pytest.raises(ValueError, match="frames"):
        ndpickle.deserialize(header, frames[:1])
    with pytest.raises(ValueError, match="not an ndpickle header"):
        ndpickle.deserialize({"serializer": "pickle"}, frames)


def test_option_errors():
    a = np.zeros(10)
    with pytest.raises(ValueError, match="unknown compression"):
        ndpickle.serialize(a, compression="snappy")
    with pytest.raises(ValueError, match="level"):
        ndpickle.serialize(a, compression="auto", level=1)
    with pytest.raises(ValueError, match="threads"):
        ndpickle.serialize(a, compression="lz4", threads=0)
    with pytest.raises(ValueError, match="protocol 5"):
        ndpickle.dumps(a, protocol=4, compression="lz4")
    with pytest.raises(ValueError, match="buffer_callback"):
        ndpickle.dumps(a, compression="lz4", buffer_callback=list().append)
    with pytest.raises(ValueError, match="mmap_mode"):
        ndpickle.load("x.pkl", mmap_mode="w+")
    with pytest.raises(ValueError, match="path"):
        ndpickle.load(io.BytesIO(b""), mmap_mode="r")
    with pytest.raises(ValueError, match="buffers"):
        ndpickle.load("x.pkl", mmap_mode="r", buffers=[])
    with pytest.raises(ValueError, match="target"):
        ndpickle._native.inline_buffers(pickle.dumps(1, protocol=5), [], 42)
    with pytest.raises(ValueError, match="needs a path or file"):
        ndpickle._native.inline_buffers(pickle.dumps(1, protocol=5), [], None, 1, "lz4")
    with pytest.raises(ValueError, match="item sizes"):
        ndpickle._native.compress_buffers([b"x"], [])


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        ndpickle.load(tmp_path / "missing.pkl", mmap_mode="r")
    with pytest.raises(FileNotFoundError):
        ndpickle.dump(np.zeros(3), tmp_path / "no" / "dir.pkl")
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    with pytest.raises(ndpickle.DecodeError):
        ndpickle.load(empty, mmap_mode="r")
    path = tmp_path / "cut.pkl"
    ndpickle.dump({"a": np.arange(100_000.0)}, path)
    path.write_bytes(path.read_bytes()[:400_000])
    with pytest.raises(ndpickle.DecodeError):
        ndpickle.load(path, mmap_mode="c")

    class Failing(io.RawIOBase):
        def writable(self):
            return True

        def write(self, b):
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        ndpickle.dump(np.arange(100_000.0), Failing())


# -- slow: 1 GiB peak memory and mmap timing (python -m pytest -m slow ...) ---------------------

GIB = 1 << 30

_MEASURE = r"""
import json, resource, sys, time
import numpy as np
import ndpickle

def rss_now():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

what, path = sys.argv[1], sys.argv[2]
if what == "cdump":
    # A float64 random walk (compressible, shuffled lz4 keeps ~70-90%), built in place.
    a = np.empty(GIB // 8)
    np.random.default_rng(0).standard_normal(out=a)
    np.cumsum(a, out=a)
    base = peak()
    t = time.perf_counter()
    ndpickle.dump({"a": a}, path, compression="lz4", shuffle=True)
    dt = time.perf_counter() - t
    print(json.dumps({"extra": peak() - base, "total": peak(), "data": a.nbytes, "s": dt}))
elif what in ("cload", "csafe"):
    base = rss_now()
    t = time.perf_counter()
    out = ndpickle.load(path) if what == "cload" else ndpickle.safe_load(path)
    dt = time.perf_counter() - t
    assert out["a"].dtype == np.float64 and out["a"].flags.writeable
    print(json.dumps({"extra": peak() - base, "data": out["a"].nbytes, "s": dt}))
elif what == "dump":
    a = np.empty(GIB // 8)
    a[:] = 1.5
    base = peak()
    t = time.perf_counter()
    ndpickle.dump({"a": a}, path)
    dt = time.perf_counter() - t
    print(json.dumps({"extra": peak() - base, "total": peak(), "data": a.nbytes, "s": dt}))
else:
    base = rss_now()
    t = time.perf_counter()
    out = ndpickle.load(path, mmap_mode=None if what == "load" else what)
    dt = time.perf_counter() - t
    if what != "load":
        assert out["a"][12345] == 1.5
    print(json.dumps({"extra": peak() - base, "data": out["a"].nbytes, "s": dt}))
""".replace("GIB", str(GIB))


def measure(what: str, path: Path) -> dict:
    r = subprocess.run(
        [sys.executable, "-c", _MEASURE, what, str(path)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _dumped_gib(tmp_path_factory, what: str):
    """A 1 GiB file written by the `measure` mode `what`, with that dump's statistics."""
    path = tmp_path_factory.mktemp(what) / f"{what}.pkl"
    stats = measure(what, path)
    yield path, stats
    path.unlink()


@pytest.fixture(scope="module")
def gib_file(tmp_path_factory):
    yield from _dumped_gib(tmp_path_factory, "dump")


@pytest.mark.slow
def test_dump_peak_memory_1gib(gib_file):
    _, stats = gib_file
    print(f"dump 1 GiB: {stats['s']:.2f} s, extra peak {stats['extra'] / 2**20:.1f} MiB")
    # The array itself is counted in the process; dump adds next to nothing.
    assert stats["total"] < 1.2 * stats["data"] + 100 * 2**20
    assert stats["extra"] < 0.2 * stats["data"]


@pytest.mark.slow
def test_load_peak_memory_1gib(gib_file):
    path, _ = gib_file
    stats = measure("load", path)
    print(f"load 1 GiB: {stats['s']:.2f} s, peak over start {stats['extra'] / 2**20:.1f} MiB")
    assert stats["extra"] < 1.2 * stats["data"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["r", "c"])
def test_mmap_load_1gib_under_10ms(gib_file, mode):
    path, _ = gib_file
    stats = measure(mode, path)
    print(f"mmap_mode={mode} 1 GiB: {stats['s'] * 1e3:.2f} ms, peak over start "
          f"{stats['extra'] / 2**20:.1f} MiB")
    assert stats["s"] < 0.010
    assert stats["extra"] < 64 * 2**20, "no copy of the data"


@pytest.fixture(scope="module")
def gib_compressed_file(tmp_path_factory):
    yield from _dumped_gib(tmp_path_factory, "cdump")


@pytest.mark.slow
def test_compressed_dump_peak_memory_1gib(gib_compressed_file):
    path, stats = gib_compressed_file
    size = path.stat().st_size
    print(f"compressed dump 1 GiB (lz4 + shuffle, random walk): {stats['s']:.2f} s, "
          f"file {size / stats['data']:.3f} of the data, peak {stats['total'] / 2**20:.1f} MiB "
          f"= {stats['total'] / stats['data']:.3f}x the data, "
          f"extra peak {stats['extra'] / 2**20:.1f} MiB")
    assert path.read_bytes().count(b"_decompress_into") == 16  # 64 MiB chunks
    assert size < 0.95 * stats["data"]
    assert stats["total"] < 1.2 * stats["data"]


@pytest.mark.slow
def test_compressed_load_peak_memory_1gib(gib_compressed_file):
    path, _ = gib_compressed_file
    stats = measure("cload", path)
    print(f"compressed load 1 GiB (ndpickle.load): {stats['s']:.2f} s, peak over start "
          f"{stats['extra'] / 2**20:.1f} MiB = {stats['extra'] / stats['data']:.3f}x the data")
    assert stats["extra"] < 1.2 * stats["data"]


@pytest.mark.slow
def test_compressed_safe_load_peak_memory_1gib(gib_compressed_file):
    path, _ = gib_compressed_file
    stats = measure("csafe", path)
    # safe_load maps the file and reads it whole before building values: the mapped pages
    # of the compressed file are resident (file-backed, reclaimable) next to the output.
    print(f"compressed safe_load 1 GiB: {stats['s']:.2f} s, peak over start "
          f"{stats['extra'] / 2**20:.1f} MiB = {stats['extra'] / stats['data']:.3f}x the data")
    size = path.stat().st_size
    assert stats["extra"] < 1.2 * stats["data"] + size
