//! Snapshot reads: the read side of the storage boundary. A [`ReadView`] is one consistent
//! view of all data; through it the executor gets documents by `_id`, scans a collection in
//! either direction, and scans an index within bounds, then fetches the documents its
//! entries point to. Where keys live and how they are encoded stays in here: the `_id` index
//! has no entries of its own (documents are stored in `_id` order), and its scans read the
//! documents themselves.

use std::ops::Bound;

use bson::{RawBsonRef, RawDocument, RawDocumentBuf};
use fjall::{Keyspace, Readable};

use super::index::{Direction, Index, KeyLimits, KeyRange, record_of};
use super::{Collection, StorageError, keys};
use crate::error::{Error, Result};
use crate::query::bounds::IndexBounds;

/// A consistent snapshot for reads and cursors. Cheap to clone: clones share the snapshot.
#[derive(Clone)]
pub struct ReadView {
    snapshot: fjall::Snapshot,
    docs: Keyspace,
    index: Keyspace,
}

/// A test run on each stored document before it is copied out of the engine; an error ends
/// the scan with that error.
pub type DocumentFilter = Box<dyn FnMut(&RawDocument) -> Result<bool> + Send>;

impl ReadView {
    pub(super) fn new(snapshot: fjall::Snapshot, docs: Keyspace, index: Keyspace) -> Self {
        Self { snapshot, docs, index }
    }

    /// The document of `collection` with `_id` equal to `id`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn get(&self, collection: &Collection, id: RawBsonRef<'_>) -> Result<Option<RawDocumentBuf>> {
        if !collection.record_keyed() {
            return self.get_key(document_key(collection, id));
        }
        // Keyed by record id: the `_id_` index says which record holds the `_id`.
        let Some(index) = collection.indexes().iter().find(|index| index.is_named_id()).cloned() else {
            return Ok(None);
        };
        let prefix = index.id_key_prefix(id)?;
        let Some(guard) = self.snapshot.prefix(&self.index, &prefix).next() else { return Ok(None) };
        let key = guard.key().map_err(StorageError::from)?;
        let mut document_key = collection.prefix().to_vec();
        document_key.extend_from_slice(record_of(&key).unwrap_or_default());
        self.get_key(document_key)
    }

    fn get_key(&self, key: Vec<u8>) -> Result<Option<RawDocumentBuf>> {
        match self.snapshot.get(&self.docs, key).map_err(StorageError::from)? {
            Some(value) => Ok(Some(decode_document(&value)?)),
            None => Ok(None),
        }
    }

    /// Every document of `collection`, in `_id` order or reversed.
    pub fn scan(&self, collection: &Collection, direction: Direction) -> DocumentIter {
        DocumentIter::new(self.collection_keys(collection, direction), None)
    }

    /// The documents of `collection` that `keep` accepts, in `_id` order or reversed. `keep`
    /// sees each document where the engine holds it, so rejected documents are never copied.
    pub fn scan_where(&self, collection: &Collection, direction: Direction, keep: DocumentFilter) -> DocumentIter {
        DocumentIter::new(self.collection_keys(collection, direction), Some(keep))
    }

    fn collection_keys(&self, collection: &Collection, direction: Direction) -> DocsIter {
        DocsIter::new(self.snapshot.prefix(&self.docs, collection.prefix()), direction)
    }

    /// The entries of `index` (of `collection`) that `bounds` admit, or, with `limits`, those
    /// within the limits instead, in key order or reversed. The ranges may over-include: the
    /// caller applies its filter to what it fetches.
    pub fn index_scan(
        &self,
        collection: &Collection,
        index: &Index,
        bounds: &IndexBounds,
        direction: Direction,
        limits: Option<&KeyLimits>,
    ) -> IndexScan {
        let mut ranges = scan_ranges(collection, index, bounds, limits);
        if direction.is_backward() {
            ranges.reverse();
        }
        IndexScan {
            view: self.clone(),
            clustered: index.is_id_index(),
            ranges: ranges.into_iter(),
            current: None,
            direction,
        }
    }

    /// How many entries of `index` `bounds` admit, counting no further than `at_most`: the
    /// planner's trial of a candidate index. Reads keys only.
    pub fn count_keys(&self, collection: &Collection, index: &Index, bounds: &IndexBounds, at_most: usize) -> usize {
        let keyspace = if index.is_id_index() { &self.docs } else { &self.index };
        let mut count = 0;
        for (start, end) in scan_ranges(collection, index, bounds, None) {
            for _ in self.snapshot.range(keyspace, (Bound::Included(start), end)) {
                count += 1;
                if count >= at_most {
                    return count;
                }
            }
        }
        count
    }

    /// The document an index entry of `collection` points to (`None` if it is gone, which a
    /// consistent snapshot never shows).
    ///
    /// # Errors
    /// Storage errors.
    pub fn fetch(&self, collection: &Collection, entry: IndexEntry) -> Result<Option<RawDocumentBuf>> {
        match entry.0 {
            Entry::Clustered(document) => Ok(Some(document)),
            Entry::Secondary { key, .. } => {
                let record = record_of(&key).unwrap_or_default();
                let mut document_key = Vec::with_capacity(8 + record.len());
                document_key.extend_from_slice(&collection.prefix());
                document_key.extend_from_slice(record);
                self.get_key(document_key)
            }
        }
    }
}

/// The key ranges a scan of `index` walks, in ascending order: the `_id` index's keys are the
/// documents' own, under the collection's prefix; a secondary index's are under its own.
fn scan_ranges(
    collection: &Collection,
    index: &Index,
    bounds: &IndexBounds,
    limits: Option<&KeyLimits>,
) -> Vec<KeyRange> {
    let prefix = if index.is_id_index() { collection.prefix() } else { index.prefix() };
    match limits {
        Some(limits) => vec![limits.range_under(&prefix)],
        None => index.key_ranges(&prefix, bounds),
    }
}

