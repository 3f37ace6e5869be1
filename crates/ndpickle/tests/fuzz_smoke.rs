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

#[test]
fn mutated_compressed_streams_never_panic() {
    let seeds = mutate::compressed_seeds();
    // Every seed loads as written, in both in-band forms.
    for (data, _) in &seeds {
        ndpickle::read::from_slice(data).unwrap();
    }
    assert!(
        seeds
            .iter()
            .any(|(d, _)| d.windows(16).any(|w| w == b"_decompress_into"))
    );
    let (ok, err, _) = mutate::run(&seeds, 3_000, 7);
    assert!(ok > 0 && err > 0, "{ok} {err}");
}

#[test]
fn mutated_array_over_array_never_panics() {
    let seed = mutate::view_seed();
    let v = ndpickle::read::from_slice(&seed.0).unwrap();
    let ndpickle::Value::List(items) = v else {
        panic!("a list")
    };
    let view = items[1]
        .as_array()
        .unwrap()
        .to_owned_array::<f64>()
        .unwrap();
    assert_eq!(view.as_slice().unwrap(), &[1.0, 3.0, 5.0]);
    let (ok, err, _) = mutate::run(&[seed], 5_000, 3);
    assert!(ok > 0 && err > 0, "{ok} {err}");
}
