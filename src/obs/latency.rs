//! Latency statistics, in bounded memory: mongod's operation latency histograms
//! (`serverStatus.opLatencies`, `$collStats.latencyStats`) and per-query-shape statistics
//! (`monarchQueryStats`, the admin server's `/queryStats`).
//!
//! The operation histograms use mongod's fixed buckets (powers of two, with half steps from
//! 2048 µs up to about 1 s), one atomic counter each, so recording is lock-free for the server
//! totals. Per-shape percentiles come from an HDR histogram (two significant digits, about
//! 2 KiB each); at most [`MAX_SHAPES`] shapes are kept, and a new shape evicts the one with
//! the least total time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use bson::{Bson, Document, doc};
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::slowlog::redact;
use super::summary::OpSummary;

/// The inclusive lower bound, in microseconds, of each bucket of mongod's latency histogram.
const BUCKET_LOWER_BOUNDS: [u64; 51] = [
    0,
    2,
    4,
    8,
    16,
    32,
    64,
    128,
    256,
    512,
    1024,
    2048,
    3072,
    4096,
    6144,
    8192,
    12288,
    16384,
    24576,
    32768,
    49152,
    65536,
    98304,
    131_072,
    196_608,
    262_144,
    393_216,
    524_288,
    786_432,
    1_048_576,
    1_572_864,
    2_097_152,
    4_194_304,
    8_388_608,
    16_777_216,
    33_554_432,
    67_108_864,
    134_217_728,
    268_435_456,
    536_870_912,
    1_073_741_824,
    2_147_483_648,
    4_294_967_296,
    8_589_934_592,
    17_179_869_184,
    34_359_738_368,
    68_719_476_736,
    137_438_953_472,
    274_877_906_944,
    549_755_813_888,
    1_099_511_627_776,
];

/// Buckets in one class's histogram.
pub const BUCKETS: usize = BUCKET_LOWER_BOUNDS.len();
/// One class's bucket counts at one moment, in [`BUCKET_LOWER_BOUNDS`]'s order.
pub type ClassBuckets = [u64; BUCKETS];

/// The exclusive upper bound, in microseconds, of bucket `bucket` (the last one's is taken
/// as twice its lower bound).
pub fn bucket_upper_bound(bucket: usize) -> u64 {
    match BUCKET_LOWER_BOUNDS.get(bucket + 1) {
        Some(&next) => next,
        None => BUCKET_LOWER_BOUNDS.last().map_or(u64::MAX, |last| last.saturating_mul(2)),
    }
}

/// Plans remembered per query shape (the least recently seen goes first).
const PLANS_KEPT: usize = 5;
/// Sample commands kept per query shape: those of its slowest runs.
const SAMPLES_KEPT: usize = 3;

/// Most query shapes kept; past it, the shape with the least total time is evicted.
pub const MAX_SHAPES: usize = 1_000;
/// Most collections with their own latency statistics (a bound against namespace churn).
const MAX_COLLECTIONS: usize = 10_000;
/// The largest latency a shape histogram tracks (one hour); longer ones are clamped.
const MAX_TRACKED_MICROS: u64 = 3_600_000_000;

/// mongod's classes of operations for latency statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpClass {
    /// `find`, `getMore`, `aggregate`, `count`, `distinct`.
    Reads,
    /// `insert`, `update`, `delete`, `findAndModify`.
    Writes,
    /// Every other command.
    Commands,
    /// Multi-document transactions (none yet: the counters stay at zero).
    Transactions,
}

impl OpClass {
    /// The classes, in the order of their histograms.
    pub const ALL: [OpClass; 4] = [OpClass::Reads, OpClass::Writes, OpClass::Commands, OpClass::Transactions];

    /// The class of a command (by its command-table name).
    pub fn of(command: &str) -> Self {
        match command {
            "find" | "getMore" | "aggregate" | "count" | "distinct" => OpClass::Reads,
            "insert" | "update" | "delete" | "findAndModify" => OpClass::Writes,
            _ => OpClass::Commands,
        }
    }

