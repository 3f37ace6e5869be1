//! [`Encoder`]: framing, memo and the primitive opcodes.
//!
//! Small opcodes collect in a frame of at most 64 KiB (protocol 4 and up write a `FRAME`
//! header before it); large payloads are written outside frames, straight from the caller's
//! memory to the destination, as CPython's own pickler does.

use std::collections::HashMap;
use std::io::Write;

use num_bigint::BigInt;

use crate::buffer::PayloadBuffer;
use crate::codec::{self, Compression, Scratch};
use crate::dtype::DType;
use crate::error::EncodeError;
use crate::opcodes::*;
use crate::write::frame::Frame;
use crate::write::options::WriteOptions;

/// How globals are written: memoised (the encoder's own pickles) or not (the inline
/// rewriter, which must not shift the memo indices of the pickle it copies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Globals {
    Memoised,
    Uncached,
}

/// Largest frame written, in bytes.
pub const FRAME_MAX: usize = 64 * 1024;
/// Payloads of at least this size are written outside frames.
pub const LARGE_PAYLOAD: usize = 64 * 1024;
/// Items per `APPENDS`/`SETITEMS`/`ADDITEMS` batch, as CPython writes them.
const BATCH: usize = 1000;

/// Receives a payload piece by piece.
pub type ChunkSink<'s> = dyn FnMut(&[u8]) -> Result<(), EncodeError> + 's;
/// Produces a payload by handing its pieces to a [`ChunkSink`].
pub type ChunkSource<'s> = dyn FnMut(&mut ChunkSink<'_>) -> Result<(), EncodeError> + 's;
/// Writes one item of a container.
pub type ItemFn<'s, E, T> = dyn FnMut(&mut E, T) -> Result<(), EncodeError> + 's;

/// A fast non-cryptographic hasher for the memo (FxHash's multiply-rotate). Memo keys come
/// from the caller's own values, not from untrusted input, so SipHash's flood resistance buys
/// nothing here while costing a quarter of the time of pickling many small arrays.
#[derive(Default, Clone, Copy)]
pub(crate) struct MemoHasher(u64);

impl std::hash::Hasher for MemoHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type MemoMap = HashMap<MemoKey, u32, std::hash::BuildHasherDefault<MemoHasher>>;

/// Where finished bytes go.
enum Sink<'w> {
    /// They stay in the [`Frame`]'s buffer, which becomes the pickle.
    Memory,
    /// They are written as each frame closes.
    Writer(&'w mut dyn Write),
}

/// What is memoised: globals and dtypes, written once and fetched with `BINGET` after.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum MemoKey {
    Global(&'static str, &'static str),
    DType(DType, bool),
    /// An array by the address of its element zero and its layout: the same array met
    /// twice is written once and fetched after, so Python sees one object (shared
    /// structure, DESIGN §3.5).
    Array {
        addr: usize,
        shape: Vec<usize>,
        strides: Vec<isize>,
        dtype: DType,
    },
    /// An object written from borrowed Rust data, by the data's address, a kind tag and a
    /// window of it: an Arrow array (or schema) met twice (a dictionary shared by chunks,
    /// a column repeated) is written once and fetched after.
    #[cfg(feature = "arrow")]
    Shared {
        addr: usize,
        tag: &'static str,
        start: usize,
        len: usize,
    },
}

impl MemoKey {
    /// Whether the key names memory by address (valid only while that memory lives).
    #[cfg(feature = "serde")]
    fn is_address(&self) -> bool {
        match self {
            MemoKey::Global(..) | MemoKey::DType(..) => false,
            MemoKey::Array { .. } => true,
            #[cfg(feature = "arrow")]
            MemoKey::Shared { .. } => true,
        }
    }
}

/// How in-band bytes should load: as `bytes` (read-only) or `bytearray` (writable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BytesKind {
    /// `bytes`: arrays over it load read-only.
    Bytes,
    /// `bytearray`: arrays over it load writable.
    ByteArray,
}

/// Writes pickle opcodes. [`crate::ToPickle`] implementations drive it.
pub struct Encoder<'a, 'w> {
    pub(crate) opts: WriteOptions,
    frame: Frame,
    sink: Sink<'w>,
    written: u64,
    buffers: Option<Vec<PayloadBuffer<'a>>>,
    memo: MemoMap,
    memo_len: u32,
    scratch: Option<Scratch>,
}

impl<'a, 'w> Encoder<'a, 'w> {
    /// An encoder collecting the pickle in memory; `out_of_band` collects array buffers
    /// separately (protocol 5 only).
    pub(crate) fn to_vec(opts: &WriteOptions, out_of_band: bool) -> Result<Self, EncodeError> {
        Self::new(opts, Sink::Memory, out_of_band)
    }

    /// An encoder streaming to `w`.
    pub(crate) fn to_writer(
        opts: &WriteOptions,
        w: &'w mut dyn Write,
    ) -> Result<Self, EncodeError> {
        Self::new(opts, Sink::Writer(w), false)
    }

    fn new(opts: &WriteOptions, sink: Sink<'w>, out_of_band: bool) -> Result<Self, EncodeError> {
        if !(2..=HIGHEST_PROTOCOL).contains(&opts.protocol) {
            return Err(EncodeError::UnsupportedProtocol(opts.protocol));
        }
        if out_of_band && opts.protocol < 5 {
            return Err(EncodeError::OutOfBandNeedsProtocol5(opts.protocol));
        }
        let mut enc = Encoder {
            opts: opts.clone(),
            frame: match sink {
                Sink::Memory => Frame::keeping(),
                Sink::Writer(_) => Frame::passing(),
            },
            sink,
            written: 0,
            buffers: out_of_band.then(Vec::new),
            memo: MemoMap::default(),
            memo_len: 0,
            scratch: None,
        };
        enc.emit(&[PROTO, opts.protocol])?;
        Ok(enc)
    }

