//! `ndpickle`: the command line.
//!
//! - `ndpickle inspect FILE [BUFFER...]` reads a pickle with the safe reader (nothing is
//!   executed) and prints its structure: containers, arrays with dtype, shape, strides and
//!   whether they view out-of-band buffers.
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
use ndpickle::{DType, NdArray, ToPickle, Value, WriteOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(Path::new(args.get(1).map_or("demo-out", String::as_str))),
        Some("inspect") if args.len() >= 2 => inspect(&args[1], &args[2..]),
        _ => {
            eprintln!("usage: ndpickle demo [DIR] | ndpickle inspect FILE [BUFFER_FILE...]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ndpickle: {e}");
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
    let payload = ndpickle::to_payload(&value, &WriteOptions::default())?;
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

fn inspect(file: &str, buffers: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let pickle = Bytes::from(fs::read(file)?);
    let bufs = buffers
        .iter()
        .map(|b| fs::read(b).map(Bytes::from))
        .collect::<Result<Vec<_>, _>>()?;
    let value = if bufs.is_empty() {
        ndpickle::from_bytes(pickle.clone())?
    } else {
        ndpickle::from_bytes_payload_with(pickle.clone(), bufs, &ndpickle::ReadOptions::default())?
    };
    println!(
        "{file}: {} bytes, protocol {}",
        pickle.len(),
        pickle
            .get(1)
            .filter(|_| pickle.first() == Some(&0x80))
            .copied()
            .unwrap_or(0)
    );
    let mut out = String::new();
    describe(&value, 0, &mut out);
    print!("{out}");
    Ok(())
}

/// One line per node, indented by depth; long containers are cut after 20 items.
fn describe(v: &Value, depth: usize, out: &mut String) {
    use std::fmt::Write as _;
    let pad = "  ".repeat(depth);
    let items = |v: &[Value], out: &mut String| {
        for x in v.iter().take(20) {
            describe(x, depth + 1, out);
        }
        if v.len() > 20 {
            let _ = writeln!(out, "{pad}  ... {} more", v.len() - 20);
        }
    };
    match v {
        Value::Array(a) | Value::Scalar(a) => {
            let _ = writeln!(
                out,
                "{pad}{} dtype={} shape={:?} strides={:?} {} bytes{}",
                v.type_name(),
                a.dtype(),
                a.shape(),
                a.strides(),
                a.len() * a.dtype().itemsize(),
                if a.is_readonly() { " read-only" } else { "" }
            );
        }
        Value::List(x) | Value::Tuple(x) | Value::Set(x) | Value::FrozenSet(x) => {
            let _ = writeln!(out, "{pad}{} of {}", v.type_name(), x.len());
            items(x, out);
        }
        Value::Dict(kv) => {
            let _ = writeln!(out, "{pad}dict of {}", kv.len());
            for (k, x) in kv.iter().take(20) {
                let key = match k {
                    Value::Str(s) => format!("{s:?}"),
                    other => format!("<{}>", other.type_name()),
                };
                let _ = writeln!(out, "{pad}  {key}:");
                describe(x, depth + 2, out);
            }
        }
        Value::Object(o) => {
            let _ = writeln!(out, "{pad}{}(...) with {} args", o.callable, o.args.len());
            items(&o.args, out);
        }
        Value::Str(s) => {
            let _ = writeln!(out, "{pad}str {:?}", s.chars().take(60).collect::<String>());
        }
        Value::Bytes(b) | Value::ByteArray(b) => {
            let _ = writeln!(out, "{pad}{} of {} bytes", v.type_name(), b.len());
        }
        other => {
            let _ = writeln!(out, "{pad}{other:?}");
        }
    }
}
