"""Type stubs of the ndpickle._native extension module (checked by mypy.stubtest)."""

import os
import pickle
import weakref
from typing import Any, Callable, Literal, Optional, Sequence, Union, final

__all__ = ["__version__", "ArrayReducer", "DecodeError", "EncodeError", "RawBuffer", "safe_loads", "_direct_loads", "safe_deserialize", "decompress_frame",
           "decompress_target", "decompress_chunk", "ChunkTarget", "compress_buffers", "inline_buffers", "load_mapped",
           "serialize", "serialize_array", "deserialize", "dumps", "dump", "check_compression", "buffer_itemsize", "PICKLE_GLOBALS",
           "inspect_files", "write_atomically"]

__version__: str

class EncodeError(pickle.PicklingError):
    """An object could not be pickled by ndpickle."""

class DecodeError(pickle.UnpicklingError):
    """A pickle was refused or could not be read by ndpickle's safe reader."""

    offset: Optional[int]
    opcode: Optional[str]
    kind: str

@final
class ArrayReducer:
    """``reducer_override`` for numpy arrays (portable reduce form, layout decision in Rust)."""

    def __new__(
        cls,
        protocol: int = 5,
        *,
        layout: Literal["auto", "pack", "span"] = "auto",
        span_threshold: float = 0.5,
        fallback: Optional[Union[Callable[[Any], Any], "weakref.WeakMethod[Any]"]] = None,
        arrow: Optional[Callable[[Any], Any]] = None,
    ) -> ArrayReducer: ...
    @property
    def protocol(self) -> Optional[int]: ...
    def clear(self) -> None: ...
    def __call__(self, obj: Any, /) -> Any: ...

@final
class RawBuffer:
    """A 1-d byte buffer over memory kept alive by its owner (exports the buffer protocol)."""

    @property
    def address(self) -> int: ...
    @property
    def readonly(self) -> bool: ...
    @property
    def owner(self) -> Any: ...
    def __len__(self) -> int: ...

def safe_loads(
    data: Any,
    buffers: Optional[Sequence[Any]] = None,
    limits: Optional[dict[str, int]] = None,
    strict: bool = False,
    fix_imports: bool = True,
    encoding: str = "ASCII",
    errors: str = "strict",
) -> Any:
    """Safe reader. ``limits`` keys: ``max_depth``, ``max_memo_entries``,
    ``max_copied_bytes``, ``max_alloc_bytes``, ``max_decompressed_bytes`` (non-negative
    ints); unknown keys raise ``TypeError``, out-of-range values ``ValueError``.
    ``fix_imports``, ``encoding`` and ``errors`` are ``pickle.loads``'."""

def _direct_loads(data: Any) -> tuple[bool, Any]:
    """``safe_loads``' direct path alone, for tests: ``(True, obj)`` when it read ``data``,
    ``(False, None)`` when it leaves it to the full reader."""

def safe_deserialize(
    header: Any,
    frames: Any,
    limits: Optional[dict[str, int]] = None,
    strict: bool = False,
) -> Any:
    """Safe reader over ``serialize()``'s ``(header, frames)``; refusals are ``DecodeError``."""

def serialize(
    data: Any,
    buffers: list[pickle.PickleBuffer],
    compression: Optional[Literal["auto", "lz4", "zstd"]] = "auto",
    shuffle: bool = True,
    level: Optional[int] = None,
    threads: Optional[int] = None,
) -> tuple[dict[str, Any], list[Any]]:
    """``serialize()``'s header and frames from a pickle and its out-of-band buffers."""

def serialize_array(
    array: Any,
    compression: Optional[Literal["auto", "lz4", "zstd"]] = "auto",
    shuffle: bool = True,
    level: Optional[int] = None,
    threads: Optional[int] = None,
    span_threshold: float = 0.5,
) -> Optional[tuple[dict[str, Any], list[Any]]]:
    """``serialize()``'s header and frames of one exact ``numpy.ndarray``, written by the
    core with no Python pickler; ``None`` for arrays left to the pickler."""

def deserialize(header: Any, frames: Any) -> Any:
    """``pickle.loads`` of ``serialize()``'s frames, compressed frames decoded."""

def dumps(
    data: Any,
    buffers: list[pickle.PickleBuffer],
    compression: Optional[Literal["auto", "lz4", "zstd"]] = "auto",
    shuffle: bool = True,
    level: Optional[int] = None,
    threads: Optional[int] = None,
) -> bytes:
    """The pickle with its buffers in-band, compressed where that makes them smaller."""

def dump(
    data: Any,
    buffers: list[pickle.PickleBuffer],
    target: Any,
    compression: Optional[Literal["auto", "lz4", "zstd"]] = None,
    shuffle: bool = True,
    level: Optional[int] = None,
    threads: Optional[int] = None,
    chunk: Optional[int] = None,
    fsync: bool = False,
) -> None:
    """The pickle with its buffers in-band, 64-byte aligned, written to a path or file (a
    path atomically)."""

def check_compression(
    compression: Optional[Literal["auto", "lz4", "zstd"]] = None,
    shuffle: bool = True,
    level: Optional[int] = None,
    threads: Optional[int] = None,
) -> None:
    """Validates compression arguments."""

def buffer_itemsize(buffer: Any) -> int:
    """Element size of a buffer for the shuffle filter (its numpy dtype's, when it views one)."""

PICKLE_GLOBALS: dict[str, Callable[..., Any]]

def decompress_frame(
    header: Any,
    frame: Any,
    writable: bool = True,
    max_len: Optional[int] = None,
    threads: Optional[int] = None,
) -> Any: ...
@final
class ChunkTarget:
    """A chunked compressed buffer being filled (``decompress_target``'s result)."""

def decompress_target(raw_len: int) -> ChunkTarget: ...
def decompress_chunk(
    out: ChunkTarget,
    offset: int,
    header: Any,
    frame: Any,
    writable: Optional[bool] = None,
) -> Any: ...
def compress_buffers(
    buffers: list[Any],
    itemsizes: list[int],
    compression: Optional[Literal["auto", "lz4", "zstd"]] = "auto",
    shuffle: bool = True,
    level: Optional[int] = None,
    threads: Optional[int] = None,
) -> list[Optional[tuple[bytes, RawBuffer, Optional[str], Optional[str], bool]]]: ...
def inline_buffers(
    pickle: Any,
    buffers: list[Any],
    target: Any = None,
    align: int = 64,
    compression: Optional[Literal["auto", "lz4", "zstd"]] = None,
    itemsizes: Optional[list[int]] = None,
    shuffle: bool = True,
    level: Optional[int] = None,
    threads: Optional[int] = None,
    chunk: Optional[int] = None,
    fsync: bool = False,
) -> Optional[bytes]: ...
def write_atomically(
    path: Union[str, "os.PathLike[str]"], write: Callable[[str], Any], fsync: bool = False
) -> None: ...
def load_mapped(path: Union[str, "os.PathLike[str]"], mode: Literal["r", "c"] = "r") -> Any: ...
def inspect_files(
    path: Union[str, "os.PathLike[str]"],
    buffers: Sequence[Union[str, "os.PathLike[str]"]],
    depth: int,
    max_items: int,
    json: bool,
    opaque: bool,
) -> str: ...
