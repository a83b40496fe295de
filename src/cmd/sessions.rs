//! Logical session commands: `startSession`, `endSessions`, `refreshSessions`,
//! `killSessions`, `killAllSessions`, `killAllSessionsByPattern`.

use bson::{Binary, Document, RawBsonRef, Uuid, doc};

use super::request::session_id;
use super::{CommandRequest, RequestCtx};
use crate::error::{Error, ErrorCode, Result};
use crate::state::sessions::{SESSION_TIMEOUT, user_digest};

/// The `$listLocalSessions` stage (`local`) or `$listSessions`: `{}` lists the caller's own
/// sessions, `{allUsers: true}` every session, `{users: [{user, db}, ...]}` those users'.
/// `$listLocalSessions` lists the live sessions; `$listSessions` the records the refresh
/// writes to `config.system.sessions` (see `exec/session_records.rs`), as mongod's.
///
/// # Errors
/// 14 TypeMismatch / 40415 for a malformed specification.
pub fn list_sessions_stage(
    ctx: &RequestCtx<'_>,
    stage: &bson::RawDocument,
    local: bool,
) -> Result<crate::state::cursors::DocumentStream> {
    let name = if local { "$listLocalSessions" } else { "$listSessions" };
    let Ok(Some(RawBsonRef::Document(spec))) = stage.get(name) else {
        return Err(Error::new(ErrorCode::TypeMismatch, format!("{name} options must be specified in an object")));
    };
    let mut all_users = false;
    let mut users = None;
    for element in spec {
        let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        match (key.as_str(), value) {
            ("allUsers", RawBsonRef::Boolean(all)) => all_users = all,
            ("users", RawBsonRef::Array(listed)) => users = Some(user_digests(name, listed)?),
            (field @ ("allUsers" | "users"), other) => return Err(field_error(name, field, Some(other))),
            (other, _) => return Err(field_error(name, other, None)),
        }
    }
    let owners = match users {
        _ if all_users => None,
        Some(users) => Some(users),
        None => Some(vec![user_digest(&ctx.client.auth.names)]),
    };
    if !local {
        let records = crate::exec::session_records::list(&ctx.state.storage, owners.as_deref())?;
        return Ok(Box::new(records.into_iter().map(Ok)));
    }
    let now = bson::DateTime::now().timestamp_millis();
    let documents: Vec<_> = ctx
        .state
        .sessions
        .list(std::time::Instant::now())
        .into_iter()
        .filter(|(_, _, uid)| owners.as_ref().is_none_or(|owners| owners.contains(uid)))
        .map(|(id, idle, uid)| {
            let last_use = now.saturating_sub(i64::try_from(idle.as_millis()).unwrap_or(i64::MAX));
            Ok(crate::exec::session_records::record(&(id, uid), bson::DateTime::from_millis(last_use)))
        })
        .collect();
    Ok(Box::new(documents.into_iter()))
}

/// The owners' digests of `[{user, db}, ...]` (a `users` list of `$listSessions` and the kill
/// commands' patterns).
fn user_digests(owner: &str, users: &bson::RawArray) -> Result<Vec<[u8; 32]>> {
    let mut digests = Vec::new();
    for user in users {
        let user = user.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        let RawBsonRef::Document(user) = user else { return Err(field_error(owner, "users", Some(user))) };
        digests.push(owner_digest(user, &format!("{owner}.users.user"))?);
    }
    Ok(digests)
}

/// The owner digest of a `{user, db}` pattern; `path` names its `user` field in mongod's
/// error for a missing one (40414).
fn owner_digest(user: &bson::RawDocument, path: &str) -> Result<[u8; 32]> {
    let (Ok(name), Ok(db)) = (user.get_str("user"), user.get_str("db")) else {
        return Err(Error::new(
            ErrorCode::Location40414,
            format!("BSON field '{path}' is missing but a required field"),
        ));
    };
    Ok(user_digest(&[(name.to_owned(), db.to_owned())]))
}

