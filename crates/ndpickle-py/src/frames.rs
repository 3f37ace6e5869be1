//! The wire format of `serialize()`: a header (a dict of per-frame lists, msgpack-friendly, as
//! Dask transports it) and frames, `frames[0]` the protocol-5 pickle and `frames[1:]` its
//! out-of-band buffers, each raw or compressed. This module builds the header, compresses the
//! buffers, and parses and decodes `(header, frames)` for `deserialize` (pickle) and
//! `safe_deserialize` (the safe reader); `dumps` and `dump` compress their buffers here too.
//!
//! Header keys, one list entry per frame (index 0 is the pickle, always raw):
//!
//! - `"compressed"`: whether the frame was written compressed (headers from before this key
//!   existed say it by a non-`None` `"frame-info"`);
//! - `"frame-info"`: the frame's [`FrameInfo`] bytes when compressed, else `None`;
//! - `"compression"`: the codec name a transport may decode the frame with (Dask's
//!   `distributed.protocol.compression.decompress`): set only for plain frames;
//! - `"codec"`, `"filter"`: the codec and filter names (informative);
//! - `"lengths"`: raw lengths; `"writeable"`: whether the buffer loads writable.
//!
//! A compressed frame is decoded, except a plain one that arrives at exactly its raw length:
//! that one was decoded on the way (by Dask, as its `"compression"` entry allows). Frames are
//! only ever kept compressed when strictly shorter than the data
//! ([`ndpickle::codec::compress_if_smaller`]), so the two cannot be confused.

use bytes::Bytes;
use ndpickle::codec::{
    CodecOptions, Compression, FrameInfo, compress_if_smaller, decompress_into, decompress_with,
};
use ndpickle::{DecodeError, DecodeErrorKind, EncodeError, InBuffer};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyMemoryView, PyString, PyTuple};

use crate::buffer::{RawBuffer, bytes_from_python};
use crate::codec::{codec_options, settings_from_py, with_scratch};
use crate::convert::Converter;
use crate::error::{decode_err, encode_err, invalid_arg};
use crate::files::{Inline, write_inline};
use crate::loads::{read_options, source};

/// The `"serializer"` entry of every header.
const SERIALIZER: &str = "ndpickle";

/// Compression settings from the Python arguments of `serialize`, `dumps` and `dump`.
pub(crate) struct Settings {
    pub(crate) compression: Compression,
    pub(crate) options: CodecOptions,
}

impl Settings {
    /// Validates the arguments (also when there is nothing to compress).
    pub(crate) fn from_py(
        compression: Option<&str>,
        shuffle: bool,
        level: Option<i32>,
        threads: Option<usize>,
    ) -> PyResult<Settings> {
        Ok(Settings {
            compression: settings_from_py(compression, shuffle, level)?,
            options: codec_options(shuffle, threads)?,
        })
    }
}

/// A compressed frame and its header; `None` for a buffer sent raw.
pub(crate) type MaybeFrame = Option<(FrameInfo, Vec<u8>)>;

/// Compresses each buffer with the GIL released; `None` where a buffer is better sent raw.
pub(crate) fn compress_all(
    py: Python<'_>,
    inputs: &[Bytes],
    itemsizes: &[usize],
    settings: &Settings,
) -> PyResult<Vec<MaybeFrame>> {
    if settings.compression == Compression::Off {
        return Ok(vec![None; inputs.len()]);
    }
    py.detach(|| {
        with_scratch(settings.options, |scratch| {
            inputs
                .iter()
                .zip(itemsizes)
                .map(|(data, &size)| {
                    let c = settings.compression.with_elem_size(size.max(1));
                    compress_if_smaller(data, &c, scratch)
                })
                .collect::<Result<Vec<_>, EncodeError>>()
        })
    })
    .map_err(encode_err)
}

/// An out-of-band buffer from the pickler (`pickle.PickleBuffer`): its raw memory, the
/// element size the shuffle works on, and whether it is read-only.
struct OutBuffer<'py> {
    raw: Bound<'py, PyAny>,
    bytes: Bytes,
    itemsize: usize,
    readonly: bool,
}

