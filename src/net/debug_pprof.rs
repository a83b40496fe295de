//! `/debug/pprof/profile` and `/debug/pprof/heap`: where the server's CPU time and memory go,
//! in the forms profilers read.
//!
//! The CPU profile samples every thread 99 times a second (SIGPROF through the `pprof` crate)
//! for `?seconds=N` (default 30, at most 300) and answers in pprof's gzipped protobuf
//! (`go tool pprof`), or as a flame graph in SVG with `?format=svg` (drawn by
//! [`super::flame_graph`]). One runs at a time: the sampler is process-wide.
//!
//! The heap profile is jemalloc's own: the allocator is built with its profiler and started
//! with it on (`.cargo/config.toml` sets `prof:true,prof_active:true,lg_prof_sample:19`), so
//! about one allocation per 512 KiB allocated keeps its stack, and a dump lists the live ones
//! (jemalloc's `heap_v2` format, read by `jeprof` with the binary).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_DISPOSITION, HeaderValue};
use hyper::{Response, StatusCode};

use super::http::{query_param, response};

/// Samples per second: not a multiple of common timer periods, as Go's profiler chooses too.
const FREQUENCY: i32 = 99;
/// A profile's length when `?seconds=` does not say, and the longest one.
const DEFAULT_SECONDS: u64 = 30;
const MAX_SECONDS: u64 = 300;

/// Set while a CPU profile runs.
static CPU_PROFILE_RUNNING: AtomicBool = AtomicBool::new(false);

/// What a profile request could not do, and the HTTP status that says so.
#[derive(Debug)]
pub struct ProfileError {
    /// 400 for a bad request, 409 when a CPU profile already runs, 501 when the allocator has
    /// no profiler, 500 otherwise.
    pub status: StatusCode,
    /// Why.
    pub reason: String,
}

impl ProfileError {
    fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self { status, reason: reason.into() }
    }

    /// A 500: `what` failed because of `error`.
    fn internal(what: &str, error: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{what}: {error}"))
    }
}

/// How a CPU profile is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// pprof's protobuf, gzipped.
    Protobuf,
    /// A flame graph in SVG.
    FlameGraph,
}

/// `GET /debug/pprof/profile?seconds=N[&format=svg]`.
///
/// # Errors
/// A [`ProfileError`] for a bad request, a profile already running, or a sampler that failed.
pub async fn cpu_profile(query: Option<&str>) -> Result<Response<Full<Bytes>>, ProfileError> {
    let seconds = match query_param(query, "seconds") {
        None => DEFAULT_SECONDS,
        Some(text) => text.parse::<u64>().ok().filter(|s| (1..=MAX_SECONDS).contains(s)).ok_or_else(|| {
            ProfileError::new(StatusCode::BAD_REQUEST, format!("seconds must be from 1 to {MAX_SECONDS}, not {text}"))
        })?,
    };
    let format = match query_param(query, "format") {
        None | Some("pb" | "proto") => Format::Protobuf,
        Some("svg" | "flamegraph") => Format::FlameGraph,
        Some(other) => {
            return Err(ProfileError::new(StatusCode::BAD_REQUEST, format!("format must be pb or svg, not {other}")));
        }
    };
    if CPU_PROFILE_RUNNING.swap(true, Ordering::AcqRel) {
        return Err(ProfileError::new(
            StatusCode::CONFLICT,
            "a CPU profile is already running; try again when it ends",
        ));
    }
    // The sampler's guard stays on one thread for its whole life, which sleeps through the
    // profile and then symbolizes every sampled frame (CPU-heavy): neither holds a runtime
    // worker or a blocking-pool thread.
    let (done, answer) = tokio::sync::oneshot::channel();
    let started = std::thread::Builder::new().name("cpu-profile".into()).spawn(move || {
        let profile = record(Duration::from_secs(seconds), format);
        CPU_PROFILE_RUNNING.store(false, Ordering::Release);
        let _ = done.send(profile);
    });
    if let Err(error) = started {
        CPU_PROFILE_RUNNING.store(false, Ordering::Release);
        return Err(ProfileError::internal("cannot start the profiler", error));
    }
    let body = answer.await.map_err(|_| {
        ProfileError::new(StatusCode::INTERNAL_SERVER_ERROR, "the profiler thread ended without a profile")
    })??;
    Ok(match format {
        Format::FlameGraph => response(StatusCode::OK, "image/svg+xml", Bytes::from(body)),
        Format::Protobuf => attachment(body, "application/octet-stream", "attachment; filename=\"monarchd-cpu.pb.gz\""),
    })
}

