//! Role management: `createRole`, `updateRole`, `dropRole`, `dropAllRolesFromDatabase`,
//! `grantPrivilegesToRole`, `revokePrivilegesFromRole`, `grantRolesToRole`,
//! `revokeRolesFromRole` and `rolesInfo`, over the role catalog (`exec::principals::roles`),
//! with the checks of who may run them. Built-in roles cannot be changed; a grant that would
//! make a role inherit itself is refused.

use bson::{Bson, Document, RawBsonRef, doc};

use super::Authorizer;
use super::context::RequestCtx;
use super::request::CommandRequest;
use super::users::{may_for_each_role, parse_roles};
use crate::auth::action::ActionType;
use crate::auth::privilege::{Privilege, PrivilegeSet};
use crate::auth::resource::{ResourcePattern, Target};
use crate::auth::{RoleName, builtin};
use crate::error::{Error, ErrorCode, Result};
use crate::exec::principals::roles::{self, Role};
use crate::exec::principals::{self, users};

/// The role a command names (its value), in the command's database.
fn role_name(req: &CommandRequest) -> Result<&str> {
    match req.command_value() {
        Some(RawBsonRef::String(name)) if !name.is_empty() => Ok(name),
        Some(RawBsonRef::String(_)) => Err(Error::new(ErrorCode::BadValue, "Role name must be non-empty")),
        Some(other) => Err(req.wrong_type(req.name(), other, "string")),
        None => Err(Error::new(ErrorCode::BadValue, format!("{} requires a role name", req.name()))),
    }
}

fn missing_field(req: &CommandRequest, key: &str) -> Error {
    Error::new(ErrorCode::Location40414, format!("BSON field '{}.{key}' is missing but a required field", req.name()))
}

/// The `privileges` array, parsed; a role outside `admin` may name only its own database.
fn parse_privileges(req: &CommandRequest, required: bool) -> Result<Option<Vec<Privilege>>> {
    let Some(list) = req.array_arg("privileges")? else {
        return if required { Err(missing_field(req, "privileges")) } else { Ok(None) };
    };
    let db = req.db();
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        let RawBsonRef::Document(item) = item else {
            return Err(req.wrong_type("privileges", item, "object"));
        };
        let privilege = Privilege::from_document(item).map_err(|message| Error::new(ErrorCode::BadValue, message))?;
        if privilege.actions.is_empty() {
            return Err(Error::new(ErrorCode::BadValue, "'actions' field of privilege resource must not be empty"));
        }
        if db != "admin" && privilege.resource.database() != Some(db) {
            return Err(Error::new(
                ErrorCode::InvalidRoleModification,
                format!(
                    "Roles on the '{db}' database cannot be granted privileges that target other databases or the cluster"
                ),
            ));
        }
        out.push(privilege);
    }
    Ok(Some(out))
}

/// The `roles` array, each existing; a role outside `admin` may inherit only from its own
/// database.
fn parse_inherited(ctx: &RequestCtx<'_>, req: &CommandRequest, required: bool) -> Result<Option<Vec<RoleName>>> {
    if req.get("roles").is_none() {
        return if required { Err(missing_field(req, "roles")) } else { Ok(None) };
    }
    let db = req.db();
    let named = parse_roles(ctx, req).map_err(|e| match e.code() {
        ErrorCode::RoleNotFound => Error::new(
            ErrorCode::RoleNotFound,
            format!("Cannot grant roles to '{}@{db}': {}", role_name(req).unwrap_or_default(), e.message()),
        ),
        _ => e,
    })?;
    if db != "admin" && named.iter().any(|(_, role_db)| role_db != db) {
        return Err(Error::new(
            ErrorCode::InvalidRoleModification,
            format!("Roles on the '{db}' database cannot be granted roles from other databases"),
        ));
    }
    Ok(Some(named))
}

