//! lz4 blocks: a 4-byte little-endian uncompressed size, then an lz4 block (`lz4_flex`).
//!
//! This is exactly the layout of python-lz4's `lz4.block.compress(data)` (default
//! `store_size=True`) and what `lz4.block.decompress` and Dask read.

use crate::error::{DecodeError, DecodeErrorKind, EncodeError};

fn bad(detail: String) -> DecodeError {
    DecodeError::new(DecodeErrorKind::Codec(detail))
}

/// Reusable lz4 compression state: the match table and an output buffer that is zero-filled
/// once and then reused, so no call zero-fills or allocates.
#[derive(Default)]
pub(crate) struct Lz4State {
    #[cfg(feature = "compression")]
    table: Option<lz4_flex::block::CompressTable>,
    #[cfg(feature = "compression")]
    tmp: Vec<u8>,
}

#[cfg(feature = "compression")]
impl Lz4State {
    /// Appends the size prefix and the compressed block of `input` to `out`.
    pub(crate) fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
        use lz4_flex::block::{CompressTable, compress_into_with_table, get_maximum_output_size};
        let prefix = u32::try_from(input.len())
            .map_err(|_| EncodeError::Codec("lz4 block larger than 4 GiB".into()))?;
        let need = get_maximum_output_size(input.len());
        if self.tmp.len() < need {
            self.tmp.resize(need, 0);
        }
        let table = self.table.get_or_insert_with(CompressTable::large);
        let n = compress_into_with_table(input, &mut self.tmp[..need], table)
            .map_err(|e| EncodeError::Codec(format!("lz4: {e}")))?;
        out.reserve(4 + n);
        out.extend_from_slice(&prefix.to_le_bytes());
        out.extend_from_slice(&self.tmp[..n]);
        Ok(())
    }
}

/// Decompresses one size-prefixed lz4 block into `out`, which must be exactly as long as the
/// block's raw length; the prefix must say the same.
#[cfg(feature = "compression")]
pub(crate) fn decompress(block: &[u8], out: &mut [u8]) -> Result<(), DecodeError> {
    let prefix = crate::wire::u32_le(block, 0, "lz4 size prefix")? as usize;
    if prefix != out.len() {
        return Err(bad(format!(
            "lz4 block says {prefix} raw bytes, the frame header {}",
            out.len()
        )));
    }
    let n = lz4_flex::block::decompress_into(&block[4..], out)
        .map_err(|e| bad(format!("corrupt lz4 block: {e}")))?;
    if n != out.len() {
        return Err(bad(format!(
            "lz4 block decoded to {n} bytes, expected {}",
            out.len()
        )));
    }
    Ok(())
}

#[cfg(not(feature = "compression"))]
impl Lz4State {
    pub(crate) fn compress(&mut self, _: &[u8], _: &mut Vec<u8>) -> Result<(), EncodeError> {
        Err(EncodeError::Codec(super::NO_COMPRESSION.into()))
    }
}

#[cfg(not(feature = "compression"))]
pub(crate) fn decompress(_: &[u8], _: &mut [u8]) -> Result<(), DecodeError> {
    Err(bad(super::NO_COMPRESSION.into()))
}
