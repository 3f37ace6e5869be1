//! Zero-copy memory shared between Rust and Python, in both directions. All of this crate's
//! raw-memory code lives here:
//!
//! - [`RawBuffer`]: a Python object exporting a read-only or writable 1-d byte buffer over
//!   memory kept alive by an owner — a Python object (a numpy array whose span is sent), a
//!   [`Bytes`] or an `Arc` of Rust data (an `ndarray` array handed to Python).
//! - [`ArrayMemory`]: the data pointer, shape, byte strides and flags of a numpy array, read
//!   from numpy's C structs, and the bytes of its extent as a slice.
//! - [`bytes_from_python`]: a [`Bytes`] viewing the memory of any C-contiguous Python buffer
//!   (an out-of-band buffer given to `safe_loads`) and keeping that buffer alive.

use std::any::Any;
use std::ffi::c_int;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ndarray::Array;
use ndpickle::internals::Extent;
use numpy::npyffi::{self, NPY_ARRAY_WRITEABLE};
use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::buffer::PyUntypedBuffer;
use pyo3::ffi;
use pyo3::prelude::*;

use crate::error::buffer_err;

/// What keeps the memory of a [`RawBuffer`] alive.
pub enum Owner {
    /// A Python object owning the memory (a numpy array).
    Python(Py<PyAny>),
    /// A shared byte buffer.
    Bytes(Bytes),
    /// Any shared Rust value owning the memory (an `Arc<ndarray::Array<..>>`).
    Shared(Arc<dyn Any + Send + Sync>),
}

/// A 1-d unsigned-byte buffer over memory kept alive by its owner; `pickle.PickleBuffer`
/// wraps it so that pickle ships that memory without copying it.
#[pyclass(module = "ndpickle._native", frozen)]
pub struct RawBuffer {
    /// Address of the first byte (a pointer stored as an integer so that the class is `Send`).
    addr: usize,
    len: usize,
    readonly: bool,
    owner: Owner,
    /// Size of the elements the bytes hold (1: unknown), for the shuffle filter when the
    /// owner is no numpy array (a packed copy of a strided view).
    elem_size: usize,
}

impl RawBuffer {
    /// A buffer over `len` bytes at `ptr`.
    ///
    /// # Safety
    /// `ptr..ptr + len` must stay valid (and, if `readonly` is false, writable and not
    /// aliased by Rust references) for as long as `owner` is alive.
    pub unsafe fn new(ptr: *const u8, len: usize, readonly: bool, owner: Owner) -> RawBuffer {
        RawBuffer {
            addr: ptr as usize,
            len,
            readonly,
            owner,
            elem_size: 1,
        }
    }

    /// A writable buffer over bytes it owns alone.
    pub fn from_unique(mut data: BytesMut) -> RawBuffer {
        let (ptr, len) = (data.as_mut_ptr(), data.len());
        // SAFETY: `data` is the only handle to its memory and moves into the owner, where
        // Rust never reads or writes it again before dropping it with this buffer (moving a
        // `BytesMut` does not move its heap memory), so Python's writes alias nothing.
        unsafe { RawBuffer::new(ptr, len, false, Owner::Shared(Arc::new(data))) }
    }

    /// This buffer, recording that its bytes hold elements of `size` bytes (what the
    /// shuffle filter transposes by).
    pub(crate) fn with_elem_size(mut self, size: usize) -> RawBuffer {
        self.elem_size = size.max(1);
        self
    }

    /// Size of the elements the bytes hold, as recorded (1 when unknown).
    pub(crate) fn elem_size(&self) -> usize {
        self.elem_size
    }

    /// A read-only buffer over a [`Bytes`], which it keeps alive.
    pub fn from_bytes(data: Bytes) -> RawBuffer {
        RawBuffer {
            addr: data.as_ptr() as usize,
            len: data.len(),
            readonly: true,
            owner: Owner::Bytes(data),
            elem_size: 1,
        }
    }

    /// A read-only buffer over `part` of the memory of `owner`, an `Arc` of an owned
    /// `ndarray` array: nothing can write or move that memory while a clone of the `Arc`
    /// lives. Fails unless `part` lies inside the memory of `owner`'s elements.
    pub(crate) fn from_shared<T, D>(part: &[u8], owner: Arc<Array<T, D>>) -> PyResult<RawBuffer>
    where
        T: ndpickle::Element,
        D: ndarray::Dimension + 'static,
    {
        let size = std::mem::size_of::<T>();
        let strides: Vec<isize> = owner.strides().iter().map(|&s| s * size as isize).collect();
        let extent =
            Extent::of(owner.shape(), &strides, size).map_err(|e| buffer_err(e.to_string()))?;
        check_within(part, owner.as_ptr().cast::<u8>(), extent)?;
        Ok(RawBuffer {
            addr: part.as_ptr() as usize,
            len: part.len(),
            readonly: true,
            owner: Owner::Shared(owner),
            elem_size: size,
        })
    }
}

