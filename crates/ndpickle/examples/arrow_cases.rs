//! Writes every Arrow writer test case into a directory for `tests/test_writer_arrow.py`.
//!
//! Each case is pickled three ways: in-band protocol 5 with 64-byte aligned payloads
//! (`NAME.pkl`), in-band protocol 4 (`NAME.p4.pkl`) and out-of-band (`NAME.oob.pkl` +
//! `NAME.oob.N.buf`). The expected value is the same arrow-rs data written by arrow-rs's own
//! IPC file writer (`NAME.arrow`): pyarrow reads it with its own IPC reader, an independent
//! path. `manifest.jsonl` has one line per case.
//!
//! Usage: `cargo run --release --features arrow --example arrow_cases -- OUT_DIR`

use std::fs;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{
    GenericListBuilder, Int64Builder, MapBuilder, StringBuilder, StringDictionaryBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::*;
use arrow_buffer::{NullBuffer, OffsetBuffer, ScalarBuffer, i256};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, UnionFields};
use ndpickle::WriteOptions;
use ndpickle::arrow::{AsNumpy, ChunkedArray, Table};

/// Length of the base arrays: odd, so that bitmaps end mid-byte.
const N: usize = 37;

/// What a case holds.
pub(crate) enum Value {
    Array(ArrayRef),
    Batch(RecordBatch),
    Table(Table),
    Chunked(ChunkedArray),
    Numpy(ArrayRef),
    NumpyBatch(RecordBatch),
}

/// One named value, shared with the reader's round-trip test (`tests/arrow_reader.rs`).
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) value: Value,
    /// `(parent case, offset, length)` when this array is a slice of another case.
    pub(crate) slice_of: Option<(String, usize, usize)>,
}

fn nullable<T>(f: impl Fn(usize) -> T) -> impl Iterator<Item = Option<T>> {
    (0..N).map(move |i| (i % 5 != 1).then(|| f(i)))
}

fn strings() -> StringArray {
    nullable(|i| "abcdefghijklmnopqrstuvwxyz"[..(i * 7) % 27].to_string()).collect()
}

