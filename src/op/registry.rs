//! The operations in flight, by `opid`: what `currentOp` lists and `killOp` interrupts.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bson::RawDocumentBuf;

use super::Operation;

/// The registry of operations in flight.
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
    /// The users the connection is authenticated as, `(user, db)`: who owns the operation.
    pub users: crate::auth::UserNames,
    /// The request body.
    pub command: RawDocumentBuf,
    /// The command's `comment`, if it has one.
    pub comment: Option<bson::Bson>,
    /// The W3C `traceparent` in the comment, if it holds one.
    pub trace: Option<super::trace_parent::TraceParent>,
}

impl OpRegistry {
    /// Registers a new operation (listed only when `listed`); it leaves the registry when the
    /// returned guard drops.
    pub fn begin(&self, start: OpStart<'_>, listed: bool) -> OpGuard<'_> {
        // mongod's opids are positive 32-bit ints.
        let op_id = self.next.fetch_add(1, Ordering::Relaxed).wrapping_add(1) & 0x7fff_ffff;
        let op = Arc::new(Operation::new(op_id, start));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::op::ExecStats;

    /// A `find` on `db.c`, for these tests and others that need an operation.
    fn start(name: &str) -> OpStart<'_> {
        OpStart {
            users: Default::default(),
            connection_id: 1,
            client: SocketAddr::from(([127, 0, 0, 1], 5000)),
            app_name: None,
            started: Instant::now(),
            command_name: name,
            db: "db".into(),
            collection: Some("c".into()),
            command: RawDocumentBuf::new(),
            comment: None,
            trace: None,
        }
    }

    #[test]
    fn tracker_registry_lists_and_kills_operations() {
        let registry = OpRegistry::default();
        let guard = registry.begin(start("find"), true);
        let id = guard.op().op_id;
        assert_eq!(registry.all().len(), 1);
        assert_eq!(guard.op().ns, "db.c");
        assert_eq!(guard.op().kind, crate::op::OpKind::Query);
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
}
