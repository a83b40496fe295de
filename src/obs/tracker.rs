//! The request tracker: one [`Operation`] per request, from the decoded message to the written
//! reply. It is what `currentOp` lists and `killOp` interrupts, and its [`OpSummary`] is the
//! single record that metrics, the slow-query log, the profiler and the latency histograms
//! are fed from, so they always agree.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bson::RawDocumentBuf;

use crate::error::{Error, ErrorCode, Result};

/// Work between two interrupt checks during a scan: checking is an atomic load and, with a
/// deadline, a clock read.
const CHECK_EVERY: u64 = 128;

/// Why an operation must stop: `killOp`, or its `maxTimeMS` deadline.
#[derive(Debug, Default)]
pub struct Interrupt {
    killed: AtomicBool,
    deadline: Mutex<Option<Instant>>,
}

impl Interrupt {
    /// Marks the operation killed; it stops at its next check.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
    }

    /// Whether `killOp` marked it.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// Sets the `maxTimeMS` deadline.
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner) = deadline;
    }

    /// Fails with 11601 Interrupted after `killOp`, 50 MaxTimeMSExpired past the deadline.
    ///
    /// # Errors
    /// As described.
    pub fn check(&self) -> Result<()> {
        if self.killed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorCode::Interrupted, "operation was interrupted"));
        }
        let deadline = *self.deadline.lock().unwrap_or_else(PoisonError::into_inner);
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Error::new(ErrorCode::MaxTimeMSExpired, "operation exceeded time limit"));
        }
        Ok(())
    }
}

/// What a query execution has done so far: keys and documents examined, and the plan. A
/// cursor keeps it across `getMore`s, each of which attaches its own [`Interrupt`].
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

    /// Records the chosen plan.
    pub fn set_plan(&self, plan: PlanNote) {
        *self.plan.lock().unwrap_or_else(PoisonError::into_inner) = Some(plan);
    }

    /// The chosen plan, once planned.
    pub fn plan(&self) -> Option<PlanNote> {
        self.plan.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn counts(&self) -> (u64, u64) {
        (self.keys_examined.load(Ordering::Relaxed), self.docs_examined.load(Ordering::Relaxed))
    }
}

/// What kind of operation, in `currentOp`'s and the profiler's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// `find`.
    Query,
    /// `getMore`.
    GetMore,
    /// `insert`.
    Insert,
    /// `update`, `findAndModify`.
    Update,
    /// `delete`.
    Remove,
    /// Every other command.
    Command,
}

impl OpKind {
    /// The name mongod uses (`op: "query"`).
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Query => "query",
            OpKind::GetMore => "getmore",
            OpKind::Insert => "insert",
            OpKind::Update => "update",
            OpKind::Remove => "remove",
            OpKind::Command => "command",
        }
    }

    /// The kind of a command by name.
    pub fn of(command: &str) -> Self {
        match command {
            "find" => OpKind::Query,
            "getMore" => OpKind::GetMore,
            "insert" => OpKind::Insert,
            "update" | "findAndModify" | "findandmodify" => OpKind::Update,
            "delete" => OpKind::Remove,
            _ => OpKind::Command,
        }
    }
}

/// Document counts a command reports while it runs.
#[derive(Debug, Default)]
pub struct DocCounts {
    /// Documents returned to the client.
    pub returned: AtomicU64,
    /// Documents inserted.
    pub inserted: AtomicU64,
    /// Documents updated.
    pub updated: AtomicU64,
    /// Documents deleted.
    pub deleted: AtomicU64,
}

/// An execution a request drives, and its counts (keys, documents) when the request took it
/// over: what the request examined is the difference.
#[derive(Debug)]
struct Tracking {
    stats: Arc<ExecStats>,
    baseline: (u64, u64),
}

/// One request in flight.
#[derive(Debug)]
pub struct Operation {
    /// `opid` (what `killOp` takes).
    pub op_id: u32,
    /// The connection it arrived on.
    pub connection_id: u64,
    /// The client's address.
    pub client: SocketAddr,
    /// The driver's application name, if it sent one.
    pub app_name: Option<String>,
    /// When its message was decoded.
    pub started: Instant,
    /// The database (`$db`).
    pub db: String,
    /// `db.collection` when the command names a collection, else `db.$cmd`.
    pub ns: String,
    /// The request body.
    pub command: RawDocumentBuf,
    /// What kind of operation.
    pub kind: OpKind,
    /// Set by `killOp` and `maxTimeMS`.
    pub interrupt: Arc<Interrupt>,
    /// The query execution this request drives (a find's, or a cursor's for getMore).
    exec: Mutex<Option<Tracking>>,
    /// Documents returned, inserted, updated, deleted.
    pub docs: DocCounts,
    /// Time spent parsing, planning and executing (filled as the request goes).
    phases: Mutex<Phases>,
}

