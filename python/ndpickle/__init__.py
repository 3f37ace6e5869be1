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

Modules imported on request:

- ``ndpickle.dask``: the ``"ndpickle"`` Dask serialization family;
- ``ndpickle.futures``: ``ProcessPoolExecutor``, a ``concurrent.futures`` process pool whose
  large array buffers travel through shared memory;
- ``ndpickle.multiprocessing``: ``Shared``/``send``, the same transport for
  ``multiprocessing`` pools, queues and pipes.
"""

from __future__ import annotations

import io
import mmap
import os
import pickle
import types
import weakref
from typing import IO, Any, Callable, Iterable, Literal, Optional, Union

import numpy as np

from . import _native, _progress
from ._progress import Progress
from ._native import ArrayReducer, DecodeError, EncodeError, RawBuffer

__all__ = [
    "ArrayReducer",
    "Compression",
    "DecodeError",
    "EncodeError",
    "Layout",
    "MmapMode",
    "Progress",
    "Pickler",
    "RawBuffer",
    "Unpickler",
    "__version__",
    "deserialize",
    "dump",
    "dumps",
    "load",
    "loads",
    "safe_deserialize",
    "safe_load",
    "safe_loads",
    "serialize",
]

__version__: str = _native.__version__

# Named by compressed in-band pickles: ndpickle._decompress(header, frame, writable) for a
# buffer of at most one chunk; a larger buffer is written chunk by chunk as nested calls
#   _decompress_into(... _decompress_into(_decompress_target(raw_len), 0, h1, f1) ...,
#                    offset_k, h_k, f_k, writable)
# so that writer and reader hold one compressed chunk at a time (the core's write::chunked).
# The names are the core's (codec::names); _native registers its functions under them.
globals().update(_native.PICKLE_GLOBALS)

# Raw bytes per chunk of a compressed buffer in files written by ``dump`` (None: the core's
# COMPRESS_CHUNK, 64 MiB). Tests lower it to get several chunks from small arrays.
_COMPRESS_CHUNK: Optional[int] = None

#: The codecs ``compression=`` takes (``None``: no compression).
Compression = Literal["auto", "lz4", "zstd"]
#: The layout policies ``layout=`` takes (DESIGN §3.4): decide per array, always pack, always span.
Layout = Literal["auto", "pack", "span"]
#: ``load``'s memory-mapping modes: read-only, or copy-on-write.
MmapMode = Literal["r", "c"]

_PathOrFile = Union[str, "os.PathLike[str]", IO[bytes]]


# DecodeError kinds on which ``load(mmap_mode=...)`` falls back to ``pickle.load``: the file
# holds objects the zero-copy reader does not rebuild (compressed buffers, named by
# ``ndpickle._decompress``, or classes outside its allow-list), not a damaged stream.
_MMAP_FALLBACK_KINDS = frozenset({"ForbiddenGlobal", "Refused", "UnsupportedDtype"})


def _pickle_out_of_band(
    obj: Any, layout: Layout, span_threshold: float = 0.5
) -> tuple[bytes, list[pickle.PickleBuffer]]:
    """Protocol-5 pickle of ``obj`` and its out-of-band buffers (views, no copies)."""
    buffers: list[pickle.PickleBuffer] = []
    f = io.BytesIO()
    Pickler(
        f, 5, buffer_callback=buffers.append, layout=layout, span_threshold=span_threshold
    ).dump(obj)
    return f.getvalue(), buffers


class _ArrowHook:
    """The pyarrow part of :class:`Pickler` (``ndpickle._arrow``), imported on the first
    pyarrow object: pickling numpy alone never imports pyarrow."""

    __slots__ = ("protocol", "reducer")

    def __init__(self, protocol: int) -> None:
        self.protocol = protocol
        self.reducer: Any = None

    def __call__(self, obj: Any) -> Any:
        reducer = self.reducer
        if reducer is None:
            from ._arrow import ArrowReducer

            reducer = self.reducer = ArrowReducer(self.protocol)
        return reducer(obj)

    def clear(self) -> None:
        """Forgets the dictionaries written so far."""
        if self.reducer is not None:
            self.reducer.clear()


class Pickler(pickle.Pickler):
    """A ``pickle.Pickler`` that writes numpy arrays through ndpickle's layout logic.

    Same constructor as ``pickle.Pickler`` (protocol, ``fix_imports``, ``buffer_callback``)
    plus the layout options ``layout`` (``"auto"``, ``"pack"`` or ``"span"``) and
    ``span_threshold``. Exact ``numpy.ndarray`` instances whose dtype holds plain data are
    written as ``numpy.ndarray(shape, dtype, buffer, offset, strides, order)``; subclasses
    (``np.matrix``, masked arrays, memmaps...), object arrays and every other object are
    left to pickle, or to the ``reducer_override`` of the next class in the MRO (so that
    ``class P(ndpickle.Pickler, cloudpickle.Pickler)`` combines both).

    pyarrow arrays (every type), chunked arrays, record batches, tables, schemas, fields
    and types (protocol 4 and up) are written through pyarrow's public reconstructors
    (``pyarrow.Array.from_buffers``, ``RecordBatch.from_arrays``, ``Table.from_batches``,
    type factories), shipping only the bytes a slice uses, out-of-band as views of the
    Arrow memory with a ``buffer_callback``; see ``ndpickle._arrow``. What that form does
    not represent is left to pyarrow's own reducer.
    """

    def __init__(
        self,
        file: IO[bytes],
        protocol: Optional[int] = None,
        *,
        fix_imports: bool = True,
        buffer_callback: Optional[Callable[[pickle.PickleBuffer], Any]] = None,
        layout: Layout = "auto",
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
        if isinstance(fallback, types.MethodType):
            # A weak reference: the reducer lives in this pickler, and a strong bound method
            # of it would be a reference cycle keeping the pickler and everything it
            # pickled alive until a garbage collection.
            fallback = weakref.WeakMethod(fallback)
        self._ndpickle_arrow = _ArrowHook(protocol)
        self._ndpickle_reducer = ArrayReducer(
            min(protocol, 5),
            layout=layout,
            span_threshold=span_threshold,
            fallback=fallback,
            arrow=self._ndpickle_arrow,
        )
        if type(self).reducer_override is Pickler.reducer_override:
            # Fast path: pickle calls the Rust reducer directly, no Python frame per object.
            self.reducer_override = self._ndpickle_reducer  # type: ignore[method-assign, assignment]

    def reducer_override(self, obj: Any) -> Any:
        """The portable reduce tuple for numpy arrays; the next reducer's answer (or
        ``NotImplemented``) for everything else."""
        return self._ndpickle_reducer(obj)

    def clear_memo(self) -> None:
        """``pickle.Pickler.clear_memo``, also forgetting the arrays later views may refer
        to (they are no longer in the memo, and no longer kept alive)."""
        super().clear_memo()
        self._ndpickle_reducer.clear()
        self._ndpickle_arrow.clear()


class Unpickler(pickle.Unpickler):
    """``pickle.Unpickler``, for symmetry with :class:`Pickler`: ndpickle's streams need
    nothing but numpy to load. It runs code named by the pickle, like ``pickle`` itself;
    use :func:`safe_loads` for untrusted data."""


def dumps(
    obj: Any,
    *,
    protocol: int = 5,
    compression: Optional[Compression] = None,
    shuffle: bool = True,
    level: Optional[int] = None,
    buffer_callback: Optional[Callable[[pickle.PickleBuffer], Any]] = None,
    layout: Layout = "auto",
    threads: Optional[int] = None,
) -> bytes:
    """Pickle ``obj`` to bytes.

    With ``compression=None`` the result is a standard pickle that ``pickle.loads`` with
    numpy alone loads. With ``compression="auto"``, ``"lz4"`` or ``"zstd"`` each array
    buffer is compressed (see :func:`serialize` for ``shuffle``, ``level``, ``threads``)
    and stored as ``ndpickle._decompress(header, frame, writable)``: still one
    self-contained pickle, which ``pickle.loads`` / :func:`loads` decode wherever ndpickle
    is installed (a stock unpickler without it fails with "No module named 'ndpickle'").
    """
    if compression is None:
        _native.check_compression(None, shuffle, level, threads)
        f = io.BytesIO()
        Pickler(f, protocol, buffer_callback=buffer_callback, layout=layout).dump(obj)
        return f.getvalue()
    if protocol != 5:
        raise ValueError("compression needs protocol 5")
    if buffer_callback is not None:
        raise ValueError("compression and buffer_callback cannot be combined")
    # Pickled out-of-band first, then every buffer (numpy's, pyarrow's, any PickleBuffer an
    # object's reducer makes) written in-band by the core's rewriter, compressed where that
    # pays: CPython's pickler calls no hook for PickleBuffer objects (reducer_override is
    # skipped for them), so this is the one place that sees them all. The rewrite is one pass
    # over the small in-band pickle; the buffers are copied once, into the result.
    data, buffers = _pickle_out_of_band(obj, layout)
    return _native.dumps(data, buffers, compression, shuffle, level, threads)


def loads(data: Any, *, buffers: Optional[Iterable[Any]] = None) -> Any:
    """Load a pickle (from ndpickle or anyone else). Runs code like ``pickle.loads``; use
    :func:`safe_loads` for untrusted data."""
    return pickle.loads(data, buffers=buffers)


def dump(
    obj: Any,
    file: _PathOrFile,
    *,
    protocol: int = 5,
    compression: Optional[Compression] = None,
    shuffle: bool = True,
    level: Optional[int] = None,
    layout: Layout = "auto",
    threads: Optional[int] = None,
    fsync: bool = False,
    progress: Optional[Progress] = None,
) -> None:
    """Write ``obj`` to a path or a binary file object as a dataset file.

    At protocol 5 (the default) the file is a standard pickle whose array payloads start
    at 64-byte aligned offsets (from the start of the stream), so that ``pickle.load``
    opens it anywhere and :func:`load` with ``mmap_mode`` maps it back with zero copies.
    The array memory is streamed to the file straight from the arrays (no temporary
    copy; a file object gets ``write`` calls of at most 1 MiB), so peak memory stays near
    the size of the data.

    A path is written atomically: to a temporary file in the same directory, renamed over
    the target once complete, so a dump that fails part-way (an object that cannot be
    pickled, a full disk, a size limit) leaves an existing file as it was and no temporary
    behind. ``fsync=True`` flushes the new file (and the directory entry) to the device
    before the rename, so that it survives a power loss too.

    ``compression`` (``"auto"``, ``"lz4"``, ``"zstd"``; see :func:`serialize`) stores
    each buffer compressed; such files need ndpickle to load (``pickle.load`` without it
    fails naming ndpickle) and load as decompressed copies, never as mappings. Buffers are
    compressed one at a time on their way to the file, and a buffer over 64 MiB chunk by
    chunk (``ndpickle._decompress_into`` calls, one 64 MiB raw chunk each), so only one
    compressed chunk is held in memory at once, when writing and when loading.

    ``progress(done, total)`` is called as the file is written (every 8 MiB and once at the
    end) with the bytes written so far and the size the file will have (the pickle and its
    arrays' bytes; ``None`` when compressing, whose result size is not known beforehand). The
    last call has ``done == total`` (or ``total`` ``None``).
    """
    if progress is not None:
        _dump_with_progress(obj, file, progress, protocol, compression, shuffle, level,
                            layout, threads, fsync)
        return
    if protocol != 5:
        if compression is not None:
            raise ValueError("compression needs protocol 5")
        _native.check_compression(None, shuffle, level, threads)
        if isinstance(file, (str, os.PathLike)):

            def write(temp: str) -> None:
                with open(temp, "wb") as f:
                    Pickler(f, protocol, layout=layout).dump(obj)

            _native.write_atomically(file, write, fsync)
        else:
            Pickler(file, protocol, layout=layout).dump(obj)
        return
    data, buffers = _pickle_out_of_band(obj, layout)
    # Buffers are compressed one at a time on their way to the file: one frame in memory.
    _native.dump(
        data, buffers, file, compression, shuffle, level, threads, _COMPRESS_CHUNK, fsync
    )


def _dump_with_progress(
    obj: Any,
    file: _PathOrFile,
    progress: Progress,
    protocol: int,
    compression: Optional[Compression],
    shuffle: bool,
    level: Optional[int],
    layout: Layout,
    threads: Optional[int],
    fsync: bool,
) -> None:
    """:func:`dump` reporting progress: the bytes go through a counting ``write``; a path is
    still replaced atomically (the counted file is the temporary one)."""
    if protocol != 5 and compression is not None:
        raise ValueError("compression needs protocol 5")
    _native.check_compression(compression, shuffle, level, threads)
    total: Optional[int] = None
    if protocol == 5:
        data, buffers = _pickle_out_of_band(obj, layout)
        if compression is None:
            total = len(data) + sum(b.raw().nbytes for b in buffers)

    def to(f: IO[bytes]) -> None:
        w = _progress.CountingWriter(f, progress, total)
        if protocol == 5:
            _native.dump(data, buffers, w, compression, shuffle, level, threads, _COMPRESS_CHUNK)
        else:
            Pickler(w, protocol, layout=layout).dump(obj)  # type: ignore[arg-type]
        w.finish()

    if isinstance(file, (str, os.PathLike)):

        def write(temp: str) -> None:
            with open(temp, "wb") as f:
                to(f)

        _native.write_atomically(file, write, fsync)
    else:
        to(file)


def load(
    file: _PathOrFile,
    *,
    mmap_mode: Optional[MmapMode] = None,
    buffers: Optional[Iterable[Any]] = None,
    progress: Optional[Progress] = None,
) -> Any:
    """Load a pickle from a binary file object or a path (runs code like ``pickle.load``).

    ``mmap_mode="r"`` or ``"c"`` (paths only, no ``buffers``) memory-maps a file written by
    :func:`dump` and returns numpy arrays that view the mapping, with no copy: read-only
    arrays for ``"r"``; writable arrays for ``"c"`` (copy-on-write: writes stay in this
    process and never reach the file). The mapping stays open while any array uses it. The
    file is read by ndpickle's safe reader; compressed buffers are decompressed into private
    memory (read-only too under ``"r"``); a file holding objects that reader does not
    rebuild (arbitrary classes) is loaded by ``pickle.load`` instead, as copies. Do not truncate a file while arrays map it (as with ``numpy.memmap``).

    ``progress(done, total)`` is called as the file is read (every 8 MiB and at the end) with
    the bytes read so far and the file's size (``None`` for a file object whose size is not
    known); a memory-mapped load reads nothing up front and reports once, at the end.
    """
    if mmap_mode is not None:
        if mmap_mode not in ("r", "c"):
            raise ValueError(f'mmap_mode must be None, "r" or "c", not {mmap_mode!r}')
        if not isinstance(file, (str, os.PathLike)):
            raise ValueError("mmap_mode needs a path, not a file object")
        if buffers is not None:
            raise ValueError("mmap_mode cannot be combined with out-of-band buffers")
        try:
            out = _native.load_mapped(os.fspath(file), mmap_mode)
            if mmap_mode == "r":
                _freeze(out)  # data decompressed from the mapping is read-only too
            if progress is not None:
                size = os.path.getsize(file)
                progress(size, size)
            return out
        except DecodeError as e:
            if getattr(e, "kind", None) not in _MMAP_FALLBACK_KINDS:
                raise
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as f:
            return _load_from(f, buffers, progress)
    return _load_from(file, buffers, progress)


def _load_from(f: IO[bytes], buffers: Optional[Iterable[Any]], progress: Optional[Progress]) -> Any:
    """``Unpickler(f).load()``, reading through a counting reader when ``progress`` is given."""
    if progress is None:
        return Unpickler(f, buffers=buffers).load()
    try:
        total: Optional[int] = os.fstat(f.fileno()).st_size - f.tell()
    except (OSError, AttributeError, io.UnsupportedOperation):
        total = None
    r = _progress.CountingReader(f, progress, total)
    out = Unpickler(r, buffers=buffers).load()
    r.finish()
    return out


def _freeze(obj: Any) -> None:
    """Marks every numpy array in a tree of builtin containers read-only."""
    stack = [obj]
    while stack:
        x = stack.pop()
        if isinstance(x, np.ndarray):
            x.flags.writeable = False
        elif isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, (list, tuple, set, frozenset)):
            stack.extend(x)


def serialize(
    obj: Any,
    *,
    protocol: int = 5,
    compression: Optional[Compression] = "auto",
    shuffle: bool = True,
    level: Optional[int] = None,
    layout: Layout = "auto",
    threads: Optional[int] = None,
    span_threshold: float = 0.5,
) -> tuple[dict[str, Any], list[Any]]:
    """Pickle ``obj`` with array memory out-of-band, each buffer compressed when it pays.

    Returns ``(header, frames)``: ``frames[0]`` is the pickle, ``frames[1:]`` the buffers:
    memoryviews of the arrays' own memory (no copy; packed copies only for sparse views)
    when sent raw, compressed frames otherwise.

    ``compression``: ``"auto"`` (default: lz4 on buffers of at least 64 KiB whose sample
    compresses well, kept only if the whole shrinks by 10%), ``"lz4"``, ``"zstd"``
    (always, unless the frame would not be smaller than the data) or ``None``.
    ``shuffle`` (default on) byte-shuffles each buffer by its item size first: the big
    win on numeric data. Unshuffled frames are single plain lz4/zstd frames that
    python-lz4, zstandard and Dask decode alone; shuffled ones are split in 1 MiB blocks
    that up to ``threads`` threads (default: one per core, at most 8) work on.
    ``level`` is zstd's level (default 3). Compression runs with the GIL released.
    ``layout`` and ``span_threshold`` are :class:`Pickler`'s: under ``"auto"`` a strided
    view travels as its memory span when its elements fill at least ``span_threshold`` of
    it, packed otherwise.

    ``header`` has, per frame (index 0 is the pickle): ``"compressed"`` (whether the frame
    is compressed), ``"compression"`` (the codec name Dask's
    ``distributed.protocol.compression.decompress`` applies: set only for plain frames, so
    Dask never mis-decodes a shuffled one), ``"codec"``, ``"filter"``, ``"frame-info"``
    (ndpickle's frame header bytes, for compressed frames), ``"lengths"`` (raw lengths) and
    ``"writeable"``. Header and frames are built, and read back, by one native module.
    """
    if protocol != 5:
        raise ValueError("serialize needs protocol 5 (out-of-band buffers)")
    if type(obj) is np.ndarray and layout == "auto":
        # One plain array (the Dask, Ray and pool payload): written by the core, no pickler.
        out = _native.serialize_array(obj, compression, shuffle, level, threads, span_threshold)
        if out is not None:
            return out
    data, buffers = _pickle_out_of_band(obj, layout, span_threshold)
    return _native.serialize(data, buffers, compression, shuffle, level, threads)


def deserialize(header: dict[str, Any], frames: list[Any]) -> Any:
    """Rebuild the object from :func:`serialize`'s ``(header, frames)``.

    Compressed frames are decompressed (no frame may grow past the raw length the header
    records: anything else, and any truncated or corrupt frame, raises
    :class:`DecodeError`). The header says which frames are compressed (``"compressed"``;
    headers written before that key existed say it with ``"frame-info"``); of those, a plain
    frame, which a transport may decode on the way (Dask's ``decompress`` applies the header's
    ``"compression"``), that arrives at exactly its raw length is used as it is: compressed
    frames are only kept when strictly smaller. Frames that must be writable but arrive
    read-only (e.g. as ``bytes``) are copied once. A header that does not describe the
    frames raises ``ValueError``.
    """
    return _native.deserialize(header, frames)


def safe_loads(
    data: Any,
    *,
    buffers: Optional[Iterable[Any]] = None,
    strict: bool = False,
    fix_imports: bool = True,
    encoding: str = "ASCII",
    errors: str = "strict",
    **limits: int,
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
    - ``max_alloc_bytes``: most bytes allocated for values, decompressed data and
      writable copies included (256 MiB + 4 × the input's bytes, pickle and buffers);
    - ``max_decompressed_bytes``: most bytes one compressed buffer may decompress to
      (4 GiB).

    An unknown name raises ``TypeError``; an out-of-range value ``ValueError``.

    ``strict=True`` also refuses bytes after the pickle's ``STOP`` opcode (a second pickle
    stacked behind the first is a way to hide data from scanners); by default they are
    ignored, as ``pickle.loads`` ignores them.

    ``fix_imports``, ``encoding`` and ``errors`` are ``pickle.loads``' own, with its
    defaults: Python 2 ``str`` values are decoded with ``encoding`` (any codec name, or
    ``'bytes'`` to keep them ``bytes``) and ``errors``; a failed decoding raises
    :class:`DecodeError`. numpy's Python 2 array data loads whatever the encoding.

    What the pickle refers to more than once comes back as one object, and recursive lists
    and dicts come back recursive, as with ``pickle.loads``.
    """
    return _native.safe_loads(
        data,
        None if buffers is None else list(buffers),
        limits or None,
        strict,
        fix_imports,
        encoding,
        errors,
    )


def safe_deserialize(
    header: dict[str, Any], frames: list[Any], *, strict: bool = False, **limits: int
) -> Any:
    """Rebuild the object from :func:`serialize`'s ``(header, frames)`` without running any
    code: the safe counterpart of :func:`deserialize`, for payloads from peers you do not
    trust.

    Accepts what :func:`safe_loads` accepts. Compressed frames (lz4, zstd, shuffled, in
    blocks) are decompressed by the safe reader as the pickle takes them, within the same
    ``limits`` (keyword arguments of :func:`safe_loads`); plain frames that arrive already
    decompressed (Dask's transport applies the header's ``"compression"``) are taken as they
    are, as by :func:`deserialize`. A header that does not describe the frames, a frame of the wrong length and
    every refusal of the reader raise :class:`DecodeError`, and nothing else.
    """

    return _native.safe_deserialize(header, frames, limits or None, strict)


def safe_load(
    file: _PathOrFile,
    *,
    buffers: Optional[Iterable[Any]] = None,
    strict: bool = False,
    fix_imports: bool = True,
    encoding: str = "ASCII",
    errors: str = "strict",
    **limits: int,
) -> Any:
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
    return safe_loads(
        data,
        buffers=buffers,
        strict=strict,
        fix_imports=fix_imports,
        encoding=encoding,
        errors=errors,
        **limits,
    )
