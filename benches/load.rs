//! Load benchmarks: Monarch driven through the official Rust driver, each workload judged as a
//! ratio to a floor measured in the same run.
//!
//! Workloads (positional arguments; `all` is the default), run in this order, writes last so
//! that their compactions do not slow the reads:
//! - `ping`: the `ping` command;
//! - `ycsb-a`, `ycsb-b`, `ycsb-c`: YCSB's core workloads on `bench.usertable` (documents with an
//!   int64 `_id` and string fields `field0`..`field9`): A is 50% reads and 50% updates, B is
//!   95/5, C reads only. A read is `find_one({_id})`, an update `$set`s one field by `_id`;
//!   keys are uniform over the loaded records;
//! - `scan`: a `find` whose filter matches nothing, so every document is read and tested;
//! - `count`: the `count` command without a filter (the driver's `estimated_document_count`);
//! - `eq-scan` and `eq-index`: `find_one({k: <random>})` on the records' int64 field `k`
//!   (equal to `_id`), first with no index on `k` (each query scans the collection), then with
//!   the index `k_1` (built before the measurement; the build time is printed). Their ratio is
//!   what an index buys for an equality;
//! - `ycsb-e`: YCSB's workload E through the index `k_1`: 95% short range scans
//!   (`find({k: {$gte: <random>}}).sort({k: 1}).limit(1..=100)`), 5% inserts of new records;
//! - `insert`: `insert_one` of new documents;
//! - `insert-j`: `insert_one` with write concern `{j: true}` from `--j-clients` (64) clients;
//! - `insert-many`: `insert_many` of 1,000 documents of `--many-doc-size` (1,024) bytes;
//! - `rss`: a separate `monarchd --cacheSizeGB 0.25` is loaded with `--rss-load-mb` (1,024) of
//!   1 KB documents, then read; its `VmRSS` and `VmHWM` are reported after each phase.
//!
//! `goals` runs the workloads of issue 12's goals (`ycsb-c`, `ycsb-a`, `insert`, `insert-j`,
//! `insert-many`, `rss`) with only the floors those goals use, and a goals table closes every
//! run that measured one of them; `--guard` makes the run fail when a goal falls below half of
//! its target (the CI smoke in `.ci/run`).
//!
//! Floors, measured in the same run with as many clients (or threads) as the workloads they are
//! compared with:
//! - network floor: a minimal `OP_MSG` echo server in this harness (built on `monarch_wire`'s
//!   codec, run as a separate process like `monarchd`) answers the handshake like a standalone
//!   mongod and every other command with `{ok: 1}`; the driver pings it, once per client count
//!   in use (`--clients`, and `--j-clients` for `insert-j`).
//! - engine floor: fjall driven directly (one `Database` in a temp dir), with Monarch's keys
//!   (an 8-byte collection prefix and the order-preserving `_id` encoding) and the same
//!   documents: one-record batches without sync (what Monarch commits for a `w: 1` insert),
//!   random point gets, full scans of the keyspace, batches of 1,000 `--many-doc-size`
//!   documents without sync, and group commit (one-record batches whose writers wait for a
//!   shared `persist(SyncData)`, one leader syncing for every writer waiting).
//!
//! Every workload shows two ratios: `ratio`, its rate over the matching engine rate (for YCSB
//! mixes, the engine's read and write rates blended in the same proportions; scans and counts
//! compare records per second), and `vs echo`, its operations per second over the echo
//! server's pings per second at the same client count. No request can beat a round trip, so
//! `vs echo` tells the server's own cost from the network's; it is the goal ratio of point
//! reads, updates and inserts.
//!
//! Each operation's latency goes into a per-worker `hdrhistogram` (microseconds). Building a
//! request (documents, keys) is not timed; sending it, the driver's serialization and the reply
//! are. The output is a table, then one line `JSON:` followed by every figure as one JSON
//! document (also written to `--json PATH`). Run with `cargo bench --bench load -- --help`
//! for the flags; BENCHMARKS.md has the latest figures.

#[path = "load/goals.rs"]
mod goals;
#[path = "load/rss.rs"]
mod rss;

use std::collections::VecDeque;
use std::future::Future;
use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bson::{Document, RawBsonRef, RawDocument, doc};
use clap::{Parser, ValueEnum};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use monarch_wire::{Body, DocumentBytes, Header, Message, MessageCodec, OpMsg, OpReply};
use mongodb::options::{CollectionOptions, WriteConcern};
use mongodb::{Client, Collection};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// String fields per document, as in YCSB.
const FIELDS: usize = 10;
/// Documents per `insert_many` and per engine batch.
const BATCH: u64 = 1_000;
/// The engine floor's collection prefix (Monarch's keys start with the collection id).
const ENGINE_PREFIX: u64 = 1;
/// The histogram's range: 1 µs to one hour.
const HISTOGRAM_MAX_US: u64 = 3_600_000_000;
/// Monarch log lines kept for the report.
const LOG_LINES_KEPT: usize = 10;
/// Salts for the random streams derived from (worker, sequence).
const KEY_SALT: u64 = 0x6b65_7973;
const MIX_SALT: u64 = 0x6d69_7865;
const FIELD_SALT: u64 = 0x6669_656c;

/// Load benchmarks for Monarch, each workload with its ratio to a floor from the same run.
#[derive(Debug, Parser)]
#[command(name = "load", bin_name = "cargo bench --bench load --")]
struct Args {
    /// Workloads to run (always in the order listed here); `all` runs every one.
    #[arg(value_enum, default_value = "all")]
    workloads: Vec<Workload>,
    /// Records loaded into bench.usertable, and into the engine floor's keyspace.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    records: u64,
    /// Target BSON size of one document in bytes (the 10-field shape needs at least 148).
    #[arg(long, default_value_t = 200)]
    doc_size: usize,
    /// Concurrent driver tasks (and engine floor threads).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    clients: u16,
    /// Concurrent driver tasks of `insert-j` (and threads of its echo and group-commit floors).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    j_clients: u16,
    /// BSON size of the documents of `insert-many` and of the engine batch floor.
    #[arg(long, default_value_t = 1024)]
    many_doc_size: usize,
    /// MiB of 1 KB documents the `rss` check loads; 0 skips the check.
    #[arg(long, default_value_t = 1024)]
    rss_load_mb: u64,
    /// `--cacheSizeGB` given to the `rss` check's monarchd; 0 leaves the flag out.
    #[arg(long, default_value_t = 0.25)]
    rss_cache_gb: f64,
    /// Exits with a failure status when a goal measured in this run falls below half of its
    /// target, or was asked for and could not be measured (the CI smoke).
    #[arg(long)]
    guard: bool,
    /// Measured seconds per workload and per floor.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured seconds before each measurement (connections, caches).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Slices each workload's duration is cut into, each after a slice of echo pings at the
    /// same client count, so that the workload and its echo floor share the machine's moods.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Also write the JSON report to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// An extra argument for monarchd (repeatable), e.g.
    /// `--server-arg=--setParameter --server-arg=monarchObservability=0`.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long = "bench", hide = true)]
    _bench: bool,
    /// Serves the echo floor instead of benchmarking (the harness runs itself this way).
    #[arg(long, hide = true)]
    echo_server: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Workload {
    Ping,
    YcsbA,
    YcsbB,
    YcsbC,
    Scan,
    Count,
    EqScan,
    EqIndex,
    YcsbE,
    Insert,
    InsertJ,
    InsertMany,
    Rss,
    All,
    Goals,
}

impl Workload {
    const EVERY: [Workload; 13] = [
        Workload::Ping,
        Workload::YcsbA,
        Workload::YcsbB,
        Workload::YcsbC,
        Workload::Scan,
        Workload::Count,
        Workload::EqScan,
        Workload::EqIndex,
        Workload::YcsbE,
        Workload::Insert,
        Workload::InsertJ,
        Workload::InsertMany,
        Workload::Rss,
    ];

    fn name(self) -> &'static str {
        match self {
            Workload::Ping => "ping",
            Workload::YcsbA => "ycsb-a",
            Workload::YcsbB => "ycsb-b",
            Workload::YcsbC => "ycsb-c",
            Workload::YcsbE => "ycsb-e",
            Workload::Insert => "insert",
            Workload::InsertJ => "insert-j",
            Workload::InsertMany => "insert-many",
            Workload::Rss => "rss",
            Workload::Scan => "scan",
            Workload::Count => "count",
            Workload::EqScan => "eq-scan",
            Workload::EqIndex => "eq-index",
            Workload::All => "all",
            Workload::Goals => "goals",
        }
    }

