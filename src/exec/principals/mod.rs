//! Users and roles, kept as mongod keeps them: one document per user in `admin.system.users`
//! ([`users`]) and per custom role in `admin.system.roles` ([`roles`]), each with `_id`
//! `"<db>.<name>"`; and the resolution of a set of roles into the privileges they grant,
//! built-in roles included ([`resolve`]).
//!
//! Every change goes through [`put`] or [`delete`], which bump the server's authorization
//! generation so that connections re-resolve what their users may do.

pub mod roles;
pub mod users;

use bson::{Document, RawBsonRef, RawDocumentBuf};

use crate::auth::builtin;
use crate::auth::privilege::PrivilegeSet;
use crate::auth::{AuthenticatedUser, RoleName};
use crate::error::{Error, ErrorCode, Result};
use crate::state::State;
use crate::storage::{Direction, Namespace, Storage};

/// `admin.<coll>`.
fn admin_ns(coll: &str) -> Namespace {
    Namespace { db: "admin".to_owned(), coll: coll.to_owned() }
}

/// The stored document with `_id` `id` in `admin.<coll>`.
fn get(storage: &Storage, coll: &str, id: &str) -> Result<Option<Document>> {
    let Some(collection) = storage.collection(&admin_ns(coll)) else { return Ok(None) };
    let stored = storage.snapshot().get(&collection, RawBsonRef::String(id))?;
    Ok(stored.and_then(|raw| Document::try_from(raw.as_ref()).ok()))
}

/// Every stored document of `admin.<coll>`, in `_id` order.
fn scan(storage: &Storage, coll: &str) -> Result<Vec<Document>> {
    let Some(collection) = storage.collection(&admin_ns(coll)) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for stored in storage.snapshot().scan(&collection, Direction::Forward) {
        if let Ok(document) = Document::try_from(stored?.as_ref()) {
            out.push(document);
        }
    }
    Ok(out)
}

/// Stores `document` (replacing the one with its `_id`) in `admin.<coll>`, durably.
fn put(state: &State, coll: &str, document: &Document) -> Result<()> {
    let storage = &state.storage;
    let collection = storage.collection_or_create(&admin_ns(coll))?;
    let stored = RawDocumentBuf::try_from(document).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
    let mut writer = storage.writer(&collection)?;
    writer.replace(stored)?;
    if let Some(ticket) = writer.commit()? {
        storage.wait_durable(ticket)?;
    }
    state.authz.changed(true);
    Ok(())
}

/// Removes the document with `_id` `id` from `admin.<coll>`; returns whether there was one.
fn delete(state: &State, coll: &str, id: &str) -> Result<bool> {
    let storage = &state.storage;
    let Some(collection) = storage.collection(&admin_ns(coll)) else { return Ok(false) };
    if get(storage, coll, id)?.is_none() {
        return Ok(false);
    }
    let mut writer = storage.writer(&collection)?;
    writer.delete(RawBsonRef::String(id))?;
    if let Some(ticket) = writer.commit()? {
        storage.wait_durable(ticket)?;
    }
    // The localhost exception does not come back when the last user goes (mongod latches it).
    state.authz.changed(true);
    Ok(true)
}

/// Whether the localhost exception is still open: no user or role exists. Closed for good once
/// one does (mongod latches it); on nodes sharing a database, confirmed in storage while open,
/// so a user created through another node closes it here at once (a failed read closes it).
pub fn none_defined(state: &State) -> bool {
    if state.authz.any_defined() {
        return false;
    }
    if !state.storage.is_shared() {
        return true;
    }
    match any_defined(&state.storage) {
        Ok(false) => true,
        Ok(true) | Err(_) => {
            state.authz.changed(true);
            false
        }
    }
}

/// Whether any user or custom role exists (while none does, the localhost exception holds).
///
/// # Errors
/// Storage errors.
pub fn any_defined(storage: &Storage) -> Result<bool> {
    for coll in [users::COLLECTION, roles::COLLECTION] {
        if let Some(collection) = storage.collection(&admin_ns(coll))
            && storage.snapshot().scan(&collection, Direction::Forward).next().is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// What a set of roles grants: every role reached through them (themselves first, then what
/// they inherit, each once) and the union of their privileges.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    /// The roles held, direct and inherited.
    pub roles: Vec<RoleName>,
    /// Their privileges.
    pub privileges: PrivilegeSet,
}

/// Resolves `direct` through the built-in roles and the role catalog. A role that no longer
/// exists grants nothing (mongod removes dropped roles from their holders; this covers a
/// catalog edited by hand).
///
/// # Errors
/// Storage errors.
pub fn resolve(storage: &Storage, direct: &[RoleName]) -> Result<Resolved> {
    let mut out = Resolved::default();
    let mut queue: Vec<RoleName> = direct.to_vec();
    let mut next = 0;
    while let Some(role) = queue.get(next).cloned() {
        next += 1;
        if out.roles.contains(&role) {
            continue;
        }
        let (privileges, inherited) = match builtin::role_of(&role.0, &role.1) {
            Some(builtin) => (builtin.privileges, builtin.roles),
            None => match roles::find(storage, &role.1, &role.0)? {
                Some(custom) => (custom.privileges, custom.roles),
                None => continue,
            },
        };
        out.privileges.extend(&privileges);
        queue.extend(inherited);
        out.roles.push(role);
    }
    Ok(out)
}

/// The users `names` (`(user, db)`) as they are now, each with its roles, and the union of
/// what they may do; a user that no longer exists is left out.
///
/// # Errors
/// Storage errors.
pub fn resolve_users(storage: &Storage, names: &[(String, String)]) -> Result<(Vec<AuthenticatedUser>, PrivilegeSet)> {
    let mut users = Vec::with_capacity(names.len());
    let mut privileges = PrivilegeSet::default();
    for (name, db) in names {
        let Some(user) = users::find(storage, db, name)? else { continue };
        let resolved = resolve(storage, &user.roles)?;
        privileges.extend(&resolved.privileges);
        users.push(AuthenticatedUser { name: user.name, db: user.db, roles: user.roles, all_roles: resolved.roles });
    }
    Ok((users, privileges))
}
