//! The input format of the cargo-fuzz targets (`crates/ndpickle/fuzz`) and the checks the
//! `read` and `codec` targets run, shared with the seed writer (`examples/fuzz_seeds.rs`) and
//! the regression tests (`tests/fuzz_regressions.rs`), so that a file found by the fuzzer
//! replays byte for byte in `cargo test`.
//!
//! An input is parts separated by [`SEP`]: the first is the pickle (or, for `codec`, a mode
//! byte and parameters), the others out-of-band buffers. A buffer part that opens with a codec
//! header (`NDPZ`...) whose parse succeeds is a compressed buffer: the header, then the frame.

#![allow(dead_code, unreachable_pub)]

use bytes::Bytes;
use ndpickle::codec::{self, Codec, CodecOptions, Compression, Filter, FrameInfo, Scratch};
use ndpickle::internals::shuffle;
use ndpickle::{DType, InBuffer, NdArray, ReadOptions, Scalar, Value};

/// Separates the parts of an input (six bytes unlikely in a pickle or a frame).
pub const SEP: &[u8] = b"\xfe\xfdNDFZ";

/// At most this many parts are used (the rest of the input is ignored).
pub const MAX_PARTS: usize = 32;

/// The reader limits the targets run under: small enough that a run stays far below the
/// fuzzer's RSS cap, so an allocation the limits should have stopped shows up as an OOM.
pub const MAX_ALLOC: u64 = 64 << 20;
/// Copy limit for the targets (memo references duplicated).
pub const MAX_COPIED: u64 = 16 << 20;
/// Decompressed size limit per buffer for the targets.
pub const MAX_DECOMPRESSED: u64 = 32 << 20;

/// Accessors that copy (`to_owned_array`) are only called on arrays up to this many bytes:
/// a stride-0 broadcast of one element may legitimately describe terabytes.
pub const MAX_OWNED: usize = 16 << 20;

/// Splits `data` at [`SEP`] into at most [`MAX_PARTS`] parts.
pub fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while parts.len() + 1 < MAX_PARTS {
        match rest.windows(SEP.len()).position(|w| w == SEP) {
            Some(i) => {
                parts.push(&rest[..i]);
                rest = &rest[i + SEP.len()..];
            }
            None => break,
        }
    }
    parts.push(rest);
    parts
}

/// Joins parts into one input (the inverse of [`split`]).
pub fn join<P: AsRef<[u8]>>(parts: &[P]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(SEP);
        }
        out.extend_from_slice(p.as_ref());
    }
    out
}

/// A buffer part as an [`InBuffer`]: compressed when it opens with a valid codec header.
pub fn in_buffer(part: &[u8]) -> InBuffer {
    if part.starts_with(&codec::header::MAGIC)
        && let Ok((info, used)) = FrameInfo::from_bytes(part)
    {
        return InBuffer::compressed(Bytes::copy_from_slice(&part[used..]), info);
    }
    InBuffer::raw(Bytes::copy_from_slice(part))
}

/// A compressed buffer part: the header, then the frame.
pub fn compressed_part(info: &FrameInfo, frame: &[u8]) -> Vec<u8> {
    let mut out = info.to_bytes();
    out.extend_from_slice(frame);
    out
}

/// The options the targets read with ([`MAX_ALLOC`] and friends), optionally with opaque
/// globals.
pub fn options(opaque: bool) -> ReadOptions {
    ReadOptions::builder()
        .max_alloc_bytes(MAX_ALLOC)
        .max_copied_bytes(MAX_COPIED)
        .max_decompressed_bytes(MAX_DECOMPRESSED)
        .opaque_globals(opaque)
        .build()
        .unwrap()
}

