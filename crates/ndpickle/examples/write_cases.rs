//! Writes every writer test case into a directory for `tests/test_writer_numpy.py`:
//! every dtype × layout × numpy form × protocol, in-band (`NAME.pkl`) and out-of-band
//! (`NAME.oob.pkl` + `NAME.oob.N.buf`), each with `NAME.expected` (the C-ordered native
//! bytes of the array) and one line in `manifest.jsonl`.
//!
//! Usage: `cargo run --release --example write_cases -- OUT_DIR`

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use half::{bf16, f16};
use ndarray::{Array, ArrayD, IxDyn, s};
use ndpickle::{DType, Element, Field, NdArray, NumpyForm, ToPickle, Value, WriteOptions};
use num_complex::Complex;

/// One array case: a name, the value to pickle, and what numpy must rebuild.
struct Case {
    name: String,
    value: Box<dyn ToPickle>,
    expected: Expected,
}

enum Expected {
    /// An array: dtype spec (JSON), shape, C-ordered native bytes.
    Array {
        dtype: String,
        shape: Vec<usize>,
        bytes: Vec<u8>,
    },
    /// A container: JSON describing it, with arrays referenced by expected-file suffixes.
    Tree {
        json: String,
        arrays: Vec<(String, Vec<usize>, Vec<u8>)>,
    },
}

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).expect("usage: write_cases OUT_DIR"));
    fs::create_dir_all(&out).expect("create output dir");
    let mut cases = Vec::new();
    element_cases::<bool>(&mut cases, "bool", |i| i % 3 == 0);
    element_cases::<i8>(&mut cases, "int8", |i| (i as i8).wrapping_mul(37));
    element_cases::<i16>(&mut cases, "int16", |i| (i as i16).wrapping_mul(-1237));
    element_cases::<i32>(&mut cases, "int32", |i| (i as i32).wrapping_mul(-123_457));
    element_cases::<i64>(&mut cases, "int64", |i| {
        (i as i64).wrapping_mul(-1_234_567_891_011)
    });
    element_cases::<u8>(&mut cases, "uint8", |i| (i as u8).wrapping_mul(41));
    element_cases::<u16>(&mut cases, "uint16", |i| (i as u16).wrapping_mul(4099));
    element_cases::<u32>(&mut cases, "uint32", |i| {
        (i as u32).wrapping_mul(2_654_435_761)
    });
    element_cases::<u64>(&mut cases, "uint64", |i| {
        (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    });
    element_cases::<f16>(&mut cases, "float16", |i| {
        f16::from_f32(i as f32 * 0.5 - 3.0)
    });
    element_cases::<bf16>(&mut cases, "bfloat16", |i| {
        bf16::from_f32(i as f32 * 0.25 - 2.0)
    });
    element_cases::<f32>(&mut cases, "float32", |i| (i as f32).sin() * 1e3);
    element_cases::<f64>(&mut cases, "float64", |i| {
        (i as f64).cos() * 1e-3 + i as f64
    });
    element_cases::<Complex<f32>>(&mut cases, "complex64", |i| {
        Complex::new(i as f32, -(i as f32) / 2.0)
    });
    element_cases::<Complex<f64>>(&mut cases, "complex128", |i| {
        Complex::new(i as f64 / 3.0, i as f64)
    });
    dtype_model_cases(&mut cases);
    container_cases(&mut cases);

    let forms = [
        ("portable", NumpyForm::Portable),
        ("v1", NumpyForm::NumpyV1),
        ("v2", NumpyForm::NumpyV2),
    ];
    let mut manifest = String::new();
    let mut count = 0;
    for case in &cases {
        let expected_files = write_expected(&out, &case.name, &case.expected);
        for (form_name, form) in forms {
            for readonly in [false, true] {
                for protocol in 2..=5u8 {
                    if readonly && protocol < 5 && form.is_native() {
                        continue; // numpy's own protocol 2-4 form always loads writable.
                    }
                    let opts = WriteOptions::builder()
                        .protocol(protocol)
                        .numpy_form(form)
                        .readonly(readonly)
                        .build()
                        .expect("valid options");
                    let stem = format!(
                        "{}.{form_name}.p{protocol}{}",
                        case.name,
                        if readonly { ".ro" } else { "" }
                    );
                    let pkl = ndpickle::to_vec_with(&case.value, &opts).expect("to_vec");
                    fs::write(out.join(format!("{stem}.pkl")), &pkl).expect("write");
                    let mut nbuf = 0;
                    if protocol == 5 {
                        let payload =
                            ndpickle::to_payload_with(&case.value, &opts).expect("to_payload");
                        fs::write(out.join(format!("{stem}.oob.pkl")), &payload.pickle)
                            .expect("write");
                        for (i, b) in payload.buffers.iter().enumerate() {
                            fs::write(out.join(format!("{stem}.oob.{i}.buf")), &b[..])
                                .expect("write");
                        }
                        nbuf = payload.buffers.len();
                    }
                    writeln!(
                        manifest,
                        "{{\"stem\": \"{stem}\", \"case\": \"{}\", \"form\": \"{form_name}\", \"protocol\": {protocol}, \"readonly\": {readonly}, \"buffers\": {nbuf}, \"expected\": {expected_files}}}",
                        case.name
                    )
                    .expect("fmt");
                    count += 1;
                }
            }
        }
    }
    fs::write(out.join("manifest.jsonl"), manifest).expect("write manifest");
    // An aligned dataset file: every array payload starts at a multiple of 64.
    let file_value = (
        Array::from_shape_fn((300, 7), |(i, j)| (i * 7 + j) as f64),
        "between",
        Array::from_shape_fn(1001, |i| i as u8),
        Array::from_shape_fn((5, 3), |(i, j)| (i + j) as i16).reversed_axes(),
    );
    ndpickle::to_file_with(
        out.join("aligned.pkl"),
        &file_value,
        &WriteOptions::default(),
    )
    .expect("to_file");
    compressed_cases(&out);
    println!(
        "wrote {count} cases ({} values) to {}",
        cases.len(),
        out.display()
    );
}