impl<'py> OutBuffer<'py> {
    fn of(buffer: &Bound<'py, PyAny>) -> PyResult<OutBuffer<'py>> {
        let raw = buffer.call_method0("raw")?;
        let (bytes, writable) = bytes_from_python(&raw)?;
        Ok(OutBuffer {
            itemsize: itemsize(buffer)?,
            raw,
            bytes,
            readonly: !writable,
        })
    }
}

/// Element size of an out-of-band buffer, for the shuffle filter: the dtype's item size
/// when the buffer views a numpy array (directly, or through a [`RawBuffer`] it owns), or
/// what a [`RawBuffer`] records of its elements (a packed copy of a strided view).
#[pyfunction(name = "buffer_itemsize")]
pub(crate) fn itemsize(buffer: &Bound<'_, PyAny>) -> PyResult<usize> {
    let view = PyMemoryView::from(buffer)?;
    let mut size: usize = view.getattr("itemsize")?.extract()?;
    if size == 1 {
        let obj = view.getattr("obj")?;
        if let Ok(raw) = obj.cast::<RawBuffer>() {
            size = raw.get().elem_size();
        }
        if size == 1
            && let Ok(owner) = obj.getattr("owner")
            && let Ok(dtype) = owner.getattr("dtype")
        {
            size = dtype.getattr("itemsize")?.extract()?;
        }
    }
    Ok(size.max(1))
}

fn out_buffers<'py>(buffers: &[Bound<'py, PyAny>]) -> PyResult<Vec<OutBuffer<'py>>> {
    buffers.iter().map(OutBuffer::of).collect()
}

/// The pickler's out-of-band buffers and, per buffer, its compressed frame (`None`: raw).
fn compress_out<'py>(
    py: Python<'py>,
    buffers: &[Bound<'py, PyAny>],
    settings: &Settings,
) -> PyResult<(Vec<OutBuffer<'py>>, Vec<MaybeFrame>)> {
    let outs = out_buffers(buffers)?;
    let inputs: Vec<Bytes> = outs.iter().map(|b| b.bytes.clone()).collect();
    let sizes: Vec<usize> = outs.iter().map(|b| b.itemsize).collect();
    let compressed = compress_all(py, &inputs, &sizes, settings)?;
    Ok((outs, compressed))
}

/// `serialize()`'s `(header, frames)` from a protocol-5 pickle and its out-of-band buffers
/// (`pickle.PickleBuffer`s): each buffer compressed as `compression`, `shuffle`, `level`
/// and `threads` say (see `ndpickle.serialize`) when that makes it smaller, sent as a view
/// of its memory otherwise.
#[pyfunction]
#[pyo3(signature = (data, buffers, compression="auto", shuffle=true, level=None, threads=None))]
pub(crate) fn serialize<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    buffers: Vec<Bound<'py, PyAny>>,
    compression: Option<&str>,
    shuffle: bool,
    level: Option<i32>,
    threads: Option<usize>,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyList>)> {
    let settings = Settings::from_py(compression, shuffle, level, threads)?;
    frames_of(py, data, &buffers, &settings)
}

/// `serialize()` of one exact `numpy.ndarray` with no Python pickler: the core writes its
/// pickle (the portable form, its memory out-of-band under `span_threshold`'s layout
/// decision) and the frames are built as [`serialize`] builds them. `None` for what the core
/// does not write (subclasses, object dtypes, dtypes it does not model): `serialize` them.
#[pyfunction]
#[pyo3(signature = (array, compression="auto", shuffle=true, level=None, threads=None, span_threshold=0.5))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn serialize_array<'py>(
    py: Python<'py>,
    array: &Bound<'py, PyAny>,
    compression: Option<&str>,
    shuffle: bool,
    level: Option<i32>,
    threads: Option<usize>,
    span_threshold: f64,
) -> PyResult<Option<(Bound<'py, PyDict>, Bound<'py, PyList>)>> {
    let settings = Settings::from_py(compression, shuffle, level, threads)?;
    if !(span_threshold > 0.0 && span_threshold <= 1.0) {
        return Err(invalid_arg(format!(
            "span_threshold must be in (0, 1], not {span_threshold}"
        )));
    }
    let Some((pickle, buffers)) = crate::reduce::array_payload(array, span_threshold)? else {
        return Ok(None);
    };
    let data = PyBytes::new(py, &pickle).into_any();
    frames_of(py, &data, &buffers, &settings).map(Some)
}

