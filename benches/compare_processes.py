"""Process pools: ndpickle.futures.ProcessPoolExecutor against its peers, in one run, as one table.

    python benches/compare_processes.py [--repeat N] [--small-repeat S] [--mib M] [--tasks T] [--no-ray]

Cases (each with 2 worker processes, already started and warmed up):

- ``argument``: a task receiving an M MiB float64 array (default 256) and returning its sum;
- ``result``: a task returning an M MiB float64 array; the parent then reads one element of
  every page (so that lazily mapped results pay for their page faults);
- ``T small tasks`` (default 10 000) through ``submit``, with an int argument, and with an
  8-element float64 array argument.

Peers: the standard ``concurrent.futures.ProcessPoolExecutor`` (same start method), joblib
(loky backend, auto-memmapping of large arguments, its default) and, if ``ray`` is
importable, Ray (``ray.put`` of the argument + a task; a task returning the array, read with
``ray.get``), started on loopback with ``ray.init(num_cpus=2, include_dashboard=False)`` (and a 1.5 GiB
object store).
Times are the minimum of N runs (``time.perf_counter``; 9 for the small tasks, whose times
vary more from run to run), taken in turns so that load on the machine hits every peer alike;
ratio = peer time / ndpickle time (> 1: ndpickle faster).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import time
from typing import Any, Callable, Optional

import numpy as np

from ndpickle.futures import ProcessPoolExecutor as ShmPool

WORKERS = 2


def total(a: np.ndarray) -> float:
    """The task of the argument case."""
    return float(a.sum())


def make(n: int) -> np.ndarray:
    """The task of the result case."""
    return np.full(n, 1.5)


def small(x: Any) -> Any:
    """The task of the small-task cases."""
    return x


def touch(r: np.ndarray) -> float:
    """Reads one float64 of every 4 KiB page."""
    return float(r[::512].sum())


def warm(pool: concurrent.futures.Executor) -> None:
    """Starts every worker and imports numpy there."""
    list(pool.map(total, [np.ones(4)] * (4 * WORKERS)))


class Fresh:
    """A new argument array before every run (made outside the timing): each run sends new
    data, as real tasks do. (Mutating one array in place is not enough: joblib then sends
    the memmap it made for that array before, with the old contents.)"""

    def __init__(self, n: int) -> None:
        self.base = np.random.default_rng(0).random(n)
        self.data = self.base
        self.runs = 0
        self.expected = 0.0

    def next(self) -> None:
        self.runs += 1
        self.data = None  # type: ignore[assignment]  # free the last one first
        self.data = self.base.copy()
        self.data[0] = self.runs
        self.expected = float(self.data.sum())


def time_pools(
    pools: dict[str, concurrent.futures.Executor],
    runs: dict[str, Callable[[concurrent.futures.Executor], Any]],
    repeat: int,
    prepare: Callable[[], None] = lambda: None,
) -> dict[tuple[str, str], float]:
    """Best time of each case on each pool, running the pools in turns (in alternating
    order, so that neither always runs first); ``prepare`` runs before each, untimed."""
    best: dict[tuple[str, str], float] = {}
    for case, fn in runs.items():
        for r in range(repeat):
            turn = list(pools.items())
            for name, pool in turn if r % 2 == 0 else turn[::-1]:
                prepare()
                t = time.perf_counter()
                fn(pool)
                dt = time.perf_counter() - t
                key = (case, name)
                best[key] = min(best.get(key, dt), dt)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--small-repeat", type=int, default=9, help="runs of the small-task cases")
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()

    n = args.mib * (1 << 20) // 8
    fresh = Fresh(n)
    tiny = np.arange(8.0)
    ctx = multiprocessing.get_context()

    def argument(pool: concurrent.futures.Executor) -> None:
        got = pool.submit(total, fresh.data).result()
        assert abs(got - fresh.expected) <= 1e-9 * fresh.expected

    def result(pool: concurrent.futures.Executor) -> None:
        r = pool.submit(make, n).result()
        assert r.shape == (n,) and touch(r) == 1.5 * (n // 512)

    def small_ints(pool: concurrent.futures.Executor) -> None:
        fs = [pool.submit(small, i) for i in range(args.tasks)]
        assert [f.result() for f in fs][-1] == args.tasks - 1

    def small_arrays(pool: concurrent.futures.Executor) -> None:
        fs = [pool.submit(small, tiny) for _ in range(args.tasks)]
        assert all(f.result().shape == (8,) for f in fs)

    rows: list[tuple[str, str, float, Optional[float]]] = []
    with concurrent.futures.ProcessPoolExecutor(WORKERS, ctx) as stock, ShmPool(WORKERS, ctx) as ours:
        pools: dict[str, concurrent.futures.Executor] = {"ndpickle.futures": ours, "stock": stock}
        for p in pools.values():
            warm(p)
        big = time_pools(pools, {"argument": argument, "result": result}, args.repeat, fresh.next)
        smalls = time_pools(
            pools,
            {f"{args.tasks} small tasks (int)": small_ints, f"{args.tasks} small tasks (8 float64)": small_arrays},
            args.small_repeat,
        )
    times = {**big, **smalls}

    # joblib: loky workers, large arguments auto-memmapped (max_nbytes="1M", its default).
    import joblib
    from joblib import Parallel, delayed

    def best_of(fn: Callable[[], Any]) -> float:
        best = float("inf")
        for _ in range(args.repeat):
            fresh.next()
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        return best

    with Parallel(n_jobs=WORKERS, backend="loky") as par:
        par(delayed(total)(np.ones(4)) for _ in range(4 * WORKERS))

        def joblib_argument() -> None:
            got = par([delayed(total)(fresh.data)])[0]
            assert abs(got - fresh.expected) <= 1e-9 * fresh.expected

        times[("argument", f"joblib {joblib.__version__} (loky)")] = best_of(joblib_argument)
        times[("result", f"joblib {joblib.__version__} (loky)")] = best_of(
            lambda: touch(par([delayed(make)(n)])[0])
        )

    if not args.no_ray:
        try:
            import ray
        except ImportError:
            ray = None
        if ray is not None:
            ray.init(
                num_cpus=WORKERS,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                object_store_memory=3 << 29,  # 1.5 GiB: room for the 256 MiB objects
                log_to_driver=False,
            )
            try:
                rtotal = ray.remote(total)
                rmake = ray.remote(make)
                ray.get([rtotal.remote(np.ones(4)) for _ in range(4 * WORKERS)])

                def ray_argument() -> None:
                    got = ray.get(rtotal.remote(ray.put(fresh.data)))
                    assert abs(got - fresh.expected) <= 1e-9 * fresh.expected

                times[("argument", f"ray {ray.__version__}")] = best_of(ray_argument)
                times[("result", f"ray {ray.__version__}")] = best_of(
                    lambda: touch(ray.get(rmake.remote(n)))
                )
            finally:
                ray.shutdown()

    cases = list(dict.fromkeys(c for c, _ in times))
    for case in cases:
        mine = times[(case, "ndpickle.futures")]
        for (c, peer), t in times.items():
            if c == case:
                rows.append((case, peer, t, None if peer == "ndpickle.futures" else t / mine))

    print(f"{args.mib} MiB float64, {WORKERS} workers, start method {ctx.get_start_method()}, "
          f"best of {args.repeat} ({args.small_repeat} for small tasks), {os.cpu_count()} cores")
    print()
    print("| case | pool | time (s) | ratio (peer / ndpickle) |")
    print("|---|---|---:|---:|")
    for case, peer, t, ratio in rows:
        print(f"| {case} | {peer} | {t:.3f} | {'' if ratio is None else f'{ratio:.2f}x'} |")


if __name__ == "__main__":
    main()
