//! [`FrameInfo`]: what a reader needs to decode one compressed buffer, and its byte header.
//!
//! The frame bytes themselves never carry an ndpickle header: a frame is the concatenation of
//! its blocks, and every block is a standalone frame of its codec, exactly what the reference
//! Python library reads:
//!
//! - **lz4**: a 4-byte little-endian uncompressed size, then an lz4 *block* (not the lz4 frame
//!   format) — the bytes `lz4.block.compress(data)` writes and `lz4.block.decompress` reads.
//! - **zstd**: one zstd frame with the content size in its frame header — what
//!   `zstandard.ZstdCompressor().compress(data)` writes and what
//!   `zstandard.ZstdDecompressor().decompress` (and Dask) need.
//!
//! With the shuffle filter a block holds the shuffled bytes of its part of the buffer (each
//! block is shuffled on its own, by the same element size). A *plain* frame (no filter, one
//! block) is therefore byte for byte what python-lz4 / zstandard / Dask's
//! `distributed.protocol.compression.decompress` expect; everything else (codec, filter,
//! element size, block layout) travels separately, in this header or in an equivalent dict.
//!
//! # Header bytes (version 1, all integers little-endian)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `b"NDPZ"` |
//! | 4 | 1 | version, `1` |
//! | 5 | 1 | codec: `0` none (raw bytes), `1` lz4, `2` zstd |
//! | 6 | 1 | filter: `0` none, `1` byte shuffle |
//! | 7 | 1 | flags: bit 0 = split streams, bit 1 = streams chosen per block (both below; at most one of the two); other bits reserved, `0` (readers refuse them) |
//! | 8 | 4 | `i32` zstd level used (informative; `0` for other codecs) |
//! | 12 | 4 | `u32` element size of the shuffle, ≥ 1 (`1` when there is no filter) |
//! | 16 | 8 | `u64` raw (uncompressed) length of the whole buffer |
//! | 24 | 4 | `u32` block size: raw bytes per block, every block but the last has exactly this many; a multiple of the element size; `0` for codec none |
//! | 28 | 4 | `u32` block count `n`: `max(1, ceil(raw length / block size))`; `0` for codec none |
//! | 32 | 4·n | `u32` compressed length of each block, in order; they add up to the frame length |
//!
//! Codec none means the frame is the raw buffer itself (`raw length` bytes).
//!
//! In a pickle, a compressed in-band buffer is `ndpickle._decompress(header, frame,
//! writable)`; one over the writer's chunk size (64 MiB by default) is a chain of
//! `ndpickle._decompress_into(out, offset, header, frame[, writable])` calls over
//! `ndpickle._decompress_target(raw_len)`, one header and frame per chunk (a chunk that does
//! not shrink has codec none); see `write::chunked` and `read::compressed`.
//!
//! # Split streams (flag bit 0, only with the shuffle filter)
//!
//! Like blosc's "split" mode: each block of `L` raw bytes is shuffled into `E` byte planes of
//! `m = L / E` bytes plus `L % E` tail bytes, and each plane is compressed on its own. A block
//! is then:
//!
//! | size | field |
//! |---|---|
//! | 4·E | one `u32` per plane: bit 31 set = the plane is stored raw (then bits 0–29 = `m`); bit 30 set = the plane is one byte repeated `m` times (then bits 0–29 = `1`); neither = bits 0–29 are the length of the plane's codec frame; both set is invalid |
//! | … | the E streams, in plane order: a codec frame of `m` raw bytes (as above), the plane's `m` bytes as they are, or the one repeated byte |
//! | L % E | the tail bytes, as they are |
//!
//! Planes that do not compress (the low mantissa bytes of floats) cost nothing extra and decode
//! at memcpy speed; constant planes (the zero high bytes of small integers, the zero low bytes of
//! float32 values stored as float64) cost one byte and decode as a fill, as blosc2 does.
//! ndpickle writes split blocks for lz4 + shuffle.
//!
//! # Streams chosen per block (flag bit 1, only with zstd and the shuffle filter)
//!
//! Each block is either one zstd frame of its shuffled bytes or a split block as above, told
//! apart by the block's first four bytes: a zstd frame opens with zstd's magic number
//! (`28 B5 2F FD`), which read as a split block's first table entry would have both flag bits
//! set, which no split block has. ndpickle writes zstd + shuffle this way, splitting the blocks
//! of which at least half the byte planes are constant (the zero high bytes of small integers:
//! decoded as a fill) or noise (the low mantissa bytes of floats: stored raw, decoded as copies
//! straight from the frame), and keeping one stream for the others (several small zstd frames
//! per block, each with its own entropy tables, would cost both speed and ratio).

