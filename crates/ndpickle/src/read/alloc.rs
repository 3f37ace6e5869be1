//! Memory for array data copied out of an in-band stream.
//!
//! Small payloads are copied into an ordinary allocation. Large ones go into an anonymous
//! mapping advised to use transparent huge pages where the kernel offers them: faulting in
//! fresh memory 4 KiB at a time costs more than the copy itself (100 MB is ~25 000 page
//! faults), and huge pages cut that 512-fold.

use bytes::Bytes;

/// Payloads from this size on get their own huge-page mapping.
const LARGE: usize = 4 << 20;

/// A copy of `src` as shared bytes, one copy, no zero-fill pass.
pub(crate) fn copy_out(src: &[u8]) -> Bytes {
    if src.len() >= LARGE
        && let Some(b) = copy_to_mapping(src)
    {
        return b;
    }
    Bytes::copy_from_slice(src)
}

fn copy_to_mapping(src: &[u8]) -> Option<Bytes> {
    let mut map = memmap2::MmapMut::map_anon(src.len()).ok()?;
    #[cfg(target_os = "linux")]
    {
        // Advisory: if the kernel refuses, the copy still works with small pages.
        let _ = map.advise(memmap2::Advice::HugePage);
    }
    map.copy_from_slice(src);
    let map = map.make_read_only().ok()?;
    Some(Bytes::from_owner(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_small_and_large() {
        let small = vec![7u8; 100];
        assert_eq!(&copy_out(&small)[..], &small[..]);
        let large: Vec<u8> = (0..(LARGE + 12345)).map(|i| (i * 31) as u8).collect();
        let b = copy_out(&large);
        assert_eq!(&b[..], &large[..]);
        assert_ne!(b.as_ptr(), large.as_ptr());
    }
}
