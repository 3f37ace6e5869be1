//! Python bindings of ndpickle (the `ndpickle._native` extension module), and helpers with
//! which other PyO3 extensions pickle Rust-owned arrays to Python with zero copies
//! ([`reduce_array`], [`reduce_ndarray`], [`RawBuffer`]).
//!
//! The Python package `ndpickle` (in `python/ndpickle/`) wraps this module.

mod buffer;
mod codec;
mod convert;
mod describe;
mod direct;
mod error;
mod files;
mod frames;
mod inspect;
mod loads;
mod mapped;
mod pyarrow;
mod reduce;
mod stdlib;

pub use buffer::{Owner, RawBuffer};
pub use convert::dtype_to_numpy;
pub use error::{decode_err, decode_error_type, encode_err, encode_error_type};
pub use reduce::{ArrayReducer, ReduceOptions, reduce_array, reduce_ndarray, reduce_numpy};

use ndpickle::codec::names;
use pyo3::prelude::*;

/// The `ndpickle._native` module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("EncodeError", encode_error_type(py)?)?;
    m.add("DecodeError", decode_error_type(py)?)?;
    m.add_class::<ArrayReducer>()?;
    m.add_class::<RawBuffer>()?;
    m.add_function(wrap_pyfunction!(loads::safe_loads, m)?)?;
    m.add_function(wrap_pyfunction!(loads::_direct_loads, m)?)?;
    m.add_function(wrap_pyfunction!(frames::serialize, m)?)?;
    m.add_function(wrap_pyfunction!(frames::serialize_array, m)?)?;
    m.add_function(wrap_pyfunction!(frames::deserialize, m)?)?;
    m.add_function(wrap_pyfunction!(frames::safe_deserialize, m)?)?;
    m.add_function(wrap_pyfunction!(frames::dumps, m)?)?;
    m.add_function(wrap_pyfunction!(frames::dump, m)?)?;
    m.add_function(wrap_pyfunction!(frames::check_compression, m)?)?;
    m.add_function(wrap_pyfunction!(frames::itemsize, m)?)?;
    m.add_function(wrap_pyfunction!(codec::decompress_frame, m)?)?;
    m.add_function(wrap_pyfunction!(codec::decompress_target, m)?)?;
    m.add_function(wrap_pyfunction!(codec::decompress_chunk, m)?)?;
    m.add_class::<codec::ChunkTarget>()?;
    m.add_function(wrap_pyfunction!(codec::compress_buffers, m)?)?;
    m.add_function(wrap_pyfunction!(files::inline_buffers, m)?)?;
    m.add_function(wrap_pyfunction!(files::write_atomically, m)?)?;
    m.add_function(wrap_pyfunction!(mapped::load_mapped, m)?)?;
    m.add_function(wrap_pyfunction!(inspect::inspect_files, m)?)?;
    // The callables compressed in-band pickles name, under the names the writer writes
    // (`ndpickle/__init__.py` re-exports them as `ndpickle._decompress`, ...).
    let globals = pyo3::types::PyDict::new(py);
    globals.set_item(names::DECOMPRESS, m.getattr("decompress_frame")?)?;
    globals.set_item(names::DECOMPRESS_TARGET, m.getattr("decompress_target")?)?;
    globals.set_item(names::DECOMPRESS_INTO, m.getattr("decompress_chunk")?)?;
    m.add("PICKLE_GLOBALS", globals)?;
    Ok(())
}
