//! Reading compressed array data: the in-band `ndpickle._decompress(header, frame, writable)`
//! form and out-of-band buffers given as `(frame, FrameInfo)`, written by the crate's own
//! writer; and every way such data can be wrong (corrupt frames, bad headers, bombs).

mod common;

use bytes::Bytes;
use common::P;
use ndarray::{Array, Array2, ArrayD, s};
use ndpickle::codec::{Codec, Compression, Filter, FrameInfo};
use ndpickle::opcodes::*;
use ndpickle::{
    DecodeErrorKind, InBuffer, NumpyForm, ReadOptions, Value, WriteOptions, from_bytes,
    from_payload, from_payload_with, from_slice, from_slice_with, to_payload_with, to_vec_with,
};

fn settings() -> [Compression; 5] {
    [
        Compression::Fixed(Codec::Lz4, Filter::None),
        Compression::Fixed(Codec::Lz4, Filter::Shuffle { elem_size: 0 }),
        Compression::Fixed(Codec::Zstd { level: 3 }, Filter::None),
        Compression::Fixed(Codec::Zstd { level: 1 }, Filter::Shuffle { elem_size: 0 }),
        Compression::default(),
    ]
}

fn smooth() -> Array2<f64> {
    Array::from_shape_fn((256, 64), |(i, j)| ((i * 64 + j) as f64 * 1e-3).sin())
}

fn labels() -> ndarray::Array1<i32> {
    Array::from_shape_fn(50_000, |i| (i / 1000) as i32)
}

fn items(v: &Value) -> &[Value] {
    match v {
        Value::Tuple(t) => t,
        other => panic!("expected a tuple, got {other:?}"),
    }
}

fn check_values(v: &Value, readonly: bool) {
    let (sm, lb) = (smooth(), labels());
    let strided = sm.slice(s![.., ..;2]).to_owned();
    let t = items(v);
    assert_eq!(t.len(), 3);
    let a = t[0].as_array().unwrap();
    assert_eq!(a.to_owned_array::<f64>().unwrap(), sm.clone().into_dyn());
    let b = t[1].as_array().unwrap();
    assert_eq!(b.to_owned_array::<i32>().unwrap(), lb.into_dyn());
    let c = t[2].as_array().unwrap();
    let c: ArrayD<f64> = c.to_owned_array().unwrap();
    assert_eq!(c, strided.into_dyn());
    for x in [a, b] {
        assert_eq!(x.is_readonly(), readonly);
    }
}

fn opts(protocol: u8, form: NumpyForm, c: Compression, readonly: bool) -> WriteOptions {
    WriteOptions::builder()
        .protocol(protocol)
        .numpy_form(form)
        .compression(c)
        .readonly(readonly)
        .build()
        .unwrap()
}

#[test]
fn in_band_compressed_streams_load() {
    let (sm, lb) = (smooth(), labels());
    let value = (&sm, &lb, sm.slice(s![.., ..;2]));
    for c in settings() {
        for protocol in 2..=5u8 {
            for form in [NumpyForm::Portable, NumpyForm::NumpyV1, NumpyForm::NumpyV2] {
                for readonly in [false, true] {
                    if readonly && (protocol < 5 && form.is_native()) {
                        continue; // numpy's protocol 2-4 form is always writable.
                    }
                    let data = to_vec_with(&value, &opts(protocol, form, c, readonly)).unwrap();
                    let what = format!("{c:?} p{protocol} {form:?} ro={readonly}");
                    assert!(
                        data.windows(11).any(|w| w == b"_decompress"),
                        "{what}: not compressed"
                    );
                    let v = from_slice(&data).unwrap_or_else(|e| panic!("{what}: {e}"));
                    check_values(&v, readonly);
                    let v = from_bytes(Bytes::from(data)).unwrap();
                    check_values(&v, readonly);
                }
            }
        }
    }
}