/// `startSession`: a new server-side session id.
pub fn start_session(ctx: &mut RequestCtx<'_>, _: &CommandRequest) -> Result<Document> {
    let id = ctx.state.sessions.start(user_digest(&ctx.client.auth.names));
    Ok(doc! {
        "id": { "id": Binary::from_uuid(id) },
        "timeoutMinutes": (SESSION_TIMEOUT.as_secs() / 60) as i32,
    })
}

/// `endSessions: [{id}, ...]`.
pub fn end_sessions(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let ids = session_ids(req)?;
    // Their cursors close at the next refresh, as mongod's.
    ctx.state.sessions.end(&ids, user_digest(&ctx.client.auth.names));
    ctx.state.transactions.abort_sessions(&ids);
    Ok(Document::new())
}

/// `refreshSessions: [{id}, ...]`: keeps the sessions alive.
pub fn refresh_sessions(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let owner = user_digest(&ctx.client.auth.names);
    for id in session_ids(req)? {
        ctx.state.sessions.touch(id, || owner);
    }
    Ok(Document::new())
}

/// `refreshLogicalSessionCacheNow` (a test command): the session cache's periodic refresh,
/// now (see `exec/session_records.rs`).
pub fn refresh_logical_session_cache_now(ctx: &mut RequestCtx<'_>, _: &CommandRequest) -> Result<Document> {
    crate::exec::session_records::refresh(ctx.state)?;
    Ok(Document::new())
}

/// `killSessions: [{id}, ...]`; an empty list kills every session of the caller.
pub fn kill_sessions(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let ids = session_ids(req)?;
    if ids.is_empty() {
        let own = ctx.state.sessions.owned_by(&[user_digest(&ctx.client.auth.names)]);
        kill(ctx, &own);
    } else {
        kill(ctx, &ids);
    }
    Ok(Document::new())
}

/// `killAllSessions: [{user, db}, ...]`: the sessions of those users; an empty list kills
/// every session.
pub fn kill_all_sessions(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let patterns = command_array(req)?;
    let mut owners = Vec::new();
    for pattern in &patterns {
        let RawBsonRef::Document(user) = pattern else {
            return Err(req.wrong_type(req.name(), *pattern, "object"));
        };
        owners.push(owner_digest(user, "KillAllSessionsUser.user")?);
    }
    if patterns.is_empty() {
        kill_every_session(ctx);
    } else {
        kill(ctx, &ctx.state.sessions.owned_by(&owners));
    }
    Ok(Document::new())
}

/// Ends the sessions `ids`, aborts their transactions and closes their cursors.
fn kill(ctx: &RequestCtx<'_>, ids: &[Uuid]) {
    ctx.state.sessions.end(ids, user_digest(&ctx.client.auth.names));
    ctx.state.transactions.abort_sessions(ids);
    ctx.state.cursors.kill_sessions(Some(ids));
}

/// Ends every session, aborts every transaction and closes every cursor opened in a session.
fn kill_every_session(ctx: &RequestCtx<'_>) {
    ctx.state.sessions.kill_all();
    ctx.state.transactions.abort_all();
    ctx.state.cursors.kill_sessions(None);
}