#[pymethods]
impl RawBuffer {
    /// Address of the first byte.
    #[getter]
    fn address(&self) -> usize {
        self.addr
    }

    /// Whether the buffer is exported read-only.
    #[getter]
    fn readonly(&self) -> bool {
        self.readonly
    }

    /// The object owning the memory, if it is a Python object.
    #[getter]
    fn owner(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        match &self.owner {
            Owner::Python(o) => Some(o.clone_ref(py)),
            _ => None,
        }
    }

    fn __len__(&self) -> usize {
        self.len
    }

    fn __repr__(&self) -> String {
        format!(
            "<ndpickle RawBuffer {} bytes at 0x{:x}{}>",
            self.len,
            self.addr,
            if self.readonly { ", read-only" } else { "" }
        )
    }

    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let this = slf.get();
        let len =
            isize::try_from(this.len).map_err(|_| buffer_err("buffer too large for Py_ssize_t"))?;
        // SAFETY: `view` is the caller's Py_buffer to fill (buffer protocol contract). The
        // memory stays valid while `slf` lives (constructor contract), and PyBuffer_FillInfo
        // stores a new reference to `slf` in `view.obj`. It refuses PyBUF_WRITABLE requests
        // on a read-only buffer.
        let rc = unsafe {
            ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                this.addr as *mut std::ffi::c_void,
                len,
                c_int::from(this.readonly),
                flags,
            )
        };
        if rc < 0 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}
}

/// The memory layout of a numpy array, read from numpy's structs.
pub(crate) struct ArrayMemory<'a, 'py> {
    /// Address of element `[0, ..., 0]`.
    pub data: *const u8,
    /// Shape.
    pub shape: &'a [usize],
    /// Byte strides.
    pub strides: &'a [isize],
    /// Element size in bytes.
    pub itemsize: usize,
    /// Whether the array is writable.
    pub writeable: bool,
    /// The dtype object.
    pub dtype: Bound<'py, PyArrayDescr>,
}

impl<'a, 'py> ArrayMemory<'a, 'py> {
    /// The layout of `array`.
    pub(crate) fn of(array: &'a Bound<'py, PyUntypedArray>) -> ArrayMemory<'a, 'py> {
        let ptr = array.as_array_ptr();
        // SAFETY: `array` is a live numpy array, so `ptr` points to its PyArrayObject;
        // `data` and `flags` are plain fields of it.
        let (data, flags) = unsafe { ((*ptr).fields.data as *const u8, (*ptr).fields.flags) };
        let dtype = array.dtype();
        ArrayMemory {
            data,
            shape: array.shape(),
            strides: array.strides(),
            itemsize: dtype.itemsize(),
            writeable: flags & NPY_ARRAY_WRITEABLE != 0,
            dtype,
        }
    }

    /// A buffer over `part` of this array's memory (a sub-slice of [`Self::extent_bytes`]),
    /// kept alive by `owner`, writable when the array is. Fails unless `owner` is the array
    /// this layout was read from and `part` lies inside the bytes its elements span.
    pub(crate) fn raw_buffer(&self, owner: &Bound<'py, PyAny>, part: &[u8]) -> PyResult<RawBuffer> {
        let array = owner
            .cast::<PyUntypedArray>()
            .map_err(|_| buffer_err("a raw buffer's owner must be a numpy array"))?;
        // SAFETY: `array` is a live numpy array; `data` is a plain field of its struct.
        let data = unsafe { (*array.as_array_ptr()).fields.data as *const u8 };
        if data != self.data || array.shape() != self.shape || array.strides() != self.strides {
            return Err(buffer_err(
                "a raw buffer's owner must be the array its memory belongs to",
            ));
        }
        let extent = Extent::of(self.shape, self.strides, self.itemsize)
            .map_err(|e| buffer_err(e.to_string()))?;
        check_within(part, self.data, extent)?;
        Ok(RawBuffer {
            addr: part.as_ptr() as usize,
            len: part.len(),
            readonly: !self.writeable,
            owner: Owner::Python(owner.clone().unbind()),
            elem_size: self.itemsize,
        })
    }

