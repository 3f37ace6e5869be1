//! The command line end to end: `demo` writes the dataset, `inspect` reads it back safely,
//! `verify` refuses what the safe reader refuses. (The Python package's entry point runs the
//! same `ndpickle::inspect`: `tests/test_cli.py` compares the two.)

use std::process::Command;

fn ndpickle(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ndpickle"))
        .args(args)
        .output()
        .expect("run ndpickle");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn demo_then_inspect() {
    let dir = std::env::temp_dir().join(format!("ndpickle-cli-{}", std::process::id()));
    let d = dir.to_str().unwrap();
    let (ok, stdout, stderr) = ndpickle(&["demo", d]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("zero copies"), "{stdout}");
    let (ok, stdout, stderr) = ndpickle(&["inspect", &format!("{d}/dataset.pkl")]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("dtype=<f4 shape=(720, 1440)"), "{stdout}");
    assert!(
        stdout.contains("strides=(8, 0) nbytes=8294400 read-only"),
        "broadcast keeps its zero stride and loads read-only: {stdout}"
    );
    // Out-of-band: the pickle plus its buffer files.
    let mut args = vec!["inspect".to_string(), format!("{d}/dataset.oob.pkl")];
    let mut i = 0;
    while dir.join(format!("dataset.buf.{i}")).exists() {
        args.push(format!("{d}/dataset.buf.{i}"));
        i += 1;
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, stdout, stderr) = ndpickle(&args);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("dtype=<M8[s] shape=(24,)"), "{stdout}");
    assert!(
        stdout.contains("'temperature': numpy.ndarray dtype=<f4 shape=(720, 1440) strides=(5760, 4) nbytes=4147200, out-of-band buffer 0"),
        "{stdout}"
    );
    // Without its buffers the out-of-band pickle is a clear error, not a crash.
    let (ok, _, stderr) = ndpickle(&["inspect", &format!("{d}/dataset.oob.pkl")]);
    assert!(!ok);
    assert!(stderr.contains("out-of-band"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn hostile_input_is_refused_cleanly() {
    let path = std::env::temp_dir().join(format!("ndpickle-cli-evil-{}.pkl", std::process::id()));
    std::fs::write(&path, b"cos\nsystem\n(S'echo pwned'\ntR.").unwrap();
    // inspect shows the call it would make, without making it; verify refuses it.
    let (ok, stdout, stderr) = ndpickle(&["inspect", path.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("object callable=os.system args=1") && stdout.contains("'echo pwned'"),
        "{stdout}"
    );
    let (ok, stdout, stderr) = ndpickle(&["verify", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(!stdout.contains("pwned"));
    assert!(
        stderr.contains("os.system") && stderr.contains("not allowed"),
        "{stderr}"
    );
    std::fs::remove_file(&path).ok();
    let (ok, _, stderr) = ndpickle(&["bogus"]);
    assert!(!ok && stderr.contains("usage"));
}
