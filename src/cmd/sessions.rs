//! Logical session commands: `startSession`, `endSessions`, `refreshSessions`,
//! `killSessions`, `killAllSessions`.

use bson::{Binary, Document, RawBsonRef, Uuid, doc};

use super::request::session_id;
use super::{CommandRequest, RequestCtx};
use crate::error::{Error, ErrorCode, Result};
use crate::state::sessions::SESSION_TIMEOUT;

/// `startSession`: a new server-side session id.
pub fn start_session(ctx: &mut RequestCtx<'_>, _: &CommandRequest) -> Result<Document> {
    let id = ctx.state.sessions.start();
    Ok(doc! {
        "id": { "id": Binary::from_uuid(id) },
        "timeoutMinutes": (SESSION_TIMEOUT.as_secs() / 60) as i32,
    })
}

/// `endSessions: [{id}, ...]`.
pub fn end_sessions(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    ctx.state.sessions.end(&session_ids(req)?);
    Ok(Document::new())
}

/// `refreshSessions: [{id}, ...]`: keeps the sessions alive.
pub fn refresh_sessions(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    for id in session_ids(req)? {
        ctx.state.sessions.touch(id);
    }
    Ok(Document::new())
}

/// `killSessions: [{id}, ...]`; an empty list kills every session of the caller (all of them,
/// while there is no authentication).
pub fn kill_sessions(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let ids = session_ids(req)?;
    if ids.is_empty() {
        ctx.state.sessions.kill_all();
    } else {
        ctx.state.sessions.end(&ids);
    }
    Ok(Document::new())
}

/// `killAllSessions: [{user, db}, ...]`; an empty list kills every session. Sessions opened
/// without authentication belong to no user, so a user pattern matches none of them.
pub fn kill_all_sessions(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let patterns = command_array(req)?;
    for pattern in &patterns {
        if !matches!(pattern, RawBsonRef::Document(_)) {
            return Err(req.wrong_type(req.name(), *pattern, "object"));
        }
    }
    if patterns.is_empty() {
        ctx.state.sessions.kill_all();
    }
    Ok(Document::new())
}

/// The command's own value, which must be an array.
fn command_array(req: &CommandRequest) -> Result<Vec<RawBsonRef<'_>>> {
    match req.command_value() {
        Some(RawBsonRef::Array(items)) => {
            items.into_iter().map(|item| item.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))).collect()
        }
        Some(other) => Err(req.wrong_type(req.name(), other, "array")),
        None => Err(Error::new(ErrorCode::FailedToParse, format!("{} requires an array", req.name()))),
    }
}

fn session_ids(req: &CommandRequest) -> Result<Vec<Uuid>> {
    command_array(req)?
        .into_iter()
        .map(|item| match item {
            RawBsonRef::Document(lsid) => session_id(lsid),
            other => Err(req.wrong_type(req.name(), other, "object")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::TestServer;

    #[test]
    fn sessions_start_refresh_end() -> Result<(), bson::error::Error> {
        let shared = TestServer::new();
        let started = shared.run_command(doc! { "startSession": 1, "$db": "admin" });
        assert_eq!(started.get_i32("timeoutMinutes")?, 30);
        let id = started.get_document("id")?.clone();
        assert_eq!(shared.sessions.len(), 1);
        shared.run_command(doc! { "refreshSessions": [id.clone()], "$db": "admin" });
        assert_eq!(shared.sessions.len(), 1);
        let ended = shared.run_command(doc! { "endSessions": [id], "$db": "admin" });
        assert_eq!(ended.get_f64("ok")?, 1.0);
        assert!(shared.sessions.is_empty());
        Ok(())
    }

    #[test]
    fn sessions_lsid_registers_and_kill_all_clears() {
        let shared = TestServer::new();
        let lsid = doc! { "id": Binary::from_uuid(Uuid::new()) };
        shared.run_command(doc! { "ping": 1, "lsid": lsid, "$db": "admin" });
        assert_eq!(shared.sessions.len(), 1);
        shared.run_command(doc! { "killAllSessions": [], "$db": "admin" });
        assert!(shared.sessions.is_empty());
    }

    #[test]
    fn sessions_bad_arguments_are_type_errors() {
        let shared = TestServer::new();
        assert_eq!(shared.run_command(doc! { "endSessions": 1, "$db": "admin" }).get_i32("code").ok(), Some(14));
        assert_eq!(shared.run_command(doc! { "endSessions": [1], "$db": "admin" }).get_i32("code").ok(), Some(14));
        assert_eq!(
            shared.run_command(doc! { "endSessions": [{ "id": 1 }], "$db": "admin" }).get_i32("code").ok(),
            Some(14)
        );
    }
}
