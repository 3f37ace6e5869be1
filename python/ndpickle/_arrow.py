"""pyarrow objects for :class:`ndpickle.Pickler`: slices ship only the bytes they use.

pyarrow's own reducer ships the whole parent buffers of a sliced array. This module
writes the public reconstructors the Rust writer uses (DESIGN §3.6), over windows of the
array's own memory:

- arrays: ``pyarrow.Array.from_buffers(type, length, buffers, null_count, offset,
  children)`` (dictionary arrays ``pyarrow.DictionaryArray.from_buffers(type, length,
  buffers, dictionary, null_count, offset)``, extension arrays
  ``pyarrow.ExtensionArray.from_storage(type, storage)``), each buffer
  ``pyarrow.py_buffer(<buffer>)``
  with the buffer a ``pickle.PickleBuffer`` over a numpy view of the Arrow memory
  (out-of-band with a ``buffer_callback``: no copy; its item size drives the shuffle
  filter of :func:`ndpickle.serialize`);
- record batches ``pyarrow.RecordBatch.from_arrays(columns, None, schema)``, tables
  ``pyarrow.Table.from_batches(batches, schema)``, chunked arrays
  ``pyarrow.chunked_array(chunks, type)``, schemas ``pyarrow.schema(fields, metadata)``,
  fields ``pyarrow.field(name, type, nullable, metadata)``, types pyarrow's factories
  (``pyarrow.int64()``, ``pyarrow.timestamp('ns', 'UTC')``, ``pyarrow.list_(field)``...).

What a window of ``[start, start + length)`` of an array ships (``start`` is the
array's offset into its buffers):

- fixed-width values, views, type ids and union offsets: the window's bytes;
- bitmaps (validity with nulls in the window, boolean values): the bytes from the one
  holding bit ``start``; when ``start`` is not a multiple of 8 the window is widened to
  the byte boundary and the bit position passed as ``offset`` (which pyarrow applies to
  every buffer of the array). A struct, whose children are positional, gets a realigned
  copy of its validity bitmap instead (an eighth of a byte per element);
- a validity bitmap without nulls in the window: ``None``;
- offsets: the window's ``length + 1`` offsets and the values (or child) window they
  refer to. When that starts at ``o0 > 0`` the offsets are rebased (a copy of the
  offsets with ``o0`` subtracted, not of the data) so that only ``[o0, end)`` travels;
  string and binary offsets, which count bytes, travel as they are with ``[0, end)`` when
  the ``o0`` bytes are fewer than the offsets' own;
- children: windowed recursively (struct fields, fixed-size list values, list values
  between the first and last offset, the runs covering a run-end encoded window); dense
  unions' and list views' children travel whole, as in the Rust writer;
- dictionaries travel whole, once per pickler (one dictionary shared by the chunks of a
  chunked array or the batches of a table is written once and referred to).

Objects this module does not represent (protocols below 4, whose unpicklers cannot look
up ``Array.from_buffers``; record batches and tables without columns; types without a
public factory) are left to pyarrow's own reducer.
"""

from __future__ import annotations

import pickle
from typing import Any, Callable, Optional

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]

__all__ = ["ArrowReducer"]

_U1: np.dtype[Any] = np.dtype("u1")
_OFFSET_DTYPES: dict[int, np.dtype[Any]] = {4: np.dtype("<i4"), 8: np.dtype("<i8")}


def _pickle_buffer(a: Any) -> pickle.PickleBuffer:
    """A ``PickleBuffer`` over a read-only numpy view (its item size travels with it)."""
    return pickle.PickleBuffer(a)


def _elem_dtype(width: int) -> np.dtype[Any]:
    """A numpy dtype of ``width`` bytes, so that the out-of-band buffer carries the item
    size the shuffle filter works by."""
    if width in (1, 2, 4, 8):
        return np.dtype(f"<u{width}")
    return np.dtype((np.void, width))


