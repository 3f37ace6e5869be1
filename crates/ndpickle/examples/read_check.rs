//! Reads every pickle file named on the command line (or every `*.pkl` / `*.bin` file in a
//! directory) and prints one JSON line per file: whether it loaded, and the error or a short
//! summary. Out-of-band buffers of `NAME.pkl` are read from `NAME.buf0`, `NAME.buf1`, ...
//! A panic is reported as `"panic": true` (and must never happen).
//!
//! With `--opaque`, unknown globals become opaque nodes instead of errors.
//!
//! `cargo run -q --example read_check -- [--opaque] DIR_OR_FILES...`

use std::path::{Path, PathBuf};

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn buffers_of(path: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0.. {
        let b = path.with_extension(format!("buf{i}"));
        match std::fs::read(&b) {
            Ok(d) => out.push(d),
            Err(_) => break,
        }
    }
    out
}

fn summary(v: &ndpickle::Value) -> String {
    match v {
        ndpickle::Value::Array(a) | ndpickle::Value::Scalar(a) => {
            format!("{} {} {:?}", v.type_name(), a.dtype(), a.shape())
        }
        other => other.type_name().to_string(),
    }
}

fn main() {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut opts = ndpickle::ReadOptions::default();
    for arg in std::env::args().skip(1) {
        if arg == "--opaque" {
            opts = ndpickle::ReadOptions::builder()
                .opaque_globals(true)
                .build()
                .expect("valid options");
            continue;
        }
        let p = PathBuf::from(arg);
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&p)
                .expect("readable directory")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| matches!(f.extension().and_then(|e| e.to_str()), Some("pkl" | "bin")))
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(p);
        }
    }
    std::panic::set_hook(Box::new(|_| {}));
    for f in files {
        let data = std::fs::read(&f).expect("readable file");
        let bufs = buffers_of(&f);
        let start = std::time::Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ndpickle::from_payload_with(&data, bufs.clone(), &opts)
        }));
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        let name = json_str(&f.display().to_string());
        match result {
            Ok(Ok(v)) => println!(
                "{{\"file\": {name}, \"ok\": true, \"panic\": false, \"ms\": {ms:.3}, \"summary\": {}}}",
                json_str(&summary(&v))
            ),
            Ok(Err(e)) => println!(
                "{{\"file\": {name}, \"ok\": false, \"panic\": false, \"ms\": {ms:.3}, \"offset\": {}, \"error\": {}}}",
                e.offset.map_or("null".to_string(), |o| o.to_string()),
                json_str(&e.to_string())
            ),
            Err(_) => {
                println!("{{\"file\": {name}, \"ok\": false, \"panic\": true, \"ms\": {ms:.3}}}")
            }
        }
    }
}
