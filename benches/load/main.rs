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
//! - `insert-many`: `insert_many` of 1,000 documents of `--many-doc-size` (1,024) bytes.
//!
//! `goals` runs the workloads of issue 12's goals (`ycsb-c`, `ycsb-a`, `insert`, `insert-j`,
//! `insert-many`) with only the floors those goals use, and a goals table closes every run that
//! measured one of them; `--guard` makes the run fail when a goal falls below half of its
//! target (the CI smoke in `.ci/run`). The goal on resident memory is measured by
//! `benches/memory.py`, which watches a server of its own.
//!
//! Floors, measured in the same run with as many clients (or threads) as the workloads they are
//! compared with:
//! - network floor: a minimal `OP_MSG` echo server in this harness (`echo`), run as a separate
//!   process like `monarchd`; the driver pings it in slices interleaved with each workload's.
//! - engine floor: fjall driven directly (`engine`), with Monarch's keys and the same documents.
//!
//! Every workload shows two ratios: `ratio`, its rate over the matching engine rate, and
//! `vs echo`, its operations per second over the echo server's pings per second at the same
//! client count: the median of the ratios of its interleaved rounds. No request can beat a
//! round trip, so `vs echo` tells the server's own cost from the network's; it is the goal
//! ratio of point reads, updates and inserts.
//!
//! The output is a table, then one line `JSON:` followed by every figure as one JSON document
//! (also written to `--json PATH`). Run with `cargo bench --bench load -- --help` for the
//! flags; BENCHMARKS.md has the latest figures.
#![allow(
    clippy::indexing_slicing,
    reason = "serde_json `Value` indexing: a missing key reads as Null; writes go to objects built here"
)]

mod config;
mod echo;
mod engine;
mod floors;
mod goals;
mod measure;
mod ops;
#[path = "../../tests/common/otlp_receiver.rs"]
mod otlp_receiver;
mod otlp_sink;
mod postgres_floor;
mod process;
mod report;
mod run;
mod shape;
mod workload;

use clap::Parser;

use crate::config::{Args, Config};
use crate::floors::Floors;
use crate::process::ServerProcess;
use crate::report::Report;
use crate::workload::{Floor, FloorRun, Workload};

/// The harness's one error type: it reports and stops, nothing recovers from it.
type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() -> BenchResult<()> {
    let args = Args::parse();
    if args.echo_server {
        return echo::serve();
    }
    let config = Config::from_args(&args)?;
    let selection = Selection::new(&args.workloads);
    config.print_header(&selection.workloads);

    let mut floors = Floors::measure_engine(&config, &selection.engine_floors_needed(&config))?;
    floors.add_postgres(&config)?;

    // Both servers run for the whole phase: the echo floor is measured in slices interleaved
    // with each workload's.
    let runtime = tokio::runtime::Runtime::new()?;
    let mut echo = ServerProcess::echo()?;
    let sink = args.otlp_sink.then(otlp_sink::OtlpSink::start).transpose()?;
    let server_args: Vec<String> =
        config.server_args.iter().cloned().chain(sink.iter().flat_map(otlp_sink::OtlpSink::server_args)).collect();
    let mut servers = (0..config.nodes)
        .map(|_| ServerProcess::monarchd(&config.monarchd, &server_args))
        .collect::<BenchResult<Vec<_>>>()?;
    let outcome = runtime.block_on(run::run_workloads(&config, &mut servers, &echo, &selection.workloads));
    servers.iter_mut().for_each(ServerProcess::stop);
    echo.stop();
    let results = outcome?;
    floors.add_echo(&results, &config)?;
    floors.add_engine_batch(&config, &results)?;

    let summaries: Vec<_> = servers.iter().map(ServerProcess::summary).collect();
    let server = match summaries.as_slice() {
        [one] => one.clone(),
        _ => serde_json::Value::Array(summaries),
    };
    let report = Report { config: &config, floors, results, server };
    report.print_table();
    let goals = goals::evaluate(&report, &selection.workloads);
    goals::print_table(&goals, config.guard);
    let mut json = report.to_json();
    json["goals"] = goals::to_json(&goals);
    if let Some(sink) = &sink {
        let received = sink.summary();
        println!("OTLP sink received: {received}");
        json["otlp_sink"] = received;
    }
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

    /// The engine floors measured before Monarch starts, each at the concurrency of the workload
    /// compared with it. (The echo floor is measured with each workload, the batch floor after
    /// them all.)
    fn engine_floors_needed(&self, config: &Config) -> Vec<FloorRun> {
        let mut runs = Vec::new();
        for &workload in &self.workloads {
            let threads = workload.clients(config);
            let basis = if self.goals_only { workload.goal_basis() } else { workload.basis() };
            runs.extend(
                basis
                    .floors()
                    .into_iter()
                    .filter(|f| !matches!(f, Floor::Echo | Floor::EngineBatch))
                    .map(|floor| FloorRun { floor, threads }),
            );
        }
        runs.sort();
        runs.dedup();
        runs
    }
}
