//! Database and collection names, validated with mongod's rules.

use crate::error::{Error, ErrorCode, Result};

/// Longest database name mongod accepts.
const MAX_DB_NAME: usize = 63;
/// Longest `db.collection` namespace mongod accepts.
const MAX_NAMESPACE: usize = 255;

/// A validated `database.collection` pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace {
    /// The database.
    pub db: String,
    /// The collection.
    pub coll: String,
}

impl Namespace {
    /// Validates `db` and `coll` for use by a client.
    ///
    /// # Errors
    /// 73 InvalidNamespace with mongod's message.
    pub fn new(db: &str, coll: &str) -> Result<Self> {
        validate_db_name(db)?;
        if coll.is_empty() {
            return Err(invalid(format!("Invalid namespace specified '{db}.'")));
        }
        if coll.contains('\0') || coll.starts_with('.') || coll.contains('$') {
            return Err(invalid(format!("Invalid collection name: {coll}")));
        }
        if db.len() + 1 + coll.len() > MAX_NAMESPACE {
            return Err(invalid(format!(
                "Fully qualified namespace is too long. Namespace: {db}.{coll} Max: {MAX_NAMESPACE}"
            )));
        }
        Ok(Self { db: db.to_owned(), coll: coll.to_owned() })
    }

    /// Parses `db.collection` (the collection part may contain dots).
    ///
    /// # Errors
    /// 73 InvalidNamespace.
    pub fn parse(full: &str) -> Result<Self> {
        let (db, coll) =
            full.split_once('.').ok_or_else(|| invalid(format!("Invalid namespace specified '{full}'")))?;
        Self::new(db, coll)
    }

    /// `db.collection`.
    pub fn full(&self) -> String {
        format!("{}.{}", self.db, self.coll)
    }

    /// The oplog, `local.oplog.rs`.
    pub fn oplog() -> Self {
        Self { db: "local".to_owned(), coll: "oplog.rs".to_owned() }
    }

    /// Whether this is the oplog.
    pub fn is_oplog(&self) -> bool {
        self.db == "local" && self.coll == "oplog.rs"
    }
}

impl std::fmt::Display for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.db, self.coll)
    }
}

/// Checks a database name as mongod does.
///
/// # Errors
/// 73 InvalidNamespace.
pub fn validate_db_name(db: &str) -> Result<()> {
    if db.is_empty() {
        return Err(invalid("Invalid empty database name".to_owned()));
    }
    if db.len() > MAX_DB_NAME {
        return Err(invalid(format!("db name is too long: {db}")));
    }
    if let Some(bad) =
        db.chars().find(|c| matches!(c, '/' | '\\' | '.' | ' ' | '"' | '$' | '*' | '<' | '>' | ':' | '|' | '?' | '\0'))
    {
        return Err(invalid(format!("Invalid database name: '{db}' (contains '{bad}')")));
    }
    Ok(())
}

fn invalid(message: String) -> Error {
    Error::new(ErrorCode::InvalidNamespace, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_rules_match_mongod() {
        assert!(Namespace::new("test", "coll.with.dots").is_ok());
        for (db, coll) in [("", "c"), ("a.b", "c"), ("a b", "c"), ("a$", "c"), ("db", ""), ("db", "a$b"), ("db", ".a")]
        {
            let err = Namespace::new(db, coll).err().map(|e| e.code());
            assert_eq!(err, Some(ErrorCode::InvalidNamespace), "{db}.{coll}");
        }
        assert!(Namespace::new(&"x".repeat(64), "c").is_err());
        assert!(Namespace::new("db", &"c".repeat(300)).is_err());
        assert_eq!(Namespace::parse("db.a.b").map(|n| n.coll).ok().as_deref(), Some("a.b"));
    }
}
