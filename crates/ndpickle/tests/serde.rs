//! `ndpickle::serde`: the data model, arrays of every storage and layout, round trips
//! (proptest), and every error path. The Python side of the format (CPython's `pickle` with
//! numpy 2.x and 1.26, both directions) is `tests/test_serde.py`.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use ndarray::{
    ArcArray1, ArcArray2, Array0, Array1, Array2, Array3, ArrayD, ArrayView2, CowArray, Ix2, IxDyn,
    s,
};
use ndpickle::serde::{
    from_payload, from_slice, from_value, to_payload, to_payload_with, to_vec, to_vec_with,
};
use ndpickle::{
    DType, DecodeErrorKind, EncodeError, NdArray, NumpyForm, ReadOptions, Value, WriteOptions,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

fn opts(protocol: u8) -> WriteOptions {
    WriteOptions::builder().protocol(protocol).build().unwrap()
}

/// The pickle as the safe reader sees it.
fn tree<T: Serialize>(v: &T) -> Value {
    ndpickle::from_slice(&to_vec(v).unwrap()).unwrap()
}

fn s(x: &str) -> Value {
    Value::Str(x.into())
}

fn dict(items: Vec<(Value, Value)>) -> Value {
    Value::Dict(items)
}

/// The message of a deserialization error, path included.
fn de_err<T: serde::de::DeserializeOwned + std::fmt::Debug>(v: &Value) -> String {
    let e = from_value::<T>(v).unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::Serde { .. }), "{e:?}");
    e.to_string()
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Optimizer {
    Sgd,
    Adam { beta: f64 },
    Momentum(f64),
    Pair(i32, i32),
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Unit;

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Wrapper(u8);

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Everything {
    b: bool,
    i8: i8,
    u8: u8,
    i64: i64,
    u64: u64,
    i128: i128,
    u128: u128,
    f32: f32,
    f64: f64,
    c: char,
    s: String,
    #[serde(with = "serde_bytes")]
    bytes: Vec<u8>,
    none: Option<i32>,
    some: Option<i32>,
    unit: (),
    unit_struct: Unit,
    newtype: Wrapper,
    tuple: (i32, String, bool, f64),
    list: Vec<u16>,
    map: BTreeMap<i32, String>,
    opt: Vec<Optimizer>,
}

fn everything() -> Everything {
    Everything {
        b: true,
        i8: -8,
        u8: 200,
        i64: i64::MIN,
        u64: u64::MAX,
        i128: i128::MIN,
        u128: u128::MAX,
        f32: 1.5,
        f64: -0.25,
        c: 'é',
        s: "hello".into(),
        bytes: vec![0, 255],
        none: None,
        some: Some(-3),
        unit: (),
        unit_struct: Unit,
        newtype: Wrapper(9),
        tuple: (1, "x".into(), false, 2.5),
        list: vec![1, 2, 3],
        map: [(1, "one".to_string()), (-2, "minus two".to_string())].into(),
        opt: vec![
            Optimizer::Sgd,
            Optimizer::Adam { beta: 0.9 },
            Optimizer::Momentum(0.5),
            Optimizer::Pair(1, 2),
        ],
    }
}

#[test]
fn data_model_as_python_sees_it() {
    let v = tree(&everything());
    let get = |k: &str| v.get(k).unwrap_or_else(|| panic!("no key {k}")).clone();
    assert_eq!(get("b"), Value::Bool(true));
    assert_eq!(get("u8"), Value::Int(200));
    assert_eq!(get("i64"), Value::Int(i64::MIN));
    assert_eq!(get("u64"), Value::BigInt(u64::MAX.into()));
    assert_eq!(get("i128"), Value::BigInt(i128::MIN.into()));
    assert_eq!(get("u128"), Value::BigInt(u128::MAX.into()));
    assert_eq!(get("f32"), Value::Float(1.5));
    assert_eq!(get("c"), s("é"));
    assert_eq!(get("bytes"), Value::Bytes(Bytes::from_static(&[0, 255])));
    assert_eq!(get("none"), Value::None);
    assert_eq!(get("some"), Value::Int(-3));
    assert_eq!(get("unit"), Value::None);
    assert_eq!(get("unit_struct"), Value::None);
    assert_eq!(get("newtype"), Value::Int(9));
    assert_eq!(
        get("tuple"),
        Value::Tuple(vec![
            Value::Int(1),
            s("x"),
            Value::Bool(false),
            Value::Float(2.5)
        ])
    );
    assert_eq!(
        get("list"),
        Value::List(vec![Value::Int(1), Value::Int(2), Value::Int(3)])
    );
    assert_eq!(
        get("map"),
        dict(vec![
            (Value::Int(-2), s("minus two")),
            (Value::Int(1), s("one"))
        ])
    );
    assert_eq!(
        get("opt"),
        Value::List(vec![
            s("Sgd"),
            dict(vec![(
                s("Adam"),
                dict(vec![(s("beta"), Value::Float(0.9))])
            )]),
            dict(vec![(s("Momentum"), Value::Float(0.5))]),
            dict(vec![(
                s("Pair"),
                Value::Tuple(vec![Value::Int(1), Value::Int(2)])
            )]),
        ])
    );
    // Field order is the struct's.
    let keys: Vec<_> = v
        .as_dict()
        .unwrap()
        .iter()
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(keys[0], s("b"));
    assert_eq!(keys[keys.len() - 1], s("opt"));
}

#[test]
fn round_trip_every_protocol() {
    for p in 2..=5 {
        let bytes = to_vec_with(&everything(), &opts(p)).unwrap();
        assert_eq!(bytes[1], p);
        assert_eq!(from_slice::<Everything>(&bytes).unwrap(), everything());
    }
    let mut out = Vec::new();
    ndpickle::serde::to_writer_with(&mut out, &everything(), &opts(3)).unwrap();
    assert_eq!(out, to_vec_with(&everything(), &opts(3)).unwrap());
    let back: Everything = ndpickle::serde::from_reader(&out[..]).unwrap();
    assert_eq!(back, everything());
}

#[test]
fn long_lists_and_dicts_batch() {
    let v: Vec<u32> = (0..2500).collect();
    let m: HashMap<String, u32> = (0..2500).map(|i| (i.to_string(), i)).collect();
    assert_eq!(from_slice::<Vec<u32>>(&to_vec(&v).unwrap()).unwrap(), v);
    assert_eq!(
        from_slice::<HashMap<String, u32>>(&to_vec(&m).unwrap()).unwrap(),
        m
    );
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    enum E {
        S { m: BTreeMap<u32, u32> },
    }
    let e = E::S {
        m: (0..1500).map(|i| (i, i * 2)).collect(),
    };
    assert_eq!(from_slice::<E>(&to_vec(&e).unwrap()).unwrap(), e);
}

/// 150 variant names: more than the writer's table of names holds.
#[derive(Serialize, Deserialize, PartialEq, Debug, Clone, Copy)]
enum Many {
    V0,
    V1,
    V2,
    V3,
    V4,
    V5,
    V6,
    V7,
    V8,
    V9,
    V10,
    V11,
    V12,
    V13,
    V14,
    V15,
    V16,
    V17,
    V18,
    V19,
    V20,
    V21,
    V22,
    V23,
    V24,
    V25,
    V26,
    V27,
    V28,
    V29,
    V30,
    V31,
    V32,
    V33,
    V34,
    V35,
    V36,
    V37,
    V38,
    V39,
    V40,
    V41,
    V42,
    V43,
    V44,
    V45,
    V46,
    V47,
    V48,
    V49,
    V50,
    V51,
    V52,
    V53,
    V54,
    V55,
    V56,
    V57,
    V58,
    V59,
    V60,
    V61,
    V62,
    V63,
    V64,
    V65,
    V66,
    V67,
    V68,
    V69,
    V70,
    V71,
    V72,
    V73,
    V74,
    V75,
    V76,
    V77,
    V78,
    V79,
    V80,
    V81,
    V82,
    V83,
    V84,
    V85,
    V86,
    V87,
    V88,
    V89,
    V90,
    V91,
    V92,
    V93,
    V94,
    V95,
    V96,
    V97,
    V98,
    V99,
    V100,
    V101,
    V102,
    V103,
    V104,
    V105,
    V106,
    V107,
    V108,
    V109,
    V110,
    V111,
    V112,
    V113,
    V114,
    V115,
    V116,
    V117,
    V118,
    V119,
    V120,
    V121,
    V122,
    V123,
    V124,
    V125,
    V126,
    V127,
    V128,
    V129,
    V130,
    V131,
    V132,
    V133,
    V134,
    V135,
    V136,
    V137,
    V138,
    V139,
    V140,
    V141,
    V142,
    V143,
    V144,
    V145,
    V146,
    V147,
    V148,
    V149,
}

/// Fields in an order the data changes: a variant between fields, fields skipped.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Row {
    id: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    note: Option<String>,
    kind: Kind,
    inner: Inner,
    last: bool,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
enum Kind {
    Plain,
    Scaled { factor: f64 },
    Pair(u8, u8),
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Inner {
    id: u32,
    last: Option<bool>,
}

/// Occurrences of `needle` in `hay`.
fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

#[test]
fn field_and_variant_names_are_written_once() {
    let rows: Vec<Row> = (0..3000u32)
        .map(|i| Row {
            id: i,
            note: (i % 7 == 0).then(|| format!("n{i}")),
            kind: match i % 3 {
                0 => Kind::Plain,
                1 => Kind::Scaled {
                    factor: f64::from(i),
                },
                _ => Kind::Pair(i as u8, 1),
            },
            inner: Inner {
                id: i * 2,
                last: (i % 2 == 0).then_some(true),
            },
            last: i % 5 == 0,
        })
        .collect();
    for protocol in [2, 3, 4, 5] {
        let bytes = to_vec_with(&rows, &opts(protocol)).unwrap();
        assert_eq!(
            from_slice::<Vec<Row>>(&bytes).unwrap(),
            rows,
            "protocol {protocol}"
        );
        for name in [
            "id", "note", "kind", "inner", "last", "Plain", "Scaled", "factor", "Pair",
        ] {
            // SHORT_BINUNICODE (4+) or BINUNICODE (2, 3) before the name's bytes.
            let mut short = vec![0x8c, name.len() as u8];
            short.extend_from_slice(name.as_bytes());
            let mut long = vec![b'X', name.len() as u8, 0, 0, 0];
            long.extend_from_slice(name.as_bytes());
            assert_eq!(
                count(&bytes, &short) + count(&bytes, &long),
                1,
                "{name} at protocol {protocol}"
            );
        }
        let tree = ndpickle::from_slice(&bytes).unwrap();
        let Value::List(items) = tree else {
            panic!("{tree:?}")
        };
        assert_eq!(items.len(), rows.len());
    }
    // Past the table's room, names are written in full and still read back.
    let many: Vec<Many> = (0..3)
        .flat_map(|_| {
            (0..150).map(|i| {
                let v: Many = from_value(&Value::Str(format!("V{i}"))).unwrap();
                v
            })
        })
        .collect();
    let bytes = to_vec(&many).unwrap();
    assert_eq!(from_slice::<Vec<Many>>(&bytes).unwrap(), many);
    assert_eq!(count(&bytes, b"\x8c\x02V0"), 1);
    assert_eq!(count(&bytes, b"\x8c\x04V149"), 3);
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Attrs {
    #[serde(rename = "learning_rate")]
    lr: f64,
    #[serde(default)]
    epochs: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    #[serde(flatten)]
    extra: BTreeMap<String, i64>,
}

#[test]
fn serde_attributes_behave_as_documented() {
    let a = Attrs {
        lr: 0.1,
        epochs: 3,
        note: None,
        extra: [("seed".to_string(), 42)].into(),
    };
    let v = tree(&a);
    assert_eq!(
        v,
        dict(vec![
            (s("learning_rate"), Value::Float(0.1)),
            (s("epochs"), Value::Int(3)),
            (s("seed"), Value::Int(42)),
        ])
    );
    assert_eq!(from_value::<Attrs>(&v).unwrap(), a);
    // `default` fills a missing field.
    let v = dict(vec![(s("learning_rate"), Value::Float(0.5))]);
    let b: Attrs = from_value(&v).unwrap();
    assert_eq!((b.lr, b.epochs, b.note, b.extra.len()), (0.5, 0, None, 0));
}

#[test]
fn python_conveniences_on_reading() {
    #[derive(Deserialize, Debug, PartialEq)]
    struct P {
        x: f64,
        v: Vec<i32>,
        #[serde(with = "serde_bytes")]
        b: Vec<u8>,
        t: (i32, i32),
        flag: bool,
        n: u16,
    }
    let scalar = |dtype: &str, bytes: &[u8]| {
        Value::Scalar(Box::new(
            NdArray::from_c_bytes(
                DType::parse(dtype).unwrap(),
                vec![],
                Bytes::copy_from_slice(bytes),
            )
            .unwrap(),
        ))
    };
    // int for a float field, a set for a list, bytearray for bytes, a list for a tuple,
    // numpy scalars for bools and ints.
    let v = dict(vec![
        (s("x"), Value::Int(2)),
        (s("v"), Value::Set(vec![Value::Int(1)])),
        (s("b"), Value::ByteArray(Bytes::from_static(b"ab"))),
        (s("t"), Value::List(vec![Value::Int(1), Value::Int(2)])),
        (s("flag"), scalar("|b1", &[1])),
        (s("n"), scalar(">u2", &[1, 2])),
    ]);
    let p: P = from_value(&v).unwrap();
    assert_eq!(
        p,
        P {
            x: 2.0,
            v: vec![1],
            b: b"ab".to_vec(),
            t: (1, 2),
            flag: true,
            n: 258
        }
    );
    // A struct from a tuple (fields in order), as serde_json takes arrays.
    #[derive(Deserialize, Debug, PartialEq)]
    struct Q {
        a: i32,
        b: String,
    }
    let q: Q = from_value(&Value::Tuple(vec![Value::Int(1), s("z")])).unwrap();
    assert_eq!(
        q,
        Q {
            a: 1,
            b: "z".into()
        }
    );
    // Floating numpy scalars, f16 and bfloat16 too.
    assert_eq!(
        from_value::<f64>(&scalar("<f4", &1.5f32.to_le_bytes())).unwrap(),
        1.5
    );
    assert_eq!(
        from_value::<f64>(&scalar("<f2", &half::f16::from_f32(0.5).to_le_bytes())).unwrap(),
        0.5
    );
    let bf = Value::Scalar(Box::new(
        NdArray::from_c_bytes(
            DType::bfloat16(),
            vec![],
            Bytes::copy_from_slice(&half::bf16::from_f32(2.0).to_le_bytes()),
        )
        .unwrap(),
    ));
    assert_eq!(from_value::<f32>(&bf).unwrap(), 2.0);
    assert_eq!(
        from_value::<i64>(&scalar("<i8", &(-5i64).to_le_bytes())).unwrap(),
        -5
    );
    assert_eq!(
        from_value::<u64>(&scalar("<u8", &u64::MAX.to_le_bytes())).unwrap(),
        u64::MAX
    );
}

// ---- arrays ------------------------------------------------------------------------

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Model {
    name: String,
    #[serde(with = "ndpickle::serde::array")]
    weights: Array2<f32>,
    #[serde(with = "ndpickle::serde::array")]
    bias: ArcArray1<f32>,
    #[serde(with = "ndpickle::serde::array")]
    any: ArrayD<i16>,
    #[serde(with = "ndpickle::serde::array_1d")]
    ids: Vec<u64>,
    #[serde(with = "ndpickle::serde::array")]
    raw: NdArray,
}

fn model() -> Model {
    Model {
        name: "m".into(),
        weights: Array2::from_shape_fn((64, 300), |(i, j)| (i * 300 + j) as f32),
        bias: ArcArray1::from_shape_fn(4096, |i| i as f32 * 0.5),
        any: ArrayD::from_shape_fn(IxDyn(&[2, 3, 4]), |d| (d[0] * 12 + d[1] * 4 + d[2]) as i16),
        ids: (0..100).collect(),
        raw: NdArray::from(Array1::from_vec(vec![1u8, 2, 3])),
    }
}

#[test]
fn arrays_are_numpy_arrays() {
    let m = model();
    let v = tree(&m);
    let w = v.get("weights").unwrap().as_array().unwrap();
    assert_eq!(
        (w.dtype(), w.shape()),
        (&DType::parse("<f4").unwrap(), &[64, 300][..])
    );
    assert_eq!(
        w.view::<f32>()
            .unwrap()
            .into_dimensionality::<Ix2>()
            .unwrap(),
        m.weights.view()
    );
    let ids = v.get("ids").unwrap().as_array().unwrap();
    assert_eq!(
        (ids.dtype(), ids.shape()),
        (&DType::parse("<u8").unwrap(), &[100][..])
    );
    assert_eq!(from_value::<Model>(&v).unwrap(), m);
    // The bytes are those of ndpickle::to_vec for the same arrays (one writer).
    let alone = ndpickle::to_vec(&m.weights).unwrap();
    let array_bytes = &alone[alone.len() - 64 * 300 * 4 - 40..alone.len() - 40];
    let all = to_vec(&m).unwrap();
    assert!(all.windows(array_bytes.len()).any(|x| x == array_bytes));
}

#[test]
fn to_payload_shares_arc_and_ndarray_memory() {
    let m = model();
    let p = to_payload(&m).unwrap();
    assert_eq!(p.buffers.len(), 5);
    // weights, any, ids: owned / borrowed memory, copied once; bias (ArcArray) and raw
    // (NdArray): shared with the payload, zero copies.
    let shared: Vec<bool> = p.buffers.iter().map(|b| b.is_shared()).collect();
    assert_eq!(shared, [false, true, false, false, true]);
    assert_eq!(p.buffers[1].as_ptr(), m.bias.as_ptr().cast());
    assert_eq!(p.buffers[4].as_ptr(), m.raw.data().as_ptr());
    assert!(!p.buffers[0].is_borrowed());
    let back: Model = from_payload(&p.pickle, p.buffers.iter().map(|b| b.to_vec())).unwrap();
    assert_eq!(back, m);
}

#[derive(Serialize)]
struct Views<'a> {
    #[serde(with = "ndpickle::serde::array")]
    a: ArrayView2<'a, f64>,
    #[serde(with = "ndpickle::serde::array")]
    b: CowArray<'a, f64, Ix2>,
}

#[derive(Deserialize, Debug, PartialEq)]
struct Owned {
    #[serde(with = "ndpickle::serde::array")]
    a: Array2<f64>,
    #[serde(with = "ndpickle::serde::array")]
    b: ArcArray2<f64>,
}

#[test]
fn every_layout_round_trips() {
    let base = Array2::from_shape_fn((40, 60), |(i, j)| (i * 60 + j) as f64);
    let cube = Array3::from_shape_fn((5, 4, 3), |(i, j, k)| (i * 12 + j * 3 + k) as f64);
    let row = Array1::from_shape_fn(60, |j| j as f64);
    let broadcast = row.broadcast((40, 60)).unwrap();
    let cube2 = cube.index_axis(ndarray::Axis(2), 1);
    let views: Vec<ArrayView2<'_, f64>> = vec![
        base.view(),
        base.t(),
        base.slice(s![..;2, ..]),
        base.slice(s![..;-1, 5..;-3]),
        base.slice(s![.., ..;7]),
        broadcast.view(),
        cube2.view(),
        base.slice(s![0..0, ..]),
    ];
    for protocol_opts in [
        WriteOptions::default(),
        opts(2),
        opts(4),
        WriteOptions::builder()
            .layout(ndpickle::LayoutPolicy::AlwaysPack)
            .build()
            .unwrap(),
        WriteOptions::builder()
            .numpy_form(NumpyForm::NumpyV1)
            .protocol(3)
            .build()
            .unwrap(),
        WriteOptions::builder()
            .numpy_form(NumpyForm::NumpyV2)
            .build()
            .unwrap(),
    ] {
        for v in &views {
            let case = Views {
                a: *v,
                b: CowArray::from(*v),
            };
            let bytes = to_vec_with(&case, &protocol_opts).unwrap();
            let back: Owned = from_slice(&bytes).unwrap();
            assert_eq!(back.a, v, "{protocol_opts:?}");
            assert_eq!(back.b, v);
            if protocol_opts.protocol() == 5 {
                let p = to_payload_with(&case, &protocol_opts).unwrap();
                let back: Owned =
                    from_payload(&p.pickle, p.buffers.iter().map(|b| b.to_vec())).unwrap();
                assert_eq!(back.a, v);
            }
        }
    }
}

#[test]
fn every_element_type() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct All {
        #[serde(with = "ndpickle::serde::array_1d")]
        b: Vec<bool>,
        #[serde(with = "ndpickle::serde::array_1d")]
        i8: Vec<i8>,
        #[serde(with = "ndpickle::serde::array_1d")]
        i32: Vec<i32>,
        #[serde(with = "ndpickle::serde::array_1d")]
        u16: Vec<u16>,
        #[serde(with = "ndpickle::serde::array_1d")]
        u8: Vec<u8>,
        #[serde(with = "ndpickle::serde::array_1d")]
        f16: Vec<half::f16>,
        #[serde(with = "ndpickle::serde::array_1d")]
        bf16: Vec<half::bf16>,
        #[serde(with = "ndpickle::serde::array_1d")]
        c64: Vec<num_complex::Complex<f32>>,
        #[serde(with = "ndpickle::serde::array")]
        c128: Array0<num_complex::Complex<f64>>,
    }
    let a = All {
        b: vec![true, false],
        i8: vec![-1, 2],
        i32: vec![i32::MIN],
        u16: vec![65535],
        u8: vec![7; 3],
        f16: vec![half::f16::from_f32(1.5)],
        bf16: vec![half::bf16::from_f32(-3.0)],
        c64: vec![num_complex::Complex::new(1.0, -1.0)],
        c128: Array0::from_elem((), num_complex::Complex::new(0.5, 2.0)),
    };
    for o in [WriteOptions::default(), opts(2)] {
        let back: All = from_slice(&to_vec_with(&a, &o).unwrap()).unwrap();
        assert_eq!(back, a);
    }
    let v = tree(&a);
    assert!(matches!(
        v.get("bf16").unwrap().as_array().unwrap().dtype(),
        DType::MlDtype { .. }
    ));
}

