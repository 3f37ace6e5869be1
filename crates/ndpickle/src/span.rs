//! The one place the core crate reads memory through a raw pointer: the byte span of a
//! strided `ndarray` view, sent whole instead of packing its elements (DESIGN §3.4).
#![allow(unsafe_code)]

use ndarray::{ArrayBase, Data, Dimension};

use crate::array::Extent;
use crate::dtype::Element;

/// The bytes from the lowest to one past the highest byte of `a`'s elements.
///
/// `extent` must be `Extent::of(a.shape(), byte strides of a, size_of::<T>())` for a
/// non-empty `a`.
pub(crate) fn span_bytes<T, S, D>(a: &ArrayBase<S, D>, extent: Extent) -> &[u8]
where
    T: Element,
    S: Data<Elem = T>,
    D: Dimension,
{
    let base = a.as_ptr().cast::<u8>();
    // SAFETY: `extent` is the byte range covered by `a`'s elements around element zero
    // (`a.as_ptr()`), so `base + low` is the address of `a`'s lowest element and
    // `base + high` one past its highest. ndarray requires every element of an array to lie
    // in one allocation, so the whole range does, and the offset stays within it. The bytes
    // between elements are elements of the same allocation: `T: Element` is `NoUninit` and
    // arrays hold initialised `T`s, so every byte is initialised. The slice is borrowed for
    // `'a` from `a`, which keeps the storage alive and (through `Data`) immutable through
    // `a`; a caller holding a second, mutable view over the gap elements (made with
    // `multi_slice_mut`) must not write through it while the payload lives — the layout
    // policy `AlwaysPack` avoids reading gaps altogether.
    unsafe { std::slice::from_raw_parts(base.offset(extent.low), extent.len()) }
}