/// The `read` target: every entry point of the reader on the pickle and its buffers, and
/// every accessor on whatever loads. Panics (the finding) only on a reader bug.
pub fn check_read(data: &[u8]) {
    let parts = split(data);
    let pickle = parts[0];
    let buffers: Vec<InBuffer> = parts[1..].iter().map(|p| in_buffer(p)).collect();
    let opts = options(false);
    if let Ok(v) = ndpickle::from_payload_with(pickle, buffers.clone(), &opts) {
        exercise(&v, 0);
    }
    if let Ok(v) =
        ndpickle::from_bytes_payload_with(Bytes::copy_from_slice(pickle), buffers.clone(), &opts)
    {
        exercise(&v, 0);
    }
    if let Ok(v) = ndpickle::from_payload_with(pickle, buffers, &options(true)) {
        exercise(&v, 0);
    }
}

/// Calls every accessor of `v` and, recursively, of what it holds.
pub fn exercise(v: &Value, depth: usize) {
    let _ = (
        v.type_name(),
        v.as_i64(),
        v.as_f64(),
        v.as_str(),
        v.as_bytes(),
    );
    let _ = (v.as_seq(), v.as_dict(), v.get("shape"));
    if depth > 200 {
        return;
    }
    match v {
        Value::List(items) | Value::Tuple(items) | Value::Set(items) | Value::FrozenSet(items) => {
            items.iter().for_each(|x| exercise(x, depth + 1));
        }
        Value::Dict(items) => {
            for (k, x) in items {
                exercise(k, depth + 1);
                exercise(x, depth + 1);
            }
        }
        Value::Object(o) => {
            let _ = o.callable.to_string();
            o.args.iter().for_each(|x| exercise(x, depth + 1));
            if let Some(s) = &o.state {
                exercise(s, depth + 1);
            }
        }
        Value::Array(a) | Value::Scalar(a) => exercise_array(a),
        Value::DType(d) => exercise_dtype(d),
        _ => {}
    }
}

fn exercise_dtype(d: &DType) {
    let _ = (
        d.itemsize(),
        d.byte_order(),
        d.is_native_order(),
        d.has_object(),
    );
    let _ = (d.kind_char(), d.descr(), d.to_native_order(), d.to_string());
    if let Some(s) = d.descr() {
        let _ = DType::parse(&s);
    }
}

/// Every accessor of an array; the copying ones only below [`MAX_OWNED`] bytes.
pub fn exercise_array(a: &NdArray) {
    exercise_dtype(a.dtype());
    let _ = (
        a.shape(),
        a.strides(),
        a.offset(),
        a.data().len(),
        a.is_readonly(),
    );
    let _ = (a.len(), a.is_empty(), a.ndim(), a.c_bytes());
    let _ = (a.is_c_contiguous(), a.is_f_contiguous());
    let owned_ok = a
        .len()
        .checked_mul(a.dtype().itemsize().max(1))
        .is_some_and(|n| n <= MAX_OWNED);
    macro_rules! each {
        ($($t:ty),*) => {$(
            let _ = a.view::<$t>();
            if owned_ok {
                let _ = a.to_owned_array::<$t>();
            }
        )*};
    }
    each!(
        bool,
        i8,
        i16,
        i32,
        i64,
        u8,
        u16,
        u32,
        u64,
        half::f16,
        half::bf16,
        f32,
        f64,
        num_complex::Complex<f32>,
        num_complex::Complex<f64>
    );
    if let DType::Scalar { kind, .. } = a.dtype() {
        let _ = (kind.itemsize(), kind.kind(), kind.name());
        let _ = Scalar::from_kind(kind.kind(), kind.itemsize());
    }
}

