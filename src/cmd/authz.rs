//! Authorization: what each command needs (its [`Access`] in the command table) and the check
//! the dispatcher makes before the handler runs, as mongod's: an unauthenticated client gets
//! 13 "Command X requires authentication", an authenticated one without the privilege gets
//! 13 "not authorized on <db> to execute command {...}". With `--auth` off every check passes.

use std::sync::LazyLock;

use bson::{Bson, Document, RawBsonRef, RawDocument};

use super::CommandSpec;
use super::context::{ClientInfo, OwnedCtx, RequestCtx};
use super::request::CommandRequest;
use crate::auth::Session;
use crate::auth::action::ActionType;
use crate::auth::privilege::{Privilege, PrivilegeSet};
use crate::auth::resource::{ResourcePattern, Target};
use crate::error::{Error, ErrorCode, Result};
use crate::exec::principals;

/// Who may run a command, declared by every row of the command table.
#[derive(Debug, Clone, Copy)]
pub enum Access {
    /// Open before authentication (`hello`, `saslStart`, `ping`, `buildInfo`, ...).
    Anonymous,
    /// Any authenticated user: the command needs no privilege, or shows and acts only on what
    /// is the user's own (its sessions, cursors, operations).
    Authenticated,
    /// This action on the cluster.
    Cluster(ActionType),
    /// This action on the command's database.
    Database(ActionType),
    /// This action on the namespace the command names (`<db>.<command value>`).
    Collection(ActionType),
    /// Worked out from the request (writes with options that need more, aggregation stages,
    /// user and role management): whether the connection may run it.
    Custom(fn(&Authorizer<'_>, &CommandRequest) -> bool),
}

/// What the localhost exception grants an unauthenticated local client while no user or role
/// exists: creating the first user in `admin` (or `$external`), as mongod.
static LOCALHOST_PRIVILEGES: LazyLock<PrivilegeSet> = LazyLock::new(|| {
    let mut set = PrivilegeSet::default();
    set.add(Privilege::new(
        ResourcePattern::Database("admin".into()),
        &[ActionType::CreateUser, ActionType::GrantRole],
    ));
    set.add(Privilege::new(ResourcePattern::Database("$external".into()), &[ActionType::CreateUser]));
    set.add(Privilege::new(
        ResourcePattern::Cluster,
        &[ActionType::AddShard, ActionType::ReplSetConfigure, ActionType::ReplSetGetStatus],
    ));
    set
});

/// A connection's rights, as checks and handlers ask about them.
#[derive(Debug, Clone, Copy)]
pub struct Authorizer<'a> {
    enabled: bool,
    session: &'a Session,
    privileges: &'a PrivilegeSet,
}

impl<'a> Authorizer<'a> {
    /// The rights of `session` on a server where authorization is `enabled` (when it is not,
    /// everything is allowed). `localhost`: the localhost exception holds for this connection.
    pub fn new(enabled: bool, session: &'a Session, localhost: bool) -> Self {
        let privileges =
            if session.users.is_empty() && localhost { &*LOCALHOST_PRIVILEGES } else { &*session.privileges };
        Self { enabled, session, privileges }
    }

    /// The rights of the connection a handler runs for.
    pub fn of(ctx: &'a RequestCtx<'_>) -> Self {
        let authz = &ctx.state.authz;
        let localhost =
            authz.enabled && ctx.client.remote.ip().is_loopback() && crate::exec::principals::none_defined(ctx.state);
        Self::new(authz.enabled, &ctx.client.auth, localhost)
    }

    /// Whether authorization is enforced at all.
    pub fn enforced(&self) -> bool {
        self.enabled
    }

    /// Whether `action` is allowed on `target`.
    pub fn allows(&self, target: Target<'_>, action: ActionType) -> bool {
        !self.enabled || self.privileges.allows(target, action)
    }

    /// Whether every one of `actions` is allowed on `target`.
    pub fn allows_all(&self, target: Target<'_>, actions: &[ActionType]) -> bool {
        actions.iter().all(|a| self.allows(target, *a))
    }

    /// Whether `action` is allowed on the namespace `db.coll`.
    pub fn on_namespace(&self, db: &str, coll: &str, action: ActionType) -> bool {
        self.allows(Target::Namespace(db, coll), action)
    }

