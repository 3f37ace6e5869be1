//! How array fields get past serde's data model.
//!
//! serde lets a `with` module talk to a serializer only through its data model (bytes,
//! strings, sequences...), so an array field's description travels beside it on a
//! thread-local slot, in one exchange per array:
//!
//! 1. the `with` module calls `serialize_newtype_struct(TOKEN, &field)`;
//! 2. the ndpickle serializer recognises [`TOKEN`], puts the options in the slot
//!    ([`Slot::Want`]) and serializes the field's hand-over value;
//! 3. that value takes the options, plans the array and leaves either its layout
//!    ([`Slot::Parts`]) or a shared owner of the whole array ([`Slot::Owned`]) in the slot,
//!    then calls `serialize_bytes` with the borrowed memory (empty for an owner);
//! 4. the serializer takes the slot and writes the array with that memory.
//!
//! A serializer other than ndpickle's never fills the slot, so the hand-over value finds it
//! empty and fails with a clear error instead of writing something half-formed.
//!
//! Reading runs the other way: the deserializer recognises [`TOKEN`], leaves the field's
//! [`Value`] in the read slot and calls `visit_unit`; the field's visitor takes it.

use std::cell::RefCell;

use bytes::Bytes;

use crate::dtype::DType;
use crate::error::EncodeError;
use crate::layout::Order;
use crate::value::Value;
use crate::write::numpy::{ArrayParts, Body};
use crate::write::{Encoder, WriteOptions};

/// The newtype-struct name that marks a hand-over.
pub(crate) const TOKEN: &str = "$ndpickle::private::Field";

/// A value that owns (shares) its memory, so it can be written after the field's borrow ends.
pub trait OwnedField {
    /// Writes the value with the ordinary writer.
    fn write<'x>(&'x self, enc: &mut Encoder<'x, '_>) -> Result<(), EncodeError>;
    /// Reference-counted handles on every buffer `write` may borrow from `self`.
    fn owners(&self) -> Vec<Bytes>;
}

/// The layout of an array whose memory follows through `serialize_bytes`.
pub struct Layout {
    pub(crate) dtype: DType,
    pub(crate) shape: Vec<usize>,
    pub(crate) body: BodyLayout,
}

/// [`Body`] without its borrowed bytes.
pub(crate) enum BodyLayout {
    Contiguous {
        order: Order,
    },
    Span {
        offset: usize,
        strides: Vec<isize>,
    },
    /// A packed copy: the bytes are here, `serialize_bytes` gets nothing.
    Packed {
        bytes: Vec<u8>,
        strides: Vec<isize>,
    },
}

/// What the slot holds.
pub(crate) enum Slot {
    Empty,
    Want(WriteOptions),
    Parts(Layout),
    Owned(Box<dyn OwnedField>),
}

thread_local! {
    static WRITE: RefCell<Slot> = const { RefCell::new(Slot::Empty) };
    static READ: RefCell<Option<Value>> = const { RefCell::new(None) };
}

/// Replaces the write slot's content, returning what was there.
pub(crate) fn swap(slot: Slot) -> Slot {
    WRITE.with(|w| std::mem::replace(&mut *w.borrow_mut(), slot))
}

/// Splits planned parts into the layout (for the slot) and the borrowed bytes (for
/// `serialize_bytes`).
pub(crate) fn split(parts: ArrayParts<'_>) -> (Layout, &[u8]) {
    let (body, bytes): (BodyLayout, &[u8]) = match parts.body {
        Body::Contiguous { order, bytes } => (BodyLayout::Contiguous { order }, bytes),
        Body::Span {
            bytes,
            offset,
            strides,
        } => (BodyLayout::Span { offset, strides }, bytes),
        Body::Packed { bytes, strides } => (BodyLayout::Packed { bytes, strides }, &[]),
    };
    let layout = Layout {
        dtype: parts.dtype.into_owned(),
        shape: parts.shape.into_owned(),
        body,
    };
    (layout, bytes)
}

impl Layout {
    /// The parts again, over `bytes`.
    pub(crate) fn join(self, bytes: &[u8]) -> ArrayParts<'_> {
        let body = match self.body {
            BodyLayout::Contiguous { order } => Body::Contiguous { order, bytes },
            BodyLayout::Span { offset, strides } => Body::Span {
                bytes,
                offset,
                strides,
            },
            BodyLayout::Packed { bytes, strides } => Body::Packed { bytes, strides },
        };
        ArrayParts {
            dtype: std::borrow::Cow::Owned(self.dtype),
            shape: std::borrow::Cow::Owned(self.shape),
            body,
        }
    }
}

/// Leaves `value` for the visitor `f` runs, and clears the slot after.
pub(crate) fn lend_value<R>(value: &Value, f: impl FnOnce() -> R) -> R {
    lend(value.clone(), f)
}

/// [`lend_value`] of a value the deserializer owns.
pub(crate) fn lend<R>(value: Value, f: impl FnOnce() -> R) -> R {
    READ.with(|r| *r.borrow_mut() = Some(value));
    let out = f();
    READ.with(|r| r.borrow_mut().take());
    out
}

/// Takes the value the deserializer left, if any.
pub(crate) fn take_value() -> Option<Value> {
    READ.with(|r| r.borrow_mut().take())
}
