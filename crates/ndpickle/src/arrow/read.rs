//! pyarrow objects in a read [`Value`] tree as arrow-rs arrays, record batches and tables.
//!
//! The reader ([`crate::read`]) keeps pyarrow reduce forms as [`Value::Object`] nodes; this
//! module turns them into arrow-rs data. It accepts what pyarrow itself pickles:
//! - arrays: `pyarrow.lib._restore_array((type, length, null_count, offset, buffers,
//!   children[, dictionary]))`, the 7-tuple of current versions and the older 6-tuple,
//!   children and dictionary nested as the same tuples, `null_count` `-1` meaning unknown;
//! - buffers: `py_buffer(<bytes | bytearray | PickleBuffer>)` or `None` for an absent buffer;
//! - types: `type_for_alias('int64')` and the type factories (`timestamp`, `list_`, `struct`,
//!   `map_`, `dictionary`, `union`, `run_end_encoded`, `decimal128`, `binary(n)`, ...);
//! - `field(name, type, nullable, metadata)`, `schema(fields, metadata)` (metadata a dict of
//!   bytes or str, or `KeyValueMetadata`), `chunked_array(chunks, type)`,
//!   `_reconstruct_record_batch(columns, schema)`, `_reconstruct_table(columns, schema)`;
//!
//! and what this crate's writer ([`super::write`]) emits: `Array.from_buffers(type, length,
//! buffers, null_count, offset, children)`, `DictionaryArray.from_buffers(type, length,
//! buffers, dictionary, null_count, offset)`, `RecordBatch.from_arrays(columns, names,
//! schema)`, `Table.from_batches(batches, schema)` and `Table.from_arrays(columns, names,
//! schema)`.
//!
//! Buffers are zero-copy: an arrow-rs [`Buffer`] is made from the reader's [`Bytes`], so
//! an array read with [`from_payload`] points into the out-of-band buffers. A buffer whose
//! address is not a multiple of its element's alignment (an `i64` column at an odd offset
//! of an in-band pickle, say) is copied once into an aligned allocation, as arrow-rs
//! requires; bitmaps and byte data never need it.
//!
//! Every array is built with [`ArrayDataBuilder::build`], which runs arrow-rs's full
//! validation (buffer sizes, offsets, UTF-8, dictionary keys, union type ids and offsets,
//! run ends), after the checks arrow-rs would otherwise answer with a panic (fixed-size
//! list lengths that overflow, negative widths). A `null_count` that disagrees with the
//! validity bitmap is an error. Bad input gives a [`DecodeError`], never a panic.
//!
//! Not read: extension types, pyarrow scalars, dictionary `ordered` flags (arrow-rs types
//! have none), `map_`'s `keys_sorted` (pyarrow does not pickle it; our writer's third
//! argument is read).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchOptions, make_array};
use arrow_buffer::Buffer;
use arrow_data::{ArrayData, ArrayDataBuilder, BufferSpec, layout};
use arrow_schema::{
    ArrowError, DataType, Field, Fields, IntervalUnit, Schema, SchemaRef, TimeUnit, UnionFields,
    UnionMode,
};
use bytes::Bytes;

use super::{ChunkedArray, Table};
use crate::ReadOptions;
use crate::error::{DecodeError, DecodeErrorKind};
use crate::value::{Object, Value};

/// Any pyarrow object this module reads.
#[derive(Clone, Debug)]
pub enum ArrowValue {
    /// `pyarrow.Array` (any subclass).
    Array(ArrayRef),
    /// `pyarrow.ChunkedArray`.
    ChunkedArray(ChunkedArray),
    /// `pyarrow.RecordBatch`.
    RecordBatch(RecordBatch),
    /// `pyarrow.Table`, with its columns cut at common chunk boundaries.
    Table(Table),
    /// `pyarrow.Schema`.
    Schema(Schema),
    /// `pyarrow.Field`.
    Field(Field),
    /// `pyarrow.DataType`.
    DataType(DataType),
}

/// Reads a pickle of one pyarrow object (in-band buffers are copied once).
pub fn from_slice(pickle: &[u8]) -> Result<ArrowValue, DecodeError> {
    from_slice_with(pickle, &ReadOptions::default())
}

/// [`from_slice`] with the reader's limits and options.
pub fn from_slice_with(pickle: &[u8], opts: &ReadOptions) -> Result<ArrowValue, DecodeError> {
    from_value(&crate::read::from_slice_with(pickle, opts)?)
}

/// Reads a pickle of one pyarrow object held in shared memory: in-band buffers are slices
/// of `pickle`.
pub fn from_bytes(pickle: Bytes) -> Result<ArrowValue, DecodeError> {
    from_bytes_with(pickle, &ReadOptions::default())
}

/// [`from_bytes`] with the reader's limits and options.
pub fn from_bytes_with(pickle: Bytes, opts: &ReadOptions) -> Result<ArrowValue, DecodeError> {
    from_value(&crate::read::from_bytes_with(pickle, opts)?)
}

