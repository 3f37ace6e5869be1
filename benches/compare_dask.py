"""Dask end to end: a stock cluster and a cluster with ``--preload ndpickle.dask``, side by side.

Two ``LocalCluster``s, each with 2 worker processes talking TCP on loopback (one thread per
worker), run interleaved (the order alternates per round); the table gives the median over
the rounds of each measurement, and the ratio stock / preloaded (> 1: ndpickle faster).

- worker→worker: a task on worker A builds a view of 256 MiB float64 (``--mb``), a task on
  worker B consumes it (returns its strides and a sample checksum, checked against A's);
  timed from submitting the consumer to its result, so the time is Dask's fetch of the
  array: serialize on A, TCP, deserialize on B. Also the CPU seconds A and B spent meanwhile
  (``getrusage``, user + system: socket copies included), steadier than wall time on a
  shared machine.
- spill / unspill: compressible float data (float32 values stored as float64, the
  ``f64_sine_f32`` dataset of ``compare_codecs.py``) put in a worker's own ``SpillBuffer``
  (a worker with a memory limit), evicted to disk and read back: Dask's spill code with the
  worker's config (``spill-compression: auto``). File sizes and times.
- client scatter / gather (``direct=True``) of the same views, and the CPU seconds of the
  client process and the worker meanwhile. The client process switches ndpickle's dispatch
  on for the preloaded cluster and off for the stock one.

Each timed step is preceded by :func:`prime_memory`: on virtual machines that hand memory
back to the host (a balloon driver's free page reporting, as on the VM the README's figures
come from), the first touch of memory freed more than a few seconds earlier costs ten times
a touch of memory freed just before (numpy's 256 MiB strided copy: 0.75 s against 0.075 s
in the same process), so whichever side happened to allocate in a cold phase lost, by up to
5x, in either direction. Touching and freeing the step's worth of memory first, outside the
timing, gives both sides warm pages.

``--crossover`` instead measures, on the preloaded cluster, worker→worker transfers of views
of decreasing density sent as their span versus packed, which is how ndpickle's
``NETWORK_SPAN_THRESHOLD`` was chosen.

    python benches/compare_dask.py --rounds 9
    python benches/compare_dask.py --crossover --rounds 3
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from typing import Any, Callable

import numpy as np

# No ndpickle import at the top: Dask's worker processes are spawned and re-import this
# script, and the stock cluster's workers must stay stock.

#: MiB primed before a step, per MiB of the step's array: a packed copy on the sender, the
#: received frames, and room to spare.
PRIME_FACTOR = 3

KINDS = ["contiguous", "sparse strided", "broadcast", "reversed", "transposed"]


def make(kind: str, mb: int, seed: int) -> np.ndarray:
    """A float64 view of ``mb`` MiB of elements (the broadcast: of one 64 KiB row)."""
    rows, cols = 4096, (mb << 20) // (4096 * 8)
    rng = np.random.default_rng(seed)
    if kind == "contiguous":
        return rng.random((rows, cols))
    if kind == "sparse strided":  # every other column of a base twice as wide
        return rng.random((rows, 2 * cols))[:, ::2]
    if kind == "broadcast":
        return np.broadcast_to(rng.random(cols), (rows, cols))
    if kind == "reversed":
        return rng.random((rows, cols))[::-1, ::-1]
    if kind == "transposed":  # an axis permutation: neither C- nor F-contiguous
        return rng.random((64, rows // 64, cols)).transpose(1, 0, 2)
    if kind.startswith("density "):  # crossover: a column block or every k-th column
        style, frac = kind.split()[1], float(kind.split()[2])
        if style == "step":
            step = round(1 / frac)
            return rng.random((rows, cols * step))[:, ::step]
        wide = round(cols / frac)
        return rng.random((rows, wide))[:, :cols]
    raise ValueError(kind)


def describe(x: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...], float]:
    """Shape, strides and a checksum of a sample of ``x`` (cheap next to the transfer)."""
    idx = tuple(slice(None, None, max(1, n // 64)) for n in x.shape)
    return x.shape, x.strides, float(np.ascontiguousarray(x[idx], dtype=np.float64).sum())


def prime_memory(mb: int) -> None:
    """Touches and frees ``mb`` MiB, so the next allocations of any process on the machine
    get pages the host has not reclaimed (see the module docs)."""
    block = np.ones((mb << 20) // 8)
    del block


def median_of(samples: list[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


class Side:
    """One cluster with its client, and whether ndpickle's switch is on for it."""

    def __init__(self, name: str, preload: bool, memory_limit: str) -> None:
        from distributed import Client, LocalCluster

        self.name, self.preload = name, preload
        self.cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            protocol="tcp://",
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.WARNING,
            memory_limit=memory_limit,
            preload=["ndpickle.dask"] if preload else [],
        )
        self.client = Client(self.cluster, set_as_default=False)
        self.a, self.b = sorted(self.client.scheduler_info()["workers"])
        loaded = self.client.run(lambda: "ndpickle.dask" in sys.modules)
        assert all(v == preload for v in loaded.values()), (name, loaded)

    def switch(self) -> None:
        """The client process's dispatch: ndpickle's for the preloaded side, Dask's else."""
        import ndpickle.dask

        if self.preload:
            ndpickle.dask.install()
        else:
            ndpickle.dask.uninstall()

    def close(self) -> None:
        self.client.close()
        self.cluster.close()

    def worker_to_worker(self, kind: str, mb: int, seed: int) -> tuple[float, float, Any]:
        """(wall seconds, CPU seconds of A and B, strides on B) of fetching A's array on B."""
        from distributed import wait

        c = self.client
        src = c.submit(make, kind, mb, seed, workers=[self.a], pure=False)
        with c.as_current():  # wait() takes the current client: this side's own
            wait(src)
        prime_memory(PRIME_FACTOR * mb)
        cpu0 = c.run(cpu_seconds, workers=[self.a, self.b])
        t0 = time.perf_counter()
        got = c.submit(describe, src, workers=[self.b], allow_other_workers=False).result()
        dt = time.perf_counter() - t0
        cpu1 = c.run(cpu_seconds, workers=[self.a, self.b])
        cpu = sum(cpu1[w] - cpu0[w] for w in cpu0)
        want = c.submit(describe, src, workers=[self.a], allow_other_workers=False).result()
        assert got[0] == want[0] and got[2] == want[2], (self.name, kind, got, want)
        del src
        return dt, cpu, got[1]

    def scatter_gather(self, x: np.ndarray) -> tuple[float, float, float, float]:
        """Wall seconds of scatter and gather, and CPU seconds of the client process and
        worker A during each."""
        c = self.client
        prime_memory(PRIME_FACTOR * (x.nbytes >> 20))
        w0, t0 = c.run(cpu_seconds, workers=[self.a])[self.a], cpu_seconds()
        s0 = time.perf_counter()
        fut = c.scatter(x, workers=[self.a], direct=True, hash=False)
        s1 = time.perf_counter()
        w1, t1 = c.run(cpu_seconds, workers=[self.a])[self.a], cpu_seconds()
        prime_memory(PRIME_FACTOR * (x.nbytes >> 20))
        w2, t2 = c.run(cpu_seconds, workers=[self.a])[self.a], cpu_seconds()
        g0 = time.perf_counter()
        back = c.gather(fut, direct=True)
        g1 = time.perf_counter()
        w3, t3 = c.run(cpu_seconds, workers=[self.a])[self.a], cpu_seconds()
        assert describe(back)[::2] == describe(x)[::2], (self.name, "scatter/gather")
        del fut
        return s1 - s0, g1 - g0, (w1 - w0) + (t1 - t0), (w3 - w2) + (t3 - t2)

    def spill(self, mb: int) -> tuple[float, float, int]:
        prime_memory(PRIME_FACTOR * mb)
        out = self.client.run(spill_round_trip, mb, workers=[self.a])
        return out[self.a]


