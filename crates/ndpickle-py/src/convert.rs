//! Rust values to Python objects: [`DType`] → `numpy.dtype`, and the safe reader's [`Value`]
//! tree → builtins, numpy arrays (views of the caller's buffers where possible) and pyarrow
//! objects rebuilt through an allow-list of pyarrow's own constructors. Nothing outside
//! `numpy`, `ml_dtypes` (for its dtypes) and that allow-list is imported or called.

use bytes::Bytes;
use ndpickle::dtype::ML_DTYPES;
use ndpickle::internals::Extent;
use ndpickle::read::Graph;
use ndpickle::{DType, DecodeErrorKind, NdArray, Value};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyComplex, PyDict, PyFrozenSet, PyList, PySet, PyTuple};

use crate::buffer::{RawBuffer, new_array_copy, new_array_over_copy};
use crate::error::decode_msg;
use numpy::PyArrayDescr;

static NUMPY_DTYPE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static NUMPY_NDARRAY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The numpy dtype object for `dtype`.
pub fn dtype_to_numpy<'py>(py: Python<'py>, dtype: &DType) -> PyResult<Bound<'py, PyAny>> {
    let make = NUMPY_DTYPE.import(py, "numpy", "dtype")?;
    match dtype {
        DType::Object => Err(decode_msg(DecodeErrorKind::UnsupportedDtype(
            "object dtype holds Python objects".into(),
        ))),
        DType::MlDtype { name, .. } => {
            if !ML_DTYPES.iter().any(|(n, _)| n == name) {
                return Err(decode_msg(DecodeErrorKind::UnsupportedDtype(format!(
                    "unknown ml_dtypes type {name}"
                ))));
            }
            let ty = py.import("ml_dtypes")?.getattr(name.as_ref())?;
            make.call1((ty,))
        }
        DType::SubArray { base, shape } => {
            let base = dtype_to_numpy(py, base)?;
            make.call1(((base, PyTuple::new(py, shape)?),))
        }
        DType::Struct {
            fields,
            itemsize,
            aligned,
        } => {
            let spec = PyDict::new(py);
            let names = PyList::empty(py);
            let formats = PyList::empty(py);
            let offsets = PyList::empty(py);
            let titles = PyList::empty(py);
            for f in fields {
                names.append(&f.name)?;
                formats.append(dtype_to_numpy(py, &f.dtype)?)?;
                offsets.append(f.offset)?;
                titles.append(&f.title)?;
            }
            spec.set_item("names", names)?;
            spec.set_item("formats", formats)?;
            spec.set_item("offsets", offsets)?;
            spec.set_item("itemsize", *itemsize)?;
            if fields.iter().any(|f| f.title.is_some()) {
                spec.set_item("titles", titles)?;
            }
            make.call1((spec, *aligned))
        }
        simple => {
            let descr = simple
                .descr()
                .ok_or_else(|| decode_msg(DecodeErrorKind::UnsupportedDtype(simple.to_string())))?;
            make.call1((descr,))
        }
    }
}

/// A Python buffer the pickle's data may live in (an out-of-band buffer or the pickle
/// itself), so that arrays over it become numpy views of the same object.
pub(crate) struct Source {
    /// Address of its first byte.
    pub start: usize,
    /// Length in bytes.
    pub len: usize,
    /// The object.
    pub obj: Py<PyAny>,
    /// Whether the object's buffer is writable.
    pub writable: bool,
}

/// Arrays below this many bytes that must be copied to be writable are copied into a
/// `bytearray`; larger ones by numpy (which madvises huge pages for 4 MiB and more).
const SMALL_COPY: usize = 1 << 20;

/// Writable arrays over Rust memory of at most this many bytes are copied into numpy's own
/// memory (a memcpy of 4 KiB takes well under the microsecond a view and a `numpy.ndarray`
/// call take); larger ones are views of it.
const TINY_COPY: usize = 4096;

/// Distinct dtypes a converter remembers (pickles of many arrays repeat a few dtypes).
const DTYPE_CACHE: usize = 16;

