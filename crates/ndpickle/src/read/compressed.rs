//! Compressed array data: out-of-band buffers that arrive as codec frames ([`InBuffer`] with a
//! [`FrameInfo`]) and the in-band forms the writer emits:
//!
//! - one frame: `ndpickle._decompress(header: bytes, frame: bytes, writable: bool)`;
//! - a large buffer, chunk by chunk (see `write::chunked`): nested calls
//!   `_decompress_into(... _decompress_into(_decompress_target(raw_len), 0, h1, f1) ...,
//!   offset_k, h_k, f_k, writable)`. `_decompress_target(n)` allocates the `n`-byte output
//!   (charged to both limits below before allocating; `n` must be at least 1); each
//!   `_decompress_into(out, offset, header, frame)` decompresses one frame into
//!   `out[offset..offset + raw_len]`, where `out` must be an unfinished target held by
//!   nothing else, chunks must come in order and be contiguous (`offset` = bytes filled so
//!   far) and must not run past the end; the last call (five arguments, with `writable`)
//!   must complete the buffer exactly, and only its result is a usable `bytes`/`bytearray`.
//!   A read with an unfinished target fails. The chain nests one call per chunk, so it
//!   counts against [`ReadOptions::max_depth`] (two levels per chunk: 64 chunks of the
//!   default 64 MiB for a 4 GiB buffer are 128 levels).
//!
//! All are decompressed here, never beyond [`ReadOptions::max_decompressed_bytes`] per buffer,
//! and every decompressed byte counts against [`ReadOptions::max_alloc_bytes`] before anything
//! is allocated. A corrupt frame is a [`DecodeErrorKind::Codec`] error, never a panic.

use bytes::Bytes;

use crate::codec::{self, FrameInfo, Scratch};
use crate::error::{DecodeErrorKind, WireError};
use crate::value::Value;

use super::args::{CallParts, arity, buffer_of, type_err, usize_of};
use super::options::ReadOptions;

/// One out-of-band buffer handed to [`crate::from_payload`]: the buffer's bytes, or a codec
/// frame plus the [`FrameInfo`] that says how to decompress it.
///
/// Raw buffers convert from [`Bytes`], `Vec<u8>` and `&'static [u8]`; compressed ones from
/// `(Bytes, FrameInfo)` or `(Vec<u8>, FrameInfo)`. A writer [`crate::PayloadBuffer`] converts
/// too (copying its bytes once), so that `to_payload` output reads back directly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InBuffer {
    data: Bytes,
    frame: Option<FrameInfo>,
}

impl InBuffer {
    /// A buffer whose bytes are the data itself (arrays over it are zero-copy views).
    pub fn raw(data: Bytes) -> InBuffer {
        InBuffer { data, frame: None }
    }

    /// A compressed frame that decodes, per `info`, to the buffer's bytes.
    pub fn compressed(frame: Bytes, info: FrameInfo) -> InBuffer {
        InBuffer {
            data: frame,
            frame: Some(info),
        }
    }

    /// The bytes as given (the compressed frame for a compressed buffer).
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// How the bytes are compressed, if they are.
    pub fn frame_info(&self) -> Option<&FrameInfo> {
        self.frame.as_ref()
    }
}

impl From<Bytes> for InBuffer {
    fn from(data: Bytes) -> InBuffer {
        InBuffer::raw(data)
    }
}

impl From<Vec<u8>> for InBuffer {
    fn from(data: Vec<u8>) -> InBuffer {
        InBuffer::raw(data.into())
    }
}

impl From<&'static [u8]> for InBuffer {
    fn from(data: &'static [u8]) -> InBuffer {
        InBuffer::raw(Bytes::from_static(data))
    }
}

impl From<(Bytes, FrameInfo)> for InBuffer {
    fn from((frame, info): (Bytes, FrameInfo)) -> InBuffer {
        InBuffer::compressed(frame, info)
    }
}

