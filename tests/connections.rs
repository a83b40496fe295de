//! Many connections at once and in quick succession: idle connections cost little and stay
//! responsive, and when clients leave their memory, file descriptors, tasks and slots come
//! back; a large message does not pin its buffers on the connection that carried it.
//!
//! Bounded by default so each test runs in seconds; scaled up by environment variables for
//! the figures in BENCHMARKS.md (docs/operations/memory.md says how):
//! `MONARCH_IDLE_CONNECTIONS` (default 2,000; 10,000 for the figure) and
//! `MONARCH_STORM_SECS` (default 5).

#![expect(clippy::expect_used, reason = "a failed test step must fail the test loudly")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{RawConnection, TestServer, op_msg, reply_body};
use mongodb::bson::{Document, doc};

/// How long memory may take to go back to the system: jemalloc's background threads purge
/// pages unused for 10 s (its `dirty_decay_ms`), with margin for a loaded machine.
const PURGE_WAIT: Duration = Duration::from_secs(40);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Raises this process's open-file limit towards `wanted` (as far as the hard limit allows);
/// the server started after this inherits it.
fn raise_fd_limit(wanted: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let target = limit.maximum.map_or(wanted, |maximum| wanted.min(maximum));
    if limit.current.is_some_and(|current| current >= target) {
        return;
    }
    let _ = setrlimit(Resource::Nofile, Rlimit { current: Some(target), maximum: limit.maximum });
}

/// Sends `body` on `connection` and returns the reply's body.
fn run(connection: &mut RawConnection, body: &Document) -> Document {
    connection.send(&op_msg(1, 0, body));
    reply_body(&connection.receive().expect("a reply"))
}

/// A connection that has said `hello`, as a driver's does before it idles in a pool.
fn hello_connection(server: &TestServer) -> RawConnection {
    let mut connection = server.raw();
    let reply = run(&mut connection, &doc! { "hello": 1, "$db": "admin" });
    assert_eq!(reply.get_f64("ok").ok(), Some(1.0), "{reply}");
    connection
}

fn connections_current(server: &TestServer) -> f64 {
    server.metric("monarch_connections_current").expect("monarch_connections_current")
}

fn tasks(server: &TestServer) -> f64 {
    server.metric("monarch_runtime_alive_tasks").expect("monarch_runtime_alive_tasks")
}

/// Waits until the server counts no client connection, has `fds` descriptors open and
/// `tasks_before` tasks alive: what it had before the clients came.
fn assert_back_to_idle(server: &TestServer, fds: usize, tasks_before: f64) {
    assert!(
        common::eventually(Duration::from_secs(20), || connections_current(server) == 0.0),
        "connections.current back to 0: {}",
        connections_current(server)
    );
    assert!(
        common::eventually(Duration::from_secs(20), || server.open_fds() <= fds),
        "file descriptors back to {fds}: {}",
        server.open_fds()
    );
    assert!(
        common::eventually(Duration::from_secs(20), || tasks(server) <= tasks_before),
        "runtime tasks back to {tasks_before}: {}",
        tasks(server)
    );
}

/// Polls the server's RSS until it is at most `bound_kib`; returns the last reading.
fn rss_falls_to(server: &TestServer, bound_kib: u64) -> u64 {
    let mut last = server.rss_kib();
    common::eventually(PURGE_WAIT, || {
        last = server.rss_kib();
        last <= bound_kib
    });
    last
}

#[test]
fn connections_closed_give_their_memory_back() {
    let count = 3000;
    raise_fd_limit(count + 512);
    let server = TestServer::start(&["--quiet"]);
    // A first round sizes the runtime's and the allocator's fixed structures.
    drop((0..100).map(|_| hello_connection(&server)).collect::<Vec<_>>());
    assert!(common::eventually(Duration::from_secs(10), || connections_current(&server) == 0.0));
    let baseline = server.rss_kib();

    let held: Vec<RawConnection> = (0..count).map(|_| hello_connection(&server)).collect();
    let open = server.rss_kib();
    drop(held);
    assert!(common::eventually(Duration::from_secs(20), || connections_current(&server) == 0.0));
    // Within a quarter of what the connections took: before jemalloc's background purging,
    // 95% of it stayed (322 of 334 MB for 10,000 connections) until more allocations came.
    let bound = baseline + open.saturating_sub(baseline) / 4;
    let after = rss_falls_to(&server, bound);
    eprintln!("RSS KiB: baseline {baseline}, {count} open {open}, closed {after} (bound {bound})");
    assert!(after <= bound, "RSS {after} KiB after {count} connections closed; baseline {baseline}, open {open}");
}

