//! The memory goal of issue 12: a `monarchd` of its own, started with `--cacheSizeGB`, is
//! loaded with `--rss-load-mb` of 1 KB documents through `insert_many`, then read (one full
//! scan, then point reads for `--duration`). Its `VmRSS` and `VmHWM` (peak) from
//! `/proc/<pid>/status` are read after the load and after the reads.

use std::time::Instant;

use bson::{Document, doc};
use mongodb::Collection;
use serde_json::{Value, json};

use super::{BenchResult, Config, Figures, Outcome, ServerProcess, Shape, Workload, connect, thousands};

/// BSON size of the loaded documents.
const DOC_SIZE: usize = 1024;

/// The `rss` check's readings.
pub(crate) struct Memory {
    cache_gb: Option<f64>,
    docs: u64,
    doc_size: usize,
    load_seconds: f64,
    after_load: ProcMemory,
    after_reads: ProcMemory,
    scan_seconds: f64,
    point_reads_per_sec: f64,
    read_errors: u64,
    server: Value,
}

/// A process's resident memory, from `/proc/<pid>/status`, in KiB as the kernel reports it.
#[derive(Debug, Clone, Copy)]
struct ProcMemory {
    rss_kib: u64,
    hwm_kib: u64,
}

impl ProcMemory {
    fn read(pid: u32) -> BenchResult<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> BenchResult<u64> {
            let line =
                status.lines().find(|line| line.starts_with(name)).ok_or_else(|| format!("no {name} in status"))?;
            let kib = line.trim_start_matches(name).trim().trim_end_matches("kB").trim();
            Ok(kib.parse()?)
        };
        Ok(Self { rss_kib: field("VmRSS:")?, hwm_kib: field("VmHWM:")? })
    }
}

/// KiB in MB (10^6 bytes): the goal's "400 MB" taken literally.
fn mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1e6
}

impl Memory {
    /// The figure the goal judges: the larger resident size of the two readings, in MB.
    pub(crate) fn judged_mb(&self) -> f64 {
        mb(self.after_load.rss_kib.max(self.after_reads.rss_kib))
    }

    /// One line for the goals table.
    pub(crate) fn summary(&self) -> String {
        format!(
            "VmRSS {:.0} MB after loading {} MB, {:.0} MB after reads; peak (VmHWM) {:.0} MB; {}",
            mb(self.after_load.rss_kib),
            thousands(self.loaded_bytes() as f64 / 1e6),
            mb(self.after_reads.rss_kib),
            mb(self.after_reads.hwm_kib),
            self.cache_flag(),
        )
    }

    fn loaded_bytes(&self) -> u64 {
        self.docs * self.doc_size as u64
    }

    fn cache_flag(&self) -> String {
        self.cache_gb.map_or_else(|| "no --cacheSizeGB".to_owned(), |gb| format!("--cacheSizeGB {gb}"))
    }