/// The `codec` target. The first part is `[mode, limit bytes (4, LE, in KiB)...]`:
///
/// - mode 0: parts 1 and 2 are a serialized [`FrameInfo`] and its frame: decoded with
///   [`codec::decompress_with`] under the limit, and with [`codec::decompress_into`];
/// - mode 1: part 1 is a plain lz4 (even limit) or zstd (odd) frame, described by
///   [`FrameInfo::from_plain_frame`] and decoded under the limit;
/// - mode 2: part 1 is data shuffled and unshuffled by element size `limit % 64 + 1` with
///   every kernel set: each round trip must give the data back and agree with the reference
///   shuffle;
/// - mode 3: a chunked in-band chain: `_decompress_target(limit)` then one
///   `_decompress_into(out, offset, header, frame[, writable])` per triple of parts
///   (`[offset u32 LE, writable: 0 absent / 1 true / 2 false]`, header, frame), read by
///   the reader under [`options`].
///
/// Whatever decodes must have exactly the length its header promised, within the limit.
pub fn check_codec(data: &[u8]) {
    let parts = split(data);
    let head = parts[0];
    let mode = head.first().copied().unwrap_or(0) % 4;
    let mut lim = [0u8; 4];
    for (d, s) in lim.iter_mut().zip(head.iter().skip(1)) {
        *d = *s;
    }
    let limit_kib = u32::from_le_bytes(lim) as usize;
    let max_len = limit_kib.min(MAX_DECOMPRESSED as usize >> 10) << 10;
    let part = |i: usize| parts.get(i).copied().unwrap_or_default();
    let mut scratch = Scratch::new();
    match mode {
        0 => {
            let Ok((info, used)) = FrameInfo::from_bytes(part(1)) else {
                return;
            };
            let _ = (
                info.codec(),
                info.filter(),
                info.elem_size(),
                info.streams(),
            );
            let _ = (info.block_size(), info.block_lens(), info.frame_len());
            let _ = (info.is_plain(), info.header_len() == used, info.to_bytes());
            decode_checked(part(2), &info, max_len, &mut scratch);
        }
        1 => {
            let codec = if limit_kib.is_multiple_of(2) {
                Codec::Lz4
            } else {
                Codec::Zstd { level: 1 }
            };
            if let Ok(info) = FrameInfo::from_plain_frame(codec, part(1)) {
                decode_checked(part(1), &info, max_len, &mut scratch);
            }
        }
        2 => {
            let elem = limit_kib % 64 + 1;
            let src = part(1);
            let mut naive = vec![0u8; src.len()];
            shuffle::shuffle_naive(elem, src, &mut naive);
            for kernels in shuffle::Kernels::ALL {
                let mut shuffled = vec![0u8; src.len()];
                shuffle::shuffle_with(kernels, elem, src, &mut shuffled);
                assert_eq!(
                    shuffled, naive,
                    "{kernels:?} shuffle by {elem} differs from the reference"
                );
                let mut back = vec![0u8; src.len()];
                shuffle::unshuffle_with(kernels, elem, &shuffled, &mut back);
                assert_eq!(
                    back, src,
                    "{kernels:?} unshuffle by {elem} does not invert shuffle"
                );
            }
        }
        _ => check_chain(&parts, limit_kib),
    }
}

/// Decodes `frame` under `max_len` both ways; checks the lengths of what decodes.
fn decode_checked(frame: &[u8], info: &FrameInfo, max_len: usize, scratch: &mut Scratch) {
    let r = codec::decompress_with(frame, info, max_len, scratch);
    if let Ok(out) = &r {
        assert!(
            out.len() <= max_len,
            "decoded {} > limit {max_len}",
            out.len()
        );
        assert_eq!(out.len() as u64, info.raw_len(), "decoded length != header");
    }
    if info.raw_len() <= max_len as u64 {
        let mut out = vec![0xa5u8; info.raw_len() as usize];
        let r2 = codec::decompress_into(frame, info, &mut out, scratch);
        assert_eq!(
            r.is_ok(),
            r2.is_ok(),
            "decompress and decompress_into disagree"
        );
        if let (Ok(a), Ok(())) = (&r, &r2) {
            assert_eq!(a, &out, "decompress and decompress_into decode differently");
        }
    }
}

