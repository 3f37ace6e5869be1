//! Stable-Rust mutation fuzzing of the reader, seeded with the golden fixtures.
//!
//! `cargo run --release -p ndpickle --example fuzz_stable -- [ITERATIONS] [SEED]`

#[path = "../tests/common/mutate.rs"]
mod mutate;

fn main() {
    let mut args = std::env::args().skip(1);
    let iterations: usize = args
        .next()
        .map_or(100_000, |a| a.parse().expect("iterations"));
    let seed: u64 = args.next().map_or(1, |a| a.parse().expect("seed"));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let mut seeds = mutate::seeds(&dir);
    seeds.extend(mutate::compressed_seeds());
    seeds.push(mutate::view_seed());
    let t = std::time::Instant::now();
    let (ok, err, slowest) = mutate::run(&seeds, iterations, seed);
    println!(
        "{iterations} mutants of {} seeds (seed {seed}): {ok} loaded, {err} rejected cleanly, 0 panics; \
         slowest input {slowest:?}; total {:?}",
        seeds.len(),
        t.elapsed()
    );
}