/// The layouts of the issue for one element type, each as its own case.
fn element_cases<T>(cases: &mut Vec<Case>, name: &str, make: impl Fn(usize) -> T)
where
    T: Element + 'static,
    ArrayD<T>: ToPickle,
{
    let dtype = dtype_json(&T::dtype());
    let base2 = |r: usize, c: usize| Array::from_shape_fn((r, c), |(i, j)| make(i * c + j));
    let base3 = leak(Array::from_shape_fn((2, 3, 4), |(i, j, k)| {
        make(i * 12 + j * 4 + k)
    }));
    let one_d = leak(Array::from_shape_fn(7, &make));
    // The program runs once: leaking the bases gives the views a 'static lifetime.
    fn leak<A>(a: A) -> &'static A {
        Box::leak(Box::new(a))
    }
    let mut push = |layout: &str, arr: ndarray::ArrayViewD<'static, T>| {
        let owned_c = arr.as_standard_layout().into_owned();
        let bytes: Vec<u8> = bytemuck::cast_slice(owned_c.as_slice().expect("standard")).to_vec();
        cases.push(Case {
            name: format!("{name}.{layout}"),
            value: Box::new(arr),
            expected: Expected::Array {
                dtype: dtype.clone(),
                shape: owned_c.shape().to_vec(),
                bytes,
            },
        });
    };
    let b = leak(base2(4, 6));
    push("c", b.view().into_dyn());
    let f = leak(b.t().as_standard_layout().into_owned().reversed_axes());
    push("f", f.view().into_dyn());
    push("reversed", one_d.slice(s![..;-1]).into_dyn());
    let b69 = leak(base2(6, 9));
    push("every_other_col", b69.slice(s![.., ..;2]).into_dyn());
    push(
        "rev_rows_every_third_col",
        b69.slice(s![..;-1, ..;3]).into_dyn(),
    );
    push(
        "transposed3d",
        base3.view().permuted_axes([2, 0, 1]).into_dyn(),
    );
    let row = leak(Array::from_shape_fn(5, &make));
    push(
        "broadcast_row",
        row.broadcast((4, 5)).expect("broadcast").into_dyn(),
    );
    let col = leak(Array::from_shape_fn((4, 1), |(i, _)| make(i)));
    push(
        "broadcast_col",
        col.broadcast((4, 5)).expect("broadcast").into_dyn(),
    );
    let empty = leak(Array::from_shape_fn((0, 3), |(i, j)| make(i + j)));
    push("empty", empty.view().into_dyn());
    let zero_d = leak(ndarray::arr0(make(5)));
    push("zero_d", zero_d.view().into_dyn());
}

