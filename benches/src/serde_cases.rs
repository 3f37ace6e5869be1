//! The structs and timings shared by the serde bench (`benches/serde.rs`) and its table
//! (`src/bin/serde_table.rs`): ndpickle's serde support against serde-pickle on the same
//! values.
//!
//! * `Records`: 20 000 small records (ints, floats, strings, a list, a map, an enum, an
//!   option): no arrays, so both libraries write and read the same Python objects.
//! * `WithArray`: metadata and a 64 MiB float32 array. ndpickle writes a numpy array
//!   (`#[serde(with = "ndpickle::serde::array")]`); serde-pickle has no arrays and writes the
//!   same data as a `list` of 16 Mi floats (`ListArray`).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use ndarray::{ArcArray1, Array1};
use serde::{Deserialize, Serialize};

/// An externally tagged enum.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum Kind {
    /// A unit variant.
    Plain,
    /// A struct variant.
    Scaled {
        /// A factor.
        factor: f64,
    },
}

/// One small record.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Record {
    /// An id.
    pub id: u64,
    /// A name.
    pub name: String,
    /// A score.
    pub score: f64,
    /// Whether it is active.
    pub active: bool,
    /// Tags.
    pub tags: Vec<String>,
    /// Counters.
    pub counts: BTreeMap<String, i64>,
    /// A kind.
    pub kind: Kind,
    /// An optional parent.
    pub parent: Option<u32>,
}

/// Many records.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Records {
    /// The records.
    pub records: Vec<Record>,
}

/// `n` deterministic records.
pub fn records(n: usize) -> Records {
    Records {
        records: (0..n)
            .map(|i| Record {
                id: i as u64 * 7919,
                name: format!("record-{i}"),
                score: i as f64 * 0.125,
                active: i % 3 == 0,
                tags: (0..i % 4).map(|t| format!("t{t}")).collect(),
                counts: (0..i % 3)
                    .map(|c| (format!("c{c}"), (i * c) as i64))
                    .collect(),
                kind: if i % 2 == 0 {
                    Kind::Plain
                } else {
                    Kind::Scaled { factor: i as f64 }
                },
                parent: (i % 5 != 0).then_some(i as u32 / 2),
            })
            .collect(),
    }
}

/// Elements of the array: 64 MiB of float32.
pub const ARRAY_LEN: usize = 16 << 20;

/// Metadata and a numpy array (an owned array).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct WithArray {
    /// A name.
    pub name: String,
    /// A step.
    pub step: u64,
    /// The data.
    #[serde(with = "ndpickle::serde::array")]
    pub data: Array1<f32>,
}

/// The same struct with a shared (`ArcArray`) array: `to_payload` shares its memory.
#[derive(Serialize, Debug, Clone)]
pub struct WithArcArray {
    /// A name.
    pub name: String,
    /// A step.
    pub step: u64,
    /// The data.
    #[serde(with = "ndpickle::serde::array")]
    pub data: ArcArray1<f32>,
}

/// The same struct read with an [`ndpickle::NdArray`] field: from a payload, a view of the
/// out-of-band buffer.
#[derive(Deserialize, Debug)]
pub struct WithNdArray {
    /// A name.
    pub name: String,
    /// A step.
    pub step: u64,
    /// The data.
    #[serde(with = "ndpickle::serde::array")]
    pub data: ndpickle::NdArray,
}

/// The same data as serde-pickle can write it: a list of floats.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ListArray {
    /// A name.
    pub name: String,
    /// A step.
    pub step: u64,
    /// The data.
    pub data: Vec<f32>,
}

/// `len` deterministic floats.
pub fn floats(len: usize) -> Vec<f32> {
    (0..len).map(|i| (i % 1000) as f32 * 0.5).collect()
}

