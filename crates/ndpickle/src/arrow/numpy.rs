//! [`AsNumpy`]: null-free primitive Arrow columns as numpy arrays, for consumers that have
//! numpy but not pyarrow.

use std::borrow::Cow;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, TimeUnit};

use crate::array::c_strides;
use crate::arrow::write::fixed_values;
use crate::dtype::{ByteOrder, DType, Scalar, TimeKind, TimeUnit as NpUnit};
use crate::error::EncodeError;
use crate::write::numpy::{ArrayParts, Body, plan_parts, write_array};
use crate::write::{Encoder, ToPickle};

/// Writes Arrow data as numpy arrays (through the numpy writer and its options) instead of
/// pyarrow objects: an array becomes a `numpy.ndarray`, a record batch a `dict` of column
/// name to `numpy.ndarray`.
///
/// Accepted: arrays without nulls of the integer and float types, `timestamp` without time
/// zone, `date64`, `duration` (as `datetime64`/`timedelta64`), `bool` (packed into one byte
/// per element: a copy), and fixed-size lists of those without nulls at any level, which
/// become arrays of two and more dimensions. Data is sent zero-copy except for `bool`.
/// Anything else is an [`EncodeError`].
#[derive(Clone, Copy, Debug)]
pub struct AsNumpy<T>(pub T);

impl ToPickle for AsNumpy<ArrayRef> {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        write_numpy(enc, self.0.as_ref())
    }
}

impl ToPickle for AsNumpy<&dyn Array> {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        write_numpy(enc, self.0)
    }
}

impl ToPickle for AsNumpy<RecordBatch> {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        write_batch_numpy(enc, &self.0)
    }
}

impl ToPickle for AsNumpy<&RecordBatch> {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        write_batch_numpy(enc, self.0)
    }
}

fn write_batch_numpy<'a>(
    enc: &mut Encoder<'a, '_>,
    batch: &'a RecordBatch,
) -> Result<(), EncodeError> {
    let schema = batch.schema_ref();
    enc.dict(schema.fields().iter().zip(batch.columns()), &mut |enc,
                                                                (
        f,
        c,
    )| {
        enc.str(f.name())?;
        write_numpy(enc, c.as_ref())
    })
}

/// The numpy dtype of a leaf Arrow type, if it has one with the same bytes.
fn numpy_dtype(dt: &DataType) -> Option<DType> {
    let time = |kind, unit: &TimeUnit| {
        let unit = match unit {
            TimeUnit::Second => NpUnit::Second,
            TimeUnit::Millisecond => NpUnit::Millisecond,
            TimeUnit::Microsecond => NpUnit::Microsecond,
            TimeUnit::Nanosecond => NpUnit::Nanosecond,
        };
        DType::Time {
            kind,
            unit,
            count: 1,
            order: ByteOrder::NATIVE,
        }
    };
    Some(match dt {
        DataType::Boolean => DType::native(Scalar::Bool),
        DataType::Int8 => DType::native(Scalar::I8),
        DataType::Int16 => DType::native(Scalar::I16),
        DataType::Int32 => DType::native(Scalar::I32),
        DataType::Int64 => DType::native(Scalar::I64),
        DataType::UInt8 => DType::native(Scalar::U8),
        DataType::UInt16 => DType::native(Scalar::U16),
        DataType::UInt32 => DType::native(Scalar::U32),
        DataType::UInt64 => DType::native(Scalar::U64),
        DataType::Float16 => DType::native(Scalar::F16),
        DataType::Float32 => DType::native(Scalar::F32),
        DataType::Float64 => DType::native(Scalar::F64),
        DataType::Timestamp(unit, None) => time(TimeKind::DateTime, unit),
        DataType::Date64 => time(TimeKind::DateTime, &TimeUnit::Millisecond),
        DataType::Duration(unit) => time(TimeKind::TimeDelta, unit),
        _ => return None,
    })
}

/// One Arrow array as a numpy array.
fn write_numpy<'a>(enc: &mut Encoder<'a, '_>, array: &'a dyn Array) -> Result<(), EncodeError> {
    let no_numpy = |why: &str| {
        EncodeError::UnsupportedDtype(format!("arrow {} as numpy: {why}", array.data_type()))
    };
    let mut shape = vec![array.len()];
    let mut leaf = array;
    while let DataType::FixedSizeList(_, size) = leaf.data_type() {
        if leaf.logical_null_count() > 0 {
            return Err(no_numpy("numpy has no missing values"));
        }
        let size = usize::try_from(*size).map_err(|_| no_numpy("negative list size"))?;
        shape.push(size);
        leaf = leaf
            .as_fixed_size_list_opt()
            .ok_or_else(|| no_numpy("not a fixed-size list array"))?
            .values()
            .as_ref();
    }
    if leaf.logical_null_count() > 0 {
        return Err(no_numpy("numpy has no missing values"));
    }
    let dtype = numpy_dtype(leaf.data_type()).ok_or_else(|| no_numpy("no numpy dtype"))?;
    let itemsize = dtype.itemsize();
    let count = crate::wire::product(&shape, "element count")?;
    let strides = c_strides(&shape, itemsize);
    if let Some(bools) = leaf.as_boolean_opt() {
        let bytes = bools.values().iter().take(count).map(u8::from).collect();
        let parts = ArrayParts {
            dtype: Cow::Owned(dtype),
            shape: Cow::Owned(shape),
            body: Body::Packed { bytes, strides },
        };
        return write_array(enc, parts);
    }
    let (values, w) = fixed_values(leaf).ok_or_else(|| no_numpy("no fixed-width values"))?;
    let bytes = values
        .get(..crate::wire::mul(count, w, "array byte length")?)
        .ok_or_else(|| no_numpy("values shorter than the shape"))?;
    let parts = plan_parts(
        Cow::Owned(dtype),
        Cow::Owned(shape),
        &strides,
        bytes,
        0,
        enc.options(),
    )?;
    write_array(enc, parts)
}
