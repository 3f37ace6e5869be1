//! A short, deterministic run of the stable mutation fuzzer (see `fuzz/README.md` for the
//! long runs).

#[path = "common/mutate.rs"]
mod mutate;

#[test]
fn mutated_fixtures_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let seeds = mutate::seeds(&dir);
    assert!(seeds.len() > 500);
    let (ok, err, _) = mutate::run(&seeds, 2_000, 42);
    assert!(ok > 0 && err > 0, "{ok} {err}");
}
