//! Throughput through the official Rust driver against a release `monarchd`:
//! single inserts, batched inserts, journaled inserts with many writers (group commit) and
//! point reads by `_id`. Run with `cargo bench --bench crud`; prints one line per figure.
#![expect(clippy::expect_used, reason = "a benchmark that cannot set up should stop loudly")]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mongodb::bson::{Document, doc};
use mongodb::options::WriteConcern;
use mongodb::{Client, Collection};

const SINGLE_INSERTS: usize = 20_000;
const BATCHED_INSERTS: usize = 200_000;
const POINT_READS: usize = 50_000;
const JOURNALED_INSERTS: usize = 20_000;

fn payload(i: usize) -> Document {
    doc! { "_id": i as i64, "name": format!("user{i}"), "age": (i % 90) as i32, "city": "somewhere", "score": i as f64 * 0.5 }
}

/// Runs `total` operations split over `workers` tasks and returns operations per second.
async fn run<F, Fut>(workers: usize, total: usize, op: F) -> f64
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let per = total / workers;
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let op = op.clone();
            tokio::spawn(async move {
                for i in 0..per {
                    op(w * per + i).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("worker");
    }
    (per * workers) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Command::new(env!("CARGO_BIN_EXE_monarchd"))
        .args(["--port", "0", "--adminPort", "disabled", "--quiet", "--dbpath"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start monarchd");
    let stdout = server.stdout.take().expect("stdout");
    let mut port = 0;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if line.contains("\"Waiting for connections\"") {
            let parsed: serde_json::Value = serde_json::from_str(&line).expect("log line");
            port = parsed.pointer("/attr/port").and_then(serde_json::Value::as_u64).expect("port") as u16;
            break;
        }
    }
    let client = Client::with_uri_str(format!("mongodb://127.0.0.1:{port}/?maxPoolSize=64")).await.expect("client");
    let db = client.database("bench");

    let coll: Collection<Document> = db.collection("single");
    let rate = run(16, SINGLE_INSERTS, move |i| {
        let coll = coll.clone();
        async move {
            coll.insert_one(payload(i)).await.expect("insert");
        }
    })
    .await;
    println!("insert_one, 16 clients:            {rate:>10.0} inserts/s");

    let coll: Collection<Document> = db.collection("batched");
    let started = Instant::now();
    for chunk in (0..BATCHED_INSERTS).collect::<Vec<_>>().chunks(1000) {
        coll.insert_many(chunk.iter().map(|&i| payload(i))).await.expect("insert_many");
    }
    println!(
        "insert_many of 1000, 1 client:    {:>10.0} docs/s",
        BATCHED_INSERTS as f64 / started.elapsed().as_secs_f64()
    );

    let coll: Collection<Document> = db.collection("journaled");
    let rate = run(64, JOURNALED_INSERTS, move |i| {
        let coll = coll.clone();
        async move {
            coll.insert_one(payload(i))
                .write_concern(WriteConcern::builder().journal(true).build())
                .await
                .expect("insert");
        }
    })
    .await;
    println!("insert_one j:true, 64 clients:     {rate:>10.0} durable acks/s");
    let status = client.database("admin").run_command(doc! { "serverStatus": 1 }).await.expect("serverStatus");
    let engine = status.get_document("storageEngine").expect("storageEngine");
    let syncs = engine.get_i64("journalSyncs").unwrap_or(0);
    let micros = engine.get_i64("journalSyncMicros").unwrap_or(0);
    println!("  journal syncs so far: {syncs}, mean {:.0} us each", micros as f64 / syncs.max(1) as f64);

    let coll: Collection<Document> = db.collection("batched");
    let rate = run(16, POINT_READS, move |i| {
        let coll = coll.clone();
        async move {
            let id = ((i * 7919) % BATCHED_INSERTS) as i64;
            coll.find_one(doc! { "_id": id }).await.expect("find").expect("document");
        }
    })
    .await;
    println!("find_one by _id, 16 clients:      {rate:>10.0} reads/s");

    let _ = Command::new("kill").arg("-TERM").arg(server.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = server.kill();
}
