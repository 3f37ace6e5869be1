//! [`NdArray`]: a numpy array as data — dtype, shape, byte strides and an offset into a shared
//! buffer — plus its conversions to and from `ndarray`.
//!
//! The reader produces `NdArray`s that view the out-of-band buffers (or the bytes copied once
//! out of the stream) without further copies; [`NdArray::view`] hands them to `ndarray` as
//! zero-copy views when dtype, byte order and alignment allow, and
//! [`NdArray::to_owned_array`] copies with byte swapping and unaligned reads otherwise.

use bytes::Bytes;
use ndarray::{ArrayBase, ArrayD, ArrayViewD, Axis, Data, Dimension, IxDyn, ShapeBuilder};

use crate::dtype::{ByteOrder, DType, Element, MAX_DIMS};
use crate::error::{DecodeError, DecodeErrorKind};
use crate::layout::Extent;
use crate::wire;

/// A numpy-style n-dimensional array over a shared byte buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct NdArray {
    dtype: DType,
    shape: Vec<usize>,
    strides: Vec<isize>,
    offset: usize,
    data: Bytes,
    readonly: bool,
}

/// C-contiguous byte strides for `shape` with `itemsize`-byte elements.
pub fn c_strides(shape: &[usize], itemsize: usize) -> Vec<isize> {
    let mut strides = Vec::with_capacity(shape.len());
    contiguous_strides_into(shape, itemsize, false, &mut strides);
    strides
}

/// [`c_strides`] (or [`f_strides`] when `fortran`) written into `out`, which is cleared
/// first: for callers that reuse one vector.
pub fn contiguous_strides_into(
    shape: &[usize],
    itemsize: usize,
    fortran: bool,
    out: &mut Vec<isize>,
) {
    out.clear();
    let mut acc = itemsize as isize;
    let mut next = |d: usize| {
        let s = acc;
        acc = acc.saturating_mul(d.max(1) as isize);
        s
    };
    if fortran {
        out.extend(shape.iter().map(|&d| next(d)));
    } else {
        out.extend(shape.iter().rev().map(|&d| next(d)));
        out.reverse();
    }
}

/// Whether `strides` lay `shape` out with no gaps, in C or in Fortran order (what
/// [`NdArray::is_c_contiguous`] or [`NdArray::is_f_contiguous`] says of an array).
pub fn is_c_or_f_contiguous(shape: &[usize], strides: &[isize], itemsize: usize) -> bool {
    is_contiguous(shape, strides, &c_strides(shape, itemsize))
        || is_contiguous(shape, strides, &f_strides(shape, itemsize))
}

/// F-contiguous byte strides for `shape` with `itemsize`-byte elements.
pub fn f_strides(shape: &[usize], itemsize: usize) -> Vec<isize> {
    let mut strides = Vec::with_capacity(shape.len());
    contiguous_strides_into(shape, itemsize, true, &mut strides);
    strides
}

/// Owner that lets a `Vec<T>` of elements back a [`Bytes`] without copying.
struct ElementVec<T: Element>(Vec<T>);

impl<T: Element> AsRef<[u8]> for ElementVec<T> {
    fn as_ref(&self) -> &[u8] {
        bytemuck::cast_slice(&self.0)
    }
}

impl NdArray {
    /// Builds an array from its parts, checking that every element lies inside `data`.
    pub fn new(
        dtype: DType,
        shape: Vec<usize>,
        strides: Vec<isize>,
        offset: usize,
        data: Bytes,
        readonly: bool,
    ) -> Result<NdArray, DecodeError> {
        NdArray::check_layout(&dtype, &shape, &strides, offset, data.len())?;
        let array = NdArray {
            dtype,
            shape,
            strides,
            offset,
            data,
            readonly,
        };
        if array.dtype.has_unicode() {
            array.check_code_points()?;
        }
        Ok(array)
    }

