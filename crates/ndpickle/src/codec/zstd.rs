//! zstd blocks: one zstd frame with the content size in its header.
//!
//! This is what `zstandard.ZstdCompressor().compress(data)` writes and what
//! `zstandard.ZstdDecompressor().decompress` needs (it refuses frames without a content size
//! unless given a maximum); Dask's zstd compression uses exactly these calls.

use crate::error::{DecodeError, DecodeErrorKind, EncodeError};

fn bad(detail: String) -> DecodeError {
    DecodeError::new(DecodeErrorKind::Codec(detail))
}

/// Reusable zstd contexts (created on first use, kept across calls).
#[derive(Default)]
pub(crate) struct ZstdState {
    #[cfg(feature = "compression")]
    cctx: Option<(i32, zstd::bulk::Compressor<'static>)>,
    #[cfg(feature = "compression")]
    dctx: Option<zstd::bulk::Decompressor<'static>>,
}

#[cfg(feature = "compression")]
impl ZstdState {
    /// Appends one zstd frame of `input` at `level` to `out`, writing straight into its spare
    /// capacity (no zero-fill).
    pub(crate) fn compress(
        &mut self,
        level: i32,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let err = |e: std::io::Error| EncodeError::Codec(format!("zstd: {e}"));
        let cctx = match &mut self.cctx {
            Some((l, c)) => {
                if *l != level {
                    c.set_compression_level(level).map_err(err)?;
                    *l = level;
                }
                c
            }
            slot => {
                let c = zstd::bulk::Compressor::new(level).map_err(err)?;
                &mut slot.insert((level, c)).1
            }
        };
        let start = out.len();
        out.reserve(zstd::zstd_safe::compress_bound(input.len()));
        let mut cursor = std::io::Cursor::new(out);
        cursor.set_position(start as u64);
        cctx.compress_to_buffer(input, &mut cursor).map_err(err)?;
        Ok(())
    }

    /// Decompresses one zstd frame into `out`, which must be exactly as long as the frame's
    /// content size says.
    pub(crate) fn decompress(&mut self, block: &[u8], out: &mut [u8]) -> Result<(), DecodeError> {
        let size = content_size(block)?;
        if size != out.len() as u64 {
            return Err(bad(format!(
                "zstd frame says {size} raw bytes, the frame header {}",
                out.len()
            )));
        }
        let dctx = match &mut self.dctx {
            Some(d) => d,
            slot => slot.insert(
                zstd::bulk::Decompressor::new().map_err(|e| bad(format!("zstd context: {e}")))?,
            ),
        };
        let n = dctx
            .decompress_to_buffer(block, out)
            .map_err(|e| bad(format!("corrupt zstd frame: {e}")))?;
        if n != out.len() {
            return Err(bad(format!(
                "zstd frame decoded to {n} bytes, expected {}",
                out.len()
            )));
        }
        Ok(())
    }
}

/// The content size recorded in a zstd frame header; an error if it is absent or the header
/// is corrupt.
#[cfg(feature = "compression")]
pub(crate) fn content_size(frame: &[u8]) -> Result<u64, DecodeError> {
    match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(n)) => Ok(n),
        Ok(None) => Err(bad("zstd frame has no content size in its header".into())),
        Err(_) => Err(bad("corrupt or truncated zstd frame header".into())),
    }
}

#[cfg(not(feature = "compression"))]
impl ZstdState {
    pub(crate) fn compress(
        &mut self,
        _: i32,
        _: &[u8],
        _: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        Err(EncodeError::Codec(super::NO_COMPRESSION.into()))
    }

    pub(crate) fn decompress(&mut self, _: &[u8], _: &mut [u8]) -> Result<(), DecodeError> {
        Err(bad(super::NO_COMPRESSION.into()))
    }
}

#[cfg(not(feature = "compression"))]
pub(crate) fn content_size(_: &[u8]) -> Result<u64, DecodeError> {
    Err(bad(super::NO_COMPRESSION.into()))
}
