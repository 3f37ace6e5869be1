"""numpy arrays in Ray's object store in ndpickle's layouts: ``ndpickle.ray.register()``.

Ray pickles values with protocol 5 and puts their out-of-band buffers into its shared-memory
object store, but numpy copies every non-contiguous array in-band first: a reversed or
strided view is copied twice on its way in and once more on its way out, and a broadcast
ships every repeated element. After :func:`register`, exact ``numpy.ndarray`` instances with
plain-data dtypes travel in ndpickle's layouts instead (DESIGN §3.4):

- C- or F-contiguous arrays and dense strided views (reversed, transposed, every other
  column, ...) as the memory they span, out-of-band: one copy into the object store;
- broadcasts as their one non-repeated slice, zero strides kept;
- sparse views packed once into an out-of-band buffer.

``ray.get`` returns them as Ray returns numpy arrays: read-only, zero-copy views of the
object store, with the shape, strides and dtype of the array that was put. Arrays of
objects, zero-sized dtypes and numpy subclasses keep numpy's own pickling.

Registration is per process. Call :func:`register` in the driver and give the same
function to Ray as the worker setup hook, so that task results and actor returns take the
same path::

    import ray
    import ndpickle.ray

    ndpickle.ray.register()
    ray.init(runtime_env={"worker_process_setup_hook": ndpickle.ray.register})

With compression (``register(compression="auto")``), each buffer of an array is compressed
when it pays (:func:`ndpickle.serialize`'s policy): smaller objects in the store and in
spill files, at the cost of a decompressed copy on ``ray.get``. For the workers, pass
``ndpickle.ray.setup_hook(compression="auto")`` as the hook.

The objects are ordinary Ray objects: ``ray.get`` in any process that has ndpickle
installed reads them, registered or not (loading imports this module).
"""

from __future__ import annotations

import pickle
from typing import Any, Callable, Optional

import numpy as np

from . import Compression, _native
from ._native import ArrayReducer

try:
    import ray
    import ray.cloudpickle
    import ray.util
except ImportError as _e:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "ndpickle.ray needs Ray, which is not installed: pip install 'ndpickle[ray]' "
        "(or pip install ray)"
    ) from _e

__all__ = ["register", "setup_hook", "unregister"]

# Tags of the serializer's forms (the first item of the tuple the deserializer receives).
_VIEW = 0  # (tag, shape, dtype, buffer, offset, strides, order): numpy.ndarray(...)
_COMPRESSED = 1  # (tag, shape, dtype, frame_info, frame, raw_len, offset, strides, order)
_NUMPY = 2  # (tag, (callable, args[, state])): numpy's own reduce value


def _portable(obj: np.ndarray) -> Any:
    """ndpickle's ``(numpy.ndarray, args)`` for ``obj``, or ``NotImplemented``.

    A fresh reducer per array: the one ``ndpickle.Pickler`` holds remembers the arrays it
    sent so that later views refer to them, which is right within one pickle and wrong
    across the many pickles Ray writes through one registration.
    """
    return ArrayReducer(5)(obj)


def _numpy_form(obj: np.ndarray) -> tuple[Any, ...]:
    """numpy's own reduce value (object arrays, zero-sized dtypes)."""
    return (_NUMPY, obj.__reduce_ex__(5))


def _serialize_plain(obj: np.ndarray) -> tuple[Any, ...]:
    """The serializer without compression: ``(_VIEW, *ndarray args)``."""
    reduced = _portable(obj)
    if reduced is NotImplemented:
        return _numpy_form(obj)
    return (_VIEW, *reduced[1])


def _compressing_serializer(
    compression: Compression, shuffle: bool
) -> Callable[[np.ndarray], tuple[Any, ...]]:
    """A serializer that compresses each out-of-band buffer when it pays."""

    def serialize(obj: np.ndarray) -> tuple[Any, ...]:
        reduced = _portable(obj)
        if reduced is NotImplemented:
            return _numpy_form(obj)
        shape, dtype, buffer, offset, strides, order = reduced[1]
        if isinstance(buffer, pickle.PickleBuffer):
            raw = buffer.raw()
            (frame,) = _native.compress_buffers(
                [raw], [_native.buffer_itemsize(buffer)], compression, shuffle, None, None
            )
            if frame is not None:
                info, data = frame[0], frame[1]
                return (
                    _COMPRESSED,
                    shape,
                    dtype,
                    info,
                    # RawBuffer exports the buffer protocol (the stub does not say so).
                    pickle.PickleBuffer(data),  # type: ignore[arg-type]
                    raw.nbytes,
                    offset,
                    strides,
                    order,
                )
        return (_VIEW, shape, dtype, buffer, offset, strides, order)

    return serialize


