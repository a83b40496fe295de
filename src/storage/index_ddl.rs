//! Creating, dropping and changing indexes. Each change holds the collection's write lock, so
//! no write slips between a build's scan and its commit, and commits the entries and the
//! catalog in one batch: a failed build leaves nothing behind.

use std::collections::BTreeMap;
use std::sync::Arc;

use bson::{Bson, Document, RawDocument, doc};

use super::engine::{Batch, Space};
use super::index::{Index, record_of};
use super::writer::duplicate_index_key;
use super::{Collection, NEXT_ID_KEY, Namespace, Storage, StorageError, catalog, meta_key};
use crate::error::{Error, ErrorCode, Result};

/// mongod's limit on a collection's indexes, `_id_` included.
pub const MAX_INDEXES: usize = 64;

/// Which indexes `dropIndexes` removes.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexSelector {
    /// `"*"`: every index but `_id_`.
    All,
    /// By names (one or a list).
    Names(Vec<String>),
    /// By key pattern.
    KeyPattern(Document),
}

/// What `createIndexes` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatedIndexes {
    /// Whether the collection was created by this call.
    pub created_collection: bool,
    /// Index count before and after.
    pub before: usize,
    /// Index count after.
    pub after: usize,
}

/// A collection's indexes with new ones added (see [`Storage::added_indexes`]).
pub(super) struct Added {
    /// Every index, the new ones last.
    pub(super) indexes: Vec<Arc<Index>>,
    /// The new ones.
    pub(super) built: Vec<Arc<Index>>,
}

/// An index change made by `collMod`: the option and its old and new values.
pub type IndexOptionChange = Vec<(&'static str, Bson, Bson)>;

impl Storage {
    /// Builds the indexes of `specs` (validated `{key, name, ...options}` documents) on `ns`,
    /// creating the collection if needed. Specs equal to an existing index are skipped.
    ///
    /// # Errors
    /// 85 IndexOptionsConflict, 86 IndexKeySpecsConflict, 11000 DuplicateKey when existing
    /// documents break a new unique index, key generation errors, storage errors.
    pub fn create_indexes(&self, ns: &Namespace, specs: Vec<Document>) -> Result<CreatedIndexes> {
        let _ddl = self.ddl_lock()?;
        // IMPORTANT: looked up under the DDL lock. A collection looked up before it may have
        // been dropped since, and committing its catalog entry would bring it back at the next
        // start, with whatever its background deletion had not removed yet.
        let existing = self.collection(ns);
        let created_collection = existing.is_none();
        let collection = match existing {
            Some(collection) => collection,
            None => self.create_locked(ns, Document::new())?,
        };
        let _writers = collection.lock_for_ddl(&self.engine)?;
        self.check_writable()?;
        let current = collection.indexes();
        let Added { indexes, built } = self.added_indexes(ns, &current, specs)?;
        for index in &built {
            // Not visible to any view until its entries are committed (just below).
            index.set_visible_from(u64::MAX);
        }
        let outcome = CreatedIndexes { created_collection, before: current.len(), after: indexes.len() };
        if built.is_empty() {
            return Ok(outcome);
        }
        let mut batch = self.engine.batch();
        for index in &built {
            let entries = self.build_entries(&collection, index)?;
            for (key, value) in entries {
                batch.insert(Space::Index, key, value);
            }
        }
        let updated = indexes.into();
        let previous = collection.indexes();
        collection.set_indexes(updated);
        // The catalog entry is written with the new indexes; restored if the commit fails.
        let entry = catalog::entry_value(&collection);
        batch.insert(Space::Meta, NEXT_ID_KEY, self.catalog.peek_next_id().to_be_bytes());
        let committed = entry.map_err(Error::from).and_then(|entry| {
            batch.insert(Space::Meta, catalog::entry_key(ns), entry);
            let mut entries = Vec::new();
            for index in &built {
                let mut logged = doc! { "createIndexes": &ns.coll };
                logged.extend(index.spec.clone());
                entries.extend(self.command_entry(ns, Some(collection.uuid), logged)?);
            }
            self.commit_durable(batch, &entries)
        });
        if let Err(error) = committed {
            collection.set_indexes(previous);
            return Err(error);
        }
        let committed_at = self.engine.visible_instant();
        for index in &built {
            index.set_visible_from(committed_at);
        }
        Ok(outcome)
    }

    /// `current` with the indexes of `specs` that do not exist yet (made, not yet filled),
    /// and those new ones.
    ///
    /// # Errors
    /// 85, 86 for a clash with an existing index; 67 past [`MAX_INDEXES`] or for a bad spec.
    pub(super) fn added_indexes(&self, ns: &Namespace, current: &[Arc<Index>], specs: Vec<Document>) -> Result<Added> {
        let mut indexes: Vec<Arc<Index>> = current.to_vec();
        let mut built = Vec::new();
        for spec in specs {
            if exists_already(&indexes, &spec)? {
                continue;
            }
            if indexes.len() >= MAX_INDEXES {
                let key = spec.get_document("key").map(ToString::to_string).unwrap_or_default();
                return Err(Error::new(
                    ErrorCode::CannotCreateIndex,
                    format!("add index fails, too many indexes for {ns} key:{key}"),
                ));
            }
            let index = Arc::new(Index::from_spec(self.catalog.next_id(), spec, false)?);
            indexes.push(index.clone());
            built.push(index);
        }
        Ok(Added { indexes, built })
    }

    /// Every entry `index` needs for the documents of `collection` now, checking uniqueness.
    pub(super) fn build_entries(&self, collection: &Collection, index: &Index) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
        let documents = self.engine.prefix(Space::Docs, collection.prefix()).map(|guard| guard.into_inner());
        index_entries(collection, index, documents)
    }
}