#[test]
fn out_of_band_compressed_payloads_round_trip() {
    let (sm, lb) = (smooth(), labels());
    let value = (&sm, &lb, sm.slice(s![.., ..;2]));
    for c in settings() {
        for form in [NumpyForm::Portable, NumpyForm::NumpyV1, NumpyForm::NumpyV2] {
            for readonly in [false, true] {
                let p = to_payload_with(&value, &opts(5, form, c, readonly)).unwrap();
                assert!(
                    p.buffers.iter().any(|b| b.frame_info().is_some()),
                    "{c:?}: nothing compressed"
                );
                // As (frame, FrameInfo) pairs and raw Bytes.
                let bufs: Vec<InBuffer> = p
                    .buffers
                    .iter()
                    .map(|b| match b.frame_info() {
                        Some(i) => (Bytes::copy_from_slice(b), i.clone()).into(),
                        None => Bytes::copy_from_slice(b).into(),
                    })
                    .collect();
                let v = from_payload(&p.pickle, bufs).unwrap();
                check_values(&v, readonly);
                // Straight from the writer's PayloadBuffers.
                let v = from_payload(&p.pickle, p.buffers).unwrap();
                check_values(&v, readonly);
            }
        }
    }
}

#[test]
fn compressed_buffers_without_their_frame_info_are_refused() {
    let sm = smooth();
    let c = Compression::Fixed(Codec::Zstd { level: 1 }, Filter::None);
    let p = to_payload_with(&sm, &opts(5, NumpyForm::Portable, c, false)).unwrap();
    let raw: Vec<Bytes> = p
        .buffers
        .iter()
        .map(|b| Bytes::copy_from_slice(b))
        .collect();
    let e = from_payload(&p.pickle, raw).unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::BadArray(_)), "{e}");
}

/// `ndpickle._decompress(header, frame, writable)` built by hand.
fn decompress_call(header: &[u8], frame: &[u8], writable: Option<bool>) -> Vec<u8> {
    let p = P::new(4)
        .stack_global("ndpickle", "_decompress")
        .op(MARK)
        .bytes(header)
        .bytes(frame);
    let p = match writable {
        Some(true) => p.op(NEWTRUE),
        Some(false) => p.op(NEWFALSE),
        None => p,
    };
    p.op(TUPLE).op(REDUCE).stop()
}

fn compressed(data: &[u8], codec: Codec) -> (FrameInfo, Vec<u8>) {
    let c = ndpickle::codec::compress(
        data,
        &Compression::Fixed(codec, Filter::None),
        &mut ndpickle::codec::Scratch::new(),
    )
    .unwrap();
    c.into_parts()
}

fn data() -> Vec<u8> {
    (0..100_000u32)
        .flat_map(|i| (i / 7).to_le_bytes())
        .collect()
}

#[test]
fn decompress_call_yields_bytearray_or_bytes() {
    let raw = data();
    for codec in [Codec::Lz4, Codec::Zstd { level: 1 }] {
        let (info, frame) = compressed(&raw, codec);
        let header = info.to_bytes();
        let v = from_slice(&decompress_call(&header, &frame, Some(true))).unwrap();
        assert_eq!(v, Value::ByteArray(Bytes::from(raw.clone())));
        let v = from_slice(&decompress_call(&header, &frame, Some(false))).unwrap();
        assert_eq!(v, Value::Bytes(Bytes::from(raw.clone())));
        // Python's default: writable.
        let v = from_slice(&decompress_call(&header, &frame, None)).unwrap();
        assert_eq!(v, Value::ByteArray(Bytes::from(raw.clone())));
    }
    // Codec none (a raw frame) is accepted too.
    let info = FrameInfo::raw(3);
    let v = from_slice(&decompress_call(&info.to_bytes(), b"abc", Some(false))).unwrap();
    assert_eq!(v, Value::Bytes(Bytes::from_static(b"abc")));
}

