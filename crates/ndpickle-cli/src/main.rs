//! `ndpickle`: the command line.
//!
//! - `ndpickle inspect FILE [BUFFER_FILE...] [--depth N] [--max-items N] [--json]` reads a
//!   pickle with the safe reader (nothing is executed; unknown globals are shown, not
//!   called) and prints its structure ([`ndpickle::inspect`]): containers, arrays with dtype,
//!   shape, strides, bytes and where their data lives, scalars as Python prints them.
//! - `ndpickle verify FILE [BUFFER_FILE...]`: whether the safe reader accepts the pickle
//!   (unknown globals refused); prints the first refusal.
//! - `ndpickle demo DIR` builds a small scientific dataset in Rust and writes it twice: in-band
//!   to `DIR/dataset.pkl` (streamed) and out-of-band to `DIR/dataset.oob.pkl` plus one
//!   `DIR/dataset.buf.N` file per buffer. `examples/demo_load.py DIR` loads both with plain
//!   `pickle` + numpy.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use bytes::Bytes;
use ndarray::{Array1, Array2, Axis, s};
use ndpickle::inspect::Sources;
use ndpickle::{DType, NdArray, ToPickle, Value};

const USAGE: &str = "\
usage: ndpickle inspect FILE [BUFFER_FILE...] [--depth N] [--max-items N] [--json]
       ndpickle verify FILE [BUFFER_FILE...]
       ndpickle demo [DIR]

  inspect  show what a pickle holds, read safely (nothing is executed)
  verify   say whether the safe reader accepts a pickle; print the first refusal
  demo     write the demo dataset (in-band and out-of-band) to DIR (default demo-out)

exit status: 0 ok, 1 refused, corrupt or unreadable, 2 usage error";

