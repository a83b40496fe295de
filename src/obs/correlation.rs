//! Correlation IDs: what ties together everything one operation leaves behind (its log lines,
//! its slow-query line, its profiler entry, its `currentOp` entry): the `opid`, and, when the
//! client gave them, the command's `comment`, the driver's `appName` and a W3C trace id.
//!
//! A client puts a trace in the `comment` field, as a string holding a `traceparent`
//! (`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, alone or inside other text) or as
//! a document with a `traceparent` string field (`crate::op::trace_parent`).

use std::cell::RefCell;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::op::Operation;

thread_local! {
    /// The operation whose handler runs on this thread, and whether its comment is redacted.
    static CURRENT: RefCell<Option<(Arc<Operation>, bool)>> = const { RefCell::new(None) };
}

/// While it lives, what this thread logs is the operation's: lines get its connection as
/// `ctx` ([`current_ctx`]) and its correlation IDs in `attr` ([`add_current`]). Entered where
/// a handler runs. Nothing is built until a line is logged: most requests log none.
pub struct OpScope {
    previous: Option<(Arc<Operation>, bool)>,
}

/// Enters `op`'s scope on this thread. Under `redactClientLogData` (`redact`) the comment,
/// which is client data, is left out; the trace id, the opid and the application's name are not.
pub fn enter(op: &Arc<Operation>, redact: bool) -> OpScope {
    OpScope { previous: CURRENT.with(|current| current.replace(Some((op.clone(), redact)))) }
}

impl Drop for OpScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|current| *current.borrow_mut() = previous);
    }
}

/// The `ctx` of a line logged for the operation running on this thread: its connection.
pub fn current_ctx() -> Option<String> {
    CURRENT.with(|current| current.borrow().as_ref().map(|(op, _)| format!("conn{}", op.connection_id)))
}

/// Adds the correlation IDs of the operation running on this thread (none outside one) to
/// a line's `attr`, leaving the line's own attributes of the same names.
pub fn add_current(attr: &mut Map<String, Value>) {
    CURRENT.with(|current| {
        let Some((op, redact)) = current.borrow().clone() else { return };
        attr.entry("opid").or_insert_with(|| Value::from(op.op_id));
        if let Some(app) = &op.app_name {
            attr.entry("appName").or_insert_with(|| Value::from(app.as_str()));
        }
        if let Some(comment) = op.comment.as_ref().filter(|_| !redact) {
            attr.entry("comment").or_insert_with(|| comment.clone().into_relaxed_extjson());
        }
        if let Some(trace) = &op.trace {
            attr.entry("traceId").or_insert_with(|| Value::from(trace.trace_id.as_str()));
        }
    });
}
