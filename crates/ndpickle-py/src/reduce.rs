//! The portable reduce form of an array (DESIGN §3.2, §3.4), from a description of the numpy
//! array (dtype, shape, strides, memory) handed to the core's writer, which decides what
//! travels ([`ndpickle::internals::plan_body`]) exactly as it does for its own pickles:
//!
//! ```text
//! (numpy.ndarray, (shape, dtype, buffer, offset, strides, order))
//! ```
//!
//! `buffer` is a `pickle.PickleBuffer` at protocol 5 — pickle sends it out-of-band when the
//! pickler has a `buffer_callback`, in-band (`BYTEARRAY8`/`BINBYTES8`, no intermediate copy)
//! otherwise — and a `bytearray` copy below protocol 5. Contiguous arrays and dense spans
//! (broadcasts included) are sent from the array's own memory; sparse views are packed once.
//!
//! Dtypes take the core's portable spelling too, `numpy.dtype(spec, align, True)` (see
//! `describe`). [`ArrayReducer`] is the `reducer_override` of `ndpickle.Pickler`; [`reduce_array`] and
//! [`reduce_ndarray`] let other PyO3 extensions implement `__reduce_ex__` for Rust-owned
//! arrays with zero copies.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ndarray::{Array, Dimension};
use ndpickle::internals::{
    ArrayParts, Body, BodyLayout, Extent, PortableLayout, plan_body, write_array,
};
use ndpickle::{DEFAULT_SPAN_THRESHOLD, LayoutPolicy};
use ndpickle::{Element, NdArray};
use numpy::{PyArrayDescr, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyTuple, PyType, PyWeakrefReference};
use pyo3::{PyTraverseError, PyVisit};

use crate::buffer::{ArrayMemory, RawBuffer};
use crate::convert::dtype_to_numpy;
use crate::describe::{dtype_of, portable_dtype};
use crate::error::{encode_err, invalid_arg};

static NDARRAY: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static PICKLE_BUFFER: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn ndarray_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    NDARRAY.import(py, "numpy", "ndarray")
}

pub(crate) fn pickle_buffer_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    PICKLE_BUFFER.import(py, "pickle", "PickleBuffer")
}

/// How arrays are reduced: the pickle protocol and the layout policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReduceOptions {
    /// Pickle protocol, 2 to 5. From 5 on, buffers are `pickle.PickleBuffer`s.
    pub protocol: u8,
    /// Layout policy for non-contiguous arrays.
    pub policy: LayoutPolicy,
    /// Used-over-span ratio from which `Auto` sends a span rather than packing.
    pub threshold: f64,
}

impl ReduceOptions {
    /// Options for `protocol` with the default layout policy.
    pub fn new(protocol: u8) -> PyResult<ReduceOptions> {
        if !(2..=5).contains(&protocol) {
            return Err(encode_err(ndpickle::EncodeError::UnsupportedProtocol(
                protocol,
            )));
        }
        Ok(ReduceOptions {
            protocol,
            policy: LayoutPolicy::Auto,
            threshold: DEFAULT_SPAN_THRESHOLD,
        })
    }
}

/// An array's memory as the reducer sees it: all bytes from the lowest to the highest
/// element (`region`, empty for an empty array), where element zero sits, and how to
/// export a part of the region to Python without copying.
struct Source<'a, F> {
    region: &'a [u8],
    zero: usize,
    shape: &'a [usize],
    strides: &'a [isize],
    itemsize: usize,
    /// Whether the array is read-only (packed copies keep the flag at protocol 5).
    readonly: bool,
    export: F,
}

