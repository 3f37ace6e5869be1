//! arrow-rs arrays, record batches, chunked arrays and tables as pyarrow reduce forms.
//!
//! Every array becomes `pyarrow.Array.from_buffers(type, length, buffers, null_count, offset,
//! children)` (dictionary arrays `pyarrow.DictionaryArray.from_buffers(type, length, buffers,
//! dictionary, null_count, offset)`), each buffer `pyarrow.py_buffer(<buffer>)` with the buffer
//! out-of-band (`NEXT_BUFFER`, borrowed from the array: zero copies) or in-band `bytes`.
//!
//! Only the bytes a (sliced) array needs travel. Arrays are written over a logical *window*
//! `[start, start + len)` of an arrow-rs array, so that the children of sliced lists and the
//! values of sliced strings are windows of borrowed memory too:
//! - fixed-width values, views, type ids: the window's bytes;
//! - bitmaps: from the byte holding the window's first bit. When that bit is not the first
//!   of its byte, the window is widened to the byte boundary and the bit position is passed
//!   as pyarrow's `offset`, which applies to every buffer and child of the array. Where the
//!   other buffers cannot be widened (the window starts at the array's first element), the
//!   bitmap alone is copied to realign it (an eighth of a byte per element);
//! - a validity bitmap without nulls in the window is not sent at all (`None`);
//! - offsets: the window's `len + 1` offsets, with the values (or child) window they refer
//!   to. When that starts at `o0 > 0`, the offsets are rebased (copied, `o0` subtracted) so
//!   that only `[o0, end)` travels, unless `o0` bytes are fewer than the offsets themselves,
//!   in which case offsets go zero-copy and `[0, end)` travels.
//! - run-end encoded arrays: the runs covering the window, with the logical offset.
//! - dense unions and dictionaries: children and dictionary values travel whole.

use arrow_array::cast::AsArray;
use arrow_array::types::{Int16Type, Int32Type, Int64Type, RunEndIndexType};
use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, OffsetSizeTrait, RecordBatch, downcast_primitive_array,
};
use arrow_buffer::{BooleanBuffer, OffsetBuffer};
use arrow_schema::{DataType, SchemaRef, UnionMode};

use crate::arrow::types::{write_schema, write_type};
use crate::buffer::PayloadBuffer;
use crate::error::EncodeError;
use crate::write::Encoder;
use crate::write::MemoKey;

/// One buffer of an array as sent.
enum Buf<'a> {
    /// No buffer (`None`): validity without nulls, a union's validity slot.
    Absent,
    /// A window of the array's own memory.
    Borrowed(&'a [u8]),
    /// A copy (realigned bitmap, rebased offsets).
    Owned(Vec<u8>),
}

/// A child array to write.
enum Child<'a> {
    /// A window of an arrow-rs array.
    Array(&'a dyn Array, usize, usize),
    /// The run ends of a run-end encoded array: a primitive array without nulls.
    RunEnds(DataType, &'a [u8], usize),
}

/// Everything `Array.from_buffers` needs besides the type.
struct Node<'a> {
    len: usize,
    null_count: usize,
    offset: usize,
    buffers: Vec<Buf<'a>>,
    children: Vec<Child<'a>>,
}

/// Checks the protocol: the reconstructors have dotted names.
pub(crate) fn check_protocol(enc: &Encoder<'_, '_>, what: &'static str) -> Result<(), EncodeError> {
    if enc.protocol() < 4 {
        return Err(EncodeError::NeedsProtocol {
            what,
            min: 4,
            protocol: enc.protocol(),
        });
    }
    Ok(())
}

/// Writes a whole array.
pub(crate) fn write_array<'a>(
    enc: &mut Encoder<'a, '_>,
    array: &'a dyn Array,
) -> Result<(), EncodeError> {
    check_protocol(enc, "pyarrow arrays (pyarrow.Array.from_buffers)")?;
    write_window(enc, array, 0, array.len())
}

fn unsupported(dt: &DataType) -> EncodeError {
    EncodeError::UnsupportedDtype(format!("arrow arrays of type {dt}"))
}

/// The address of an array, for the memo.
fn addr(a: &dyn Array) -> usize {
    a as *const dyn Array as *const () as usize
}

/// A short tag per type family, so that a struct embedded at the address of its map (a
/// map's entries) is not mistaken for the map.
fn tag(dt: &DataType) -> &'static str {
    match dt {
        DataType::Map(..) => "arrow map",
        DataType::Struct(_) => "arrow struct",
        DataType::Dictionary(..) => "arrow dictionary",
        _ => "arrow array",
    }
}

