//! User management: `createUser`, `updateUser`, `dropUser`, `usersInfo` and the role grants,
//! over the user catalog (`exec::principals::users`), with the checks of who may run them.

use bson::{Bson, Document, RawBsonRef, doc};

use super::Authorizer;
use super::context::RequestCtx;
use super::request::CommandRequest;
use crate::auth::action::ActionType;
use crate::auth::resource::Target;
use crate::auth::scram::{Credentials, Mechanism};
use crate::auth::{RoleName, builtin};
use crate::error::{Error, ErrorCode, Result};
use crate::exec::principals::roles;
use crate::exec::principals::users::{self, User};

/// Whether role `role` of `db` exists: built in, or in the role catalog.
///
/// # Errors
/// Storage errors.
fn role_exists(ctx: &RequestCtx<'_>, role: &str, db: &str) -> Result<bool> {
    Ok(builtin::exists(role, db) || roles::find(&ctx.state.storage, db, role)?.is_some())
}

/// The `roles` of a user: names in the command's database or `{role, db}` documents.
pub(super) fn parse_roles(ctx: &RequestCtx<'_>, req: &CommandRequest) -> Result<Vec<RoleName>> {
    let roles = req.array_arg("roles")?.ok_or_else(|| {
        Error::new(
            ErrorCode::Location40414,
            format!("BSON field '{}.roles' is missing but a required field", req.name()),
        )
    })?;
    let mut out = Vec::with_capacity(roles.len());
    for role in roles {
        let (name, db) = match role {
            RawBsonRef::String(name) => (name.to_owned(), req.db().to_owned()),
            RawBsonRef::Document(d) => match (d.get_str("role"), d.get_str("db")) {
                (Ok(name), Ok(db)) => (name.to_owned(), db.to_owned()),
                _ => {
                    return Err(Error::new(
                        ErrorCode::BadValue,
                        "Role names must be either strings or objects with 'role' and 'db' fields",
                    ));
                }
            },
            _ => return Err(Error::new(ErrorCode::BadValue, "Role names must be either strings or objects")),
        };
        if !role_exists(ctx, &name, &db)? {
            return Err(Error::new(ErrorCode::RoleNotFound, format!("Could not find role: {name}@{db}")));
        }
        out.push((name, db));
    }
    Ok(out)
}

/// The roles a request names in `key`, as `(role, db)`, without checking that they exist (what
/// the authorization check reads; malformed entries are the handler's to refuse).
pub(super) fn named_roles<'a>(req: &'a CommandRequest, key: &str) -> Vec<(&'a str, &'a str)> {
    let Ok(Some(roles)) = req.array_arg(key) else { return Vec::new() };
    roles
        .into_iter()
        .filter_map(|role| match role {
            RawBsonRef::String(name) => Some((name, req.db())),
            RawBsonRef::Document(d) => Some((d.get_str("role").ok()?, d.get_str("db").ok()?)),
            _ => None,
        })
        .collect()
}

/// Whether `action` (grantRole, revokeRole) is allowed on the database of every role in `key`.
pub(super) fn may_for_each_role(authz: &Authorizer<'_>, req: &CommandRequest, key: &str, action: ActionType) -> bool {
    named_roles(req, key).iter().all(|(_, db)| authz.allows(Target::Database(db), action))
}

/// `createUser`: createUser on the database, grantRole on each role's database.
pub(super) fn authorize_create_user(authz: &Authorizer<'_>, req: &CommandRequest) -> bool {
    authz.allows(Target::Database(req.db()), ActionType::CreateUser)
        && may_for_each_role(authz, req, "roles", ActionType::GrantRole)
}

/// `grantRolesToUser`: grantRole on each role's database.
pub(super) fn authorize_grant_roles(authz: &Authorizer<'_>, req: &CommandRequest) -> bool {
    may_for_each_role(authz, req, "roles", ActionType::GrantRole)
}

/// `revokeRolesFromUser`: revokeRole on each role's database.
pub(super) fn authorize_revoke_roles(authz: &Authorizer<'_>, req: &CommandRequest) -> bool {
    may_for_each_role(authz, req, "roles", ActionType::RevokeRole)
}