/// Refuses inherited roles that lead back to `role` itself.
fn check_no_cycle(ctx: &RequestCtx<'_>, role: &RoleName, inherited: &[RoleName]) -> Result<()> {
    if inherited.contains(role) {
        return Err(Error::new(
            ErrorCode::InvalidRoleModification,
            format!("Cannot grant role {}@{} to itself.", role.0, role.1),
        ));
    }
    if principals::resolve(&ctx.state.storage, inherited)?.roles.contains(role) {
        return Err(Error::new(
            ErrorCode::InvalidRoleModification,
            format!("Granting roles to {}@{} would introduce a cycle in the role graph", role.0, role.1),
        ));
    }
    Ok(())
}

/// The stored custom role a command names: built-in roles cannot be changed (2), a missing one
/// is 31 RoleNotFound.
fn existing(ctx: &RequestCtx<'_>, req: &CommandRequest) -> Result<Role> {
    let name = role_name(req)?;
    let db = req.db();
    if builtin::exists(name, db) {
        return Err(Error::new(ErrorCode::BadValue, format!("{name}@{db} is a built-in role and cannot be modified")));
    }
    roles::find(&ctx.state.storage, db, name)?
        .ok_or_else(|| Error::new(ErrorCode::RoleNotFound, format!("Could not find role: {name}@{db}")))
}

fn refuse_restrictions(req: &CommandRequest) -> Result<()> {
    if req.get("authenticationRestrictions").is_some() {
        return Err(Error::new(ErrorCode::NotImplemented, "authenticationRestrictions are not supported yet"));
    }
    Ok(())
}

/// `createRole: name, privileges, roles`.
pub fn create_role(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let name = role_name(req)?;
    let db = req.db();
    match db {
        "local" => return Err(Error::new(ErrorCode::BadValue, "Cannot create roles in the local database")),
        "$external" => return Err(Error::new(ErrorCode::BadValue, "Cannot create roles in the $external database")),
        _ => {}
    }
    if builtin::is_builtin_name(name) {
        return Err(Error::new(ErrorCode::BadValue, "Cannot create roles with the same name as a built-in role"));
    }
    refuse_restrictions(req)?;
    let privileges = parse_privileges(req, true)?.unwrap_or_default();
    let inherited = parse_inherited(ctx, req, true)?.unwrap_or_default();
    let mut set = PrivilegeSet::default();
    privileges.into_iter().for_each(|p| set.add(p));
    let role = Role { db: db.to_owned(), name: name.to_owned(), privileges: set, roles: inherited };
    roles::create(ctx.state, &role)?;
    tracing::info!(target: "ACCESS", id = 7_000_300, role = %name, db = %db, "Created role");
    Ok(Document::new())
}

/// `updateRole: name, privileges?, roles?`: replaces what is given.
pub fn update_role(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    if req.get("privileges").is_none() && req.get("roles").is_none() && req.get("authenticationRestrictions").is_none()
    {
        return Err(Error::new(ErrorCode::BadValue, "Must specify at least one field to update in updateRole"));
    }
    refuse_restrictions(req)?;
    let mut role = existing(ctx, req)?;
    if let Some(privileges) = parse_privileges(req, false)? {
        role.privileges = PrivilegeSet::default();
        privileges.into_iter().for_each(|p| role.privileges.add(p));
    }
    if let Some(inherited) = parse_inherited(ctx, req, false)? {
        check_no_cycle(ctx, &(role.name.clone(), role.db.clone()), &inherited)?;
        role.roles = inherited;
    }
    roles::update(ctx.state, &role)?;
    Ok(Document::new())
}

/// A non-empty array argument, as the grant and revoke commands require.
fn require_non_empty(req: &CommandRequest, key: &str) -> Result<()> {
    match req.array_arg(key)? {
        Some(list) if !list.is_empty() => Ok(()),
        _ => {
            Err(Error::new(ErrorCode::BadValue, format!("{} command requires a non-empty \"{key}\" array", req.name())))
        }
    }
}

/// `grantPrivilegesToRole: name, privileges`.
pub fn grant_privileges_to_role(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    require_non_empty(req, "privileges")?;
    let mut role = existing(ctx, req)?;
    for privilege in parse_privileges(req, true)?.unwrap_or_default() {
        role.privileges.add(privilege);
    }
    roles::update(ctx.state, &role)?;
    Ok(Document::new())
}