    /// The class's name in `opLatencies`.
    pub fn name(self) -> &'static str {
        match self {
            OpClass::Reads => "reads",
            OpClass::Writes => "writes",
            OpClass::Commands => "commands",
            OpClass::Transactions => "transactions",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The bucket a latency falls in.
fn bucket_of(micros: u64) -> usize {
    BUCKET_LOWER_BOUNDS.partition_point(|&lower| lower <= micros).saturating_sub(1)
}

/// One class's latency histogram, in mongod's buckets.
#[derive(Debug)]
struct OpHistogram {
    buckets: [AtomicU64; BUCKET_LOWER_BOUNDS.len()],
    total_micros: AtomicU64,
    ops: AtomicU64,
}

impl Default for OpHistogram {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            total_micros: AtomicU64::new(0),
            ops: AtomicU64::new(0),
        }
    }
}

impl OpHistogram {
    fn record(&self, micros: u64) {
        if let Some(bucket) = self.buckets.get(bucket_of(micros)) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.total_micros.fetch_add(micros, Ordering::Relaxed);
        self.ops.fetch_add(1, Ordering::Relaxed);
    }

    /// `{latency, ops}`, plus `histogram: [{micros, count}]` (empty buckets left out) when
    /// asked, as mongod.
    fn to_document(&self, histograms: bool) -> Document {
        let long = |n: u64| Bson::Int64(i64::try_from(n).unwrap_or(i64::MAX));
        let mut out = Document::new();
        if histograms {
            let histogram: Vec<Bson> = BUCKET_LOWER_BOUNDS
                .iter()
                .zip(&self.buckets)
                .filter_map(|(&micros, count)| {
                    let count = count.load(Ordering::Relaxed);
                    (count > 0).then(|| Bson::Document(doc! { "micros": long(micros), "count": long(count) }))
                })
                .collect();
            out.insert("histogram", histogram);
        }
        out.insert("latency", long(self.total_micros.load(Ordering::Relaxed)));
        out.insert("ops", long(self.ops.load(Ordering::Relaxed)));
        out
    }

    fn bucket_counts(&self) -> ClassBuckets {
        std::array::from_fn(|i| self.buckets.get(i).map_or(0, |n| n.load(Ordering::Relaxed)))
    }
}

/// Histograms for the four classes.
#[derive(Debug, Default)]
struct ClassHistograms([OpHistogram; 4]);

impl ClassHistograms {
    fn record(&self, class: OpClass, micros: u64) {
        if let Some(histogram) = self.0.get(class.index()) {
            histogram.record(micros);
        }
    }

    fn to_document(&self, histograms: bool) -> Document {
        OpClass::ALL
            .iter()
            .zip(&self.0)
            .map(|(class, histogram)| (class.name().to_owned(), Bson::Document(histogram.to_document(histograms))))
            .collect()
    }
}

/// Statistics of one query shape.
#[derive(Debug)]
struct ShapeStats {
    ns: String,
    /// A redacted example of the command.
    example: Document,
    histogram: Histogram<u64>,
    total_micros: u64,
    docs_examined: u64,
    returned: u64,
    /// The plans it ran with, at most [`PLANS_KEPT`].
    plans: Vec<PlanSeen>,
    /// Its slowest runs' commands (redacted) and their latencies, slowest first.
    slowest: Vec<(u64, Document)>,
}

/// A plan a query shape ran with.
#[derive(Debug)]
struct PlanSeen {
    summary: String,
    count: u64,
    last_seen: bson::DateTime,
}

impl ShapeStats {
    fn report(&self, hash: &str) -> ShapeReport {
        let h = &self.histogram;
        ShapeReport {
            query_shape_hash: hash.to_owned(),
            ns: self.ns.clone(),
            command: self.example.clone(),
            count: h.len(),
            total_millis: self.total_micros as f64 / 1000.0,
            p50_micros: h.value_at_quantile(0.50),
            p95_micros: h.value_at_quantile(0.95),
            p99_micros: h.value_at_quantile(0.99),
            max_micros: h.max(),
            docs_examined_per_returned: if self.returned == 0 {
                self.docs_examined as f64
            } else {
                self.docs_examined as f64 / self.returned as f64
            },
        }
    }

    /// Counts a run with the plan `summary`; a new plan past [`PLANS_KEPT`] replaces the one
    /// seen least recently.
    fn note_plan(&mut self, summary: &str) {
        let now = bson::DateTime::now();
        if let Some(seen) = self.plans.iter_mut().find(|p| p.summary == summary) {
            seen.count += 1;
            seen.last_seen = now;
            return;
        }
        if self.plans.len() >= PLANS_KEPT
            && let Some(oldest) = self.plans.iter().enumerate().min_by_key(|(_, p)| p.last_seen).map(|(i, _)| i)
        {
            self.plans.swap_remove(oldest);
        }
        self.plans.push(PlanSeen { summary: summary.to_owned(), count: 1, last_seen: now });
    }
}