/// An array's parts, borrowed: what [`Converter::array_parts`] turns into a numpy array.
#[derive(Clone, Copy)]
pub(crate) struct Parts<'a> {
    pub dtype: &'a DType,
    pub shape: &'a [usize],
    pub strides: &'a [isize],
    /// Byte offset of element zero in `data`.
    pub offset: usize,
    pub data: &'a Bytes,
    pub readonly: bool,
}

impl<'a> Parts<'a> {
    fn of(a: &'a NdArray) -> Parts<'a> {
        Parts {
            dtype: a.dtype(),
            shape: a.shape(),
            strides: a.strides(),
            offset: a.offset(),
            data: a.data(),
            readonly: a.is_readonly(),
        }
    }

    /// C- or Fortran-contiguous (as [`NdArray::is_c_contiguous`] and
    /// [`NdArray::is_f_contiguous`] say).
    fn is_contiguous(&self) -> bool {
        ndpickle::array::is_c_or_f_contiguous(self.shape, self.strides, self.dtype.itemsize())
    }
}

/// Converts [`Value`]s to Python objects, viewing the given sources without copying.
pub(crate) struct Converter<'a> {
    sources: &'a [Source],
    /// Bytes the conversion may still allocate on the input's behalf (copies made to give
    /// the pickle the writable arrays it asks for), what the read left of
    /// `max_alloc_bytes`.
    budget: std::cell::Cell<u64>,
    /// numpy dtype objects already made, by [`DType`]: building one is a Python call.
    dtypes: std::cell::RefCell<Vec<(DType, Py<PyAny>)>>,
    /// The graph's shared values ([`Graph::shared`]) and the Python objects made of them: a
    /// value the pickle refers to twice is one Python object, as with `pickle`.
    shared: std::cell::RefCell<Vec<Shared>>,
    /// Items of lists and values of dicts that are an immutable shared value still being
    /// built (a tuple holding a list that holds the tuple), set once it is built.
    patches: std::cell::RefCell<Vec<Patch>>,
    /// How Python 2 `str` values are decoded (`pickle.loads`' `encoding` and `errors`).
    py2: Py2Text,
}

/// `pickle.loads`' decoding of Python 2 `str`: a codec name, or `bytes` to keep them bytes.
pub(crate) struct Py2Text {
    /// The codec, as `pickle.loads(encoding=...)` takes it (`'ASCII'` by default).
    pub encoding: String,
    /// The codec's error handler (`'strict'` by default).
    pub errors: String,
}

impl Default for Py2Text {
    fn default() -> Py2Text {
        Py2Text {
            encoding: "ASCII".into(),
            errors: "strict".into(),
        }
    }
}

/// A shared value of the graph being converted.
enum Shared {
    /// Not converted yet.
    Todo(Value),
    /// An immutable value (tuple, frozenset, array...) being built: it has no object yet.
    Building,
    /// The object: complete, or a mutable container being filled.
    Made(Py<PyAny>),
}

/// Where a shared value still being built goes once it is built.
struct Patch {
    /// The shared value.
    id: u32,
    /// The list or dict that holds it.
    container: Py<PyAny>,
    /// Its index in the list or key in the dict.
    at: Py<PyAny>,
}

/// A converted list item or dict value: an object, or a shared value still being built.
enum Item<'py> {
    Obj(Bound<'py, PyAny>),
    Later(u32),
}

impl<'a> Converter<'a> {
    /// A converter whose arrays may view `sources`, allocating at most `budget` bytes.
    pub(crate) fn new(sources: &'a [Source], budget: u64) -> Converter<'a> {
        Converter {
            sources,
            budget: std::cell::Cell::new(budget),
            dtypes: std::cell::RefCell::new(Vec::new()),
            shared: std::cell::RefCell::new(Vec::new()),
            patches: std::cell::RefCell::new(Vec::new()),
            py2: Py2Text::default(),
        }
    }

    /// This converter, decoding Python 2 `str` as `py2` says.
    pub(crate) fn with_py2_text(mut self, py2: Py2Text) -> Converter<'a> {
        self.py2 = py2;
        self
    }