/// Reads a protocol-5 pickle of one pyarrow object with its out-of-band buffers, in the
/// order `NEXT_BUFFER` consumes them (raw or compressed, see [`crate::InBuffer`]); the
/// arrays point into raw buffers.
pub fn from_payload<B>(
    pickle: &[u8],
    buffers: impl IntoIterator<Item = B>,
) -> Result<ArrowValue, DecodeError>
where
    B: Into<crate::InBuffer>,
{
    from_payload_with(pickle, buffers, &ReadOptions::default())
}

/// [`from_payload`] with the reader's limits and options.
pub fn from_payload_with<B>(
    pickle: &[u8],
    buffers: impl IntoIterator<Item = B>,
    opts: &ReadOptions,
) -> Result<ArrowValue, DecodeError>
where
    B: Into<crate::InBuffer>,
{
    from_value(&crate::read::from_payload_with(pickle, buffers, opts)?)
}

/// The pyarrow object a read value stands for.
pub fn from_value(v: &Value) -> Result<ArrowValue, DecodeError> {
    let o = object(v, "a pyarrow object")?;
    Ok(match o.callable.name.as_str() {
        "_restore_array" | "Array.from_buffers" | "DictionaryArray.from_buffers" => {
            ArrowValue::Array(array_from_value(v)?)
        }
        "chunked_array" => ArrowValue::ChunkedArray(chunked_from_value(v)?),
        "_reconstruct_record_batch" | "RecordBatch.from_arrays" => {
            ArrowValue::RecordBatch(record_batch_from_value(v)?)
        }
        "_reconstruct_table" | "Table.from_batches" | "Table.from_arrays" => {
            ArrowValue::Table(table_from_value(v)?)
        }
        "schema" => ArrowValue::Schema(schema_from_value(v)?),
        "field" => ArrowValue::Field(field_from_value(v)?),
        _ => ArrowValue::DataType(data_type_from_value(v)?),
    })
}

// ---------------------------------------------------------------------------------------
// Small helpers.

fn bad(msg: impl Into<String>) -> DecodeError {
    DecodeError::new(DecodeErrorKind::BadArray(msg.into()))
}

/// An arrow-rs validation error, with what was being built.
fn arrow_err(what: &str, e: ArrowError) -> DecodeError {
    match e {
        ArrowError::InvalidArgumentError(msg) => bad(format!("{what}: {msg}")),
        e => bad(format!("{what}: {e}")),
    }
}

fn type_err(expected: &str, found: &Value) -> DecodeError {
    DecodeError::new(DecodeErrorKind::Type {
        expected: expected.to_string(),
        found: found.type_name().to_string(),
    })
}

/// A pyarrow object node (module `pyarrow` or `pyarrow.lib`).
fn object<'v>(v: &'v Value, what: &str) -> Result<&'v Object, DecodeError> {
    match v {
        Value::Object(o) if matches!(o.callable.module.as_str(), "pyarrow" | "pyarrow.lib") => {
            Ok(o)
        }
        Value::Object(o) => Err(bad(format!("{what}: {} is not a pyarrow call", o.callable))),
        other => Err(type_err(what, other)),
    }
}

/// Argument `i`, or `None` when absent (Python's defaults are `None` or the given value).
fn arg(o: &Object, i: usize) -> &Value {
    o.args.get(i).unwrap_or(&Value::None)
}

/// Checks the number of positional arguments.
fn arity(o: &Object, min: usize, max: usize) -> Result<(), DecodeError> {
    let n = o.args.len();
    if n < min || n > max {
        return Err(bad(format!(
            "{} takes {min} to {max} arguments, not {n}",
            o.callable
        )));
    }
    Ok(())
}

fn int(v: &Value, what: &str) -> Result<i64, DecodeError> {
    match v {
        Value::Int(_) | Value::Bool(_) | Value::BigInt(_) => v
            .as_i64()
            .ok_or_else(|| bad(format!("{what} does not fit in 64 bits"))),
        other => Err(type_err(&format!("an int for {what}"), other)),
    }
}

fn size(v: &Value, what: &str) -> Result<usize, DecodeError> {
    let i = int(v, what)?;
    usize::try_from(i).map_err(|_| bad(format!("{what} must be non-negative, not {i}")))
}

fn string(v: &Value, what: &str) -> Result<String, DecodeError> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        Value::Bytes(b) => {
            String::from_utf8(b.to_vec()).map_err(|_| bad(format!("{what} is not valid UTF-8")))
        }
        other => Err(type_err(&format!("a str for {what}"), other)),
    }
}

fn seq<'v>(v: &'v Value, what: &str) -> Result<&'v [Value], DecodeError> {
    v.as_seq()
        .ok_or_else(|| type_err(&format!("a list for {what}"), v))
}

fn flag(v: &Value, what: &str, default: bool) -> Result<bool, DecodeError> {
    match v {
        Value::None => Ok(default),
        Value::Bool(b) => Ok(*b),
        Value::Int(i) => Ok(*i != 0),
        other => Err(type_err(&format!("a bool for {what}"), other)),
    }
}

