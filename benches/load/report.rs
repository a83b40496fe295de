//! The report: the floors and workloads as a table, then every figure as one JSON document.

use serde_json::{Value, json};

use crate::config::Config;
use crate::floors::Floors;
use crate::measure::Measured;
use crate::run::{Figures, Outcome};
use crate::shape::{BATCH, FIELDS};
use crate::workload::{Basis, Floor, FloorRun, Workload};

/// Everything one run measured.
pub(crate) struct Report<'a> {
    pub(crate) config: &'a Config,
    pub(crate) floors: Floors,
    pub(crate) results: Vec<Outcome>,
    pub(crate) server: Value,
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
                "fjall batch of {BATCH} records of {} bytes, no sync, {threads} threads, as many batches as insert-many wrote",
                self.config.many_shape.doc_size
            ),
            Floor::EngineGroupCommit => format!(
                "fjall one-record batch, then a persist(SyncData) shared by every waiting writer, {threads} threads"
            ),
            Floor::PostgresRead => format!("PostgreSQL SELECT of one row by random key, {threads} connections"),
            Floor::PostgresWrite => format!("PostgreSQL one-row upsert, autocommit, {threads} connections"),
        }
    }

    pub(crate) fn print_table(&self) {
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
            "  {:<13} {:>7} {:>10} {:>12} {:<10} {:>7} {:>7} {:>7} {:>8} {:>8} {:>6} {:>7} {:>7} {:>6} {:>9}  ratio's floor",
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
            "spread",
            "echo"
        );
        for outcome in &self.results {
            let name = outcome.workload.name();
            let (measured, echo) = match &outcome.figures {
                Figures::Rate { measured, echo, .. } => (measured, echo),
                Figures::Skipped(reason) => {
                    println!("  {name:<13} not measured: {reason}");
                    continue;
                }
            };
            let clients = outcome.workload.clients(self.config);
            let unit = workload_unit(outcome.workload);
            let (ratio, floor) = match self.floor_ratio(outcome) {
                Some((floor, rate, ratio)) => (format!("{ratio:.3}"), format!("{floor} ({} {unit})", thousands(rate))),
                None => ("-".to_owned(), "-".to_owned()),
            };
            let vs_echo = outcome.ratio_to_echo().unwrap_or(0.0);
            let spread = outcome.echo_spread().map_or_else(|| "-".to_owned(), |s| format!("{:.0}%", s * 100.0));
            println!(
                "  {name:<13} {clients:>7} {} {ratio:>7} {vs_echo:>7.3} {spread:>6} {:>9}  {floor}",
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
            "vs echo = Monarch's operations/s / the echo server's pings/s (column echo) at the same client count, the median"
        );
        println!(
            "of {} rounds that each measure the echo server, then the workload (one round for batches and scans);",
            self.config.rounds
        );
        println!(
            "spread = (max - min) / median of the rounds' ratios. vs echo is the goal ratio of ycsb-c, ycsb-a, insert, insert-j."
        );
        if let Some(speedup) = self.index_speedup() {
            println!(
                "eq-index / eq-scan = {speedup:.0}x: what the index k_1 buys an equality on {} records.",
                self.config.shape.records
            );
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

    pub(crate) fn to_json(&self) -> Value {
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
                "nodes": self.config.nodes,
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
    pub(crate) fn floor_ratio(&self, outcome: &Outcome) -> Option<(String, f64, f64)> {
        let measured = outcome.measured()?;
        let (floor, rate) = match outcome.workload.basis() {
            Basis::Floor(Floor::Echo) => (Floor::Echo.name().to_owned(), outcome.echo()?.item_rate()),
            basis => self.floors.rate(basis, outcome.workload.clients(self.config))?,
        };
        Some((floor, rate, measured.item_rate() / rate))
    }

    fn workload_json(&self, outcome: &Outcome) -> Value {
        let name = outcome.workload.name();
        let (measured, echo) = match &outcome.figures {
            Figures::Rate { measured, echo, .. } => (measured, echo),
            Figures::Skipped(reason) => return json!({ "name": name, "skipped": reason }),
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
        value["ratio_to_echo_floor"] = json!(outcome.ratio_to_echo().map(round_ratio));
        value["round_ratios_to_echo"] =
            json!(outcome.round_ratios().iter().copied().map(round_ratio).collect::<Vec<_>>());
        value["echo_spread"] = json!(outcome.echo_spread().map(round_ratio));
        value
    }
}

fn floor_unit(floor: Floor) -> &'static str {
    match floor {
        Floor::Echo => "ops/s",
        Floor::EngineWrite | Floor::EngineBatch | Floor::EngineGroupCommit | Floor::PostgresWrite => "docs/s",
        Floor::EngineRead | Floor::EngineScan | Floor::PostgresRead => "records/s",
    }
}

pub(crate) fn workload_unit(workload: Workload) -> &'static str {
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
pub(crate) fn thousands(value: f64) -> String {
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
pub(crate) fn round_ratio(value: f64) -> f64 {
    (value * 1e4).round() / 1e4
}

/// Rounds to one decimal for the JSON report.
pub(crate) fn round(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}
