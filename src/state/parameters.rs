//! Server parameters that `setParameter` changes while the server runs. Each starts from the
//! configuration; its readers (the cursor reaper, the TTL monitor, blocking sorts, connection
//! logging) read the current value every time, so a new value takes effect at once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::config::Config;

/// The runtime-settable parameters (log verbosity lives with the log sink).
#[derive(Debug)]
pub struct RuntimeParameters {
    cursor_timeout_millis: AtomicU64,
    ttl_monitor_sleep_secs: AtomicU64,
    max_blocking_sort_bytes: AtomicU64,
    allow_disk_use_by_default: AtomicBool,
    scram_iteration_count: AtomicU64,
    scram_sha256_iteration_count: AtomicU64,
    quiet: AtomicBool,
    transaction_lifetime_secs: AtomicU64,
    /// Wakes the background tasks that sleep for a parameter's period when it changes.
    changed: tokio::sync::Notify,
}

impl RuntimeParameters {
    /// The values `config` starts with.
    pub fn new(config: &Config) -> Self {
        let p = &config.parameters;
        Self {
            cursor_timeout_millis: AtomicU64::new(p.cursor_timeout_millis),
            ttl_monitor_sleep_secs: AtomicU64::new(p.ttl_monitor_sleep_secs),
            max_blocking_sort_bytes: AtomicU64::new(p.max_blocking_sort_bytes),
            allow_disk_use_by_default: AtomicBool::new(p.allow_disk_use_by_default),
            scram_iteration_count: AtomicU64::new(p.scram_iteration_count),
            scram_sha256_iteration_count: AtomicU64::new(p.scram_sha256_iteration_count),
            quiet: AtomicBool::new(config.log.quiet),
            transaction_lifetime_secs: AtomicU64::new(p.transaction_lifetime_secs),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// `cursorTimeoutMillis`: idle time after which a cursor is closed.
    pub fn cursor_timeout_millis(&self) -> u64 {
        self.cursor_timeout_millis.load(Ordering::Relaxed)
    }

    /// `ttlMonitorSleepSecs`: seconds between passes of the TTL monitor.
    pub fn ttl_monitor_sleep_secs(&self) -> u64 {
        self.ttl_monitor_sleep_secs.load(Ordering::Relaxed)
    }

    /// `internalQueryMaxBlockingSortMemoryUsageBytes`.
    pub fn max_blocking_sort_bytes(&self) -> u64 {
        self.max_blocking_sort_bytes.load(Ordering::Relaxed)
    }

    /// `allowDiskUseByDefault`.
    pub fn allow_disk_use_by_default(&self) -> bool {
        self.allow_disk_use_by_default.load(Ordering::Relaxed)
    }

    /// `quiet`: connection events are not logged.
    pub fn quiet(&self) -> bool {
        self.quiet.load(Ordering::Relaxed)
    }

    /// Sets `cursorTimeoutMillis` and wakes the cursor reaper.
    pub fn set_cursor_timeout_millis(&self, value: u64) {
        self.cursor_timeout_millis.store(value, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// Sets `ttlMonitorSleepSecs` and wakes the TTL monitor, which sleeps the new period.
    pub fn set_ttl_monitor_sleep_secs(&self, value: u64) {
        self.ttl_monitor_sleep_secs.store(value, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// Sets `internalQueryMaxBlockingSortMemoryUsageBytes`.
    pub fn set_max_blocking_sort_bytes(&self, value: u64) {
        self.max_blocking_sort_bytes.store(value, Ordering::Relaxed);
    }

    /// `scramIterationCount` (`sha256`: `scramSHA256IterationCount`): the PBKDF2 iterations of
    /// new credentials.
    pub fn scram_iterations(&self, sha256: bool) -> u64 {
        if sha256 {
            self.scram_sha256_iteration_count.load(Ordering::Relaxed)
        } else {
            self.scram_iteration_count.load(Ordering::Relaxed)
        }
    }

    /// Sets `scramIterationCount` (`sha256`: `scramSHA256IterationCount`).
    pub fn set_scram_iterations(&self, sha256: bool, iterations: u64) {
        let slot = if sha256 { &self.scram_sha256_iteration_count } else { &self.scram_iteration_count };
        slot.store(iterations, Ordering::Relaxed);
    }

    /// Sets `allowDiskUseByDefault`.
    pub fn set_allow_disk_use_by_default(&self, value: bool) {
        self.allow_disk_use_by_default.store(value, Ordering::Relaxed);
    }

    /// `transactionLifetimeLimitSeconds`: how long a transaction may stay open before it is
    /// aborted.
    pub fn transaction_lifetime(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.transaction_lifetime_secs.load(Ordering::Relaxed))
    }

    /// Sets `transactionLifetimeLimitSeconds`.
    pub fn set_transaction_lifetime_secs(&self, seconds: u64) {
        self.transaction_lifetime_secs.store(seconds, Ordering::Relaxed);
    }

    /// Sets `quiet`.
    pub fn set_quiet(&self, value: bool) {
        self.quiet.store(value, Ordering::Relaxed);
    }

    /// Resolves when a parameter with a period changes (register before reading the value,
    /// so that no change is missed between the read and the wait).
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }
}