/// Builds `(numpy.ndarray, (shape, dtype, buffer, offset, strides, order))`: the core's
/// [`plan_body`] decides what travels (the same layout decision and packing as the core's
/// writer), and [`Body::portable_layout`] gives the offset, strides and order over it.
fn portable<'py, F>(
    py: Python<'py>,
    dtype: Bound<'py, PyAny>,
    src: Source<'_, F>,
    opts: &ReduceOptions,
) -> PyResult<Bound<'py, PyTuple>>
where
    F: Fn(&[u8]) -> PyResult<RawBuffer>,
{
    let how = BodyLayout {
        policy: opts.policy,
        threshold: opts.threshold,
        native: false,
    };
    let body = plan_body(
        src.shape,
        src.strides,
        src.itemsize,
        src.region,
        src.zero,
        how,
    )
    .map_err(encode_err)?;
    let PortableLayout {
        offset,
        strides,
        order,
    } = body.portable_layout();
    let oob = opts.protocol >= 5;
    let buffer = match body {
        Body::Contiguous { bytes, .. } | Body::Span { bytes, .. } => {
            share(py, bytes, oob, &src.export)?
        }
        Body::Packed { bytes, .. } if !oob => PyByteArray::new(py, &bytes).into_any(),
        Body::Packed { bytes, .. } => {
            let raw = packed_buffer(bytes, src.readonly, src.itemsize);
            pickle_buffer_type(py)?.call1((Bound::new(py, raw)?,))?
        }
    };
    let shape = PyTuple::new(py, src.shape)?;
    let strides = match strides {
        Some(s) => PyTuple::new(py, s)?.into_any(),
        None => py.None().into_bound(py),
    };
    let args = (shape, dtype, buffer, offset, strides, order.as_str()).into_pyobject(py)?;
    PyTuple::new(py, [ndarray_type(py)?.as_any(), args.as_any()])
}

/// A packed copy handed over as is: read-only arrays get immutable memory (pickle marks it
/// READONLY_BUFFER or writes BINBYTES), writable ones writable; its elements keep the
/// dtype's size for the shuffle filter.
fn packed_buffer(bytes: Vec<u8>, readonly: bool, itemsize: usize) -> RawBuffer {
    let bytes = Bytes::from(bytes);
    let raw = if readonly {
        RawBuffer::from_bytes(bytes)
    } else {
        RawBuffer::from_unique(BytesMut::from(bytes))
    };
    raw.with_elem_size(itemsize)
}

/// The buffer object for `bytes`: a `PickleBuffer` over the memory at protocol 5, else a
/// `bytearray` copy.
fn share<'py, F>(
    py: Python<'py>,
    bytes: &[u8],
    oob: bool,
    export: &F,
) -> PyResult<Bound<'py, PyAny>>
where
    F: Fn(&[u8]) -> PyResult<RawBuffer>,
{
    if oob {
        let raw = Bound::new(py, export(bytes)?)?;
        pickle_buffer_type(py)?.call1((raw,))
    } else {
        Ok(PyByteArray::new(py, bytes).into_any())
    }
}

/// Reduces a numpy array whose dtype holds plain data; `None` for arrays it leaves to numpy
/// (object-holding dtypes, zero-sized elements).
pub fn reduce_numpy<'py>(
    array: &Bound<'py, PyUntypedArray>,
    opts: &ReduceOptions,
) -> PyResult<Option<Bound<'py, PyTuple>>> {
    let py = array.py();
    let mem = ArrayMemory::of(array);
    if !mem.is_plain_data() || mem.itemsize == 0 {
        return Ok(None);
    }
    let (region, zero) = mem.element_bytes()?;
    let src = Source {
        region,
        zero,
        shape: mem.shape,
        strides: mem.strides,
        itemsize: mem.itemsize,
        readonly: !mem.writeable,
        export: |part: &[u8]| mem.raw_buffer(array.as_any(), part),
    };
    portable(py, mem.dtype.clone().into_any(), src, opts).map(Some)
}

/// One numpy array as the core writes it: dtype, shape and the memory its elements lie in.
struct OneArray<'r> {
    dtype: ndpickle::DType,
    shape: &'r [usize],
    strides: &'r [isize],
    itemsize: usize,
    region: &'r [u8],
    zero: usize,
    how: BodyLayout,
}

impl ndpickle::ToPickle for OneArray<'_> {
    fn to_pickle<'a>(
        &'a self,
        enc: &mut ndpickle::write::Encoder<'a, '_>,
    ) -> Result<(), ndpickle::EncodeError> {
        let body = plan_body(
            self.shape,
            self.strides,
            self.itemsize,
            self.region,
            self.zero,
            self.how,
        )?;
        let parts = ArrayParts {
            dtype: std::borrow::Cow::Borrowed(&self.dtype),
            shape: std::borrow::Cow::Borrowed(self.shape),
            body,
        };
        write_array(enc, parts)
    }
}

