//! Large compressed buffers written chunk by chunk:
//! `_decompress_into(... _decompress_into(_decompress_target(n), 0, h1, f1) ..., off_k, h_k,
//! f_k, writable)`. The writer (encoder and inline rewriter) and every way a reader must
//! refuse a malformed chain.

mod common;

use std::borrow::Cow;
use std::io::Write;

use bytes::Bytes;
use common::P;
use ndarray::Array1;
use ndpickle::codec::{Codec, Compression, Filter, FrameInfo, Scratch, compress};
use ndpickle::opcodes::*;
use ndpickle::{
    DecodeErrorKind, PayloadBuffer, ReadOptions, Value, WriteOptions, from_slice, from_slice_with,
    inline_buffers_compressing, to_vec_with, to_writer_with,
};

const CHUNK: usize = 100_000;

/// 400 000 compressible bytes.
fn data() -> Vec<u8> {
    (0..100_000u32)
        .flat_map(|i| (i / 7).to_le_bytes())
        .collect()
}

fn walk() -> Array1<f64> {
    let mut x = 0.0;
    Array1::from_shape_fn(200_000, |i| {
        x += ((i * 7919) % 13) as f64 - 6.0;
        x
    })
}

fn chunk_opts(c: Compression) -> WriteOptions {
    WriteOptions::builder()
        .compression(c)
        .compress_chunk(CHUNK)
        .build()
        .unwrap()
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

#[test]
fn encoder_writes_large_buffers_in_chunks() {
    let a = walk();
    for c in [
        Compression::Fixed(Codec::Lz4, Filter::Shuffle { elem_size: 0 }),
        Compression::Fixed(Codec::Zstd { level: 1 }, Filter::None),
    ] {
        let out = to_vec_with(&a, &chunk_opts(c)).unwrap();
        // Globals are memoised by the encoder: each name once.
        assert_eq!(count(&out, b"_decompress_into"), 1);
        assert_eq!(count(&out, b"_decompress_target"), 1);
        // 1 600 000 bytes in 100 000-byte chunks: 16 frame headers.
        assert_eq!(count(&out, b"NDPZ"), 16);
        let v = from_slice(&out).unwrap();
        let back = v.as_array().unwrap().to_owned_array::<f64>().unwrap();
        assert_eq!(back, a.clone().into_dyn());
        assert!(!v.as_array().unwrap().is_readonly());
    }
    // At most one chunk: the one-frame form.
    let opts = WriteOptions::builder()
        .compression(Compression::Fixed(Codec::Lz4, Filter::None))
        .build()
        .unwrap();
    let out = to_vec_with(&a, &opts).unwrap();
    assert_eq!(count(&out, b"_decompress_into"), 0);
    assert_eq!(count(&out, b"NDPZ"), 1);
    assert!(WriteOptions::builder().compress_chunk(0).build().is_err());
}

/// Records the largest single write.
struct Largest(usize, usize);

impl Write for Largest {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.max(buf.len());
        self.1 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn chunked_writes_stream() {
    // Half-compressible: every chunk's frame is larger than a pickle frame.
    let mut x = 1u64;
    let a = Array1::from_shape_fn(200_000, |_| {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (x >> 40) as f64
    });
    let c = Compression::Fixed(Codec::Lz4, Filter::Shuffle { elem_size: 0 });
    let mut w = Largest(0, 0);
    to_writer_with(&mut w, &a, &chunk_opts(c)).unwrap();
    // Nothing near the whole compressed buffer is handed over at once: one chunk at most.
    assert!(w.0 <= CHUNK + 1024, "largest write {} of {}", w.0, w.1);
    assert!(w.0 < w.1 / 4, "largest write {} of {}", w.0, w.1);
}

#[test]
fn inline_rewriter_compresses_chunk_by_chunk_without_memo() {
    // PROTO 5, MEMOIZE'd str, NEXT_BUFFER, NEXT_BUFFER READONLY_BUFFER, BINGET 0, TUPLE3, STOP
    let mut p = vec![PROTO, 5, SHORT_BINUNICODE, 1, b'x', MEMOIZE];
    p.extend_from_slice(&[
        NEXT_BUFFER,
        NEXT_BUFFER,
        READONLY_BUFFER,
        BINGET,
        0,
        TUPLE3,
        STOP,
    ]);
    let raw = data();
    let small = vec![5u8; 50_000];
    let bufs = [
        PayloadBuffer::borrowed(&raw, false),
        PayloadBuffer::borrowed(&small, false),
    ];
    let opts = WriteOptions::builder()
        .align(Some(64))
        .compression(Compression::Fixed(
            Codec::Lz4,
            Filter::Shuffle { elem_size: 0 },
        ))
        .compress_chunk(CHUNK)
        .build()
        .unwrap();
    let mut out = Vec::new();
    let mut next = |i: usize| Ok((Cow::Borrowed(&bufs[i]), 4));
    inline_buffers_compressing(&p, 2, &mut next, &mut out, &opts).unwrap();
    // Uncached globals: one `_decompress_into` per chunk, one target, one `_decompress`.
    assert_eq!(count(&out, b"_decompress_into"), 4);
    assert_eq!(count(&out, b"_decompress_target"), 1);
    assert_eq!(count(&out, b"\x0b_decompress\x93"), 1);
    assert_eq!(count(&out, b"NDPZ"), 5);
    // The memo is untouched: BINGET 0 still fetches the copied string (checked below).
    assert_eq!(count(&out, &[BINGET, 0, TUPLE3]), 1);
    let v = from_slice(&out).unwrap();
    let Value::Tuple(t) = v else { panic!() };
    assert_eq!(t[0], Value::ByteArray(Bytes::from(raw.clone())));
    assert_eq!(t[1], Value::Bytes(Bytes::from(small.clone())));
    assert_eq!(t[2], Value::Str("x".into()));
    // Incompressible data stays raw, loadable without ndpickle.
    let mut x = 7u64;
    let noise: Vec<u8> = (0..300_000)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (x >> 56) as u8
        })
        .collect();
    let bufs = [PayloadBuffer::borrowed(&noise, false), bufs[1].clone()];
    let mut out = Vec::new();
    let mut next = |i: usize| Ok((Cow::Borrowed(&bufs[i]), 1));
    inline_buffers_compressing(&p, 2, &mut next, &mut out, &opts).unwrap();
    assert_eq!(count(&out, b"_decompress_into"), 0);
    assert!(count(&out, &noise[..1000]) == 1);
}

