"""``progress=`` of ``dump`` and ``load``, and the command line's progress bar: reports are
monotonic, end with the final size, and change nothing about the file (written atomically,
loadable by ``pickle``)."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import ndpickle
from ndpickle import _progress


def data() -> dict:
    return {"a": np.arange(3 << 20, dtype=np.float64), "v": np.ones((2048, 2048))[:, ::2], "n": 3}


def recorder() -> tuple[list[tuple[int, int | None]], ndpickle.Progress]:
    calls: list[tuple[int, int | None]] = []
    return calls, lambda done, total: calls.append((done, total))


def check_monotonic(calls) -> None:
    dones = [d for d, _ in calls]
    assert dones == sorted(dones) and len(calls) >= 2


@pytest.mark.parametrize("protocol", [5, 4])
def test_dump_to_a_path(tmp_path, protocol) -> None:
    calls, progress = recorder()
    path = tmp_path / "d.pkl"
    ndpickle.dump(data(), path, protocol=protocol, progress=progress)
    check_monotonic(calls)
    size = os.path.getsize(path)
    assert calls[-1] == (size, size) if protocol == 5 else calls[-1] == (size, None)
    if protocol == 5:
        assert all(t is not None and abs(t - size) < 4096 for _, t in calls)  # the estimate
    with open(path, "rb") as f:
        back = pickle.load(f)
    assert np.array_equal(back["v"], data()["v"]) and back["n"] == 3
    assert os.listdir(tmp_path) == ["d.pkl"]  # the temporary was renamed over the target


def test_dump_compressed_and_to_a_file_object(tmp_path) -> None:
    calls, progress = recorder()
    ndpickle.dump(data(), tmp_path / "c.pkl", compression="lz4", progress=progress)
    assert calls[-1] == (os.path.getsize(tmp_path / "c.pkl"), None)
    assert np.array_equal(ndpickle.load(tmp_path / "c.pkl")["a"], data()["a"])
    calls, progress = recorder()
    f = io.BytesIO()
    ndpickle.dump(data(), f, progress=progress)
    assert calls[-1] == (len(f.getvalue()), len(f.getvalue()))


def test_failed_dump_with_progress_keeps_the_old_file(tmp_path) -> None:
    path = tmp_path / "keep.pkl"
    path.write_bytes(b"old")

    def stop(done, total):
        raise KeyboardInterrupt("stop")

    with pytest.raises(KeyboardInterrupt):
        ndpickle.dump(data(), path, progress=stop)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["keep.pkl"]
    with pytest.raises(ValueError, match="compression needs protocol 5"):
        ndpickle.dump(data(), path, protocol=4, compression="lz4", progress=stop)


def test_load(tmp_path) -> None:
    path = tmp_path / "d.pkl"
    ndpickle.dump(data(), path)
    size = os.path.getsize(path)
    calls, progress = recorder()
    back = ndpickle.load(path, progress=progress)
    check_monotonic(calls)
    assert calls[-1] == (size, size) and len(calls) > 3  # large arrays are read in steps
    assert np.array_equal(back["a"], data()["a"])
    calls, progress = recorder()
    ndpickle.load(path, mmap_mode="r", progress=progress)
    assert calls == [(size, size)]
    calls, progress = recorder()
    ndpickle.load(io.BytesIO(path.read_bytes()), progress=progress)
    assert calls[-1] == (size, None)


def test_plain_bar(monkeypatch) -> None:
    out = io.StringIO()
    monkeypatch.setitem(sys.modules, "tqdm", None)  # no tqdm: the plain bar
    bar = _progress.bar("writing x", stream=out)
    bar(50_000_000, 100_000_000)
    bar(100_000_000, 100_000_000)
    assert out.getvalue() == "\rwriting x:  50.0 % (50 of 100 MB)\rwriting x: 100.0 % (100 of 100 MB)\n"


def test_cli_convert_progress(tmp_path) -> None:
    src, dst = tmp_path / "in.pkl", tmp_path / "out.pkl"
    ndpickle.dump(data(), src)
    r = subprocess.run([sys.executable, "-m", "ndpickle", "convert", str(src), str(dst), "--progress"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"writing {dst}" in r.stderr and ("100.0 %" in r.stderr or "100%" in r.stderr)
    r = subprocess.run([sys.executable, "-m", "ndpickle", "convert", str(src), str(dst)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == ""  # a small input: no bar by default