// ---------------------------------------------------------------------------------------
// Types, fields, schemas.

fn unit(v: &Value) -> Result<TimeUnit, DecodeError> {
    Ok(match string(v, "a time unit")?.as_str() {
        "s" => TimeUnit::Second,
        "ms" => TimeUnit::Millisecond,
        "us" => TimeUnit::Microsecond,
        "ns" => TimeUnit::Nanosecond,
        other => return Err(bad(format!("unknown time unit {other:?}"))),
    })
}

/// The types pyarrow's `type_for_alias` knows, and the factories that take no argument.
fn alias(name: &str) -> Option<DataType> {
    use DataType as D;
    use TimeUnit::*;
    Some(match name {
        "null" => D::Null,
        "bool" | "boolean" | "bool_" => D::Boolean,
        "i1" | "int8" => D::Int8,
        "i2" | "int16" => D::Int16,
        "i4" | "int32" => D::Int32,
        "i8" | "int64" => D::Int64,
        "u1" | "uint8" => D::UInt8,
        "u2" | "uint16" => D::UInt16,
        "u4" | "uint32" => D::UInt32,
        "u8" | "uint64" => D::UInt64,
        "f2" | "halffloat" | "float16" => D::Float16,
        "f4" | "float" | "float32" => D::Float32,
        "f8" | "double" | "float64" => D::Float64,
        "string" | "str" | "utf8" => D::Utf8,
        "binary" => D::Binary,
        "large_string" | "large_str" | "large_utf8" => D::LargeUtf8,
        "large_binary" => D::LargeBinary,
        "binary_view" => D::BinaryView,
        "string_view" => D::Utf8View,
        "date32" | "date32[day]" => D::Date32,
        "date64" | "date64[ms]" => D::Date64,
        "time32[s]" => D::Time32(Second),
        "time32[ms]" => D::Time32(Millisecond),
        "time64[us]" => D::Time64(Microsecond),
        "time64[ns]" => D::Time64(Nanosecond),
        "timestamp[s]" => D::Timestamp(Second, None),
        "timestamp[ms]" => D::Timestamp(Millisecond, None),
        "timestamp[us]" => D::Timestamp(Microsecond, None),
        "timestamp[ns]" => D::Timestamp(Nanosecond, None),
        "duration[s]" => D::Duration(Second),
        "duration[ms]" => D::Duration(Millisecond),
        "duration[us]" => D::Duration(Microsecond),
        "duration[ns]" => D::Duration(Nanosecond),
        "month_day_nano_interval" => D::Interval(IntervalUnit::MonthDayNano),
        _ => return None,
    })
}

/// How deeply types and arrays may nest (as in Arrow C++'s IPC reader), so that a
/// hand-built [`Value`] cannot exhaust the stack.
pub const MAX_NESTING: usize = 64;

fn nest(depth: usize) -> Result<usize, DecodeError> {
    if depth >= MAX_NESTING {
        return Err(DecodeError::new(DecodeErrorKind::Limit {
            limit: "arrow type nesting depth",
            max: MAX_NESTING as u64,
        }));
    }
    Ok(depth + 1)
}

/// A field argument of a type factory: a `Field`, or a type given the default name.
fn field_or_type(v: &Value, name: &str, nullable: bool, d: usize) -> Result<Field, DecodeError> {
    match v {
        Value::Object(o) if o.callable.name == "field" => field_at(v, d),
        _ => Ok(Field::new(name, dtype(v, d)?, nullable)),
    }
}

/// The fields of a `struct` or `union`: `Field`s or `(name, type)` tuples.
fn fields(v: &Value, d: usize) -> Result<Vec<Field>, DecodeError> {
    seq(v, "fields")?
        .iter()
        .map(|f| match f {
            Value::Tuple(t) if t.len() == 2 => Ok(Field::new(
                string(&t[0], "a field name")?,
                dtype(&t[1], d)?,
                true,
            )),
            _ => field_at(f, d),
        })
        .collect()
}

fn decimal(o: &Object, max: i64) -> Result<(u8, i8), DecodeError> {
    arity(o, 1, 2)?;
    let p = int(arg(o, 0), "decimal precision")?;
    let s = match arg(o, 1) {
        Value::None => 0,
        v => int(v, "decimal scale")?,
    };
    if !(1..=max).contains(&p) {
        return Err(bad(format!(
            "{}: precision {p} is not in 1..={max}",
            o.callable
        )));
    }
    let s = i8::try_from(s).map_err(|_| bad(format!("decimal scale {s} out of range")))?;
    Ok((p as u8, s))
}

/// A pyarrow `DataType`: `type_for_alias(name)` or a type factory call.
pub fn data_type_from_value(v: &Value) -> Result<DataType, DecodeError> {
    dtype(v, 0)
}

