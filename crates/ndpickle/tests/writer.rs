//! Writer behaviour seen from outside: zero copies, layouts, streaming, and every error path.

use std::borrow::Cow;
use std::io::Write;

use bytes::Bytes;
use ndarray::{Array1, Array2, Array3, s};
use ndpickle::internals::{Body, plan_parts};
use ndpickle::{
    DType, Element, EncodeError, LayoutPolicy, NdArray, NumpyForm, SpanView, WriteOptions, opcodes,
    to_payload_with, to_vec, to_vec_with, to_writer,
};

fn opts() -> WriteOptions {
    WriteOptions::default()
}

fn addr<T>(p: *const T) -> usize {
    p as usize
}

#[test]
fn contiguous_payload_borrows_the_array() {
    for n in [1usize, 1000, 1 << 16] {
        let a = Array1::from_shape_fn(n, |i| i as f64);
        let p = to_payload_with(&a, &opts()).unwrap();
        assert_eq!(p.buffers.len(), 1);
        let b = &p.buffers[0];
        assert!(b.is_borrowed());
        assert_eq!(addr(b.as_ptr()), addr(a.as_ptr()));
        assert_eq!(b.len(), n * 8);
        assert!(!b.is_readonly());
    }
}

#[test]
fn fortran_payload_borrows_the_array() {
    let a = Array2::from_shape_fn((3, 5), |(i, j)| (i * 5 + j) as i32).reversed_axes();
    assert!(a.t().is_standard_layout());
    let p = to_payload_with(&a, &opts()).unwrap();
    assert_eq!(addr(p.buffers[0].as_ptr()), addr(a.as_ptr()));
    assert_eq!(p.buffers[0].len(), 15 * 4);
}

#[test]
fn strided_span_borrows_the_span() {
    let base = Array2::from_shape_fn((6, 9), |(i, j)| (i * 9 + j) as f32);
    // [:, ::2]: used 6*5*4 = 120 of a span of (5*36 + 8*4 + 4) = 216 bytes -> span (of an
    // owned array borrowed whole: a plain view with gaps is packed, see below).
    let v = SpanView::slice(&base, s![.., ..;2]);
    let p = to_payload_with(&v, &opts()).unwrap();
    let b = &p.buffers[0];
    assert!(b.is_borrowed());
    assert_eq!(addr(b.as_ptr()), addr(base.as_ptr()));
    assert_eq!(b.len(), 5 * 36 + 8 * 4 + 4);
}

#[test]
fn a_view_never_lends_the_gaps_another_mutable_view_owns() {
    // Even and odd columns of one allocation, both alive: the even view's buffers must
    // not cover a single byte of the odd view's elements, under every layout policy.
    let mut base = Array2::from_shape_fn((6, 8), |(i, j)| (i * 8 + j) as u32);
    let (even, mut odd) = base.multi_slice_mut((s![.., ..;2], s![.., 1..;2]));
    let odd_bytes: Vec<std::ops::Range<usize>> = odd
        .iter()
        .map(|x| addr(x as *const u32)..addr(x as *const u32) + 4)
        .collect();
    let want: Vec<u32> = even.iter().copied().collect();
    for policy in [
        LayoutPolicy::Auto,
        LayoutPolicy::AlwaysSpan,
        LayoutPolicy::AlwaysPack,
    ] {
        let o = WriteOptions::builder().layout(policy).build().unwrap();
        let p = to_payload_with(&even, &o).unwrap();
        for b in &p.buffers {
            let lent = addr(b.as_ptr())..addr(b.as_ptr()) + b.len();
            for r in &odd_bytes {
                assert!(
                    r.end <= lent.start || lent.end <= r.start,
                    "{policy:?}: a buffer over {lent:?} covers the odd element at {r:?}"
                );
            }
        }
        // The odd view stays writable while the payload lives, and the payload holds the
        // even elements only, packed.
        odd[[0, 0]] = 7;
        assert_eq!(p.buffers.len(), 1);
        assert_eq!(&p.buffers[0][..], bytemuck::cast_slice::<u32, u8>(&want));
    }
    // The same views read-only (a reborrow of the mutable one) are packed too.
    let shared = even.view();
    let p = to_payload_with(&shared, &opts()).unwrap();
    assert!(!p.buffers[0].is_borrowed());
}

