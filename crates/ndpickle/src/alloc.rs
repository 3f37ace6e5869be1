//! Fresh large buffers: decoded arrays, compressed frames, and array data the reader copies
//! out of an in-band stream.
//!
//! A buffer of many megabytes that is written once, straight after it is allocated, costs the
//! kernel one page fault per 4 KiB page it touches. On a 64 MiB decode that is 16 384 faults,
//! which took longer than the decoding itself (1.6 against 4–5 GB/s, `codec_table --scaling`),
//! and two decoding threads fault in turn. Buffers of [`HUGE_PAGE_MIN`] bytes or more are
//! therefore advised to be backed by transparent huge pages (`madvise(MADV_HUGEPAGE)`; one
//! fault per 2 MiB), as numpy does for its own array data from the same size (its
//! `_get_madvise_hugepage()` reports whether it does). The hint only applies where the
//! system's transparent huge pages are set to `madvise` or `always`; elsewhere, and on other
//! operating systems, nothing changes.

/// Buffers from this size on get the huge-page hint (numpy's threshold).
pub(crate) const HUGE_PAGE_MIN: usize = 4 << 20;

/// A copy of `src` in a new `Vec`: one copy, no zero-fill pass, huge-page backed from 4 MiB.
pub fn copy_to_vec(src: &[u8]) -> Vec<u8> {
    let mut v = large_vec(src.len());
    v.extend_from_slice(src);
    v
}

/// A copy of `src` as shared bytes: one copy, no zero-fill pass. From [`HUGE_PAGE_MIN`] on, into
/// an anonymous mapping of its own, advised to use huge pages (the kernel's fresh pages are zero
/// already, so nothing is written twice).
pub(crate) fn copy_out(src: &[u8]) -> bytes::Bytes {
    if src.len() >= HUGE_PAGE_MIN
        && let Some(b) = copy_to_mapping(src)
    {
        return b;
    }
    bytes::Bytes::copy_from_slice(src)
}

fn copy_to_mapping(src: &[u8]) -> Option<bytes::Bytes> {
    let mut map = memmap2::MmapMut::map_anon(src.len()).ok()?;
    #[cfg(target_os = "linux")]
    {
        // Advisory: if the kernel refuses, the copy still works with small pages.
        let _ = map.advise(memmap2::Advice::HugePage);
    }
    map.copy_from_slice(src);
    let map = map.make_read_only().ok()?;
    Some(bytes::Bytes::from_owner(map))
}

/// An empty `Vec` with room for at least `capacity` elements, huge-page backed when its
/// bytes are [`HUGE_PAGE_MIN`] or more.
pub(crate) fn large_vec<T>(capacity: usize) -> Vec<T> {
    let v: Vec<T> = Vec::with_capacity(capacity);
    let bytes = v.capacity().saturating_mul(std::mem::size_of::<T>());
    if bytes >= HUGE_PAGE_MIN {
        advise_huge_pages(v.as_ptr().cast::<u8>(), bytes);
    }
    v
}

/// Asks the kernel to back the whole pages inside `len` bytes at `ptr` with huge pages.
#[cfg(target_os = "linux")]
fn advise_huge_pages(ptr: *const u8, len: usize) {
    const PAGE: usize = 4096;
    let start = (ptr as usize).next_multiple_of(PAGE);
    let end = (ptr as usize).saturating_add(len) / PAGE * PAGE;
    if end > start {
        // SAFETY: `start..end` lies inside one live allocation of ours (`ptr..ptr + len`,
        // rounded inwards to whole pages). `MADV_HUGEPAGE` only advises the kernel how to back
        // those pages; it changes neither their contents nor their validity, and nothing else
        // is affected. An error (a kernel without transparent huge pages) leaves the memory as
        // it was, so it is ignored.
        #[allow(unsafe_code)]
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_: *const u8, _: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_small_and_large() {
        let small = vec![7u8; 100];
        assert_eq!(&copy_out(&small)[..], &small[..]);
        let large: Vec<u8> = (0..(HUGE_PAGE_MIN + 12345))
            .map(|i| (i * 31) as u8)
            .collect();
        let b = copy_out(&large);
        assert_eq!(&b[..], &large[..]);
        assert_ne!(b.as_ptr(), large.as_ptr());
    }

    #[test]
    fn large_vec_has_the_room_asked_for_and_works_as_a_vec() {
        for cap in [
            0,
            1,
            4096,
            HUGE_PAGE_MIN - 1,
            HUGE_PAGE_MIN,
            HUGE_PAGE_MIN + 12_345,
        ] {
            let mut v = large_vec::<u8>(cap);
            assert!(v.capacity() >= cap);
            v.resize(cap, 7);
            assert!(v.iter().all(|&b| b == 7));
            let mut w = large_vec::<f64>(cap / 8);
            assert!(w.capacity() >= cap / 8);
            w.resize(cap / 8, 1.5);
            assert!(w.iter().all(|&x| x == 1.5));
        }
    }
}
