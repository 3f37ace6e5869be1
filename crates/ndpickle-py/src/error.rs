//! The one mapping from Rust errors to Python exceptions.
//!
//! - [`EncodeError`] → `ndpickle.EncodeError` (a `pickle.PicklingError`), except invalid
//!   options and protocols (`ValueError`) and I/O failures (`OSError`).
//! - [`DecodeError`] → `ndpickle.DecodeError` (a `pickle.UnpicklingError`) carrying
//!   `offset` (byte offset of the opcode, or `None`), `opcode` (its CPython name, or `None`)
//!   and `kind` ([`DecodeErrorKind::name`], e.g. `"ForbiddenGlobal"`), except invalid
//!   options (`ValueError`) and I/O failures (`OSError`).
//! - [`OptionsError`] → `ValueError`.
//! - Arguments of the bindings' own functions: a wrong type or keyword → `TypeError`, a
//!   value out of range → `ValueError`; a refused buffer export → `BufferError`.
//! - `std::io::Error` → the `OSError` subclass its OS error code selects
//!   (`FileNotFoundError`, `PermissionError`...), with `errno`, `strerror` and, when a
//!   [`PathIoError`] names it, `filename`.
//!
//! Every `match` is exhaustive (no `_` arm): a new variant in the core is a compile error
//! here until it is mapped.

use std::io;

use ndpickle::{DecodeError, DecodeErrorKind, EncodeError, OptionsError, PathIoError, opcodes};
use pyo3::exceptions::{PyBufferError, PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};

static ENCODE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DECODE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `ndpickle.EncodeError`, created on first use as a subclass of `pickle.PicklingError`.
pub fn encode_error_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    ENCODE_ERROR
        .get_or_try_init(py, || {
            let base = py.import("pickle")?.getattr("PicklingError")?;
            PyErr::new_type(
                py,
                c"ndpickle.EncodeError",
                Some(c"An object could not be pickled by ndpickle."),
                Some(base.cast::<PyType>()?),
                None,
            )
        })
        .map(|t| t.bind(py))
}

/// `ndpickle.DecodeError`, created on first use as a subclass of `pickle.UnpicklingError`.
pub fn decode_error_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    DECODE_ERROR
        .get_or_try_init(py, || {
            let base = py.import("pickle")?.getattr("UnpicklingError")?;
            // Class-level defaults of the attributes every raised instance sets.
            let dict = PyDict::new(py);
            dict.set_item("offset", py.None())?;
            dict.set_item("opcode", py.None())?;
            dict.set_item("kind", "Other")?;
            PyErr::new_type(
                py,
                c"ndpickle.DecodeError",
                Some(c"A pickle was refused or could not be read by ndpickle's safe reader."),
                Some(base.cast::<PyType>()?),
                // `new_type` releases the reference it is given before the call: keep `dict`
                // alive here and hand it a second one.
                Some(dict.clone().into_any().unbind()),
            )
        })
        .map(|t| t.bind(py))
}

/// The Python exception for an [`EncodeError`].
pub fn encode_err(e: EncodeError) -> PyErr {
    Python::attach(|py| {
        let msg = e.to_string();
        match e {
            EncodeError::UnsupportedProtocol(_) | EncodeError::InvalidOption(_) => {
                PyValueError::new_err(msg)
            }
            EncodeError::Io(io) => io_err(&io),
            EncodeError::OutOfBandNeedsProtocol5(_)
            | EncodeError::NeedsProtocol { .. }
            | EncodeError::Layout(_)
            | EncodeError::UnsupportedDtype(_)
            | EncodeError::Wire(_)
            | EncodeError::Codec(_)
            | EncodeError::Serde(_) => raise(py, encode_error_type(py), msg),
        }
    })
}