fn err(data: &[u8], opts: &ReadOptions) -> ndpickle::DecodeError {
    from_slice_with(data, opts).unwrap_err()
}

#[test]
fn corrupt_and_malformed_frames_are_decode_errors() {
    let raw = data();
    let d = ReadOptions::default();
    for codec in [Codec::Lz4, Codec::Zstd { level: 1 }] {
        let (info, frame) = compressed(&raw, codec);
        let header = info.to_bytes();
        // Corrupt frame bytes: every position class, never a panic.
        for at in [0, 1, 4, 10, frame.len() / 2, frame.len() - 1] {
            let mut bad = frame.clone();
            bad[at] ^= 0xa5;
            if let Ok(v) = from_slice(&decompress_call(&header, &bad, Some(false))) {
                // A flip in literal bytes may decode to other data of the right length.
                assert_ne!(v, Value::Bytes(Bytes::from(raw.clone())));
            }
        }
        let mut zeros = frame.clone();
        zeros[..frame.len().min(64)].fill(0xff);
        let e = err(&decompress_call(&header, &zeros, Some(true)), &d);
        assert!(matches!(e.kind, DecodeErrorKind::Codec(_)), "{e}");
        assert_eq!(e.opcode, Some(REDUCE));
        // Truncated and over-long frames: the header says how long the frame is.
        let e = err(
            &decompress_call(&header, &frame[..frame.len() - 1], None),
            &d,
        );
        assert!(matches!(e.kind, DecodeErrorKind::Codec(_)), "{e}");
        let mut longer = frame.clone();
        longer.push(0);
        let e = err(&decompress_call(&header, &longer, None), &d);
        assert!(matches!(e.kind, DecodeErrorKind::Codec(_)), "{e}");
        // Header: trailing bytes, truncated, bad magic.
        let mut h = header.clone();
        h.push(0);
        let e = err(&decompress_call(&h, &frame, None), &d);
        assert!(e.to_string().contains("trailing") || e.to_string().contains("describes"));
        let e = err(
            &decompress_call(&header[..header.len() - 1], &frame, None),
            &d,
        );
        assert!(matches!(e.kind, DecodeErrorKind::Wire(_)), "{e}");
        let e = err(&decompress_call(&header[..10], &frame, None), &d);
        assert!(matches!(e.kind, DecodeErrorKind::Wire(_)), "{e}");
        let mut h = header.clone();
        h[0] = b'X';
        let e = err(&decompress_call(&h, &frame, None), &d);
        assert!(e.to_string().contains("magic"), "{e}");
    }
}

