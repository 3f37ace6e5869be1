//! arrow-rs [`DataType`], [`Field`] and [`Schema`] as calls of pyarrow's public type
//! factories: `pyarrow.int64()`, `pyarrow.timestamp('ns', 'UTC')`, `pyarrow.list_(field)`,
//! `pyarrow.field(name, type, nullable, metadata)`, `pyarrow.schema(fields, metadata)`, ...

use arrow_schema::{DataType, Field, IntervalUnit, Metadata, Schema, TimeUnit, UnionMode};

use crate::error::EncodeError;
use crate::write::Encoder;

/// The pyarrow spelling of a time unit.
pub(crate) fn unit_str(unit: TimeUnit) -> &'static str {
    match unit {
        TimeUnit::Second => "s",
        TimeUnit::Millisecond => "ms",
        TimeUnit::Microsecond => "us",
        TimeUnit::Nanosecond => "ns",
    }
}

/// `pyarrow.<name>()`.
fn factory0(enc: &mut Encoder<'_, '_>, name: &'static str) -> Result<(), EncodeError> {
    enc.global("pyarrow", name)?;
    enc.tuple(0)?;
    enc.reduce()
}

/// `pyarrow.<name>(<args>)`, the arguments pushed by `args`.
fn factory<'a>(
    enc: &mut Encoder<'a, '_>,
    name: &'static str,
    n: usize,
    args: impl FnOnce(&mut Encoder<'a, '_>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    enc.global("pyarrow", name)?;
    enc.tuple_start(n)?;
    args(enc)?;
    enc.tuple(n)?;
    enc.reduce()
}

/// A pyarrow `DataType`.
pub fn write_type(enc: &mut Encoder<'_, '_>, dt: &DataType) -> Result<(), EncodeError> {
    use DataType as D;
    match dt {
        D::Null => factory0(enc, "null"),
        D::Boolean => factory0(enc, "bool_"),
        D::Int8 => factory0(enc, "int8"),
        D::Int16 => factory0(enc, "int16"),
        D::Int32 => factory0(enc, "int32"),
        D::Int64 => factory0(enc, "int64"),
        D::UInt8 => factory0(enc, "uint8"),
        D::UInt16 => factory0(enc, "uint16"),
        D::UInt32 => factory0(enc, "uint32"),
        D::UInt64 => factory0(enc, "uint64"),
        D::Float16 => factory0(enc, "float16"),
        D::Float32 => factory0(enc, "float32"),
        D::Float64 => factory0(enc, "float64"),
        D::Timestamp(unit, tz) => factory(enc, "timestamp", 2, |enc| {
            enc.str(unit_str(*unit))?;
            match tz {
                Some(tz) => enc.str(tz),
                None => enc.none(),
            }
        }),
        D::Date32 => factory0(enc, "date32"),
        D::Date64 => factory0(enc, "date64"),
        D::Time32(unit) => factory(enc, "time32", 1, |enc| enc.str(unit_str(*unit))),
        D::Time64(unit) => factory(enc, "time64", 1, |enc| enc.str(unit_str(*unit))),
        D::Duration(unit) => factory(enc, "duration", 1, |enc| enc.str(unit_str(*unit))),
        D::Interval(IntervalUnit::MonthDayNano) => factory0(enc, "month_day_nano_interval"),
        D::Interval(unit) => Err(EncodeError::UnsupportedDtype(format!(
            "interval({unit:?}): pyarrow has no public factory for this interval type \
             (only month_day_nano_interval)"
        ))),
        D::Binary => factory0(enc, "binary"),
        D::FixedSizeBinary(n) => factory(enc, "binary", 1, |enc| enc.int(i64::from(*n))),
        D::LargeBinary => factory0(enc, "large_binary"),
        D::BinaryView => factory0(enc, "binary_view"),
        D::Utf8 => factory0(enc, "string"),
        D::LargeUtf8 => factory0(enc, "large_string"),
        D::Utf8View => factory0(enc, "string_view"),
        D::List(f) => factory(enc, "list_", 1, |enc| write_field(enc, f)),
        D::LargeList(f) => factory(enc, "large_list", 1, |enc| write_field(enc, f)),
        D::FixedSizeList(f, n) => factory(enc, "list_", 2, |enc| {
            write_field(enc, f)?;
            enc.int(i64::from(*n))
        }),
        D::ListView(f) => factory(enc, "list_view", 1, |enc| write_field(enc, f)),
        D::LargeListView(f) => factory(enc, "large_list_view", 1, |enc| write_field(enc, f)),
        D::Struct(fields) => factory(enc, "struct", 1, |enc| {
            enc.list(fields.iter(), &mut |enc, f| write_field(enc, f))
        }),
        D::Union(fields, mode) => {
            let name = match mode {
                UnionMode::Sparse => "sparse_union",
                UnionMode::Dense => "dense_union",
            };
            factory(enc, name, 2, |enc| {
                enc.list(fields.iter(), &mut |enc, (_, f)| write_field(enc, f))?;
                enc.list(fields.iter(), &mut |enc, (id, _)| enc.int(i64::from(id)))
            })
        }
        D::Dictionary(key, value) => factory(enc, "dictionary", 3, |enc| {
            write_type(enc, key)?;
            write_type(enc, value)?;
            enc.bool(false)
        }),
        D::Decimal32(p, s) => decimal(enc, "decimal32", *p, *s),
        D::Decimal64(p, s) => decimal(enc, "decimal64", *p, *s),
        D::Decimal128(p, s) => decimal(enc, "decimal128", *p, *s),
        D::Decimal256(p, s) => decimal(enc, "decimal256", *p, *s),
        D::Map(entries, sorted) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(EncodeError::UnsupportedDtype(format!(
                    "map entries must be a struct, not {}",
                    entries.data_type()
                )));
            };
            if kv.len() != 2 {
                return Err(EncodeError::UnsupportedDtype(format!(
                    "map entries must have 2 fields, not {}",
                    kv.len()
                )));
            }
            if entries.name() != "entries" {
                return Err(EncodeError::UnsupportedDtype(format!(
                    "map entries field named {:?}: pyarrow.map_ always names it \"entries\"",
                    entries.name()
                )));
            }
            factory(enc, "map_", 3, |enc| {
                write_field(enc, &kv[0])?;
                write_field(enc, &kv[1])?;
                enc.bool(*sorted)
            })
        }
        D::RunEndEncoded(run_ends, values) => {
            if run_ends.name() != "run_ends" || values.name() != "values" || !values.is_nullable() {
                return Err(EncodeError::UnsupportedDtype(format!(
                    "{dt}: pyarrow.run_end_encoded only makes fields \"run_ends\" and a \
                     nullable \"values\""
                )));
            }
            factory(enc, "run_end_encoded", 2, |enc| {
                write_type(enc, run_ends.data_type())?;
                write_type(enc, values.data_type())
            })
        }
    }
}