/// `revokePrivilegesFromRole: name, privileges`.
pub fn revoke_privileges_from_role(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    require_non_empty(req, "privileges")?;
    let mut role = existing(ctx, req)?;
    for privilege in parse_privileges(req, true)?.unwrap_or_default() {
        role.privileges.remove(&privilege);
    }
    roles::update(ctx.state, &role)?;
    Ok(Document::new())
}

/// `grantRolesToRole: name, roles`.
pub fn grant_roles_to_role(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    require_non_empty(req, "roles")?;
    let mut role = existing(ctx, req)?;
    let granted = parse_inherited(ctx, req, true)?.unwrap_or_default();
    check_no_cycle(ctx, &(role.name.clone(), role.db.clone()), &granted)?;
    for inherited in granted {
        if !role.roles.contains(&inherited) {
            role.roles.push(inherited);
        }
    }
    roles::update(ctx.state, &role)?;
    Ok(Document::new())
}

/// `revokeRolesFromRole: name, roles`.
pub fn revoke_roles_from_role(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    require_non_empty(req, "roles")?;
    let mut role = existing(ctx, req)?;
    let revoked = parse_inherited(ctx, req, true)?.unwrap_or_default();
    role.roles.retain(|r| !revoked.contains(r));
    roles::update(ctx.state, &role)?;
    Ok(Document::new())
}

/// Removes `dropped` from every user and custom role that holds it, as mongod does when a
/// role goes.
fn forget_role(ctx: &RequestCtx<'_>, dropped: &RoleName) -> Result<()> {
    for mut user in users::list(&ctx.state.storage, None)? {
        if user.roles.contains(dropped) {
            user.roles.retain(|r| r != dropped);
            users::update(ctx.state, &user)?;
        }
    }
    for mut role in roles::list(&ctx.state.storage, None)? {
        if role.roles.contains(dropped) {
            role.roles.retain(|r| r != dropped);
            roles::update(ctx.state, &role)?;
        }
    }
    Ok(())
}

/// `dropRole: name`.
pub fn drop_role(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let role = existing(ctx, req)?;
    roles::remove(ctx.state, &role.db, &role.name)?;
    forget_role(ctx, &(role.name, role.db))?;
    Ok(Document::new())
}

/// `dropAllRolesFromDatabase: 1`: answers how many went (`n`).
pub fn drop_all_roles_from_database(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let mut n = 0i32;
    for role in roles::list(&ctx.state.storage, Some(req.db()))? {
        if roles::remove(ctx.state, &role.db, &role.name)? {
            n += 1;
        }
        forget_role(ctx, &(role.name, role.db))?;
    }
    Ok(doc! { "n": n })
}

/// How `rolesInfo` shows privileges.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ShowPrivileges {
    No,
    Yes,
    AsUserFragment,
}

/// The role names `rolesInfo` asks for (`None`: every role of the database).
fn requested_roles(req: &CommandRequest) -> Result<Option<Vec<RoleName>>> {
    let db = req.db();
    let named = |value: RawBsonRef<'_>| -> Result<RoleName> {
        match value {
            RawBsonRef::String(name) => Ok((name.to_owned(), db.to_owned())),
            RawBsonRef::Document(d) => match (d.get_str("role"), d.get_str("db")) {
                (Ok(name), Ok(db)) => Ok((name.to_owned(), db.to_owned())),
                _ => Err(Error::new(
                    ErrorCode::BadValue,
                    "Role name must be either a string or an object with 'role' and 'db' fields",
                )),
            },
            _ => Err(Error::new(ErrorCode::BadValue, "Role name must be either a string or an object")),
        }
    };
    match req.command_value() {
        Some(RawBsonRef::Int32(1) | RawBsonRef::Int64(1)) => Ok(None),
        Some(RawBsonRef::Double(1.0)) => Ok(None),
        Some(RawBsonRef::Array(list)) => list
            .into_iter()
            .map(|v| named(v.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?))
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Some(value) => named(value).map(|n| Some(vec![n])),
        None => Ok(None),
    }
}

