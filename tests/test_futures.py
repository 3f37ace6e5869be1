"""ndpickle.futures.ProcessPoolExecutor and ndpickle.multiprocessing: real worker processes
(``fork`` and ``spawn``), arrays through POSIX shared memory, nothing left in ``/dev/shm``.

Other programs on the machine may use ``/dev/shm`` while these tests run, so the listing
checks (after every test, and for the whole module) look at the names this package creates
(``/dev/shm/ndp*``); a leak of ours shows there whoever else is running.
"""

from __future__ import annotations

import concurrent.futures
import mmap
import multiprocessing
import os
import pickle
import resource
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import BrokenExecutor, CancelledError
from pathlib import Path

import numpy as np
import pytest

import ndpickle.multiprocessing as ndmp
from ndpickle import _shm, futures
from ndpickle.futures import BrokenProcessPool, ProcessPoolExecutor

SHM = "/dev/shm"
# Small, so that arrays of a few KiB travel through shared memory and the tests stay fast.
THRESHOLD = 4096
CONTEXTS = ["fork", "spawn"]

pytestmark = pytest.mark.skipif(not os.path.isdir(SHM), reason="needs /dev/shm (Linux)")


def ours() -> set[str]:
    """The shared memory segments of this package that exist now."""
    return {n for n in os.listdir(SHM) if n.startswith("ndp")}


@pytest.fixture(scope="module", autouse=True)
def shm_listing_unchanged_by_module():
    before = set(os.listdir(SHM))
    yield
    after = set(os.listdir(SHM))
    assert {n for n in after - before if n.startswith("ndp")} == set(), sorted(after - before)


@pytest.fixture(autouse=True)
def shm_listing_unchanged_by_test():
    before = ours()
    yield
    assert ours() - before == set()


@pytest.fixture(scope="module", params=CONTEXTS)
def pool(request):
    with ProcessPoolExecutor(2, multiprocessing.get_context(request.param), shm_threshold=THRESHOLD) as p:
        yield p


# -- functions run by the workers ---------------------------------------------------------


def mapping_of(a: np.ndarray):
    """The mmap an array views (through its bases), or None."""
    b = a
    while isinstance(b, np.ndarray):
        b = b.base
    if isinstance(b, memoryview):
        b = b.obj
    return b if isinstance(b, mmap.mmap) else None


def facts(payload: dict) -> dict:
    """Per array: (read-only, length of the mapping it views or None)."""
    out = {}
    for k, a in payload.items():
        m = mapping_of(a)
        out[k] = (not a.flags.writeable, None if m is None else len(m))
    return out


def inspect(payload: dict, dtype: np.dtype) -> tuple:
    """What the worker saw, the arguments echoed back, and the same layouts made here."""
    return facts(payload), payload, layouts(dtype)


def total(a: np.ndarray) -> float:
    return float(a.sum())


def pair(a: np.ndarray, b: np.ndarray) -> tuple:
    return a.shape, float(b.sum())


def make(n: int, value: float = 1.5) -> np.ndarray:
    return np.full(n, value)


def fail(a: np.ndarray) -> None:
    raise ValueError(f"bad shape {a.shape}")


def slow(a: np.ndarray, seconds: float) -> tuple:
    time.sleep(seconds)
    return a.shape


def die(a: np.ndarray) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillsWhenPickled:
    """Kills the process that pickles it (a worker dying while writing its result)."""

    def __reduce__(self):
        os.kill(os.getpid(), signal.SIGKILL)


def die_while_returning(n: int) -> list:
    return [np.ones(n), KillsWhenPickled()]


def unpicklable_result(a: np.ndarray) -> tuple:
    return a, lambda: 0


def explode_outside(pid: int):
    if os.getpid() != pid:
        raise LookupError("cannot be loaded in a worker")
    return LoadsBadly()


class LoadsBadly:
    """Pickles anywhere, loads only in the process that made it."""

    def __reduce__(self):
        return explode_outside, (os.getpid(),)


def add_one(a: np.ndarray) -> np.ndarray:
    a += 1
    return a


def writable_result(n: int) -> tuple:
    return (np.arange(n, dtype=np.float64),)


_STATE = {}


def remember(value: int) -> None:
    _STATE["value"] = value


def recall(a: np.ndarray) -> tuple:
    return _STATE.get("value"), os.getpid(), float(a.sum())