fn dtype(v: &Value, depth: usize) -> Result<DataType, DecodeError> {
    use DataType as D;
    let d = nest(depth)?;
    if let Value::Str(s) = v {
        return alias(s).ok_or_else(|| bad(format!("unknown pyarrow type alias {s:?}")));
    }
    let o = object(v, "a pyarrow type")?;
    let name = o.callable.name.as_str();
    let dt = match name {
        "type_for_alias" => {
            arity(o, 1, 1)?;
            let s = string(arg(o, 0), "a type alias")?;
            alias(&s).ok_or_else(|| bad(format!("unknown pyarrow type alias {s:?}")))?
        }
        "timestamp" => {
            arity(o, 1, 2)?;
            let tz = match arg(o, 1) {
                Value::None => None,
                v => Some(Arc::from(string(v, "a time zone")?)),
            };
            D::Timestamp(unit(arg(o, 0))?, tz)
        }
        "time32" | "time64" | "duration" => {
            arity(o, 1, 1)?;
            let u = unit(arg(o, 0))?;
            match (name, u) {
                ("time32", TimeUnit::Second | TimeUnit::Millisecond) => D::Time32(u),
                ("time64", TimeUnit::Microsecond | TimeUnit::Nanosecond) => D::Time64(u),
                ("duration", _) => D::Duration(u),
                _ => return Err(bad(format!("{name} has no unit {u:?}"))),
            }
        }
        "binary" | "fixed_size_binary" if !o.args.is_empty() => {
            arity(o, 1, 1)?;
            match int(arg(o, 0), "binary width")? {
                -1 if name == "binary" => D::Binary,
                n => D::FixedSizeBinary(
                    i32::try_from(n)
                        .ok()
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| bad(format!("fixed-size binary width {n}")))?,
                ),
            }
        }
        "decimal32" => {
            let (p, s) = decimal(o, 9)?;
            D::Decimal32(p, s)
        }
        "decimal64" => {
            let (p, s) = decimal(o, 18)?;
            D::Decimal64(p, s)
        }
        "decimal128" => {
            let (p, s) = decimal(o, 38)?;
            D::Decimal128(p, s)
        }
        "decimal256" => {
            let (p, s) = decimal(o, 76)?;
            D::Decimal256(p, s)
        }
        "list_" => {
            arity(o, 1, 2)?;
            let f = Arc::new(field_or_type(arg(o, 0), "item", true, d)?);
            match arg(o, 1) {
                Value::None => D::List(f),
                n => match int(n, "list size")? {
                    -1 => D::List(f),
                    n => D::FixedSizeList(
                        f,
                        i32::try_from(n)
                            .ok()
                            .filter(|n| *n >= 0)
                            .ok_or_else(|| bad(format!("fixed-size list size {n}")))?,
                    ),
                },
            }
        }
        "large_list" | "list_view" | "large_list_view" => {
            arity(o, 1, 1)?;
            let f = Arc::new(field_or_type(arg(o, 0), "item", true, d)?);
            match name {
                "large_list" => D::LargeList(f),
                "list_view" => D::ListView(f),
                _ => D::LargeListView(f),
            }
        }
        "struct" => {
            arity(o, 1, 1)?;
            D::Struct(Fields::from(fields(arg(o, 0), d)?))
        }
        "map_" => {
            arity(o, 2, 3)?;
            let key = field_or_type(arg(o, 0), "key", false, d)?;
            let item = field_or_type(arg(o, 1), "value", true, d)?;
            let entries = Field::new("entries", D::Struct(Fields::from(vec![key, item])), false);
            D::Map(Arc::new(entries), flag(arg(o, 2), "keys_sorted", false)?)
        }
        "dictionary" => {
            arity(o, 2, 3)?;
            let key = dtype(arg(o, 0), d)?;
            if !key.is_dictionary_key_type() {
                return Err(bad(format!("{key} cannot index a dictionary")));
            }
            flag(arg(o, 2), "ordered", false)?;
            D::Dictionary(Box::new(key), Box::new(dtype(arg(o, 1), d)?))
        }
        "run_end_encoded" => {
            arity(o, 2, 2)?;
            let ends = dtype(arg(o, 0), d)?;
            if !matches!(ends, D::Int16 | D::Int32 | D::Int64) {
                return Err(bad(format!("run ends of type {ends}")));
            }
            D::RunEndEncoded(
                Arc::new(Field::new("run_ends", ends, false)),
                Arc::new(Field::new("values", dtype(arg(o, 1), d)?, true)),
            )
        }
        "union" | "sparse_union" | "dense_union" => {
            let (mode, codes) = if name == "union" {
                arity(o, 2, 3)?;
                let mode = match arg(o, 1) {
                    Value::Str(s) if s == "sparse" => UnionMode::Sparse,
                    Value::Str(s) if s == "dense" => UnionMode::Dense,
                    Value::Int(0) => UnionMode::Sparse,
                    Value::Int(1) => UnionMode::Dense,
                    other => return Err(bad(format!("union mode {other:?}"))),
                };
                (mode, arg(o, 2))
            } else {
                arity(o, 1, 2)?;
                let mode = if name == "sparse_union" {
                    UnionMode::Sparse
                } else {
                    UnionMode::Dense
                };
                (mode, arg(o, 1))
            };
            let fs = fields(arg(o, 0), d)?;
            let ids: Vec<i8> = match codes {
                Value::None => (0..fs.len())
                    .map(|i| i8::try_from(i).map_err(|_| bad("more than 128 union fields")))
                    .collect::<Result<_, _>>()?,
                v => seq(v, "union type codes")?
                    .iter()
                    .map(|c| {
                        let c = int(c, "a union type code")?;
                        i8::try_from(c)
                            .ok()
                            .filter(|c| *c >= 0)
                            .ok_or_else(|| bad(format!("union type code {c}")))
                    })
                    .collect::<Result<_, _>>()?,
            };
            if ids.len() != fs.len() {
                return Err(bad(format!(
                    "union of {} fields with {} type codes",
                    fs.len(),
                    ids.len()
                )));
            }
            let uf = UnionFields::try_new(ids, fs).map_err(|e| arrow_err("union type", e))?;
            D::Union(uf, mode)
        }
        other => {
            arity(o, 0, 0)?;
            alias(other).ok_or_else(|| bad(format!("{} is not a pyarrow type", o.callable)))?
        }
    };
    Ok(dt)
}

