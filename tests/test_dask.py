"""The ``"ndpickle"`` Dask serialization family (python/ndpickle/dask.py), through Dask's
own protocol code and through a real scheduler and worker talking TCP on loopback."""

from __future__ import annotations

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

import ndpickle  # noqa: E402
import ndpickle.dask  # noqa: E402
from distributed.protocol import dumps, loads, to_serialize  # noqa: E402
from distributed.protocol.serialize import families, register_serialization_family  # noqa: E402


def payload() -> dict:
    rng = np.random.default_rng(7)
    walk = np.cumsum(rng.standard_normal(1 << 18)).reshape(512, 512)
    labels = np.repeat(rng.integers(0, 1000, 1 << 12, dtype=np.int32), 64)
    return {
        "walk": walk,
        "view": walk[::-1, ::3],
        "row": np.broadcast_to(walk[0], (2000, 512)),
        "labels": labels,
        "noise": rng.random(1 << 15),
        "small": np.arange(7, dtype=np.int16),
        "meta": {"name": "run-3", "step": 12},
    }


def check(expected: dict, got: dict) -> None:
    assert expected.keys() == got.keys()
    for k, v in expected.items():
        if isinstance(v, np.ndarray):
            assert got[k].dtype == v.dtype and got[k].shape == v.shape, k
            np.testing.assert_array_equal(got[k], v, err_msg=k)
        else:
            assert got[k] == v


def wire(obj, family: str) -> tuple[list, object]:
    frames = dumps({"x": to_serialize(obj)}, serializers=[family], on_error="raise")
    return frames, loads(frames, deserializers=[family])["x"]


def test_family_is_registered_on_import():
    assert ndpickle.dask.FAMILY == "ndpickle"
    assert "ndpickle" in families


def test_round_trip_through_dask_protocol():
    data = payload()
    frames, got = wire(data, "ndpickle")
    check(data, got)
    # The broadcast travels as its one row, the labels compressed: far less than pickle.
    ours = sum(memoryview(f).nbytes for f in frames)
    pickled = sum(memoryview(f).nbytes for f in wire(data, "pickle")[0])
    assert ours < pickled


def test_dask_leaves_ndpickle_frames_alone():
    header, frames = ndpickle.dask.dumps(payload())
    # Every entry is a codec Dask can undo or False ("do not compress"): never None, which
    # would make Dask run its own codec over frames ndpickle already decided on.
    assert None not in header["compression"]
    assert set(header["compression"]) <= {False, "lz4", "zstd"}
    # Random data stays raw, and Dask does not try to compress it either.
    rng = np.random.default_rng(1)
    noise = rng.random(1 << 18)
    frames, got = wire(noise, "ndpickle")
    np.testing.assert_array_equal(got, noise)
    assert sum(memoryview(f).nbytes for f in frames) >= noise.nbytes


def test_plain_frames_are_decoded_by_dask_on_the_way():
    ndpickle.dask.register("ndpickle-plain-lz4", compression="lz4", shuffle=False)
    labels = np.repeat(np.arange(4096, dtype=np.int64), 64)
    header, _ = families["ndpickle-plain-lz4"][0](labels)
    assert header["compression"][1] == "lz4", "a plain lz4 frame Dask's decompress undoes"
    frames, got = wire(labels, "ndpickle-plain-lz4")
    np.testing.assert_array_equal(got, labels)
    assert sum(memoryview(f).nbytes for f in frames) < labels.nbytes / 10


def test_corrupt_frame_raises_decode_error():
    labels = np.repeat(np.arange(4096, dtype=np.int32), 64)
    header, frames = ndpickle.dask.dumps(labels)
    assert header["codec"][1] == "lz4"
    bad = bytearray(memoryview(frames[1]).cast("B"))
    bad[len(bad) // 2:] = bytes(len(bad) - len(bad) // 2)
    with pytest.raises(ndpickle.DecodeError):
        ndpickle.dask.loads(header, [frames[0], bad])


def test_scheduler_and_worker_over_tcp_use_the_family():
    from distributed import Client, LocalCluster

    calls = {"dumps": 0, "loads": 0}

    def counting_dumps(x, context=None):
        calls["dumps"] += 1
        return ndpickle.dask.dumps(x, context)

    def counting_loads(header, frames):
        calls["loads"] += 1
        return ndpickle.dask.loads(header, frames)

    register_serialization_family("ndpickle-counted", counting_dumps, counting_loads)
    names = ["ndpickle-counted", "dask", "pickle", "msgpack"]
    data = payload()
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                      host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster, serializers=names, deserializers=names) as client:
        fut = client.scatter(data, direct=True)
        total = client.submit(lambda d: float(d["walk"].sum() + d["row"].sum()), fut).result()
        back = client.gather(fut)
    assert total == pytest.approx(float(data["walk"].sum() + data["row"].sum()))
    check(data, back)
    assert calls["dumps"] >= 2 and calls["loads"] >= 2, calls


def test_worker_processes_preload_the_family():
    # A worker in its own process decodes with the family only if it imported it: the
    # documented `preload`. The worker computes on the array it received and sends it back.
    from distributed import Client, LocalCluster

    names = ["ndpickle", "dask", "pickle", "msgpack"]
    data = payload()
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, protocol="tcp://",
                      host="127.0.0.1", dashboard_address=None,
                      preload=["ndpickle.dask"]) as cluster, \
            Client(cluster, serializers=names, deserializers=names) as client:
        fut = client.scatter(data["walk"], direct=True)
        doubled = client.submit(lambda a: a * 2, fut).result()
        rows = client.submit(lambda a: a[:, ::3].copy(), fut).result()
    np.testing.assert_array_equal(doubled, data["walk"] * 2)
    np.testing.assert_array_equal(rows, data["walk"][:, ::3])
