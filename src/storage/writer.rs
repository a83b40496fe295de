//! Writing documents: one collection at a time, under its write lock, in one atomic batch.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

use super::engine::{Batch, Bytes, EngineLock, SharedLock, Space};
use bson::{RawBsonRef, RawDocument, RawDocumentBuf, doc};

use super::catalog::Capped;
use super::index::{Index, prefix_successor, record_of, unique_tuple};
use super::oplog::{self, Entry, Images, Statement};
use super::txn::{Claimed, StatementChanges, Transaction, held_by_transaction};
use super::{Collection, DurabilityTicket, IndexSet, Storage, StorageError, catalog, decode_document, document_key};
use crate::error::{Error, ErrorCode, Result};

/// An open write to one collection. Holds the collection's write lock, so a check ("does this
/// `_id` exist?") and the write it guards cannot be interleaved with another writer's.
/// Nothing is visible to readers until [`Writer::commit`].
pub struct Writer<'a> {
    storage: &'a Storage,
    collection: &'a Arc<Collection>,
    /// The indexes to maintain, read under the lock: an index being built waits for it.
    indexes: IndexSet,
    batch: Batch,
    /// This batch's own writes by key (`None` = deleted), so later statements see them.
    pending: HashMap<Vec<u8>, Option<RawDocumentBuf>>,
    /// This batch's index entry changes (`Some(value)` = written, `None` = removed), ordered
    /// so a unique check can scan them by prefix.
    pending_entries: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// An index became multikey in this batch: the catalog entry is rewritten with it.
    multikey_changed: bool,
    /// Change in document count and data bytes, folded into the collection's stored totals
    /// at commit, in the same batch.
    count_delta: i64,
    bytes_delta: i64,
    /// Entries written to `meta` beside the documents (retryable writes' records): a batch
    /// with only these still commits.
    meta_writes: usize,
    /// In a capped collection, the last committed record trimmed in this batch: the next
    /// oldest is after it.
    trimmed_to: Option<Vec<u8>>,
    /// This batch inserts into a capped collection: its commit wakes `awaitData` cursors.
    capped_insert: bool,
    /// The oplog entries of this batch's changes; `None` when they are not recorded (a
    /// standalone, or the `local` database).
    oplog: Option<Vec<Entry>>,
    /// How many of those entries belong to statements already marked (see
    /// [`Writer::mark_statement`]).
    marked: usize,
    /// In a transaction: the transaction, which takes this statement's changes at commit,
    /// and its view (its snapshot with its writes), which reads go through.
    txn: Option<(&'a mut Transaction, super::ReadView)>,
    /// The collection's write lock across the nodes sharing the database, when they do.
    _shared: Option<EngineLock>,
    _guard: MutexGuard<'a, ()>,
}

impl<'a> Writer<'a> {
    pub(super) fn new(storage: &'a Storage, collection: &'a Arc<Collection>) -> Result<Self> {
        Self::holding(storage, collection, collection.lock_writes())
    }

    /// A writer of `collection` holding its write lock (`guard`).
    fn holding(storage: &'a Storage, collection: &'a Arc<Collection>, guard: MutexGuard<'a, ()>) -> Result<Self> {
        // Under the lock, what other nodes changed is read before anything is checked: a
        // drop (the check below), new indexes (maintained by this batch) and the capped
        // collection's last record (read again by the first insert).
        let shared = storage.lock_with_fresh_catalog(SharedLock::Collection(collection.id))?;
        if shared.is_some() {
            collection.next_record.store(0, Ordering::Release);
        }
        if collection.ns.is_oplog() && storage.oplog.is_on() {
            // mongod's `userAllowedWriteNS`: a member's oplog is written by the server only.
            return Err(Error::new(ErrorCode::InvalidNamespace, "cannot write to local.oplog.rs"));
        }
        if collection.is_dropped() {
            return Err(Error::new(
                ErrorCode::NamespaceNotFound,
                format!("collection {} was dropped during the write", collection.ns),
            ));
        }
        Ok(Self {
            storage,
            collection,
            indexes: collection.indexes(),
            batch: storage.engine.batch(),
            pending: HashMap::new(),
            pending_entries: BTreeMap::new(),
            multikey_changed: false,
            count_delta: 0,
            bytes_delta: 0,
            meta_writes: 0,
            trimmed_to: None,
            capped_insert: false,
            oplog: (storage.oplog.is_on() && oplog::is_logged(&collection.ns)).then(Vec::new),
            marked: 0,
            txn: None,
            _shared: shared,
            _guard: guard,
        })
    }