/// Key-value metadata: `None`, a dict of `bytes` or `str`, or `KeyValueMetadata(items)`.
fn metadata(v: &Value) -> Result<HashMap<String, String>, DecodeError> {
    let pairs: Vec<(&Value, &Value)> = match v {
        Value::None => return Ok(HashMap::new()),
        Value::Dict(items) => items.iter().map(|(k, v)| (k, v)).collect(),
        Value::Object(o) if o.callable.name == "KeyValueMetadata" => match arg(o, 0) {
            Value::None => Vec::new(),
            Value::Dict(items) => items.iter().map(|(k, v)| (k, v)).collect(),
            items => seq(items, "metadata items")?
                .iter()
                .map(|kv| match kv.as_seq() {
                    Some([k, v]) => Ok((k, v)),
                    _ => Err(type_err("a (key, value) pair", kv)),
                })
                .collect::<Result<_, _>>()?,
        },
        other => return Err(type_err("a dict of metadata", other)),
    };
    pairs
        .into_iter()
        .map(|(k, v)| Ok((string(k, "a metadata key")?, string(v, "a metadata value")?)))
        .collect()
}

/// A pyarrow `Field`: `field(name, type, nullable=True, metadata=None)`.
pub fn field_from_value(v: &Value) -> Result<Field, DecodeError> {
    field_at(v, 0)
}

fn field_at(v: &Value, d: usize) -> Result<Field, DecodeError> {
    let o = object(v, "a pyarrow field")?;
    if o.callable.name != "field" {
        return Err(bad(format!("{} is not pyarrow.field", o.callable)));
    }
    arity(o, 2, 4)?;
    let f = Field::new(
        string(arg(o, 0), "a field name")?,
        dtype(arg(o, 1), d)?,
        flag(arg(o, 2), "nullable", true)?,
    );
    Ok(f.with_metadata(metadata(arg(o, 3))?))
}

/// A pyarrow `Schema`: `schema(fields, metadata=None)`.
pub fn schema_from_value(v: &Value) -> Result<Schema, DecodeError> {
    let o = object(v, "a pyarrow schema")?;
    if o.callable.name != "schema" {
        return Err(bad(format!("{} is not pyarrow.schema", o.callable)));
    }
    arity(o, 1, 2)?;
    Ok(Schema::new(fields(arg(o, 0), 0)?).with_metadata(metadata(arg(o, 1))?))
}

// ---------------------------------------------------------------------------------------
// Arrays.

/// An array as pyarrow describes it: every buffer of the C++ layout, validity first.
struct Raw {
    dt: DataType,
    len: usize,
    /// `None` when unknown (`-1`).
    null_count: Option<usize>,
    offset: usize,
    buffers: Vec<Option<Buffer>>,
    children: Vec<ArrayData>,
    dictionary: Option<ArrayData>,
}

/// A buffer: `py_buffer(x)`, a bare bytes-like, or `None`.
fn buffer(v: &Value) -> Result<Option<Buffer>, DecodeError> {
    let inner = match v {
        Value::None => return Ok(None),
        Value::Object(o) if o.callable.name == "py_buffer" => {
            object(v, "a buffer")?;
            arity(o, 1, 1)?;
            arg(o, 0)
        }
        other => other,
    };
    let bytes = inner
        .as_bytes()
        .ok_or_else(|| type_err("a buffer (py_buffer of bytes)", inner))?;
    Ok(Some(Buffer::from(bytes.clone())))
}

fn buffers(v: &Value) -> Result<Vec<Option<Buffer>>, DecodeError> {
    seq(v, "buffers")?.iter().map(buffer).collect()
}