#[test]
fn big_endian_and_fortran_arrays_read_into_native_arrays() {
    #[derive(Deserialize)]
    struct W {
        #[serde(with = "ndpickle::serde::array")]
        w: Array2<i32>,
    }
    // 2x3 int32 big-endian, Fortran strides.
    let data: Vec<u8> = [1i32, 4, 2, 5, 3, 6]
        .iter()
        .flat_map(|x| x.to_be_bytes())
        .collect();
    let a = NdArray::new(
        DType::parse(">i4").unwrap(),
        vec![2, 3],
        vec![4, 8],
        0,
        Bytes::from(data),
        true,
    )
    .unwrap();
    let v = dict(vec![(s("w"), Value::Array(Box::new(a)))]);
    let w: W = from_value(&v).unwrap();
    assert_eq!(w.w, ndarray::arr2(&[[1, 2, 3], [4, 5, 6]]));
}

// ---- error paths -----------------------------------------------------------------

#[derive(Deserialize, Debug)]
#[allow(dead_code)]
struct Net {
    lr: f64,
    #[serde(with = "ndpickle::serde::array")]
    weights: Array2<f32>,
    layers: Vec<Layer>,
    params: HashMap<String, f64>,
    opt: Optimizer,
}

#[derive(Deserialize, Debug)]
#[allow(dead_code)]
struct Layer {
    #[serde(with = "ndpickle::serde::array")]
    w: Array1<f32>,
}