use crate::codec::{Codec, Filter, MAX_BLOCK_SIZE};
use crate::error::{DecodeError, DecodeErrorKind};
use crate::wire;

/// The 4 magic bytes that open a serialized [`FrameInfo`].
pub const MAGIC: [u8; 4] = *b"NDPZ";
/// The header version this code writes and reads.
pub const VERSION: u8 = 1;
/// Length of the fixed part of the header, before the block table.
pub const FIXED_LEN: usize = 32;

const CODEC_NONE: u8 = 0;
const CODEC_LZ4: u8 = 1;
const CODEC_ZSTD: u8 = 2;
const FILTER_NONE: u8 = 0;
const FILTER_SHUFFLE: u8 = 1;

/// How one buffer was compressed: codec, filter, raw length and block layout.
///
/// Build it with [`FrameInfo::new`] (validated), read it with [`FrameInfo::from_bytes`] or
/// [`FrameInfo::from_plain_frame`], and write it with [`FrameInfo::to_bytes`]. The accessors
/// give every field, for a Python-side dict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    codec: Codec,
    filter: Filter,
    raw_len: u64,
    block_size: u32,
    block_lens: Vec<u32>,
    streams: Streams,
}

/// How the blocks of a frame hold their bytes (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Streams {
    /// Every block is one codec frame.
    One,
    /// Every block holds one stream per byte plane of its shuffle.
    Split,
    /// Each block is one zstd frame or split, told apart by its first four bytes (zstd and the
    /// shuffle filter only).
    PerBlock,
}

/// Flag bit: blocks are split into one stream per byte plane.
const FLAG_SPLIT: u8 = 1;
/// Flag bit: each block is one zstd frame or split.
const FLAG_PER_BLOCK: u8 = 2;

/// The first four bytes of every zstd frame (its magic number, little-endian).
pub(crate) const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

fn bad(detail: impl Into<String>) -> DecodeError {
    DecodeError::new(DecodeErrorKind::Codec(detail.into()))
}

impl FrameInfo {
    /// A buffer sent as is (codec none): the frame is the `raw_len` raw bytes.
    pub fn raw(raw_len: u64) -> FrameInfo {
        FrameInfo {
            codec: Codec::None,
            filter: Filter::None,
            raw_len,
            block_size: 0,
            block_lens: Vec::new(),
            streams: Streams::One,
        }
    }

    /// A validated description of a compressed buffer.
    ///
    /// `block_lens` are the compressed lengths of the blocks, in order. Fails if the fields do
    /// not fit together (see the header table in the module docs).
    pub fn new(
        codec: Codec,
        filter: Filter,
        raw_len: u64,
        block_size: u32,
        block_lens: Vec<u32>,
    ) -> Result<FrameInfo, DecodeError> {
        let info = FrameInfo {
            codec,
            filter,
            raw_len,
            block_size,
            block_lens,
            streams: Streams::One,
        };
        info.validate()?;
        Ok(info)
    }

    /// The same description with the blocks' streams laid out as `streams` says (see the
    /// module docs): split streams need the shuffle filter, streams chosen per block zstd too.
    pub fn with_streams(mut self, streams: Streams) -> Result<FrameInfo, DecodeError> {
        self.streams = streams;
        self.validate()?;
        Ok(self)
    }

    /// How the blocks hold their bytes.
    pub fn streams(&self) -> Streams {
        self.streams
    }

