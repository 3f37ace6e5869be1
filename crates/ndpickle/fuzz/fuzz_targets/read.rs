//! Fuzzes the safe reader: any input must give a value or a clean error, never a panic,
//! abort, hang or unbounded allocation. The input is split into a pickle and up to three
//! out-of-band buffers so that NEXT_BUFFER paths are reached too.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = ndpickle::ReadOptions::builder()
        .max_alloc_bytes(64 << 20)
        .max_copied_bytes(16 << 20)
        .build()
        .unwrap();
    // Pickle, then buffers separated by the marker 0xff 0xfe 0xfd.
    let mut parts = data.split(|&b| b == 0xfd);
    let pickle = parts.next().unwrap_or_default();
    let buffers: Vec<Bytes> = parts.take(3).map(Bytes::copy_from_slice).collect();
    let _ = ndpickle::from_payload_with(pickle, buffers.clone(), &opts);
    let _ = ndpickle::from_bytes_payload_with(Bytes::copy_from_slice(pickle), buffers, &opts);
    let opaque = ndpickle::ReadOptions::builder()
        .opaque_globals(true)
        .max_alloc_bytes(64 << 20)
        .max_copied_bytes(16 << 20)
        .build()
        .unwrap();
    if let Ok(v) = ndpickle::from_slice_with(pickle, &opaque) {
        if let Some(a) = v.as_array() {
            let _ = a.to_owned_array::<f64>();
            let _ = a.to_owned_array::<u8>();
        }
    }
});