    pub(crate) fn print(&self) {
        println!();
        println!("rss: monarchd {} (MB = 10^6 bytes)", self.cache_flag());
        println!(
            "  loaded {} documents of {} bytes ({} MB) in {:.1} s ({} docs/s)",
            thousands(self.docs as f64),
            self.doc_size,
            thousands(self.loaded_bytes() as f64 / 1e6),
            self.load_seconds,
            thousands(self.docs as f64 / self.load_seconds.max(f64::MIN_POSITIVE)),
        );
        println!(
            "  after the load:  VmRSS {:.0} MB, VmHWM {:.0} MB",
            mb(self.after_load.rss_kib),
            mb(self.after_load.hwm_kib)
        );
        println!(
            "  after the reads: VmRSS {:.0} MB, VmHWM {:.0} MB (one scan in {:.1} s, then {} point reads/s, {} errors)",
            mb(self.after_reads.rss_kib),
            mb(self.after_reads.hwm_kib),
            self.scan_seconds,
            thousands(self.point_reads_per_sec),
            self.read_errors,
        );
        let notable = self.server["log_warnings_and_errors"].as_u64().unwrap_or(0);
        if notable > 0 {
            println!("  its monarchd logged {notable} warning or error lines, first ones:");
            for line in self.server["log_lines"].as_array().into_iter().flatten() {
                println!("    {}", line.as_str().unwrap_or_default());
            }
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        let reading = |memory: ProcMemory| json!({ "vm_rss_kib": memory.rss_kib, "vm_hwm_kib": memory.hwm_kib });
        json!({
            "cache_size_gb": self.cache_gb,
            "docs": self.docs,
            "doc_size": self.doc_size,
            "loaded_bytes": self.loaded_bytes(),
            "load_s": super::round(self.load_seconds),
            "after_load": reading(self.after_load),
            "after_reads": reading(self.after_reads),
            "scan_s": super::round(self.scan_seconds),
            "point_reads_per_sec": super::round(self.point_reads_per_sec),
            "read_errors": self.read_errors,
            "judged_mb": super::round(self.judged_mb()),
            "monarchd": self.server,
        })
    }
}

/// Runs the check on a server of its own; a server that refuses the flag or dies is reported
/// as not measured, not as a harness error.
pub(crate) async fn run(config: &Config) -> BenchResult<Outcome> {
    if config.rss_load_bytes == 0 {
        return Ok(Outcome { workload: Workload::Rss, figures: Figures::Omitted("--rss-load-mb 0".to_owned()) });
    }
    let mut args = config.server_args.clone();
    if let Some(gb) = config.rss_cache_gb {
        args.extend(["--cacheSizeGB".to_owned(), gb.to_string()]);
    }
    println!("rss: starting monarchd {} ...", args.join(" "));
    let mut server = match ServerProcess::monarchd(&args) {
        Ok(server) => server,
        Err(error) => {
            let reason =
                format!("monarchd did not start with `{}` ({error}); the goal needs --cacheSizeGB", args.join(" "));
            return Ok(Outcome::skipped(Workload::Rss, &reason));
        }
    };
    let measured = measure(config, &mut server).await;
    server.stop();
    let figures = match measured {
        Ok(mut memory) => {
            memory.server = server.summary();
            Figures::Memory(memory)
        }
        Err(error) => {
            let summary = server.summary();
            let last = summary["last_log_lines"]
                .as_array()
                .map(|lines| lines.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n    "));
            println!("rss: failed: {error}; monarchd: {}", summary["exit"]);
            if let Some(last) = last {
                println!("    {last}");
            }
            Figures::Skipped(error.to_string())
        }
    };
    Ok(Outcome { workload: Workload::Rss, figures })
}

async fn measure(config: &Config, server: &mut ServerProcess) -> BenchResult<Memory> {
    let docs = (config.rss_load_bytes / DOC_SIZE as u64).max(1);
    let shape = Shape::new(docs, DOC_SIZE)?;
    let pid = server.child.id();
    let client = connect(server.port, config.clients).await?;
    let coll: Collection<Document> = client.database("bench").collection("rss");

    println!("rss: loading {} documents of {} bytes ...", thousands(docs as f64), shape.doc_size);
    let started = Instant::now();
    super::load(&coll, shape, config.clients).await?;
    let load_seconds = started.elapsed().as_secs_f64();
    let after_load = ProcMemory::read(pid)?;

    println!("rss: reading ...");
    let started = Instant::now();
    let mut cursor = coll.find(doc! { "absentField": 1 }).await?;
    while cursor.advance().await? {}
    let scan_seconds = started.elapsed().as_secs_f64();
    let reads = super::ycsb(&coll, shape, 100, config.clients, config.timing).await?;
    let after_reads = ProcMemory::read(pid)?;
    client.shutdown().await;

    Ok(Memory {
        cache_gb: config.rss_cache_gb,
        docs,
        doc_size: shape.doc_size,
        load_seconds,
        after_load,
        after_reads,
        scan_seconds,
        point_reads_per_sec: reads.ops_per_sec,
        read_errors: reads.errors,
        server: Value::Null,
    })
}