class _Unsupported(Exception):
    """An array this module does not represent (left to pyarrow's own reducer)."""


class _Reduced:
    """An object that pickles as the reduce value it holds (the form of a batch inside a
    table, which shares the table's schema object so that pickle's memo writes it once)."""

    __slots__ = ("value",)

    def __init__(self, value: tuple[Any, ...]) -> None:
        self.value = value

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return self.value


def _factories() -> tuple[dict[int, Callable[[], pa.DataType]], dict[int, Callable[..., Any]]]:
    """Type ids of the types built by a factory without arguments, and by id the
    functions that give a parametrised type's ``(factory, args)``."""
    plain: dict[int, Callable[[], pa.DataType]] = {}
    for f in (
        pa.null, pa.bool_, pa.int8, pa.int16, pa.int32, pa.int64, pa.uint8, pa.uint16,
        pa.uint32, pa.uint64, pa.float16, pa.float32, pa.float64, pa.date32, pa.date64,
        pa.month_day_nano_interval, pa.binary, pa.large_binary, pa.binary_view, pa.string,
        pa.large_string, pa.string_view,
    ):  # fmt: skip
        plain[f().id] = f

    def fields(t: Any) -> list[pa.Field]:
        return [t.field(i) for i in range(t.num_fields)]

    param: dict[int, Callable[..., Any]] = {
        pa.timestamp("s").id: lambda t: (pa.timestamp, (t.unit, t.tz)),
        pa.time32("s").id: lambda t: (pa.time32, (t.unit,)),
        pa.time64("us").id: lambda t: (pa.time64, (t.unit,)),
        pa.duration("s").id: lambda t: (pa.duration, (t.unit,)),
        pa.binary(1).id: lambda t: (pa.binary, (t.byte_width,)),
        pa.list_(pa.int8()).id: lambda t: (pa.list_, (t.value_field,)),
        pa.list_(pa.int8(), 1).id: lambda t: (pa.list_, (t.value_field, t.list_size)),
        pa.large_list(pa.int8()).id: lambda t: (pa.large_list, (t.value_field,)),
        pa.list_view(pa.int8()).id: lambda t: (pa.list_view, (t.value_field,)),
        pa.large_list_view(pa.int8()).id: lambda t: (pa.large_list_view, (t.value_field,)),
        pa.map_(pa.int8(), pa.int8()).id: lambda t: (
            pa.map_,
            (t.key_field, t.item_field, t.keys_sorted),
        ),
        pa.struct([]).id: lambda t: (pa.struct, (fields(t),)),
        pa.dictionary(pa.int8(), pa.int8()).id: lambda t: (
            pa.dictionary,
            (t.index_type, t.value_type, t.ordered),
        ),
        pa.run_end_encoded(pa.int32(), pa.int8()).id: lambda t: (
            pa.run_end_encoded,
            (t.run_end_type, t.value_type),
        ),
        pa.sparse_union([]).id: lambda t: (pa.sparse_union, (fields(t), list(t.type_codes))),
        pa.dense_union([]).id: lambda t: (pa.dense_union, (fields(t), list(t.type_codes))),
    }
    for name in ("decimal32", "decimal64", "decimal128", "decimal256"):
        factory = getattr(pa, name)
        param[factory(1, 0).id] = lambda t, f=factory: (f, (t.precision, t.scale))
    return plain, param


_PLAIN, _PARAM = _factories()