/// Samples for `length`, then encodes the report.
fn record(length: Duration, format: Format) -> Result<Vec<u8>, ProfileError> {
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY)
        // Frames inside the C library and the unwinder say nothing about Monarch's work.
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
        .map_err(|e| ProfileError::internal("cannot start the profiler", e))?;
    std::thread::sleep(length);
    let report = guard.report().build().map_err(|e| ProfileError::internal("cannot build the report", e))?;
    drop(guard);
    match format {
        Format::FlameGraph => {
            // Root first: the thread, then its frames from the outermost caller in.
            let stacks = report.data.iter().map(|(frames, &samples)| {
                let mut stack = vec![frames.thread_name_or_id()];
                stack.extend(frames.frames.iter().rev().flat_map(|frame| frame.iter().rev().map(|s| s.name())));
                (stack, u64::try_from(samples).unwrap_or(0))
            });
            Ok(super::flame_graph::svg("monarchd CPU", stacks).into_bytes())
        }
        Format::Protobuf => {
            use pprof::protos::Message;
            let profile = report.pprof().map_err(|e| ProfileError::internal("cannot encode the profile", e))?;
            let bytes = profile.write_to_bytes().map_err(|e| ProfileError::internal("cannot encode the profile", e))?;
            gzip(&bytes)
        }
    }
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>, ProfileError> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .map_err(|e| ProfileError::internal("cannot compress the profile", e))
}

/// Heap dumps go one at a time to one file, named once (jemalloc wants a C string that
/// outlives the call).
static HEAP_DUMP: Mutex<()> = Mutex::new(());
static HEAP_DUMP_PATH: OnceLock<(std::path::PathBuf, &'static [u8])> = OnceLock::new();

/// `GET /debug/pprof/heap`: jemalloc's heap profile of the live sampled allocations.
///
/// # Errors
/// 501 when the allocator runs without its profiler; 500 when the dump fails.
pub async fn heap_profile() -> Result<Response<Full<Bytes>>, ProfileError> {
    let dump = tokio::task::spawn_blocking(dump_heap)
        .await
        .map_err(|e| ProfileError::internal("the heap dump did not finish", e))??;
    Ok(attachment(dump, "text/plain; charset=utf-8", "attachment; filename=\"monarchd.heap\""))
}

fn dump_heap() -> Result<Vec<u8>, ProfileError> {
    use tikv_jemalloc_ctl::{Access, AsName};
    let profiling = tikv_jemalloc_ctl::profiling::prof::read()
        .map_err(|e| ProfileError::internal("cannot ask the allocator", e))?;
    if !profiling {
        return Err(ProfileError::new(
            StatusCode::NOT_IMPLEMENTED,
            "the allocator runs without its profiler (this build was made without .cargo/config.toml's prof:true)",
        ));
    }
    let (file, c_path) = HEAP_DUMP_PATH.get_or_init(|| {
        let file = std::env::temp_dir().join(format!("monarchd-{}.heap", std::process::id()));
        let mut c_path = file.clone().into_os_string().into_encoded_bytes();
        c_path.push(0);
        (file, c_path.leak())
    });
    let _one_at_a_time = HEAP_DUMP.lock().unwrap_or_else(PoisonError::into_inner);
    b"prof.dump\0"
        .name()
        .write(*c_path)
        .map_err(|e| ProfileError::internal("jemalloc could not dump the heap profile", e))?;
    let dump = std::fs::read(file).map_err(|e| ProfileError::internal("cannot read the heap dump", e))?;
    let _ = std::fs::remove_file(file);
    Ok(dump)
}

fn attachment(body: Vec<u8>, content_type: &'static str, disposition: &'static str) -> Response<Full<Bytes>> {
    let mut answer = response(StatusCode::OK, content_type, Bytes::from(body));
    answer.headers_mut().insert(CONTENT_DISPOSITION, HeaderValue::from_static(disposition));
    answer
}
