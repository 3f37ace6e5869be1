//! serde structs to and from Python, for `tests/test_serde.py`.
//!
//! * `serde_cases write DIR`: pickles a `Checkpoint` (with arrays in C, Fortran, strided and
//!   shared layouts), a struct of views (broadcast, reversed) and an enum-heavy struct, each
//!   in-band at protocols 2 to 5 (`NAME.pN.pkl`) and out-of-band (`NAME.oob.pkl` +
//!   `NAME.oob.K.buf`); `manifest.jsonl` lists them. Python checks them with `pickle.loads`.
//! * `serde_cases read DIR`: reads every `*.pkl` in `DIR` that Python wrote (with
//!   `NAME.K.buf` out-of-band buffers when present) into a `Checkpoint` and prints one JSON
//!   line per file: `{"file", "ok": true, "value": ...}` or `{"file", "ok": false, "error"}`.
//!
//! Usage: `cargo run --release --features serde --example serde_cases -- write|read DIR`

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use ndarray::{ArcArray1, Array2, ArrayD, ArrayView2, ArrayView3, IxDyn, s};
use ndpickle::WriteOptions;
use serde::{Deserialize, Serialize};

/// The optimizer, an externally tagged enum.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum Optimizer {
    Sgd,
    Adam { beta: f64 },
    Custom(String, u8),
}

/// A layer of a model.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Layer {
    name: String,
    #[serde(with = "ndpickle::serde::array")]
    w: Array2<i32>,
}

/// A training checkpoint: metadata plus arrays.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Checkpoint {
    step: u64,
    name: String,
    lr: f64,
    tags: Vec<String>,
    shape: (u32, u32),
    optimizer: Optimizer,
    big: u128,
    neg: i128,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
    maybe: Option<i32>,
    #[serde(with = "ndpickle::serde::array")]
    weights: Array2<f32>,
    #[serde(with = "ndpickle::serde::array")]
    bias: ArcArray1<f64>,
    #[serde(with = "ndpickle::serde::array_1d")]
    ids: Vec<i64>,
    #[serde(with = "ndpickle::serde::array")]
    mask: ArrayD<bool>,
    layers: Vec<Layer>,
    params: BTreeMap<String, f32>,
}

/// Views written without owning their data.
#[derive(Serialize)]
struct Views<'a> {
    #[serde(with = "ndpickle::serde::array")]
    broadcast: ArrayView2<'a, f64>,
    #[serde(with = "ndpickle::serde::array")]
    reversed: ArrayView2<'a, f64>,
    #[serde(with = "ndpickle::serde::array")]
    strided: ArrayView3<'a, f64>,
}

/// `weights[i, j] = i * 10 + j + 0.5` (also computed by the Python test).
fn weights(rows: usize, cols: usize) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |(i, j)| (i * 10 + j) as f32 + 0.5)
}

fn checkpoint(layout: &str) -> Checkpoint {
    let w = match layout {
        "c" => weights(3, 4),
        // Fortran order: the transpose of a C array, owned.
        "f" => weights(3, 4)
            .t()
            .as_standard_layout()
            .into_owned()
            .reversed_axes(),
        // Every other column of a wider array: an owned, non-contiguous array.
        _ => {
            let mut wide = Array2::from_shape_fn((3, 8), |(i, j)| (i * 10 + j / 2) as f32 + 0.5);
            wide.slice_collapse(s![.., ..;2]);
            wide
        }
    };
    Checkpoint {
        step: u64::MAX,
        name: "run-é".into(),
        lr: 0.001,
        tags: vec!["a".into(), "b".into()],
        shape: (3, 4),
        optimizer: Optimizer::Adam { beta: 0.9 },
        big: u128::MAX,
        neg: i128::MIN,
        blob: vec![0, 1, 255],
        maybe: None,
        weights: w,
        bias: ArcArray1::from_shape_fn(4, |i| i as f64 * 0.25),
        ids: (0..5).map(|i| i * 1_000_000_007).collect(),
        mask: ArrayD::from_shape_fn(IxDyn(&[2, 1, 3]), |d| (d[0] + d[2]) % 2 == 0),
        layers: vec![
            Layer {
                name: "l0".into(),
                w: Array2::from_shape_fn((2, 2), |(i, j)| (i * 2 + j) as i32 - 2),
            },
            Layer {
                name: "l1".into(),
                w: Array2::zeros((0, 3)),
            },
        ],
        params: [("alpha".to_string(), 1.5f32), ("beta".to_string(), -2.0)].into(),
    }
}

fn options(protocol: u8) -> WriteOptions {
    WriteOptions::builder().protocol(protocol).build().unwrap()
}