def _deserialize(form: tuple[Any, ...]) -> Any:
    """Rebuilds an array from one of the serializer's forms (runs in every process that
    reads the object: the name is pickled by reference)."""
    tag = form[0]
    if tag == _VIEW:
        _, shape, dtype, buffer, offset, strides, order = form
        return np.ndarray(shape, dtype, buffer, offset, strides, order)
    if tag == _COMPRESSED:
        _, shape, dtype, info, frame, raw_len, offset, strides, order = form
        data = _native.decompress_frame(info, frame, False, max_len=raw_len)
        return np.ndarray(shape, dtype, data, offset, strides, order)
    if tag == _NUMPY:
        reduced = form[1]
        out = reduced[0](*reduced[1])
        if len(reduced) > 2 and reduced[2] is not None:
            out.__setstate__(reduced[2])
        return out
    raise pickle.UnpicklingError(f"ndpickle.ray: unknown array form {tag!r}")


def register(compression: Optional[Compression] = None, *, shuffle: bool = True) -> None:
    """Makes Ray serialize exact ``numpy.ndarray``\\ s in this process with ndpickle.

    Call it in the driver (before or after ``ray.init``), and pass it (or
    :func:`setup_hook`'s result, for options) as ``runtime_env={"worker_process_setup_hook":
    ...}`` so that workers serialize task results and actor returns the same way. Calling it
    again is harmless (the latest options win).

    ``compression``: ``None`` (default: arrays land in the object store uncompressed and
    come back as zero-copy views), ``"auto"`` (lz4 on buffers of at least 64 KiB whose
    sample compresses well, kept only when the whole shrinks by 10 %), ``"lz4"`` or
    ``"zstd"`` (always, unless the frame would not be smaller). ``shuffle`` byte-shuffles
    each buffer by its element size before compressing. Compressed arrays come back as
    read-only decompressed copies.

    Raises ``RuntimeError`` if this Ray does not pickle the registered form with
    out-of-band buffers (zero-copy would be lost), ``ValueError`` for unknown options.
    """
    # Validates the options (raises ValueError) without compressing anything.
    _native.compress_buffers([], [], compression, shuffle, None, None)
    serializer = (
        _serialize_plain
        if compression is None
        else _compressing_serializer(compression, shuffle)
    )
    ray.util.register_serializer(np.ndarray, serializer=serializer, deserializer=_deserialize)
    _check_out_of_band()


def unregister() -> None:
    """Gives numpy arrays in this process back to Ray's default serialization."""
    ray.util.deregister_serializer(np.ndarray)


def setup_hook(compression: Optional[Compression] = None, *, shuffle: bool = True) -> Callable[[], None]:
    """A worker setup hook calling :func:`register` with these options::

        ray.init(runtime_env={
            "worker_process_setup_hook": ndpickle.ray.setup_hook(compression="auto")
        })
    """
    # Checked here, in the driver, rather than in every worker as it starts.
    _native.compress_buffers([], [], compression, shuffle, None, None)

    def ndpickle_ray_register() -> None:
        register(compression, shuffle=shuffle)

    return ndpickle_ray_register


def _check_out_of_band() -> None:
    """Checks that Ray's pickler sends the registered form's buffers out-of-band.

    ``ray.util.register_serializer`` puts the serializer in ``ray.cloudpickle``'s dispatch
    table, and Ray pickles values with protocol 5 and a ``buffer_callback``; the check is on
    that behaviour, not on a version number, so that a Ray that changes either fails here
    instead of silently copying every array in-band.
    """
    buffers: list[pickle.PickleBuffer] = []
    probe = np.arange(1 << 12, dtype=np.float64)[::-1]
    data = ray.cloudpickle.dumps(  # type: ignore[no-untyped-call]
        probe, protocol=5, buffer_callback=buffers.append
    )
    back = pickle.loads(data, buffers=buffers)
    if len(buffers) != 1 or back.strides != probe.strides or not np.array_equal(back, probe):
        unregister()
        raise RuntimeError(
            f"ndpickle.ray: Ray {ray.__version__} does not pickle registered serializers with "
            "out-of-band buffers; numpy arrays are left to Ray's default serialization"
        )