impl From<(Vec<u8>, FrameInfo)> for InBuffer {
    fn from((frame, info): (Vec<u8>, FrameInfo)) -> InBuffer {
        InBuffer::compressed(frame.into(), info)
    }
}

impl From<crate::PayloadBuffer<'_>> for InBuffer {
    /// Copies borrowed bytes once (owned ones are moved); keeps the frame info.
    fn from(b: crate::PayloadBuffer<'_>) -> InBuffer {
        let frame = b.frame_info().cloned();
        InBuffer {
            data: Bytes::from(b.into_vec()),
            frame,
        }
    }
}

/// Decompresses buffers for one read, within the options' limits, and remembers what it
/// made (for [`crate::inspect`]).
pub(crate) struct Inflater {
    scratch: Option<Scratch>,
    /// Unfinished chunked targets: where their bytes live, their length, bytes filled.
    pending: Vec<Pending>,
    /// Every finished buffer, in the order they were completed.
    inflated: Vec<Inflated>,
}

/// A `_decompress_target` output still being filled.
struct Pending {
    addr: usize,
    len: usize,
    filled: usize,
    /// The codec of the first chunk (empty until one came).
    codec: String,
    /// Header and frame bytes of the chunks so far.
    compressed: u64,
}

/// A buffer the reader decompressed: where its bytes live (by address; the memory belongs to
/// the value the read returned) and what it was made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Inflated {
    /// Address of the first decompressed byte.
    pub(crate) addr: usize,
    /// Decompressed length.
    pub(crate) len: usize,
    /// The filter and codec, as [`codec_label`] names them (`"shuffle+lz4"`).
    pub(crate) codec: String,
    /// Compressed bytes read to make it (frame headers included).
    pub(crate) compressed: u64,
}

/// How a frame was encoded, in the names the Python API uses: `"lz4"`, `"zstd"`,
/// `"shuffle+lz4"`, `"none"` (whether blocks hold one stream per byte plane is a detail of
/// the block layout, not named).
pub(crate) fn codec_label(info: &FrameInfo) -> String {
    let codec = info.codec().name().unwrap_or("none");
    match info.filter().name() {
        Some(filter) => format!("{filter}+{codec}"),
        None => codec.to_string(),
    }
}

fn chunk_err(detail: String) -> DecodeErrorKind {
    DecodeErrorKind::Codec(format!("chunked compressed buffer: {detail}"))
}

impl Inflater {
    /// An inflater; codec contexts are created on first use.
    pub(crate) fn new() -> Inflater {
        Inflater {
            scratch: None,
            pending: Vec::new(),
            inflated: Vec::new(),
        }
    }

    /// The buffers decompressed so far, handed over (the read is done with them).
    pub(crate) fn take_inflated(&mut self) -> Vec<Inflated> {
        std::mem::take(&mut self.inflated)
    }

    /// The bytes of `buf`: as given, or decompressed. `alloc` is the read's running
    /// allocation total, charged with the raw length before anything is allocated.
    pub(crate) fn buffer(
        &mut self,
        buf: InBuffer,
        opts: &ReadOptions,
        alloc: &mut u64,
    ) -> Result<Bytes, DecodeErrorKind> {
        match &buf.frame {
            None => Ok(buf.data),
            Some(info) => {
                let header = info.header_len() as u64;
                self.inflate(&buf.data, info, header, opts, alloc)
            }
        }
    }