/// A fjall iterator walked forwards or backwards.
pub(super) enum DocsIter {
    Forward(fjall::Iter),
    Backward(std::iter::Rev<fjall::Iter>),
}

impl DocsIter {
    pub(super) fn new(inner: fjall::Iter, direction: Direction) -> Self {
        match direction {
            Direction::Forward => Self::Forward(inner),
            Direction::Backward => Self::Backward(inner.rev()),
        }
    }
}

impl Iterator for DocsIter {
    type Item = fjall::Guard;

    fn next(&mut self) -> Option<fjall::Guard> {
        match self {
            Self::Forward(iter) => iter.next(),
            Self::Backward(iter) => iter.next(),
        }
    }
}

/// Documents from a snapshot scan; owns what it needs, so a cursor can keep it.
pub struct DocumentIter {
    inner: DocsIter,
    keep: Option<DocumentFilter>,
}

impl DocumentIter {
    pub(super) fn new(inner: DocsIter, keep: Option<DocumentFilter>) -> Self {
        Self { inner, keep }
    }
}

impl Iterator for DocumentIter {
    type Item = Result<RawDocumentBuf>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let value = match self.inner.next()?.value() {
                Ok(value) => value,
                Err(error) => return Some(Err(StorageError::from(error).into())),
            };
            let document = match RawDocument::from_bytes(&value) {
                Ok(document) => document,
                Err(error) => return Some(Err(corrupt_document(&error))),
            };
            match self.keep.as_mut().map_or(Ok(true), |keep| keep(document)) {
                Ok(true) => return Some(Ok(document.to_owned())),
                Ok(false) => {}
                Err(error) => return Some(Err(error)),
            }
        }
    }
}

/// One entry of an index scan: the document it points to (see [`ReadView::fetch`]) and, for a
/// secondary index, its key values.
#[derive(Debug, Clone)]
pub struct IndexEntry(Entry);

#[derive(Debug, Clone)]
enum Entry {
    /// An entry of the `_id` index: the document itself, which is stored under its `_id` key.
    Clustered(RawDocumentBuf),
    /// A secondary index entry: its key (ending with the record key) and its key values.
    Secondary { key: fjall::UserKey, values: fjall::UserValue },
}

/// Which document an index entry points to, comparable across entries (a multikey index
/// has several entries per document).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordId(Vec<u8>);

impl IndexEntry {
    /// The document this entry points to.
    pub fn record_id(&self) -> RecordId {
        match &self.0 {
            Entry::Clustered(document) => RecordId(document_id_key(document)),
            Entry::Secondary { key, .. } => RecordId(record_of(key).unwrap_or_default().to_vec()),
        }
    }

    /// The entry's key values as a document named by the index's fields (`{a: 1}`): what a
    /// covered query returns. `None` for the `_id` index, whose entries are the documents.
    pub fn values(&self) -> Option<&RawDocument> {
        match &self.0 {
            Entry::Clustered(_) => None,
            Entry::Secondary { values, .. } => RawDocument::from_bytes(values).ok(),
        }
    }
}

/// The entries of an index scan, range after range, read lazily from the snapshot.
pub struct IndexScan {
    view: ReadView,
    /// Whether the entries are the documents (the `_id` index).
    clustered: bool,
    ranges: std::vec::IntoIter<KeyRange>,
    current: Option<DocsIter>,
    direction: Direction,
}

impl Iterator for IndexScan {
    type Item = Result<IndexEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(guard) = self.current.as_mut().and_then(Iterator::next) {
                return Some(self.entry(guard));
            }
            let (start, end) = self.ranges.next()?;
            let keyspace = if self.clustered { &self.view.docs } else { &self.view.index };
            let inner = self.view.snapshot.range(keyspace, (Bound::Included(start), end));
            self.current = Some(DocsIter::new(inner, self.direction));
        }
    }
}

impl IndexScan {
    fn entry(&self, guard: fjall::Guard) -> Result<IndexEntry> {
        let (key, value) = guard.into_inner().map_err(StorageError::from)?;
        if self.clustered {
            return Ok(IndexEntry(Entry::Clustered(decode_document(&value)?)));
        }
        Ok(IndexEntry(Entry::Secondary { key, values: value }))
    }
}

/// A document's record id as `showRecordId` reports it: the ordered encoding of its `_id`,
/// which keys it in storage (as mongod's clustered collections, whose record id is the `_id`
/// key).
pub fn record_id(id: RawBsonRef<'_>) -> Vec<u8> {
    let mut key = Vec::with_capacity(16);
    keys::encode_value(id, &mut key);
    key
}

/// The record key of a stored document: its encoded `_id`.
fn document_id_key(document: &RawDocument) -> Vec<u8> {
    document.get("_id").ok().flatten().map(record_id).unwrap_or_default()
}

/// The `docs` key of a document.
pub(super) fn document_key(collection: &Collection, id: RawBsonRef<'_>) -> Vec<u8> {
    let mut key = Vec::with_capacity(32);
    key.extend_from_slice(&collection.prefix());
    keys::encode_value(id, &mut key);
    key
}

pub(super) fn decode_document(bytes: &[u8]) -> Result<RawDocumentBuf> {
    RawDocumentBuf::from_bytes(bytes.to_vec()).map_err(|e| corrupt_document(&e))
}

pub(super) fn corrupt_document(error: &bson::error::Error) -> Error {
    StorageError::Corrupt { what: "document", detail: error.to_string() }.into()
}