fn arr<T: ndpickle::Element, D: ndarray::Dimension>(a: ndarray::Array<T, D>) -> Value {
    Value::Array(Box::new(NdArray::from(a)))
}

fn net(weights: Value, layer1: Value, params: Value, opt: Value) -> Value {
    dict(vec![
        (s("lr"), Value::Float(0.1)),
        (s("weights"), weights),
        (
            s("layers"),
            Value::List(vec![
                dict(vec![(s("w"), arr(Array1::<f32>::zeros(2)))]),
                layer1,
            ]),
        ),
        (s("params"), params),
        (s("opt"), opt),
    ])
}

fn good_net() -> Value {
    net(
        arr(Array2::<f32>::zeros((2, 2))),
        dict(vec![(s("w"), arr(Array1::<f32>::zeros(3)))]),
        dict(vec![(s("a"), Value::Float(1.0))]),
        s("Sgd"),
    )
}

fn with(key: &str, value: Value) -> Value {
    let Value::Dict(mut items) = good_net() else {
        unreachable!()
    };
    for (k, v) in &mut items {
        if k == &s(key) {
            *v = value.clone();
        }
    }
    Value::Dict(items)
}

#[test]
fn errors_name_the_field_path() {
    from_value::<Net>(&good_net()).unwrap();
    assert_eq!(
        de_err::<Net>(&with("weights", arr(Array2::<i64>::zeros((2, 2))))),
        "weights: expected float32 array, got int64"
    );
    assert_eq!(
        de_err::<Net>(&with("weights", arr(Array1::<f32>::zeros(2)))),
        "weights: expected 2-d float32 array, got 1-d"
    );
    assert_eq!(
        de_err::<Net>(&with("weights", Value::List(vec![]))),
        "weights: expected float32 array, got list"
    );
    let bad_layer = net(
        arr(Array2::<f32>::zeros((2, 2))),
        dict(vec![(s("w"), arr(Array1::<f64>::zeros(3)))]),
        dict(vec![]),
        s("Sgd"),
    );
    assert_eq!(
        de_err::<Net>(&bad_layer),
        "layers[1].w: expected float32 array, got float64"
    );
    let missing = net(
        arr(Array2::<f32>::zeros((2, 2))),
        dict(vec![]),
        dict(vec![]),
        s("Sgd"),
    );
    assert_eq!(de_err::<Net>(&missing), "layers[1]: missing field `w`");
    assert_eq!(
        de_err::<Net>(&with("params", dict(vec![(s("a b"), s("x"))]))),
        "params[\"a b\"]: invalid type: string \"x\", expected f64"
    );
    assert_eq!(
        de_err::<HashMap<i32, bool>>(&dict(vec![(Value::Int(3), Value::Int(1))])),
        "[3]: invalid type: integer `1`, expected a boolean"
    );
    assert_eq!(
        de_err::<HashMap<(i32,), bool>>(&dict(vec![(
            Value::Tuple(vec![Value::Int(1)]),
            Value::None
        )])),
        "[<tuple>]: invalid type: unit value, expected a boolean"
    );
    assert_eq!(
        de_err::<Net>(&with("lr", s("fast"))),
        "lr: invalid type: string \"fast\", expected f64"
    );
    let Value::Dict(mut items) = good_net() else {
        unreachable!()
    };
    items.retain(|(k, _)| k != &s("lr"));
    assert_eq!(de_err::<Net>(&Value::Dict(items)), "missing field `lr`");
}

