"""``ndpickle.ray`` (python/ndpickle/ray.py) on a real local Ray: one instance for the module,
started here (``ray.init(num_cpus=2, include_dashboard=False, ...)``, every process on this
machine) and shut down at the end.

Workers register through ``runtime_env={"worker_process_setup_hook": ndpickle.ray.register}``;
the driver calls ``ndpickle.ray.register()`` itself. Every dtype family x layout goes through
``ray.put``/``ray.get``, task arguments, task results and actor methods; the layouts the values
come back in (strides kept, zero strides kept, read-only views of the object store) are what
stock Ray does not give, and one actor that unregisters shows the difference.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import time
import warnings
from typing import Any, Callable

import numpy as np
import pytest

import ray
import ray.cloudpickle

import ndpickle
import ndpickle.ray

MIB = 1 << 20


# --- arrays -----------------------------------------------------------------------------

STRUCT = np.dtype([("id", "<i4"), ("x", "<f8"), ("tag", "S3")])
ALIGNED = np.dtype([("a", "u1"), ("b", "<i8")], align=True)


def _dtypes() -> dict[str, np.dtype]:
    out = {
        "bool": np.dtype("?"),
        "int8": np.dtype("i1"),
        "int16": np.dtype("<i2"),
        "int64": np.dtype("<i8"),
        "uint32": np.dtype("<u4"),
        "float16": np.dtype("<f2"),
        "float32": np.dtype("<f4"),
        "float64 big-endian": np.dtype(">f8"),
        "complex128": np.dtype("<c16"),
        "datetime64[ns]": np.dtype("<M8[ns]"),
        "timedelta64[s]": np.dtype("<m8[s]"),
        "bytes S5": np.dtype("S5"),
        "unicode U3": np.dtype("<U3"),
        "structured": STRUCT,
        "aligned struct": ALIGNED,
    }
    import ml_dtypes

    out["bfloat16"] = np.dtype(ml_dtypes.bfloat16)
    return out


DTYPES = _dtypes()


def base(dtype: np.dtype, shape: tuple[int, int] = (24, 40)) -> np.ndarray:
    """A deterministic C-contiguous array of ``dtype`` with distinct elements."""
    n = shape[0] * shape[1]
    if dtype.names:
        out = np.zeros(n, dtype)
        for i, name in enumerate(dtype.names):
            out[name] = (np.arange(n) * (i + 3) % 251).astype(dtype[name])
        return out.reshape(shape)
    if dtype == np.dtype("?"):
        return (np.arange(n) % 3 == 0).reshape(shape)
    return (np.arange(n) % 997).astype(dtype).reshape(shape)


# name -> (view of a 2-d base, whether ndpickle keeps its strides).
LAYOUTS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], bool]] = {
    "C": (lambda a: a, True),
    "F": (lambda a: np.asfortranarray(a), True),
    "reversed": (lambda a: a[::-1], True),
    "every other column": (lambda a: a[:, ::2], True),
    "transposed reversed": (lambda a: a.T[::-1], True),
    "broadcast row": (lambda a: np.broadcast_to(a[0], (50, a.shape[1])), True),
    "sparse (packed)": (lambda a: a[::5, ::7], False),
    "0-d": (lambda a: a[1, 2, ...].copy(), True),
    "empty": (lambda a: a[:0], True),
}


def arrays(dtype: np.dtype) -> dict[str, np.ndarray]:
    """Every layout of a small base, plus a reversed view of a base large enough (> Ray's
    100 KiB inline limit) to go through the shared-memory object store."""
    small = base(dtype)
    out = {name: view(small) for name, (view, _) in LAYOUTS.items()}
    big = base(dtype, (256, 1 + (1 << 18) // (256 * dtype.itemsize)))
    out["large reversed"] = big[::-1]
    out["large every other column"] = big[:, ::2]
    return out


def expected_strides(name: str, a: np.ndarray) -> tuple[int, ...]:
    keeps = LAYOUTS[name][1] if name in LAYOUTS else True
    return a.strides if keeps else np.empty(a.shape, a.dtype).strides


def content(x: np.ndarray) -> Any:
    """The bytes of ``x`` in C order, field by field for structured dtypes (their padding
    bytes are undefined: numpy's copies leave them as they find them)."""
    if x.dtype.names:
        return tuple(content(x[name]) for name in x.dtype.names)
    return x.tobytes()


def check(name: str, expected: np.ndarray, got: Any) -> None:
    assert type(got) is np.ndarray, name
    assert got.dtype == expected.dtype, name
    assert got.shape == expected.shape, name
    assert content(got) == content(expected), name
    assert got.strides == expected_strides(name, expected), name
    assert not got.flags.writeable, f"{name}: Ray returns read-only views of its store"


def describe(x: np.ndarray) -> tuple[np.dtype, tuple[int, ...], tuple[int, ...], bool, Any]:
    """What a worker saw: dtype, shape, strides, writeable, the content."""
    return (x.dtype, x.shape, x.strides, bool(x.flags.writeable), content(x))


def store_owner(x: np.ndarray) -> Any:
    """The object at the end of ``x``'s base chain (Ray's object-store buffer for values
    that are views of the store)."""
    owner = x.base
    while isinstance(owner, np.ndarray):
        owner = owner.base
    return owner.obj if isinstance(owner, memoryview) else owner


# --- the Ray instance ---------------------------------------------------------------------


def _children() -> set[int]:
    """Processes whose parent is this one (Ray's GCS, raylet, workers...)."""
    me, out = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me and fields[0] != "Z":
                out.add(int(entry))
    return out


@pytest.fixture(scope="module")
def cluster():
    # The tasks and functions of this module run in the workers too: ship them by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    before = _children()
    ndpickle.ray.register()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",  # every Ray process on loopback
        object_store_memory=256 * MIB,
        logging_level=logging.ERROR,
        runtime_env={"worker_process_setup_hook": ndpickle.ray.register},
    )
    started = _children() - before
    assert started, "ray.init started no processes"
    try:
        yield
    finally:
        ray.shutdown()
        ndpickle.ray.unregister()
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert not ray.is_initialized()
    deadline = time.monotonic() + 30
    while started & _children() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not started & _children(), "Ray processes left after ray.shutdown()"


