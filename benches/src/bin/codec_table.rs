//! Prints one markdown table: ratio, single-thread compress and decompress GB/s for every
//! dataset × codec configuration. A quick companion to the criterion bench `codec`:
//! `cargo run --release -p ndpickle-benches --bin codec_table [-- --block-size N --threads N
//! --only NAME --csv]`. With `--scaling`, the speed-up of `--threads N` (default 2) threads
//! over one on 64 MiB buffers (each dataset repeated eight times) instead.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ndpickle::codec::{
    Codec, CodecOptions, Compression, Filter, Scratch, compress, decompress_into, decompress_with,
};
use ndpickle_benches::{checksum, codec_configs, datasets};

/// Best time of a few runs of `f`, at least `min_total` in all.
fn best<T>(mut f: impl FnMut() -> T, min_total: Duration) -> f64 {
    let start = Instant::now();
    let mut best = f64::MAX;
    let mut runs = 0;
    while runs < 3 || start.elapsed() < min_total {
        let t = Instant::now();
        black_box(f());
        best = best.min(t.elapsed().as_secs_f64());
        runs += 1;
    }
    best
}

fn main() {
    let mut block = ndpickle::codec::DEFAULT_BLOCK_SIZE;
    let scaling = std::env::args().any(|a| a == "--scaling");
    let mut threads = if scaling { 2 } else { 1 };
    let mut accel = ndpickle::codec::DEFAULT_LZ4_ACCELERATION;
    let mut only: Option<String> = None;
    let csv = std::env::args().any(|a| a == "--csv");
    let args: Vec<String> = std::env::args().collect();
    for w in args.windows(2) {
        match w[0].as_str() {
            "--block-size" => block = w[1].parse().expect("block size"),
            "--threads" => threads = w[1].parse().expect("threads"),
            "--only" => only = Some(w[1].clone()),
            "--lz4-acceleration" => accel = w[1].parse().expect("lz4 acceleration"),
            _ => {}
        }
    }
    let opts = CodecOptions::builder()
        .block_size(block)
        .threads(threads)
        .lz4_acceleration(accel)
        .build()
        .unwrap();
    let mut scratch = Scratch::with_options(opts);
    let budget = Duration::from_millis(300);
    if scaling {
        let one = CodecOptions::builder()
            .block_size(block)
            .threads(1)
            .lz4_acceleration(accel)
            .build()
            .unwrap();
        scaling_report(
            &mut Scratch::with_options(one),
            &mut scratch,
            threads,
            3 * budget,
            only.as_deref(),
        );
        return;
    }
    if std::env::args().any(|a| a == "--auto") {
        auto_report(&mut scratch, budget);
        return;
    }
    println!("block size {block}, threads {threads}, lz4 acceleration {accel}");
    println!("| dataset | config | ratio (raw/compressed) | compress GB/s | decompress GB/s |");
    println!("|---|---|---|---|---|");
    for (name, elem, data) in datasets::all() {
        eprintln!("{name}: checksum {:#018x}", checksum(&data));
        let configs = codec_configs(elem);
        for (cname, settings) in configs {
            if only.as_deref().is_some_and(|o| !cname.contains(o)) {
                continue;
            }
            let c = compress(&data, &settings, &mut scratch).unwrap();
            let tc = best(|| compress(&data, &settings, &mut scratch).unwrap(), budget);
            let (ratio, td) = if c.is_raw() {
                (1.0, f64::NAN)
            } else {
                let back = decompress_with(c.bytes(), c.info(), data.len(), &mut scratch).unwrap();
                assert_eq!(back, data);
                let td = best(
                    || decompress_with(c.bytes(), c.info(), data.len(), &mut scratch).unwrap(),
                    budget,
                );
                (data.len() as f64 / c.bytes().len() as f64, td)
            };
            let gb = |t: f64| data.len() as f64 / t / 1e9;
            let note = c
                .kept_raw()
                .map(|k| format!(" (kept raw: {k:?})"))
                .unwrap_or_default();
            if csv {
                println!("csv,{name},{cname},{ratio},{},{}", gb(tc), gb(td));
            } else {
                println!(
                    "| {name} | {cname}{note} | {ratio:.3} | {:.2} | {:.2} |",
                    gb(tc),
                    gb(td)
                );
            }
        }
    }
}

