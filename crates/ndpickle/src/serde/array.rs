//! `#[serde(with = "ndpickle::serde::array")]`: an `ndarray` array or an [`NdArray`] field
//! as a numpy array.
//!
//! Writing takes any [`ArrayBase`] of an [`Element`] type and any dimensionality: owned
//! (`Array`), shared (`ArcArray`), views (`ArrayView`, `ArrayViewMut`, `CowArray`), in any
//! layout (C, Fortran, strided, reversed, broadcast), through the same layout decision as
//! [`crate::to_vec`]. Reading fills `Array` and `ArcArray` (and [`NdArray`], which keeps the
//! dtype and layout as read, viewing out-of-band buffers without copying) from a numpy array
//! of the field's dtype in any layout and byte order, in-band or out-of-band; a numpy scalar
//! reads as a 0-d array. A different dtype or number of dimensions is an error naming the
//! field: `weights: expected float32 array, got int64`.
//!
//! ```
//! use ndarray::{Array2, ArcArray1};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, PartialEq, Debug)]
//! struct Layer {
//!     name: String,
//!     #[serde(with = "ndpickle::serde::array")]
//!     weights: Array2<f32>,
//!     #[serde(with = "ndpickle::serde::array")]
//!     bias: ArcArray1<f32>,
//! }
//!
//! let layer = Layer {
//!     name: "dense".into(),
//!     weights: Array2::from_shape_fn((2, 3), |(i, j)| (i * 3 + j) as f32),
//!     bias: ArcArray1::zeros(3),
//! };
//! let pickle = ndpickle::serde::to_vec(&layer).unwrap();
//! let back: Layer = ndpickle::serde::from_slice(&pickle).unwrap();
//! assert_eq!(back, layer);
//! ```

use std::fmt;
use std::marker::PhantomData;

use ::serde::de::{self, Deserializer, Visitor};
use ::serde::ser::{self, Serialize, Serializer};
use bytes::Bytes;
use ndarray::{
    ArrayBase, CowRepr, Data, DataOwned, Dimension, OwnedArcRepr, OwnedRepr, RawData, ViewRepr,
};

use crate::array::NdArray;
use crate::dtype::Element;
use crate::error::EncodeError;
use crate::layout::Extent;
use crate::serde::de::dtype_name;
use crate::serde::handoff::{self, Layout, OwnedField, Slot};
use crate::value::Value;
use crate::write::{Encoder, ToPickle, WriteOptions};

/// Writes an array field (use as `#[serde(with = "ndpickle::serde::array")]`).
pub fn serialize<A, S>(array: &A, serializer: S) -> Result<S::Ok, S::Error>
where
    A: WriteArray + ?Sized,
    S: Serializer,
{
    serializer.serialize_newtype_struct(handoff::TOKEN, &Lend(array))
}

/// Reads an array field (use as `#[serde(with = "ndpickle::serde::array")]`).
pub fn deserialize<'de, A, D>(deserializer: D) -> Result<A, D::Error>
where
    A: ReadArray,
    D: Deserializer<'de>,
{
    deserializer.deserialize_newtype_struct(handoff::TOKEN, FieldVisitor(PhantomData::<A>))
}

/// The message when a field is written by another serializer than ndpickle's.
const FOREIGN_SER: &str = "fields marked #[serde(with = \"ndpickle::serde::...\")] can only be \
                           written by ndpickle::serde (to_vec, to_writer, to_payload_with)";
/// The message when a field is read by another deserializer than ndpickle's.
const FOREIGN_DE: &str = "fields marked #[serde(with = \"ndpickle::serde::...\")] can only be \
                          read by ndpickle::serde (from_slice, from_reader, from_payload)";

pub(in crate::serde) mod sealed {
    use super::*;

    /// What a field hands to the serializer.
    pub enum Handed<'x> {
        /// Its layout and the memory the layout describes (borrowed from the field).
        Parts(Layout, &'x [u8]),
        /// A shared owner of the whole value.
        Owned(Box<dyn OwnedField>),
    }

    /// The hand-over half of [`super::WriteArray`].
    pub trait HandOver {
        /// Plans the field with the serializer's options.
        fn hand_over(&self, opts: &WriteOptions) -> Result<Handed<'_>, EncodeError>;
    }

    /// The shared-owner half of [`super::Storage`].
    pub trait Share: RawData + crate::span::SpanStorage + Sized {
        /// A shared owner of `a`'s memory, when the storage has one (`ArcArray`).
        fn share<D: Dimension + 'static>(a: &ArrayBase<Self, D>) -> Option<Box<dyn OwnedField>>;
    }
}
pub(in crate::serde) use sealed::{HandOver, Handed, Share};

