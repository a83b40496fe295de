//! The user catalog: one document per user in `admin.system.users`, `_id` `"<db>.<user>"`,
//! with the user's SCRAM credentials (salts and keys, never the password) and roles.

use bson::{Bson, Document, doc};

use crate::auth::RoleName;
use crate::auth::scram::{Credentials, Mechanism};
use crate::error::{Error, ErrorCode, Result};
use crate::state::State;
use crate::storage::Storage;

/// Where users live, in `admin`.
pub const COLLECTION: &str = "system.users";

/// A user as the catalog holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// The database the user is defined in (its authentication database).
    pub db: String,
    /// The user name.
    pub name: String,
    /// Credentials per mechanism.
    pub credentials: Vec<(Mechanism, Credentials)>,
    /// Its roles.
    pub roles: Vec<RoleName>,
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
        if self.is_external() {
            // Authenticated outside (a certificate): no secret to keep.
            credentials.insert("external", true);
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

    /// Whether the user is defined in `$external` (authenticated by its X.509 certificate).
    pub fn is_external(&self) -> bool {
        self.db == "$external"
    }

    /// The names of its mechanisms, as `usersInfo` lists them (`external` for `$external`).
    pub fn mechanism_names(&self) -> Vec<&'static str> {
        if self.is_external() {
            return vec!["external"];
        }
        self.credentials.iter().map(|(m, _)| m.name()).collect()
    }

    /// The credentials for `mechanism`, if the user has them.
    pub fn credentials_for(&self, mechanism: Mechanism) -> Option<&Credentials> {
        self.credentials.iter().find(|(m, _)| *m == mechanism).map(|(_, c)| c)
    }
}

/// The SCRAM credentials of `password` for each of `mechanisms`, with the server's iteration
/// counts.
///
/// # Errors
/// 2 BadValue when the password cannot be prepared (SASLprep refuses it).
pub fn credentials(
    state: &State,
    name: &str,
    password: &str,
    mechanisms: &[Mechanism],
) -> Result<Vec<(Mechanism, Credentials)>> {
    mechanisms
        .iter()
        .map(|&m| {
            let iterations = state.params.scram_iterations(m == Mechanism::Sha256);
            Credentials::new(m, name, password, u32::try_from(iterations).unwrap_or(u32::MAX))
                .map(|c| (m, c))
                .map_err(|e| Error::new(ErrorCode::BadValue, format!("Error preparing password: {e}")))
        })
        .collect()
}

/// Creates the root user `name` in `admin`, with both mechanisms (the official image's first
/// start).
///
/// # Errors
/// As [`create`].
pub fn create_root(state: &State, name: &str, password: &str) -> Result<()> {
    let credentials = credentials(state, name, password, &[Mechanism::Sha1, Mechanism::Sha256])?;
    let user = User {
        db: "admin".to_owned(),
        name: name.to_owned(),
        credentials,
        roles: vec![("root".to_owned(), "admin".to_owned())],
        custom_data: None,
        user_id: None,
    };
    create(state, &user)
}

/// The user `name` of `db`.
///
/// # Errors
/// Storage errors.
pub fn find(storage: &Storage, db: &str, name: &str) -> Result<Option<User>> {
    Ok(super::get(storage, COLLECTION, &format!("{db}.{name}"))?.and_then(|d| User::from_document(&d)))
}

/// Every user of `db` (`None`: of every database), ordered by database then name.
///
/// # Errors
/// Storage errors.
pub fn list(storage: &Storage, db: Option<&str>) -> Result<Vec<User>> {
    let mut out: Vec<User> = super::scan(storage, COLLECTION)?
        .iter()
        .filter_map(User::from_document)
        .filter(|user| db.is_none_or(|db| user.db == db))
        .collect();
    out.sort_by(|a, b| (&a.db, &a.name).cmp(&(&b.db, &b.name)));
    Ok(out)
}

/// Replaces the stored `user` (same database and name), keeping its id.
///
/// # Errors
/// 11 UserNotFound when it does not exist; storage errors.
pub fn update(state: &State, user: &User) -> Result<()> {
    let Some(existing) = find(&state.storage, &user.db, &user.name)? else {
        return Err(Error::new(ErrorCode::UserNotFound, format!("User {}@{} not found", user.name, user.db)));
    };
    let mut user = user.clone();
    user.user_id = existing.user_id;
    super::put(state, COLLECTION, &user.to_document())
}

/// Adds `user`.
///
/// # Errors
/// 51003 when the user exists; storage errors.
pub fn create(state: &State, user: &User) -> Result<()> {
    if find(&state.storage, &user.db, &user.name)?.is_some() {
        return Err(Error::new(ErrorCode::Location51003, format!("User \"{}@{}\" already exists", user.name, user.db)));
    }
    super::put(state, COLLECTION, &user.to_document())
}

/// Removes the user `name` of `db`; returns whether there was one.
///
/// # Errors
/// Storage errors.
pub fn remove(state: &State, db: &str, name: &str) -> Result<bool> {
    super::delete(state, COLLECTION, &format!("{db}.{name}"))
}
