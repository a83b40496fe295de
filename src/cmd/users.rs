//! User management: `createUser` and `dropUser`, over the user catalog (`exec::users`).

use bson::{Bson, Document, RawBsonRef, doc};

use super::context::RequestCtx;
use super::request::CommandRequest;
use crate::auth::scram::{Credentials, Mechanism};
use crate::error::{Error, ErrorCode, Result};
use crate::exec::users::{self, User};

/// mongod's built-in roles; the `...AnyDatabase` ones, `root` and the cluster roles exist only
/// in `admin`.
const ROLES_IN_ANY_DATABASE: &[&str] = &["read", "readWrite", "dbAdmin", "dbOwner", "userAdmin"];
const ROLES_IN_ADMIN: &[&str] = &[
    "clusterMonitor",
    "clusterManager",
    "clusterAdmin",
    "hostManager",
    "backup",
    "restore",
    "readAnyDatabase",
    "readWriteAnyDatabase",
    "userAdminAnyDatabase",
    "dbAdminAnyDatabase",
    "root",
];

fn role_exists(role: &str, db: &str) -> bool {
    ROLES_IN_ANY_DATABASE.contains(&role) || (db == "admin" && ROLES_IN_ADMIN.contains(&role))
}

/// The `roles` of a user: names in the command's database or `{role, db}` documents.
fn parse_roles(req: &CommandRequest) -> Result<Vec<(String, String)>> {
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
        if !role_exists(&name, &db) {
            return Err(Error::new(ErrorCode::RoleNotFound, format!("Could not find role: {name}@{db}")));
        }
        out.push((name, db));
    }
    Ok(out)
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
    mechanisms
        .iter()
        .map(|&m| {
            let iterations = ctx.state.params.scram_iterations(m == Mechanism::Sha256);
            Credentials::new(m, name, password, u32::try_from(iterations).unwrap_or(u32::MAX))
                .map(|c| (m, c))
                .map_err(|e| Error::new(ErrorCode::BadValue, format!("Error preparing password: {e}")))
        })
        .collect()
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
    if db == "$external" {
        return Err(Error::new(ErrorCode::NotImplemented, "users in $external (x509) are not supported yet"));
    }
    let password = req.str_arg("pwd")?.ok_or_else(|| {
        Error::new(
            ErrorCode::BadValue,
            "Must provide a 'pwd' field for all user documents, except those with '$external' as the user's source db",
        )
    })?;
    let roles = parse_roles(req)?;
    let mechanisms = parse_mechanisms(req)?.unwrap_or_else(|| vec![Mechanism::Sha1, Mechanism::Sha256]);
    let credentials = credentials(ctx, req, name, password, &mechanisms)?;
    let user = User {
        db: db.to_owned(),
        name: name.to_owned(),
        credentials,
        roles,
        custom_data: custom_data(req)?,
        user_id: None,
    };
    users::create(&ctx.state.storage, &user)?;
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
        user.roles = parse_roles(req)?;
    }
    if let Some(custom) = custom_data(req)? {
        user.custom_data = Some(custom);
    }
    users::update(&ctx.state.storage, &user)?;
    Ok(Document::new())
}

/// `grantRolesToUser: name, roles`.
pub fn grant_roles_to_user(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let mut user = existing(ctx, req)?;
    for role in parse_roles(req)? {
        if !user.roles.contains(&role) {
            user.roles.push(role);
        }
    }
    users::update(&ctx.state.storage, &user)?;
    Ok(Document::new())
}

/// `revokeRolesFromUser: name, roles`.
pub fn revoke_roles_from_user(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let mut user = existing(ctx, req)?;
    let revoked = parse_roles(req)?;
    user.roles.retain(|r| !revoked.contains(r));
    users::update(&ctx.state.storage, &user)?;
    Ok(Document::new())
}

/// `dropUser: name`.
pub fn drop_user(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let name = user_name(req)?;
    if !users::remove(&ctx.state.storage, req.db(), name)? {
        return Err(Error::new(ErrorCode::UserNotFound, format!("User '{name}@{}' not found", req.db())));
    }
    Ok(Document::new())
}

/// `dropAllUsersFromDatabase: 1`: answers how many went (`n`).
pub fn drop_all_users_from_database(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let storage = &ctx.state.storage;
    let mut n = 0i32;
    for user in users::list(storage, Some(req.db()))? {
        if users::remove(storage, &user.db, &user.name)? {
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
    let show_credentials = req.bool_arg("showCredentials")?.unwrap_or(false);
    let described: Vec<Bson> = found.iter().map(|u| Bson::Document(describe(u, show_credentials))).collect();
    Ok(doc! { "users": described })
}

/// A user as `usersInfo` shows it.
fn describe(user: &User, show_credentials: bool) -> Document {
    let roles: Vec<Bson> =
        user.roles.iter().map(|(role, db)| Bson::Document(doc! { "role": role, "db": db })).collect();
    let mut out = doc! { "_id": format!("{}.{}", user.db, user.name) };
    if let Some(id) = &user.user_id {
        out.insert("userId", Bson::Binary(id.clone()));
    }
    out.insert("user", &user.name);
    out.insert("db", &user.db);
    if let Some(custom) = &user.custom_data {
        out.insert("customData", custom.clone());
    }
    out.insert("roles", roles);
    if show_credentials {
        let mut credentials = Document::new();
        for (m, c) in &user.credentials {
            let mut shown = c.to_document();
            shown.remove("storedKey");
            shown.remove("serverKey");
            credentials.insert(m.name(), shown);
        }
        out.insert("credentials", credentials);
    }
    out.insert("mechanisms", user.credentials.iter().map(|(m, _)| Bson::from(m.name())).collect::<Vec<_>>());
    out
}
