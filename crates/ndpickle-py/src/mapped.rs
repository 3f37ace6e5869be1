//! `load_mapped`: a dataset file memory-mapped and read by the core reader with zero copies,
//! its arrays returned as numpy views of the mapping. This file and `buffer.rs` hold all of
//! this crate's unsafe code; here it is the mapping of files (memmap2), also for
//! `inspect.rs`.
//!
//! - mode `"r"`: a read-only shared mapping; arrays are read-only.
//! - mode `"c"`: a private copy-on-write mapping; arrays are writable (unless the pickle
//!   marks them read-only) and writes stay in this process, never reaching the file.
//!
//! The mapping lives as long as any array viewing it (it is their buffer's owner). As with
//! `numpy.memmap`, the file must not be truncated while mapped: touching pages past the new
//! end raises SIGBUS.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use memmap2::{Mmap, MmapMut, MmapOptions};
use ndpickle::{PathIoError, ReadOptions};
use pyo3::prelude::*;

use crate::buffer::{Owner, RawBuffer};
use crate::convert::{Converter, Source};
use crate::error::{decode_err, invalid_arg, io_err, options_err};

/// A private copy-on-write mapping and the address of its first byte (taken once, through
/// `as_mut_ptr`, so that Python's writes through that address are writes through a pointer
/// with write provenance).
struct CopyOnWrite {
    _map: MmapMut,
    addr: usize,
    len: usize,
}

/// A [`CopyOnWrite`] mapping as the core reader's input.
struct CopyOnWriteBytes(Arc<CopyOnWrite>);

impl AsRef<[u8]> for CopyOnWriteBytes {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `addr..addr + len` is the mapping, which `self.0` keeps alive. The reader
        // takes this slice while `load_mapped` runs, before any Python code can hold a
        // writable view of the mapping; afterwards Rust keeps only this owner's address, no
        // live reference, while Python writes through the exported buffer.
        unsafe { std::slice::from_raw_parts(self.0.addr as *const u8, self.0.len) }
    }
}

/// The file at `path` as bytes of a read-only shared mapping (an empty file, which cannot be
/// mapped, as empty bytes), alive as long as the bytes are. For readers of the bytes only:
/// another process writing the file changes what they read (as with `numpy.memmap`).
pub(crate) fn map_readonly(path: &std::path::Path) -> std::io::Result<Bytes> {
    let file = File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(Bytes::new());
    }
    // SAFETY: a read-only shared mapping of a file we opened, never written through; see the
    // doc comment for outside writers (the bytes are untrusted input to the reader anyway).
    let map = unsafe { Mmap::map(&file) }?;
    Ok(Bytes::from_owner(map))
}

/// Memory-maps the file at `path` (`mode` `"r"` or `"c"`) and reads the pickle in it with
/// the safe reader: in-band array payloads become numpy views of the mapping, no bytes are
/// copied. Objects outside the reader's allow-list raise `DecodeError` (kind
/// `"ForbiddenGlobal"`; `ndpickle.load` then falls back to `pickle.load`).
#[pyfunction]
#[pyo3(signature = (path, mode="r"))]
pub(crate) fn load_mapped<'py>(
    py: Python<'py>,
    path: PathBuf,
    mode: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let named = |e: std::io::Error| io_err(&PathIoError::wrap(e, &path));
    let file = File::open(&path).map_err(named)?;
    let (data, exported) = match mode {
        "r" => {
            // SAFETY: a read-only shared mapping of a file we opened. Its bytes can change
            // if another process writes the file, which this API documents as the caller's
            // responsibility (as numpy.memmap does); they are never written through here.
            let map = unsafe { Mmap::map(&file) }.map_err(named)?;
            let data = Bytes::from_owner(map);
            (data.clone(), RawBuffer::from_bytes(data))
        }
        "c" => {
            // SAFETY: a private (MAP_PRIVATE) mapping: our writes go to private copies of the
            // pages, never to the file; see the "r" case for outside writers.
            let mut map = unsafe { MmapOptions::new().map_copy(&file) }.map_err(named)?;
            let (addr, len) = (map.as_mut_ptr() as usize, map.len());
            let shared = Arc::new(CopyOnWrite {
                _map: map,
                addr,
                len,
            });
            let data = Bytes::from_owner(CopyOnWriteBytes(Arc::clone(&shared)));
            // SAFETY: `addr..addr + len` is the writable private mapping that `shared`, the
            // buffer's owner, keeps alive; Rust holds no reference into it once the reader
            // is done (see `CopyOnWriteBytes`).
            let exported =
                unsafe { RawBuffer::new(addr as *const u8, len, false, Owner::Shared(shared)) };
            (data, exported)
        }
        other => {
            return Err(invalid_arg(format!(
                "mmap_mode must be \"r\" or \"c\", not {other:?}"
            )));
        }
    };
    drop(file);
    // A local file the caller chose to load: no cap on its size beyond the mapping itself.
    let opts = ReadOptions::builder()
        .max_alloc_bytes(u64::MAX)
        .build()
        .map_err(options_err)?;
    let input = data.clone();
    let value = py
        .detach(move || {
            ndpickle::read::graph_from_bytes_payload_accounted(input, Vec::<Bytes>::new(), &opts)
        })
        .map_err(decode_err)?
        .0;
    let sources = [Source {
        start: data.as_ptr() as usize,
        len: data.len(),
        obj: Bound::new(py, exported)?.into_any().unbind(),
        // Marked writable so that the conversion never copies: in mode "r" the buffer is
        // exported read-only, so numpy makes the arrays over it read-only.
        writable: true,
    }];
    drop(data);
    Converter::new(&sources, u64::MAX).convert_graph(py, value)
}