/// One query shape in full: its row, its latency histogram, the plans it ran with and the
/// commands of its slowest runs (redacted).
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeDetail {
    /// The shape's row, as [`LatencyStats::top_shapes`] lists it.
    pub report: ShapeReport,
    /// Latency buckets with runs in them: `(upper bound in microseconds, runs)`, ascending.
    pub histogram: Vec<(u64, u64)>,
    /// `(plan summary, runs, last run)`, most runs first.
    pub plans: Vec<(String, u64, bson::DateTime)>,
    /// The slowest runs' commands, slowest first, with their latencies in microseconds.
    pub slowest: Vec<(u64, Document)>,
}

/// One row of the query-shape report.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeReport {
    /// The shape's hash (`queryShapeHash`).
    pub query_shape_hash: String,
    /// The namespace it ran on.
    pub ns: String,
    /// A redacted example of the command.
    pub command: Document,
    /// How many times it ran.
    pub count: u64,
    /// Total time, in milliseconds.
    pub total_millis: f64,
    /// Median latency, in microseconds.
    pub p50_micros: u64,
    /// 95th percentile.
    pub p95_micros: u64,
    /// 99th percentile.
    pub p99_micros: u64,
    /// The slowest run.
    pub max_micros: u64,
    /// Documents examined per document returned (documents examined when none returned).
    pub docs_examined_per_returned: f64,
}

impl ShapeReport {
    /// The row as a BSON document (`monarchQueryStats`).
    pub fn to_document(&self) -> Document {
        let long = |n: u64| Bson::Int64(i64::try_from(n).unwrap_or(i64::MAX));
        doc! {
            "queryShapeHash": &self.query_shape_hash,
            "ns": &self.ns,
            "command": self.command.clone(),
            "count": long(self.count),
            "totalMillis": self.total_millis,
            "p50Micros": long(self.p50_micros),
            "p95Micros": long(self.p95_micros),
            "p99Micros": long(self.p99_micros),
            "maxMicros": long(self.max_micros),
            "docsExaminedPerReturned": self.docs_examined_per_returned,
        }
    }

    /// The row as JSON (the admin server's `/queryStats`), the command in relaxed extended JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "queryShapeHash": self.query_shape_hash,
            "ns": self.ns,
            "command": Bson::Document(self.command.clone()).into_relaxed_extjson(),
            "count": self.count,
            "totalMillis": self.total_millis,
            "p50Micros": self.p50_micros,
            "p95Micros": self.p95_micros,
            "p99Micros": self.p99_micros,
            "maxMicros": self.max_micros,
            "docsExaminedPerReturned": self.docs_examined_per_returned,
        })
    }
}

/// Every latency statistic of the server.
#[derive(Debug, Default)]
pub struct LatencyStats {
    global: ClassHistograms,
    collections: Mutex<HashMap<String, Box<ClassHistograms>>>,
    shapes: Mutex<HashMap<String, ShapeStats>>,
}

impl LatencyStats {
    /// Records a finished request: server totals, its collection's, and its query shape's.
    pub fn record(&self, summary: &OpSummary<'_>) {
        let micros = u64::try_from(summary.duration.as_micros()).unwrap_or(u64::MAX);
        let class = OpClass::of(summary.command);
        self.global.record(class, micros);
        let ns = summary.op.ns.as_str();
        if !ns.ends_with(".$cmd") && summary.command != "unknown" {
            self.record_collection(ns, class, micros);
        }
        if let Some(plan) = &summary.plan {
            self.record_shape(&plan.shape_hash, summary, micros);
        }
    }

    fn record_collection(&self, ns: &str, class: OpClass, micros: u64) {
        let mut collections = self.collections.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(histograms) = collections.get(ns) {
            histograms.record(class, micros);
            return;
        }
        if collections.len() >= MAX_COLLECTIONS {
            return;
        }
        let histograms = Box::<ClassHistograms>::default();
        histograms.record(class, micros);
        collections.insert(ns.to_owned(), histograms);
    }

