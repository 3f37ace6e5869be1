//! Golden fixtures written by real numpy (2.x and 1.26) and pyarrow through
//! `tests/fixtures/generate.py`: every pickle must load, and every array must match the
//! expected dtype, shape and C-ordered bytes element by element. Out-of-band buffers must
//! be viewed, not copied.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use ndpickle::{DType, NdArray, Value};
use serde_json::Value as Json;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// The canonical dtype text `generate.py` writes.
fn canon(d: &DType) -> String {
    match d {
        DType::MlDtype { name, .. } => format!("ml_dtypes.{name}"),
        DType::Struct {
            fields,
            itemsize,
            aligned,
        } => {
            let parts: Vec<String> = fields
                .iter()
                .map(|f| {
                    let title = f
                        .title
                        .as_ref()
                        .map(|t| format!("[{t}]"))
                        .unwrap_or_default();
                    format!("{}{title}:{}@{}", f.name, canon(&f.dtype), f.offset)
                })
                .collect();
            format!("struct{{{};{itemsize};{aligned}}}", parts.join(","))
        }
        DType::SubArray { base, shape } => {
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({}){}", dims.join(","), canon(base))
        }
        other => other.descr().expect("simple dtype has a descr"),
    }
}

/// Which bytes of one element are data (not struct padding).
fn mask(d: &DType, out: &mut [bool]) {
    match d {
        DType::Struct { fields, .. } => {
            for f in fields {
                let n = f.dtype.itemsize();
                mask(&f.dtype, &mut out[f.offset..f.offset + n]);
            }
        }
        DType::SubArray { base, .. } => {
            let n = base.itemsize();
            for chunk in out.chunks_mut(n.max(1)) {
                mask(base, chunk);
            }
        }
        _ => out.iter_mut().for_each(|b| *b = true),
    }
}