    /// The floor this workload is compared with.
    fn basis(self) -> Basis {
        match self {
            Workload::Ping => Basis::Floor(Floor::Echo),
            Workload::YcsbA => Basis::Mix { read_pct: 50 },
            Workload::YcsbB => Basis::Mix { read_pct: 95 },
            Workload::YcsbC | Workload::EqIndex => Basis::Floor(Floor::EngineRead),
            Workload::EqScan => Basis::Floor(Floor::EngineScan),
            Workload::Insert => Basis::Floor(Floor::EngineWrite),
            Workload::InsertJ => Basis::Floor(Floor::EngineGroupCommit),
            Workload::InsertMany => Basis::Floor(Floor::EngineBatch),
            Workload::Scan | Workload::Count => Basis::Floor(Floor::EngineScan),
            Workload::YcsbE | Workload::Rss | Workload::All | Workload::Goals => Basis::None,
        }
    }

    /// The floors this workload is compared with when only its goal matters: the echo floor
    /// stands for the goals of reads, updates and single inserts, so their engine floors are
    /// left out; `insert-j` keeps the group-commit rate its goal quotes beside it.
    fn goal_basis(self) -> Basis {
        match self {
            Workload::InsertJ | Workload::InsertMany => self.basis(),
            _ => Basis::None,
        }
    }

    /// Concurrent clients (and floor threads) this workload runs with.
    fn clients(self, config: &Config) -> usize {
        match self {
            Workload::InsertJ => config.j_clients,
            _ => config.clients,
        }
    }

    /// Whether it is measured through `drive` against the shared server (`rss` runs its own).
    fn is_driven(self) -> bool {
        !matches!(self, Workload::Rss | Workload::All | Workload::Goals)
    }

    /// Whether it reads `bench.usertable`, which must be loaded first.
    fn needs_records(self) -> bool {
        matches!(
            self,
            Workload::YcsbA
                | Workload::YcsbB
                | Workload::YcsbC
                | Workload::Scan
                | Workload::Count
                | Workload::EqScan
                | Workload::EqIndex
                | Workload::YcsbE
        )
    }
}

/// What a workload's rate is divided by.
#[derive(Debug, Clone, Copy)]
enum Basis {
    Floor(Floor),
    /// The engine's read and write rates blended: `1 / (r / read + (1 - r) / write)`.
    Mix {
        read_pct: u64,
    },
    None,
}

impl Basis {
    fn floors(self) -> Vec<Floor> {
        match self {
            Basis::Floor(floor) => vec![floor],
            Basis::Mix { .. } => vec![Floor::EngineRead, Floor::EngineWrite],
            Basis::None => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Floor {
    Echo,
    EngineRead,
    EngineScan,
    EngineWrite,
    EngineBatch,
    EngineGroupCommit,
}

impl Floor {
    fn name(self) -> &'static str {
        match self {
            Floor::Echo => "net echo",
            Floor::EngineWrite => "engine write",
            Floor::EngineRead => "engine read",
            Floor::EngineScan => "engine scan",
            Floor::EngineBatch => "engine batch",
            Floor::EngineGroupCommit => "engine group commit",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Floor::Echo => "net_echo_ping",
            Floor::EngineWrite => "engine_write",
            Floor::EngineRead => "engine_read",
            Floor::EngineScan => "engine_scan",
            Floor::EngineBatch => "engine_batch",
            Floor::EngineGroupCommit => "engine_group_commit",
        }
    }

    /// Whether it reads the engine's loaded records.
    fn needs_records(self) -> bool {
        matches!(self, Floor::EngineRead | Floor::EngineScan)
    }
}

/// A floor measured with a given number of clients or threads: a workload is only compared
/// with a floor measured at its own concurrency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct FloorRun {
    floor: Floor,
    threads: usize,
}

/// Measurement window: a warm-up that is not recorded, then the measured duration.
#[derive(Debug, Clone, Copy)]
struct Timing {
    warmup: Duration,
    duration: Duration,
    /// The first operation number of every worker: each slice of an interleaved measurement
    /// starts further on, so it draws fresh random keys.
    first_seq: u64,
}

/// The warm-up of every slice after the first: the connections and caches are warm by then,
/// this only keeps the switch between servers out of the figures.
const SLICE_WARMUP: Duration = Duration::from_millis(200);

impl Timing {
    /// Slice `round` of `rounds`: an equal share of the duration, the whole warm-up only in the
    /// first.
    fn slice(self, round: u32, rounds: u32) -> Self {
        Self {
            warmup: if round == 0 { self.warmup } else { self.warmup.min(SLICE_WARMUP) },
            duration: self.duration / rounds.max(1),
            first_seq: u64::from(round) << 40,
        }
    }
}

fn main() -> BenchResult<()> {
    let args = Args::parse();
    if args.echo_server {
        return serve_echo();
    }
    let config = Config::from_args(&args)?;
    let selection = Selection::new(&args.workloads);
    config.print_header(&selection.workloads);

    let mut floors = measure_floors(&config, &selection.engine_floors_needed(&config))?;

    let runtime = tokio::runtime::Runtime::new()?;
    let driven: Vec<Workload> = selection.workloads.iter().copied().filter(|w| w.is_driven()).collect();
    let mut results = Vec::new();
    let mut server_summary = Value::Null;
    if !driven.is_empty() {
        // Both servers run for the whole phase: the echo floor is measured in slices
        // interleaved with each workload's.
        let mut echo = ServerProcess::echo()?;
        let mut server = ServerProcess::monarchd(&config.server_args)?;
        let outcome = runtime.block_on(run_workloads(&config, &mut server, &echo, &driven));
        server.stop();
        echo.stop();
        results = outcome?;
        server_summary = server.summary();
        floors.add_echo(&results, &config)?;
    }
    if selection.workloads.contains(&Workload::Rss) {
        results.push(runtime.block_on(rss::run(&config))?);
    }

    let report = Report { config: &config, floors, results, server: server_summary };
    report.print_table();
    let goals = goals::evaluate(&report, &selection.workloads);
    goals::print_table(&goals, config.guard);
    let mut json = report.to_json();
    json["goals"] = goals::to_json(&goals);
    println!("JSON:");
    println!("{json}");
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&json)?)?;
    }
    if config.guard {
        goals::guard(&goals)?;
    }
    Ok(())
}

/// The workloads to run and which floors they are compared with.
struct Selection {
    /// Deduplicated, in canonical order.
    workloads: Vec<Workload>,
    /// Only `goals` was asked for: measure only the floors the goals use.
    goals_only: bool,
}

impl Selection {
    fn new(asked: &[Workload]) -> Self {
        if asked.is_empty() || asked.contains(&Workload::All) {
            return Self { workloads: Workload::EVERY.to_vec(), goals_only: false };
        }
        let goals_only = asked.iter().all(|w| *w == Workload::Goals);
        let mut workloads: Vec<Workload> = asked
            .iter()
            .flat_map(|w| if *w == Workload::Goals { goals::WORKLOADS.to_vec() } else { vec![*w] })
            .collect();
        workloads.sort();
        workloads.dedup();
        Self { workloads, goals_only }
    }

    /// The engine floors the workloads are compared with, each at the workload's concurrency.
    /// (Every driven workload is also compared with the echo floor, which is measured with it.)
    fn engine_floors_needed(&self, config: &Config) -> Vec<FloorRun> {
        let mut runs = Vec::new();
        for &workload in self.workloads.iter().filter(|w| w.is_driven()) {
            let threads = workload.clients(config);
            let basis = if self.goals_only { workload.goal_basis() } else { workload.basis() };
            runs.extend(
                basis.floors().into_iter().filter(|f| *f != Floor::Echo).map(|floor| FloorRun { floor, threads }),
            );
        }
        runs.sort();
        runs.dedup();
        runs
    }
}

/// The validated settings of one run.
#[derive(Debug)]
struct Config {
    shape: Shape,
    /// The documents of `insert-many` and the engine batch floor.
    many_shape: Shape,
    clients: usize,
    /// Clients of `insert-j`.
    j_clients: usize,
    timing: Timing,
    /// Slices per workload, interleaved with echo slices.
    rounds: u32,
    /// Extra monarchd arguments.
    server_args: Vec<String>,
    /// Bytes of documents the `rss` check loads (0: skipped).
    rss_load_bytes: u64,
    /// `--cacheSizeGB` of the `rss` check's server, if given.
    rss_cache_gb: Option<f64>,
    /// Fail the run when a goal falls below half of its target.
    guard: bool,
}

