//! What commands write to the audit log (`obs::audit`): authentication and logout, user and
//! role changes (attempts, with their result), creating, dropping and renaming collections and
//! indexes and dropping databases (done), commands refused for lack of a privilege (`authCheck`,
//! 13), and, with an audit filter, the commands that were allowed (CRUD auditing). Also the
//! `logRotate` command.

use bson::{Bson, Document, RawBsonRef, doc};

use super::context::{OwnedCtx, RequestCtx};
use super::request::CommandRequest;
use super::users::named_roles;
use super::{Access, ClientInfo, CommandSpec};
use crate::error::{Error, ErrorCode, Result};
use crate::obs::audit::{AuditEvent, AuditLog};

/// Records `atype` with `param` and `result` for the connection `client`.
fn record(audit: &AuditLog, client: &ClientInfo, atype: &str, param: Document, result: i32) {
    let roles: Vec<(String, String)> = client.auth.users.iter().flat_map(|u| u.roles.iter().cloned()).collect();
    audit.record(&AuditEvent {
        atype,
        local: Some(client.local),
        remote: Some(client.remote),
        connection: Some(client.connection_id),
        users: &client.auth.names,
        roles: &roles,
        param,
        result,
    });
}

/// An authentication attempt: `result` 0 or 18.
pub(super) fn authentication(ctx: &RequestCtx<'_>, user: &str, db: &str, mechanism: &str, result: i32) {
    if let Some(audit) = &ctx.observers.audit {
        let param = doc! { "user": user, "db": db, "mechanism": mechanism };
        record(audit, ctx.client, "authenticate", param, result);
    }
}

/// A logout from `db`, with the users before and after.
pub(super) fn logout(ctx: &RequestCtx<'_>, db: &str, before: &[(String, String)]) {
    if let Some(audit) = &ctx.observers.audit {
        let names = |pairs: &[(String, String)]| -> Vec<Bson> {
            pairs.iter().map(|(u, d)| Bson::Document(doc! { "user": u, "db": d })).collect()
        };
        let param = doc! {
            "reason": format!("Explicit logout from db '{db}'"),
            "initialUsers": names(before),
            "updatedUsers": names(&ctx.client.auth.names),
        };
        record(audit, ctx.client, "logout", param, 0);
    }
}

/// `[{role, db}]` of the request's `roles`.
fn roles_param(req: &CommandRequest) -> Bson {
    Bson::Array(
        named_roles(req, "roles").into_iter().map(|(r, d)| Bson::Document(doc! { "role": r, "db": d })).collect(),
    )
}

fn value_of(req: &CommandRequest, key: &str) -> Option<Bson> {
    req.get(key).and_then(|v| Bson::try_from(v).ok())
}

/// The command's own value as a string (the user, role or collection it names).
fn named(req: &CommandRequest) -> String {
    match req.command_value() {
        Some(RawBsonRef::String(name)) => name.to_owned(),
        _ => String::new(),
    }
}

