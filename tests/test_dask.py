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


# --- the family falls through to the next one on what it cannot pickle --------------------

@pytest.mark.parametrize("obj", [lambda x: x + 1, memoryview(b"abc")], ids=["lambda", "memoryview"])
def test_family_lets_dask_try_the_next_family(obj):
    from distributed.protocol import deserialize, serialize

    header, frames = serialize(obj, serializers=("ndpickle", "dask", "pickle"), on_error="raise")
    assert header["serializer"] in ("dask", "pickle")
    back = deserialize(header, frames, deserializers=("ndpickle", "dask", "pickle"))
    if callable(obj):
        assert back(1) == 2
    else:
        assert bytes(back) == b"abc"
    with pytest.raises(NotImplementedError, match="cannot pickle|its own serializer"):
        ndpickle.dask.dumps(obj)


def test_family_still_rejects_bad_options():
    with pytest.raises(ValueError):
        ndpickle.dask.dumps(np.arange(3), compression="nope")


# --- the switch: numpy arrays through ndpickle inside Dask's own "dask" family --------------

NETWORK = {"recipient": {}, "sender": {}, "compression": None, "pickle-protocol": 5}


def views() -> dict[str, np.ndarray]:
    """The layouts of benches/compare_dask.py, 2 MiB of float64 each."""
    rng = np.random.default_rng(3)
    base = rng.random((256, 1024))
    return {
        "contiguous": base,
        "sparse strided": rng.random((256, 2048))[:, ::2],
        "dense block": rng.random((256, 1100))[:, :1024],
        "broadcast": np.broadcast_to(base[0], (256, 1024)),
        "reversed": base[::-1, ::-1],
        "transposed": rng.random((16, 16, 1024)).transpose(1, 0, 2),
    }


def received(x, context=None):
    """x through Dask's default serializers and wire format, received as TCP does: each
    frame in fresh writable memory. Returns the array and the receiving frames."""
    frames = dumps({"x": to_serialize(x)}, context=context)
    got_frames = [np.frombuffer(bytearray(f), np.uint8).data for f in frames]
    return loads(got_frames)["x"], got_frames


def inside(arr: np.ndarray, frames) -> bool:
    """Whether every byte of arr lies inside one of the received frames."""
    lo, hi = np.lib.array_utils.byte_bounds(arr) if hasattr(np.lib, "array_utils") else np.byte_bounds(arr)
    for f in frames:
        base = np.frombuffer(f, np.uint8)
        start = base.__array_interface__["data"][0]
        if start <= lo and hi <= start + base.nbytes:
            return True
    return False


def test_switch_is_on_after_import_and_off_after_uninstall():
    from distributed.protocol.serialize import dask_deserialize, dask_serialize

    assert ndpickle.dask.installed()
    assert dask_serialize.dispatch(np.ndarray) is ndpickle.dask.serialize_ndarray
    try:
        ndpickle.dask.uninstall()
        assert not ndpickle.dask.installed()
        from distributed.protocol import numpy as dask_numpy

        assert dask_serialize.dispatch(np.ndarray) is dask_numpy.serialize_numpy_ndarray
        assert dask_deserialize.dispatch(np.ndarray) is dask_numpy.deserialize_numpy_ndarray
        before = ndpickle.dask.stats()
        got, _ = received(np.arange(10.0))
        np.testing.assert_array_equal(got, np.arange(10.0))
        assert ndpickle.dask.stats() == before
    finally:
        ndpickle.dask.install()
    assert dask_deserialize.dispatch(np.ndarray) is ndpickle.dask.deserialize_ndarray


@pytest.mark.parametrize("context", [None, NETWORK], ids=["local", "network"])
def test_every_layout_arrives_with_its_values_in_the_received_frames(context):
    for name, x in views().items():
        before = ndpickle.dask.stats()
        got, frames = received(x, context)
        after = ndpickle.dask.stats()
        assert after["serialized"] == before["serialized"] + 1, name
        assert after["deserialized"] == before["deserialized"] + 1, name
        assert after["fallbacks"] == before["fallbacks"] and after["foreign"] == before["foreign"]
        assert got.dtype == x.dtype and got.shape == x.shape, name
        np.testing.assert_array_equal(got, x, err_msg=name)
        if context is not None:  # nothing compressed: the array is a view of its frame
            assert inside(got, frames), name
            assert got.flags.writeable == x.flags.writeable, name
    # Views keep their layout: a reversed view its negative strides, a broadcast its zero.
    v = views()
    assert received(v["reversed"], context)[0].strides == v["reversed"].strides
    assert received(v["broadcast"], context)[0].strides == (0, 8)
    assert received(v["transposed"], context)[0].strides == v["transposed"].strides


