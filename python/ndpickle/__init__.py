"""ndpickle: fast, zero-copy pickling of numpy arrays, and a safe pickle reader.

Everything ``dumps`` writes is a standard pickle: any CPython with numpy loads it with
``pickle.loads``. Arrays take numpy's public constructor form

    numpy.ndarray(shape, dtype, buffer, offset, strides, order)

so that strided views travel as the span of memory they cover (zero copies), broadcasts as
their one non-repeated slice, and sparse views as one packed copy. With protocol 5 and a
``buffer_callback`` the array memory leaves out-of-band, as ``pickle.PickleBuffer`` objects
over the original memory.

Combining with cloudpickle (dynamic functions and classes by value, arrays by ndpickle)::

    class CloudPickler(ndpickle.Pickler, cloudpickle.Pickler):
        pass

``ndpickle.Pickler`` handles numpy arrays and hands every other object to the next
``reducer_override`` in the method resolution order (cloudpickle's here).
"""

from __future__ import annotations

import io
import mmap
import os
import pickle
from typing import IO, Any, Callable, Iterable, Optional, Union

from . import _native
from ._native import ArrayReducer, DecodeError, EncodeError, RawBuffer

__all__ = [
    "ArrayReducer",
    "DecodeError",
    "EncodeError",
    "Pickler",
    "RawBuffer",
    "Unpickler",
    "__version__",
    "deserialize",
    "dump",
    "dumps",
    "load",
    "loads",
    "safe_load",
    "safe_loads",
    "serialize",
]

__version__: str = _native.__version__

# Named by compressed in-band pickles: ndpickle._decompress(header, frame, writable).
_decompress = _native.decompress_frame

_PathOrFile = Union[str, "os.PathLike[str]", IO[bytes]]


def _check_compression(compression: Optional[str], level: Optional[int]) -> None:
    if compression is not None:
        raise ValueError(
            f"compression={compression!r} is not available in this build of ndpickle; "
            "use compression=None"
        )
    if level is not None:
        raise ValueError("level= needs a compression codec")


class Pickler(pickle.Pickler):
    """A ``pickle.Pickler`` that writes numpy arrays through ndpickle's layout logic.

    Same constructor as ``pickle.Pickler`` (protocol, ``fix_imports``, ``buffer_callback``)
    plus the layout options ``layout`` (``"auto"``, ``"pack"`` or ``"span"``) and
    ``span_threshold``. Exact ``numpy.ndarray`` instances whose dtype holds plain data are
    written as ``numpy.ndarray(shape, dtype, buffer, offset, strides, order)``; subclasses
    (``np.matrix``, masked arrays, memmaps...), object arrays and every other object are
    left to pickle, or to the ``reducer_override`` of the next class in the MRO (so that
    ``class P(ndpickle.Pickler, cloudpickle.Pickler)`` combines both).
    """

    def __init__(
        self,
        file: IO[bytes],
        protocol: Optional[int] = None,
        *,
        fix_imports: bool = True,
        buffer_callback: Optional[Callable[[pickle.PickleBuffer], Any]] = None,
        layout: str = "auto",
        span_threshold: float = 0.5,
    ) -> None:
        if protocol is None:
            protocol = pickle.DEFAULT_PROTOCOL
        elif protocol < 0:
            protocol = pickle.HIGHEST_PROTOCOL
        kwargs: dict[str, Any] = {}
        if not fix_imports:
            kwargs["fix_imports"] = False
        if buffer_callback is not None:
            kwargs["buffer_callback"] = buffer_callback
        super().__init__(file, protocol, **kwargs)
        fallback = getattr(super(), "reducer_override", None)
        self._ndpickle_reducer = ArrayReducer(
            min(protocol, 5),
            layout=layout,
            span_threshold=span_threshold,
            fallback=fallback,
        )
        if type(self).reducer_override is Pickler.reducer_override:
            # Fast path: pickle calls the Rust reducer directly, no Python frame per object.
            self.reducer_override = self._ndpickle_reducer  # type: ignore[method-assign]

    def reducer_override(self, obj: Any) -> Any:
        """The portable reduce tuple for numpy arrays; the next reducer's answer (or
        ``NotImplemented``) for everything else."""
        return self._ndpickle_reducer(obj)


class Unpickler(pickle.Unpickler):
    """``pickle.Unpickler``, for symmetry with :class:`Pickler`: ndpickle's streams need
    nothing but numpy to load. It runs code named by the pickle, like ``pickle`` itself;
    use :func:`safe_loads` for untrusted data."""


def dumps(
    obj: Any,
    *,
    protocol: int = 5,
    compression: Optional[str] = None,
    level: Optional[int] = None,
    buffer_callback: Optional[Callable[[pickle.PickleBuffer], Any]] = None,
    layout: str = "auto",
) -> bytes:
    """Pickle ``obj`` to bytes; ``pickle.loads`` with numpy alone loads the result."""
    _check_compression(compression, level)
    f = io.BytesIO()
    Pickler(f, protocol, buffer_callback=buffer_callback, layout=layout).dump(obj)
    return f.getvalue()


def loads(data: Any, *, buffers: Optional[Iterable[Any]] = None) -> Any:
    """Load a pickle (from ndpickle or anyone else). Runs code like ``pickle.loads``; use
    :func:`safe_loads` for untrusted data."""
    return pickle.loads(data, buffers=buffers)


