//! Arrow reader: pyarrow's own pickles (fixtures from `tests/fixtures/generate.py`, set
//! `arrow`) equal the same data read by arrow-ipc from pyarrow's IPC files; every case of
//! the writer (`examples/arrow_cases.rs`) round-trips; out-of-band buffers are shared, not
//! copied; corrupt input is a `DecodeError`, never a panic.

#![cfg(feature = "arrow")]

#[path = "../examples/arrow_cases.rs"]
#[allow(dead_code)]
mod cases;
#[path = "common/mutate.rs"]
mod mutate;

use std::collections::HashMap;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_data::ArrayData;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use ndpickle::arrow::{self as na, ArrowValue, ChunkedArray, Table};
use ndpickle::{Global, Object, Value, WriteOptions};
use serde_json::Value as Json;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/arrow")
}

/// The schema and batches of an IPC file.
fn ipc(path: &Path) -> (SchemaRef, Vec<RecordBatch>) {
    let f = fs::File::open(path).unwrap();
    let r = arrow_ipc::reader::FileReader::try_new(f, None).unwrap();
    let schema = r.schema();
    let batches = r.collect::<Result<Vec<_>, _>>().unwrap();
    (schema, batches)
}

/// Every byte range an array's buffers, bitmaps and children use (empty ones left out).
fn ranges(d: &ArrayData, out: &mut Vec<Range<usize>>) {
    let mut push = |s: &[u8]| {
        if !s.is_empty() {
            out.push(s.as_ptr() as usize..s.as_ptr() as usize + s.len());
        }
    };
    for b in d.buffers() {
        push(b.as_slice());
    }
    if let Some(n) = d.nulls() {
        push(n.buffer().as_slice());
    }
    for c in d.child_data() {
        ranges(c, out);
    }
}

/// Asserts that every buffer of `arrays` lies inside one of `oob`.
fn assert_shared(what: &str, arrays: &[ArrayRef], oob: &[Bytes]) {
    let inside: Vec<Range<usize>> = oob
        .iter()
        .map(|b| b.as_ptr() as usize..b.as_ptr() as usize + b.len())
        .collect();
    let mut used = Vec::new();
    for a in arrays {
        ranges(&a.to_data(), &mut used);
    }
    for r in used {
        assert!(
            inside.iter().any(|o| o.start <= r.start && r.end <= o.end),
            "{what}: a buffer was copied"
        );
    }
}

/// Asserts that two sequences of chunks hold the same values, wherever they are cut.
fn same_chunks(what: &str, got: &[ArrayRef], want: &[ArrayRef]) {
    let total = |c: &[ArrayRef]| c.iter().map(|a| a.len()).sum::<usize>();
    assert_eq!(total(got), total(want), "{what}: lengths");
    let (mut g, mut w) = (
        got.iter().filter(|a| !a.is_empty()),
        want.iter().filter(|a| !a.is_empty()),
    );
    let (mut ga, mut wa) = (g.next().cloned(), w.next().cloned());
    while let (Some(a), Some(b)) = (ga.clone(), wa.clone()) {
        let n = a.len().min(b.len());
        assert_eq!(a.slice(0, n).to_data(), b.slice(0, n).to_data(), "{what}");
        ga = if n == a.len() {
            g.next().cloned()
        } else {
            Some(a.slice(n, a.len() - n))
        };
        wa = if n == b.len() {
            w.next().cloned()
        } else {
            Some(b.slice(n, b.len() - n))
        };
    }
}

/// pyarrow does not pickle `map_`'s `keys_sorted`: compare without it.
fn unsorted(dt: &DataType) -> DataType {
    match dt {
        DataType::Map(f, _) => DataType::Map(f.clone(), false),
        other => other.clone(),
    }
}

fn load(stem: &str, buffers: usize) -> (Value, Vec<Bytes>) {
    let d = dir();
    let pickle = fs::read(d.join(format!("{stem}.pkl"))).unwrap();
    let oob: Vec<Bytes> = (0..buffers)
        .map(|i| Bytes::from(fs::read(d.join(format!("{stem}.buf{i}"))).unwrap()))
        .collect();
    let v = ndpickle::from_payload(&pickle, oob.clone()).unwrap_or_else(|e| panic!("{stem}: {e}"));
    (v, oob)
}