    /// A Python 2 `str` as `pickle.loads` decodes it with the converter's `encoding` and
    /// `errors` (a codec error becomes a `DecodeError` in [`Converter::convert`]).
    fn py2_str<'py>(&self, py: Python<'py>, b: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        let enc = self.py2.encoding.as_str();
        if enc == "bytes" {
            return Ok(PyBytes::new(py, b).into_any());
        }
        let lower = enc.to_ascii_lowercase().replace(['-', '_'], "");
        let strict = self.py2.errors == "strict";
        if (lower == "ascii" && strict && b.is_ascii())
            || matches!(lower.as_str(), "latin1" | "iso88591" | "l1")
        {
            let text = ndpickle::read::latin1_text(b);
            return Ok(text.into_pyobject(py)?.into_any());
        }
        PyBytes::new(py, b).call_method1("decode", (enc, self.py2.errors.as_str()))
    }

    /// The Python object for `graph`: each shared value becomes one object, however many
    /// times the graph refers to it, and recursive structures are rebuilt recursive.
    pub(crate) fn convert_graph<'py>(
        &self,
        py: Python<'py>,
        graph: Graph,
    ) -> PyResult<Bound<'py, PyAny>> {
        *self.shared.borrow_mut() = graph.shared.into_iter().map(Shared::Todo).collect();
        let out = self.convert(py, graph.root);
        self.shared.borrow_mut().clear();
        self.patches.borrow_mut().clear();
        out
    }

    fn set_shared(&self, id: u32, state: Shared) -> Shared {
        let mut shared = self.shared.borrow_mut();
        std::mem::replace(&mut shared[id as usize], state)
    }

    /// The object for shared value `id`, made on its first use; [`Item::Later`] if it is an
    /// immutable value still being built (a back-reference from inside it).
    fn reference<'py>(&self, py: Python<'py>, id: u32) -> PyResult<Item<'py>> {
        if self.shared.borrow().len() <= id as usize {
            return Err(decode_msg(DecodeErrorKind::Invalid {
                what: "value graph",
                detail: format!("reference to missing shared value {id}"),
            }));
        }
        let value = match self.set_shared(id, Shared::Building) {
            Shared::Todo(v) => v,
            Shared::Building => {
                self.set_shared(id, Shared::Building);
                return Ok(Item::Later(id));
            }
            Shared::Made(obj) => {
                let out = obj.bind(py).clone();
                self.set_shared(id, Shared::Made(obj));
                return Ok(Item::Obj(out));
            }
        };
        // Mutable containers exist before their items, so that items can refer back to them.
        let obj = match value {
            Value::List(items) => {
                let list = PyList::empty(py);
                self.set_shared(id, Shared::Made(list.clone().into_any().unbind()));
                self.fill_list(py, &list, items)?;
                list.into_any()
            }
            Value::Dict(items) => {
                let dict = PyDict::new(py);
                self.set_shared(id, Shared::Made(dict.clone().into_any().unbind()));
                self.fill_dict(py, &dict, items)?;
                dict.into_any()
            }
            Value::Set(items) => {
                let set = PySet::empty(py)?;
                self.set_shared(id, Shared::Made(set.clone().into_any().unbind()));
                for v in items {
                    set.add(self.to_py(py, v)?)?;
                }
                set.into_any()
            }
            other => {
                let obj = self.to_py(py, other)?;
                self.set_shared(id, Shared::Made(obj.clone().unbind()));
                self.patch(py, id, &obj)?;
                obj
            }
        };
        Ok(Item::Obj(obj))
    }

    /// Sets the list items and dict values that waited for shared value `id`, now `obj`.
    fn patch(&self, py: Python<'_>, id: u32, obj: &Bound<'_, PyAny>) -> PyResult<()> {
        let ready: Vec<Patch> = {
            let mut patches = self.patches.borrow_mut();
            if patches.is_empty() {
                return Ok(());
            }
            let (ready, rest) = std::mem::take(&mut *patches)
                .into_iter()
                .partition(|p| p.id == id);
            *patches = rest;
            ready
        };
        for p in ready {
            p.container.bind(py).set_item(p.at.bind(py), obj)?;
        }
        Ok(())
    }

    /// A list item or dict value.
    fn item<'py>(&self, py: Python<'py>, value: Value) -> PyResult<Item<'py>> {
        match value {
            Value::Ref(id) => self.reference(py, id),
            v => self.to_py(py, v).map(Item::Obj),
        }
    }

    fn fill_list<'py>(
        &self,
        py: Python<'py>,
        list: &Bound<'py, PyList>,
        items: Vec<Value>,
    ) -> PyResult<()> {
        for (i, v) in items.into_iter().enumerate() {
            match self.item(py, v)? {
                Item::Obj(o) => list.append(o)?,
                Item::Later(id) => {
                    list.append(py.None())?;
                    self.patches.borrow_mut().push(Patch {
                        id,
                        container: list.clone().into_any().unbind(),
                        at: i.into_pyobject(py)?.into_any().unbind(),
                    });
                }
            }
        }
        Ok(())
    }

    fn fill_dict<'py>(
        &self,
        py: Python<'py>,
        dict: &Bound<'py, PyDict>,
        items: Vec<(Value, Value)>,
    ) -> PyResult<()> {
        for (k, v) in items {
            let k = self.to_py(py, k)?;
            match self.item(py, v)? {
                Item::Obj(o) => dict.set_item(k, o)?,
                Item::Later(id) => {
                    dict.set_item(&k, py.None())?;
                    self.patches.borrow_mut().push(Patch {
                        id,
                        container: dict.clone().into_any().unbind(),
                        at: k.unbind(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The numpy dtype for `dtype`, made once per converter.
    fn dtype<'py>(&self, py: Python<'py>, dtype: &DType) -> PyResult<Bound<'py, PyAny>> {
        if let Some((_, obj)) = self.dtypes.borrow().iter().find(|(d, _)| d == dtype) {
            return Ok(obj.bind(py).clone());
        }
        let obj = dtype_to_numpy(py, dtype)?;
        let mut cache = self.dtypes.borrow_mut();
        if cache.len() < DTYPE_CACHE {
            cache.push((dtype.clone(), obj.clone().unbind()));
        }
        Ok(obj)
    }

    /// Charges `n` bytes the conversion is about to allocate against its budget.
    fn charge(&self, n: usize) -> PyResult<()> {
        let left = self.budget.get();
        match left.checked_sub(n as u64) {
            Some(rest) => {
                self.budget.set(rest);
                Ok(())
            }
            None => Err(decode_msg(DecodeErrorKind::Limit {
                limit: "total allocation in bytes (copies into Python objects)",
                max: left,
            })),
        }
    }

    /// The Python object for `value`; anything Python raised while building it (an
    /// unhashable dict key, numpy refusing an array) becomes a `DecodeError`.
    pub(crate) fn convert<'py>(
        &self,
        py: Python<'py>,
        value: Value,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.to_py(py, value)
            .map_err(|e| as_decode_error(py, "building the loaded objects failed", e))
    }

    fn find(&self, data: &Bytes) -> Option<&Source> {
        let start = data.as_ptr() as usize;
        let end = start + data.len();
        self.sources
            .iter()
            .find(|s| !data.is_empty() && start >= s.start && end <= s.start + s.len)
    }

    /// The Python object for `value`, which is consumed so that arrays whose bytes nothing
    /// else holds (decompressed data) can hand their memory to numpy as it is.
    pub(crate) fn to_py<'py>(&self, py: Python<'py>, value: Value) -> PyResult<Bound<'py, PyAny>> {
        Ok(match value {
            Value::None => py.None().into_bound(py),
            Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
            Value::Int(i) => i.into_pyobject(py)?.into_any(),
            Value::BigInt(b) => b.into_pyobject(py)?.into_any(),
            Value::Float(f) => f.into_pyobject(py)?.into_any(),
            Value::Complex(c) => PyComplex::from_doubles(py, c.re, c.im).into_any(),
            // Strings and byte strings are copied into Python objects: charged, since a
            // pickle can refer to one memoised value many times.
            Value::Str(s) => {
                self.charge(s.len())?;
                s.into_pyobject(py)?.into_any()
            }
            Value::Bytes(b) => {
                self.charge(b.len())?;
                PyBytes::new(py, &b).into_any()
            }
            Value::Py2Str(b) => {
                self.charge(b.len().saturating_mul(2))?;
                self.py2_str(py, &b)?
            }
            // Bytes the reader checked: UTF-8 with surrogates encoded as CPython writes them.
            Value::SurrogateStr(b) => {
                self.charge(b.len())?;
                PyBytes::new(py, &b).call_method1("decode", ("utf-8", "surrogatepass"))?
            }
            Value::ByteArray(b) => {
                self.charge(b.len())?;
                PyByteArray::new(py, &b).into_any()
            }
            Value::Buffer { data, readonly } => self.buffer(py, &data, readonly)?,
            Value::List(items) => {
                let list = PyList::empty(py);
                self.fill_list(py, &list, items)?;
                list.into_any()
            }
            Value::Tuple(items) => {
                let items = items
                    .into_iter()
                    .map(|v| self.to_py(py, v))
                    .collect::<PyResult<Vec<_>>>()?;
                PyTuple::new(py, items)?.into_any()
            }
            Value::Dict(items) => {
                let dict = PyDict::new(py);
                self.fill_dict(py, &dict, items)?;
                dict.into_any()
            }
            Value::Set(items) => {
                let set = PySet::empty(py)?;
                for v in items {
                    set.add(self.to_py(py, v)?)?;
                }
                set.into_any()
            }
            Value::FrozenSet(items) => {
                let items = items
                    .into_iter()
                    .map(|v| self.to_py(py, v))
                    .collect::<PyResult<Vec<_>>>()?;
                PyFrozenSet::new(py, items)?.into_any()
            }
            Value::Array(a) => self.array(py, *a)?,
            Value::Scalar(a) => self.array(py, *a)?.get_item(())?,
            Value::DType(d) => dtype_to_numpy(py, &d)?,
            // A bare callable is no data: valid numpy and pyarrow pickles only call them.
            Value::Global(g) => {
                if let Some(obj) = crate::stdlib::nameable(py, &g)? {
                    return Ok(obj);
                }
                return Err(decode_msg(DecodeErrorKind::Refused(format!(
                    "{g} is a callable, not a value: the pickle names it without calling it"
                ))));
            }
            Value::Object(o) if crate::stdlib::is_stdlib(&o) => {
                crate::stdlib::object(self, py, *o)?
            }
            Value::Object(o) => crate::pyarrow::object(self, py, *o)?,
            Value::Ref(id) => match self.reference(py, id)? {
                Item::Obj(o) => o,
                // Only a list or dict can hold a value that is still being built.
                Item::Later(_) => {
                    return Err(decode_msg(DecodeErrorKind::Refused(
                        "recursive structure through an immutable value (a tuple or \
                         frozenset that contains itself, or a set or dict key that does)"
                            .into(),
                    )));
                }
            },
        })
    }

    /// A numpy array over the array's bytes: a view of the caller's buffer when the bytes
    /// live in one; else the Rust memory itself, writable when nothing else holds it (freshly
    /// decompressed data), read-only otherwise. Copied only when the pickle asks for a
    /// writable array over memory that is not writable ([`Converter::writable_copy`]).
    pub(crate) fn array<'py>(&self, py: Python<'py>, a: NdArray) -> PyResult<Bound<'py, PyAny>> {
        let unique_memory =
            !a.is_readonly() && a.data().len() > TINY_COPY && self.find(a.data()).is_none();
        if !unique_memory {
            return self.array_parts(py, Parts::of(&a));
        }
        let offset = a.offset();
        let (dtype, shape, strides) = (a.dtype().clone(), a.shape().to_vec(), a.strides().to_vec());
        match a.into_data().try_into_mut() {
            Ok(unique) => {
                let raw = Bound::new(py, RawBuffer::from_unique(unique))?.into_any();
                self.ndarray(py, &dtype, &shape, &strides, raw, offset)
            }
            // Shared Rust memory (an array the pickle refers to twice): a copy.
            Err(shared) => self.writable_copy(
                py,
                Parts {
                    dtype: &dtype,
                    shape: &shape,
                    strides: &strides,
                    offset,
                    data: &shared,
                    readonly: false,
                },
            ),
        }
    }

    /// [`Converter::array`] on borrowed parts (already checked, as [`NdArray::new`] does):
    /// a view of the caller's buffer or of the Rust memory, or a copy when the array must be
    /// writable and its memory is not (or is a few kilobytes of Rust memory).
    pub(crate) fn array_parts<'py>(
        &self,
        py: Python<'py>,
        a: Parts<'_>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let readonly = a.readonly;
        let (buffer, offset): (Bound<'py, PyAny>, usize) = match self.find(a.data) {
            Some(src) if !readonly && !src.writable => return self.writable_copy(py, a),
            Some(src) => {
                let obj = src.obj.bind(py).clone();
                let obj = if readonly && src.writable {
                    readonly_view(py, &obj)?
                } else {
                    obj
                };
                (obj, a.data.as_ptr() as usize - src.start + a.offset)
            }
            None if readonly => {
                let raw = RawBuffer::from_bytes(a.data.clone());
                (Bound::new(py, raw)?.into_any(), a.offset)
            }
            // Writable Rust memory that others hold: a copy (a few kilobytes of it cost less
            // to copy than a view object and a `numpy.ndarray` call).
            None => return self.writable_copy(py, a),
        };
        self.ndarray(py, a.dtype, a.shape, a.strides, buffer, offset)
    }

    /// `numpy.ndarray(shape, dtype, buffer, offset, strides)`.
    fn ndarray<'py>(
        &self,
        py: Python<'py>,
        dtype: &DType,
        shape: &[usize],
        strides: &[isize],
        buffer: Bound<'py, PyAny>,
        offset: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ndarray = NUMPY_NDARRAY.import(py, "numpy", "ndarray")?;
        let dtype = self.dtype(py, dtype)?;
        let shape = PyTuple::new(py, shape)?;
        let strides = PyTuple::new(py, strides)?;
        ndarray
            .call1((shape, dtype, buffer, offset, strides))
            .map_err(|e| as_decode_error(py, "numpy refused the array", e))
    }

    /// A writable array with `a`'s values, shape and strides, over a copy of just the bytes
    /// `a` reaches, as `pickle.loads` gives it (numpy views the writable buffer the pickle
    /// names): a broadcast stays a broadcast of its one copied slice, an array of
    /// zero-sized elements copies nothing. The copy is charged to the budget first.
    fn writable_copy<'py>(&self, py: Python<'py>, a: Parts<'_>) -> PyResult<Bound<'py, PyAny>> {
        let itemsize = a.dtype.itemsize();
        let extent = Extent::of(a.shape, a.strides, itemsize)
            .map_err(|e| decode_msg(DecodeErrorKind::Wire(e)))?
            .filter(|e| !e.is_empty());
        let Some(extent) = extent else {
            // Nothing to copy: any writable buffer will do.
            let buffer = PyByteArray::new(py, &[]).into_any();
            return self.ndarray(py, a.dtype, a.shape, a.strides, buffer, 0);
        };
        self.charge(extent.len())?;
        // Element zero sits `-extent.low` bytes into the copy.
        let zero = a.offset as isize;
        let from = (zero + extent.low) as usize;
        let bytes = &a.data[from..from + extent.len()];
        if bytes.len() < SMALL_COPY && extent.low == 0 {
            let dtype = self.dtype(py, a.dtype)?;
            let made = match dtype.cast::<PyArrayDescr>() {
                Ok(descr) => new_array_copy(descr, a.shape, a.strides, bytes)
                    .map_err(|e| as_decode_error(py, "numpy refused the array", e))?,
                Err(_) => None,
            };
            if let Some(array) = made {
                return Ok(array);
            }
        }
        if bytes.len() >= SMALL_COPY && a.is_contiguous() {
            // numpy's own copy of a large contiguous array gets huge pages.
            let view = self.ndarray(
                py,
                a.dtype,
                a.shape,
                a.strides,
                Bound::new(
                    py,
                    RawBuffer::from_bytes(a.data.slice(from..from + extent.len())),
                )?
                .into_any(),
                (-extent.low) as usize,
            )?;
            return view.call_method1("copy", ("K",));
        }
        if bytes.len() < SMALL_COPY {
            // A small strided, reversed or broadcast view: a copy of its span under a view.
            let dtype = self.dtype(py, a.dtype)?;
            if let Ok(descr) = dtype.cast::<PyArrayDescr>() {
                let made =
                    new_array_over_copy(descr, a.shape, a.strides, (-extent.low) as usize, bytes)
                        .map_err(|e| as_decode_error(py, "numpy refused the array", e))?;
                if let Some(array) = made {
                    return Ok(array);
                }
            }
        }
        let buffer = if bytes.len() >= SMALL_COPY {
            // A strided view's span: copied once into memory with the huge-page hint (a
            // `bytearray` of tens of megabytes costs more in page faults than in copying).
            let copy =
                bytes::BytesMut::from(bytes::Bytes::from(ndpickle::internals::copy_to_vec(bytes)));
            Bound::new(py, RawBuffer::from_unique(copy))?.into_any()
        } else {
            PyByteArray::new(py, bytes).into_any()
        };
        self.ndarray(
            py,
            a.dtype,
            a.shape,
            a.strides,
            buffer,
            (-extent.low) as usize,
        )
    }

    /// A bare out-of-band buffer: a memoryview of the caller's buffer or of Rust memory.
    fn buffer<'py>(
        &self,
        py: Python<'py>,
        data: &Bytes,
        readonly: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let view = match self.find(data) {
            Some(src) => {
                let from = data.as_ptr() as usize - src.start;
                let whole = memoryview(py, src.obj.bind(py))?;
                let mv = whole.get_item(pyo3::types::PySlice::new(
                    py,
                    from as isize,
                    (from + data.len()) as isize,
                    1,
                ))?;
                if readonly {
                    mv.call_method0("toreadonly")?
                } else {
                    mv
                }
            }
            None => memoryview(
                py,
                Bound::new(py, RawBuffer::from_bytes(data.clone()))?.as_any(),
            )?,
        };
        Ok(view)
    }
}

fn memoryview<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let mv = pyo3::types::PyMemoryView::from(obj)?.into_any();
    let format: String = mv.getattr("format")?.extract()?;
    if format != "B" {
        return mv.call_method1("cast", ("B",));
    }
    let _ = py;
    Ok(mv)
}

fn readonly_view<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    memoryview(py, obj)?.call_method0("toreadonly")
}

/// `e` as a `DecodeError` with `context`, unless it is one already or is no `Exception`
/// (`KeyboardInterrupt` and `SystemExit` pass unchanged).
pub(crate) fn as_decode_error(py: Python<'_>, context: &str, e: PyErr) -> PyErr {
    if crate::error::is_decode_error(py, &e)
        || !e.is_instance_of::<pyo3::exceptions::PyException>(py)
    {
        return e;
    }
    let name = e
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "error".into());
    decode_msg(DecodeErrorKind::Refused(format!(
        "{context}: {name}: {}",
        e.value(py)
    )))
}
