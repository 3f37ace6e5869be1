"""Objects through POSIX shared memory: the transport under ``ndpickle.futures`` and
``ndpickle.multiprocessing``.

An object is pickled with :class:`ndpickle.Pickler` at protocol 5. Every out-of-band buffer
of at least ``threshold`` bytes is written once (``os.write``, GIL released) into a new
shared memory segment of its own; smaller buffers stay in-band. What travels through the
pipe is the small pickle and the segments' names and sizes. The receiver opens each segment,
unlinks it at once (the open descriptor keeps it alive), maps it and hands the mappings to
``pickle.loads`` as the out-of-band buffers: arrays view the segments with no copy, and a
mapping lives as long as any array over it.

Segments are the same POSIX objects ``multiprocessing.shared_memory.SharedMemory`` creates
(``_posixshmem.shm_open``, listed in ``/dev/shm`` on Linux), but the class itself is not
used: it owns its mapping and closes it in ``__del__``, which fails while arrays still view
it, and on Python 3.11 attaching registers the segment with the resource tracker a second
time. Here each segment is registered once, by the process that creates it, and
unregistered once, by whichever process unlinks it (``shm_unlink`` succeeds in exactly one),
so the shared resource tracker's books balance and it warns only about segments that were
really lost (it then unlinks them when the program ends: the safety net if a creator or
receiver is killed). Creator and receiver must share one tracker: processes started by
``spawn`` and ``forkserver`` always do; forked ones only if it ran before the fork, hence
:func:`ensure_tracker`.

Segment names are chosen by the caller (a prefix plus the buffer's index in hex), so that a
sender can find and unlink the segments of a receiver that died before taking them
(:func:`sweep`), or, where the system lists its segments (Linux's ``/dev/shm``), every
segment under a prefix (:func:`sweep_listed`).
"""

from __future__ import annotations

import io
import mmap
import os
import pickle
import sys
import threading
from multiprocessing import resource_tracker
from multiprocessing.reduction import ForkingPickler
from typing import Any, Callable, Optional

import _posixshmem  # type: ignore[import-not-found]  # CPython's, behind shared_memory

from . import Pickler

__all__ = [
    "DEFAULT_THRESHOLD",
    "ensure_tracker",
    "pack",
    "sweep",
    "sweep_listed",
    "unlink",
    "unpack",
]

#: Out-of-band buffers of at least this many bytes travel in shared memory (1 MiB).
DEFAULT_THRESHOLD = 1 << 20

# The resource tracker's name for POSIX shared memory segments.
_RTYPE = "shared_memory"

# Largest single write(2) Linux performs (0x7ffff000); larger buffers take several calls.
_MAX_WRITE = 0x7FFFF000

# mmap.mmap keeps a duplicate of the descriptor open while mapped unless told not to (3.13+).
_MMAP_KW: dict[str, Any] = {"trackfd": False} if sys.version_info >= (3, 13) else {}

Segments = list[tuple[str, int]]
"""(name, size) of each segment, in the order of the pickle's out-of-band buffers."""


def ensure_tracker() -> None:
    """Starts the resource tracker in this process if it is not running, so that processes
    forked from now on share it (they would start their own otherwise)."""
    resource_tracker.ensure_running()


def check_threshold(threshold: int) -> int:
    """``threshold`` as an int, or ``ValueError``/``TypeError`` if it is not a
    non-negative integer."""
    if isinstance(threshold, bool) or not isinstance(threshold, int):
        raise TypeError(f"shm_threshold must be an int, not {type(threshold).__name__}")
    if threshold < 0:
        raise ValueError(f"shm_threshold must be >= 0, not {threshold}")
    return threshold


class _Pickler(Pickler):
    """:class:`ndpickle.Pickler` with ``multiprocessing``'s reducers (connections, sockets,
    ...), as ``ForkingPickler`` has them."""

    def __init__(self, file: io.BytesIO, buffer_callback: Callable[[Any], Any]) -> None:
        super().__init__(file, 5, buffer_callback=buffer_callback)
        self.dispatch_table = ForkingPickler(file, 5).dispatch_table


def _create(name: str, data: memoryview) -> None:
    """A new segment ``name`` holding ``data``, registered with the resource tracker.
    Raises ``FileExistsError`` if the name is taken; unlinks the segment on any failure."""
    fd = _posixshmem.shm_open(name, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode=0o600)
    try:
        try:
            resource_tracker.register(name, _RTYPE)
        except BaseException:
            _posixshmem.shm_unlink(name)  # not registered: nothing to unregister
            raise
        try:
            # write(2) rather than a mapping: a full /dev/shm is an OSError (ENOSPC), not
            # a SIGBUS, and the pages are filled without faulting them into this process.
            done, total = 0, data.nbytes
            while done < total:
                done += os.write(fd, data[done : done + _MAX_WRITE])
        except BaseException:
            unlink(name)
            raise
    finally:
        os.close(fd)


def unlink(name: str) -> bool:
    """Unlinks segment ``name`` if it still exists (and unregisters it from the resource
    tracker); ``False`` if it did not exist."""
    try:
        _posixshmem.shm_unlink(name)
    except FileNotFoundError:
        return False
    resource_tracker.unregister(name, _RTYPE)
    return True