    /// Describes a plain single-block frame written by python-lz4 (`lz4.block.compress`),
    /// zstandard or Dask, reading the raw length from the frame itself (the lz4 size prefix or
    /// the zstd content size).
    pub fn from_plain_frame(codec: Codec, frame: &[u8]) -> Result<FrameInfo, DecodeError> {
        let frame_len =
            u32::try_from(frame.len()).map_err(|_| bad("a plain frame must be below 4 GiB"))?;
        let raw_len = match codec {
            Codec::None => return Ok(FrameInfo::raw(frame.len() as u64)),
            Codec::Lz4 => u64::from(wire::u32_le(frame, 0, "lz4 size prefix")?),
            Codec::Zstd { .. } => super::zstd::content_size(frame)?,
        };
        let block_size = u32::try_from(raw_len.max(1))
            .ok()
            .filter(|&b| b as usize <= MAX_BLOCK_SIZE)
            .ok_or_else(|| bad(format!("a plain frame of {raw_len} raw bytes is too large")))?;
        FrameInfo::new(codec, Filter::None, raw_len, block_size, vec![frame_len])
    }

    /// The codec (for zstd, with the level the writer recorded).
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The filter applied before the codec.
    pub fn filter(&self) -> Filter {
        self.filter
    }

    /// The shuffle's element size, 1 without a filter.
    pub fn elem_size(&self) -> usize {
        self.filter.elem_size()
    }

    /// The uncompressed length of the buffer.
    pub fn raw_len(&self) -> u64 {
        self.raw_len
    }

    /// Raw bytes per block (the last block may be shorter); 0 for codec none.
    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    /// The compressed length of each block, in order; empty for codec none.
    pub fn block_lens(&self) -> &[u32] {
        &self.block_lens
    }

    /// The length of the frame this describes.
    pub fn frame_len(&self) -> u64 {
        if self.codec == Codec::None {
            self.raw_len
        } else {
            self.block_lens.iter().map(|&l| u64::from(l)).sum()
        }
    }

    /// Whether the frame is readable by the reference Python library of its codec alone
    /// (python-lz4's `lz4.block.decompress`, `zstandard`, Dask): a codec, no filter, one block.
    pub fn is_plain(&self) -> bool {
        self.codec != Codec::None && self.filter == Filter::None && self.block_lens.len() == 1
    }

    /// The raw length of block `i` (the last one may be short).
    pub(crate) fn block_raw_len(&self, i: usize) -> usize {
        let bs = self.block_size as u64;
        let start = bs * i as u64;
        (self.raw_len.saturating_sub(start)).min(bs) as usize
    }

    /// Checks that the fields fit together.
    pub fn validate(&self) -> Result<(), DecodeError> {
        let elem = self.filter.elem_size();
        let shuffled = matches!(self.filter, Filter::Shuffle { .. });
        match self.streams {
            Streams::One => {}
            Streams::Split if !shuffled => {
                return Err(bad("split streams need the shuffle filter"));
            }
            Streams::Split => {}
            Streams::PerBlock if !shuffled || !matches!(self.codec, Codec::Zstd { .. }) => {
                return Err(bad(
                    "streams chosen per block need zstd and the shuffle filter",
                ));
            }
            Streams::PerBlock => {}
        }
        if elem == 0 || elem > u32::MAX as usize {
            return Err(bad(format!("invalid element size {elem}")));
        }
        if self.codec == Codec::None {
            if self.filter != Filter::None || self.block_size != 0 || !self.block_lens.is_empty() {
                return Err(bad("a raw buffer has no filter and no blocks"));
            }
            return Ok(());
        }
        if self.block_size == 0 || self.block_size as usize > MAX_BLOCK_SIZE {
            return Err(bad(format!("invalid block size {}", self.block_size)));
        }
        if !(self.block_size as usize).is_multiple_of(elem) {
            return Err(bad(format!(
                "block size {} is not a multiple of the element size {elem}",
                self.block_size
            )));
        }
        let expected = self.raw_len.div_ceil(u64::from(self.block_size)).max(1);
        if expected != self.block_lens.len() as u64 {
            return Err(bad(format!(
                "{} raw bytes in blocks of {} make {expected} blocks, not {}",
                self.raw_len,
                self.block_size,
                self.block_lens.len()
            )));
        }
        Ok(())
    }

