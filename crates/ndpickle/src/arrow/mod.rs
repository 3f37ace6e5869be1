//! arrow-rs arrays, record batches and tables as pyarrow objects (feature `arrow`).
//!
//! Writing: [`ToPickle`] is implemented for `dyn Array` (so for [`ArrayRef`]), every concrete
//! arrow-rs array, [`RecordBatch`], [`ChunkedArray`], [`Table`], and the schema types
//! [`DataType`], [`Field`], [`Schema`]. Arrays become `pyarrow.Array.from_buffers(...)` calls
//! whose buffers travel out-of-band with zero copies (see [`write`](mod@write) for what a sliced array
//! ships), record batches `pyarrow.RecordBatch.from_arrays`, tables
//! `pyarrow.Table.from_batches`, chunked arrays `pyarrow.chunked_array`, types pyarrow's type
//! factories. All need protocol 4 or higher (dotted global names). [`AsNumpy`] sends
//! null-free primitive columns as numpy arrays instead, for consumers without pyarrow.
//!
//! Reading ([`read`]): [`from_slice`], [`from_bytes`] and [`from_payload`] turn a pickle of
//! one pyarrow object — pyarrow's own reduce forms or this writer's — into an
//! [`ArrowValue`]; [`from_value`] and the `*_from_value` functions do the same for a
//! [`crate::Value`] already read. Arrays view the out-of-band buffers without copying and are
//! validated in full by arrow-rs.
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{ArrayRef, Int64Array};
//! use ndpickle::WriteOptions;
//!
//! let a: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(3)]));
//! let payload = ndpickle::to_payload(&a).unwrap();
//! // Python: pickle.loads(payload.pickle, buffers=payload.buffers) is a pyarrow.Int64Array.
//! assert!(payload.buffers.iter().all(|b| b.is_borrowed()));
//! ```

mod numpy;
pub mod read;
mod types;
pub mod write;

use arrow_array::types::{ArrowDictionaryKeyType, RunEndIndexType};
use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, BooleanArray, DictionaryArray, FixedSizeBinaryArray,
    FixedSizeListArray, GenericByteArray, GenericByteViewArray, GenericListArray,
    GenericListViewArray, MapArray, NullArray, OffsetSizeTrait, PrimitiveArray, RecordBatch,
    RunArray, StructArray, UnionArray,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};

pub use numpy::AsNumpy;
pub use read::{
    ArrowValue, array_from_value, chunked_from_value, data_type_from_value, field_from_value,
    from_bytes, from_bytes_with, from_payload, from_payload_with, from_slice, from_slice_with,
    from_value, record_batch_from_value, schema_from_value, table_from_value,
};
pub use types::{write_field, write_schema, write_type};

use crate::error::EncodeError;
use crate::write::{Encoder, ToPickle};

impl ToPickle for dyn Array {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        write::write_array(enc, self)
    }
}

/// `ToPickle` for concrete arrays, through `dyn Array`.
macro_rules! concrete {
    ($([$($g:tt)*] $t:ty),* $(,)?) => {$(
        impl<$($g)*> ToPickle for $t {
            fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
                write::write_array(enc, self as &dyn Array)
            }
        }
    )*};
}
concrete!(
    [] NullArray,
    [] BooleanArray,
    [T: ArrowPrimitiveType] PrimitiveArray<T>,
    [T: arrow_array::types::ByteArrayType] GenericByteArray<T>,
    [T: arrow_array::types::ByteViewType + ?Sized] GenericByteViewArray<T>,
    [O: OffsetSizeTrait] GenericListArray<O>,
    [O: OffsetSizeTrait] GenericListViewArray<O>,
    [] FixedSizeListArray,
    [] FixedSizeBinaryArray,
    [] StructArray,
    [] MapArray,
    [] UnionArray,
    [K: ArrowDictionaryKeyType] DictionaryArray<K>,
    [R: RunEndIndexType] RunArray<R>,
);

/// `pyarrow.RecordBatch.from_arrays(columns, None, schema)`.
impl ToPickle for RecordBatch {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        write::write_batch(enc, self)
    }
}

/// A pyarrow type from its factory, e.g. `pyarrow.timestamp('ns', 'UTC')`.
impl ToPickle for DataType {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        write_type(enc, self)
    }
}

/// `pyarrow.field(name, type, nullable, metadata)`.
impl ToPickle for Field {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        write_field(enc, self)
    }
}

/// `pyarrow.schema(fields, metadata)`.
impl ToPickle for Schema {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        write_schema(enc, self)
    }
}

/// A column made of several arrays of one type: pyarrow's `ChunkedArray`.
#[derive(Clone, Debug)]
pub struct ChunkedArray {
    data_type: DataType,
    chunks: Vec<ArrayRef>,
}

impl ChunkedArray {
    /// Chunks of type `data_type` (checked); there may be none.
    pub fn try_new(chunks: Vec<ArrayRef>, data_type: DataType) -> Result<Self, ArrowError> {
        if let Some(c) = chunks.iter().find(|c| c.data_type() != &data_type) {
            return Err(ArrowError::InvalidArgumentError(format!(
                "chunked array of type {data_type} has a chunk of type {}",
                c.data_type()
            )));
        }
        Ok(ChunkedArray { data_type, chunks })
    }

    /// Chunks of one type, taken from the first chunk (there must be one).
    pub fn from_chunks(chunks: Vec<ArrayRef>) -> Result<Self, ArrowError> {
        let dt = chunks
            .first()
            .map(|c| c.data_type().clone())
            .ok_or_else(|| {
                ArrowError::InvalidArgumentError(
                    "a chunked array without chunks needs its type: use try_new".into(),
                )
            })?;
        Self::try_new(chunks, dt)
    }

    /// The element type.
    pub fn data_type(&self) -> &DataType {
        &self.data_type
    }

    /// The chunks.
    pub fn chunks(&self) -> &[ArrayRef] {
        &self.chunks
    }

    /// Total number of elements.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(|c| c.len()).sum()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `pyarrow.chunked_array(chunks, type)`.
impl ToPickle for ChunkedArray {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        write::write_chunked(enc, &self.chunks, &self.data_type)
    }
}

/// A table: record batches of one schema, pyarrow's `Table`.
#[derive(Clone, Debug)]
pub struct Table {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

impl Table {
    /// Batches whose fields are those of `schema` (checked); there may be none.
    pub fn try_new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<Self, ArrowError> {
        if let Some(b) = batches
            .iter()
            .find(|b| b.schema_ref().fields() != schema.fields())
        {
            return Err(ArrowError::InvalidArgumentError(format!(
                "table schema {schema} does not match a batch of schema {}",
                b.schema()
            )));
        }
        Ok(Table { schema, batches })
    }

    /// The schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The batches.
    pub fn batches(&self) -> &[RecordBatch] {
        &self.batches
    }

    /// Total number of rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }

    /// Column `i` across the batches.
    pub fn column(&self, i: usize) -> Option<ChunkedArray> {
        let field = self.schema.fields().get(i)?;
        let chunks = self.batches.iter().map(|b| b.column(i).clone()).collect();
        Some(ChunkedArray {
            data_type: field.data_type().clone(),
            chunks,
        })
    }
}

/// `pyarrow.Table.from_batches(batches, schema)`.
impl ToPickle for Table {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        write::write_table(enc, &self.schema, &self.batches)
    }
}