#[test]
fn pyarrow_pickles_equal_pyarrow_ipc() {
    let manifest: Json =
        serde_json::from_slice(&fs::read(dir().join("manifest.json")).unwrap()).unwrap();
    let kinds: HashMap<String, String> =
        serde_json::from_slice(&fs::read(dir().join("kinds.json")).unwrap()).unwrap();
    let mut checked = 0;
    let mut shared = 0;
    for f in manifest["files"].as_array().unwrap() {
        let file = f["file"].as_str().unwrap();
        let stem = file.strip_suffix(".pkl").unwrap();
        let key = f["value"].as_str().unwrap();
        let nbuf = f["buffers"].as_u64().unwrap() as usize;
        let (v, oob) = load(stem, nbuf);
        let (schema, batches) = ipc(&dir().join(format!("{key}.arrow")));
        let mut arrays: Vec<ArrayRef> = Vec::new();
        match kinds[key].as_str() {
            "array" => {
                let items = v.as_seq().unwrap();
                let got: Vec<ArrayRef> = items
                    .iter()
                    .map(|a| na::array_from_value(a).unwrap_or_else(|e| panic!("{stem}: {e}")))
                    .collect();
                let want = batches[0].column(0);
                assert_eq!(got[0].data_type(), want.data_type(), "{stem}");
                assert_eq!(got[0].to_data(), want.to_data(), "{stem}");
                assert_eq!(got[1].to_data(), want.slice(3, 6).to_data(), "{stem} [3:9]");
                assert_eq!(got[2].len(), 0, "{stem} [5:5]");
                assert_eq!(got[2].data_type(), want.data_type(), "{stem} [5:5]");
                arrays = got;
            }
            "batch" => {
                let got = na::record_batch_from_value(&v).unwrap_or_else(|e| panic!("{stem}: {e}"));
                assert_eq!(got, batches[0], "{stem}");
                arrays = got.columns().to_vec();
            }
            "table" => {
                let ArrowValue::Table(t) = na::from_value(&v).unwrap() else {
                    panic!("{stem}: not a table")
                };
                assert_eq!(t.schema(), &schema, "{stem}");
                for i in 0..schema.fields().len() {
                    let want: Vec<ArrayRef> = batches.iter().map(|b| b.column(i).clone()).collect();
                    let got = t.column(i).unwrap();
                    same_chunks(stem, got.chunks(), &want);
                    arrays.extend(got.chunks().iter().cloned());
                }
            }
            "chunked" => {
                let got = na::chunked_from_value(&v).unwrap_or_else(|e| panic!("{stem}: {e}"));
                assert_eq!(got.data_type(), schema.field(0).data_type(), "{stem}");
                assert_eq!(got.chunks().len(), batches.len(), "{stem}");
                for (g, b) in got.chunks().iter().zip(&batches) {
                    assert_eq!(g.to_data(), b.column(0).to_data(), "{stem}");
                }
                arrays = got.chunks().to_vec();
            }
            "schema" => {
                let got = na::schema_from_value(&v).unwrap_or_else(|e| panic!("{stem}: {e}"));
                assert_eq!(&got, schema.as_ref(), "{stem}");
            }
            "field" => {
                let got = na::field_from_value(&v).unwrap_or_else(|e| panic!("{stem}: {e}"));
                assert_eq!(&got, schema.field(0), "{stem}");
            }
            "types" => {
                let items = v.as_seq().unwrap();
                assert_eq!(items.len(), schema.fields().len());
                for (t, want) in items.iter().zip(schema.fields()) {
                    let got = na::data_type_from_value(t).unwrap_or_else(|e| panic!("{stem}: {e}"));
                    assert_eq!(got, unsorted(want.data_type()), "{stem}");
                }
            }
            other => panic!("unknown kind {other}"),
        }
        if nbuf > 0 {
            assert_shared(stem, &arrays, &oob);
            shared += 1;
        }
        checked += 1;
    }
    assert!(checked > 200, "{checked}");
    assert!(shared > 60, "{shared}");
}

/// The older pyarrow fixture set (no expected values): every object converts.
#[test]
fn older_pyarrow_fixtures_convert() {
    let d = dir().join("../pyarrow");
    let mut n = 0;
    for e in fs::read_dir(&d).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "pkl") {
            continue;
        }
        let stem = p.file_stem().unwrap().to_str().unwrap().to_string();
        let oob: Vec<Bytes> = (0..)
            .map(|i| d.join(format!("{stem}.buf{i}")))
            .take_while(|b| b.exists())
            .map(|b| Bytes::from(fs::read(b).unwrap()))
            .collect();
        let v = ndpickle::from_payload(&fs::read(&p).unwrap(), oob).unwrap();
        let items = match &v {
            Value::List(items) => items.clone(),
            _ => vec![v],
        };
        for item in &items {
            na::from_value(item).unwrap_or_else(|e| panic!("{stem}: {e}"));
        }
        n += 1;
    }
    assert!(n > 50);
}

/// Reads what the writer wrote: out-of-band, in-band protocol 5 (aligned), protocol 4.
fn round_trip(name: &str, value: &dyn ndpickle::ToPickle, check: &dyn Fn(&str, ArrowValue)) {
    let payload = ndpickle::to_payload(value).unwrap();
    let oob: Vec<Bytes> = payload
        .buffers
        .iter()
        .map(|b| Bytes::copy_from_slice(b.as_slice()))
        .collect();
    let got = na::from_payload(&payload.pickle, oob.clone())
        .unwrap_or_else(|e| panic!("{name} oob: {e}"));
    if let ArrowValue::Array(a) = &got {
        assert_shared(name, std::slice::from_ref(a), &oob);
    }
    check(&format!("{name} oob"), got);
    let aligned = WriteOptions::builder().align(Some(64)).build().unwrap();
    let p5 = ndpickle::to_vec_with(value, &aligned).unwrap();
    check(
        &format!("{name} p5"),
        na::from_bytes(Bytes::from(p5)).unwrap_or_else(|e| panic!("{name} p5: {e}")),
    );
    let p4 = ndpickle::to_vec_with(value, &WriteOptions::builder().protocol(4).build().unwrap())
        .unwrap();
    check(
        &format!("{name} p4"),
        na::from_slice(&p4).unwrap_or_else(|e| panic!("{name} p4: {e}")),
    );
}

