//! The custom-role catalog: one document per role in `admin.system.roles`, `_id`
//! `"<db>.<role>"`, with the privileges it grants and the roles it inherits.

use bson::{Bson, Document, RawDocumentBuf, doc};

use crate::auth::RoleName;
use crate::auth::privilege::{Privilege, PrivilegeSet};
use crate::error::{Error, ErrorCode, Result};
use crate::state::State;
use crate::storage::Storage;

/// Where custom roles live, in `admin`.
pub const COLLECTION: &str = "system.roles";

/// A custom role as the catalog holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// The database the role is defined in.
    pub db: String,
    /// The role name.
    pub name: String,
    /// The privileges it grants itself.
    pub privileges: PrivilegeSet,
    /// The roles it inherits.
    pub roles: Vec<RoleName>,
}

/// `[{role, db}]` as documents.
pub fn role_documents(roles: &[RoleName]) -> Vec<Bson> {
    roles.iter().map(|(role, db)| Bson::Document(doc! { "role": role, "db": db })).collect()
}

/// Reads `[{role, db}]`, skipping malformed entries.
pub fn role_names(list: &[Bson]) -> Vec<RoleName> {
    list.iter()
        .filter_map(|r| {
            let r = r.as_document()?;
            Some((r.get_str("role").ok()?.to_owned(), r.get_str("db").ok()?.to_owned()))
        })
        .collect()
}

impl Role {
    /// The catalog document.
    fn to_document(&self) -> Document {
        doc! {
            "_id": format!("{}.{}", self.db, self.name),
            "role": &self.name,
            "db": &self.db,
            "privileges": self.privileges.to_documents(),
            "roles": role_documents(&self.roles),
        }
    }

    fn from_document(document: &Document) -> Option<Self> {
        let mut privileges = PrivilegeSet::default();
        for privilege in document.get_array("privileges").ok()? {
            let raw = RawDocumentBuf::try_from(privilege.as_document()?).ok()?;
            privileges.add(Privilege::from_document(&raw).ok()?);
        }
        Some(Self {
            db: document.get_str("db").ok()?.to_owned(),
            name: document.get_str("role").ok()?.to_owned(),
            privileges,
            roles: role_names(document.get_array("roles").ok()?),
        })
    }
}

/// The custom role `name` of `db`.
///
/// # Errors
/// Storage errors.
pub fn find(storage: &Storage, db: &str, name: &str) -> Result<Option<Role>> {
    Ok(super::get(storage, COLLECTION, &format!("{db}.{name}"))?.and_then(|d| Role::from_document(&d)))
}

/// Every custom role of `db` (`None`: of every database), ordered by database then name.
///
/// # Errors
/// Storage errors.
pub fn list(storage: &Storage, db: Option<&str>) -> Result<Vec<Role>> {
    let mut out: Vec<Role> = super::scan(storage, COLLECTION)?
        .iter()
        .filter_map(Role::from_document)
        .filter(|role| db.is_none_or(|db| role.db == db))
        .collect();
    out.sort_by(|a, b| (&a.db, &a.name).cmp(&(&b.db, &b.name)));
    Ok(out)
}

/// Adds `role`.
///
/// # Errors
/// 51002 when it exists; storage errors.
pub fn create(state: &State, role: &Role) -> Result<()> {
    if find(&state.storage, &role.db, &role.name)?.is_some() {
        return Err(Error::new(ErrorCode::Location51002, format!("Role \"{}@{}\" already exists", role.name, role.db)));
    }
    super::put(state, COLLECTION, &role.to_document())
}

/// Replaces the stored `role`.
///
/// # Errors
/// Storage errors.
pub fn update(state: &State, role: &Role) -> Result<()> {
    super::put(state, COLLECTION, &role.to_document())
}

/// Removes the role `name` of `db`; returns whether there was one.
///
/// # Errors
/// Storage errors.
pub fn remove(state: &State, db: &str, name: &str) -> Result<bool> {
    super::delete(state, COLLECTION, &format!("{db}.{name}"))
}