    /// The checks [`NdArray::new`] makes of the layout, on borrowed parts: `shape` and
    /// `strides` agree, the dtype holds no Python objects and is within numpy's limits, the
    /// element and byte counts fit numpy's `intp`, and every element lies inside a buffer of
    /// `data_len` bytes (element zero at `offset`). (`new` also checks the code points of
    /// `U` strings, which needs the data.)
    pub fn check_layout(
        dtype: &DType,
        shape: &[usize],
        strides: &[isize],
        offset: usize,
        data_len: usize,
    ) -> Result<(), DecodeError> {
        if shape.len() != strides.len() {
            return Err(bad(format!(
                "{} dimensions but {} strides",
                shape.len(),
                strides.len()
            )));
        }
        if dtype.has_object() {
            return Err(DecodeError::new(DecodeErrorKind::UnsupportedDtype(
                format!("{dtype} holds Python objects"),
            )));
        }
        if shape.len() > MAX_DIMS {
            return Err(bad(format!(
                "{} dimensions, numpy allows {MAX_DIMS}",
                shape.len()
            )));
        }
        dtype
            .check_numpy_limits()
            .map_err(|m| DecodeError::new(DecodeErrorKind::UnsupportedDtype(m)))?;
        let itemsize = dtype.itemsize();
        // numpy counts elements and bytes in `intp`: both must fit an isize.
        let count = wire::product(shape, "element count")?;
        let bytes = wire::mul(count, itemsize, "array byte length")?;
        if isize::try_from(count).is_err() || isize::try_from(bytes).is_err() {
            return Err(bad(format!(
                "{count} elements of {itemsize} bytes are more than numpy can index"
            )));
        }
        if let Some(ext) = Extent::of(shape, strides, itemsize)? {
            let off = wire::isize_from(offset, "array offset")?;
            let lo = off.checked_add(ext.low);
            let hi = off.checked_add(ext.high);
            match (lo, hi) {
                (Some(lo), Some(hi)) if lo >= 0 && hi as usize <= data_len => {}
                _ => {
                    return Err(bad(format!(
                        "elements reach bytes {}..{} of a {}-byte buffer",
                        off.saturating_add(ext.low),
                        off.saturating_add(ext.high),
                        data_len
                    )));
                }
            }
        }
        Ok(())
    }

    /// Every code point in the array's `U` strings is at most U+10FFFF (what a Python `str`
    /// can hold). The work is bounded by the buffer, not the shape: axes of stride zero repeat
    /// the same memory and are visited once; a contiguous `U` array is checked by one pass
    /// over its bytes; other layouts element by element (their gaps may hold anything, such
    /// as the other fields of a struct a view was taken from), when they have no more
    /// elements than their span has bytes. A `U` view overlapping itself more than that is
    /// checked on the 4-byte grid of its span, where almost every word lies in an element;
    /// other such views are refused.
    fn check_code_points(&self) -> Result<(), DecodeError> {
        let itemsize = self.dtype.itemsize();
        let (shape, strides): (Vec<usize>, Vec<isize>) = self
            .shape
            .iter()
            .zip(&self.strides)
            .filter(|&(_, &s)| s != 0)
            .map(|(&d, &s)| (d, s))
            .unzip();
        let Some(ext) = Extent::of(&shape, &strides, itemsize)? else {
            return Ok(()); // no elements
        };
        // In bounds: checked by `new` for the full shape, which reaches at least as far.
        let lo = (self.offset as isize + ext.low) as usize;
        let hi = (self.offset as isize + ext.high) as usize;
        let refuse = |cp: u32| {
            bad(format!(
                "a unicode element holds code point {cp:#x}, over U+10FFFF (not a str)"
            ))
        };
        let count = wire::product(&shape, "element count")?;
        let grid = |order: ByteOrder| {
            // Every code point lies on the 4-byte grid of element zero.
            let start = lo + (self.offset - lo) % 4;
            let span = DType::Unicode {
                chars: (hi - start) / 4,
                order,
            };
            match span.bad_code_point(&self.data[start..hi]) {
                Some(cp) => Err(refuse(cp)),
                None => Ok(()),
            }
        };
        let dense = is_contiguous(&shape, &strides, &c_strides(&shape, itemsize))
            || is_contiguous(&shape, &strides, &f_strides(&shape, itemsize));
        if let DType::Unicode { order, .. } = &self.dtype
            && (dense || (count > hi - lo && strides.iter().all(|s| s % 4 == 0)))
        {
            return grid(*order);
        }
        if count > hi - lo {
            return Err(bad(format!(
                "{count} overlapping elements of {} over {} bytes",
                self.dtype,
                hi - lo
            )));
        }
        let mut index = vec![0usize; shape.len()];
        for _ in 0..count {
            let at = index
                .iter()
                .zip(&strides)
                .fold(self.offset as isize, |acc, (&i, &s)| acc + i as isize * s)
                as usize;
            if let Some(cp) = self.dtype.bad_code_point(&self.data[at..at + itemsize]) {
                return Err(refuse(cp));
            }
            for (i, &d) in index.iter_mut().zip(&shape).rev() {
                *i += 1;
                if *i < d {
                    break;
                }
                *i = 0;
            }
        }
        Ok(())
    }