#[allow(clippy::vec_init_then_push)] // one push per case reads best
pub(crate) fn base_arrays() -> Vec<(&'static str, ArrayRef)> {
    let mut v: Vec<(&'static str, ArrayRef)> = Vec::new();
    v.push(("null", Arc::new(NullArray::new(N))));
    v.push((
        "bool",
        Arc::new(nullable(|i| i % 3 == 0).collect::<BooleanArray>()),
    ));
    v.push((
        "int8",
        Arc::new(nullable(|i| (i as i8).wrapping_mul(37)).collect::<Int8Array>()),
    ));
    v.push((
        "int16",
        Arc::new(nullable(|i| (i as i16).wrapping_mul(-1237)).collect::<Int16Array>()),
    ));
    v.push((
        "int32",
        Arc::new(nullable(|i| (i as i32) * -123_457).collect::<Int32Array>()),
    ));
    v.push((
        "int64",
        Arc::new(nullable(|i| (i as i64) * -1_234_567_891_011).collect::<Int64Array>()),
    ));
    v.push((
        "uint8",
        Arc::new(nullable(|i| (i as u8).wrapping_mul(41)).collect::<UInt8Array>()),
    ));
    v.push((
        "uint16",
        Arc::new(nullable(|i| (i as u16) * 1709).collect::<UInt16Array>()),
    ));
    v.push((
        "uint32",
        Arc::new(nullable(|i| (i as u32).wrapping_mul(2_654_435_761)).collect::<UInt32Array>()),
    ));
    v.push((
        "uint64",
        Arc::new(
            nullable(|i| (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect::<UInt64Array>(),
        ),
    ));
    v.push((
        "float16",
        Arc::new(nullable(|i| half::f16::from_f32(i as f32 * 0.5 - 3.0)).collect::<Float16Array>()),
    ));
    v.push((
        "float32",
        Arc::new(nullable(|i| (i as f32).sin() * 1e3).collect::<Float32Array>()),
    ));
    v.push((
        "float64",
        Arc::new(nullable(|i| (i as f64).cos() * 1e-3 + i as f64).collect::<Float64Array>()),
    ));
    v.push((
        "decimal32",
        Arc::new(
            nullable(|i| i as i32 * 1001 - 7000)
                .collect::<Decimal32Array>()
                .with_precision_and_scale(9, 2)
                .unwrap(),
        ),
    ));
    v.push((
        "decimal64",
        Arc::new(
            nullable(|i| i as i64 * 100_000_001 - 7)
                .collect::<Decimal64Array>()
                .with_precision_and_scale(18, 3)
                .unwrap(),
        ),
    ));
    v.push((
        "decimal128",
        Arc::new(
            nullable(|i| i as i128 * 10_000_000_000_000_000_001 - 5)
                .collect::<Decimal128Array>()
                .with_precision_and_scale(38, 4)
                .unwrap(),
        ),
    ));
    v.push((
        "decimal256",
        Arc::new(
            nullable(|i| i256::from_i128(i as i128 * -99_999_999_999_999_999_999))
                .collect::<Decimal256Array>()
                .with_precision_and_scale(50, 5)
                .unwrap(),
        ),
    ));
    v.push((
        "date32",
        Arc::new(nullable(|i| i as i32 * 1000 - 9000).collect::<Date32Array>()),
    ));
    v.push((
        "date64",
        Arc::new(nullable(|i| i as i64 * 86_400_000).collect::<Date64Array>()),
    ));
    v.push((
        "time32s",
        Arc::new(nullable(|i| i as i32 * 997).collect::<Time32SecondArray>()),
    ));
    v.push((
        "time32ms",
        Arc::new(nullable(|i| i as i32 * 997_001).collect::<Time32MillisecondArray>()),
    ));
    v.push((
        "time64us",
        Arc::new(nullable(|i| i as i64 * 997_000_001).collect::<Time64MicrosecondArray>()),
    ));
    v.push((
        "time64ns",
        Arc::new(nullable(|i| i as i64 * 997_000_000_001).collect::<Time64NanosecondArray>()),
    ));
    v.push((
        "timestamp_s",
        Arc::new(nullable(|i| i as i64 * 1_000_003).collect::<TimestampSecondArray>()),
    ));
    v.push((
        "timestamp_ms_utc",
        Arc::new(
            nullable(|i| i as i64 * 1_000_000_003)
                .collect::<TimestampMillisecondArray>()
                .with_timezone("UTC"),
        ),
    ));
    v.push((
        "timestamp_us_paris",
        Arc::new(
            nullable(|i| i as i64 * 1_000_000_000_003)
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("Europe/Paris"),
        ),
    ));
    v.push((
        "timestamp_ns_offset",
        Arc::new(
            nullable(|i| i as i64 * 1_000_000_000_000_003)
                .collect::<TimestampNanosecondArray>()
                .with_timezone("+05:30"),
        ),
    ));
    v.push((
        "duration_s",
        Arc::new(nullable(|i| i as i64 - 20).collect::<DurationSecondArray>()),
    ));
    v.push((
        "duration_ms",
        Arc::new(nullable(|i| i as i64 * 3).collect::<DurationMillisecondArray>()),
    ));
    v.push((
        "duration_us",
        Arc::new(nullable(|i| i as i64 * 5).collect::<DurationMicrosecondArray>()),
    ));
    v.push((
        "duration_ns",
        Arc::new(nullable(|i| i as i64 * 7).collect::<DurationNanosecondArray>()),
    ));
    v.push((
        "interval_mdn",
        Arc::new(
            nullable(|i| IntervalMonthDayNano::new(i as i32, -(i as i32), i as i64 * 1_000_001))
                .collect::<IntervalMonthDayNanoArray>(),
        ),
    ));
    let strs = strings();
    v.push(("utf8", Arc::new(strs.clone())));
    v.push((
        "large_utf8",
        Arc::new(strs.iter().collect::<LargeStringArray>()),
    ));
    v.push((
        "utf8_view",
        Arc::new(strs.iter().collect::<StringViewArray>()),
    ));
    v.push((
        "binary",
        Arc::new(
            strs.iter()
                .map(|s| s.map(str::as_bytes))
                .collect::<BinaryArray>(),
        ),
    ));
    v.push((
        "large_binary",
        Arc::new(
            strs.iter()
                .map(|s| s.map(str::as_bytes))
                .collect::<LargeBinaryArray>(),
        ),
    ));
    v.push((
        "binary_view",
        Arc::new(
            strs.iter()
                .map(|s| s.map(str::as_bytes))
                .collect::<BinaryViewArray>(),
        ),
    ));
    v.push((
        "fixed_size_binary",
        Arc::new(
            FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                nullable(|i| [i as u8, (i * 7) as u8, 255 - i as u8]),
                3,
            )
            .unwrap(),
        ),
    ));
    let list = ListArray::from_iter_primitive::<Int32Type, _, _>(nullable(|i| {
        (0..i % 4)
            .map(|j| (j != 2).then_some((i * 10 + j) as i32))
            .collect::<Vec<_>>()
    }));
    v.push(("list_int32", Arc::new(list.clone())));
    let mut ll = GenericListBuilder::<i64, _>::new(StringBuilder::new());
    for i in 0..N {
        if i % 5 == 1 {
            ll.append_null();
        } else {
            for j in 0..i % 3 {
                ll.values().append_value(format!("{i}-{j}"));
            }
            ll.append(true);
        }
    }
    v.push(("large_list_utf8", Arc::new(ll.finish())));
    v.push((
        "fixed_size_list_f32",
        Arc::new(
            FixedSizeListArray::from_iter_primitive::<Float32Type, _, _>(
                nullable(|i| {
                    (0..3)
                        .map(|j| (j != 1 || i % 2 == 0).then_some((i * 3 + j) as f32))
                        .collect::<Vec<_>>()
                }),
                3,
            ),
        ),
    ));
    let st = struct_array();
    v.push(("struct", Arc::new(st.clone())));
    v.push(("map", Arc::new(map_array())));
    let dict_values: ArrayRef = Arc::new(StringArray::from(vec!["red", "green", "blue", "cyan"]));
    macro_rules! dict {
        ($name:literal, $k:ty) => {
            v.push((
                $name,
                Arc::new(
                    DictionaryArray::<$k>::try_new(
                        nullable(|i| ((i * 7) % 4) as _).collect(),
                        dict_values.clone(),
                    )
                    .unwrap(),
                ),
            ));
        };
    }
    dict!("dict_int8", Int8Type);
    dict!("dict_int16", Int16Type);
    dict!("dict_int32", Int32Type);
    dict!("dict_int64", Int64Type);
    dict!("dict_uint8", UInt8Type);
    dict!("dict_uint16", UInt16Type);
    dict!("dict_uint32", UInt32Type);
    dict!("dict_uint64", UInt64Type);
    let mut db = StringDictionaryBuilder::<Int32Type>::new();
    for i in 0..N {
        if i % 4 == 3 {
            db.append_null();
        } else {
            db.append_value(format!("v{}", i % 6));
        }
    }
    v.push(("dict_builder", Arc::new(db.finish())));
    v.push(("sparse_union", Arc::new(union(false))));
    v.push(("dense_union", Arc::new(union(true))));
    v.push(("ree_int16", Arc::new(ree::<Int16Type>())));
    v.push(("ree_int32", Arc::new(ree::<Int32Type>())));
    v.push(("ree_int64", Arc::new(ree::<Int64Type>())));
    v.push(("list_view", Arc::new(ListViewArray::from(list.clone()))));
    let large_list = LargeListArray::from_iter_primitive::<Int32Type, _, _>(
        list.iter()
            .map(|l| l.map(|l| l.as_primitive::<Int32Type>().iter().collect::<Vec<_>>())),
    );
    v.push((
        "large_list_view",
        Arc::new(LargeListViewArray::from(large_list)),
    ));
    // Nesting: list<struct<...>>, struct inside a list slice, list of dictionaries.
    let offsets: OffsetBuffer<i32> = OffsetBuffer::from_lengths((0..N).map(|i| i % 2));
    let inner = st.slice(0, offsets[offsets.len() - 1] as usize);
    v.push((
        "list_of_struct",
        Arc::new(
            ListArray::try_new(
                Arc::new(Field::new("item", inner.data_type().clone(), true)),
                offsets.clone(),
                Arc::new(inner),
                Some(NullBuffer::from_iter((0..N).map(|i| i % 4 != 2))),
            )
            .unwrap(),
        ),
    ));
    let dict: ArrayRef = Arc::new(
        DictionaryArray::<Int16Type>::try_new(nullable(|i| (i % 4) as i16).collect(), dict_values)
            .unwrap(),
    );
    let d_off: OffsetBuffer<i32> = OffsetBuffer::from_lengths((0..N).map(|i| (i + 1) % 2));
    let used = d_off[d_off.len() - 1] as usize;
    v.push((
        "list_of_dict",
        Arc::new(
            ListArray::try_new(
                Arc::new(Field::new("item", dict.data_type().clone(), true)),
                d_off,
                dict.slice(0, used),
                None,
            )
            .unwrap(),
        ),
    ));
    v
}

fn metadata(k: &str, v: &str) -> std::collections::HashMap<String, String> {
    [(k.to_string(), v.to_string())].into_iter().collect()
}

fn struct_array() -> StructArray {
    let a: ArrayRef = Arc::new(nullable(|i| i as i32).collect::<Int32Array>());
    let b: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..N).map(|i| format!("s{i}")),
    ));
    let c: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int8Type, _, _>(nullable(
        |i| vec![Some(i as i8); i % 3],
    )));
    let fields = Fields::from(vec![
        Field::new("a", DataType::Int32, true),
        Field::new("b", DataType::Utf8, false).with_metadata(metadata("unit", "none")),
        Field::new("c", c.data_type().clone(), true),
    ]);
    StructArray::try_new(
        fields,
        vec![a, b, c],
        Some(NullBuffer::from_iter((0..N).map(|i| i % 7 != 3))),
    )
    .unwrap()
}