/// Every entry `index` needs for `documents` (stored keys and values) of `collection`, checking
/// uniqueness.
pub(super) fn index_entries<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    collection: &Collection,
    index: &Index,
    documents: impl Iterator<Item = std::result::Result<(K, V), StorageError>>,
) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
    let mut entries = BTreeMap::new();
    let prefix_len = collection.prefix().len();
    for stored in documents {
        let (key, value) = stored?;
        let doc = RawDocument::from_bytes(value.as_ref()).map_err(|e| super::corrupt_document(&e))?;
        let record = key.as_ref().get(prefix_len..).unwrap_or_default();
        let (doc_entries, multikey) = index.entries(doc, record)?;
        if multikey {
            index.mark_multikey();
        }
        entries.extend(doc_entries);
    }
    if index.unique {
        // Entries of one tuple are adjacent: any two with different records collide.
        let mut previous: Option<(&[u8], &[u8])> = None;
        for (key, value) in &entries {
            let record = record_of(key).unwrap_or_default();
            let tuple = key.get(..key.len().saturating_sub(record.len() + 2)).unwrap_or_default();
            if let Some((prev_tuple, prev_record)) = previous
                && prev_tuple == tuple
                && prev_record != record
            {
                return Err(duplicate_index_key(collection, index, value));
            }
            previous = Some((tuple, record));
        }
    }
    Ok(entries)
}

