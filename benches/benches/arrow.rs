//! Arrow writer benchmark (issue 6): a RecordBatch of 10 columns, 10 K and 10 M rows.
//! `to_payload` must be flat in data size (buffers are borrowed, not copied); arrow-ipc's
//! stream writer (which copies every buffer) is measured beside it, and the bytes each ships
//! are written to `$CARGO_TARGET_DIR/arrow_bench_bytes.json` (default `target/`) for `benches/arrow_report.py`, which adds
//! pyarrow's own pickling of the same batch and prints one table.
//!
//! Run: `cargo bench -p ndpickle-benches --bench arrow`, then
//! `python3 benches/arrow_report.py`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ndpickle::{WriteOptions, to_payload_with};

/// 10 columns: 4 × int64 with nulls, 3 × float64, int32, bool with nulls, utf8.
/// `benches/arrow_report.py` builds the same batch in pyarrow.
fn batch(n: usize) -> RecordBatch {
    let mut cols: Vec<(String, ArrayRef)> = Vec::new();
    for k in 0..4i64 {
        let a: Int64Array = (0..n as i64)
            .map(|i| (i % 10 != k).then_some(i * (k + 1)))
            .collect();
        cols.push((format!("i{k}"), Arc::new(a)));
    }
    for k in 0..3 {
        let a = Float64Array::from_iter_values((0..n).map(|i| i as f64 * 0.5 + k as f64));
        cols.push((format!("f{k}"), Arc::new(a)));
    }
    cols.push((
        "i32".into(),
        Arc::new(Int32Array::from_iter_values((0..n).map(|i| i as i32))),
    ));
    let b: BooleanArray = (0..n).map(|i| (i % 7 != 0).then_some(i % 3 == 0)).collect();
    cols.push(("b".into(), Arc::new(b)));
    let s: StringArray = (0..n).map(|i| Some(format!("s{}", i % 1000))).collect();
    cols.push(("s".into(), Arc::new(s)));
    RecordBatch::try_from_iter(cols).unwrap()
}

fn ipc(batch: &RecordBatch, out: &mut Vec<u8>) {
    out.clear();
    let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut *out, &batch.schema()).unwrap();
    w.write(batch).unwrap();
    w.finish().unwrap();
}

fn arrow_batch(c: &mut Criterion) {
    let opts = WriteOptions::default();
    let mut g = c.benchmark_group("arrow_batch");
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(300));
    g.measurement_time(Duration::from_secs(2));
    let mut sizes = Vec::new();
    for (label, n) in [("10K", 10_000usize), ("10M", 10_000_000)] {
        let full = batch(n);
        let sliced = full.slice(n / 2, n / 10);
        let mut out = Vec::new();
        ipc(&full, &mut out);
        let ipc_full = out.len();
        ipc(&sliced, &mut out);
        let ipc_sliced = out.len();
        let ours = to_payload_with(&full, &opts).unwrap();
        let ours_sliced = to_payload_with(&sliced, &opts).unwrap();
        assert!(ours.buffers.iter().all(|b| b.is_borrowed()));
        sizes.push(format!(
            r#""{label}": {{"rows": {n}, "ndpickle": {}, "ndpickle_buffers": {}, "ndpickle_sliced": {}, "ipc": {ipc_full}, "ipc_sliced": {ipc_sliced}}}"#,
            ours.total_len(),
            ours.buffers.len(),
            ours_sliced.total_len(),
        ));
        drop((ours, ours_sliced));
        g.bench_with_input(BenchmarkId::new("to_payload", label), &full, |b, x| {
            b.iter(|| black_box(to_payload_with(black_box(x), &opts).unwrap()))
        });
        g.bench_with_input(
            BenchmarkId::new("to_payload_slice10pct", label),
            &sliced,
            |b, x| b.iter(|| black_box(to_payload_with(black_box(x), &opts).unwrap())),
        );
        out.reserve(ipc_full);
        g.bench_with_input(BenchmarkId::new("ipc_stream", label), &full, |b, x| {
            b.iter(|| {
                ipc(black_box(x), &mut out);
                black_box(&out);
            })
        });
    }
    g.finish();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("arrow_bench_bytes.json");
    std::fs::write(&path, format!("{{{}}}\n", sizes.join(", "))).unwrap();
}

criterion_group!(benches, arrow_batch);
criterion_main!(benches);