#[test]
fn decompress_call_arguments_are_checked() {
    let raw = data();
    let (info, frame) = compressed(&raw, Codec::Lz4);
    let header = info.to_bytes();
    let d = ReadOptions::default();
    let call = |args: P| {
        args.op(TUPLE)
            .op(REDUCE)
            .stop()
            .into_iter()
            .collect::<Vec<u8>>()
    };
    let head = || P::new(4).stack_global("ndpickle", "_decompress").op(MARK);
    // Too few and too many arguments.
    let e = err(&call(head().bytes(&header)), &d);
    assert!(e.to_string().contains("takes 2 to 3 arguments"), "{e}");
    let e = err(
        &call(head().bytes(&header).bytes(&frame).op(NEWTRUE).op(NONE)),
        &d,
    );
    assert!(e.to_string().contains("takes 2 to 3 arguments"), "{e}");
    // Wrong types.
    let e = err(&call(head().str("x").bytes(&frame)), &d);
    assert!(matches!(e.kind, DecodeErrorKind::Type { .. }), "{e}");
    let e = err(&call(head().bytes(&header).int(3)), &d);
    assert!(matches!(e.kind, DecodeErrorKind::Type { .. }), "{e}");
    let e = err(&call(head().bytes(&header).bytes(&frame).str("yes")), &d);
    assert!(matches!(e.kind, DecodeErrorKind::Type { .. }), "{e}");
    // An int flag is accepted like Python's truth value.
    let v = from_slice(&call(head().bytes(&header).bytes(&frame).int(0))).unwrap();
    assert!(matches!(v, Value::Bytes(_)));
    // BUILD state on the result is refused.
    let data = head()
        .bytes(&header)
        .bytes(&frame)
        .op(TUPLE)
        .op(REDUCE)
        .op(EMPTY_DICT)
        .int(1)
        .op(TUPLE1)
        .op(BUILD)
        .stop();
    assert!(from_slice(&data).is_err());
    // Keyword arguments (NEWOBJ_EX) are refused.
    let data = P::new(4)
        .stack_global("ndpickle", "_decompress")
        .bytes(&header)
        .bytes(&frame)
        .op(TUPLE2)
        .op(EMPTY_DICT)
        .str("writable")
        .op(NEWTRUE)
        .op(SETITEM)
        .op(NEWOBJ_EX)
        .stop();
    let e = from_slice(&data).unwrap_err();
    assert!(e.to_string().contains("keyword"), "{e}");
    // Other names in the ndpickle module stay forbidden.
    let data = P::new(4)
        .stack_global("ndpickle", "loads")
        .bytes(b"x")
        .op(TUPLE1)
        .op(REDUCE)
        .stop();
    assert!(matches!(
        from_slice(&data).unwrap_err().kind,
        DecodeErrorKind::ForbiddenGlobal { .. }
    ));
}

#[test]
fn decompression_bombs_stop_at_the_limits() {
    // A header claiming 2**40 raw bytes (in blocks of 1 GiB: 1024 entries).
    let n = 1024u32;
    let bomb = FrameInfo::new(
        Codec::Lz4,
        Filter::None,
        1 << 40,
        1 << 30,
        vec![4; n as usize],
    )
    .unwrap();
    let frame = vec![0u8; 4 * n as usize];
    let e = from_slice(&decompress_call(&bomb.to_bytes(), &frame, None)).unwrap_err();
    assert!(
        matches!(e.kind, DecodeErrorKind::Limit { limit, .. } if limit.contains("decompressed")),
        "{e}"
    );
    // Raised limit: the total allocation limit still stops it.
    let o = ReadOptions::builder()
        .max_decompressed_bytes(u64::MAX)
        .build()
        .unwrap();
    let e = err(&decompress_call(&bomb.to_bytes(), &frame, None), &o);
    assert!(
        matches!(e.kind, DecodeErrorKind::Limit { limit, .. } if limit.contains("total allocation")),
        "{e}"
    );
    // A real frame over a configured limit.
    let raw = data();
    let (info, frame) = compressed(&raw, Codec::Zstd { level: 1 });
    let o = ReadOptions::builder()
        .max_decompressed_bytes(raw.len() as u64 - 1)
        .build()
        .unwrap();
    let e = err(&decompress_call(&info.to_bytes(), &frame, None), &o);
    assert!(matches!(e.kind, DecodeErrorKind::Limit { .. }), "{e}");
    assert_eq!(e.opcode, Some(REDUCE));
    let o = ReadOptions::builder()
        .max_decompressed_bytes(raw.len() as u64)
        .build()
        .unwrap();
    assert!(from_slice_with(&decompress_call(&info.to_bytes(), &frame, None), &o).is_ok());
    // Several frames that fit one by one but not together.
    let two = P::new(4)
        .stack_global("ndpickle", "_decompress")
        .put(0)
        .bytes(&info.to_bytes())
        .bytes(&frame)
        .op(TUPLE2)
        .op(REDUCE)
        .get(0)
        .bytes(&info.to_bytes())
        .bytes(&frame)
        .op(TUPLE2)
        .op(REDUCE)
        .op(TUPLE2)
        .stop();
    assert!(from_slice(&two).is_ok());
    let o = ReadOptions::builder()
        .max_alloc_bytes(raw.len() as u64 * 3 / 2)
        .build()
        .unwrap();
    let e = err(&two, &o);
    assert!(
        matches!(e.kind, DecodeErrorKind::Limit { limit, .. } if limit.contains("total allocation")),
        "{e}"
    );
}