# Type ids by layout.
_BINARY = {pa.binary().id, pa.string().id}
_LARGE_BINARY = {pa.large_binary().id, pa.large_string().id}
_VIEW = {pa.binary_view().id, pa.string_view().id}
_LIST = {pa.list_(pa.int8()).id, pa.map_(pa.int8(), pa.int8()).id}
_LARGE_LIST = {pa.large_list(pa.int8()).id}
_LIST_VIEW = {pa.list_view(pa.int8()).id: 4, pa.large_list_view(pa.int8()).id: 8}
_FSL = pa.list_(pa.int8(), 1).id
_STRUCT = pa.struct([]).id
_SPARSE = pa.sparse_union([]).id
_DENSE = pa.dense_union([]).id
_DICT = pa.dictionary(pa.int8(), pa.int8()).id
_REE = pa.run_end_encoded(pa.int32(), pa.int8()).id
_NULL = pa.null().id
# The reconstructors, looked up once (so that pickle's memo writes each global once).
_FROM_BUFFERS = pa.Array.from_buffers
_DICT_FROM_BUFFERS = pa.DictionaryArray.from_buffers
_FROM_STORAGE = pa.ExtensionArray.from_storage
_FROM_ARRAYS = pa.RecordBatch.from_arrays
_FROM_BATCHES = pa.Table.from_batches
_BOOL = pa.bool_().id


def type_reduce(t: pa.DataType) -> Any:
    """``(factory, args)`` for a type with a public factory, else ``NotImplemented``."""
    f = _PLAIN.get(t.id)
    if f is not None:
        return (f, ())
    g = _PARAM.get(t.id)
    if g is not None and not isinstance(t, pa.BaseExtensionType):
        return g(t)
    return NotImplemented


def _kind(cls: type) -> Optional[str]:
    """What a pyarrow class is, for :class:`ArrowReducer`'s dispatch (None: not handled)."""
    for base, kind in (
        (pa.Array, "array"), (pa.DataType, "type"), (pa.Field, "field"),
        (pa.ChunkedArray, "chunked"), (pa.RecordBatch, "batch"), (pa.Table, "table"),
        (pa.Schema, "schema"),
    ):  # fmt: skip
        if issubclass(cls, base):
            return kind
    return None


# pyarrow classes seen so far and their kind (classes are few: one entry each).
_KINDS: dict[type, Optional[str]] = {}