def test_network_packs_sparse_views_and_spans_dense_ones():
    from distributed.protocol import serialize

    v = views()
    # On the network a 50%-dense view is packed once (its elements only) ...
    _, frames = serialize(v["sparse strided"], context=NETWORK)
    assert memoryview(frames[1]).nbytes == v["sparse strided"].nbytes
    # ... and sent as its span without a network (spilling, local calls: files' policy).
    header, frames = serialize(v["sparse strided"], context=None)
    assert header["sub-header"]["lengths"][1] > v["sparse strided"].nbytes
    # A dense block (93%) and a reversed view travel as their span on the network too.
    for name in ("dense block", "reversed"):
        _, frames = serialize(v[name], context=NETWORK)
        assert memoryview(frames[1]).nbytes >= v[name].nbytes, name
        got, _ = received(v[name], NETWORK)
        assert got.strides == v[name].strides, name


def test_network_span_threshold_is_an_option():
    from distributed.protocol import serialize

    x = views()["sparse strided"]
    try:
        ndpickle.dask.install(network_span_threshold=0.4)
        _, frames = serialize(x, context=NETWORK)
        assert memoryview(frames[1]).nbytes > x.nbytes  # the span
        with pytest.raises(ValueError, match="network_span_threshold"):
            ndpickle.dask.install(network_span_threshold=0.0)
        with pytest.raises(ValueError, match="span_threshold"):
            ndpickle.dask.install(span_threshold=1.5)
    finally:
        ndpickle.dask.install(network_span_threshold=ndpickle.dask.NETWORK_SPAN_THRESHOLD,
                              span_threshold=ndpickle.dask.SPAN_THRESHOLD)


def compressible() -> np.ndarray:
    i = np.arange(1 << 18, dtype=np.float64)
    return (100.0 * np.sin(i * 1e-3)).astype(np.float32).astype(np.float64)


def test_transfers_follow_dask_comm_compression_and_spilling_compresses():
    from distributed.protocol import serialize

    x = compressible()
    header, frames = serialize(x, context=NETWORK)  # distributed.comm.compression: False
    assert header["sub-header"]["codec"][1] is None and header["sub-header"]["pickle"]
    for dask_name in ("lz4", "zstd"):
        header, frames = serialize(x, context={**NETWORK, "compression": dask_name})
        assert header["sub-header"]["codec"][1] == dask_name
        assert "pickle" not in header["sub-header"]
        assert memoryview(frames[1]).nbytes < x.nbytes / 2
        got, _ = received(x, {**NETWORK, "compression": dask_name})
        np.testing.assert_array_equal(got, x)
    # No comm: distributed.worker.memory.spill-compression ("auto": ndpickle's auto).
    header, frames = serialize(x)
    assert header["sub-header"]["codec"][1] == "lz4"
    assert header["sub-header"]["filter"][1] is not None  # the shuffle
    import dask

    with dask.config.set({"distributed.worker.memory.spill-compression": False}):
        header, _ = serialize(x)
        assert header["sub-header"]["codec"][1] is None


def test_spill_file_round_trip_is_smaller_than_dasks_own():
    from distributed.protocol import deserialize_bytes, serialize_bytelist

    x = compressible()
    ours = serialize_bytelist(x, compression="lz4", on_error="raise")
    back = deserialize_bytes(bytearray(b"".join(ours)))
    np.testing.assert_array_equal(back, x)
    assert back.flags.writeable
    ndpickle.dask.uninstall()
    try:
        theirs = serialize_bytelist(x, compression="lz4", on_error="raise")
    finally:
        ndpickle.dask.install()
    size = lambda frames: sum(memoryview(f).nbytes for f in frames)  # noqa: E731
    assert size(ours) < size(theirs) / 2


def test_object_arrays_fall_back_to_dask_and_are_counted():
    x = np.array([1, "two", None], dtype=object)
    before = ndpickle.dask.stats()
    got, _ = received(x, NETWORK)
    assert list(got) == list(x)
    after = ndpickle.dask.stats()
    assert after["fallbacks"] == before["fallbacks"] + 1
    assert after["serialized"] == before["serialized"]


def test_memmap_travels_as_an_array(tmp_path):
    m = np.memmap(tmp_path / "m.bin", dtype="f8", mode="w+", shape=(1000,))
    m[:] = np.arange(1000)
    got, _ = received(m[::-1], NETWORK)
    assert type(got) is np.ndarray and got.strides == (-8,)
    np.testing.assert_array_equal(got, np.arange(1000)[::-1])