    fn record_shape(&self, hash: &str, summary: &OpSummary<'_>, micros: u64) {
        let returned = summary.returned();
        let mut shapes = self.shapes.lock().unwrap_or_else(PoisonError::into_inner);
        if !shapes.contains_key(hash) {
            if shapes.len() >= MAX_SHAPES {
                let cheapest = shapes.iter().min_by_key(|(_, s)| s.total_micros).map(|(hash, _)| hash.clone());
                if let Some(cheapest) = cheapest {
                    shapes.remove(&cheapest);
                }
            }
            let Ok(histogram) = Histogram::new_with_bounds(1, MAX_TRACKED_MICROS, 2) else { return };
            let command = Document::try_from(summary.op.command.as_ref()).unwrap_or_default();
            shapes.insert(
                hash.to_owned(),
                ShapeStats {
                    ns: summary.op.ns.clone(),
                    example: redact(&command),
                    histogram,
                    total_micros: 0,
                    docs_examined: 0,
                    returned: 0,
                    plans: Vec::new(),
                    slowest: Vec::new(),
                },
            );
        }
        if let Some(shape) = shapes.get_mut(hash) {
            shape.histogram.saturating_record(micros.clamp(1, MAX_TRACKED_MICROS));
            shape.total_micros = shape.total_micros.saturating_add(micros);
            shape.docs_examined = shape.docs_examined.saturating_add(summary.docs_examined);
            shape.returned = shape.returned.saturating_add(returned);
            if let Some(plan) = &summary.plan {
                shape.note_plan(&plan.summary);
            }
            // Past the first few runs, only a new slowest run pays for a copy of its command.
            let slower = shape.slowest.len() < SAMPLES_KEPT || shape.slowest.last().is_some_and(|(m, _)| micros > *m);
            if slower {
                let command = Document::try_from(summary.op.command.as_ref()).unwrap_or_default();
                shape.slowest.truncate(SAMPLES_KEPT - 1);
                let at = shape.slowest.partition_point(|(m, _)| *m >= micros);
                shape.slowest.insert(at, (micros, redact(&command)));
            }
        }
    }

    /// Each class's bucket counts now, in [`OpClass::ALL`]'s order.
    pub fn class_buckets(&self) -> [ClassBuckets; 4] {
        std::array::from_fn(|i| self.global.0.get(i).map_or([0; BUCKETS], OpHistogram::bucket_counts))
    }

    /// `serverStatus.opLatencies`.
    pub fn server_document(&self, histograms: bool) -> Document {
        self.global.to_document(histograms)
    }

    /// `$collStats.latencyStats` of `ns` (zeros when nothing ran on it).
    pub fn collection_document(&self, ns: &str, histograms: bool) -> Document {
        let collections = self.collections.lock().unwrap_or_else(PoisonError::into_inner);
        match collections.get(ns) {
            Some(stats) => stats.to_document(histograms),
            None => ClassHistograms::default().to_document(histograms),
        }
    }

    /// The `limit` query shapes with the most total time, most first.
    pub fn top_shapes(&self, limit: usize) -> Vec<ShapeReport> {
        let shapes = self.shapes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut ranked: Vec<(&String, &ShapeStats)> = shapes.iter().collect();
        ranked.sort_by(|a, b| b.1.total_micros.cmp(&a.1.total_micros).then_with(|| a.0.cmp(b.0)));
        ranked.into_iter().take(limit).map(|(hash, shape)| shape.report(hash)).collect()
    }

    /// The query shape `hash` in full, if it is kept.
    pub fn shape_detail(&self, hash: &str) -> Option<ShapeDetail> {
        let shapes = self.shapes.lock().unwrap_or_else(PoisonError::into_inner);
        let shape = shapes.get(hash)?;
        let histogram = shape
            .histogram
            .iter_log(1, 2.0)
            .filter(|step| step.count_since_last_iteration() > 0)
            .map(|step| (step.value_iterated_to(), step.count_since_last_iteration()))
            .collect();
        let mut plans: Vec<_> = shape.plans.iter().map(|p| (p.summary.clone(), p.count, p.last_seen)).collect();
        plans.sort_by_key(|plan| std::cmp::Reverse(plan.1));
        Some(ShapeDetail { report: shape.report(hash), histogram, plans, slowest: shape.slowest.clone() })
    }