/// Writes the window `[start, start + len)` of `a`.
fn write_window<'a>(
    enc: &mut Encoder<'a, '_>,
    a: &'a dyn Array,
    start: usize,
    len: usize,
) -> Result<(), EncodeError> {
    let key = MemoKey::Shared {
        addr: addr(a),
        tag: tag(a.data_type()),
        start,
        len,
    };
    if enc.get_memo(&key)? {
        return Ok(());
    }
    if let DataType::Dictionary(..) = a.data_type() {
        write_dictionary(enc, a, start, len)?;
    } else {
        let node = plan(a, start, len)?;
        enc.global("pyarrow", "Array.from_buffers")?;
        emit(enc, a.data_type(), node)?;
    }
    enc.memoize(key)
}

/// The arguments of `from_buffers`, after the callable: `(type, length, buffers,
/// null_count, offset, children)`, then `REDUCE`.
fn emit<'a>(enc: &mut Encoder<'a, '_>, dt: &DataType, node: Node<'a>) -> Result<(), EncodeError> {
    enc.mark()?;
    write_type(enc, dt)?;
    enc.uint128(node.len as u128)?;
    enc.list(node.buffers, &mut |enc, b| write_buf(enc, b))?;
    enc.uint128(node.null_count as u128)?;
    enc.uint128(node.offset as u128)?;
    if node.children.is_empty() {
        enc.none()?;
    } else {
        enc.list(node.children, &mut |enc, c| match c {
            Child::Array(a, s, n) => write_window(enc, a, s, n),
            Child::RunEnds(dt, bytes, n) => {
                enc.global("pyarrow", "Array.from_buffers")?;
                let node = Node {
                    len: n,
                    null_count: 0,
                    offset: 0,
                    buffers: vec![Buf::Absent, Buf::Borrowed(bytes)],
                    children: Vec::new(),
                };
                emit(enc, &dt, node)
            }
        })?;
    }
    enc.tuple(6)?;
    enc.reduce()
}

/// `pyarrow.py_buffer(<out-of-band buffer or bytes>)`, or `None`.
fn write_buf<'a>(enc: &mut Encoder<'a, '_>, b: Buf<'a>) -> Result<(), EncodeError> {
    let readonly = enc.options().readonly();
    let buf = match b {
        Buf::Absent => return enc.none(),
        Buf::Borrowed(s) => PayloadBuffer::borrowed(s, readonly),
        Buf::Owned(v) => PayloadBuffer::owned(v, readonly),
    };
    enc.global("pyarrow", "py_buffer")?;
    if enc.out_of_band() && !buf.is_empty() {
        enc.next_buffer(buf)?;
    } else {
        enc.bytes(&buf)?;
    }
    enc.tuple(1)?;
    enc.reduce()
}

/// `ceil(bits / 8)`.
fn bytes_for(bits: usize) -> usize {
    bits.div_ceil(8)
}

/// The bits `[start, start + len)` of `bb` as a buffer where they start at bit `b`: a
/// borrowed byte window when the bit `b` places before `start` begins a byte of `bb`, else
/// a copy (realigned; its first `b` bits are zero).
fn bitmap<'a>(bb: &'a BooleanBuffer, start: usize, len: usize, b: usize) -> Buf<'a> {
    let abs = bb.offset() + start;
    if abs >= b && (abs - b).is_multiple_of(8) {
        let first = (abs - b) / 8;
        return Buf::Borrowed(&bb.values()[first..first + bytes_for(len + b)]);
    }
    if b == 0 {
        let copy = bb.slice(start, len).sliced();
        return Buf::Owned(copy.as_slice()[..bytes_for(len)].to_vec());
    }
    let mut out = vec![0u8; bytes_for(len + b)];
    for (i, bit) in bb.slice(start, len).iter().enumerate() {
        if bit {
            out[(b + i) / 8] |= 1 << ((b + i) % 8);
        }
    }
    Buf::Owned(out)
}

/// The values bytes and element width of a fixed-width array.
pub(crate) fn fixed_values(a: &dyn Array) -> Option<(&[u8], usize)> {
    downcast_primitive_array!(
        a => Some((a.values().inner().as_slice(), a.data_type().primitive_width()?)),
        DataType::FixedSizeBinary(w) => {
            let a = a.as_fixed_size_binary_opt()?;
            Some((a.values().as_slice(), usize::try_from(*w).ok()?))
        }
        _ => None
    )
}