/// The auto policy: sample estimate vs whole-buffer ratio per dataset, and auto on random data
/// against the raw path (a memcpy of the buffer).
fn auto_report(scratch: &mut Scratch, budget: Duration) {
    println!("| dataset | sample compressed/raw | whole compressed/raw | auto decision |");
    println!("|---|---|---|---|");
    for (name, elem, data) in datasets::all() {
        let auto = Compression::default().with_elem_size(elem);
        let est = ndpickle::codec::sample_estimate(&data, &auto, scratch).unwrap();
        let whole = compress(
            &data,
            &Compression::Fixed(Codec::Lz4, Filter::Shuffle { elem_size: elem }),
            scratch,
        )
        .unwrap();
        let c = compress(&data, &auto, scratch).unwrap();
        let decision = c
            .kept_raw()
            .map_or("compressed".to_string(), |k| format!("{k:?}"));
        println!(
            "| {name} | {est:.3} | {:.3} | {decision} |",
            whole.bytes().len() as f64 / data.len() as f64
        );
    }
    let data = datasets::f64_uniform();
    let auto = Compression::default().with_elem_size(8);
    println!("\n| size | raw memcpy GB/s | auto (decide + memcpy) GB/s | auto / raw |");
    println!("|---|---|---|---|");
    for size in [64 << 10, 256 << 10, 1 << 20, 8 << 20] {
        let src = &data[..size];
        let mut dst = vec![0u8; size];
        let reps = (64 << 20) / size;
        let raw = best(
            || {
                for _ in 0..reps {
                    dst.copy_from_slice(black_box(src));
                }
            },
            budget,
        );
        let with_auto = best(
            || {
                for _ in 0..reps {
                    let c = compress(black_box(src), &auto, scratch).unwrap();
                    assert!(c.is_raw());
                    dst.copy_from_slice(src);
                }
            },
            budget,
        );
        let gb = |t: f64| (size * reps) as f64 / t / 1e9;
        println!(
            "| {} KiB | {:.2} | {:.2} | {:.3} |",
            size >> 10,
            gb(raw),
            gb(with_auto),
            raw / with_auto
        );
    }
}

/// Compress and decompress speed with one thread and with `threads` threads on 64 MiB
/// buffers, for the two shuffled configurations the blosc2 comparison uses. Decompression is
/// timed twice: into a new buffer each time (`decompress_with`: the kernel supplies fresh
/// pages, which it zeroes first) and into one reused destination (`decompress_into`).
fn scaling_report(
    one: &mut Scratch,
    many: &mut Scratch,
    threads: usize,
    budget: Duration,
    only: Option<&str>,
) {
    println!("64 MiB buffers (each dataset eight times), GB/s with 1 thread / {threads}, speed-up");
    println!(
        "| dataset | config | compress | decompress, new buffer | decompress into a reused buffer |"
    );
    println!("|---|---|---|---|---|");
    // The memory's own limit: a copy of 64 MiB into a reused buffer, by one thread and split
    // between `threads` threads.
    let src = datasets::f64_uniform().repeat(8);
    let mut dst = vec![0u8; src.len()];
    let copy = |dst: &mut [u8], parts: usize| {
        let chunk = src.len().div_ceil(parts);
        std::thread::scope(|s| {
            for (d, c) in dst.chunks_mut(chunk).zip(src.chunks(chunk)) {
                s.spawn(move || d.copy_from_slice(black_box(c)));
            }
        });
    };
    let gb = |t: f64| src.len() as f64 / t / 1e9;
    let one_copy = gb(best(|| dst.copy_from_slice(black_box(&src)), budget));
    let many_copy = gb(best(|| copy(&mut dst, threads), budget));
    println!(
        "| memcpy (the memory's limit) | | | | {one_copy:.2} / {many_copy:.2}, {:.2}× |",
        many_copy / one_copy
    );
    drop((src, dst));
    let mut worst = [f64::MAX; 3];
    for (name, elem, data) in datasets::all() {
        if only.is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let data = data.repeat(8);
        let mut dst = vec![0u8; data.len()];
        for (cname, settings) in codec_configs(elem) {
            if !matches!(cname, "shuffle+lz4" | "shuffle+zstd1") {
                continue;
            }
            let mut speeds = [[0.0; 3]; 2];
            for (i, scratch) in [&mut *one, &mut *many].into_iter().enumerate() {
                let c = compress(&data, &settings, scratch).unwrap();
                let back = decompress_with(c.bytes(), c.info(), data.len(), scratch).unwrap();
                assert_eq!(back, data);
                let gb = |t: f64| data.len() as f64 / t / 1e9;
                speeds[i] = [
                    gb(best(
                        || compress(&data, &settings, scratch).unwrap(),
                        budget,
                    )),
                    gb(best(
                        || decompress_with(c.bytes(), c.info(), data.len(), scratch).unwrap(),
                        budget,
                    )),
                    gb(best(
                        || decompress_into(c.bytes(), c.info(), &mut dst, scratch).unwrap(),
                        budget,
                    )),
                ];
            }
            let cells: Vec<String> = (0..3)
                .map(|k| {
                    let up = speeds[1][k] / speeds[0][k];
                    worst[k] = worst[k].min(up);
                    format!("{:.2} / {:.2}, {up:.2}×", speeds[0][k], speeds[1][k])
                })
                .collect();
            println!("| {name} | {cname} | {} |", cells.join(" | "));
        }
    }
    if worst[0] == f64::MAX {
        println!("\nno dataset matched --only");
        return;
    }
    println!(
        "\nlowest speed-up: compress {:.2}×, decompress into a new buffer {:.2}×, into a reused one {:.2}×",
        worst[0], worst[1], worst[2]
    );
}
