//! The byte-shuffle filter: a byte transposition by element size, the same layout as blosc's
//! shuffle.
//!
//! A buffer of `n = len / elem_size` elements is viewed as an `n × elem_size` byte matrix and
//! transposed: output byte `j * n + i` is input byte `i * elem_size + j`, so all first bytes of
//! the elements come first, then all second bytes, and so on. The `len % elem_size` trailing
//! bytes that do not form a whole element are copied unchanged at the end. On numeric arrays the
//! high-order bytes (sign, exponent, top of the mantissa) vary slowly and end up next to each
//! other, which is what lets lz4 / zstd find long matches.
//!
//! Speed (one core, one 1 MiB block of `f64_walk`, the codec's default block size; GiB/s
//! shuffle / unshuffle; `cargo bench -p ndpickle-benches --bench codec -- "^shuffle/"`):
//!
//! | elem size | naive byte loop | portable | SSE2 | AVX2 |
//! |---|---|---|---|---|
//! | 2 | 0.9 / – | 3.7 / 25 | 17 / 22 | 33 / 32 |
//! | 4 | 1.3 / – | 4.5 / 5.3 | 17 / 20 | 30 / 28 |
//! | 8 | 1.2 / – | 4.0 / 4.8 | 12 / 14 | 15 / 24 |
//! | 16 | 0.3 / – | 2.3 / 2.4 | 6.3 / 6.2 | 8.8 / 11 |
//!
//! Three kernel sets ([`Kernels`]) cover sizes 2, 4, 8 and 16; [`Kernels::detect`] picks the
//! fastest the CPU runs, once per call (`std` caches the feature test). On x86-64, the SSE2
//! byte-interleave kernels (module `sse2`; SSE2 is part of the x86-64 baseline) and, on CPUs
//! with AVX2, the same network on two tiles at once (module `avx2`). Elsewhere, portable
//! kernels with compile-time element sizes, so that every index is a constant and bounds
//! checks vanish: a word-level 8 × 8 byte transposition (three rounds of masked swaps on eight
//! `u64`s, 64 bytes at a time) for shuffling sizes 2, 4, 8 and unshuffling 4 and 8, and a
//! fixed-size stack tile of [`LANES`] elements for the rest. Other element sizes use a plain
//! scalar loop. Tests force every set on every machine ([`shuffle_with`]).

use std::mem::MaybeUninit;

/// Elements transposed per tile by the blocked kernels.
pub const LANES: usize = 16;

/// A set of shuffle kernels. [`Kernels::detect`] picks the fastest one this CPU runs; the
/// others stay selectable so that tests and benchmarks run every path on one machine. A set
/// the CPU cannot run falls back to the next slower one it can (AVX2, then SSE2, then
/// portable), so every choice is safe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// Portable Rust: the word-level 8 × 8 transposition and fixed-size stack tiles.
    Portable,
    /// SSE2 byte-interleave tiles of 16 elements (part of the x86-64 baseline).
    Sse2,
    /// AVX2 byte-interleave tiles of 32 elements (x86-64 CPUs that report AVX2).
    Avx2,
}

impl Kernels {
    /// Every kernel set, slowest first.
    pub const ALL: [Kernels; 3] = [Kernels::Portable, Kernels::Sse2, Kernels::Avx2];

    /// The fastest set this CPU runs (the feature test is cached by `std`).
    pub fn detect() -> Self {
        if Self::Avx2.is_available() {
            Self::Avx2
        } else if Self::Sse2.is_available() {
            Self::Sse2
        } else {
            Self::Portable
        }
    }

