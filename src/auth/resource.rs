//! Resources and the patterns that privileges name, as mongod's `ResourcePattern`: the cluster,
//! any resource, a database's normal collections, a collection name in any database, one exact
//! namespace, or every normal resource.

use bson::{Document, RawDocument, doc};

/// What a privilege applies to, as a privilege document's `resource` field writes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ResourcePattern {
    /// `{cluster: true}`: server-wide operations.
    Cluster,
    /// `{anyResource: true}`: everything, system collections included.
    AnyResource,
    /// `{db: "", collection: ""}`: every normal collection of every database but `local` and
    /// `config`.
    AnyNormal,
    /// `{db: D, collection: ""}`: database `D` and its normal collections.
    Database(String),
    /// `{db: "", collection: C}`: collections named `C` in every database.
    CollectionName(String),
    /// `{db: D, collection: C}`: one namespace.
    Namespace(String, String),
}

/// What a command acts on: the target a privilege's pattern must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// The cluster.
    Cluster,
    /// A database as a whole (`listCollections`, `dropDatabase`, user management).
    Database(&'a str),
    /// A namespace `(db, collection)`.
    Namespace(&'a str, &'a str),
    /// Every normal resource at once: only privileges on every resource or every normal one
    /// cover it (what setting a user's whole role list takes).
    AnyNormal,
}

/// Whether `db.coll` is a normal collection: what database-wide and any-normal patterns cover.
/// mongod's `system.*` collections (and the replica set's in `local`) are not.
pub fn is_normal_collection(db: &str, coll: &str) -> bool {
    !(coll.starts_with("system.") || (db == "local" && coll.starts_with("replset.")))
}

/// `local` and `config`: what the any-normal pattern leaves out (roles name them explicitly).
fn is_internal_database(db: &str) -> bool {
    db == "local" || db == "config"
}

impl ResourcePattern {
    /// Whether a privilege on this pattern covers `target`.
    pub fn matches(&self, target: Target<'_>) -> bool {
        match (self, target) {
            (Self::AnyResource, _) => true,
            (Self::Cluster, Target::Cluster) | (Self::AnyNormal, Target::AnyNormal) => true,
            (Self::AnyNormal, Target::Database(db)) => !is_internal_database(db),
            (Self::AnyNormal, Target::Namespace(db, coll)) => {
                !is_internal_database(db) && is_normal_collection(db, coll)
            }
            (Self::Database(d), Target::Database(db)) => d == db,
            (Self::Database(d), Target::Namespace(db, coll)) => d == db && is_normal_collection(db, coll),
            (Self::CollectionName(c), Target::Namespace(_, coll)) => c == coll,
            (Self::Namespace(d, c), Target::Namespace(db, coll)) => d == db && c == coll,
            _ => false,
        }
    }

    /// The database this pattern is confined to, if one (`None` for the cluster and the
    /// patterns that span databases).
    pub fn database(&self) -> Option<&str> {
        match self {
            Self::Database(db) | Self::Namespace(db, _) => Some(db),
            _ => None,
        }
    }

    /// Whether the pattern names something in database `db` or spans databases (what
    /// `authorizedDatabases` and `authorizedCollections` count as a privilege there).
    pub fn touches_database(&self, db: &str) -> bool {
        match self {
            Self::Cluster => false,
            Self::Database(d) | Self::Namespace(d, _) => d == db,
            Self::AnyNormal => !is_internal_database(db),
            Self::AnyResource | Self::CollectionName(_) => true,
        }
    }

    /// The privilege document's `resource` field.
    pub fn to_document(&self) -> Document {
        match self {
            Self::Cluster => doc! { "cluster": true },
            Self::AnyResource => doc! { "anyResource": true },
            Self::AnyNormal => doc! { "db": "", "collection": "" },
            Self::Database(db) => doc! { "db": db, "collection": "" },
            Self::CollectionName(coll) => doc! { "db": "", "collection": coll },
            Self::Namespace(db, coll) => doc! { "db": db, "collection": coll },
        }
    }

    /// Reads a `resource` document; the error is mongod's message for a malformed one.
    ///
    /// # Errors
    /// The reason the document names no resource.
    pub fn from_document(resource: &RawDocument) -> Result<Self, String> {
        let mut db = None;
        let mut coll = None;
        let mut flag = None;
        for field in resource {
            let (key, value) = field.map_err(|e| e.to_string())?;
            let key = key.as_str();
            match key {
                "db" => db = Some(value.as_str().ok_or("resource 'db' must be a string")?),
                "collection" => coll = Some(value.as_str().ok_or("resource 'collection' must be a string")?),
                "cluster" | "anyResource" => {
                    if value.as_bool() != Some(true) {
                        return Err(format!("resource '{key}' must be true"));
                    }
                    flag = Some(key);
                }
                _ => return Err(format!("Unrecognized field in resource: '{key}'")),
            }
        }
        match (flag, db, coll) {
            (Some("cluster"), None, None) => Ok(Self::Cluster),
            (Some(_), None, None) => Ok(Self::AnyResource),
            (None, Some(""), Some("")) => Ok(Self::AnyNormal),
            (None, Some(db), Some("")) => Ok(Self::Database(db.to_owned())),
            (None, Some(""), Some(coll)) => Ok(Self::CollectionName(coll.to_owned())),
            (None, Some(db), Some(coll)) => Ok(Self::Namespace(db.to_owned(), coll.to_owned())),
            _ => {
                Err("resource must have exactly one of 'cluster', 'anyResource', or both 'db' and 'collection'"
                    .to_owned())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_patterns_cover_only_normal_collections() {
        let db = ResourcePattern::Database("shop".into());
        assert!(db.matches(Target::Namespace("shop", "orders")));
        assert!(db.matches(Target::Database("shop")));
        assert!(!db.matches(Target::Namespace("shop", "system.profile")));
        assert!(!db.matches(Target::Namespace("other", "orders")));
        assert!(!db.matches(Target::Cluster));
        let exact = ResourcePattern::Namespace("shop".into(), "system.profile".into());
        assert!(exact.matches(Target::Namespace("shop", "system.profile")));
        assert!(ResourcePattern::CollectionName("system.js".into()).matches(Target::Namespace("x", "system.js")));
        assert!(!ResourcePattern::AnyNormal.matches(Target::Namespace("local", "replset.election")));
        assert!(!ResourcePattern::AnyNormal.matches(Target::Namespace("config", "settings")));
        assert!(ResourcePattern::Database("local".into()).matches(Target::Namespace("local", "startup_log")));
        assert!(!ResourcePattern::AnyNormal.matches(Target::Cluster));
        assert!(ResourcePattern::AnyResource.matches(Target::Namespace("admin", "system.users")));
    }

    #[test]
    fn resource_documents_round_trip() {
        for pattern in [
            ResourcePattern::Cluster,
            ResourcePattern::AnyResource,
            ResourcePattern::AnyNormal,
            ResourcePattern::Database("a".into()),
            ResourcePattern::CollectionName("c".into()),
            ResourcePattern::Namespace("a".into(), "c".into()),
        ] {
            let raw = bson::RawDocumentBuf::try_from(&pattern.to_document()).unwrap_or_default();
            assert_eq!(ResourcePattern::from_document(&raw), Ok(pattern));
        }
        let raw = bson::rawdoc! { "db": "a" };
        assert!(ResourcePattern::from_document(&raw).is_err());
        let raw = bson::rawdoc! { "cluster": true, "db": "a", "collection": "" };
        assert!(ResourcePattern::from_document(&raw).is_err());
    }
}
