//! The console's overview: the server's own figures sampled once a second and kept for the
//! last ten minutes in memory, so the charts need no Prometheus. Each sample holds what
//! happened in its interval (operations per second by command, latency percentiles per class,
//! journal syncs) and what stood at its end (connections, cursors, cache, disk).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::obs::Observers;
#[cfg(test)]
use crate::obs::latency::BUCKETS;
use crate::obs::latency::{ClassBuckets, OpClass, bucket_upper_bound};
use crate::state::State;

/// How often a sample is taken.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// Samples kept: ten minutes.
const SAMPLES_KEPT: usize = 600;
/// The disk is measured every this many samples (it walks the data directory, or asks
/// PostgreSQL); the samples between carry the last figure.
const DISK_EVERY: u64 = 10;

/// Latency percentiles of one class within one interval, in microseconds: the upper bound of
/// the mongod histogram bucket the percentile falls in (0 when nothing ran).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct IntervalLatency {
    p50: u64,
    p99: u64,
    ops: u64,
}

/// One sample of the overview.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// When it was taken, in Unix milliseconds.
    t: i64,
    /// Calls per second in the interval, by command name (commands that ran only).
    ops_per_second: Map<String, Value>,
    /// Percentiles per class (`reads`, `writes`, `commands`, `transactions`).
    latency_micros: Map<String, Value>,
    connections: u64,
    active_connections: u64,
    cursors: usize,
    cache_bytes: u64,
    cache_max_bytes: u64,
    disk_bytes: u64,
    /// Journal fsyncs in the interval and their 99th percentile (bucket upper bound).
    journal_syncs: u64,
    journal_sync_p99_micros: u64,
}

/// What the previous sample read, to turn counters into rates.
#[derive(Default)]
struct Previous {
    commands: Vec<u64>,
    classes: Option<[ClassBuckets; 4]>,
    journal: Vec<(f64, u64)>,
    disk_bytes: u64,
    taken: u64,
}

/// The samples of the last minutes.
#[derive(Default)]
pub struct OverviewHistory {
    samples: Mutex<VecDeque<Sample>>,
    previous: Mutex<Previous>,
}

impl OverviewHistory {
    /// The samples kept, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect()
    }

    /// Samples the server every [`SAMPLE_INTERVAL`] until `stop`.
    pub async fn run(self: Arc<Self>, state: Arc<State>, observers: Arc<Observers>, stop: CancellationToken) {
        let mut ticks = tokio::time::interval(SAMPLE_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let measure_disk =
                self.previous.lock().unwrap_or_else(PoisonError::into_inner).taken.is_multiple_of(DISK_EVERY);
            let disk_bytes = if measure_disk {
                let storage = state.storage.clone();
                match tokio::task::spawn_blocking(move || storage.engine_stats()).await {
                    Ok(Ok(stats)) => Some(stats.disk_bytes),
                    _ => None,
                }
            } else {
                None
            };
            self.take(&state, &observers, disk_bytes);
        }
    }

    /// Takes one sample now; `disk_bytes` when just measured.
    fn take(&self, state: &State, observers: &Observers, disk_bytes: Option<u64>) {
        let mut previous = self.previous.lock().unwrap_or_else(PoisonError::into_inner);
        let first = previous.taken == 0;
        previous.taken += 1;
        let seconds = SAMPLE_INTERVAL.as_secs_f64();

        let calls: Vec<u64> = state.counters.commands.iter().map(|c| c.total.load(Ordering::Relaxed)).collect();
        let mut ops_per_second = Map::new();
        if !first {
            for ((spec, now), before) in crate::cmd::COMMANDS.iter().zip(&calls).zip(&previous.commands) {
                let delta = now.saturating_sub(*before);
                if delta > 0 {
                    ops_per_second.insert(spec.name.to_owned(), Value::from(delta as f64 / seconds));
                }
            }
        }
        previous.commands = calls;

        let classes = observers.latency.class_buckets();
        let mut latency_micros = Map::new();
        for (index, class) in OpClass::ALL.iter().enumerate() {
            let interval = match (&previous.classes, classes.get(index)) {
                (Some(before), Some(now)) => before.get(index).map(|b| interval_latency(b, now)).unwrap_or_default(),
                _ => IntervalLatency::default(),
            };
            latency_micros.insert(class.name().to_owned(), serde_json::to_value(interval).unwrap_or_default());
        }
        previous.classes = Some(classes);

        let journal = observers.journal_sync_buckets();
        let (journal_syncs, journal_sync_p99_micros) = journal_interval(&previous.journal, &journal);
        previous.journal = journal;
        if let Some(bytes) = disk_bytes {
            previous.disk_bytes = bytes;
        }

        let connections = &state.counters.connections;
        let sample = Sample {
            t: bson::DateTime::now().timestamp_millis(),
            ops_per_second,
            latency_micros,
            connections: connections.current.load(Ordering::Relaxed),
            active_connections: connections.active.load(Ordering::Relaxed),
            cursors: state.cursors.len(),
            cache_bytes: state.storage.memory_usage().total_bytes(),
            cache_max_bytes: state.storage.memory_budget().total_bytes,
            disk_bytes: previous.disk_bytes,
            journal_syncs: if first { 0 } else { journal_syncs },
            journal_sync_p99_micros: if first { 0 } else { journal_sync_p99_micros },
        };
        drop(previous);
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        if samples.len() == SAMPLES_KEPT {
            samples.pop_front();
        }
        samples.push_back(sample);
    }
}

