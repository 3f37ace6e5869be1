//! Codecs for Python:
//!
//! - [`decompress_frame`]: `_decompress`, the callable that compressed in-band pickles name
//!   (`ndpickle._decompress(header, frame, writable)`), so that `pickle.loads` rebuilds them
//!   wherever ndpickle is installed; `serialize`'s frames go through it too, with a bound.
//! - [`decompress_target`], [`decompress_chunk`]: `_decompress_target` and
//!   `_decompress_into`, which rebuild a large compressed buffer written chunk by chunk
//!   (`_decompress_into(... _decompress_into(_decompress_target(raw_len), 0, h1, f1) ...,
//!   offset_k, h_k, f_k, writable)`, see the core's `write::chunked`), holding one
//!   compressed chunk at a time.
//! - [`compress_buffers`]: per-buffer compression of Python buffers, read in place with the
//!   GIL released (the compression `serialize`, `dumps` and `dump` use, see `frames`).

use bytes::Bytes;
use ndpickle::EncodeError;
use ndpickle::codec::{CodecOptions, Compression, FrameInfo, Scratch, decompress_into};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView};

use crate::buffer::{RawBuffer, bytes_from_python};
use crate::error::{decode_err, encode_err, invalid_arg};
use crate::frames::{Settings, compress_all, decompress_to_python};

thread_local! {
    /// Codec state reused by every call on this thread (shuffle buffers, zstd contexts), so
    /// that a call does not start on freshly mapped memory.
    static SCRATCH: std::cell::RefCell<Option<Scratch>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with this thread's reusable [`Scratch`] set to `options` (a fresh one if the
/// thread's is in use further up the stack).
pub(crate) fn with_scratch<R>(options: CodecOptions, f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => {
            let scratch = match slot.as_mut() {
                Some(s) if *s.options() == options => s,
                _ => slot.insert(Scratch::with_options(options)),
            };
            f(scratch)
        }
        Err(_) => f(&mut Scratch::with_options(options)),
    })
}

/// Decompresses one frame described by `header` (a serialized [`FrameInfo`]) into a new
/// writable buffer (a `RawBuffer`) or a `bytes` (not `writable`), with the GIL released
/// while decoding.
///
/// `max_len`, when given, bounds the raw length the header may claim (checked before any
/// allocation); a frame that does not decode to exactly that header's raw length, or whose
/// header and frame disagree, raises `DecodeError`. `threads` caps the threads decoding the
/// frame's blocks (default: one per core, at most 8).
#[pyfunction]
#[pyo3(signature = (header, frame, writable=true, max_len=None, threads=None))]
pub(crate) fn decompress_frame<'py>(
    py: Python<'py>,
    header: &Bound<'py, PyAny>,
    frame: &Bound<'py, PyAny>,
    writable: bool,
    max_len: Option<u64>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let (header, _) = bytes_from_python(header)?;
    let info = FrameInfo::from_exact_bytes(&header).map_err(decode_err)?;
    if let Some(max) = max_len
        && info.raw_len() > max
    {
        return Err(decode_err(ndpickle::DecodeError::new(
            ndpickle::DecodeErrorKind::Limit {
                limit: "decompressed buffer size",
                max,
            },
        )));
    }
    let options = match threads {
        Some(t) => CodecOptions::builder()
            .threads(t)
            .build()
            .map_err(encode_err)?,
        None => CodecOptions::default(),
    };
    decompress_to_python(py, frame, &info, writable, options)
}

fn codec_error(msg: String) -> PyErr {
    decode_err(ndpickle::DecodeError::new(
        ndpickle::DecodeErrorKind::Codec(format!("chunked compressed buffer: {msg}")),
    ))
}

/// A frame header that must be exactly the given bytes.
fn parse_header(header: &[u8]) -> PyResult<FrameInfo> {
    let info = FrameInfo::from_exact_bytes(header).map_err(decode_err)?;
    info.validate().map_err(decode_err)?;
    Ok(info)
}