/// The events a finished command makes, as `(atype, param)`; DDL only when it succeeded.
fn events(spec: &CommandSpec, req: &CommandRequest, succeeded: bool) -> Vec<(&'static str, Document)> {
    let db = req.db();
    let ns = || format!("{db}.{}", named(req));
    let user = || doc! { "user": named(req), "db": db };
    let role = || doc! { "role": named(req), "db": db };
    let with = |mut d: Document, key: &str, value: Option<Bson>| {
        if let Some(value) = value {
            d.insert(key, value);
        }
        d
    };
    let one = |atype: &'static str, param: Document| vec![(atype, param)];
    match (spec.name, succeeded) {
        ("createUser", _) => {
            let param = with(user(), "customData", value_of(req, "customData"));
            one("createUser", with(param, "roles", Some(roles_param(req))))
        }
        ("updateUser", _) => {
            let mut param = user();
            param.insert("passwordChanged", req.get("pwd").is_some());
            let param = with(param, "customData", value_of(req, "customData"));
            one("updateUser", with(param, "roles", req.get("roles").map(|_| roles_param(req))))
        }
        ("dropUser", _) => one("dropUser", user()),
        ("dropAllUsersFromDatabase", _) => one("dropAllUsersFromDatabase", doc! { "db": db }),
        (name @ ("grantRolesToUser" | "revokeRolesFromUser"), _) => {
            one(name, with(user(), "roles", Some(roles_param(req))))
        }
        (name @ ("createRole" | "updateRole"), _) => {
            let param = with(role(), "roles", req.get("roles").map(|_| roles_param(req)));
            one(name, with(param, "privileges", value_of(req, "privileges")))
        }
        ("dropRole", _) => one("dropRole", role()),
        ("dropAllRolesFromDatabase", _) => one("dropAllRolesFromDatabase", doc! { "db": db }),
        (name @ ("grantRolesToRole" | "revokeRolesFromRole"), _) => {
            one(name, with(role(), "roles", Some(roles_param(req))))
        }
        (name @ ("grantPrivilegesToRole" | "revokePrivilegesFromRole"), _) => {
            one(name, with(role(), "privileges", value_of(req, "privileges")))
        }
        (_, false) => Vec::new(),
        ("create", true) => {
            let param = with(doc! { "ns": ns() }, "viewOn", value_of(req, "viewOn"));
            one("createCollection", with(param, "pipeline", value_of(req, "pipeline")))
        }
        ("drop", true) => one("dropCollection", doc! { "ns": ns() }),
        ("dropDatabase", true) => one("dropDatabase", doc! { "ns": db }),
        ("renameCollection", true) => {
            let old = named(req);
            let new = req.str_arg("to").ok().flatten().unwrap_or_default();
            one("renameCollection", doc! { "old": old, "new": new })
        }
        ("createIndexes", true) => req
            .array_arg("indexes")
            .ok()
            .flatten()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|spec| {
                let spec = spec.as_document()?;
                let name = spec.get_str("name").ok()?.to_owned();
                let spec = Document::try_from(spec).ok()?;
                Some(("createIndex", doc! { "ns": ns(), "indexName": name, "indexSpec": spec }))
            })
            .collect(),
        ("dropIndexes", true) => one("dropIndex", with(doc! { "ns": ns() }, "indexName", value_of(req, "index"))),
        _ => Vec::new(),
    }
}

/// The command as `authCheck` shows it: its password replaced, as mongod's.
fn args(req: &CommandRequest) -> Document {
    let mut command = Document::try_from(req.body()).unwrap_or_default();
    if command.contains_key("pwd") {
        command.insert("pwd", "xxx");
    }
    command
}

/// Records what a finished command makes: its events, and an `authCheck` when it was refused
/// for lack of a privilege (or, with a filter, when it was allowed).
pub(super) fn after_command(ctx: &OwnedCtx, spec: &CommandSpec, req: &CommandRequest, error: Option<ErrorCode>) {
    let Some(audit) = &ctx.observers.audit else { return };
    let client = ctx.lock_client();
    let result = error.map_or(0, ErrorCode::code);
    for (atype, param) in events(spec, req, error.is_none()) {
        record(audit, &client, atype, param, result);
    }
    let refused = error == Some(ErrorCode::Unauthorized);
    if !matches!(spec.access, Access::Anonymous) && (refused || audit.audits_allowed_commands()) {
        let collection = req.collection_name().map(|c| format!("{}.{c}", req.db()));
        let param =
            doc! { "command": spec.name, "ns": collection.unwrap_or_else(|| req.db().to_owned()), "args": args(req) };
        record(audit, &client, "authCheck", param, if refused { ErrorCode::Unauthorized.code() } else { 0 });
    }
}

/// `logRotate: 1 | "server" | "audit"`: renames the server log (when it goes to a file) and
/// the audit log aside and starts new ones.
pub fn log_rotate(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let (server, audit) = match req.command_value() {
        Some(RawBsonRef::String("server")) => (true, false),
        Some(RawBsonRef::String("audit")) => (false, true),
        Some(RawBsonRef::String(other)) => {
            return Err(Error::new(ErrorCode::BadValue, format!("Unknown log type for rotate: {other}")));
        }
        _ => (true, true),
    };
    if server {
        ctx.state
            .log
            .rotate()
            .map_err(|e| Error::new(ErrorCode::OperationFailed, format!("Failed to rotate the server log: {e}")))?;
    }
    match (&ctx.observers.audit, audit) {
        (Some(log), true) => {
            log.rotate()
                .map_err(|e| Error::new(ErrorCode::OperationFailed, format!("Failed to rotate the audit log: {e}")))?;
        }
        (None, true) if !server => {
            return Err(Error::new(ErrorCode::BadValue, "Cannot rotate the audit log: auditing is not enabled"));
        }
        _ => {}
    }
    tracing::info!(target: "CONTROL", id = 23166, "Log rotation initiated");
    Ok(Document::new())
}