    /// Decompresses `frame` described by `info` (whose serialized header was `header` bytes).
    fn inflate(
        &mut self,
        frame: &[u8],
        info: &FrameInfo,
        header: u64,
        opts: &ReadOptions,
        alloc: &mut u64,
    ) -> Result<Bytes, DecodeErrorKind> {
        info.validate().map_err(|e| e.kind)?;
        let raw = info.raw_len();
        if raw > opts.max_decompressed_bytes() {
            return Err(DecodeErrorKind::Limit {
                limit: "decompressed buffer size in bytes",
                max: opts.max_decompressed_bytes(),
            });
        }
        let total = alloc.saturating_add(raw);
        if total > opts.max_alloc_bytes() {
            return Err(DecodeErrorKind::Limit {
                limit: "total allocation in bytes",
                max: opts.max_alloc_bytes(),
            });
        }
        let max = usize::try_from(raw).map_err(|_| WireError::Overflow {
            what: "decompressed buffer size",
        })?;
        let scratch = self.scratch.get_or_insert_with(Scratch::new);
        let out =
            Bytes::from(codec::decompress_with(frame, info, max, scratch).map_err(|e| e.kind)?);
        *alloc = total;
        self.inflated.push(Inflated {
            addr: out.as_ptr() as usize,
            len: out.len(),
            codec: codec_label(info),
            compressed: (frame.len() as u64).saturating_add(header),
        });
        Ok(out)
    }

    /// `ndpickle._decompress(header, frame[, writable])`: a `bytearray` when `writable` (the
    /// default, as in Python), else `bytes`.
    pub(crate) fn call(
        &mut self,
        p: CallParts,
        opts: &ReadOptions,
        alloc: &mut u64,
    ) -> Result<Value, DecodeErrorKind> {
        p.plain(false)?;
        arity(&p, 2, 3)?;
        let (header, _) = buffer_of(&p.args[0])
            .ok_or_else(|| type_err("bytes for the frame header", &p.args[0]))?;
        let (frame, _) =
            buffer_of(&p.args[1]).ok_or_else(|| type_err("bytes for the frame", &p.args[1]))?;
        let writable = writable_flag(p.args.get(2))?.unwrap_or(true);
        let info = parse_header(&header)?;
        let data = self.inflate(&frame, &info, header.len() as u64, opts, alloc)?;
        Ok(if writable {
            Value::ByteArray(data)
        } else {
            Value::Bytes(data)
        })
    }

    /// `ndpickle._decompress_target(raw_len)`: a zeroed `bytearray` of `raw_len` bytes (at
    /// least 1) to be filled by `_decompress_into` calls, charged to the limits first.
    pub(crate) fn target(
        &mut self,
        p: CallParts,
        opts: &ReadOptions,
        alloc: &mut u64,
    ) -> Result<Value, DecodeErrorKind> {
        p.plain(false)?;
        arity(&p, 1, 1)?;
        let n = usize_of(&p.args[0], "the length of a chunked compressed buffer")?;
        if n == 0 {
            return Err(chunk_err("the target length must be at least 1".into()));
        }
        if n as u64 > opts.max_decompressed_bytes() {
            return Err(DecodeErrorKind::Limit {
                limit: "decompressed buffer size in bytes",
                max: opts.max_decompressed_bytes(),
            });
        }
        let total = alloc.saturating_add(n as u64);
        if total > opts.max_alloc_bytes() {
            return Err(DecodeErrorKind::Limit {
                limit: "total allocation in bytes",
                max: opts.max_alloc_bytes(),
            });
        }
        *alloc = total;
        let out = Bytes::from(vec![0u8; n]);
        let addr = out.as_ptr() as usize;
        if self.pending.iter().any(|t| t.addr == addr) {
            return Err(chunk_err("a target was left unfinished".into()));
        }
        self.pending.push(Pending {
            addr,
            len: n,
            filled: 0,
            codec: String::new(),
            compressed: 0,
        });
        Ok(Value::ByteArray(out))
    }