#[test]
fn writer_cases_round_trip() {
    let mut n = 0;
    for case in cases::cases() {
        let name = case.name.clone();
        match &case.value {
            cases::Value::Array(a) => round_trip(&name, a, &|what, got| {
                let ArrowValue::Array(g) = got else {
                    panic!("{what}: not an array")
                };
                assert_eq!(g.data_type(), a.data_type(), "{what}");
                assert_eq!(g.to_data(), a.to_data(), "{what}");
            }),
            cases::Value::Batch(b) => round_trip(&name, b, &|what, got| {
                let ArrowValue::RecordBatch(g) = got else {
                    panic!("{what}: not a batch")
                };
                assert_eq!(&g, b, "{what}");
            }),
            cases::Value::Table(t) => round_trip(&name, t, &|what, got| {
                let ArrowValue::Table(g) = got else {
                    panic!("{what}: not a table")
                };
                assert_eq!(g.schema(), t.schema(), "{what}");
                assert_eq!(g.batches(), t.batches(), "{what}");
            }),
            cases::Value::Chunked(c) => round_trip(&name, c, &|what, got| {
                let ArrowValue::ChunkedArray(g) = got else {
                    panic!("{what}: not a chunked array")
                };
                assert_eq!(g.data_type(), c.data_type(), "{what}");
                let (gd, cd): (Vec<_>, Vec<_>) = (
                    g.chunks().iter().map(|a| a.to_data()).collect(),
                    c.chunks().iter().map(|a| a.to_data()).collect(),
                );
                assert_eq!(gd, cd, "{what}");
            }),
            cases::Value::Numpy(_) | cases::Value::NumpyBatch(_) => continue,
        }
        n += 1;
    }
    assert!(n > 200, "{n}");
    // Types, fields and schemas on their own.
    for (name, a) in cases::base_arrays() {
        let dt = a.data_type().clone();
        round_trip(name, &dt, &|what, got| {
            let ArrowValue::DataType(g) = got else {
                panic!("{what}: not a type")
            };
            assert_eq!(g, dt, "{what}");
        });
    }
    let schema = cases::cases()
        .into_iter()
        .find_map(|c| match c.value {
            cases::Value::Batch(b) => Some(b.schema()),
            _ => None,
        })
        .unwrap();
    round_trip("schema", schema.as_ref(), &|what, got| {
        let ArrowValue::Schema(g) = got else {
            panic!("{what}: not a schema")
        };
        assert_eq!(&g, schema.as_ref(), "{what}");
    });
    let field = schema.fields().last().unwrap().as_ref().clone();
    round_trip("field", &field, &|what, got| {
        let ArrowValue::Field(g) = got else {
            panic!("{what}: not a field")
        };
        assert_eq!(g, field, "{what}");
    });
}

#[test]
fn empty_tables_and_chunked_arrays() {
    let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("a", DataType::Int8, true)]));
    let t = Table::try_new(schema.clone(), vec![]).unwrap();
    let p = ndpickle::to_vec(&t).unwrap();
    let ArrowValue::Table(g) = na::from_slice(&p).unwrap() else {
        panic!()
    };
    assert_eq!(g.schema(), &schema);
    assert_eq!(g.num_rows(), 0);
    let c = ChunkedArray::try_new(vec![], DataType::Utf8).unwrap();
    let ArrowValue::ChunkedArray(g) = na::from_slice(&ndpickle::to_vec(&c).unwrap()).unwrap()
    else {
        panic!()
    };
    assert_eq!(g.data_type(), &DataType::Utf8);
    assert!(g.chunks().is_empty());
}

#[test]
fn misaligned_in_band_buffers_are_copied_into_alignment() {
    // Protocol 4 in-band data read from a `Bytes` lies wherever the opcodes put it.
    let a: ArrayRef = Arc::new(arrow_array::Int64Array::from(vec![1, 2, 3]));
    let p4 =
        ndpickle::to_vec_with(&a, &WriteOptions::builder().protocol(4).build().unwrap()).unwrap();
    for pad in 0..8 {
        let mut shifted = vec![0u8; pad];
        shifted.extend_from_slice(&p4);
        let b = Bytes::from(shifted).slice(pad..);
        let ArrowValue::Array(g) = na::from_bytes(b).unwrap() else {
            panic!()
        };
        assert_eq!(g.to_data(), a.to_data());
        let v = g.to_data().buffers()[0].as_ptr() as usize;
        assert_eq!(v % 8, 0);
    }
}

// ---------------------------------------------------------------------------------------
// Corrupt input.

fn call(name: &str, args: Vec<Value>) -> Value {
    Value::Object(Box::new(Object {
        callable: Global::new("pyarrow", name),
        args,
        state: None,
    }))
}

fn ty(alias: &str) -> Value {
    call("type_for_alias", vec![Value::Str(alias.into())])
}

fn buf(b: &[u8]) -> Value {
    call("py_buffer", vec![Value::Bytes(Bytes::copy_from_slice(b))])
}

fn le<T: Copy>(v: &[T], f: impl Fn(T) -> Vec<u8>) -> Vec<u8> {
    v.iter().flat_map(|x| f(*x)).collect()
}

fn i32s(v: &[i32]) -> Vec<u8> {
    le(v, |x| x.to_le_bytes().to_vec())
}

fn i64s(v: &[i64]) -> Vec<u8> {
    le(v, |x| x.to_le_bytes().to_vec())
}

/// `Array.from_buffers(type, len, buffers, null_count, offset, children)`.
fn arr(t: Value, len: i64, bufs: Vec<Value>, nulls: i64, offset: i64, kids: Vec<Value>) -> Value {
    call(
        "Array.from_buffers",
        vec![
            t,
            Value::Int(len),
            Value::List(bufs),
            Value::Int(nulls),
            Value::Int(offset),
            if kids.is_empty() {
                Value::None
            } else {
                Value::List(kids)
            },
        ],
    )
}