impl Config {
    fn from_args(args: &Args) -> BenchResult<Self> {
        let seconds = |name: &str, value: f64, min: f64| {
            if value.is_finite() && value >= min {
                Ok(Duration::from_secs_f64(value))
            } else {
                Err(format!("--{name} must be a number of seconds of at least {min}, not {value}"))
            }
        };
        let timing = Timing {
            warmup: seconds("warmup", args.warmup, 0.0)?,
            duration: seconds("duration", args.duration, 0.01)?,
            first_seq: 0,
        };
        if !(args.rss_cache_gb.is_finite() && args.rss_cache_gb >= 0.0) {
            return Err(format!(
                "--rss-cache-gb must be a number of GB (0 leaves the flag out), not {}",
                args.rss_cache_gb
            )
            .into());
        }
        Ok(Self {
            shape: Shape::new(args.records, args.doc_size)?,
            // The batch floor and insert-many write fresh ids past this count; only the size
            // matters here.
            many_shape: Shape::new(BATCH, args.many_doc_size)?,
            clients: usize::from(args.clients),
            j_clients: usize::from(args.j_clients),
            timing,
            rounds: args.rounds,
            server_args: args.server_args.clone(),
            rss_load_bytes: args.rss_load_mb.saturating_mul(1 << 20),
            rss_cache_gb: (args.rss_cache_gb > 0.0).then_some(args.rss_cache_gb),
            guard: args.guard,
        })
    }

    fn print_header(&self, workloads: &[Workload]) {
        let names: Vec<_> = workloads.iter().map(|w| w.name()).collect();
        println!(
            "Monarch load benchmark: {} records of {} bytes ({} fields), {} clients, {:.1} s per measurement after {:.1} s of warm-up",
            self.shape.records,
            self.shape.doc_size,
            FIELDS,
            self.clients,
            self.timing.duration.as_secs_f64(),
            self.timing.warmup.as_secs_f64(),
        );
        println!("workloads: {}", names.join(", "));
        if workloads.contains(&Workload::InsertJ) {
            println!("insert-j: {} clients", self.j_clients);
        }
        if workloads.contains(&Workload::InsertMany) {
            println!("insert-many: batches of {BATCH} documents of {} bytes", self.many_shape.doc_size);
        }
        if !self.server_args.is_empty() {
            println!("monarchd arguments: {}", self.server_args.join(" "));
        }
    }
}

// --- Documents and keys --------------------------------------------------------------------

/// The YCSB-shaped documents: an int64 `_id` and `FIELDS` strings of equal length.
#[derive(Debug, Clone, Copy)]
struct Shape {
    records: u64,
    field_len: usize,
    /// Extra bytes in `field0` so the document reaches the requested size exactly.
    pad: usize,
    /// The BSON size of every document.
    doc_size: usize,
}

impl Shape {
    fn new(records: u64, doc_size: usize) -> BenchResult<Self> {
        let mut shape = Self { records, field_len: 0, pad: 0, doc_size: 0 };
        let room = doc_size.saturating_sub(shape.bytes(0)?.len());
        shape.field_len = room / FIELDS;
        shape.pad = room % FIELDS;
        shape.doc_size = shape.bytes(0)?.len();
        Ok(shape)
    }

    fn document(&self, id: u64) -> Document {
        let mut document = Document::new();
        document.insert("_id", id as i64);
        document.insert("k", id as i64);
        for field in 0..FIELDS {
            document.insert(format!("field{field}"), filler(id * FIELDS as u64 + field as u64, self.field_len(field)));
        }
        document
    }

    /// The length of `field<n>`'s string.
    fn field_len(&self, field: usize) -> usize {
        self.field_len + if field == 0 { self.pad } else { 0 }
    }

    fn bytes(&self, id: u64) -> BenchResult<Vec<u8>> {
        Ok(self.document(id).to_vec()?)
    }

    /// A YCSB update: one random field gets a new value of the same length.
    fn update(&self, worker: usize, seq: u64) -> Document {
        let draw = random(worker, seq, FIELD_SALT);
        let field = (draw % FIELDS as u64) as usize;
        let mut set = Document::new();
        set.insert(format!("field{field}"), filler(draw, self.field_len(field)));
        doc! { "$set": set }
    }

    /// A uniform random `_id` among the loaded records.
    fn random_id(&self, worker: usize, seq: u64) -> u64 {
        random(worker, seq, KEY_SALT) % self.records
    }
}

/// SplitMix64: a tiny, good-enough generator for keys and filler.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A random number that depends only on the worker, its operation number and a salt.
fn random(worker: usize, seq: u64, salt: u64) -> u64 {
    let mut state = ((worker as u64) << 48) ^ seq ^ salt.rotate_left(17);
    splitmix64(&mut state)
}

/// `len` lowercase letters derived from `seed`.
fn filler(seed: u64, len: usize) -> String {
    let mut state = seed;
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for byte in splitmix64(&mut state).to_le_bytes().into_iter().take(len - out.len()) {
            out.push(char::from(b'a' + byte % 26));
        }
    }
    out
}

/// The engine floor's key for `id`: the collection prefix, then Monarch's `_id` encoding.
fn engine_key(id: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(24);
    key.extend_from_slice(&ENGINE_PREFIX.to_be_bytes());
    monarch::storage::keys::encode_value(RawBsonRef::Int64(id as i64), &mut key);
    key
}

// --- Measurement ---------------------------------------------------------------------------

/// One worker's figures: operations started after the warm-up and before the end.
struct Recorder {
    warm_end: Instant,
    end: Instant,
    latency: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
    first_start: Option<Instant>,
    last_end: Option<Instant>,
}

impl Recorder {
    fn new(start: Instant, timing: Timing) -> BenchResult<Self> {
        Ok(Self {
            warm_end: start + timing.warmup,
            end: start + timing.warmup + timing.duration,
            latency: Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3)?,
            errors: 0,
            first_error: None,
            first_start: None,
            last_end: None,
        })
    }

    fn running(&self) -> bool {
        Instant::now() < self.end
    }

    fn record(&mut self, started: Instant, outcome: Result<(), String>) {
        let done = Instant::now();
        if started < self.warm_end {
            return;
        }
        self.first_start.get_or_insert(started);
        self.last_end = Some(done);
        match outcome {
            Ok(()) => self.latency.saturating_record((done - started).as_micros().try_into().unwrap_or(u64::MAX)),
            Err(error) => {
                self.errors += 1;
                self.first_error.get_or_insert(error);
            }
        }
    }

    /// Successful operations per second over this worker's own measured window.
    fn rate(&self) -> f64 {
        match (self.first_start, self.last_end) {
            (Some(first), Some(last)) if last > first => self.latency.len() as f64 / (last - first).as_secs_f64(),
            _ => 0.0,
        }
    }
}

/// The merged figures of one workload or floor.
#[derive(Debug, Clone)]
struct Measured {
    ops: u64,
    errors: u64,
    first_error: Option<String>,
    ops_per_sec: f64,
    latency: Histogram<u64>,
    /// Documents (or records) per operation: 1, 1,000 for batches, the record count for scans.
    items_per_op: u64,
}

impl Measured {
    fn merge(recorders: Vec<Recorder>, items_per_op: u64) -> BenchResult<Self> {
        let mut latency = Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3)?;
        let mut errors = 0;
        let mut first_error = None;
        let mut ops_per_sec = 0.0;
        for recorder in recorders {
            latency.add(&recorder.latency)?;
            ops_per_sec += recorder.rate();
            errors += recorder.errors;
            first_error = first_error.or(recorder.first_error);
        }
        Ok(Self { ops: latency.len(), errors, first_error, ops_per_sec, latency, items_per_op })
    }

    /// The figures of equally long slices of one measurement: the mean rate, every latency.
    fn combine(slices: Vec<Measured>) -> BenchResult<Self> {
        let count = slices.len();
        let mut slices = slices.into_iter();
        let mut combined = slices.next().ok_or("no slice was measured")?;
        for slice in slices {
            combined.latency.add(&slice.latency)?;
            combined.ops += slice.ops;
            combined.errors += slice.errors;
            combined.ops_per_sec += slice.ops_per_sec;
            combined.first_error = combined.first_error.or(slice.first_error);
        }
        combined.ops_per_sec /= count as f64;
        Ok(combined)
    }

    /// Documents (or records) per second.
    fn item_rate(&self) -> f64 {
        self.ops_per_sec * self.items_per_op as f64
    }

    fn quantile_us(&self, quantile: f64) -> u64 {
        self.latency.value_at_quantile(quantile)
    }

    fn to_json(&self, unit: &str) -> Value {
        json!({
            "ops": self.ops,
            "errors": self.errors,
            "first_error": self.first_error,
            "ops_per_sec": round(self.ops_per_sec),
            "items_per_op": self.items_per_op,
            "rate": round(self.item_rate()),
            "rate_unit": unit,
            "latency_us": {
                "p50": self.quantile_us(0.5),
                "p95": self.quantile_us(0.95),
                "p99": self.quantile_us(0.99),
                "p99_9": self.quantile_us(0.999),
                "max": self.latency.max(),
                "mean": round(self.latency.mean()),
            },
        })
    }
}