/// Best of `runs` timings of `f`.
pub fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// Best of `runs` timings of `a` and of `b`, timed alternately: each run of one follows a run
/// of the other, so both meet the allocator in the state the other left.
pub fn best_of_alternating<T, U>(
    runs: usize,
    mut a: impl FnMut() -> T,
    mut b: impl FnMut() -> U,
) -> (Duration, Duration) {
    let (mut best_a, mut best_b) = (Duration::MAX, Duration::MAX);
    for _ in 0..runs {
        best_a = best_a.min(best_of(1, &mut a));
        best_b = best_b.min(best_of(1, &mut b));
    }
    (best_a, best_b)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn ratio(peer: Duration, ours: Duration) -> f64 {
    peer.as_secs_f64() / ours.as_secs_f64()
}

/// Runs the comparisons `only` names (`records`, `array`, `payload`; all when `None`) and
/// prints the table, best of `runs` per line.
pub fn print_table(runs: usize, only: Option<&str>) {
    let all = only.is_none();
    if all || only == Some("records") {
        print_records(runs);
    }
    if all || only == Some("array") {
        print_array(runs);
    }
    if all || only == Some("payload") {
        print_payload(runs);
    }
}

fn print_records(runs: usize) {
    let sp_ser = serde_pickle::SerOptions::new;
    let sp_de = serde_pickle::DeOptions::new;

    let recs = records(20_000);
    let ours_bytes = ndpickle::serde::to_vec(&recs).unwrap();
    let peer_bytes = serde_pickle::to_vec(&recs, sp_ser()).unwrap();
    let w_peer = best_of(runs, || serde_pickle::to_vec(&recs, sp_ser()).unwrap());
    let w_ours = best_of(runs, || ndpickle::serde::to_vec(&recs).unwrap());
    let (w_peer_alt, w_ours_alt) = best_of_alternating(
        runs,
        || serde_pickle::to_vec(&recs, sp_ser()).unwrap(),
        || ndpickle::serde::to_vec(&recs).unwrap(),
    );
    let r_peer = best_of(runs, || {
        serde_pickle::from_slice::<Records>(&peer_bytes, sp_de()).unwrap()
    });
    let r_ours = best_of(runs, || {
        ndpickle::serde::from_slice::<Records>(&ours_bytes).unwrap()
    });
    let r_ours_peer_bytes = best_of(runs, || {
        ndpickle::serde::from_slice::<Records>(&peer_bytes).unwrap()
    });
    assert_eq!(
        ndpickle::serde::from_slice::<Records>(&peer_bytes).unwrap(),
        recs
    );
    println!("== 20 000 records, no arrays (best of {runs}) ==");
    println!(
        "write  serde-pickle {:8.2} ms  ndpickle {:8.2} ms  {:6.2}x  ({} vs {} bytes)",
        ms(w_peer),
        ms(w_ours),
        ratio(w_peer, w_ours),
        peer_bytes.len(),
        ours_bytes.len()
    );
    println!(
        "write  serde-pickle {:8.2} ms  ndpickle {:8.2} ms  {:6.2}x  (timed alternately)",
        ms(w_peer_alt),
        ms(w_ours_alt),
        ratio(w_peer_alt, w_ours_alt),
    );
    println!(
        "read   serde-pickle {:8.2} ms  ndpickle {:8.2} ms  {:6.2}x  (each its own bytes)",
        ms(r_peer),
        ms(r_ours),
        ratio(r_peer, r_ours)
    );
    println!(
        "read   serde-pickle {:8.2} ms  ndpickle {:8.2} ms  {:6.2}x  (both serde-pickle's bytes)",
        ms(r_peer),
        ms(r_ours_peer_bytes),
        ratio(r_peer, r_ours_peer_bytes)
    );
}

fn print_array(runs: usize) {
    let sp_ser = serde_pickle::SerOptions::new;
    let sp_de = serde_pickle::DeOptions::new;
    let data = floats(ARRAY_LEN);
    let list = ListArray {
        name: "weights".into(),
        step: 7,
        data: data.clone(),
    };
    let arr = WithArray {
        name: "weights".into(),
        step: 7,
        data: Array1::from_vec(data),
    };
    let arc = WithArcArray {
        name: arr.name.clone(),
        step: arr.step,
        data: arr.data.to_shared(),
    };
    let opts = ndpickle::WriteOptions::default();
    let runs_big = runs.min(3);
    let w_peer = best_of(runs_big, || serde_pickle::to_vec(&list, sp_ser()).unwrap());
    let w_ours = best_of(runs_big, || ndpickle::serde::to_vec(&arr).unwrap());
    let p_owned = best_of(runs_big, || {
        ndpickle::serde::to_payload_with(&arr, &opts).unwrap()
    });
    let p_arc = best_of(runs_big, || {
        ndpickle::serde::to_payload_with(&arc, &opts).unwrap()
    });
    let peer_bytes = serde_pickle::to_vec(&list, sp_ser()).unwrap();
    let ours_bytes = ndpickle::serde::to_vec(&arr).unwrap();
    let r_peer = best_of(runs_big, || {
        serde_pickle::from_slice::<ListArray>(&peer_bytes, sp_de()).unwrap()
    });
    let r_ours = best_of(runs_big, || {
        ndpickle::serde::from_slice::<WithArray>(&ours_bytes).unwrap()
    });
    assert_eq!(
        ndpickle::serde::from_slice::<WithArray>(&ours_bytes).unwrap(),
        arr
    );
    // A payload as a receiver holds it: the pickle and its buffers in memory of their own.
    let payload = ndpickle::serde::to_payload_with(&arc, &opts).unwrap();
    let pickle = payload.pickle.clone();
    let buffers: Vec<bytes::Bytes> = payload
        .buffers
        .into_iter()
        .map(|b| bytes::Bytes::from(b.into_vec()))
        .collect();
    let fp_view = best_of(runs_big, || {
        ndpickle::serde::from_payload::<WithNdArray, _>(&pickle, buffers.clone()).unwrap()
    });
    let fp_owned = best_of(runs_big, || {
        ndpickle::serde::from_payload::<WithArray, _>(&pickle, buffers.clone()).unwrap()
    });
    let view = ndpickle::serde::from_payload::<WithNdArray, _>(&pickle, buffers.clone()).unwrap();
    assert_eq!(
        view.data.data().as_ptr(),
        buffers[0].as_ptr(),
        "a view of the buffer"
    );
    assert_eq!(
        ndpickle::serde::from_payload::<WithArray, _>(&pickle, buffers.clone()).unwrap(),
        arr
    );
    println!("== a struct with a 64 MiB float32 array (best of {runs_big}) ==");
    println!(
        "write  serde-pickle (list) {:9.2} ms  ndpickle to_vec {:8.2} ms  {:7.1}x  ({} vs {} bytes)",
        ms(w_peer),
        ms(w_ours),
        ratio(w_peer, w_ours),
        peer_bytes.len(),
        ours_bytes.len()
    );
    println!(
        "read   serde-pickle (list) {:9.2} ms  ndpickle from_slice {:8.2} ms  {:7.1}x",
        ms(r_peer),
        ms(r_ours),
        ratio(r_peer, r_ours)
    );
    println!(
        "write  serde-pickle (list) {:9.2} ms  ndpickle to_payload, ArcArray {:8.4} ms  {:7.0}x (zero-copy)",
        ms(w_peer),
        ms(p_arc),
        ratio(w_peer, p_arc)
    );
    println!(
        "write  serde-pickle (list) {:9.2} ms  ndpickle to_payload, owned Array {:8.2} ms  {:7.1}x (one copy)",
        ms(w_peer),
        ms(p_owned),
        ratio(w_peer, p_owned)
    );
    println!(
        "read   serde-pickle (list) {:9.2} ms  ndpickle from_payload, NdArray {:8.4} ms  {:7.0}x (zero-copy)",
        ms(r_peer),
        ms(fp_view),
        ratio(r_peer, fp_view)
    );
    println!(
        "read   serde-pickle (list) {:9.2} ms  ndpickle from_payload, owned Array {:8.2} ms  {:7.1}x (one copy)",
        ms(r_peer),
        ms(fp_owned),
        ratio(r_peer, fp_owned)
    );
}

fn print_payload(runs: usize) {
    let opts = ndpickle::WriteOptions::default();
    println!("== to_payload of the ArcArray struct by array size (best of {runs}) ==");
    for (label, len) in [
        ("4 KiB", 1usize << 10),
        ("1 MiB", 1 << 18),
        ("64 MiB", ARRAY_LEN),
    ] {
        let s = WithArcArray {
            name: "w".into(),
            step: 1,
            data: ArcArray1::from_elem(len, 1.0f32),
        };
        let t = best_of(runs, || {
            ndpickle::serde::to_payload_with(&s, &opts).unwrap()
        });
        println!("to_payload {label:>7}  {:8.4} ms", ms(t));
    }
}