/// A pickle and its out-of-band buffers (`pickle.PickleBuffer`s).
pub(crate) type ArrayPayload<'py> = (Vec<u8>, Vec<Bound<'py, PyAny>>);

/// The protocol-5 pickle of an exact `numpy.ndarray`, written by the core in the portable
/// form with no Python pickler (the same layout decision as [`reduce_numpy`], under
/// `LayoutPolicy::Auto` and `span_threshold`), and its out-of-band buffers as
/// `pickle.PickleBuffer`s over the array's own memory (or over the packed copy). `None` for
/// what this path leaves to the pickler: subclasses, dtypes holding objects, zero-sized
/// elements, dtypes the core does not model.
pub(crate) fn array_payload<'py>(
    array: &Bound<'py, PyAny>,
    span_threshold: f64,
) -> PyResult<Option<ArrayPayload<'py>>> {
    let py = array.py();
    if !array.get_type().is(ndarray_type(py)?) {
        return Ok(None);
    }
    let Ok(array) = array.cast::<PyUntypedArray>() else {
        return Ok(None);
    };
    let mem = ArrayMemory::of(array);
    if !mem.is_plain_data() || mem.itemsize == 0 {
        return Ok(None);
    }
    // The core writes every broadcast read-only; the pickler keeps a writable one writable.
    let broadcast = !mem.shape.contains(&0)
        && mem
            .shape
            .iter()
            .zip(mem.strides)
            .any(|(&d, &s)| s == 0 && d > 1);
    if broadcast && mem.writeable {
        return Ok(None);
    }
    let Some(dtype) = dtype_of(&mem.dtype)? else {
        return Ok(None);
    };
    let (region, zero) = mem.element_bytes()?;
    let one = OneArray {
        dtype,
        shape: mem.shape,
        strides: mem.strides,
        itemsize: mem.itemsize,
        region,
        zero,
        how: BodyLayout {
            policy: LayoutPolicy::Auto,
            threshold: span_threshold,
            native: false,
        },
    };
    // Uncompressed here: `serialize`'s frames decide compression per buffer after.
    let opts = ndpickle::WriteOptions::builder()
        .protocol(5)
        .readonly(!mem.writeable)
        .compression(ndpickle::codec::Compression::Off)
        .build()
        .map_err(encode_err)?;
    let payload = ndpickle::to_payload_with(&one, &opts).map_err(encode_err)?;
    let region_range = region.as_ptr_range();
    let mut buffers = Vec::with_capacity(payload.buffers.len());
    for b in payload.buffers {
        let part = b.as_slice();
        let inside = !part.is_empty()
            && region_range.start <= part.as_ptr()
            && part.as_ptr_range().end <= region_range.end;
        let raw = if inside {
            mem.raw_buffer(array.as_any(), part)?
        } else {
            // The packed copy (or an empty buffer).
            let readonly = b.is_readonly();
            packed_buffer(b.into_vec(), readonly, mem.itemsize)
        };
        buffers.push(pickle_buffer_type(py)?.call1((Bound::new(py, raw)?,))?);
    }
    Ok(Some((payload.pickle, buffers)))
}

