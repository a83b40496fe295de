//! Correlation IDs: what ties together everything one operation leaves behind (its log lines,
//! its slow-query line, its profiler entry, its `currentOp` entry): the `opid`, and, when the
//! client gave them, the command's `comment`, the driver's `appName` and a W3C trace id.
//!
//! A client puts a trace in the `comment` field, as a string holding a `traceparent`
//! (`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, alone or inside other text) or as
//! a document with a `traceparent` string field; the trace id is the second part.

use std::cell::RefCell;
use std::sync::Arc;

use bson::Bson;
use serde_json::{Map, Value};

use crate::op::Operation;

/// The trace id of the W3C `traceparent` that `comment` carries, if it carries one.
pub fn trace_id_in(comment: &Bson) -> Option<String> {
    match comment {
        Bson::String(text) => text.split(|c: char| !c.is_ascii_alphanumeric() && c != '-').find_map(trace_id_of),
        Bson::Document(fields) => fields.get_str("traceparent").ok().and_then(trace_id_of),
        _ => None,
    }
}

/// The trace id of `traceparent` (version 00's layout), lower-case; none for an invalid one
/// (the all-zero trace id is invalid, as the W3C says).
fn trace_id_of(traceparent: &str) -> Option<String> {
    let mut parts = traceparent.split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |part: &str, len: usize| part.len() == len && part.bytes().all(|b| b.is_ascii_hexdigit());
    let valid = parts.next().is_none()
        && hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0');
    valid.then(|| trace.to_ascii_lowercase())
}

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
        if let Some(trace) = &op.trace_id {
            attr.entry("traceId").or_insert_with(|| Value::from(trace.as_str()));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_come_from_a_traceparent_in_the_comment() {
        let traceparent = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01";
        let expected = Some("4bf92f3577b34da6a3ce929d0e0e4736".to_owned());
        assert_eq!(trace_id_in(&Bson::String(traceparent.into())), expected);
        assert_eq!(trace_id_in(&Bson::String(format!("checkout page; traceparent={traceparent}"))), expected);
        assert_eq!(trace_id_in(&Bson::Document(bson::doc! { "traceparent": traceparent, "user": 7 })), expected);
        for invalid in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "a plain comment",
        ] {
            assert_eq!(trace_id_in(&Bson::String(invalid.into())), None, "{invalid}");
        }
        assert_eq!(trace_id_in(&Bson::Int32(7)), None);
    }
}
