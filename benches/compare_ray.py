"""ndpickle.ray against stock Ray serialization, in one run on one local Ray, as one table.

    python benches/compare_ray.py [--repeat N] [--store-mib M]

Starts a local Ray (``num_cpus=2``, no dashboard, every process on this machine) and times,
for a 64 MiB float64 array ``a`` (2048 x 4096) and its views:

- ``ray.get(ray.put(x))`` in the driver;
- a task taking ``x`` as its argument (and returning its shape);
- a task returning ``x``, built from a 64 MiB object already in the store;

with Ray's own serialization ("stock") and after ``ndpickle.ray.register()`` ("ndp").
Workers start with ``register`` as the job's ``worker_process_setup_hook``; in stock mode
each task calls ``ndpickle.ray.unregister()`` first. The modes take turns case by case (and
which goes first alternates); times are the minimum over N repetitions
(``time.perf_counter``), cases under 50 ms in the warm-up round being timed 5 times per
repetition; between calls the script sleeps 50 ms, outside the timings, so that Ray has
freed the last objects.

"x/contig" is a case's time over the contiguous case's, same kind and mode (targets: <= 1.5
for the views, < 0.10 for the broadcast); "stock/ndp" the speed-up (target >= 0.95 on the
contiguous cases; the 800 B array shows the fixed cost of a put; "a again" repeats the
contiguous case, so its distance from the first shows the run's noise). "back" is what the driver
gets: its strides, and "view" when it is a zero-copy view of the object store.
"""

from __future__ import annotations

import argparse
import gc
import logging
import time
from typing import Any, Callable

import numpy as np
import ray

import ndpickle.ray

MIB = 1 << 20
CHEAP = 0.05  # seconds: cases faster than this in the warm-up round are timed INNER times
INNER = 5


@ray.remote
def _shape(x: np.ndarray, stock: bool) -> tuple[int, ...]:
    """Takes an array argument (deserialized in the worker), returns something small."""
    _mode(stock)
    return x.shape


@ray.remote
def _view(x: np.ndarray, which: str, stock: bool) -> np.ndarray:
    """Returns a view of an array argument (serialized in the worker)."""
    _mode(stock)
    return _views(x)[which]


def _views(a: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "a (contiguous)": a,
        "a[::-1]": a[::-1],
        "a[:, ::2]": a[:, ::2],
        "a.T[::-1]": a.T[::-1],
    }


def _broadcast(a: np.ndarray) -> np.ndarray:
    return np.broadcast_to(a[0, :4096], (4096, 4096))


def _mode(stock: bool) -> None:
    if stock:
        ndpickle.ray.unregister()
    else:
        ndpickle.ray.register()


def _time(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _layout(x: Any) -> str:
    if not isinstance(x, np.ndarray):
        return "-"
    owner = x.base
    while isinstance(owner, np.ndarray):
        owner = owner.base
    if isinstance(owner, memoryview):
        owner = owner.obj
    # Ray hands out object-store memory as ray._raylet.SubBuffer objects.
    view = "view" if type(owner).__name__ == "SubBuffer" else "copy"
    return f"{x.strides} {view}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--store-mib", type=int, default=768, help="object_store_memory in MiB")
    args = ap.parse_args()

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",  # every Ray process on loopback
        object_store_memory=args.store_mib * MIB,
        logging_level=logging.ERROR,
        runtime_env={"worker_process_setup_hook": ndpickle.ray.register},
    )
    try:
        run(args.repeat)
    finally:
        ray.shutdown()


def run(repeat: int) -> None:
    a = np.random.default_rng(0).random((2048, 4096))  # 64 MiB float64
    small = a[0, :100].copy()
    cases: list[tuple[str, str, Callable[[bool], Callable[[], Any]]]] = []
    driver_cases = [
        *_views(a).items(),
        ("broadcast 4096x4096 row", _broadcast(a)),
        ("800 B contiguous", small),
        ("a again (A/A: the noise)", a),
    ]
    for name, x in driver_cases:

        def put_get(stock: bool, x: np.ndarray = x) -> Callable[[], Any]:
            return lambda: ray.get(ray.put(x))

        cases.append(("put+get", name, put_get))
    for name, x in _views(a).items():

        def take(stock: bool, x: np.ndarray = x) -> Callable[[], Any]:
            return lambda: ray.get(_shape.remote(x, stock))

        cases.append(("task arg", name, take))
    base = {True: ray.put(a), False: ray.put(a)}  # one stored 64 MiB array per mode
    for name in _views(a):

        def give(stock: bool, name: str = name) -> Callable[[], Any]:
            return lambda: ray.get(_view.remote(base[stock], name, stock))

        cases.append(("task result", name, give))

    best: dict[tuple[str, str, bool], float] = {}
    warm: dict[tuple[str, str, bool], float] = {}
    back: dict[tuple[str, str, bool], str] = {}
    for rep in range(repeat + 1):  # the first round warms up workers and the store
        for i, (kind, name, make) in enumerate(cases):
            # The modes take turns call by call, and which goes first alternates, so that
            # what the machine does meanwhile falls on both alike.
            for stock in (True, False) if (rep + i) % 2 else (False, True):
                _mode(stock)
                key = (kind, name, stock)
                # Cheap cases are timed more often: the fixed costs of a put or a task on a
                # busy machine vary by milliseconds from call to call.
                calls = 1 if rep == 0 or warm[key] > CHEAP else INNER
                for _ in range(calls):
                    dt, out = _time(make(stock))
                    back[key] = _layout(out)
                    del out
                    if rep == 0:
                        warm[key] = dt
                    else:
                        best[key] = min(best.get(key, float("inf")), dt)
                    time.sleep(0.05)  # lets Ray free the last objects outside the timings
    ndpickle.ray.unregister()

    print(f"Ray {ray.__version__}, numpy {np.__version__}, a: 64 MiB float64 {a.shape}, "
          f"min of {repeat} repetitions (x{INNER} for cases under {CHEAP * 1e3:.0f} ms)")
    header = (f"{'':12} {'case':24} {'stock ms':>9} {'ndp ms':>8} {'stock/ndp':>9} "
              f"{'x/contig stock':>14} {'x/contig ndp':>12}  back (stock | ndpickle)")
    print(header)
    print("-" * len(header))
    for kind, name, _ in cases:
        s, n = best[(kind, name, True)], best[(kind, name, False)]
        cs = best[(kind, "a (contiguous)", True)]
        cn = best[(kind, "a (contiguous)", False)]
        print(f"{kind:12} {name:24} {s * 1e3:9.2f} {n * 1e3:8.2f} {s / n:9.2f} "
              f"{s / cs:14.2f} {n / cn:12.2f}  "
              f"{back[(kind, name, True)]} | {back[(kind, name, False)]}")


if __name__ == "__main__":
    main()