class ArrowReducer:
    """The ``reducer_override`` part of :class:`ndpickle.Pickler` for pyarrow objects:
    called with objects whose class lives in ``pyarrow.lib``; returns a reduce value or
    ``NotImplemented`` (pyarrow's own reducer then applies).

    ``protocol`` decides how buffers travel: ``pickle.PickleBuffer`` views from 5 on,
    ``bytes`` copies at 4; below 4 everything is left to pyarrow.
    """

    def __init__(self, protocol: int) -> None:
        self.protocol = protocol
        # Dictionaries written so far, by their memory: the first object seen for each, which
        # pickle's memo then refers to.
        self._dictionaries: dict[tuple[Any, ...], pa.Array] = {}

    def clear(self) -> None:
        """Forgets the dictionaries written (``Pickler.clear_memo``)."""
        self._dictionaries.clear()

    def __call__(self, obj: Any) -> Any:
        cls = type(obj)
        try:
            kind = _KINDS[cls]
        except KeyError:
            kind = _KINDS[cls] = _kind(cls)
        if kind is None or self.protocol < 4:
            return NotImplemented
        if kind == "array":
            return self._array(obj)
        if kind == "type":
            return type_reduce(obj)
        if kind == "field":
            return (pa.field, (obj.name, obj.type, obj.nullable, obj.metadata))
        if kind == "chunked":
            return self._chunked(obj)
        if kind == "batch":
            return self._batch(obj)
        if kind == "table":
            return self._table(obj)
        return (pa.schema, (list(obj), obj.metadata))

    # -- containers ------------------------------------------------------------------------

    def _chunked(self, c: pa.ChunkedArray) -> Any:
        return (pa.chunked_array, (c.chunks, c.type))

    def _batch(self, b: pa.RecordBatch, schema: Optional[pa.Schema] = None) -> Any:
        if b.num_columns == 0:
            return NotImplemented  # from_arrays([]) would lose the row count
        return (_FROM_ARRAYS, (b.columns, None, schema or b.schema))

    def _table(self, t: pa.Table) -> Any:
        if t.num_columns == 0:
            return NotImplemented
        schema = t.schema
        batches = [_Reduced(self._batch(b, schema)) for b in t.to_batches()]
        return (_FROM_BATCHES, (batches, schema))

    # -- arrays ----------------------------------------------------------------------------

    def _buffer(self, buf: Optional[pa.Buffer], start: int, size: int, dtype: np.dtype[Any]) -> Any:
        """``py_buffer(<size bytes of buf from start>)``, a zero-copy view at protocol 5."""
        if buf is None:
            return None
        if size == 0:
            view: Any = b""
        elif self.protocol >= 5:
            a = np.frombuffer(buf, dtype, size // dtype.itemsize, start)
            a.flags.writeable = False
            view = _pickle_buffer(a)
        else:
            view = buf.slice(start, size).to_pybytes()
        return _Reduced((pa.py_buffer, (view,)))

    def _bitmap(self, buf: Optional[pa.Buffer], bit0: int, length: int) -> Any:
        """Bits ``[bit0, bit0 + length)`` of a bitmap from the byte holding ``bit0``."""
        first = bit0 // 8
        return self._buffer(buf, first, (bit0 + length + 7) // 8 - first, _U1)

    def _offsets(
        self, buf: Optional[pa.Buffer], s: int, n: int, width: int, bytes_values: bool
    ) -> tuple[Any, int, int]:
        """The offsets of elements ``[s, s + n)`` and the window ``[v0, end)`` of values
        they refer to (``v0`` is what the shipped offsets count from). ``bytes_values``:
        the offsets count bytes (strings, binary), so that up to as many leading bytes as
        the offsets take are sent rather than copying the offsets; list offsets count
        child elements, of unknown size, and are always rebased."""
        if buf is None:
            return None, 0, 0
        dtype = _OFFSET_DTYPES[width]
        offs = np.frombuffer(buf, dtype, n + 1, s * width)
        o0, end = int(offs[0]), int(offs[-1])
        if o0 == 0 or (bytes_values and o0 <= (n + 1) * width):
            return self._buffer(buf, s * width, (n + 1) * width, dtype), 0, end
        rebased = offs - o0
        rebased.flags.writeable = False
        view = _pickle_buffer(rebased) if self.protocol >= 5 else rebased.tobytes()
        return _Reduced((pa.py_buffer, (view,))), o0, end

    def _dictionary(self, d: pa.Array) -> pa.Array:
        """The object standing for dictionary ``d``: the first one with the same memory."""
        key = (
            d.type,
            d.offset,
            len(d),
            tuple(None if b is None else (b.address, b.size) for b in d.buffers()),
        )
        first = self._dictionaries.get(key)
        if first is None:
            first = self._dictionaries[key] = d
        return first

    def _array(self, a: pa.Array) -> Any:
        if not a.is_cpu:
            return NotImplemented  # device memory: pyarrow's reducer decides
        try:
            return self._array_form(a)
        except _Unsupported:
            return NotImplemented

    def _array_form(self, a: pa.Array) -> Any:
        t = a.type
        if isinstance(t, pa.BaseExtensionType):
            return (_FROM_STORAGE, (t, a.storage))
        tid = t.id
        if tid == _DICT:
            length, bufs, null_count, offset, _ = self._node(a, t.index_type, 2)
            dictionary = self._dictionary(a.dictionary)
            return (
                _DICT_FROM_BUFFERS,
                (t, length, bufs, dictionary, null_count, offset),
            )
        length, bufs, null_count, offset, children = self._node(a, t, None)
        return (_FROM_BUFFERS, (t, length, bufs, null_count, offset, children))

    def _node(
        self, a: pa.Array, t: pa.DataType, nbufs: Optional[int]
    ) -> tuple[int, list[Any], int, int, Optional[list[Any]]]:
        """``(length, buffers, null_count, offset, children)`` of the window of ``a``, with
        ``t`` the type whose layout its own buffers have (a dictionary's index type)."""
        tid = t.id
        length = len(a)
        start = a.offset
        raw = a.buffers()
        if tid == _NULL:
            return length, [None], length, 0, None
        if tid in (_SPARSE, _DENSE):
            ids = self._buffer(raw[1], start, length, _U1)
            if tid == _SPARSE:
                kids = [a.field(i) for i in range(t.num_fields)]
                return length, [None, ids], 0, 0, kids
            offs = self._buffer(raw[2], start * 4, length * 4, _OFFSET_DTYPES[4])
            kids = [a.field(i) for i in range(t.num_fields)]
            return length, [None, ids, offs], 0, 0, kids
        if tid == _REE:
            if length == 0:
                p0, runs = 0, 0
            else:
                p0, runs = a.find_physical_offset(), a.find_physical_length()
            kids = [a.run_ends.slice(p0, runs), a.values.slice(p0, runs)]
            return length, [None], 0, start if length else 0, kids
        null_count = a.null_count
        validity = raw[0] if null_count > 0 else None
        # The bit phase of the window's first element: the window is widened by `b`
        # elements so that bitmaps start on a byte, and `b` passed as the offset.
        b = start % 8 if (validity is not None or tid == _BOOL) else 0
        if tid == _STRUCT:
            # Children are positional (`field(i)` is already windowed): realign the bitmap.
            bufs = [self._realigned(validity, start, length)]
            return length, bufs, null_count, 0, [a.field(i) for i in range(t.num_fields)]
        s, n = start - b, length + b
        bufs = [self._bitmap(validity, s, n)]
        children: Optional[list[Any]] = None
        if tid == _BOOL:
            bufs.append(self._bitmap(raw[1], s, n))
        elif tid in _BINARY or tid in _LARGE_BINARY:
            w = 4 if tid in _BINARY else 8
            offs, v0, end = self._offsets(raw[1], s, n, w, True)
            bufs += [offs, self._buffer(raw[2], v0, end - v0, _U1)]
        elif tid in _VIEW:
            bufs.append(self._buffer(raw[1], s * 16, n * 16, _elem_dtype(16)))
            bufs += [self._buffer(d, 0, d.size, _U1) for d in raw[2:]]
        elif tid in _LIST or tid in _LARGE_LIST:
            w = 4 if tid in _LIST else 8
            offs, c0, end = self._offsets(raw[1], s, n, w, False)
            bufs.append(offs)
            children = [a.values.slice(c0, end - c0)]
        elif tid in _LIST_VIEW:
            w = _LIST_VIEW[tid]
            dt = _OFFSET_DTYPES[w]
            bufs += [
                self._buffer(raw[1], s * w, n * w, dt),
                self._buffer(raw[2], s * w, n * w, dt),
            ]
            children = [a.values]
        elif tid == _FSL:
            size = t.list_size
            children = [a.values.slice(s * size, n * size)]
        else:
            try:
                w, rem = divmod(t.bit_width, 8)
            except ValueError:
                raise _Unsupported(t) from None
            if rem or w == 0:
                raise _Unsupported(t)
            bufs.append(self._buffer(raw[1], s * w, n * w, _elem_dtype(w)))
        if nbufs is not None:
            bufs = bufs[:nbufs]
        return length, bufs, null_count, b, children

    def _realigned(self, validity: Optional[pa.Buffer], start: int, length: int) -> Any:
        """The validity bits ``[start, start + length)`` from bit 0 (a copy when ``start``
        is not on a byte boundary)."""
        if validity is None or start % 8 == 0:
            return self._bitmap(validity, start, length)
        first = start // 8
        nbytes = (start + length + 7) // 8 - first
        bits = np.unpackbits(np.frombuffer(validity, _U1, nbytes, first), bitorder="little")
        packed = np.packbits(bits[start % 8 : start % 8 + length], bitorder="little")
        view = _pickle_buffer(packed) if self.protocol >= 5 else packed.tobytes()
        return _Reduced((pa.py_buffer, (view,)))