@pytest.fixture(autouse=True)
def _keep_registration():
    """Each test leaves this process's registration as it found it (tests switch it)."""
    table = ray.cloudpickle.CloudPickler.dispatch
    before = table.get(np.ndarray)
    yield
    if before is None:
        table.pop(np.ndarray, None)
    else:
        table[np.ndarray] = before


@ray.remote
def describe_args(*xs: np.ndarray) -> list[tuple]:
    return [describe(x) for x in xs]


@ray.remote
def make(dtype_name: str) -> dict[str, np.ndarray]:
    return arrays(DTYPES[dtype_name])


@ray.remote
def reverse(x: np.ndarray) -> np.ndarray:
    return x[::-1]


@ray.remote
def broadcast_row(n: int) -> np.ndarray:
    return np.broadcast_to(np.arange(4096.0), (n, 4096))


@ray.remote
class Echo:
    def __init__(self, setup: Callable[[], None] | None = None) -> None:
        # A setup hook of this actor's own (the job's ran already, as the process started).
        if setup is not None:
            setup()

    def echo(self, *xs: np.ndarray) -> tuple[np.ndarray, ...]:
        return xs

    def describe(self, *xs: np.ndarray) -> list[tuple]:
        return [describe(x) for x in xs]

    def make(self, dtype_name: str) -> dict[str, np.ndarray]:
        return arrays(DTYPES[dtype_name])

    def reverse(self, x: np.ndarray) -> np.ndarray:
        return x[::-1]


@pytest.fixture(scope="module")
def actor(cluster):
    a = Echo.remote()
    yield a
    ray.kill(a)


# --- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_put_get(cluster, dtype_name):
    xs = arrays(DTYPES[dtype_name])
    refs = {name: ray.put(x) for name, x in xs.items()}
    for name, x in xs.items():
        check(name, x, ray.get(refs[name]))
    # Nested in one object: the same layouts.
    got = ray.get(ray.put(xs))
    for name, x in xs.items():
        check(name, x, got[name])


@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_task_arguments(cluster, dtype_name):
    xs = arrays(DTYPES[dtype_name])
    seen = ray.get(describe_args.remote(*xs.values()))
    for (name, x), (dtype, shape, strides, writeable, data) in zip(xs.items(), seen):
        assert (dtype, shape, data) == (x.dtype, x.shape, content(x)), name
        assert strides == expected_strides(name, x), name
        assert not writeable, name