/// A chunked chain built by hand: `(offset, header, frame)` per chunk; `writable` on the last.
fn chain(n: i64, chunks: &[(i64, Vec<u8>, Vec<u8>)], writable: Option<bool>) -> Vec<u8> {
    let mut p = P::new(4);
    for _ in chunks {
        p = p.stack_global("ndpickle", "_decompress_into").op(MARK);
    }
    p = p
        .stack_global("ndpickle", "_decompress_target")
        .int(n)
        .op(TUPLE1)
        .op(REDUCE);
    for (i, (off, h, f)) in chunks.iter().enumerate() {
        p = p.int(*off).bytes(h).bytes(f);
        if i + 1 == chunks.len() {
            p = match writable {
                Some(true) => p.op(NEWTRUE),
                Some(false) => p.op(NEWFALSE),
                None => p,
            };
        }
        p = p.op(TUPLE).op(REDUCE);
    }
    p.stop()
}

fn chunks_of(raw: &[u8], size: usize) -> Vec<(i64, Vec<u8>, Vec<u8>)> {
    let mut s = Scratch::new();
    raw.chunks(size)
        .enumerate()
        .map(|(i, c)| {
            let (info, frame) = compress(c, &Compression::Fixed(Codec::Lz4, Filter::None), &mut s)
                .unwrap()
                .into_parts();
            ((i * size) as i64, info.to_bytes(), frame)
        })
        .collect()
}

fn codec_msg(data: &[u8], opts: &ReadOptions) -> String {
    let e = from_slice_with(data, opts).unwrap_err();
    match e.kind {
        DecodeErrorKind::Codec(m) => m,
        other => panic!("expected a codec error, got {other:?}"),
    }
}

#[test]
fn hand_built_chains_load() {
    let raw = data();
    let c = chunks_of(&raw, CHUNK);
    let n = raw.len() as i64;
    let v = from_slice(&chain(n, &c, Some(true))).unwrap();
    assert_eq!(v, Value::ByteArray(Bytes::from(raw.clone())));
    let v = from_slice(&chain(n, &c, Some(false))).unwrap();
    assert_eq!(v, Value::Bytes(Bytes::from(raw.clone())));
    // A chunk stored raw (codec none) is fine too.
    let mut c2 = c.clone();
    c2[1].1 = FrameInfo::raw(CHUNK as u64).to_bytes();
    c2[1].2 = raw[CHUNK..2 * CHUNK].to_vec();
    let v = from_slice(&chain(n, &c2, Some(true))).unwrap();
    assert_eq!(v, Value::ByteArray(Bytes::from(raw.clone())));
}