fn map_array() -> MapArray {
    let mut m = MapBuilder::new(None, StringBuilder::new(), Int64Builder::new());
    for i in 0..N {
        if i % 6 == 5 {
            m.append(false).unwrap();
            continue;
        }
        for j in 0..i % 3 {
            m.keys().append_value(format!("k{j}"));
            if j == 1 {
                m.values().append_null();
            } else {
                m.values().append_value((i * j) as i64);
            }
        }
        m.append(true).unwrap();
    }
    m.finish()
}

fn union(dense: bool) -> UnionArray {
    let fields = UnionFields::try_new(
        [0, 5],
        [
            Field::new("i", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
        ],
    )
    .unwrap();
    let ids: ScalarBuffer<i8> = (0..N).map(|i| if i % 3 == 0 { 5 } else { 0 }).collect();
    if dense {
        let n_s = (0..N).filter(|i| i % 3 == 0).count();
        let mut counts = [0i32; 2];
        let offs: ScalarBuffer<i32> = (0..N)
            .map(|i| {
                let k = usize::from(i % 3 == 0);
                counts[k] += 1;
                counts[k] - 1
            })
            .collect();
        let ints: ArrayRef = Arc::new(
            (0..N - n_s)
                .map(|i| (i % 4 != 0).then_some(i as i64 * 11))
                .collect::<Int64Array>(),
        );
        let strs: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..n_s).map(|i| format!("u{i}")),
        ));
        UnionArray::try_new(fields, ids, Some(offs), vec![ints, strs]).unwrap()
    } else {
        let ints: ArrayRef = Arc::new(nullable(|i| i as i64 * 11).collect::<Int64Array>());
        let strs: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..N).map(|i| format!("u{i}")),
        ));
        UnionArray::try_new(fields, ids, None, vec![ints, strs]).unwrap()
    }
}

