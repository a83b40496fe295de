//! The summary of a finished request: the one record that metrics, the slow-query log, the
//! profiler and the latency histograms are fed from, so they always agree. The connection
//! builds it from the request's [`Operation`]; observability reads nothing else.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::error::ErrorCode;
use crate::op::{OpKind, Operation, Phases, PlanNote};

/// A finished request, as every observer sees it.
#[derive(Debug)]
pub struct OpSummary<'a> {
    /// The operation.
    pub op: &'a Operation,
    /// The command's canonical name (from the command table), or `"unknown"`.
    pub command: &'static str,
    /// How long it took, from decoding to the written reply, less the wait an awaitable
    /// `hello` asked for.
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

impl<'a> OpSummary<'a> {
    /// The summary of `op` as it stands now: its duration so far, its examined counts, plan
    /// and phases, with what the connection knows (`command`, `error`, message sizes).
    pub fn of(
        op: &'a Operation,
        command: &'static str,
        error: Option<ErrorCode>,
        bytes_in: u64,
        bytes_out: u64,
    ) -> Self {
        let (keys_examined, docs_examined, plan) = op.examined();
        let phases = op.phases();
        Self {
            op,
            command,
            duration: op.started.elapsed().saturating_sub(phases.awaited),
            error,
            keys_examined,
            docs_examined,
            plan,
            bytes_in,
            bytes_out,
            phases,
        }
    }

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