/// `rolesInfo`: `1` (the database's custom roles, and its built-in ones with
/// `showBuiltinRoles`), a name, `{role, db}` or a list of those; roles that do not exist are
/// left out. `showPrivileges: true` adds each role's own and inherited privileges;
/// `"asUserFragment"` answers one document of all of them together.
pub fn roles_info(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let show = match req.get("showPrivileges") {
        None | Some(RawBsonRef::Boolean(false)) => ShowPrivileges::No,
        Some(RawBsonRef::Boolean(true)) => ShowPrivileges::Yes,
        Some(RawBsonRef::String("asUserFragment")) => ShowPrivileges::AsUserFragment,
        Some(_) => {
            return Err(Error::new(
                ErrorCode::FailedToParse,
                "showPrivileges must be a boolean or the string \"asUserFragment\"",
            ));
        }
    };
    let show_restrictions = req.bool_arg("showAuthenticationRestrictions")?.unwrap_or(false);
    let storage = &ctx.state.storage;
    let requested = requested_roles(req)?;
    if show == ShowPrivileges::AsUserFragment {
        let Some(named) = requested else {
            return Err(Error::new(
                ErrorCode::IllegalOperation,
                "Cannot get user fragment for all roles in a database",
            ));
        };
        let mut present = Vec::with_capacity(named.len());
        for (role, db) in named {
            if builtin::exists(&role, &db) || roles::find(storage, &db, &role)?.is_some() {
                present.push((role, db));
            }
        }
        let resolved = principals::resolve(storage, &present)?;
        let mut fragment = doc! {
            "roles": roles::role_documents(&present),
            "inheritedRoles": roles::role_documents(&resolved.roles),
            "inheritedPrivileges": resolved.privileges.to_documents(),
        };
        if show_restrictions {
            fragment.insert("inheritedAuthenticationRestrictions", Vec::<Bson>::new());
        }
        return Ok(doc! { "userFragment": fragment });
    }
    let show_privileges = show == ShowPrivileges::Yes;
    let mut out = Vec::new();
    match requested {
        None => {
            let db = req.db();
            if req.bool_arg("showBuiltinRoles")?.unwrap_or(false) {
                for name in builtin::names(db) {
                    out.push(describe_builtin(name, db, show_privileges, show_restrictions, true));
                }
            }
            for role in roles::list(storage, Some(db))? {
                out.push(describe_custom(ctx, &role, show_privileges, show_restrictions)?);
            }
        }
        Some(named) => {
            for (name, db) in named {
                if builtin::exists(&name, &db) {
                    out.push(describe_builtin(&name, &db, show_privileges, show_restrictions, false));
                } else if let Some(role) = roles::find(storage, &db, &name)? {
                    out.push(describe_custom(ctx, &role, show_privileges, show_restrictions)?);
                }
            }
        }
    }
    Ok(doc! { "roles": out.into_iter().map(Bson::Document).collect::<Vec<_>>() })
}

/// A built-in role as `rolesInfo` shows it: no inherited roles (mongod flattens them), its
/// privileges both as its own and as inherited.
fn describe_builtin(name: &str, db: &str, privileges: bool, restrictions: bool, listed: bool) -> Document {
    let granted = builtin::role_of(name, db).map(|r| r.privileges.to_documents()).unwrap_or_default();
    let mut out = if listed {
        doc! { "role": name, "db": db, "isBuiltin": true, "roles": [], "inheritedRoles": [] }
    } else {
        doc! { "db": db, "role": name, "roles": [] }
    };
    if privileges {
        out.insert("privileges", granted.clone());
        if listed {
            out.insert("inheritedPrivileges", granted.clone());
        }
    }
    if !listed {
        out.insert("inheritedRoles", Vec::<Bson>::new());
        if privileges {
            out.insert("inheritedPrivileges", granted);
        }
    }
    if restrictions {
        out.insert("authenticationRestrictions", Vec::<Bson>::new());
        out.insert("inheritedAuthenticationRestrictions", Vec::<Bson>::new());
    }
    if !listed {
        out.insert("isBuiltin", true);
    }
    out
}