/// The Python exception for a [`DecodeError`].
pub fn decode_err(e: DecodeError) -> PyErr {
    Python::attach(|py| {
        let msg = e.to_string();
        match &e.kind {
            DecodeErrorKind::Io(io) => return io_err(io),
            DecodeErrorKind::InvalidOption(_) => return PyValueError::new_err(msg),
            DecodeErrorKind::Wire(_)
            | DecodeErrorKind::UnexpectedEof
            | DecodeErrorKind::UnknownOpcode(_)
            | DecodeErrorKind::UnsupportedProtocol(_)
            | DecodeErrorKind::Refused(_)
            | DecodeErrorKind::StackUnderflow
            | DecodeErrorKind::MissingMark
            | DecodeErrorKind::MissingMemo(_)
            | DecodeErrorKind::ForbiddenGlobal { .. }
            | DecodeErrorKind::Type { .. }
            | DecodeErrorKind::Invalid { .. }
            | DecodeErrorKind::BadArray(_)
            | DecodeErrorKind::UnsupportedDtype(_)
            | DecodeErrorKind::MissingBuffer
            | DecodeErrorKind::Limit { .. }
            | DecodeErrorKind::Codec(_)
            | DecodeErrorKind::View(_)
            | DecodeErrorKind::TrailingData(_)
            | DecodeErrorKind::Serde { .. } => {}
        }
        let ty = match decode_error_type(py) {
            Ok(t) => t,
            Err(err) => return err,
        };
        let build = || -> PyResult<PyErr> {
            let exc = ty.call1((msg,))?;
            exc.setattr("offset", e.offset)?;
            exc.setattr("opcode", e.opcode.map(opcodes::name))?;
            exc.setattr("kind", e.kind.name())?;
            Ok(PyErr::from_value(exc))
        };
        build().unwrap_or_else(|err| err)
    })
}

/// The Python exception for an [`OptionsError`]: `ValueError`.
pub(crate) fn options_err(e: OptionsError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// A `ValueError` for an argument of the bindings' own functions that is out of range.
pub(crate) fn invalid_arg(msg: impl Into<String>) -> PyErr {
    options_err(OptionsError(msg.into()))
}

/// A `TypeError` for an argument of the bindings' own functions of the wrong type or name,
/// as Python raises for its own functions.
pub(crate) fn arg_type_err(msg: impl Into<String>) -> PyErr {
    PyTypeError::new_err(msg.into())
}

/// A `BufferError`: the buffer protocol refused (what `memoryview` raises for the same).
pub(crate) fn buffer_err(msg: impl Into<String>) -> PyErr {
    PyBufferError::new_err(msg.into())
}

/// The Python exception for an I/O error: `OSError(errno, strerror[, filename])`, which
/// Python turns into the subclass for `errno` (`FileNotFoundError`...); an error without
/// an OS code becomes the subclass for its kind (pyo3's mapping), its message kept.
pub(crate) fn io_err(e: &io::Error) -> PyErr {
    let (source, path) = match PathIoError::of(e) {
        Some(p) => (&p.source, Some(p.path.clone())),
        None => (e, None),
    };
    match source.raw_os_error() {
        Some(code) => {
            let strerror = Python::attach(|py| {
                py.import("os")
                    .and_then(|os| os.call_method1("strerror", (code,)))
                    .and_then(|s| s.extract::<String>())
            })
            .unwrap_or_else(|_| source.to_string());
            match path {
                Some(path) => PyOSError::new_err((code, strerror, path.into_os_string())),
                None => PyOSError::new_err((code, strerror)),
            }
        }
        None => PyErr::from(io::Error::new(e.kind(), e.to_string())),
    }
}

/// Whether `e` is an `ndpickle.DecodeError`.
pub(crate) fn is_decode_error(py: Python<'_>, e: &PyErr) -> bool {
    decode_error_type(py).is_ok_and(|t| e.is_instance(py, t))
}

/// A new decode error not tied to a stream position (e.g. a reduce form the conversion to
/// Python objects refuses).
pub(crate) fn decode_msg(kind: DecodeErrorKind) -> PyErr {
    decode_err(DecodeError::new(kind))
}

fn raise(py: Python<'_>, ty: PyResult<&Bound<'_, PyType>>, msg: String) -> PyErr {
    match ty {
        Ok(t) => PyErr::from_type(t.clone(), msg),
        Err(e) => {
            let _ = py;
            e
        }
    }
}
