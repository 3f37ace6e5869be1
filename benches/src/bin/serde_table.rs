//! Prints ndpickle's serde support against serde-pickle, with ratios (no Python needed):
//! `cargo run --release -p ndpickle-benches --bin serde_table [-- RUNS [records|array|payload]]`. The criterion
//! bench of the same cases is `cargo bench -p ndpickle-benches --bench serde`.

fn main() {
    let runs = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let only = std::env::args().nth(2);
    ndpickle_benches::serde_cases::print_table(runs, only.as_deref());
}
