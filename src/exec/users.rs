//! The user catalog, kept as mongod keeps it: one document per user in `admin.system.users`,
//! `_id` `"<db>.<user>"`, with the user's SCRAM credentials (salts and keys, never the
//! password) and roles.

use bson::{Bson, Document, RawBsonRef, RawDocumentBuf, doc};

use crate::auth::scram::{Credentials, Mechanism};
use crate::error::{Error, ErrorCode, Result};
use crate::storage::{Namespace, Storage};

/// Where users live.
fn users_ns() -> Namespace {
    Namespace { db: "admin".to_owned(), coll: "system.users".to_owned() }
}

/// A user as the catalog holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// The database the user is defined in (its authentication database).
    pub db: String,
    /// The user name.
    pub name: String,
    /// Credentials per mechanism.
    pub credentials: Vec<(Mechanism, Credentials)>,
    /// `(role, db)` pairs.
    pub roles: Vec<(String, String)>,
    /// `customData`, when given.
    pub custom_data: Option<Document>,
    /// The user's id (a UUID), made when the user is created and kept through updates.
    pub user_id: Option<bson::Binary>,
}

impl User {
    /// The catalog document.
    fn to_document(&self) -> Document {
        let mut credentials = Document::new();
        for (mechanism, c) in &self.credentials {
            credentials.insert(mechanism.name(), c.to_document());
        }
        let roles: Vec<Bson> =
            self.roles.iter().map(|(role, db)| Bson::Document(doc! { "role": role, "db": db })).collect();
        let user_id = self.user_id.clone().unwrap_or_else(|| bson::Binary {
            subtype: bson::spec::BinarySubtype::Uuid,
            bytes: bson::Uuid::new().bytes().to_vec(),
        });
        let mut out = doc! {
            "_id": format!("{}.{}", self.db, self.name),
            "userId": Bson::Binary(user_id),
            "user": &self.name,
            "db": &self.db,
            "credentials": credentials,
            "roles": roles,
        };
        if let Some(custom) = &self.custom_data {
            out.insert("customData", custom.clone());
        }
        out
    }

    fn from_document(document: &Document) -> Option<Self> {
        let credentials = document.get_document("credentials").ok()?;
        let credentials = [Mechanism::Sha1, Mechanism::Sha256]
            .into_iter()
            .filter_map(|m| Some((m, Credentials::from_document(credentials.get_document(m.name()).ok()?)?)))
            .collect();
        let roles = document
            .get_array("roles")
            .ok()?
            .iter()
            .filter_map(|r| {
                let r = r.as_document()?;
                Some((r.get_str("role").ok()?.to_owned(), r.get_str("db").ok()?.to_owned()))
            })
            .collect();
        Some(Self {
            db: document.get_str("db").ok()?.to_owned(),
            name: document.get_str("user").ok()?.to_owned(),
            credentials,
            roles,
            custom_data: document.get_document("customData").ok().cloned(),
            user_id: match document.get("userId") {
                Some(Bson::Binary(id)) => Some(id.clone()),
                _ => None,
            },
        })
    }

    /// The credentials for `mechanism`, if the user has them.
    pub fn credentials_for(&self, mechanism: Mechanism) -> Option<&Credentials> {
        self.credentials.iter().find(|(m, _)| *m == mechanism).map(|(_, c)| c)
    }
}

/// The user `name` of `db`.
///
/// # Errors
/// Storage errors.
pub fn find(storage: &Storage, db: &str, name: &str) -> Result<Option<User>> {
    let Some(users) = storage.collection(&users_ns()) else { return Ok(None) };
    let id = format!("{db}.{name}");
    let stored = storage.snapshot().get(&users, RawBsonRef::String(&id))?;
    Ok(stored.and_then(|raw| Document::try_from(raw.as_ref()).ok()).and_then(|d| User::from_document(&d)))
}

/// Every user of `db` (`None`: of every database), ordered by database then name.
///
/// # Errors
/// Storage errors.
pub fn list(storage: &Storage, db: Option<&str>) -> Result<Vec<User>> {
    let Some(users) = storage.collection(&users_ns()) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for stored in storage.snapshot().scan(&users, crate::storage::Direction::Forward) {
        let Some(user) = Document::try_from(stored?.as_ref()).ok().and_then(|d| User::from_document(&d)) else {
            continue;
        };
        if db.is_none_or(|db| user.db == db) {
            out.push(user);
        }
    }
    out.sort_by(|a, b| (&a.db, &a.name).cmp(&(&b.db, &b.name)));
    Ok(out)
}

/// Replaces the stored `user` (same database and name), keeping its id.
///
/// # Errors
/// 11 UserNotFound when it does not exist; storage errors.
pub fn update(storage: &Storage, user: &User) -> Result<()> {
    let Some(existing) = find(storage, &user.db, &user.name)? else {
        return Err(Error::new(ErrorCode::UserNotFound, format!("User {}@{} not found", user.name, user.db)));
    };
    let mut user = user.clone();
    user.user_id = existing.user_id;
    write(storage, &user)
}

fn write(storage: &Storage, user: &User) -> Result<()> {
    let users = storage.collection_or_create(&users_ns())?;
    let stored =
        RawDocumentBuf::try_from(&user.to_document()).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
    let mut writer = storage.writer(&users)?;
    writer.replace(stored)?;
    if let Some(ticket) = writer.commit()? {
        storage.wait_durable(ticket)?;
    }
    Ok(())
}

/// Adds `user`.
///
/// # Errors
/// 51003 when the user exists; storage errors.
pub fn create(storage: &Storage, user: &User) -> Result<()> {
    if find(storage, &user.db, &user.name)?.is_some() {
        return Err(Error::new(ErrorCode::Location51003, format!("User \"{}@{}\" already exists", user.name, user.db)));
    }
    write(storage, user)
}

/// Removes the user `name` of `db`; returns whether there was one.
///
/// # Errors
/// Storage errors.
pub fn remove(storage: &Storage, db: &str, name: &str) -> Result<bool> {
    let Some(users) = storage.collection(&users_ns()) else { return Ok(false) };
    if find(storage, db, name)?.is_none() {
        return Ok(false);
    }
    let id = format!("{db}.{name}");
    let mut writer = storage.writer(&users)?;
    writer.delete(RawBsonRef::String(&id))?;
    if let Some(ticket) = writer.commit()? {
        storage.wait_durable(ticket)?;
    }
    Ok(true)
}