/// The `reducer_override` of `ndpickle.Pickler`: exact `numpy.ndarray`s with plain-data
/// dtypes get the portable form; everything else goes to `fallback` (another pickler's
/// `reducer_override`, e.g. cloudpickle's) or back to pickle (`NotImplemented`).
///
/// An array whose memory lies inside a C-contiguous array this reducer already sent (of at
/// least 64 KiB (`SHARE_MIN`): a view, a transpose, a slice of it) is sent as a view of that
/// array, `numpy.ndarray(shape, dtype, <that array>, offset, strides)`: pickle's memo turns
/// the reference into a `GET`, so the memory travels once and the loaded arrays share it,
/// as they did when they were dumped.
///
/// Objects whose class lives in `pyarrow.lib` (arrays, tables, types...) go to `arrow` first
/// (`ndpickle._arrow.ArrowReducer`, which ships only the bytes a slice uses); when it
/// answers `NotImplemented` they go on to `fallback` like everything else.
///
/// A `fallback` that is a `weakref.ref` (a `weakref.WeakMethod` of the pickler's own
/// bound method, as `ndpickle.Pickler` passes) is dereferenced at each call, so that a
/// pickler holding its reducer holds no reference cycle and is freed as soon as it is
/// dropped; the garbage collector sees every other reference the reducer holds.
#[pyclass(module = "ndpickle._native", frozen)]
pub struct ArrayReducer {
    /// `None` below protocol 2: arrays are left to numpy's own reduce there.
    opts: Option<ReduceOptions>,
    fallback: Option<Py<PyAny>>,
    /// Whether `fallback` is a weak reference to dereference before calling.
    fallback_is_weak: bool,
    arrow: Option<Py<PyAny>>,
    /// C-contiguous arrays sent so far, by start address.
    sent: std::sync::Mutex<std::collections::BTreeMap<usize, Sent>>,
}

/// A C-contiguous array an [`ArrayReducer`] sent: (end address, read-only, the array).
type Sent = (usize, bool, Py<PyAny>);

/// Arrays of at least this many bytes are remembered, and looked up, by [`ArrayReducer`].
pub(crate) const SHARE_MIN: usize = 1 << 16;

#[pymethods]
impl ArrayReducer {
    #[new]
    #[pyo3(signature = (protocol=5, *, layout="auto", span_threshold=0.5, fallback=None, arrow=None))]
    fn py_new(
        py: Python<'_>,
        protocol: i64,
        layout: &str,
        span_threshold: f64,
        fallback: Option<Py<PyAny>>,
        arrow: Option<Py<PyAny>>,
    ) -> PyResult<ArrayReducer> {
        let protocol = u8::try_from(protocol)
            .ok()
            .filter(|p| *p <= 5)
            .ok_or_else(|| invalid_arg(format!("protocol {protocol} is not supported")))?;
        let mut opts = ReduceOptions::new(protocol.max(2))?;
        opts.policy = layout.parse::<LayoutPolicy>().map_err(encode_err)?;
        if !(span_threshold > 0.0 && span_threshold <= 1.0) {
            return Err(invalid_arg(format!(
                "span_threshold must be in (0, 1], not {span_threshold}"
            )));
        }
        opts.threshold = span_threshold;
        let fallback_is_weak = match &fallback {
            Some(f) => f.bind(py).is_instance_of::<PyWeakrefReference>(),
            None => false,
        };
        Ok(ArrayReducer {
            opts: (protocol >= 2).then_some(opts),
            fallback,
            fallback_is_weak,
            arrow,
            sent: std::sync::Mutex::new(std::collections::BTreeMap::new()),
        })
    }

