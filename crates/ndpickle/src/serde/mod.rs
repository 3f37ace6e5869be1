//! serde structs to and from pickles (feature `serde`).
//!
//! [`to_vec`], [`to_writer`] and [`to_payload`] write any `Serialize` value straight into the
//! pickle writer; [`from_slice`], [`from_reader`], [`from_payload`] and [`from_value`] read
//! with the safe reader (nothing is executed, the [`ReadOptions`] limits apply) and then
//! deserialize from the [`Value`] tree. Each has a `_with` twin taking options.
//!
//! # Data model
//!
//! | Rust (serde) | Python |
//! |---|---|
//! | struct, struct variant's body | `dict` with the field names as `str` keys |
//! | map | `dict` (keys must be hashable in Python: no lists, dicts or arrays) |
//! | sequence (`Vec`, slices, sets) | `list` |
//! | tuple, tuple struct | `tuple` |
//! | `None`, `()`, unit struct | `None` |
//! | bool, integers of every width (`u64`, `i128`, `u128`) | `bool`, `int` |
//! | `f32`, `f64` | `float` |
//! | `char`, `String` | `str` |
//! | bytes (`serde_bytes`) | `bytes` |
//! | enum | externally tagged: `"Sgd"`, `{"Adam": {"beta": 0.9}}`, `{"V": (1, 2)}` |
//! | `#[serde(with = "ndpickle::serde::array")]` | `numpy.ndarray` |
//! | `#[serde(with = "ndpickle::serde::array_1d")]` on a `Vec<T>` | 1-d `numpy.ndarray` |
//! | `#[serde(with = "ndpickle::serde::arrow")]` (feature `arrow`) | `pyarrow.Array` / `RecordBatch` |
//!
//! Reading also takes Python `int` for float fields, numpy scalars (`numpy.float32(0.5)`)
//! for numbers and bools, `bytearray` for bytes, tuples and sets for sequences, and lists or
//! tuples for structs (fields in order). Errors name the path to the failing field:
//! `weights: expected float32 array, got int64`, `layers[1].bias: missing field ...`.
//!
//! # Arrays
//!
//! See [`array`](mod@array): any `ndarray` array of an [`crate::Element`] type, any dimensionality,
//! owned, shared ([`ndarray::ArcArray`]) or a view; and [`crate::NdArray`]. They are written
//! as numpy arrays in the portable form (or the form the [`WriteOptions`] select) by the same
//! writer as [`crate::to_vec`]. [`to_writer`] streams their memory to the writer with no
//! temporary copy. [`to_payload`] sends them out-of-band: `ArcArray`s, `NdArray`s and arrow
//! arrays are shared with the payload, zero copies; owned arrays and views are copied once
//! (serde hands a serializer short-lived references, which a payload must not keep: use an
//! `ArcArray` field for zero copies). Reading converts any layout and byte order of the
//! right dtype.
//!
//! Arrays inside `#[serde(flatten)]` structs and untagged enums cannot be read back (serde
//! buffers those through its own value type, which has no room for an array).

pub mod array;
pub mod array_1d;
#[cfg(feature = "arrow")]
pub mod arrow;
mod de;
mod error;
mod handoff;
mod ser;
mod walk;

use std::io::{Read, Write};

use ::serde::Serialize;
use ::serde::de::DeserializeOwned;

use crate::error::{DecodeError, EncodeError};
use crate::read::{InBuffer, ReadOptions};
use crate::value::Value;
use crate::write::{Encoder, Payload, WriteOptions};

/// Pickles `value` in-band with protocol 5 and the portable numpy form.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    to_vec_with(value, &WriteOptions::default())
}

/// Pickles `value` in-band with the given options.
pub fn to_vec_with<T: Serialize + ?Sized>(
    value: &T,
    opts: &WriteOptions,
) -> Result<Vec<u8>, EncodeError> {
    let mut enc = Encoder::to_vec(opts, false)?;
    value
        .serialize(&mut ser::Serializer::new(&mut enc))
        .map_err(ser::Error::into_inner)?;
    enc.finish().map(|(v, _)| v)
}

/// Streams the pickle of `value` to `w` (protocol 5, portable form): array data goes from
/// the array's memory straight to the writer.
pub fn to_writer<W: Write, T: Serialize + ?Sized>(w: W, value: &T) -> Result<(), EncodeError> {
    to_writer_with(w, value, &WriteOptions::default())
}