    /// Whether the elements are plain data (no Python object references or pointers), so
    /// that their bytes can be shipped.
    pub(crate) fn is_plain_data(&self) -> bool {
        self.dtype.flags() & (npyffi::NPY_ITEM_REFCOUNT | npyffi::NPY_ITEM_IS_POINTER) == 0
    }

    /// The bytes every element lies in and the offset of element zero inside them (empty
    /// for an array without elements).
    pub(crate) fn element_bytes(&self) -> PyResult<(&'a [u8], usize)> {
        let extent = Extent::of(self.shape, self.strides, self.itemsize)
            .map_err(|e| crate::error::encode_err(e.into()))?;
        Ok(match extent {
            Some(ext) => (self.extent_bytes(ext)?, (-ext.low) as usize),
            None => (&[][..], 0),
        })
    }

    /// The bytes `extent.low..extent.high` around element zero; fails unless `extent` lies
    /// within the extent of this array's shape and strides.
    pub(crate) fn extent_bytes(&self, extent: Extent) -> PyResult<&'a [u8]> {
        let own = Extent::of(self.shape, self.strides, self.itemsize)
            .map_err(|e| buffer_err(e.to_string()))?;
        if !own.is_some_and(|own| own.low <= extent.low && extent.high <= own.high) {
            return Err(buffer_err(
                "the bytes asked for lie outside the array's memory",
            ));
        }
        // SAFETY: numpy guarantees that every element of a live array lies in valid memory;
        // `extent` spans exactly the bytes from the lowest to the highest element touched,
        // so the slice lies in memory owned by the array, which the borrow `'a` keeps alive. The slice
        // is read while the GIL is held and nothing in this crate writes through it.
        Ok(unsafe { std::slice::from_raw_parts(self.data.offset(extent.low), extent.len()) })
    }
}

/// Fails unless `part` is empty or lies inside `extent` around `zero` (the address of an
/// array's element zero).
fn check_within(part: &[u8], zero: *const u8, extent: Option<Extent>) -> PyResult<()> {
    if part.is_empty() {
        return Ok(());
    }
    let inside = extent.is_some_and(|e| {
        let (start, end) = (part.as_ptr() as usize, part.as_ptr() as usize + part.len());
        let low = (zero as usize).checked_add_signed(e.low);
        let high = (zero as usize).checked_add_signed(e.high);
        matches!((low, high), (Some(low), Some(high)) if low <= start && end <= high)
    });
    if inside {
        Ok(())
    } else {
        Err(buffer_err(
            "a raw buffer must lie inside the memory of its owner's elements",
        ))
    }
}

/// Keeps a Python buffer alive behind a [`Bytes`].
struct PyBufferOwner(PyUntypedBuffer);

impl AsRef<[u8]> for PyBufferOwner {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the buffer was checked C-contiguous when wrapped; the exporter keeps
        // `buf_ptr..buf_ptr + len_bytes` valid until the PyUntypedBuffer is released, which
        // happens when this owner is dropped.
        unsafe { std::slice::from_raw_parts(self.0.buf_ptr() as *const u8, self.0.len_bytes()) }
    }
}

/// A [`Bytes`] over the memory of a C-contiguous Python buffer, without copying, and
/// whether that buffer is writable. The buffer stays exported (and its object alive) for as
/// long as any clone of the `Bytes` lives.
pub(crate) fn bytes_from_python(obj: &Bound<'_, PyAny>) -> PyResult<(Bytes, bool)> {
    let buf = match PyUntypedBuffer::get(obj) {
        Ok(buf) => buf,
        Err(e) => return zero_dim_bytes(obj).unwrap_or(Err(e)),
    };
    let writable = !buf.readonly();
    if buf.len_bytes() == 0 {
        return Ok((Bytes::new(), writable));
    }
    if !buf.is_c_contiguous() {
        return Err(buffer_err("buffer must be C-contiguous to be read"));
    }
    Ok((Bytes::from_owner(PyBufferOwner(buf)), writable))
}

/// The bytes of a 0-d buffer (a numpy scalar, a 0-d array), which has no shape for the
/// buffer protocol request above: its few bytes are copied, so the result is read-only.
/// `None` if `obj` is no 0-d buffer.
fn zero_dim_bytes(obj: &Bound<'_, PyAny>) -> Option<PyResult<(Bytes, bool)>> {
    let mv = pyo3::types::PyMemoryView::from(obj).ok()?;
    let ndim: usize = mv.getattr("ndim").ok()?.extract().ok()?;
    if ndim != 0 {
        return None;
    }
    Some(
        mv.call_method0("tobytes")
            .and_then(|b| b.extract::<Vec<u8>>())
            .map(|v| (Bytes::from(v), false)),
    )
}

