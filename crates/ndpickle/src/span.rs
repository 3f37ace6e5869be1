//! The byte span of a strided `ndarray` array, sent whole instead of packing its elements
//! (DESIGN §3.4), and the one place the core crate reads memory through a raw pointer.
//!
//! A span can hold bytes that are not elements of the array (the gaps of `a[:, ::2]`). Those
//! bytes may belong to another live view: two views from `ArrayBase::multi_slice_mut`
//! (even and odd columns) share one allocation, and a `&[u8]` over the even view's span
//! would alias the odd view's `&mut`. So a span is handed out only where nothing else can
//! hold a `&mut` to its gaps:
//!
//! - the span has no gaps (reversed, axis-permuted or broadcast views): every byte belongs
//!   to an element the array itself borrows immutably;
//! - the array's storage is borrowed whole ([`SpanStorage::borrowed_whole`]): an owned
//!   `Array`, an `ArcArray`, a `CowArray` holding owned data — a `&` to them freezes the
//!   whole allocation;
//! - a [`SpanView`], built safely from such an array plus a slice
//!   ([`SpanView::slice`]), or from any view through the `unsafe`
//!   [`SpanView::new_unchecked`].
//!
//! Everything else is packed.
#![allow(unsafe_code)]

use ndarray::{
    ArrayBase, ArrayView, CowRepr, Data, Dimension, OwnedArcRepr, OwnedRepr, RawData, SliceArg,
    ViewRepr,
};

use crate::dtype::Element;
use crate::layout::Extent;

mod sealed {
    /// Keeps [`super::SpanStorage`] implemented by `ndarray`'s storage kinds only.
    pub trait Sealed {}
}

/// An `ndarray` storage kind (`OwnedRepr`, `OwnedArcRepr`, `CowRepr`, `ViewRepr`), and
/// whether a shared borrow of an array with it freezes its whole allocation. Sealed.
pub trait SpanStorage: RawData + sealed::Sealed {
    /// Whether `&a` guarantees that no `&mut` to any byte of `a`'s allocation is alive:
    /// true for owned and `ArcArray` storage (an `ArcArray` is copied before any write
    /// while it is shared) and for a `CowArray` holding owned data; false for views, which
    /// may be one of several disjoint views of one allocation.
    fn borrowed_whole<D: Dimension>(a: &ArrayBase<Self, D>) -> bool;
}

impl<T> sealed::Sealed for OwnedRepr<T> {}
impl<T> SpanStorage for OwnedRepr<T> {
    fn borrowed_whole<D: Dimension>(_: &ArrayBase<Self, D>) -> bool {
        true
    }
}

impl<T> sealed::Sealed for OwnedArcRepr<T> {}
impl<T> SpanStorage for OwnedArcRepr<T> {
    fn borrowed_whole<D: Dimension>(_: &ArrayBase<Self, D>) -> bool {
        true
    }
}

impl<T> sealed::Sealed for CowRepr<'_, T> {}
impl<T> SpanStorage for CowRepr<'_, T> {
    fn borrowed_whole<D: Dimension>(a: &ArrayBase<Self, D>) -> bool {
        a.is_owned()
    }
}

impl<T> sealed::Sealed for ViewRepr<&T> {}
impl<T> SpanStorage for ViewRepr<&T> {
    fn borrowed_whole<D: Dimension>(_: &ArrayBase<Self, D>) -> bool {
        false
    }
}

impl<T> sealed::Sealed for ViewRepr<&mut T> {}
impl<T> SpanStorage for ViewRepr<&mut T> {
    fn borrowed_whole<D: Dimension>(_: &ArrayBase<Self, D>) -> bool {
        false
    }
}

/// Storage whose arrays, borrowed with `&`, freeze their whole allocation: owned `Array`s
/// and `ArcArray`s. Sealed.
pub trait WholeStorage: SpanStorage {}
impl<T> WholeStorage for OwnedRepr<T> {}
impl<T> WholeStorage for OwnedArcRepr<T> {}

/// A strided view whose whole span (gaps included) may be sent zero-copy, where a plain
/// `ArrayView` with gaps is packed. Write it with [`crate::to_payload`] like any array.
///
/// ```
/// use ndarray::{s, Array2};
/// use ndpickle::{SpanView, WriteOptions, to_payload};
///
/// let a = Array2::<f32>::zeros((6, 9));
/// let even = SpanView::slice(&a, s![.., ..;2]);
/// let payload = to_payload(&even)?;
/// assert!(payload.buffers[0].is_borrowed()); // the span, zero copies
/// # Ok::<(), ndpickle::EncodeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SpanView<'a, T, D: Dimension> {
    view: ArrayView<'a, T, D>,
}