# -- dtype families x layouts ------------------------------------------------------------

DTYPES = [
    "|b1", "|i1", "|u1", "<i2", ">i2", "<u4", "<i8", ">i8", "<f2", "<f4", ">f8", "<f8",
    "<c8", ">c16", "<M8[ns]", ">m8[s]", "|S5", "<U3", ">U2", "|V3",
    [("a", "<i4"), ("b", ">f8")],
    {"names": ["x", "y"], "formats": ["<u2", "<f4"], "offsets": [0, 4], "itemsize": 12},
    [("p", "<f4", (2,)), ("q", "|u1")],
]


def all_dtypes() -> list[np.dtype]:
    out = [np.dtype(d) for d in DTYPES]
    out.append(np.dtype("i4, i1", align=True))
    out.append(np.dtype(np.longdouble))
    try:
        import ml_dtypes

        out += [np.dtype(ml_dtypes.bfloat16), np.dtype(ml_dtypes.float8_e4m3fn)]
    except ImportError:  # pragma: no cover
        pass
    return out


def filled(shape: tuple, dtype: np.dtype, seed: int) -> np.ndarray:
    """Random bytes as an array (every bit pattern, NaNs included: compared bytewise)."""
    n = int(np.prod(shape))
    raw = bytearray(np.random.default_rng(seed).bytes(n * dtype.itemsize))
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


# Layouts whose memory (at least THRESHOLD bytes) travels in shared memory, and the others.
# A sparse view is packed in-band, unless it lies in an array of 64 KiB or more sent in the
# same pickle (ndpickle then sends a view of that array: it views the same segment).
MAPPED = ("C", "F", "strided", "reversed", "transposed", "broadcast", "readonly")
IN_BAND = ("small", "zero-d", "empty")
VIEW_REFERENCE_MIN = 64 << 10


def layouts(dtype: np.dtype) -> dict:
    base = filled((64, 96), dtype, 1)
    row = filled((6144,), dtype, 2)
    ro = filled((64, 96), dtype, 3)
    ro.flags.writeable = False
    return {
        "C": base,
        "F": np.asfortranarray(filled((64, 96), dtype, 4)),
        "strided": base[:, ::2],
        "reversed": base[::-1, ::-1],
        "transposed": filled((96, 64), dtype, 5).T,
        "broadcast": np.broadcast_to(row, (64, 6144)),
        "readonly": ro,
        "sparse": base[::9, ::13],
        "small": base[:2, :3].copy(),
        "zero-d": base[:1, :1].copy().reshape(()),
        "empty": base[:0],
    }


def element_bytes(x: np.ndarray):
    """Element contents, field by field (padding bytes of structured dtypes ignored)."""
    if x.dtype.names:
        return tuple(element_bytes(x[n]) for n in x.dtype.names)
    return np.ascontiguousarray(x).tobytes()


def same(a: np.ndarray, b: np.ndarray) -> None:
    assert type(b) is np.ndarray
    assert (b.dtype, b.shape) == (a.dtype, a.shape)
    assert element_bytes(a) == element_bytes(b)


@pytest.mark.parametrize("dtype", all_dtypes(), ids=str)
def test_every_layout_as_argument_and_result(pool, dtype):
    sent = layouts(dtype)
    seen, echoed, made = pool.submit(inspect, sent, dtype).result(timeout=120)
    expected = layouts(dtype)
    via_base = sent["C"].nbytes >= VIEW_REFERENCE_MIN
    for name in MAPPED + IN_BAND + ("sparse",):
        same(sent[name], echoed[name])
        same(expected[name], made[name])
        readonly, mapped = seen[name]
        shared = name in MAPPED or (name == "sparse" and via_base)
        for got in (echoed[name], made[name]):
            m = mapping_of(got)
            if shared:
                assert m is not None and not got.flags.writeable, name
            else:
                assert m is None, name
        if shared:
            assert readonly and mapped is not None, (name, seen[name])
        else:
            assert mapped is None, (name, seen[name])
    if via_base:
        assert np.shares_memory(echoed["sparse"], echoed["C"])
    item = dtype.itemsize
    # ndpickle's layouts: a broadcast travels as its one row, views as their span.
    assert seen["broadcast"][1] == 6144 * item
    assert seen["reversed"][1] == 64 * 96 * item
    assert seen["strided"][1] <= 64 * 96 * item
    assert len(mapping_of(made["broadcast"])) == 6144 * item
    assert made["small"].flags.writeable, "small arrays: ordinary writable copies"