/// pyarrow's `_restore_array((type, len, null_count, offset, buffers, children, dict))`.
fn restore(t: Value, len: i64, bufs: Vec<Value>, kids: Vec<Value>, dict: Value) -> Value {
    call(
        "_restore_array",
        vec![Value::Tuple(vec![
            t,
            Value::Int(len),
            Value::Int(-1),
            Value::Int(0),
            Value::List(bufs),
            Value::List(kids),
            dict,
        ])],
    )
}

fn int64s(v: &[i64]) -> Value {
    arr(
        ty("int64"),
        v.len() as i64,
        vec![Value::None, buf(&i64s(v))],
        0,
        0,
        vec![],
    )
}

fn strs(offsets: &[i32], data: &[u8]) -> Value {
    let n = offsets.len() as i64 - 1;
    arr(
        ty("string"),
        n,
        vec![Value::None, buf(&i32s(offsets)), buf(data)],
        0,
        0,
        vec![],
    )
}

fn fld(name: &str, t: Value) -> Value {
    call(
        "field",
        vec![Value::Str(name.into()), t, Value::Bool(true), Value::None],
    )
}

fn sparse(ids: &[u8], kids: Vec<Value>, n_fields: usize) -> Value {
    let fields = (0..n_fields)
        .map(|i| fld(&format!("f{i}"), ty("int64")))
        .collect();
    let t = call("sparse_union", vec![Value::List(fields), Value::None]);
    arr(t, ids.len() as i64, vec![Value::None, buf(ids)], 0, 0, kids)
}

fn dict_array(keys: &[i8], values: Value) -> Value {
    let t = call(
        "dictionary",
        vec![ty("int8"), ty("string"), Value::Bool(false)],
    );
    let keys: Vec<u8> = keys.iter().map(|k| *k as u8).collect();
    call(
        "DictionaryArray.from_buffers",
        vec![
            t,
            Value::Int(keys.len() as i64),
            Value::List(vec![Value::None, buf(&keys)]),
            values,
            Value::Int(0),
            Value::Int(0),
        ],
    )
}