/// `updateUser`: changePassword (or changeOwnPassword for oneself) for a new password or
/// mechanisms, changeCustomData (or changeOwnCustomData) for `customData`, and for a new role
/// list revokeRole on every normal resource plus grantRole on each role's database.
pub(super) fn authorize_update_user(authz: &Authorizer<'_>, req: &CommandRequest) -> bool {
    let db = req.db();
    let here = Target::Database(db);
    let own = matches!(req.command_value(), Some(RawBsonRef::String(name)) if authz.is_user(name, db));
    let may =
        |any: ActionType, own_action: ActionType| authz.allows(here, any) || (own && authz.allows(here, own_action));
    let password = req.get("pwd").is_some() || req.get("mechanisms").is_some();
    (!password || may(ActionType::ChangePassword, ActionType::ChangeOwnPassword))
        && (req.get("customData").is_none() || may(ActionType::ChangeCustomData, ActionType::ChangeOwnCustomData))
        && (req.get("roles").is_none()
            || (authz.allows(Target::AnyNormal, ActionType::RevokeRole)
                && may_for_each_role(authz, req, "roles", ActionType::GrantRole)))
}

/// `usersInfo`: viewUser on the database (`1`), on the cluster (`forAllDBs`), or on each named
/// user's database unless it is the connection's own user.
pub(super) fn authorize_users_info(authz: &Authorizer<'_>, req: &CommandRequest) -> bool {
    let db = req.db();
    let may_view = |name: &str, user_db: &str| {
        authz.is_user(name, user_db) || authz.allows(Target::Database(user_db), ActionType::ViewUser)
    };
    let named = |value: RawBsonRef<'_>| match value {
        RawBsonRef::String(name) => may_view(name, db),
        RawBsonRef::Document(d) => match (d.get_str("user"), d.get_str("db")) {
            (Ok(name), Ok(user_db)) => may_view(name, user_db),
            _ => true,
        },
        _ => true,
    };
    match req.command_value() {
        Some(RawBsonRef::Document(d)) if d.get_bool("forAllDBs").unwrap_or(false) => {
            authz.allows(Target::Cluster, ActionType::ViewUser)
        }
        Some(RawBsonRef::Array(list)) => list.into_iter().filter_map(|v| v.ok()).all(named),
        Some(value @ (RawBsonRef::String(_) | RawBsonRef::Document(_))) => named(value),
        _ => authz.allows(Target::Database(db), ActionType::ViewUser),
    }
}

/// The user a command names (its value).
fn user_name(req: &CommandRequest) -> Result<&str> {
    match req.command_value() {
        Some(RawBsonRef::String(name)) if !name.is_empty() => Ok(name),
        Some(RawBsonRef::String(_)) => {
            Err(Error::new(ErrorCode::BadValue, "User document needs 'user' field to be non-empty"))
        }
        Some(other) => Err(req.wrong_type(req.name(), other, "string")),
        None => Err(Error::new(ErrorCode::BadValue, format!("{} requires a user name", req.name()))),
    }
}

/// `mechanisms`, when given: SCRAM-SHA-1 and/or SCRAM-SHA-256.
fn parse_mechanisms(req: &CommandRequest) -> Result<Option<Vec<Mechanism>>> {
    let Some(list) = req.array_arg("mechanisms")? else { return Ok(None) };
    let mut out = Vec::new();
    for m in list {
        let RawBsonRef::String(m) = m else {
            return Err(Error::new(ErrorCode::BadValue, "mechanisms field must be an array of strings"));
        };
        let mechanism = Mechanism::from_name(m)
            .ok_or_else(|| Error::new(ErrorCode::BadValue, format!("Unknown auth mechanism '{m}'")))?;
        if !out.contains(&mechanism) {
            out.push(mechanism);
        }
    }
    if out.is_empty() {
        return Err(Error::new(ErrorCode::BadValue, "mechanisms field must not be empty"));
    }
    Ok(Some(out))
}

/// The credentials of `password` for each mechanism, with the server's iteration counts.
fn credentials(
    ctx: &RequestCtx<'_>,
    req: &CommandRequest,
    name: &str,
    password: &str,
    mechanisms: &[Mechanism],
) -> Result<Vec<(Mechanism, Credentials)>> {
    if password.is_empty() {
        return Err(Error::new(ErrorCode::BadValue, "Password cannot be empty"));
    }
    if req.bool_arg("digestPassword")? == Some(false) && mechanisms.contains(&Mechanism::Sha256) {
        return Err(Error::new(ErrorCode::BadValue, "Use of SCRAM-SHA-256 requires undigested passwords"));
    }
    users::credentials(ctx.state, name, password, mechanisms)
}

fn custom_data(req: &CommandRequest) -> Result<Option<Document>> {
    req.doc_arg("customData")?
        .map(|d| Document::try_from(d).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string())))
        .transpose()
}