/// A new writable numpy array of `dtype`, `shape` and byte `strides` whose memory numpy
/// allocates and which holds a copy of `bytes`, element zero at its first byte: the array
/// `pickle` gives for a small in-band array, made without a Python-level call. `None` when
/// the layout does not fit this shape of copy (a sub-array dtype, which numpy would fold
/// into the shape; more dimensions than numpy 1.x allows; a negative stride, an element
/// reached past `bytes` or `bytes` not exactly the array's size) and the caller must build
/// the array another way.
pub(crate) fn new_array_copy<'py>(
    dtype: &Bound<'py, PyArrayDescr>,
    shape: &[usize],
    strides: &[isize],
    bytes: &[u8],
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = dtype.py();
    let itemsize = dtype.itemsize();
    let nbytes = shape
        .iter()
        .try_fold(itemsize, |n, &d| n.checked_mul(d))
        .filter(|&n| n == bytes.len());
    let unfit = dtype.has_subarray()
        || shape.len() != strides.len()
        || shape.len() > MAX_DIMS
        || nbytes.is_none()
        || strides.iter().any(|&s| s < 0);
    let extent = Extent::of(shape, strides, itemsize).map_err(|e| buffer_err(e.to_string()))?;
    // numpy allocates `nbytes`; every element must lie inside it.
    let inside = extent.is_some_and(|e| e.low == 0 && e.len() <= bytes.len());
    if unfit || !inside || isize::try_from(bytes.len()).is_err() {
        return Ok(None);
    }
    let (mut dims, mut steps) = intp_layout(shape, strides);
    // SAFETY: the dims and strides arrays hold `shape.len()` entries each (checked above
    // to be at most numpy 1.x's limit), all dims fit `npy_intp` (their product with the
    // itemsize is `bytes.len()`, which does); the descr reference `into_dtype_ptr` adds is
    // stolen and, with no data pointer, numpy allocates `nbytes` bytes itself, every element
    // of which lies inside (the extent check above).
    let array = unsafe {
        new_from_descr(
            py,
            dtype.clone().into_dtype_ptr(),
            shape.len(),
            &mut dims,
            Some(&mut steps),
            std::ptr::null_mut(),
            0,
        )?
    };
    let raw = array.as_ptr();
    // SAFETY: `raw` is a numpy array whose data block numpy allocated with `bytes.len()`
    // bytes (its size, checked above); nothing else can see it yet.
    unsafe {
        let data = (*raw.cast::<npyffi::PyArrayObject>())
            .fields
            .data
            .cast::<u8>();
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len());
    }
    Ok(Some(array))
}

