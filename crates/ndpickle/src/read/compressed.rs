//! Compressed array data: out-of-band buffers that arrive as codec frames ([`InBuffer`] with a
//! [`FrameInfo`]) and the in-band form the writer emits,
//! `ndpickle._decompress(header: bytes, frame: bytes, writable: bool)`.
//!
//! Both are decompressed here, never beyond [`ReadOptions::max_decompressed_bytes`] per buffer,
//! and every decompressed byte counts against [`ReadOptions::max_alloc_bytes`] before anything
//! is allocated. A corrupt frame is a [`DecodeErrorKind::Codec`] error, never a panic.

use bytes::Bytes;

use crate::codec::{self, FrameInfo, Scratch};
use crate::error::{DecodeErrorKind, WireError};
use crate::value::Value;

use super::call::{CallParts, arity, buffer_of, type_err};
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

/// Decompresses buffers for one read, within the options' limits.
pub(crate) struct Inflater {
    scratch: Option<Scratch>,
}

impl Inflater {
    /// An inflater; codec contexts are created on first use.
    pub(crate) fn new() -> Inflater {
        Inflater { scratch: None }
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
            Some(info) => self.inflate(&buf.data, info, opts, alloc),
        }
    }

    /// Decompresses `frame` described by `info`.
    pub(crate) fn inflate(
        &mut self,
        frame: &[u8],
        info: &FrameInfo,
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
        let out = codec::decompress_with(frame, info, max, scratch).map_err(|e| e.kind)?;
        *alloc = total;
        Ok(Bytes::from(out))
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
        let writable = match p.args.get(2) {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(Value::Int(i)) => *i != 0,
            Some(other) => return Err(type_err("a bool for writable", other)),
        };
        let (info, used) = FrameInfo::from_bytes(&header).map_err(|e| e.kind)?;
        if used != header.len() {
            return Err(DecodeErrorKind::Codec(format!(
                "frame header is {} bytes but describes {used}",
                header.len()
            )));
        }
        let data = self.inflate(&frame, &info, opts, alloc)?;
        Ok(if writable {
            Value::ByteArray(data)
        } else {
            Value::Bytes(data)
        })
    }
}
