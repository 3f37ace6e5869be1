//! Writes the seed corpora of the cargo-fuzz targets (`crates/ndpickle/fuzz`), in their input
//! format (`tests/common/fuzz_input.rs`): the golden fixtures with their buffers, the
//! compressed in-band forms, out-of-band compressed buffers, and codec frames of every kind.
//!
//! `cargo run --release -p ndpickle --example fuzz_seeds -- OUT_DIR`
//!
//! writes `OUT_DIR/read`, `OUT_DIR/arrow_read`, `OUT_DIR/codec` and `OUT_DIR/convert`.

#[path = "../tests/common/fuzz_input.rs"]
mod fuzz_input;
#[path = "../tests/common/mutate.rs"]
mod mutate;

use std::fs;
use std::path::{Path, PathBuf};

use fuzz_input::{compressed_part, join};
use ndpickle::codec::{Codec, Compression, Filter};
use ndpickle::{WriteOptions, to_payload_with};

type Seed = (Vec<u8>, Vec<Vec<u8>>);

fn input((pickle, bufs): &Seed) -> Vec<u8> {
    let mut parts = vec![pickle.clone()];
    parts.extend(bufs.iter().cloned());
    join(&parts)
}

fn write_all(dir: &Path, prefix: &str, inputs: impl IntoIterator<Item = Vec<u8>>) -> usize {
    fs::create_dir_all(dir).unwrap();
    let mut n = 0;
    for (i, data) in inputs.into_iter().enumerate() {
        fs::write(dir.join(format!("{prefix}_{i:04}")), data).unwrap();
        n += 1;
    }
    n
}

/// Arrays pickled out-of-band with every codec and filter: the buffers are codec frames.
fn oob_compressed() -> Vec<Vec<u8>> {
    let walk = ndarray::Array1::from_shape_fn(3000, |i| ((i * 7919) % 13) as f64 - 6.0);
    let labels = ndarray::Array2::from_shape_fn((50, 40), |(i, j)| ((i + j) / 7 % 5) as i32);
    let mut out = Vec::new();
    for codec in [Codec::Lz4, Codec::Zstd { level: 1 }] {
        for filter in [Filter::None, Filter::Shuffle { elem_size: 0 }] {
            let opts = WriteOptions::builder()
                .compression(Compression::Fixed(codec, filter))
                .build()
                .unwrap();
            for p in [
                to_payload_with(&walk, &opts).unwrap(),
                to_payload_with(&labels, &opts).unwrap(),
            ] {
                let mut parts = vec![p.pickle.clone()];
                for b in &p.buffers {
                    parts.push(match b.frame_info() {
                        Some(info) => compressed_part(info, b.as_slice()),
                        None => b.as_slice().to_vec(),
                    });
                }
                out.push(join(&parts));
            }
        }
    }
    out
}

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).expect("usage: fuzz_seeds OUT_DIR"));
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let all: Vec<Vec<u8>> = mutate::seeds(&fixtures).iter().map(input).collect();
    let arrow: Vec<Vec<u8>> = ["arrow", "pyarrow"]
        .iter()
        .flat_map(|d| mutate::seeds(&fixtures.join(d)))
        .map(|s| input(&s))
        .collect();
    let mut read = all.clone();
    read.extend(mutate::compressed_seeds().iter().map(input));
    read.push(input(&mutate::view_seed()));
    read.extend(oob_compressed());
    let counts = [
        ("read", write_all(&out.join("read"), "seed", read.clone())),
        (
            "arrow_read",
            write_all(&out.join("arrow_read"), "seed", arrow),
        ),
        (
            "codec",
            write_all(&out.join("codec"), "seed", fuzz_input::codec_seeds()),
        ),
        ("convert", write_all(&out.join("convert"), "seed", read)),
    ];
    for (name, n) in counts {
        println!("{name}: {n} seeds");
    }
}