#[test]
fn enum_errors() {
    let e = |v: Value| de_err::<Optimizer>(&v);
    assert!(
        e(s("Nope")).starts_with("unknown variant `Nope`"),
        "{}",
        e(s("Nope"))
    );
    assert_eq!(
        e(Value::Int(1)),
        "invalid type: integer `1`, expected an enum: a variant name, or a dict of one \
         variant name to its data"
    );
    assert_eq!(
        e(dict(vec![(Value::Int(1), Value::None)])),
        "invalid type: integer `1`, expected an enum variant name (str)"
    );
    assert_eq!(
        e(dict(vec![(s("Sgd"), Value::Int(3))])),
        "Sgd: invalid type: integer `3`, expected None (a unit variant)"
    );
    assert_eq!(
        e(s("Momentum")),
        "invalid type: unit variant, expected a newtype variant"
    );
    assert_eq!(
        e(s("Pair")),
        "invalid type: unit variant, expected a tuple variant"
    );
    assert_eq!(
        e(s("Adam")),
        "invalid type: unit variant, expected a struct variant"
    );
    assert_eq!(
        e(dict(vec![(s("Adam"), dict(vec![(s("beta"), s("x"))]))])),
        "Adam.beta: invalid type: string \"x\", expected f64"
    );
    assert_eq!(
        e(dict(vec![(s("Momentum"), s("x"))])),
        "Momentum: invalid type: string \"x\", expected f64"
    );
    assert_eq!(
        e(dict(vec![(
            s("Pair"),
            Value::Tuple(vec![Value::Int(1), s("x")])
        )])),
        "Pair[1]: invalid type: string \"x\", expected i32"
    );
    // A unit variant may carry None.
    assert_eq!(
        from_value::<Optimizer>(&dict(vec![(s("Sgd"), Value::None)])).unwrap(),
        Optimizer::Sgd
    );
}