/// `pyarrow.decimalNN(precision, scale)`.
fn decimal(enc: &mut Encoder<'_, '_>, name: &'static str, p: u8, s: i8) -> Result<(), EncodeError> {
    factory(enc, name, 2, |enc| {
        enc.int(i64::from(p))?;
        enc.int(i64::from(s))
    })
}

/// Key-value metadata as a `dict` of `str`, or `None` when empty.
fn write_metadata(enc: &mut Encoder<'_, '_>, md: &Metadata) -> Result<(), EncodeError> {
    if md.is_empty() {
        return enc.none();
    }
    enc.dict(md.iter(), &mut |enc, (k, v)| {
        enc.str(k)?;
        enc.str(v)
    })
}

/// `pyarrow.field(name, type, nullable, metadata)`.
pub fn write_field(enc: &mut Encoder<'_, '_>, f: &Field) -> Result<(), EncodeError> {
    if f.dict_is_ordered() == Some(true) {
        return Err(EncodeError::UnsupportedDtype(format!(
            "field {:?}: ordered dictionaries are not written yet",
            f.name()
        )));
    }
    factory(enc, "field", 4, |enc| {
        enc.str(f.name())?;
        write_type(enc, f.data_type())?;
        enc.bool(f.is_nullable())?;
        write_metadata(enc, f.metadata())
    })
}

/// `pyarrow.schema([fields], metadata)`.
pub fn write_schema(enc: &mut Encoder<'_, '_>, s: &Schema) -> Result<(), EncodeError> {
    factory(enc, "schema", 2, |enc| {
        enc.list(s.fields().iter(), &mut |enc, f| write_field(enc, f))?;
        write_metadata(enc, s.metadata())
    })
}
