//! Reader benchmarks.
//!
//! * `inband_100mb`: a 100 MB float32 numpy array pickled in-band the way numpy does it
//!   (protocol 4: `_reconstruct` + `BUILD` with `BINBYTES8` data; protocol 5:
//!   `_frombuffer(BYTEARRAY8 ...)`), read by `ndpickle::from_slice` (one copy of the data)
//!   and `ndpickle::from_bytes` (zero copies). serde-pickle cannot read numpy arrays, so it
//!   reads a pickle of a 100 MB `bytes` object (the same payload, protocol 4 `BINBYTES8`);
//!   ndpickle reads that same `bytes` pickle too, for a like-for-like line.
//! * `outofband`: `_frombuffer(NEXT_BUFFER ...)` with a 1 KiB and a 256 MiB buffer: O(1).
//! * `small_arrays`: a list of 10 000 arrays of 16 float64 each, pickled like numpy at
//!   protocol 5 in-band (memoised globals and dtype).
//!
//! `cargo bench -p ndpickle-benches --bench read`; the ratios are printed first, with a
//! reference: one `Bytes::copy_from_slice` of the payload into a fresh heap allocation (4 KiB
//! page faults included). ndpickle copies large payloads into huge-page mappings instead
//! (`alloc.rs`), which is why it beats that reference.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};

const MB100: usize = 100 * 1000 * 1000;

struct P(Vec<u8>);