/// A custom role as `rolesInfo` shows it: its document, then what it inherits.
fn describe_custom(ctx: &RequestCtx<'_>, role: &Role, privileges: bool, restrictions: bool) -> Result<Document> {
    let inherited = principals::resolve(&ctx.state.storage, &role.roles)?;
    let mut out = doc! { "_id": format!("{}.{}", role.db, role.name), "role": &role.name, "db": &role.db };
    if privileges {
        out.insert("privileges", role.privileges.to_documents());
    }
    out.insert("roles", roles::role_documents(&role.roles));
    if restrictions {
        out.insert("authenticationRestrictions", Vec::<Bson>::new());
    }
    out.insert("inheritedRoles", roles::role_documents(&inherited.roles));
    if privileges {
        // Its own privileges, then those of the roles it inherits, as mongod lists them.
        let mut all = role.privileges.to_documents();
        all.extend(inherited.privileges.to_documents());
        out.insert("inheritedPrivileges", all);
    }
    if restrictions {
        out.insert("inheritedAuthenticationRestrictions", Vec::<Bson>::new());
    }
    out.insert("isBuiltin", false);
    Ok(out)
}

/// The database a privilege's resource needs grantRole on to be granted: its own, or `admin`
/// for the cluster and the patterns that span databases.
fn grant_database(resource: &ResourcePattern) -> &str {
    resource.database().unwrap_or("admin")
}

/// Whether `action` (grantRole, revokeRole) is allowed for every privilege in the request.
fn may_for_each_privilege(authz: &Authorizer<'_>, req: &CommandRequest, action: ActionType) -> bool {
    let Ok(Some(list)) = req.array_arg("privileges") else { return true };
    list.into_iter().all(|item| {
        let RawBsonRef::Document(item) = item else { return true };
        match Privilege::from_document(item) {
            Ok(privilege) => authz.allows(Target::Database(grant_database(&privilege.resource)), action),
            // The handler refuses it.
            Err(_) => true,
        }
    })
}

/// `createRole`: createRole on the database, grantRole for each inherited role and privilege.
pub(super) fn authorize_create_role(authz: &Authorizer<'_>, req: &CommandRequest) -> bool {
    authz.allows(Target::Database(req.db()), ActionType::CreateRole)
        && may_for_each_role(authz, req, "roles", ActionType::GrantRole)
        && may_for_each_privilege(authz, req, ActionType::GrantRole)
}

/// `updateRole`: revokeRole on every normal resource, and the grants of `createRole`.
pub(super) fn authorize_update_role(authz: &Authorizer<'_>, req: &CommandRequest) -> bool {
    authz.allows(Target::AnyNormal, ActionType::RevokeRole)
        && may_for_each_role(authz, req, "roles", ActionType::GrantRole)
        && may_for_each_privilege(authz, req, ActionType::GrantRole)
}

/// `grantPrivilegesToRole`: grantRole for each privilege.
pub(super) fn authorize_grant_privileges(authz: &Authorizer<'_>, req: &CommandRequest) -> bool {
    may_for_each_privilege(authz, req, ActionType::GrantRole)
}

/// `revokePrivilegesFromRole`: revokeRole for each privilege.
pub(super) fn authorize_revoke_privileges(authz: &Authorizer<'_>, req: &CommandRequest) -> bool {
    may_for_each_privilege(authz, req, ActionType::RevokeRole)
}

/// `grantRolesToRole`: grantRole on each role's database.
pub(super) fn authorize_grant_roles(authz: &Authorizer<'_>, req: &CommandRequest) -> bool {
    may_for_each_role(authz, req, "roles", ActionType::GrantRole)
}

/// `revokeRolesFromRole`: revokeRole on each role's database.
pub(super) fn authorize_revoke_roles(authz: &Authorizer<'_>, req: &CommandRequest) -> bool {
    may_for_each_role(authz, req, "roles", ActionType::RevokeRole)
}

/// `rolesInfo`: viewRole on the database (`1`), or for each named role one the connection
/// does not hold, viewRole on the role's database.
pub(super) fn authorize_roles_info(authz: &Authorizer<'_>, req: &CommandRequest) -> bool {
    match requested_roles(req) {
        Ok(Some(named)) => named
            .iter()
            .all(|(role, db)| authz.has_role(role, db) || authz.allows(Target::Database(db), ActionType::ViewRole)),
        Ok(None) => authz.allows(Target::Database(req.db()), ActionType::ViewRole),
        Err(_) => true,
    }
}
