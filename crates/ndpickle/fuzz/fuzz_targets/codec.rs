//! Fuzzes the codec decoders: frame headers, lz4 and zstd blocks, shuffled and split blocks,
//! plain frames, the shuffle itself, and chunked in-band chains read by the reader. What
//! decodes must have exactly the promised length, within the limit given; nothing panics.
//! The modes are described at `check_codec` in `tests/common/fuzz_input.rs`.

#![no_main]

#[path = "../../tests/common/fuzz_input.rs"]
mod fuzz_input;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_input::check_codec(data));