/// Streams the pickle of `value` to `w` with the given options.
pub fn to_writer_with<W: Write, T: Serialize + ?Sized>(
    mut w: W,
    value: &T,
    opts: &WriteOptions,
) -> Result<(), EncodeError> {
    let mut enc = Encoder::to_writer(opts, &mut w)?;
    value
        .serialize(&mut ser::Serializer::new(&mut enc))
        .map_err(ser::Error::into_inner)?;
    enc.finish().map(|_| ())
}

/// Pickles `value` with array data out-of-band (protocol 5), the same [`Payload`] as
/// [`crate::to_payload`]: pass `pickle` and `buffers` to
/// `pickle.loads(pickle, buffers=buffers)`. Shared arrays (`ArcArray`, `NdArray`, arrow) are
/// not copied; owned arrays and views are copied once (see the [module docs](self)).
pub fn to_payload<T: Serialize + ?Sized>(value: &T) -> Result<Payload<'_>, EncodeError> {
    to_payload_with(value, &WriteOptions::default())
}

/// [`to_payload`] with the given options.
pub fn to_payload_with<'a, T: Serialize + ?Sized>(
    value: &'a T,
    opts: &WriteOptions,
) -> Result<Payload<'a>, EncodeError> {
    let mut enc = Encoder::to_vec(opts, true)?;
    value
        .serialize(&mut ser::Serializer::new(&mut enc))
        .map_err(ser::Error::into_inner)?;
    let (pickle, buffers) = enc.finish()?;
    Ok(Payload { pickle, buffers })
}

/// Reads a pickle with the safe reader and the default [`ReadOptions`], then deserializes it.
pub fn from_slice<T: DeserializeOwned>(pickle: &[u8]) -> Result<T, DecodeError> {
    from_slice_with(pickle, &ReadOptions::default())
}

/// [`from_slice`] with `opts`.
pub fn from_slice_with<T: DeserializeOwned>(
    pickle: &[u8],
    opts: &ReadOptions,
) -> Result<T, DecodeError> {
    walk(pickle, None, Vec::new(), opts)
}

/// Reads a whole pickle stream from `reader` (at most [`ReadOptions::max_alloc_bytes`]),
/// then deserializes it.
pub fn from_reader<T: DeserializeOwned>(reader: impl Read) -> Result<T, DecodeError> {
    from_reader_with(reader, &ReadOptions::default())
}

/// [`from_reader`] with `opts`.
pub fn from_reader_with<T: DeserializeOwned>(
    reader: impl Read,
    opts: &ReadOptions,
) -> Result<T, DecodeError> {
    let pickle = crate::read::read_stream(reader, opts)?;
    walk(&pickle, Some(&pickle), Vec::new(), opts)
}

/// Reads a protocol-5 pickle with its out-of-band buffers (see [`crate::from_payload`]),
/// then deserializes it. `NdArray` fields view the buffers without copying.
pub fn from_payload<T, B>(
    pickle: &[u8],
    buffers: impl IntoIterator<Item = B>,
) -> Result<T, DecodeError>
where
    T: DeserializeOwned,
    B: Into<InBuffer>,
{
    from_payload_with(pickle, buffers, &ReadOptions::default())
}

/// [`from_payload`] with `opts`.
pub fn from_payload_with<T, B>(
    pickle: &[u8],
    buffers: impl IntoIterator<Item = B>,
    opts: &ReadOptions,
) -> Result<T, DecodeError>
where
    T: DeserializeOwned,
    B: Into<InBuffer>,
{
    walk(
        pickle,
        None,
        buffers.into_iter().map(Into::into).collect(),
        opts,
    )
}

/// Reads `input` with the safe reader and deserializes its value straight from the
/// reader's value graph ([`walk`]).
fn walk<T: DeserializeOwned>(
    input: &[u8],
    shared: Option<&bytes::Bytes>,
    buffers: Vec<InBuffer>,
    opts: &ReadOptions,
) -> Result<T, DecodeError> {
    let mut w = walk::Walker::new(crate::read::parse(input, shared, buffers, opts, true)?);
    let out = T::deserialize(w.root())?;
    w.finish()?;
    Ok(out)
}

/// Deserializes a [`Value`] already read.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, DecodeError> {
    T::deserialize(de::ValueDeserializer::new(value))
}
