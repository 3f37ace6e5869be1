"""ndpickle for Dask: every transfer of numpy arrays in a process, and the ``"ndpickle"`` family.

**The switch.** Importing this module in a process makes that process's Dask send and
store numpy arrays through ndpickle::

    dask worker tcp://scheduler:8786 --preload ndpickle.dask     # workers (and schedulers)
    LocalCluster(preload=["ndpickle.dask"])                      # the same, for a local cluster
    client.register_plugin(ndpickle.dask.Plugin())               # running workers, from a client

and ``import ndpickle.dask`` in the client process. What it changes, exactly: Dask's own
serializer of ``numpy.ndarray`` in the ``dask_serialize`` / ``dask_deserialize`` dispatch
(``distributed.protocol.numpy``) is replaced by :func:`serialize_ndarray` /
:func:`deserialize_ndarray`. That dispatch is what Dask's default ``"dask"`` family uses
for every message: worker-to-worker transfers (``Worker.get_data``), client scatter and
gather, task results and arguments, and spilling to disk and back. Everything else — other
types, ``numpy.matrix`` and masked arrays (they keep Dask's own entries), the scheduler's
messages — is untouched. Arrays of Python objects go to Dask's own serializer, counted in
:func:`stats` as fallbacks.

What arrays gain, per transport:

- **network** (the message has a ``recipient``: TCP, TLS, UCX...): contiguous arrays leave
  as they are (zero copies, as with Dask); views whose elements fill at least
  :data:`NETWORK_SPAN_THRESHOLD` of their memory span (reversed views, axis permutations,
  dense slices) travel as that span with their strides, no copy — Dask copies them into a
  contiguous array first; sparser views are packed once (as Dask does), because shipping
  their gaps over the network costs more than the copy; broadcasts travel as their one
  slice and arrive with their zero strides. Compression follows Dask's own
  ``distributed.comm.compression`` (off by default since distributed 2023.5, PR #7768): when
  it names a codec, buffers are compressed as :func:`ndpickle.serialize`'s ``"auto"`` does
  (byte-shuffle + lz4, kept when it pays), or with zstd when it says ``"zstd"``.
- **no transport** (spilling to disk, or any ``serialize`` call without a comm): the span
  threshold of files (0.5), and buffers compressed per ``distributed.worker.memory.
  spill-compression`` (Dask's default ``"auto"`` becomes ndpickle's ``"auto"``: the shuffle
  makes float data far smaller than Dask's plain lz4, which keeps most float data raw).

Received frames are used in place (Dask hands them over as writable memory; an array is a
view of its frame, never a copy), except compressed ones, which decompress into new memory.
An uncompressed message also carries Dask's ``"pickle"`` marker, so a process without the
switch still decodes it (with ``pickle.loads``, numpy alone); compressed messages need
ndpickle on both sides: preload it everywhere.

**Turning it off**: leave out the preload; or set Dask's config ``ndpickle.dask.dispatch:
false`` (e.g. ``DASK_NDPICKLE__DASK__DISPATCH=False`` in the environment) before the module
is imported, which keeps only the family; or call :func:`uninstall` in a process (e.g.
``client.run(ndpickle.dask.uninstall)``), which restores Dask's own serializers. Options:
``ndpickle.dask.network-span-threshold`` (default :data:`NETWORK_SPAN_THRESHOLD`) and
``ndpickle.dask.span-threshold`` (default 0.5, the other transports), or :func:`install`'s
arguments.

**The family.** ``"ndpickle"`` (registered on import) sends whole messages through
:func:`ndpickle.serialize` when a client asks for it::

    Client(cluster, serializers=["ndpickle", "dask", "pickle"],
           deserializers=["ndpickle", "dask", "pickle", "msgpack"])

Each buffer is compressed when it pays and Dask is told to leave every frame alone
(``"compression": False``); frames ndpickle left plain lz4/zstd are named so, and Dask's
receiving side decodes them before :func:`loads` sees them. An object ndpickle cannot pickle
(a lambda, a ``memoryview``) raises ``NotImplementedError``, so Dask tries the next family.

Like Dask's ``"pickle"`` family, loading runs ``pickle.loads``: use it between peers that
trust each other, as Dask does.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Optional

import dask.config
import numpy as np
from distributed.diagnostics.plugin import WorkerPlugin
from distributed.protocol import numpy as _dask_numpy
from distributed.protocol.serialize import (
    dask_deserialize,
    dask_serialize,
    register_serialization_family,
)

from . import _native
from . import deserialize as _deserialize
from . import serialize as _serialize

__all__ = [
    "FAMILY",
    "NETWORK_SPAN_THRESHOLD",
    "Plugin",
    "SPAN_THRESHOLD",
    "deserialize_ndarray",
    "dumps",
    "install",
    "installed",
    "loads",
    "register",
    "serialize_ndarray",
    "stats",
    "uninstall",
]

logger = logging.getLogger(__name__)

#: The family's name, for ``Client(serializers=[...], deserializers=[...])``.
FAMILY = "ndpickle"

#: Network transfers send a strided view's memory span when its elements fill at least this
#: fraction of it, and pack it otherwise. Measured on 256 MiB float64 views between two
#: worker processes on loopback TCP (``benches/compare_dask.py --crossover``): packing once
#: and sending the elements beats sending the span below about this density.
NETWORK_SPAN_THRESHOLD = 0.75

#: The same threshold without a network (spilling to disk, local ``serialize`` calls):
#: ndpickle's default for files.
SPAN_THRESHOLD = 0.5

# Dask's own numpy.ndarray serializers, imported (so registered) before ours replace them:
# the lazy registration of distributed.protocol.numpy would otherwise run later and
# overwrite ours.
_DASK_DUMPS: Callable[..., Any] = _dask_numpy.serialize_numpy_ndarray
_DASK_LOADS: Callable[..., Any] = _dask_numpy.deserialize_numpy_ndarray

# numpy's flag for dtypes that pickle their elements as Python objects.
_LIST_PICKLE = int(getattr(getattr(np, "_core", None) or np.core, "multiarray").LIST_PICKLE)

_lock = threading.Lock()
_counts = {"serialized": 0, "deserialized": 0, "fallbacks": 0, "foreign": 0, "compressed": 0}
_options = {"network": NETWORK_SPAN_THRESHOLD, "local": SPAN_THRESHOLD}
_installed = False


def _count(name: str, n: int = 1) -> None:
    with _lock:
        _counts[name] += n


def stats() -> dict[str, int]:
    """Counts for this process since import: arrays ``serialized`` and ``deserialized`` by
    ndpickle; ``fallbacks`` (arrays handed to Dask's own serializer: object dtypes);
    ``foreign`` (arrays received in Dask's own format, from a process without the switch);
    ``compressed`` (buffers sent compressed)."""
    with _lock:
        return dict(_counts)


def _network_compression(context: dict[str, Any]) -> Optional[str]:
    """ndpickle's compression for a transfer, from the comm's negotiated
    ``distributed.comm.compression`` (``None`` when off)."""
    name = context.get("compression")
    if not name:
        return None
    return "zstd" if name == "zstd" else "auto"


def _local_compression() -> Optional[str]:
    """ndpickle's compression without a network, from
    ``distributed.worker.memory.spill-compression``."""
    name = dask.config.get("distributed.worker.memory.spill-compression", "auto")
    if not name:
        return None
    return "zstd" if name == "zstd" else "auto"


def serialize_ndarray(
    x: np.ndarray, context: Optional[dict[str, Any]] = None
) -> tuple[dict[str, Any], list[Any]]:
    """Dask's ``dask_serialize`` entry for ``numpy.ndarray``: :func:`ndpickle.serialize` with
    the layout and compression of the transport ``context`` names (see the module docs).
    Arrays of Python objects go to Dask's own serializer."""
    if x.dtype.hasobject or (x.dtype.flags & _LIST_PICKLE):
        _count("fallbacks")
        logger.debug("ndpickle.dask: %s array left to Dask's serializer", x.dtype)
        return _DASK_DUMPS(x, context)
    if type(x) is not np.ndarray:  # np.memmap and other subclasses Dask sends as arrays
        x = x.view(np.ndarray)
    if context is not None and "recipient" in context:
        compression = _network_compression(context)
        threshold = _options["network"]
    else:
        compression = _local_compression()
        threshold = _options["local"]
    header, frames = _serialize(x, compression=compression, span_threshold=threshold)
    packed = sum(c is not None for c in header["codec"])
    if packed:
        _count("compressed", packed)
    else:
        # Dask's own deserializer reads this as pickle.loads(frames[0], buffers=frames[1:]),
        # which is exactly what an uncompressed ndpickle message is.
        header["pickle"] = True
    _count("serialized")
    return header, frames


def deserialize_ndarray(header: dict[str, Any], frames: list[Any]) -> Any:
    """Dask's ``dask_deserialize`` entry for ``numpy.ndarray``: ndpickle's messages are
    rebuilt over the received frames in place; messages in Dask's own format (from a process
    without the switch, or fallbacks) go to Dask's deserializer."""
    if header.get("serializer") != FAMILY:
        _count("foreign")
        return _DASK_LOADS(header, frames)
    out = _deserialize(header, list(frames))
    _count("deserialized")
    return out


def install(
    *,
    network_span_threshold: Optional[float] = None,
    span_threshold: Optional[float] = None,
) -> None:
    """Route this process's Dask serialization of ``numpy.ndarray`` through ndpickle (done
    on import unless ``ndpickle.dask.dispatch`` is false). The thresholds default to Dask's
    config ``ndpickle.dask.network-span-threshold`` / ``ndpickle.dask.span-threshold``, else
    :data:`NETWORK_SPAN_THRESHOLD` / :data:`SPAN_THRESHOLD`. Calling it again updates them."""
    global _installed
    network = network_span_threshold
    if network is None:
        network = float(
            dask.config.get("ndpickle.dask.network-span-threshold", NETWORK_SPAN_THRESHOLD)
        )
    local = span_threshold
    if local is None:
        local = float(dask.config.get("ndpickle.dask.span-threshold", SPAN_THRESHOLD))
    for name, value in (("network_span_threshold", network), ("span_threshold", local)):
        if not 0.0 < value <= 1.0:
            raise ValueError(f"{name} must be in (0, 1], not {value}")
    _options["network"], _options["local"] = network, local
    dask_serialize.register(np.ndarray)(serialize_ndarray)
    dask_deserialize.register(np.ndarray)(deserialize_ndarray)
    _installed = True


def uninstall() -> None:
    """Give ``numpy.ndarray`` back to Dask's own serializers in this process. (Messages
    ndpickle compressed that arrive later can no longer be read here.)"""
    global _installed
    dask_serialize.register(np.ndarray)(_DASK_DUMPS)
    dask_deserialize.register(np.ndarray)(_DASK_LOADS)
    _installed = False


def installed() -> bool:
    """Whether this process's Dask sends numpy arrays through ndpickle."""
    return _installed


class Plugin(WorkerPlugin):  # type: ignore[misc]
    """``client.register_plugin(ndpickle.dask.Plugin())``: the switch on every worker,
    running or started later (unpickling the plugin imports this module)."""

    name = "ndpickle"

    def __init__(
        self,
        *,
        network_span_threshold: Optional[float] = None,
        span_threshold: Optional[float] = None,
    ) -> None:
        self.network_span_threshold = network_span_threshold
        self.span_threshold = span_threshold

    def setup(self, worker: Any) -> None:
        """Installs the switch in the worker's process."""
        del worker
        install(
            network_span_threshold=self.network_span_threshold,
            span_threshold=self.span_threshold,
        )


def dumps(
    x: Any,
    context: Optional[dict[str, Any]] = None,
    *,
    compression: Optional[str] = "auto",
    shuffle: bool = True,
) -> tuple[dict[str, Any], list[Any]]:
    """The family's ``(header, frames)`` for ``x``: :func:`ndpickle.serialize`, with every
    frame that is not plain lz4/zstd marked ``False`` so that Dask does not compress it again.

    ``context`` is what Dask passes to families that accept it (unused). Raises
    ``NotImplementedError`` (chained to the cause) for objects ndpickle cannot pickle, which
    tells Dask to try the next family.
    """
    del context
    _native.compress_buffers([], [], compression, shuffle, None, None)  # checks the options
    try:
        header, frames = _serialize(x, compression=compression, shuffle=shuffle)
    except Exception as e:  # pickle.PicklingError, TypeError on a memoryview, ...
        raise NotImplementedError(f"ndpickle cannot pickle {type(x).__name__}: {e}") from e
    header["compression"] = [c if c is not None else False for c in header["compression"]]
    return header, frames


def loads(header: dict[str, Any], frames: list[Any]) -> Any:
    """Rebuild the object from the family's ``(header, frames)`` after Dask's transport
    (which has applied ``"compression"`` already; :func:`ndpickle.deserialize` decodes what
    is still compressed, recognised by its length)."""
    # Dask stamps the family's registered name over "serializer".
    return _deserialize({**header, "serializer": "ndpickle"}, list(frames))


def register(name: str = FAMILY, **options: Any) -> None:
    """Registers the family under ``name`` (done for ``"ndpickle"`` on import);
    ``options`` (``compression``, ``shuffle``) are passed to every :func:`dumps`."""

    def family_dumps(
        x: Any, context: Optional[dict[str, Any]] = None
    ) -> tuple[dict[str, Any], list[Any]]:
        return dumps(x, context, **options)

    register_serialization_family(name, family_dumps, loads)  # type: ignore[no-untyped-call]


register()
if dask.config.get("ndpickle.dask.dispatch", True):
    install()