#[test]
fn corrupt_arrow_is_rejected() {
    let ok_strs = strs(&[0, 1, 3], b"abc");
    let list_t = call("list_", vec![ty("int64")]);
    let struct_t = |n: usize| {
        call(
            "struct",
            vec![Value::List(
                (0..n).map(|i| fld(&format!("f{i}"), ty("int64"))).collect(),
            )],
        )
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "truncated values",
            arr(
                ty("int64"),
                3,
                vec![Value::None, buf(&i64s(&[1, 2]))],
                0,
                0,
                vec![],
            ),
            "at least 24 bytes",
        ),
        (
            "truncated validity",
            arr(
                ty("int64"),
                20,
                vec![buf(&[0xff]), buf(&i64s(&[0; 20]))],
                0,
                0,
                vec![],
            ),
            "too small",
        ),
        (
            "offset past the data",
            arr(
                ty("int64"),
                2,
                vec![Value::None, buf(&i64s(&[1, 2]))],
                0,
                1,
                vec![],
            ),
            "at least 24 bytes",
        ),
        ("offsets out of range", strs(&[0, 1, 9], b"abc"), "offset"),
        ("offsets decreasing", strs(&[0, 2, 1], b"abc"), "offset"),
        ("bad utf-8", strs(&[0, 1, 2], b"a\xff"), "utf"),
        (
            "dictionary key too big",
            dict_array(&[0, 5], ok_strs.clone()),
            "out of bounds",
        ),
        (
            "dictionary key negative",
            dict_array(&[0, -1], ok_strs.clone()),
            "out of bounds",
        ),
        (
            "dictionary of the wrong type",
            dict_array(&[0], int64s(&[1])),
            "dictionary of type",
        ),
        (
            "dictionary missing",
            call(
                "Array.from_buffers",
                vec![
                    call("dictionary", vec![ty("int8"), ty("string")]),
                    Value::Int(0),
                    Value::List(vec![Value::None, buf(&[])]),
                    Value::Int(0),
                    Value::Int(0),
                    Value::None,
                ],
            ),
            "no dictionary",
        ),
        (
            "union type id unknown",
            sparse(&[0, 9], vec![int64s(&[1, 2]), int64s(&[3, 4])], 2),
            "type id",
        ),
        (
            "union child too short",
            sparse(&[0, 1], vec![int64s(&[1, 2]), int64s(&[3])], 2),
            "child",
        ),
        (
            "union with validity",
            {
                let fields = vec![fld("a", ty("int64"))];
                let t = call("sparse_union", vec![Value::List(fields)]);
                arr(t, 1, vec![buf(&[1]), buf(&[0])], 0, 0, vec![int64s(&[1])])
            },
            "no validity",
        ),
        (
            "dense union offset out of range",
            {
                let t = call(
                    "dense_union",
                    vec![
                        Value::List(vec![fld("a", ty("int64"))]),
                        Value::List(vec![Value::Int(0)]),
                    ],
                );
                arr(
                    t,
                    1,
                    vec![Value::None, buf(&[0]), buf(&i32s(&[4]))],
                    0,
                    0,
                    vec![int64s(&[1])],
                )
            },
            "offsets must be",
        ),
        (
            "struct missing a child",
            arr(struct_t(2), 1, vec![Value::None], 0, 0, vec![int64s(&[1])]),
            "child",
        ),
        (
            "struct child too short",
            arr(struct_t(1), 3, vec![Value::None], 0, 0, vec![int64s(&[1])]),
            "child",
        ),
        (
            "list without child",
            arr(
                list_t.clone(),
                1,
                vec![Value::None, buf(&i32s(&[0, 1]))],
                0,
                0,
                vec![],
            ),
            "child",
        ),
        (
            "list child of the wrong type",
            arr(
                list_t.clone(),
                1,
                vec![Value::None, buf(&i32s(&[0, 1]))],
                0,
                0,
                vec![ok_strs.clone()],
            ),
            "type",
        ),
        (
            "too many buffers",
            arr(
                ty("int64"),
                1,
                vec![Value::None, buf(&i64s(&[1])), buf(&[])],
                0,
                0,
                vec![],
            ),
            "buffers",
        ),
        (
            "no buffers",
            arr(ty("int64"), 0, vec![], 0, 0, vec![]),
            "no buffers",
        ),
        (
            "length overflows",
            arr(
                ty("int64"),
                i64::MAX,
                vec![Value::None, buf(&i64s(&[1]))],
                0,
                0,
                vec![],
            ),
            "need at least",
        ),
        (
            "length plus offset overflows",
            arr(
                ty("int8"),
                i64::MAX,
                vec![Value::None, buf(&[1])],
                0,
                i64::MAX,
                vec![],
            ),
            "need at least",
        ),
        (
            "negative length",
            arr(ty("int64"), -1, vec![Value::None, buf(&[])], 0, 0, vec![]),
            "non-negative",
        ),
        (
            "fixed-size list count overflows",
            arr(
                call("list_", vec![ty("int8"), Value::Int(1 << 30)]),
                1 << 40,
                vec![Value::None],
                0,
                0,
                vec![arr(
                    ty("int8"),
                    1,
                    vec![Value::None, buf(&[1])],
                    0,
                    0,
                    vec![],
                )],
            ),
            "overflows",
        ),
        (
            "null count lies",
            arr(
                ty("int64"),
                2,
                vec![buf(&[0b01]), buf(&i64s(&[1, 2]))],
                0,
                0,
                vec![],
            ),
            "null count",
        ),
        (
            "null count lies (none claimed missing)",
            arr(
                ty("int64"),
                2,
                vec![Value::None, buf(&i64s(&[1, 2]))],
                1,
                0,
                vec![],
            ),
            "null count",
        ),
        (
            "unknown type alias",
            arr(ty("int128"), 0, vec![Value::None, buf(&[])], 0, 0, vec![]),
            "alias",
        ),
        (
            "unknown type factory",
            arr(
                call("float8", vec![]),
                0,
                vec![Value::None, buf(&[])],
                0,
                0,
                vec![],
            ),
            "not a pyarrow type",
        ),
        (
            "negative fixed-size binary",
            arr(
                call("binary", vec![Value::Int(-5)]),
                0,
                vec![Value::None, buf(&[])],
                0,
                0,
                vec![],
            ),
            "width",
        ),
        (
            "decimal precision",
            arr(
                call("decimal128", vec![Value::Int(99), Value::Int(0)]),
                0,
                vec![Value::None, buf(&[])],
                0,
                0,
                vec![],
            ),
            "precision",
        ),
        (
            "run ends not increasing",
            {
                let t = call("run_end_encoded", vec![ty("int32"), ty("int64")]);
                let ends = arr(
                    ty("int32"),
                    2,
                    vec![Value::None, buf(&i32s(&[2, 1]))],
                    0,
                    0,
                    vec![],
                );
                arr(t, 2, vec![Value::None], 0, 0, vec![ends, int64s(&[1, 2])])
            },
            "run",
        ),
        (
            "run ends too short",
            {
                let t = call("run_end_encoded", vec![ty("int32"), ty("int64")]);
                let ends = arr(
                    ty("int32"),
                    1,
                    vec![Value::None, buf(&i32s(&[1]))],
                    0,
                    0,
                    vec![],
                );
                arr(t, 5, vec![Value::None], 0, 0, vec![ends, int64s(&[1])])
            },
            "run",
        ),
        (
            "restore tuple of 5",
            call("_restore_array", vec![Value::Tuple(vec![ty("int8"); 5])]),
            "6 or 7",
        ),
        (
            "restore with a dictionary for ints",
            restore(
                ty("int64"),
                1,
                vec![Value::None, buf(&i64s(&[1]))],
                vec![],
                Value::Tuple(vec![
                    ty("string"),
                    Value::Int(0),
                    Value::Int(0),
                    Value::Int(0),
                    Value::List(vec![Value::None, buf(&i32s(&[0])), buf(&[])]),
                    Value::List(vec![]),
                    Value::None,
                ]),
            ),
            "dictionary",
        ),
        (
            "buffer of the wrong kind",
            arr(
                ty("int64"),
                1,
                vec![Value::None, Value::Int(7)],
                0,
                0,
                vec![],
            ),
            "buffer",
        ),
        (
            "not pyarrow",
            Value::Object(Box::new(Object {
                callable: Global::new("numpy", "Array.from_buffers"),
                args: vec![],
                state: None,
            })),
            "not a pyarrow",
        ),
        (
            "batch column of the wrong type",
            call(
                "RecordBatch.from_arrays",
                vec![
                    Value::List(vec![int64s(&[1])]),
                    Value::None,
                    call(
                        "schema",
                        vec![Value::List(vec![fld("a", ty("int32"))]), Value::None],
                    ),
                ],
            ),
            "record batch",
        ),
        (
            "batch columns of different lengths",
            call(
                "RecordBatch.from_arrays",
                vec![
                    Value::List(vec![int64s(&[1]), int64s(&[1, 2])]),
                    Value::List(vec![Value::Str("a".into()), Value::Str("b".into())]),
                ],
            ),
            "record batch",
        ),
        (
            "non-nullable column with nulls",
            call(
                "RecordBatch.from_arrays",
                vec![
                    Value::List(vec![arr(
                        ty("int64"),
                        1,
                        vec![buf(&[0]), buf(&i64s(&[1]))],
                        1,
                        0,
                        vec![],
                    )]),
                    Value::None,
                    call(
                        "schema",
                        vec![Value::List(vec![call(
                            "field",
                            vec![Value::Str("a".into()), ty("int64"), Value::Bool(false)],
                        )])],
                    ),
                ],
            ),
            "record batch",
        ),
        (
            "table columns of different lengths",
            call(
                "_reconstruct_table",
                vec![
                    Value::List(vec![
                        call("chunked_array", vec![Value::List(vec![int64s(&[1])])]),
                        call("chunked_array", vec![Value::List(vec![int64s(&[1, 2])])]),
                    ]),
                    call(
                        "schema",
                        vec![Value::List(vec![
                            fld("a", ty("int64")),
                            fld("b", ty("int64")),
                        ])],
                    ),
                ],
            ),
            "rows",
        ),
        (
            "chunk of another type",
            call(
                "chunked_array",
                vec![Value::List(vec![int64s(&[1])]), ty("int8")],
            ),
            "chunked",
        ),
        (
            "metadata not text",
            call(
                "field",
                vec![
                    Value::Str("a".into()),
                    ty("int8"),
                    Value::Bool(true),
                    Value::Dict(vec![(
                        Value::Bytes(Bytes::from_static(b"\xff")),
                        Value::Str("v".into()),
                    )]),
                ],
            ),
            "utf-8",
        ),
    ];
    for (what, v, needle) in &cases {
        let e = na::from_value(v)
            .expect_err(what)
            .to_string()
            .to_lowercase();
        if std::env::var_os("SHOW_ERRORS").is_some() {
            println!("{what}: {e}");
            continue;
        }
        assert!(e.contains(&needle.to_lowercase()), "{what}: {e}");
        // Through a real pickle stream too.
        let p = ndpickle::to_vec(v).unwrap();
        assert!(
            na::from_slice(&p).is_err(),
            "{what}: accepted after pickling"
        );
    }
    // The same builders make valid arrays.
    for v in [
        ok_strs,
        int64s(&[1, 2]),
        dict_array(&[1, 0], strs(&[0, 1, 3], b"abc")),
    ] {
        na::from_value(&v).unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Fuzzing: mutated streams, and mutated value trees (which reach the Arrow checks far
// more often than byte flips do).

const INTERESTING: &[i64] = &[
    -2,
    -1,
    0,
    1,
    2,
    3,
    7,
    8,
    9,
    63,
    64,
    255,
    1 << 31,
    i64::MAX,
    i64::MIN,
];

/// Mutates one randomly chosen node of `v`; `k` counts down to the chosen node.
fn mutate_value(v: &mut Value, rng: &mut mutate::Rng, k: &mut usize) {
    if *k == 0 {
        return;
    }
    *k -= 1;
    if *k == 0 {
        match v {
            Value::Int(i) => *i = INTERESTING[rng.below(INTERESTING.len())],
            Value::Bytes(b) | Value::ByteArray(b) | Value::Buffer { data: b, .. } => {
                let mut m = b.to_vec();
                match rng.below(3) {
                    0 => m.truncate(rng.below(m.len() + 1)),
                    1 if !m.is_empty() => {
                        let i = rng.below(m.len());
                        m[i] = rng.next() as u8;
                    }
                    _ => m.extend_from_slice(&[0xff; 9]),
                }
                *b = Bytes::from(m);
            }
            Value::List(items) | Value::Tuple(items) if !items.is_empty() => match rng.below(3) {
                0 => {
                    items.remove(rng.below(items.len()));
                }
                1 => {
                    let c = items[rng.below(items.len())].clone();
                    items.push(c);
                }
                _ => {
                    let last = items.len() - 1;
                    items.swap(0, last)
                }
            },
            Value::Str(s) => s.push('x'),
            Value::Bool(b) => *b = !*b,
            Value::None => *v = Value::Int(INTERESTING[rng.below(INTERESTING.len())]),
            _ => {}
        }
        return;
    }
    match v {
        Value::List(items) | Value::Tuple(items) => {
            items.iter_mut().for_each(|x| mutate_value(x, rng, k))
        }
        Value::Object(o) => o.args.iter_mut().for_each(|x| mutate_value(x, rng, k)),
        Value::Dict(items) => items.iter_mut().for_each(|(_, x)| mutate_value(x, rng, k)),
        _ => {}
    }
}

fn count(v: &Value) -> usize {
    1 + match v {
        Value::List(items) | Value::Tuple(items) => items.iter().map(count).sum(),
        Value::Object(o) => o.args.iter().map(count).sum(),
        Value::Dict(items) => items.iter().map(|(_, x)| count(x)).sum(),
        _ => 0,
    }
}

/// Converts whatever `v` holds, items of a list one by one.
fn convert_all(v: &Value) -> usize {
    match v {
        Value::List(items) => items.iter().filter(|x| na::from_value(x).is_ok()).count(),
        _ => usize::from(na::from_value(v).is_ok()),
    }
}

#[test]
fn mutated_arrow_values_never_panic() {
    let seeds = mutate::seeds(&dir());
    assert!(seeds.len() > 200);
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let mut rng = mutate::Rng::new(env("ARROW_FUZZ_SEED", 7));
    let values: Vec<Value> = seeds
        .iter()
        .map(|(p, b)| ndpickle::from_payload(p, b.clone()).unwrap())
        .collect();
    let (mut ok, mut err) = (0, 0);
    for _ in 0..env("ARROW_FUZZ_ITERS", 6_000) {
        let mut v = values[rng.below(values.len())].clone();
        for _ in 0..1 + rng.below(3) {
            let mut k = 1 + rng.below(count(&v));
            mutate_value(&mut v, &mut rng, &mut k);
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| convert_all(&v)));
        match r {
            Ok(n) if n > 0 => ok += 1,
            Ok(_) => err += 1,
            Err(_) => panic!("arrow conversion panicked on {v:?}"),
        }
    }
    assert!(ok > 0 && err > 0, "{ok} {err}");
}

#[test]
fn mutated_arrow_streams_never_panic() {
    let seeds = mutate::seeds(&dir());
    let mut rng = mutate::Rng::new(11);
    let (mut ok, mut err) = (0, 0);
    for _ in 0..3_000 {
        let (data, bufs) = &seeds[rng.below(seeds.len())];
        let other = &seeds[rng.below(seeds.len())].0;
        let mut m = data.clone();
        for _ in 0..1 + rng.below(3) {
            mutate::mutate(&mut rng, &mut m, other);
        }
        let r =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(
                || match ndpickle::from_payload(&m, bufs.clone()) {
                    Ok(v) => convert_all(&v) > 0,
                    Err(_) => false,
                },
            ));
        match r {
            Ok(true) => ok += 1,
            Ok(false) => err += 1,
            Err(_) => panic!("panicked on input {}", mutate::hex(&m)),
        }
    }
    assert!(ok > 0 && err > 0, "{ok} {err}");
}