def test_a_stock_process_reads_uncompressed_messages():
    # An uncompressed message carries Dask's "pickle" marker: Dask's own numpy
    # deserializer decodes it with pickle.loads over the frames.
    from distributed.protocol import numpy as dask_numpy

    for name, x in views().items():
        header, frames = ndpickle.dask.serialize_ndarray(x, NETWORK)
        got = dask_numpy.deserialize_numpy_ndarray(header, [bytearray(f) for f in frames])
        np.testing.assert_array_equal(got, x, err_msg=name)
    # And ours reads Dask's own format (from a stock process).
    header, frames = dask_numpy.serialize_numpy_ndarray(views()["reversed"])
    before = ndpickle.dask.stats()["foreign"]
    np.testing.assert_array_equal(ndpickle.dask.deserialize_ndarray(header, frames),
                                  views()["reversed"])
    assert ndpickle.dask.stats()["foreign"] == before + 1


def test_corrupt_compressed_message_raises_decode_error():
    header, frames = ndpickle.dask.serialize_ndarray(compressible(), {**NETWORK, "compression": "lz4"})
    bad = bytearray(frames[1])
    bad[len(bad) // 2:] = bytes(len(bad) - len(bad) // 2)
    with pytest.raises(ndpickle.DecodeError):
        ndpickle.dask.deserialize_ndarray(header, [frames[0], bad])


def test_pyarrow_tables_travel_as_their_buffers_and_slices_as_dasks_ipc():
    pa = pytest.importorskip("pyarrow")
    table = pa.table({"x": np.arange(1 << 16, dtype=np.float64),
                      "s": pa.array([str(i % 7) for i in range(1 << 16)])})
    for obj in (table, table.to_batches()[0]):
        before = ndpickle.dask.stats()
        got, frames = received(obj, NETWORK)
        assert type(got) is type(obj) and got.equals(obj)
        assert ndpickle.dask.stats()["deserialized"] == before["deserialized"] + 1
        column = got.column(0) if isinstance(got, pa.Table) else got.column(0)
        data = np.frombuffer(column.chunks[0].buffers()[1] if isinstance(got, pa.Table)
                             else column.buffers()[1], np.float64)
        assert inside(data, frames)  # the column is a view of the received frame
    # A slice of a larger table would carry the whole buffers: Dask's IPC stream instead.
    part = table.slice(100, 10)
    before = ndpickle.dask.stats()
    got, frames = received(part, NETWORK)
    assert got.equals(part)
    after = ndpickle.dask.stats()
    assert after["fallbacks"] == before["fallbacks"] + 1
    assert sum(memoryview(f).nbytes for f in frames) < table.nbytes / 10


def test_scheduler_protocol_4_handshake_keeps_the_layouts_but_the_family_steps_aside():
    # The scheduler's comms say pickle-protocol 4 (its own pickles); arrays it relays to a
    # client keep ndpickle's layouts. The family, asked for explicitly, honours it.
    x = views()["reversed"]
    old = {**NETWORK, "pickle-protocol": 4}
    before = ndpickle.dask.stats()
    got, _ = received(x, old)
    np.testing.assert_array_equal(got, x)
    assert got.strides == x.strides
    assert ndpickle.dask.stats()["fallbacks"] == before["fallbacks"]
    with pytest.raises(NotImplementedError, match="protocol"):
        ndpickle.dask.dumps(x, old)


def test_dispatch_config_false_keeps_only_the_family():
    import os
    import subprocess
    import sys

    code = ("import ndpickle.dask as d; from distributed.protocol.serialize import families;"
            "print(d.installed(), 'ndpickle' in families)")
    env = {**os.environ, "DASK_NDPICKLE__DASK__DISPATCH": "False"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "True"]


# --- a real cluster: 2 worker processes, TCP on loopback -------------------------------------

def make_view(kind: str, seed: int) -> np.ndarray:
    """Built on a worker; the same values every time for the same arguments."""
    return views_seeded(seed)[kind]


def views_seeded(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.random((256, 512))
    return {
        "contiguous": base,
        "sparse strided": rng.random((256, 1024))[:, ::2],
        "broadcast": np.broadcast_to(base[0], (256, 512)),
        "reversed": base[::-1, ::-1],
        "transposed": rng.random((16, 16, 512)).transpose(1, 0, 2),
        "compressible": np.repeat(rng.integers(0, 9, 2048).astype(np.float64), 64),
    }


def layout(x: np.ndarray) -> tuple:
    return x.strides, x.flags.writeable


def spill_and_back(x: np.ndarray, dask_worker) -> tuple:
    buf = dask_worker.data
    key = "spill-test"
    buf[key] = x
    before = buf.spilled_total.disk
    while key not in buf.slow:
        assert buf.evict() >= 0
    size = buf.spilled_total.disk - before
    y = buf[key]
    del buf[key]
    return size, y


def run_cluster_checks(client) -> None:
    a, b = sorted(client.scheduler_info()["workers"])
    before = client.run(ndpickle.dask.stats)
    for kind, want in views_seeded(11).items():
        # Views keep their strides over the network; the sparse one (50%) is packed once.
        strides = np.ascontiguousarray(want).strides if kind == "sparse strided" else want.strides
        src = client.submit(make_view, kind, 11, workers=[a], pure=False)
        # worker -> worker: the consumer runs on B
        got_strides, writeable = client.submit(layout, src, workers=[b],
                                               allow_other_workers=False).result()
        assert got_strides == strides, kind
        assert writeable == want.flags.writeable, kind
        got = client.submit(lambda x: x, src, workers=[b], allow_other_workers=False,
                            pure=False).result()  # B -> scheduler -> client
        np.testing.assert_array_equal(got, want, err_msg=kind)
        assert got.strides == strides, kind
        # client scatter -> worker B -> gather
        fut = client.scatter(want, workers=[b], direct=True, hash=False)
        assert client.submit(layout, fut, workers=[b]).result()[0] == strides, kind
        np.testing.assert_array_equal(client.gather(fut, direct=True), want, err_msg=kind)
        del src, fut
    size, back = client.run(spill_and_back, views_seeded(11)["compressible"], workers=[a])[a]
    np.testing.assert_array_equal(back, views_seeded(11)["compressible"])
    assert size < views_seeded(11)["compressible"].nbytes / 4
    after = client.run(ndpickle.dask.stats)
    for w in (a, b):
        for k in ("fallbacks", "foreign"):
            assert after[w][k] == before[w][k], (w, k, after[w])
    n = len(views_seeded(11))
    assert after[a]["serialized"] - before[a]["serialized"] >= n + 1  # transfers + spill
    assert after[b]["deserialized"] - before[b]["deserialized"] >= 2 * n  # from A, scatter
    assert after[b]["serialized"] - before[b]["serialized"] >= 2 * n  # to the client


def by_value(f):
    """f as a function cloudpickle sends by value (so the worker does not import this
    module, which imports ndpickle.dask)."""
    import types

    return types.FunctionType(f.__code__, {"__builtins__": __builtins__}, f.__name__)


def switched_on() -> bool:
    """On a worker, without importing ndpickle.dask there (pickled by value)."""
    mod = __import__("sys").modules.get("ndpickle.dask")
    return mod is not None and mod.installed()


def test_two_worker_processes_preloaded_every_transfer_uses_ndpickle():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, protocol="tcp://",
                      host="127.0.0.1", dashboard_address=None, memory_limit="1GiB",
                      preload=["ndpickle.dask"]) as cluster, Client(cluster) as client:
        assert all(client.run(by_value(switched_on)).values())
        run_cluster_checks(client)


def test_register_plugin_switches_running_workers():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, protocol="tcp://",
                      host="127.0.0.1", dashboard_address=None, memory_limit="1GiB") as cluster, \
            Client(cluster) as client:
        assert not any(client.run(by_value(switched_on)).values())
        client.register_plugin(ndpickle.dask.Plugin())
        assert all(client.run(by_value(switched_on)).values())
        run_cluster_checks(client)