#[test]
fn gapless_views_keep_their_span() {
    // Reversed views and broadcasts of a reversed row cover no byte beyond their own
    // elements: their span is lent even from a view.
    let base = Array2::from_shape_fn((6, 9), |(i, j)| (i * 9 + j) as f32);
    let row = base.row(2);
    let reversed = row.slice(s![..;-1]);
    let broadcast = reversed.broadcast((4, 9)).unwrap();
    let p = to_payload_with(&broadcast, &opts()).unwrap();
    assert!(p.buffers[0].is_borrowed());
    assert_eq!(addr(p.buffers[0].as_ptr()), addr(row.as_ptr()));
    assert_eq!(p.buffers[0].len(), 9 * 4);
}

#[test]
fn reversed_span_starts_at_the_lowest_element() {
    let base = Array1::from_shape_fn(10, |i| i as u64);
    let v = base.slice(s![..;-1]);
    let p = to_payload_with(&v, &opts()).unwrap();
    let b = &p.buffers[0];
    assert_eq!(addr(b.as_ptr()), addr(base.as_ptr()));
    assert_eq!(b.len(), 80);
    // The offset of element zero (the last one in memory) travels in-band: 72.
    assert!(p.pickle.windows(2).any(|w| w == [opcodes::BININT1, 72]));
}

#[test]
fn broadcast_sends_only_the_row() {
    let row = Array1::from_shape_fn(1000, |i| i as f64);
    let b = row.broadcast((1000, 1000)).unwrap();
    let p = to_payload_with(&b, &opts()).unwrap();
    assert_eq!(p.buffers.len(), 1);
    assert_eq!(p.buffers[0].len(), 8000);
    assert_eq!(addr(p.buffers[0].as_ptr()), addr(row.as_ptr()));
    let v = to_vec(&b).unwrap();
    assert!(
        v.len() < 8000 + 200,
        "in-band broadcast is {} bytes",
        v.len()
    );
}

#[test]
fn broadcasts_are_written_read_only() {
    // As numpy.broadcast_to: a write to one element would change a whole row.
    let row = Array1::from_shape_fn(10, |i| i as f64);
    let b = row.broadcast((4, 10)).unwrap();
    let p = to_payload_with(&b, &opts()).unwrap();
    assert!(p.buffers[0].is_readonly());
    let packed = WriteOptions::builder()
        .layout(LayoutPolicy::AlwaysPack)
        .build()
        .unwrap();
    assert!(to_payload_with(&b, &packed).unwrap().buffers[0].is_readonly());
    // In-band the broadcast row is `bytes`, never a `bytearray`.
    let v = to_vec(&b).unwrap();
    assert!(!v.contains(&opcodes::BYTEARRAY8));
    let back = ndpickle::from_slice(&v).unwrap();
    assert!(back.as_array().unwrap().is_readonly());
    // Arrays without zero strides stay writable; so does a length-1 axis with a zero
    // stride, which repeats nothing.
    let plain = Array1::from_shape_fn(10, |i| i as f64);
    assert!(!to_payload_with(&plain, &opts()).unwrap().buffers[0].is_readonly());
    let one = row.broadcast((1, 10)).unwrap();
    assert!(!to_payload_with(&one, &opts()).unwrap().buffers[0].is_readonly());
    let strided = Array2::from_shape_fn((4, 10), |(i, j)| (i + j) as f64);
    let sparse = strided.slice(s![.., ..;3]);
    assert!(!to_payload_with(&sparse, &opts()).unwrap().buffers[0].is_readonly());
}

#[test]
fn sparse_views_are_packed_once() {
    let base = Array2::from_shape_fn((6, 9), |(i, j)| (i * 9 + j) as i64);
    let v = SpanView::slice(&base, s![..;-1, ..;3]);
    let p = to_payload_with(&v, &opts()).unwrap();
    let b = &p.buffers[0];
    assert!(!b.is_borrowed());
    let want: Vec<i64> = v.view().iter().copied().collect();
    assert_eq!(&b[..], bytemuck::cast_slice::<i64, u8>(&want));
    // AlwaysSpan sends the span instead, AlwaysPack packs even dense spans.
    let span = WriteOptions::builder()
        .layout(LayoutPolicy::AlwaysSpan)
        .build()
        .unwrap();
    assert!(to_payload_with(&v, &span).unwrap().buffers[0].is_borrowed());
    let pack = WriteOptions::builder()
        .layout(LayoutPolicy::AlwaysPack)
        .build()
        .unwrap();
    let dense = base.slice(s![.., ..;2]);
    assert!(!to_payload_with(&dense, &pack).unwrap().buffers[0].is_borrowed());
}