def test_views_of_one_array_share_its_segment(pool):
    a = filled((256, 256), np.dtype("<f8"), 9)
    seen, echoed, _ = pool.submit(inspect, {"a": a, "T": a.T, "cols": a[:, ::2]}, a.dtype).result()
    assert seen["a"][1] == seen["T"][1] == seen["cols"][1] == a.nbytes
    assert np.shares_memory(echoed["a"], echoed["T"]) and np.shares_memory(echoed["a"], echoed["cols"])
    np.testing.assert_array_equal(echoed["cols"], a[:, ::2])


def test_small_calls_take_the_standard_path(pool):
    # Nothing at the threshold: plain pickle both ways, arrays arrive writable as usual.
    args, kwargs = pool.submit(echo_args, np.arange(3.0), (1, "two", b"3")).result()
    assert args[0].flags.writeable and mapping_of(args[0]) is None
    assert args[1] == (1, "two", b"3") and kwargs == {}
    big = np.arange(1024.0)
    (got,), kw = pool.submit(echo_args, big, key=np.arange(2)).result()
    assert mapping_of(got) is not None and not got.flags.writeable
    np.testing.assert_array_equal(kw["key"], np.arange(2))


def echo_args(*args, **kwargs):
    return args, kwargs


def test_which_calls_count_as_plain():
    from ndpickle.futures import _is_plain

    big, small = np.ones(1 << 17), np.ones(3)
    assert _is_plain((total, 1, "s", b"b", None, (2.0, [3j]), {"k": small}), 1 << 20)
    assert not _is_plain((total, big), 1 << 20)
    assert not _is_plain((big.sum,), 1 << 20), "a bound method pickles its array"
    assert _is_plain((len, print), 1 << 20)
    assert not _is_plain((total, list(range(100))), 1 << 20), "too long to look through"
    assert not _is_plain((total, np.array([None, big], dtype=object)), 1 << 20)
    assert not _is_plain((total, np.ones(3).view(np.matrix)), 1 << 20)
    assert not _is_plain((total, memoryview(b"x")), 1 << 20)


def test_the_fast_plain_check_agrees():
    from ndpickle.futures import _is_plain, _plain_fast

    big, small = np.ones(1 << 17), np.ones(3)
    cases = [
        (total, (1, "s", b"b", None, 2.0)),
        (total, (small,)),
        (total, (big,)),
        (total, (np.array([None], dtype=object),)),
        (total, (np.zeros(2, [("a", "O")]),)),
        (total, (np.ones(3).view(np.matrix),)),
        (total, (memoryview(b"x"),)),
        (total, ((1, 2),)),
        (big.sum, ()),
        (len, (small,)),
        (total, (1, 2, 3, 4, 5)),
    ]
    for fn, args in cases:
        if _plain_fast(fn, args, 1 << 20):
            assert _is_plain((fn, *args), 1 << 20), (fn, args)
    assert _plain_fast(total, (1, small), 1 << 20)
    assert not _plain_fast(total, (big,), 1 << 20)


def test_manager_wakeups_are_coalesced():
    w = futures._CoalescedWakeup()
    try:
        w.wakeup()
        w.wakeup()
        w._reader.recv_bytes()
        assert not w._reader.poll(), "the second wakeup wrote again while the first was pending"
        w.clear()
        w.wakeup()
        assert w._reader.poll(), "a wakeup after clear() must write"
        w.clear()
        assert not w._reader.poll()
    finally:
        w.close()
    with ProcessPoolExecutor(1) as p:
        assert type(p._executor_manager_thread_wakeup) is futures._CoalescedWakeup
        assert p._call_queue.thread_wakeup is p._executor_manager_thread_wakeup
        p.submit(abs, -1).result()
        assert not futures._coalesce_wakeups(p), "a started pool keeps its wakeup"
    stock = concurrent.futures.ProcessPoolExecutor(1)
    try:
        assert futures._coalesce_wakeups(stock)
        assert not futures._coalesce_wakeups(stock), "only the standard wakeup is replaced"
    finally:
        stock.shutdown()