#[test]
fn nesting_is_bounded() {
    let nested = |depth: usize| {
        let mut dt = DataType::Int8;
        for _ in 0..depth {
            dt = DataType::List(Arc::new(Field::new("item", dt, true)));
        }
        dt
    };
    let ok = nested(40);
    let ArrowValue::DataType(g) = na::from_slice(&ndpickle::to_vec(&ok).unwrap()).unwrap() else {
        panic!()
    };
    assert_eq!(g, ok);
    let deep = ndpickle::to_vec(&nested(200)).unwrap();
    let e = na::from_slice(&deep).unwrap_err().to_string();
    assert!(e.contains("nesting"), "{e}");
}

mod prop {
    use super::*;
    use arrow_array::builder::{Int32Builder, ListBuilder};
    use arrow_array::{BooleanArray, Int32Array, StringArray, StructArray};
    use proptest::prelude::*;

    fn lists(v: &[Option<Vec<Option<i32>>>]) -> ArrayRef {
        let mut b = ListBuilder::new(Int32Builder::new());
        for x in v {
            match x {
                Some(items) => {
                    for i in items {
                        b.values().append_option(*i);
                    }
                    b.append(true);
                }
                None => b.append(false),
            }
        }
        Arc::new(b.finish())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn random_slices_round_trip(
            rows in proptest::collection::vec(
                (any::<Option<i32>>(), proptest::option::of("[a-zé]{0,6}"), any::<Option<bool>>(),
                 proptest::option::of(proptest::collection::vec(any::<Option<i32>>(), 0..4))),
                0..40),
            cut in (0usize..40, 0usize..40),
        ) {
            let n = rows.len();
            let ints: ArrayRef = Arc::new(rows.iter().map(|r| r.0).collect::<Int32Array>());
            let strs: ArrayRef = Arc::new(rows.iter().map(|r| r.1.clone()).collect::<StringArray>());
            let bools: ArrayRef = Arc::new(rows.iter().map(|r| r.2).collect::<BooleanArray>());
            let ls = lists(&rows.iter().map(|r| r.3.clone()).collect::<Vec<_>>());
            let st: ArrayRef = Arc::new(StructArray::from(vec![
                (Arc::new(Field::new("s", DataType::Utf8, true)), strs.clone()),
                (Arc::new(Field::new("l", ls.data_type().clone(), true)), ls.clone()),
            ]));
            let start = cut.0.min(n);
            let len = cut.1.min(n - start);
            for a in [ints, strs, bools, ls, st] {
                let a = a.slice(start, len);
                let payload = ndpickle::to_payload(&a).unwrap();
                let oob: Vec<Bytes> = payload.buffers.iter().map(|b| Bytes::copy_from_slice(b.as_slice())).collect();
                let ArrowValue::Array(g) = na::from_payload(&payload.pickle, oob.clone()).unwrap() else {
                    panic!("not an array")
                };
                prop_assert_eq!(g.to_data(), a.to_data());
                assert_shared("prop", std::slice::from_ref(&g), &oob);
                let ArrowValue::Array(g) = na::from_slice(&ndpickle::to_vec(&a).unwrap()).unwrap() else {
                    panic!("not an array")
                };
                prop_assert_eq!(g.to_data(), a.to_data());
            }
        }
    }
}