#[test]
fn value_errors() {
    let huge = Value::BigInt(num_bigint::BigInt::from(1) << 200usize);
    assert_eq!(
        de_err::<u128>(&huge),
        format!(
            "int {} does not fit in 128 bits",
            num_bigint::BigInt::from(1) << 200usize
        )
    );
    assert_eq!(
        de_err::<u64>(&Value::BigInt(num_bigint::BigInt::from(-1) << 70usize)),
        "invalid type: integer `-1180591620717411303424` as i128, expected u64"
    );
    let complex = Value::Scalar(Box::new(
        NdArray::from_c_bytes(
            DType::parse("<c8").unwrap(),
            vec![],
            Bytes::from(vec![0u8; 8]),
        )
        .unwrap(),
    ));
    assert_eq!(
        de_err::<f64>(&complex),
        "a numpy complex64 scalar has no serde counterpart"
    );
    assert_eq!(
        de_err::<Vec<f32>>(&arr(Array1::<f32>::zeros(2))),
        "got a numpy.ndarray of float32: read it into a field marked #[serde(with = \
         \"ndpickle::serde::array\")] (or array_1d for a Vec)"
    );
    assert_eq!(
        de_err::<i32>(&Value::Complex(num_complex::Complex64::new(1.0, 0.0))),
        "invalid type: complex, expected i32"
    );
    assert_eq!(
        de_err::<i32>(&Value::Global(ndpickle::Global::new("os", "system"))),
        "invalid type: global, expected i32"
    );
    // An array field given something that is no array, and NdArray fields likewise.
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct R {
        #[serde(with = "ndpickle::serde::array")]
        raw: NdArray,
    }
    assert_eq!(
        de_err::<R>(&dict(vec![(s("raw"), Value::None)])),
        "raw: expected numpy array, got None"
    );
    // Invalid elements: a bool byte that is neither 0 nor 1.
    let bad_bool = Value::Array(Box::new(
        NdArray::from_c_bytes(
            DType::parse("|b1").unwrap(),
            vec![2],
            Bytes::from_static(&[1, 2]),
        )
        .unwrap(),
    ));
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct B {
        #[serde(with = "ndpickle::serde::array_1d")]
        m: Vec<bool>,
    }
    let msg = de_err::<B>(&dict(vec![(s("m"), bad_bool)]));
    assert!(msg.starts_with("m: invalid bool array: "), "{msg}");
    // A map value asked for before its key (a hand-written Deserialize misusing MapAccess).
    struct Misuse;
    impl<'de> Deserialize<'de> for Misuse {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Misuse;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a map")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Misuse, A::Error> {
                    map.next_value::<i32>()?;
                    Ok(Misuse)
                }
            }
            d.deserialize_map(V)
        }
    }
    let e = from_value::<Misuse>(&dict(vec![])).err().unwrap();
    assert_eq!(e.to_string(), "a dict value was asked for before its key");
}