fn null_count(v: &Value) -> Result<Option<usize>, DecodeError> {
    match v {
        Value::None => Ok(None),
        v => match int(v, "null count")? {
            -1 => Ok(None),
            n => usize::try_from(n)
                .map(Some)
                .map_err(|_| bad(format!("null count {n}"))),
        },
    }
}

/// The array data of a pyarrow array: a `_restore_array` or `from_buffers` call, or (as a
/// child of `_restore_array`) a bare data tuple.
fn array_data(v: &Value, depth: usize) -> Result<ArrayData, DecodeError> {
    let d = nest(depth)?;
    if let Value::Tuple(t) = v {
        return restore_tuple(t, d);
    }
    let o = object(v, "a pyarrow array")?;
    match o.callable.name.as_str() {
        "_restore_array" => {
            arity(o, 1, 1)?;
            match arg(o, 0) {
                Value::Tuple(t) => restore_tuple(t, d),
                other => Err(type_err("an array data tuple", other)),
            }
        }
        "Array.from_buffers" => {
            arity(o, 3, 6)?;
            let children = match arg(o, 5) {
                Value::None => Vec::new(),
                c => seq(c, "children")?
                    .iter()
                    .map(|c| array_data(c, d))
                    .collect::<Result<_, _>>()?,
            };
            build(Raw {
                dt: data_type_from_value(arg(o, 0))?,
                len: size(arg(o, 1), "array length")?,
                buffers: buffers(arg(o, 2))?,
                null_count: null_count(arg(o, 3))?,
                offset: match arg(o, 4) {
                    Value::None => 0,
                    v => size(v, "array offset")?,
                },
                children,
                dictionary: None,
            })
        }
        "DictionaryArray.from_buffers" => {
            arity(o, 4, 6)?;
            build(Raw {
                dt: data_type_from_value(arg(o, 0))?,
                len: size(arg(o, 1), "array length")?,
                buffers: buffers(arg(o, 2))?,
                dictionary: Some(array_data(arg(o, 3), d)?),
                null_count: null_count(arg(o, 4))?,
                offset: match arg(o, 5) {
                    Value::None => 0,
                    v => size(v, "array offset")?,
                },
                children: Vec::new(),
            })
        }
        _ => Err(bad(format!("{} is not a pyarrow array", o.callable))),
    }
}

/// `(type, length, null_count, offset, buffers, children[, dictionary])`.
fn restore_tuple(t: &[Value], d: usize) -> Result<ArrayData, DecodeError> {
    if t.len() != 6 && t.len() != 7 {
        return Err(bad(format!(
            "array data tuple of {} items, not 6 or 7",
            t.len()
        )));
    }
    let children = seq(&t[5], "children")?
        .iter()
        .map(|c| array_data(c, d))
        .collect::<Result<_, _>>()?;
    let dictionary = match t.get(6) {
        None | Some(Value::None) => None,
        Some(x) => Some(array_data(x, d)?),
    };
    build(Raw {
        dt: data_type_from_value(&t[0])?,
        len: size(&t[1], "array length")?,
        null_count: null_count(&t[2])?,
        offset: size(&t[3], "array offset")?,
        buffers: buffers(&t[4])?,
        children,
        dictionary,
    })
}

/// How many buffers after the validity bitmap a type has in the Arrow layout, `None` for
/// "one or more" (views: the views, then any number of data buffers).
fn data_buffers(dt: &DataType) -> Option<usize> {
    use DataType as D;
    Some(match dt {
        D::Null | D::Struct(_) | D::FixedSizeList(..) | D::RunEndEncoded(..) => 0,
        D::Utf8 | D::LargeUtf8 | D::Binary | D::LargeBinary => 2,
        D::ListView(_) | D::LargeListView(_) => 2,
        D::Union(_, UnionMode::Dense) => 2,
        D::Utf8View | D::BinaryView => return None,
        _ => 1,
    })
}

