//! `inspect_files`: the description of [`ndpickle::inspect`] for the Python command line
//! (`ndpickle inspect` / `ndpickle verify` from the Python package), the same code the Rust
//! binary runs.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use ndpickle::inspect::{self, InspectOptions};
use ndpickle::{InBuffer, ReadOptions};
use pyo3::prelude::*;

use crate::error::{decode_err, options_err};

/// `path` memory-mapped read-only; I/O errors keep their kind (the `OSError` subclass) and
/// name the file.
fn map(path: &Path) -> PyResult<Bytes> {
    crate::mapped::map_readonly(path).map_err(|e| {
        PyErr::from(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", path.display()),
        ))
    })
}

/// Reads the pickle at `path` and its raw out-of-band buffer files with the safe reader
/// (memory-mapped; nothing executed) and returns its description: indented text, or JSON
/// when `json`. `opaque` keeps unknown globals as symbolic objects (inspect) instead of
/// refusing them (verify). Raises `DecodeError` for what the reader refuses, `OSError` (with
/// the file name) for files it cannot read.
#[pyfunction]
#[pyo3(signature = (path, buffers, depth, max_items, json, opaque))]
pub(crate) fn inspect_files(
    py: Python<'_>,
    path: PathBuf,
    buffers: Vec<PathBuf>,
    depth: usize,
    max_items: usize,
    json: bool,
    opaque: bool,
) -> PyResult<String> {
    let pickle = map(&path)?;
    let bufs = buffers
        .iter()
        .map(|b| map(b))
        .collect::<PyResult<Vec<_>>>()?;
    let options = ReadOptions::builder()
        .opaque_globals(opaque)
        .build()
        .map_err(options_err)?;
    let inputs = bufs.into_iter().map(InBuffer::raw).collect::<Vec<_>>();
    let (value, sources) = py
        .detach(move || inspect::read(pickle, inputs, &options))
        .map_err(decode_err)?;
    let opts = InspectOptions { depth, max_items };
    Ok(if json {
        inspect::json(&value, &sources, &opts)
    } else {
        inspect::text(&value, &sources, &opts)
    })
}