    /// Length of the serialized header.
    pub fn header_len(&self) -> usize {
        FIXED_LEN + 4 * self.block_lens.len()
    }

    /// Appends the serialized header (see the module docs) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.header_len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        let (codec, level) = match self.codec {
            Codec::None => (CODEC_NONE, 0),
            Codec::Lz4 => (CODEC_LZ4, 0),
            Codec::Zstd { level } => (CODEC_ZSTD, level),
        };
        out.push(codec);
        out.push(match self.filter {
            Filter::None => FILTER_NONE,
            Filter::Shuffle { .. } => FILTER_SHUFFLE,
        });
        out.push(match self.streams {
            Streams::One => 0,
            Streams::Split => FLAG_SPLIT,
            Streams::PerBlock => FLAG_PER_BLOCK,
        });
        out.extend_from_slice(&level.to_le_bytes());
        out.extend_from_slice(&(self.filter.elem_size() as u32).to_le_bytes());
        out.extend_from_slice(&self.raw_len.to_le_bytes());
        out.extend_from_slice(&self.block_size.to_le_bytes());
        out.extend_from_slice(&(self.block_lens.len() as u32).to_le_bytes());
        for l in &self.block_lens {
            out.extend_from_slice(&l.to_le_bytes());
        }
    }

    /// The serialized header.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_to(&mut v);
        v
    }

    /// Parses a header that must be all of `data` (a header handed over on its own, as
    /// `serialize()`'s `"frame-info"` or a `_decompress` argument): trailing bytes are an
    /// error.
    pub fn from_exact_bytes(data: &[u8]) -> Result<FrameInfo, DecodeError> {
        let (info, used) = FrameInfo::from_bytes(data)?;
        if used != data.len() {
            return Err(bad(format!(
                "frame header has {} trailing bytes",
                data.len() - used
            )));
        }
        Ok(info)
    }

    /// Parses and validates a header at the start of `data`; returns it and its length.
    pub fn from_bytes(data: &[u8]) -> Result<(FrameInfo, usize), DecodeError> {
        if wire::array::<4>(data, 0, "codec header magic")? != MAGIC {
            return Err(bad("not an ndpickle codec header (bad magic)"));
        }
        let version = wire::array::<1>(data, 4, "codec header version")?[0];
        if version != VERSION {
            return Err(bad(format!("unsupported codec header version {version}")));
        }
        let [codec, filter, flags] = wire::array::<3>(data, 5, "codec header")?;
        let streams = match flags {
            0 => Streams::One,
            FLAG_SPLIT => Streams::Split,
            FLAG_PER_BLOCK => Streams::PerBlock,
            _ => return Err(bad(format!("unknown codec header flags 0x{flags:02x}"))),
        };
        let level = wire::i32_le(data, 8, "zstd level")?;
        let elem = wire::u32_le(data, 12, "element size")? as usize;
        let raw_len = wire::u64_le(data, 16, "raw length")?;
        let block_size = wire::u32_le(data, 24, "block size")?;
        let n = wire::u32_le(data, 28, "block count")? as usize;
        let codec = match codec {
            CODEC_NONE => Codec::None,
            CODEC_LZ4 => Codec::Lz4,
            CODEC_ZSTD => Codec::Zstd { level },
            c => return Err(bad(format!("unknown codec id {c}"))),
        };
        let filter = match filter {
            FILTER_NONE if elem == 1 => Filter::None,
            FILTER_NONE => return Err(bad("element size without a filter")),
            FILTER_SHUFFLE => Filter::Shuffle { elem_size: elem },
            f => return Err(bad(format!("unknown filter id {f}"))),
        };
        let table_len = wire::mul(n, 4, "block table length")?;
        let table = wire::slice(data, FIXED_LEN, table_len, "block table")?;
        let block_lens = table
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let info = FrameInfo {
            codec,
            filter,
            raw_len,
            block_size,
            block_lens,
            streams,
        };
        info.validate()?;
        Ok((info, FIXED_LEN + table_len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_layout() {
        let info = FrameInfo::new(
            Codec::Zstd { level: 3 },
            Filter::Shuffle { elem_size: 8 },
            10,
            8,
            vec![7, 9],
        )
        .unwrap();
        let bytes = info.to_bytes();
        assert_eq!(bytes.len(), info.header_len());
        assert_eq!(&bytes[..8], b"NDPZ\x01\x02\x01\x00");
        assert_eq!(bytes[8..12], 3i32.to_le_bytes());
        assert_eq!(bytes[12..16], 8u32.to_le_bytes());
        assert_eq!(bytes[16..24], 10u64.to_le_bytes());
        assert_eq!(bytes[28..32], 2u32.to_le_bytes());
        let (back, used) = FrameInfo::from_bytes(&bytes).unwrap();
        assert_eq!((back, used), (info, bytes.len()));
        let raw = FrameInfo::raw(5);
        assert_eq!(FrameInfo::from_bytes(&raw.to_bytes()).unwrap().0, raw);
    }

    #[test]
    fn bad_headers_are_refused() {
        let good = FrameInfo::new(Codec::Lz4, Filter::None, 100, 64, vec![10, 10])
            .unwrap()
            .to_bytes();
        for cut in 0..good.len() {
            assert!(FrameInfo::from_bytes(&good[..cut]).is_err(), "cut {cut}");
        }
        let mut b = good.clone();
        b[0] = b'X';
        assert!(FrameInfo::from_bytes(&b).is_err());
        let mut b = good.clone();
        b[5] = 9;
        assert!(FrameInfo::from_bytes(&b).is_err());
        let mut b = good.clone();
        b[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = FrameInfo::from_bytes(&b).unwrap_err();
        assert!(e.to_string().contains("block table"), "{e}");
        // 100 bytes in blocks of 64 are two blocks, not one.
        assert!(FrameInfo::new(Codec::Lz4, Filter::None, 100, 64, vec![10]).is_err());
        assert!(
            FrameInfo::new(Codec::Lz4, Filter::Shuffle { elem_size: 8 }, 8, 12, vec![1]).is_err()
        );
    }

    #[cfg(feature = "compression")]
    #[test]
    fn the_zstd_magic_is_zstds() {
        assert_eq!(ZSTD_MAGIC, zstd::zstd_safe::MAGICNUMBER.to_le_bytes());
    }

    #[test]
    fn streams_are_flags_and_need_their_codec_and_filter() {
        let shuffled = |codec| {
            FrameInfo::new(codec, Filter::Shuffle { elem_size: 8 }, 16, 8, vec![5, 5]).unwrap()
        };
        let zstd = Codec::Zstd { level: 1 };
        for (info, flags) in [
            (
                shuffled(Codec::Lz4).with_streams(Streams::Split).unwrap(),
                1,
            ),
            (shuffled(zstd).with_streams(Streams::Split).unwrap(), 1),
            (shuffled(zstd).with_streams(Streams::PerBlock).unwrap(), 2),
            (shuffled(zstd), 0),
        ] {
            let bytes = info.to_bytes();
            assert_eq!(bytes[7], flags);
            assert_eq!(FrameInfo::from_bytes(&bytes).unwrap().0, info);
        }
        let e = shuffled(Codec::Lz4)
            .with_streams(Streams::PerBlock)
            .unwrap_err();
        assert!(e.to_string().contains("need zstd"), "{e}");
        let plain = FrameInfo::new(zstd, Filter::None, 16, 8, vec![5, 5]).unwrap();
        assert!(plain.clone().with_streams(Streams::PerBlock).is_err());
        assert!(plain.with_streams(Streams::Split).is_err());
        // Both flags, or a per-block lz4 frame, as bytes.
        let mut both = shuffled(zstd).to_bytes();
        both[7] = 3;
        let e = FrameInfo::from_bytes(&both).unwrap_err();
        assert!(e.to_string().contains("flags 0x03"), "{e}");
        let mut lz4 = shuffled(Codec::Lz4).to_bytes();
        lz4[7] = 2;
        assert!(FrameInfo::from_bytes(&lz4).is_err());
    }
}