/// The `(header, frames)` of a pickle and its out-of-band buffers.
fn frames_of<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    buffers: &[Bound<'py, PyAny>],
    settings: &Settings,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyList>)> {
    let (outs, compressed) = compress_out(py, buffers, settings)?;
    let n = outs.len() + 1;
    let none = || py.None().into_bound(py);
    let frames = PyList::new(py, [data.clone()])?;
    let (mut dask, mut codecs, mut filters, mut infos) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut flags = vec![false];
    let mut lengths = vec![data.len()?];
    let mut writeable = vec![false];
    for v in [&mut dask, &mut codecs, &mut filters, &mut infos] {
        v.push(none());
    }
    for (out, c) in outs.into_iter().zip(compressed) {
        lengths.push(out.bytes.len());
        writeable.push(!out.readonly);
        flags.push(c.is_some());
        let Some((info, frame)) = c else {
            frames.append(out.raw)?;
            for v in [&mut dask, &mut codecs, &mut filters, &mut infos] {
                v.push(none());
            }
            continue;
        };
        let frame = Bound::new(py, RawBuffer::from_bytes(Bytes::from(frame)))?;
        frames.append(PyMemoryView::from(frame.as_any())?)?;
        let name =
            |s: Option<&str>| s.map_or_else(none, |s| s.into_pyobject(py).unwrap().into_any());
        let codec = name(info.codec().name());
        dask.push(if info.is_plain() {
            codec.clone()
        } else {
            none()
        });
        codecs.push(codec);
        filters.push(name(info.filter().name()));
        infos.push(PyBytes::new(py, &info.to_bytes()).into_any());
    }
    // Interned keys and name: built (and hashed) once per process, not once per message.
    let header = PyDict::new(py);
    header.set_item(intern!(py, "serializer"), intern!(py, SERIALIZER))?;
    header.set_item(intern!(py, "protocol"), 5)?;
    header.set_item(intern!(py, "compressed"), flags)?;
    header.set_item(intern!(py, "compression"), dask)?;
    header.set_item(intern!(py, "codec"), codecs)?;
    header.set_item(intern!(py, "filter"), filters)?;
    header.set_item(intern!(py, "frame-info"), infos)?;
    header.set_item(intern!(py, "lengths"), lengths)?;
    header.set_item(intern!(py, "writeable"), writeable)?;
    Ok((header, frames))
}

/// One frame of a parsed `(header, frames)`.
struct Frame<'py> {
    obj: Bound<'py, PyAny>,
    /// Its frame header when it is to be decoded (compressed, and not decoded on the way).
    info: Option<FrameInfo>,
    raw_len: u64,
    writeable: bool,
}

/// Why `(header, frames)` was refused: a header that does not describe the frames (a
/// `ValueError` for `deserialize`), or frames that do not match a valid header.
enum Refusal {
    Header(String),
    Frame(DecodeError),
}

impl Refusal {
    fn frame(detail: String) -> Refusal {
        Refusal::Frame(DecodeError::new(DecodeErrorKind::Invalid {
            what: "serialize() frame",
            detail,
        }))
    }

    /// For `deserialize`: header problems are `ValueError`s.
    fn into_py(self) -> PyErr {
        match self {
            Refusal::Header(msg) => invalid_arg(msg),
            Refusal::Frame(e) => decode_err(e),
        }
    }

    /// For `safe_deserialize`: everything is a `DecodeError`.
    fn into_decode_error(self) -> PyErr {
        match self {
            Refusal::Header(msg) => decode_err(DecodeError::new(DecodeErrorKind::Invalid {
                what: "serialize() payload",
                detail: msg,
            })),
            Refusal::Frame(e) => decode_err(e),
        }
    }
}

/// A per-frame list of the header: `None` when missing (or `None`), an error when it is no
/// list of `n` entries.
fn header_list<'py>(
    header: &Bound<'py, PyDict>,
    key: &Bound<'py, PyString>,
    n: usize,
) -> Result<Option<Vec<Bound<'py, PyAny>>>, Refusal> {
    let Some(v) = header.get_item(key).ok().flatten().filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    let items = if let Ok(l) = v.cast::<PyList>() {
        l.iter().collect::<Vec<_>>()
    } else if let Ok(t) = v.cast::<PyTuple>() {
        t.iter().collect()
    } else {
        return Err(Refusal::Header(format!(
            "the header's {:?} is not a list",
            key.to_string()
        )));
    };
    if items.len() != n {
        return Err(Refusal::Header(format!(
            "the header's {:?} describes {} frames, got {n}",
            key.to_string(),
            items.len()
        )));
    }
    Ok(Some(items))
}

