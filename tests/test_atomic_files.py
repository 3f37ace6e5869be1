"""``ndpickle.dump`` to a path replaces the file atomically: a dump that fails part-way
(an object whose reduce raises after some arrays were written, a file size limit hit in
the middle of an array) leaves the old file intact and no temporary file behind."""

from __future__ import annotations

import errno
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import ndpickle


class Raises:
    """An object whose reduce fails."""

    def __reduce__(self) -> tuple:
        raise RuntimeError("reduce refused on purpose")


def _old_file(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "data.pkl"
    ndpickle.dump({"old": np.arange(100)}, path)
    return path, path.read_bytes()


@pytest.mark.parametrize("protocol,compression", [(5, None), (5, "lz4"), (4, None), (2, None)])
def test_a_failing_reduce_keeps_the_old_file(
    tmp_path: Path, protocol: int, compression: str | None
) -> None:
    path, before = _old_file(tmp_path)
    big = np.arange(1 << 20, dtype=np.float64)
    with pytest.raises(RuntimeError, match="refused on purpose"):
        ndpickle.dump([big, big[::2], Raises()], path, protocol=protocol, compression=compression)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["data.pkl"]
    np.testing.assert_array_equal(pickle.loads(before)["old"], np.arange(100))


@pytest.mark.parametrize("fsync", [False, True])
@pytest.mark.parametrize("protocol", [5, 3])
def test_a_successful_dump_replaces_the_file(tmp_path: Path, fsync: bool, protocol: int) -> None:
    path, _ = _old_file(tmp_path)
    os.chmod(path, 0o640)
    new = np.arange(1000, dtype=np.int32)
    ndpickle.dump(new, str(path), protocol=protocol, fsync=fsync)
    np.testing.assert_array_equal(ndpickle.load(path), new)
    assert sorted(os.listdir(tmp_path)) == ["data.pkl"]
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_a_new_file_gets_the_usual_permissions(tmp_path: Path) -> None:
    ndpickle.dump(np.arange(3), tmp_path / "new.pkl")
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "new.pkl").st_mode & 0o777 == 0o666 & ~umask


def test_a_missing_directory_names_the_path(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "x.pkl"
    for protocol in (5, 4):
        with pytest.raises(FileNotFoundError) as info:
            ndpickle.dump(np.arange(3), target, protocol=protocol)
        assert str(target) in str(info.value)


SIZE_LIMITED = textwrap.dedent(
    """
    import resource, signal, sys
    import numpy as np
    import ndpickle

    path, protocol, compression = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
    rng = np.random.default_rng(0)
    data = {"a": rng.random(1 << 19), "b": rng.random(1 << 19)}  # 8 MiB, incompressible
    try:
        ndpickle.dump(data, path, protocol=protocol,
                      compression=None if compression == "-" else compression)
    except OSError as e:
        print(type(e).__name__, e.errno)
    else:
        print("no error")
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
@pytest.mark.parametrize("protocol,compression", [(5, "-"), (5, "zstd"), (4, "-")])
def test_a_size_limit_mid_write_keeps_the_old_file(
    tmp_path: Path, protocol: int, compression: str
) -> None:
    path, before = _old_file(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", SIZE_LIMITED, str(path), str(protocol), compression],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    name, code = out.stdout.split()
    assert name == "OSError", out.stdout
    assert int(code) == errno.EFBIG, out.stdout
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["data.pkl"]
