//! The aggregation pipeline runner on arbitrary stages and documents. The body lives in `monarch::fuzzing`, shared with the stable replay of the seeds.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use monarch::fuzzing::Harness;

/// One server per fuzzing process, its storage in a temporary directory kept for the
/// process's life (libFuzzer ends the process without running destructors).
static HARNESS: LazyLock<Harness> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}")).keep();
    Harness::open(&dir).unwrap_or_else(|e| panic!("harness: {e}"))
});

fuzz_target!(|data: &[u8]| monarch::fuzzing::pipeline(&HARNESS, data));
