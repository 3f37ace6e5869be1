//! [`ToPickle`]: how Rust values become Python values, and its implementations.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use ndarray::{ArrayBase, Data, Dimension};

use crate::array::NdArray;
use crate::dtype::Element;
use crate::error::EncodeError;
use crate::layout::Extent;
use crate::span::{SpanStorage, SpanView};
use crate::value::{Object, Value};
use crate::write::encoder::{Encoder, MemoKey};
use crate::write::numpy::{self, ArrayParts, Body};
use crate::write::options::WriteOptions;

/// A Rust value that can be written as a Python value.
///
/// Arrays borrowed through `&'a self` may be sent out-of-band without copying: the returned
/// [`crate::Payload`] borrows them.
pub trait ToPickle {
    /// Pushes `self` onto the pickle stack.
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError>;
}

impl<T: ToPickle + ?Sized> ToPickle for &T {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        (**self).to_pickle(enc)
    }
}

impl<T: ToPickle + ?Sized> ToPickle for Box<T> {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        (**self).to_pickle(enc)
    }
}

impl<T: ToPickle + ?Sized> ToPickle for Arc<T> {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        (**self).to_pickle(enc)
    }
}

impl<T: ToPickle + ?Sized> ToPickle for Rc<T> {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        (**self).to_pickle(enc)
    }
}

impl<T: ToPickle + ToOwned + ?Sized> ToPickle for Cow<'_, T> {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        self.as_ref().to_pickle(enc)
    }
}

impl ToPickle for () {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        enc.none()
    }
}

impl<T: ToPickle> ToPickle for Option<T> {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        match self {
            Some(v) => v.to_pickle(enc),
            None => enc.none(),
        }
    }
}

impl ToPickle for bool {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        enc.bool(*self)
    }
}

macro_rules! int_impl {
    ($($t:ty),*) => {$(
        impl ToPickle for $t {
            fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
                enc.int128(i128::from(*self))
            }
        }
    )*};
}
// `u8` is deliberately absent: `[u8]` and `Vec<u8>` are Python `bytes`.
int_impl!(i8, i16, i32, i64, u16, u32, u64);

impl ToPickle for isize {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        enc.int128(*self as i128)
    }
}

impl ToPickle for usize {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        enc.uint128(*self as u128)
    }
}

impl ToPickle for i128 {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        enc.int128(*self)
    }
}

impl ToPickle for u128 {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        enc.uint128(*self)
    }
}

impl ToPickle for f32 {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        enc.float(f64::from(*self))
    }
}

impl ToPickle for f64 {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        enc.float(*self)
    }
}

impl ToPickle for half::f16 {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        enc.float(self.to_f64())
    }
}

impl ToPickle for half::bf16 {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        enc.float(self.to_f64())
    }
}

impl ToPickle for num_complex::Complex<f32> {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        enc.complex(f64::from(self.re), f64::from(self.im))
    }
}

impl ToPickle for num_complex::Complex<f64> {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        enc.complex(self.re, self.im)
    }
}

impl ToPickle for str {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        enc.str(self)
    }
}

impl ToPickle for String {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        enc.str(self)
    }
}

impl ToPickle for [u8] {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        enc.bytes(self)
    }
}

impl ToPickle for Vec<u8> {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        enc.bytes(self)
    }
}

impl<const N: usize> ToPickle for [u8; N] {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        enc.bytes(self)
    }
}

impl ToPickle for bytes::Bytes {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        enc.bytes(self)
    }
}

/// Implements `list` for sequence types of non-byte items.
macro_rules! list_impl {
    ($($t:ty),*) => {$(
        impl<T: ToPickle> ToPickle for $t {
            fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
                enc.list(self.iter(), &mut |enc, x| x.to_pickle(enc))
            }
        }
    )*};
}
list_impl!([T], Vec<T>, std::collections::VecDeque<T>);

impl<K: ToPickle, V: ToPickle, S> ToPickle for HashMap<K, V, S> {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        enc.dict(self.iter(), &mut |enc, (k, v)| {
            k.to_pickle(enc)?;
            v.to_pickle(enc)
        })
    }
}

impl<K: ToPickle, V: ToPickle> ToPickle for BTreeMap<K, V> {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        enc.dict(self.iter(), &mut |enc, (k, v)| {
            k.to_pickle(enc)?;
            v.to_pickle(enc)
        })
    }
}

impl<T: ToPickle, S> ToPickle for HashSet<T, S> {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        enc.set(self.iter(), &mut |enc, x| x.to_pickle(enc))
    }
}

impl<T: ToPickle> ToPickle for BTreeSet<T> {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        enc.set(self.iter(), &mut |enc, x| x.to_pickle(enc))
    }
}