/// Writes `value` in every form and appends its manifest lines.
fn write_all<T: Serialize>(dir: &Path, name: &str, value: &T, manifest: &mut String) {
    for p in 2..=5u8 {
        let bytes = ndpickle::serde::to_vec_with(value, &options(p)).unwrap();
        let file = format!("{name}.p{p}.pkl");
        fs::write(dir.join(&file), bytes).unwrap();
        manifest.push_str(&format!(
            "{{\"case\": \"{name}\", \"file\": \"{file}\", \"buffers\": []}}\n"
        ));
    }
    let payload = ndpickle::serde::to_payload(value).unwrap();
    let file = format!("{name}.oob.pkl");
    fs::write(dir.join(&file), &payload.pickle).unwrap();
    let mut bufs = Vec::new();
    for (k, b) in payload.buffers.iter().enumerate() {
        let f = format!("{name}.oob.{k}.buf");
        fs::write(dir.join(&f), b.as_slice()).unwrap();
        bufs.push(format!("\"{f}\""));
    }
    manifest.push_str(&format!(
        "{{\"case\": \"{name}\", \"file\": \"{file}\", \"buffers\": [{}]}}\n",
        bufs.join(", ")
    ));
    // The same struct streamed to a writer is byte for byte the in-band pickle.
    let mut streamed = Vec::new();
    ndpickle::serde::to_writer(&mut streamed, value).unwrap();
    assert_eq!(streamed, ndpickle::serde::to_vec(value).unwrap());
}

fn write(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    let mut manifest = String::new();
    for layout in ["c", "f", "strided"] {
        write_all(
            dir,
            &format!("checkpoint_{layout}"),
            &checkpoint(layout),
            &mut manifest,
        );
    }
    let base = Array2::from_shape_fn((3, 5), |(i, j)| (i * 5 + j) as f64);
    let row = ndarray::Array1::from_shape_fn(5, |j| j as f64 * 1.5);
    let cube = ndarray::Array3::from_shape_fn((4, 3, 6), |(i, j, k)| (i * 100 + j * 10 + k) as f64);
    let views = Views {
        broadcast: row.broadcast((4, 5)).unwrap(),
        reversed: base.slice(s![..;-1, ..;-2]),
        strided: cube.slice(s![1..;2, .., 1..5]),
    };
    write_all(dir, "views", &views, &mut manifest);
    let enums = vec![
        Optimizer::Sgd,
        Optimizer::Adam { beta: 0.5 },
        Optimizer::Custom("x".into(), 7),
    ];
    write_all(dir, "enums", &enums, &mut manifest);
    fs::write(dir.join("manifest.jsonl"), manifest).unwrap();
}

/// The checkpoint as JSON, arrays as nested lists with their shapes.
fn to_json(c: &Checkpoint) -> serde_json::Value {
    let arr =
        |v: Vec<serde_json::Value>, shape: &[usize]| serde_json::json!({"shape": shape, "flat": v});
    serde_json::json!({
        "step": c.step.to_string(),
        "name": c.name,
        "lr": c.lr,
        "tags": c.tags,
        "shape": [c.shape.0, c.shape.1],
        "optimizer": format!("{:?}", c.optimizer),
        "big": c.big.to_string(),
        "neg": c.neg.to_string(),
        "blob": c.blob,
        "maybe": c.maybe,
        "weights": arr(c.weights.iter().map(|&x| x.into()).collect(), c.weights.shape()),
        "bias": arr(c.bias.iter().map(|&x| x.into()).collect(), c.bias.shape()),
        "ids": c.ids,
        "mask": arr(c.mask.iter().map(|&x| x.into()).collect(), c.mask.shape()),
        "layers": c.layers.iter().map(|l| serde_json::json!({
            "name": l.name,
            "w": arr(l.w.iter().map(|&x| x.into()).collect(), l.w.shape()),
        })).collect::<Vec<_>>(),
        "params": c.params,
    })
}

fn read(dir: &Path) {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "pkl").then_some(p)
        })
        .collect();
    files.sort();
    for path in files {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let pickle = fs::read(&path).unwrap();
        let mut buffers = Vec::new();
        while let Ok(b) = fs::read(dir.join(format!("{stem}.{}.buf", buffers.len()))) {
            buffers.push(b);
        }
        let read: Result<Checkpoint, _> = if buffers.is_empty() {
            ndpickle::serde::from_slice(&pickle)
        } else {
            ndpickle::serde::from_payload(&pickle, buffers)
        };
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let line = match read {
            Ok(c) => serde_json::json!({"file": file, "ok": true, "value": to_json(&c)}),
            Err(e) => serde_json::json!({"file": file, "ok": false, "error": e.to_string()}),
        };
        println!("{line}");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("write"), Some(dir)) => write(Path::new(dir)),
        (Some("read"), Some(dir)) => read(Path::new(dir)),
        _ => {
            eprintln!("usage: serde_cases write|read DIR");
            std::process::exit(2);
        }
    }
}