fn ree<R: RunEndIndexType>() -> RunArray<R>
where
    R::Native: TryFrom<usize>,
{
    let ends: Vec<R::Native> = [3usize, 4, 10, 11, 20, 30, N]
        .iter()
        .map(|&e| R::Native::try_from(e).ok().unwrap())
        .collect();
    let run_ends = PrimitiveArray::<R>::from_iter_values(ends);
    let values = StringArray::from(vec![
        Some("a"),
        None,
        Some("bb"),
        Some("c"),
        None,
        Some("dd"),
        Some("e"),
    ]);
    RunArray::<R>::try_new(&run_ends, &values).unwrap()
}

fn batch(len_from: usize, len: usize) -> RecordBatch {
    let mut fields = Vec::new();
    let mut cols = Vec::new();
    for (name, a) in base_arrays() {
        fields.push(Field::new(
            name,
            a.data_type().clone(),
            a.logical_null_count() > 0 || name == "null",
        ));
        cols.push(a.slice(len_from, len));
    }
    fields.push(
        Field::new("required", DataType::UInt8, false).with_metadata(metadata("origin", "rust")),
    );
    cols.push(Arc::new(UInt8Array::from_iter_values(
        (len_from..len_from + len).map(|i| i as u8),
    )));
    let schema = Schema::new(fields).with_metadata(metadata("dataset", "cases"));
    RecordBatch::try_new(Arc::new(schema), cols).unwrap()
}

