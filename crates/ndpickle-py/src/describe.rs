//! numpy objects described for the core's writer: a numpy dtype as a [`DType`]
//! ([`dtype_of`]), and a dtype's reduce in the core's portable form
//! `numpy.dtype(spec, align, True)` ([`portable_dtype`], DESIGN §3.2), built as Python objects
//! from [`ndpickle::internals::portable_spec`], the spelling the core's encoder writes.

use std::borrow::Cow;

use ndpickle::dtype::ML_DTYPES;
use ndpickle::internals::{DTypeSpec, portable_spec};
use ndpickle::{ByteOrder, DType, Field};
use numpy::{PyArrayDescr, PyArrayDescrMethods};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::convert::dtype_to_numpy;
use crate::error::encode_err;

static NUMPY_DTYPE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The [`DType`] of a numpy dtype, or `None` for what the core does not model exactly (object
/// dtypes, metadata, numpy 2's variable-width strings, user types): those keep numpy's own
/// reduce. The result is checked: it must convert back to a dtype equal to `descr`.
pub(crate) fn dtype_of(descr: &Bound<'_, PyArrayDescr>) -> PyResult<Option<DType>> {
    let py = descr.py();
    // numpy's builtin dtypes are singletons (`numpy.dtype('float64')` is the dtype of every
    // native float64 array): found by identity, they skip the attribute walk and the check.
    for (builtin, dtype) in BUILTIN.get_or_try_init(py, || builtins(py))? {
        if builtin.as_ptr() == descr.as_ptr() {
            return Ok(Some(dtype.clone()));
        }
    }
    checked(descr)
}

/// numpy's builtin numeric dtypes and their [`DType`]s, each converted and checked once.
static BUILTIN: PyOnceLock<Vec<(Py<PyAny>, DType)>> = PyOnceLock::new();

/// The names of the dtypes in [`BUILTIN`].
const BUILTIN_NAMES: [&str; 14] = [
    "bool",
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
];

fn builtins(py: Python<'_>) -> PyResult<Vec<(Py<PyAny>, DType)>> {
    let np_dtype = py.import("numpy")?.getattr("dtype")?;
    let mut out = Vec::with_capacity(BUILTIN_NAMES.len());
    for name in BUILTIN_NAMES {
        let descr = np_dtype.call1((name,))?;
        let Ok(d) = descr.cast::<PyArrayDescr>() else {
            continue;
        };
        if let Some(dtype) = checked(d)? {
            out.push((descr.unbind(), dtype));
        }
    }
    Ok(out)
}

/// [`dtype_of`] the long way: the dtype's attributes, converted and checked.
fn checked(descr: &Bound<'_, PyArrayDescr>) -> PyResult<Option<DType>> {
    let Some(dtype) = convert(descr)? else {
        return Ok(None);
    };
    let py = descr.py();
    match dtype_to_numpy(py, &dtype) {
        Ok(back) if back.eq(descr)? => Ok(Some(dtype)),
        _ => Ok(None),
    }
}

fn convert(descr: &Bound<'_, PyArrayDescr>) -> PyResult<Option<DType>> {
    if !descr.getattr("metadata")?.is_none() {
        return Ok(None);
    }
    let names = descr.getattr("names")?;
    if !names.is_none() {
        let fields_map = descr.getattr("fields")?;
        let mut fields = Vec::new();
        for name in names.try_iter()? {
            let name = name?;
            let entry = fields_map.get_item(&name)?;
            let Ok(sub) = entry.get_item(0)?.cast_into::<PyArrayDescr>() else {
                return Ok(None);
            };
            let Some(dtype) = convert(&sub)? else {
                return Ok(None);
            };
            let title = if entry.len()? > 2 {
                match entry.get_item(2)?.cast_into::<PyString>() {
                    Ok(t) => Some(t.to_str()?.to_owned()),
                    Err(_) => return Ok(None),
                }
            } else {
                None
            };
            fields.push(Field {
                name: name.extract()?,
                dtype,
                offset: entry.get_item(1)?.extract()?,
                title,
            });
        }
        return Ok(Some(DType::Struct {
            fields,
            itemsize: descr.itemsize(),
            aligned: descr.getattr("isalignedstruct")?.is_truthy()?,
        }));
    }
    let sub = descr.getattr("subdtype")?;
    if !sub.is_none() {
        let Ok(base) = sub.get_item(0)?.cast_into::<PyArrayDescr>() else {
            return Ok(None);
        };
        let Some(base) = convert(&base)? else {
            return Ok(None);
        };
        return Ok(Some(DType::SubArray {
            base: Box::new(base),
            shape: sub.get_item(1)?.extract()?,
        }));
    }
    let ty = descr.typeobj();
    if ty.module()?.to_str()?.starts_with("ml_dtypes") {
        let name = ty.name()?.to_str()?.to_owned();
        return Ok(ML_DTYPES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(n, itemsize)| DType::MlDtype {
                name: Cow::Borrowed(n),
                itemsize,
            }));
    }
    let spec: String = descr.getattr("str")?.extract()?;
    if descr.kind() == b'U' {
        // `dtype.str` counts bytes ('<U20' is 5 characters); the core counts characters.
        let order = spec.chars().next().and_then(ByteOrder::from_char);
        return Ok(order.map(|order| DType::Unicode {
            chars: descr.itemsize() / 4,
            order,
        }));
    }
    Ok(DType::parse(&spec).filter(|d| !d.has_object()))
}

/// `(numpy.dtype, (spec, align, True))` for `dtype`, the core's portable spelling: nested
/// dtypes in the spec are numpy dtype objects, which the pickler reduces the same way.
pub(crate) fn portable_dtype<'py>(py: Python<'py>, dtype: &DType) -> PyResult<Bound<'py, PyTuple>> {
    let (spec, align) = portable_spec(dtype).map_err(encode_err)?;
    let spec: Bound<'py, PyAny> = match spec {
        DTypeSpec::Str(s) => PyString::new(py, &s).into_any(),
        DTypeSpec::MlDtype(name) => py.import("ml_dtypes")?.getattr(name)?,
        DTypeSpec::SubArray { base, shape } => {
            (dtype_to_numpy(py, base)?, PyTuple::new(py, shape)?)
                .into_pyobject(py)?
                .into_any()
        }
        DTypeSpec::Struct {
            fields,
            itemsize,
            titles,
        } => {
            let d = PyDict::new(py);
            d.set_item("names", PyList::new(py, fields.iter().map(|f| &f.name))?)?;
            let formats = PyList::empty(py);
            for f in fields {
                formats.append(dtype_to_numpy(py, &f.dtype)?)?;
            }
            d.set_item("formats", formats)?;
            d.set_item("offsets", PyList::new(py, fields.iter().map(|f| f.offset))?)?;
            d.set_item("itemsize", itemsize)?;
            if titles {
                d.set_item("titles", PyList::new(py, fields.iter().map(|f| &f.title))?)?;
            }
            d.into_any()
        }
    };
    let make = NUMPY_DTYPE.import(py, "numpy", "dtype")?;
    PyTuple::new(
        py,
        [
            make.clone(),
            (spec, align, true).into_pyobject(py)?.into_any(),
        ],
    )
}
