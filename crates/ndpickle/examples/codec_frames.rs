//! Writes codec frames for the cross-language test `tests/test_codec_frames.py`, and checks
//! frames written by python-lz4 / zstandard.
//!
//! `codec_frames write DIR`: for each case NAME writes `NAME.raw` (the data), `NAME.frame` (our
//! frame) and `NAME.hdr` (its `FrameInfo` header).
//! `codec_frames check DIR`: decodes every `DIR/py_*.lz4` / `DIR/py_*.zst` with
//! `FrameInfo::from_plain_frame` and compares with the matching `.raw`.

use std::path::Path;

use ndpickle::codec::{
    Codec, CodecOptions, Compression, Filter, FrameInfo, Scratch, compress, decompress,
};

fn data(len: usize) -> Vec<u8> {
    (0..len / 8)
        .flat_map(|i| (100.0 + (i as f64 * 1e-3).sin()).to_le_bytes())
        .chain((0..len % 8).map(|i| i as u8))
        .collect()
}

fn write(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let blocks = CodecOptions::builder()
        .block_size(64 << 10)
        .threads(2)
        .build()?;
    let single = CodecOptions::builder().single_block().build()?;
    let cases = [
        ("lz4_plain", Codec::Lz4, Filter::None, 100_003),
        ("lz4_empty", Codec::Lz4, Filter::None, 0),
        (
            "zstd_plain",
            Codec::Zstd { level: 3 },
            Filter::None,
            100_003,
        ),
        ("zstd_empty", Codec::Zstd { level: 1 }, Filter::None, 0),
        (
            "lz4_shuffle8_blocks",
            Codec::Lz4,
            Filter::Shuffle { elem_size: 8 },
            300_005,
        ),
        (
            "zstd_shuffle4_blocks",
            Codec::Zstd { level: 1 },
            Filter::Shuffle { elem_size: 4 },
            300_001,
        ),
        ("lz4_blocks", Codec::Lz4, Filter::None, 200_000),
    ];
    for (name, codec, filter, len) in cases {
        let raw = data(len);
        let plain = name.ends_with("_plain") || name.ends_with("_empty");
        let mut scratch = Scratch::with_options(if plain { single } else { blocks });
        let c = compress(&raw, &Compression::Fixed(codec, filter), &mut scratch)?;
        assert_eq!(c.info().is_plain(), plain);
        assert_eq!(decompress(c.bytes(), c.info(), raw.len())?, raw);
        std::fs::write(dir.join(format!("{name}.raw")), &raw)?;
        std::fs::write(dir.join(format!("{name}.frame")), c.bytes())?;
        std::fs::write(dir.join(format!("{name}.hdr")), c.info().to_bytes())?;
    }
    Ok(())
}

fn check(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let mut n = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let codec = match path.extension().and_then(|e| e.to_str()) {
            Some("lz4") => Codec::Lz4,
            Some("zst") => Codec::Zstd { level: 0 },
            _ => continue,
        };
        let frame = std::fs::read(&path)?;
        let raw = std::fs::read(path.with_extension("raw"))?;
        let info = FrameInfo::from_plain_frame(codec, &frame)?;
        let out = decompress(&frame, &info, raw.len())?;
        if out != raw {
            return Err(format!("{} decodes to different bytes", path.display()).into());
        }
        n += 1;
    }
    println!("checked {n} frames");
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("write"), Some(dir)) => write(Path::new(dir)),
        (Some("check"), Some(dir)) => check(Path::new(dir)),
        _ => Err("usage: codec_frames write|check DIR".into()),
    }
}