/// dtypes beyond Rust's element types, written through `NdArray`.
fn dtype_model_cases(cases: &mut Vec<Case>) {
    let mut push = |name: &str, dtype: DType, shape: Vec<usize>, raw: Vec<u8>| {
        let nd = NdArray::from_c_bytes(dtype.clone(), shape.clone(), Bytes::from(raw.clone()))
            .expect("valid");
        cases.push(Case {
            name: name.to_string(),
            value: Box::new(nd),
            expected: Expected::Array {
                dtype: dtype_json(&dtype),
                shape,
                bytes: raw,
            },
        });
    };
    let be: Vec<u8> = (0..6i32)
        .flat_map(|i| (i * 1000 - 7).to_be_bytes())
        .collect();
    push(
        "big_endian_int32",
        DType::parse(">i4").unwrap(),
        vec![2, 3],
        be,
    );
    let bef: Vec<u8> = (0..4)
        .flat_map(|i| (i as f64 * 1.25).to_be_bytes())
        .collect();
    push(
        "big_endian_float64",
        DType::parse(">f8").unwrap(),
        vec![4],
        bef,
    );
    let dt: Vec<u8> = (0..3i64)
        .flat_map(|i| (1_700_000_000_000_000_000 + i).to_le_bytes())
        .collect();
    push(
        "datetime64_ns",
        DType::parse("<M8[ns]").unwrap(),
        vec![3],
        dt.clone(),
    );
    push(
        "datetime64_D",
        DType::parse("<M8[D]").unwrap(),
        vec![3],
        (0..3i64).flat_map(|i| (19000 + i).to_le_bytes()).collect(),
    );
    push(
        "timedelta64_10s",
        DType::parse("<m8[10s]").unwrap(),
        vec![3],
        dt,
    );
    push(
        "bytes_S5",
        DType::parse("|S5").unwrap(),
        vec![2],
        b"hello\0\0\0ab".to_vec().into_iter().take(10).collect(),
    );
    let u: Vec<u8> = "héllo€"
        .chars()
        .flat_map(|c| (c as u32).to_le_bytes())
        .collect();
    push("unicode_U3", DType::parse("<U3").unwrap(), vec![2], u);
    let inner = DType::Struct {
        fields: vec![Field {
            name: "y".into(),
            dtype: DType::parse("<i2").unwrap(),
            offset: 0,
            title: None,
        }],
        itemsize: 2,
        aligned: false,
    };
    let st = DType::Struct {
        fields: vec![
            Field {
                name: "a".into(),
                dtype: DType::parse("<f4").unwrap(),
                offset: 0,
                title: None,
            },
            Field {
                name: "b".into(),
                dtype: DType::SubArray {
                    base: Box::new(DType::parse("<i2").unwrap()),
                    shape: vec![2],
                },
                offset: 4,
                title: None,
            },
            Field {
                name: "c".into(),
                dtype: inner,
                offset: 8,
                title: None,
            },
        ],
        itemsize: 12,
        aligned: false,
    };
    push("structured_nested", st, vec![3], (0..36u8).collect());
    let aligned = DType::Struct {
        fields: vec![
            Field {
                name: "x".into(),
                dtype: DType::parse("<u1").unwrap(),
                offset: 0,
                title: None,
            },
            Field {
                name: "y".into(),
                dtype: DType::parse("<f8").unwrap(),
                offset: 8,
                title: None,
            },
        ],
        itemsize: 16,
        aligned: true,
    };
    let raw: Vec<u8> = (0..2u8)
        .flat_map(|i| {
            let mut v = vec![i + 1, 0, 0, 0, 0, 0, 0, 0];
            v.extend_from_slice(&(i as f64 + 0.5).to_le_bytes());
            v
        })
        .collect();
    push("structured_aligned", aligned, vec![2], raw);
}