#[test]
fn ndarray_from_owned_array_is_zero_copy_end_to_end() {
    let a = Array3::from_shape_fn((4, 5, 6), |(i, j, k)| (i + j + k) as u16);
    let ptr = addr(a.as_ptr());
    let nd = NdArray::from_array(a);
    let p = to_payload_with(&nd, &opts()).unwrap();
    assert_eq!(addr(p.buffers[0].as_ptr()), ptr);
}

#[test]
fn readonly_flag_reaches_buffers_and_opcodes() {
    let a = Array1::from_shape_fn(4, |i| i as f32);
    let ro = WriteOptions::builder().readonly(true).build().unwrap();
    let p = to_payload_with(&a, &ro).unwrap();
    assert!(p.buffers[0].is_readonly());
    assert!(
        p.pickle
            .windows(2)
            .any(|w| w == [opcodes::NEXT_BUFFER, opcodes::READONLY_BUFFER])
    );
    let inband = to_vec_with(&a, &ro).unwrap();
    assert!(!inband.contains(&opcodes::BYTEARRAY8));
    assert!(to_vec(&a).unwrap().contains(&opcodes::BYTEARRAY8));
}

/// A writer that records the size of every `write` call.
struct Recorder {
    data: Vec<u8>,
    largest_write: usize,
}

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.largest_write = self.largest_write.max(buf.len());
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn to_writer_streams_array_data_in_one_write_and_matches_to_vec() {
    let a = Array1::from_shape_fn(1 << 18, |i| i as f64);
    let mut rec = Recorder {
        data: Vec::new(),
        largest_write: 0,
    };
    to_writer(&mut rec, &a).unwrap();
    // The 2 MiB of data went to the writer straight from the array, in one call.
    assert_eq!(rec.largest_write, 8 << 18);
    assert_eq!(rec.data, to_vec(&a).unwrap());
}

#[test]
fn every_protocol_and_form_writes() {
    let a = Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f64);
    for form in [NumpyForm::Portable, NumpyForm::NumpyV1, NumpyForm::NumpyV2] {
        for protocol in 2..=5 {
            let o = WriteOptions::builder()
                .protocol(protocol)
                .numpy_form(form)
                .build()
                .unwrap();
            let v = to_vec_with(&a.slice(s![.., ..;2]), &o).unwrap();
            assert_eq!(&v[..2], &[opcodes::PROTO, protocol]);
            assert_eq!(*v.last().unwrap(), opcodes::STOP);
        }
    }
}

// ---- error paths -------------------------------------------------------------------

#[test]
fn bad_protocols_are_refused() {
    for p in [0u8, 1, 6, 255] {
        let e = WriteOptions::builder().protocol(p).build().unwrap_err();
        assert!(
            matches!(e, EncodeError::UnsupportedProtocol(x) if x == p),
            "{e}"
        );
        assert!(e.to_string().contains(&p.to_string()));
    }
}

#[test]
fn out_of_band_below_protocol_5_is_refused() {
    let a = Array1::<f64>::zeros(3);
    for p in 2..=4 {
        let o = WriteOptions::builder().protocol(p).build().unwrap();
        let e = to_payload_with(&a, &o).unwrap_err();
        assert!(
            matches!(e, EncodeError::OutOfBandNeedsProtocol5(x) if x == p),
            "{e}"
        );
    }
}

#[test]
fn impossible_layouts_are_refused() {
    let e = WriteOptions::builder()
        .numpy_form(NumpyForm::NumpyV2)
        .layout(LayoutPolicy::AlwaysSpan)
        .build()
        .unwrap_err();
    assert!(matches!(e, EncodeError::Layout(_)), "{e}");
    // Strides that do not match the shape.
    let e = ndpickle::internals::plan(&[2, 3], &[8], 8, LayoutPolicy::Auto, 0.5).unwrap_err();
    assert!(matches!(e, EncodeError::Layout(_)), "{e}");
}

