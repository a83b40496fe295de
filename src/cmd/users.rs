//! User management: `createUser` and `dropUser`, over the user catalog (`exec::users`).

use bson::{Document, RawBsonRef};

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

/// `createUser: name, pwd, roles, customData?, mechanisms?, digestPassword?`.
pub fn create_user(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let name = match req.command_value() {
        Some(RawBsonRef::String(name)) => name,
        Some(other) => return Err(req.wrong_type("createUser", other, "string")),
        None => return Err(Error::new(ErrorCode::BadValue, "createUser requires a user name")),
    };
    if name.is_empty() {
        return Err(Error::new(ErrorCode::BadValue, "User document needs 'user' field to be non-empty"));
    }
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
    if password.is_empty() {
        return Err(Error::new(ErrorCode::BadValue, "Password cannot be empty"));
    }
    let roles = parse_roles(req)?;
    let mechanisms = match req.array_arg("mechanisms")? {
        None => vec![Mechanism::Sha1, Mechanism::Sha256],
        Some(list) => {
            let mut out = Vec::new();
            for m in list {
                let RawBsonRef::String(m) = m else {
                    return Err(Error::new(ErrorCode::BadValue, "mechanisms field must be an array of strings"));
                };
                let mechanism = Mechanism::from_name(m)
                    .ok_or_else(|| Error::new(ErrorCode::BadValue, format!("Unknown auth mechanism '{m}'")))?;
                out.push(mechanism);
            }
            if out.is_empty() {
                return Err(Error::new(ErrorCode::BadValue, "mechanisms field must not be empty"));
            }
            out
        }
    };
    if req.bool_arg("digestPassword")? == Some(false) && mechanisms.contains(&Mechanism::Sha256) {
        return Err(Error::new(ErrorCode::BadValue, "Use of SCRAM-SHA-256 requires undigested passwords"));
    }
    let mut credentials = Vec::with_capacity(mechanisms.len());
    for mechanism in mechanisms {
        let c = Credentials::new(mechanism, name, password, mechanism.default_iterations())
            .map_err(|e| Error::new(ErrorCode::BadValue, format!("Error preparing password: {e}")))?;
        credentials.push((mechanism, c));
    }
    let custom_data = match req.doc_arg("customData")? {
        Some(d) => Some(Document::try_from(d).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?),
        None => None,
    };
    let user = User { db: db.to_owned(), name: name.to_owned(), credentials, roles, custom_data };
    users::create(&ctx.state.storage, &user)?;
    tracing::info!(target: "ACCESS", id = 20254, user = %name, db = %db, "Created user");
    Ok(Document::new())
}

/// `dropUser: name`.
pub fn drop_user(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let name = match req.command_value() {
        Some(RawBsonRef::String(name)) => name,
        Some(other) => return Err(req.wrong_type("dropUser", other, "string")),
        None => return Err(Error::new(ErrorCode::BadValue, "dropUser requires a user name")),
    };
    if !users::remove(&ctx.state.storage, req.db(), name)? {
        return Err(Error::new(ErrorCode::UserNotFound, format!("User '{name}@{}' not found", req.db())));
    }
    Ok(Document::new())
}
