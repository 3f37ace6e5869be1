"""Every error the bindings raise comes from one mapping of the core's errors: I/O errors
are the ``OSError`` subclass of their errno and name the file, invalid options are
``ValueError`` (never ``DecodeError``), decode errors carry the core's kind names."""

from __future__ import annotations

import errno
import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

import ndpickle
from ndpickle import _native


def test_load_mmap_of_a_missing_file_names_it() -> None:
    with pytest.raises(FileNotFoundError) as info:
        ndpickle.load("/nope", mmap_mode="r")
    assert info.value.errno == errno.ENOENT
    assert info.value.filename == "/nope"
    assert "/nope" in str(info.value)
    with pytest.raises(FileNotFoundError) as info:
        ndpickle.load(Path("/nope/either.pkl"), mmap_mode="c")
    assert info.value.filename == "/nope/either.pkl"


def test_mapping_a_directory_is_an_os_error_naming_it(tmp_path: Path) -> None:
    for mode in ("r", "c"):
        with pytest.raises(OSError) as info:
            _native.load_mapped(str(tmp_path), mode)
        assert not isinstance(info.value, ndpickle.DecodeError)
        assert info.value.errno is not None
        assert info.value.filename == str(tmp_path)


def test_dump_into_a_missing_directory_names_the_target(tmp_path: Path) -> None:
    target = tmp_path / "no" / "x.pkl"
    for protocol in (5, 2):
        with pytest.raises(FileNotFoundError) as info:
            ndpickle.dump(np.arange(4), target, protocol=protocol)
        assert info.value.filename == str(target)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_dump_into_a_read_only_directory_is_a_permission_error(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o500)
    try:
        with pytest.raises(PermissionError) as info:
            ndpickle.dump(np.arange(4), tmp_path / "x.pkl")
        assert info.value.filename == str(tmp_path / "x.pkl")
    finally:
        os.chmod(tmp_path, 0o700)


@pytest.mark.parametrize("level", [23, 100, -(1 << 17) - 1])
def test_zstd_levels_outside_zstds_range_are_refused(level: int) -> None:
    with pytest.raises(ValueError, match="zstd level"):
        ndpickle.serialize(np.zeros(10), compression="zstd", level=level)
    with pytest.raises(ValueError, match="zstd level"):
        ndpickle.dump(np.zeros(10), io.BytesIO(), compression="zstd", level=level)


def test_zstd_levels_inside_the_range_work() -> None:
    a = np.linspace(0, 1, 10_000)
    for level in (-5, 1, 22):
        header, frames = ndpickle.serialize(a, compression="zstd", level=level)
        np.testing.assert_array_equal(ndpickle.deserialize(header, frames), a)


def test_layout_names_come_from_the_core() -> None:
    with pytest.raises(ValueError, match="layout must be 'auto', 'pack' or 'span'"):
        ndpickle.Pickler(io.BytesIO(), 5, layout="Span")
    with pytest.raises(ValueError, match="layout must be"):
        ndpickle.ArrayReducer(5, layout="packed")


def test_reducer_arguments_are_value_errors() -> None:
    with pytest.raises(ValueError, match="protocol 9 is not supported"):
        ndpickle.ArrayReducer(9)
    with pytest.raises(ValueError, match="protocol -1 is not supported"):
        ndpickle.ArrayReducer(-1)
    with pytest.raises(ValueError, match="span_threshold"):
        ndpickle.ArrayReducer(5, span_threshold=0.0)


def test_invalid_read_limits_are_value_errors_not_decode_errors() -> None:
    data = pickle.dumps([1, 2])
    for limits in ({"max_depth": 0}, {"max_memo_entries": 0}, {"max_alloc_bytes": 10}):
        with pytest.raises(ValueError, match="invalid option") as info:
            ndpickle.safe_loads(data, **limits)
        assert not isinstance(info.value, ndpickle.DecodeError)
    with pytest.raises(ValueError, match="non-negative"):
        ndpickle.safe_loads(data, max_depth=-1)


def test_decode_error_kinds_are_the_core_names() -> None:
    cases = {
        b"\x80\x05K": "Truncated",
        b"\x80\x05N": "UnexpectedEof",
        b"\x80\x05\xff.": "UnknownOpcode",
        b"\x80\x05cos\nsystem\n.": "ForbiddenGlobal",
        b"\x80\x05h\x07.": "MissingMemo",
        b"\x80\x05t.": "MissingMark",
    }
    for data, kind in cases.items():
        with pytest.raises(ndpickle.DecodeError) as info:
            ndpickle.safe_loads(data)
        assert info.value.kind == kind, (data, info.value.kind, str(info.value))


def test_binding_argument_checks_are_value_errors() -> None:
    with pytest.raises(ValueError, match="buffers but"):
        _native.compress_buffers([b"abc"], [], "lz4")
    with pytest.raises(ValueError, match="target must be a path"):
        _native.inline_buffers(pickle.dumps(1, protocol=5), [], 42)
    with pytest.raises(ValueError, match="needs a path or file target"):
        _native.inline_buffers(pickle.dumps(1, protocol=5), [], None, 64, "lz4")
    with pytest.raises(ValueError, match="level= needs a compression codec"):
        ndpickle.dumps(np.zeros(3), level=3)
    with pytest.raises(ValueError, match='mmap_mode must be "r" or "c"'):
        _native.load_mapped(__file__, "w")
