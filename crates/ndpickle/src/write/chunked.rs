//! In-band compressed data, written as a stream.
//!
//! A buffer of at most one chunk ([`COMPRESS_CHUNK`] raw bytes by default, see
//! [`crate::WriteOptionsBuilder::compress_chunk`]) is one frame:
//!
//! ```text
//! ndpickle._decompress(header, frame, writable)
//! ```
//!
//! A larger buffer is cut into `k` chunks of that many raw bytes (the last may be shorter),
//! each compressed on its own into a frame with its own [`FrameInfo`] header, and written as
//! nested calls built inside-out:
//!
//! ```text
//! _decompress_into(                                   # call k (the last)
//!   _decompress_into(                                 # call k-1
//!     ... _decompress_into(_decompress_target(raw_len), 0, h1, f1) ...,
//!     off_{k-1}, h_{k-1}, f_{k-1}),
//!   off_k, h_k, f_k, writable)
//! ```
//!
//! `_decompress_target(n)` allocates the output (`bytearray(n)`); each
//! `_decompress_into(out, offset, header, frame)` decompresses one frame into
//! `out[offset:offset + raw_len]` and returns `out`; the last call (the only one with a
//! `writable` argument) checks that the chunks tiled the buffer and returns it (a read-only
//! view when `writable` is false). On the wire the `k` globals (`GLOBAL ndpickle
//! _decompress_into` then `MARK`, `k` times) come first, then the target call, then per chunk
//! `offset header frame [writable] TUPLE REDUCE`: an unpickler holds one compressed frame at a
//! time (each `REDUCE` consumes its frame), and the writer compresses one chunk at a time,
//! so neither side ever holds the whole compressed buffer. Nothing is memoised by the inline
//! rewriter, so the memo indices of a pickle it copies do not shift.
//!
//! A chunk that does not shrink is stored as is (codec none). Whether a buffer is compressed
//! at all is decided on its first chunk: if that chunk does not shrink, the whole buffer is
//! written raw (a plain `BYTEARRAY8`/`BINBYTES8`, loadable without ndpickle).

use crate::codec::{Compression, FrameInfo, Scratch, compress_if_smaller as compress_chunk, names};
use crate::error::EncodeError;
use crate::opcodes::*;
use crate::write::encoder::{BytesKind, Encoder, Globals};

impl Encoder<'_, '_> {
    /// Writes `data` compressed with `settings` (element size filled in) as the in-band
    /// forms of the module docs, and returns `true`; or writes nothing and returns `false`
    /// when the data (its first chunk, for a chunked buffer) does not shrink: the caller
    /// then writes it raw. `chunk` is the raw chunk size (rounded down to a multiple of the
    /// shuffle's element size); `kind` says whether the result loads writable.
    pub(crate) fn compressed_in_band(
        &mut self,
        data: &[u8],
        settings: &Compression,
        scratch: &mut Scratch,
        chunk: usize,
        kind: BytesKind,
        globals: Globals,
    ) -> Result<bool, EncodeError> {
        let elem = match settings {
            Compression::Fixed(_, f) => f.elem_size(),
            Compression::Auto(p) => p.filter().elem_size(),
            Compression::Off => return Ok(false),
        }
        .max(1);
        let chunk = (chunk.max(1) / elem * elem).max(elem);
        if data.len() <= chunk {
            let Some((info, frame)) = compress_chunk(data, settings, scratch)? else {
                return Ok(false);
            };
            return self
                .decompress_call(&info, &frame, kind, globals)
                .map(|()| true);
        }
        let mut pieces = data.chunks(chunk);
        let Some(first) = pieces.next() else {
            return Ok(false);
        };
        let Some(first) = compress_chunk(first, settings, scratch)? else {
            return Ok(false);
        };
        let k = data.len().div_ceil(chunk);
        for _ in 0..k {
            self.decompress_global(globals, names::DECOMPRESS_INTO)?;
            self.mark()?;
        }
        self.decompress_global(globals, names::DECOMPRESS_TARGET)?;
        self.uint(data.len() as u64)?;
        self.tuple(1)?;
        self.reduce()?;
        let mut compressed = Some(first);
        for (i, raw) in data.chunks(chunk).enumerate() {
            let c = match compressed.take() {
                Some(c) => Some(c),
                None => compress_chunk(raw, settings, scratch)?,
            };
            self.uint((i * chunk) as u64)?;
            match c {
                Some((info, frame)) => {
                    self.small_bytes(&info.to_bytes())?;
                    self.frame_payload(&frame)?;
                    // `frame` is dropped here: one compressed chunk alive at a time.
                }
                None => {
                    self.small_bytes(&FrameInfo::raw(raw.len() as u64).to_bytes())?;
                    self.frame_payload(raw)?;
                }
            }
            if i + 1 == k {
                self.bool(kind == BytesKind::ByteArray)?;
            }
            self.put(&[TUPLE])?;
            self.reduce()?;
        }
        Ok(true)
    }

    /// `ndpickle._decompress(header, frame, writable)`: one compressed frame, loading as
    /// `kind`.
    pub(crate) fn decompress_call(
        &mut self,
        info: &FrameInfo,
        frame: &[u8],
        kind: BytesKind,
        globals: Globals,
    ) -> Result<(), EncodeError> {
        self.decompress_global(globals, names::DECOMPRESS)?;
        self.small_bytes(&info.to_bytes())?;
        self.frame_payload(frame)?;
        self.bool(kind == BytesKind::ByteArray)?;
        self.tuple(3)?;
        self.reduce()
    }

    fn decompress_global(
        &mut self,
        globals: Globals,
        name: &'static str,
    ) -> Result<(), EncodeError> {
        match globals {
            Globals::Memoised => self.global(names::MODULE, name),
            Globals::Uncached => self.global_uncached(names::MODULE, name),
        }
    }

    /// A non-negative `int` (offsets and lengths).
    fn uint(&mut self, v: u64) -> Result<(), EncodeError> {
        match i64::try_from(v) {
            Ok(v) => self.int(v),
            Err(_) => self.uint128(u128::from(v)),
        }
    }

    /// A short `bytes` object (a frame header) inside the current frame.
    fn small_bytes(&mut self, data: &[u8]) -> Result<(), EncodeError> {
        // One `put`: an opcode and its argument never straddle a frame boundary.
        let mut op = Vec::with_capacity(data.len() + 5);
        match u8::try_from(data.len()) {
            Ok(n) => op.extend_from_slice(&[SHORT_BINBYTES, n]),
            Err(_) => {
                let n = u32::try_from(data.len()).map_err(|_| {
                    EncodeError::Codec(format!("frame header of {} bytes", data.len()))
                })?;
                op.push(BINBYTES);
                op.extend_from_slice(&n.to_le_bytes());
            }
        }
        op.extend_from_slice(data);
        self.put(&op)
    }

    /// A compressed frame as `bytes` (large ones outside frames, aligned when asked).
    fn frame_payload(&mut self, frame: &[u8]) -> Result<(), EncodeError> {
        self.bytes(frame)
    }
}