    /// Whether `action` is allowed on the namespace the command names (`<db>.<command value>`).
    /// A value that names no collection (the handler refuses it) is checked against the
    /// database, so that such a request cannot pass.
    pub fn on_command_namespace(&self, request: &CommandRequest, action: ActionType) -> bool {
        match request.command_value() {
            Some(RawBsonRef::String(coll)) => self.on_namespace(request.db(), coll, action),
            _ => self.allows(Target::Database(request.db()), action),
        }
    }

    /// Whether any privilege touches database `db` (what `listDatabases` and
    /// `listCollections` with `authorized...` show).
    pub fn touches_database(&self, db: &str) -> bool {
        !self.enabled || self.privileges.touches_database(db)
    }

    /// Whether any privilege allows anything on `db.coll`.
    pub fn touches_namespace(&self, db: &str, coll: &str) -> bool {
        !self.enabled || self.privileges.touches_namespace(db, coll)
    }

    /// Whether the connection is authenticated as `user` of `db`.
    pub fn is_user(&self, user: &str, db: &str) -> bool {
        self.session.is(user, db)
    }

    /// Whether the connection holds role `role` of `db` (directly or inherited).
    pub fn has_role(&self, role: &str, db: &str) -> bool {
        self.session.users.iter().any(|u| u.all_roles.iter().any(|(r, d)| r == role && d == db))
    }

