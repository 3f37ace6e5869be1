//! Public API behaviour of the reader: entry points, zero-copy guarantees, Python 2 era
//! forms, error locations, a proptest round trip through a test-only encoder, and proptest
//! round trips through the crate's writer (arrays and `Value` trees).

mod common;

use bytes::Bytes;
use common::P;
use ndpickle::opcodes::*;
use ndpickle::{
    DecodeErrorKind, NumpyForm, ReadOptions, Value, WriteOptions, from_bytes, from_payload,
    from_reader, from_slice,
};
use proptest::prelude::*;

fn frombuffer_oob(n: i64) -> Vec<u8> {
    P::new(5)
        .stack_global("numpy._core.numeric", "_frombuffer")
        .op(MARK)
        .op(NEXT_BUFFER)
        .op(READONLY_BUFFER)
        .dtype("<f8")
        .shape(&[n])
        .str("C")
        .op(TUPLE)
        .op(REDUCE)
        .stop()
}

#[test]
fn out_of_band_is_zero_copy_and_readonly() {
    let buf = Bytes::from((0..64u8).collect::<Vec<_>>());
    let v = from_payload(&frombuffer_oob(8), [buf.clone()]).unwrap();
    let a = v.as_array().unwrap();
    assert_eq!(a.data().as_ptr(), buf.as_ptr());
    assert!(a.is_readonly());
    assert_eq!(a.shape(), &[8]);
    // Too few, wrong-sized and missing buffers.
    let e = from_payload(&frombuffer_oob(9), [buf.clone()]).unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::BadArray(_)), "{e}");
    let e = from_payload(&frombuffer_oob(8), Vec::<Bytes>::new()).unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::MissingBuffer));
    assert_eq!(e.opcode, Some(NEXT_BUFFER));
}

#[test]
fn frombuffer_k_order_transposes() {
    // numpy's 5-argument form: reshape C-ordered (2, 3) then transpose (1, 0).
    let data: Vec<u8> = (0..6i16).flat_map(|i| i.to_le_bytes()).collect();
    let p = P::new(5)
        .stack_global("numpy.core.numeric", "_frombuffer")
        .op(MARK)
        .bytearray(&data)
        .dtype("<i2")
        .shape(&[2, 3])
        .str("K")
        .shape(&[1, 0])
        .op(TUPLE)
        .op(REDUCE)
        .stop();
    let v = from_slice(&p).unwrap();
    let a = v.as_array().unwrap();
    assert_eq!(a.shape(), &[3, 2]);
    assert_eq!(a.strides(), &[2, 6]);
    let arr = a.to_owned_array::<i16>().unwrap();
    assert_eq!(
        arr.iter().copied().collect::<Vec<_>>(),
        vec![0, 3, 1, 4, 2, 5]
    );
    let bad = P::new(5)
        .stack_global("numpy.core.numeric", "_frombuffer")
        .op(MARK)
        .bytearray(&data)
        .dtype("<i2")
        .shape(&[2, 3])
        .str("K")
        .shape(&[0, 0])
        .op(TUPLE)
        .op(REDUCE)
        .stop();
    assert!(from_slice(&bad).is_err());
}

