//! serde structs: ndpickle against serde-pickle on the same values (see
//! `ndpickle_benches::serde_cases`), both directions; and `to_payload` of a struct with a
//! shared array at 4 KiB, 1 MiB and 64 MiB (flat: the memory is shared, not copied).
//!
//! `cargo bench -p ndpickle-benches --bench serde`; the ratios alone:
//! `cargo run --release -p ndpickle-benches --bin serde_table`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ndarray::{ArcArray1, Array1};
use ndpickle::WriteOptions;
use ndpickle_benches::serde_cases::{
    ARRAY_LEN, ListArray, Records, WithArcArray, WithArray, floats, records,
};

fn records_bench(c: &mut Criterion) {
    let recs = records(20_000);
    let ours = ndpickle::serde::to_vec(&recs).unwrap();
    let peer = serde_pickle::to_vec(&recs, serde_pickle::SerOptions::new()).unwrap();
    let mut g = c.benchmark_group("serde_records_20k");
    g.bench_function("write/serde-pickle", |b| {
        b.iter(|| serde_pickle::to_vec(black_box(&recs), serde_pickle::SerOptions::new()).unwrap())
    });
    g.bench_function("write/ndpickle", |b| {
        b.iter(|| ndpickle::serde::to_vec(black_box(&recs)).unwrap())
    });
    g.bench_function("read/serde-pickle", |b| {
        b.iter(|| {
            serde_pickle::from_slice::<Records>(black_box(&peer), serde_pickle::DeOptions::new())
                .unwrap()
        })
    });
    g.bench_function("read/ndpickle", |b| {
        b.iter(|| ndpickle::serde::from_slice::<Records>(black_box(&ours)).unwrap())
    });
    g.finish();
}

fn array_bench(c: &mut Criterion) {
    let data = floats(ARRAY_LEN);
    let list = ListArray {
        name: "w".into(),
        step: 1,
        data: data.clone(),
    };
    let arr = WithArray {
        name: "w".into(),
        step: 1,
        data: Array1::from_vec(data),
    };
    let peer = serde_pickle::to_vec(&list, serde_pickle::SerOptions::new()).unwrap();
    let ours = ndpickle::serde::to_vec(&arr).unwrap();
    let mut g = c.benchmark_group("serde_array_64MiB");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_millis(500));
    g.bench_function("write/serde-pickle-list", |b| {
        b.iter(|| serde_pickle::to_vec(black_box(&list), serde_pickle::SerOptions::new()).unwrap())
    });
    g.bench_function("write/ndpickle", |b| {
        b.iter(|| ndpickle::serde::to_vec(black_box(&arr)).unwrap())
    });
    g.bench_function("read/serde-pickle-list", |b| {
        b.iter(|| {
            serde_pickle::from_slice::<ListArray>(black_box(&peer), serde_pickle::DeOptions::new())
                .unwrap()
        })
    });
    g.bench_function("read/ndpickle", |b| {
        b.iter(|| ndpickle::serde::from_slice::<WithArray>(black_box(&ours)).unwrap())
    });
    g.finish();
}

fn payload_bench(c: &mut Criterion) {
    let opts = WriteOptions::default();
    let mut g = c.benchmark_group("serde_to_payload_arc");
    for (label, len) in [
        ("4KiB", 1usize << 10),
        ("1MiB", 1 << 18),
        ("64MiB", ARRAY_LEN),
    ] {
        let s = WithArcArray {
            name: "w".into(),
            step: 1,
            data: ArcArray1::from_elem(len, 1.0f32),
        };
        g.bench_with_input(BenchmarkId::from_parameter(label), &s, |b, s| {
            b.iter(|| ndpickle::serde::to_payload_with(black_box(s), &opts).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, records_bench, array_bench, payload_bench);
criterion_main!(benches);
