//! Clustered collections: `create`'s `clusteredIndex` and `expireAfterSeconds`, the
//! `clustered` option of `createIndexes`, and `collMod`'s `expireAfterSeconds`, checked in
//! mongod's order with its errors.
//!
//! Every collection here is stored clustered by `_id` (see `storage/`), so a clustered
//! collection differs only in what it reports (`listCollections` shows its `clusteredIndex`
//! and no `idIndex`; `listIndexes` its `_id` index with its name and `clustered: true`), in
//! that its `_id` index cannot be dropped (5979800), and in its TTL by `_id`.

use bson::{Bson, Document, RawBsonRef, RawDocument, doc};

use super::CommandRequest;
use crate::error::{Error, ErrorCode, Result};

/// The largest `expireAfterSeconds` of a clustered collection: mongod's bound, now in seconds
/// since the epoch (a larger one would expire every date).
fn max_expire_after_seconds() -> i64 {
    bson::DateTime::now().timestamp_millis() / 1000
}

/// `create`'s `clusteredIndex` and `expireAfterSeconds`, checked: the `clusteredIndex` to
/// store (mongod's canonical `{v, key, name, unique}`) and the `expireAfterSeconds` (a long),
/// or `None` for a collection that is not clustered.
///
/// # Errors
/// mongod's, in its order: the IDL's (14, 40414, 40415, 5979702), the command's (6127800,
/// 6049200, 6049204, 6049201), the view's (6026500), then the options' (5979703, 6026501,
/// 5979700, 197, 72 for `expireAfterSeconds`, 5979704).
pub fn parse_create(req: &CommandRequest, test_commands: bool) -> Result<Option<(Document, Option<i64>)>> {
    let Some(value) = req.get("clusteredIndex") else { return Ok(None) };
    let expire_after_seconds =
        match req.get("expireAfterSeconds") {
            None => None,
            Some(value) => Some(safe_int64(value).ok_or_else(|| {
                wrong_type("create.expireAfterSeconds", value, "'[long, int, decimal, double]'", true)
            })?),
        };
    let spec = match value {
        RawBsonRef::Boolean(false) => return Ok(None),
        RawBsonRef::Boolean(true) => None,
        RawBsonRef::Document(spec) => Some(ClusteredSpec::parse(spec)?),
        _ => {
            return Err(Error::new(ErrorCode::Location5979702, "'clusteredIndex' has to be a boolean or object."));
        }
    };
    let present = |field: &str| req.get(field).is_some_and(|v| !matches!(v, RawBsonRef::Null));
    let capped = matches!(req.get("capped"), Some(RawBsonRef::Boolean(true)));
    if capped && !test_commands {
        return Err(Error::new(
            ErrorCode::Location6127800,
            "Clustered capped collection only available with 'enableTestCommands' server parameter",
        ));
    }
    for (field, code) in [("size", ErrorCode::Location6049200), ("max", ErrorCode::Location6049204)] {
        if present(field) {
            return Err(Error::new(
                code,
                format!(
                    "'{field}' field for capped collections is not allowed on clustered collections. Did you mean \
                     'capped: true' with 'expireAfterSeconds'?"
                ),
            ));
        }
    }
    if capped && expire_after_seconds.is_none() {
        return Err(Error::new(
            ErrorCode::Location6049201,
            "A capped clustered collection requires the 'expireAfterSeconds' field",
        ));
    }
    if capped {
        // mongod's test-only capped clustered collections (TTL-bounded) are not built.
        return Err(Error::new(
            ErrorCode::Location6127800,
            "Clustered capped collection only available with 'enableTestCommands' server parameter",
        ));
    }
    if present("viewOn") || present("pipeline") {
        return Err(Error::new(ErrorCode::Location6026500, "The 'clusteredIndex' option is not supported with views"));
    }
    let Some(spec) = spec else {
        return Err(Error::new(
            ErrorCode::Location5979703,
            "The 'clusteredIndex' legacy format {clusteredIndex: <bool>} is only supported for specific internal \
             collections and vice versa",
        ));
    };
    if matches!(req.get("autoIndexId"), Some(RawBsonRef::Boolean(false))) {
        return Err(Error::new(
            ErrorCode::Location6026501,
            "The 'clusteredIndex' option does not support {autoIndexId: false}",
        ));
    }
    spec.validate(expire_after_seconds)?;
    Ok(Some((spec.canonical(), expire_after_seconds)))
}

/// A `clusteredIndex` as given: mongod's `ClusteredIndexSpec`.
struct ClusteredSpec {
    version: Option<i64>,
    key: Document,
    name: Option<String>,
    unique: bool,
}