#[test]
fn from_bytes_slices_and_from_reader_reads() {
    let payload = vec![7u8; 1000];
    let data = Bytes::from(P::new(4).bytes(&payload).stop());
    match from_bytes(data.clone()).unwrap() {
        Value::Bytes(b) => {
            let start = data.as_ptr() as usize;
            assert!((start..start + data.len()).contains(&(b.as_ptr() as usize)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        from_reader(&data[..]).unwrap(),
        Value::Bytes(Bytes::from(payload))
    );
}

#[test]
fn python2_era_forms() {
    // numpy 1.x under Python 2: GLOBAL, BINSTRING dtype spec, int flags, latin-1 str data.
    let raw: Vec<u8> = [1.5f64, -2.0]
        .iter()
        .flat_map(|f| f.to_le_bytes())
        .collect();
    let latin: String = raw.iter().map(|&b| char::from(b)).collect();
    let mut p = P::new(2)
        .global("numpy.core.multiarray", "_reconstruct")
        .global("numpy", "ndarray")
        .int(0)
        .op(TUPLE1)
        .raw(b"U\x01b")
        .op(TUPLE3)
        .op(REDUCE)
        .op(MARK)
        .int(1)
        .int(2)
        .op(TUPLE1)
        .global("numpy", "dtype")
        .raw(b"U\x02f8")
        .int(0)
        .int(1)
        .op(TUPLE3)
        .op(REDUCE)
        .op(MARK)
        .int(3)
        .raw(b"U\x01<")
        .op(NONE)
        .op(NONE)
        .op(NONE)
        .int(-1)
        .int(-1)
        .int(0)
        .op(TUPLE)
        .op(BUILD)
        .op(NEWFALSE);
    p.0.push(BINSTRING);
    p.0.extend((latin.chars().count() as u32).to_le_bytes());
    p.0.extend(raw.iter());
    let data = p.op(TUPLE).op(BUILD).stop();
    let v = from_slice(&data).unwrap();
    let arr = v.as_array().unwrap().to_owned_array::<f64>().unwrap();
    assert_eq!(arr.iter().copied().collect::<Vec<_>>(), vec![1.5, -2.0]);

    // copy_reg._reconstructor(set, set, [1, 2]) and __builtin__.bytes().
    let data = P::new(2)
        .global("copy_reg", "_reconstructor")
        .op(MARK)
        .global("__builtin__", "set")
        .global("__builtin__", "set")
        .op(MARK)
        .int(1)
        .int(2)
        .op(LIST)
        .op(TUPLE)
        .op(REDUCE)
        .stop();
    assert_eq!(
        from_slice(&data).unwrap(),
        Value::Set(vec![Value::Int(1), Value::Int(2)])
    );
    let data = P::new(2)
        .global("__builtin__", "bytes")
        .op(EMPTY_TUPLE)
        .op(REDUCE)
        .stop();
    assert_eq!(from_slice(&data).unwrap(), Value::Bytes(Bytes::new()));
    // copy_reg._reconstructor of anything else is refused.
    let data = P::new(2)
        .global("copy_reg", "_reconstructor")
        .op(MARK)
        .global("__builtin__", "set")
        .global("__builtin__", "object")
        .op(NONE)
        .op(TUPLE)
        .op(REDUCE)
        .stop();
    assert!(from_slice(&data).is_err());
}

#[test]
fn errors_carry_offset_and_opcode() {
    let data = [PROTO, 4, EMPTY_LIST, APPEND, STOP];
    let e = from_slice(&data).unwrap_err();
    assert_eq!((e.offset, e.opcode), (Some(3), Some(APPEND)));
    assert!(matches!(e.kind, DecodeErrorKind::StackUnderflow));
    assert!(e.to_string().starts_with("at byte 3 (APPEND)"), "{e}");
    let e = from_slice(&[PROTO, 6, NONE, STOP]).unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::UnsupportedProtocol(6)));
    let e = from_slice(&[PROTO, 2, NONE]).unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::UnexpectedEof));
    assert_eq!(e.offset, Some(3));
    let e = from_slice(&[0xff]).unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::UnknownOpcode(0xff)));
    let e = from_slice(&[BINGET, 3, STOP]).unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::MissingMemo(3)));
    let e = from_slice(&[NONE, MARK, TUPLE1, STOP]).unwrap_err();
    assert!(e.to_string().contains("TUPLE1"), "{e}");
    let e = from_slice(&[APPENDS, STOP]).unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::MissingMark));
    let e = from_slice(&[MARK, NONE, DICT, STOP]).unwrap_err();
    assert!(e.to_string().contains("odd number"), "{e}");
    let e = from_slice(&[EMPTY_DICT, READONLY_BUFFER, STOP]).unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::Type { .. }));
    // Opaque mode keeps unknown calls; the default refuses them.
    let data = P::new(4)
        .stack_global("mymod", "Thing")
        .int(1)
        .op(TUPLE1)
        .op(REDUCE)
        .op(EMPTY_DICT)
        .op(BUILD)
        .stop();
    assert!(matches!(
        from_slice(&data).unwrap_err().kind,
        DecodeErrorKind::ForbiddenGlobal { .. }
    ));
    let opts = ReadOptions::builder()
        .allow_global("mymod", "Thing")
        .build()
        .unwrap();
    match ndpickle::from_slice_with(&data, &opts).unwrap() {
        Value::Object(o) => {
            assert_eq!(o.callable.to_string(), "mymod.Thing");
            assert_eq!(o.args, vec![Value::Int(1)]);
            assert_eq!(o.state, Some(Value::Dict(vec![])));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn memo_shares_mutations_like_python() {
    // l = []; memo[0] = l; d = {'a': l, 'b': l}; l.append(1) after both references.
    let data = P::new(2)
        .op(EMPTY_DICT)
        .str("a")
        .op(EMPTY_LIST)
        .put(0)
        .op(SETITEM)
        .str("b")
        .get(0)
        .op(SETITEM)
        .get(0)
        .int(1)
        .op(APPEND)
        .op(POP)
        .stop();
    let v = from_slice(&data).unwrap();
    assert_eq!(v.get("a"), Some(&Value::List(vec![Value::Int(1)])));
    assert_eq!(v.get("b"), Some(&Value::List(vec![Value::Int(1)])));
}

/// A test-only encoder for the plain value subset (not the crate's writer).
fn encode(v: &Value, p: P) -> P {
    match v {
        Value::None => p.op(NONE),
        Value::Bool(true) => p.op(NEWTRUE),
        Value::Bool(false) => p.op(NEWFALSE),
        Value::Int(i) => p.int(*i),
        Value::Float(f) => p.op(BINFLOAT).raw(&f.to_be_bytes()),
        Value::Str(s) => p.str(s),
        Value::Bytes(b) => p.bytes(b),
        Value::ByteArray(b) => p.bytearray(b),
        Value::List(items) | Value::Tuple(items) | Value::Set(items) => {
            let (open, close) = match v {
                Value::List(_) => (EMPTY_LIST, APPENDS),
                Value::Set(_) => (EMPTY_SET, ADDITEMS),
                _ => (MARK, TUPLE),
            };
            let mut p = if open == MARK {
                p.op(MARK)
            } else {
                p.op(open).op(MARK)
            };
            for x in items {
                p = encode(x, p);
            }
            p.op(close)
        }
        Value::Dict(items) => {
            let mut p = p.op(EMPTY_DICT).op(MARK);
            for (k, x) in items {
                p = encode(x, encode(k, p));
            }
            p.op(SETITEMS)
        }
        other => unreachable!("{other:?}"),
    }
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<f64>()
            .prop_filter("nan", |f| !f.is_nan())
            .prop_map(Value::Float),
        ".{0,300}".prop_map(Value::Str),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| Value::Bytes(b.into())),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| Value::ByteArray(b.into())),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Tuple),
            proptest::collection::vec(any::<i64>().prop_map(Value::Int), 0..8).prop_map(Value::Set),
            proptest::collection::vec((".{0,8}".prop_map(Value::Str), inner), 0..8)
                .prop_map(Value::Dict),
        ]
    })
}