#[test]
fn chain_errors() {
    let raw = data();
    let c = chunks_of(&raw, CHUNK);
    let n = raw.len() as i64;
    let d = ReadOptions::default();
    // Gap and overlap.
    let mut gap = c.clone();
    gap[2].0 += 1;
    assert!(codec_msg(&chain(n, &gap, Some(true)), &d).contains("in order and contiguous"));
    let mut overlap = c.clone();
    overlap[1].0 -= 10;
    assert!(codec_msg(&chain(n, &overlap, Some(true)), &d).contains("in order and contiguous"));
    let mut swapped = c.clone();
    swapped.swap(1, 2);
    assert!(codec_msg(&chain(n, &swapped, Some(true)), &d).contains("in order"));
    // A chunk past the end of the target.
    let m = codec_msg(&chain(n - 1, &c, Some(true)), &d);
    assert!(m.contains("runs past the end"), "{m}");
    // Incomplete fill: the last chunk leaves bytes unfilled.
    let m = codec_msg(&chain(n + 5, &c, Some(true)), &d);
    assert!(
        m.contains("fill 400000 of the buffer's 400005 bytes"),
        "{m}"
    );
    // The last call (with `writable`) never comes.
    let m = codec_msg(&chain(n, &c, None), &d);
    assert!(m.contains("unfinished"), "{m}");
    // A call after the last.
    let mut extra = c.clone();
    extra.push((n, c[0].1.clone(), c[0].2.clone()));
    let mut bytes = chain(n, &extra, Some(true));
    // Put `writable` on the 4th chunk too, making it the last.
    let at = bytes
        .windows(2)
        .enumerate()
        .filter(|(_, w)| *w == [TUPLE, REDUCE])
        .map(|(i, _)| i)
        .nth(3)
        .unwrap();
    bytes.insert(at, NEWTRUE);
    let e = from_slice(&bytes).unwrap_err();
    assert!(e.to_string().contains("not an unfinished"), "{e}");
    // Truncated and corrupt frames.
    let mut cut = c.clone();
    let keep = cut[1].2.len() - 10;
    cut[1].2.truncate(keep);
    let m = codec_msg(&chain(n, &cut, Some(true)), &d);
    assert!(m.contains("frame is"), "{m}");
    let mut bad = c.clone();
    let len = bad[3].2.len();
    bad[3].2[len / 2..].iter_mut().for_each(|b| *b = 0xff);
    assert!(from_slice(&chain(n, &bad, Some(true))).is_err());
    // A header with trailing bytes.
    let mut trail = c.clone();
    trail[0].1.push(0);
    assert!(codec_msg(&chain(n, &trail, Some(true)), &d).contains("describes"));
    // A zero-length target.
    assert!(codec_msg(&chain(0, &c[..1], Some(true)), &d).contains("at least 1"));
}

#[test]
fn chain_targets_are_bounded_before_allocating() {
    let raw = data();
    let c = chunks_of(&raw, CHUNK);
    let n = raw.len() as i64;
    let limit = |e: ndpickle::DecodeError| match e.kind {
        DecodeErrorKind::Limit { limit, .. } => limit,
        other => panic!("expected a limit, got {other:?}"),
    };
    let small = ReadOptions::builder()
        .max_decompressed_bytes(n as u64 - 1)
        .build()
        .unwrap();
    let e = from_slice_with(&chain(n, &c, Some(true)), &small).unwrap_err();
    assert!(limit(e).contains("decompressed"));
    let small = ReadOptions::builder()
        .max_alloc_bytes(n as u64 - 1)
        .build()
        .unwrap();
    let e = from_slice_with(&chain(n, &c, Some(true)), &small).unwrap_err();
    assert!(limit(e).contains("allocation"));
    // An exabyte target with the default limits: refused, nothing allocated.
    let e = from_slice(&chain(1 << 60, &c, Some(true))).unwrap_err();
    assert!(limit(e).contains("decompressed"));
    let e = from_slice(&chain(-1, &c, Some(true))).unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::Invalid { .. }), "{e:?}");
}