/// Dicts and lists mixing arrays and metadata.
fn container_cases(cases: &mut Vec<Case>) {
    let t = Array::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f64);
    let labels = Array::from_shape_fn(5, |i| i as i32 - 2);
    let t_bytes: Vec<u8> = bytemuck::cast_slice(t.as_slice().unwrap()).to_vec();
    let l_bytes: Vec<u8> = bytemuck::cast_slice(labels.as_slice().unwrap()).to_vec();
    let labels_nd = NdArray::from_array(labels.clone());
    let value = Value::Dict(vec![
        (
            Value::from("temperature"),
            Value::from(NdArray::from_array(t.clone())),
        ),
        (Value::from("labels"), Value::from(labels_nd.clone())),
        (Value::from("units"), Value::from("kelvin")),
        (Value::from("step"), Value::Int(42)),
        (Value::from("scale"), Value::Float(0.5)),
        (
            Value::from("big"),
            Value::BigInt(num_bigint::BigInt::from(u128::MAX) * 3),
        ),
        (
            Value::from("tags"),
            Value::List(vec![Value::from("a"), Value::None, Value::Bool(true)]),
        ),
        (
            Value::from("pair"),
            Value::Tuple(vec![
                Value::Int(-1),
                Value::Complex(num_complex::Complex64::new(1.0, -2.0)),
            ]),
        ),
        (
            Value::from("raw"),
            Value::Bytes(Bytes::from_static(b"\x00\xffxyz")),
        ),
        (
            Value::from("set"),
            Value::Set(vec![Value::Int(1), Value::Int(2)]),
        ),
        (
            Value::from("frozen"),
            Value::FrozenSet(vec![Value::from("z")]),
        ),
        (
            Value::from("scalar"),
            Value::Scalar(Box::new(
                NdArray::from_c_bytes(
                    f64::dtype(),
                    vec![],
                    Bytes::copy_from_slice(&2.5f64.to_le_bytes()),
                )
                .unwrap(),
            )),
        ),
        (
            Value::from("dtype"),
            Value::DType(DType::parse(">u2").unwrap()),
        ),
        (
            Value::from("nested"),
            Value::List(vec![Value::from(labels_nd), Value::Dict(vec![])]),
        ),
    ]);
    let json = format!(
        "{{\"temperature\": \"@0\", \"labels\": \"@1\", \"units\": \"kelvin\", \"step\": 42, \"scale\": 0.5, \"big\": \"{}\", \"tags\": [\"a\", null, true], \"pair\": {{\"tuple\": [-1, {{\"complex\": [1.0, -2.0]}}]}}, \"raw\": {{\"bytes\": \"00ff78797a\"}}, \"set\": {{\"set\": [1, 2]}}, \"frozen\": {{\"frozenset\": [\"z\"]}}, \"scalar\": {{\"scalar\": [\"<f8\", 2.5]}}, \"dtype\": {{\"dtype\": \">u2\"}}, \"nested\": [\"@1\", {{}}]}}",
        num_bigint::BigInt::from(u128::MAX) * 3
    );
    cases.push(Case {
        name: "dict_mixed".into(),
        value: Box::new(value),
        expected: Expected::Tree {
            json,
            arrays: vec![
                ("<f8".into(), vec![3, 4], t_bytes),
                ("<i4".into(), vec![5], l_bytes),
            ],
        },
    });
    // A Rust-typed list of arrays and a tuple with metadata, through ToPickle impls.
    let list: Vec<ArrayD<f32>> = (0..3)
        .map(|k| Array::from_shape_fn(IxDyn(&[2, k + 1]), |ix| (ix[0] * 10 + ix[1] + k) as f32))
        .collect();
    let arrays: Vec<(String, Vec<usize>, Vec<u8>)> = list
        .iter()
        .map(|a| {
            (
                "\"<f4\"".to_string(),
                a.shape().to_vec(),
                bytemuck::cast_slice(a.as_slice().unwrap()).to_vec(),
            )
        })
        .map(|(_, s, b)| ("<f4".to_string(), s, b))
        .collect();
    cases.push(Case {
        name: "list_of_arrays".into(),
        value: Box::new(list),
        expected: Expected::Tree {
            json: "[\"@0\", \"@1\", \"@2\"]".into(),
            arrays,
        },
    });
}