    /// Whether this CPU runs the set itself rather than a fallback.
    pub fn is_available(self) -> bool {
        match self {
            Self::Portable => true,
            Self::Sse2 => cfg!(target_arch = "x86_64"),
            Self::Avx2 => avx2_detected(),
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn avx2_detected() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

#[cfg(not(target_arch = "x86_64"))]
fn avx2_detected() -> bool {
    false
}

/// Runs `$($kernel)::+::<E>($args)` for the element sizes with dedicated SIMD kernels (2, 4,
/// 8, 16) and evaluates to whether one ran.
#[cfg(target_arch = "x86_64")]
macro_rules! by_size {
    ($elem:expr, $($kernel:ident)::+, ($($arg:expr),*)) => {
        match $elem {
            2 => { $($kernel)::+::<2>($($arg),*); true }
            4 => { $($kernel)::+::<4>($($arg),*); true }
            8 => { $($kernel)::+::<8>($($arg),*); true }
            16 => { $($kernel)::+::<16>($($arg),*); true }
            _ => false,
        }
    };
}

/// Runs kernel `$name` (`shuffle` or `unshuffle`) of the fastest SIMD set `$kernels` allows
/// on this CPU, for the element sizes those sets cover; evaluates to whether one ran.
macro_rules! simd {
    ($kernels:expr, $elem:expr, $name:ident, ($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        let ran = ($kernels == Kernels::Avx2 && avx2_detected() && {
            // SAFETY: AVX2 was detected at run time just before; the kernels are otherwise
            // safe code.
            #[allow(unsafe_code)]
            unsafe { by_size!($elem, avx2::$name, ($($arg),*)) }
        }) || ($kernels != Kernels::Portable && {
            // SAFETY: SSE2 is part of the x86-64 baseline, so every x86-64 CPU has it.
            #[allow(unsafe_code)]
            unsafe { by_size!($elem, sse2::$name, ($($arg),*)) }
        });
        #[cfg(not(target_arch = "x86_64"))]
        let ran = { let _ = $kernels; false };
        ran
    }};
}

/// Shuffles `src` into `dst` by `elem_size` with the kernels this CPU runs fastest.
///
/// # Panics
/// If `src.len() != dst.len()` or `elem_size == 0` (internal callers guarantee both).
pub fn shuffle(elem_size: usize, src: &[u8], dst: &mut [u8]) {
    shuffle_with(Kernels::detect(), elem_size, src, dst);
}

/// [`shuffle`] with a chosen kernel set.
///
/// # Panics
/// As [`shuffle`].
pub fn shuffle_with(kernels: Kernels, elem_size: usize, src: &[u8], dst: &mut [u8]) {
    assert_eq!(src.len(), dst.len(), "shuffle buffers differ in length");
    assert!(elem_size > 0, "element size is zero");
    let n = src.len() / elem_size;
    let body = n * elem_size;
    if elem_size == 1 || n == 0 {
        dst.copy_from_slice(src);
        return;
    }
    shuffle_body(kernels, elem_size, &src[..body], &mut dst[..body], n);
    dst[body..].copy_from_slice(&src[body..]);
}

/// Transposes the `n` whole elements of `s` into `d`.
fn shuffle_body(kernels: Kernels, elem_size: usize, s: &[u8], d: &mut [u8], n: usize) {
    if simd!(kernels, elem_size, shuffle, (s, d, n)) {
        return;
    }
    match elem_size {
        2 => shuffle_words::<2>(s, d, n),
        4 => shuffle_words::<4>(s, d, n),
        8 => shuffle_words::<8>(s, d, n),
        16 => shuffle_tiles::<16>(s, d, n),
        _ => shuffle_scalar(elem_size, s, d, 0, n),
    }
}

/// Inverts [`shuffle`]: `unshuffle(e, shuffled, out)` restores the original bytes.
///
/// # Panics
/// If `src.len() != dst.len()` or `elem_size == 0`.
pub fn unshuffle(elem_size: usize, src: &[u8], dst: &mut [u8]) {
    unshuffle_with(Kernels::detect(), elem_size, src, dst);
}

/// [`unshuffle`] with a chosen kernel set.
///
/// # Panics
/// As [`unshuffle`].
pub fn unshuffle_with(kernels: Kernels, elem_size: usize, src: &[u8], dst: &mut [u8]) {
    // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have the same layout, and the kernels only
    // write initialized bytes, so `dst` stays initialized.
    #[allow(unsafe_code)]
    let dst = unsafe { &mut *(std::ptr::from_mut(dst) as *mut [MaybeUninit<u8>]) };
    assert_eq!(src.len(), dst.len(), "shuffle buffers differ in length");
    assert!(elem_size > 0, "element size is zero");
    let n = src.len() / elem_size;
    let planes: Vec<&[u8]> = (0..elem_size).map(|p| &src[p * n..(p + 1) * n]).collect();
    unshuffle_planes_with(kernels, elem_size, &planes, &src[elem_size * n..], dst);
}

/// [`unshuffle`] into memory that need not be initialized (a decoder's fresh output):
/// every byte of `dst` is written, so the caller may treat it as initialized afterwards.
///
/// # Panics
/// If `src.len() != dst.len()` or `elem_size == 0`.
pub(crate) fn unshuffle_uninit(elem_size: usize, src: &[u8], dst: &mut [MaybeUninit<u8>]) {
    assert_eq!(src.len(), dst.len(), "shuffle buffers differ in length");
    assert!(elem_size > 0, "element size is zero");
    let n = src.len() / elem_size;
    let planes: Vec<&[u8]> = (0..elem_size).map(|p| &src[p * n..(p + 1) * n]).collect();
    unshuffle_planes(elem_size, &planes, &src[elem_size * n..], dst);
}

/// [`unshuffle_uninit`] from byte planes that need not be adjacent (a decoder's planes,
/// some decoded into scratch, some still in the frame): `planes[b]` holds byte `b` of every
/// element, and `tail` the trailing bytes that form no whole element. Every byte of `dst`
/// is written.
///
/// # Panics
/// Unless there are `elem_size` planes of one length `n` and `dst` is `elem_size * n +
/// tail.len()` bytes long.
pub(crate) fn unshuffle_planes(
    elem_size: usize,
    planes: &[&[u8]],
    tail: &[u8],
    dst: &mut [MaybeUninit<u8>],
) {
    unshuffle_planes_with(Kernels::detect(), elem_size, planes, tail, dst);
}

/// [`unshuffle_planes`] with a chosen kernel set.
fn unshuffle_planes_with(
    kernels: Kernels,
    elem_size: usize,
    planes: &[&[u8]],
    tail: &[u8],
    dst: &mut [MaybeUninit<u8>],
) {
    assert!(elem_size > 0, "element size is zero");
    assert_eq!(planes.len(), elem_size, "one plane per byte of an element");
    let n = planes[0].len();
    assert!(
        planes.iter().all(|p| p.len() == n),
        "planes differ in length"
    );
    let body = n * elem_size;
    assert_eq!(
        dst.len(),
        body + tail.len(),
        "shuffle buffers differ in length"
    );
    let (d, rest) = dst.split_at_mut(body);
    if elem_size == 1 || n == 0 {
        if n > 0 {
            write_bytes(d, planes[0]);
        }
        write_bytes(rest, tail);
        return;
    }
    unshuffle_body(kernels, elem_size, planes, d, n);
    write_bytes(rest, tail);
}

/// Interleaves the `n`-byte `planes` into `d`.
fn unshuffle_body(
    kernels: Kernels,
    elem_size: usize,
    planes: &[&[u8]],
    d: &mut [MaybeUninit<u8>],
    n: usize,
) {
    if simd!(kernels, elem_size, unshuffle, (planes, d, n)) {
        return;
    }
    match elem_size {
        2 => unshuffle_tiles::<2>(planes, d, n),
        4 => unshuffle_words::<4>(planes, d, n),
        8 => unshuffle_words::<8>(planes, d, n),
        16 => unshuffle_tiles::<16>(planes, d, n),
        _ => unshuffle_scalar(elem_size, planes, d, 0, n),
    }
}

/// Copies `src` into `dst` (of the same length), which need not be initialized
/// (`<[MaybeUninit<u8>]>::write_copy_of_slice`, stable only since Rust 1.93).
pub(crate) fn write_bytes(dst: &mut [MaybeUninit<u8>], src: &[u8]) {
    assert_eq!(
        dst.len(),
        src.len(),
        "copy between slices of different lengths"
    );
    for (d, &s) in dst.iter_mut().zip(src) {
        d.write(s);
    }
}

/// The reference transposition of elements `from..n`, one byte at a time.
fn shuffle_scalar(elem_size: usize, src: &[u8], dst: &mut [u8], from: usize, n: usize) {
    for j in 0..elem_size {
        let plane = &mut dst[j * n..(j + 1) * n];
        for i in from..n {
            plane[i] = src[i * elem_size + j];
        }
    }
}

/// The reference inverse transposition of elements `from..n`, from byte planes.
fn unshuffle_scalar(
    elem_size: usize,
    planes: &[&[u8]],
    dst: &mut [MaybeUninit<u8>],
    from: usize,
    n: usize,
) {
    for (j, plane) in planes.iter().enumerate().take(elem_size) {
        for i in from..n {
            dst[i * elem_size + j].write(plane[i]);
        }
    }
}

/// Transposes whole tiles of [`LANES`] elements of `N` bytes, then the leftover elements.
fn shuffle_tiles<const N: usize>(src: &[u8], dst: &mut [u8], n: usize) {
    let tiles = n / LANES;
    for (t, chunk) in src.chunks_exact(LANES * N).enumerate() {
        let mut tile = [[0u8; LANES]; N];
        for (i, elem) in chunk.chunks_exact(N).enumerate() {
            for j in 0..N {
                tile[j][i] = elem[j];
            }
        }
        let at = t * LANES;
        for (j, row) in tile.iter().enumerate() {
            dst[j * n + at..j * n + at + LANES].copy_from_slice(row);
        }
    }
    shuffle_scalar(N, src, dst, tiles * LANES, n);
}

/// Inverse of [`shuffle_tiles`].
fn unshuffle_tiles<const N: usize>(planes: &[&[u8]], dst: &mut [MaybeUninit<u8>], n: usize) {
    let tiles = n / LANES;
    for (t, chunk) in dst.chunks_exact_mut(LANES * N).enumerate() {
        let at = t * LANES;
        let mut tile = [[0u8; LANES]; N];
        for (j, row) in tile.iter_mut().enumerate() {
            row.copy_from_slice(&planes[j][at..at + LANES]);
        }
        for (i, elem) in chunk.chunks_exact_mut(N).enumerate() {
            for j in 0..N {
                elem[j].write(tile[j][i]);
            }
        }
    }
    unshuffle_scalar(N, planes, dst, tiles * LANES, n);
}

/// Transposes an 8 × 8 byte matrix held as eight little-endian words: afterwards byte `i` of
/// word `j` is what byte `j` of word `i` was. Three rounds swap 1-, 2- and 4-byte sub-blocks.
#[inline(always)]
fn transpose8x8(a: &mut [u64; 8]) {
    const M1: u64 = 0x00FF_00FF_00FF_00FF;
    const M2: u64 = 0x0000_FFFF_0000_FFFF;
    const M4: u64 = 0x0000_0000_FFFF_FFFF;
    for i in [0, 2, 4, 6] {
        let t = ((a[i] >> 8) ^ a[i + 1]) & M1;
        a[i + 1] ^= t;
        a[i] ^= t << 8;
    }
    for i in [0, 1, 4, 5] {
        let t = ((a[i] >> 16) ^ a[i + 2]) & M2;
        a[i + 2] ^= t;
        a[i] ^= t << 16;
    }
    for i in [0, 1, 2, 3] {
        let t = ((a[i] >> 32) ^ a[i + 4]) & M4;
        a[i + 4] ^= t;
        a[i] ^= t << 32;
    }
}

/// Element sizes 2, 4 and 8: a group is `8 * G`
/// elements where `G = 8 / E` elements share a word: word `i` holds elements `i, i + 8, ...,
/// i + 8 (G - 1)` side by side. After the 8 × 8 byte transposition, word `b + E g` holds byte `b`
/// of elements `8 g .. 8 g + 8`, i.e. eight consecutive bytes of plane `b`.
fn shuffle_words<const E: usize>(src: &[u8], dst: &mut [u8], n: usize) {
    let g_per_word = 8 / E;
    let group = 8 * g_per_word;
    for (g, chunk) in src.chunks_exact(64).enumerate() {
        let mut a = [0u64; 8];
        for (i, w) in a.iter_mut().enumerate() {
            let mut bytes = [0u8; 8];
            for k in 0..g_per_word {
                let e = (i + 8 * k) * E;
                bytes[k * E..k * E + E].copy_from_slice(&chunk[e..e + E]);
            }
            *w = u64::from_le_bytes(bytes);
        }
        transpose8x8(&mut a);
        let at = g * group;
        for (j, w) in a.iter().enumerate() {
            let (b, k) = (j % E, j / E);
            let pos = b * n + at + 8 * k;
            dst[pos..pos + 8].copy_from_slice(&w.to_le_bytes());
        }
    }
    let done = src.len() / 64 * group;
    shuffle_scalar(E, src, dst, done, n);
}

/// Inverse of [`shuffle_words`] (the transposition is its own inverse).
fn unshuffle_words<const E: usize>(planes: &[&[u8]], dst: &mut [MaybeUninit<u8>], n: usize) {
    let g_per_word = 8 / E;
    let group = 8 * g_per_word;
    for (g, chunk) in dst.chunks_exact_mut(64).enumerate() {
        let at = g * group;
        let mut a = [0u64; 8];
        for (j, w) in a.iter_mut().enumerate() {
            let (b, k) = (j % E, j / E);
            let pos = at + 8 * k;
            *w = u64::from_le_bytes(planes[b][pos..pos + 8].try_into().unwrap_or([0; 8]));
        }
        transpose8x8(&mut a);
        for (i, w) in a.iter().enumerate() {
            let bytes = w.to_le_bytes();
            for k in 0..g_per_word {
                let e = (i + 8 * k) * E;
                write_bytes(&mut chunk[e..e + E], &bytes[k * E..k * E + E]);
            }
        }
    }
    let done = dst.len() / 64 * group;
    unshuffle_scalar(E, planes, dst, done, n);
}

/// Defines `stage` for one vector type: vector `i` is paired with vector `i + E/2`, and their
/// byte interleavings (`$lo`, `$hi`: low and high halves, per 128-bit lane) become vectors `2i`
/// and `2i + 1` (module `sse2` explains why repeating it transposes a tile).
#[cfg(target_arch = "x86_64")]
macro_rules! interleave_stage {
    ($feature:literal, $vec:ty, $lo:ident, $hi:ident) => {
        #[inline]
        #[target_feature(enable = $feature)]
        fn stage<const E: usize>(r: [$vec; E]) -> [$vec; E] {
            std::array::from_fn(|j| {
                let (a, b) = (r[j / 2], r[j / 2 + E / 2]);
                if j % 2 == 0 { $lo(a, b) } else { $hi(a, b) }
            })
        }
    };
}

/// SSE2 tile kernels for element sizes 2, 4, 8 and 16 (SSE2 is part of the x86-64 baseline).
///
/// A tile of 16 elements of `E` bytes fills `E` vectors. One *stage* pairs vector `i` with
/// vector `i + E/2` and writes their byte interleavings (`unpacklo`, `unpackhi`) to vectors
/// `2i` and `2i + 1`. Numbering the tile's bytes by a `4 + log2 E`-bit index (4 bits of position
/// in a vector, then the vector), a stage rotates that index left by one bit. The byte of
/// element `e`, plane `b` sits at index `e·E + b` before the shuffle and at `b·16 + e` after it:
/// a rotation by 4, i.e. four stages; the unshuffle is the remaining rotation, `log2 E` stages.
///
/// The kernels are safe code (vectors move in and out of byte slices through `bytemuck`, and
/// the intrinsics used take no pointers); only entering them needs `unsafe`, because Rust does
/// not count baseline target features as enabled for `#[target_feature]` functions.
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use super::{shuffle_scalar, unshuffle_scalar};
    use std::arch::x86_64::{__m128i, _mm_unpackhi_epi8, _mm_unpacklo_epi8};
    use std::mem::MaybeUninit;

    /// Elements per tile.
    const TILE: usize = 16;

    /// The first 16 bytes of `bytes` as a vector.
    #[inline(always)]
    pub(super) fn load(bytes: &[u8]) -> __m128i {
        bytemuck::cast::<[u8; 16], __m128i>(bytes[..16].try_into().unwrap_or([0; 16]))
    }

    #[inline(always)]
    fn store(bytes: &mut [u8], v: __m128i) {
        bytes[..16].copy_from_slice(&bytemuck::cast::<__m128i, [u8; 16]>(v));
    }

    #[inline(always)]
    fn store_uninit(bytes: &mut [MaybeUninit<u8>], v: __m128i) {
        super::write_bytes(&mut bytes[..16], &bytemuck::cast::<__m128i, [u8; 16]>(v));
    }

    interleave_stage!("sse2", __m128i, _mm_unpacklo_epi8, _mm_unpackhi_epi8);

    /// Shuffles whole tiles of `src` (`n` elements of `E` bytes), then the leftover elements.
    #[target_feature(enable = "sse2")]
    pub(super) fn shuffle<const E: usize>(src: &[u8], dst: &mut [u8], n: usize) {
        let tiles = n / TILE;
        for (t, chunk) in src.chunks_exact(TILE * E).take(tiles).enumerate() {
            let mut r: [__m128i; E] = std::array::from_fn(|k| load(&chunk[16 * k..]));
            for _ in 0..4 {
                r = stage(r);
            }
            for (b, v) in r.into_iter().enumerate() {
                store(&mut dst[b * n + TILE * t..], v);
            }
        }
        shuffle_scalar(E, src, dst, tiles * TILE, n);
    }

    /// Inverse of [`shuffle`].
    #[target_feature(enable = "sse2")]
    pub(super) fn unshuffle<const E: usize>(
        planes: &[&[u8]],
        dst: &mut [MaybeUninit<u8>],
        n: usize,
    ) {
        let tiles = n / TILE;
        for (t, chunk) in dst.chunks_exact_mut(TILE * E).take(tiles).enumerate() {
            let mut r: [__m128i; E] = std::array::from_fn(|b| load(&planes[b][TILE * t..]));
            for _ in 0..E.trailing_zeros() {
                r = stage(r);
            }
            for (k, v) in r.into_iter().enumerate() {
                store_uninit(&mut chunk[16 * k..], v);
            }
        }
        unshuffle_scalar(E, planes, dst, tiles * TILE, n);
    }
}

/// AVX2 kernels: the SSE2 network of module `sse2` on two tiles at once. AVX2's byte
/// interleaves work within each 128-bit lane, so lane 0 of every vector carries a tile of 16
/// elements and lane 1 the next one. Shuffling, each vector is loaded from the two tiles'
/// matching 16 bytes, and after the four stages vector `b` holds plane `b` of 32 consecutive
/// elements, one 32-byte store. Unshuffling, a 32-byte load of a plane already splits into
/// the two tiles, and each output vector's lanes go to the two tiles' places.
///
/// As in `sse2`, the kernels are safe code; entering them needs `unsafe` because the caller
/// must know the CPU has AVX2.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::sse2::load as load128;
    use super::{shuffle_scalar, unshuffle_scalar, write_bytes};
    use std::arch::x86_64::{
        __m256i, _mm256_set_m128i, _mm256_unpackhi_epi8, _mm256_unpacklo_epi8,
    };
    use std::mem::MaybeUninit;

    /// Elements per tile pair.
    const TILE: usize = 32;

    #[inline(always)]
    fn load(bytes: &[u8]) -> __m256i {
        bytemuck::cast::<[u8; 32], __m256i>(bytes[..32].try_into().unwrap_or([0; 32]))
    }

    interleave_stage!("avx2", __m256i, _mm256_unpacklo_epi8, _mm256_unpackhi_epi8);

    /// Shuffles whole tile pairs of `src` (`n` elements of `E` bytes), then the leftover
    /// elements.
    #[target_feature(enable = "avx2")]
    pub(super) fn shuffle<const E: usize>(src: &[u8], dst: &mut [u8], n: usize) {
        let tiles = n / TILE;
        let half = 16 * E;
        for (t, chunk) in src.chunks_exact(TILE * E).take(tiles).enumerate() {
            let mut r: [__m256i; E] = std::array::from_fn(|k| {
                _mm256_set_m128i(load128(&chunk[half + 16 * k..]), load128(&chunk[16 * k..]))
            });
            for _ in 0..4 {
                r = stage(r);
            }
            for (b, v) in r.into_iter().enumerate() {
                let at = b * n + TILE * t;
                dst[at..at + 32].copy_from_slice(&bytemuck::cast::<__m256i, [u8; 32]>(v));
            }
        }
        shuffle_scalar(E, src, dst, tiles * TILE, n);
    }

    /// Inverse of [`shuffle`].
    #[target_feature(enable = "avx2")]
    pub(super) fn unshuffle<const E: usize>(
        planes: &[&[u8]],
        dst: &mut [MaybeUninit<u8>],
        n: usize,
    ) {
        let tiles = n / TILE;
        let chunks = dst.chunks_exact_mut(TILE * E).take(tiles);
        // Unshuffles one tile pair, `r[b]` holding plane `b` of its 32 elements, into `chunk`.
        let put_tile_pair = |mut r: [__m256i; E], chunk: &mut [MaybeUninit<u8>]| {
            for _ in 0..E.trailing_zeros() {
                r = stage(r);
            }
            let (lo, hi) = chunk.split_at_mut(16 * E);
            for (k, v) in r.into_iter().enumerate() {
                let bytes = bytemuck::cast::<__m256i, [u8; 32]>(v);
                write_bytes(&mut lo[16 * k..16 * k + 16], &bytes[..16]);
                write_bytes(&mut hi[16 * k..16 * k + 16], &bytes[16..]);
            }
        };
        if E <= 4 {
            // One iterator of 32-byte pieces per plane keeps the planes' pointers in
            // registers (indexing `planes[b]` for every tile reloads each plane's pointer and
            // length): 2 and 4-byte elements unshuffle 11-15 % faster (`cargo bench --bench
            // codec -- unshuffle/Avx2`). With 8 planes and more the iterators no longer fit
            // in registers, and indexing is as fast or faster.
            let mut pieces: [std::slice::ChunksExact<'_, u8>; E] =
                std::array::from_fn(|b| planes[b][..tiles * TILE].chunks_exact(TILE));
            for chunk in chunks {
                let r = std::array::from_fn(|b| load(pieces[b].next().unwrap_or(&[0; TILE])));
                put_tile_pair(r, chunk);
            }
        } else {
            for (t, chunk) in chunks.enumerate() {
                let r = std::array::from_fn(|b| load(&planes[b][TILE * t..]));
                put_tile_pair(r, chunk);
            }
        }
        unshuffle_scalar(E, planes, dst, tiles * TILE, n);
    }
}

/// The naive byte-at-a-time shuffle, kept as the reference for tests and benchmarks.
pub fn shuffle_naive(elem_size: usize, src: &[u8], dst: &mut [u8]) {
    assert_eq!(src.len(), dst.len(), "shuffle buffers differ in length");
    assert!(elem_size > 0, "element size is zero");
    let n = src.len() / elem_size;
    let body = n * elem_size;
    for i in 0..n {
        for j in 0..elem_size {
            dst[j * n + i] = src[i * elem_size + j];
        }
    }
    dst[body..].copy_from_slice(&src[body..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 131 + i / 7) as u8).collect()
    }

    #[test]
    fn matches_reference_and_inverts() {
        for elem in [1, 2, 3, 4, 5, 7, 8, 12, 16, 17] {
            for len in [0, 1, 7, 15, 16, 63, 64, 65, 127, 128, 129, 255, 1000, 4099] {
                let src = data(len);
                let mut fast = vec![0; len];
                let mut slow = vec![0; len];
                shuffle(elem, &src, &mut fast);
                shuffle_naive(elem, &src, &mut slow);
                assert_eq!(fast, slow, "elem {elem} len {len}");
                let mut back = vec![0; len];
                unshuffle(elem, &fast, &mut back);
                assert_eq!(back, src, "elem {elem} len {len}");
            }
        }
    }

    #[test]
    fn every_kernel_set_matches_reference() {
        // Each set forced in turn (a set this CPU lacks runs its fallback, checked as well),
        // on lengths around the tile sizes of every kernel (16 and 32 elements, 64 bytes),
        // with and without trailing bytes.
        for kernels in Kernels::ALL {
            for elem in [1, 2, 3, 4, 5, 8, 12, 16, 17] {
                for n in [0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 95, 96, 500] {
                    for extra in [0, elem / 2] {
                        let len = n * elem + extra;
                        let src = data(len);
                        let (mut fast, mut slow) = (vec![0; len], vec![0; len]);
                        shuffle_with(kernels, elem, &src, &mut fast);
                        shuffle_naive(elem, &src, &mut slow);
                        assert_eq!(fast, slow, "{kernels:?} elem {elem} len {len}");
                        let mut back = vec![0x5A; len];
                        unshuffle_with(kernels, elem, &fast, &mut back);
                        assert_eq!(back, src, "{kernels:?} elem {elem} len {len}");
                        // Into memory the kernels must fill entirely: initialized with a
                        // filler, so that reading it back is defined even if a kernel missed
                        // a byte (the comparison then fails).
                        let mut back = vec![MaybeUninit::new(0xA5); len];
                        let planes: Vec<&[u8]> =
                            (0..elem).map(|p| &fast[p * n..(p + 1) * n]).collect();
                        unshuffle_planes_with(kernels, elem, &planes, &fast[n * elem..], &mut back);
                        // SAFETY: every byte was initialized with the filler before the call,
                        // and the kernels write only initialized bytes.
                        #[allow(unsafe_code)]
                        let back: Vec<u8> =
                            back.iter().map(|b| unsafe { b.assume_init() }).collect();
                        assert_eq!(back, src, "{kernels:?} elem {elem} len {len}");
                    }
                }
            }
        }
    }

    #[test]
    fn detect_picks_an_available_set() {
        assert!(Kernels::detect().is_available());
        assert!(Kernels::Portable.is_available());
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            Kernels::detect() == Kernels::Avx2,
            std::arch::is_x86_feature_detected!("avx2")
        );
    }

    #[test]
    fn blosc_layout() {
        // Two little-endian u16 values 0x0201 and 0x0403, plus one trailing byte.
        let mut out = [0u8; 5];
        shuffle(2, &[1, 2, 3, 4, 9], &mut out);
        assert_eq!(out, [1, 3, 2, 4, 9]);
    }
}
