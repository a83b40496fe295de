//! What a query execution has done so far: keys and documents examined, documents matched,
//! planning time and the chosen plan. The executor counts into it; the [`Operation`]
//! (`currentOp`, the finished request's summary) reads it. A cursor keeps it across
//! `getMore`s, each of which attaches its own [`Interrupt`].
//!
//! [`Operation`]: super::Operation

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::interrupt::Interrupt;
use crate::error::Result;

/// Work between two interrupt checks during a scan: checking is an atomic load and, with a
/// deadline, a clock read.
const CHECK_EVERY: u64 = 128;

/// The counters of one query execution.
#[derive(Debug, Default)]
pub struct ExecStats {
    /// Index keys read.
    pub keys_examined: AtomicU64,
    /// Documents read.
    pub docs_examined: AtomicU64,
    /// Documents the access path returned (matching the filter), before sort, skip, limit.
    pub matched: AtomicU64,
    /// Nanoseconds spent choosing plans.
    plan_nanos: AtomicU64,
    plan: Mutex<Option<PlanNote>>,
    interrupt: Mutex<Option<Arc<Interrupt>>>,
}

/// The plan of an execution, as logs and the profiler show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanNote {
    /// `COLLSCAN`, `IXSCAN { a: 1 }`, `IDHACK`.
    pub summary: String,
    /// A hash of the query's shape (fields and operators, no values), 16 hex digits.
    pub shape_hash: String,
}

impl ExecStats {
    /// Counts one index key read; checks for an interrupt every [`CHECK_EVERY`] reads.
    ///
    /// # Errors
    /// 11601 Interrupted or 50 MaxTimeMSExpired.
    pub fn key(&self) -> Result<()> {
        let n = self.keys_examined.fetch_add(1, Ordering::Relaxed);
        self.check_every(n)
    }

    /// Counts one document read; checks for an interrupt every [`CHECK_EVERY`] reads.
    ///
    /// # Errors
    /// 11601 Interrupted or 50 MaxTimeMSExpired.
    pub fn doc(&self) -> Result<()> {
        let n = self.docs_examined.fetch_add(1, Ordering::Relaxed);
        self.check_every(n)
    }

    fn check_every(&self, n: u64) -> Result<()> {
        if n % CHECK_EVERY != CHECK_EVERY - 1 {
            return Ok(());
        }
        self.check()
    }

    /// Checks the attached operation's interrupt now.
    ///
    /// # Errors
    /// 11601 Interrupted or 50 MaxTimeMSExpired.
    pub fn check(&self) -> Result<()> {
        let interrupt = self.interrupt.lock().unwrap_or_else(PoisonError::into_inner).clone();
        interrupt.map_or(Ok(()), |i| i.check())
    }

    /// Makes `interrupt` (the running request's) stop this execution.
    pub fn attach(&self, interrupt: Arc<Interrupt>) {
        *self.interrupt.lock().unwrap_or_else(PoisonError::into_inner) = Some(interrupt);
    }

    /// Adds the time a plan choice took.
    pub fn add_plan_time(&self, spent: Duration) {
        self.plan_nanos.fetch_add(u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The time spent choosing plans so far.
    pub fn plan_time(&self) -> Duration {
        Duration::from_nanos(self.plan_nanos.load(Ordering::Relaxed))
    }

    /// Records the chosen plan.
    pub fn set_plan(&self, plan: PlanNote) {
        *self.plan.lock().unwrap_or_else(PoisonError::into_inner) = Some(plan);
    }

    /// The chosen plan, once planned.
    pub fn plan(&self) -> Option<PlanNote> {
        self.plan.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Keys and documents examined so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.keys_examined.load(Ordering::Relaxed), self.docs_examined.load(Ordering::Relaxed))
    }
}