@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_task_results(cluster, dtype_name):
    got = ray.get(make.remote(dtype_name))
    for name, x in arrays(DTYPES[dtype_name]).items():
        check(name, x, got[name])


@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_actor_methods(cluster, actor, dtype_name):
    xs = arrays(DTYPES[dtype_name])
    for name, x, got in zip(xs, xs.values(), ray.get(actor.echo.remote(*xs.values()))):
        check(name, x, got)
    seen = ray.get(actor.describe.remote(*xs.values()))
    for (name, x), (dtype, shape, strides, _, data) in zip(xs.items(), seen):
        assert (dtype, shape, strides, data) == (
            x.dtype, x.shape, expected_strides(name, x), content(x)
        ), name
    got = ray.get(actor.make.remote(dtype_name))
    for name, x in xs.items():
        check(name, x, got[name])


def test_arrays_captured_by_remote_functions(cluster):
    """Ray pickles functions without a buffer_callback: a captured view goes in-band."""
    view = base(np.dtype("<f8"), (64, 64))[::-1, ::2]

    @ray.remote
    def captured() -> np.ndarray:
        return view

    got = ray.get(captured.remote())
    check("every other column", view, got)


def test_numpy_keeps_what_ndpickle_leaves(cluster, actor):
    """Object arrays, subclasses and zero-sized dtypes keep numpy's own pickling."""
    with warnings.catch_warnings():  # np.matrix is pending deprecation, and still pickled
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        matrix = np.asmatrix(np.arange(4).reshape(2, 2))
    values = [
        np.array([1, "two", None, [3]], dtype=object),
        np.array([[1, 2], [3, 4]], dtype=object).T[::-1],
        np.ma.masked_array(np.arange(6.0), mask=[0, 1, 0, 0, 1, 0]),
        matrix,
        np.zeros(3, dtype="V0"),
    ]
    for got in (ray.get(ray.put(values)), ray.get(actor.echo.remote(*values))):
        for want, back in zip(values, got):
            assert type(back) is type(want) and back.dtype == want.dtype
            assert back.shape == want.shape
            if want.dtype == object:
                assert back.tolist() == want.tolist()
            else:
                np.testing.assert_array_equal(back, want)
        np.testing.assert_array_equal(got[2].mask, values[2].mask)


# --- zero copy ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_view",
    [
        lambda a: a,
        lambda a: a[::-1],
        lambda a: a[:, ::2],
        lambda a: a.T[::-1],
        lambda a: np.broadcast_to(a[0], (4096, a.shape[1])),
    ],
    ids=["contiguous", "reversed", "every other column", "transposed reversed", "broadcast"],
)
def test_get_is_a_view_of_the_store(cluster, make_view):
    a = np.random.default_rng(3).random((512, 512))  # 2 MiB: in the shared-memory store
    x = make_view(a)
    ref = ray.put(x)
    first, second = ray.get(ref), ray.get(ref)
    assert np.shares_memory(first, second)
    assert first.strides == x.strides and second.strides == x.strides
    assert type(store_owner(first)).__name__ == "SubBuffer"  # Ray's object-store memory
    assert not first.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        first[(0,) * first.ndim] = 1.0
    np.testing.assert_array_equal(first, x)


def test_broadcast_stores_one_row(cluster):
    row = np.arange(1 << 15, dtype=np.float64)  # 256 KiB: above Ray's inline limit
    x = np.broadcast_to(row, (512, row.size))  # 128 MiB if materialised
    ref = ray.put(x)
    size = ray.experimental.get_object_locations([ref])[ref]["object_size"]
    assert size < 2 * row.nbytes
    got = ray.get(ref)
    assert got.strides == (0, 8)
    np.testing.assert_array_equal(got[-1], row)