#[test]
fn reader_errors_and_limits_pass_through() {
    let e = from_slice::<Everything>(b"\x80\x05N").unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::UnexpectedEof), "{e}");
    // Nothing runs: a pickle calling os.system is refused by the reader.
    let e =
        from_slice::<Everything>(b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00lsX\x85R.").unwrap_err();
    assert!(
        matches!(e.kind, DecodeErrorKind::ForbiddenGlobal { .. }),
        "{e}"
    );
    // The read options' limits apply.
    let deep = to_vec(&vec![vec![vec![vec![1u8]]]]).unwrap();
    let tight = ReadOptions::builder().max_depth(2).build().unwrap();
    let e = ndpickle::serde::from_slice_with::<Vec<Vec<Vec<Vec<u8>>>>>(&deep, &tight).unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::Limit { .. }), "{e}");
    let e =
        ndpickle::serde::from_reader_with::<Vec<Vec<Vec<Vec<u8>>>>>(&deep[..], &tight).unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::Limit { .. }), "{e}");
    struct Broken;
    impl std::io::Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }
    let e = ndpickle::serde::from_reader::<u8>(Broken).unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::Io(_)), "{e}");
    // Out-of-band arrays without their buffers.
    let m = model();
    let p = to_payload(&m).unwrap();
    let e = from_payload::<Model, Vec<u8>>(&p.pickle, vec![]).unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::MissingBuffer), "{e}");
    let e = ndpickle::serde::from_payload_with::<Model, Vec<u8>>(
        &p.pickle,
        vec![],
        &ReadOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::MissingBuffer), "{e}");
}

