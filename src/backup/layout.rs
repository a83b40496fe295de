//! mongodump's directory layout, which a backup keeps so that mongodump compatibility (issue
//! 19, point 7) reads and writes the same files: `<db>/<coll>.bson` holds the collection's
//! documents, concatenated BSON in storage order, and `<db>/<coll>.metadata.json` its
//! `options`, `indexes` (as `listIndexes` returns them), `uuid` (hex), `collectionName` and
//! `type`, as canonical Extended JSON.

use bson::{Bson, Document};

use crate::storage::Collection;

/// The data file of `db.coll`, relative to the backup directory.
pub fn data_path(db: &str, coll: &str) -> String {
    format!("{}/{}.bson", escape(db), escape(coll))
}

/// The metadata file of `db.coll`, relative to the backup directory.
pub fn metadata_path(db: &str, coll: &str) -> String {
    format!("{}/{}.metadata.json", escape(db), escape(coll))
}

/// `text` with every `%XX` decoded: a path component made by [`escape`] (or by mongodump,
/// which escapes the same way), or a URI component; `None` when an escape is malformed or what
/// is decoded is not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = tail.get(2..).unwrap_or_default();
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// A name made safe as one path component: `%`, `/`, `\` and a leading `.` are
/// percent-encoded (collection names may hold `/`; every other character is kept, so
/// ordinary names stay exactly as mongodump writes them).
fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (at, c) in name.char_indices() {
        match c {
            '%' | '/' | '\\' | '\0' => out.push_str(&format!("%{:02X}", c as u32)),
            '.' if at == 0 => out.push_str("%2E"),
            c => out.push(c),
        }
    }
    out
}

/// A collection's description as its `metadata.json` and the manifest both hold it:
/// canonical Extended JSON, so every BSON type (an `int` or a `long` in an option) comes back
/// exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataJson {
    /// Its UUID, 32 hex digits (mongodump's form).
    pub uuid: String,
    /// Its creation options.
    pub options: serde_json::Value,
    /// Its index specs, as `listIndexes` returns them.
    pub indexes: Vec<serde_json::Value>,
}

impl MetadataJson {
    /// The description of `collection`.
    pub fn of(collection: &Collection) -> Self {
        let json = |document: &Document| Bson::Document(document.clone()).into_canonical_extjson();
        Self {
            uuid: hex::encode(collection.uuid.bytes()),
            options: json(&collection.options),
            indexes: collection.indexes().iter().map(|index| json(&index.spec)).collect(),
        }
    }

    /// The bytes of the `metadata.json` of the collection named `collection_name`, of type
    /// `kind` (`collection` or `view`; mongodump's fields: `options`, `indexes`, `uuid`,
    /// `collectionName`, `type`).
    ///
    /// # Errors
    /// A serialization error (none is expected for JSON values).
    pub fn file_bytes(&self, collection_name: &str, kind: &str) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(&serde_json::json!({
            "options": self.options,
            "indexes": self.indexes,
            "uuid": self.uuid,
            "collectionName": collection_name,
            "type": kind,
        }))
    }

    /// How the `metadata.json` in `bytes` differs from this description and the collection
    /// name, or `None` when it says the same.
    pub fn difference(&self, collection_name: &str, bytes: &[u8]) -> Option<String> {
        let Ok(file) = serde_json::from_slice::<serde_json::Value>(bytes) else {
            return Some("it is not JSON".to_owned());
        };
        let indexes = serde_json::Value::Array(self.indexes.clone());
        let expected: [(&str, serde_json::Value); 4] = [
            ("options", self.options.clone()),
            ("indexes", indexes),
            ("uuid", self.uuid.clone().into()),
            ("collectionName", collection_name.into()),
        ];
        expected
            .into_iter()
            .find(|(field, value)| file.get(field) != Some(value))
            .map(|(field, _)| format!("its `{field}` is not the manifest's"))
    }
}

/// A collection's creation options and index specs, read back from its metadata file.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// The options to create it with.
    pub options: Document,
    /// Its index specs, as `listIndexes` returned them.
    pub indexes: Vec<Document>,
    /// `collection` or `view` (mongodump's `type`; `collection` when absent).
    pub kind: String,
}

/// Parses a metadata file's bytes.
///
/// # Errors
/// What does not parse, as a message.
pub fn parse_metadata(bytes: &[u8]) -> Result<Metadata, String> {
    let json: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let Ok(Bson::Document(document)) = Bson::try_from(json) else {
        return Err("not an Extended JSON document".to_owned());
    };
    let options = match document.get("options") {
        None => Document::new(),
        Some(Bson::Document(options)) => options.clone(),
        Some(_) => return Err("`options` is not a document".to_owned()),
    };
    let mut indexes = Vec::new();
    match document.get("indexes") {
        None => {}
        Some(Bson::Array(specs)) => {
            for spec in specs {
                let Bson::Document(spec) = spec else { return Err("an index spec is not a document".to_owned()) };
                indexes.push(spec.clone());
            }
        }
        Some(_) => return Err("`indexes` is not an array".to_owned()),
    }
    let kind = document.get_str("type").unwrap_or("collection").to_owned();
    Ok(Metadata { options, indexes, kind })
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    #[test]
    fn layout_names_are_mongodumps_with_unsafe_characters_escaped() {
        assert_eq!(data_path("app", "users"), "app/users.bson");
        assert_eq!(metadata_path("app", "system.users"), "app/system.users.metadata.json");
        assert_eq!(data_path("app", "a/b%c"), "app/a%2Fb%25c.bson");
        assert_eq!(data_path("app", ".hidden"), "app/%2Ehidden.bson");
        assert_eq!(percent_decode("a%2Fb%25c").as_deref(), Some("a/b%c"));
        assert_eq!(percent_decode("%2ehidden").as_deref(), Some(".hidden"));
        assert_eq!(percent_decode("%FF"), None);
        assert_eq!(percent_decode("50%"), None);
        assert_eq!(percent_decode("%zz"), None);
    }

    #[test]
    fn layout_metadata_round_trips_exact_types() -> Result<(), String> {
        let json = |document: Document| Bson::Document(document).into_canonical_extjson();
        let metadata = MetadataJson {
            uuid: "00".to_owned(),
            options: json(doc! { "capped": true, "size": 4096_i64, "max": 10 }),
            indexes: vec![json(doc! { "v": 2, "key": { "a": 1 }, "name": "a_1" })],
        };
        let bytes = metadata.file_bytes("c", "collection").map_err(|e| e.to_string())?;
        let parsed = parse_metadata(&bytes)?;
        assert_eq!(parsed.options, doc! { "capped": true, "size": 4096_i64, "max": 10 });
        assert_eq!(parsed.indexes, vec![doc! { "v": 2, "key": { "a": 1 }, "name": "a_1" }]);
        assert_eq!(metadata.difference("c", &bytes), None);
        assert_eq!(metadata.difference("d", &bytes).as_deref(), Some("its `collectionName` is not the manifest's"));
        let other =
            MetadataJson { options: json(doc! { "capped": true, "size": 4096, "max": 10 }), ..metadata.clone() };
        assert_eq!(other.difference("c", &bytes).as_deref(), Some("its `options` is not the manifest's"));
        Ok(())
    }
}