    /// A writer of one statement of `txn`: it reads the transaction's view and, at
    /// [`Writer::commit`], hands its changes to the transaction.
    pub(super) fn in_transaction(
        storage: &'a Storage,
        collection: &'a Arc<Collection>,
        txn: &'a mut Transaction,
    ) -> Result<Self> {
        let guard = collection.lock_for_transaction(storage.intents.lock_request_timeout())?;
        let mut writer = Self::holding(storage, collection, guard)?;
        let view = txn.view();
        writer.txn = Some((txn, view));
        Ok(writer)
    }

    /// The current version of the document with `_id` equal to `id`, this batch included.
    ///
    /// # Errors
    /// Storage errors.
    pub fn get(&self, id: RawBsonRef<'_>) -> Result<Option<RawDocumentBuf>> {
        match self.key_of(id)? {
            Some(key) => self.get_key(&key),
            None => Ok(None),
        }
    }

    fn get_key(&self, key: &[u8]) -> Result<Option<RawDocumentBuf>> {
        if let Some(pending) = self.pending.get(key) {
            return Ok(pending.clone());
        }
        let stored = match &self.txn {
            Some((_, view)) => view.value(true, key)?,
            None => self.storage.engine.get(Space::Docs, key)?,
        };
        match stored {
            Some(value) => Ok(Some(decode_document(&value)?)),
            None => Ok(None),
        }
    }

    /// The `docs` key of the document with `_id` equal to `id`: computed from the `_id` in a
    /// collection clustered by it; in a record-keyed (capped) one, read from the `_id_`
    /// index, this batch included (`None` when no document has the `_id`).
    fn key_of(&self, id: RawBsonRef<'_>) -> Result<Option<Vec<u8>>> {
        if !self.collection.record_keyed() {
            return Ok(Some(document_key(self.collection, id)));
        }
        let Some(index) = self.indexes.iter().find(|index| index.is_named_id()) else { return Ok(None) };
        let tuple = index.id_key_prefix(id)?;
        let record = |entry: &[u8]| {
            let mut key = self.collection.prefix().to_vec();
            key.extend_from_slice(record_of(entry).unwrap_or_default());
            key
        };
        let end = prefix_successor(&tuple);
        let in_batch = match &end {
            Some(end) => self.pending_entries.range(tuple.clone()..end.clone()),
            None => self.pending_entries.range(tuple.clone()..),
        };
        if let Some((entry, _)) = in_batch.into_iter().find(|(_, present)| present.is_some()) {
            return Ok(Some(record(entry)));
        }
        for entry in self.stored_entries(&tuple)? {
            if self.pending_entries.get(entry.as_ref()) != Some(&None) {
                return Ok(Some(record(&entry)));
            }
        }
        Ok(None)
    }

    /// Inserts `document`, which must have an `_id`. In a capped collection it takes the next
    /// record id, and the oldest documents go while the collection is past its limits.
    ///
    /// # Errors
    /// 11000 DuplicateKey (with `keyPattern` and `keyValue`) if the `_id` exists; 2 BadValue
    /// for a document larger than a capped collection's size.
    pub fn insert(&mut self, document: RawDocumentBuf) -> Result<()> {
        let id = id_of(&document)?;
        let Some(capped) = self.collection.capped else {
            let key = document_key(self.collection, id);
            self.check_not_held(Claimed::Document, &key)?;
            if self.get_key(&key)?.is_some() {
                return Err(duplicate_key(self.collection, id));
            }
            self.update_indexes(None, Some(&document), &key)?;
            self.account(None, Some(&document));
            self.log(|collection| Ok(Entry::insert(collection, &document, id)))?;
            self.put(key, document)?;
            return Ok(());
        };
        if document.as_bytes().len() as u64 > capped.size {
            return Err(Error::new(ErrorCode::BadValue, "object to insert exceeds cappedMaxSize"));
        }
        // The `_id_` index, unique, refuses a duplicate `_id`.
        let key = self.next_record_key()?;
        self.update_indexes(None, Some(&document), &key)?;
        self.account(None, Some(&document));
        self.log(|collection| Ok(Entry::insert(collection, &document, id)))?;
        self.put(key, document)?;
        self.capped_insert = true;
        self.trim(capped)
    }

