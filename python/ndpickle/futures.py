"""A process pool whose arrays travel through shared memory: ``ndpickle.futures.ProcessPoolExecutor``.

A drop-in for :class:`concurrent.futures.ProcessPoolExecutor` (same constructor, ``submit``,
``map``, ``shutdown``, context manager, futures, exceptions with the worker's traceback,
``BrokenProcessPool`` when a worker dies)::

    import numpy as np
    from ndpickle.futures import ProcessPoolExecutor

    def total(a):
        return float(a.sum())

    if __name__ == "__main__":
        data = np.random.rand(1 << 25)              # 256 MiB
        with ProcessPoolExecutor(2) as pool:
            print(pool.submit(total, data).result())

Arguments and results are pickled with :class:`ndpickle.Pickler` (arrays in ndpickle's
layouts: strided, reversed and broadcast views without materialising them). Every
out-of-band buffer of at least ``shm_threshold`` bytes (default 1 MiB) is written once into a
POSIX shared memory segment of its own; the receiver maps it with no further copy and
unlinks it at once. Smaller buffers travel in-band through the pool's pipes, as with pickle.

Received arrays over shared memory are read-only views of their segment, alive as long as the
array is. With ``writable=True`` they are writable private copy-on-write mappings instead
(``MAP_PRIVATE``, which POSIX systems provide; tested on Linux): a write copies the touched
page into the writing process and never reaches the sender. Arrays under the threshold arrive
as ordinary writable copies either way.

Nothing is left in ``/dev/shm``: segments are unlinked by the receiver as soon as it opens
them; the sender unlinks those of tasks that were cancelled or failed before a worker took
them; and when a worker dies (``BrokenProcessPool``) the parent unlinks whatever that worker
had written for its result: after ``shutdown(wait=True)`` (or at exit), when every worker
has stopped, every segment left under the pool's name prefix (Linux lists them in
``/dev/shm``); for calls that went through shared memory also at once, when the future
fails. (Elsewhere every task's future unlinks its own at once, as such calls do here.) Every segment is registered with
``multiprocessing``'s resource tracker by its creator and unregistered by whoever unlinks it,
so the tracker stays silent, and removes segments at exit only if a process was killed halfway
through a hand-over.

How it is built: this class subclasses the standard executor and changes only what is
submitted. ``submit(fn, *args, **kwargs)`` submits a small ``_run_call`` task whose argument
packs ``(fn, args, kwargs)`` into shared memory when the pool's queue pickles it, and whose
worker-side result packs the return value the same way; unpickling, in the worker and in the
pool's result thread, maps the segments. ``map`` (the standard one, which calls ``submit``),
the pool's processes, queues, futures and error handling are the standard library's own.
Calls and results that hold no array of ``shm_threshold`` bytes or more (a few scalars,
strings, small arrays: looked at up to 32 objects deep) take the standard pickle path
unchanged. One more change: the standard ``submit`` writes a wake-up message to the pool's
manager thread for every task, which reads each one back; here a message is written only
when none is pending (see :class:`_CoalescedWakeup`), which takes a tenth or more off the
parent's time per task in a burst of small tasks.

Unlike the standard pool, arguments that fail to load in the worker (a missing module, a
failing ``__setstate__``) fail that task with their exception instead of breaking the pool.
A result that fails to load in the parent breaks the pool, as in the standard library.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import concurrent.futures.process
import itertools
import os
import sys
import threading
import traceback
import weakref
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from types import BuiltinFunctionType, FunctionType, ModuleType
from typing import Any, Callable, NamedTuple, Optional

import numpy as np

from . import _shm
from ._shm import DEFAULT_THRESHOLD

__all__ = ["DEFAULT_THRESHOLD", "BrokenProcessPool", "ProcessPoolExecutor"]

# Segment names: "/ndp" + 10 hex digits (one pool) + the task number in hex + "p"
# (parameters) or "r" (result) + the buffer's index in hex. "p" and "r" are not hex digits,
# so no two tasks' names can collide.
_PARAMS = "p"
_RESULT = "r"

# What the standard pickle path carries as well as ndpickle's: objects without array memory
# (bytes and bytearray are in-band under ndpickle too) and arrays under the threshold.
_SCALARS = frozenset({type(None), bool, int, float, complex, str, bytes, bytearray})
_CALLABLES = frozenset({FunctionType, BuiltinFunctionType, type})
_PLAIN_BUDGET = 32  # most objects looked at before taking the ndpickle path anyway


def _is_plain(objs: tuple[Any, ...], threshold: int) -> bool:
    """True if ``objs`` hold nothing but scalars, strings, bytes, functions and classes
    (pickled by reference), numpy arrays of plain data under ``threshold`` bytes, and
    tuples, lists, dicts and ``functools.partial`` objects of those, up to
    :data:`_PLAIN_BUDGET` objects: such calls and results gain nothing from shared memory
    and take the standard pickle path, unchanged."""
    stack = list(objs)
    budget = _PLAIN_BUDGET
    while stack:
        budget -= 1
        if budget < 0:
            return False
        x = stack.pop()
        t = type(x)
        if t in _SCALARS or t in _CALLABLES:
            if t is BuiltinFunctionType and not isinstance(x.__self__, (ModuleType, type(None))):
                stack.append(x.__self__)  # a bound method (array.sum): pickles its object
            continue
        if t is tuple or t is list:
            if len(x) > budget:
                return False
            stack.extend(x)
        elif t is np.ndarray:
            if x.nbytes >= threshold or x.dtype.hasobject:
                return False
        elif t is dict:
            if 2 * len(x) > budget:
                return False
            stack.extend(x.keys())
            stack.extend(x.values())
        elif t is partial:
            stack.append(x.func)
            stack.extend(x.args)
            stack.extend(x.keywords.values())
        else:
            return False
    return True


def _plain_fast(fn: Any, args: tuple[Any, ...], threshold: int) -> bool:
    """:func:`_is_plain` for the common small task, a function of a few scalars or small
    arrays, without building its stack: ``False`` sends the call to :func:`_is_plain`."""
    if type(fn) is not FunctionType or len(args) > 4:
        return False
    for x in args:
        t = type(x)
        if t is np.ndarray:
            if x.nbytes >= threshold or x.dtype.hasobject:
                return False
        elif t not in _SCALARS:
            return False
    return True


class _Unreceived:
    """Stands for a call whose arguments could not be loaded in the worker: running it
    raises the loading error (with its traceback, as the cause)."""

    __slots__ = ("error", "tb")

    def __init__(self, error: BaseException, tb: str) -> None:
        self.error = error
        self.tb = tb


class _RemoteLoadTraceback(Exception):
    """The traceback of a failure to load a task's arguments, as text."""

    def __str__(self) -> str:
        return str(self.args[0])