fn oob_bytes_call() -> Vec<u8> {
    // bytes(NEXT_BUFFER): the buffer's bytes.
    P::new(5)
        .stack_global("builtins", "bytes")
        .op(NEXT_BUFFER)
        .op(TUPLE1)
        .op(REDUCE)
        .stop()
}

#[test]
fn out_of_band_compressed_buffer_errors() {
    let raw = data();
    let (info, frame) = compressed(&raw, Codec::Lz4);
    let v = from_payload(&oob_bytes_call(), [(frame.clone(), info.clone())]).unwrap();
    assert_eq!(v, Value::Bytes(Bytes::from(raw.clone())));
    // Limit on one buffer.
    let o = ReadOptions::builder()
        .max_decompressed_bytes(1000)
        .build()
        .unwrap();
    let e = from_payload_with(&oob_bytes_call(), [(frame.clone(), info.clone())], &o).unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::Limit { .. }), "{e}");
    assert_eq!(e.opcode, Some(NEXT_BUFFER));
    // Corrupt and wrong-length frames.
    let mut bad = frame.clone();
    bad[..32].fill(0xff);
    let e = from_payload(&oob_bytes_call(), [(bad, info.clone())]).unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::Codec(_)), "{e}");
    let e = from_payload(
        &oob_bytes_call(),
        [(frame[..frame.len() - 3].to_vec(), info.clone())],
    )
    .unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::Codec(_)), "{e}");
    // The 2**40 bomb as an out-of-band buffer.
    let bomb = FrameInfo::new(
        Codec::Zstd { level: 1 },
        Filter::None,
        1 << 40,
        1 << 30,
        vec![4; 1024],
    )
    .unwrap();
    let e = from_payload(&oob_bytes_call(), [(vec![0u8; 4096], bomb)]).unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::Limit { .. }), "{e}");
    // InBuffer accessors.
    let b = InBuffer::from((Bytes::from(frame.clone()), info.clone()));
    assert_eq!(b.frame_info(), Some(&info));
    assert_eq!(b.data().len(), frame.len());
    let r = InBuffer::from(&b"xy"[..]);
    assert!(r.frame_info().is_none());
}

#[test]
fn inspect_shows_compressed_out_of_band_buffers_with_codec_and_ratio() {
    use ndpickle::inspect::{self, InspectOptions};
    let sm = smooth();
    let c = Compression::Fixed(Codec::Zstd { level: 3 }, Filter::Shuffle { elem_size: 0 });
    let rows = sm.slice(s![1.., ..]);
    let value = (&sm, rows);
    let p = to_payload_with(&value, &opts(5, NumpyForm::Portable, c, false)).unwrap();
    let frame = p.buffers[0].frame_info().cloned().expect("compressed");
    let stored = (p.buffers[0].len() + frame.header_len()) as u64;
    let bufs: Vec<InBuffer> = p.buffers.into_iter().map(Into::into).collect();
    let (value, sources) =
        inspect::read(Bytes::from(p.pickle), bufs, &ReadOptions::default()).unwrap();
    let text = inspect::text(&value, &sources, &InspectOptions::default());
    let raw = sm.len() * 8;
    let ratio = raw as f64 / stored as f64;
    assert!(
        text.contains(&format!(
            "decompressed (shuffle+zstd, {raw} bytes from {stored}: {ratio:.2}x)"
        )),
        "{text}"
    );
    // The row slice is its own buffer (the writer sends each array's memory).
    assert!(
        text.contains("  [1]: numpy.ndarray dtype=<f8 shape=(255, 64) strides=(512, 8) nbytes=130560, decompressed (shuffle+zstd, 130560 bytes from "),
        "{text}"
    );
}
