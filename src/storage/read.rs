//! Snapshot reads: the read side of the storage boundary. A [`ReadView`] is one consistent
//! view of all data; through it the executor gets documents by `_id`, scans a collection in
//! either direction, and scans an index within bounds, then fetches the documents its
//! entries point to. Where keys live and how they are encoded stays in here: the `_id` index
//! has no entries of its own (documents are stored in `_id` order), and its scans read the
//! documents themselves.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use super::engine::{self, Bytes, Instant, Rows, Snapshot, Space};
use bson::{RawBsonRef, RawDocument, RawDocumentBuf};

use super::index::{Direction, Index, KeyLimits, KeyRange, prefix_successor, record_of};
use super::{Collection, StorageError, keys};
use crate::error::{Error, Result};
use crate::query::bounds::IndexBounds;

/// A consistent snapshot for reads and cursors. Cheap to clone: clones share the snapshot.
/// In a transaction it also sees the transaction's own writes ([`Overlay`]).
///
/// It reads the engine as of `instant` (every batch committed before it), and holds an engine
/// snapshot at or before `instant` (`anchor`) so that the versions it reads stay: a view of
/// now anchors on a snapshot of now; a view of an earlier cluster time (a snapshot read's
/// `atClusterTime`) on the snapshot history's anchor (see `history.rs`).
#[derive(Clone)]
pub struct ReadView {
    anchor: Snapshot,
    instant: Instant,
    overlay: Option<Arc<Overlay>>,
}

/// A transaction's writes not yet committed: the value each key it wrote will have (`None`:
/// deleted), for `docs` and for `index`.
#[derive(Debug, Clone, Default)]
pub struct Overlay {
    pub(super) docs: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    pub(super) index: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Overlay {
    /// Whether it holds no write.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty() && self.index.is_empty()
    }

    /// The writes to `keyspace` within `[start, end)`, in key order.
    fn range(&self, clustered: bool, start: &[u8], end: &Bound<Vec<u8>>) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let map = if clustered { &self.docs } else { &self.index };
        let end = match end {
            Bound::Excluded(end) => Bound::Excluded(end.as_slice()),
            Bound::Included(end) => Bound::Included(end.as_slice()),
            Bound::Unbounded => Bound::Unbounded,
        };
        map.range::<[u8], _>((Bound::Included(start), end)).map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// The space a read goes to: documents (`clustered`) or index entries.
fn space(clustered: bool) -> Space {
    if clustered { Space::Docs } else { Space::Index }
}

/// A test run on each stored document before it is copied out of the engine; an error ends
/// the scan with that error.
pub type DocumentFilter = Box<dyn FnMut(&RawDocument) -> Result<bool> + Send>;

impl ReadView {
    /// A view of `anchor`'s own instant.
    pub(super) fn new(anchor: Snapshot) -> Self {
        let instant = anchor.instant();
        Self { anchor, instant, overlay: None }
    }

    /// A view as of `instant`, which `anchor` (taken at or before it) keeps readable.
    pub(super) fn at(anchor: Snapshot, instant: Instant) -> Self {
        debug_assert!(anchor.instant() <= instant, "an anchor after the instant does not keep its versions");
        Self { anchor, instant, overlay: None }
    }

    /// The engine instant it reads at: it sees every batch committed before it.
    pub fn instant(&self) -> Instant {
        self.instant
    }

    /// This view, reading as of its instant for as long as it lives, across requests (a
    /// transaction's, a snapshot read's). An unpinned view on PostgreSQL reads as of its
    /// instant within one request; a cursor's next batch reads as of then.
    #[must_use]
    pub fn pinned(self) -> Self {
        self.anchor.pin();
        self
    }

    /// This view with a transaction's writes over it.
    pub(super) fn with_overlay(mut self, overlay: Arc<Overlay>) -> Self {
        self.overlay = (!overlay.is_empty()).then_some(overlay);
        self
    }

    /// The stored value at `key` in `docs` (`clustered`) or `index`, the overlay first.
    pub(super) fn value(&self, clustered: bool, key: &[u8]) -> Result<Option<Bytes>> {
        if let Some(overlay) = &self.overlay {
            let map = if clustered { &overlay.docs } else { &overlay.index };
            if let Some(value) = map.get(key) {
                return Ok(value.as_deref().map(Bytes::from));
            }
        }
        Ok(self.anchor.get_at(space(clustered), key, self.instant)?)
    }

    /// The keys and values under `prefix` in `docs` (`clustered`) or `index`, in order.
    pub(super) fn rows_under(&self, clustered: bool, prefix: &[u8]) -> DocsIter {
        let end = prefix_successor(prefix).map_or(Bound::Unbounded, Bound::Excluded);
        self.rows(clustered, prefix.to_vec(), end, Direction::Forward)
    }

    /// The rows of `[start, end)` in `docs` (`clustered`) or `index`, in `direction`, with the
    /// overlay's writes merged in.
    fn rows(&self, clustered: bool, start: Vec<u8>, end: Bound<Vec<u8>>, direction: Direction) -> DocsIter {
        let pending = self.overlay.as_ref().map(|o| o.range(clustered, &start, &end)).unwrap_or_default();
        let inner = self.anchor.range_at(space(clustered), (Bound::Included(start), end), self.instant);
        if pending.is_empty() {
            return DocsIter::new(inner, direction);
        }
        DocsIter::merged(inner, pending, direction)
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
        let Some(row) = self.rows_under(false, &prefix).next() else { return Ok(None) };
        let key = row.key()?;
        let mut document_key = collection.prefix().to_vec();
        document_key.extend_from_slice(record_of(&key).unwrap_or_default());
        self.get_key(document_key)
    }

