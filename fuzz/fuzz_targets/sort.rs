//! The sort parser and comparator, checked for antisymmetry. The body lives in `monarch::fuzzing`, shared with the stable replay of the seeds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| monarch::fuzzing::sort(data));