def _receive_call(data: bytes, segments: _shm.Segments, writable: bool) -> Any:
    """Unpickled in the worker: the call ``(fn, args, kwargs)``, or an
    :class:`_Unreceived` if it cannot be loaded (every segment is unlinked either way)."""
    try:
        return _shm.unpack(data, segments, writable)
    except Exception as e:
        return _Unreceived(e, "".join(traceback.format_exception(type(e), e, e.__traceback__)))


class _Call(_shm.Shipment):
    """A task's ``(fn, args, kwargs)``, packed when the pool's queue pickles it.

    Remembers the segments it created so that :meth:`close` (run when the task's future is
    done) unlinks those a worker never took; after :meth:`close` it refuses to be pickled,
    so a task the pool gave up on cannot create segments late."""

    __slots__ = ("prefix", "lock", "sent", "closed")

    def __init__(self, obj: Any, prefix: str, threshold: int, writable: bool) -> None:
        super().__init__(obj, threshold, writable)
        self.prefix = prefix
        self.lock = threading.Lock()
        self.sent: _shm.Segments = []
        self.closed = False

    def prefix_for(self) -> str:
        return self.prefix

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        with self.lock:
            if self.closed:
                raise RuntimeError("the task was finished before it was sent")
            data, segments = self.packed()
            self.sent = segments
        return _receive_call, (data, segments, self.writable)

    def close(self) -> None:
        """Unlinks the segments no worker took and forgets the call."""
        with self.lock:
            self.closed = True
            self.obj = None
            sent, self.sent = self.sent, []
        for name, _ in sent:
            _shm.unlink(name)


class _Result(_shm.Shipment):
    """A task's return value, packed (in the worker) into segments under the name prefix the
    parent chose for that task."""

    __slots__ = ("prefix",)

    def __init__(self, obj: Any, prefix: str, threshold: int, writable: bool) -> None:
        super().__init__(obj, threshold, writable)
        self.prefix = prefix

    def prefix_for(self) -> str:
        return self.prefix


class _Spec(NamedTuple):
    """What a pool's workers need to know to send results: set once per worker."""

    base: str  # the pool's segment name prefix
    threshold: int
    writable: bool


