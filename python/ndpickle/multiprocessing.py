"""Shared memory for ``multiprocessing`` users: ``Pool``, ``Queue``, ``Pipe``.

Wrap an object in :class:`Shared` wherever ``multiprocessing`` pickles it; the other side
receives the object itself, its large array buffers mapped from shared memory::

    import multiprocessing as mp
    import numpy as np
    import ndpickle.multiprocessing as ndmp     # import before creating the pool

    def work(a):
        return ndmp.Shared(a * 2)               # the result travels in shared memory too

    if __name__ == "__main__":
        with mp.Pool(2) as pool:
            doubled = pool.apply(work, (ndmp.Shared(np.ones(1 << 22)),))

        left, right = mp.Pipe()
        ndmp.send(left, {"x": np.ones(1 << 22)})  # left.send(Shared(...))
        got = right.recv()                         # {"x": array over shared memory}

Pickling a :class:`Shared` pickles the object with :class:`ndpickle.Pickler` and writes each
out-of-band buffer of at least ``threshold`` bytes into a new shared memory segment (see
:mod:`ndpickle.futures` for the layouts, read-only and copy-on-write mappings); unpickling
maps the segments and unlinks them. Each pickling makes new segments and expects one load: a
pickle that is never loaded (a message nobody receives) keeps its segments until the resource
tracker removes them when the program ends, with a warning. Importing this module starts
``multiprocessing``'s resource tracker, which processes forked later share: import it before
creating a ``fork`` pool. :class:`ndpickle.futures.ProcessPoolExecutor` also cleans up after
tasks that fail or workers that die; prefer it where a pool will do.
"""

from __future__ import annotations

from typing import Any

from ._shm import DEFAULT_THRESHOLD, Shipment, check_threshold, ensure_tracker

__all__ = ["DEFAULT_THRESHOLD", "Shared", "send"]


class Shared(Shipment):
    """``obj``, to be pickled through shared memory: buffers of at least ``threshold``
    bytes (default 1 MiB) in segments, the rest in-band; received arrays over segments are
    read-only, or private copy-on-write mappings with ``writable=True``. Unpickling
    yields ``obj`` itself (the copy), not a :class:`Shared`."""

    __slots__ = ()

    def __init__(self, obj: Any, *, threshold: int = DEFAULT_THRESHOLD, writable: bool = False) -> None:
        super().__init__(obj, check_threshold(threshold), bool(writable))


def send(conn: Any, obj: Any, *, threshold: int = DEFAULT_THRESHOLD, writable: bool = False) -> None:
    """``conn.send(Shared(obj, ...))`` on a ``multiprocessing`` ``Connection`` (or anything
    with a ``send`` that pickles); the other end's plain ``recv()`` returns ``obj``."""
    conn.send(Shared(obj, threshold=threshold, writable=writable))


ensure_tracker()
