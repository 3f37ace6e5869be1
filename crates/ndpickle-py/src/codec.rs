//! Codecs for Python: `_decompress`, the callable that compressed in-band pickles name
//! (`ndpickle._decompress(header, frame, writable)`), so that `pickle.loads` rebuilds them
//! wherever ndpickle is installed.

use ndpickle::codec::{FrameInfo, Scratch, decompress_into};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};

use crate::buffer::bytes_from_python;
use crate::error::decode_err;

/// Decompresses one frame described by `header` (a serialized [`FrameInfo`]) into a new
/// `bytearray` (`writable`) or `bytes`.
#[pyfunction]
#[pyo3(signature = (header, frame, writable=true))]
pub(crate) fn decompress_frame<'py>(
    py: Python<'py>,
    header: &Bound<'py, PyAny>,
    frame: &Bound<'py, PyAny>,
    writable: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let (header, _) = bytes_from_python(header)?;
    let (frame, _) = bytes_from_python(frame)?;
    let (info, used) = FrameInfo::from_bytes(&header).map_err(decode_err)?;
    if used != header.len() {
        return Err(decode_err(ndpickle::DecodeError::new(
            ndpickle::DecodeErrorKind::Codec(format!(
                "frame header has {} trailing bytes",
                header.len() - used
            )),
        )));
    }
    let len = usize::try_from(info.raw_len()).map_err(|_| {
        decode_err(ndpickle::DecodeError::from(ndpickle::WireError::Overflow {
            what: "raw length",
        }))
    })?;
    let mut scratch = Scratch::new();
    let mut failure = None;
    let fill = |out: &mut [u8]| {
        if let Err(e) = decompress_into(&frame, &info, out, &mut scratch) {
            failure = Some(e);
        }
        Ok(())
    };
    let obj = if writable {
        PyByteArray::new_with(py, len, fill)?.into_any()
    } else {
        PyBytes::new_with(py, len, fill)?.into_any()
    };
    match failure {
        Some(e) => Err(decode_err(e)),
        None => Ok(obj),
    }
}
