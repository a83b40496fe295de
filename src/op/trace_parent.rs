//! The W3C trace context a client may hand an operation: a `traceparent`
//! (`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`) in the command's `comment`. Its
//! trace id correlates what the operation leaves behind (`crate::obs::correlation`), and its
//! span is the parent of the operation's own span (`crate::obs::otel`).

use bson::Bson;

/// A W3C `traceparent` (version 00's fields) that a client put in a command's `comment`: the
/// application's trace, which the operation's span continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace id: 32 lower-case hex digits.
    pub trace_id: String,
    /// The caller's span id, 16 lower-case hex digits: the parent of the operation's span.
    pub parent_id: String,
    /// The caller's `sampled` flag (bit 0 of the flags): whether it records this trace.
    pub sampled: bool,
}

/// The W3C `traceparent` that `comment` carries, if it carries one: a string holding it
/// (alone or inside other text), or a document with a `traceparent` string field.
pub fn in_comment(comment: &Bson) -> Option<TraceParent> {
    match comment {
        Bson::String(text) => text.split(|c: char| !c.is_ascii_alphanumeric() && c != '-').find_map(trace_parent_of),
        Bson::Document(fields) => fields.get_str("traceparent").ok().and_then(trace_parent_of),
        _ => None,
    }
}

/// `traceparent` in version 00's layout, lower-cased; none for an invalid one (the W3C makes
/// an all-zero trace id or parent id invalid, and version ff).
fn trace_parent_of(traceparent: &str) -> Option<TraceParent> {
    let mut parts = traceparent.split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |part: &str, len: usize| part.len() == len && part.bytes().all(|b| b.is_ascii_hexdigit());
    let not_zero = |part: &str| part.bytes().any(|b| b != b'0');
    let valid = parts.next().is_none()
        && hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && not_zero(trace)
        && not_zero(parent);
    let flags = u8::from_str_radix(flags, 16).ok()?;
    valid.then(|| TraceParent {
        trace_id: trace.to_ascii_lowercase(),
        parent_id: parent.to_ascii_lowercase(),
        sampled: flags & 1 == 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_parents_come_from_a_traceparent_in_the_comment() {
        let traceparent = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01";
        let expected = Some(TraceParent {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
            parent_id: "00f067aa0ba902b7".to_owned(),
            sampled: true,
        });
        assert_eq!(in_comment(&Bson::String(traceparent.into())), expected);
        assert_eq!(in_comment(&Bson::String(format!("checkout page; traceparent={traceparent}"))), expected);
        assert_eq!(in_comment(&Bson::Document(bson::doc! { "traceparent": traceparent, "user": 7 })), expected);
        let unsampled = in_comment(&Bson::String("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02".into()));
        assert_eq!(unsampled.map(|t| t.sampled), Some(false));
        for invalid in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "a plain comment",
        ] {
            assert_eq!(in_comment(&Bson::String(invalid.into())), None, "{invalid}");
        }
        assert_eq!(in_comment(&Bson::Int32(7)), None);
    }
}