#[test]
fn write_errors() {
    // Keys Python cannot hash.
    let m: BTreeMap<Vec<i32>, i32> = [(vec![1], 1)].into();
    let e = to_vec(&m).unwrap_err();
    assert_eq!(
        e.to_string(),
        "a dict key must be hashable in Python, not a list"
    );
    #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
    enum K {
        A(i32),
        B { x: i32 },
        C(i32, i32),
        D,
    }
    for (k, what) in [
        (K::A(1), "an enum variant with data"),
        (K::B { x: 1 }, "an enum variant with data"),
        (K::C(1, 2), "an enum variant with data"),
    ] {
        let m: BTreeMap<K, i32> = [(k, 1)].into();
        assert_eq!(
            to_vec(&m).unwrap_err().to_string(),
            format!("a dict key must be hashable in Python, not {what}")
        );
    }
    let m: BTreeMap<K, i32> = [(K::D, 1)].into();
    assert_eq!(tree(&m), dict(vec![(s("D"), Value::Int(1))]));
    let m: BTreeMap<(i32, String), BTreeMap<i32, i32>> =
        [((1, "a".into()), BTreeMap::new())].into();
    assert_eq!(
        tree(&m),
        dict(vec![(
            Value::Tuple(vec![Value::Int(1), s("a")]),
            dict(vec![])
        )])
    );
    #[derive(Serialize)]
    struct ArrKey<'a>(#[serde(with = "ndpickle::serde::array")] &'a Array1<f32>);
    let a = Array1::<f32>::zeros(1);
    struct M<'a>(&'a Array1<f32>);
    impl Serialize for M<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut m = s.serialize_map(Some(1))?;
            m.serialize_entry(&ArrKey(self.0), &1)?;
            m.end()
        }
    }
    assert_eq!(
        to_vec(&M(&a)).unwrap_err().to_string(),
        "a dict key must be hashable in Python, not an array"
    );
    struct DictKey;
    impl Serialize for DictKey {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut m = s.serialize_map(Some(1))?;
            m.serialize_entry(&BTreeMap::<i32, i32>::new(), &1)?;
            m.end()
        }
    }
    assert_eq!(
        to_vec(&DictKey).unwrap_err().to_string(),
        "a dict key must be hashable in Python, not a dict"
    );
    // A Serialize implementation's own error.
    struct Fails;
    impl Serialize for Fails {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("no can do"))
        }
    }
    let e = to_vec(&vec![Fails]).unwrap_err();
    assert!(
        matches!(&e, EncodeError::Serde(m) if m == "no can do"),
        "{e}"
    );
    // Options the writer refuses.
    assert!(matches!(
        to_payload_with(&model(), &opts(4)),
        Err(EncodeError::OutOfBandNeedsProtocol5(4))
    ));
    // A writer that fails.
    struct Full;
    impl std::io::Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let e = ndpickle::serde::to_writer(Full, &model()).unwrap_err();
    assert!(matches!(e, EncodeError::Io(_)), "{e}");
}

#[test]
fn fields_need_ndpickles_own_serializer_and_deserializer() {
    let e = serde_json::to_string(&model()).unwrap_err();
    assert!(
        e.to_string()
            .contains("can only be written by ndpickle::serde"),
        "{e}"
    );
    let e = serde_json::from_str::<Model>(
        r#"{"name": "x", "weights": [], "bias": [], "any": [], "ids": [], "raw": []}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("invalid type"), "{e}");
    // A deserializer that answers the hand-over with a unit (as serde's own value
    // deserializers do) leaves nothing to take.
    let unit = serde::de::value::UnitDeserializer::<serde::de::value::Error>::new();
    let e = ndpickle::serde::array::deserialize::<Array1<f32>, _>(unit).unwrap_err();
    assert!(
        e.to_string()
            .contains("can only be read by ndpickle::serde"),
        "{e}"
    );
    // A value that borrows the hand-over's name but sends no memory.
    struct Impostor;
    impl Serialize for Impostor {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_newtype_struct("$ndpickle::private::Field", &5)
        }
    }
    let e = to_vec(&Impostor).unwrap_err();
    assert!(e.to_string().contains("was not handed over"), "{e}");
    struct Impostor2;
    impl Serialize for Impostor2 {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_newtype_struct("$ndpickle::private::Field", serde_bytes::Bytes::new(b"x"))
        }
    }
    let e = to_vec(&Impostor2).unwrap_err();
    assert!(e.to_string().contains("was not handed over"), "{e}");
}

#[cfg(feature = "arrow")]
#[test]
fn arrow_fields() {
    use std::sync::Arc;

    use arrow_array::{Array, ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray};

    #[derive(Serialize, Deserialize, Debug)]
    struct Frame {
        name: String,
        #[serde(with = "ndpickle::serde::arrow")]
        col: ArrayRef,
        #[serde(with = "ndpickle::serde::arrow")]
        batch: RecordBatch,
    }
    let col: ArrayRef = Arc::new(Float64Array::from(vec![Some(1.0), None, Some(3.0)]));
    let batch = RecordBatch::try_from_iter([
        ("a", Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef),
        (
            "b",
            Arc::new(StringArray::from(vec!["x", "yz"])) as ArrayRef,
        ),
    ])
    .unwrap();
    let f = Frame {
        name: "f".into(),
        col,
        batch,
    };
    let back: Frame = from_slice(&to_vec(&f).unwrap()).unwrap();
    assert_eq!(back.col.as_ref(), f.col.as_ref());
    assert_eq!(back.batch, f.batch);
    let p = to_payload(&f).unwrap();
    assert!(!p.buffers.is_empty());
    assert!(
        p.buffers.iter().all(|b| b.is_shared()),
        "arrow buffers are shared"
    );
    let back: Frame = from_payload(&p.pickle, p.buffers.iter().map(|b| b.to_vec())).unwrap();
    assert_eq!(back.batch, f.batch);
    // Something else in an arrow field.
    let v = dict(vec![
        (s("name"), s("f")),
        (s("col"), Value::Int(1)),
        (s("batch"), Value::None),
    ]);
    let msg = de_err::<Frame>(&v);
    assert!(msg.starts_with("col: expected a pyarrow array: "), "{msg}");
    let Value::Dict(mut items) = tree(&f) else {
        unreachable!()
    };
    items[2].1 = Value::Int(1);
    let msg = de_err::<Frame>(&Value::Dict(items));
    assert!(
        msg.starts_with("batch: expected a pyarrow record batch: "),
        "{msg}"
    );
    // pyarrow's reconstructors have dotted names: protocol 4 or higher.
    let e = to_vec_with(&f, &opts(3)).unwrap_err();
    assert!(
        matches!(e, EncodeError::NeedsProtocol { min: 4, .. }),
        "{e}"
    );
    let _ = f.col.len();
}

