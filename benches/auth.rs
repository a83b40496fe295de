//! What authentication and authorization cost, each as a ratio measured in the same run:
//! - `point reads`: `find_one({_id})` from 16 clients on a server with `--auth`, authenticated
//!   as a `readWrite` user (the authorization check runs on every command), over the same on a
//!   server without `--auth`; rounds alternate between the two servers and the median of the
//!   per-round ratios is reported (issue 14's goal: the check costs at most 3%);
//! - `SCRAM-SHA-256 connections`: new clients that connect, authenticate (15,000 PBKDF2
//!   iterations on the client and the server's stored keys) and run one `ping`, from 8 tasks, over
//!   the same without credentials: connection set-up per second with authentication.
//!
//! `cargo bench --bench auth [-- --rounds N --seconds S]`; BENCHMARKS.md has the latest figures.
#![allow(
    clippy::indexing_slicing,
    reason = "the shared process control indexes serde_json `Value`s: a missing key reads as Null"
)]

#[path = "load/process.rs"]
#[allow(dead_code, reason = "the load harness's process control, shared; not every part is used here")]
mod process;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mongodb::bson::{Document, doc};
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection};

use crate::process::ServerProcess;

/// The harness's error type: it reports and stops.
type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const RECORDS: i64 = 10_000;
const READERS: usize = 16;
const CONNECTORS: usize = 8;

fn flag(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn client(uri: &str, pool: u32) -> BenchResult<Client> {
    let mut options = ClientOptions::parse(uri).await?;
    options.max_pool_size = Some(pool);
    Ok(Client::with_options(options)?)
}

async fn load(collection: &Collection<Document>) -> BenchResult<()> {
    let documents: Vec<Document> = (0..RECORDS).map(|i| doc! { "_id": i, "field0": "x".repeat(100) }).collect();
    for chunk in documents.chunks(1000) {
        collection.insert_many(chunk.to_vec()).await?;
    }
    Ok(())
}

/// Point reads per second from [`READERS`] tasks for `seconds`.
async fn read_rate(collection: &Collection<Document>, seconds: u64) -> BenchResult<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for worker in 0..READERS {
        let (collection, done) = (collection.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut key = (worker as i64 * 7919) % RECORDS;
            while Instant::now() < deadline {
                key = (key * 48_271 + 11) % RECORDS;
                if collection.find_one(doc! { "_id": key }).await.is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / seconds as f64)
}

/// New clients (connect, authenticate when `uri` has credentials, one `ping`) per second from
/// [`CONNECTORS`] tasks for `seconds`.
async fn connect_rate(uri: &str, seconds: u64) -> BenchResult<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..CONNECTORS {
        let (uri, done) = (uri.to_owned(), done.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let Ok(client) = client(&uri, 1).await else { continue };
                if client.database("admin").run_command(doc! { "ping": 1 }).await.is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                }
                client.shutdown().await;
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / seconds as f64)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() -> BenchResult<()> {
    let rounds = flag("--rounds", 5) as usize;
    let seconds = flag("--seconds", 2);
    let binary = std::path::PathBuf::from(env!("CARGO_BIN_EXE_monarchd"));
    let runtime = tokio::runtime::Runtime::new()?;
    let mut open = ServerProcess::monarchd(&binary, &[])?;
    let mut secured = ServerProcess::monarchd(&binary, &["--auth".to_owned()])?;
    let outcome = runtime.block_on(async {
        let open_uri = format!("mongodb://127.0.0.1:{}/", open.port);
        let anonymous = format!("mongodb://127.0.0.1:{}/", secured.port);
        // The first user through the localhost exception; the reader holds readWrite only.
        client(&anonymous, 1)
            .await?
            .database("admin")
            .run_command(doc! { "createUser": "root", "pwd": "pw", "roles": ["root"] })
            .await?;
        let root = client(&format!("mongodb://root:pw@127.0.0.1:{}/?authSource=admin", secured.port), 4).await?;
        root.database("admin")
            .run_command(
                doc! { "createUser": "reader", "pwd": "pw", "roles": [{ "role": "readWrite", "db": "bench" }] },
            )
            .await?;
        let authenticated = format!("mongodb://reader:pw@127.0.0.1:{}/?authSource=admin", secured.port);
        let plain = client(&open_uri, 32).await?.database("bench").collection::<Document>("usertable");
        let checked = client(&authenticated, 32).await?.database("bench").collection::<Document>("usertable");
        load(&plain).await?;
        load(&checked).await?;
        // Warm both servers' caches and connection pools.
        read_rate(&plain, 1).await?;
        read_rate(&checked, 1).await?;
        let (mut ratios, mut plain_rates, mut checked_rates) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            // Alternate which goes first, so neither always meets a warmer machine.
            let (first, second) = if round % 2 == 0 { (&plain, &checked) } else { (&checked, &plain) };
            let a = read_rate(first, seconds).await?;
            let b = read_rate(second, seconds).await?;
            let (p, c) = if round % 2 == 0 { (a, b) } else { (b, a) };
            plain_rates.push(p);
            checked_rates.push(c);
            ratios.push(c / p);
        }
        let (mut conn_ratios, mut scram_rates, mut bare_rates) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let bare = connect_rate(&open_uri, seconds).await?;
            let scram = connect_rate(&format!("{authenticated}&authMechanism=SCRAM-SHA-256"), seconds).await?;
            bare_rates.push(bare);
            scram_rates.push(scram);
            conn_ratios.push(scram / bare);
        }
        println!("workload                       | with auth/s | without/s | ratio (median of {rounds} rounds)");
        println!(
            "point reads ({READERS} clients)         | {:>11.0} | {:>9.0} | {:.3}",
            median(&mut checked_rates),
            median(&mut plain_rates),
            median(&mut ratios)
        );
        println!(
            "SCRAM-SHA-256 connections ({CONNECTORS})  | {:>11.1} | {:>9.1} | {:.3}",
            median(&mut scram_rates),
            median(&mut bare_rates),
            median(&mut conn_ratios)
        );
        println!("per-round point-read ratios: {ratios:.3?}");
        BenchResult::Ok(())
    });
    open.stop();
    secured.stop();
    outcome
}