    /// The protocol being written.
    pub fn protocol(&self) -> u8 {
        self.opts.protocol
    }

    /// The options in force.
    pub fn options(&self) -> &WriteOptions {
        &self.opts
    }

    /// Whether array buffers go out-of-band.
    pub fn out_of_band(&self) -> bool {
        self.buffers.is_some()
    }

    /// Writes `STOP`, flushes and returns the pickle (empty for a writer) and the buffers.
    pub(crate) fn finish(mut self) -> Result<(Vec<u8>, Vec<PayloadBuffer<'a>>), EncodeError> {
        self.put(&[STOP])?;
        self.commit_frame()?;
        let buffers = self.buffers.take().unwrap_or_default();
        match self.sink {
            Sink::Memory => Ok((self.frame.into_output(), buffers)),
            Sink::Writer(w) => {
                w.flush()?;
                Ok((Vec::new(), buffers))
            }
        }
    }

    /// Runs `f` on this encoder with a shorter buffer lifetime `'x`, for data borrowed only
    /// while `f` runs (the serde writer's fields). In-band, such data is written before `f`
    /// returns. Out-of-band buffers `f` pushes are detached when it returns: a slice inside
    /// one of `owners` becomes a shared slice of it, anything else borrowed is copied. Memo
    /// entries keyed by address are forgotten afterwards, as the memory may be freed and
    /// reused by other data.
    #[cfg(feature = "serde")]
    pub(crate) fn lend<'x, R>(
        &mut self,
        owners: &[bytes::Bytes],
        f: impl FnOnce(&mut Encoder<'x, 'w>) -> Result<R, EncodeError>,
    ) -> Result<R, EncodeError> {
        let mut short = Encoder {
            opts: std::mem::take(&mut self.opts),
            frame: std::mem::take(&mut self.frame),
            sink: std::mem::replace(&mut self.sink, Sink::Memory),
            written: self.written,
            buffers: self.buffers.as_ref().map(|_| Vec::new()),
            memo: std::mem::take(&mut self.memo),
            memo_len: self.memo_len,
            scratch: self.scratch.take(),
        };
        let result = f(&mut short);
        let Encoder {
            opts,
            frame,
            sink,
            written,
            buffers,
            mut memo,
            memo_len,
            scratch,
        } = short;
        memo.retain(|k, _| !k.is_address());
        (self.opts, self.frame, self.sink, self.written) = (opts, frame, sink, written);
        (self.memo, self.memo_len, self.scratch) = (memo, memo_len, scratch);
        if let (Some(mine), Some(lent)) = (&mut self.buffers, buffers) {
            mine.extend(lent.into_iter().map(|b| b.detach(owners)));
        }
        result
    }

    /// Hands bytes to the destination outside any frame (the open frame is empty: just
    /// committed, or not started).
    fn emit(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        match &mut self.sink {
            Sink::Memory => self.frame.put_outside(bytes),
            Sink::Writer(w) => w.write_all(bytes)?,
        }
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Ends the current frame: protocol 4+ writes `FRAME n` before it (when it holds at least
    /// 4 bytes, as CPython does).
    fn commit_frame(&mut self) -> Result<(), EncodeError> {
        if self.frame.is_empty() {
            return Ok(());
        }
        let framed = self.opts.protocol >= 4 && self.frame.len() >= 4;
        let closed = self.frame.close(framed);
        self.written += closed.len() as u64;
        if let Sink::Writer(w) = &mut self.sink {
            w.write_all(self.frame.bytes(closed))?;
        }
        self.frame.reopen();
        Ok(())
    }

    /// Appends small opcodes to the current frame, starting a new frame when it would
    /// exceed [`FRAME_MAX`].
    #[inline(always)]
    pub(crate) fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        if self.frame.try_put(bytes) {
            return Ok(());
        }
        self.put_slow(&[bytes])
    }

    /// Appends opcode `op` and its argument `arg` to the current frame, as [`Encoder::put`].
    ///
    /// For arguments computed from a number (`n.to_le_bytes()`): the opcode and each byte
    /// gathered into one array on the stack would be stored byte by byte and loaded back as
    /// one word, a load the CPU cannot forward from those stores (a stall of a dozen cycles,
    /// half the time of writing a small record); a byte, then a whole word, can be.
    #[inline(always)]
    pub(crate) fn put_op(&mut self, op: u8, arg: &[u8]) -> Result<(), EncodeError> {
        if self.frame.try_put_op(op, arg) {
            return Ok(());
        }
        self.put_slow(&[&[op], arg])
    }

    /// [`Encoder::put`] and [`Encoder::put_op`] past the frame buffer's end: the buffer
    /// grows, or the frame is full and the next one starts.
    #[cold]
    #[inline(never)]
    fn put_slow(&mut self, parts: &[&[u8]]) -> Result<(), EncodeError> {
        self.put_parts(parts)
    }

    /// Appends one opcode given in pieces (opcode and length, then its argument), all in one
    /// frame: an opcode never straddles a frame boundary (the unpickler reads each opcode
    /// from one frame). An opcode larger than a frame is written outside frames.
    #[inline]
    pub(crate) fn put_parts(&mut self, parts: &[&[u8]]) -> Result<(), EncodeError> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if self.frame.len() + total > FRAME_MAX {
            self.commit_frame()?;
        }
        if total > FRAME_MAX {
            for p in parts {
                self.emit(p)?;
            }
            return Ok(());
        }
        for p in parts {
            self.frame.extend(p);
        }
        Ok(())
    }

    /// Writes `header` then a large payload outside frames, aligning the payload's first
    /// byte when the options ask for it. `chunks` hands the payload in pieces.
    pub(crate) fn put_large(
        &mut self,
        header: &[u8],
        len: usize,
        chunks: &mut ChunkSource<'_>,
    ) -> Result<(), EncodeError> {
        self.commit_frame()?;
        if let Sink::Memory = self.sink {
            // Grow once to the final size instead of doubling (and copying) along the way,
            // into memory that is huge-page backed when large (see `crate::alloc`).
            self.frame.reserve_outside(header.len() + len + 128);
        }
        if let Some(align) = self.opts.align {
            // SHORT_BINBYTES n <n pad bytes> POP, sized so the payload lands on `align`.
            let after_pad = self.written + 3 + header.len() as u64;
            let pad = ((align as u64 - after_pad % align as u64) % align as u64) as usize;
            let mut padding = Vec::with_capacity(pad + 3);
            padding.push(SHORT_BINBYTES);
            padding.push(pad as u8);
            padding.resize(pad + 2, 0);
            padding.push(POP);
            self.emit(&padding)?;
        }
        self.emit(header)?;
        chunks(&mut |c| self.emit(c))
    }

    // ---- memo ----------------------------------------------------------------------

    /// Stores the top of the stack in the memo under `key`.
    pub(crate) fn memoize(&mut self, key: MemoKey) -> Result<(), EncodeError> {
        let idx = self.memo_put()?;
        self.memo.insert(key, idx);
        Ok(())
    }

    /// Stores the top of the stack in the next memo entry, whose index it returns, for a
    /// caller that keeps its own keys ([`Encoder::memo_get`] pushes it again).
    pub(crate) fn memo_put(&mut self) -> Result<u32, EncodeError> {
        let idx = self.memo_len;
        if self.opts.protocol >= 4 {
            self.put(&[MEMOIZE])?;
        } else if idx < 256 {
            self.put_op(BINPUT, &[idx as u8])?;
        } else {
            self.put_op(LONG_BINPUT, &idx.to_le_bytes())?;
        }
        self.memo_len += 1;
        Ok(idx)
    }

    /// Pushes memo entry `idx` (from [`Encoder::memo_put`]).
    #[inline]
    pub(crate) fn memo_get(&mut self, idx: u32) -> Result<(), EncodeError> {
        if idx < 256 {
            self.put_op(BINGET, &[idx as u8])
        } else {
            self.put_op(LONG_BINGET, &idx.to_le_bytes())
        }
    }

    /// Pushes a memoised object if `key` was stored; returns whether it was.
    pub(crate) fn get_memo(&mut self, key: &MemoKey) -> Result<bool, EncodeError> {
        let Some(&idx) = self.memo.get(key) else {
            return Ok(false);
        };
        self.memo_get(idx)?;
        Ok(true)
    }

    // ---- primitives ----------------------------------------------------------------

    /// `None`.
    #[inline]
    pub fn none(&mut self) -> Result<(), EncodeError> {
        self.put(&[NONE])
    }

    /// `True` / `False`.
    #[inline]
    pub fn bool(&mut self, b: bool) -> Result<(), EncodeError> {
        self.put(&[if b { NEWTRUE } else { NEWFALSE }])
    }

    /// An `int` in the shortest encoding.
    #[inline(always)]
    pub fn int(&mut self, v: i64) -> Result<(), EncodeError> {
        if (0..=0xff).contains(&v) {
            self.put_op(BININT1, &[v as u8])
        } else if (0..=0xffff).contains(&v) {
            self.put_op(BININT2, &(v as u16).to_le_bytes())
        } else if let Ok(v32) = i32::try_from(v) {
            self.put_op(BININT, &v32.to_le_bytes())
        } else {
            self.long_int(v)
        }
    }

    /// [`Encoder::int`] beyond 32 bits, out of line.
    #[inline(never)]
    fn long_int(&mut self, v: i64) -> Result<(), EncodeError> {
        self.long_bytes(&i128::from(v).to_le_bytes())
    }

    /// An `int` from a 128-bit value.
    #[inline]
    pub fn int128(&mut self, v: i128) -> Result<(), EncodeError> {
        match i64::try_from(v) {
            Ok(small) => self.int(small),
            Err(_) => self.long_bytes(&v.to_le_bytes()),
        }
    }

    /// An `int` from an unsigned 128-bit value.
    #[inline]
    pub fn uint128(&mut self, v: u128) -> Result<(), EncodeError> {
        match i128::try_from(v) {
            Ok(small) => self.int128(small),
            Err(_) => {
                let mut b = v.to_le_bytes().to_vec();
                b.push(0); // sign byte: positive
                self.long_bytes(&b)
            }
        }
    }

    /// An `int` of any size.
    pub fn bigint(&mut self, v: &BigInt) -> Result<(), EncodeError> {
        match i64::try_from(v) {
            Ok(small) => self.int(small),
            Err(_) => self.long_bytes(&v.to_signed_bytes_le()),
        }
    }

    /// `LONG1`/`LONG4` with the minimal two's-complement little-endian bytes of `le`.
    fn long_bytes(&mut self, le: &[u8]) -> Result<(), EncodeError> {
        let mut n = le.len();
        // Trim redundant sign-extension bytes.
        while n > 1 {
            let top = le[n - 1];
            let next_sign = le[n - 2] & 0x80;
            if (top == 0 && next_sign == 0) || (top == 0xff && next_sign != 0) {
                n -= 1;
            } else {
                break;
            }
        }
        let body = &le[..n];
        if n < 256 {
            self.put_parts(&[&[LONG1, n as u8], body])
        } else {
            let len =
                u32::try_from(n).map_err(|_| crate::WireError::Overflow { what: "int size" })?;
            let mut head = vec![LONG4];
            head.extend_from_slice(&len.to_le_bytes());
            self.put_parts(&[&head, body])
        }
    }

    /// A `float`.
    #[inline]
    pub fn float(&mut self, v: f64) -> Result<(), EncodeError> {
        self.put_op(BINFLOAT, &v.to_be_bytes())
    }

    /// A `complex`, as `builtins.complex(re, im)`.
    pub fn complex(&mut self, re: f64, im: f64) -> Result<(), EncodeError> {
        self.global("builtins", "complex")?;
        self.float(re)?;
        self.float(im)?;
        self.put(&[TUPLE2, REDUCE])
    }

    /// A `str`.
    #[inline]
    pub fn str(&mut self, s: &str) -> Result<(), EncodeError> {
        let n = s.len();
        if n < 256 && self.opts.protocol >= 4 {
            // The common case, written out: `put_parts`' general loop costs three times
            // as much for the short keys and names serde writes by the hundred thousand.
            if self.frame.try_put_short(SHORT_BINUNICODE, s.as_bytes()) {
                return Ok(());
            }
            return self.put_slow(&[&[SHORT_BINUNICODE, n as u8], s.as_bytes()]);
        }
        self.long_str(s)
    }

    /// A `str` of 256 bytes or more (or any at protocols 2 and 3), kept out of line so that
    /// [`Encoder::str`]'s common case stays small enough to inline.
    #[cold]
    #[inline(never)]
    fn long_str(&mut self, s: &str) -> Result<(), EncodeError> {
        let n = s.len();
        let head = if let Ok(n32) = u32::try_from(n) {
            let mut h = vec![BINUNICODE];
            h.extend_from_slice(&n32.to_le_bytes());
            h
        } else if self.opts.protocol >= 4 {
            let mut h = vec![BINUNICODE8];
            h.extend_from_slice(&(n as u64).to_le_bytes());
            h
        } else {
            return Err(EncodeError::NeedsProtocol {
                what: "a str over 4 GiB",
                min: 4,
                protocol: self.opts.protocol,
            });
        };
        if n >= LARGE_PAYLOAD {
            self.put_large(&head, n, &mut |sink| sink(s.as_bytes()))
        } else {
            self.put_parts(&[&head, s.as_bytes()])
        }
    }

    /// A `bytes` object (protocol 2 writes `_codecs.encode(latin-1 text, 'latin1')`).
    pub fn bytes(&mut self, data: &[u8]) -> Result<(), EncodeError> {
        self.payload(BytesKind::Bytes, data.len(), &mut |sink| sink(data))
    }

    /// A `bytearray` object.
    pub fn bytearray(&mut self, data: &[u8]) -> Result<(), EncodeError> {
        self.payload(BytesKind::ByteArray, data.len(), &mut |sink| sink(data))
    }

    /// An in-band payload of `len` bytes handed in chunks, loading as `kind`.
    pub(crate) fn payload(
        &mut self,
        kind: BytesKind,
        len: usize,
        chunks: &mut ChunkSource<'_>,
    ) -> Result<(), EncodeError> {
        let proto = self.opts.protocol;
        if proto == 2 {
            return self.latin1_payload(kind, len, chunks);
        }
        let wrap = kind == BytesKind::ByteArray && proto < 5;
        if wrap {
            self.global("builtins", "bytearray")?;
        }
        let head: Vec<u8> = if kind == BytesKind::ByteArray && proto >= 5 {
            let mut h = vec![BYTEARRAY8];
            h.extend_from_slice(&(len as u64).to_le_bytes());
            h
        } else if len < 256 {
            vec![SHORT_BINBYTES, len as u8]
        } else if let Ok(n32) = u32::try_from(len) {
            let mut h = vec![BINBYTES];
            h.extend_from_slice(&n32.to_le_bytes());
            h
        } else if proto >= 4 {
            let mut h = vec![BINBYTES8];
            h.extend_from_slice(&(len as u64).to_le_bytes());
            h
        } else {
            return Err(EncodeError::NeedsProtocol {
                what: "bytes over 4 GiB",
                min: 4,
                protocol: proto,
            });
        };
        let whole = head.len() + len;
        if len >= LARGE_PAYLOAD || whole > FRAME_MAX || (self.opts.align.is_some() && len > 0) {
            self.put_large(&head, len, chunks)?;
        } else {
            // Header and data in one frame (an opcode never straddles a frame boundary),
            // copied once, straight into the frame.
            if self.frame.len() + whole > FRAME_MAX {
                self.commit_frame()?;
            }
            self.frame.extend(&head);
            let frame = &mut self.frame;
            chunks(&mut |c| {
                frame.extend(c);
                Ok(())
            })?;
        }
        if wrap {
            self.put(&[TUPLE1, REDUCE])?;
        }
        Ok(())
    }

    /// Protocol 2 has no bytes opcode: `_codecs.encode(text, 'latin1')` for bytes and
    /// `builtins.bytearray(text, 'latin-1')` for bytearray, where `text` is the payload
    /// decoded as latin-1 and stored as UTF-8 (bytes ≥ 0x80 take two).
    fn latin1_payload(
        &mut self,
        kind: BytesKind,
        len: usize,
        chunks: &mut ChunkSource<'_>,
    ) -> Result<(), EncodeError> {
        match kind {
            BytesKind::Bytes => self.global("_codecs", "encode")?,
            BytesKind::ByteArray => self.global("builtins", "bytearray")?,
        }
        // First pass: the UTF-8 length.
        let mut utf8_len: u64 = 0;
        chunks(&mut |c| {
            utf8_len += c.len() as u64 + c.iter().filter(|&&b| b >= 0x80).count() as u64;
            Ok(())
        })?;
        let n32 = u32::try_from(utf8_len).map_err(|_| EncodeError::NeedsProtocol {
            what: "bytes over 4 GiB of latin-1 text",
            min: 3,
            protocol: 2,
        })?;
        let mut head = vec![BINUNICODE];
        head.extend_from_slice(&n32.to_le_bytes());
        let convert = |c: &[u8], out: &mut Vec<u8>| {
            for &b in c {
                if b < 0x80 {
                    out.push(b);
                } else {
                    out.push(0xc0 | (b >> 6));
                    out.push(0x80 | (b & 0x3f));
                }
            }
        };
        if len >= LARGE_PAYLOAD {
            let mut buf = Vec::with_capacity(64 * 1024);
            self.put_large(&head, utf8_len as usize, &mut |sink| {
                chunks(&mut |c| {
                    for piece in c.chunks(32 * 1024) {
                        buf.clear();
                        convert(piece, &mut buf);
                        sink(&buf)?;
                    }
                    Ok(())
                })
            })?;
        } else {
            let mut body = head;
            chunks(&mut |c| {
                convert(c, &mut body);
                Ok(())
            })?;
            self.put(&body)?;
        }
        match kind {
            BytesKind::Bytes => self.str("latin1")?,
            BytesKind::ByteArray => self.str("latin-1")?,
        }
        self.put(&[TUPLE2, REDUCE])
    }

    /// Writes the data of one array: compressed when the options ask and it pays off, then
    /// out-of-band when the encoder collects buffers, else in-band as `kind`.
    pub(crate) fn array_data(
        &mut self,
        buf: PayloadBuffer<'a>,
        kind: BytesKind,
        itemsize: usize,
    ) -> Result<(), EncodeError> {
        if !matches!(self.opts.compression, Compression::Off) {
            let settings = self.opts.compression.with_elem_size(itemsize.max(1));
            let mut scratch = self
                .scratch
                .take()
                .unwrap_or_else(|| Scratch::with_options(self.opts.codec_options));
            let done = if self.out_of_band() {
                match codec::compress_if_smaller(&buf, &settings, &mut scratch) {
                    Ok(Some((info, frame))) => {
                        let readonly = buf.is_readonly();
                        self.scratch = Some(scratch);
                        return self.next_buffer(PayloadBuffer::compressed(frame, info, readonly));
                    }
                    Ok(None) => Ok(false),
                    Err(e) => Err(e),
                }
            } else {
                // In-band: one frame, or chunk by chunk for a large buffer (one compressed
                // chunk alive at a time), see `chunked`.
                let chunk = self.opts.compress_chunk;
                self.compressed_in_band(
                    &buf,
                    &settings,
                    &mut scratch,
                    chunk,
                    kind,
                    Globals::Memoised,
                )
            };
            self.scratch = Some(scratch);
            if done? {
                return Ok(());
            }
        }
        if self.out_of_band() {
            return self.next_buffer(buf);
        }
        let data: &[u8] = &buf;
        self.payload(kind, data.len(), &mut |sink| sink(data))
    }

    /// Sends a buffer out-of-band: `NEXT_BUFFER` (and `READONLY_BUFFER`).
    pub(crate) fn next_buffer(&mut self, buf: PayloadBuffer<'a>) -> Result<(), EncodeError> {
        let readonly = buf.is_readonly();
        match &mut self.buffers {
            Some(list) => list.push(buf),
            None => return Err(EncodeError::OutOfBandNeedsProtocol5(self.opts.protocol)),
        }
        if readonly {
            self.put(&[NEXT_BUFFER, READONLY_BUFFER])
        } else {
            self.put(&[NEXT_BUFFER])
        }
    }

    /// A global (class or function), memoised. Dotted names need protocol 4.
    pub fn global(&mut self, module: &'static str, name: &'static str) -> Result<(), EncodeError> {
        let key = MemoKey::Global(module, name);
        if self.get_memo(&key)? {
            return Ok(());
        }
        self.global_uncached(module, name)?;
        self.memoize(key)
    }

    /// A global named at run time (not memoised).
    pub fn global_uncached(&mut self, module: &str, name: &str) -> Result<(), EncodeError> {
        if self.opts.protocol >= 4 {
            self.str(module)?;
            self.str(name)?;
            self.put(&[STACK_GLOBAL])
        } else {
            if name.contains('.') {
                return Err(EncodeError::NeedsProtocol {
                    what: "a dotted global name",
                    min: 4,
                    protocol: self.opts.protocol,
                });
            }
            if module.contains('\n') || name.contains('\n') {
                return Err(EncodeError::InvalidOption(format!(
                    "global name {module:?}.{name:?} contains a newline"
                )));
            }
            self.put_parts(&[&[GLOBAL], module.as_bytes(), b"\n", name.as_bytes(), b"\n"])
        }
    }

    /// `MARK`.
    #[inline]
    pub fn mark(&mut self) -> Result<(), EncodeError> {
        self.put(&[MARK])
    }

    /// Builds a tuple from the last `n` items pushed (`n` > 3 needs a `MARK` before them).
    #[inline]
    pub fn tuple(&mut self, n: usize) -> Result<(), EncodeError> {
        self.put(&[match n {
            0 => EMPTY_TUPLE,
            1 => TUPLE1,
            2 => TUPLE2,
            3 => TUPLE3,
            _ => TUPLE,
        }])
    }

    /// Opens a tuple of `n` items: emits `MARK` when `n` > 3. Close with [`Encoder::tuple`].
    #[inline]
    pub fn tuple_start(&mut self, n: usize) -> Result<(), EncodeError> {
        if n > 3 { self.mark() } else { Ok(()) }
    }

    /// `REDUCE`: calls the callable below the argument tuple.
    pub fn reduce(&mut self) -> Result<(), EncodeError> {
        self.put(&[REDUCE])
    }

    /// `BUILD`: applies the state on top to the object below it.
    pub fn build(&mut self) -> Result<(), EncodeError> {
        self.put(&[BUILD])
    }

    /// A list of items written by `item`, in `APPENDS` batches.
    pub fn list<I>(
        &mut self,
        items: I,
        item: &mut ItemFn<'_, Self, I::Item>,
    ) -> Result<(), EncodeError>
    where
        I: IntoIterator,
    {
        self.put(&[EMPTY_LIST])?;
        self.batched(items, APPENDS, item)
    }

    /// A dict of pairs written by `pair` (key then value), in `SETITEMS` batches.
    pub fn dict<I>(
        &mut self,
        items: I,
        pair: &mut ItemFn<'_, Self, I::Item>,
    ) -> Result<(), EncodeError>
    where
        I: IntoIterator,
    {
        self.put(&[EMPTY_DICT])?;
        self.batched(items, SETITEMS, pair)
    }

    /// A set (protocol 4+: `EMPTY_SET`/`ADDITEMS`; below: `builtins.set([...])`).
    pub fn set<I>(
        &mut self,
        items: I,
        item: &mut ItemFn<'_, Self, I::Item>,
    ) -> Result<(), EncodeError>
    where
        I: IntoIterator,
    {
        if self.opts.protocol >= 4 {
            self.put(&[EMPTY_SET])?;
            self.batched(items, ADDITEMS, item)
        } else {
            self.global("builtins", "set")?;
            self.list(items, item)?;
            self.put(&[TUPLE1, REDUCE])
        }
    }

    /// A frozenset (protocol 4+: `FROZENSET`; below: `builtins.frozenset([...])`).
    pub fn frozenset<I>(
        &mut self,
        items: I,
        item: &mut ItemFn<'_, Self, I::Item>,
    ) -> Result<(), EncodeError>
    where
        I: IntoIterator,
    {
        if self.opts.protocol >= 4 {
            self.mark()?;
            for x in items {
                item(self, x)?;
            }
            self.put(&[FROZENSET])
        } else {
            self.global("builtins", "frozenset")?;
            self.list(items, item)?;
            self.put(&[TUPLE1, REDUCE])
        }
    }

    fn batched<I: IntoIterator>(
        &mut self,
        items: I,
        op: u8,
        item: &mut ItemFn<'_, Self, I::Item>,
    ) -> Result<(), EncodeError> {
        let mut it = items.into_iter().peekable();
        while it.peek().is_some() {
            self.mark()?;
            for x in it.by_ref().take(BATCH) {
                item(self, x)?;
            }
            self.put(&[op])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(
        protocol: u8,
        f: impl FnOnce(&mut Encoder<'_, '_>) -> Result<(), EncodeError>,
    ) -> Vec<u8> {
        let opts = WriteOptions::builder().protocol(protocol).build().unwrap();
        let mut enc = Encoder::to_vec(&opts, false).unwrap();
        f(&mut enc).unwrap();
        enc.finish().unwrap().0
    }

    /// Body of a short protocol-2 pickle: between `PROTO 2` and `STOP`.
    fn body2(f: impl FnOnce(&mut Encoder<'_, '_>) -> Result<(), EncodeError>) -> Vec<u8> {
        let v = encode(2, f);
        assert_eq!(&v[..2], &[PROTO, 2]);
        assert_eq!(*v.last().unwrap(), STOP);
        v[2..v.len() - 1].to_vec()
    }

    #[test]
    fn ints_match_cpython() {
        // Bytes from pickle.dumps(x, protocol=2).
        assert_eq!(body2(|e| e.int(0)), b"K\x00");
        assert_eq!(body2(|e| e.int(255)), b"K\xff");
        assert_eq!(body2(|e| e.int(256)), b"M\x00\x01");
        assert_eq!(body2(|e| e.int(65536)), b"J\x00\x00\x01\x00");
        assert_eq!(body2(|e| e.int(-1)), b"J\xff\xff\xff\xff");
        assert_eq!(body2(|e| e.int(1 << 31)), b"\x8a\x05\x00\x00\x00\x80\x00");
        assert_eq!(
            body2(|e| e.int(-(1 << 31) - 1)),
            b"\x8a\x05\xff\xff\xff\x7f\xff"
        );
        assert_eq!(
            body2(|e| e.int(i64::MIN)),
            b"\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80"
        );
        assert_eq!(body2(|e| e.uint128(u128::MAX)), {
            let mut v = vec![0x8a, 17];
            v.extend_from_slice(&[0xff; 16]);
            v.push(0);
            v
        });
        assert_eq!(body2(|e| e.int128(-(1i128 << 100))), {
            let mut v = vec![0x8a, 13];
            v.extend_from_slice(&(-(1i128 << 100)).to_le_bytes()[..13]);
            v
        });
    }

    #[test]
    fn scalars_match_cpython() {
        assert_eq!(body2(|e| e.none()), b"N");
        assert_eq!(body2(|e| e.bool(true)), b"\x88");
        assert_eq!(body2(|e| e.bool(false)), b"\x89");
        assert_eq!(body2(|e| e.float(1.5)), b"G?\xf8\x00\x00\x00\x00\x00\x00");
        assert_eq!(body2(|e| e.str("h\u{e9}")), b"X\x03\x00\x00\x00h\xc3\xa9");
        // protocol 2 bytes: _codecs.encode('\xff', 'latin1')
        assert_eq!(
            body2(|e| e.bytes(b"\xff")),
            b"c_codecs\nencode\nq\x00X\x02\x00\x00\x00\xc3\xbfX\x06\x00\x00\x00latin1\x86R"
        );
    }

    #[test]
    fn protocol_5_bytes_and_frames() {
        // pickle.dumps(b'ab', protocol=5) == b'\x80\x05\x95\x06\x00\x00\x00\x00\x00\x00\x00C\x02ab\x94.'
        // (CPython memoises; we do not memoise plain bytes.)
        let v = encode(5, |e| e.bytes(b"ab"));
        assert_eq!(v, b"\x80\x05\x95\x05\x00\x00\x00\x00\x00\x00\x00C\x02ab.");
        let v = encode(5, |e| e.bytearray(b"ab"));
        assert_eq!(
            v,
            b"\x80\x05\x95\x0c\x00\x00\x00\x00\x00\x00\x00\x96\x02\x00\x00\x00\x00\x00\x00\x00ab."
        );
        // Frames below 4 bytes are not framed.
        assert_eq!(encode(4, |e| e.none()), b"\x80\x04N.");
        // protocol 3: bytearray(b'ab')
        let v = encode(3, |e| e.bytearray(b"ab"));
        assert_eq!(v, b"\x80\x03cbuiltins\nbytearray\nq\x00C\x02ab\x85R.");
    }

    #[test]
    fn large_payload_is_unframed_and_frames_stay_small() {
        let big = vec![7u8; 200_000];
        let v = encode(5, |e| e.bytes(&big));
        // PROTO, then BINBYTES header straight away (no frame around it).
        assert_eq!(v[2], BINBYTES);
        assert_eq!(&v[3..7], &200_000u32.to_le_bytes());
        // The buffer grew once for the payload; the opcodes after it (and a few before)
        // fit in its slack instead of doubling it.
        let v = encode(5, |e| {
            e.int(1)?;
            e.bytes(&big)?;
            e.int(2)?;
            e.tuple(3)
        });
        // PROTO, BININT1 (too small to frame), BINBYTES, then a frame of BININT1 TUPLE3 STOP.
        assert_eq!(v.len(), 2 + 2 + 5 + big.len() + 9 + 2 + 1 + 1);
        assert!(v.capacity() < v.len() + 4096, "capacity {}", v.capacity());
        // Many small items: every frame at most 64 KiB.
        let items: Vec<i64> = (0..100_000).collect();
        let v = encode(5, |e| e.list(items.iter(), &mut |e, &x| e.int(x)));
        let mut pos = 2;
        let mut frames = 0;
        while pos < v.len() && v[pos] == FRAME {
            let len = u64::from_le_bytes(v[pos + 1..pos + 9].try_into().unwrap()) as usize;
            assert!(len <= FRAME_MAX);
            pos += 9 + len;
            frames += 1;
        }
        assert_eq!(pos, v.len());
        assert!(frames > 1);
    }

    #[test]
    fn containers_match_cpython() {
        use crate::ToPickle;
        fn both<T: ToPickle>(v: &T, p2: &[u8], p4: &[u8]) {
            let o2 = WriteOptions::builder().protocol(2).build().unwrap();
            assert_eq!(crate::to_vec_with(v, &o2).unwrap(), p2);
            let o4 = WriteOptions::builder().protocol(4).build().unwrap();
            assert_eq!(crate::to_vec_with(v, &o4).unwrap(), p4);
        }
        // Expected bytes: pickletools.optimize(pickle.dumps(x, protocol)) from CPython 3.11.
        both(&(), b"\x80\x02N.", b"\x80\x04N.");
        both(
            &(1i32,),
            b"\x80\x02K\x01\x85.",
            b"\x80\x04\x95\x04\x00\x00\x00\x00\x00\x00\x00K\x01\x85.",
        );
        both(
            &(1i32, 2i32),
            b"\x80\x02K\x01K\x02\x86.",
            b"\x80\x04\x95\x06\x00\x00\x00\x00\x00\x00\x00K\x01K\x02\x86.",
        );
        both(
            &(1i32, 2i32, 3i32, 4i32),
            b"\x80\x02(K\x01K\x02K\x03K\x04t.",
            b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00(K\x01K\x02K\x03K\x04t.",
        );
        both(
            &vec![1i32, 2],
            b"\x80\x02](K\x01K\x02e.",
            b"\x80\x04\x95\x08\x00\x00\x00\x00\x00\x00\x00](K\x01K\x02e.",
        );
        let mut m = std::collections::BTreeMap::new();
        m.insert("a", 1i32);
        both(
            &m,
            b"\x80\x02}(X\x01\x00\x00\x00aK\x01u.",
            b"\x80\x04\x95\x09\x00\x00\x00\x00\x00\x00\x00}(\x8c\x01aK\x01u.",
        );
        let o4 = WriteOptions::builder().protocol(4).build().unwrap();
        let set: std::collections::BTreeSet<i32> = [1, 2].into();
        assert_eq!(
            crate::to_vec_with(&set, &o4).unwrap(),
            b"\x80\x04\x95\x08\x00\x00\x00\x00\x00\x00\x00\x8f(K\x01K\x02\x90."
        );
        let frozen = crate::Value::FrozenSet(vec![crate::Value::Int(3)]);
        assert_eq!(
            crate::to_vec_with(&frozen, &o4).unwrap(),
            b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00(K\x03\x91."
        );
        // 2**100 as LONG1.
        assert_eq!(
            body2(|e| e.int128(1i128 << 100)),
            b"\x8a\x0d\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10"
        );
        // -2**2000 as LONG1 with 251 bytes; one more byte of magnitude needs LONG4.
        let big = -(num_bigint::BigInt::from(1) << 2000usize);
        let v = body2(|e| e.bigint(&big));
        assert_eq!(&v[..2], b"\x8a\xfb");
        assert_eq!(v.len(), 2 + 251);
        let bigger = num_bigint::BigInt::from(1) << 2100usize;
        let v = body2(|e| e.bigint(&bigger));
        assert_eq!(v[0], LONG4);
        assert_eq!(&v[1..5], &263u32.to_le_bytes());
    }

    #[test]
    fn buffers_and_memo_indexes() {
        let opts = WriteOptions::default();
        let mut enc = Encoder::to_vec(&opts, true).unwrap();
        enc.next_buffer(PayloadBuffer::borrowed(b"abc", true))
            .unwrap();
        enc.next_buffer(PayloadBuffer::borrowed(b"de", false))
            .unwrap();
        let (v, bufs) = enc.finish().unwrap();
        assert_eq!(
            v,
            b"\x80\x05\x95\x04\x00\x00\x00\x00\x00\x00\x00\x97\x98\x97."
        );
        assert_eq!(bufs.len(), 2);
        // Protocol 3: past 256 memo entries, LONG_BINPUT / LONG_BINGET.
        let v = encode(3, |e| {
            for i in 0..300 {
                e.global_uncached("m", "x")?;
                e.memoize(MemoKey::DType(crate::DType::Void(i), false))?;
                e.put(&[POP])?;
            }
            e.get_memo(&MemoKey::DType(crate::DType::Void(299), false))
                .map(|_| ())
        });
        assert!(v.windows(5).any(|w| w == [LONG_BINPUT, 0x2b, 0x01, 0, 0]));
        assert!(v.ends_with(&[LONG_BINGET, 0x2b, 0x01, 0, 0, STOP]));
    }

    #[test]
    fn opcodes_never_straddle_frames() {
        // Fill most of a frame, then payloads that would not fit in what is left.
        let filler = vec![1u8; 250];
        let v = encode(5, |e| {
            for _ in 0..259 {
                e.bytes(&filler)?;
            }
            e.bytes(&[2u8; 1000])?;
            e.bytearray(&[3u8; 65_530])
        });
        let mut pos = 2;
        let mut frames = 0;
        while pos < v.len() {
            if v[pos] == FRAME {
                let len = u64::from_le_bytes(v[pos + 1..pos + 9].try_into().unwrap()) as usize;
                let body = &v[pos + 9..pos + 9 + len];
                let mut at = 0;
                while at < body.len() {
                    at += crate::opcodes::op_len(body, at).expect("whole opcode in frame");
                }
                assert_eq!(at, body.len(), "an opcode runs past its frame");
                pos += 9 + len;
                frames += 1;
            } else {
                pos += crate::opcodes::op_len(&v, pos).expect("unframed opcode");
            }
        }
        assert!(frames >= 2);
    }

    #[test]
    fn strings_ints_and_globals_never_straddle_frames() {
        // Frames filled to every remainder, then opcodes with arguments written in pieces.
        for fill in 0..40usize {
            for protocol in [3u8, 4, 5] {
                let v = encode(protocol, |e| {
                    for _ in 0..(FRAME_MAX - fill) / 2 {
                        e.none()?;
                        e.put(&[POP])?;
                    }
                    e.global_uncached("builtins", "set")?;
                    e.put(&[POP])?;
                    e.int128(i128::MIN)?;
                    e.put(&[POP])?;
                    e.bigint(&(num_bigint::BigInt::from(1) << 3000usize))?;
                    e.put(&[POP])?;
                    e.str(&"x".repeat(300))?;
                    e.put(&[POP])?;
                    e.str("a string of some thirty bytes..")
                });
                let value = crate::from_slice(&v).unwrap();
                assert_eq!(value.as_str(), Some("a string of some thirty bytes.."));
                let mut pos = 2;
                while pos < v.len() {
                    if v[pos] == FRAME {
                        let len =
                            u64::from_le_bytes(v[pos + 1..pos + 9].try_into().unwrap()) as usize;
                        let body = &v[pos + 9..pos + 9 + len];
                        let mut at = 0;
                        while at < body.len() {
                            at += crate::opcodes::op_len(body, at).expect("whole opcode");
                        }
                        assert_eq!(at, body.len(), "an opcode runs past its frame");
                        pos += 9 + len;
                    } else {
                        pos += crate::opcodes::op_len(&v, pos).expect("unframed opcode");
                    }
                }
            }
        }
    }

    #[test]
    fn alignment_padding() {
        let opts = WriteOptions::builder().align(Some(64)).build().unwrap();
        let mut enc = Encoder::to_vec(&opts, false).unwrap();
        enc.str("x").unwrap();
        enc.bytes(&[1u8; 100]).unwrap();
        let (v, _) = enc.finish().unwrap();
        let at = v.windows(100).position(|w| w == [1u8; 100]).unwrap();
        assert_eq!(at % 64, 0);
    }

    #[test]
    fn memo_reuses_globals() {
        let v = encode(2, |e| {
            e.global("numpy", "ndarray")?;
            e.global("numpy", "ndarray")
        });
        assert_eq!(v, b"\x80\x02cnumpy\nndarray\nq\x00h\x00.");
        let v = encode(4, |e| {
            e.global("numpy", "ndarray")?;
            e.global("numpy", "ndarray")
        });
        assert_eq!(v, b"\x80\x04\x95\x15\x00\x00\x00\x00\x00\x00\x00\x8c\x05numpy\x8c\x07ndarray\x93\x94h\x00.");
    }

    #[test]
    fn errors() {
        let opts = WriteOptions::builder().protocol(4).build().unwrap();
        assert!(matches!(
            Encoder::to_vec(&opts, true),
            Err(EncodeError::OutOfBandNeedsProtocol5(4))
        ));
        let opts = WriteOptions::builder().protocol(3).build().unwrap();
        let mut enc = Encoder::to_vec(&opts, false).unwrap();
        assert!(matches!(
            enc.global_uncached("pyarrow", "Array.from_buffers"),
            Err(EncodeError::NeedsProtocol { min: 4, .. })
        ));
    }
}