#[test]
fn older_six_tuples_and_bytes_buffers() {
    // Older pyarrow: `(type, length, null_count, offset, buffers, children)`, buffers as bytes.
    let six = |t: Value, len: i64, bufs: Vec<Value>, kids: Vec<Value>| {
        Value::Tuple(vec![
            t,
            Value::Int(len),
            Value::Int(-1),
            Value::Int(0),
            Value::List(bufs),
            Value::List(kids),
        ])
    };
    let child = six(
        ty("int64"),
        3,
        vec![Value::None, buf(&i64s(&[1, 2, 3]))],
        vec![],
    );
    let list = six(
        call("list_", vec![fld("item", ty("int64"))]),
        2,
        vec![buf(&[0b10]), buf(&i32s(&[0, 0, 3]))],
        vec![child],
    );
    let v = call("_restore_array", vec![list]);
    let a = na::array_from_value(&v).unwrap();
    let want =
        arrow_array::ListArray::from_iter_primitive::<arrow_array::types::Int64Type, _, _>(vec![
            None,
            Some(vec![Some(1), Some(2), Some(3)]),
        ]);
    assert_eq!(a.to_data(), want.to_data());
    let p = ndpickle::to_vec(&v).unwrap();
    let ArrowValue::Array(b) = na::from_slice(&p).unwrap() else {
        panic!()
    };
    assert_eq!(b.to_data(), want.to_data());
}