# In a worker: its pool's spec (set by _init_worker before the first task).
_worker_spec: Optional[_Spec] = None


def _init_worker(
    spec: _Spec, initializer: Optional[Callable[..., object]], initargs: tuple[Any, ...]
) -> None:
    """The initializer of every worker: records the pool's spec, then runs the user's."""
    global _worker_spec
    _worker_spec = spec
    if initializer is not None:
        initializer(*initargs)


def _ship_result(result: Any, task: int) -> Any:
    """What the worker returns for ``result``: itself if it is plain, else a :class:`_Result`."""
    spec = _worker_spec
    assert spec is not None, "not in a worker of ndpickle.futures.ProcessPoolExecutor"
    t = type(result)
    if t in _SCALARS:
        return result
    if t is np.ndarray:
        if result.nbytes < spec.threshold and not result.dtype.hasobject:
            return result
    elif _is_plain((result,), spec.threshold):
        return result
    return _Result(result, f"{spec.base}{task:x}{_RESULT}", spec.threshold, spec.writable)


def _run_call(call: Any, task: int) -> Any:
    """Runs in the worker: the call that arrived through shared memory."""
    if isinstance(call, _Unreceived):
        raise call.error from _RemoteLoadTraceback(call.tb)
    fn, args, kwargs = call
    return _ship_result(fn(*args, **kwargs), task)


def _run_plain(task: int, fn: Callable[..., Any], *args: Any) -> Any:
    """Runs in the worker: a call whose arguments took the standard pickle path."""
    return _ship_result(fn(*args), task)


class _Orphans:
    """Result-segment prefixes of tasks whose worker died, with how far each was swept:
    swept again once no worker can still be writing (after shutdown, at exit), together with
    everything left under the pool's prefix ``base`` where the system lists its segments.
    Holds no reference to the executor."""

    def __init__(self, base: str) -> None:
        self._lock = threading.Lock()
        self._next: dict[str, int] = {}
        self.base = base
        self.pid = os.getpid()  # the pool's process: a fork of it sweeps nothing

    def add(self, prefix: str) -> None:
        """Sweeps ``prefix`` now and remembers it for :meth:`sweep`."""
        with self._lock:
            start = self._next.get(prefix, 0)
            self._next[prefix] = start + _shm.sweep(prefix, start)

    def sweep(self) -> None:
        """Sweeps every remembered prefix from where it stopped, and forgets them."""
        with self._lock:
            pending, self._next = self._next, {}
        for prefix, start in pending.items():
            _shm.sweep(prefix, start)

    def sweep_pool(self) -> None:
        """Once no worker of the pool runs: :meth:`sweep`, then whatever else is left under
        the pool's prefix (results of workers that died during calls that took the plain
        path, which have no done-callback)."""
        self.sweep()
        _shm.sweep_listed(self.base)
        _UNSWEPT.discard(self)


# Pools not yet swept after their workers stopped: swept at exit, once the standard
# library has joined every pool's threads (its exit hook runs before atexit's).
_UNSWEPT: set[_Orphans] = set()


@atexit.register
def _sweep_at_exit() -> None:
    for orphans in list(_UNSWEPT):
        if orphans.pid == os.getpid():
            orphans.sweep_pool()


class _Finish:
    """Done-callback of a task's future: unlinks what the task left in shared memory."""

    __slots__ = ("call", "base", "task", "orphans")

    def __init__(self, call: Optional[_Call], base: str, task: int, orphans: _Orphans) -> None:
        self.call = call
        self.base = base
        self.task = task
        self.orphans = orphans

    def __call__(self, future: concurrent.futures.Future[Any]) -> None:
        call, self.call = self.call, None
        if call is not None:
            call.close()
        if not future.cancelled() and isinstance(future.exception(), BrokenProcessPool):
            self.orphans.add(f"{self.base}{self.task:x}{_RESULT}")


class _CoalescedWakeup(concurrent.futures.process._ThreadWakeup):
    """The standard pool's wake-up pipe of its manager thread, written only when the thread
    has not already been woken since it last drained the pipe.

    The standard ``submit`` writes a message into the pipe for every task, and the manager
    thread reads every one of them back (a poll and a read each), which in a burst of small
    tasks is much of the parent's time. A write is skipped only while an earlier one is
    still pending, i.e. before :meth:`clear` (run by the manager thread after every wait, just
    before it looks at the work queue and the shutdown flags again) has finished: everything
    the skipped caller did before calling :meth:`wakeup` is then seen by the manager thread
    anyway."""

    def __init__(self) -> None:
        super().__init__()
        self._woken = False

    def wakeup(self) -> None:
        if not self._woken:
            self._woken = True
            super().wakeup()

    def clear(self) -> None:
        super().clear()
        self._woken = False