// ---- round trips (proptest) --------------------------------------------------------

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Sample {
    id: u64,
    label: String,
    score: Option<f64>,
    big: i128,
    tags: Vec<String>,
    map: BTreeMap<String, i32>,
    opt: Optimizer,
    #[serde(with = "ndpickle::serde::array")]
    grid: Array2<f32>,
    #[serde(with = "ndpickle::serde::array_1d")]
    series: Vec<i64>,
}

fn optimizer() -> impl Strategy<Value = Optimizer> {
    prop_oneof![
        Just(Optimizer::Sgd),
        (-1e6f64..1e6).prop_map(|beta| Optimizer::Adam { beta }),
        (-1e6f64..1e6).prop_map(Optimizer::Momentum),
        (any::<i32>(), any::<i32>()).prop_map(|(a, b)| Optimizer::Pair(a, b)),
    ]
}

fn sample() -> impl Strategy<Value = Sample> {
    (
        any::<u64>(),
        ".{0,12}",
        proptest::option::of(-1e9f64..1e9),
        any::<i128>(),
        proptest::collection::vec(".{0,5}", 0..4),
        proptest::collection::btree_map("[a-z]{1,4}", any::<i32>(), 0..4),
        optimizer(),
        (0usize..5, 0usize..6, any::<bool>()),
        proptest::collection::vec(any::<i64>(), 0..20),
    )
        .prop_map(
            |(id, label, score, big, tags, map, opt, (r, c, fortran), series)| {
                let mut grid = Array2::from_shape_fn((r, c), |(i, j)| (i * 7 + j) as f32 - 3.5);
                if fortran {
                    grid = grid.t().as_standard_layout().into_owned().reversed_axes();
                }
                Sample {
                    id,
                    label,
                    score,
                    big,
                    tags,
                    map,
                    opt,
                    grid,
                    series,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn prop_round_trip(v in sample(), protocol in 2u8..=5) {
        let bytes = to_vec_with(&v, &opts(protocol)).unwrap();
        prop_assert_eq!(&from_slice::<Sample>(&bytes).unwrap(), &v);
        let p = to_payload(&v).unwrap();
        let back: Sample = from_payload(&p.pickle, p.buffers.iter().map(|b| b.to_vec())).unwrap();
        prop_assert_eq!(&back, &v);
    }

    #[test]
    fn prop_everything_reads_back_through_value(v in sample()) {
        let value = ndpickle::from_slice(&to_vec(&v).unwrap()).unwrap();
        prop_assert_eq!(&from_value::<Sample>(&value).unwrap(), &v);
    }
}

/// A tree of lists, as deep as the pickle's.
#[derive(Deserialize, Debug, PartialEq)]
struct Nest(Vec<Nest>);

#[test]
fn shared_values_read_once_per_use_and_are_charged() {
    // (L, L) with L = ["a"] memoized once: both uses read, the string kept for the second.
    let shared = b"\x80\x02]q\x00X\x01\x00\x00\x00aah\x00\x86.";
    let got: (Vec<String>, Vec<String>) = from_slice(shared).unwrap();
    assert_eq!(got, (vec!["a".to_string()], vec!["a".to_string()]));
    // The same list twice inside a dict value and a sequence, through from_reader.
    let got: (Vec<String>, Vec<String>) = ndpickle::serde::from_reader(&shared[..]).unwrap();
    assert_eq!(got.0, got.1);
    // L[k] = [L[k-1], L[k-1]]: 40 levels read as a tree are 2^40 lists. Every use of a
    // shared list but its last is a copy charged to the copy limit, which stops it.
    let mut bomb = b"\x80\x02]q\x00".to_vec();
    for i in 1u8..=40 {
        bomb.extend_from_slice(&[b']', b'(', b'h', i - 1, b'h', i - 1, b'e', b'q', i]);
    }
    bomb.push(b'.');
    let e = from_slice::<Nest>(&bomb).unwrap_err();
    assert!(
        matches!(
            e.kind,
            DecodeErrorKind::Limit {
                limit: "bytes copied through shared references",
                ..
            }
        ),
        "{e}"
    );
    // A few levels fit: 2^4 leaves.
    let mut small = b"\x80\x02]q\x00".to_vec();
    for i in 1u8..=4 {
        small.extend_from_slice(&[b']', b'(', b'h', i - 1, b'h', i - 1, b'e', b'q', i]);
    }
    small.push(b'.');
    let got: Nest = from_slice(&small).unwrap();
    let leaves = |n: &Nest| -> usize {
        fn count(n: &Nest) -> usize {
            if n.0.is_empty() {
                1
            } else {
                n.0.iter().map(count).sum()
            }
        }
        count(n)
    };
    assert_eq!(leaves(&got), 16);
}

#[test]
fn recursive_and_deep_values_are_refused() {
    // L = [L]
    let e = from_slice::<Nest>(b"\x80\x02]q\x00h\x00a.").unwrap_err();
    assert!(e.to_string().contains("recursive structure"), "{e}");
    // A dict that holds itself as a value.
    let e = from_slice::<HashMap<String, Nest>>(b"\x80\x02}q\x00X\x01\x00\x00\x00ah\x00s.")
        .unwrap_err();
    assert!(e.to_string().contains("recursive structure"), "{e}");
    let deep = to_vec(&vec![vec![vec![vec![1u8]]]]).unwrap();
    let tight = ReadOptions::builder().max_depth(3).build().unwrap();
    let e = ndpickle::serde::from_slice_with::<Vec<Vec<Vec<Vec<u8>>>>>(&deep, &tight).unwrap_err();
    assert!(
        matches!(
            e.kind,
            DecodeErrorKind::Limit {
                limit: "nesting depth",
                ..
            }
        ),
        "{e}"
    );
    let ok = ReadOptions::builder().max_depth(4).build().unwrap();
    let got = ndpickle::serde::from_slice_with::<Vec<Vec<Vec<Vec<u8>>>>>(&deep, &ok).unwrap();
    assert_eq!(got, vec![vec![vec![vec![1u8]]]]);
}