/// Parses `(header, frames)` and checks every frame against the header.
fn parse<'py>(
    header: &Bound<'py, PyAny>,
    frames: &Bound<'py, PyAny>,
) -> Result<(Bound<'py, PyAny>, Vec<Frame<'py>>), Refusal> {
    let Ok(header) = header.cast::<PyDict>() else {
        return Err(Refusal::Header("the header is not a dict".into()));
    };
    let py = header.py();
    let serializer = header.get_item(intern!(py, "serializer")).ok().flatten();
    if !serializer
        .as_ref()
        .is_some_and(|s| s.extract::<&str>().is_ok_and(|s| s == SERIALIZER))
    {
        let name = serializer.map_or("None".to_owned(), |s| {
            s.repr().map_or("?".into(), |r| r.to_string())
        });
        return Err(Refusal::Header(format!("not an ndpickle header: {name}")));
    }
    let frames: Vec<Bound<'py, PyAny>> = if let Ok(l) = frames.cast::<PyList>() {
        l.iter().collect()
    } else if let Ok(t) = frames.cast::<PyTuple>() {
        t.iter().collect()
    } else {
        return Err(Refusal::Header("frames must be a list".into()));
    };
    let n = frames.len();
    let Some(lengths) = header_list(header, intern!(py, "lengths"), n)? else {
        return Err(Refusal::Header(format!(
            "the header describes no frames, got {n}"
        )));
    };
    if n == 0 {
        return Err(Refusal::Header("frames must be a non-empty list".into()));
    }
    let infos = header_list(header, intern!(py, "frame-info"), n)?;
    let flags = header_list(header, intern!(py, "compressed"), n)?;
    let writeable = header_list(header, intern!(py, "writeable"), n)?;
    let transport = header_list(header, intern!(py, "compression"), n)?;
    let mut frames = frames.into_iter();
    let pickle = frames.next().expect("n > 0");
    let mut out = Vec::with_capacity(n - 1);
    for (i, obj) in (1..n).zip(frames) {
        let raw_len = lengths[i]
            .extract::<u64>()
            .ok()
            .filter(|_| !lengths[i].is_instance_of::<pyo3::types::PyBool>())
            .ok_or_else(|| {
                Refusal::Header(format!("frame {i}'s length is not a non-negative int"))
            })?;
        let info = match infos.as_ref().map(|v| &v[i]).filter(|v| !v.is_none()) {
            None => None,
            Some(v) => {
                if !(v.is_instance_of::<PyBytes>()
                    || v.is_instance_of::<PyByteArray>()
                    || v.is_instance_of::<PyMemoryView>())
                {
                    return Err(Refusal::Header(format!(
                        "frame {i}'s frame-info is not bytes"
                    )));
                }
                let (bytes, _) = bytes_from_python(v)
                    .map_err(|_| Refusal::Header(format!("frame {i}'s frame-info is not bytes")))?;
                Some(bytes)
            }
        };
        let compressed = match &flags {
            Some(f) => f[i].is_truthy().unwrap_or(false),
            None => info.is_some(),
        };
        if compressed != info.is_some() {
            return Err(Refusal::Header(format!(
                "frame {i} is {}compressed but has {}frame-info",
                if compressed { "" } else { "not " },
                if info.is_some() { "" } else { "no " }
            )));
        }
        let size = PyMemoryView::from(&obj)
            .and_then(|m| m.getattr(intern!(py, "nbytes"))?.extract::<u64>())
            .map_err(|_| Refusal::Header(format!("frame {i} is not a buffer")))?;
        let mut parsed = None;
        if let Some(info) = info {
            let plain = transport
                .as_ref()
                .is_some_and(|t| t[i].extract::<&str>().is_ok());
            if !(plain && size == raw_len) {
                parsed = Some(frame_info(&info, i)?);
            }
        }
        if parsed.is_none() && size != raw_len {
            return Err(Refusal::Frame(DecodeError::new(DecodeErrorKind::Invalid {
                what: "serialize() frame",
                detail: format!("frame {i} holds {size} bytes, the header says {raw_len}"),
            })));
        }
        out.push(Frame {
            obj,
            info: parsed,
            raw_len,
            writeable: writeable
                .as_ref()
                .is_some_and(|w| w[i].is_truthy().unwrap_or(false)),
        });
    }
    Ok((pickle, out))
}

