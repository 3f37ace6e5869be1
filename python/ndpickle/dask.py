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
gather, task results and arguments, and spilling to disk and back. pyarrow tables and record
batches get ndpickle's entries too (``ndpickle._dask_arrow``). Everything else — other
types, ``numpy.matrix`` and masked arrays (they keep Dask's own entries), the scheduler's
messages — is untouched. Arrays of Python objects and slices of larger pyarrow tables go to
Dask's own serializers, counted in :func:`stats` as fallbacks.

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

**The safe family.** ``"ndpickle-safe"`` (also registered on import; :data:`SAFE_FAMILY`)
sends the same frames but loads them with :func:`ndpickle.safe_deserialize`, which runs no
code: numpy arrays, pyarrow objects and plain data (see :func:`ndpickle.safe_loads`) are
accepted, anything else is refused with :class:`ndpickle.DecodeError`. For clusters that do
not trust every peer, name it alone (Dask's ``"pickle"`` family would run code)::

    Client(cluster, serializers=["ndpickle-safe", "msgpack"],
           deserializers=["ndpickle-safe", "msgpack"])

Workers and schedulers need the family too (``preload=["ndpickle.dask"]``), and their own
``distributed.comm`` deserializers configured likewise to refuse other families. The family
covers data (scatter, gather, task arguments and results); Dask itself still pickles the task
definitions a client submits.
"""

from __future__ import annotations

import functools
import logging
import sys
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

from . import Compression, _native
from . import deserialize as _deserialize
from . import safe_deserialize as _safe_deserialize
from . import serialize as _serialize

__all__ = [
    "FAMILY",
    "NETWORK_SPAN_THRESHOLD",
    "Plugin",
    "SAFE_FAMILY",
    "SPAN_THRESHOLD",
    "deserialize_ndarray",
    "dumps",
    "install",
    "installed",
    "loads",
    "register",
    "safe_loads",
    "serialize_ndarray",
    "stats",
    "uninstall",
]

logger = logging.getLogger(__name__)

#: The family's name, for ``Client(serializers=[...], deserializers=[...])``.
FAMILY = "ndpickle"

#: The name of the family that loads with :func:`ndpickle.safe_deserialize` (no code runs).
SAFE_FAMILY = "ndpickle-safe"

#: Network transfers send a strided view's memory span when its elements fill at least this
#: fraction of it, and pack it otherwise. Measured between two worker processes on loopback
#: TCP (``benches/compare_dask.py --crossover``, 128 MiB of float64 elements): the span won
#: at 0.9 (1.34x), 0.8 (1.22x) and 0.75 (1.08x), the two were even at 0.6 and packing won at
#: 0.5 (1.2x): loopback's crossover lies near 0.65. A real network is slower than loopback
#: next to the packing copy, which moves the crossover up (about 0.75 for 10 Gb/s, from the
#: same run's copy and send costs), hence 0.8.
NETWORK_SPAN_THRESHOLD = 0.8

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

_byte_bounds = getattr(getattr(np.lib, "array_utils", np), "byte_bounds")

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


def _network_compression(context: dict[str, Any]) -> Optional[Compression]:
    """ndpickle's compression for a transfer, from the comm's negotiated
    ``distributed.comm.compression`` (``None`` when off)."""
    name = context.get("compression")
    if not name:
        return None
    return "zstd" if name == "zstd" else "auto"


def _local_compression() -> Optional[Compression]:
    """ndpickle's compression without a network, from
    ``distributed.worker.memory.spill-compression``."""
    name = dask.config.get("distributed.worker.memory.spill-compression", "auto")
    if not name:
        return None
    return "zstd" if name == "zstd" else "auto"


def _transport(context: Optional[dict[str, Any]]) -> tuple[Optional[Compression], float]:
    """(compression, span threshold) for a message with Dask's ``context``: a network
    transfer when it names a ``recipient`` or the comm's ``compression``, else local
    (spilling, plain ``serialize``)."""
    if context is not None and ("recipient" in context or "compression" in context):
        return _network_compression(context), _options["network"]
    return _local_compression(), _options["local"]


def _serialize_for(x: Any, context: Optional[dict[str, Any]]) -> tuple[dict[str, Any], list[Any]]:
    """:func:`ndpickle.serialize` of ``x`` with the layout and compression of the transport
    ``context`` names, counted in :func:`stats`."""
    compression, threshold = _transport(context)
    return _serialize_with(x, compression, threshold)


def _serialize_with(
    x: Any, compression: Optional[Compression], threshold: float
) -> tuple[dict[str, Any], list[Any]]:
    """:func:`_serialize_for` with the transport's settings already looked up (the
    per-message path of an array: a few microseconds of Python around the native call)."""
    header, frames = _serialize(x, compression=compression, span_threshold=threshold)
    packed = sum(header["compressed"])
    if packed:
        _count("compressed", packed)
    _count("serialized")
    return header, frames


def _deserialize_counted(header: dict[str, Any], frames: list[Any]) -> Any:
    """:func:`ndpickle.deserialize` over the received frames, counted in :func:`stats`."""
    out = _deserialize(header, frames if type(frames) is list else list(frames))
    _count("deserialized")
    return out


def _old_pickle(context: Optional[dict[str, Any]]) -> bool:
    """Whether the peer negotiated a pickle protocol without out-of-band buffers."""
    return context is not None and int(context.get("pickle-protocol") or 5) < 5


def _fallback(what: object) -> None:
    """Counts (and logs) an object left to Dask's own serializer."""
    _count("fallbacks")
    logger.debug("ndpickle.dask: %s left to Dask's serializer", what)


def _pack_sparse(x: np.ndarray, threshold: float) -> np.ndarray:
    """``x`` packed by numpy when ndpickle would pack it (a strided view, no zero strides,
    whose elements fill less than ``threshold`` of its span): numpy's strided copy is several
    times faster than ndpickle's packer for such views, and the result is the same."""
    if x.flags.c_contiguous or x.flags.f_contiguous or 0 in x.strides or x.size == 0:
        return x
    lo, hi = _byte_bounds(x)
    if x.nbytes >= threshold * (hi - lo):
        return x
    return np.ascontiguousarray(x)


def serialize_ndarray(
    x: np.ndarray, context: Optional[dict[str, Any]] = None
) -> tuple[dict[str, Any], list[Any]]:
    """Dask's ``dask_serialize`` entry for ``numpy.ndarray``: :func:`ndpickle.serialize` with
    the layout and compression of the transport ``context`` names (see the module docs).
    Arrays of Python objects go to Dask's own serializer. The comm's ``pickle-protocol`` is
    not consulted: the scheduler sets it to 4 for its own pickles, and the message's pickle
    frame (protocol 5) is read by every Python Dask runs on."""
    if x.dtype.hasobject or (x.dtype.flags & _LIST_PICKLE):
        _fallback(f"{x.dtype} array")
        out: tuple[dict[str, Any], list[Any]] = _DASK_DUMPS(x, context)
        return out
    if type(x) is not np.ndarray:  # np.memmap and other subclasses Dask sends as arrays
        x = x.view(np.ndarray)
    compression, threshold = _transport(context)
    x = _pack_sparse(x, threshold)
    header, frames = _serialize_with(x, compression, threshold)
    if not any(header["compressed"]):
        # Dask's own deserializer reads this as pickle.loads(frames[0], buffers=frames[1:]),
        # which is exactly what an uncompressed ndpickle message is.
        header["pickle"] = True
    return header, frames


def deserialize_ndarray(header: dict[str, Any], frames: list[Any]) -> Any:
    """Dask's ``dask_deserialize`` entry for ``numpy.ndarray``: ndpickle's messages are
    rebuilt over the received frames in place; messages in Dask's own format (from a process
    without the switch, or fallbacks) go to Dask's deserializer."""
    if header.get("serializer") != FAMILY:
        _count("foreign")
        return _DASK_LOADS(header, frames)
    return _deserialize_counted(header, frames)


def _put(dispatch: Any, cls: type, new: Callable[..., Any]) -> None:
    """Registers ``new`` for ``cls`` in a Dask dispatch, and for the subclasses the
    dispatch already resolved to the previous entry (it caches them, e.g. ``np.memmap``)."""
    lookup = dispatch._lookup
    old = lookup.get(cls)
    dispatch.register(cls)(new)
    for k, v in list(lookup.items()):
        if v is old and isinstance(k, type) and issubclass(k, cls):
            lookup[k] = new


def _register(dumps: Callable[..., Any], loads: Callable[..., Any]) -> None:
    """Puts ``dumps``/``loads`` in Dask's dispatch for ``numpy.ndarray``."""
    _put(dask_serialize, np.ndarray, dumps)
    _put(dask_deserialize, np.ndarray, loads)


def _register_arrow(ours: bool) -> None:
    """ndpickle's (``ours``) or Dask's own entries for pyarrow tables and record batches.
    Imports pyarrow: called on install when pyarrow is already imported, else lazily by
    Dask's dispatch the first time it meets a pyarrow object."""
    from . import _dask_arrow

    for cls, dumps, loads in _dask_arrow.entries(ours):
        _put(dask_serialize, cls, dumps)
        _put(dask_deserialize, cls, loads)


def _arrow_switch(ours: bool) -> None:
    """pyarrow's entries now if pyarrow is imported, else when Dask first needs them."""
    if "pyarrow" in sys.modules:
        _register_arrow(ours)
    else:
        lazy = functools.partial(_register_arrow, ours)
        dask_serialize.register_lazy("pyarrow", lazy)  # type: ignore[no-untyped-call]
        dask_deserialize.register_lazy("pyarrow", lazy)  # type: ignore[no-untyped-call]


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
    _register(serialize_ndarray, deserialize_ndarray)
    _arrow_switch(True)
    _installed = True


def uninstall() -> None:
    """Give ``numpy.ndarray`` back to Dask's own serializers in this process. (Messages
    ndpickle compressed that arrive later can no longer be read here.)"""
    global _installed
    _register(_DASK_DUMPS, _DASK_LOADS)
    _arrow_switch(False)
    _installed = False


def installed() -> bool:
    """Whether this process's Dask sends numpy arrays through ndpickle."""
    return _installed


class Plugin(WorkerPlugin):
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


def _dask_has_own(x: Any) -> bool:
    """Whether Dask's ``dask_serialize`` dispatch has an entry for ``type(x)`` (numpy
    arrays and pyarrow objects excepted: the family is for them, and ndpickle's pickler
    ships only the bytes a pyarrow slice uses)."""
    if type(x) is np.ndarray or type(x).__module__ == "pyarrow.lib":
        return False
    try:
        dask_serialize.dispatch(type(x))  # type: ignore[no-untyped-call]
    except TypeError:
        return False
    return True


def dumps(
    x: Any,
    context: Optional[dict[str, Any]] = None,
    *,
    compression: Optional[Compression] = "auto",
    shuffle: bool = True,
) -> tuple[dict[str, Any], list[Any]]:
    """The family's ``(header, frames)`` for ``x``: :func:`ndpickle.serialize`, with every
    frame that is not plain lz4/zstd marked ``False`` so that Dask does not compress it again.

    ``context`` is what Dask passes to families that accept it. Raises
    ``NotImplementedError``, which tells Dask to try the next family, for objects ndpickle
    cannot pickle (chained to the cause), for types with a serializer of their own in Dask's
    ``dask_serialize`` dispatch (bytes, memoryviews, ``array.array``, sparse or GPU arrays,
    registered classes...: numpy arrays and pyarrow objects excepted), and when the peer's pickle protocol is
    below 5.
    """
    _native.compress_buffers([], [], compression, shuffle, None, None)  # checks the options
    if _old_pickle(context):
        raise NotImplementedError("the peer's pickle protocol has no out-of-band buffers")
    if _dask_has_own(x):
        raise NotImplementedError(f"Dask has its own serializer for {type(x).__name__}")
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


def safe_loads(header: dict[str, Any], frames: list[Any]) -> Any:
    """:func:`loads` through :func:`ndpickle.safe_deserialize`: no code runs, and anything
    but numpy arrays, pyarrow objects and plain data raises :class:`ndpickle.DecodeError`."""
    return _safe_deserialize({**header, "serializer": "ndpickle"}, list(frames))


def register(name: str = FAMILY, *, safe: bool = False, **options: Any) -> None:
    """Registers the family under ``name`` (done for ``"ndpickle"`` and, with ``safe=True``,
    for ``"ndpickle-safe"`` on import); ``options`` (``compression``, ``shuffle``) are passed
    to every :func:`dumps`. ``safe=True`` loads with :func:`safe_loads` instead of
    :func:`loads`."""

    def family_dumps(
        x: Any, context: Optional[dict[str, Any]] = None
    ) -> tuple[dict[str, Any], list[Any]]:
        # The safe family's receiver reads protocol 5 with ndpickle's own reader, not with
        # the peer's pickle: the pickle protocol the comm negotiated (the scheduler's and a
        # client's comms say 4) does not apply to it.
        return dumps(x, None if safe else context, **options)

    register_serialization_family(  # type: ignore[no-untyped-call]
        name, family_dumps, safe_loads if safe else loads
    )


register()
register(SAFE_FAMILY, safe=True)
if dask.config.get("ndpickle.dask.dispatch", True):
    install()
