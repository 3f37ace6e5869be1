//! Checked arithmetic and little-endian reads on untrusted sizes.
//!
//! Every size that comes from a stream (a length prefix, a shape, a stride) goes through
//! these helpers, which name the quantity so that an overflow becomes a clear error instead
//! of a wrap-around or a panic.

use crate::error::WireError;

/// `a * b`, or an error naming `what`.
pub(crate) fn mul(a: usize, b: usize, what: &'static str) -> Result<usize, WireError> {
    a.checked_mul(b).ok_or(WireError::Overflow { what })
}

/// `a + b`, or an error naming `what`.
pub(crate) fn add(a: usize, b: usize, what: &'static str) -> Result<usize, WireError> {
    a.checked_add(b).ok_or(WireError::Overflow { what })
}

/// The product of all `dims`, or an error naming `what`.
pub(crate) fn product(dims: &[usize], what: &'static str) -> Result<usize, WireError> {
    dims.iter().try_fold(1usize, |acc, &d| mul(acc, d, what))
}

/// Converts a `u64` length from the stream to `usize`.
pub(crate) fn usize_from(n: u64, what: &'static str) -> Result<usize, WireError> {
    usize::try_from(n).map_err(|_| WireError::Overflow { what })
}

/// `isize` from `usize`, or an error naming `what`.
pub(crate) fn isize_from(n: usize, what: &'static str) -> Result<isize, WireError> {
    isize::try_from(n).map_err(|_| WireError::Overflow { what })
}

/// `data[start..start + len]`, or an error naming `what` if it runs past the end.
pub(crate) fn slice<'a>(
    data: &'a [u8],
    start: usize,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], WireError> {
    let end = add(start, len, what)?;
    data.get(start..end).ok_or(WireError::Truncated {
        what,
        needed: len,
        available: data.len().saturating_sub(start),
    })
}

/// Reads `N` bytes at `pos`.
pub(crate) fn array<const N: usize>(
    data: &[u8],
    pos: usize,
    what: &'static str,
) -> Result<[u8; N], WireError> {
    let s = slice(data, pos, N, what)?;
    let mut out = [0u8; N];
    out.copy_from_slice(s);
    Ok(out)
}

/// Reads a little-endian `u16` at `pos`.
pub(crate) fn u16_le(data: &[u8], pos: usize, what: &'static str) -> Result<u16, WireError> {
    array::<2>(data, pos, what).map(u16::from_le_bytes)
}

/// Reads a little-endian `u32` at `pos`.
pub(crate) fn u32_le(data: &[u8], pos: usize, what: &'static str) -> Result<u32, WireError> {
    array::<4>(data, pos, what).map(u32::from_le_bytes)
}

/// Reads a little-endian `i32` at `pos`.
pub(crate) fn i32_le(data: &[u8], pos: usize, what: &'static str) -> Result<i32, WireError> {
    array::<4>(data, pos, what).map(i32::from_le_bytes)
}

/// Reads a little-endian `u64` at `pos`.
pub(crate) fn u64_le(data: &[u8], pos: usize, what: &'static str) -> Result<u64, WireError> {
    array::<8>(data, pos, what).map(u64::from_le_bytes)
}

/// Reads a big-endian `f64` at `pos`.
pub(crate) fn f64_be(data: &[u8], pos: usize, what: &'static str) -> Result<f64, WireError> {
    array::<8>(data, pos, what).map(f64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_is_named() {
        let e = mul(usize::MAX, 2, "array byte length").unwrap_err();
        assert_eq!(e.to_string(), "array byte length overflows");
        assert!(product(&[1 << 40, 1 << 40], "element count").is_err());
        assert_eq!(product(&[], "element count").unwrap(), 1);
    }

    #[test]
    fn truncated_reads() {
        let d = [1u8, 2, 3];
        assert_eq!(u16_le(&d, 1, "x").unwrap(), 0x0302);
        let e = u32_le(&d, 0, "frame length").unwrap_err();
        assert!(e.to_string().contains("frame length"));
        assert!(slice(&d, usize::MAX, 2, "x").is_err());
    }
}
