//! The command line, and the validated settings of one run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

use crate::BenchResult;
use crate::measure::Timing;
use crate::shape::{BATCH, FIELDS, Shape};
use crate::workload::Workload;

/// Load benchmarks for Monarch, each workload with its ratio to a floor from the same run.
#[derive(Debug, Parser)]
#[command(name = "load", bin_name = "cargo bench --bench load --")]
pub(crate) struct Args {
    /// Workloads to run (always in the order listed here); `all` runs every one.
    #[arg(value_enum, default_value = "all")]
    pub(crate) workloads: Vec<Workload>,
    /// Records loaded into bench.usertable, and into the engine floor's keyspace.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) records: u64,
    /// Target BSON size of one document in bytes (the 10-field shape needs at least 148).
    #[arg(long, default_value_t = 200)]
    pub(crate) doc_size: usize,
    /// Concurrent driver tasks (and engine floor threads).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) clients: u16,
    /// Concurrent driver tasks of `insert-j` (and threads of its echo and group-commit floors).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) j_clients: u16,
    /// BSON size of the documents of `insert-many` and of the engine batch floor.
    #[arg(long, default_value_t = 1024)]
    pub(crate) many_doc_size: usize,
    /// Exits with a failure status when a goal measured in this run falls below half of its
    /// target, or was asked for and could not be measured (the CI smoke).
    #[arg(long)]
    pub(crate) guard: bool,
    /// Measured seconds per workload and per floor.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) duration: f64,
    /// Unmeasured seconds before each measurement (connections, caches).
    #[arg(long, default_value_t = 1.0)]
    pub(crate) warmup: f64,
    /// Slices each workload's duration is cut into, each after a slice of echo pings at the
    /// same client count, so that the workload and its echo floor share the machine's moods.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) rounds: u32,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// The monarchd to measure, instead of the release build cargo made next to this bench
    /// (to compare two builds with the same harness).
    #[arg(long, default_value = env!("CARGO_BIN_EXE_monarchd"))]
    pub(crate) monarchd: PathBuf,
    /// An extra argument for monarchd (repeatable), e.g.
    /// `--server-arg=--setParameter --server-arg=monarchObservability=0`.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    pub(crate) server_args: Vec<String>,
    /// Also measures raw PostgreSQL point reads and one-row writes of the same keys and
    /// documents in this database (a libpq URI), for the PostgreSQL engine's figures.
    #[arg(long)]
    pub(crate) pg_floor: Option<String>,
    /// monarchd processes to start, all with the same arguments; the driver is given every
    /// one and spreads the load over them. Above 1 they must share their data: PostgreSQL
    /// with `--server-arg=--pgSharedNodes`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub(crate) nodes: u16,
    /// Starts an OTLP/HTTP receiver in the harness that counts spans and points every monarchd
    /// at it (`--otlpEndpoint`), to measure tracing's cost; set the ratio with
    /// `--server-arg=--otlpSamplingRatio --server-arg=0.01`.
    #[arg(long)]
    pub(crate) otlp_sink: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long = "bench", hide = true)]
    pub(crate) _bench: bool,
    /// Serves the echo floor instead of benchmarking (the harness runs itself this way).
    #[arg(long, hide = true)]
    pub(crate) echo_server: bool,
}

/// The validated settings of one run.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) shape: Shape,
    /// The documents of `insert-many` and the engine batch floor.
    pub(crate) many_shape: Shape,
    pub(crate) clients: usize,
    /// Clients of `insert-j`.
    pub(crate) j_clients: usize,
    pub(crate) timing: Timing,
    /// Slices per workload, interleaved with echo slices.
    pub(crate) rounds: u32,
    /// The server binary.
    pub(crate) monarchd: PathBuf,
    /// Extra monarchd arguments.
    pub(crate) server_args: Vec<String>,
    /// Fail the run when a goal falls below half of its target.
    pub(crate) guard: bool,
    /// The database of the raw PostgreSQL floors, if asked for.
    pub(crate) pg_floor: Option<String>,
    /// monarchd processes serving the workloads together.
    pub(crate) nodes: usize,
}

impl Config {
    pub(crate) fn from_args(args: &Args) -> BenchResult<Self> {
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
        Ok(Self {
            shape: Shape::new(args.records, args.doc_size)?,
            // The batch floor and insert-many write fresh ids past this count; only the size
            // matters here.
            many_shape: Shape::new(BATCH, args.many_doc_size)?,
            clients: usize::from(args.clients),
            j_clients: usize::from(args.j_clients),
            timing,
            rounds: args.rounds,
            monarchd: args.monarchd.clone(),
            server_args: args.server_args.clone(),
            guard: args.guard,
            pg_floor: args.pg_floor.clone(),
            nodes: usize::from(args.nodes),
        })
    }

    pub(crate) fn print_header(&self, workloads: &[Workload]) {
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
        if self.monarchd != Path::new(env!("CARGO_BIN_EXE_monarchd")) {
            println!("monarchd: {}", self.monarchd.display());
        }
        if self.nodes > 1 {
            println!("monarchd nodes: {}, the driver given every one", self.nodes);
        }
        if !self.server_args.is_empty() {
            println!("monarchd arguments: {}", self.server_args.join(" "));
        }
    }
}
