//! The soak: a mixed workload (inserts, finds, updates and deletes on an indexed collection
//! whose size stays bounded, plus connections opened and closed) for `MONARCH_SOAK_SECS`
//! (default 1,800: 30 minutes), sampling the server's RSS and open file descriptors every
//! `MONARCH_SOAK_SAMPLE_SECS` (default 10). After the warm-up (the first fifth of the run, at
//! most 5 minutes) memory and descriptors must stay flat: the last quarter's mean may exceed
//! the first post-warm-up quarter's by at most 20% + 16 MiB of RSS and 16 descriptors.
//!
//! Ignored by default (it runs for half an hour):
//!
//! ```text
//! cargo test --release --test soak -- --ignored --nocapture
//! MONARCH_SOAK_SECS=120 cargo test --test soak -- --ignored --nocapture
//! ```

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{RawConnection, TestServer, op_msg, reply_body};
use mongodb::bson::{Document, doc};

/// Documents the workload keeps in the collection: ids wrap around this many.
const KEPT_DOCUMENTS: u64 = 10_000;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Sends `body`; whether the server answered `ok: 1`.
fn ok(connection: &mut RawConnection, body: &Document) -> bool {
    connection.send(&op_msg(1, 0, body));
    connection.receive().is_some_and(|reply| reply_body(&reply).get_f64("ok").ok() == Some(1.0))
}

/// One worker's loop: each round writes, reads, updates and deletes one document, keeping at
/// most [`KEPT_DOCUMENTS`] in the collection.
fn worker(server: &TestServer, first: u64, step: u64, stop: &AtomicBool, done: &AtomicU64, failed: &AtomicU64) {
    let mut connection = server.raw();
    let mut n = first;
    while !stop.load(Ordering::Relaxed) {
        let id = i64::try_from(n % KEPT_DOCUMENTS).unwrap_or(0);
        let old = i64::try_from((n + KEPT_DOCUMENTS / 2) % KEPT_DOCUMENTS).unwrap_or(0);
        let round = [
            doc! { "delete": "items", "deletes": [{ "q": { "_id": id }, "limit": 1 }], "$db": "soak" },
            doc! { "insert": "items", "documents": [{ "_id": id, "k": id % 97, "pad": "x".repeat(200) }], "$db": "soak" },
            doc! { "find": "items", "filter": { "k": id % 97 }, "limit": 20, "$db": "soak" },
            doc! { "update": "items", "updates": [{ "q": { "_id": old }, "u": { "$inc": { "n": 1 } } }], "$db": "soak" },
        ];
        for body in &round {
            let counter = if ok(&mut connection, body) { done } else { failed };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        n += step;
    }
}

/// Opens, uses and closes connections for as long as the soak runs.
fn churn(server: &TestServer, stop: &AtomicBool, done: &AtomicU64, failed: &AtomicU64) {
    while !stop.load(Ordering::Relaxed) {
        let mut connection = server.raw();
        let counter = if ok(&mut connection, &doc! { "hello": 1, "$db": "admin" }) { done } else { failed };
        counter.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn mean(values: &[u64]) -> u64 {
    values.iter().sum::<u64>() / (values.len() as u64).max(1)
}

#[test]
#[ignore = "a 30-minute soak; run with --ignored (MONARCH_SOAK_SECS shortens it)"]
fn soak_mixed_workload_keeps_memory_and_descriptors_flat() {
    let duration = Duration::from_secs(env_or("MONARCH_SOAK_SECS", 1800));
    let every = Duration::from_secs(env_or("MONARCH_SOAK_SAMPLE_SECS", 10).max(1));
    let warm_up = (duration / 5).min(Duration::from_secs(300));
    // A bounded engine budget, so the caches reach their size during the warm-up.
    let server = Arc::new(TestServer::start(&["--quiet", "--cacheSizeGB", "0.25"]));
    let mut setup = server.raw();
    assert!(ok(
        &mut setup,
        &doc! { "createIndexes": "items", "indexes": [{ "key": { "k": 1 }, "name": "k_1" }], "$db": "soak" }
    ));

    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let workers = 3;
    let mut threads = Vec::new();
    for first in 0..workers {
        let (server, stop, done, failed) = (server.clone(), stop.clone(), done.clone(), failed.clone());
        threads.push(std::thread::spawn(move || worker(&server, first, workers, &stop, &done, &failed)));
    }
    {
        let (server, stop, done, failed) = (server.clone(), stop.clone(), done.clone(), failed.clone());
        threads.push(std::thread::spawn(move || churn(&server, &stop, &done, &failed)));
    }

    let started = Instant::now();
    let mut samples: Vec<(Duration, u64, usize)> = Vec::new();
    while started.elapsed() < duration {
        std::thread::sleep(every.min(duration.saturating_sub(started.elapsed())));
        let sample = (started.elapsed(), server.rss_kib(), server.open_fds());
        eprintln!(
            "t={:>5}s rss={} KiB fds={} ops={} failed={}",
            sample.0.as_secs(),
            sample.1,
            sample.2,
            done.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed)
        );
        samples.push(sample);
    }
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().expect("soak thread");
    }

    let after: Vec<&(Duration, u64, usize)> = samples.iter().filter(|s| s.0 >= warm_up).collect();
    assert!(after.len() >= 4, "too short a soak to judge: {} samples after the warm-up", after.len());
    let quarter = after.len() / 4;
    let (first, last) =
        (after.get(..quarter).unwrap_or_default(), after.get(after.len() - quarter..).unwrap_or_default());
    let rss = |part: &[&(Duration, u64, usize)]| mean(&part.iter().map(|s| s.1).collect::<Vec<_>>());
    let fds = |part: &[&(Duration, u64, usize)]| mean(&part.iter().map(|s| s.2 as u64).collect::<Vec<_>>());
    let (rss_first, rss_last, fds_first, fds_last) = (rss(first), rss(last), fds(first), fds(last));
    let ops = done.load(Ordering::Relaxed);
    eprintln!(
        "soak {} s: {ops} operations ({:.0}/s), {} failed; RSS {rss_first} -> {rss_last} KiB, fds {fds_first} -> {fds_last}",
        duration.as_secs(),
        ops as f64 / duration.as_secs_f64(),
        failed.load(Ordering::Relaxed)
    );
    assert_eq!(failed.load(Ordering::Relaxed), 0, "operations that failed");
    assert!(rss_last <= rss_first + rss_first / 5 + 16 * 1024, "RSS grew from {rss_first} to {rss_last} KiB");
    assert!(fds_last <= fds_first + 16, "file descriptors grew from {fds_first} to {fds_last}");
}
