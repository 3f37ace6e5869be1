"""pyarrow tables and record batches in Dask through ndpickle (the switch of
:mod:`ndpickle.dask`; imported only once pyarrow is).

Dask's own entries write an Arrow IPC stream: one copy of every column into a new buffer
before sending, and sliced tables truncated to their rows. ndpickle sends pyarrow's own
pickle form with every buffer out-of-band (zero copies when sending and receiving, each
buffer compressed when the transport asks for it) — but pyarrow pickles a slice with the
whole buffers it views, so a table whose buffers hold much more than its rows (a slice of a
larger one) stays with Dask's entries, counted as a fallback.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

import pyarrow as pa  # type: ignore[import-untyped]
from distributed.protocol import arrow as _dask

from . import dask as _nd

_Arrow = Union[pa.Table, pa.RecordBatch]

# A table may hold this much more buffer memory than its own bytes (padding, bitmaps)
# and still travel as its buffers.
_SLACK_RATIO = 1.1
_SLACK_BYTES = 1 << 16


def whole(x: _Arrow) -> bool:
    """Whether ``x``'s buffers hold about its own data only (not a slice of larger ones)."""
    return int(x.get_total_buffer_size()) <= _SLACK_RATIO * int(x.nbytes) + _SLACK_BYTES


def _entry(
    dask_dumps: Callable[..., Any], dask_loads: Callable[..., Any]
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    def dumps(
        x: _Arrow, context: Optional[dict[str, Any]] = None
    ) -> tuple[dict[str, Any], list[Any]]:
        """ndpickle's frames for a whole table or batch, Dask's IPC stream for a slice."""
        if not whole(x):
            _nd._fallback(f"sliced {type(x).__name__}")
            out: tuple[dict[str, Any], list[Any]] = dask_dumps(x)
            return out
        return _nd._serialize_for(x, context)

    def loads(header: dict[str, Any], frames: list[Any]) -> Any:
        """ndpickle's messages over the received frames; Dask's IPC stream otherwise."""
        if header.get("serializer") != _nd.FAMILY:
            _nd._count("foreign")
            return dask_loads(header, frames)
        return _nd._deserialize_counted(header, frames)

    return dumps, loads


_OURS = {
    pa.Table: _entry(_dask.serialize_table, _dask.deserialize_table),
    pa.RecordBatch: _entry(_dask.serialize_batch, _dask.deserialize_batch),
}
_THEIRS = {
    pa.Table: (_dask.serialize_table, _dask.deserialize_table),
    pa.RecordBatch: (_dask.serialize_batch, _dask.deserialize_batch),
}


def entries(ours: bool) -> list[tuple[type, Callable[..., Any], Callable[..., Any]]]:
    """``(class, dumps, loads)`` for Dask's dispatch: ndpickle's (``ours``) or Dask's own."""
    table = _OURS if ours else _THEIRS
    return [(cls, d, l) for cls, (d, l) in table.items()]