/// A value [`serialize`] writes as a numpy array: [`ArrayBase`] with any [`Storage`] and
/// dimensionality, [`NdArray`], and `[T]` (as a 1-d array, see [`crate::serde::array_1d`]).
/// Sealed.
pub trait WriteArray: HandOver {}

/// A value [`deserialize`] reads from a numpy array: `Array`, `ArcArray` and [`NdArray`].
pub trait ReadArray: Sized {
    /// Builds the value from what the pickle holds; the message says what does not fit.
    #[doc(hidden)]
    fn from_value(v: Value) -> Result<Self, String>;
    /// What [`deserialize`] expects, for serde's messages.
    #[doc(hidden)]
    fn expecting(f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

/// An `ndarray` storage kind (`OwnedRepr`, `OwnedArcRepr`, `ViewRepr`, `CowRepr`). Sealed.
pub trait Storage: Share {}

impl<T> Share for OwnedRepr<T> {
    fn share<D: Dimension + 'static>(_: &ArrayBase<Self, D>) -> Option<Box<dyn OwnedField>> {
        None
    }
}
impl<T> Storage for OwnedRepr<T> {}

impl<T> Share for ViewRepr<&T> {
    fn share<D: Dimension + 'static>(_: &ArrayBase<Self, D>) -> Option<Box<dyn OwnedField>> {
        None
    }
}
impl<T> Storage for ViewRepr<&T> {}

impl<T> Share for ViewRepr<&mut T> {
    fn share<D: Dimension + 'static>(_: &ArrayBase<Self, D>) -> Option<Box<dyn OwnedField>> {
        None
    }
}
impl<T> Storage for ViewRepr<&mut T> {}

impl<T> Share for CowRepr<'_, T> {
    fn share<D: Dimension + 'static>(_: &ArrayBase<Self, D>) -> Option<Box<dyn OwnedField>> {
        None
    }
}
impl<T> Storage for CowRepr<'_, T> {}

impl<T: Element> Share for OwnedArcRepr<T> {
    fn share<D: Dimension + 'static>(a: &ArrayBase<Self, D>) -> Option<Box<dyn OwnedField>> {
        Some(Box::new(ArcField(a.clone())))
    }
}
impl<T: Element> Storage for OwnedArcRepr<T> {}

impl<T, S, D> HandOver for ArrayBase<S, D>
where
    T: Element,
    S: Data<Elem = T> + Storage,
    D: Dimension + 'static,
{
    fn hand_over(&self, opts: &WriteOptions) -> Result<Handed<'_>, EncodeError> {
        if let Some(owned) = S::share(self) {
            return Ok(Handed::Owned(owned));
        }
        let (layout, bytes) = handoff::split(crate::write::ndarray_parts(self, opts)?);
        Ok(Handed::Parts(layout, bytes))
    }
}
impl<T, S, D> WriteArray for ArrayBase<S, D>
where
    T: Element,
    S: Data<Elem = T> + Storage,
    D: Dimension + 'static,
{
}

impl<A: HandOver + ?Sized> HandOver for &A {
    fn hand_over(&self, opts: &WriteOptions) -> Result<Handed<'_>, EncodeError> {
        (**self).hand_over(opts)
    }
}
impl<A: WriteArray + ?Sized> WriteArray for &A {}

impl HandOver for NdArray {
    fn hand_over(&self, _: &WriteOptions) -> Result<Handed<'_>, EncodeError> {
        Ok(Handed::Owned(Box::new(NdField(self.clone()))))
    }
}
impl WriteArray for NdArray {}

impl<T: Element> HandOver for [T] {
    fn hand_over(&self, opts: &WriteOptions) -> Result<Handed<'_>, EncodeError> {
        let view = ndarray::ArrayView1::from(self);
        let (layout, _) = handoff::split(crate::write::ndarray_parts(&view, opts)?);
        Ok(Handed::Parts(layout, bytemuck::cast_slice(self)))
    }
}
impl<T: Element> WriteArray for [T] {}

/// An `ArcArray` kept alive by the payload it is written to.
struct ArcField<T: Element, D: Dimension>(ArrayBase<OwnedArcRepr<T>, D>);

