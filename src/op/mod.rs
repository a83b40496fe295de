//! One request in flight, from the decoded message to the written reply: its identity
//! (`opid`, connection, namespace, command), its [`Interrupt`] (`killOp`, `maxTimeMS`), the
//! query execution it drives ([`ExecStats`]), its document counts and its phase timings.
//!
//! This module is a leaf: the shared state keeps the [`OpRegistry`], the executor counts into
//! [`ExecStats`], and observability reads a finished [`Operation`] through its summary, so
//! none of them needs another.

mod exec_stats;
mod interrupt;
mod registry;
pub mod trace_parent;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bson::RawDocumentBuf;

pub use exec_stats::{ExecStats, PlanNote};
pub use interrupt::{Interrupt, check_deadline, time_limit_exceeded};
pub use registry::{OpGuard, OpRegistry, OpStart};

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
    /// The command's `comment`, if it has one.
    pub comment: Option<bson::Bson>,
    /// The W3C `traceparent` in the comment, if it holds one (see [`trace_parent`]):
    /// its trace id goes into every record the operation leaves, and its span is the parent of
    /// the operation's span.
    pub trace: Option<trace_parent::TraceParent>,
    /// When its message was decoded.
    pub started: Instant,
    /// The database (`$db`).
    pub db: String,
    /// `db.collection` when the command names a collection, else `db.$cmd`.
    pub ns: String,
    /// The request body.
    pub command: RawDocumentBuf,
    /// The users the connection is authenticated as, `(user, db)`: who owns the operation.
    pub users: crate::auth::UserNames,
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
    /// Committing writes (inside `execute`; a read's storage time is not separated from its
    /// execution).
    pub storage: Duration,
    /// Waiting for the journal sync the write concern asked for (`j: true`), after the
    /// handler (inside `execute`).
    pub journal: Duration,
    /// Encoding the reply.
    pub encode: Duration,
    /// Writing the reply to the socket.
    pub write: Duration,
    /// Waiting for a topology change (an awaitable `hello`): the client asked for the wait,
    /// so it is not part of the operation's duration.
    pub awaited: Duration,
}

impl Operation {
    /// A new operation `op_id` as `start` describes it.
    fn new(op_id: u32, start: OpStart<'_>) -> Self {
        let ns = match &start.collection {
            Some(coll) => format!("{}.{coll}", start.db),
            None => format!("{}.$cmd", start.db),
        };
        Self {
            op_id,
            kind: OpKind::of(start.command_name),
            connection_id: start.connection_id,
            client: start.client,
            app_name: start.app_name,
            trace: start.trace,
            comment: start.comment,
            started: start.started,
            db: start.db,
            ns,
            command: start.command,
            users: start.users,
            interrupt: Arc::default(),
            exec: Mutex::default(),
            docs: DocCounts::default(),
            phases: Mutex::default(),
        }
    }

    /// The `maxTimeMS` deadline, measured from the decoded message, if the request set one:
    /// the one deadline the interrupt checks and the cursor's batches share.
    pub fn deadline(&self) -> Option<Instant> {
        self.interrupt.deadline()
    }

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
            phases.plan = tracking.stats.plan_time();
        }
        phases
    }
}