    /// A C-contiguous array over `data`, which must hold exactly the elements.
    pub fn from_c_bytes(
        dtype: DType,
        shape: Vec<usize>,
        data: Bytes,
    ) -> Result<NdArray, DecodeError> {
        let n = wire::product(&shape, "element count")
            .and_then(|n| wire::mul(n, dtype.itemsize(), "array byte length"))?;
        if n != data.len() {
            return Err(bad(format!(
                "shape {shape:?} of {dtype} needs {n} bytes, buffer has {}",
                data.len()
            )));
        }
        let strides = c_strides(&shape, dtype.itemsize());
        NdArray::new(dtype, shape, strides, 0, data, false)
    }

    /// Takes ownership of an `ndarray` array without copying its elements when they are in
    /// standard (C) order; other layouts are copied once into C order.
    pub fn from_array<T: Element, D: Dimension>(array: ndarray::Array<T, D>) -> NdArray {
        let shape = array.shape().to_vec();
        let standard = if array.is_standard_layout() {
            array
        } else {
            array.as_standard_layout().into_owned()
        };
        let (vec, offset) = standard.into_raw_vec_and_offset();
        let dtype = T::dtype();
        let itemsize = dtype.itemsize();
        let byte_offset = offset.unwrap_or(0) * itemsize;
        let strides = c_strides(&shape, itemsize);
        NdArray {
            dtype,
            shape,
            strides,
            offset: byte_offset,
            data: Bytes::from_owner(ElementVec(vec)),
            readonly: false,
        }
    }

    /// Copies any `ndarray` array (view or owned, any layout) into a new C-ordered `NdArray`.
    pub fn from_array_ref<T: Element, S: Data<Elem = T>, D: Dimension>(
        array: &ArrayBase<S, D>,
    ) -> NdArray {
        NdArray::from_array(array.to_owned())
    }