#[test]
fn large_messages_do_not_pin_connection_buffers() {
    let server = TestServer::start(&["--quiet", "--slowms", "600000"]);
    let pad = "x".repeat(4 << 20);
    let mut setup = server.raw();
    let inserted = run(&mut setup, &doc! { "insert": "big", "documents": [{ "_id": 1, "pad": &pad }], "$db": "d" });
    assert_eq!(inserted.get_i32("n").ok(), Some(1), "{inserted}");
    let other = "y".repeat(4 << 20);
    let find = doc! { "find": "big", "filter": { "_id": 1, "pad": { "$ne": &other } }, "$db": "d" };
    let mut warm = server.raw();
    let _ = run(&mut warm, &doc! { "find": "big", "filter": { "_id": 1 }, "$db": "d" });
    let baseline = server.rss_kib();

    // Each connection reads a 4 MB request and writes a 4 MB reply, then idles: before the
    // buffers were given back, each kept 8 MB or more for as long as it lived.
    let count = 30;
    let mut connections: Vec<RawConnection> = (0..count).map(|_| server.raw()).collect();
    for connection in &mut connections {
        let reply = run(connection, &find);
        let batch = reply.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("firstBatch");
        assert_eq!(batch.len(), 1);
    }
    let bound = baseline + 48 * 1024;
    let after = rss_falls_to(&server, bound);
    eprintln!("RSS KiB: baseline {baseline}, {count} idle connections after 4 MB messages {after} (bound {bound})");
    assert!(after <= bound, "{count} idle connections still hold {} KiB", after.saturating_sub(baseline));
    for connection in &mut connections {
        assert_eq!(run(connection, &doc! { "ping": 1, "$db": "admin" }).get_f64("ok").ok(), Some(1.0));
    }
}

#[test]
fn idle_connections_cost_little_and_stay_responsive() {
    let count = env_or("MONARCH_IDLE_CONNECTIONS", 2000);
    raise_fd_limit(count + 512);
    let server = TestServer::start(&["--quiet"]);
    drop(hello_connection(&server));
    assert!(common::eventually(Duration::from_secs(10), || connections_current(&server) == 0.0));
    let (fds, tasks_before, baseline) = (server.open_fds(), tasks(&server), server.rss_kib());

    let mut held: Vec<RawConnection> = (0..count).map(|_| hello_connection(&server)).collect();
    let open = server.rss_kib();
    let per_connection = open.saturating_sub(baseline) * 1024 / count;
    assert_eq!(connections_current(&server), count as f64);
    // A few tasks of the admin server's earlier requests may still have been ending when the
    // idle count was read.
    let tasks_open = tasks(&server);
    assert!(
        tasks_open + 16.0 >= tasks_before + count as f64,
        "one task per connection: {tasks_before} -> {tasks_open}"
    );

    // Pings spread over the idle connections, one at a time.
    let ping = doc! { "ping": 1, "$db": "admin" };
    let mut took: Vec<Duration> = Vec::new();
    let step = (count as usize / 500).max(1);
    for connection in held.iter_mut().step_by(step) {
        let started = Instant::now();
        assert_eq!(run(connection, &ping).get_f64("ok").ok(), Some(1.0));
        took.push(started.elapsed());
    }
    took.sort();
    let p99 = took.get(took.len() * 99 / 100).copied().unwrap_or_default();
    eprintln!(
        "{count} idle connections: RSS {baseline} -> {open} KiB, {per_connection} bytes each; ping p99 {p99:?} over {}",
        took.len()
    );
    // 19 KB each in a release build (31 KB in a debug one): two 8 KiB frame buffers, the
    // task and the socket.
    assert!(per_connection <= 64 * 1024, "{per_connection} bytes per idle connection");
    assert!(p99 <= Duration::from_millis(200), "ping p99 {p99:?} with {count} idle connections");

    drop(held);
    assert_back_to_idle(&server, fds, tasks_before);
}

#[test]
fn connection_storm_leaks_nothing() {
    let seconds = env_or("MONARCH_STORM_SECS", 5);
    let server = Arc::new(TestServer::start(&["--quiet"]));
    drop(hello_connection(&server));
    assert!(common::eventually(Duration::from_secs(10), || connections_current(&server) == 0.0));
    let (fds, tasks_before, baseline) = (server.open_fds(), tasks(&server), server.rss_kib());

    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let hello = op_msg(1, 0, &doc! { "hello": 1, "$db": "admin" });
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (server, stop, done, failed, hello) =
                (server.clone(), stop.clone(), done.clone(), failed.clone(), hello.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", server.port)) else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    let _ = stream.set_read_timeout(Some(common::READ_TIMEOUT));
                    let mut connection = RawConnection { stream };
                    connection.send(&hello);
                    let counter = if connection.receive().is_some() { &done } else { &failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().expect("storm worker");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (done, failed) = (done.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    let rate = done as f64 / elapsed;
    assert_back_to_idle(&server, fds, tasks_before);
    let after = rss_falls_to(&server, baseline + 16 * 1024);
    eprintln!(
        "storm: {done} connections ({rate:.0}/s) in {elapsed:.1} s, {failed} failed; RSS {baseline} -> {after} KiB; fds {fds}"
    );
    assert_eq!(failed, 0, "connections that failed during the storm");
    assert!(rate >= 100.0, "{rate:.0} connections per second");
    assert!(after <= baseline + 16 * 1024, "RSS {after} KiB after the storm, {baseline} before");
}