/// The percentiles of what was recorded between two readings of one class's buckets.
fn interval_latency(before: &ClassBuckets, now: &ClassBuckets) -> IntervalLatency {
    let delta: Vec<u64> = now.iter().zip(before.iter()).map(|(n, b)| n.saturating_sub(*b)).collect();
    let ops: u64 = delta.iter().sum();
    let percentile = |q: f64| {
        // The rank of the q-quantile among `ops` values, 1-based.
        let rank = ((ops as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, count) in delta.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return bucket_upper_bound(bucket);
            }
        }
        0
    };
    if ops == 0 {
        return IntervalLatency::default();
    }
    IntervalLatency { p50: percentile(0.50), p99: percentile(0.99), ops }
}

/// Journal syncs between two readings of the cumulative `(upper bound seconds, count)` buckets,
/// and their 99th percentile in microseconds (a bucket's upper bound).
fn journal_interval(before: &[(f64, u64)], now: &[(f64, u64)]) -> (u64, u64) {
    let count_below = |buckets: &[(f64, u64)], bound: f64| {
        buckets.iter().find(|(upper, _)| (*upper - bound).abs() < f64::EPSILON).map_or(0, |(_, n)| *n)
    };
    let total = |buckets: &[(f64, u64)]| buckets.last().map_or(0, |(_, n)| *n);
    let syncs = total(now).saturating_sub(total(before));
    if syncs == 0 {
        return (0, 0);
    }
    let rank = ((syncs as f64) * 0.99).ceil() as u64;
    let p99 = now
        .iter()
        .find(|(upper, cumulative)| cumulative.saturating_sub(count_below(before, *upper)) >= rank)
        .map_or(0, |(upper, _)| if upper.is_finite() { (upper * 1e6).round() as u64 } else { u64::MAX });
    (syncs, p99)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_percentiles_come_from_the_buckets_filled_in_the_interval() {
        let mut before = [0; BUCKETS];
        let mut now = [0; BUCKETS];
        // 10 ops at ~100 µs before; in the interval 98 more at ~100 µs and 2 at ~5 ms.
        before[7] = 10;
        now[7] = 108;
        now[13] = 2;
        let interval = interval_latency(&before, &now);
        assert_eq!(interval.ops, 100);
        assert_eq!(interval.p50, 256);
        assert_eq!(interval.p99, 6144);
        assert_eq!(interval_latency(&now, &now).ops, 0);
    }

    #[test]
    fn journal_p99_is_the_bucket_holding_the_interval_rank() {
        let before = [(0.001, 5), (0.01, 5), (f64::INFINITY, 5)];
        let now = [(0.001, 6), (0.01, 105), (f64::INFINITY, 105)];
        assert_eq!(journal_interval(&before, &now), (100, 10_000));
        assert_eq!(journal_interval(&now, &now), (0, 0));
    }
}