/// A new writable numpy array of `dtype`, `shape` and byte `strides` whose element zero sits
/// `zero` bytes into a copy of `bytes`, the copy held by a one-dimensional `uint8` numpy
/// array that is the new array's base: what `pickle` gives for a small strided,
/// reversed or broadcast in-band view (numpy views the `bytearray` the pickle names), made
/// with two C-API calls instead of a `bytearray` and a Python-level `numpy.ndarray` call.
/// `None` when the layout does not fit (a sub-array dtype, more dimensions than numpy 1.x
/// allows, an element outside `bytes`, an empty `bytes`) and the caller must build the
/// array another way.
pub(crate) fn new_array_over_copy<'py>(
    dtype: &Bound<'py, PyArrayDescr>,
    shape: &[usize],
    strides: &[isize],
    zero: usize,
    bytes: &[u8],
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = dtype.py();
    let unfit = dtype.has_subarray()
        || shape.len() != strides.len()
        || shape.len() > MAX_DIMS
        || bytes.is_empty()
        || isize::try_from(bytes.len()).is_err();
    if unfit {
        return Ok(None);
    }
    let extent =
        Extent::of(shape, strides, dtype.itemsize()).map_err(|e| buffer_err(e.to_string()))?;
    // Every element lies inside the copy: element zero plus the lowest and highest offsets.
    let inside = extent.is_some_and(|e| {
        let z = zero as isize;
        z.checked_add(e.low).is_some_and(|lo| lo >= 0)
            && z.checked_add(e.high)
                .is_some_and(|hi| hi as usize <= bytes.len())
    });
    if !inside || zero > bytes.len() {
        return Ok(None);
    }
    let mut len = [bytes.len() as npyffi::npy_intp];
    // SAFETY: one dimension of `len` bytes (which fits `npy_intp`, checked above);
    // `PyArray_DescrFromType` returns a new reference to the `uint8` descr, which is stolen,
    // and with no data pointer numpy allocates `len` bytes.
    let base = unsafe {
        let u8_descr =
            npyffi::PY_ARRAY_API.PyArray_DescrFromType(py, npyffi::NPY_TYPES::NPY_UBYTE as c_int);
        if u8_descr.is_null() {
            return Err(PyErr::fetch(py));
        }
        new_from_descr(py, u8_descr, 1, &mut len, None, std::ptr::null_mut(), 0)?
    };
    // SAFETY: `base` is a `uint8` array of `bytes.len()` bytes that numpy allocated and
    // nothing else can see yet; `data` points `zero` bytes into that block (`zero` is at most
    // its length, checked above).
    let data = unsafe {
        let data = (*base.as_ptr().cast::<npyffi::PyArrayObject>())
            .fields
            .data
            .cast::<u8>();
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len());
        data.add(zero)
    };
    let (mut dims, mut steps) = intp_layout(shape, strides);
    // SAFETY: the dims and strides arrays hold `shape.len()` entries (at most numpy 1.x's
    // limit, checked above), and every element they reach from `data` lies inside `base`'s
    // block (the extent check above); the dims fit `npy_intp` as `Extent::of` computed
    // offsets from them without overflow. The descr reference `into_dtype_ptr` adds is
    // stolen; the view does not own `data`, which stays valid while `base` lives, and
    // `PyArray_SetBaseObject` makes the view hold `base` (stealing the reference `into_ptr`
    // gives it).
    unsafe {
        let view = new_from_descr(
            py,
            dtype.clone().into_dtype_ptr(),
            shape.len(),
            &mut dims,
            Some(&mut steps),
            data.cast(),
            NPY_ARRAY_WRITEABLE,
        )?;
        if npyffi::PY_ARRAY_API.PyArray_SetBaseObject(
            py,
            view.as_ptr().cast::<npyffi::PyArrayObject>(),
            base.into_ptr(),
        ) != 0
        {
            return Err(PyErr::fetch(py));
        }
        Ok(Some(view))
    }
}

/// `NPY_MAXDIMS` of numpy 1.x (numpy 2 allows 64): the most dimensions the arrays made
/// here take.
const MAX_DIMS: usize = 32;

/// `shape` and byte `strides` as the `npy_intp` arrays numpy's constructors take (the first
/// `shape.len()` entries of each; the caller checks that it is at most [`MAX_DIMS`]).
fn intp_layout(
    shape: &[usize],
    strides: &[isize],
) -> ([npyffi::npy_intp; MAX_DIMS], [npyffi::npy_intp; MAX_DIMS]) {
    let (mut dims, mut steps) = ([0; MAX_DIMS], [0; MAX_DIMS]);
    for (i, (&d, &s)) in shape.iter().zip(strides).enumerate().take(MAX_DIMS) {
        (dims[i], steps[i]) = (d as npyffi::npy_intp, s as npyffi::npy_intp);
    }
    (dims, steps)
}

/// `PyArray_NewFromDescr` for a base-class ndarray of `ndim` dimensions.
///
/// # Safety
/// The GIL is held; `descr` is a new reference to a valid descr (it is stolen, whatever
/// happens); `dims` and `steps` (`None`: C-contiguous) hold at least `ndim` entries that
/// describe the array numpy's constructor accepts. With a null `data`, numpy allocates the array's bytes and
/// every element the strides reach must lie inside them; with `data`, every element they
/// reach from it must lie in memory that stays valid while the array lives (its base must
/// keep it alive), writable if `flags` says so.
unsafe fn new_from_descr<'py>(
    py: Python<'py>,
    descr: *mut npyffi::PyArray_Descr,
    ndim: usize,
    dims: &mut [npyffi::npy_intp],
    steps: Option<&mut [npyffi::npy_intp]>,
    data: *mut std::ffi::c_void,
    flags: c_int,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: the caller's contract above is `PyArray_NewFromDescr`'s.
    let raw = unsafe {
        npyffi::PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            npyffi::get_type_object(py, npyffi::NpyTypes::PyArray_Type),
            descr,
            ndim as c_int,
            dims.as_mut_ptr(),
            steps.map_or(std::ptr::null_mut(), |s| s.as_mut_ptr()),
            data,
            flags,
            std::ptr::null_mut(),
        )
    };
    if raw.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: `raw` is a new reference to the array just made.
    Ok(unsafe { Bound::from_owned_ptr(py, raw) })
}