/// Runs `op` from `clients` tasks until the measurement ends. `op` prepares a request (not
/// timed) and returns the future that sends it (timed).
async fn drive<F, Fut>(clients: usize, timing: Timing, items_per_op: u64, op: F) -> BenchResult<Measured>
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for worker in 0..clients {
        let op = op.clone();
        let mut recorder = Recorder::new(start, timing)?;
        tasks.push(tokio::spawn(async move {
            let mut seq = timing.first_seq;
            while recorder.running() {
                let request = op(worker, seq);
                let started = Instant::now();
                let outcome = request.await;
                recorder.record(started, outcome);
                seq += 1;
            }
            recorder
        }));
    }
    let mut recorders = Vec::with_capacity(clients);
    for task in tasks {
        recorders.push(task.await?);
    }
    Measured::merge(recorders, items_per_op)
}

/// Runs `op` from `threads` threads until the measurement ends. `op` prepares the work (not
/// timed) and returns the closure that does it (timed).
fn drive_threads<F, W>(threads: usize, timing: Timing, items_per_op: u64, op: F) -> BenchResult<Measured>
where
    F: Fn(usize, u64) -> W + Sync,
    W: FnOnce() -> Result<(), String>,
{
    let start = Instant::now();
    let recorders = (0..threads).map(|_| Recorder::new(start, timing)).collect::<BenchResult<Vec<_>>>()?;
    let recorders = std::thread::scope(|scope| {
        let handles: Vec<_> = recorders
            .into_iter()
            .enumerate()
            .map(|(worker, mut recorder)| {
                let op = &op;
                scope.spawn(move || {
                    let mut seq = timing.first_seq;
                    while recorder.running() {
                        let work = op(worker, seq);
                        let started = Instant::now();
                        let outcome = work();
                        recorder.record(started, outcome);
                        seq += 1;
                    }
                    recorder
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().map_err(|_| "a floor thread panicked"))
            .collect::<Result<Vec<_>, _>>()
    })?;
    Measured::merge(recorders, items_per_op)
}

// --- Floors --------------------------------------------------------------------------------

/// The floors measured in this run.
#[derive(Debug, Default)]
struct Floors {
    measured: Vec<(FloorRun, Measured)>,
}

impl Floors {
    /// Adds the echo floor at each client count: every echo slice of the run at that count.
    fn add_echo(&mut self, outcomes: &[Outcome], config: &Config) -> BenchResult<()> {
        let clients = |outcome: &Outcome| outcome.workload.clients(config);
        let mut counts: Vec<usize> = outcomes.iter().filter(|o| o.echo().is_some()).map(clients).collect();
        counts.sort_unstable();
        counts.dedup();
        for threads in counts {
            let slices: Vec<Measured> =
                outcomes.iter().filter(|o| clients(o) == threads).filter_map(|o| o.echo().cloned()).collect();
            self.measured.push((FloorRun { floor: Floor::Echo, threads }, Measured::combine(slices)?));
        }
        self.measured.sort_by_key(|(run, _)| *run);
        Ok(())
    }

    fn get(&self, floor: Floor, threads: usize) -> Option<&Measured> {
        self.measured.iter().find(|(run, _)| *run == FloorRun { floor, threads }).map(|(_, m)| m)
    }

    /// The floor rate `basis` stands for at `threads`, and how to name it.
    fn rate(&self, basis: Basis, threads: usize) -> Option<(String, f64)> {
        match basis {
            Basis::Floor(floor) => self.get(floor, threads).map(|m| (floor.name().to_owned(), m.item_rate())),
            Basis::Mix { read_pct } => {
                let read = self.get(Floor::EngineRead, threads)?.item_rate();
                let write = self.get(Floor::EngineWrite, threads)?.item_rate();
                let r = read_pct as f64 / 100.0;
                let blended = 1.0 / (r / read + (1.0 - r) / write);
                Some((format!("engine {read_pct}/{} read/write", 100 - read_pct), blended))
            }
            Basis::None => None,
        }
    }
}

/// Measures the engine floors in `engine_needs`, before Monarch starts: interleaving them with
/// Monarch's workloads would let each side's background flushes and compactions run during
/// the other's measurement.
fn measure_floors(config: &Config, engine_needs: &[FloorRun]) -> BenchResult<Floors> {
    let mut floors = Floors::default();
    if engine_needs.is_empty() {
        return Ok(floors);
    }
    let load = engine_needs.iter().any(|r| r.floor.needs_records());
    if load {
        println!("loading the engine floor ({} records) ...", config.shape.records);
    }
    let engine = Engine::open(config.shape, config.many_shape, load)?;
    for &run in engine_needs {
        println!("measuring the {} floor, {} threads ...", run.floor.name(), run.threads);
        floors.measured.push((run, engine.measure(run.floor, run.threads, config.timing)?));
    }
    Ok(floors)
}

/// fjall on its own: the same keys and documents, no server in between.
struct Engine {
    db: Database,
    /// Holds the loaded records: point reads and scans.
    docs: Keyspace,
    /// Receives single-record writes.
    writes: Keyspace,
    /// Receives batches.
    batches: Keyspace,
    /// Receives the group commit floor's durable writes.
    durable: Keyspace,
    /// The encoded document of every record.
    values: Vec<Vec<u8>>,
    /// One batch's worth of encoded documents of the batch floor's size.
    batch_values: Vec<Vec<u8>>,
    records: u64,
    /// Declared last: removed after the database is closed.
    _dir: tempfile::TempDir,
}

impl Engine {
    /// Opens a fresh database; `load` writes the records that reads and scans need.
    fn open(shape: Shape, many_shape: Shape, load: bool) -> BenchResult<Self> {
        let dir = tempfile::tempdir()?;
        let db = Database::builder(dir.path().join("engine")).open()?;
        let docs = db.keyspace("docs", KeyspaceCreateOptions::default)?;
        let writes = db.keyspace("writes", KeyspaceCreateOptions::default)?;
        let batches = db.keyspace("batches", KeyspaceCreateOptions::default)?;
        let durable = db.keyspace("durable", KeyspaceCreateOptions::default)?;
        let values = (0..shape.records).map(|id| shape.bytes(id)).collect::<BenchResult<Vec<_>>>()?;
        let batch_values = (0..BATCH).map(|id| many_shape.bytes(id)).collect::<BenchResult<Vec<_>>>()?;
        let engine =
            Self { db, docs, writes, batches, durable, values, batch_values, records: shape.records, _dir: dir };
        if load {
            engine.load()?;
        }
        Ok(engine)
    }

    fn load(&self) -> BenchResult<()> {
        for first in (0..self.records).step_by(BATCH as usize) {
            let mut batch = self.db.batch();
            for id in first..self.records.min(first + BATCH) {
                batch.insert(&self.docs, engine_key(id), self.value(id));
            }
            batch.commit()?;
        }
        Ok(())
    }

    fn value(&self, id: u64) -> &[u8] {
        self.values.get((id % self.records) as usize).map_or(&[], Vec::as_slice)
    }

    fn batch_value(&self, id: u64) -> &[u8] {
        self.batch_values.get((id % BATCH) as usize).map_or(&[], Vec::as_slice)
    }

    fn measure(&self, floor: Floor, threads: usize, timing: Timing) -> BenchResult<Measured> {
        match floor {
            Floor::EngineWrite => self.single_writes(threads, timing),
            Floor::EngineRead => self.point_reads(threads, timing),
            Floor::EngineScan => self.scans(threads, timing),
            Floor::EngineBatch => self.batch_writes(threads, timing),
            Floor::EngineGroupCommit => self.group_commits(threads, timing),
            Floor::Echo => Err("the echo floor is not an engine floor".into()),
        }
    }

    fn single_writes(&self, threads: usize, timing: Timing) -> BenchResult<Measured> {
        let next = AtomicU64::new(0);
        drive_threads(threads, timing, 1, |_, _| {
            let id = next.fetch_add(1, Ordering::Relaxed);
            let (key, value) = (engine_key(id), self.value(id).to_vec());
            move || {
                let mut batch = self.db.batch();
                batch.insert(&self.writes, key, value);
                batch.commit().map_err(|e| e.to_string())
            }
        })
    }

    /// One-record batches committed without sync, each writer then waiting until a shared
    /// `persist(SyncData)` covers its batch: what `j: true` costs at best.
    fn group_commits(&self, threads: usize, timing: Timing) -> BenchResult<Measured> {
        let next = AtomicU64::new(0);
        let group = GroupCommit::new(threads);
        drive_threads(threads, timing, 1, |_, _| {
            let id = next.fetch_add(1, Ordering::Relaxed);
            let (key, value) = (engine_key(id), self.value(id).to_vec());
            let group = &group;
            move || {
                let mut batch = self.db.batch();
                batch.insert(&self.durable, key, value);
                batch.commit().map_err(|e| e.to_string())?;
                group.wait_durable(&self.db)
            }
        })
    }

    fn point_reads(&self, threads: usize, timing: Timing) -> BenchResult<Measured> {
        drive_threads(threads, timing, 1, |worker, seq| {
            let key = engine_key(random(worker, seq, KEY_SALT) % self.records);
            move || match self.docs.get(key) {
                Ok(Some(value)) => {
                    black_box(value);
                    Ok(())
                }
                Ok(None) => Err("a loaded key is missing".to_owned()),
                Err(error) => Err(error.to_string()),
            }
        })
    }

    fn scans(&self, threads: usize, timing: Timing) -> BenchResult<Measured> {
        drive_threads(threads, timing, self.records, |_, _| {
            move || {
                let mut seen = 0;
                for guard in self.docs.prefix(ENGINE_PREFIX.to_be_bytes()) {
                    black_box(guard.into_inner().map_err(|e| e.to_string())?);
                    seen += 1;
                }
                if seen == self.records { Ok(()) } else { Err(format!("scanned {seen} of {} records", self.records)) }
            }
        })
    }

    fn batch_writes(&self, threads: usize, timing: Timing) -> BenchResult<Measured> {
        let next = AtomicU64::new(0);
        drive_threads(threads, timing, BATCH, |_, _| {
            let first = next.fetch_add(BATCH, Ordering::Relaxed);
            let records: Vec<_> =
                (first..first + BATCH).map(|id| (engine_key(id), self.batch_value(id).to_vec())).collect();
            move || {
                let mut batch = self.db.batch();
                for (key, value) in records {
                    batch.insert(&self.batches, key, value);
                }
                batch.commit().map_err(|e| e.to_string())
            }
        })
    }
}

/// The group commit floor's bookkeeping: which committed batches a finished sync covers.
struct GroupCommit {
    /// The writers taking part: a sync that covers this many pending batches covers everyone.
    writers: u64,
    state: Mutex<GroupState>,
    /// Signalled when a sync ends.
    synced: Condvar,
    /// Signalled when a batch is committed (the gathering leader waits on it).
    committed: Condvar,
}

#[derive(Debug, Default)]
struct GroupState {
    /// Batches committed (and numbered) so far.
    committed: u64,
    /// Every batch up to this number is on disk.
    synced: u64,
    /// A leader is gathering or syncing.
    syncing: bool,
}

/// The longest a group commit leader waits for the other writers before it syncs (Monarch's
/// own journal gathers for at most as long).
const GROUP_GATHER_MAX: Duration = Duration::from_millis(1);

impl GroupCommit {
    fn new(writers: usize) -> Self {
        Self { writers: writers as u64, state: Mutex::default(), synced: Condvar::new(), committed: Condvar::new() }
    }

    /// Numbers the batch its caller just committed and returns once it is on disk. The first
    /// writer to find no sync running leads: it waits until every writer has a batch pending
    /// (or 1 ms has passed, so writers that stopped cannot stall it), then syncs once for all
    /// of them. fjall holds its journal lock while it syncs, so a leader that synced at once
    /// would cover only the one or two writers that had committed by then, and block the rest
    /// behind the sync: this is the best case, one sync per round of writers.
    fn wait_durable(&self, db: &Database) -> Result<(), String> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.committed += 1;
        self.committed.notify_all();
        // IMPORTANT: numbered after the commit, so a sync that starts once this number is
        // taken covers the batch.
        let ticket = state.committed;
        while state.synced < ticket {
            if state.syncing {
                state = self.synced.wait(state).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            state.syncing = true;
            let gathering = Instant::now();
            while state.committed - state.synced < self.writers {
                let Some(left) = GROUP_GATHER_MAX.checked_sub(gathering.elapsed()) else { break };
                state = self.committed.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
            }
            let target = state.committed;
            drop(state);
            let outcome = db.persist(PersistMode::SyncData).map_err(|e| e.to_string());
            state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.syncing = false;
            if outcome.is_ok() {
                state.synced = state.synced.max(target);
            }
            self.synced.notify_all();
            outcome?;
        }
        Ok(())
    }
}

/// The echo server's process: announces its port in a log line shaped like `monarchd`'s and
/// serves until SIGTERM.
fn serve_echo() -> BenchResult<()> {
    tokio::runtime::Runtime::new()?.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        println!("{}", json!({ "s": "I", "msg": "Waiting for connections", "attr": { "port": port } }));
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                _ = terminate.recv() => return Ok(()),
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(echo_connection(stream));
                    }
                    Err(error) => eprintln!("echo server: accept failed: {error}"),
                },
            }
        }
    })
}