impl P {
    fn new(proto: u8) -> P {
        P(vec![0x80, proto])
    }
    fn op(mut self, op: u8) -> P {
        self.0.push(op);
        self
    }
    fn str(mut self, s: &str) -> P {
        self.0.extend([0x8c, s.len() as u8]);
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    fn int(mut self, i: u32) -> P {
        self.0.push(b'J');
        self.0.extend((i as i32).to_le_bytes());
        self
    }
    fn big(mut self, op: u8, data: &[u8]) -> P {
        self.0.push(op);
        self.0.extend((data.len() as u64).to_le_bytes());
        self.0.extend_from_slice(data);
        self
    }
    fn global(self, m: &str, n: &str) -> P {
        self.str(m).str(n).op(0x93)
    }
    fn dtype_f(self, spec: &str) -> P {
        // numpy.dtype(spec, False, True) + BUILD (3, '<', None, None, None, -1, -1, 0)
        self.global("numpy", "dtype")
            .str(spec)
            .op(0x89)
            .op(0x88)
            .op(0x87)
            .op(b'R')
            .op(b'(')
            .int(3)
            .str("<")
            .op(b'N')
            .op(b'N')
            .op(b'N')
            .int(u32::MAX)
            .int(u32::MAX)
            .int(0)
            .op(b't')
            .op(b'b')
    }
    fn done(mut self) -> Vec<u8> {
        self.0.push(b'.');
        self.0
    }
}

fn numpy_p4(data: &[u8], n: u32) -> Vec<u8> {
    P::new(4)
        .global("numpy.core.multiarray", "_reconstruct")
        .global("numpy", "ndarray")
        .int(0)
        .op(0x85)
        .big(0x8e, b"b")
        .op(0x87)
        .op(b'R')
        .op(b'(')
        .int(1)
        .int(n)
        .op(0x85)
        .dtype_f("f4")
        .op(0x89)
        .big(0x8e, data)
        .op(b't')
        .op(b'b')
        .done()
}

fn numpy_p5(data: Option<&[u8]>, n: u32, spec: &str) -> Vec<u8> {
    let p = P::new(5)
        .global("numpy.core.numeric", "_frombuffer")
        .op(b'(');
    let p = match data {
        Some(d) => p.big(0x96, d),
        None => p.op(0x97),
    };
    p.dtype_f(spec)
        .int(n)
        .op(0x85)
        .str("C")
        .op(b't')
        .op(b'R')
        .done()
}

fn bytes_p4(data: &[u8]) -> Vec<u8> {
    P::new(4).big(0x8e, data).done()
}

fn small_arrays(count: usize) -> Vec<u8> {
    // [ _frombuffer(bytearray, dtype, (16,), 'C') ] * count, globals and dtype memoised.
    let elems: Vec<u8> = (0..16u32)
        .flat_map(|i| f64::from(i).to_le_bytes())
        .collect();
    let mut p = P::new(5).op(b']').op(0x94).op(b'(');
    p = p.global("numpy.core.numeric", "_frombuffer").op(0x94); // memo 1
    p = p.op(b'(').big(0x96, &elems).dtype_f("f8").op(0x94); // memo 2
    p = p.int(16).op(0x85).str("C").op(b't').op(b'R');
    for _ in 1..count {
        p = p.op(b'h').op(1).op(b'(').big(0x96, &elems).op(b'h').op(2);
        p = p.int(16).op(0x85).str("C").op(b't').op(b'R');
    }
    p.op(b'e').done()
}

fn best_of(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn report_ratios(payload: &[u8]) {
    let p4 = numpy_p4(payload, (MB100 / 4) as u32);
    let p5 = numpy_p5(Some(payload), (MB100 / 4) as u32, "f4");
    let raw = bytes_p4(payload);
    let serde = best_of(5, || {
        black_box(serde_pickle::value_from_slice(&raw, serde_pickle::DeOptions::new()).unwrap());
    });
    let ours_bytes = best_of(5, || {
        black_box(ndpickle::from_slice(&raw).unwrap());
    });
    let ours_p4 = best_of(5, || {
        black_box(ndpickle::from_slice(&p4).unwrap());
    });
    let ours_p5 = best_of(5, || {
        black_box(ndpickle::from_slice(&p5).unwrap());
    });
    let shared = Bytes::from(p5.clone());
    let ours_p5_shared = best_of(5, || {
        black_box(ndpickle::from_bytes(shared.clone()).unwrap());
    });
    let memcpy = best_of(5, || {
        black_box(Bytes::copy_from_slice(black_box(payload)));
    });
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let ratio = |d: Duration| serde.as_secs_f64() / d.as_secs_f64();
    println!("== in-band 100 MB (best of 5) ==");
    println!(
        "ref: copy_from_slice of 100 MB (heap, 4 KiB) {:8.2} ms  {:6.2}x serde-pickle",
        ms(memcpy),
        ratio(memcpy)
    );
    println!(
        "serde-pickle, 100 MB bytes pickle (p4)        {:8.2} ms",
        ms(serde)
    );
    println!(
        "ndpickle from_slice, same bytes pickle        {:8.2} ms  {:6.2}x serde-pickle",
        ms(ours_bytes),
        ratio(ours_bytes)
    );
    println!(
        "ndpickle from_slice, numpy float32 p4         {:8.2} ms  {:6.2}x serde-pickle",
        ms(ours_p4),
        ratio(ours_p4)
    );
    println!(
        "ndpickle from_slice, numpy float32 p5 in-band {:8.2} ms  {:6.2}x serde-pickle",
        ms(ours_p5),
        ratio(ours_p5)
    );
    println!(
        "ndpickle from_bytes, numpy float32 p5 in-band {:8.4} ms  {:6.0}x serde-pickle (zero-copy)",
        ms(ours_p5_shared),
        ratio(ours_p5_shared)
    );
}

fn benches(c: &mut Criterion) {
    let payload: Vec<u8> = (0..MB100).map(|i| (i * 31 % 251) as u8).collect();
    report_ratios(&payload);

    let mut g = c.benchmark_group("inband_100mb");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_millis(500));
    let n = (MB100 / 4) as u32;
    let p4 = numpy_p4(&payload, n);
    let p5 = numpy_p5(Some(&payload), n, "f4");
    let raw = bytes_p4(&payload);
    g.bench_function("ndpickle_numpy_f32_p4", |b| {
        b.iter(|| ndpickle::from_slice(black_box(&p4)).unwrap())
    });
    g.bench_function("ndpickle_numpy_f32_p5", |b| {
        b.iter(|| ndpickle::from_slice(black_box(&p5)).unwrap())
    });
    let shared = Bytes::from(p5.clone());
    g.bench_function("ndpickle_numpy_f32_p5_from_bytes", |b| {
        b.iter(|| ndpickle::from_bytes(shared.clone()).unwrap())
    });
    g.bench_function("ndpickle_bytes_p4", |b| {
        b.iter(|| ndpickle::from_slice(black_box(&raw)).unwrap())
    });
    g.bench_function("serde_pickle_bytes_p4", |b| {
        b.iter(|| {
            serde_pickle::value_from_slice(black_box(&raw), serde_pickle::DeOptions::new()).unwrap()
        })
    });
    g.finish();
    drop((p4, p5, raw, shared));

    let mut g = c.benchmark_group("outofband");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(300));
    let pickle = numpy_p5(None, 0, "f4");
    for (name, len) in [("1KiB", 1024usize), ("256MiB", 256 << 20)] {
        let buf = Bytes::from(vec![1u8; len]);
        let count = (len / 4) as u32;
        let pickle = numpy_p5(None, count, "f4");
        g.bench_function(name, |b| {
            b.iter(|| ndpickle::from_payload(black_box(&pickle), [buf.clone()]).unwrap())
        });
    }
    drop(pickle);
    g.finish();

    let mut g = c.benchmark_group("small_arrays");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    let many = small_arrays(10_000);
    assert_eq!(
        ndpickle::from_slice(&many).unwrap().as_seq().unwrap().len(),
        10_000
    );
    g.bench_function("10000_arrays_p5_inband", |b| {
        b.iter(|| ndpickle::from_slice(black_box(&many)).unwrap())
    });
    g.finish();
}

criterion_group!(read, benches);
criterion_main!(read);