impl<T: Element, D: Dimension + 'static> OwnedField for ArcField<T, D> {
    fn write<'x>(&'x self, enc: &mut Encoder<'x, '_>) -> Result<(), EncodeError> {
        self.0.to_pickle(enc)
    }

    fn owners(&self) -> Vec<Bytes> {
        let size = std::mem::size_of::<T>();
        let strides: Vec<isize> = self
            .0
            .strides()
            .iter()
            .map(|&s| s * size as isize)
            .collect();
        match Extent::of(self.0.shape(), &strides, size) {
            Ok(Some(_)) => vec![Bytes::from_owner(ArcSpan(self.0.clone()))],
            _ => Vec::new(),
        }
    }
}

/// The bytes an `ArcArray`'s elements span, owned through the array's reference count.
/// Shared `ArcArray` data is never written in place (writers copy it first), so the bytes
/// stay as they are for as long as this owner lives.
struct ArcSpan<T: Element, D: Dimension>(ArrayBase<OwnedArcRepr<T>, D>);

impl<T: Element, D: Dimension> AsRef<[u8]> for ArcSpan<T, D> {
    fn as_ref(&self) -> &[u8] {
        // An `ArcArray` is borrowed whole, so its span is always given (empty arrays have
        // no owner).
        crate::span::span_of(&self.0).map_or(&[], |(bytes, _)| bytes)
    }
}

/// An [`NdArray`] (a shared buffer) written after the field's borrow ends.
struct NdField(NdArray);

impl OwnedField for NdField {
    fn write<'x>(&'x self, enc: &mut Encoder<'x, '_>) -> Result<(), EncodeError> {
        self.0.to_pickle(enc)
    }

    fn owners(&self) -> Vec<Bytes> {
        vec![self.0.data().clone()]
    }
}

/// The value serialized inside the hand-over newtype: plans the field, leaves the plan in
/// the slot and sends the memory as bytes.
pub(crate) struct Lend<'x, A: ?Sized>(pub(crate) &'x A);

impl<A: HandOver + ?Sized> Serialize for Lend<'_, A> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Slot::Want(opts) = handoff::swap(Slot::Empty) else {
            return Err(ser::Error::custom(FOREIGN_SER));
        };
        match self.0.hand_over(&opts).map_err(ser::Error::custom)? {
            Handed::Parts(layout, bytes) => {
                handoff::swap(Slot::Parts(layout));
                serializer.serialize_bytes(bytes)
            }
            Handed::Owned(owned) => {
                handoff::swap(Slot::Owned(owned));
                serializer.serialize_bytes(&[])
            }
        }
    }
}

/// Receives the field's [`Value`] from the deserializer.
pub(crate) struct FieldVisitor<A>(pub(crate) PhantomData<A>);

impl<'de, A: ReadArray> Visitor<'de> for FieldVisitor<A> {
    type Value = A;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        A::expecting(f)
    }

    fn visit_unit<E: de::Error>(self) -> Result<A, E> {
        let v = handoff::take_value().ok_or_else(|| E::custom(FOREIGN_DE))?;
        A::from_value(v).map_err(E::custom)
    }
}

/// The array inside `v`, or what `v` is instead.
fn take_array(v: Value, expected: &str) -> Result<NdArray, String> {
    match v {
        Value::Array(a) | Value::Scalar(a) => Ok(*a),
        other => Err(format!("expected {expected}, got {}", other.type_name())),
    }
}

impl<T, S, D> ReadArray for ArrayBase<S, D>
where
    T: Element,
    S: DataOwned<Elem = T>,
    D: Dimension,
{
    fn from_value(v: Value) -> Result<Self, String> {
        let name = dtype_name(&T::dtype());
        let a = take_array(v, &format!("{name} array"))?;
        if a.dtype().to_native_order() != T::dtype() {
            return Err(format!(
                "expected {name} array, got {}",
                dtype_name(a.dtype())
            ));
        }
        if let Some(n) = D::NDIM
            && a.ndim() != n
        {
            return Err(format!("expected {n}-d {name} array, got {}-d", a.ndim()));
        }
        let owned = a
            .to_owned_array::<T>()
            .map_err(|e| format!("invalid {name} array: {}", e.kind))?
            .into_dimensionality::<D>()
            .map_err(|e| e.to_string())?;
        let dim = owned.raw_dim();
        let (vec, _) = owned.into_raw_vec_and_offset();
        ArrayBase::from_shape_vec(dim, vec).map_err(|e| e.to_string())
    }

    fn expecting(f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match D::NDIM {
            Some(n) => write!(f, "a {n}-d {} numpy array", dtype_name(&T::dtype())),
            None => write!(f, "a {} numpy array", dtype_name(&T::dtype())),
        }
    }
}

impl ReadArray for NdArray {
    fn from_value(v: Value) -> Result<Self, String> {
        take_array(v, "numpy array")
    }

    fn expecting(f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a numpy array")
    }
}