async fn echo_connection(stream: TcpStream) {
    let mut framed = Framed::new(stream, MessageCodec::default());
    let mut request_id = 0;
    while let Some(Ok(request)) = framed.next().await {
        let Some(reply) = echo_reply(&request, request_id) else { continue };
        request_id = request_id.wrapping_add(1);
        if framed.send(reply).await.is_err() {
            break;
        }
    }
}

/// The reply to `request`: none for fire-and-forget messages.
fn echo_reply(request: &Message, request_id: i32) -> Option<Message> {
    let body = match &request.body {
        Body::Msg(msg) if msg.flags.more_to_come() => return None,
        Body::Msg(msg) => Body::Msg(OpMsg::new(echo_document(msg.body.as_raw())?)),
        Body::Query(query) => Body::Reply(OpReply::command_reply(echo_document(query.query.as_raw())?)),
        Body::Reply(_) => return None,
    };
    Some(Message { header: Header { request_id, response_to: request.header.request_id }, body, compressor: None })
}

/// A standalone mongod's handshake for `hello`/`isMaster`, `{ok: 1}` for anything else.
fn echo_document(command: &RawDocument) -> Option<DocumentBytes> {
    let name = command.iter().next().and_then(Result::ok).map(|(key, _)| key.as_str().to_owned());
    let max_bson = i32::try_from(monarch_wire::MAX_BSON_OBJECT_SIZE).unwrap_or(i32::MAX);
    let max_message = i32::try_from(monarch_wire::MAX_MESSAGE_SIZE).unwrap_or(i32::MAX);
    let reply = match name.as_deref() {
        Some("hello" | "isMaster" | "ismaster") => doc! {
            "helloOk": true,
            "isWritablePrimary": true,
            "ismaster": true,
            "maxBsonObjectSize": max_bson,
            "maxMessageSizeBytes": max_message,
            "maxWriteBatchSize": 100_000,
            "logicalSessionTimeoutMinutes": 30,
            "minWireVersion": 0,
            "maxWireVersion": 21,
            "ok": 1.0,
        },
        _ => doc! { "ok": 1.0 },
    };
    DocumentBytes::try_from(&reply).ok()
}

// --- Monarch -------------------------------------------------------------------------------

/// A server in its own process on a free port (`monarchd` with its data in a temp dir, or the
/// echo server); stopped with SIGTERM.
struct ServerProcess {
    child: Child,
    port: u16,
    /// How the server ended, once it has.
    exit: Option<String>,
    /// Whether it stopped with status 0 when the harness sent SIGTERM.
    clean_exit: bool,
    log: Arc<Mutex<LogSummary>>,
    /// Declared last: removed after the server has stopped.
    _dir: Option<tempfile::TempDir>,
}

/// Warning and error lines from the server's log, and its last lines.
#[derive(Debug, Default)]
struct LogSummary {
    notable: u64,
    kept: Vec<String>,
    last: VecDeque<String>,
}

impl ServerProcess {
    /// The release `monarchd` that cargo built next to this bench.
    fn monarchd(extra: &[String]) -> BenchResult<Self> {
        let dir = tempfile::tempdir()?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_monarchd"));
        command.args(["--port", "0", "--quiet", "--dbpath"]).arg(dir.path());
        // Many servers may run at once: no admin HTTP port unless the caller asks for one.
        if !extra.iter().any(|arg| arg == "--adminPort") {
            command.args(["--adminPort", "disabled"]);
        }
        command.args(extra);
        Self::spawn(command, Some(dir))
    }

    /// This harness, serving the echo floor.
    fn echo() -> BenchResult<Self> {
        let mut command = Command::new(std::env::current_exe()?);
        command.arg("--echo-server");
        Self::spawn(command, None)
    }

    fn spawn(mut command: Command, dir: Option<tempfile::TempDir>) -> BenchResult<Self> {
        let mut child = command.stdout(Stdio::piped()).spawn()?;
        let stdout = child.stdout.take();
        let mut server = Self { child, port: 0, exit: None, clean_exit: false, log: Arc::default(), _dir: dir };
        let mut reader = BufReader::new(stdout.ok_or("the server has no stdout")?);
        server.port = read_port(&mut reader)?;
        let log = Arc::clone(&server.log);
        std::thread::spawn(move || drain_log(reader, &log));
        Ok(server)
    }

    /// The exit status if the server has exited on its own.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends SIGTERM and waits for the exit (killing the server after 30 s).
    fn stop(&mut self) {
        if self.exit.is_some() {
            return;
        }
        if let Some(status) = self.exited() {
            self.exit = Some(format!("exited before the harness stopped it: {status}"));
            return;
        }
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.clean_exit = status.success();
                    self.exit = Some(format!("stopped by SIGTERM: {status}"));
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break,
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.exit = Some("did not exit within 30 s of SIGTERM; killed".to_owned());
    }