/// A failed command: the message, and whether it was a usage error (exit status 2).
enum Failure {
    Usage(String),
    Refused(String),
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::Refused(e.to_string())
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return if args.is_empty() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let result = match args[0].as_str() {
        "demo" => {
            demo(Path::new(args.get(1).map_or("demo-out", String::as_str))).map_err(Failure::from)
        }
        "inspect" => inspect(&args[1..]),
        "verify" => verify(&args[1..]),
        other => Err(Failure::Usage(format!("unknown command {other:?}"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("ndpickle: {msg}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Refused(msg)) => {
            eprintln!("ndpickle: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// The demo dataset: a gridded temperature field with coordinates, a time axis, a mask, a
/// sub-sampled view, a broadcast and metadata.
struct Dataset {
    temperature: Array2<f32>,
    lat: Array1<f64>,
    lon: Array1<f64>,
    time: NdArray,
    land_mask: Array2<bool>,
    station_ids: Array1<i32>,
}

fn build_dataset() -> Dataset {
    let (ny, nx) = (720, 1440);
    let lat: Array1<f64> = Array1::linspace(-89.875, 89.875, ny);
    let lon: Array1<f64> = Array1::linspace(-179.875, 179.875, nx);
    let temperature = Array2::from_shape_fn((ny, nx), |(i, j)| {
        let (la, lo) = (lat[i].to_radians(), lon[j].to_radians());
        (288.0 + 30.0 * la.cos() - 20.0 * la.sin().powi(2) + 3.0 * (3.0 * lo).sin() * la.cos())
            as f32
    });
    let land_mask = Array2::from_shape_fn((ny, nx), |(i, j)| ((i / 40) + (j / 60)) % 3 == 0);
    let station_ids = Array1::from_shape_fn(500, |k| 10_000 + 7 * k as i32);
    // datetime64[s]: one timestamp per hour of a day, from 2026-01-01T00:00:00.
    let secs: Vec<u8> = (0..24i64)
        .flat_map(|h| (1_767_225_600 + 3600 * h).to_le_bytes())
        .collect();
    let time = NdArray::from_c_bytes(
        DType::parse("<M8[s]").expect("dtype"),
        vec![24],
        Bytes::from(secs),
    )
    .expect("valid time axis");
    Dataset {
        temperature,
        lat,
        lon,
        time,
        land_mask,
        station_ids,
    }
}

/// The value written: a dict of arrays (some of them views) plus metadata.
fn dataset_value<'a>(
    d: &'a Dataset,
    coarse: &'a ndarray::ArrayView2<'a, f32>,
    lat2d: &'a ndarray::ArrayView2<'a, f64>,
) -> Vec<(&'static str, Box<dyn ToPickle + 'a>)> {
    vec![
        ("temperature", Box::new(d.temperature.view())),
        ("temperature_coarse", Box::new(coarse.view())),
        ("lat", Box::new(d.lat.view())),
        ("lon", Box::new(d.lon.view())),
        ("lat_2d", Box::new(lat2d.view())),
        ("time", Box::new(&d.time)),
        ("land_mask", Box::new(d.land_mask.view())),
        (
            "station_ids_reversed",
            Box::new(d.station_ids.slice(s![..;-1])),
        ),
        ("units", Box::new("K")),
        (
            "source",
            Box::new("ndpickle demo: synthetic 0.25 degree temperature field"),
        ),
        ("version", Box::new(3i64)),
        (
            "attrs",
            Box::new(Value::Dict(vec![
                (Value::from("created_by"), Value::from("ndpickle-cli")),
                (
                    Value::from("grid"),
                    Value::Tuple(vec![Value::Int(720), Value::Int(1440)]),
                ),
            ])),
        ),
    ]
}

/// A list of key/value pairs written as a Python dict.
struct PairDict<'a>(Vec<(&'static str, Box<dyn ToPickle + 'a>)>);

impl ToPickle for PairDict<'_> {
    fn to_pickle<'b>(
        &'b self,
        enc: &mut ndpickle::write::Encoder<'b, '_>,
    ) -> Result<(), ndpickle::EncodeError> {
        enc.dict(self.0.iter(), &mut |enc, (k, v)| {
            enc.str(k)?;
            v.to_pickle(enc)
        })
    }
}

fn demo(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    fs::create_dir_all(dir)?;
    let d = build_dataset();
    // A 4x coarser sub-sample (a strided view) and a latitude field broadcast over longitude.
    let coarse = d.temperature.slice(s![..;4, ..;4]);
    let lat2d = d.lat.view().insert_axis(Axis(1));
    let lat2d = lat2d
        .broadcast((d.lat.len(), d.lon.len()))
        .ok_or("broadcast")?;
    let value = PairDict(dataset_value(&d, &coarse, &lat2d));

    let t = Instant::now();
    let inband_path = dir.join("dataset.pkl");
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&inband_path)?);
    ndpickle::to_writer(&mut w, &value)?;
    drop(w);
    let inband_time = t.elapsed();
    let inband_len = fs::metadata(&inband_path)?.len();

    let t = Instant::now();
    let payload = ndpickle::to_payload(&value)?;
    let payload_time = t.elapsed();
    fs::write(dir.join("dataset.oob.pkl"), &payload.pickle)?;
    let mut copied = 0usize;
    let mut borrowed = 0usize;
    for (i, b) in payload.buffers.iter().enumerate() {
        fs::write(buffer_path(dir, i), &b[..])?;
        if b.is_borrowed() {
            borrowed += b.len();
        } else {
            copied += b.len();
        }
    }

    let logical: usize = [
        d.temperature.len() * 4,
        coarse.len() * 4,
        d.lat.len() * 8,
        d.lon.len() * 8,
        lat2d.len() * 8,
        24 * 8,
        d.land_mask.len(),
        d.station_ids.len() * 4,
    ]
    .iter()
    .sum();
    println!(
        "ndpickle demo: Rust wrote a {} MB dataset (12 entries, 8 arrays)",
        mb(logical)
    );
    println!(
        "  in-band   {} : {} MB, streamed in {:.1} ms",
        inband_path.display(),
        mb(inband_len as usize),
        inband_time.as_secs_f64() * 1e3
    );
    println!(
        "  out-of-band {} + {} buffer files: pickle {} bytes, buffers {} MB, built in {:.3} ms",
        dir.join("dataset.oob.pkl").display(),
        payload.buffers.len(),
        payload.pickle.len(),
        mb(borrowed + copied),
        payload_time.as_secs_f64() * 1e3
    );
    println!(
        "  buffers borrowed from Rust memory (zero copies): {} MB; packed copies: {} bytes",
        mb(borrowed),
        copied
    );
    println!(
        "  the {}x{} latitude broadcast travels as its {} source values; the [::4, ::4] view is packed once ({} bytes)",
        lat2d.nrows(),
        lat2d.ncols(),
        d.lat.len(),
        coarse.len() * 4
    );
    Ok(())
}

fn buffer_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("dataset.buf.{i}"))
}