    fn get_key(&self, key: Vec<u8>) -> Result<Option<RawDocumentBuf>> {
        match self.value(true, &key)? {
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
        let prefix = collection.prefix();
        let end = prefix_successor(&prefix).map_or(Bound::Unbounded, Bound::Excluded);
        self.rows(true, prefix.to_vec(), end, direction)
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
        let mut count = 0;
        for (start, end) in scan_ranges(collection, index, bounds, None) {
            for _ in self.rows(index.is_id_index(), start, end, Direction::Forward) {
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

/// Stored rows walked forwards or backwards, with a transaction's writes merged in.
pub(super) enum DocsIter {
    Forward(Rows),
    Backward(std::iter::Rev<Rows>),
    Merged(Box<Merged>),
}

/// A row of a scan: stored (read lazily), or read ahead or written by a transaction.
pub(super) enum Row {
    Stored(engine::Row),
    Owned(Bytes, Bytes),
    Failed(StorageError),
}

impl Row {
    /// Its value.
    pub(super) fn value(self) -> std::result::Result<Bytes, StorageError> {
        match self {
            Self::Stored(row) => row.value(),
            Self::Owned(_, value) => Ok(value),
            Self::Failed(error) => Err(error),
        }
    }

    /// Its key.
    pub(super) fn key(self) -> std::result::Result<Bytes, StorageError> {
        match self {
            Self::Stored(row) => row.key(),
            Self::Owned(key, _) => Ok(key),
            Self::Failed(error) => Err(error),
        }
    }

    /// Its key and value.
    pub(super) fn into_inner(self) -> std::result::Result<(Bytes, Bytes), StorageError> {
        match self {
            Self::Stored(row) => row.into_inner(),
            Self::Owned(key, value) => Ok((key, value)),
            Self::Failed(error) => Err(error),
        }
    }
}

/// Stored rows and a transaction's writes to the same range, merged in key order (or
/// reversed): a written key hides its stored row, a deleted one hides it without a row.
pub(super) struct Merged {
    stored: Box<dyn Iterator<Item = engine::Row> + Send>,
    /// The stored row read ahead.
    ahead: Option<(Bytes, Bytes)>,
    /// The writes, in the walk's order.
    pending: std::collections::VecDeque<(Vec<u8>, Option<Vec<u8>>)>,
    backward: bool,
}

impl DocsIter {
    pub(super) fn new(inner: Rows, direction: Direction) -> Self {
        match direction {
            Direction::Forward => Self::Forward(inner),
            Direction::Backward => Self::Backward(inner.rev()),
        }
    }

    fn merged(inner: Rows, mut pending: Vec<(Vec<u8>, Option<Vec<u8>>)>, direction: Direction) -> Self {
        let backward = direction.is_backward();
        let stored: Box<dyn Iterator<Item = engine::Row> + Send> =
            if backward { Box::new(inner.rev()) } else { Box::new(inner) };
        if backward {
            pending.reverse();
        }
        Self::Merged(Box::new(Merged { stored, ahead: None, pending: pending.into(), backward }))
    }
}

impl Merged {
    fn next_row(&mut self) -> Option<Row> {
        loop {
            if self.ahead.is_none() {
                match self.stored.next().map(engine::Row::into_inner) {
                    Some(Ok(pair)) => self.ahead = Some(pair),
                    Some(Err(error)) => return Some(Row::Failed(error)),
                    None => {}
                }
            }
            let write_first = match (self.pending.front(), &self.ahead) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some((key, _)), Some((stored, _))) => {
                    if self.backward {
                        key.as_slice() >= &stored[..]
                    } else {
                        key.as_slice() <= &stored[..]
                    }
                }
            };
            if !write_first {
                let (key, value) = self.ahead.take()?;
                return Some(Row::Owned(key, value));
            }
            let (key, value) = self.pending.pop_front()?;
            if self.ahead.as_ref().is_some_and(|(stored, _)| stored[..] == key[..]) {
                self.ahead = None;
            }
            if let Some(value) = value {
                return Some(Row::Owned(Bytes::from(key), Bytes::from(value)));
            }
        }
    }
}

impl Iterator for DocsIter {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        match self {
            Self::Forward(iter) => iter.next().map(Row::Stored),
            Self::Backward(iter) => iter.next().map(Row::Stored),
            Self::Merged(merged) => merged.next_row(),
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
                Err(error) => return Some(Err(error.into())),
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
    Secondary { key: Bytes, values: Bytes },
}

/// Which document an index entry points to, comparable across entries (a multikey index
/// has several entries per document).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
            self.current = Some(self.view.rows(self.clustered, start, end, self.direction));
        }
    }
}

impl IndexScan {
    fn entry(&self, row: Row) -> Result<IndexEntry> {
        let (key, value) = row.into_inner()?;
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