/// The elements in C order, element by element, through shape, strides and offset.
fn c_order_bytes(a: &NdArray) -> Vec<u8> {
    let size = a.dtype().itemsize();
    let mut out = Vec::with_capacity(a.len() * size);
    if a.is_empty() {
        return out;
    }
    let mut index = vec![0usize; a.ndim()];
    for _ in 0..a.len() {
        let mut pos = a.offset() as isize;
        for (&i, &s) in index.iter().zip(a.strides()) {
            pos += i as isize * s;
        }
        out.extend_from_slice(&a.data()[pos as usize..pos as usize + size]);
        for axis in (0..index.len()).rev() {
            index[axis] += 1;
            if index[axis] < a.shape()[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    out
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn check_array(a: &NdArray, exp: &Json, path: &str) -> Result<(), String> {
    let want = exp["canon"].as_str().unwrap();
    let got = canon(a.dtype());
    // numpy loads an array of a simple dtype in the other byte order (through
    // `ndarray.__setstate__`: protocols 2-4, and datetimes at every protocol) in the native
    // order with its bytes swapped, and so does the reader; the manifest has the writer's.
    let swapped = want
        .strip_prefix('>')
        .is_some_and(|rest| got == format!("<{rest}"));
    if got != want && !swapped {
        return Err(format!("{path}: dtype {got} != {want}"));
    }
    let shape: Vec<usize> = exp["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    if a.shape() != shape.as_slice() {
        return Err(format!("{path}: shape {:?} != {shape:?}", a.shape()));
    }
    let mut want = unhex(exp["hex"].as_str().unwrap());
    if swapped {
        let unit = match a.dtype() {
            DType::Scalar { kind, .. } => kind.swap_unit(),
            DType::Unicode { .. } => 4,
            _ => 8,
        };
        want.chunks_mut(unit).for_each(<[u8]>::reverse);
    }
    let got = c_order_bytes(a);
    if got.len() != want.len() {
        return Err(format!("{path}: {} bytes != {}", got.len(), want.len()));
    }
    let size = a.dtype().itemsize();
    let mut m = vec![false; size];
    mask(a.dtype(), &mut m);
    for (e, (g, w)) in got
        .chunks(size.max(1))
        .zip(want.chunks(size.max(1)))
        .enumerate()
    {
        let differs = g
            .iter()
            .zip(w)
            .zip(&m)
            .any(|((x, y), &data)| data && x != y);
        if differs {
            return Err(format!("{path}: element {e}: {g:02x?} != {w:02x?}"));
        }
    }
    typed_check(a, &want).map_err(|e| format!("{path}: typed read: {e}"))
}

/// For numeric dtypes, also read through `to_owned_array::<T>` (byte swapping and
/// unaligned reads included) and compare with the expected bytes in native order.
fn typed_check(a: &NdArray, want: &[u8]) -> Result<(), String> {
    use ndpickle::{ByteOrder, Scalar};
    let DType::Scalar { kind, order } = a.dtype() else {
        return Ok(());
    };
    let unit = kind.swap_unit();
    let mut native = want.to_vec();
    if !order.is_native() && *order != ByteOrder::NotApplicable {
        for u in native.chunks_mut(unit) {
            u.reverse();
        }
    }
    macro_rules! read {
        ($t:ty) => {{
            let arr = a.to_owned_array::<$t>().map_err(|e| e.to_string())?;
            let got: Vec<u8> = arr
                .iter()
                .flat_map(|x| bytemuck::bytes_of(x).to_vec())
                .collect();
            if got != native {
                return Err(format!("{got:02x?} != {native:02x?}"));
            }
        }};
    }
    match kind {
        Scalar::Bool => read!(bool),
        Scalar::I8 => read!(i8),
        Scalar::I16 => read!(i16),
        Scalar::I32 => read!(i32),
        Scalar::I64 => read!(i64),
        Scalar::U8 => read!(u8),
        Scalar::U16 => read!(u16),
        Scalar::U32 => read!(u32),
        Scalar::U64 => read!(u64),
        Scalar::F16 => read!(half::f16),
        Scalar::F32 => read!(f32),
        Scalar::F64 => read!(f64),
        Scalar::C64 => read!(num_complex::Complex<f32>),
        Scalar::C128 => read!(num_complex::Complex<f64>),
        // No Rust element type: the bytes are what numpy wrote (checked by the Python side).
        Scalar::LongDouble | Scalar::CLongDouble => {}
    }
    Ok(())
}

fn float_eq(got: f64, repr: &str) -> bool {
    let want: f64 = repr.parse().unwrap();
    (got.is_nan() && want.is_nan()) || got.to_bits() == want.to_bits()
}

fn seq(v: &Value, tag: &str) -> Option<Vec<Value>> {
    match (v, tag) {
        (Value::List(x), "list")
        | (Value::Tuple(x), "tuple")
        | (Value::Set(x), "set")
        | (Value::FrozenSet(x), "frozenset") => Some(x.clone()),
        _ => None,
    }
}

fn check(v: &Value, exp: &Json, path: &str) -> Result<(), String> {
    let mismatch = || Err(format!("{path}: {} does not match {exp}", v.type_name()));
    match exp {
        Json::Null => matches!(v, Value::None)
            .then_some(())
            .map_or_else(mismatch, Ok),
        Json::Bool(b) => (v == &Value::Bool(*b))
            .then_some(())
            .map_or_else(mismatch, Ok),
        Json::String(s) => (v.as_str() == Some(s))
            .then_some(())
            .map_or_else(mismatch, Ok),
        Json::Object(o) => {
            let (tag, body) = o.iter().next().unwrap();
            match tag.as_str() {
                "int" => {
                    let got = match v {
                        Value::Int(i) => i.to_string(),
                        Value::BigInt(b) => b.to_string(),
                        _ => return mismatch(),
                    };
                    (got == body.as_str().unwrap())
                        .then_some(())
                        .map_or_else(mismatch, Ok)
                }
                "float" => match v {
                    Value::Float(f) if float_eq(*f, body.as_str().unwrap()) => Ok(()),
                    _ => mismatch(),
                },
                "complex" => match v {
                    Value::Complex(c)
                        if float_eq(c.re, body[0].as_str().unwrap())
                            && float_eq(c.im, body[1].as_str().unwrap()) =>
                    {
                        Ok(())
                    }
                    _ => mismatch(),
                },
                "bytes" | "bytearray" => {
                    let ok = match (v, tag.as_str()) {
                        (Value::Bytes(b), "bytes") | (Value::ByteArray(b), "bytearray") => {
                            b[..] == unhex(body.as_str().unwrap())[..]
                        }
                        _ => false,
                    };
                    ok.then_some(()).map_or_else(mismatch, Ok)
                }
                "list" | "tuple" | "set" | "frozenset" => {
                    let Some(items) = seq(v, tag) else {
                        return mismatch();
                    };
                    let want = body.as_array().unwrap();
                    if items.len() != want.len() {
                        return Err(format!("{path}: {} items != {}", items.len(), want.len()));
                    }
                    for (i, (x, w)) in items.iter().zip(want).enumerate() {
                        check(x, w, &format!("{path}[{i}]"))?;
                    }
                    Ok(())
                }
                "dict" => {
                    let Value::Dict(items) = v else {
                        return mismatch();
                    };
                    let want = body.as_array().unwrap();
                    if items.len() != want.len() {
                        return Err(format!("{path}: {} keys != {}", items.len(), want.len()));
                    }
                    for ((k, x), w) in items.iter().zip(want) {
                        check(k, &w[0], &format!("{path}.key"))?;
                        check(x, &w[1], &format!("{path}[{}]", w[0]))?;
                    }
                    Ok(())
                }
                "array" => match v {
                    Value::Array(a) => check_array(a, body, path),
                    _ => mismatch(),
                },
                "scalar" => match v {
                    Value::Scalar(a) => check_array(a, body, path),
                    _ => mismatch(),
                },
                "dtype" => match v {
                    Value::DType(d) if canon(d) == body.as_str().unwrap() => Ok(()),
                    Value::DType(d) => Err(format!("{path}: dtype {} != {body}", canon(d))),
                    _ => mismatch(),
                },
                "pyarrow" => match v {
                    Value::Object(o) if o.callable.module.starts_with("pyarrow") => Ok(()),
                    _ => mismatch(),
                },
                other => panic!("unknown tag {other}"),
            }
        }
        _ => panic!("unexpected expectation {exp}"),
    }
}

/// Every byte pointer of arrays and buffers inside `v`.
fn pointers(v: &Value, out: &mut Vec<usize>) {
    match v {
        Value::Array(a) | Value::Scalar(a) => out.push(a.data().as_ptr() as usize),
        Value::Buffer { data, .. } | Value::Bytes(data) | Value::ByteArray(data) => {
            out.push(data.as_ptr() as usize)
        }
        Value::List(x) | Value::Tuple(x) | Value::Set(x) | Value::FrozenSet(x) => {
            x.iter().for_each(|y| pointers(y, out))
        }
        Value::Dict(x) => x.iter().for_each(|(k, y)| {
            pointers(k, out);
            pointers(y, out)
        }),
        Value::Object(o) => {
            o.args.iter().for_each(|y| pointers(y, out));
            if let Some(s) = &o.state {
                pointers(s, out);
            }
        }
        _ => {}
    }
}

fn run_set(set: &str) -> usize {
    let dir = root().join(set);
    let manifest: Json = serde_json::from_slice(
        &std::fs::read(dir.join("manifest.json"))
            .unwrap_or_else(|e| panic!("{}: {e}; run tests/fixtures/generate.py", dir.display())),
    )
    .unwrap();
    let mut failures = Vec::new();
    let files = manifest["files"].as_array().unwrap();
    for f in files {
        let name = f["file"].as_str().unwrap();
        let data = std::fs::read(dir.join(name)).unwrap();
        let stem = name.trim_end_matches(".pkl");
        let bufs: Vec<Bytes> = (0..f["buffers"].as_u64().unwrap())
            .map(|i| Bytes::from(std::fs::read(dir.join(format!("{stem}.buf{i}"))).unwrap()))
            .collect();
        let expected = &manifest["values"][f["value"].as_str().unwrap()];
        let path = format!("{set}/{name}");
        // Copying reader over a slice, and zero-copy reader over shared bytes.
        let runs = [
            ndpickle::from_payload(&data, bufs.clone()),
            ndpickle::from_bytes_payload_with(
                Bytes::from(data.clone()),
                bufs.clone(),
                &Default::default(),
            ),
        ];
        for r in runs {
            match r {
                Ok(v) => {
                    if let Err(e) = check(&v, expected, &path) {
                        failures.push(e);
                    }
                    let mut ptrs = Vec::new();
                    pointers(&v, &mut ptrs);
                    for (i, b) in bufs.iter().enumerate() {
                        let range = b.as_ptr() as usize..b.as_ptr() as usize + b.len().max(1);
                        if !b.is_empty() && !ptrs.iter().any(|p| range.contains(p)) {
                            failures.push(format!("{path}: buffer {i} was copied, not viewed"));
                        }
                    }
                }
                Err(e) => failures.push(format!("{path}: {e}")),
            }
        }
        // The pickle without its buffers must fail cleanly.
        if !bufs.is_empty() {
            let e = ndpickle::from_slice(&data).unwrap_err();
            assert!(
                matches!(e.kind, ndpickle::DecodeErrorKind::MissingBuffer),
                "{path}: {e}"
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    files.len()
}

#[test]
fn numpy2_fixtures() {
    assert!(run_set("numpy2") > 100);
}

#[test]
fn numpy1_fixtures() {
    assert!(run_set("numpy1") > 100);
}

#[test]
fn portable_fixtures_numpy2() {
    assert!(run_set("portable2") > 100);
}

#[test]
fn portable_fixtures_numpy1() {
    assert!(run_set("portable1") > 100);
}

#[test]
fn pyarrow_fixtures() {
    assert!(run_set("pyarrow") > 50);
}

#[test]
fn in_band_arrays_slice_shared_input() {
    // from_bytes: in-band array data points into the input itself.
    let dir = root().join("numpy2");
    let data = Bytes::from(std::fs::read(dir.join("arr_f8_p4.pkl")).unwrap());
    let v = ndpickle::from_bytes(data.clone()).unwrap();
    let range = data.as_ptr() as usize..data.as_ptr() as usize + data.len();
    let mut ptrs = Vec::new();
    pointers(&v, &mut ptrs);
    assert!(!ptrs.is_empty());
    assert!(
        ptrs.iter().all(|p| range.contains(p)),
        "in-band data was copied"
    );
}