/// Time spent in each phase of a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases {
    /// Receiving the message: from its first bytes to the whole message.
    pub read: Duration,
    /// Decoding the message and reading the command.
    pub parse: Duration,
    /// Choosing the plan.
    pub plan: Duration,
    /// Running the handler (plan included).
    pub execute: Duration,
    /// Committing writes and waiting for their journal sync (inside `execute`; a read's
    /// storage time is not separated from its execution).
    pub storage: Duration,
    /// Encoding the reply.
    pub encode: Duration,
    /// Writing the reply to the socket.
    pub write: Duration,
}

impl Operation {
    /// Uses `stats` as this request's execution: its counts from now on are this request's.
    pub fn track(&self, stats: &Arc<ExecStats>) {
        stats.attach(self.interrupt.clone());
        let baseline = stats.counts();
        *self.exec.lock().unwrap_or_else(PoisonError::into_inner) = Some(Tracking { stats: stats.clone(), baseline });
    }

    /// Keys and documents examined by this request so far, and its plan.
    pub fn examined(&self) -> (u64, u64, Option<PlanNote>) {
        match &*self.exec.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(Tracking { stats, baseline: (keys, docs) }) => {
                let (k, d) = stats.counts();
                (k.saturating_sub(*keys), d.saturating_sub(*docs), stats.plan())
            }
            None => (0, 0, None),
        }
    }

    /// Adds time to a phase.
    pub fn add_phase(&self, phase: fn(&mut Phases) -> &mut Duration, spent: Duration) {
        let mut phases = self.phases.lock().unwrap_or_else(PoisonError::into_inner);
        *phase(&mut phases) += spent;
    }

    /// The phases so far (planning as the tracked execution recorded it).
    pub fn phases(&self) -> Phases {
        let mut phases = *self.phases.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tracking) = &*self.exec.lock().unwrap_or_else(PoisonError::into_inner) {
            phases.plan = Duration::from_nanos(tracking.stats.plan_nanos.load(Ordering::Relaxed));
        }
        phases
    }
}

/// The operations in flight, by `opid`.
#[derive(Debug, Default)]
pub struct OpRegistry {
    ops: Mutex<HashMap<u32, Arc<Operation>>>,
    next: AtomicU32,
}

/// What a new operation is, before it is registered.
#[derive(Debug)]
pub struct OpStart<'a> {
    /// The connection.
    pub connection_id: u64,
    /// The client's address.
    pub client: SocketAddr,
    /// The driver's application name.
    pub app_name: Option<String>,
    /// When the message was decoded.
    pub started: Instant,
    /// The command name as sent.
    pub command_name: &'a str,
    /// `$db`.
    pub db: String,
    /// The collection the command names, if any.
    pub collection: Option<String>,
    /// The request body.
    pub command: RawDocumentBuf,
}