/// `createUser: name, pwd, roles, customData?, mechanisms?, digestPassword?`.
pub fn create_user(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let name = user_name(req)?;
    let db = req.db();
    let external = db == "$external";
    let password = match (req.str_arg("pwd")?, external) {
        (Some(_), true) => {
            return Err(Error::new(
                ErrorCode::BadValue,
                "Cannot set the password for users defined on the '$external' database",
            ));
        }
        (None, false) => {
            return Err(Error::new(
                ErrorCode::BadValue,
                "Must provide a 'pwd' field for all user documents, except those with '$external' as the user's source db",
            ));
        }
        (password, _) => password,
    };
    let roles = parse_roles(ctx, req)?;
    let credentials = match password {
        Some(password) => {
            let mechanisms = parse_mechanisms(req)?.unwrap_or_else(|| vec![Mechanism::Sha1, Mechanism::Sha256]);
            credentials(ctx, req, name, password, &mechanisms)?
        }
        None => Vec::new(),
    };
    let user = User {
        db: db.to_owned(),
        name: name.to_owned(),
        credentials,
        roles,
        custom_data: custom_data(req)?,
        user_id: None,
    };
    users::create(ctx.state, &user)?;
    tracing::info!(target: "ACCESS", id = 20254, user = %name, db = %db, "Created user");
    Ok(Document::new())
}

/// The stored user a command names, or 11 UserNotFound.
fn existing(ctx: &RequestCtx<'_>, req: &CommandRequest) -> Result<User> {
    let name = user_name(req)?;
    users::find(&ctx.state.storage, req.db(), name)?.ok_or_else(|| {
        Error::new(ErrorCode::UserNotFound, format!("Could not find user \"{name}\" for db \"{}\"", req.db()))
    })
}

/// `updateUser: name, pwd?, roles?, customData?, mechanisms?, digestPassword?`: a new password
/// makes new credentials (for `mechanisms`, else the user's); `mechanisms` without a password
/// keeps only those of the user's credentials.
pub fn update_user(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let mut user = existing(ctx, req)?;
    let mechanisms = parse_mechanisms(req)?;
    if user.is_external() && (req.get("pwd").is_some() || mechanisms.is_some()) {
        return Err(Error::new(
            ErrorCode::BadValue,
            "Cannot set the password for users defined on the '$external' database",
        ));
    }
    match (req.str_arg("pwd")?, mechanisms) {
        (Some(password), mechanisms) => {
            let mechanisms = mechanisms.unwrap_or_else(|| user.credentials.iter().map(|(m, _)| *m).collect());
            user.credentials = credentials(ctx, req, &user.name, password, &mechanisms)?;
        }
        (None, Some(mechanisms)) => {
            if mechanisms.iter().any(|m| user.credentials_for(*m).is_none()) {
                return Err(Error::new(
                    ErrorCode::BadValue,
                    "mechanisms field must be a subset of previously set mechanisms",
                ));
            }
            user.credentials.retain(|(m, _)| mechanisms.contains(m));
        }
        (None, None) => {}
    }
    if req.get("roles").is_some() {
        user.roles = parse_roles(ctx, req)?;
    }
    if let Some(custom) = custom_data(req)? {
        user.custom_data = Some(custom);
    }
    users::update(ctx.state, &user)?;
    Ok(Document::new())
}

/// `grantRolesToUser: name, roles`.
pub fn grant_roles_to_user(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let mut user = existing(ctx, req)?;
    for role in parse_roles(ctx, req)? {
        if !user.roles.contains(&role) {
            user.roles.push(role);
        }
    }
    users::update(ctx.state, &user)?;
    Ok(Document::new())
}

/// `revokeRolesFromUser: name, roles`.
pub fn revoke_roles_from_user(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let mut user = existing(ctx, req)?;
    let revoked = parse_roles(ctx, req)?;
    user.roles.retain(|r| !revoked.contains(r));
    users::update(ctx.state, &user)?;
    Ok(Document::new())
}

/// `dropUser: name`.
pub fn drop_user(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let name = user_name(req)?;
    if !users::remove(ctx.state, req.db(), name)? {
        return Err(Error::new(ErrorCode::UserNotFound, format!("User '{name}@{}' not found", req.db())));
    }
    Ok(Document::new())
}

/// `dropAllUsersFromDatabase: 1`: answers how many went (`n`).
pub fn drop_all_users_from_database(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let mut n = 0i32;
    for user in users::list(&ctx.state.storage, Some(req.db()))? {
        if users::remove(ctx.state, &user.db, &user.name)? {
            n += 1;
        }
    }
    Ok(doc! { "n": n })
}

