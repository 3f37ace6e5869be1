//! The one mapping from Rust errors to Python exceptions.
//!
//! - [`EncodeError`] → `ndpickle.EncodeError` (a `pickle.PicklingError`), except invalid
//!   options and protocols (`ValueError`) and I/O failures (`OSError`).
//! - [`DecodeError`] → `ndpickle.DecodeError` (a `pickle.UnpicklingError`) carrying
//!   `offset` (byte offset of the opcode, or `None`), `opcode` (its CPython name, or `None`)
//!   and `kind` (the variant, e.g. `"ForbiddenGlobal"`), except I/O failures (`OSError`).

use ndpickle::{DecodeError, DecodeErrorKind, EncodeError, WireError, opcodes};
use pyo3::exceptions::{PyOSError, PyValueError};
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
            EncodeError::Io(io) => PyOSError::new_err(io.to_string()),
            EncodeError::OutOfBandNeedsProtocol5(_)
            | EncodeError::NeedsProtocol { .. }
            | EncodeError::Layout(_)
            | EncodeError::UnsupportedDtype(_)
            | EncodeError::Wire(_)
            | EncodeError::Codec(_) => raise(py, encode_error_type(py), msg),
            // The core's enum is non-exhaustive: new variants are encode errors too.
            _ => raise(py, encode_error_type(py), msg),
        }
    })
}

/// The Python exception for a [`DecodeError`].
pub fn decode_err(e: DecodeError) -> PyErr {
    Python::attach(|py| {
        let msg = e.to_string();
        let kind = match &e.kind {
            DecodeErrorKind::Io(io) => return PyOSError::new_err(io.to_string()),
            DecodeErrorKind::Wire(WireError::Overflow { .. }) => "Overflow",
            DecodeErrorKind::Wire(WireError::Truncated { .. }) => "Truncated",
            DecodeErrorKind::UnexpectedEof => "UnexpectedEof",
            DecodeErrorKind::UnknownOpcode(_) => "UnknownOpcode",
            DecodeErrorKind::UnsupportedProtocol(_) => "UnsupportedProtocol",
            DecodeErrorKind::Refused(_) => "Refused",
            DecodeErrorKind::StackUnderflow => "StackUnderflow",
            DecodeErrorKind::MissingMark => "MissingMark",
            DecodeErrorKind::MissingMemo(_) => "MissingMemo",
            DecodeErrorKind::ForbiddenGlobal { .. } => "ForbiddenGlobal",
            DecodeErrorKind::Type { .. } => "Type",
            DecodeErrorKind::Invalid { .. } => "Invalid",
            DecodeErrorKind::BadArray(_) => "BadArray",
            DecodeErrorKind::UnsupportedDtype(_) => "UnsupportedDtype",
            DecodeErrorKind::MissingBuffer => "MissingBuffer",
            DecodeErrorKind::Limit { .. } => "Limit",
            DecodeErrorKind::Codec(_) => "Codec",
            DecodeErrorKind::View(_) => "View",
            DecodeErrorKind::TrailingData(_) => "TrailingData",
            // The core's enum is non-exhaustive: new variants are decode errors too.
            _ => "Other",
        };
        let ty = match decode_error_type(py) {
            Ok(t) => t,
            Err(err) => return err,
        };
        let build = || -> PyResult<PyErr> {
            let exc = ty.call1((msg,))?;
            exc.setattr("offset", e.offset)?;
            exc.setattr("opcode", e.opcode.map(opcodes::name))?;
            exc.setattr("kind", kind)?;
            Ok(PyErr::from_value(exc))
        };
        build().unwrap_or_else(|err| err)
    })
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