def wakeup_stress(threshold: int) -> None:
    """Single tasks after idle gaps of varying length, then bursts from four threads mixing
    plain and shared-memory calls, with threads switching between almost any two bytecodes."""
    import random
    import threading

    sys.setswitchinterval(1e-6)
    rng = random.Random(5)
    big = np.ones(8192)
    errors: list[BaseException] = []
    with ProcessPoolExecutor(2, multiprocessing.get_context("fork"), shm_threshold=threshold) as p:
        for _ in range(150):
            assert p.submit(abs, -3).result(timeout=10) == 3
            time.sleep(rng.random() * 0.002)

        def burst() -> None:
            try:
                fs = [p.submit(total, big) if i % 97 == 0 else p.submit(abs, -i) for i in range(1500)]
                for i, f in enumerate(fs):
                    assert f.result(timeout=60) == (8192.0 if i % 97 == 0 else i), i
            except BaseException as e:  # reported by the main thread
                errors.append(e)

        threads = [threading.Thread(target=burst) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == [], errors


def test_no_wakeup_is_lost(tmp_path):
    # A lost wakeup leaves a submitted task (or the shutdown) unnoticed by the manager thread,
    # which then waits forever: run in a process of its own, so that a hang fails the test.
    script = tmp_path / "stress.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_futures import wakeup_stress\n"
        "if __name__ == '__main__':\n"
        f"    wakeup_stress({THRESHOLD})\n"
        "    print('done')\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the script and its pool's workers
        proc.communicate()
        pytest.fail("the pool hung: a wakeup was lost")
    assert proc.returncode == 0 and out.strip() == "done", err


def test_exception_propagates_with_traceback(pool):
    f = pool.submit(fail, np.ones((32, 32)))
    with pytest.raises(ValueError, match=r"bad shape \(32, 32\)") as info:
        f.result()
    remote = str(info.value.__cause__)
    assert "in fail" in remote and 'raise ValueError(f"bad shape' in remote
    assert pool.submit(total, np.ones(1024)).result() == 1024.0


def test_arguments_that_fail_to_load_fail_the_task_not_the_pool(pool):
    f = pool.submit(pair, np.ones(4096), LoadsBadly())
    with pytest.raises(LookupError, match="cannot be loaded") as info:
        f.result()
    assert "explode_outside" in str(info.value.__cause__)
    assert pool.submit(total, np.ones(4096)).result() == 4096.0


def test_unpicklable_argument_and_result(pool):
    with pytest.raises(Exception, match="pickle") as info:
        pool.submit(pair, np.ones(4096), lambda: 0).result()
    assert not isinstance(info.value, BrokenExecutor)
    with pytest.raises(Exception, match="pickle") as info:
        pool.submit(unpicklable_result, np.ones(4096)).result()
    assert not isinstance(info.value, BrokenExecutor)
    assert pool.submit(total, np.ones(4096)).result() == 4096.0


@pytest.mark.parametrize("chunksize", [1, 3])
def test_map(pool, chunksize):
    arrays = [np.full(n, float(i)) for i, n in enumerate([10, 5000, 1, 70000, 600, 3000, 0])]
    assert list(pool.map(total, arrays, chunksize=chunksize)) == [float(a.sum()) for a in arrays]
    got = list(pool.map(pair, arrays, arrays[::-1], chunksize=chunksize))
    assert got == [(a.shape, float(b.sum())) for a, b in zip(arrays, arrays[::-1])]


def test_map_timeout(pool):
    it = pool.map(slow, [np.ones(8192)], [2.0], timeout=0.05)
    with pytest.raises(concurrent.futures.TimeoutError):
        list(it)


def test_results_outlive_the_pool():
    with ProcessPoolExecutor(1, shm_threshold=THRESHOLD) as p:
        r = p.submit(make, 1 << 20, 2.0).result()
        assert mapping_of(r) is not None
        assert ours() == set(), "unlinked as soon as mapped"
    assert float(r.sum()) == 2.0 * (1 << 20)
    with pytest.raises(ValueError, match="read-only"):
        r[0] = 1.0


def test_writable_copy_on_write():
    a = np.zeros(8192)
    with ProcessPoolExecutor(1, shm_threshold=THRESHOLD, writable=True) as p:
        b = p.submit(add_one, a).result()
        (c,) = p.submit(writable_result, 8192).result()
    assert mapping_of(b) is not None and b.flags.writeable
    np.testing.assert_array_equal(b, 1.0)
    np.testing.assert_array_equal(a, 0.0)
    c[:] = -1.0  # a private copy: only this process sees it
    assert float(c.sum()) == -8192.0


def test_read_only_by_default(pool):
    with pytest.raises(ValueError, match="read-only"):
        pool.submit(add_one, np.zeros(8192)).result()


@pytest.mark.parametrize("method", CONTEXTS)
def test_killed_worker_breaks_the_pool_and_leaves_nothing(method):
    big = np.ones(1 << 15)
    with ProcessPoolExecutor(2, multiprocessing.get_context(method), shm_threshold=THRESHOLD) as p:
        assert p.submit(total, big).result() == float(1 << 15)
        # Two long tasks hold both workers, so the victim cannot run (and break the pool,
        # after which submit itself raises) before every task below is submitted.
        others = [p.submit(slow, big, 2.0) for _ in range(2)]
        victim = p.submit(die, big)
        others += [p.submit(slow, big, 0.2) for _ in range(4)]
        with pytest.raises(BrokenProcessPool):
            victim.result(timeout=120)
        for f in others:
            try:
                assert f.result(timeout=120) == big.shape
            except BrokenProcessPool:
                pass
        assert any(isinstance(f.exception(), BrokenProcessPool) for f in others)
        with pytest.raises(BrokenProcessPool):
            p.submit(total, big)


def test_worker_killed_while_writing_its_result():
    with ProcessPoolExecutor(1, multiprocessing.get_context("fork"), shm_threshold=THRESHOLD) as p:
        with pytest.raises(BrokenProcessPool):
            p.submit(die_while_returning, 1 << 15).result(timeout=120)


def test_result_segments_of_a_dead_worker_do_exist():
    """The test above can fail: without the parent's sweep, the dead worker's result
    segment stays in /dev/shm."""

    class NoSweep:
        def add(self, prefix):
            self.prefix = prefix

        def sweep(self):
            pass

        def sweep_pool(self):
            pass

    p = ProcessPoolExecutor(1, multiprocessing.get_context("fork"), shm_threshold=THRESHOLD)
    real, p._ndp_orphans = p._ndp_orphans, NoSweep()
    futures._UNSWEPT.discard(real)
    try:
        with pytest.raises(BrokenProcessPool):
            p.submit(die_while_returning, 1 << 15).result(timeout=120)
    finally:
        p.shutdown()
    left = ours()
    # Task 0's result, buffer 0: "<pool prefix>0r0".
    assert left == {p._ndp_spec.base[1:] + "0r0"}, left
    assert _shm.sweep_listed(p._ndp_spec.base) == 1


def test_plain_calls_of_a_dead_worker_are_swept_at_exit(tmp_path):
    """A worker that dies writing the result of a plain call (no done-callback) and a pool
    that is never shut down: the exit hook sweeps the pool's prefix."""
    script = tmp_path / "leave.py"
    script.write_text(
        "import multiprocessing, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from concurrent.futures.process import BrokenProcessPool\n"
        "from ndpickle.futures import ProcessPoolExecutor\n"
        "from test_futures import die_while_returning\n"
        "if __name__ == '__main__':\n"
        f"    p = ProcessPoolExecutor(1, multiprocessing.get_context('fork'), shm_threshold={THRESHOLD})\n"
        "    try:\n"
        "        p.submit(die_while_returning, 1 << 15).result(timeout=120)\n"
        "    except BrokenProcessPool:\n"
        "        print(p._ndp_spec.base)\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=True
    )
    base = out.stdout.strip()
    assert base.startswith("/ndp"), out
    assert not {n for n in os.listdir("/dev/shm") if n.startswith(base[1:])}
    assert "leaked" not in out.stderr, out.stderr


def test_cancel_pending_tasks():
    big = np.ones(8192)
    with ProcessPoolExecutor(1, multiprocessing.get_context("fork"), shm_threshold=THRESHOLD) as p:
        first = p.submit(slow, big, 1.0)
        rest = [p.submit(total, big) for _ in range(8)]
        cancelled = [f.cancel() for f in rest]
        assert cancelled[-1], "the last task was still pending"
        assert first.result() == big.shape
        for f, c in zip(rest, cancelled):
            if c:
                with pytest.raises(CancelledError):
                    f.result()
            else:
                assert f.result() == 8192.0


def test_shutdown_cancel_futures():
    big = np.ones(8192)
    p = ProcessPoolExecutor(1, multiprocessing.get_context("fork"), shm_threshold=THRESHOLD)
    first = p.submit(slow, big, 1.0)
    rest = [p.submit(total, big) for _ in range(8)]
    p.shutdown(wait=True, cancel_futures=True)
    assert first.result() == big.shape
    assert rest[-1].cancelled()
    assert all(f.cancelled() or f.result() == 8192.0 for f in rest)


def test_initializer_and_max_tasks_per_child():
    big = np.ones(8192)
    # max_tasks_per_child makes the standard executor default to "spawn".
    with ProcessPoolExecutor(
        1, initializer=remember, initargs=(7,), max_tasks_per_child=1, shm_threshold=THRESHOLD
    ) as p:
        got = [p.submit(recall, big).result() for _ in range(2)]
    assert {g[0] for g in got} == {7} and {g[2] for g in got} == {8192.0}
    assert len({g[1] for g in got}) == 2, "a new worker for each task"


def test_constructor_checks():
    with pytest.raises(ValueError, match="shm_threshold"):
        ProcessPoolExecutor(1, shm_threshold=-1)
    with pytest.raises(TypeError, match="shm_threshold"):
        ProcessPoolExecutor(1, shm_threshold=1.5)
    with pytest.raises(ValueError, match="max_workers"):
        ProcessPoolExecutor(0)
    with pytest.raises(TypeError, match="initializer"):
        ProcessPoolExecutor(1, initializer=5)
    with pytest.raises(ValueError, match="fork"):
        ProcessPoolExecutor(1, multiprocessing.get_context("fork"), max_tasks_per_child=1)


def failing_initializer() -> None:
    raise RuntimeError("no")


def test_failing_initializer_breaks_the_pool():
    with ProcessPoolExecutor(1, multiprocessing.get_context("fork"), initializer=failing_initializer) as p:
        with pytest.raises(BrokenProcessPool):
            p.submit(total, np.ones(8192)).result(timeout=120)


def test_submit_after_shutdown():
    p = ProcessPoolExecutor(1)
    p.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        p.submit(total, np.ones(2))


# -- the transport's error paths -------------------------------------------------------


def limit_file_size(limit: int) -> None:
    """Files (shared memory segments included) of this process may not grow past
    ``limit``: writes fail with EFBIG instead of killing it with SIGXFSZ."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def test_result_that_cannot_be_written_fails_its_task():
    # A worker whose segments cannot grow past 64 KiB: writing a 1 MiB result fails.
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(1, ctx, limit_file_size, (1 << 16,), shm_threshold=THRESHOLD) as p:
        with pytest.raises(OSError) as info:
            p.submit(make, 1 << 17).result()
        assert info.value.errno == 27  # EFBIG
        assert float(p.submit(make, 1 << 12).result().sum()) == 1.5 * (1 << 12)


def pack_with_small_files(limit: int) -> None:
    limit_file_size(limit)
    try:
        _shm.pack([np.ones(1 << 10), np.ones(1 << 17)], "/ndptest" + os.urandom(4).hex() + "_", 4096)
    except OSError:
        os._exit(0 if not ours() else 3)
    os._exit(2)


def test_argument_that_cannot_be_written_leaves_nothing():
    child = multiprocessing.get_context("fork").Process(target=pack_with_small_files, args=(1 << 16,))
    child.start()
    child.join(60)
    assert child.exitcode == 0, "pack raised OSError and unlinked the segment it had made"


def test_unpack_errors_unlink_everything():
    data, segments = _shm.pack([np.ones(1 << 10), np.ones(1 << 11)], "/ndptest" + os.urandom(4).hex() + "_", 4096)
    assert [n[1:] for n, _ in segments] <= sorted(ours())
    (first, n0), second = segments
    with pytest.raises(pickle.UnpicklingError, match="holds 8192 bytes, expected 8193"):
        _shm.unpack(data, [(first, n0 + 1), second])
    assert ours() == set(), "the failing segment and the ones after it are unlinked"
    with pytest.raises(FileNotFoundError):
        _shm.unpack(data, segments)
    with pytest.raises(TypeError, match="shm_threshold"):
        _shm.check_threshold(True)


def test_readme_example(tmp_path):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    code = readme.split("### Process pools", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "example.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(2048,) False"


# -- ndpickle.multiprocessing ------------------------------------------------------------


def double_shared(a: np.ndarray):
    return ndmp.Shared(a * 2, threshold=THRESHOLD), mapping_of(a) is not None


def pipe_child(conn) -> None:
    ndmp.send(conn, conn.recv(), threshold=THRESHOLD)  # echo


def test_multiprocessing_pool():
    a = np.arange(8192.0)
    with multiprocessing.get_context("fork").Pool(1) as mp_pool:
        doubled, mapped = mp_pool.apply(double_shared, (ndmp.Shared(a, threshold=THRESHOLD),))
    assert mapped, "the worker's argument viewed shared memory"
    assert mapping_of(doubled) is not None
    np.testing.assert_array_equal(doubled, a * 2)


def test_multiprocessing_pipe_and_queue():
    ctx = multiprocessing.get_context("fork")
    left, right = ctx.Pipe()
    child = ctx.Process(target=pipe_child, args=(right,))
    child.start()
    x = {"x": np.arange(4096.0)[::-1], "y": np.broadcast_to(np.arange(1024.0), (50, 1024))}
    ndmp.send(left, x, threshold=THRESHOLD)
    back = left.recv()
    child.join(60)
    for k in x:
        np.testing.assert_array_equal(back[k], x[k])
        assert mapping_of(back[k]) is not None
    q = ctx.Queue()
    q.put(ndmp.Shared(np.ones(4096), threshold=THRESHOLD))
    got = q.get(timeout=60)
    assert mapping_of(got) is not None and float(got.sum()) == 4096.0
    q.close()
    q.join_thread()
    with pytest.raises(ValueError):
        ndmp.Shared(1, threshold=-5)


def test_shared_inside_a_pool_argument(pool):
    # A Shared pickled inside a call being pickled: a nested pickler, its own segments.
    assert pool.submit(total, ndmp.Shared(np.ones(8192), threshold=THRESHOLD)).result() == 8192.0


# -- the resource tracker ----------------------------------------------------------------


SCRIPT = textwrap.dedent(
    """
    import faulthandler, multiprocessing, os, signal, sys
    import numpy as np
    # A hang shows every thread's stack on stderr (and fails the test) instead of a timeout.
    faulthandler.dump_traceback_later(240, exit=True)
    from ndpickle.futures import BrokenProcessPool, ProcessPoolExecutor
    sys.path.insert(0, {tests!r})
    import test_futures as t

    if __name__ == "__main__":
        for method in ("fork", "spawn"):
            ctx = multiprocessing.get_context(method)
            with ProcessPoolExecutor(2, ctx, shm_threshold=4096) as p:
                assert p.submit(t.total, np.ones(1 << 16)).result() == 65536.0
                r = p.submit(t.make, 1 << 16).result()
                try:
                    p.submit(t.fail, np.ones(1 << 16)).result()
                except ValueError:
                    pass
                # Slow tasks first, so that they are in flight when the worker dies (a submit
                # after the pool broke would raise BrokenProcessPool itself).
                fs = [p.submit(t.slow, np.ones(1 << 16), 0.1) for _ in range(4)]
                fs.append(p.submit(t.die, np.ones(1 << 16)))
                for f in fs:
                    f.exception()
                assert isinstance(fs[-1].exception(), BrokenProcessPool)
            if method == "fork":
                with ProcessPoolExecutor(1, ctx, shm_threshold=4096) as p:
                    f = p.submit(t.die_while_returning, 1 << 16)
                    assert isinstance(f.exception(), BrokenProcessPool)
            del r
        print("done")
    """
)


def test_resource_tracker_stays_silent(tmp_path):
    """A fresh interpreter (whose resource tracker reports at exit, on the stderr we read)
    runs round trips, a failing task, a killed worker and a worker killed while writing its
    result, under fork and spawn: the tracker has nothing to warn about."""
    script = tmp_path / "scenario.py"
    script.write_text(SCRIPT.format(tests=os.path.dirname(os.path.abspath(__file__))))
    before = ours()
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "done"
    assert "resource_tracker" not in out.stderr and "leaked" not in out.stderr, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    assert ours() - before == set()