/// A frame header that must be exactly the given bytes.
fn frame_info(bytes: &[u8], i: usize) -> Result<FrameInfo, Refusal> {
    let (info, used) = FrameInfo::from_bytes(bytes)
        .map_err(|e| Refusal::frame(format!("frame {i} has a corrupt header: {}", e.kind)))?;
    if used != bytes.len() {
        return Err(Refusal::frame(format!(
            "frame {i} header has {} trailing bytes",
            bytes.len() - used
        )));
    }
    Ok(info)
}

static PICKLE_LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `deserialize(header, frames)`: decodes the compressed frames (none may grow past the raw
/// length the header records), copies frames that must be writable but arrive read-only,
/// and rebuilds the object with `pickle.loads`.
#[pyfunction]
pub(crate) fn deserialize<'py>(
    py: Python<'py>,
    header: &Bound<'py, PyAny>,
    frames: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let (pickle, parsed) = parse(header, frames).map_err(Refusal::into_py)?;
    let buffers = PyList::empty(py);
    for f in parsed {
        let buffer = match &f.info {
            Some(info) => decode(py, &f.obj, info, f.raw_len, f.writeable)?,
            None if f.writeable
                && PyMemoryView::from(&f.obj)?
                    .getattr("readonly")?
                    .is_truthy()? =>
            {
                PyByteArray::from(&f.obj)?.into_any()
            }
            None => f.obj,
        };
        buffers.append(buffer)?;
    }
    let loads = PICKLE_LOADS.import(py, "pickle", "loads")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("buffers", buffers)?;
    loads.call((pickle,), Some(&kwargs))
}

/// Decodes one compressed frame into a new `bytearray` (`writable`) or `bytes`, with the GIL
/// released; its raw length must be `raw_len`.
fn decode<'py>(
    py: Python<'py>,
    frame: &Bound<'py, PyAny>,
    info: &FrameInfo,
    raw_len: u64,
    writable: bool,
) -> PyResult<Bound<'py, PyAny>> {
    if info.raw_len() != raw_len {
        return Err(decode_err(DecodeError::new(DecodeErrorKind::Limit {
            limit: "decompressed buffer size",
            max: raw_len,
        })));
    }
    decompress_to_python(py, frame, info, writable, CodecOptions::default())
}

/// Decompresses `frame` (described by `info`) into a new writable buffer (a
/// [`RawBuffer`] over Rust memory, never zeroed first) or a `bytes` (not `writable`) of
/// `info.raw_len()` bytes, with the GIL released while decoding.
pub(crate) fn decompress_to_python<'py>(
    py: Python<'py>,
    frame: &Bound<'py, PyAny>,
    info: &FrameInfo,
    writable: bool,
    options: CodecOptions,
) -> PyResult<Bound<'py, PyAny>> {
    let (frame, _) = bytes_from_python(frame)?;
    let len = usize::try_from(info.raw_len()).map_err(|_| {
        decode_err(DecodeError::from(ndpickle::WireError::Overflow {
            what: "raw length",
        }))
    })?;
    if !writable {
        // A real `bytes`: numpy's protocol-2 array state takes nothing else as raw data.
        let mut failure = None;
        let obj = PyBytes::new_with(py, len, |out: &mut [u8]| {
            let r = py.detach(|| with_scratch(options, |s| decompress_into(&frame, info, out, s)));
            failure = r.err();
            Ok(())
        })?;
        return match failure {
            Some(e) => Err(decode_err(e)),
            None => Ok(obj.into_any()),
        };
    }
    // Decoded into fresh Rust memory that nothing zeroes first (the pass over the output a
    // zeroed bytearray costs), handed to Python without a copy.
    let data = py
        .detach(|| with_scratch(options, |s| decompress_with(&frame, info, len, s)))
        .map_err(decode_err)?;
    let raw = match Bytes::from(data).try_into_mut() {
        // The only handle to a new allocation: unique, so no copy.
        Ok(unique) => RawBuffer::from_unique(unique),
        Err(shared) => RawBuffer::from_unique(bytes::BytesMut::from(&shared[..])),
    };
    Ok(Bound::new(py, raw)?.into_any())
}

