//! Writing documents: one collection at a time, under its write lock, in one atomic batch.

use std::collections::HashMap;
use std::sync::{MutexGuard, PoisonError};

use bson::{RawBsonRef, RawDocumentBuf, doc};
use fjall::OwnedWriteBatch;

use super::{Collection, Storage, StorageError, decode_document, document_key};
use crate::error::{Error, ErrorCode, Result};

/// An open write to one collection. Holds the collection's write lock, so a check ("does this
/// `_id` exist?") and the write it guards cannot be interleaved with another writer's.
/// Nothing is visible to readers until [`Writer::commit`].
pub struct Writer<'a> {
    storage: &'a Storage,
    collection: &'a Collection,
    batch: OwnedWriteBatch,
    /// This batch's own writes by key (`None` = deleted), so later statements see them.
    pending: HashMap<Vec<u8>, Option<RawDocumentBuf>>,
    /// Change in document count and data bytes, folded into the collection's stored totals
    /// at commit, in the same batch.
    count_delta: i64,
    bytes_delta: i64,
    _guard: MutexGuard<'a, ()>,
}

impl<'a> Writer<'a> {
    pub(super) fn new(storage: &'a Storage, collection: &'a Collection) -> Result<Self> {
        let guard = collection.write_lock.lock().unwrap_or_else(PoisonError::into_inner);
        if collection.is_dropped() {
            return Err(Error::new(
                ErrorCode::NamespaceNotFound,
                format!("collection {} was dropped during the write", collection.ns),
            ));
        }
        Ok(Self {
            storage,
            collection,
            batch: storage.db.batch(),
            pending: HashMap::new(),
            count_delta: 0,
            bytes_delta: 0,
            _guard: guard,
        })
    }

    /// The current version of the document with `_id` equal to `id`, this batch included.
    ///
    /// # Errors
    /// Storage errors.
    pub fn get(&self, id: RawBsonRef<'_>) -> Result<Option<RawDocumentBuf>> {
        let key = document_key(self.collection, id);
        if let Some(pending) = self.pending.get(&key) {
            return Ok(pending.clone());
        }
        match self.storage.docs.get(&key).map_err(StorageError::from)? {
            Some(value) => Ok(Some(decode_document(&value)?)),
            None => Ok(None),
        }
    }

    /// Inserts `document`, which must have an `_id`.
    ///
    /// # Errors
    /// 11000 DuplicateKey (with `keyPattern` and `keyValue`) if the `_id` exists.
    pub fn insert(&mut self, document: RawDocumentBuf) -> Result<()> {
        let id = id_of(&document)?;
        if self.get(id)?.is_some() {
            return Err(duplicate_key(self.collection, id));
        }
        let key = document_key(self.collection, id);
        self.account(None, Some(&document));
        self.put(key, document);
        Ok(())
    }

    /// Replaces the document whose `_id` is the new document's `_id`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn replace(&mut self, document: RawDocumentBuf) -> Result<()> {
        let id = id_of(&document)?;
        let old = self.get(id)?;
        let key = document_key(self.collection, id);
        self.account(old.as_ref(), Some(&document));
        self.put(key, document);
        Ok(())
    }

    /// Deletes the document with `_id` equal to `id`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn delete(&mut self, id: RawBsonRef<'_>) -> Result<()> {
        let old = self.get(id)?;
        let key = document_key(self.collection, id);
        self.account(old.as_ref(), None);
        self.batch.remove(&self.storage.docs, key.clone());
        self.pending.insert(key, None);
        Ok(())
    }

    /// Tracks how a change from `old` to `new` moves the collection's totals.
    fn account(&mut self, old: Option<&RawDocumentBuf>, new: Option<&RawDocumentBuf>) {
        let size = |doc: Option<&RawDocumentBuf>| doc.map_or(0, |d| d.as_bytes().len() as i64);
        self.count_delta += i64::from(new.is_some()) - i64::from(old.is_some());
        self.bytes_delta += size(new) - size(old);
    }

    /// Every committed document of the collection, in `_id` order (this batch excluded: a
    /// multi-document update reads what was there when it started).
    pub fn scan_committed(&self) -> super::DocumentIter {
        super::DocumentIter::new(self.storage.docs.prefix(self.collection.prefix()), None)
    }

    /// Whether the batch holds any change.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Commits the batch atomically and releases the write lock. Returns the batch's journal
    /// ticket (for [`Storage::wait_durable`]), or `None` if there was nothing to write.
    ///
    /// # Errors
    /// Storage errors.
    pub fn commit(self) -> Result<Option<u64>> {
        let Writer { storage, collection, mut batch, pending, count_delta, bytes_delta, _guard } = self;
        if pending.is_empty() {
            return Ok(None);
        }
        if count_delta != 0 || bytes_delta != 0 {
            // IMPORTANT: read-modify-write of the totals is safe only under the write lock.
            let totals = storage.totals(collection)?.apply(count_delta, bytes_delta);
            batch.insert(&storage.meta, super::totals_key(collection), totals.encode());
        }
        batch.commit().map_err(StorageError::from)?;
        Ok(Some(storage.journal.committed()))
    }

    fn put(&mut self, key: Vec<u8>, document: RawDocumentBuf) {
        self.batch.insert(&self.storage.docs, key.clone(), document.as_bytes());
        self.pending.insert(key, Some(document));
    }
}

/// The `_id` of a stored document.
fn id_of(document: &RawDocumentBuf) -> Result<RawBsonRef<'_>> {
    document
        .get("_id")
        .ok()
        .flatten()
        .ok_or_else(|| Error::new(ErrorCode::InternalError, "document to store has no _id"))
}

/// mongod's duplicate-key error for the `_id` index.
fn duplicate_key(collection: &Collection, id: RawBsonRef<'_>) -> Error {
    let value = bson::Bson::try_from(id).unwrap_or(bson::Bson::Null);
    Error::new(
        ErrorCode::DuplicateKey,
        format!("E11000 duplicate key error collection: {} index: _id_ dup key: {{ _id: {value} }}", collection.ns),
    )
    .with_info(doc! { "keyPattern": { "_id": 1 }, "keyValue": { "_id": value } })
}