proptest! {
    #[test]
    fn plain_values_round_trip(v in value(), proto in 2u8..=5) {
        let data = encode(&v, P::new(proto)).stop();
        prop_assert_eq!(from_slice(&data).unwrap(), v.clone());
        prop_assert_eq!(from_bytes(Bytes::from(data)).unwrap(), v);
    }

    #[test]
    fn truncations_fail_cleanly(v in value(), cut in any::<prop::sample::Index>()) {
        let data = encode(&v, P::new(4)).stop();
        let cut = cut.index(data.len());
        prop_assert!(from_slice(&data[..cut]).is_err());
    }
}

// Round trips through the crate's own writer: arrays of every element type, shape and
// layout in every numpy form and protocol, in-band and out-of-band; and `Value` trees.

/// How the written array is laid out in memory.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// C-contiguous.
    C,
    /// Fortran-contiguous.
    F,
    /// Every axis reversed (negative strides).
    Reversed,
    /// Every other element on every axis.
    Strided,
    /// Axis 0 broadcast from length 1 (zero stride).
    Broadcast,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn elements<T>(n: usize, seed: u64, f: fn(u64) -> T) -> Vec<T> {
    (0..n as u64).map(|i| f(splitmix(seed ^ i))).collect()
}

fn bytes_of<T: ndpickle::Element>(a: &ndarray::ArrayViewD<'_, T>) -> Vec<u8> {
    let std = a.as_standard_layout();
    bytemuck::cast_slice::<T, u8>(std.as_slice().unwrap()).to_vec()
}

fn write_options(form: NumpyForm, protocol: u8) -> WriteOptions {
    WriteOptions::builder()
        .protocol(protocol)
        .numpy_form(form)
        .build()
        .unwrap()
}