macro_rules! tuple_impl {
    ($n:expr; $($name:ident $idx:tt),+) => {
        impl<$($name: ToPickle),+> ToPickle for ($($name,)+) {
            fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
                enc.tuple_start($n)?;
                $(self.$idx.to_pickle(enc)?;)+
                enc.tuple($n)
            }
        }
    };
}
tuple_impl!(1; A 0);
tuple_impl!(2; A 0, B 1);
tuple_impl!(3; A 0, B 1, C 2);
tuple_impl!(4; A 0, B 1, C 2, D 3);
tuple_impl!(5; A 0, B 1, C 2, D 3, E 4);
tuple_impl!(6; A 0, B 1, C 2, D 3, E 4, F 5);
tuple_impl!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_impl!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

/// `ndarray` arrays of any storage and dimension: contiguous data is sent zero-copy, strided
/// data per the layout policy (span or pack), broadcasts as their non-broadcast slice.
///
/// A strided view with gaps between its elements is packed unless its storage is borrowed
/// whole (an owned `Array`, an `ArcArray`): the gaps may belong to another live mutable view.
/// [`crate::SpanView`] sends such a view's span.
impl<T, S, D> ToPickle for ArrayBase<S, D>
where
    T: Element,
    S: Data<Elem = T> + SpanStorage,
    D: Dimension,
{
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        write_ndarray(self, || crate::span::span_of(self), enc)
    }
}

/// A view written with its whole span, gaps included.
impl<T: Element, D: Dimension> ToPickle for SpanView<'_, T, D> {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        write_ndarray(self.view(), || self.span(), enc)
    }
}

/// Writes `a` (memoised by address, shape, strides and dtype), `span` giving its span where
/// sending it is sound.
fn write_ndarray<'a, T, S, D>(
    a: &'a ArrayBase<S, D>,
    span: impl FnOnce() -> Option<(&'a [u8], Extent)>,
    enc: &mut Encoder<'a, '_>,
) -> Result<(), EncodeError>
where
    T: Element,
    S: Data<Elem = T>,
    D: Dimension,
{
    let size = std::mem::size_of::<T>() as isize;
    let key = MemoKey::Array {
        addr: a.as_ptr() as usize,
        shape: a.shape().to_vec(),
        strides: a.strides().iter().map(|&s| s * size).collect(),
        dtype: T::dtype(),
    };
    if enc.get_memo(&key)? {
        return Ok(());
    }
    let parts = parts_with_span(a, span, enc.options())?;
    numpy::write_array(enc, parts)?;
    enc.memoize(key)
}

/// Runs the layout decision for an `ndarray` array.
#[cfg(feature = "serde")]
pub(crate) fn ndarray_parts<'a, T, S, D>(
    a: &'a ArrayBase<S, D>,
    opts: &WriteOptions,
) -> Result<ArrayParts<'a>, EncodeError>
where
    T: Element,
    S: Data<Elem = T> + SpanStorage,
    D: Dimension,
{
    parts_with_span(a, || crate::span::span_of(a), opts)
}

/// The layout decision for `a`; a strided span is sent only if `span` gives one.
fn parts_with_span<'a, T, S, D>(
    a: &'a ArrayBase<S, D>,
    span: impl FnOnce() -> Option<(&'a [u8], Extent)>,
    opts: &WriteOptions,
) -> Result<ArrayParts<'a>, EncodeError>
where
    T: Element,
    S: Data<Elem = T>,
    D: Dimension,
{
    let size = std::mem::size_of::<T>();
    let strides: Vec<isize> = a.strides().iter().map(|&s| s * size as isize).collect();
    let dtype = Cow::Owned(T::dtype());
    let shape = Cow::Borrowed(a.shape());
    if let Some(slice) = a.as_slice_memory_order() {
        // Contiguous memory (C, F, or with reversed axes): the slice starts at the lowest
        // address, element zero sits `-low` bytes into it.
        let bytes: &'a [u8] = bytemuck::cast_slice(slice);
        let low = crate::layout::Extent::of(a.shape(), &strides, size)?.map_or(0, |e| e.low);
        return numpy::plan_parts(dtype, shape, &strides, bytes, low.unsigned_abs(), opts);
    }
    let plan = crate::layout::plan(
        a.shape(),
        &strides,
        size,
        opts.layout(),
        opts.span_threshold(),
    )?;
    let span = match plan {
        crate::layout::Plan::Span { .. } if !opts.numpy_form().is_native() => span(),
        _ => None,
    };
    match span {
        Some((span, extent)) => Ok(ArrayParts {
            dtype,
            shape,
            body: Body::Span {
                bytes: span,
                offset: (-extent.low) as usize,
                strides,
            },
        }),
        None => {
            if opts.numpy_form().is_native()
                && opts.layout() == crate::layout::LayoutPolicy::AlwaysSpan
            {
                return Err(EncodeError::Layout(
                    "numpy's native forms carry no strides: a strided span needs the portable form"
                        .into(),
                ));
            }
            // Pack through ndarray's own iteration (broadcast axes collapsed in the
            // portable form, everything materialised in the native forms).
            let mut view = a.view();
            let native = opts.numpy_form().is_native();
            if !native {
                for (axis, &s) in strides.iter().enumerate() {
                    if s == 0 && view.shape()[axis] > 1 {
                        view.collapse_axis(ndarray::Axis(axis), 0);
                    }
                }
            }
            let count = view.len();
            let mut bytes = Vec::with_capacity(count * size);
            for x in view.iter() {
                bytes.extend_from_slice(bytemuck::bytes_of(x));
            }
            let out_strides = if native {
                crate::array::c_strides(a.shape(), size)
            } else {
                crate::layout::packed_strides(a.shape(), &strides, size).1
            };
            Ok(ArrayParts {
                dtype,
                shape,
                body: Body::Packed {
                    bytes,
                    strides: out_strides,
                },
            })
        }
    }
}

