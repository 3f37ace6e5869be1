//! `#[serde(with = "ndpickle::serde::arrow")]` (feature `arrow`): an arrow-rs [`ArrayRef`] or
//! [`RecordBatch`] field as a pyarrow `Array` / `RecordBatch`.
//!
//! Written by the same writer as [`crate::to_vec`] (protocol 4 or higher: pyarrow's
//! reconstructors have dotted names); through [`crate::serde::to_payload`] the arrow buffers
//! go out-of-band shared with the arrays, zero copies. Read back from pyarrow's own pickles
//! or this writer's, validated in full by arrow-rs.
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{ArrayRef, Int64Array};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Column {
//!     name: String,
//!     #[serde(with = "ndpickle::serde::arrow")]
//!     values: ArrayRef,
//! }
//!
//! let c = Column { name: "x".into(), values: Arc::new(Int64Array::from(vec![Some(1), None])) };
//! let back: Column = ndpickle::serde::from_slice(&ndpickle::serde::to_vec(&c).unwrap()).unwrap();
//! assert_eq!(back.values.as_ref(), c.values.as_ref());
//! ```

use std::fmt;

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_data::ArrayData;
use bytes::Bytes;

use crate::error::EncodeError;
use crate::serde::array::{HandOver, Handed, ReadArray, WriteArray};
use crate::serde::handoff::OwnedField;
use crate::value::Value;
use crate::write::{Encoder, ToPickle, WriteOptions};

pub use crate::serde::array::{deserialize, serialize};

impl HandOver for ArrayRef {
    fn hand_over(&self, _: &WriteOptions) -> Result<Handed<'_>, EncodeError> {
        Ok(Handed::Owned(Box::new(ArrowField::Array(self.clone()))))
    }
}
impl WriteArray for ArrayRef {}

impl HandOver for RecordBatch {
    fn hand_over(&self, _: &WriteOptions) -> Result<Handed<'_>, EncodeError> {
        Ok(Handed::Owned(Box::new(ArrowField::Batch(self.clone()))))
    }
}
impl WriteArray for RecordBatch {}

impl ReadArray for ArrayRef {
    fn from_value(v: Value) -> Result<Self, String> {
        crate::arrow::array_from_value(&v).map_err(|e| format!("expected a pyarrow array: {e}"))
    }

    fn expecting(f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a pyarrow array")
    }
}

impl ReadArray for RecordBatch {
    fn from_value(v: Value) -> Result<Self, String> {
        crate::arrow::record_batch_from_value(&v)
            .map_err(|e| format!("expected a pyarrow record batch: {e}"))
    }

    fn expecting(f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a pyarrow record batch")
    }
}

/// An arrow value (reference-counted buffers) written after the field's borrow ends.
enum ArrowField {
    Array(ArrayRef),
    Batch(RecordBatch),
}

impl OwnedField for ArrowField {
    fn write<'x>(&'x self, enc: &mut Encoder<'x, '_>) -> Result<(), EncodeError> {
        match self {
            ArrowField::Array(a) => a.to_pickle(enc),
            ArrowField::Batch(b) => b.to_pickle(enc),
        }
    }

    fn owners(&self) -> Vec<Bytes> {
        let mut out = Vec::new();
        match self {
            ArrowField::Array(a) => buffers(&a.to_data(), &mut out),
            ArrowField::Batch(b) => {
                for c in b.columns() {
                    buffers(&c.to_data(), &mut out);
                }
            }
        }
        out
    }
}

/// Every buffer of `data` and its children, as shared owners.
fn buffers(data: &ArrayData, out: &mut Vec<Bytes>) {
    out.extend(data.buffers().iter().map(|b| Bytes::from_owner(b.clone())));
    if let Some(nulls) = data.nulls() {
        out.push(Bytes::from_owner(nulls.buffer().clone()));
    }
    for child in data.child_data() {
        buffers(child, out);
    }
}