/// `safe_deserialize(header, frames, limits, strict)`: [`deserialize`] through the safe
/// reader (no code runs). Compressed frames are decompressed by the reader when the pickle
/// takes them, within the limits; raw ones are viewed as `safe_loads` views its buffers.
/// Every refusal is a `DecodeError`.
#[pyfunction]
#[pyo3(signature = (header, frames, limits=None, strict=false))]
pub(crate) fn safe_deserialize<'py>(
    py: Python<'py>,
    header: &Bound<'py, PyAny>,
    frames: &Bound<'py, PyAny>,
    limits: Option<&Bound<'py, PyDict>>,
    strict: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let opts = read_options(limits, strict, true)?;
    let (data, parsed) = parse(header, frames).map_err(Refusal::into_decode_error)?;
    let mut sources = Vec::new();
    let pickle = source(&data, &mut sources)?;
    let mut oob = Vec::with_capacity(parsed.len());
    for f in parsed {
        oob.push(match f.info {
            None => InBuffer::raw(source(&f.obj, &mut sources)?),
            Some(info) => InBuffer::compressed(bytes_from_python(&f.obj)?.0, info),
        });
    }
    let (value, budget) = ndpickle::read::graph_from_bytes_payload_accounted(pickle, oob, &opts)
        .map_err(decode_err)?;
    Converter::new(&sources, budget).convert_graph(py, value)
}

/// `dumps(compression=...)`: the pickle with its out-of-band buffers written in-band, each
/// compressed (as `ndpickle._decompress(header, frame, writable)`) when that makes it smaller.
#[pyfunction]
#[pyo3(signature = (data, buffers, compression="auto", shuffle=true, level=None, threads=None))]
pub(crate) fn dumps<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    buffers: Vec<Bound<'py, PyAny>>,
    compression: Option<&str>,
    shuffle: bool,
    level: Option<i32>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyBytes>> {
    let settings = Settings::from_py(compression, shuffle, level, threads)?;
    let (outs, compressed) = compress_out(py, &buffers, &settings)?;
    let entries = outs
        .into_iter()
        .zip(compressed)
        .map(|(out, c)| match c {
            Some((info, frame)) => Inline::compressed(Bytes::from(frame), info),
            None => Inline::raw(out.bytes),
        })
        .collect();
    let (pickle, _) = bytes_from_python(data)?;
    let opts = ndpickle::WriteOptions::builder()
        .protocol(5)
        .build()
        .map_err(encode_err)?;
    let out = write_inline(py, &pickle, entries, &[], None, &opts)?;
    Ok(out.expect("no target: bytes"))
}

/// `dump(...)` at protocol 5: the pickle with its out-of-band buffers written in-band to
/// `target` (a path or a binary file object) at 64-byte aligned offsets, each compressed on
/// its way to the file when asked (chunk by chunk above `chunk` raw bytes, default the
/// core's `COMPRESS_CHUNK`). A path is replaced atomically (a temporary file beside it,
/// renamed over it once written; fsync'ed first when `fsync`).
#[pyfunction]
#[pyo3(signature = (data, buffers, target, compression=None, shuffle=true, level=None, threads=None, chunk=None, fsync=false))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn dump<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    buffers: Vec<Bound<'py, PyAny>>,
    target: &Bound<'py, PyAny>,
    compression: Option<&str>,
    shuffle: bool,
    level: Option<i32>,
    threads: Option<usize>,
    chunk: Option<usize>,
    fsync: bool,
) -> PyResult<()> {
    let settings = Settings::from_py(compression, shuffle, level, threads)?;
    let outs = out_buffers(&buffers)?;
    let sizes: Vec<usize> = outs.iter().map(|b| b.itemsize).collect();
    let entries = outs.into_iter().map(|b| Inline::raw(b.bytes)).collect();
    let (pickle, _) = bytes_from_python(data)?;
    let mut b = ndpickle::WriteOptions::builder()
        .protocol(5)
        .align(Some(ndpickle::write::FILE_ALIGN))
        .compression(settings.compression)
        .codec_options(settings.options)
        .fsync(fsync);
    if let Some(chunk) = chunk {
        b = b.compress_chunk(chunk);
    }
    let opts = b.build().map_err(encode_err)?;
    write_inline(py, &pickle, entries, &sizes, Some(target), &opts).map(|_| ())
}

/// Validates compression arguments where nothing is compressed (`dumps` and `dump` without
/// compression), so that bad arguments fail the same way everywhere.
#[pyfunction]
#[pyo3(signature = (compression=None, shuffle=true, level=None, threads=None))]
pub(crate) fn check_compression(
    compression: Option<&str>,
    shuffle: bool,
    level: Option<i32>,
    threads: Option<usize>,
) -> PyResult<()> {
    Settings::from_py(compression, shuffle, level, threads).map(|_| ())
}
