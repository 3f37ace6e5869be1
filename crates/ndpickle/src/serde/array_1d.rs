//! `#[serde(with = "ndpickle::serde::array_1d")]`: a `Vec<T>` field as a 1-d numpy array
//! instead of a list (any [`Element`] `T`).
//!
//! ```
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, PartialEq, Debug)]
//! struct Trace {
//!     #[serde(with = "ndpickle::serde::array_1d")]
//!     samples: Vec<f64>,
//! }
//!
//! let t = Trace { samples: vec![0.5, 1.5, 2.5] };
//! let back: Trace = ndpickle::serde::from_slice(&ndpickle::serde::to_vec(&t).unwrap()).unwrap();
//! assert_eq!(back, t);
//! ```

use ::serde::{Deserializer, Serializer};
use ndarray::Array1;

use crate::dtype::Element;

/// Writes the elements as a 1-d numpy array.
pub fn serialize<T: Element, S: Serializer>(v: &[T], serializer: S) -> Result<S::Ok, S::Error> {
    crate::serde::array::serialize(v, serializer)
}

/// Reads a 1-d numpy array of `T` (any stride, any byte order).
pub fn deserialize<'de, T: Element, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    let a: Array1<T> = crate::serde::array::deserialize(deserializer)?;
    let (v, _) = a.into_raw_vec_and_offset();
    Ok(v)
}