    /// Replaces the document whose `_id` is the new document's `_id` (inserts it when there
    /// is none); the oplog records a replacement.
    ///
    /// # Errors
    /// Storage errors.
    pub fn replace(&mut self, document: RawDocumentBuf) -> Result<()> {
        self.store_version(document, false)
    }

    /// As [`Writer::replace`], for a document changed by update operators: the oplog records
    /// the difference (mongod's `$v: 2` diff), which change streams show as
    /// `updateDescription`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn update(&mut self, document: RawDocumentBuf) -> Result<()> {
        self.store_version(document, true)
    }

    fn store_version(&mut self, document: RawDocumentBuf, as_diff: bool) -> Result<()> {
        let id = id_of(&document)?;
        let Some(key) = self.key_of(id)? else { return self.insert(document) };
        self.check_not_held(Claimed::Document, &key)?;
        let old = self.get_key(&key)?;
        let Some(old) = old else {
            if self.collection.record_keyed() {
                return self.insert(document);
            }
            self.update_indexes(None, Some(&document), &key)?;
            self.account(None, Some(&document));
            self.log(|collection| Ok(Entry::replace(collection, &document, id)))?;
            self.put(key, document)?;
            return Ok(());
        };
        self.update_indexes(Some(&old), Some(&document), &key)?;
        self.account(Some(&old), Some(&document));
        self.log(|collection| {
            let entry = if as_diff {
                let parse = |raw: &RawDocumentBuf| {
                    bson::Document::try_from(raw.as_ref())
                        .map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))
                };
                let diff = crate::query::update::diff::document_diff(&parse(&old)?, &parse(&document)?);
                Entry::update(collection, id, &diff)?
            } else {
                Entry::replace(collection, &document, id)
            };
            Ok(with_images(collection, entry, || Images { pre: Some(old.clone()), post: Some(document.clone()) }))
        })?;
        self.put(key, document)?;
        Ok(())
    }

    /// Deletes the document with `_id` equal to `id`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn delete(&mut self, id: RawBsonRef<'_>) -> Result<()> {
        let Some(key) = self.key_of(id)? else { return Ok(()) };
        self.check_not_held(Claimed::Document, &key)?;
        let old = self.get_key(&key)?;
        if let Some(old) = &old {
            self.log_delete(id, old)?;
        }
        self.remove_key(key, old.as_ref())
    }

    /// Adds the oplog entry of deleting `old`, whose `_id` is `id`.
    fn log_delete(&mut self, id: RawBsonRef<'_>, old: &RawDocumentBuf) -> Result<()> {
        self.log(|collection| {
            let entry = Entry::delete(collection, id);
            Ok(with_images(collection, entry, || Images { pre: Some(old.clone()), post: None }))
        })
    }

    /// Adds the oplog entry `entry` builds, when this batch's changes are recorded.
    fn log(&mut self, entry: impl FnOnce(&Collection) -> Result<Entry>) -> Result<()> {
        if let Some(log) = &mut self.oplog {
            log.push(entry(self.collection)?);
        }
        Ok(())
    }

    /// Records in this batch's oplog entries the command `o` on this collection's database
    /// (a view's `create`, `collMod` or `drop`, whose definition this batch writes).
    ///
    /// # Errors
    /// 2 BadValue if `o` cannot be encoded.
    pub fn record_command(&mut self, o: &bson::Document) -> Result<()> {
        if let Some(log) = &mut self.oplog {
            log.push(Entry::command(&self.collection.ns.db, None, o)?);
        }
        Ok(())
    }

    /// Marks the oplog entries of the statement just applied as `statement` of a retryable
    /// write.
    pub(super) fn mark_statement(&mut self, statement: Statement) {
        // Only the entries since the last statement: a large insertMany marks each once.
        if let Some(entries) = &mut self.oplog {
            for entry in entries.iter_mut().skip(self.marked) {
                entry.mark_statement(statement);
            }
            self.marked = entries.len();
        }
    }

    /// Removes the document stored at `key` (`old`, if there is one) and its index entries.
    fn remove_key(&mut self, key: Vec<u8>, old: Option<&RawDocumentBuf>) -> Result<()> {
        self.claim(&key)?;
        self.update_indexes(old.map(|d| d.as_ref()), None, &key)?;
        self.account(old, None);
        self.batch.remove(Space::Docs, key.clone());
        self.pending.insert(key, None);
        Ok(())
    }

    /// The `docs` key of the next record of a capped collection: its prefix and a record id,
    /// 8 bytes big-endian, one past the last stored (read once, under the write lock).
    fn next_record_key(&mut self) -> Result<Vec<u8>> {
        let prefix = self.collection.prefix();
        if self.collection.next_record.load(Ordering::Acquire) == 0 {
            let last = match self.storage.engine.prefix(Space::Docs, prefix).next_back() {
                Some(guard) => {
                    let key = guard.key()?;
                    key.get(prefix.len()..).and_then(|r| <[u8; 8]>::try_from(r).ok()).map_or(0, u64::from_be_bytes)
                }
                None => 0,
            };
            self.collection.next_record.store(last + 1, Ordering::Release);
        }
        let record = self.collection.next_record.fetch_add(1, Ordering::AcqRel);
        let mut key = prefix.to_vec();
        key.extend_from_slice(&record.to_be_bytes());
        Ok(key)
    }

    /// Deletes a capped collection's oldest documents (lowest record ids, committed ones
    /// first, then this batch's) while it holds more than `capped` allows.
    fn trim(&mut self, capped: Capped) -> Result<()> {
        let totals = self.storage.totals(self.collection)?;
        let over = |writer: &Self| {
            let count = i64::try_from(totals.count).unwrap_or(i64::MAX) + writer.count_delta;
            let bytes = i64::try_from(totals.bytes).unwrap_or(i64::MAX) + writer.bytes_delta;
            capped.max.is_some_and(|max| count > i64::try_from(max).unwrap_or(i64::MAX))
                || bytes > i64::try_from(capped.size).unwrap_or(i64::MAX)
        };
        while over(self) {
            let Some((key, old)) = self.oldest()? else { break };
            // As mongod's (from FCV 5.0): each document a capped collection drops is logged
            // as a delete, which oplog readers and change streams see.
            self.log_delete(id_of(&old)?, &old)?;
            self.remove_key(key, Some(&old))?;
        }
        Ok(())
    }

    /// The live document with the lowest record id, this batch included.
    fn oldest(&mut self) -> Result<Option<(Vec<u8>, RawDocumentBuf)>> {
        let prefix = self.collection.prefix();
        let start = self.trimmed_to.clone().unwrap_or_else(|| prefix.to_vec());
        let end = prefix_successor(&prefix).unwrap_or_default();
        for guard in self.storage.engine.range(Space::Docs, start..end) {
            let (key, value) = guard.into_inner()?;
            let document = match self.pending.get(key.as_ref()) {
                // Deleted in this batch (trimmed already).
                Some(None) => continue,
                // Replaced in this batch: still the oldest, as it is now.
                Some(Some(document)) => document.clone(),
                None => decode_document(&value)?,
            };
            self.trimmed_to = Some(key.to_vec());
            return Ok(Some((key.to_vec(), document)));
        }
        let mut in_batch: Vec<(&Vec<u8>, &RawDocumentBuf)> = self
            .pending
            .iter()
            .filter_map(|(key, doc)| Some((key, doc.as_ref()?)))
            .filter(|(key, _)| key.starts_with(&prefix) && self.trimmed_to.as_ref().is_none_or(|to| *key > to))
            .collect();
        in_batch.sort_by(|a, b| a.0.cmp(b.0));
        Ok(in_batch.first().map(|(key, doc)| ((*key).clone(), (*doc).clone())))
    }

    /// Writes the index entries that change when the document at `doc_key` goes from `old` to
    /// `new`, after checking unique indexes. Nothing is written when a check fails, so a
    /// failed statement leaves the batch as it was.
    fn update_indexes(&mut self, old: Option<&RawDocument>, new: Option<&RawDocument>, doc_key: &[u8]) -> Result<()> {
        let record = doc_key.get(self.collection.prefix().len()..).unwrap_or_default();
        let mut removals = Vec::new();
        let mut additions = Vec::new();
        let mut newly_multikey = Vec::new();
        for index in self.indexes.iter().filter(|index| !index.is_id_index()) {
            let old_entries = match old {
                Some(doc) => index.entries(doc, record)?.0,
                None => Vec::new(),
            };
            let (new_entries, multikey) = match new {
                Some(doc) => index.entries(doc, record)?,
                None => (Vec::new(), false),
            };
            if multikey && !index.is_multikey() {
                newly_multikey.push(index);
            }
            for (key, _) in &old_entries {
                if !new_entries.iter().any(|(k, _)| k == key) {
                    if index.unique
                        && let Some((txn, _)) = &self.txn
                    {
                        txn.claim_unique_key(unique_tuple(key, record))?;
                    }
                    removals.push(key.clone());
                }
            }
            for (key, value) in new_entries {
                if old_entries.iter().any(|(k, _)| *k == key) {
                    continue;
                }
                if index.unique {
                    self.check_unique(index, &key, record, &value)?;
                }
                additions.push((key, value));
            }
        }
        for key in removals {
            self.batch.remove(Space::Index, key.clone());
            self.pending_entries.insert(key, None);
        }
        for (key, value) in additions {
            self.batch.insert(Space::Index, key.clone(), value.clone());
            self.pending_entries.insert(key, Some(value));
        }
        for index in newly_multikey {
            self.multikey_changed |= index.mark_multikey();
        }
        Ok(())
    }

    /// Fails with 11000 DuplicateKey if another document holds `key`'s tuple in the unique
    /// `index`, counting this batch's own changes.
    /// Outside a transaction, claimed keys wait for their transaction (see
    /// [`Writer::check_not_held`]); in one, the key is claimed for it.
    fn check_unique(&self, index: &Index, key: &[u8], record: &[u8], value: &[u8]) -> Result<()> {
        let tuple = unique_tuple(key, record);
        match &self.txn {
            Some((txn, _)) => txn.claim_unique_key(tuple)?,
            None => self.check_not_held(Claimed::UniqueKey, tuple)?,
        }
        let end = prefix_successor(tuple);
        let in_batch = match &end {
            Some(end) => self.pending_entries.range(tuple.to_vec()..end.clone()),
            None => self.pending_entries.range(tuple.to_vec()..),
        };
        for (other, present) in in_batch {
            if present.is_some() && record_of(other) != Some(record) {
                return Err(duplicate_index_key(self.collection, index, value));
            }
        }
        for other in self.stored_entries(tuple)? {
            if record_of(&other) != Some(record) && self.pending_entries.get(other.as_ref()) != Some(&None) {
                return Err(duplicate_index_key(self.collection, index, value));
            }
        }
        Ok(())
    }

    /// The stored index entry keys under `prefix` (an `_id` or a unique key tuple: a few at
    /// most): committed ones, or in a transaction what its view holds.
    fn stored_entries(&self, prefix: &[u8]) -> Result<Vec<Bytes>> {
        let keys: std::result::Result<Vec<_>, StorageError> = match &self.txn {
            Some((_, view)) => view.rows_under(false, prefix).map(super::read::Row::key).collect(),
            None => self.storage.engine.prefix(Space::Index, prefix).map(super::engine::Row::key).collect(),
        };
        Ok(keys?)
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
        let keys = match &self.txn {
            Some((_, view)) => view.rows_under(true, &self.collection.prefix()),
            None => self.storage.snapshot().rows_under(true, &self.collection.prefix()),
        };
        super::DocumentIter::new(keys, None)
    }

    /// The collection written to.
    pub fn collection(&self) -> &Arc<Collection> {
        self.collection
    }

    /// The indexes this write maintains.
    pub fn indexes(&self) -> &IndexSet {
        &self.indexes
    }

    /// A snapshot of the committed data. Taken under the write lock, it is exactly what this
    /// collection holds before this batch.
    pub fn snapshot(&self) -> super::ReadView {
        match &self.txn {
            Some((_, view)) => view.clone(),
            None => self.storage.snapshot(),
        }
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
    pub fn commit(self) -> Result<Option<DurabilityTicket>> {
        let Writer {
            storage,
            collection,
            mut batch,
            pending,
            multikey_changed,
            count_delta,
            bytes_delta,
            meta_writes,
            capped_insert,
            oplog,
            txn,
            pending_entries,
            _guard,
            ..
        } = self;
        if let Some((txn, _)) = txn {
            txn.absorb(StatementChanges {
                collection: collection.clone(),
                docs: pending,
                entries: pending_entries,
                count_delta,
                bytes_delta,
                multikey_changed,
                entries_logged: oplog.unwrap_or_default(),
            });
            return Ok(None);
        }
        if pending.is_empty() && meta_writes == 0 {
            return Ok(None);
        }
        if multikey_changed {
            // IMPORTANT: the catalog's current version (they share the indexes and so the flag):
            // this writer's copy may predate a rename or `collMod`, and writing it back would
            // restore the old name or options at the next start.
            if let Some(current) = storage.catalog.current(collection) {
                batch.insert(Space::Meta, catalog::entry_key(&current.ns), catalog::entry_value(&current)?);
            }
        }
        if storage.engine.is_shared() && super::holds_principals(&collection.ns) {
            // Other nodes sharing the database look for this mark to drop their connections'
            // resolved privileges (see `Storage::principals_mark`).
            batch.insert(Space::Meta, super::PRINCIPALS_MARK_KEY.to_vec(), bson::Uuid::new().bytes().to_vec());
        }
        if count_delta != 0 || bytes_delta != 0 {
            // IMPORTANT: read-modify-write of the totals is safe only under the write lock.
            let totals = storage.totals(collection)?.apply(count_delta, bytes_delta);
            batch.insert(Space::Meta, super::totals_key(collection), totals.encode());
        }
        storage.commit_logged(batch, oplog.as_deref().unwrap_or_default())?;
        let ticket = DurabilityTicket(storage.journal.committed());
        // Other writers to this collection need not wait for a memtable to be sealed.
        drop(_guard);
        if capped_insert {
            storage.capped_inserts.notify();
        }
        storage.bound_write_buffers();
        Ok(Some(ticket))
    }

    /// The storage this writer commits to.
    pub(super) fn storage(&self) -> &'a Storage {
        self.storage
    }

    /// Writes (`Some`) or removes (`None`) a `meta` entry in this batch.
    pub(super) fn record_meta(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        match value {
            Some(value) => self.batch.insert(Space::Meta, key, value),
            None => self.batch.remove(Space::Meta, key),
        }
        self.meta_writes += 1;
    }

    fn put(&mut self, key: Vec<u8>, document: RawDocumentBuf) -> Result<()> {
        self.claim(&key)?;
        self.batch.insert(Space::Docs, key.clone(), document.as_bytes());
        self.pending.insert(key, Some(document));
        Ok(())
    }

    /// Outside a transaction, fails with [`held_by_transaction`] when an open transaction has
    /// written `key` (called before the statement changes anything, so that its command can
    /// drop this writer, wait and run the statement again).
    fn check_not_held(&self, kind: Claimed, key: &[u8]) -> Result<()> {
        if self.txn.is_none() && self.storage.intents.is_held(kind, key) {
            return Err(held_by_transaction());
        }
        Ok(())
    }

    /// In a transaction, claims the document at `key` for it (112 WriteConflict when another
    /// transaction has it, or it changed since the snapshot).
    fn claim(&self, key: &[u8]) -> Result<()> {
        match &self.txn {
            Some((txn, _)) if !self.pending.contains_key(key) => txn.claim(key),
            _ => Ok(()),
        }
    }
}

