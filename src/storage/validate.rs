//! `validate`: checks that a collection's documents are readable and stored under their own
//! `_id`, that its stored totals match them, and that every index holds exactly the entries
//! its documents give it.

use std::collections::BTreeMap;

use bson::RawDocument;

use super::engine::Space;
use super::index::ID_INDEX_ID;
use super::{Collection, Storage, document_key};
use crate::error::Result;
use crate::query::limits;

/// What `validate` found in one collection.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ValidateReport {
    /// Documents read.
    pub records: u64,
    /// Documents that are not valid BSON or sit under another `_id`'s key.
    pub invalid_documents: u64,
    /// Entries per index name (`_id_` counts the documents).
    pub keys_per_index: Vec<(String, u64)>,
    /// Per index name: whether its entries match the documents.
    pub index_valid: Vec<(String, bool)>,
    /// Index entries no document accounts for (index name, hex key).
    pub extra_entries: Vec<(String, String)>,
    /// Entries a document needs that the index lacks (index name, hex key).
    pub missing_entries: Vec<(String, String)>,
    /// Problems, in mongod's words where it has them.
    pub errors: Vec<String>,
    /// Non-fatal findings.
    pub warnings: Vec<String>,
}

impl ValidateReport {
    /// Whether nothing is wrong.
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// How many extra or missing entries a report lists (mongod also caps these lists).
const MAX_LISTED_ENTRIES: usize = 100;

impl Storage {
    /// Validates `collection` (reads every document and every index entry).
    ///
    /// # Errors
    /// Storage errors while reading.
    pub fn validate_collection(&self, collection: &Collection) -> Result<ValidateReport> {
        let _writers = collection.lock_for_ddl(&self.engine)?;
        let indexes = collection.indexes();
        let secondary: Vec<_> = indexes.iter().filter(|i| i.id != ID_INDEX_ID).cloned().collect();
        let mut expected: Vec<BTreeMap<Vec<u8>, Vec<u8>>> = vec![BTreeMap::new(); secondary.len()];
        let mut report = ValidateReport::default();
        let prefix_len = collection.prefix().len();
        for guard in self.engine.prefix(Space::Docs, collection.prefix()) {
            let (key, value) = guard.into_inner()?;
            report.records += 1;
            let doc = match stored_document(collection, &key, &value) {
                Ok(doc) => doc,
                Err(_) => {
                    report.invalid_documents += 1;
                    continue;
                }
            };
            let record = key.get(prefix_len..).unwrap_or_default();
            for (index, entries) in secondary.iter().zip(expected.iter_mut()) {
                match index.entries(doc, record) {
                    Ok((doc_entries, _)) => entries.extend(doc_entries),
                    Err(error) => report.errors.push(format!("index {} cannot index a document: {error}", index.name)),
                }
            }
            // Older versions stored documents nested deeper than mongod allows: none of them
            // can be updated, and past the depth reads allow they cannot be returned.
            if limits::raw_depth_exceeds(doc, limits::MAX_STORAGE_DEPTH) {
                let id = doc.get("_id").ok().flatten().map(|id| render_id(id)).unwrap_or_default();
                if limits::raw_depth_exceeds(doc, limits::MAX_READ_DEPTH + 1) {
                    report.invalid_documents += 1;
                    report.errors.push(format!(
                        "Document with {id} exceeds the maximum nested object depth of {}; delete it by _id",
                        limits::MAX_READ_DEPTH
                    ));
                } else {
                    report.warnings.push(format!(
                        "Document with {id} nests deeper than the {} levels a document may be stored with",
                        limits::MAX_STORAGE_DEPTH
                    ));
                }
            }
        }
        if report.invalid_documents > 0 {
            report.errors.push(format!("Detected {} invalid documents.", report.invalid_documents));
        }
        report.keys_per_index.push(("_id_".into(), report.records));
        report.index_valid.push(("_id_".into(), report.invalid_documents == 0));
        for (index, mut wanted) in secondary.iter().zip(expected) {
            let mut stored = 0u64;
            let mut valid = true;
            for guard in self.engine.prefix(Space::Index, index.prefix()) {
                let key = guard.key()?;
                stored += 1;
                if wanted.remove(key.as_ref()).is_none() {
                    valid = false;
                    if report.extra_entries.len() < MAX_LISTED_ENTRIES {
                        report.extra_entries.push((index.name.clone(), hex::encode(&key)));
                    }
                }
            }
            for key in wanted.keys() {
                valid = false;
                if report.missing_entries.len() < MAX_LISTED_ENTRIES {
                    report.missing_entries.push((index.name.clone(), hex::encode(key)));
                }
            }
            if !valid {
                report.errors.push(format!("Index {} is inconsistent with the collection's documents", index.name));
            }
            report.keys_per_index.push((index.name.clone(), stored));
            report.index_valid.push((index.name.clone(), valid));
        }
        let (_, count) = self.collection_size(collection)?;
        if count != report.records {
            report.warnings.push(format!(
                "The collection's stored count {count} differs from the {} documents found",
                report.records
            ));
        }
        Ok(report)
    }
}

/// The document stored under `key` with bytes `value` in `collection`, or why it is not a
/// valid one: bytes that are not BSON, an `_id` missing, or a key that is not its `_id`'s.
/// `validate` counts these as invalid documents and `--repair` removes them.
///
/// # Errors
/// What is wrong, in words.
pub(super) fn stored_document<'a>(
    collection: &Collection,
    key: &[u8],
    value: &'a [u8],
) -> std::result::Result<&'a RawDocument, &'static str> {
    let doc = RawDocument::from_bytes(value).map_err(|_| "not a BSON document")?;
    if doc.iter().any(|e| e.is_err()) {
        return Err("not a BSON document");
    }
    let Ok(Some(id)) = doc.get("_id") else { return Err("no _id") };
    // Clustered by `_id`, a document's key is its `_id`; keyed by record id (capped), the
    // `_id_` index's entries are checked as any index's.
    if !collection.record_keyed() && document_key(collection, id) != key {
        return Err("stored under another _id's key");
    }
    Ok(doc)
}