def dump(
    obj: Any,
    file: _PathOrFile,
    *,
    protocol: int = 5,
    compression: Optional[str] = None,
    level: Optional[int] = None,
    layout: str = "auto",
) -> None:
    """Pickle ``obj`` into a binary file object or to a path."""
    _check_compression(compression, level)
    if isinstance(file, (str, os.PathLike)):
        with open(file, "wb") as f:
            Pickler(f, protocol, layout=layout).dump(obj)
    else:
        Pickler(file, protocol, layout=layout).dump(obj)


def load(file: _PathOrFile, *, buffers: Optional[Iterable[Any]] = None) -> Any:
    """Load a pickle from a binary file object or a path (runs code like ``pickle.load``)."""
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as f:
            return Unpickler(f, buffers=buffers).load()
    return Unpickler(file, buffers=buffers).load()


def serialize(
    obj: Any,
    *,
    protocol: int = 5,
    compression: Optional[str] = None,
    level: Optional[int] = None,
    layout: str = "auto",
) -> tuple[dict[str, Any], list[Any]]:
    """Pickle ``obj`` with array memory out-of-band.

    Returns ``(header, frames)``: ``frames[0]`` is the pickle, ``frames[1:]`` are
    memoryviews of the arrays' own memory (no copy; packed copies only for sparse views).
    ``header`` records per frame its length, writeability and codec.
    """
    _check_compression(compression, level)
    if protocol != 5:
        raise ValueError("serialize needs protocol 5 (out-of-band buffers)")
    buffers: list[pickle.PickleBuffer] = []
    f = io.BytesIO()
    Pickler(f, 5, buffer_callback=buffers.append, layout=layout).dump(obj)
    frames: list[Any] = [f.getvalue()]
    frames.extend(b.raw() for b in buffers)
    header = {
        "serializer": "ndpickle",
        "protocol": 5,
        "compression": [None] * len(frames),
        "lengths": [memoryview(fr).nbytes for fr in frames],
        "writeable": [False] + [not memoryview(fr).readonly for fr in frames[1:]],
    }
    return header, frames


def deserialize(header: dict[str, Any], frames: list[Any]) -> Any:
    """Rebuild the object from :func:`serialize`'s ``(header, frames)``. Frames that must be
    writable but arrive read-only (e.g. received as ``bytes``) are copied once."""
    if header.get("serializer") != "ndpickle":
        raise ValueError(f"not an ndpickle header: {header.get('serializer')!r}")
    codecs = header.get("compression") or []
    if any(c is not None for c in codecs):
        raise ValueError("compressed frames are not supported by this build of ndpickle")
    if len(frames) != len(header.get("lengths", frames)):
        raise ValueError(f"header describes {len(header['lengths'])} frames, got {len(frames)}")
    writeable = header.get("writeable") or [False] * len(frames)
    buffers = []
    for fr, w in zip(frames[1:], writeable[1:]):
        if w and memoryview(fr).readonly:
            fr = bytearray(fr)
        buffers.append(fr)
    return pickle.loads(frames[0], buffers=buffers)


def safe_loads(
    data: Any, *, buffers: Optional[Iterable[Any]] = None, **limits: int
) -> Any:
    """Load a pickle without running any code.

    Accepted: builtins (None, bool, int, float, complex, str, bytes, bytearray, list,
    tuple, dict, set, frozenset), numpy arrays, scalars and dtypes in every form numpy 1.x
    and 2.x and ndpickle write (compressed ndpickle streams included), and pyarrow objects
    rebuilt through an allow-list of pyarrow's own constructors (when pyarrow is
    importable). Any other global, and any malformed or oversized input, raises
    :class:`DecodeError` (with ``offset``, ``opcode`` and ``kind`` attributes).

    ``data`` and ``buffers`` (the out-of-band buffers, in order) are any C-contiguous
    buffers; arrays over them are numpy views of those objects, not copies (a copy is made
    only where the pickle asks for a writable array over read-only memory).

    ``limits`` (keyword arguments, all non-negative ints; defaults in parentheses):

    - ``max_depth``: deepest nesting of containers (1000);
    - ``max_memo_entries``: most memo entries (1 000 000);
    - ``max_copied_bytes``: most bytes duplicated because the stream refers to a value
      more than once (256 MiB);
    - ``max_alloc_bytes``: most bytes allocated for values, decompressed data included
      (4 GiB);
    - ``max_decompressed_bytes``: most bytes one compressed buffer may decompress to
      (4 GiB).

    An unknown name raises ``TypeError``; an out-of-range value ``ValueError``.
    """
    return _native.safe_loads(data, None if buffers is None else list(buffers), limits or None)


def safe_load(file: _PathOrFile, *, buffers: Optional[Iterable[Any]] = None, **limits: int) -> Any:
    """:func:`safe_loads` on the contents of a binary file object or a path.

    A path is memory-mapped (read-only), so arrays stored in-band view the file's pages
    instead of copies; a file object is read whole.
    """
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as f:
            try:
                data: Any = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except (ValueError, OSError):  # empty file, or not mappable (a pipe...)
                data = f.read()
    else:
        data = file.read()
    return safe_loads(data, buffers=buffers, **limits)