    fn summary(&self) -> Value {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let mut summary = json!({
            "exit": self.exit,
            "clean_exit": self.clean_exit,
            "log_warnings_and_errors": log.notable,
            "log_lines": log.kept,
        });
        if !self.clean_exit {
            summary["last_log_lines"] = json!(log.last);
        }
        summary
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads the log until the "Waiting for connections" line and returns its port.
fn read_port(reader: &mut BufReader<ChildStdout>) -> BenchResult<u16> {
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err("the server exited before listening".into());
        }
        if line.contains("\"Waiting for connections\"") {
            let parsed: Value = serde_json::from_str(&line)?;
            let port = parsed["attr"]["port"].as_u64().and_then(|p| u16::try_from(p).ok());
            return port.ok_or_else(|| format!("no port in {line}").into());
        }
    }
}

/// Keeps the pipe flowing and remembers warnings and errors.
fn drain_log(reader: BufReader<ChildStdout>, log: &Mutex<LogSummary>) {
    for line in reader.lines().map_while(Result::ok) {
        let severity = serde_json::from_str::<Value>(&line).ok().and_then(|v| v["s"].as_str().map(str::to_owned));
        let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(severity.as_deref(), Some("W" | "E" | "F")) {
            log.notable += 1;
            if log.kept.len() < LOG_LINES_KEPT {
                log.kept.push(line.clone());
            }
        }
        if log.last.len() == LOG_LINES_KEPT {
            log.last.pop_front();
        }
        log.last.push_back(line);
    }
}

async fn connect(port: u16, clients: usize) -> BenchResult<Client> {
    let uri = format!(
        "mongodb://127.0.0.1:{port}/?directConnection=true&maxPoolSize={clients}&minPoolSize={clients}\
         &serverSelectionTimeoutMS=5000&appName=monarch-load"
    );
    Ok(Client::with_uri_str(uri).await?)
}

/// Driver clients by pool size: a pool must be as large as its workload's concurrency, or the
/// driver queues requests.
#[derive(Default)]
struct Clients {
    pools: Vec<(usize, Client)>,
}

impl Clients {
    async fn get(&mut self, port: u16, size: usize) -> BenchResult<Client> {
        if let Some((_, client)) = self.pools.iter().find(|(s, _)| *s == size) {
            return Ok(client.clone());
        }
        let client = connect(port, size).await?;
        self.pools.push((size, client.clone()));
        Ok(client)
    }

    async fn shutdown(self) {
        for (_, client) in self.pools {
            client.shutdown().await;
        }
    }
}

/// Runs `workloads` against `server`, loading `bench.usertable` first if one needs it. Each
/// workload is measured in `config.rounds` slices, each right after a slice of pings to the
/// echo server at the same client count, so that both see the same machine.
async fn run_workloads(
    config: &Config,
    server: &mut ServerProcess,
    echo: &ServerProcess,
    workloads: &[Workload],
) -> BenchResult<Vec<Outcome>> {
    let (mut monarch, mut echoes) = (Clients::default(), Clients::default());
    if workloads.iter().any(|w| w.needs_records()) {
        println!("loading {} records into Monarch ...", config.shape.records);
        let client = monarch.get(server.port, config.clients).await?;
        let started = Instant::now();
        load(&client.database("bench").collection("usertable"), config.shape, config.clients).await?;
        let seconds = started.elapsed().as_secs_f64();
        println!("  loaded in {seconds:.1} s ({} docs/s)", thousands(config.shape.records as f64 / seconds));
    }
    let mut outcomes = Vec::with_capacity(workloads.len());
    for &workload in workloads {
        if let Some(status) = server.exited() {
            let reason = format!("monarchd exited ({status}) before it");
            println!("{reason}: {} and the remaining workloads are skipped", workload.name());
            outcomes.extend(workloads.iter().skip(outcomes.len()).map(|&w| Outcome::skipped(w, &reason)));
            break;
        }
        println!("running {} ...", workload.name());
        let clients = workload.clients(config);
        let run = WorkloadRun::prepare(workload, monarch.get(server.port, clients).await?, config).await?;
        let echo_client = echoes.get(echo.port, clients).await?;
        let (mut slices, mut echo_slices) = (Vec::new(), Vec::new());
        for round in 0..config.rounds {
            let timing = config.timing.slice(round, config.rounds);
            echo_slices.push(ping(&echo_client, clients, timing).await?);
            slices.push(run.measure(timing).await?);
        }
        let figures = Figures::Rate { measured: Measured::combine(slices)?, echo: Measured::combine(echo_slices)? };
        outcomes.push(Outcome { workload, figures });
    }
    monarch.shutdown().await;
    echoes.shutdown().await;
    Ok(outcomes)
}

/// One workload's result.
struct Outcome {
    workload: Workload,
    figures: Figures,
}

/// What a workload produced.
enum Figures {
    /// Rates and latencies of a driven workload, and of the echo pings interleaved with it.
    Rate { measured: Measured, echo: Measured },
    /// The `rss` check's memory readings.
    Memory(rss::Memory),
    /// Not measured, and why.
    Skipped(String),
    /// Left out on purpose by a flag, and which.
    Omitted(String),
}

impl Outcome {
    fn skipped(workload: Workload, reason: &str) -> Self {
        Self { workload, figures: Figures::Skipped(reason.to_owned()) }
    }

    /// The rates, if it was a driven workload that ran.
    fn measured(&self) -> Option<&Measured> {
        match &self.figures {
            Figures::Rate { measured, .. } => Some(measured),
            Figures::Memory(_) | Figures::Skipped(_) | Figures::Omitted(_) => None,
        }
    }

    /// The echo pings interleaved with it, if it was a driven workload that ran.
    fn echo(&self) -> Option<&Measured> {
        match &self.figures {
            Figures::Rate { echo, .. } => Some(echo),
            Figures::Memory(_) | Figures::Skipped(_) | Figures::Omitted(_) => None,
        }
    }
}

/// A workload ready to be measured, slice after slice: its collection, index and the next new
/// `_id` it inserts outlive each slice.
struct WorkloadRun {
    workload: Workload,
    client: Client,
    coll: Collection<Document>,
    shape: Shape,
    clients: usize,
    next_id: Arc<AtomicU64>,
}

impl WorkloadRun {
    /// Picks the collection and sets up the index the workload needs (not timed).
    async fn prepare(workload: Workload, client: Client, config: &Config) -> BenchResult<Self> {
        let db = client.database("bench");
        let usertable = db.collection("usertable");
        let (coll, shape, first_id) = match workload {
            Workload::Insert => (db.collection("inserts"), config.shape, 0),
            Workload::InsertJ => {
                let journaled = WriteConcern::builder().journal(true).build();
                let options = CollectionOptions::builder().write_concern(journaled).build();
                (db.collection_with_options("journaled", options), config.shape, 0)
            }
            Workload::InsertMany => (db.collection("batches"), config.many_shape, 0),
            Workload::EqScan => {
                set_k_index(&usertable, false).await?;
                (usertable, config.shape, 0)
            }
            Workload::EqIndex => {
                set_k_index(&usertable, true).await?;
                (usertable, config.shape, 0)
            }
            Workload::YcsbE => {
                set_k_index(&usertable, true).await?;
                // Its inserts add records after the loaded ones.
                (usertable, config.shape, config.shape.records)
            }
            _ => (usertable, config.shape, 0),
        };
        let clients = workload.clients(config);
        Ok(Self { workload, client, coll, shape, clients, next_id: Arc::new(AtomicU64::new(first_id)) })
    }

    async fn measure(&self, timing: Timing) -> BenchResult<Measured> {
        let (coll, shape, clients) = (&self.coll, self.shape, self.clients);
        let next = Arc::clone(&self.next_id);
        match self.workload {
            Workload::Ping => ping(&self.client, clients, timing).await,
            Workload::YcsbA => ycsb(coll, shape, 50, clients, timing).await,
            Workload::YcsbB => ycsb(coll, shape, 95, clients, timing).await,
            Workload::YcsbC => ycsb(coll, shape, 100, clients, timing).await,
            Workload::Insert | Workload::InsertJ => insert(coll, shape, next, clients, timing).await,
            Workload::InsertMany => insert_many(coll, shape, next, clients, timing).await,
            Workload::Scan => scan(coll, shape, clients, timing).await,
            Workload::Count => count(coll, shape, clients, timing).await,
            Workload::EqScan => equality(coll, shape, shape.records, clients, timing).await,
            Workload::EqIndex => equality(coll, shape, 1, clients, timing).await,
            Workload::YcsbE => ycsb_e(coll, shape, next, clients, timing).await,
            Workload::Rss | Workload::All | Workload::Goals => {
                Err(format!("{} is not a driven workload", self.workload.name()).into())
            }
        }
    }
}

