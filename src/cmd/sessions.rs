//! Logical session commands: `startSession`, `endSessions`, `refreshSessions`,
//! `killSessions`, `killAllSessions`, `killAllSessionsByPattern`.

use bson::{Binary, Document, RawBsonRef, Uuid, doc};

use super::request::session_id;
use super::{CommandRequest, RequestCtx};
use crate::error::{Error, ErrorCode, Result};
use crate::state::sessions::SESSION_TIMEOUT;

/// SHA-256 of the empty user name: the `uid` of every session on a server without
/// authentication (mongod hashes the authenticated user's name, and there is none).
const UNAUTHENTICATED_UID: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41,
    0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// The `$listLocalSessions` stage: `{}` and `{allUsers: true}` list every live session (all
/// are the unauthenticated user's); `{users: [...]}` names users who own none here.
///
/// # Errors
/// 14 TypeMismatch / 40415 for a malformed specification.
pub fn list_local_sessions_stage(
    ctx: &RequestCtx<'_>,
    stage: &bson::RawDocument,
) -> Result<crate::state::cursors::DocumentStream> {
    let Ok(Some(RawBsonRef::Document(spec))) = stage.get("$listLocalSessions") else {
        return Err(Error::new(ErrorCode::TypeMismatch, "$listLocalSessions options must be specified in an object"));
    };
    let mut named_users = false;
    for element in spec {
        let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        match (key.as_str(), value) {
            ("allUsers", RawBsonRef::Boolean(_)) => {}
            ("users", RawBsonRef::Array(users)) => named_users = users.into_iter().next().is_some(),
            (field @ ("allUsers" | "users"), other) => {
                return Err(field_error("$listLocalSessions", field, Some(other)));
            }
            (other, _) => return Err(field_error("$listLocalSessions", other, None)),
        }
    }
    let sessions = if named_users { Vec::new() } else { ctx.state.sessions.list(std::time::Instant::now()) };
    let now = bson::DateTime::now().timestamp_millis();
    let uid = Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: UNAUTHENTICATED_UID.to_vec() };
    let documents: Vec<_> = sessions
        .into_iter()
        .map(|(id, idle)| {
            let last_use = now.saturating_sub(i64::try_from(idle.as_millis()).unwrap_or(i64::MAX));
            crate::exec::pipeline::raw(&doc! {
                "_id": { "id": Binary::from_uuid(id), "uid": uid.clone() },
                "lastUse": bson::DateTime::from_millis(last_use),
            })
        })
        .collect();
    Ok(Box::new(documents.into_iter()))
}

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
    let ids = session_ids(req)?;
    ctx.state.sessions.end(&ids);
    ctx.state.transactions.abort_sessions(&ids);
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
        ctx.state.transactions.abort_all();
    } else {
        ctx.state.sessions.end(&ids);
        ctx.state.transactions.abort_sessions(&ids);
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
        ctx.state.transactions.abort_all();
    }
    Ok(Document::new())
}

/// `killAllSessionsByPattern: [{lsid}, {uid}, {users}, {roles}, ...]`; an empty list kills
/// every session. A pattern's `lsid` names one session; its `uid` matches every session when
/// it is the unauthenticated user's (every session here is, as `$listLocalSessions` shows);
/// `users` and `roles` match sessions of those users, and sessions belong to no user here.
pub fn kill_all_sessions_by_pattern(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let patterns = command_array(req)?;
    let mut ids = Vec::new();
    let mut all = patterns.is_empty();
    for pattern in patterns {
        let RawBsonRef::Document(pattern) = pattern else {
            return Err(req.wrong_type(req.name(), pattern, "object"));
        };
        for element in pattern {
            let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
            match (key.as_str(), value) {
                ("lsid", RawBsonRef::Document(lsid)) => ids.push(session_id(lsid)?),
                ("uid", RawBsonRef::Binary(uid)) => all |= uid.bytes == UNAUTHENTICATED_UID,
                ("users" | "roles", RawBsonRef::Array(_)) => {}
                (field @ ("lsid" | "uid" | "users" | "roles"), other) => {
                    return Err(field_error("KillAllSessionsByPatternItem", field, Some(other)));
                }
                (other, _) => return Err(field_error("KillAllSessionsByPatternItem", other, None)),
            }
        }
    }
    if all {
        ctx.state.sessions.kill_all();
        ctx.state.transactions.abort_all();
    } else {
        ctx.state.sessions.end(&ids);
        ctx.state.transactions.abort_sessions(&ids);
    }
    Ok(Document::new())
}

/// mongod's IDL error for `owner.field`: 14 for a value of the wrong type (`Some`), 40415 for
/// an unknown field (`None`).
fn field_error(owner: &str, field: &str, value: Option<RawBsonRef<'_>>) -> Error {
    match value {
        Some(value) => Error::new(
            ErrorCode::TypeMismatch,
            format!("BSON field '{owner}.{field}' is the wrong type '{}'", super::type_name(value.element_type())),
        ),
        None => Error::new(ErrorCode::Location40415, format!("BSON field '{owner}.{field}' is an unknown field.")),
    }
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
    fn sessions_kill_by_pattern_takes_a_session_or_all() {
        let shared = TestServer::new();
        let (one, two) = (Uuid::new(), Uuid::new());
        for id in [one, two] {
            shared.run_command(doc! { "ping": 1, "lsid": { "id": Binary::from_uuid(id) }, "$db": "admin" });
        }
        let by_lsid =
            doc! { "killAllSessionsByPattern": [{ "lsid": { "id": Binary::from_uuid(one) } }], "$db": "admin" };
        assert_eq!(shared.run_command(by_lsid).get_f64("ok").ok(), Some(1.0));
        assert!(!shared.sessions.contains(&one) && shared.sessions.contains(&two));
        let other_user =
            doc! { "killAllSessionsByPattern": [{ "users": [{ "user": "u", "db": "admin" }] }], "$db": "admin" };
        shared.run_command(other_user);
        assert!(shared.sessions.contains(&two), "sessions belong to no user");
        let unknown = doc! { "killAllSessionsByPattern": [{ "x": 1 }], "$db": "admin" };
        assert_eq!(shared.run_command(unknown).get_i32("code").ok(), Some(40415));
        let uid = Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: UNAUTHENTICATED_UID.to_vec() };
        shared.run_command(doc! { "killAllSessionsByPattern": [{ "uid": uid }], "$db": "admin" });
        assert!(shared.sessions.is_empty(), "the unauthenticated user's uid matches every session");
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