/// `entry` with the change's images, when `collection` keeps them for change streams
/// (`changeStreamPreAndPostImages: {enabled: true}`).
fn with_images(collection: &Collection, entry: Entry, images: impl FnOnce() -> Images) -> Entry {
    let enabled = collection
        .options
        .get_document("changeStreamPreAndPostImages")
        .is_ok_and(|option| option.get_bool("enabled").unwrap_or(false));
    if enabled { entry.with_images(images()) } else { entry }
}

/// The `_id` of a stored document.
fn id_of(document: &RawDocumentBuf) -> Result<RawBsonRef<'_>> {
    document
        .get("_id")
        .ok()
        .flatten()
        .ok_or_else(|| Error::new(ErrorCode::InternalError, "document to store has no _id"))
}

/// mongod's duplicate-key error for a secondary index; `value` is the entry's key document.
pub(super) fn duplicate_index_key(collection: &Collection, index: &Index, value: &[u8]) -> Error {
    let key_value = RawDocument::from_bytes(value)
        .ok()
        .and_then(|raw| crate::query::limits::to_document(raw).ok())
        .unwrap_or_default();
    let shown = key_value.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ");
    Error::new(
        ErrorCode::DuplicateKey,
        format!(
            "E11000 duplicate key error collection: {} index: {} dup key: {{ {shown} }}",
            collection.ns, index.name
        ),
    )
    .with_info(doc! { "keyPattern": index.pattern.spec().clone(), "keyValue": key_value })
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