    /// Whether `owners` (the users who started a cursor, operation or session) are the users
    /// of this connection: what lets a user act on its own without a privilege. With
    /// authorization off everyone owns everything.
    pub fn owns(&self, owners: &[(String, String)]) -> bool {
        !self.enabled || (owners.len() == self.session.users.len() && owners.iter().all(|(u, d)| self.session.is(u, d)))
    }
}

/// Checks that the connection may run `request`, refreshing its privileges first when users or
/// roles changed since they were resolved.
///
/// # Errors
/// 13 Unauthorized with mongod's message; storage errors while refreshing.
pub(super) async fn authorize(ctx: &OwnedCtx, spec: &CommandSpec, request: &CommandRequest) -> Result<()> {
    let authz = &ctx.state.authz;
    if !authz.enabled {
        return Ok(());
    }
    {
        // The common case under one lock: privileges current, decided at once.
        let mut client = ctx.lock_client();
        let generation = authz.generation();
        if client.auth.users.is_empty() {
            // Nothing to re-resolve.
            client.auth.generation = generation;
        }
        if client.auth.generation == generation || client.auth.internal {
            return check(ctx, spec, request, &client);
        }
    }
    refresh(ctx).await?;
    check(ctx, spec, request, &ctx.lock_client())
}

/// The decision for `client`, whose privileges are current.
fn check(ctx: &OwnedCtx, spec: &CommandSpec, request: &CommandRequest, client: &ClientInfo) -> Result<()> {
    if matches!(spec.access, Access::Anonymous) {
        return Ok(());
    }
    let localhost = client.remote.ip().is_loopback() && crate::exec::principals::none_defined(&ctx.state);
    if client.auth.users.is_empty() && !localhost {
        return Err(Error::new(ErrorCode::Unauthorized, format!("Command {} requires authentication", spec.name)));
    }
    let authorizer = Authorizer::new(true, &client.auth, localhost);
    if allowed(spec.access, &authorizer, request) {
        return Ok(());
    }
    let db = request.db();
    tracing::info!(target: "ACCESS", id = 20436, command = spec.name, db, "Checking authorization failed");
    Err(not_authorized(db, request.body(), ctx.state.config.redact_client_log_data))
}

/// What a handler answers when the privilege it checks itself (another user's cursor or
/// operation) is missing: the same message as the dispatcher's check, as mongod's.
pub(super) fn refused(ctx: &RequestCtx<'_>, request: &CommandRequest) -> Error {
    not_authorized(request.db(), request.body(), ctx.state.config.redact_client_log_data)
}

/// Whether `access` lets `authorizer` run `request`.
pub(super) fn allowed(access: Access, authorizer: &Authorizer<'_>, request: &CommandRequest) -> bool {
    match access {
        Access::Anonymous | Access::Authenticated => true,
        Access::Cluster(action) => authorizer.allows(Target::Cluster, action),
        Access::Database(action) => authorizer.allows(Target::Database(request.db()), action),
        Access::Collection(action) => authorizer.on_command_namespace(request, action),
        Access::Custom(check) => check(authorizer, request),
    }
}

/// Whether the request asks to skip document validation (`bypassDocumentValidation: true`),
/// which takes its own privilege.
pub(super) fn bypasses_validation(request: &CommandRequest) -> bool {
    matches!(request.get("bypassDocumentValidation"), Some(RawBsonRef::Boolean(true)))
}

/// A write that went straight to the user or role catalog (`insert` into
/// `admin.system.users`, as a `restore` does) changes what connections may do, as the user
/// management commands do.
pub(super) fn note_catalog_write(ctx: &OwnedCtx, request: &CommandRequest) {
    const WRITES: &[&str] = &["insert", "update", "delete", "findAndModify", "drop", "renameCollection"];
    let catalog =
        matches!(request.collection_name(), Some(principals::users::COLLECTION | principals::roles::COLLECTION));
    if request.db() == "admin" && catalog && WRITES.contains(&request.name()) {
        ctx.state.authz.changed(true);
    }
}

/// mongod's message for a privilege the connection lacks: the command as `toString` prints it,
/// its password replaced, its values redacted when the server redacts client data.
fn not_authorized(db: &str, body: &RawDocument, redact: bool) -> Error {
    let mut command = Document::try_from(body).unwrap_or_default();
    if command.contains_key("pwd") {
        command.insert("pwd", "xxx");
    }
    if redact {
        command = crate::obs::slowlog::redact(&command);
    }
    Error::new(
        ErrorCode::Unauthorized,
        format!("not authorized on {db} to execute command {}", shell_form(&Bson::Document(command))),
    )
}

/// A value as mongod's `BSONObj::toString` prints it: unquoted keys, `{}` and `[]` spaced.
fn shell_form(value: &Bson) -> String {
    match value {
        Bson::Document(d) if d.is_empty() => "{}".to_owned(),
        Bson::Document(d) => {
            let fields: Vec<String> = d.iter().map(|(k, v)| format!("{k}: {}", shell_form(v))).collect();
            format!("{{ {} }}", fields.join(", "))
        }
        Bson::Array(items) if items.is_empty() => "[]".to_owned(),
        Bson::Array(items) => format!("[ {} ]", items.iter().map(shell_form).collect::<Vec<_>>().join(", ")),
        Bson::Binary(b) if b.subtype == bson::spec::BinarySubtype::Uuid => {
            b.to_uuid().map_or_else(|_| value.to_string(), |u| format!("UUID(\"{u}\")"))
        }
        Bson::ObjectId(id) => format!("ObjectId('{id}')"),
        other => other.to_string(),
    }
}

/// Re-reads the connection's users and what their roles grant now (a user dropped since is
/// forgotten), on the blocking pool.
async fn refresh(ctx: &OwnedCtx) -> Result<()> {
    let generation = ctx.state.authz.generation();
    let names = ctx.lock_client().auth.names.to_vec();
    let state = ctx.state.clone();
    let resolved =
        ctx.state.pool.run(move || principals::resolve_users(&state.storage, &names)).await.map_err(|e| {
            Error::new(ErrorCode::InternalError, "authorization refresh did not run").with_internal(e.to_string())
        })??;
    let (users, privileges) = resolved;
    ctx.lock_client().auth.set_users(users, privileges, generation);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_print_as_mongod_prints_them() {
        let command = bson::doc! { "find": "c", "filter": {}, "sort": { "a": 1 }, "list": [], "$db": "test" };
        assert_eq!(
            shell_form(&Bson::Document(command)),
            r#"{ find: "c", filter: {}, sort: { a: 1 }, list: [], $db: "test" }"#
        );
        let raw = bson::rawdoc! { "createUser": "u", "pwd": "secret", "roles": [], "$db": "test" };
        let error = not_authorized("test", &raw, false);
        assert_eq!(
            error.message(),
            r#"not authorized on test to execute command { createUser: "u", pwd: "xxx", roles: [], $db: "test" }"#
        );
    }
}