# --- the safe family: loads with safe_deserialize ----------------------------------------------


def test_safe_family_is_registered_and_refuses_code():
    assert ndpickle.dask.SAFE_FAMILY in families
    data = payload()
    _, back = wire(data, ndpickle.dask.SAFE_FAMILY)
    check(data, back)
    # A payload whose pickle names os.system is refused, where the plain family would call it.
    evil = bytearray(b"\x80\x05cos\nsystem\nX\x04\x00\x00\x00true\x85R.")
    header = {"serializer": ndpickle.dask.SAFE_FAMILY, "lengths": [len(evil)]}
    with pytest.raises(ndpickle.DecodeError, match="os.system"):
        ndpickle.dask.safe_loads(header, [evil])


def test_safe_family_between_a_client_and_worker_processes():
    # A real local cluster: a scheduler and a worker in their own processes on loopback TCP,
    # preloading the families; the client sends and receives only through the safe family.
    from distributed import Client, LocalCluster

    names = [ndpickle.dask.SAFE_FAMILY, "msgpack"]
    data = payload()
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, protocol="tcp://",
                      host="127.0.0.1", dashboard_address=None,
                      preload=["ndpickle.dask"]) as cluster, \
            Client(cluster, serializers=names, deserializers=names) as client:
        fut = client.scatter(data, direct=True)
        back = client.gather(fut)
        # Arrays computed on the worker come back through the safe family too.
        walk = client.submit(lambda d: d["walk"] * 2, fut).result()
    check(data, back)
    np.testing.assert_array_equal(walk, data["walk"] * 2)