def sweep(prefix: str, start: int = 0) -> int:
    """Unlinks segments ``prefix + hex(i)`` for i = start, start + 1, ... up to the first
    missing one (what a process that creates them in order left behind); returns how many."""
    count = 0
    while unlink(f"{prefix}{start + count:x}"):
        count += 1
    return count


# Where Linux lists POSIX shared memory segments (a segment "/name" is the file "name").
_SHM_DIR = "/dev/shm"

#: Whether :func:`sweep_listed` can list segments on this system.
LISTABLE = sys.platform.startswith("linux") and os.path.isdir(_SHM_DIR)


def sweep_listed(prefix: str) -> int:
    """Unlinks every segment whose name starts with ``prefix``, found by listing the
    system's segments (:data:`LISTABLE`; none elsewhere); returns how many."""
    if not LISTABLE:
        return 0
    stem = prefix.lstrip("/")
    try:
        names = os.listdir(_SHM_DIR)
    except OSError:
        return 0
    return sum(unlink("/" + n) for n in names if n.startswith(stem))


class _Packer:
    """A :class:`_Pickler` and its output buffer, reused by one thread for one
    :func:`pack` at a time (building a pickler costs more than pickling a small object)."""

    def __init__(self) -> None:
        self.file = io.BytesIO()
        self.pickler = _Pickler(self.file, self._to_segment)
        self.busy = False
        self.prefix = ""
        self.threshold = 0
        self.segments: Segments = []

    def _to_segment(self, buffer: pickle.PickleBuffer) -> bool:
        raw = buffer.raw()
        size = raw.nbytes
        if size < self.threshold or size == 0:
            return True  # in-band
        name = f"{self.prefix}{len(self.segments):x}"
        _create(name, raw)
        self.segments.append((name, size))
        return False

    def pack(self, obj: Any, prefix: str, threshold: int) -> tuple[bytes, Segments]:
        self.busy = True
        self.prefix, self.threshold, self.segments = prefix, threshold, []
        segments = self.segments
        try:
            self.pickler.dump(obj)
            return self.file.getvalue(), segments
        except BaseException:
            for name, _ in segments:
                unlink(name)
            raise
        finally:
            self.pickler.clear_memo()  # drops the references the memo holds
            self.file.seek(0)
            self.file.truncate()
            self.segments = []
            self.busy = False


_local = threading.local()


def pack(obj: Any, prefix: str, threshold: int) -> tuple[bytes, Segments]:
    """Pickles ``obj``; out-of-band buffers of at least ``threshold`` bytes (and not empty)
    go to new segments named ``prefix + <index in hex>``, the others in-band.

    Returns the pickle and the segments. On failure no segment is left behind.
    """
    packer: Optional[_Packer] = getattr(_local, "packer", None)
    if packer is None:
        packer = _local.packer = _Packer()
    elif packer.busy:  # an object being packed packs another one
        packer = _Packer()
    return packer.pack(obj, prefix, threshold)


def _map(name: str, size: int, writable: bool) -> mmap.mmap:
    """Opens segment ``name``, unlinks it and maps its ``size`` bytes (read-only, or
    private copy-on-write)."""
    fd = _posixshmem.shm_open(name, os.O_RDONLY, mode=0o600)
    try:
        unlink(name)
        actual = os.fstat(fd).st_size
        if actual != size:
            raise pickle.UnpicklingError(
                f"shared memory segment {name} holds {actual} bytes, expected {size}"
            )
        access = mmap.ACCESS_COPY if writable else mmap.ACCESS_READ
        return mmap.mmap(fd, size, access=access, **_MMAP_KW)
    finally:
        os.close(fd)


def unpack(data: bytes, segments: Segments, writable: bool = False) -> Any:
    """Loads what :func:`pack` made: maps every segment (unlinking it: all of them are
    unlinked, even on failure) and unpickles ``data`` over the mappings.

    Arrays over the segments are read-only, or with ``writable`` writable private
    copy-on-write mappings (writes stay in this process), unless the sender's array was
    read-only.
    """
    maps: list[mmap.mmap] = []
    try:
        for name, size in segments:
            maps.append(_map(name, size, writable))
    except BaseException:
        for name, _ in segments[len(maps) :]:
            unlink(name)
        raise
    return pickle.loads(data, buffers=maps)


class Shipment:
    """Wraps an object so that pickling it (by any pickler: ``multiprocessing``'s queues and
    pipes, ``pickle.dumps``...) packs it into shared memory, and unpickling it yields the
    object itself.

    Each pickling creates new segments, named ``prefix_for()`` plus an index; the first
    unpickling of that pickle unlinks them. A pickle that is never loaded leaves its
    segments until the resource tracker removes them at exit.
    """

    __slots__ = ("obj", "threshold", "writable")

    def __init__(self, obj: Any, threshold: int, writable: bool) -> None:
        self.obj = obj
        self.threshold = threshold
        self.writable = writable

    def prefix_for(self) -> str:
        """The name prefix of this pickling's segments (random by default)."""
        return "/ndp" + os.urandom(6).hex() + "_"

    def packed(self) -> tuple[bytes, Segments]:
        """:func:`pack` of the wrapped object."""
        return pack(self.obj, self.prefix_for(), self.threshold)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        data, segments = self.packed()
        return unpack, (data, segments, self.writable)