/// Checks the layout and builds validated array data.
fn build(raw: Raw) -> Result<ArrayData, DecodeError> {
    let Raw {
        dt,
        len,
        null_count,
        offset,
        mut buffers,
        mut children,
        dictionary,
    } = raw;
    let what = || format!("{dt} array");
    let total = len
        .checked_add(offset)
        .ok_or_else(|| bad(format!("{}: length plus offset overflows", what())))?;
    if buffers.is_empty() {
        return Err(bad(format!("{}: no buffers", what())));
    }
    let validity = buffers.remove(0);
    if validity.is_some()
        && matches!(
            dt,
            DataType::Null | DataType::Union(..) | DataType::RunEndEncoded(..)
        )
    {
        return Err(bad(format!("{}: this type has no validity bitmap", what())));
    }
    match data_buffers(&dt) {
        Some(n) if buffers.len() != n => {
            return Err(bad(format!(
                "{}: {} buffers, not {}",
                what(),
                buffers.len() + 1,
                n + 1
            )));
        }
        None if buffers.is_empty() => {
            return Err(bad(format!("{}: no views buffer", what())));
        }
        _ => {}
    }
    let offsets_first = matches!(
        dt,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::List(_)
            | DataType::LargeList(_)
            | DataType::Map(..)
    );
    let mut buffers: Vec<Buffer> = buffers
        .into_iter()
        .enumerate()
        .map(|(i, b)| match b {
            Some(b) => b,
            // An empty array may omit its offsets: one zero offset stands in.
            None if i == 0 && offsets_first && total == 0 => Buffer::from(vec![0u8; 8]),
            None => Buffer::from(Vec::<u8>::new()),
        })
        .collect();
    // arrow-rs asserts that a typed buffer holds whole elements: drop a trailing partial
    // element (it can never be referenced).
    for (b, spec) in buffers.iter_mut().zip(&layout(&dt).buffers) {
        if let BufferSpec::FixedWidth { byte_width, .. } = spec
            && *byte_width > 1
            && !b.len().is_multiple_of(*byte_width)
        {
            *b = b.slice_with_length(0, b.len() - b.len() % byte_width);
        }
    }
    match (&dt, dictionary) {
        (DataType::Dictionary(_, value), Some(d)) => {
            if !children.is_empty() {
                return Err(bad(format!("{}: children besides the dictionary", what())));
            }
            if d.data_type() != value.as_ref() {
                return Err(bad(format!(
                    "{}: dictionary of type {}",
                    what(),
                    d.data_type()
                )));
            }
            children.push(d);
        }
        (DataType::Dictionary(..), None) => {
            return Err(bad(format!("{}: no dictionary", what())));
        }
        (_, Some(_)) => {
            return Err(bad(format!(
                "{}: a dictionary for a non-dictionary type",
                what()
            )));
        }
        (_, None) => {}
    }
    // arrow-rs panics on a fixed-size list whose value count overflows: check it first.
    if let DataType::FixedSizeList(_, n) = &dt {
        let n = usize::try_from(*n).map_err(|_| bad(format!("{}: negative size", what())))?;
        let need = total
            .checked_mul(n)
            .ok_or_else(|| bad(format!("{}: value count overflows", what())))?;
        if children.first().is_some_and(|c| c.len() < need) {
            return Err(bad(format!(
                "{}: {} values needed, child has {}",
                what(),
                need,
                children[0].len()
            )));
        }
    }
    let data = ArrayDataBuilder::new(dt.clone())
        .len(len)
        .offset(offset)
        .null_bit_buffer(validity)
        .buffers(buffers)
        .child_data(children)
        .align_buffers(true)
        .build()
        .map_err(|e| arrow_err(&what(), e))?;
    if let Some(claimed) = null_count {
        let actual = match dt {
            DataType::Null => len,
            _ => data.null_count(),
        };
        let null_ok = claimed == actual || (matches!(dt, DataType::Null) && claimed == 0);
        if !null_ok {
            return Err(bad(format!(
                "{}: null count {claimed} but the validity bitmap has {actual} nulls",
                what()
            )));
        }
    }
    Ok(data)
}

/// A pyarrow `Array` (any type, including dictionary arrays) as an arrow-rs array.
pub fn array_from_value(v: &Value) -> Result<ArrayRef, DecodeError> {
    if let Value::Tuple(_) = v {
        return Err(type_err("a pyarrow array", v));
    }
    Ok(make_array(array_data(v, 0)?))
}

/// A pyarrow `ChunkedArray`: `chunked_array(chunks, type=None)`.
pub fn chunked_from_value(v: &Value) -> Result<ChunkedArray, DecodeError> {
    let o = object(v, "a pyarrow chunked array")?;
    if o.callable.name != "chunked_array" {
        return Err(bad(format!("{} is not pyarrow.chunked_array", o.callable)));
    }
    arity(o, 1, 2)?;
    let chunks = seq(arg(o, 0), "chunks")?
        .iter()
        .map(array_from_value)
        .collect::<Result<Vec<_>, _>>()?;
    match arg(o, 1) {
        Value::None => ChunkedArray::from_chunks(chunks),
        t => ChunkedArray::try_new(chunks, data_type_from_value(t)?),
    }
    .map_err(|e| arrow_err("chunked array", e))
}