/// Inserts the records with `insert_many` batches from `clients` tasks.
async fn load(coll: &Collection<Document>, shape: Shape, clients: usize) -> BenchResult<()> {
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (coll, next) = (coll.clone(), Arc::clone(&next));
            tokio::spawn(async move {
                loop {
                    let first = next.fetch_add(BATCH, Ordering::Relaxed);
                    if first >= shape.records {
                        return Ok::<_, mongodb::error::Error>(());
                    }
                    let documents = (first..shape.records.min(first + BATCH)).map(|id| shape.document(id));
                    coll.insert_many(documents).await?;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(())
}

async fn ping(client: &Client, clients: usize, timing: Timing) -> BenchResult<Measured> {
    let admin = client.database("admin");
    drive(clients, timing, 1, move |_, _| {
        let admin = admin.clone();
        async move { admin.run_command(doc! { "ping": 1 }).await.map(drop).map_err(|e| e.to_string()) }
    })
    .await
}

/// YCSB reads (`find_one` by `_id`) and updates (`$set` of one field by `_id`).
async fn ycsb(
    coll: &Collection<Document>,
    shape: Shape,
    read_pct: u64,
    clients: usize,
    timing: Timing,
) -> BenchResult<Measured> {
    let coll = coll.clone();
    drive(clients, timing, 1, move |worker, seq| {
        let coll = coll.clone();
        let id = shape.random_id(worker, seq) as i64;
        let update = (random(worker, seq, MIX_SALT) % 100 >= read_pct).then(|| shape.update(worker, seq));
        async move {
            match update {
                None => match coll.find_one(doc! { "_id": id }).await {
                    Ok(Some(_)) => Ok(()),
                    Ok(None) => Err(format!("find_one: _id {id} not found")),
                    Err(error) => Err(error.to_string()),
                },
                Some(update) => match coll.update_one(doc! { "_id": id }, update).await {
                    Ok(result) if result.matched_count == 1 => Ok(()),
                    Ok(result) => Err(format!("update_one: _id {id} matched {}", result.matched_count)),
                    Err(error) => Err(error.to_string()),
                },
            }
        }
    })
    .await
}

/// `insert_one` of new documents, numbered from `next` on.
async fn insert(
    coll: &Collection<Document>,
    shape: Shape,
    next: Arc<AtomicU64>,
    clients: usize,
    timing: Timing,
) -> BenchResult<Measured> {
    let coll = coll.clone();
    drive(clients, timing, 1, move |_, _| {
        let coll = coll.clone();
        let document = shape.document(next.fetch_add(1, Ordering::Relaxed));
        async move { coll.insert_one(document).await.map(drop).map_err(|e| e.to_string()) }
    })
    .await
}

/// `insert_many` of `BATCH` new documents at a time, numbered from `next` on.
async fn insert_many(
    coll: &Collection<Document>,
    shape: Shape,
    next: Arc<AtomicU64>,
    clients: usize,
    timing: Timing,
) -> BenchResult<Measured> {
    let coll = coll.clone();
    drive(clients, timing, BATCH, move |_, _| {
        let coll = coll.clone();
        let first = next.fetch_add(BATCH, Ordering::Relaxed);
        let documents: Vec<_> = (first..first + BATCH).map(|id| shape.document(id)).collect();
        async move {
            match coll.insert_many(documents).await {
                Ok(result) if result.inserted_ids.len() as u64 == BATCH => Ok(()),
                Ok(result) => Err(format!("insert_many inserted {} of {BATCH}", result.inserted_ids.len())),
                Err(error) => Err(error.to_string()),
            }
        }
    })
    .await
}

/// A `find` on a field no document has: reads and tests every document, returns none.
async fn scan(coll: &Collection<Document>, shape: Shape, clients: usize, timing: Timing) -> BenchResult<Measured> {
    let coll = coll.clone();
    drive(clients, timing, shape.records, move |_, _| {
        let coll = coll.clone();
        async move {
            let mut cursor = coll.find(doc! { "absentField": 1 }).await.map_err(|e| e.to_string())?;
            match cursor.advance().await {
                Ok(false) => Ok(()),
                Ok(true) => Err("the scan filter matched a document".to_owned()),
                Err(error) => Err(error.to_string()),
            }
        }
    })
    .await
}

/// Creates (`true`) or drops (`false`) the index `k_1` on the records; prints the build time.
async fn set_k_index(coll: &Collection<Document>, present: bool) -> BenchResult<()> {
    let names = coll.list_index_names().await?;
    let exists = names.iter().any(|n| n == "k_1");
    match (present, exists) {
        (true, false) => {
            let started = Instant::now();
            coll.create_index(mongodb::IndexModel::builder().keys(doc! { "k": 1 }).build()).await?;
            println!("  built index k_1 in {:.2} s", started.elapsed().as_secs_f64());
        }
        (false, true) => coll.drop_index("k_1").await?,
        _ => {}
    }
    Ok(())
}

/// `find_one({k: <random record>})`; `items_per_op` is the records one query reads.
async fn equality(
    coll: &Collection<Document>,
    shape: Shape,
    items_per_op: u64,
    clients: usize,
    timing: Timing,
) -> BenchResult<Measured> {
    let coll = coll.clone();
    drive(clients, timing, items_per_op, move |worker, seq| {
        let coll = coll.clone();
        let k = shape.random_id(worker, seq) as i64;
        async move {
            match coll.find_one(doc! { "k": k }).await {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err(format!("find_one: k {k} not found")),
                Err(error) => Err(error.to_string()),
            }
        }
    })
    .await
}

/// YCSB-E: 95% range scans of 1 to 100 records from a random `k` through `k_1`, 5% inserts of
/// new records.
async fn ycsb_e(
    coll: &Collection<Document>,
    shape: Shape,
    next: Arc<AtomicU64>,
    clients: usize,
    timing: Timing,
) -> BenchResult<Measured> {
    let coll = coll.clone();
    drive(clients, timing, 1, move |worker, seq| {
        let coll = coll.clone();
        let draw = random(worker, seq, MIX_SALT);
        let insert = (draw % 100 < 5).then(|| shape.document(next.fetch_add(1, Ordering::Relaxed)));
        let start = shape.random_id(worker, seq) as i64;
        let length = (draw / 100 % 100 + 1) as i64;
        async move {
            if let Some(document) = insert {
                return coll.insert_one(document).await.map(drop).map_err(|e| e.to_string());
            }
            let mut cursor = coll
                .find(doc! { "k": { "$gte": start } })
                .sort(doc! { "k": 1 })
                .limit(length)
                .await
                .map_err(|e| e.to_string())?;
            let mut seen = 0;
            while cursor.advance().await.map_err(|e| e.to_string())? {
                seen += 1;
            }
            if seen == 0 && (start as u64) < shape.records {
                Err(format!("scan from k {start} found nothing"))
            } else {
                Ok(())
            }
        }
    })
    .await
}

/// The `count` command without a filter.
async fn count(coll: &Collection<Document>, shape: Shape, clients: usize, timing: Timing) -> BenchResult<Measured> {
    let coll = coll.clone();
    drive(clients, timing, shape.records, move |_, _| {
        let coll = coll.clone();
        async move {
            match coll.estimated_document_count().await {
                Ok(n) if n == shape.records => Ok(()),
                Ok(n) => Err(format!("count returned {n}, expected {}", shape.records)),
                Err(error) => Err(error.to_string()),
            }
        }
    })
    .await
}

// --- Report --------------------------------------------------------------------------------

struct Report<'a> {
    config: &'a Config,
    floors: Floors,
    results: Vec<Outcome>,
    server: Value,
}

impl Report<'_> {
    fn floor_description(&self, run: FloorRun) -> String {
        let threads = run.threads;
        match run.floor {
            Floor::Echo => format!("driver ping to the harness's OP_MSG echo server process, {threads} clients"),
            Floor::EngineWrite => format!("fjall one-record batch, no sync, {threads} threads"),
            Floor::EngineRead => format!("fjall point get by random key, {threads} threads"),
            Floor::EngineScan => format!("fjall full scan of {} records, {threads} threads", self.config.shape.records),
            Floor::EngineBatch => format!(
                "fjall batch of {BATCH} records of {} bytes, no sync, {threads} threads",
                self.config.many_shape.doc_size
            ),
            Floor::EngineGroupCommit => format!(
                "fjall one-record batch, then a persist(SyncData) shared by every waiting writer, {threads} threads"
            ),
        }
    }

    fn print_table(&self) {
        println!();
        println!("Floors (same run; latencies in µs)");
        println!(
            "  {:<20} {:>7} {:>10} {:>12} {:<10} {:>7} {:>7} {:>7} {:>8} {:>8} {:>6}  what",
            "floor", "clients", "ops/s", "rate", "unit", "p50", "p95", "p99", "p99.9", "max", "errors"
        );
        for (run, measured) in &self.floors.measured {
            println!(
                "  {:<20} {:>7} {}  {}",
                run.floor.name(),
                run.threads,
                figures(measured, floor_unit(run.floor)),
                self.floor_description(*run)
            );
        }
        println!();
        println!("Workloads: Monarch through the mongodb driver (latencies in µs)");
        println!(
            "  {:<13} {:>7} {:>10} {:>12} {:<10} {:>7} {:>7} {:>7} {:>8} {:>8} {:>6} {:>7} {:>7} {:>9}  ratio's floor",
            "workload",
            "clients",
            "ops/s",
            "rate",
            "unit",
            "p50",
            "p95",
            "p99",
            "p99.9",
            "max",
            "errors",
            "ratio",
            "vs echo",
            "echo"
        );
        for outcome in &self.results {
            let name = outcome.workload.name();
            let (measured, echo) = match &outcome.figures {
                Figures::Rate { measured, echo } => (measured, echo),
                Figures::Memory(_) => continue,
                Figures::Skipped(reason) => {
                    println!("  {name:<13} not measured: {reason}");
                    continue;
                }
                Figures::Omitted(reason) => {
                    println!("  {name:<13} omitted: {reason}");
                    continue;
                }
            };
            let clients = outcome.workload.clients(self.config);
            let unit = workload_unit(outcome.workload);
            let (ratio, floor) = match self.floor_ratio(outcome) {
                Some((floor, rate, ratio)) => (format!("{ratio:.3}"), format!("{floor} ({} {unit})", thousands(rate))),
                None => ("-".to_owned(), "-".to_owned()),
            };
            let vs_echo = measured.ops_per_sec / echo.ops_per_sec;
            println!(
                "  {name:<13} {clients:>7} {} {ratio:>7} {vs_echo:>7.3} {:>9}  {floor}",
                figures(measured, unit),
                thousands(echo.ops_per_sec)
            );
            if let Some(error) = &measured.first_error {
                println!("  {:<13} first error: {error}", "");
            }
        }
        println!();
        println!(
            "ratio = Monarch's rate / its floor's rate in the same unit, same clients (1.0 = as fast as the floor);"
        );
        println!(
            "vs echo = Monarch's operations/s / the echo server's pings/s (column echo) at the same client count,"
        );
        println!(
            "measured in {} slices interleaved with the workload's: the goal ratio of ycsb-c, ycsb-a, insert and insert-j.",
            self.config.rounds
        );
        if let Some(speedup) = self.index_speedup() {
            println!(
                "eq-index / eq-scan = {speedup:.0}x: what the index k_1 buys an equality on {} records.",
                self.config.shape.records
            );
        }
        for outcome in &self.results {
            if let Figures::Memory(memory) = &outcome.figures {
                memory.print();
            }
        }
        self.print_server_notes();
    }

    /// The measured figures of `workload`, if it ran.
    fn measured(&self, workload: Workload) -> Option<&Measured> {
        self.results.iter().find(|o| o.workload == workload).and_then(Outcome::measured)
    }

    /// `eq-index` operations/s over `eq-scan` operations/s, when both ran.
    fn index_speedup(&self) -> Option<f64> {
        let rate = |workload: Workload| self.measured(workload).map(|m| m.ops_per_sec);
        Some(rate(Workload::EqIndex)? / rate(Workload::EqScan)?.max(f64::MIN_POSITIVE))
    }

    fn print_server_notes(&self) {
        if self.server.is_null() {
            return;
        }
        if !self.server["clean_exit"].as_bool().unwrap_or(false) {
            println!("monarchd: {}; its last log lines:", self.server["exit"].as_str().unwrap_or("still running"));
            for line in self.server["last_log_lines"].as_array().into_iter().flatten() {
                println!("  {}", line.as_str().unwrap_or_default());
            }
        }
        let notable = self.server["log_warnings_and_errors"].as_u64().unwrap_or(0);
        if notable > 0 {
            println!("monarchd logged {notable} warning or error lines, first ones:");
            for line in self.server["log_lines"].as_array().into_iter().flatten() {
                println!("  {}", line.as_str().unwrap_or_default());
            }
        }
    }

    fn to_json(&self) -> Value {
        let floors: Vec<Value> = self
            .floors
            .measured
            .iter()
            .map(|(run, measured)| {
                let mut value = measured.to_json(floor_unit(run.floor));
                value["name"] = json!(run.floor.key());
                value["clients"] = json!(run.threads);
                value["what"] = json!(self.floor_description(*run));
                value
            })
            .collect();
        let workloads: Vec<Value> = self.results.iter().map(|outcome| self.workload_json(outcome)).collect();
        let shape = self.config.shape;
        json!({
            "config": {
                "records": shape.records,
                "doc_size": shape.doc_size,
                "many_doc_size": self.config.many_shape.doc_size,
                "fields": FIELDS,
                "clients": self.config.clients,
                "j_clients": self.config.j_clients,
                "duration_s": self.config.timing.duration.as_secs_f64(),
                "rounds": self.config.rounds,
                "warmup_s": self.config.timing.warmup.as_secs_f64(),
                "cores": std::thread::available_parallelism().map_or(0, usize::from),
                "server_args": self.config.server_args,
            },
            "floors": floors,
            "workloads": workloads,
            "index_speedup": self.index_speedup().map(round),
            "monarchd": self.server,
        })
    }

    /// The floor `outcome`'s workload is compared with (its name and rate at the workload's
    /// client count; for `ping`, the echo pings interleaved with it), and the workload's rate
    /// over it.
    fn floor_ratio(&self, outcome: &Outcome) -> Option<(String, f64, f64)> {
        let measured = outcome.measured()?;
        let (floor, rate) = match outcome.workload.basis() {
            Basis::Floor(Floor::Echo) => (Floor::Echo.name().to_owned(), outcome.echo()?.item_rate()),
            basis => self.floors.rate(basis, outcome.workload.clients(self.config))?,
        };
        Some((floor, rate, measured.item_rate() / rate))
    }

    /// Operations per second over the interleaved echo pings per second (same client count).
    fn ratio_to_echo(outcome: &Outcome) -> Option<f64> {
        Some(outcome.measured()?.ops_per_sec / outcome.echo()?.ops_per_sec)
    }

    fn workload_json(&self, outcome: &Outcome) -> Value {
        let name = outcome.workload.name();
        let (measured, echo) = match &outcome.figures {
            Figures::Rate { measured, echo } => (measured, echo),
            Figures::Memory(memory) => {
                let mut value = memory.to_json();
                value["name"] = json!(name);
                return value;
            }
            Figures::Skipped(reason) => return json!({ "name": name, "skipped": reason }),
            Figures::Omitted(reason) => return json!({ "name": name, "omitted": reason }),
        };
        let mut value = measured.to_json(workload_unit(outcome.workload));
        value["name"] = json!(name);
        value["clients"] = json!(outcome.workload.clients(self.config));
        if let Some((floor, rate, ratio)) = self.floor_ratio(outcome) {
            value["floor"] = json!(floor);
            value["floor_rate"] = json!(round(rate));
            value["ratio"] = json!(round_ratio(ratio));
        }
        value["echo_ops_per_sec"] = json!(round(echo.ops_per_sec));
        value["ratio_to_echo_floor"] = json!(round_ratio(measured.ops_per_sec / echo.ops_per_sec));
        value
    }
}

fn floor_unit(floor: Floor) -> &'static str {
    match floor {
        Floor::Echo => "ops/s",
        Floor::EngineWrite | Floor::EngineBatch | Floor::EngineGroupCommit => "docs/s",
        Floor::EngineRead | Floor::EngineScan => "records/s",
    }
}

fn workload_unit(workload: Workload) -> &'static str {
    match workload {
        Workload::Insert | Workload::InsertJ | Workload::InsertMany => "docs/s",
        Workload::Scan | Workload::Count | Workload::EqScan => "records/s",
        _ => "ops/s",
    }
}

/// The common columns: rates, latency percentiles and errors.
fn figures(measured: &Measured, unit: &str) -> String {
    format!(
        "{:>10} {:>12} {:<10} {:>7} {:>7} {:>7} {:>8} {:>8} {:>6}",
        thousands(measured.ops_per_sec),
        thousands(measured.item_rate()),
        unit,
        measured.quantile_us(0.5),
        measured.quantile_us(0.95),
        measured.quantile_us(0.99),
        measured.quantile_us(0.999),
        measured.latency.max(),
        measured.errors,
    )
}

/// `1234567.8` as `1,234,568`; values under 10 keep one decimal.
fn thousands(value: f64) -> String {
    if value < 10.0 {
        return format!("{value:.1}");
    }
    let digits = format!("{value:.0}");
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Rounds a ratio to four decimals for the JSON report.
fn round_ratio(value: f64) -> f64 {
    (value * 1e4).round() / 1e4
}

/// Rounds to one decimal for the JSON report.
fn round(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}