    /// `ndpickle._decompress_into(out, offset, header, frame[, writable])`: decompresses one
    /// chunk into an unfinished target, in order; with `writable` (the last chunk) the buffer
    /// must be complete and is returned as `bytearray` (`writable`) or `bytes`.
    pub(crate) fn chunk(&mut self, p: CallParts) -> Result<Value, DecodeErrorKind> {
        p.plain(false)?;
        arity(&p, 4, 5)?;
        let mut args = p.args.into_iter();
        let (Some(out), Some(offset), Some(header), Some(frame)) =
            (args.next(), args.next(), args.next(), args.next())
        else {
            return Err(chunk_err("missing arguments".into()));
        };
        let writable = writable_flag(args.next().as_ref())?;
        let Value::ByteArray(out) = out else {
            return Err(type_err(
                "the bytearray from ndpickle._decompress_target",
                &out,
            ));
        };
        let offset = usize_of(&offset, "a chunk offset")?;
        let (header, _) =
            buffer_of(&header).ok_or_else(|| type_err("bytes for the frame header", &header))?;
        let (frame, _) =
            buffer_of(&frame).ok_or_else(|| type_err("bytes for the frame", &frame))?;
        let at = self
            .pending
            .iter()
            .position(|t| t.addr == out.as_ptr() as usize && t.len == out.len())
            .ok_or_else(|| {
                chunk_err("the buffer is not an unfinished ndpickle._decompress_target".into())
            })?;
        let Pending { len, filled, .. } = self.pending[at];
        let header_len = header.len() as u64;
        if offset != filled {
            return Err(chunk_err(format!(
                "chunk at offset {offset}, but {filled} bytes are filled: chunks must be in \
                 order and contiguous"
            )));
        }
        let info = parse_header(&header)?;
        info.validate().map_err(|e| e.kind)?;
        let raw = usize::try_from(info.raw_len())
            .ok()
            .filter(|&r| r <= len - filled)
            .ok_or_else(|| {
                chunk_err(format!(
                    "a chunk of {} bytes at offset {offset} runs past the end of the \
                     {len}-byte buffer",
                    info.raw_len()
                ))
            })?;
        let mut out = out
            .try_into_mut()
            .map_err(|_| chunk_err("the target is shared (referenced more than once)".into()))?;
        let scratch = self.scratch.get_or_insert_with(Scratch::new);
        codec::decompress_into(&frame, &info, &mut out[offset..offset + raw], scratch)
            .map_err(|e| e.kind)?;
        let out = out.freeze();
        let target = &mut self.pending[at];
        target.addr = out.as_ptr() as usize;
        target.filled += raw;
        target.compressed = target
            .compressed
            .saturating_add(frame.len() as u64)
            .saturating_add(header_len);
        if target.codec.is_empty() {
            target.codec = codec_label(&info);
        }
        match writable {
            None => Ok(Value::ByteArray(out)),
            Some(writable) => {
                let done = self.pending.swap_remove(at);
                if done.filled != len {
                    return Err(chunk_err(format!(
                        "the chunks fill {} of the buffer's {len} bytes",
                        done.filled
                    )));
                }
                self.inflated.push(Inflated {
                    addr: done.addr,
                    len,
                    codec: done.codec,
                    compressed: done.compressed,
                });
                Ok(if writable {
                    Value::ByteArray(out)
                } else {
                    Value::Bytes(out)
                })
            }
        }
    }

    /// Fails if a chunked buffer was left unfinished (its last chunk never came).
    pub(crate) fn finish(&self) -> Result<(), DecodeErrorKind> {
        match self.pending.first() {
            None => Ok(()),
            Some(t) => Err(chunk_err(format!(
                "unfinished: {} of {} bytes filled, the last chunk (with `writable`) is missing",
                t.filled, t.len
            ))),
        }
    }
}

/// The optional `writable` argument: a bool (or an int, as pickle may write it).
fn writable_flag(arg: Option<&Value>) -> Result<Option<bool>, DecodeErrorKind> {
    match arg {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::Int(i)) => Ok(Some(*i != 0)),
        Some(other) => Err(type_err("a bool for writable", other)),
    }
}

/// A serialized [`FrameInfo`] that must be exactly the given bytes.
fn parse_header(header: &[u8]) -> Result<FrameInfo, DecodeErrorKind> {
    let (info, used) = FrameInfo::from_bytes(header).map_err(|e| e.kind)?;
    if used != header.len() {
        return Err(DecodeErrorKind::Codec(format!(
            "frame header is {} bytes but describes {used}",
            header.len()
        )));
    }
    Ok(info)
}