    /// The element type.
    pub fn dtype(&self) -> &DType {
        &self.dtype
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The strides in bytes (negative and zero strides allowed).
    pub fn strides(&self) -> &[isize] {
        &self.strides
    }

    /// Byte offset of element `[0, ..., 0]` inside [`NdArray::data`].
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The buffer the array views.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// The buffer the array views, taken out of the array (the offset, shape and strides say
    /// where the elements are in it).
    pub fn into_data(self) -> Bytes {
        self.data
    }

    /// Whether the array came from a read-only buffer.
    pub fn is_readonly(&self) -> bool {
        self.readonly
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Whether elements are laid out in C order with no gaps.
    pub fn is_c_contiguous(&self) -> bool {
        is_contiguous(
            &self.shape,
            &self.strides,
            &c_strides(&self.shape, self.dtype.itemsize()),
        )
    }

    /// Whether elements are laid out in Fortran order with no gaps.
    pub fn is_f_contiguous(&self) -> bool {
        is_contiguous(
            &self.shape,
            &self.strides,
            &f_strides(&self.shape, self.dtype.itemsize()),
        )
    }

    /// The bytes of a C-contiguous array, without copying; `None` for other layouts.
    pub fn c_bytes(&self) -> Option<&[u8]> {
        if !self.is_c_contiguous() {
            return None;
        }
        let len = self.len() * self.dtype.itemsize();
        self.data.get(self.offset..self.offset + len)
    }

    /// A zero-copy `ndarray` view. Fails clearly when `T` is not the array's dtype, the data
    /// is not in native byte order, the buffer is misaligned for `T` or a stride is not a
    /// multiple of the element size; [`NdArray::to_owned_array`] handles all of those.
    pub fn view<T: Element>(&self) -> Result<ArrayViewD<'_, T>, DecodeError> {
        self.check_element::<T>()?;
        if !self.dtype.is_native_order() {
            return Err(view_err(format!(
                "{} is not in native byte order; use to_owned_array",
                self.dtype
            )));
        }
        let size = std::mem::size_of::<T>();
        if self.is_empty() {
            return ArrayViewD::from_shape(IxDyn(&self.shape), &[])
                .map_err(|e| view_err(e.to_string()));
        }
        let mut elem_strides = Vec::with_capacity(self.strides.len());
        let mut low = self.offset as isize;
        for (&d, &s) in self.shape.iter().zip(&self.strides) {
            if s % size as isize != 0 {
                return Err(view_err(format!(
                    "stride {s} is not a multiple of the {size}-byte element; use to_owned_array"
                )));
            }
            if s < 0 {
                low += (d as isize - 1) * s;
            }
            elem_strides.push((s.unsigned_abs()) / size);
        }
        let low = low as usize;
        let ext = Extent::of(&self.shape, &self.strides, size)?
            .ok_or_else(|| view_err("empty extent".into()))?;
        let region = &self.data[low..low + ext.len()];
        let elems: &[T] = bytemuck::checked::try_cast_slice(region).map_err(|e| {
            view_err(format!(
                "buffer at address {:p} cannot be viewed as {}: {e:?}; use to_owned_array",
                region.as_ptr(),
                self.dtype
            ))
        })?;
        let mut view =
            ArrayViewD::from_shape(IxDyn(&self.shape).strides(IxDyn(&elem_strides)), elems)
                .map_err(|e| view_err(e.to_string()))?;
        for (axis, &s) in self.strides.iter().enumerate() {
            if s < 0 {
                view.invert_axis(Axis(axis));
            }
        }
        Ok(view)
    }

    /// Copies the elements into a new C-ordered `ndarray` array, swapping bytes and reading
    /// unaligned data as needed. Fails only when `T` is not the array's element type or
    /// an element is not a valid `T` (a bool byte other than 0 or 1).
    pub fn to_owned_array<T: Element>(&self) -> Result<ArrayD<T>, DecodeError> {
        self.check_element::<T>()?;
        if let Ok(v) = self.view::<T>() {
            // One copy, in C order, into memory that is huge-page backed when large.
            let mut out = crate::alloc::large_vec::<T>(v.len());
            match v.as_slice() {
                Some(s) => out.extend_from_slice(s),
                None => out.extend(v.iter().copied()),
            }
            return ArrayD::from_shape_vec(v.raw_dim(), out).map_err(|e| view_err(e.to_string()));
        }
        let size = std::mem::size_of::<T>();
        let swap = !self.dtype.is_native_order() && T::SWAP_UNIT > 1;
        let n = self.len();
        let mut out: Vec<T> = Vec::with_capacity(n);
        let mut scratch = [0u8; 32];
        let mut index = vec![0usize; self.shape.len()];
        for _ in 0..n {
            let mut pos = self.offset as isize;
            for (&i, &s) in index.iter().zip(&self.strides) {
                pos += i as isize * s;
            }
            let pos = pos as usize;
            let bytes = &self.data[pos..pos + size];
            let value = if swap {
                let tmp = &mut scratch[..size];
                tmp.copy_from_slice(bytes);
                for unit in tmp.chunks_exact_mut(T::SWAP_UNIT) {
                    unit.reverse();
                }
                bytemuck::checked::try_pod_read_unaligned::<T>(tmp)
            } else {
                bytemuck::checked::try_pod_read_unaligned::<T>(bytes)
            }
            .map_err(|e| view_err(format!("invalid {} element: {e:?}", self.dtype)))?;
            out.push(value);
            for axis in (0..index.len()).rev() {
                index[axis] += 1;
                if index[axis] < self.shape[axis] {
                    break;
                }
                index[axis] = 0;
            }
        }
        ArrayD::from_shape_vec(IxDyn(&self.shape), out).map_err(|e| view_err(e.to_string()))
    }

    fn check_element<T: Element>(&self) -> Result<(), DecodeError> {
        if self.dtype.to_native_order() != T::dtype() {
            return Err(view_err(format!(
                "array has dtype {}, not {}",
                self.dtype,
                T::dtype()
            )));
        }
        Ok(())
    }
}

impl<T: Element> TryFrom<&NdArray> for ArrayD<T> {
    type Error = DecodeError;
    fn try_from(a: &NdArray) -> Result<ArrayD<T>, DecodeError> {
        a.to_owned_array()
    }
}

impl<T: Element> TryFrom<NdArray> for ArrayD<T> {
    type Error = DecodeError;
    fn try_from(a: NdArray) -> Result<ArrayD<T>, DecodeError> {
        a.to_owned_array()
    }
}

impl<T: Element, D: Dimension> From<ndarray::Array<T, D>> for NdArray {
    fn from(a: ndarray::Array<T, D>) -> NdArray {
        NdArray::from_array(a)
    }
}

/// Whether `strides` equal `expected` on every axis longer than one (numpy's rule); empty
/// arrays are contiguous.
pub(crate) fn is_contiguous(shape: &[usize], strides: &[isize], expected: &[isize]) -> bool {
    if shape.contains(&0) {
        return true;
    }
    shape
        .iter()
        .zip(strides)
        .zip(expected)
        .all(|((&d, &s), &e)| d <= 1 || s == e)
}

fn bad(msg: String) -> DecodeError {
    DecodeError::new(DecodeErrorKind::BadArray(msg))
}

fn view_err(msg: String) -> DecodeError {
    DecodeError::new(DecodeErrorKind::View(msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, s};

    #[test]
    fn owned_array_is_not_copied() {
        let a = Array2::<f64>::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f64);
        let ptr = a.as_ptr() as *const u8;
        let nd = NdArray::from_array(a);
        assert_eq!(nd.data().as_ptr(), ptr);
        assert!(nd.is_c_contiguous());
        let v = nd.view::<f64>().unwrap();
        assert_eq!(v[[2, 3]], 11.0);
    }

    #[test]
    fn negative_and_zero_strides_view() {
        let a = Array2::<i32>::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as i32);
        let nd = NdArray::from_array(a.clone());
        // Reverse rows: offset at row 2, stride -16.
        let rev = NdArray::new(
            nd.dtype().clone(),
            vec![3, 4],
            vec![-16, 4],
            32,
            nd.data().clone(),
            true,
        )
        .unwrap();
        assert_eq!(
            rev.view::<i32>().unwrap(),
            a.slice(s![..;-1, ..]).into_dyn()
        );
        // Broadcast the first row three times.
        let bc = NdArray::new(
            nd.dtype().clone(),
            vec![3, 4],
            vec![0, 4],
            0,
            nd.data().clone(),
            true,
        )
        .unwrap();
        assert_eq!(
            bc.view::<i32>()
                .unwrap()
                .index_axis(Axis(0), 2)
                .iter()
                .copied()
                .collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
    }

    #[test]
    fn out_of_bounds_is_refused() {
        let data = Bytes::from(vec![0u8; 16]);
        let e = NdArray::new(f64::dtype(), vec![3], vec![8], 0, data.clone(), true).unwrap_err();
        assert!(e.to_string().contains("16-byte buffer"), "{e}");
        assert!(NdArray::new(f64::dtype(), vec![2], vec![-8], 0, data.clone(), true).is_err());
        assert!(
            NdArray::new(f64::dtype(), vec![usize::MAX, 2], vec![8, 8], 0, data, true).is_err()
        );
    }

    #[test]
    fn swapped_and_unaligned_copy() {
        let mut raw = vec![0u8];
        raw.extend_from_slice(&1.5f64.to_be_bytes());
        raw.extend_from_slice(&(-2.0f64).to_be_bytes());
        let dt = DType::parse(">f8").unwrap();
        let nd = NdArray::new(dt, vec![2], vec![8], 1, Bytes::from(raw), true).unwrap();
        assert!(nd.view::<f64>().is_err());
        assert_eq!(
            nd.to_owned_array::<f64>()
                .unwrap()
                .into_raw_vec_and_offset()
                .0,
            vec![1.5, -2.0]
        );
        assert!(nd.to_owned_array::<i64>().is_err());
    }

    #[test]
    fn invalid_bool_is_an_error() {
        let nd = NdArray::from_c_bytes(bool::dtype(), vec![2], Bytes::from(vec![1u8, 7])).unwrap();
        assert!(nd.view::<bool>().is_err());
        assert!(nd.to_owned_array::<bool>().is_err());
    }
}
