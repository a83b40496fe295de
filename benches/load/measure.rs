//! Measurement: a warm-up, then a measured window in which concurrent workers repeat one
//! operation; each operation's latency goes into a per-worker histogram (microseconds), and
//! the workers' figures are merged. Building a request is not timed; sending it, the driver's
//! serialization and the reply are.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::BenchResult;
use crate::report::round;

/// The histogram's range: 1 µs to one hour.
const HISTOGRAM_MAX_US: u64 = 3_600_000_000;

/// Measurement window: a warm-up that is not recorded, then the measured duration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
    /// The first operation number of every worker: each slice of an interleaved measurement
    /// starts further on, so it draws fresh random keys.
    pub(crate) first_seq: u64,
}

/// The warm-up of every slice after the first: the connections and caches are warm by then,
/// this only keeps the switch between servers out of the figures.
const SLICE_WARMUP: Duration = Duration::from_millis(100);

impl Timing {
    /// Slice `round` of `rounds`: an equal share of the duration, the whole warm-up only in the
    /// first.
    pub(crate) fn slice(self, round: u32, rounds: u32) -> Self {
        Self {
            warmup: if round == 0 { self.warmup } else { self.warmup.min(SLICE_WARMUP) },
            duration: self.duration / rounds.max(1),
            first_seq: u64::from(round) << 40,
        }
    }
}

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
pub(crate) struct Measured {
    pub(crate) ops: u64,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
    pub(crate) ops_per_sec: f64,
    pub(crate) latency: Histogram<u64>,
    /// Documents (or records) per operation: 1, 1,000 for batches, the record count for scans.
    pub(crate) items_per_op: u64,
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
    pub(crate) fn combine(slices: Vec<Measured>) -> BenchResult<Self> {
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
    pub(crate) fn item_rate(&self) -> f64 {
        self.ops_per_sec * self.items_per_op as f64
    }

    pub(crate) fn quantile_us(&self, quantile: f64) -> u64 {
        self.latency.value_at_quantile(quantile)
    }

    pub(crate) fn to_json(&self, unit: &str) -> Value {
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
pub(crate) async fn drive<F, Fut>(clients: usize, timing: Timing, items_per_op: u64, op: F) -> BenchResult<Measured>
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
pub(crate) fn drive_threads<F, W>(threads: usize, timing: Timing, items_per_op: u64, op: F) -> BenchResult<Measured>
where
    F: Fn(usize, u64) -> W + Sync,
    W: FnOnce() -> Result<(), String>,
{
    drive_threads_limited(threads, timing, None, items_per_op, op)
}

/// Runs `op` from `threads` threads, without a warm-up, until `total` operations are done in
/// all: a floor that does the same work as a workload did.
pub(crate) fn drive_threads_total<F, W>(threads: usize, total: u64, items_per_op: u64, op: F) -> BenchResult<Measured>
where
    F: Fn(usize, u64) -> W + Sync,
    W: FnOnce() -> Result<(), String>,
{
    let timing = Timing { warmup: Duration::ZERO, duration: Duration::from_secs(3600), first_seq: 0 };
    drive_threads_limited(threads, timing, Some(total), items_per_op, op)
}

/// `drive_threads`, stopping early once `limit` operations have been started in all threads.
fn drive_threads_limited<F, W>(
    threads: usize,
    timing: Timing,
    limit: Option<u64>,
    items_per_op: u64,
    op: F,
) -> BenchResult<Measured>
where
    F: Fn(usize, u64) -> W + Sync,
    W: FnOnce() -> Result<(), String>,
{
    let started_ops = AtomicU64::new(0);
    let within_limit = || limit.is_none_or(|limit| started_ops.fetch_add(1, Ordering::Relaxed) < limit);
    let start = Instant::now();
    let recorders = (0..threads).map(|_| Recorder::new(start, timing)).collect::<BenchResult<Vec<_>>>()?;
    let recorders = std::thread::scope(|scope| {
        let handles: Vec<_> = recorders
            .into_iter()
            .enumerate()
            .map(|(worker, mut recorder)| {
                let (op, within_limit) = (&op, &within_limit);
                scope.spawn(move || {
                    let mut seq = timing.first_seq;
                    while recorder.running() && within_limit() {
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

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        len if len % 2 == 1 => sorted.get(middle).copied(),
        _ => Some((sorted.get(middle - 1)? + sorted.get(middle)?) / 2.0),
    }
}

/// `(max - min) / median` of `values`: how far apart the rounds of one measurement were.
pub(crate) fn spread(values: &[f64]) -> Option<f64> {
    let max = values.iter().copied().reduce(f64::max)?;
    let min = values.iter().copied().reduce(f64::min)?;
    Some((max - min) / median(values)?.max(f64::MIN_POSITIVE))
}
