//! The wire decoder on valid OP_COMPRESSED frames (snappy, zlib, zstd, noop) around fuzzed payloads. The body lives in `monarch::fuzzing`, shared with the stable replay of the seeds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| monarch::fuzzing::wire_compressed(data));