impl OpRegistry {
    /// Registers a new operation (listed only when `listed`); it leaves the registry when the
    /// returned guard drops.
    pub fn begin(&self, start: OpStart<'_>, listed: bool) -> OpGuard<'_> {
        // mongod's opids are positive 32-bit ints.
        let op_id = self.next.fetch_add(1, Ordering::Relaxed).wrapping_add(1) & 0x7fff_ffff;
        let kind = OpKind::of(start.command_name);
        let ns = match &start.collection {
            Some(coll) => format!("{}.{coll}", start.db),
            None => format!("{}.$cmd", start.db),
        };
        let op = Arc::new(Operation {
            op_id,
            connection_id: start.connection_id,
            client: start.client,
            app_name: start.app_name,
            started: start.started,
            db: start.db,
            ns,
            command: start.command,
            kind,
            interrupt: Arc::default(),
            exec: Mutex::default(),
            docs: DocCounts::default(),
            phases: Mutex::default(),
        });
        if listed {
            self.lock().insert(op_id, op.clone());
        }
        OpGuard { registry: self, op, listed }
    }

    /// The operations in flight now.
    pub fn all(&self) -> Vec<Arc<Operation>> {
        let mut ops: Vec<_> = self.lock().values().cloned().collect();
        ops.sort_by_key(|op| op.op_id);
        ops
    }

    /// Interrupts operation `op_id`; false if it is not running.
    pub fn kill(&self, op_id: u32) -> bool {
        match self.lock().get(&op_id) {
            Some(op) => {
                op.interrupt.kill();
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Arc<Operation>>> {
        self.ops.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A registered operation; unregisters it when dropped (also on early exits).
#[derive(Debug)]
pub struct OpGuard<'a> {
    registry: &'a OpRegistry,
    op: Arc<Operation>,
    listed: bool,
}

impl OpGuard<'_> {
    /// The operation.
    pub fn op(&self) -> &Arc<Operation> {
        &self.op
    }
}

impl Drop for OpGuard<'_> {
    fn drop(&mut self) {
        if self.listed {
            self.registry.lock().remove(&self.op.op_id);
        }
    }
}

/// A finished request, as every observer sees it.
#[derive(Debug)]
pub struct OpSummary<'a> {
    /// The operation.
    pub op: &'a Operation,
    /// The command's canonical name (from the command table), or `"unknown"`.
    pub command: &'static str,
    /// How long it took, from decoding to the written reply.
    pub duration: Duration,
    /// The error it answered with, if any.
    pub error: Option<ErrorCode>,
    /// Index keys examined.
    pub keys_examined: u64,
    /// Documents examined.
    pub docs_examined: u64,
    /// The plan, for queries.
    pub plan: Option<PlanNote>,
    /// Request bytes (uncompressed).
    pub bytes_in: u64,
    /// Reply bytes (uncompressed).
    pub bytes_out: u64,
    /// Time per phase.
    pub phases: Phases,
}

impl OpSummary<'_> {
    /// Documents returned.
    pub fn returned(&self) -> u64 {
        self.op.docs.returned.load(Ordering::Relaxed)
    }

    /// The document counts logs and the profiler show (`nreturned`, `ninserted`, `nModified`,
    /// `ndeleted`): those above zero, and always the one the operation's kind reports.
    pub fn doc_counts(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        let op = self.op;
        let docs = &op.docs;
        let reads = matches!(op.kind, OpKind::Query | OpKind::GetMore) || self.plan.is_some();
        [
            ("nreturned", &docs.returned, reads),
            ("ninserted", &docs.inserted, op.kind == OpKind::Insert),
            ("nModified", &docs.updated, op.kind == OpKind::Update),
            ("ndeleted", &docs.deleted, op.kind == OpKind::Remove),
        ]
        .into_iter()
        .map(|(name, n, always)| (name, n.load(Ordering::Relaxed), always))
        .filter(|(_, n, always)| *n > 0 || *always)
        .map(|(name, n, _)| (name, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(name: &str) -> OpStart<'_> {
        OpStart {
            connection_id: 1,
            client: SocketAddr::from(([127, 0, 0, 1], 5000)),
            app_name: None,
            started: Instant::now(),
            command_name: name,
            db: "db".into(),
            collection: Some("c".into()),
            command: RawDocumentBuf::new(),
        }
    }

    #[test]
    fn tracker_registry_lists_and_kills_operations() {
        let registry = OpRegistry::default();
        let guard = registry.begin(start("find"), true);
        let id = guard.op().op_id;
        assert_eq!(registry.all().len(), 1);
        assert_eq!(guard.op().ns, "db.c");
        assert_eq!(guard.op().kind, OpKind::Query);
        let stats = Arc::new(ExecStats::default());
        guard.op().track(&stats);
        assert!(stats.check().is_ok());
        assert!(registry.kill(id));
        let err = stats.check().map(|()| 0).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Interrupted);
        drop(guard);
        assert!(registry.all().is_empty());
        assert!(!registry.kill(id));
    }

    #[test]
    fn tracker_counts_are_per_request() {
        let registry = OpRegistry::default();
        let stats = Arc::new(ExecStats::default());
        let first = registry.begin(start("find"), true);
        first.op().track(&stats);
        for _ in 0..10 {
            stats.doc().unwrap();
        }
        assert_eq!(first.op().examined().1, 10);
        let more = registry.begin(start("getMore"), true);
        more.op().track(&stats);
        for _ in 0..5 {
            stats.doc().unwrap();
        }
        assert_eq!(more.op().examined().1, 5, "a getMore counts its own work");
    }

    #[test]
    fn tracker_deadline_interrupts_at_the_next_check() {
        let interrupt = Interrupt::default();
        interrupt.set_deadline(Some(Instant::now()));
        assert_eq!(interrupt.check().map(|()| 0).unwrap_err().code(), ErrorCode::MaxTimeMSExpired);
    }
}
