//! Dataset files (DESIGN §5): standard protocol-5 pickles whose large payloads start at
//! 64-byte aligned offsets, so that `pickle.load` opens them anywhere and ndpickle can
//! memory-map them back with zero copies.
//!
//! Padding is a `SHORT_BINBYTES n <n bytes> POP` before the payload's opcode, placed so that
//! the payload's first byte lands on the alignment. Files stream: array data goes from the
//! array's memory to the file, never through a temporary copy, so peak memory stays near
//! the size of the data.

use std::borrow::Cow;
use std::io::Write;
use std::path::Path;

use crate::buffer::PayloadBuffer;
use crate::codec::{Compression, Scratch};
use crate::error::EncodeError;
use crate::opcodes::*;
use crate::write::atomic::AtomicFile;
use crate::write::encoder::{BytesKind, Encoder, Globals};
use crate::write::options::WriteOptions;
use crate::write::to_pickle::ToPickle;

/// Alignment of array payloads in files.
pub const FILE_ALIGN: usize = 64;

/// Writes `value` to a file at `path` as an aligned protocol-5 pickle with the default
/// options (see [`to_file_with`]).
pub fn to_file<T: ToPickle + ?Sized>(path: impl AsRef<Path>, value: &T) -> Result<(), EncodeError> {
    to_file_with(path, value, &WriteOptions::default())
}

/// Writes `value` to a file at `path` as an aligned protocol-5 pickle (the options'
/// alignment defaults to [`FILE_ALIGN`] when unset).
///
/// The pickle goes to a temporary file in `path`'s directory that replaces `path` once
/// complete ([`AtomicFile`]), flushed to the device first unless the options turn
/// [`crate::WriteOptionsBuilder::fsync`] off: a failed write leaves an existing file intact
/// and no temporary behind.
pub fn to_file_with<T: ToPickle + ?Sized>(
    path: impl AsRef<Path>,
    value: &T,
    opts: &WriteOptions,
) -> Result<(), EncodeError> {
    let mut opts = opts.clone();
    if opts.align.is_none() {
        opts.align = Some(FILE_ALIGN);
    }
    AtomicFile::write_with(path, opts.fsync, 1 << 16, |w| {
        crate::write::to_writer_with(w, value, &opts)
    })
}

/// Rewrites a protocol-5 pickle whose buffers travel out-of-band (`NEXT_BUFFER`, as
/// `pickle.dumps(obj, protocol=5, buffer_callback=...)` writes them) into a self-contained
/// stream written to `w`: each buffer becomes an in-band `BYTEARRAY8` (or `BINBYTES8` when
/// it was marked read-only), aligned as the options say — or, for a compressed buffer,
/// `ndpickle._decompress(header, frame, writable)`; every other opcode is kept and
/// re-framed. Used to write files from Python objects.
pub fn inline_buffers<W: Write>(
    pickle: &[u8],
    buffers: &[PayloadBuffer<'_>],
    w: W,
    opts: &WriteOptions,
) -> Result<(), EncodeError> {
    inline_buffers_lazy(
        pickle,
        buffers.len(),
        &mut |i| Ok(Cow::Borrowed(&buffers[i])),
        w,
        opts,
    )
}

/// [`inline_buffers`] with each buffer produced when its `NEXT_BUFFER` is reached:
/// `buffer(i)` for `i` in `0..count`, in order. Each buffer can be dropped once written, so
/// that, e.g., compressing buffers on the way holds one compressed frame at a time. The
/// options' compression is ignored (see [`inline_buffers_compressing`]).
pub fn inline_buffers_lazy<'b, W: Write>(
    pickle: &[u8],
    count: usize,
    buffer: &mut dyn FnMut(usize) -> Result<Cow<'b, PayloadBuffer<'b>>, EncodeError>,
    w: W,
    opts: &WriteOptions,
) -> Result<(), EncodeError> {
    let mut opts = opts.clone();
    opts.compression = Compression::Off;
    inline_buffers_compressing(pickle, count, &mut |i| Ok((buffer(i)?, 1)), w, &opts)
}

