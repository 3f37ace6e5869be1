//! Writer benchmarks (issue 2): `to_payload` must be flat in array size (zero copies), and
//! `to_vec`/`to_writer` of 64 MiB must approach a plain `copy_from_slice` of the same bytes.
//!
//! Run: `cargo bench -p ndpickle-benches --bench write`, then
//! `python3 benches/criterion_ratios.py` prints the ratios quoted in the README.

use std::hint::black_box;
use std::io::Write;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ndarray::{Array1, Array2, s};
use ndpickle::{SpanView, WriteOptions, to_payload_with, to_vec, to_writer};

/// A writer into preallocated memory: measures the pickle path, not reallocation.
struct Prealloc<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Write for Prealloc<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let end = self.pos + data.len();
        self.buf[self.pos..end].copy_from_slice(data);
        self.pos = end;
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn payload(c: &mut Criterion) {
    let opts = WriteOptions::default();
    let mut g = c.benchmark_group("to_payload");
    for (label, bytes) in [
        ("1KiB", 1usize << 10),
        ("1MiB", 1 << 20),
        ("256MiB", 256 << 20),
    ] {
        let a = Array1::from_shape_fn(bytes / 8, |i| i as f64);
        g.bench_with_input(BenchmarkId::from_parameter(label), &a, |b, a| {
            b.iter(|| black_box(to_payload_with(black_box(a), &opts).unwrap()))
        });
    }
    g.finish();
}

/// A dense strided view (every other column of 64 MiB of f64) out-of-band: its span is
/// lent with zero copies when the array is borrowed whole ([`SpanView`]); a plain
/// `ArrayView` with gaps is packed (its gaps could belong to another live mutable view).
fn strided_payload(c: &mut Criterion) {
    let opts = WriteOptions::default();
    let a = Array2::from_shape_fn((2048, 4096), |(i, j)| (i * 4096 + j) as f64);
    let mut g = c.benchmark_group("to_payload_strided_64MiB");
    g.bench_function("span_view", |b| {
        let v = SpanView::slice(&a, s![.., ..;2]);
        b.iter(|| black_box(to_payload_with(black_box(&v), &opts).unwrap()))
    });
    g.bench_function("array_view", |b| {
        let v = a.slice(s![.., ..;2]);
        b.iter(|| black_box(to_payload_with(black_box(&v), &opts).unwrap()))
    });
    g.finish();
}

fn in_band(c: &mut Criterion) {
    let n = 64usize << 20;
    let a = Array1::from_shape_fn(n / 8, |i| i as f64);
    let src: &[u8] = bytemuck::cast_slice(a.as_slice().unwrap());
    let mut dst = vec![0u8; n + 4096];
    let mut g = c.benchmark_group("in_band_64MiB");
    g.throughput(Throughput::Bytes(n as u64));
    g.sample_size(20);
    g.bench_function("copy_from_slice", |b| {
        b.iter(|| {
            dst[..n].copy_from_slice(black_box(src));
            black_box(&dst);
        })
    });
    g.bench_function("to_writer", |b| {
        b.iter(|| {
            let mut w = Prealloc {
                buf: &mut dst,
                pos: 0,
            };
            to_writer(&mut w, black_box(&a)).unwrap();
            black_box(w.pos)
        })
    });
    g.bench_function("to_vec", |b| {
        b.iter(|| black_box(to_vec(black_box(&a)).unwrap()))
    });
    g.finish();
}

fn small_arrays(c: &mut Criterion) {
    let arrays: Vec<Array2<f64>> = (0..10_000)
        .map(|k| Array2::from_shape_fn((2, 5), |(i, j)| (k + i * 5 + j) as f64))
        .collect();
    let opts = WriteOptions::default();
    let mut g = c.benchmark_group("small_arrays_10000");
    g.bench_function("to_vec", |b| {
        b.iter(|| black_box(to_vec(black_box(&arrays)).unwrap()))
    });
    g.bench_function("to_payload", |b| {
        b.iter(|| black_box(to_payload_with(black_box(&arrays), &opts).unwrap()))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = payload, strided_payload, in_band, small_arrays
}
criterion_main!(benches);