pub(crate) fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (name, a) in base_arrays() {
        out.push(Case {
            name: name.into(),
            value: Value::Array(a.clone()),
            slice_of: None,
        });
        for (suffix, off, len) in [
            ("s3", 3, 21),
            ("s8", 8, 20),
            ("tail", 29, 8),
            ("empty", 4, 0),
        ] {
            out.push(Case {
                name: format!("{name}.{suffix}"),
                value: Value::Array(a.slice(off, len)),
                slice_of: Some((name.into(), off, len)),
            });
        }
    }
    // Big arrays: a sliced one must ship fewer bytes than pyarrow's own pickle of it.
    let big = 100_000usize;
    let bigs: Vec<(&str, ArrayRef)> = vec![
        (
            "big_int64",
            Arc::new(
                (0..big)
                    .map(|i| (i % 9 != 0).then_some(i as i64))
                    .collect::<Int64Array>(),
            ),
        ),
        (
            "big_utf8",
            Arc::new(
                (0..big)
                    .map(|i| (i % 9 != 0).then(|| format!("value-{i}")))
                    .collect::<StringArray>(),
            ),
        ),
        (
            "big_list",
            Arc::new(ListArray::from_iter_primitive::<Float64Type, _, _>(
                (0..big).map(|i| (i % 9 != 0).then(|| vec![Some(i as f64); i % 4])),
            )),
        ),
        (
            "big_bool",
            Arc::new(
                (0..big)
                    .map(|i| (i % 9 != 0).then_some(i % 2 == 0))
                    .collect::<BooleanArray>(),
            ),
        ),
        (
            "big_struct",
            Arc::new(StructArray::from(vec![
                (
                    Arc::new(Field::new("x", DataType::Float32, false)),
                    Arc::new(Float32Array::from_iter_values((0..big).map(|i| i as f32)))
                        as ArrayRef,
                ),
                (
                    Arc::new(Field::new("y", DataType::Utf8, true)),
                    Arc::new(
                        (0..big)
                            .map(|i| (i % 3 != 0).then(|| format!("y{i}")))
                            .collect::<StringArray>(),
                    ) as ArrayRef,
                ),
            ])),
        ),
    ];
    for (name, a) in bigs {
        out.push(Case {
            name: name.into(),
            value: Value::Array(a.clone()),
            slice_of: None,
        });
        for (suffix, off, len) in [
            ("mid", 40_001usize, 1_000usize),
            ("head", 0, 500),
            ("end", big - 333, 333),
        ] {
            out.push(Case {
                name: format!("{name}.{suffix}"),
                value: Value::Array(a.slice(off, len)),
                slice_of: Some((name.into(), off, len)),
            });
        }
    }
    // Record batches, tables, chunked arrays.
    out.push(Case {
        name: "batch_all".into(),
        value: Value::Batch(batch(0, N)),
        slice_of: None,
    });
    out.push(Case {
        name: "batch_all.s3".into(),
        value: Value::Batch(batch(0, N).slice(3, 21)),
        slice_of: None,
    });
    out.push(Case {
        name: "batch_empty".into(),
        value: Value::Batch(batch(0, N).slice(5, 0)),
        slice_of: None,
    });
    let full = batch(0, N);
    let schema: SchemaRef = full.schema();
    let parts = vec![full.slice(0, 10), full.slice(10, 0), full.slice(10, 27)];
    out.push(Case {
        name: "table".into(),
        value: Value::Table(Table::try_new(schema.clone(), parts).unwrap()),
        slice_of: None,
    });
    out.push(Case {
        name: "table_empty".into(),
        value: Value::Table(Table::try_new(schema, vec![]).unwrap()),
        slice_of: None,
    });
    let mut db = StringDictionaryBuilder::<Int8Type>::new();
    for i in 0..N {
        db.append_value(["x", "y", "z"][i % 3]);
    }
    let d: ArrayRef = Arc::new(db.finish());
    out.push(Case {
        name: "chunked_dict_shared".into(),
        value: Value::Chunked(
            ChunkedArray::from_chunks(vec![d.slice(0, 7), d.slice(7, 30)]).unwrap(),
        ),
        slice_of: None,
    });
    let s: ArrayRef = Arc::new(strings());
    out.push(Case {
        name: "chunked_utf8".into(),
        value: Value::Chunked(
            ChunkedArray::from_chunks(vec![s.slice(0, 5), s.slice(5, 0), s.slice(11, 20)]).unwrap(),
        ),
        slice_of: None,
    });
    // numpy for numpy-only consumers.
    let fsl = FixedSizeListArray::from_iter_primitive::<Float64Type, _, _>(
        (0..N).map(|i| Some((0..4).map(|j| Some((i * 4 + j) as f64)).collect::<Vec<_>>())),
        4,
    );
    let np: Vec<(&str, ArrayRef)> = vec![
        (
            "np_int64",
            Arc::new(Int64Array::from_iter_values((0..N as i64).map(|i| i * -3))),
        ),
        (
            "np_float32",
            Arc::new(Float32Array::from_iter_values(
                (0..N).map(|i| i as f32 / 3.0),
            )),
        ),
        (
            "np_bool",
            Arc::new(BooleanArray::from_iter((0..N).map(|i| Some(i % 3 == 0)))),
        ),
        (
            "np_timestamp",
            Arc::new(TimestampMicrosecondArray::from_iter_values(
                (0..N as i64).map(|i| i * 1_000_001),
            )),
        ),
        ("np_fsl2d", Arc::new(fsl.clone())),
        ("np_fsl2d.s3", Arc::new(fsl.slice(3, 21))),
    ];
    for (name, a) in &np {
        out.push(Case {
            name: (*name).into(),
            value: Value::Numpy(a.clone()),
            slice_of: None,
        });
    }
    let nb = RecordBatch::try_from_iter(np[..4].iter().map(|(n, a)| (*n, a.clone()))).unwrap();
    out.push(Case {
        name: "np_batch".into(),
        value: Value::NumpyBatch(nb),
        slice_of: None,
    });
    out
}