fn round_trip<T: ndpickle::Element>(
    f: fn(u64) -> T,
    shape: &[usize],
    layout: Layout,
    form: NumpyForm,
    protocol: u8,
    seed: u64,
) -> Result<(), TestCaseError> {
    use ndarray::{ArrayD, Axis, IxDyn, ShapeBuilder, Slice};
    let n: usize = shape.iter().product();
    let base: ArrayD<T> = match layout {
        Layout::C | Layout::Reversed => {
            ArrayD::from_shape_vec(IxDyn(shape), elements(n, seed, f)).unwrap()
        }
        Layout::F => ArrayD::from_shape_vec(IxDyn(shape).f(), elements(n, seed, f)).unwrap(),
        Layout::Strided => {
            let big: Vec<usize> = shape.iter().map(|&d| d * 2).collect();
            let m = big.iter().product();
            ArrayD::from_shape_vec(IxDyn(&big), elements(m, seed, f)).unwrap()
        }
        Layout::Broadcast => {
            let mut small = shape.to_vec();
            if let Some(d) = small.first_mut() {
                *d = 1;
            }
            let m = small.iter().product();
            ArrayD::from_shape_vec(IxDyn(&small), elements(m, seed, f)).unwrap()
        }
    };
    let mut view = base.view();
    match layout {
        Layout::Reversed => {
            for ax in 0..shape.len() {
                view.invert_axis(Axis(ax));
            }
        }
        Layout::Strided => view = base.slice_each_axis(|_| Slice::new(0, None, 2)),
        Layout::Broadcast => view = base.broadcast(IxDyn(shape)).unwrap(),
        Layout::C | Layout::F => {}
    }
    prop_assert_eq!(view.shape(), shape);
    let expected = bytes_of(&view);
    let check = |v: &Value, how: &str| -> Result<(), TestCaseError> {
        let a = v
            .as_array()
            .ok_or_else(|| TestCaseError::fail(format!("{how}: not an array: {v:?}")))?;
        prop_assert_eq!(a.dtype(), &T::dtype(), "{}", how);
        prop_assert_eq!(a.shape(), shape, "{}", how);
        let got = a.to_owned_array::<T>().unwrap();
        prop_assert_eq!(bytes_of(&got.view()), expected.clone(), "{}", how);
        Ok(())
    };
    let opts = write_options(form, protocol);
    let data = ndpickle::to_vec_with(&view, &opts).unwrap();
    check(&from_slice(&data).unwrap(), "to_vec -> from_slice")?;
    check(
        &from_bytes(Bytes::from(data)).unwrap(),
        "to_vec -> from_bytes",
    )?;
    if protocol == 5 {
        let p = ndpickle::to_payload_with(&view, &opts).unwrap();
        check(
            &from_payload(&p.pickle, p.buffers).unwrap(),
            "to_payload -> from_payload",
        )?;
    }
    Ok(())
}

fn layout() -> impl Strategy<Value = Layout> {
    prop_oneof![
        Just(Layout::C),
        Just(Layout::F),
        Just(Layout::Reversed),
        Just(Layout::Strided),
        Just(Layout::Broadcast),
    ]
}

fn form() -> impl Strategy<Value = NumpyForm> {
    prop_oneof![
        Just(NumpyForm::Portable),
        Just(NumpyForm::NumpyV1),
        Just(NumpyForm::NumpyV2),
    ]
}

fn big_int() -> impl Strategy<Value = Value> {
    (any::<bool>(), proptest::collection::vec(any::<u32>(), 3..6)).prop_map(|(neg, digits)| {
        let mut b = num_bigint::BigInt::from(u64::MAX) + 1u8;
        for d in digits {
            b *= u64::from(d) + 2;
        }
        Value::BigInt(if neg { -b } else { b })
    })
}

fn writer_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        big_int(),
        any::<f64>()
            .prop_filter("nan", |f| !f.is_nan())
            .prop_map(Value::Float),
        (-1e6f64..1e6, -1e6f64..1e6)
            .prop_map(|(re, im)| Value::Complex(num_complex::Complex64::new(re, im))),
        ".{0,300}".prop_map(Value::Str),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| Value::Bytes(b.into())),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| Value::ByteArray(b.into())),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Tuple),
            proptest::collection::vec(any::<i64>().prop_map(Value::Int), 0..8).prop_map(Value::Set),
            proptest::collection::vec(".{0,4}".prop_map(Value::Str), 0..8)
                .prop_map(Value::FrozenSet),
            proptest::collection::vec((".{0,8}".prop_map(Value::Str), inner), 0..8)
                .prop_map(Value::Dict),
        ]
    })
}