/// `killAllSessionsByPattern: [{lsid}, {uid}, {users}, {roles}, ...]`; an empty list kills
/// every session. A pattern's `lsid` names one session; its `uid` the sessions of that owner;
/// its `users` those users' sessions. `roles` matches none: sessions record their owner, not
/// the owner's roles.
pub fn kill_all_sessions_by_pattern(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let patterns = command_array(req)?;
    let mut ids = Vec::new();
    let all = patterns.is_empty();
    for pattern in patterns {
        let RawBsonRef::Document(pattern) = pattern else {
            return Err(req.wrong_type(req.name(), pattern, "object"));
        };
        for element in pattern {
            let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
            match (key.as_str(), value) {
                ("lsid", RawBsonRef::Document(lsid)) => ids.push(session_id(lsid)?),
                ("uid", RawBsonRef::Binary(uid)) => {
                    if let Ok(uid) = <[u8; 32]>::try_from(uid.bytes) {
                        ids.extend(ctx.state.sessions.owned_by(&[uid]));
                    }
                }
                ("users", RawBsonRef::Array(users)) => {
                    let owners = user_digests("KillAllSessionsByPatternItem", users)?;
                    ids.extend(ctx.state.sessions.owned_by(&owners));
                }
                ("roles", RawBsonRef::Array(_)) => {}
                (field @ ("lsid" | "uid" | "users" | "roles"), other) => {
                    return Err(field_error("KillAllSessionsByPatternItem", field, Some(other)));
                }
                (other, _) => return Err(field_error("KillAllSessionsByPatternItem", other, None)),
            }
        }
    }
    if all {
        kill_every_session(ctx);
    } else {
        kill(ctx, &ids);
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
        assert!(shared.sessions.contains(&two), "another user's pattern leaves the unauthenticated user's");
        let unknown = doc! { "killAllSessionsByPattern": [{ "x": 1 }], "$db": "admin" };
        assert_eq!(shared.run_command(unknown).get_i32("code").ok(), Some(40415));
        let uid = Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: user_digest(&[]).to_vec() };
        shared.run_command(doc! { "killAllSessionsByPattern": [{ "uid": uid }], "$db": "admin" });
        assert!(shared.sessions.is_empty(), "the unauthenticated user's uid matches its sessions");
    }

    #[test]
    fn sessions_list_sessions_by_owner_on_config_system_sessions() {
        let shared = TestServer::new();
        let id = Uuid::new();
        shared.run_command(doc! { "ping": 1, "lsid": { "id": Binary::from_uuid(id) }, "$db": "admin" });
        let list = |spec: Document, db: &str, coll: &str| {
            let reply = shared.run_command(
                doc! { "aggregate": coll, "pipeline": [{ "$listSessions": spec }], "cursor": {}, "$db": db },
            );
            let batch = reply.get_document("cursor").and_then(|c| c.get_array("firstBatch")).cloned();
            (reply.get_i32("code").ok(), batch.unwrap_or_default())
        };
        assert_eq!(list(doc! {}, "config", "system.sessions"), (None, Vec::new()), "not recorded before a refresh");
        assert!(crate::exec::session_records::refresh(&shared).is_ok());
        let (code, own) = list(doc! {}, "config", "system.sessions");
        assert_eq!((code, own.len()), (None, 1), "the caller's own session");
        let session = own.first().and_then(bson::Bson::as_document).and_then(|s| s.get_document("_id").ok()).cloned();
        let uid = Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: user_digest(&[]).to_vec() };
        assert_eq!(session, Some(doc! { "id": Binary::from_uuid(id), "uid": uid }));
        assert_eq!(list(doc! { "allUsers": true }, "config", "system.sessions").1.len(), 1);
        let someone = doc! { "users": [{ "user": "u", "db": "admin" }] };
        assert!(list(someone, "config", "system.sessions").1.is_empty(), "another user owns none");
        assert_eq!(list(doc! {}, "test", "c").0, Some(73), "only on config.system.sessions");
        // A user pattern without its name: mongod's IDL error, naming the field.
        let nameless = list(doc! { "users": [{ "db": "admin" }] }, "config", "system.sessions");
        assert_eq!(nameless.0, Some(40414));
        let reply = shared.run_command(doc! { "killAllSessions": [{ "db": "admin" }], "$db": "admin" });
        assert_eq!(
            (reply.get_i32("code").ok(), reply.get_str("errmsg").ok()),
            (Some(40414), Some("BSON field 'KillAllSessionsUser.user' is missing but a required field"))
        );
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
