//! Shared helpers for the benchmarks under `benches/benches` and the table tools in `src/bin`.
//!
//! [`datasets`] are deterministic and mirrored exactly by `benches/compare_codecs.py`, so the
//! Rust figures and the Python peers' figures are measured on the same bytes (both sides print
//! a [`checksum`] to prove it).

pub mod serde_cases;

pub mod datasets {
    //! Eight deterministic datasets of [`LEN`] bytes each, built from a counter-based
    //! splitmix64 generator (`mix(seed, i)`) with integer arithmetic and IEEE-exact float
    //! operations, so that numpy can reproduce them bit for bit. The first five are the ones
    //! the codecs were first tuned on; the last three ([`f32_field`], [`i64_timestamps`],
    //! [`u16_counts`]) were fixed before the decoder work of the codec-speed issue, as data
    //! of kinds the first five do not cover (native float32, sorted int64, sparse uint16).

    /// Bytes per dataset (8 MiB).
    pub const LEN: usize = 8 << 20;

    /// splitmix64 of counter `i` under `seed`.
    pub fn mix(seed: u64, i: u64) -> u64 {
        let mut z = seed.wrapping_add(i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in [0, 1) from counter `i`.
    fn uniform(seed: u64, i: u64) -> f64 {
        (mix(seed, i) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    fn f64s(v: impl Iterator<Item = f64>) -> Vec<u8> {
        v.flat_map(f64::to_le_bytes).collect()
    }

    /// float64 smooth random walk: cumulative sum of uniform steps in [-0.5, 0.5).
    pub fn f64_walk() -> Vec<u8> {
        let mut x = 0.0f64;
        f64s((0..(LEN / 8) as u64).map(|i| {
            x += uniform(1, i) - 0.5;
            x
        }))
    }

    /// float64 uniform random in [0, 1): incompressible mantissas.
    pub fn f64_uniform() -> Vec<u8> {
        f64s((0..(LEN / 8) as u64).map(|i| uniform(2, i)))
    }

    /// float32-valued float64 sine: `f64(f32(100 sin(i / 1000)))`, the low 29 mantissa bits 0.
    pub fn f64_sine_f32() -> Vec<u8> {
        f64s((0..(LEN / 8) as u64).map(|i| f64::from((100.0 * (i as f64 * 1e-3).sin()) as f32)))
    }

    /// int32 labels: runs of 64 equal labels drawn from 0..1000.
    pub fn i32_labels() -> Vec<u8> {
        (0..(LEN / 4) as u64)
            .flat_map(|i| ((mix(4, i >> 6) % 1000) as i32).to_le_bytes())
            .collect()
    }

    /// uint8 image, 2048 × 4096: a checkerboard of 64-pixel tiles, one in three black (0), the
    /// others diagonal ramps with 2 bits of noise.
    pub fn u8_image() -> Vec<u8> {
        let w = 4096u64;
        (0..LEN as u64)
            .map(|i| {
                let (y, x) = (i / w, i % w);
                if (x / 64 + y / 64) % 3 == 0 {
                    0
                } else {
                    (((3 * x + 5 * y) >> 4) + (mix(5, i) & 3)) as u8
                }
            })
            .collect()
    }

    /// float32 field on a 2048 × 1024 grid: a smooth paraboloid around 20 plus uniform noise
    /// in [0, 0.01), as a simulation or sensor grid stores it.
    pub fn f32_field() -> Vec<u8> {
        let w = 1024u64;
        (0..(LEN / 4) as u64)
            .flat_map(|i| {
                let (y, x) = (i / w, i % w);
                let noise = (mix(6, i) >> 44) as f64 * (1.0 / 1_048_576.0) * 0.01;
                let v = (x * x + 3 * y * y) as f64 * 1e-6 + 20.0 + noise;
                (v as f32).to_le_bytes()
            })
            .collect()
    }

    /// int64 nanosecond timestamps one millisecond apart with up to 1 µs of jitter, from
    /// 2023-11-14: a sorted time index.
    pub fn i64_timestamps() -> Vec<u8> {
        (0..(LEN / 8) as u64)
            .flat_map(|i| {
                let t = 1_700_000_000_000_000_000u64 + i * 1_000_000 + mix(7, i) % 1000;
                (t as i64).to_le_bytes()
            })
            .collect()
    }

    /// uint16 sparse counts: 85 % zeros, the rest uniform in 0..60 (a histogram or a sparse
    /// count matrix stored dense).
    pub fn u16_counts() -> Vec<u8> {
        (0..(LEN / 2) as u64)
            .flat_map(|i| {
                let m = mix(8, i);
                let v = if m % 100 < 85 { 0 } else { (m >> 32) % 60 };
                (v as u16).to_le_bytes()
            })
            .collect()
    }

    /// All eight: (name, element size, bytes).
    pub fn all() -> Vec<(&'static str, usize, Vec<u8>)> {
        vec![
            ("f64_walk", 8, f64_walk()),
            ("f64_uniform", 8, f64_uniform()),
            ("f64_sine_f32", 8, f64_sine_f32()),
            ("i32_labels", 4, i32_labels()),
            ("u8_image", 1, u8_image()),
            ("f32_field", 4, f32_field()),
            ("i64_timestamps", 8, i64_timestamps()),
            ("u16_counts", 2, u16_counts()),
        ]
    }
}

/// A cheap fingerprint of a dataset, computed identically by `compare_codecs.py`:
/// the wrapping sum of `word * (index + 1)` over the little-endian u64 words.
pub fn checksum(data: &[u8]) -> u64 {
    data.chunks_exact(8)
        .enumerate()
        .map(|(i, c)| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])).wrapping_mul(i as u64 + 1))
        .fold(0u64, u64::wrapping_add)
}

/// The codec settings both codec benchmarks compare, by name, for elements of `elem` bytes.
pub fn codec_configs(elem: usize) -> Vec<(&'static str, ndpickle::codec::Compression)> {
    use ndpickle::codec::{Codec, Compression, Filter};
    let shuf = Filter::Shuffle { elem_size: elem };
    let zstd = |level| Codec::Zstd { level };
    vec![
        ("lz4", Compression::Fixed(Codec::Lz4, Filter::None)),
        ("shuffle+lz4", Compression::Fixed(Codec::Lz4, shuf)),
        ("zstd1", Compression::Fixed(zstd(1), Filter::None)),
        ("shuffle+zstd1", Compression::Fixed(zstd(1), shuf)),
        ("zstd3", Compression::Fixed(zstd(3), Filter::None)),
        ("shuffle+zstd3", Compression::Fixed(zstd(3), shuf)),
        ("auto", Compression::default().with_elem_size(elem)),
    ]
}