fn mb(n: usize) -> String {
    format!("{:.1}", n as f64 / 1e6)
}

/// The options of `inspect`/`verify`: files, then flags.
struct Args {
    file: String,
    buffers: Vec<String>,
    options: ndpickle::inspect::InspectOptions,
    json: bool,
}

fn parse(args: &[String], flags: bool) -> Result<Args, Failure> {
    let mut files = Vec::new();
    let mut options = ndpickle::inspect::InspectOptions::default();
    let mut json = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut number = |name: &str| -> Result<usize, Failure> {
            let v = it
                .next()
                .ok_or_else(|| Failure::Usage(format!("{name} needs a number")))?;
            v.parse()
                .map_err(|_| Failure::Usage(format!("{name} needs a number, not {v:?}")))
        };
        match a.as_str() {
            "--depth" if flags => options.depth = number("--depth")?,
            "--max-items" if flags => options.max_items = number("--max-items")?,
            "--json" if flags => json = true,
            flag if flag.starts_with("--") => {
                return Err(Failure::Usage(format!("unknown option {flag}")));
            }
            file => files.push(file.to_string()),
        }
    }
    if files.is_empty() {
        return Err(Failure::Usage("no FILE given".into()));
    }
    let file = files.remove(0);
    Ok(Args {
        file,
        buffers: files,
        options,
        json,
    })
}

/// Reads `path`, naming it in the error.
fn read(path: &str) -> Result<Bytes, Failure> {
    fs::read(path)
        .map(Bytes::from)
        .map_err(|e| Failure::Refused(format!("cannot read {path}: {e}")))
}

/// Reads the pickle and its buffer files with the safe reader.
fn load(args: &Args, opaque: bool) -> Result<(Bytes, Vec<Bytes>, Value, Sources), Failure> {
    let pickle = read(&args.file)?;
    let bufs = args
        .buffers
        .iter()
        .map(|b| read(b))
        .collect::<Result<Vec<_>, _>>()?;
    let options = ndpickle::ReadOptions::builder()
        .opaque_globals(opaque)
        .build()
        .map_err(|e| Failure::Refused(e.to_string()))?;
    let inputs = bufs
        .iter()
        .cloned()
        .map(ndpickle::InBuffer::raw)
        .collect::<Vec<_>>();
    match ndpickle::inspect::read(pickle.clone(), inputs, &options) {
        Ok((v, sources)) => Ok((pickle, bufs, v, sources)),
        Err(e) => {
            let hint = if matches!(e.kind, ndpickle::DecodeErrorKind::MissingBuffer) {
                "\n  hint: this pickle has out-of-band buffers: give their files after it, in order"
            } else {
                ""
            };
            Err(Failure::Refused(format!("{}: {e}{hint}", args.file)))
        }
    }
}

fn inspect(args: &[String]) -> Result<(), Failure> {
    let args = parse(args, true)?;
    let (pickle, bufs, value, sources) = load(&args, true)?;
    if args.json {
        print!(
            "{}",
            ndpickle::inspect::json(&value, &sources, &args.options)
        );
        return Ok(());
    }
    let protocol = match pickle.first() {
        Some(0x80) => pickle.get(1).copied().unwrap_or(0),
        _ => 0,
    };
    println!(
        "{}: {} bytes, protocol {protocol}, {} out-of-band buffer file(s)",
        args.file,
        pickle.len(),
        bufs.len()
    );
    print!(
        "{}",
        ndpickle::inspect::text(&value, &sources, &args.options)
    );
    Ok(())
}

fn verify(args: &[String]) -> Result<(), Failure> {
    let args = parse(args, false)?;
    let (_, _, value, _) = load(&args, false)?;
    println!("{}: accepted ({})", args.file, value.type_name());
    Ok(())
}