macro_rules! element_round_trips {
    ($($name:ident: $t:ty = $f:expr;)*) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]
            $(
                #[test]
                fn $name(
                    shape in proptest::collection::vec(0usize..5, 0..4),
                    layout in layout(),
                    form in form(),
                    protocol in 2u8..=5,
                    seed in any::<u64>(),
                ) {
                    round_trip::<$t>($f, &shape, layout, form, protocol, seed)?;
                }
            )*
        }
    };
}

element_round_trips! {
    writer_round_trip_bool: bool = |x| x & 1 == 1;
    writer_round_trip_i8: i8 = |x| x as i8;
    writer_round_trip_u8: u8 = |x| x as u8;
    writer_round_trip_i16: i16 = |x| x as i16;
    writer_round_trip_u16: u16 = |x| x as u16;
    writer_round_trip_i32: i32 = |x| x as i32;
    writer_round_trip_u32: u32 = |x| x as u32;
    writer_round_trip_i64: i64 = |x| x as i64;
    writer_round_trip_u64: u64 = |x| x;
    writer_round_trip_f16: half::f16 = |x| half::f16::from_bits(x as u16);
    writer_round_trip_bf16: half::bf16 = |x| half::bf16::from_bits(x as u16);
    writer_round_trip_f32: f32 = |x| f32::from_bits(x as u32);
    writer_round_trip_f64: f64 = f64::from_bits;
    writer_round_trip_c64: num_complex::Complex<f32> =
        |x| num_complex::Complex::new(f32::from_bits(x as u32), f32::from_bits((x >> 32) as u32));
    writer_round_trip_c128: num_complex::Complex<f64> =
        |x| num_complex::Complex::new(f64::from_bits(x), f64::from_bits(x.rotate_left(17)));
}

proptest! {
    #[test]
    fn writer_values_round_trip(v in writer_value(), protocol in 2u8..=5) {
        let opts = write_options(NumpyForm::Portable, protocol);
        let data = ndpickle::to_vec_with(&v, &opts).unwrap();
        prop_assert_eq!(&from_slice(&data).unwrap(), &v);
        prop_assert_eq!(&from_bytes(Bytes::from(data)).unwrap(), &v);
        if protocol == 5 {
            let p = ndpickle::to_payload_with(&v, &opts).unwrap();
            prop_assert_eq!(&from_payload(&p.pickle, p.buffers).unwrap(), &v);
        }
    }
}

#[test]
fn every_entry_point_has_a_plain_and_an_options_twin() {
    use ndpickle::{WriteOptions, to_file, to_file_with, to_payload, to_payload_with};
    let a = ndarray::Array2::<f32>::from_shape_fn((64, 33), |(i, j)| (i * 33 + j) as f32);
    let plain = to_payload(&a).unwrap();
    let with = to_payload_with(&a, &WriteOptions::default()).unwrap();
    assert_eq!(plain.pickle, with.pickle);
    assert_eq!(plain.buffers.len(), 1);
    let bufs: Vec<bytes::Bytes> = plain
        .buffers
        .iter()
        .map(|b| bytes::Bytes::copy_from_slice(b))
        .collect();
    let pickle = bytes::Bytes::from(plain.pickle.clone());
    let v = ndpickle::from_bytes_payload(pickle.clone(), bufs.clone()).unwrap();
    assert_eq!(
        v.as_array().unwrap().to_owned_array::<f32>().unwrap(),
        a.clone().into_dyn()
    );
    // The options twin applies its limits.
    let tight = ReadOptions::builder().max_depth(1).build().unwrap();
    assert!(ndpickle::from_bytes_payload_with(pickle, bufs, &tight).is_err());

    let dir = std::env::temp_dir().join(format!("ndpickle-twins-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (p1, p2) = (dir.join("plain.pkl"), dir.join("with.pkl"));
    to_file(&p1, &a).unwrap();
    to_file_with(&p2, &a, &WriteOptions::default()).unwrap();
    assert_eq!(std::fs::read(&p1).unwrap(), std::fs::read(&p2).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}