    /// [`Self::top_shapes`] as a JSON array, for the admin server's `/queryStats`.
    pub fn top_shapes_json(&self, limit: usize) -> Value {
        Value::Array(self.top_shapes(limit).iter().map(ShapeReport::to_json).collect())
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use bson::RawDocumentBuf;

    use super::*;
    use crate::op::{OpRegistry, OpStart, PlanNote};

    #[test]
    fn latency_buckets_match_mongod() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(2), 1);
        assert_eq!(bucket_of(3), 1);
        assert_eq!(BUCKET_LOWER_BOUNDS[bucket_of(2500)], 2048);
        assert_eq!(BUCKET_LOWER_BOUNDS[bucket_of(3072)], 3072);
        assert_eq!(BUCKET_LOWER_BOUNDS[bucket_of(1_600_000)], 1_572_864);
        assert_eq!(BUCKET_LOWER_BOUNDS[bucket_of(3_000_000)], 2_097_152);
        assert_eq!(bucket_of(u64::MAX), BUCKET_LOWER_BOUNDS.len() - 1);
    }

    #[test]
    fn latency_histogram_leaves_out_empty_buckets() -> Result<(), bson::error::Error> {
        let histogram = OpHistogram::default();
        histogram.record(1);
        histogram.record(1);
        histogram.record(5000);
        let doc = histogram.to_document(true);
        assert_eq!(doc.get_i64("latency")?, 5002);
        assert_eq!(doc.get_i64("ops")?, 3);
        let buckets = doc.get_array("histogram")?;
        assert_eq!(buckets.len(), 2);
        assert_eq!(buckets[1].as_document().and_then(|d| d.get_i64("micros").ok()), Some(4096));
        assert!(!histogram.to_document(false).contains_key("histogram"));
        Ok(())
    }

    #[test]
    fn latency_classes_follow_mongod() {
        assert_eq!(OpClass::of("find"), OpClass::Reads);
        assert_eq!(OpClass::of("aggregate"), OpClass::Reads);
        assert_eq!(OpClass::of("findAndModify"), OpClass::Writes);
        assert_eq!(OpClass::of("ping"), OpClass::Commands);
    }

    #[test]
    fn latency_shapes_keep_percentiles_and_are_bounded() {
        let registry = OpRegistry::default();
        let stats = LatencyStats::default();
        let record = |hash: &str, micros: u64| {
            let guard = registry.begin(
                OpStart {
                    users: Default::default(),
                    connection_id: 1,
                    client: SocketAddr::from(([127, 0, 0, 1], 5000)),
                    app_name: None,
                    started: Instant::now(),
                    command_name: "find",
                    db: "db".into(),
                    collection: Some("c".into()),
                    command: RawDocumentBuf::try_from(&doc! { "find": "c", "filter": { "a": 1 } }).unwrap(),
                    comment: None,
                    trace: None,
                },
                true,
            );
            guard.op().docs.returned.store(1, Ordering::Relaxed);
            stats.record(&OpSummary {
                op: guard.op(),
                command: "find",
                duration: Duration::from_micros(micros),
                error: None,
                keys_examined: 0,
                docs_examined: 10,
                plan: Some(PlanNote { summary: "COLLSCAN".into(), shape_hash: hash.into() }),
                bytes_in: 0,
                bytes_out: 0,
                phases: Default::default(),
            });
        };
        for micros in 1..=100 {
            record("aaaa", micros * 10);
        }
        let top = stats.top_shapes(5);
        assert_eq!(top.len(), 1);
        let shape = &top[0];
        assert_eq!(shape.count, 100);
        assert!((495..=505).contains(&shape.p50_micros), "{}", shape.p50_micros);
        assert!((990..=1000).contains(&shape.p99_micros), "{}", shape.p99_micros);
        assert_eq!(shape.docs_examined_per_returned, 10.0);
        assert_eq!(shape.command.get_str("find").ok(), Some("###"));
        assert_eq!(
            stats.collection_document("db.c", false).get_document("reads").unwrap().get_i64("ops").ok(),
            Some(100)
        );
        for n in 0..MAX_SHAPES + 10 {
            record(&format!("s{n}"), 1);
        }
        let all = stats.top_shapes(usize::MAX);
        assert_eq!(all.len(), MAX_SHAPES);
        assert_eq!(all[0].query_shape_hash, "aaaa", "the costliest shape survives eviction");
    }
}