def test_workers_register_through_the_setup_hook(cluster, actor):
    """A worker returning a view of its argument: the driver gets the view's layout, zero
    stride and negative stride kept, as a view of the store. Only a worker where ``register``
    ran writes that; the stock actor below (which unregisters) returns numpy's copy."""
    a = np.random.default_rng(5).random((256, 256))
    ref = ray.put(a)
    for got in (ray.get(reverse.remote(ref)), ray.get(actor.reverse.remote(ref))):
        assert got.strides == (-a.strides[0], a.strides[1])
        assert type(store_owner(got)).__name__ == "SubBuffer"
        np.testing.assert_array_equal(got, a[::-1])
    b = ray.get(broadcast_row.remote(1000))
    assert b.strides == (0, 8) and b.shape == (1000, 4096)

    stock = Echo.remote(ndpickle.ray.unregister)
    try:
        got = ray.get(stock.reverse.remote(ref))
        assert got.flags.c_contiguous and got.strides == a.strides  # numpy's in-band copy
        np.testing.assert_array_equal(got, a[::-1])
    finally:
        ray.kill(stock)


def test_register_is_idempotent_and_unregister_restores_stock_ray(cluster):
    a = np.random.default_rng(6).random((256, 256))[::-1]
    ndpickle.ray.register()
    ndpickle.ray.register()
    assert ray.get(ray.put(a)).strides == a.strides
    ndpickle.ray.unregister()
    try:
        stock = ray.get(ray.put(a))
        assert stock.flags.c_contiguous and stock.strides != a.strides
        np.testing.assert_array_equal(stock, a)
    finally:
        ndpickle.ray.register()
    assert ray.get(ray.put(a)).strides == a.strides


# --- compression --------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["auto", "lz4", "zstd"])
def test_compression(cluster, codec):
    labels = np.repeat(np.arange(1 << 12, dtype=np.int64), 64)  # 2 MiB, compresses well
    noise = np.random.default_rng(8).random(1 << 16)  # 512 KiB, does not
    ndpickle.ray.register(compression=codec)
    try:
        ref = ray.put(labels[::-1])
        size = ray.experimental.get_object_locations([ref])[ref]["object_size"]
        assert size < labels.nbytes // 4
        got = ray.get(ref)
        assert got.strides == (-8,) and not got.flags.writeable
        np.testing.assert_array_equal(got, labels[::-1])
        if codec == "auto":  # incompressible data stays a view of the store
            back = ray.get(ray.put(noise))
            assert type(store_owner(back)).__name__ == "SubBuffer"
            np.testing.assert_array_equal(back, noise)
    finally:
        ndpickle.ray.register()


def test_compressed_results_from_workers(cluster):
    """``setup_hook(compression=...)``, pickled and run in a worker as Ray runs hooks:
    that worker's results land in the store compressed."""
    labels = np.repeat(np.arange(1 << 12, dtype=np.int64), 64)
    hook = ndpickle.ray.setup_hook(compression="zstd")
    assert hook.__name__  # Ray names the hook in the runtime env by it
    zipped = Echo.remote(hook)
    try:
        ref = ray.put(labels)  # the driver does not compress
        sizes = ray.experimental.get_object_locations([ref])
        assert sizes[ref]["object_size"] > labels.nbytes
        out = zipped.reverse.remote(ref)
        got = ray.get(out)
        assert ray.experimental.get_object_locations([out])[out]["object_size"] < labels.nbytes // 4
        assert got.strides == (-8,) and not got.flags.writeable
        np.testing.assert_array_equal(got, labels[::-1])
    finally:
        ray.kill(zipped)


# --- errors -------------------------------------------------------------------------------


def test_bad_options_raise():
    with pytest.raises(ValueError):
        ndpickle.ray.register(compression="gzip")
    with pytest.raises(ValueError):
        ndpickle.ray.setup_hook(compression="brotli")


def test_unknown_form_raises():
    with pytest.raises(pickle.UnpicklingError, match="unknown array form"):
        ndpickle.ray._deserialize((99,))


def test_a_ray_that_keeps_buffers_in_band_fails_loudly(monkeypatch):
    """If registration stops reaching Ray's pickler, register() says so instead of leaving
    every array to be copied in-band."""
    ndpickle.ray.unregister()
    monkeypatch.setattr(ray.util, "register_serializer", lambda *a, **k: None)
    with pytest.raises(RuntimeError, match="out-of-band"):
        ndpickle.ray.register()


def test_clear_error_without_ray():
    code = "import sys; sys.modules['ray'] = None; import ndpickle.ray"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0
    assert "ndpickle.ray needs Ray" in out.stderr
    assert "pip install 'ndpickle[ray]'" in out.stderr
    # ndpickle itself does not need Ray.
    ok = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['ray'] = None; import ndpickle"],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