/// `usersInfo`: `1` (the database's users), a name, `{user, db}`, a list of those, or
/// `{forAllDBs: true}`; `showCredentials` adds each mechanism's salt and iteration count (never
/// the keys).
pub fn users_info(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let storage = &ctx.state.storage;
    let db = req.db();
    let named = |value: RawBsonRef<'_>| -> Result<(String, String)> {
        match value {
            RawBsonRef::String(name) => Ok((name.to_owned(), db.to_owned())),
            RawBsonRef::Document(d) => match (d.get_str("user"), d.get_str("db")) {
                (Ok(name), Ok(db)) => Ok((name.to_owned(), db.to_owned())),
                _ => Err(Error::new(
                    ErrorCode::BadValue,
                    "User name must be a string or an object with 'user' and 'db' fields",
                )),
            },
            _ => Err(Error::new(ErrorCode::BadValue, "User name must be a string or an object")),
        }
    };
    let exact = match req.command_value() {
        Some(RawBsonRef::String(_) | RawBsonRef::Array(_)) => true,
        Some(RawBsonRef::Document(d)) => !d.get_bool("forAllDBs").unwrap_or(false),
        _ => false,
    };
    let found: Vec<User> = match req.command_value() {
        Some(RawBsonRef::Int32(1) | RawBsonRef::Int64(1)) => users::list(storage, Some(db))?,
        Some(RawBsonRef::Double(1.0)) => users::list(storage, Some(db))?,
        Some(RawBsonRef::Document(d)) if d.get_bool("forAllDBs").unwrap_or(false) => users::list(storage, None)?,
        Some(RawBsonRef::Array(list)) => {
            let mut out = Vec::new();
            for item in list {
                let (name, db) = named(item.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?)?;
                out.extend(users::find(storage, &db, &name)?);
            }
            out
        }
        Some(value) => {
            let (name, db) = named(value)?;
            users::find(storage, &db, &name)?.into_iter().collect()
        }
        None => Vec::new(),
    };
    let show = Shown {
        credentials: req.bool_arg("showCredentials")?.unwrap_or(false),
        custom_data: req.bool_arg("showCustomData")?.unwrap_or(true),
        privileges: req.bool_arg("showPrivileges")?.unwrap_or(false),
        restrictions: req.bool_arg("showAuthenticationRestrictions")?.unwrap_or(false),
    };
    let filter = req.doc_arg("filter")?.map(crate::query::Filter::parse).transpose()?;
    if (show.privileges || show.restrictions) && (!exact || filter.is_some()) {
        return Err(Error::new(
            ErrorCode::IllegalOperation,
            "Privilege or restriction details require exact-match usersInfo queries",
        ));
    }
    let mut described = Vec::with_capacity(found.len());
    for user in &found {
        let shown = describe(ctx, user, show)?;
        if let Some(filter) = &filter {
            let raw = bson::RawDocumentBuf::try_from(&shown)
                .map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))?;
            if !filter.try_matches(&raw)? {
                continue;
            }
        }
        described.push(Bson::Document(shown));
    }
    Ok(doc! { "users": described })
}

/// What `usersInfo` shows of each user.
#[derive(Clone, Copy)]
struct Shown {
    credentials: bool,
    custom_data: bool,
    privileges: bool,
    restrictions: bool,
}

/// A user as `usersInfo` shows it: with privileges (`showPrivileges`), in mongod's order for
/// that form, its inherited roles and privileges after its roles.
fn describe(ctx: &RequestCtx<'_>, user: &User, show: Shown) -> Result<Document> {
    let roles = roles::role_documents(&user.roles);
    let mechanisms: Vec<Bson> = user.mechanism_names().into_iter().map(Bson::from).collect();
    let mut out = doc! { "_id": format!("{}.{}", user.db, user.name) };
    if let Some(id) = &user.user_id {
        out.insert("userId", Bson::Binary(id.clone()));
    }
    out.insert("user", &user.name);
    out.insert("db", &user.db);
    let detailed = show.privileges || show.restrictions;
    if detailed {
        out.insert("mechanisms", mechanisms.clone());
    }
    if show.credentials {
        let mut credentials = Document::new();
        for (m, c) in &user.credentials {
            let mut shown = c.to_document();
            shown.remove("storedKey");
            shown.remove("serverKey");
            credentials.insert(m.name(), shown);
        }
        out.insert("credentials", credentials);
    }
    if let Some(custom) = user.custom_data.as_ref().filter(|_| show.custom_data) {
        out.insert("customData", custom.clone());
    }
    out.insert("roles", roles);
    if detailed {
        let inherited = crate::exec::principals::resolve(&ctx.state.storage, &user.roles)?;
        out.insert("inheritedRoles", roles::role_documents(&inherited.roles));
        out.insert("inheritedPrivileges", inherited.privileges.to_documents());
        out.insert("inheritedAuthenticationRestrictions", Vec::<Bson>::new());
        if show.restrictions {
            out.insert("authenticationRestrictions", Vec::<Bson>::new());
        }
    } else {
        out.insert("mechanisms", mechanisms);
    }
    Ok(out)
}
