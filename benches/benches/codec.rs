//! Codec throughput on the five datasets of `ndpickle_benches::datasets`, one thread:
//! compress and decompress for lz4, zstd (levels 1 and 3), each with and without the shuffle,
//! and auto; plus the shuffle kernels against a naive loop, and auto against a memcpy.
//!
//! `cargo bench -p ndpickle-benches --bench codec -- --warm-up-time 1 --measurement-time 3`
//! (ratios: `cargo run --release -p ndpickle-benches --bin codec_table`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ndpickle::codec::{CodecOptions, Compression, Scratch, compress, decompress_with};
use ndpickle::internals::shuffle::{Kernels, shuffle_naive, shuffle_with, unshuffle_with};
use ndpickle_benches::{codec_configs, datasets};

fn one_thread() -> Scratch {
    Scratch::with_options(CodecOptions::builder().threads(1).build().unwrap())
}

fn codecs(c: &mut Criterion) {
    let mut scratch = one_thread();
    for (name, elem, data) in datasets::all() {
        let mut g = c.benchmark_group(format!("codec/{name}"));
        g.throughput(Throughput::Bytes(data.len() as u64));
        let configs = codec_configs(elem);
        for (cname, settings) in configs {
            g.bench_function(format!("compress/{cname}"), |b| {
                b.iter(|| compress(black_box(&data), &settings, &mut scratch).unwrap())
            });
            let out = compress(&data, &settings, &mut scratch).unwrap();
            if !out.is_raw() {
                g.bench_function(format!("decompress/{cname}"), |b| {
                    b.iter(|| {
                        decompress_with(
                            black_box(out.bytes()),
                            out.info(),
                            data.len(),
                            &mut scratch,
                        )
                        .unwrap()
                    })
                });
            }
        }
        g.finish();
    }
}

fn shuffles(c: &mut Criterion) {
    // One block of the codec's default size: what the codec shuffles at a time.
    let mut data = datasets::f64_walk();
    data.truncate(ndpickle::codec::DEFAULT_BLOCK_SIZE);
    let mut out = vec![0u8; data.len()];
    let mut g = c.benchmark_group("shuffle");
    g.throughput(Throughput::Bytes(data.len() as u64));
    for elem in [2, 4, 8, 16] {
        g.bench_function(format!("naive/{elem}"), |b| {
            b.iter(|| shuffle_naive(elem, black_box(&data), &mut out))
        });
        for kernels in Kernels::ALL.into_iter().filter(|k| k.is_available()) {
            g.bench_function(format!("shuffle/{kernels:?}/{elem}"), |b| {
                b.iter(|| shuffle_with(kernels, elem, black_box(&data), &mut out))
            });
            g.bench_function(format!("unshuffle/{kernels:?}/{elem}"), |b| {
                b.iter(|| unshuffle_with(kernels, elem, black_box(&data), &mut out))
            });
        }
    }
    g.finish();
}

fn auto_vs_raw(c: &mut Criterion) {
    let data = datasets::f64_uniform();
    let mut dst = vec![0u8; data.len()];
    let mut scratch = one_thread();
    let auto = Compression::default().with_elem_size(8);
    let mut g = c.benchmark_group("auto_random_f64");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("raw_memcpy", |b| {
        b.iter(|| dst.copy_from_slice(black_box(&data)))
    });
    g.bench_function("auto_then_memcpy", |b| {
        b.iter(|| {
            let c = compress(black_box(&data), &auto, &mut scratch).unwrap();
            assert!(c.is_raw());
            dst.copy_from_slice(&data);
        })
    });
    g.finish();
}

criterion_group!(benches, codecs, shuffles, auto_vs_raw);
criterion_main!(benches);