#[test]
fn overflowing_shapes_are_refused() {
    let huge = [usize::MAX / 2, 4];
    let e = plan_parts(
        Cow::Owned(f64::dtype()),
        Cow::Borrowed(&huge[..]),
        &[32, 8],
        &[],
        0,
        &opts(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("overflows"), "{e}");
    let e = ndpickle::internals::plan(&[1 << 62, 1 << 62], &[8, 8], 8, LayoutPolicy::Auto, 0.5)
        .unwrap_err();
    assert!(e.to_string().contains("overflows"), "{e}");
}

#[test]
fn object_dtype_is_refused() {
    let nd = NdArray::from_c_bytes(DType::Object, vec![1], Bytes::from(vec![0u8; 8]));
    // NdArray refuses object arrays already; the dtype writer refuses bare object dtypes.
    assert!(nd.is_err());
    let e = to_vec(&ndpickle::Value::DType(DType::Object)).unwrap_err();
    assert!(matches!(e, EncodeError::UnsupportedDtype(_)), "{e}");
}

#[test]
fn dotted_globals_need_protocol_4() {
    let obj = ndpickle::Value::Object(Box::new(ndpickle::Object {
        callable: ndpickle::Global::new("pyarrow", "Array.from_buffers"),
        args: vec![],
        state: None,
    }));
    let o = WriteOptions::builder().protocol(3).build().unwrap();
    let e = to_vec_with(&obj, &o).unwrap_err();
    assert!(
        matches!(e, EncodeError::NeedsProtocol { min: 4, .. }),
        "{e}"
    );
    assert!(to_vec(&obj).is_ok());
}

#[test]
fn failing_writer_reports_io_error() {
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let a = Array1::<f64>::zeros(100_000);
    let e = to_writer(Broken, &a).unwrap_err();
    assert!(matches!(e, EncodeError::Io(_)), "{e}");
    assert!(e.to_string().contains("disk full"));
}

#[test]
fn plan_parts_bodies() {
    let data: Vec<u8> = (0..48).collect();
    let parts = plan_parts(
        Cow::Owned(f64::dtype()),
        Cow::Owned(vec![3]),
        &[-16],
        &data,
        32,
        &opts(),
    )
    .unwrap();
    match parts.body {
        Body::Span {
            bytes,
            offset,
            strides,
        } => {
            assert_eq!(bytes.len(), 40);
            assert_eq!(offset, 32);
            assert_eq!(strides, vec![-16]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn shared_arrays_are_written_once() {
    let a = Array1::from_shape_fn(1000, |i| i as f64);
    let b = Array1::from_shape_fn(1000, |i| -(i as f64));
    let list = vec![a.view(), b.view(), a.view()];
    let p = to_payload_with(&list, &opts()).unwrap();
    // Two distinct arrays, two buffers; the third item is a memo fetch.
    assert_eq!(p.buffers.len(), 2);
    let nd = NdArray::from_array(a.clone());
    let same = ndpickle::Value::List(vec![
        ndpickle::Value::from(nd.clone()),
        ndpickle::Value::from(nd),
    ]);
    assert_eq!(to_payload_with(&same, &opts()).unwrap().buffers.len(), 1);
    // A different view of the same memory is a different array.
    let rev = a.slice(s![..;-1]);
    let two = (a.view(), rev);
    assert_eq!(to_payload_with(&two, &opts()).unwrap().buffers.len(), 2);
}

#[test]
fn compressed_buffers_carry_their_frame_info() {
    use ndpickle::codec::{Codec, Compression, Filter, decompress};
    let a = Array1::from_shape_fn(1 << 16, |i| (i as f64 * 1e-3).sin());
    let raw: &[u8] = bytemuck::cast_slice(a.as_slice().unwrap());
    for settings in [
        Compression::Fixed(Codec::Lz4, Filter::Shuffle { elem_size: 0 }),
        Compression::Fixed(Codec::Zstd { level: 3 }, Filter::None),
        Compression::Auto(Default::default()),
    ] {
        let o = WriteOptions::builder()
            .compression(settings)
            .build()
            .unwrap();
        let p = to_payload_with(&a, &o).unwrap();
        let b = &p.buffers[0];
        let info = b.frame_info().expect("smooth data compresses");
        assert!(b.len() < raw.len());
        assert_eq!(b.raw_len(), raw.len() as u64);
        assert_eq!(decompress(b, info, raw.len()).unwrap(), raw);
        // In-band: the frame travels inside ndpickle._decompress(header, frame, writable).
        let v = to_vec_with(&a, &o).unwrap();
        assert!(v.windows(11).any(|w| w == b"_decompress"));
        assert!(v.len() < raw.len());
    }
    // Random bits stay raw under Auto, and stay borrowed.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let noise = Array1::from_shape_fn(1 << 16, |_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        f64::from_bits(x >> 2)
    });
    let o = WriteOptions::builder()
        .compression(Compression::Auto(Default::default()))
        .build()
        .unwrap();
    let p = to_payload_with(&noise, &o).unwrap();
    assert!(p.buffers[0].frame_info().is_none());
    assert!(p.buffers[0].is_borrowed());
}