def _coalesce_wakeups(pool: concurrent.futures.ProcessPoolExecutor) -> bool:
    """Gives the (not yet started) ``pool`` a :class:`_CoalescedWakeup` where the standard
    library's internals are the ones it was written for (checked by type and attribute; with
    the GIL): elsewhere the pool keeps its own. True if it did."""
    standard = concurrent.futures.process._ThreadWakeup
    old = getattr(pool, "_executor_manager_thread_wakeup", None)
    queue = getattr(pool, "_call_queue", None)
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    if (
        not gil
        or type(old) is not standard
        or getattr(queue, "thread_wakeup", None) is not old
        or getattr(pool, "_executor_manager_thread", True) is not None  # started: it holds old
    ):
        return False
    wakeup = _CoalescedWakeup()
    setattr(pool, "_executor_manager_thread_wakeup", wakeup)
    setattr(queue, "thread_wakeup", wakeup)
    getattr(old, "close")()
    return True


class ProcessPoolExecutor(concurrent.futures.ProcessPoolExecutor):
    """:class:`concurrent.futures.ProcessPoolExecutor` whose arguments and results are
    pickled by :class:`ndpickle.Pickler`, large buffers through shared memory.

    ``max_workers``, ``mp_context``, ``initializer``, ``initargs`` and
    ``max_tasks_per_child`` are the standard executor's (``initargs`` are pickled the
    standard way). ``shm_threshold``: out-of-band buffers of at least this many bytes
    (default 1 MiB) travel in shared memory, smaller ones in-band. ``writable``: arrays
    received over shared memory are read-only (default) or private copy-on-write mappings.
    """

    def __init__(
        self,
        max_workers: Optional[int] = None,
        mp_context: Any = None,
        initializer: Optional[Callable[..., object]] = None,
        initargs: tuple[Any, ...] = (),
        *,
        max_tasks_per_child: Optional[int] = None,
        shm_threshold: int = DEFAULT_THRESHOLD,
        writable: bool = False,
    ) -> None:
        threshold = _shm.check_threshold(shm_threshold)
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self._ndp_spec = _Spec("/ndp" + os.urandom(5).hex(), threshold, bool(writable))
        # max_tasks_per_child exists from Python 3.11 on: passed only when given.
        extra = {} if max_tasks_per_child is None else {"max_tasks_per_child": max_tasks_per_child}
        super().__init__(
            max_workers, mp_context, _init_worker, (self._ndp_spec, initializer, initargs), **extra
        )
        # Workers must report to this process's resource tracker; forked ones would start
        # their own if it were not running before the first fork.
        _shm.ensure_tracker()
        _coalesce_wakeups(self)
        self._ndp_tasks = itertools.count()
        self._ndp_orphans = _Orphans(self._ndp_spec.base)
        _UNSWEPT.add(self._ndp_orphans)
        weakref.finalize(self, self._ndp_orphans.sweep)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        """Schedules ``fn(*args, **kwargs)`` in a worker and returns its future."""
        task = next(self._ndp_tasks)
        spec = self._ndp_spec
        if not kwargs and (
            _plain_fast(fn, args, spec.threshold) or _is_plain((fn, *args), spec.threshold)
        ):
            future = super().submit(_run_plain, task, fn, *args)
            if not _shm.LISTABLE:
                future.add_done_callback(_Finish(None, spec.base, task, self._ndp_orphans))
            # Else no callback (a third of a small task's cost in the parent): what a worker
            # that died left for this task's result is swept with the pool's prefix.
            return future
        prefix = f"{spec.base}{task:x}{_PARAMS}"
        call = _Call((fn, args, kwargs), prefix, spec.threshold, spec.writable)
        future = super().submit(_run_call, call, task)
        future.add_done_callback(_Finish(call, spec.base, task, self._ndp_orphans))
        return future

    submit.__doc__ = concurrent.futures.ProcessPoolExecutor.submit.__doc__

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """The standard ``shutdown``; with ``wait``, once every worker has stopped, also
        unlinks what workers that died left behind."""
        super().shutdown(wait, cancel_futures=cancel_futures)
        if wait:
            self._ndp_orphans.sweep_pool()