/// The IPC file of the expected value.
fn ipc(value: &Value) -> Vec<u8> {
    let one = |a: &ArrayRef| {
        let f = Field::new("x", a.data_type().clone(), true);
        RecordBatch::try_new(Arc::new(Schema::new(vec![f])), vec![a.clone()]).unwrap()
    };
    let (schema, batches): (SchemaRef, Vec<RecordBatch>) = match value {
        Value::Array(a) | Value::Numpy(a) => {
            let b = one(a);
            (b.schema(), vec![b])
        }
        Value::Batch(b) | Value::NumpyBatch(b) => (b.schema(), vec![b.clone()]),
        Value::Table(t) => (t.schema().clone(), t.batches().to_vec()),
        Value::Chunked(c) => {
            let f = Field::new("x", c.data_type().clone(), true);
            let schema = Arc::new(Schema::new(vec![f]));
            let batches = c
                .chunks()
                .iter()
                .map(|a| RecordBatch::try_new(schema.clone(), vec![a.clone()]).unwrap())
                .collect();
            (schema, batches)
        }
    };
    let mut out = Vec::new();
    let mut w = arrow_ipc::writer::FileWriter::try_new(&mut out, &schema).unwrap();
    for b in &batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
    drop(w);
    out
}

fn write_case(dir: &Path, case: &Case) -> String {
    let value: &dyn ndpickle::ToPickle = match &case.value {
        Value::Array(a) => a,
        Value::Batch(b) => b,
        Value::Table(t) => t,
        Value::Chunked(c) => c,
        Value::Numpy(a) => &AsNumpy(a.clone()),
        Value::NumpyBatch(b) => &AsNumpy(b),
    };
    let aligned = WriteOptions::builder().align(Some(64)).build().unwrap();
    fs::write(
        dir.join(format!("{}.pkl", case.name)),
        ndpickle::to_vec_with(value, &aligned).unwrap(),
    )
    .unwrap();
    let p4 = WriteOptions::builder().protocol(4).build().unwrap();
    fs::write(
        dir.join(format!("{}.p4.pkl", case.name)),
        ndpickle::to_vec_with(value, &p4).unwrap(),
    )
    .unwrap();
    let payload = ndpickle::to_payload(value).unwrap();
    fs::write(dir.join(format!("{}.oob.pkl", case.name)), &payload.pickle).unwrap();
    for (i, b) in payload.buffers.iter().enumerate() {
        fs::write(dir.join(format!("{}.oob.{i}.buf", case.name)), b.as_slice()).unwrap();
    }
    fs::write(dir.join(format!("{}.arrow", case.name)), ipc(&case.value)).unwrap();
    let kind = match case.value {
        Value::Array(_) => "array",
        Value::Batch(_) => "batch",
        Value::Table(_) => "table",
        Value::Chunked(_) => "chunked",
        Value::Numpy(_) => "numpy",
        Value::NumpyBatch(_) => "numpy_batch",
    };
    let slice = match &case.slice_of {
        Some((p, o, l)) => format!(r#"{{"parent": "{p}", "offset": {o}, "length": {l}}}"#),
        None => "null".into(),
    };
    format!(
        r#"{{"stem": "{}", "kind": "{kind}", "buffers": {}, "oob_total": {}, "slice_of": {slice}}}"#,
        case.name,
        payload.buffers.len(),
        payload.total_len()
    )
}

fn main() {
    let dir =
        std::path::PathBuf::from(std::env::args().nth(1).expect("usage: arrow_cases OUT_DIR"));
    fs::create_dir_all(&dir).unwrap();
    let mut manifest = String::new();
    for case in cases() {
        manifest.push_str(&write_case(&dir, &case));
        manifest.push('\n');
    }
    fs::write(dir.join("manifest.jsonl"), manifest).unwrap();
}