    /// Forgets the arrays it sent (`Pickler.clear_memo` calls this): later views no longer
    /// refer to them, and they are no longer kept alive.
    fn clear(&self) {
        if let Ok(mut sent) = self.sent.lock() {
            sent.clear();
        }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.fallback)?;
        visit.call(&self.arrow)?;
        // A lock held elsewhere means arrays in use: skipping them only keeps them alive.
        if let Ok(sent) = self.sent.try_lock() {
            for (_, _, array) in sent.values() {
                visit.call(array)?;
            }
        }
        Ok(())
    }

    fn __clear__(&self) {
        self.clear();
    }

    /// The pickle protocol this reducer writes arrays for (`None` below 2: numpy's own).
    #[getter]
    fn protocol(&self) -> Option<u8> {
        self.opts.map(|o| o.protocol)
    }

    fn __call__<'py>(&self, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = obj.py();
        if let Some(opts) = &self.opts {
            if obj.get_type().is(ndarray_type(py)?) {
                let array = obj.cast::<PyUntypedArray>()?;
                // Only arrays large enough to be remembered or looked up take part.
                let span = Self::span(array)?.filter(|s| s.end - s.start >= SHARE_MIN);
                if let Some(span) = &span
                    && let Some(reduced) = self.view_of_sent(array, span)?
                {
                    return Ok(reduced.into_any());
                }
                if let Some(reduced) = reduce_numpy(array, opts)? {
                    if let Some(span) = &span {
                        self.remember(array, span);
                    }
                    return Ok(reduced.into_any());
                }
            } else if let Ok(descr) = obj.cast::<PyArrayDescr>()
                && let Some(dtype) = dtype_of(descr)?
            {
                // The portable spelling (numpy's own state for aligned structs does not
                // load on numpy 1.x; this one loads everywhere, DESIGN §3.2).
                return Ok(portable_dtype(py, &dtype)?.into_any());
            }
        }
        if let Some(arrow) = &self.arrow
            && is_pyarrow(obj)?
        {
            let reduced = arrow.bind(py).call1((obj,))?;
            if !reduced.is(py.NotImplemented().bind(py)) {
                return Ok(reduced);
            }
        }
        match &self.fallback {
            Some(f) if self.fallback_is_weak => {
                let target = f.bind(py).call0()?;
                if target.is_none() {
                    // The pickler that owned this reducer is gone.
                    return Ok(py.NotImplemented().into_bound(py));
                }
                target.call1((obj,))
            }
            Some(f) => f.bind(py).call1((obj,)),
            None => Ok(py.NotImplemented().into_bound(py)),
        }
    }
}

/// Whether `obj`'s class is one of pyarrow's own (defined in `pyarrow.lib`).
fn is_pyarrow(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    let module = obj.get_type().module()?;
    Ok(module.to_str()? == "pyarrow.lib")
}

/// Where an array's elements are: the address range they span, the offset of element zero
/// in it, and whether the memory is read-only.
struct Span {
    start: usize,
    end: usize,
    zero: usize,
    readonly: bool,
}

impl ArrayReducer {
    /// The [`Span`] of `array`'s elements, when it holds plain data.
    fn span(array: &Bound<'_, PyUntypedArray>) -> PyResult<Option<Span>> {
        let mem = ArrayMemory::of(array);
        if !mem.is_plain_data() || mem.itemsize == 0 {
            return Ok(None);
        }
        let extent =
            Extent::of(mem.shape, mem.strides, mem.itemsize).map_err(|e| encode_err(e.into()))?;
        extent
            .map(|ext| {
                let region = mem.extent_bytes(ext)?;
                let start = region.as_ptr() as usize;
                Ok(Span {
                    start,
                    end: start + region.len(),
                    zero: (-ext.low) as usize,
                    readonly: !mem.writeable,
                })
            })
            .transpose()
    }

    /// Remembers a C-contiguous array just sent, so that views into it can refer to it.
    fn remember(&self, array: &Bound<'_, PyUntypedArray>, span: &Span) {
        if !array.is_c_contiguous() {
            return;
        }
        if let Ok(mut sent) = self.sent.lock() {
            let longer = sent.get(&span.start).is_none_or(|(e, _, _)| *e < span.end);
            if longer {
                let obj = array.clone().into_any().unbind();
                sent.insert(span.start, (span.end, span.readonly, obj));
            }
        }
    }

    /// `numpy.ndarray(shape, dtype, base, offset, strides)` when `array`'s memory lies inside
    /// an array already sent with the same writeability.
    fn view_of_sent<'py>(
        &self,
        array: &Bound<'py, PyUntypedArray>,
        span: &Span,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let py = array.py();
        let base = match self.sent.lock() {
            Ok(sent) => match sent.range(..=span.start).next_back() {
                Some((&b_start, (b_end, b_readonly, obj)))
                    if *b_end >= span.end && *b_readonly == span.readonly && !obj.is(array) =>
                {
                    Some((b_start, obj.clone_ref(py)))
                }
                _ => None,
            },
            Err(_) => None,
        };
        let Some((b_start, base)) = base else {
            return Ok(None);
        };
        let mem = ArrayMemory::of(array);
        let shape = PyTuple::new(py, mem.shape)?;
        let strides = PyTuple::new(py, mem.strides)?;
        let offset = span.start - b_start + span.zero;
        let args = (shape, mem.dtype.clone(), base, offset, strides, "C").into_pyobject(py)?;
        PyTuple::new(py, [ndarray_type(py)?.as_any(), args.as_any()]).map(Some)
    }
}