/// The output of a chunked compressed buffer while its chunks are decompressed into it
/// (`_decompress_target`'s result). Holds the only reference to its `bytearray` until the
/// last chunk: nothing can read, resize or replace it half-filled.
#[pyclass(module = "ndpickle._native", frozen)]
pub(crate) struct ChunkTarget {
    state: std::sync::Mutex<TargetState>,
}

struct TargetState {
    /// The buffer, `None` once handed out by the last chunk.
    data: Option<Py<PyByteArray>>,
    len: usize,
    filled: usize,
}

/// `ndpickle._decompress_target(raw_len)`: a zeroed `raw_len`-byte buffer for
/// `_decompress_into` to fill, chunk by chunk, in order. Allocates what the stream says (as
/// `bytearray(raw_len)` would): under plain `pickle.load` the stream is trusted; ndpickle's
/// safe reader bounds this size by its limits instead.
#[pyfunction]
pub(crate) fn decompress_target(py: Python<'_>, raw_len: usize) -> PyResult<ChunkTarget> {
    let data = PyByteArray::new_with(py, raw_len, |_| Ok(()))?;
    Ok(ChunkTarget {
        state: std::sync::Mutex::new(TargetState {
            data: Some(data.unbind()),
            len: raw_len,
            filled: 0,
        }),
    })
}

/// `ndpickle._decompress_into(out, offset, header, frame, writable=None)`: decompresses
/// one chunk (`header` a serialized frame header, `frame` its frame) into
/// `out[offset:offset + raw_len]` with the GIL released, and returns `out`. Chunks must come
/// in order and be contiguous (`offset` = bytes filled so far) and must fit in the buffer;
/// the last call gives `writable` and must complete the buffer exactly: it returns the
/// `bytearray` (`writable`) or a read-only view of it (`memoryview(...).toreadonly()`, no
/// copy). Anything else raises `DecodeError`.
#[pyfunction]
#[pyo3(signature = (out, offset, header, frame, writable=None))]
pub(crate) fn decompress_chunk<'py>(
    py: Python<'py>,
    out: &Bound<'py, PyAny>,
    offset: u64,
    header: &Bound<'py, PyAny>,
    frame: &Bound<'py, PyAny>,
    writable: Option<bool>,
) -> PyResult<Bound<'py, PyAny>> {
    let target = out.cast::<ChunkTarget>().map_err(|_| {
        codec_error(format!(
            "the output must come from ndpickle._decompress_target, not {}",
            out.get_type()
        ))
    })?;
    let (header, _) = bytes_from_python(header)?;
    let (frame, _) = bytes_from_python(frame)?;
    let info = parse_header(&header)?;
    let mut state = target
        .get()
        .state
        .try_lock()
        .map_err(|_| codec_error("the output is being filled by another call".into()))?;
    let (len, filled) = (state.len, state.filled);
    let Some(data) = state.data.as_ref().map(|d| d.bind(py).clone()) else {
        return Err(codec_error("the buffer is already complete".into()));
    };
    if offset != filled as u64 {
        return Err(codec_error(format!(
            "chunk at offset {offset}, but {filled} bytes are filled: chunks must be in order \
             and contiguous"
        )));
    }
    let raw = usize::try_from(info.raw_len())
        .ok()
        .filter(|&r| r <= len - filled)
        .ok_or_else(|| {
            codec_error(format!(
                "a chunk of {} bytes at offset {offset} runs past the end of the {len}-byte \
                 buffer",
                info.raw_len()
            ))
        })?;
    if data.len() != len {
        return Err(codec_error("the buffer was resized".into()));
    }
    // SAFETY: the bytearray is referenced only by this target (created by
    // `decompress_target`, never handed out before its last chunk), and the target's lock is
    // held: no Python code can read, resize or free it while the slice is alive, even with
    // the GIL released below.
    let dst = unsafe { &mut data.as_bytes_mut()[filled..filled + raw] };
    py.detach(|| {
        with_scratch(CodecOptions::default(), |s| {
            decompress_into(&frame, &info, dst, s)
        })
    })
    .map_err(decode_err)?;
    state.filled = filled + raw;
    let Some(writable) = writable else {
        return Ok(out.clone());
    };
    if state.filled != len {
        return Err(codec_error(format!(
            "the chunks fill {} of the buffer's {len} bytes",
            state.filled
        )));
    }
    state.data = None;
    if writable {
        Ok(data.into_any())
    } else {
        let view = PyMemoryView::from(&data)?;
        view.call_method0("toreadonly")
    }
}

