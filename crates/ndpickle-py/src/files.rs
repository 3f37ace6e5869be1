//! Self-contained pickles and dataset files from a protocol-5 pickle plus its out-of-band
//! buffers: [`inline_buffers`] runs the core's [`ndpickle::inline_buffers`] rewrite with the
//! buffers read in place from Python memory, writing to a path, a Python file object (in
//! bounded chunks) or a new `bytes` object (sized exactly, filled once).

use std::borrow::Cow;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use bytes::Bytes;
use ndpickle::codec::{Compression, FrameInfo};
use ndpickle::write::AtomicFile;
use ndpickle::{EncodeError, PayloadBuffer, WriteOptions};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::buffer::bytes_from_python;
use crate::codec;
use crate::error::{decode_err, encode_err, invalid_arg, io_err};

/// Largest piece handed to a Python file object's `write` at once.
const PY_WRITE_CHUNK: usize = 1 << 20;

/// Buffer of the writer in front of a file or a Python file object: the small opcodes
/// between payloads are gathered, payloads of this size or more go straight through.
const WRITE_BUFFER: usize = 1 << 16;

/// One buffer to inline: its bytes (viewed in place) and, for a compressed frame, the frame
/// header.
pub(crate) struct Inline {
    data: Bytes,
    info: Option<FrameInfo>,
}

impl Inline {
    /// A buffer written as is (or compressed on the way, when the options ask).
    pub(crate) fn raw(data: Bytes) -> Inline {
        Inline { data, info: None }
    }

    /// A frame already compressed, described by `info`.
    pub(crate) fn compressed(data: Bytes, info: FrameInfo) -> Inline {
        Inline {
            data,
            info: Some(info),
        }
    }

    /// The buffer to write (the read-only flag comes from the pickle's READONLY_BUFFER
    /// opcodes).
    fn payload(&self) -> PayloadBuffer<'_> {
        match &self.info {
            Some(info) => PayloadBuffer::compressed_borrowed(&self.data, info.clone(), false),
            None => PayloadBuffer::borrowed(&self.data, false),
        }
    }
}

/// Rewrites `pickle` (protocol 5, with a `NEXT_BUFFER` per entry of `buffers`) into a
/// self-contained pickle whose payloads start at `align`-byte offsets.
///
/// `buffers` holds, per `NEXT_BUFFER`, either a Python buffer (sent in-band as is) or a
/// `(frame_header, frame)` pair from `compress_buffers` (sent as
/// `ndpickle._decompress(frame_header, frame, writable)`). `target` is a path (`str` or
/// `os.PathLike`; the file is created or truncated), a binary file object (its `write` gets
/// pieces of at most 1 MiB), or `None` to return the pickle as `bytes`.
///
/// With `compression` (as for `compress_buffers`; needs a path or file `target`), raw
/// buffers are compressed one at a time as they are written (GIL released for a path): a
/// buffer of at most `chunk` bytes (default the core's `COMPRESS_CHUNK`, 64 MiB) whole, as
/// one `_decompress` frame; a larger one chunk by chunk, as `_decompress_into` calls, each
/// compressed chunk dropped once written: peak memory is the data plus one compressed chunk.
#[pyfunction]
#[pyo3(signature = (pickle, buffers, target=None, align=64, compression=None, itemsizes=None, shuffle=true, level=None, threads=None, chunk=None, fsync=false))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn inline_buffers<'py>(
    py: Python<'py>,
    pickle: &Bound<'py, PyAny>,
    buffers: Vec<Bound<'py, PyAny>>,
    target: Option<&Bound<'py, PyAny>>,
    align: usize,
    compression: Option<&str>,
    itemsizes: Option<Vec<usize>>,
    shuffle: bool,
    level: Option<i32>,
    threads: Option<usize>,
    chunk: Option<usize>,
    fsync: bool,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let settings = codec::settings_from_py(compression, shuffle, level)?;
    let itemsizes = itemsizes.unwrap_or_default();
    let opts = WriteOptions::builder()
        .protocol(5)
        .align((align > 1).then_some(align))
        .compression(settings)
        .codec_options(codec::codec_options(shuffle, threads)?)
        .compress_chunk(chunk.unwrap_or(ndpickle::write::COMPRESS_CHUNK))
        .fsync(fsync)
        .build()
        .map_err(encode_err)?;
    let (pickle, _) = bytes_from_python(pickle)?;
    let inputs = buffers
        .iter()
        .map(inline_entry)
        .collect::<PyResult<Vec<Inline>>>()?;
    write_inline(py, &pickle, inputs, &itemsizes, target, &opts)
}