/// The offsets of `[s, s + n)` and the window of values or child they refer to.
fn offsets<'a, O: OffsetSizeTrait>(
    offs: &'a OffsetBuffer<O>,
    s: usize,
    n: usize,
) -> (Buf<'a>, usize, usize) {
    let w = std::mem::size_of::<O>();
    let window = &offs[s..=s + n];
    let o0 = window[0].as_usize();
    let end = window[n].as_usize();
    let bytes = &offs.inner().inner().as_slice()[s * w..(s + n + 1) * w];
    if o0 == 0 || o0 <= bytes.len() {
        return (Buf::Borrowed(bytes), 0, end);
    }
    let mut rebased = Vec::with_capacity(bytes.len());
    for o in window {
        // Offsets grow, so `o - o0` fits the offset type as `o` does.
        let r = o.as_usize() - o0;
        if w == 4 {
            rebased.extend_from_slice(&(r as i32).to_le_bytes());
        } else {
            rebased.extend_from_slice(&(r as i64).to_le_bytes());
        }
    }
    (Buf::Owned(rebased), o0, end)
}

/// Whether the array's other buffers and children can start `b` elements before `start`.
fn can_widen(dt: &DataType, start: usize, b: usize) -> bool {
    match dt {
        DataType::Boolean => true,
        _ => start >= b,
    }
}

/// The buffers and children of the window `[start, start + len)` of a non-dictionary array.
fn plan<'a>(a: &'a dyn Array, start: usize, len: usize) -> Result<Node<'a>, EncodeError> {
    let dt = a.data_type();
    let full = start == 0 && len == a.len();
    // Validity: nulls in the window, and the bit phase of the window's first bit.
    let nulls = match dt {
        DataType::Null | DataType::Union(..) | DataType::RunEndEncoded(..) => None,
        _ => a.nulls(),
    };
    let null_count = match nulls {
        None => 0,
        Some(n) if full => n.null_count(),
        Some(n) => n.slice(start, len).null_count(),
    };
    let nulls = nulls.filter(|_| null_count > 0);
    let phase = match (dt, nulls) {
        (DataType::Boolean, _) => {
            let values = a.as_boolean_opt().ok_or_else(|| unsupported(dt))?.values();
            (values.offset() + start) % 8
        }
        (_, Some(n)) => (n.offset() + start) % 8,
        (_, None) => 0,
    };
    let b = if can_widen(dt, start, phase) {
        phase
    } else {
        0
    };
    // The window widened by `b` elements. A boolean array's window is only used through
    // its bitmaps, which take `start` and `b` (they may widen below the array's element 0).
    let (s, n) = (start.saturating_sub(b), len + b);
    let validity = match nulls {
        Some(nb) => bitmap(nb.inner(), start, len, b),
        None => Buf::Absent,
    };
    let mut node = Node {
        len,
        null_count,
        offset: b,
        buffers: vec![validity],
        children: Vec::new(),
    };
    match dt {
        DataType::Null => {
            node.null_count = len;
            node.buffers = vec![Buf::Absent];
        }
        DataType::Boolean => {
            let values = a.as_boolean_opt().ok_or_else(|| unsupported(dt))?.values();
            node.buffers.push(bitmap(values, start, len, b));
        }
        DataType::Utf8 => byte_array::<i32>(a, s, n, &mut node)?,
        DataType::Binary => byte_array::<i32>(a, s, n, &mut node)?,
        DataType::LargeUtf8 | DataType::LargeBinary => byte_array::<i64>(a, s, n, &mut node)?,
        DataType::Utf8View | DataType::BinaryView => {
            let (views, data) = match a.as_string_view_opt() {
                Some(v) => (v.views(), v.data_buffers()),
                None => {
                    let v = a.as_binary_view_opt().ok_or_else(|| unsupported(dt))?;
                    (v.views(), v.data_buffers())
                }
            };
            node.buffers.push(Buf::Borrowed(
                &views.inner().as_slice()[s * 16..(s + n) * 16],
            ));
            for d in data.iter() {
                node.buffers.push(Buf::Borrowed(d.as_slice()));
            }
        }
        DataType::List(_) => list::<i32>(a, s, n, &mut node)?,
        DataType::LargeList(_) => list::<i64>(a, s, n, &mut node)?,
        DataType::ListView(_) => list_view::<i32>(a, &mut node, s, n)?,
        DataType::LargeListView(_) => list_view::<i64>(a, &mut node, s, n)?,
        DataType::Map(..) => {
            let m = a.as_map_opt().ok_or_else(|| unsupported(dt))?;
            let (offs, c0, end) = offsets(m.offsets(), s, n);
            node.buffers.push(offs);
            node.children
                .push(Child::Array(m.entries() as &dyn Array, c0, end - c0));
        }
        DataType::FixedSizeList(_, size) => {
            let l = a.as_fixed_size_list_opt().ok_or_else(|| unsupported(dt))?;
            let size = usize::try_from(*size).map_err(|_| unsupported(dt))?;
            node.children
                .push(Child::Array(l.values().as_ref(), s * size, n * size));
        }
        DataType::Struct(_) => {
            let st = a.as_struct_opt().ok_or_else(|| unsupported(dt))?;
            for c in st.columns() {
                node.children.push(Child::Array(c.as_ref(), s, n));
            }
        }
        DataType::Union(fields, mode) => {
            let u = a.as_union_opt().ok_or_else(|| unsupported(dt))?;
            node.buffers = vec![Buf::Absent];
            node.buffers
                .push(Buf::Borrowed(&u.type_ids().inner().as_slice()[s..s + n]));
            match mode {
                UnionMode::Sparse => {
                    for (id, _) in fields.iter() {
                        node.children.push(Child::Array(u.child(id).as_ref(), s, n));
                    }
                }
                UnionMode::Dense => {
                    let offs = u.offsets().ok_or_else(|| unsupported(dt))?;
                    node.buffers
                        .push(Buf::Borrowed(&offs.inner().as_slice()[s * 4..(s + n) * 4]));
                    for (id, _) in fields.iter() {
                        let c = u.child(id);
                        node.children.push(Child::Array(c.as_ref(), 0, c.len()));
                    }
                }
            }
        }
        DataType::RunEndEncoded(run_ends, _) => {
            node.buffers = vec![Buf::Absent];
            match run_ends.data_type() {
                DataType::Int16 => run_end::<Int16Type>(a, start, len, &mut node)?,
                DataType::Int32 => run_end::<Int32Type>(a, start, len, &mut node)?,
                DataType::Int64 => run_end::<Int64Type>(a, start, len, &mut node)?,
                _ => return Err(unsupported(dt)),
            }
        }
        _ => {
            let (values, w) = fixed_values(a).ok_or_else(|| unsupported(dt))?;
            node.buffers
                .push(Buf::Borrowed(&values[s * w..(s + n) * w]));
        }
    }
    Ok(node)
}