#[test]
fn chain_argument_types_are_checked() {
    let raw = data();
    let c = chunks_of(&raw, CHUNK);
    let (h, f) = (&c[0].1, &c[0].2);
    let is_type = |b: &[u8]| {
        let e = from_slice(b).unwrap_err();
        assert!(matches!(e.kind, DecodeErrorKind::Type { .. }), "{e:?}");
    };
    let call = |out: P, off: P| {
        P::new(4)
            .stack_global("ndpickle", "_decompress_into")
            .op(MARK)
            .raw(&out.0)
            .raw(&off.0)
    };
    // The output is a plain bytearray, not a target.
    let b = call(P(vec![]).bytearray(&[0; 100_000]), P(vec![]).int(0))
        .bytes(h)
        .bytes(f)
        .op(NEWTRUE)
        .op(TUPLE)
        .op(REDUCE)
        .stop();
    let e = from_slice(&b).unwrap_err();
    assert!(e.to_string().contains("not an unfinished"), "{e}");
    // The output is an int.
    is_type(
        &call(P(vec![]).int(3), P(vec![]).int(0))
            .bytes(h)
            .bytes(f)
            .op(TUPLE)
            .op(REDUCE)
            .stop(),
    );
    let target = || {
        P(vec![])
            .stack_global("ndpickle", "_decompress_target")
            .int(100_000)
            .op(TUPLE1)
            .op(REDUCE)
    };
    // Offset as a str; header as an int; writable as a str.
    is_type(
        &call(target(), P(vec![]).str("0"))
            .bytes(h)
            .bytes(f)
            .op(NEWTRUE)
            .op(TUPLE)
            .op(REDUCE)
            .stop(),
    );
    is_type(
        &call(target(), P(vec![]).int(0))
            .int(5)
            .bytes(f)
            .op(NEWTRUE)
            .op(TUPLE)
            .op(REDUCE)
            .stop(),
    );
    is_type(
        &call(target(), P(vec![]).int(0))
            .bytes(h)
            .bytes(f)
            .str("yes")
            .op(TUPLE)
            .op(REDUCE)
            .stop(),
    );
    // Wrong arities.
    assert!(
        from_slice(
            &call(target(), P(vec![]).int(0))
                .bytes(h)
                .op(TUPLE)
                .op(REDUCE)
                .stop()
        )
        .is_err()
    );
    let e = from_slice(
        &P::new(4)
            .stack_global("ndpickle", "_decompress_target")
            .op(EMPTY_TUPLE)
            .op(REDUCE)
            .stop(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("arguments"), "{e}");
    // A target referenced twice (memoised, then fetched again) cannot be filled.
    let b = P::new(4)
        .stack_global("ndpickle", "_decompress_into")
        .op(MARK)
        .raw(&target().0)
        .op(MEMOIZE)
        .int(0)
        .bytes(h)
        .bytes(f)
        .op(NEWTRUE)
        .op(TUPLE)
        .op(REDUCE)
        .get(0)
        .op(TUPLE2)
        .stop();
    let m = codec_msg(&b, &ReadOptions::default());
    assert!(m.contains("shared"), "{m}");
}

#[test]
fn inspect_shows_a_chunked_buffer_as_one_with_its_codec_and_ratio() {
    use ndpickle::inspect::{self, InspectOptions};
    let a = walk();
    let lz4 = Compression::Fixed(Codec::Lz4, Filter::Shuffle { elem_size: 0 });
    let out = Bytes::from(to_vec_with(&a, &chunk_opts(lz4)).unwrap());
    // Every frame header and frame of the 16 chunks, as the pickle holds them.
    let (value, sources) = inspect::read(out.clone(), Vec::new(), &ReadOptions::default()).unwrap();
    let json = inspect::json(&value, &sources, &InspectOptions::default());
    assert!(json.contains(r#""codec":"shuffle+lz4""#), "{json}");
    let compressed: u64 = json
        .split(r#""compressed_nbytes":"#)
        .nth(1)
        .and_then(|t| t.split([',', '}']).next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(compressed < 1_600_000 / 2, "{json}");
    // Headers and frames are inside the pickle: the compressed size is at most its length,
    // and at least the 16 headers' bytes.
    assert!(
        compressed < out.len() as u64 && compressed > 16 * 16,
        "{compressed}"
    );
    let text = inspect::text(&value, &sources, &InspectOptions::default());
    let ratio = 1_600_000.0 / compressed as f64;
    assert!(
        text.contains(&format!(
            "decompressed (shuffle+lz4, 1600000 bytes from {compressed}: {ratio:.2}x)"
        )),
        "{text}"
    );
    // Without `inspect::read`, the same memory is only "new memory".
    let plain = inspect::Sources::new::<&[u8]>(&out, &[]);
    let text = inspect::text(&value, &plain, &InspectOptions::default());
    assert!(
        text.contains("new memory (decompressed or copied"),
        "{text}"
    );
}