/// `_id: <value>` as mongod prints it in validate messages.
pub(super) fn render_id(id: bson::RawBsonRef<'_>) -> String {
    match limits::to_bson(id) {
        Ok(value) => format!("_id: {value}"),
        Err(_) => "an _id nested too deep to print".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use bson::{doc, rawdoc};

    use super::*;
    use crate::storage::Namespace;

    #[test]
    fn validate_finds_missing_and_extra_index_entries() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let storage = Storage::open(dir.path())?;
        let ns = Namespace::new("db", "v")?;
        let collection = storage.collection_or_create(&ns)?;
        let mut writer = storage.writer(&collection)?;
        for i in 0..10 {
            writer.insert(rawdoc! { "_id": i, "a": i % 3 })?;
        }
        writer.commit()?;
        storage.create_indexes(&ns, vec![doc! { "v": 2, "key": { "a": 1 }, "name": "a_1" }])?;
        let report = storage.validate_collection(&collection)?;
        assert!(report.is_valid(), "{report:?}");
        assert_eq!(report.keys_per_index, vec![("_id_".to_owned(), 10), ("a_1".to_owned(), 10)]);

        // Lose one entry and plant a stray one: both are reported.
        let index = collection.index("a_1").ok_or("a_1")?;
        let first = storage.engine.prefix(Space::Index, index.prefix()).next().ok_or("entry")?.key()?;
        storage.engine.remove(Space::Index, first.clone())?;
        let mut stray = first.to_vec();
        stray.push(0);
        storage.engine.insert(Space::Index, stray, [])?;
        let report = storage.validate_collection(&collection)?;
        assert!(!report.is_valid());
        assert_eq!(report.missing_entries.len(), 1);
        assert_eq!(report.extra_entries.len(), 1);
        assert_eq!(report.index_valid[1], ("a_1".to_owned(), false));
        Ok(())
    }
}