/// Rewrites `pickle` with `inputs` in-band (see [`inline_buffers`]) as `opts` say, into
/// `target` (a path, a binary file object, or `None` for a new `bytes` object).
/// `itemsizes[i]` is the element size the shuffle of buffer `i` works on (1 when missing).
pub(crate) fn write_inline<'py>(
    py: Python<'py>,
    pickle: &[u8],
    inputs: Vec<Inline>,
    itemsizes: &[usize],
    target: Option<&Bound<'py, PyAny>>,
    opts: &WriteOptions,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    if opts.compression() != &Compression::Off && target.is_none() {
        return Err(invalid_arg(
            "compression while inlining needs a path or file target",
        ));
    }
    let run = |w: &mut dyn Write| -> Result<(), EncodeError> {
        let mut next = |i: usize| {
            let size = itemsizes.get(i).copied().unwrap_or(1);
            Ok((Cow::Owned(inputs[i].payload()), size))
        };
        ndpickle::inline_buffers_compressing(pickle, inputs.len(), &mut next, w, opts)
    };
    let Some(target) = target else {
        // Two passes: count, then fill a `bytes` object of exactly that size.
        let mut counter = Counter(0);
        py.detach(|| run(&mut counter)).map_err(encode_err)?;
        let mut failure = None;
        let out = PyBytes::new_with(py, counter.0, |out: &mut [u8]| {
            let mut rest: &mut [u8] = out;
            match py.detach(|| run(&mut rest)) {
                Ok(()) if rest.is_empty() => {}
                Ok(()) => {
                    failure = Some(EncodeError::Codec("rewritten pickle changed size".into()))
                }
                Err(e) => failure = Some(e),
            }
            Ok(())
        })?;
        return match failure {
            Some(e) => Err(encode_err(e)),
            None => Ok(Some(out)),
        };
    };
    if let Ok(path) = target.extract::<PathBuf>() {
        py.detach(|| AtomicFile::write_with(&path, opts.fsync(), WRITE_BUFFER, |w| run(w)))
            .map_err(encode_err)?;
        return Ok(None);
    }
    if !target.hasattr("write")? {
        return Err(invalid_arg(
            "target must be a path, a binary file object or None",
        ));
    }
    let mut file = PyWriter {
        file: target.clone(),
        error: None,
    };
    let result = {
        let mut w = BufWriter::with_capacity(WRITE_BUFFER, &mut file);
        run(&mut w).and_then(|()| w.flush().map_err(EncodeError::from))
    };
    match (result, file.error) {
        (_, Some(err)) => Err(err),
        (Err(e), None) => Err(encode_err(e)),
        (Ok(()), None) => Ok(None),
    }
}

/// A buffer, or a `(frame_header, frame)` pair for a compressed one.
fn inline_entry(obj: &Bound<'_, PyAny>) -> PyResult<Inline> {
    if let Ok((header, frame)) = obj.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>() {
        let (header, _) = bytes_from_python(&header)?;
        let info = FrameInfo::from_exact_bytes(&header).map_err(decode_err)?;
        let (data, _) = bytes_from_python(&frame)?;
        if info.frame_len() != data.len() as u64 {
            return Err(invalid_arg(format!(
                "frame is {} bytes but its header says {}",
                data.len(),
                info.frame_len()
            )));
        }
        return Ok(Inline::compressed(data, info));
    }
    let (data, _) = bytes_from_python(obj)?;
    Ok(Inline::raw(data))
}

/// Counts bytes instead of writing them.
struct Counter(usize);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes to a Python binary file object, at most [`PY_WRITE_CHUNK`] bytes per call (each
/// piece is copied into a `bytes` object, so memory stays bounded); keeps the Python
/// exception of a failed `write` to raise it unchanged.
struct PyWriter<'py> {
    file: Bound<'py, PyAny>,
    error: Option<PyErr>,
}

impl Write for PyWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let piece = &buf[..buf.len().min(PY_WRITE_CHUNK)];
        let py = self.file.py();
        let written = self
            .file
            .call_method1("write", (PyBytes::new(py, piece),))
            .and_then(|n| {
                if n.is_none() {
                    Ok(piece.len())
                } else {
                    n.extract::<usize>()
                }
            });
        match written {
            Ok(n) if n <= piece.len() => Ok(n),
            Ok(n) => Err(io::Error::other(format!(
                "write() reported {n} bytes for a {}-byte piece",
                piece.len()
            ))),
            Err(e) => {
                self.error = Some(e);
                Err(io::Error::other("the file object's write() failed"))
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes a file atomically: calls `write(temp_path)`, which writes the whole file at
/// `temp_path` (a new temporary file in `path`'s directory), then renames it over `path`
/// (after flushing it to the device with `fsync`). If `write` raises, the temporary file
/// is deleted and `path` keeps what it held.
#[pyfunction]
#[pyo3(signature = (path, write, fsync=false))]
pub(crate) fn write_atomically(
    py: Python<'_>,
    path: PathBuf,
    write: &Bound<'_, PyAny>,
    fsync: bool,
) -> PyResult<()> {
    let file = py
        .detach(|| AtomicFile::create(&path))
        .map_err(|e| io_err(&e))?;
    write.call1((file.temp_path(),))?;
    py.detach(|| file.commit(fsync)).map_err(|e| io_err(&e))?;
    Ok(())
}
