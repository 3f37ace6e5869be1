//! What a single-pass reader outside this crate builds on: which reconstruction a global
//! names, and the numpy dtype and array constructors on already-extracted parts — the same
//! functions the VM's matchers (module `numpy`) call, so both readers accept and build the
//! same arrays.
//!
//! The Python bindings' direct path (`safe_loads` over common pickles, building Python
//! objects as it reads) is the user: it handles a subset of the format, calls these for the
//! calls it meets, and leaves anything else to the full reader.

use bytes::Bytes;

use crate::array::NdArray;
use crate::dtype::DType;
use crate::error::DecodeError;
use crate::value::Value;

use super::allow::{self, Known};
use super::args::encode;
use super::numpy::{self, Layout};
use super::options::ReadOptions;

/// A callable the direct path builds from its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// `numpy.ndarray`: the portable form's callable, or `_reconstruct`'s first argument.
    NdArray,
    /// `numpy.dtype`.
    DType,
    /// `numpy.core.multiarray._reconstruct` (and its other spellings).
    Reconstruct,
    /// `numpy.core.numeric._frombuffer`.
    FromBuffer,
    /// `_codecs.encode`, protocol 2's spelling of `bytes`.
    CodecsEncode,
}

/// The form `module.name` stands for under `opts`' allow-list, or `None` when it is
/// anything else (refused, or a callable only the full reader handles).
pub fn form(module: &str, name: &str, opts: &ReadOptions) -> Option<Form> {
    Some(match allow::resolve(module, name, opts).ok()? {
        Known::NpNdarray => Form::NdArray,
        Known::NpDtype => Form::DType,
        Known::NpReconstruct => Form::Reconstruct,
        Known::NpFrombuffer => Form::FromBuffer,
        Known::CodecsEncode => Form::CodecsEncode,
        _ => return None,
    })
}

/// `numpy.dtype(*args)`, then `BUILD` with `state` when given.
pub fn dtype(args: &[Value], state: Option<&Value>) -> Result<DType, DecodeError> {
    numpy::dtype_call(args, state).map_err(DecodeError::new)
}

/// `_codecs.encode(text, encoding)`.
pub fn codecs_encode(text: &str, encoding: &str) -> Result<Bytes, DecodeError> {
    encode(text, encoding, "_codecs.encode argument").map_err(DecodeError::new)
}

/// `_reconstruct(ndarray, ...)` + `BUILD (version, shape, dtype, fortran, data)`. Like every
/// constructor here, it refuses dtypes holding Python objects (as [`NdArray::new`] does).
pub fn reconstruct(
    shape: Vec<usize>,
    dtype: DType,
    fortran: bool,
    data: Bytes,
) -> Result<NdArray, DecodeError> {
    numpy::reconstruct_array(shape, dtype, fortran, data).map_err(DecodeError::new)
}

/// `_frombuffer(data, dtype, shape, order)`; `readonly` says whether `data` is.
pub fn frombuffer(
    data: Bytes,
    readonly: bool,
    dtype: DType,
    shape: Vec<usize>,
    order: &str,
) -> Result<NdArray, DecodeError> {
    numpy::frombuffer_array(data, readonly, dtype, shape, order, None).map_err(DecodeError::new)
}

/// `numpy.ndarray(shape, dtype, data, offset, strides, order)`: `strides` when given,
/// else contiguous in `order`.
pub fn ndarray(
    shape: Vec<usize>,
    dtype: DType,
    (data, readonly): (Bytes, bool),
    offset: usize,
    strides: Option<Vec<isize>>,
    order: &str,
) -> Result<NdArray, DecodeError> {
    let layout = match strides {
        Some(s) => Layout::Strides(s),
        None => Layout::Order(order),
    };
    numpy::ndarray_array(shape, dtype, data, readonly, offset, layout).map_err(DecodeError::new)
}

/// The layout `numpy.ndarray(shape, dtype, data, offset, strides, order)` gets, checked as
/// [`ndarray`] checks it, without building the array: its strides (`strides` when given,
/// else contiguous in `order`) written into `out`. For dtypes that are numbers, booleans or
/// datetimes (no fields, sub-arrays, strings or objects: an error otherwise, for the caller
/// to use [`ndarray`]).
pub fn ndarray_layout(
    shape: &[usize],
    dtype: &DType,
    data_len: usize,
    offset: usize,
    strides: Option<&[isize]>,
    order: &str,
    out: &mut Vec<isize>,
) -> Result<(), DecodeError> {
    if !matches!(dtype, DType::Scalar { .. } | DType::Time { .. }) {
        return Err(DecodeError::new(crate::error::DecodeErrorKind::Refused(
            format!("dtype {dtype} takes the full constructor"),
        )));
    }
    match strides {
        Some(s) => {
            out.clear();
            out.extend_from_slice(s);
        }
        None => numpy::order_strides_into(shape, dtype.itemsize(), order, out)
            .map_err(DecodeError::new)?,
    }
    numpy::check_stride_count(shape, out).map_err(DecodeError::new)?;
    NdArray::check_layout(dtype, shape, out, offset, data_len)
}