/// The compression settings named by Python arguments: `compression` is `None`, `"auto"`,
/// `"lz4"` or `"zstd"`; `shuffle` (default on) byte-shuffles by item size before the codec;
/// `level` is zstd's level (default [`ndpickle::codec::DEFAULT_ZSTD_LEVEL`]); see
/// [`Compression::named`].
pub(crate) fn settings_from_py(
    compression: Option<&str>,
    shuffle: bool,
    level: Option<i32>,
) -> PyResult<Compression> {
    match compression {
        None if level.is_some() => Err(encode_err(EncodeError::InvalidOption(
            "level= needs a compression codec".into(),
        ))),
        None => Ok(Compression::Off),
        Some(name) => Compression::named(name, shuffle, level).map_err(encode_err),
    }
}

/// Block size and threads: unfiltered frames are one block (plain, so that python-lz4,
/// zstandard and Dask decode them alone); shuffled frames use the default blocks, which
/// threads work on in parallel.
pub(crate) fn codec_options(shuffle: bool, threads: Option<usize>) -> PyResult<CodecOptions> {
    let mut b = CodecOptions::builder();
    if !shuffle {
        b = b.single_block();
    }
    if let Some(t) = threads {
        b = b.threads(t);
    }
    b.build().map_err(encode_err)
}

/// One buffer as [`compress_buffers`] returns it: `None` when kept raw, else
/// `(frame_header, frame, codec, filter, plain)`.
type Frame<'py> = Option<(
    Bound<'py, PyBytes>,
    Bound<'py, RawBuffer>,
    Option<&'static str>,
    Option<&'static str>,
    bool,
)>;

/// Compresses each buffer (any C-contiguous Python buffer, read in place without copying)
/// with the GIL released. `itemsizes[i]` is the element size the shuffle works on.
///
/// Returns, per buffer, `None` when it should be sent raw (compression off, or the auto
/// policy found it not worth it, or the frame would not be shorter than the data), else
/// `(frame_header, frame, codec, filter, plain)`: the serialized [`FrameInfo`], the frame as
/// a read-only buffer, the codec and filter names, and whether the frame is plain (readable
/// by python-lz4 / zstandard / Dask alone).
#[pyfunction]
#[pyo3(signature = (buffers, itemsizes, compression="auto", shuffle=true, level=None, threads=None))]
pub(crate) fn compress_buffers<'py>(
    py: Python<'py>,
    buffers: Vec<Bound<'py, PyAny>>,
    itemsizes: Vec<usize>,
    compression: Option<&str>,
    shuffle: bool,
    level: Option<i32>,
    threads: Option<usize>,
) -> PyResult<Vec<Frame<'py>>> {
    if buffers.len() != itemsizes.len() {
        return Err(invalid_arg(format!(
            "{} buffers but {} item sizes",
            buffers.len(),
            itemsizes.len()
        )));
    }
    let settings = Settings::from_py(compression, shuffle, level, threads)?;
    let inputs = buffers
        .iter()
        .map(|b| bytes_from_python(b).map(|(data, _)| data))
        .collect::<PyResult<Vec<Bytes>>>()?;
    let compressed = compress_all(py, &inputs, &itemsizes, &settings)?;
    drop(inputs);
    compressed
        .into_iter()
        .map(|c| {
            let Some((info, frame)) = c else {
                return Ok(None);
            };
            let header = PyBytes::new(py, &info.to_bytes());
            let frame = Bound::new(py, RawBuffer::from_bytes(Bytes::from(frame)))?;
            Ok(Some((
                header,
                frame,
                info.codec().name(),
                info.filter().name(),
                info.is_plain(),
            )))
        })
        .collect()
}
