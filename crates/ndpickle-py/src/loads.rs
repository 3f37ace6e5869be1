//! `safe_loads`: the core's safe reader on Python buffers, its [`ndpickle::Value`] turned into Python
//! objects by [`Converter`]. Input and out-of-band buffers are viewed, not copied; arrays
//! over them become numpy views of the same Python objects.

use bytes::Bytes;
use ndpickle::ReadOptions;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::buffer::bytes_from_python;
use crate::convert::{Converter, Py2Text, Source};
use crate::error::{arg_type_err, decode_err, invalid_arg, options_err};

/// The `**limits` names `safe_loads` accepts, each a [`ReadOptions`] builder setting.
pub(crate) const LIMITS: &[&str] = &[
    "max_depth",
    "max_memo_entries",
    "max_copied_bytes",
    "max_alloc_bytes",
    "max_decompressed_bytes",
];

/// Reads a pickle with the safe reader (no code runs) and returns builtins, numpy arrays
/// and allow-listed pyarrow objects. `buffers` are the out-of-band buffers, in order;
/// `limits` the reader's resource limits by name (see [`LIMITS`]); `strict` refuses bytes
/// after the pickle's `STOP`.
/// `fix_imports`, `encoding` and `errors` are `pickle.loads`' (Python 2 module names and
/// `str` values).
#[pyfunction]
#[pyo3(
    signature = (data, buffers=None, limits=None, strict=false, fix_imports=true, encoding="ASCII".to_string(), errors="strict".to_string()),
    text_signature = "(data, buffers=None, limits=None, strict=False, fix_imports=True, encoding='ASCII', errors='strict')"
)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn safe_loads<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    buffers: Option<&Bound<'py, PyAny>>,
    limits: Option<&Bound<'py, PyDict>>,
    strict: bool,
    fix_imports: bool,
    encoding: String,
    errors: String,
) -> PyResult<Bound<'py, PyAny>> {
    let opts = read_options(limits, strict, fix_imports)?;
    let mut sources = Vec::new();
    let pickle = source(data, &mut sources)?;
    let mut oob = Vec::new();
    if let Some(buffers) = buffers {
        for b in buffers.try_iter()? {
            oob.push(source(&b?, &mut sources)?);
        }
    }
    // The GIL stays held while reading: the input may be a writable buffer (a bytearray)
    // that another thread could otherwise resize or write while Rust reads it.
    //
    // In-band pickles read with the default limits take the direct path first; whatever
    // it does not handle, the full reader reads from the start.
    if oob.is_empty() && limits.is_none_or(|l| l.is_empty()) {
        let conv = Converter::new(&sources, opts.alloc_limit(pickle.len() as u64) / 2);
        if let Ok(obj) = crate::direct::load(py, &pickle, &opts, &conv) {
            return Ok(obj);
        }
    }
    let (graph, budget) = ndpickle::read::graph_from_bytes_payload_accounted(pickle, oob, &opts)
        .map_err(decode_err)?;
    Converter::new(&sources, budget)
        .with_py2_text(Py2Text { encoding, errors })
        .convert_graph(py, graph)
}

/// The direct path alone, for tests: `(True, obj)` when it read `data`, `(False, None)`
/// when it left it to the full reader.
#[pyfunction]
pub(crate) fn _direct_loads<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
) -> PyResult<(bool, Bound<'py, PyAny>)> {
    let opts = read_options(None, false, true)?;
    let mut sources = Vec::new();
    let pickle = source(data, &mut sources)?;
    let conv = Converter::new(&sources, opts.alloc_limit(pickle.len() as u64) / 2);
    Ok(match crate::direct::load(py, &pickle, &opts, &conv) {
        Ok(obj) => (true, obj),
        Err(_) => (false, py.None().into_bound(py)),
    })
}

/// Records `obj` (a Python buffer) as a source of the reader's input and returns a view of
/// its bytes: arrays over those bytes become numpy views of `obj`.
pub(crate) fn source(obj: &Bound<'_, PyAny>, sources: &mut Vec<Source>) -> PyResult<Bytes> {
    let (bytes, writable) = bytes_from_python(obj)?;
    sources.push(Source {
        start: bytes.as_ptr() as usize,
        len: bytes.len(),
        obj: obj.clone().unbind(),
        writable,
    });
    Ok(bytes)
}

/// [`ReadOptions`] from the `limits` dict: unknown names are a `TypeError` (like an
/// unexpected keyword argument), values that are not non-negative ints a `TypeError` or
/// `ValueError`, and combinations the builder refuses a `ValueError`.
pub(crate) fn read_options(
    limits: Option<&Bound<'_, PyDict>>,
    strict: bool,
    fix_imports: bool,
) -> PyResult<ReadOptions> {
    let mut b = ReadOptions::builder()
        .strict(strict)
        .fix_imports(fix_imports);
    let Some(limits) = limits else {
        return b.build().map_err(options_err);
    };
    for (k, v) in limits.iter() {
        let name: String = k.extract()?;
        if !LIMITS.contains(&name.as_str()) {
            return Err(arg_type_err(format!(
                "safe_loads() got an unexpected keyword argument '{name}' (limits are {})",
                LIMITS.join(", ")
            )));
        }
        if v.is_instance_of::<pyo3::types::PyBool>() || !v.is_instance_of::<pyo3::types::PyInt>() {
            return Err(arg_type_err(format!(
                "{name} must be an int, not {}",
                v.get_type().name()?
            )));
        }
        let n: u64 = v.extract().map_err(|_| {
            invalid_arg(format!(
                "{name} must be a non-negative int below 2**64, not {v}"
            ))
        })?;
        let as_usize =
            || usize::try_from(n).map_err(|_| invalid_arg(format!("{name} is too large: {n}")));
        b = match name.as_str() {
            "max_depth" => b.max_depth(as_usize()?),
            "max_memo_entries" => b.max_memo_entries(as_usize()?),
            "max_copied_bytes" => b.max_copied_bytes(n),
            "max_alloc_bytes" => b.max_alloc_bytes(n),
            _ => b.max_decompressed_bytes(n),
        };
    }
    b.build().map_err(options_err)
}