/// Offsets and values of a string or binary array.
fn byte_array<'a, O: OffsetSizeTrait>(
    a: &'a dyn Array,
    s: usize,
    n: usize,
    node: &mut Node<'a>,
) -> Result<(), EncodeError> {
    let (offs, values) = if let Some(x) = a.as_string_opt::<O>() {
        (x.offsets(), x.values())
    } else {
        let x = a
            .as_binary_opt::<O>()
            .ok_or_else(|| unsupported(a.data_type()))?;
        (x.offsets(), x.values())
    };
    let (offs, v0, end) = offsets(offs, s, n);
    node.buffers.push(offs);
    node.buffers
        .push(Buf::Borrowed(&values.as_slice()[v0..end]));
    Ok(())
}

/// Offsets and child window of a list array.
fn list<'a, O: OffsetSizeTrait>(
    a: &'a dyn Array,
    s: usize,
    n: usize,
    node: &mut Node<'a>,
) -> Result<(), EncodeError> {
    let l = a
        .as_list_opt::<O>()
        .ok_or_else(|| unsupported(a.data_type()))?;
    let (offs, c0, end) = offsets(l.offsets(), s, n);
    node.buffers.push(offs);
    node.children
        .push(Child::Array(l.values().as_ref(), c0, end - c0));
    Ok(())
}

/// Offsets, sizes and the whole child of a list-view array.
fn list_view<'a, O: OffsetSizeTrait>(
    a: &'a dyn Array,
    node: &mut Node<'a>,
    s: usize,
    n: usize,
) -> Result<(), EncodeError> {
    let l = a
        .as_list_view_opt::<O>()
        .ok_or_else(|| unsupported(a.data_type()))?;
    let w = std::mem::size_of::<O>();
    node.buffers.push(Buf::Borrowed(
        &l.offsets().inner().as_slice()[s * w..(s + n) * w],
    ));
    node.buffers.push(Buf::Borrowed(
        &l.sizes().inner().as_slice()[s * w..(s + n) * w],
    ));
    let values = l.values();
    node.children
        .push(Child::Array(values.as_ref(), 0, values.len()));
    Ok(())
}