impl Storage {
    /// Drops the selected indexes of `ns` (their entries are deleted in the background);
    /// returns the index count before.
    ///
    /// # Errors
    /// 26 NamespaceNotFound, 27 IndexNotFound, 72 InvalidOptions for `_id_` (5979800 for a
    /// clustered collection's), storage errors.
    pub fn drop_indexes(self: &Arc<Self>, ns: &Namespace, selector: &IndexSelector) -> Result<usize> {
        // IMPORTANT: the lookup under the DDL lock, as in `create_indexes`.
        let _ddl = self.ddl_lock()?;
        let collection = self
            .collection(ns)
            .ok_or_else(|| Error::new(ErrorCode::NamespaceNotFound, format!("ns not found {ns}")))?;
        let _writers = collection.lock_for_ddl(&self.engine)?;
        self.check_writable()?;
        let current = collection.indexes();
        let cannot_drop_id = || {
            if collection.is_clustered() {
                Error::new(ErrorCode::Location5979800, "It is illegal to drop the clusteredIndex")
            } else {
                Error::new(ErrorCode::InvalidOptions, "cannot drop _id index")
            }
        };
        let dropped: Vec<Arc<Index>> = match selector {
            IndexSelector::All => current.iter().filter(|i| !i.is_named_id()).cloned().collect(),
            IndexSelector::Names(names) => {
                let mut found = Vec::new();
                for name in names {
                    let index = current.iter().find(|i| &i.name == name).ok_or_else(|| {
                        Error::new(ErrorCode::IndexNotFound, format!("index not found with name [{name}]"))
                    })?;
                    if index.is_named_id() {
                        return Err(cannot_drop_id());
                    }
                    found.push(index.clone());
                }
                found
            }
            IndexSelector::KeyPattern(pattern) => {
                let matching: Vec<_> = current.iter().filter(|i| i.pattern.spec() == pattern).cloned().collect();
                match matching.as_slice() {
                    [] => {
                        return Err(Error::new(
                            ErrorCode::IndexNotFound,
                            format!("can't find index with key: {pattern}"),
                        ));
                    }
                    [one] if one.is_named_id() => return Err(cannot_drop_id()),
                    [_] => matching,
                    _ => {
                        return Err(Error::new(
                            ErrorCode::AmbiguousIndexKeyPattern,
                            format!(
                                "{} indexes found for key: {pattern}, identify by name instead. Conflicting \
                                 indexes: {}",
                                matching.len(),
                                matching.iter().map(|i| i.spec.to_string()).collect::<Vec<_>>().join(", ")
                            ),
                        ));
                    }
                }
            }
        };
        if dropped.is_empty() {
            return Ok(current.len());
        }
        let kept: Vec<Arc<Index>> = current.iter().filter(|i| !dropped.iter().any(|d| d.id == i.id)).cloned().collect();
        let logged =
            dropped.iter().map(|index| doc! { "dropIndexes": &collection.ns.coll, "index": &index.name }).collect();
        self.replace_indexes(
            &collection,
            kept,
            |batch| {
                for index in &dropped {
                    batch.insert(Space::Meta, meta_key(b'i', &index.prefix()), []);
                }
            },
            logged,
        )?;
        // The entries go in the background, as a dropped collection's do.
        self.delete_in_background();
        Ok(current.len())
    }

    /// Changes `hidden` or `expireAfterSeconds` of the index `name` (collMod).
    ///
    /// # Errors
    /// 27 IndexNotFound, 72 InvalidOptions (hiding `_id_`, TTL on a non-TTL index), storage
    /// errors.
    pub fn modify_index(
        &self,
        collection: &Collection,
        name: &str,
        hidden: Option<bool>,
        expire_after_seconds: Option<i64>,
    ) -> Result<IndexOptionChange> {
        let _ddl = self.ddl_lock()?;
        // IMPORTANT: the caller looked `collection` up before the DDL lock: it may have been
        // dropped, renamed or changed since. Only the catalog's own may be written back.
        let collection = self
            .collection(&collection.ns)
            .filter(|current| current.uuid == collection.uuid)
            .ok_or_else(|| Error::new(ErrorCode::NamespaceNotFound, format!("ns does not exist: {}", collection.ns)))?;
        let collection = collection.as_ref();
        let _writers = collection.lock_for_ddl(&self.engine)?;
        self.check_writable()?;
        let current = collection.indexes();
        let index = current.iter().find(|i| i.name == name).ok_or_else(|| {
            Error::new(ErrorCode::IndexNotFound, format!("cannot find index {name} for ns {}", collection.ns))
        })?;
        let mut spec = index.spec.clone();
        let mut changes = IndexOptionChange::new();
        if let Some(hidden) = hidden {
            if index.is_named_id() {
                return Err(Error::new(ErrorCode::BadValue, "can't hide _id index"));
            }
            if hidden != index.hidden {
                changes.push(("hidden", Bson::Boolean(index.hidden), Bson::Boolean(hidden)));
            }
            if hidden {
                spec.insert("hidden", true);
            } else {
                spec.remove("hidden");
            }
        }
        if let Some(seconds) = expire_after_seconds {
            let Some(old) = index.expire_after_seconds else {
                return Err(Error::new(ErrorCode::InvalidOptions, "no expireAfterSeconds field to update"));
            };
            if old != seconds {
                changes.push(("expireAfterSeconds", Bson::Int64(old), Bson::Int64(seconds)));
            }
            spec.insert("expireAfterSeconds", seconds);
        }
        if changes.is_empty() {
            return Ok(changes);
        }
        let replacement = Arc::new(Index::from_spec(index.id, spec, index.is_multikey())?);
        replacement.set_visible_from(index.visible_from());
        let indexes = current.iter().map(|i| if i.id == index.id { replacement.clone() } else { i.clone() }).collect();
        let mut changed = doc! { "name": &index.name };
        for (option, _, new) in &changes {
            changed.insert(*option, new.clone());
        }
        let logged = vec![doc! { "collMod": &collection.ns.coll, "index": changed }];
        self.replace_indexes(collection, indexes, |_| {}, logged)?;
        Ok(changes)
    }