/// Mode 3 of [`check_codec`]: a `_decompress_target` / `_decompress_into` chain.
fn check_chain(parts: &[&[u8]], limit_kib: usize) {
    use ndpickle::{Global, Object};
    let target_len = (limit_kib as u64) % (MAX_DECOMPRESSED + 2);
    let call = |name: &str, args: Vec<Value>| {
        Value::Object(Box::new(Object {
            callable: Global::new("ndpickle", name),
            args,
            state: None,
        }))
    };
    let mut v = call("_decompress_target", vec![Value::Int(target_len as i64)]);
    for t in parts[1..].chunks(3) {
        let meta = t[0];
        let mut off = [0u8; 4];
        for (d, s) in off.iter_mut().zip(meta) {
            *d = *s;
        }
        let mut args = vec![
            v,
            Value::Int(i64::from(u32::from_le_bytes(off))),
            Value::Bytes(Bytes::copy_from_slice(
                t.get(1).copied().unwrap_or_default(),
            )),
            Value::Bytes(Bytes::copy_from_slice(
                t.get(2).copied().unwrap_or_default(),
            )),
        ];
        match meta.get(4).map(|b| b % 3) {
            Some(1) => args.push(Value::Bool(true)),
            Some(2) => args.push(Value::Bool(false)),
            _ => {}
        }
        v = call("_decompress_into", args);
    }
    let pickle = ndpickle::to_vec(&v).unwrap();
    if let Ok(out) = ndpickle::from_slice_with(&pickle, &options(false)) {
        let b = out
            .as_bytes()
            .expect("a chain decodes to bytes or bytearray");
        assert_eq!(b.len() as u64, target_len, "chain result length != target");
    }
}

/// Data that compresses in interesting ways: runs, small-integer planes, noise.
fn sample_data() -> Vec<Vec<u8>> {
    let ints: Vec<u8> = (0..2500u32).flat_map(|i| (i % 300).to_le_bytes()).collect();
    let floats: Vec<u8> = (0..1500u32)
        .flat_map(|i| (f64::from(i) * 0.25).to_le_bytes())
        .collect();
    let mut x = 0x1234_5678u32;
    let noise: Vec<u8> = (0..3000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    vec![ints, floats, noise, vec![7u8; 5000], b"abc".to_vec()]
}

/// Codec target inputs (see `fuzz_input::check_codec` for the modes).
pub fn codec_seeds() -> Vec<Vec<u8>> {
    let limit = |mode: u8, kib: u32| {
        let mut h = vec![mode];
        h.extend_from_slice(&kib.to_le_bytes());
        h
    };
    let mut out = Vec::new();
    for data in sample_data() {
        for codec in [Codec::Lz4, Codec::Zstd { level: 1 }] {
            for elem in [0usize, 4, 8] {
                let filter = if elem == 0 {
                    Filter::None
                } else {
                    Filter::Shuffle { elem_size: elem }
                };
                for block in [1usize << 20, 4096] {
                    let opts = CodecOptions::builder()
                        .block_size(block)
                        .threads(1)
                        .build()
                        .unwrap();
                    let mut scratch = Scratch::with_options(opts);
                    let c =
                        codec::compress(&data, &Compression::Fixed(codec, filter), &mut scratch)
                            .unwrap();
                    let (info, frame) = if c.is_raw() {
                        (FrameInfo::raw(data.len() as u64), data.clone())
                    } else {
                        c.into_parts()
                    };
                    out.push(join(&[limit(0, 64), info.to_bytes(), frame.clone()]));
                    if info.is_plain() {
                        let kib = if codec == Codec::Lz4 { 64 } else { 65 };
                        out.push(join(&[limit(1, kib), frame]));
                    }
                }
            }
        }
        out.push(join(&[limit(2, 7), data.clone()]));
        // A chain of two chunks: the first half and the rest, each its own frame.
        let half = data.len() / 2;
        let mut parts = vec![limit(3, data.len() as u32)];
        for (i, (off, chunk)) in [(0, &data[..half]), (half, &data[half..])]
            .into_iter()
            .enumerate()
        {
            let mut scratch = Scratch::new();
            let c = codec::compress(
                chunk,
                &Compression::Fixed(Codec::Lz4, Filter::None),
                &mut scratch,
            )
            .unwrap();
            let (info, frame) = if c.is_raw() {
                (FrameInfo::raw(chunk.len() as u64), chunk.to_vec())
            } else {
                c.into_parts()
            };
            let mut meta = (off as u32).to_le_bytes().to_vec();
            meta.push(if i == 1 { 1 } else { 0 });
            parts.extend([meta, info.to_bytes(), frame]);
        }
        out.push(join(&parts));
    }
    out
}