/// The runs covering the window, with the window's logical offset.
fn run_end<'a, R: RunEndIndexType>(
    a: &'a dyn Array,
    start: usize,
    len: usize,
    node: &mut Node<'a>,
) -> Result<(), EncodeError> {
    let r = a
        .as_run_opt::<R>()
        .ok_or_else(|| unsupported(a.data_type()))?;
    let ends = r.run_ends();
    let w = std::mem::size_of::<R::Native>();
    let (p0, runs) = if len == 0 {
        node.offset = 0;
        (0, 0)
    } else {
        node.offset = ends.offset() + start;
        let p0 = ends.get_physical_index(start);
        let p1 = ends.get_physical_index(start + len - 1);
        (p0, p1 - p0 + 1)
    };
    let bytes = &ends.inner().inner().as_slice()[p0 * w..(p0 + runs) * w];
    node.children.push(Child::RunEnds(
        <R as ArrowPrimitiveType>::DATA_TYPE,
        bytes,
        runs,
    ));
    node.children
        .push(Child::Array(r.values().as_ref(), p0, runs));
    Ok(())
}

/// `pyarrow.DictionaryArray.from_buffers(type, length, [validity, keys], dictionary,
/// null_count, offset)`; the dictionary travels whole (and once, when shared).
fn write_dictionary<'a>(
    enc: &mut Encoder<'a, '_>,
    a: &'a dyn Array,
    start: usize,
    len: usize,
) -> Result<(), EncodeError> {
    let d = a
        .as_any_dictionary_opt()
        .ok_or_else(|| unsupported(a.data_type()))?;
    let keys = d.keys();
    let mut node = plan(keys, start, len)?;
    enc.global("pyarrow", "DictionaryArray.from_buffers")?;
    enc.mark()?;
    write_type(enc, a.data_type())?;
    enc.uint128(node.len as u128)?;
    enc.list(std::mem::take(&mut node.buffers), &mut |enc, b| {
        write_buf(enc, b)
    })?;
    let values: &'a ArrayRef = d.values();
    write_window(enc, values.as_ref(), 0, values.len())?;
    enc.uint128(node.null_count as u128)?;
    enc.uint128(node.offset as u128)?;
    enc.tuple(6)?;
    enc.reduce()
}

/// `pyarrow.RecordBatch.from_arrays([columns], None, schema)`.
pub(crate) fn write_batch<'a>(
    enc: &mut Encoder<'a, '_>,
    batch: &'a RecordBatch,
) -> Result<(), EncodeError> {
    check_protocol(
        enc,
        "pyarrow record batches (pyarrow.RecordBatch.from_arrays)",
    )?;
    enc.global("pyarrow", "RecordBatch.from_arrays")?;
    enc.list(batch.columns(), &mut |enc, c| {
        write_window(enc, c.as_ref(), 0, c.len())
    })?;
    enc.none()?;
    write_shared_schema(enc, batch.schema_ref())?;
    enc.tuple(3)?;
    enc.reduce()
}

/// A schema, memoised by the address of its `Arc` (batches of one table share it).
pub(crate) fn write_shared_schema(
    enc: &mut Encoder<'_, '_>,
    schema: &SchemaRef,
) -> Result<(), EncodeError> {
    let key = MemoKey::Shared {
        addr: std::sync::Arc::as_ptr(schema) as usize,
        tag: "arrow schema",
        start: 0,
        len: 0,
    };
    if enc.get_memo(&key)? {
        return Ok(());
    }
    write_schema(enc, schema)?;
    enc.memoize(key)
}

/// `pyarrow.chunked_array([chunks], type)`.
pub(crate) fn write_chunked<'a>(
    enc: &mut Encoder<'a, '_>,
    chunks: &'a [ArrayRef],
    dt: &DataType,
) -> Result<(), EncodeError> {
    check_protocol(enc, "pyarrow chunked arrays")?;
    enc.global("pyarrow", "chunked_array")?;
    enc.list(chunks, &mut |enc, c| {
        write_window(enc, c.as_ref(), 0, c.len())
    })?;
    write_type(enc, dt)?;
    enc.tuple(2)?;
    enc.reduce()
}

/// `pyarrow.Table.from_batches([batches], schema)`.
pub(crate) fn write_table<'a>(
    enc: &mut Encoder<'a, '_>,
    schema: &'a SchemaRef,
    batches: &'a [RecordBatch],
) -> Result<(), EncodeError> {
    check_protocol(enc, "pyarrow tables (pyarrow.Table.from_batches)")?;
    enc.global("pyarrow", "Table.from_batches")?;
    enc.list(batches, &mut |enc, b| write_batch(enc, b))?;
    write_shared_schema(enc, schema)?;
    enc.tuple(2)?;
    enc.reduce()
}