#[test]
fn in_band_buffers_slice_a_shared_input() {
    // pyarrow's protocol-5 in-band pickles read from `Bytes`: BYTEARRAY8 payloads are sliced,
    // not copied (bitmaps need no alignment; a typed buffer at a misaligned offset is copied).
    let data = Bytes::from(fs::read(dir().join("bool_p5.pkl")).unwrap());
    let v = ndpickle::from_bytes(data.clone()).unwrap();
    let got: Vec<ArrayRef> = v
        .as_seq()
        .unwrap()
        .iter()
        .map(|a| na::array_from_value(a).unwrap())
        .collect();
    assert_shared("bool_p5", &got, &[data]);
}

#[test]
fn the_options_twins_apply_the_reader_limits() {
    let a: ArrayRef = Arc::new(arrow_array::Int64Array::from_iter_values(0..1000));
    let p = ndpickle::to_payload(&a).unwrap();
    let bufs: Vec<Bytes> = p
        .buffers
        .iter()
        .map(|b| Bytes::copy_from_slice(b))
        .collect();
    let defaults = ndpickle::ReadOptions::default();
    let plain = na::from_payload(&p.pickle, bufs.clone()).unwrap();
    let with = na::from_payload_with(&p.pickle, bufs.clone(), &defaults).unwrap();
    assert!(
        matches!((&plain, &with), (ArrowValue::Array(x), ArrowValue::Array(y)) if x.to_data() == y.to_data())
    );
    let tight = ndpickle::ReadOptions::builder()
        .max_depth(2)
        .build()
        .unwrap();
    assert!(na::from_payload_with(&p.pickle, bufs, &tight).is_err());
    let inband = ndpickle::to_vec(&a).unwrap();
    assert!(na::from_slice_with(&inband, &defaults).is_ok());
    assert!(na::from_slice_with(&inband, &tight).is_err());
    assert!(na::from_bytes_with(Bytes::from(inband), &tight).is_err());
}

/// Every pyarrow object the Rust reader builds from the converter's fuzz reproducers
/// (`tests/hostile/fuzz/`, found against `safe_loads`) passes `validate_full`: the arrow-rs
/// path refuses the cases that crashed the Python converter.
#[test]
fn converter_fuzz_reproducers_give_valid_arrays_or_errors() {
    fn walk(v: &Value, found: &mut usize) {
        match v {
            Value::List(x) | Value::Tuple(x) | Value::Set(x) | Value::FrozenSet(x) => {
                x.iter().for_each(|x| walk(x, found))
            }
            Value::Dict(kv) => kv.iter().for_each(|(_, x)| walk(x, found)),
            Value::Object(_) => {
                let data = match na::from_value(v) {
                    Ok(ArrowValue::Array(a)) => vec![a.to_data()],
                    Ok(ArrowValue::RecordBatch(b)) => {
                        b.columns().iter().map(|c| c.to_data()).collect()
                    }
                    _ => Vec::new(),
                };
                for d in data {
                    d.validate_full().expect("a returned array is valid");
                    // Used as Arrow code would: sliced, written with IPC.
                    let a = arrow_array::make_array(d);
                    let _ = a.slice(0, a.len());
                    let batch = RecordBatch::try_from_iter([("x", a.clone())]).unwrap();
                    let mut w =
                        arrow_ipc::writer::StreamWriter::try_new(Vec::new(), &batch.schema())
                            .unwrap();
                    w.write(&batch).expect("IPC write");
                    *found += 1;
                }
            }
            _ => {}
        }
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/hostile/fuzz");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    files.sort();
    assert!(files.len() >= 80, "{}", files.len());
    let (mut read, mut arrays) = (0, 0);
    for p in &files {
        let data = fs::read(p).unwrap();
        let mut parts: Vec<Bytes> = Vec::new();
        let mut rest: &[u8] = &data;
        let sep = b"\xfe\xfdNDFZ";
        while parts.len() < 31 {
            match rest.windows(sep.len()).position(|w| w == sep) {
                Some(i) => {
                    parts.push(Bytes::copy_from_slice(&rest[..i]));
                    rest = &rest[i + sep.len()..];
                }
                None => break,
            }
        }
        parts.push(Bytes::copy_from_slice(rest));
        let pickle = parts.remove(0);
        if let Ok(v) = ndpickle::from_payload(&pickle, parts) {
            read += 1;
            walk(&v, &mut arrays);
        }
    }
    // Most are refused by the core reader already; what it reads, arrow-rs checks.
    eprintln!(
        "{} files, {read} read, {arrays} arrays built and valid",
        files.len()
    );
}