impl ClusteredSpec {
    /// Parses the fields as mongod's IDL does.
    fn parse(spec: &RawDocument) -> Result<Self> {
        let (mut version, mut key, mut name, mut unique) = (None, None, None, None);
        for element in spec {
            let (field, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
            let path = format!("create.clusteredIndex.{field}");
            match field.as_str() {
                "v" => {
                    version = Some(
                        safe_int64(value)
                            .ok_or_else(|| wrong_type(&path, value, "'[long, int, decimal, double]'", true))?,
                    );
                }
                "key" => match value {
                    RawBsonRef::Document(pattern) => {
                        key = Some(
                            Document::try_from(pattern)
                                .map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?,
                        );
                    }
                    other => return Err(wrong_type(&path, other, "'object'", false)),
                },
                "name" => match value {
                    RawBsonRef::String(given) => name = Some(given.to_owned()),
                    other => return Err(wrong_type(&path, other, "'string'", false)),
                },
                "unique" => match value {
                    RawBsonRef::Boolean(given) => unique = Some(given),
                    other => return Err(wrong_type(&path, other, "'bool'", false)),
                },
                _ => {
                    return Err(Error::new(
                        ErrorCode::Location40415,
                        format!("BSON field '{path}' is an unknown field."),
                    ));
                }
            }
        }
        let missing = |field: &str| {
            Error::new(
                ErrorCode::Location40414,
                format!("BSON field 'create.clusteredIndex.{field}' is missing but a required field"),
            )
        };
        Ok(Self {
            version,
            key: key.ok_or_else(|| missing("key"))?,
            name,
            unique: unique.ok_or_else(|| missing("unique"))?,
        })
    }

    /// mongod's `validateClusteredIndexSpec`: `unique: true`, the key `{_id: 1}`, an
    /// `expireAfterSeconds` in range, version 2.
    fn validate(&self, expire_after_seconds: Option<i64>) -> Result<()> {
        if !self.unique {
            return Err(Error::new(
                ErrorCode::Location5979700,
                "The clusteredIndex option requires unique: true to be specified",
            ));
        }
        let on_id = self.key.len() == 1
            && self.key.get("_id").is_some_and(|direction| match direction {
                Bson::Int32(n) => *n == 1,
                Bson::Int64(n) => *n == 1,
                Bson::Double(n) => *n == 1.0,
                _ => false,
            });
        if !on_id {
            return Err(Error::new(
                ErrorCode::InvalidIndexSpecificationOption,
                "The clusteredIndex option is only supported for key: {_id: 1}",
            ));
        }
        if let Some(seconds) = expire_after_seconds {
            check_expire_after_seconds(seconds)?;
        }
        let version = self.version.unwrap_or(2);
        if version != 2 {
            let mut shown = doc! { "v": Bson::Int64(version), "key": self.key.clone() };
            if let Some(name) = &self.name {
                shown.insert("name", name);
            }
            shown.insert("unique", self.unique);
            return Err(Error::new(
                ErrorCode::Location5979704,
                format!(
                    "Invalid clusteredIndex specification {shown}; cannot create a clusteredIndex with v={version}"
                ),
            ));
        }
        Ok(())
    }

    /// What `listCollections` shows and the catalog keeps: `{v: 2, key: {_id: 1}, name,
    /// unique: true}`, the name `_id_` unless given.
    fn canonical(&self) -> Document {
        doc! {
            "v": 2,
            "key": { "_id": 1 },
            "name": self.name.clone().unwrap_or_else(|| "_id_".to_owned()),
            "unique": true,
        }
    }
}

/// mongod's bounds on a clustered collection's `expireAfterSeconds`: not negative, not past
/// now in seconds since the epoch.
///
/// # Errors
/// 72 InvalidOptions.
pub(super) fn check_expire_after_seconds(seconds: i64) -> Result<()> {
    if seconds < 0 {
        return Err(Error::new(
            ErrorCode::InvalidOptions,
            "TTL index 'expireAfterSeconds' option cannot be less than 0",
        ));
    }
    if seconds > max_expire_after_seconds() {
        return Err(Error::new(
            ErrorCode::InvalidOptions,
            "TTL index 'expireAfterSeconds' option must be within an acceptable range, try a lower number",
        ));
    }
    Ok(())
}

/// `collMod`'s `expireAfterSeconds` on `options` (a collection's): a number of seconds or
/// `"off"`; returns the options to store.
///
/// # Errors
/// 14 TypeMismatch for another type; 72 InvalidOptions on a collection that is not clustered,
/// for another string, or out of range.
pub fn modify_expiry(options: &Document, value: RawBsonRef<'_>) -> Result<Document> {
    let seconds = match value {
        RawBsonRef::String(text) => Err(text),
        other => Ok(safe_int64(other).ok_or_else(|| {
            wrong_type("collMod.expireAfterSeconds", other, "'[string, long, int, decimal, double]'", true)
        })?),
    };
    if !options.contains_key("clusteredIndex") {
        return Err(Error::new(
            ErrorCode::InvalidOptions,
            "'expireAfterSeconds' option is only supported on collections clustered by _id",
        ));
    }
    let mut options = options.clone();
    match seconds {
        Err("off") => {
            options.remove("expireAfterSeconds");
        }
        Err(other) => {
            return Err(Error::new(
                ErrorCode::InvalidOptions,
                format!(
                    "Invalid string value for the 'clusteredIndex::expireAfterSeconds' option. Got: '{other}'. \
                     Accepted value is 'off'"
                ),
            ));
        }
        Ok(seconds) => {
            check_expire_after_seconds(seconds)?;
            options.insert("expireAfterSeconds", Bson::Int64(seconds));
        }
    }
    Ok(options)
}

/// How an index specification of `createIndexes` meets the collection's clustered index.
#[derive(Debug, PartialEq, Eq)]
pub enum AgainstCluster {
    /// An index of its own: build it.
    Separate,
    /// The clustered index itself: it exists already (mongod's IndexAlreadyExists, a no-op).
    IsTheClusteredIndex,
}

/// mongod's check of an index specification (`stored`, validated) against the clustered
/// index `clustered` (`None`: the collection is not clustered).
///
/// # Errors
/// 6243700 for `clustered` on another key (or any key of a collection that is not
/// clustered); 6100906 for the clustered index's name on another key; 6100908 and 6100909
/// for its key with another `v` or `unique: false`.
pub fn check_index(stored: &Document, clustered: Option<&Document>) -> Result<AgainstCluster> {
    let key = stored.get_document("key").cloned().unwrap_or_default();
    let cluster_field = clustered.and_then(|c| c.get_document("key").ok()).and_then(|k| k.keys().next());
    // mongod compares first fields only: `{_id: -1}` is the cluster key too.
    let keys_match = cluster_field.is_some_and(|field| key.keys().next() == Some(field));
    if wants_clustered(stored) && !keys_match {
        return Err(Error::new(
            ErrorCode::Location6243700,
            "Cannot create index with option 'clustered' that does not match an existing clustered index",
        ));
    }
    let Some(clustered) = clustered else { return Ok(AgainstCluster::Separate) };
    let names_match = clustered.get_str("name").ok() == stored.get_str("name").ok();
    if !keys_match && !names_match {
        return Ok(AgainstCluster::Separate);
    }
    if !keys_match {
        return Err(Error::new(
            ErrorCode::Location6100906,
            format!(
                "Cannot create an index where the name matches the clusteredIndex but the key does not - indexSpec: \
                 {stored}, clusteredIndex: {clustered}"
            ),
        ));
    }
    // The validated spec's `v` (1 or 2).
    if stored.get_i32("v").is_ok_and(|v| v != 2) {
        return Err(Error::new(
            ErrorCode::Location6100908,
            "Cannot create an index with the same key pattern as the collection's clusteredIndex but a different 'v' \
             field",
        ));
    }
    if stored.get("unique").is_some_and(|unique| !truthy(unique)) {
        return Err(Error::new(
            ErrorCode::Location6100909,
            "Cannot create an index with the same key pattern as the collection's clusteredIndex but a different \
             'unique' field",
        ));
    }
    Ok(AgainstCluster::IsTheClusteredIndex)
}

/// Whether a specification asks for the clustered index (`clustered`, read as mongod's
/// `trueValue`).
pub fn wants_clustered(stored: &Document) -> bool {
    stored.get("clustered").is_some_and(truthy)
}

/// mongod's `validateIndexSpec` checks of `clustered`: never false, and with `unique`.
///
/// # Errors
/// 6492800 for a false `clustered`; 67 CannotCreateIndex without `unique`.
pub fn check_clustered_option(spec: &Document) -> Result<()> {
    let Some(clustered) = spec.get("clustered") else { return Ok(()) };
    if !truthy(clustered) {
        return Err(Error::new(ErrorCode::Location6492800, "Value 'false' for field 'clustered' is invalid"));
    }
    if !spec.get("unique").is_some_and(truthy) {
        return Err(Error::new(
            ErrorCode::CannotCreateIndex,
            "The 'unique' field is required when 'clustered' is specified",
        ));
    }
    Ok(())
}

/// mongod's `trueValue`: numbers other than 0 and `true`; other types are true too, but for
/// null and undefined.
fn truthy(value: &Bson) -> bool {
    match value {
        Bson::Boolean(b) => *b,
        Bson::Int32(n) => *n != 0,
        Bson::Int64(n) => *n != 0,
        Bson::Double(n) => *n != 0.0,
        Bson::Null | Bson::Undefined => false,
        _ => true,
    }
}

/// mongod's IDL `safeInt64`: an integer, or a double or decimal with an integral value.
pub(super) fn safe_int64(value: RawBsonRef<'_>) -> Option<i64> {
    match value {
        RawBsonRef::Int32(n) => Some(i64::from(n)),
        RawBsonRef::Int64(n) => Some(n),
        RawBsonRef::Double(n) if n.fract() == 0.0 && n.abs() < 9.2e18 => Some(n as i64),
        RawBsonRef::Decimal128(d) => d.to_string().parse::<f64>().ok().filter(|n| n.fract() == 0.0).map(|n| n as i64),
        _ => None,
    }
}

/// mongod's IDL error for a field of the wrong type (`expected` already quoted; `several`:
/// worded for a list of types).
pub(super) fn wrong_type(path: &str, value: RawBsonRef<'_>, expected: &str, several: bool) -> Error {
    let types = if several { "types" } else { "type" };
    Error::new(
        ErrorCode::TypeMismatch,
        format!(
            "BSON field '{path}' is the wrong type '{}', expected {types} {expected}",
            crate::query::type_name(value.element_type())
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(raw: bson::RawDocumentBuf) -> Result<Document> {
        let parsed = ClusteredSpec::parse(&raw)?;
        parsed.validate(None)?;
        Ok(parsed.canonical())
    }

    #[test]
    fn clustered_spec_is_canonical_and_checked_in_mongods_order() {
        let named = spec(bson::rawdoc! { "key": { "_id": 1 }, "unique": true, "name": "by id" });
        assert_eq!(named.ok(), Some(doc! { "v": 2, "key": { "_id": 1 }, "name": "by id", "unique": true }));
        let code = |raw| spec(raw).err().map(|e| e.code().code());
        assert_eq!(code(bson::rawdoc! { "key": { "_id": 1 } }), Some(40414));
        assert_eq!(code(bson::rawdoc! { "key": { "a": 1 }, "unique": false }), Some(5979700));
        assert_eq!(code(bson::rawdoc! { "key": { "a": 1 }, "unique": true }), Some(197));
        assert_eq!(code(bson::rawdoc! { "key": { "_id": -1 }, "unique": true }), Some(197));
        assert_eq!(code(bson::rawdoc! { "key": { "_id": 1 }, "unique": true, "v": 1 }), Some(5979704));
        assert_eq!(code(bson::rawdoc! { "key": { "_id": 1 }, "unique": true, "x": 1 }), Some(40415));
        assert_eq!(code(bson::rawdoc! { "key": 1, "unique": true }), Some(14));
    }

    #[test]
    fn clustered_index_specs_of_create_indexes_meet_the_cluster_key() {
        let clustered = doc! { "v": 2, "key": { "_id": 1 }, "name": "c", "unique": true };
        let check = |stored: Document, on: Option<&Document>| check_index(&stored, on).map_err(|e| e.code().code());
        // On the cluster key (first field `_id`), under any name: the index exists already.
        for key in [doc! { "_id": 1 }, doc! { "_id": -1 }] {
            let same = check(doc! { "v": 2, "key": key, "name": "other" }, Some(&clustered));
            assert_eq!(same, Ok(AgainstCluster::IsTheClusteredIndex));
        }
        assert_eq!(
            check(doc! { "v": 2, "key": { "a": 1 }, "name": "a_1" }, Some(&clustered)),
            Ok(AgainstCluster::Separate)
        );
        assert_eq!(check(doc! { "v": 2, "key": { "a": 1 }, "name": "c" }, Some(&clustered)), Err(6100906));
        assert_eq!(check(doc! { "v": 1, "key": { "_id": 1 }, "name": "x" }, Some(&clustered)), Err(6100908));
        let not_unique = doc! { "v": 2, "key": { "_id": 1 }, "name": "x", "unique": false };
        assert_eq!(check(not_unique, Some(&clustered)), Err(6100909));
        let elsewhere = doc! { "v": 2, "key": { "a": 1 }, "name": "a", "clustered": true, "unique": true };
        assert_eq!(check(elsewhere, Some(&clustered)), Err(6243700));
        let unclustered = doc! { "v": 2, "key": { "_id": 1 }, "name": "i", "clustered": true, "unique": true };
        assert_eq!(check(unclustered, None), Err(6243700));
        assert_eq!(check(doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" }, None), Ok(AgainstCluster::Separate));
    }
}
