//! The slow-query log: one mongod-shaped line (`"msg":"Slow query"`, id 51803) per operation
//! slower than `slowms`, sampled at `slowOpSampleRate`, with the command's values redacted
//! unless `--redactClientLogData false`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use bson::{Bson, Document};
use serde_json::{Map, Value};

use super::summary::OpSummary;
use crate::config::ProfilingConfig;
use crate::log::LogSink;

/// What redaction puts in place of a value, as mongod.
const REDACTED: &str = "###";

/// The slow-operation threshold and sample rate (changed at run time by `profile`).
#[derive(Debug)]
pub struct SlowLog {
    slow_ms: AtomicI64,
    sample_rate_bits: AtomicU64,
    redact: bool,
    /// xorshift state for sampling.
    seed: AtomicU64,
}

impl SlowLog {
    /// Settings from the configuration.
    pub fn new(config: &ProfilingConfig, redact: bool) -> Self {
        Self {
            slow_ms: AtomicI64::new(config.slow_ms),
            sample_rate_bits: AtomicU64::new(config.sample_rate.to_bits()),
            redact,
            seed: AtomicU64::new(0x9e37_79b9_7f4a_7c15),
        }
    }

    /// The threshold in milliseconds.
    pub fn slow_ms(&self) -> i64 {
        self.slow_ms.load(Ordering::Relaxed)
    }

    /// The sample rate.
    pub fn sample_rate(&self) -> f64 {
        f64::from_bits(self.sample_rate_bits.load(Ordering::Relaxed))
    }

    /// Changes the threshold and the sample rate.
    pub fn set(&self, slow_ms: Option<i64>, sample_rate: Option<f64>) {
        if let Some(ms) = slow_ms {
            self.slow_ms.store(ms, Ordering::Relaxed);
        }
        if let Some(rate) = sample_rate {
            self.sample_rate_bits.store(rate.to_bits(), Ordering::Relaxed);
        }
    }

    /// Whether `summary` is slow and drawn by the sample rate (what the log and profiler
    /// level 1 record).
    pub fn is_slow_and_sampled(&self, summary: &OpSummary<'_>) -> bool {
        let millis = i64::try_from(summary.duration.as_millis()).unwrap_or(i64::MAX);
        // As mongod: sampled, and at least as long as the threshold.
        self.sampled() && millis >= self.slow_ms()
    }

    fn sampled(&self) -> bool {
        let rate = self.sample_rate();
        if rate >= 1.0 {
            return true;
        }
        let mut x = self.seed.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.seed.store(x, Ordering::Relaxed);
        ((x >> 11) as f64 / (1u64 << 53) as f64) < rate
    }

    /// Logs `summary`'s slow-query line (the caller decided it is slow and sampled).
    pub fn write(&self, sink: &LogSink, summary: &OpSummary<'_>) {
        sink.write_event(
            "COMMAND",
            51803,
            &format!("conn{}", summary.op.connection_id),
            "Slow query",
            self.attr(summary),
        );
    }

    /// The `attr` of a slow-query line, in mongod's field order.
    pub fn attr(&self, summary: &OpSummary<'_>) -> Map<String, Value> {
        let op = summary.op;
        let mut attr = Map::new();
        attr.insert("type".into(), Value::from("command"));
        attr.insert("ns".into(), Value::from(op.ns.as_str()));
        if let Some(app) = &op.app_name {
            attr.insert("appName".into(), Value::from(app.as_str()));
        }
        let command = Document::try_from(op.command.as_ref()).unwrap_or_default();
        let command = if self.redact { redact(&command) } else { command };
        attr.insert("command".into(), Bson::Document(command).into_relaxed_extjson());
        if let Some(plan) = &summary.plan {
            attr.insert("planSummary".into(), Value::from(plan.summary.as_str()));
            attr.insert("queryShapeHash".into(), Value::from(plan.shape_hash.as_str()));
        }
        if summary.plan.is_some() || summary.keys_examined + summary.docs_examined > 0 {
            attr.insert("keysExamined".into(), Value::from(summary.keys_examined));
            attr.insert("docsExamined".into(), Value::from(summary.docs_examined));
        }
        for (name, n) in summary.doc_counts() {
            attr.insert(name.into(), Value::from(n));
        }
        if let Some(code) = summary.error {
            attr.insert("ok".into(), Value::from(0));
            attr.insert("errName".into(), Value::from(code.name()));
            attr.insert("errCode".into(), Value::from(code.code()));
        }
        attr.insert("reslen".into(), Value::from(summary.bytes_out));
        attr.insert("remote".into(), Value::from(op.client.to_string()));
        // Monarch's own: the correlation IDs (crate::obs::correlation); the comment is in
        // `command`, the application's name in `appName`.
        attr.insert("opid".into(), Value::from(op.op_id));
        if let Some(trace) = &op.trace {
            attr.insert("traceId".into(), Value::from(trace.trace_id.as_str()));
        }
        attr.insert("protocol".into(), Value::from("op_msg"));
        let micros = |d: std::time::Duration| Value::from(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let phases = &summary.phases;
        let mut split = Map::new();
        for (name, spent) in [
            ("read", phases.read),
            ("parse", phases.parse),
            ("plan", phases.plan),
            ("execute", phases.execute),
            ("storage", phases.storage),
            ("journal", phases.journal),
            ("encode", phases.encode),
            ("write", phases.write),
        ] {
            split.insert(name.into(), micros(spent));
        }
        // Monarch's own: where the time went (mongod has no such field; parsers skip it).
        attr.insert("phasesMicros".into(), Value::Object(split));
        attr.insert(
            "durationMillis".into(),
            Value::from(u64::try_from(summary.duration.as_millis()).unwrap_or(u64::MAX)),
        );
        attr
    }
}

/// `doc` with every value replaced by `"###"` (documents and arrays keep their shape), as
/// mongod's `redactClientLogData` does.
pub fn redact(doc: &Document) -> Document {
    doc.iter()
        .map(|(key, value)| {
            let value = match value {
                Bson::Document(inner) => Bson::Document(redact(inner)),
                Bson::Array(items) => Bson::Array(
                    items
                        .iter()
                        .map(|item| match item {
                            Bson::Document(inner) => Bson::Document(redact(inner)),
                            _ => Bson::String(REDACTED.into()),
                        })
                        .collect(),
                ),
                _ => Bson::String(REDACTED.into()),
            };
            (key.clone(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    #[test]
    fn slowlog_redaction_keeps_the_shape() {
        let redacted = redact(&doc! { "find": "c", "filter": { "a": 5, "b": [1, { "c": "x" }] }, "$db": "db" });
        assert_eq!(
            redacted,
            doc! { "find": "###", "filter": { "a": "###", "b": ["###", { "c": "###" }] }, "$db": "###" }
        );
    }
}