/// [`inline_buffers_lazy`] that compresses raw buffers on the way with the options'
/// compression, codec options and chunk size: `buffer(i)` gives buffer `i` and the element
/// size its shuffle filter works on. A buffer of at most
/// [`WriteOptions::compress_chunk`] bytes is compressed whole into
/// `ndpickle._decompress(header, frame, writable)`; a larger one is compressed and written
/// one chunk at a time as `ndpickle._decompress_into` calls (see [`crate::write::COMPRESS_CHUNK`]),
/// so that one compressed chunk is held at a time, never the whole compressed buffer. A
/// buffer whose data (first chunk) does not shrink is written raw. Buffers that arrive
/// compressed are written as `_decompress` calls as they are.
pub fn inline_buffers_compressing<'b, W: Write>(
    pickle: &[u8],
    count: usize,
    buffer: &mut dyn FnMut(usize) -> Result<(Cow<'b, PayloadBuffer<'b>>, usize), EncodeError>,
    mut w: W,
    opts: &WriteOptions,
) -> Result<(), EncodeError> {
    let bad = |msg: String| EncodeError::InvalidOption(format!("pickle to rewrite: {msg}"));
    let mut opts = opts.clone();
    opts.protocol = 5;
    let mut scratch = (!matches!(opts.compression, Compression::Off))
        .then(|| Scratch::with_options(opts.codec_options));
    let mut enc = Encoder::to_writer(&opts, &mut w)?;
    let mut pos = 0usize;
    let mut next = 0usize;
    let mut stopped = false;
    while pos < pickle.len() {
        let op = pickle[pos];
        let len =
            crate::opcodes::op_len(pickle, pos).map_err(|e| bad(format!("at byte {pos}: {e}")))?;
        match op {
            PROTO | FRAME => {}
            NEXT_BUFFER => {
                if next >= count {
                    return Err(bad(format!(
                        "more NEXT_BUFFER opcodes than the {count} buffers"
                    )));
                }
                let (buf, elem_size) = buffer(next)?;
                next += 1;
                let readonly = pickle.get(pos + 1) == Some(&READONLY_BUFFER);
                let kind = if readonly {
                    BytesKind::Bytes
                } else {
                    BytesKind::ByteArray
                };
                match buf.frame_info() {
                    Some(info) => enc.decompress_call(info, &buf, kind, Globals::Uncached)?,
                    None => {
                        let done = match &mut scratch {
                            Some(scratch) => enc.compressed_in_band(
                                &buf,
                                &opts.compression.with_elem_size(elem_size.max(1)),
                                scratch,
                                opts.compress_chunk,
                                kind,
                                Globals::Uncached,
                            )?,
                            None => false,
                        };
                        if !done {
                            enc.payload_large(kind, &buf)?;
                        }
                    }
                }
                if readonly {
                    pos += 1;
                }
            }
            STOP => {
                stopped = true;
                break;
            }
            _ => enc.put(&pickle[pos..pos + len])?,
        }
        pos += len;
    }
    if !stopped {
        return Err(bad("no STOP opcode".into()));
    }
    if next != count {
        return Err(bad(format!("{count} buffers given, {next} used")));
    }
    enc.finish()?;
    Ok(())
}

impl Encoder<'_, '_> {
    /// A payload written outside frames (aligned when the options ask).
    pub(crate) fn payload_large(
        &mut self,
        kind: BytesKind,
        data: &[u8],
    ) -> Result<(), EncodeError> {
        let mut head = vec![if kind == BytesKind::ByteArray {
            BYTEARRAY8
        } else {
            BINBYTES8
        }];
        head.extend_from_slice(&(data.len() as u64).to_le_bytes());
        self.put_large(&head, data.len(), &mut |sink| sink(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_replaces_buffers() {
        // PROTO 5, FRAME, NEXT_BUFFER, NEXT_BUFFER READONLY_BUFFER, TUPLE2, STOP
        let mut p = vec![PROTO, 5, FRAME];
        p.extend_from_slice(&5u64.to_le_bytes());
        p.extend_from_slice(&[NEXT_BUFFER, NEXT_BUFFER, READONLY_BUFFER, TUPLE2, STOP]);
        let opts = WriteOptions::builder().align(Some(64)).build().unwrap();
        let mut out = Vec::new();
        let two = [
            PayloadBuffer::borrowed(&[1u8; 100], false),
            PayloadBuffer::borrowed(&[2u8; 70], false),
        ];
        inline_buffers(&p, &two, &mut out, &opts).unwrap();
        let a = out.windows(100).position(|w| w == [1u8; 100]).unwrap();
        let b = out.windows(70).position(|w| w == [2u8; 70]).unwrap();
        assert_eq!((a % 64, b % 64), (0, 0));
        assert_eq!(out[a - 9], BYTEARRAY8);
        assert_eq!(out[b - 9], BINBYTES8);
        assert_eq!(*out.last().unwrap(), STOP);
        // Errors: too few buffers, too many, no STOP, garbage.
        let one = PayloadBuffer::borrowed(&[1u8], false);
        let three = [one.clone(), one.clone(), one.clone()];
        assert!(inline_buffers(&p, &three[..1], &mut Vec::new(), &opts).is_err());
        assert!(inline_buffers(&p, &three, &mut Vec::new(), &opts).is_err());
        assert!(inline_buffers(&p[..p.len() - 1], &three[..2], &mut Vec::new(), &opts).is_err());
        assert!(inline_buffers(&[PROTO, 5, 0xff], &[], &mut Vec::new(), &opts).is_err());
    }

    #[cfg(feature = "compression")]
    #[test]
    fn inline_compressed_buffer_becomes_decompress_call() {
        use crate::codec::{Codec, Compression, Filter, Scratch, compress};
        // PROTO 5, MEMOIZE'd global name, NEXT_BUFFER READONLY_BUFFER, BINGET 0, TUPLE2, STOP
        let mut p = vec![PROTO, 5, SHORT_BINUNICODE, 1, b'x', MEMOIZE];
        p.extend_from_slice(&[NEXT_BUFFER, READONLY_BUFFER, BINGET, 0, TUPLE2, STOP]);
        let data = vec![7u8; 200_000];
        let settings = Compression::Fixed(Codec::Lz4, Filter::None);
        let c = compress(&data, &settings, &mut Scratch::new()).unwrap();
        let (info, frame) = c.into_parts();
        let bufs = [PayloadBuffer::compressed(frame.clone(), info.clone(), true)];
        let opts = WriteOptions::builder().align(Some(64)).build().unwrap();
        let mut out = Vec::new();
        inline_buffers(&p, &bufs, &mut out, &opts).unwrap();
        let has = |needle: &[u8]| out.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"_decompress"));
        assert!(has(&info.to_bytes()));
        assert!(has(&frame));
        // The memo is untouched: the only MEMOIZE is the copied one, BINGET 0 still follows.
        assert_eq!(out.iter().filter(|&&b| b == MEMOIZE).count(), 1);
        assert!(has(&[BINGET, 0, TUPLE2]));
    }
}