def cpu_seconds() -> float:
    """User + system CPU seconds of this process (a worker's, when run there)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def sine_f32(n: int) -> np.ndarray:
    """float32 values stored as float64 (``compare_codecs.py``'s ``f64_sine_f32``)."""
    i = np.arange(n, dtype=np.float64)
    return (100.0 * np.sin(i * 1e-3)).astype(np.float32).astype(np.float64)


def spill_round_trip(mb: int, dask_worker: Any) -> tuple[float, float, int]:
    """Runs on a worker: puts ``mb`` MiB of compressible floats in its ``SpillBuffer``,
    evicts them to disk, reads them back; (spill seconds, unspill seconds, file bytes)."""
    cache = dask_worker.__dict__.setdefault("_bench_spill_data", {})
    if mb not in cache:  # made once per worker process
        cache[mb] = sine_f32((mb << 20) // 8).reshape(4096, -1)
    x = cache[mb]
    buf = dask_worker.data
    key = f"spill-{time.monotonic_ns()}"
    buf[key] = x
    before = buf.spilled_total.disk
    t0 = time.perf_counter()
    while key not in buf.slow:
        if buf.evict() < 0:
            raise RuntimeError("nothing to evict")
    t1 = time.perf_counter()
    size = buf.spilled_total.disk - before
    y = buf[key]
    t2 = time.perf_counter()
    assert np.array_equal(x, y)
    del buf[key], y
    return t1 - t0, t2 - t1, size


def run_main(args: argparse.Namespace) -> None:
    import ndpickle.dask

    sides = [
        Side("dask", False, args.memory_limit),
        Side("ndpickle", True, args.memory_limit),
    ]
    try:
        times: dict[tuple[str, str], dict[str, list[float]]] = {}
        strides: dict[tuple[str, str], Any] = {}
        sizes: dict[str, int] = {}

        def record(row: str, col: str, side: Side, value: float) -> None:
            times.setdefault((row, col), {}).setdefault(side.name, []).append(value)

        local = {k: make(k, args.mb, 99) for k in KINDS}
        for r in range(args.rounds):
            order = sides if r % 2 == 0 else sides[::-1]
            for kind in KINDS:
                for side in order:
                    dt, cpu, st = side.worker_to_worker(kind, args.mb, r)
                    record(kind, "worker→worker", side, dt)
                    record(kind, "worker→worker, CPU s of A+B", side, cpu)
                    strides[(kind, side.name)] = st
            for side in order:
                spill, unspill, size = side.spill(args.mb)
                record("compressible floats", "spill", side, spill)
                record("compressible floats", "unspill", side, unspill)
                sizes[side.name] = size
            for kind in KINDS:
                for side in order:
                    side.switch()
                    s, g, cs, cg = side.scatter_gather(local[kind])
                    record(kind, "scatter", side, s)
                    record(kind, "scatter, CPU s of client+A", side, cs)
                    record(kind, "gather", side, g)
                    record(kind, "gather, CPU s of client+A", side, cg)
            last = {k: {n: round(v[-1], 3) for n, v in per.items()} for k, per in times.items()}
            print(f"round {r + 1}/{args.rounds}: {last}", file=sys.stderr, flush=True)
        ndpickle.dask.install()
        print(
            f"{args.mb} MiB float64, 2 worker processes per cluster, TCP loopback, "
            f"median of {args.rounds} interleaved rounds (seconds)\n"
        )
        print("| case | path | Dask's own | ndpickle preload | ratio |")
        print("|---|---|---|---|---|")
        for (row, col), per in times.items():
            d, n = median_of(per["dask"]), median_of(per["ndpickle"])
            print(f"| {row} | {col} | {d:.3f} | {n:.3f} | {d / n:.2f}× |")
        print()
        print(
            f"spill file of {args.mb} MiB compressible floats: Dask's own "
            f"{sizes['dask'] / 2**20:.1f} MiB, ndpickle {sizes['ndpickle'] / 2**20:.1f} MiB"
        )
        print("\nstrides on worker B (Dask's own / ndpickle):")
        for kind in KINDS:
            print(f"  {kind}: {strides[(kind, 'dask')]} / {strides[(kind, 'ndpickle')]}")
        st = sides[1].client.run(ndpickle.dask.stats)
        print(f"\nndpickle.dask.stats() on the preloaded workers: {st}")
        print(f"ndpickle.dask.stats() in this client: {ndpickle.dask.stats()}")
    finally:
        for side in sides:
            side.close()


def set_threshold(value: float) -> None:
    import ndpickle.dask

    ndpickle.dask.install(network_span_threshold=value)


def crossover_main(args: argparse.Namespace) -> None:
    side = Side("ndpickle", True, args.memory_limit)
    fracs = [("block", f) for f in (0.9, 0.8, 0.75, 0.6, 0.5)]
    fracs += [("step", f) for f in (0.5, 0.33)]
    layouts = {"span": 1e-9, "pack": 1.0}
    try:
        wall: dict[tuple[str, str], list[float]] = {}
        cpu: dict[tuple[str, str], list[float]] = {}
        for r in range(args.rounds):
            for style, frac in fracs:
                kind = f"density {style} {frac}"
                for name in (list(layouts) if r % 2 == 0 else list(layouts)[::-1]):
                    side.client.run(set_threshold, layouts[name])
                    dt, c, _ = side.worker_to_worker(kind, args.mb, r)
                    wall.setdefault((kind, name), []).append(dt)
                    cpu.setdefault((kind, name), []).append(c)
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        print(f"{args.mb} MiB of float64 elements, worker→worker, median of {args.rounds}\n")
        print("| view | density | span s | pack s | pack / span | span CPU s | pack CPU s "
              "| pack / span (CPU) |")
        print("|---|---|---|---|---|---|---|---|")
        for style, frac in fracs:
            kind = f"density {style} {frac}"
            s, p = median_of(wall[(kind, "span")]), median_of(wall[(kind, "pack")])
            cs, cp = median_of(cpu[(kind, "span")]), median_of(cpu[(kind, "pack")])
            print(f"| {style} | {frac} | {s:.3f} | {p:.3f} | {p / s:.2f} | {cs:.3f} | {cp:.3f} "
                  f"| {cp / cs:.2f} |")
    finally:
        side.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=256, help="MiB of elements per array")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--memory-limit", default="2GiB", help="per worker")
    ap.add_argument("--crossover", action="store_true", help="measure span vs pack instead")
    args = ap.parse_args()
    logging.getLogger("distributed").setLevel(logging.WARNING)
    (crossover_main if args.crossover else run_main)(args)


if __name__ == "__main__":
    main()
