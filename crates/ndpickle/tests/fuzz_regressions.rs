//! Replays the inputs the cargo-fuzz targets (`crates/ndpickle/fuzz`) found, through the very
//! checks the targets run (`common/fuzz_input.rs`): each file in `tests/fuzz/read/` through
//! the `read` target's check, each in `tests/fuzz/codec/` through the `codec` target's. A
//! regression panics or runs out of time here as it did under the fuzzer. The seed inputs of
//! the codec target run through the same check, so that the harness itself is tested in the
//! default test run (the fuzz crate is built only by cargo-fuzz).

#[path = "common/fuzz_input.rs"]
mod fuzz_input;

use std::path::Path;
use std::time::{Duration, Instant};

/// Runs `check` on every file of `tests/fuzz/<dir>` (if any); returns how many there were.
fn replay(dir: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz")
        .join(dir);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut files: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for p in &files {
        let data = std::fs::read(p).unwrap();
        let t = Instant::now();
        check(&data);
        let took = t.elapsed();
        assert!(
            took < Duration::from_secs(5),
            "{} took {took:?}",
            p.display()
        );
    }
    files.len()
}

#[test]
fn read_findings_replay_cleanly() {
    replay("read", fuzz_input::check_read);
}

#[test]
fn codec_findings_replay_cleanly() {
    replay("codec", fuzz_input::check_codec);
}

#[test]
fn codec_seeds_pass_the_codec_check() {
    let seeds = fuzz_input::codec_seeds();
    assert!(seeds.len() > 50);
    seeds.iter().for_each(|s| fuzz_input::check_codec(s));
    // Every mode is represented.
    for mode in 0..4u8 {
        assert!(seeds.iter().any(|s| s[0] == mode), "no seed of mode {mode}");
    }
}

#[test]
fn input_format_round_trips() {
    let parts: [&[u8]; 3] = [b"pickle", b"", b"NDPZ-not-a-header"];
    let joined = fuzz_input::join(&parts);
    assert_eq!(fuzz_input::split(&joined), parts);
    assert!(fuzz_input::in_buffer(parts[2]).frame_info().is_none());
}