/// Arrays decoded by the reader (or built from owned `ndarray` arrays).
impl ToPickle for NdArray {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        let key = MemoKey::Array {
            addr: self.data().as_ptr() as usize + self.offset(),
            shape: self.shape().to_vec(),
            strides: self.strides().to_vec(),
            dtype: self.dtype().clone(),
        };
        if enc.get_memo(&key)? {
            return Ok(());
        }
        let opts = enc.options();
        let parts = numpy::plan_parts(
            Cow::Borrowed(self.dtype()),
            Cow::Borrowed(self.shape()),
            self.strides(),
            self.data(),
            self.offset(),
            opts,
        )?;
        numpy::write_array(enc, parts)?;
        enc.memoize(key)
    }
}

impl ToPickle for Value {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        match self {
            Value::None => enc.none(),
            Value::Bool(b) => enc.bool(*b),
            Value::Int(i) => enc.int(*i),
            Value::BigInt(b) => enc.bigint(b),
            Value::Float(f) => enc.float(*f),
            Value::Complex(c) => enc.complex(c.re, c.im),
            Value::Str(s) => enc.str(s),
            Value::Bytes(b) => enc.bytes(b),
            Value::ByteArray(b) => enc.bytearray(b),
            Value::Buffer { data, readonly } => {
                if enc.out_of_band() {
                    enc.next_buffer(crate::PayloadBuffer::borrowed(data, *readonly))
                } else if *readonly {
                    enc.bytes(data)
                } else {
                    enc.bytearray(data)
                }
            }
            Value::List(items) => enc.list(items.iter(), &mut |enc, x| x.to_pickle(enc)),
            Value::Tuple(items) => {
                enc.tuple_start(items.len())?;
                for x in items {
                    x.to_pickle(enc)?;
                }
                enc.tuple(items.len())
            }
            Value::Dict(items) => enc.dict(items.iter(), &mut |enc, (k, v)| {
                k.to_pickle(enc)?;
                v.to_pickle(enc)
            }),
            Value::Set(items) => enc.set(items.iter(), &mut |enc, x| x.to_pickle(enc)),
            Value::FrozenSet(items) => enc.frozenset(items.iter(), &mut |enc, x| x.to_pickle(enc)),
            Value::Array(a) => a.to_pickle(enc),
            Value::Scalar(a) => {
                let bytes = a.c_bytes().ok_or_else(|| {
                    EncodeError::Layout("a numpy scalar must be a single contiguous element".into())
                })?;
                numpy::write_scalar(enc, a.dtype(), bytes)
            }
            Value::DType(d) => numpy::write_dtype(enc, d),
            Value::Global(g) => enc.global_uncached(&g.module, &g.name),
            Value::Object(o) => o.to_pickle(enc),
            Value::Py2Str(b) => enc.str(&crate::read::latin1_text(b)),
            Value::SurrogateStr(_) => Err(EncodeError::InvalidOption(
                "a str with lone surrogates cannot be written".into(),
            )),
            Value::Ref(_) => Err(EncodeError::InvalidOption(
                "a shared reference of a read::Graph has no meaning outside its graph".into(),
            )),
        }
    }
}

impl ToPickle for Object {
    fn to_pickle<'a>(&'a self, enc: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        enc.global_uncached(&self.callable.module, &self.callable.name)?;
        enc.tuple_start(self.args.len())?;
        for a in &self.args {
            a.to_pickle(enc)?;
        }
        enc.tuple(self.args.len())?;
        enc.reduce()?;
        if let Some(state) = &self.state {
            state.to_pickle(enc)?;
            enc.build()?;
        }
        Ok(())
    }
}