    /// Commits `collection` with `indexes` (plus whatever `extra` adds to the batch), and
    /// swaps them in. Callers hold the DDL and write locks.
    fn replace_indexes(
        &self,
        collection: &Collection,
        indexes: Vec<Arc<Index>>,
        extra: impl FnOnce(&mut Batch),
        logged: Vec<Document>,
    ) -> Result<()> {
        let previous = collection.indexes();
        collection.set_indexes(indexes.into());
        let mut batch = self.engine.batch();
        extra(&mut batch);
        let committed = catalog::entry_value(collection).map_err(Error::from).and_then(|entry| {
            batch.insert(Space::Meta, catalog::entry_key(&collection.ns), entry);
            let mut entries = Vec::new();
            for o in logged {
                entries.extend(self.command_entry(&collection.ns, Some(collection.uuid), o)?);
            }
            self.commit_durable(batch, &entries)
        });
        if let Err(error) = committed {
            collection.set_indexes(previous);
            return Err(error);
        }
        Ok(())
    }
}

/// Whether `spec` names an index that exists already with the same key and options (then it
/// is skipped); a clash of name or key with different details is mongod's 85 or 86.
fn exists_already(indexes: &[Arc<Index>], spec: &Document) -> Result<bool> {
    let key = spec.get_document("key").ok();
    let name = spec.get_str("name").unwrap_or_default();
    let options = comparable_options(spec);
    for index in indexes {
        let same_key = Some(index.pattern.spec()) == key;
        let same_name = index.name == name;
        let same_options = comparable_options(&index.spec) == options;
        match (same_name, same_key, same_options) {
            (true, true, true) => return Ok(true),
            (true, false, _) => {
                return Err(Error::new(
                    ErrorCode::IndexKeySpecsConflict,
                    format!(
                        "An existing index has the same name as the requested index. When index names are not \
                         specified, they are auto generated and can cause conflicts. Please refer to our \
                         documentation. Requested index: {spec}, existing index: {}",
                        index.spec
                    ),
                ));
            }
            (true, true, false) => {
                return Err(Error::new(
                    ErrorCode::IndexOptionsConflict,
                    format!(
                        "An equivalent index already exists with the same name but different options. Requested \
                         index: {spec}, existing index: {}",
                        index.spec
                    ),
                ));
            }
            (false, true, true) => {
                return Err(Error::new(
                    ErrorCode::IndexOptionsConflict,
                    format!("Index already exists with a different name: {}", index.name),
                ));
            }
            _ => {}
        }
    }
    Ok(false)
}

/// The options that make two indexes on one key different (not `v`, `name`, `hidden`, nor
/// the creation-time `background` and the ignored `dropDups`, as in mongod).
fn comparable_options(spec: &Document) -> BTreeMap<String, Bson> {
    spec.iter()
        .filter(|(k, _)| {
            !matches!(k.as_str(), "v" | "name" | "key" | "hidden" | "expireAfterSeconds" | "background" | "dropDups")
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