/// A schema from the `schema` argument of a batch or table, or from column names.
fn schema_or_names(
    schema: &Value,
    names: &Value,
    types: &[DataType],
) -> Result<SchemaRef, DecodeError> {
    if !matches!(schema, Value::None) {
        return Ok(Arc::new(schema_from_value(schema)?));
    }
    let names = seq(names, "column names (no schema given)")?;
    if names.len() != types.len() {
        return Err(bad(format!(
            "{} names for {} columns",
            names.len(),
            types.len()
        )));
    }
    let fields = names
        .iter()
        .zip(types)
        .map(|(n, t)| Ok(Field::new(string(n, "a column name")?, t.clone(), true)))
        .collect::<Result<Vec<_>, DecodeError>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

fn batch(
    schema: SchemaRef,
    columns: Vec<ArrayRef>,
    rows: usize,
) -> Result<RecordBatch, DecodeError> {
    let opts = RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(schema, columns, &opts)
        .map_err(|e| arrow_err("record batch", e))
}

/// A pyarrow `RecordBatch`: `_reconstruct_record_batch(columns, schema)` or
/// `RecordBatch.from_arrays(columns, names=None, schema=None)`.
pub fn record_batch_from_value(v: &Value) -> Result<RecordBatch, DecodeError> {
    let o = object(v, "a pyarrow record batch")?;
    let (schema, names) = match o.callable.name.as_str() {
        "_reconstruct_record_batch" => {
            arity(o, 2, 2)?;
            (arg(o, 1), &Value::None)
        }
        "RecordBatch.from_arrays" => {
            arity(o, 1, 4)?;
            (arg(o, 2), arg(o, 1))
        }
        _ => return Err(bad(format!("{} is not a pyarrow record batch", o.callable))),
    };
    let columns = seq(arg(o, 0), "columns")?
        .iter()
        .map(array_from_value)
        .collect::<Result<Vec<_>, _>>()?;
    let types: Vec<DataType> = columns.iter().map(|c| c.data_type().clone()).collect();
    let schema = schema_or_names(schema, names, &types)?;
    let rows = columns.first().map_or(0, |c| c.len());
    batch(schema, columns, rows)
}

/// A pyarrow `Table`: `_reconstruct_table(columns, schema)` (chunked columns, cut here at
/// their common chunk boundaries, zero-copy), `Table.from_batches(batches, schema=None)` or
/// `Table.from_arrays(columns, names=None, schema=None)`.
pub fn table_from_value(v: &Value) -> Result<Table, DecodeError> {
    let o = object(v, "a pyarrow table")?;
    match o.callable.name.as_str() {
        "Table.from_batches" => {
            arity(o, 1, 2)?;
            let batches = seq(arg(o, 0), "batches")?
                .iter()
                .map(record_batch_from_value)
                .collect::<Result<Vec<_>, _>>()?;
            let schema = match arg(o, 1) {
                Value::None => batches
                    .first()
                    .map(|b| b.schema())
                    .ok_or_else(|| bad("a table without batches needs its schema"))?,
                s => Arc::new(schema_from_value(s)?),
            };
            Table::try_new(schema, batches).map_err(|e| arrow_err("table", e))
        }
        "_reconstruct_table" | "Table.from_arrays" => {
            let (schema, names) = if o.callable.name == "_reconstruct_table" {
                arity(o, 2, 2)?;
                (arg(o, 1), &Value::None)
            } else {
                arity(o, 1, 4)?;
                (arg(o, 2), arg(o, 1))
            };
            let columns = seq(arg(o, 0), "columns")?
                .iter()
                .map(|c| match c {
                    Value::Object(x) if x.callable.name == "chunked_array" => chunked_from_value(c),
                    _ => ChunkedArray::from_chunks(vec![array_from_value(c)?])
                        .map_err(|e| arrow_err("column", e)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let types: Vec<DataType> = columns.iter().map(|c| c.data_type().clone()).collect();
            let schema = schema_or_names(schema, names, &types)?;
            table_from_columns(schema, &columns)
        }
        _ => Err(bad(format!("{} is not a pyarrow table", o.callable))),
    }
}

/// Record batches cut where any column's chunk ends; each column a zero-copy slice.
fn table_from_columns(schema: SchemaRef, columns: &[ChunkedArray]) -> Result<Table, DecodeError> {
    if columns.len() != schema.fields().len() {
        return Err(bad(format!(
            "table of {} columns with a schema of {} fields",
            columns.len(),
            schema.fields().len()
        )));
    }
    let rows = columns.first().map_or(0, |c| c.len());
    if let Some(c) = columns.iter().find(|c| c.len() != rows) {
        return Err(bad(format!(
            "table columns of {} and {} rows",
            rows,
            c.len()
        )));
    }
    // Per column: (chunk index, position in chunk).
    let mut cursor = vec![(0usize, 0usize); columns.len()];
    let mut batches = Vec::new();
    let mut done = 0;
    while done < rows {
        // Skip exhausted chunks; the next cut is the nearest chunk end.
        let mut step = rows - done;
        for (c, (ci, pos)) in columns.iter().zip(cursor.iter_mut()) {
            while c.chunks()[*ci].len() == *pos {
                *ci += 1;
                *pos = 0;
            }
            step = step.min(c.chunks()[*ci].len() - *pos);
        }
        let cols = columns
            .iter()
            .zip(cursor.iter_mut())
            .map(|(c, (ci, pos))| {
                let a = c.chunks()[*ci].slice(*pos, step);
                *pos += step;
                a
            })
            .collect();
        batches.push(batch(schema.clone(), cols, step)?);
        done += step;
    }
    Table::try_new(schema, batches).map_err(|e| arrow_err("table", e))
}
