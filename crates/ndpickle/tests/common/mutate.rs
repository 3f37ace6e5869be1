//! A small deterministic mutation fuzzer for the reader (stable Rust, no cargo-fuzz):
//! mutates seed pickles and checks that reading never panics and stays fast.

#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::time::{Duration, Instant};

/// xorshift64*: deterministic, seedable, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Every `*.pkl` fixture (with its buffers) under `dir`, recursively.
pub fn seeds(dir: &Path) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut entries: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "pkl") {
                let data = std::fs::read(&p).unwrap();
                let bufs = (0..)
                    .map_while(|i| std::fs::read(p.with_extension(format!("buf{i}"))).ok())
                    .collect();
                out.push((data, bufs));
            }
        }
    }
    out
}

/// Seeds for the compressed in-band forms the fixtures do not hold: `ndpickle._decompress`
/// (one frame) and the chunked `_decompress_target` / `_decompress_into` chain, for lz4 and
/// zstd, with and without the shuffle, written by this crate's writer.
pub fn compressed_seeds() -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
    use ndpickle::codec::{Codec, Compression, Filter};
    use ndpickle::write::{WriteOptions, to_vec_with};
    let mut x = 0.0f64;
    let walk = ndarray::Array1::from_shape_fn(3000, |i| {
        x += ((i * 7919) % 13) as f64 - 6.0;
        x
    });
    let labels = ndarray::Array1::from_shape_fn(5000, |i| (i / 64 % 7) as i32);
    let mut out = Vec::new();
    for codec in [Codec::Lz4, Codec::Zstd { level: 1 }] {
        for filter in [Filter::None, Filter::Shuffle { elem_size: 0 }] {
            for chunk in [1 << 20, 4096] {
                let opts = WriteOptions::builder()
                    .compression(Compression::Fixed(codec, filter))
                    .compress_chunk(chunk)
                    .build()
                    .unwrap();
                out.push((to_vec_with(&walk, &opts).unwrap(), vec![]));
                out.push((to_vec_with(&labels, &opts).unwrap(), vec![]));
            }
        }
    }
    out
}

/// A pickle of `[base, numpy.ndarray((3,), '<f8', base, 8, (16,))]`, an array whose buffer is
/// an array written earlier (the form ndpickle's Python `Pickler` writes for views of an
/// array it already sent), as `ndpickle.dumps` writes it.
pub fn view_seed() -> (Vec<u8>, Vec<Vec<u8>>) {
    const HEX: &str = "800595b8000000000000005d94288c056e756d7079948c076e646172726179949394284b\
        08859468018c0564747970659493948c02663894898887945294284b038c013c944e4e4e4affffffff4a\
        ffffffff4b007494629640000000000000000000000000000000000000000000f03f00000000000000400\
        0000000000008400000000000001040000000000000144000000000000018400000000000001c40944b00\
        4e8c014394749452946803284b0385946809680f4b084b10859474945294652e";
    let hex: Vec<u8> = HEX.bytes().filter(u8::is_ascii_hexdigit).collect();
    let bytes = hex
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect();
    (bytes, vec![])
}

const INTERESTING: &[u64] = &[
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    1 << 32,
    1 << 62,
    u64::MAX,
];

/// One random mutation of `data` (`other` is used for splices).
pub fn mutate(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    let n = data.len();
    match rng.below(9) {
        0 if n > 0 => {
            let i = rng.below(n);
            data[i] ^= 1 << rng.below(8);
        }
        1 if n > 0 => {
            let i = rng.below(n);
            data[i] = rng.next() as u8;
        }
        2 => {
            let i = rng.below(n + 1);
            let op = ndpickle_opcode(rng);
            data.insert(i, op);
        }
        3 if n > 0 => {
            let i = rng.below(n);
            let len = 1 + rng.below(8.min(n - i));
            data.drain(i..i + len);
        }
        4 if n > 0 => data.truncate(rng.below(n)),
        5 if n >= 8 => {
            // Overwrite a possible length field with an interesting value.
            let i = rng.below(n - 7);
            let v = INTERESTING[rng.below(INTERESTING.len())];
            let width = [1usize, 2, 4, 8][rng.below(4)];
            data[i..i + width].copy_from_slice(&v.to_le_bytes()[..width]);
        }
        6 if !other.is_empty() && n > 0 => {
            let i = rng.below(n);
            let j = rng.below(other.len());
            let len = rng.below(64).min(other.len() - j);
            data.splice(i..i, other[j..j + len].iter().copied());
        }
        7 if n > 2 => {
            // Duplicate a chunk (repeats opcodes: DUP, GET, MARK...).
            let i = rng.below(n);
            let len = 1 + rng.below(16.min(n - i));
            let chunk: Vec<u8> = data[i..i + len].to_vec();
            for _ in 0..1 + rng.below(8) {
                data.splice(i..i, chunk.iter().copied());
            }
        }
        _ => {
            let i = rng.below(n + 1);
            data.insert(i, rng.next() as u8);
        }
    }
}

fn ndpickle_opcode(rng: &mut Rng) -> u8 {
    const OPS: &[u8] = b"(.012FIJKLMNPQRSTUVXabcde}ghijl]opqrstu)G\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8bBC\x8c\x8d\x8e\x8f\x90\x91\x92\x93\x94\x95\x96\x97\x98";
    OPS[rng.below(OPS.len())]
}

/// Runs `iterations` mutants; returns (loaded, rejected, slowest) or panics on a failure
/// with the offending input in hex.
pub fn run(
    seeds: &[(Vec<u8>, Vec<Vec<u8>>)],
    iterations: usize,
    seed: u64,
) -> (usize, usize, Duration) {
    assert!(!seeds.is_empty(), "no seeds");
    let mut rng = Rng::new(seed);
    let opts = ndpickle::ReadOptions::builder()
        .max_alloc_bytes(256 << 20)
        .max_copied_bytes(32 << 20)
        .build()
        .unwrap();
    let (mut ok, mut err, mut slowest) = (0, 0, Duration::ZERO);
    for _ in 0..iterations {
        let (data, bufs) = &seeds[rng.below(seeds.len())];
        let other = &seeds[rng.below(seeds.len())].0;
        let mut m = data.clone();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut rng, &mut m, other);
        }
        let t = Instant::now();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let v = ndpickle::from_payload_with(&m, bufs.clone(), &opts);
            if let Ok(v) = &v
                && let Some(a) = v.as_array()
            {
                let _ = a.to_owned_array::<f64>();
            }
            v.is_ok()
        }));
        let took = t.elapsed();
        slowest = slowest.max(took);
        match r {
            Ok(true) => ok += 1,
            Ok(false) => err += 1,
            Err(_) => panic!("reader panicked on input {}", hex(&m)),
        }
        assert!(
            took < Duration::from_secs(5),
            "took {took:?} on input {}",
            hex(&m)
        );
    }
    (ok, err, slowest)
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