/// Writes the expected bytes and returns the manifest's `expected` JSON.
fn write_expected(out: &Path, name: &str, e: &Expected) -> String {
    match e {
        Expected::Array {
            dtype,
            shape,
            bytes,
        } => {
            fs::write(out.join(format!("{name}.expected")), bytes).expect("write expected");
            format!(
                "{{\"kind\": \"array\", \"dtype\": {dtype}, \"shape\": {shape:?}, \"file\": \"{name}.expected\"}}"
            )
        }
        Expected::Tree { json, arrays } => {
            let mut refs = Vec::new();
            for (i, (dtype, shape, bytes)) in arrays.iter().enumerate() {
                let file = format!("{name}.{i}.expected");
                fs::write(out.join(&file), bytes).expect("write expected");
                refs.push(format!(
                    "{{\"dtype\": \"{dtype}\", \"shape\": {shape:?}, \"file\": \"{file}\"}}"
                ));
            }
            format!(
                "{{\"kind\": \"tree\", \"tree\": {json}, \"arrays\": [{}]}}",
                refs.join(", ")
            )
        }
    }
}

/// numpy dtype as JSON: a `dtype.str` string, `{"ml_dtypes": name}`, `{"subarray": [base,
/// shape]}` or `{"names", "formats", "offsets", "itemsize", "aligned"}`.
fn dtype_json(d: &DType) -> String {
    match d {
        DType::MlDtype { name, .. } => format!("{{\"ml_dtypes\": \"{name}\"}}"),
        DType::SubArray { base, shape } => {
            format!("{{\"subarray\": [{}, {shape:?}]}}", dtype_json(base))
        }
        DType::Struct {
            fields,
            itemsize,
            aligned,
        } => {
            let names: Vec<String> = fields.iter().map(|f| format!("\"{}\"", f.name)).collect();
            let formats: Vec<String> = fields.iter().map(|f| dtype_json(&f.dtype)).collect();
            let offsets: Vec<String> = fields.iter().map(|f| f.offset.to_string()).collect();
            format!(
                "{{\"names\": [{}], \"formats\": [{}], \"offsets\": [{}], \"itemsize\": {itemsize}, \"aligned\": {aligned}}}",
                names.join(", "),
                formats.join(", "),
                offsets.join(", ")
            )
        }
        other => format!("\"{}\"", other.descr().expect("simple dtype")),
    }
}

/// In-band streams with compressed array data (`ndpickle._decompress` calls), one per codec
/// setting and protocol, with the expected C-ordered bytes beside them.
fn compressed_cases(out: &Path) {
    use ndpickle::codec::{Codec, Compression, Filter};
    let smooth = Array::from_shape_fn((256, 64), |(i, j)| ((i * 64 + j) as f64 * 1e-3).sin());
    let labels = Array::from_shape_fn(50_000, |i| (i / 1000) as i32);
    let strided = smooth.slice(s![.., ..;2]);
    let expected: Vec<u8> = [
        bytemuck::cast_slice::<f64, u8>(smooth.as_slice().unwrap()).to_vec(),
        bytemuck::cast_slice::<i32, u8>(labels.as_slice().unwrap()).to_vec(),
        bytemuck::cast_slice::<f64, u8>(strided.as_standard_layout().as_slice().unwrap()).to_vec(),
    ]
    .concat();
    fs::write(out.join("compressed.expected"), expected).expect("write");
    let settings = [
        ("lz4", Compression::Fixed(Codec::Lz4, Filter::None)),
        (
            "lz4_shuffle",
            Compression::Fixed(Codec::Lz4, Filter::Shuffle { elem_size: 0 }),
        ),
        (
            "zstd",
            Compression::Fixed(Codec::Zstd { level: 3 }, Filter::None),
        ),
        (
            "zstd_shuffle",
            Compression::Fixed(Codec::Zstd { level: 1 }, Filter::Shuffle { elem_size: 0 }),
        ),
        ("auto", Compression::Auto(Default::default())),
    ];
    for (name, c) in settings {
        for protocol in [2u8, 4, 5] {
            for form in [NumpyForm::Portable, NumpyForm::NumpyV2] {
                let opts = WriteOptions::builder()
                    .protocol(protocol)
                    .numpy_form(form)
                    .compression(c)
                    .build()
                    .expect("options");
                let value = (&smooth, &labels, strided.view());
                let v = ndpickle::to_vec_with(&value, &opts).expect("compressed");
                let form_name = if form == NumpyForm::Portable {
                    "portable"
                } else {
                    "v2"
                };
                fs::write(
                    out.join(format!("compressed.{name}.{form_name}.p{protocol}.pkl")),
                    v,
                )
                .expect("write");
            }
        }
    }
}