impl<'a, T, D: Dimension> SpanView<'a, T, D> {
    /// The slice `info` of `array`, an owned `Array` or an `ArcArray` borrowed whole for
    /// `'a`, so that nothing can write its gaps while the view lives.
    pub fn slice<S, E, I>(array: &'a ArrayBase<S, E>, info: I) -> SpanView<'a, T, I::OutDim>
    where
        S: Data<Elem = T> + WholeStorage,
        E: Dimension,
        I: SliceArg<E, OutDim = D>,
    {
        SpanView {
            view: array.slice(info),
        }
    }

    /// A view whose span is sent whole.
    ///
    /// # Safety
    /// For as long as `'a` lasts, no `&mut` to any byte between `view`'s lowest and highest
    /// element may be alive or created, nor may those bytes be written by any thread: the
    /// payload reads them as a `&[u8]`. In particular `view` must not be one of several
    /// views from `multi_slice_mut`, `split_at_mut` or `axis_iter_mut` whose elements
    /// interleave with another live mutable view.
    pub unsafe fn new_unchecked(view: ArrayView<'a, T, D>) -> SpanView<'a, T, D> {
        SpanView { view }
    }

    /// The view.
    pub fn view(&self) -> &ArrayView<'a, T, D> {
        &self.view
    }
}

impl<T: Element, D: Dimension> SpanView<'_, T, D> {
    /// The bytes from the lowest to one past the highest byte of the view's elements, and
    /// their extent around element zero; `None` for an empty view.
    pub(crate) fn span(&self) -> Option<(&[u8], Extent)> {
        let extent = extent(&self.view)?;
        // SAFETY: `extent` is the view's own extent, and the constructors guarantee that
        // nothing writes the span's bytes while `'a` (which outlives `&self`) lasts.
        Some((unsafe { raw_span(&self.view, extent) }, extent))
    }
}

/// `a`'s span and its extent, where handing it out is sound: `a`'s storage is borrowed
/// whole, or the span has no gaps. `None` otherwise, and for empty arrays.
pub(crate) fn span_of<T, S, D>(a: &ArrayBase<S, D>) -> Option<(&[u8], Extent)>
where
    T: Element,
    S: Data<Elem = T> + SpanStorage,
    D: Dimension,
{
    let extent = extent(a)?;
    if !S::borrowed_whole(a) && !is_gapless(a, extent) {
        return None;
    }
    // SAFETY: `extent` is `a`'s own extent. Either `&a` freezes `a`'s whole allocation, or
    // every byte of the span is a byte of one of `a`'s own elements, which `&a` borrows
    // immutably; either way nothing writes the bytes while the borrow lasts.
    Some((unsafe { raw_span(a, extent) }, extent))
}

/// The extent of `a`'s elements around element zero; `None` if `a` is empty (or its extent
/// overflows, which ndarray rules out for a live array).
fn extent<T: Element, S: Data<Elem = T>, D: Dimension>(a: &ArrayBase<S, D>) -> Option<Extent> {
    let size = std::mem::size_of::<T>();
    let strides: Vec<isize> = a.strides().iter().map(|&s| s * size as isize).collect();
    Extent::of(a.shape(), &strides, size).ok().flatten()
}

/// Whether the distinct elements of `a` cover every byte of `extent` (no gaps between
/// them). ndarray never lets two indices with non-zero strides reach the same element, so
/// the distinct elements are those of the axes with non-zero strides.
fn is_gapless<T: Element, S: Data<Elem = T>, D: Dimension>(
    a: &ArrayBase<S, D>,
    extent: Extent,
) -> bool {
    let distinct = a
        .shape()
        .iter()
        .zip(a.strides())
        .filter(|&(_, &s)| s != 0)
        .try_fold(std::mem::size_of::<T>(), |acc, (&d, _)| acc.checked_mul(d));
    distinct == Some(extent.len())
}

/// The bytes `extent` covers around `a`'s element zero.
///
/// # Safety
/// `extent` must be `a`'s extent, and nothing may write those bytes (through a `&mut` or
/// otherwise) while the returned borrow lives.
unsafe fn raw_span<T, S, D>(a: &ArrayBase<S, D>, extent: Extent) -> &[u8]
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
    // arrays hold initialised `T`s, so every byte is initialised. The slice is borrowed from
    // `a`, which keeps the storage alive; the caller guarantees nothing writes it.
    unsafe { std::slice::from_raw_parts(base.offset(extent.low), extent.len()) }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, ArrayView2, CowArray, s};

    use super::*;

    #[test]
    fn views_with_gaps_get_no_span() {
        let base = Array2::<u8>::zeros((4, 6));
        let even = base.slice(s![.., ..;2]);
        assert!(span_of(&even).is_none());
        assert!(span_of(&base.slice(s![..;-1, ..])).is_some());
        assert!(span_of(&CowArray::from(even.view())).is_none());
        let owned_cow = CowArray::from(base.clone());
        assert!(span_of(&owned_cow).is_some());
        let even = SpanView::slice(&base, s![.., ..;2]);
        let (bytes, _) = even.span().unwrap();
        // From [0, 0] to one past [3, 4]: 3 rows of 6 bytes, then 4 bytes and the element.
        assert_eq!(bytes.len(), 3 * 6 + 4 + 1);
        let empty: ArrayView2<'_, u8> = base.slice(s![0..0, ..]);
        assert!(span_of(&empty).is_none());
    }
}