/// `__reduce_ex__` for a Rust-owned `ndarray` array shared with Python through an [`Arc`].
///
/// At protocol 5 the buffer is a read-only `pickle.PickleBuffer` over the array's own
/// memory, kept alive by a clone of the `Arc` (so a pickler with a `buffer_callback` ships
/// it with zero copies); below 5 the bytes travel in-band. Strided arrays whose memory is
/// not contiguous are packed once. The result loads with `pickle` and numpy alone.
///
/// ```ignore
/// #[pyclass]
/// struct Field { data: Arc<ndarray::Array2<f64>> }
///
/// #[pymethods]
/// impl Field {
///     fn __reduce_ex__<'py>(&self, py: Python<'py>, protocol: u8) -> PyResult<Bound<'py, PyTuple>> {
///         ndpickle_py::reduce_array(py, &self.data, protocol)
///     }
/// }
/// ```
pub fn reduce_array<'py, T: Element, D: Dimension + 'static>(
    py: Python<'py>,
    array: &Arc<Array<T, D>>,
    protocol: u8,
) -> PyResult<Bound<'py, PyTuple>> {
    let opts = ReduceOptions::new(protocol)?;
    let dtype = dtype_to_numpy(py, &T::dtype())?;
    let size = std::mem::size_of::<T>();
    let Some(memory) = array.as_slice_memory_order() else {
        // Non-contiguous memory (a sliced owned array): one copy into C order.
        let nd = NdArray::from_array_ref(array.as_ref());
        return reduce_ndarray(py, &nd, protocol);
    };
    let region: &[u8] = bytemuck_bytes(memory);
    let zero = (array.as_ptr() as usize) - (memory.as_ptr() as usize);
    let strides: Vec<isize> = array.strides().iter().map(|&s| s * size as isize).collect();
    let owner = array.clone();
    let src = Source {
        region,
        zero,
        shape: array.shape(),
        strides: &strides,
        itemsize: size,
        readonly: true,
        export: |part: &[u8]| RawBuffer::from_shared(part, owner.clone()),
    };
    portable(py, dtype.into_any(), src, &opts)
}

/// `__reduce_ex__` for an [`NdArray`] (any dtype ndpickle models, any strides): at protocol 5
/// a read-only `pickle.PickleBuffer` over its [`Bytes`], no copy; below 5 in-band bytes.
pub fn reduce_ndarray<'py>(
    py: Python<'py>,
    array: &NdArray,
    protocol: u8,
) -> PyResult<Bound<'py, PyTuple>> {
    let opts = ReduceOptions::new(protocol)?;
    let dtype = dtype_to_numpy(py, array.dtype())?;
    let itemsize = array.dtype().itemsize();
    let extent =
        Extent::of(array.shape(), array.strides(), itemsize).map_err(|e| encode_err(e.into()))?;
    let data: &Bytes = array.data();
    let (start, region, zero) = match extent {
        Some(ext) => {
            let start = (array.offset() as isize + ext.low) as usize;
            (start, &data[start..start + ext.len()], (-ext.low) as usize)
        }
        None => (0, &[][..], 0),
    };
    let src = Source {
        region,
        zero,
        shape: array.shape(),
        strides: array.strides(),
        itemsize,
        readonly: true,
        export: |part: &[u8]| {
            if part.is_empty() {
                return Ok(RawBuffer::from_bytes(Bytes::new()));
            }
            let from = start + (part.as_ptr() as usize - region.as_ptr() as usize);
            Ok(RawBuffer::from_bytes(data.slice(from..from + part.len())))
        },
    };
    portable(py, dtype.into_any(), src, &opts)
}

fn bytemuck_bytes<T: Element>(s: &[T]) -> &[u8] {
    // `Element` implies `bytemuck::NoUninit`: every byte of the slice is initialised.
    bytemuck::cast_slice(s)
}
