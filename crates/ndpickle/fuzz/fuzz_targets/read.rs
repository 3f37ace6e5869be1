//! Fuzzes the safe reader: any input must give a value or a clean error, never a panic,
//! abort, hang or unbounded allocation. The input is a pickle and out-of-band buffers (raw
//! or compressed) in the format of `tests/common/fuzz_input.rs`; every entry point
//! (`from_payload_with`, `from_bytes_payload_with`, opaque globals) runs on it and every
//! accessor on what loads.

#![no_main]

#[path = "../../tests/common/fuzz_input.rs"]
mod fuzz_input;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_input::check_read(data));
