//! Tailing a capped collection: a scan that, once it has read everything, starts again after
//! the last document it returned, from a fresh snapshot, when asked for more (a tailable
//! cursor's `getMore`); and the signal that wakes `awaitData` cursors when a capped collection
//! gains documents.

use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bson::{RawDocument, RawDocumentBuf, Timestamp};
use tokio::sync::watch;

use super::engine::{Rows, Space};
use super::index::prefix_successor;
use super::{Collection, DocumentFilter, Storage, corrupt_document};
use crate::error::{Error, ErrorCode, Result};

/// Counts commits that inserted into a capped collection; `awaitData` cursors wait for it to
/// move.
#[derive(Debug)]
pub struct InsertSignal(watch::Sender<u64>);

impl Default for InsertSignal {
    fn default() -> Self {
        Self(watch::Sender::new(0))
    }
}

impl InsertSignal {
    /// The count now: read it before scanning, then wait for it to move past.
    pub fn count(&self) -> u64 {
        *self.0.borrow()
    }

    pub(super) fn notify(&self) {
        self.0.send_modify(|count| *count += 1);
    }

    /// Waits until the count is past `count` or `deadline` comes.
    pub async fn wait_past(&self, count: u64, deadline: std::time::Instant) {
        let mut receiver = self.0.subscribe();
        // The sender lives as long as the storage, which outlives every request.
        let _ = tokio::time::timeout_at(deadline.into(), receiver.wait_for(|now| *now > count)).await;
    }
}

/// How often a tailing cursor of nodes sharing a database looks again while it waits: it hears
/// only of its own node's inserts.
const SHARED_TAIL_POLL: std::time::Duration = std::time::Duration::from_millis(100);

impl super::Storage {
    /// Waits until an insert into a capped collection moves [`InsertSignal::count`] past
    /// `since`, or until `deadline`; at most [`SHARED_TAIL_POLL`] when other nodes share the
    /// database, whose inserts this node does not hear of.
    pub async fn wait_for_capped_insert(&self, since: u64, deadline: std::time::Instant) {
        let deadline =
            if self.is_shared() { deadline.min(std::time::Instant::now() + SHARED_TAIL_POLL) } else { deadline };
        self.capped_inserts.wait_past(since, deadline).await;
    }
}

/// A tailing scan of a capped collection, in insertion order. `None` means "nothing more for
/// now": the next call looks again. Each batch of its cursor reads from a new snapshot, after
/// the last document read, as mongod's cursor restores its position at each `getMore`.
pub struct TailIter {
    storage: Arc<Storage>,
    collection: Arc<Collection>,
    /// The key of the last document read (kept or not).
    after: Option<Vec<u8>>,
    /// Where the scan starts before it has read anything.
    start: Bound<Vec<u8>>,
    keep: DocumentFilter,
    current: Option<Rows>,
    /// The cursor's batch count, moved at the start of each batch; `opened_at` is its value
    /// when `current` was opened.
    batches: Arc<AtomicU64>,
    opened_at: u64,
}

impl Storage {
    /// A tailing scan of `collection` (capped) from its oldest document, through `keep`;
    /// `batches` is its cursor's batch count. In the oplog, `from` starts it at the first
    /// entry after a time (`(ts, false)`) or at it (`(ts, true)`): the entries' record ids are
    /// their times, so a reader resuming from a time seeks instead of reading the whole log.
    pub fn tail(
        self: &Arc<Self>,
        collection: Arc<Collection>,
        keep: DocumentFilter,
        batches: Arc<AtomicU64>,
        from: Option<(Timestamp, bool)>,
    ) -> TailIter {
        let start = match from.filter(|_| collection.ns.is_oplog()) {
            Some((ts, true)) => Bound::Included(super::oplog::entry_key(&collection, ts)),
            Some((ts, false)) => Bound::Excluded(super::oplog::entry_key(&collection, ts)),
            None => Bound::Included(collection.prefix().to_vec()),
        };
        TailIter { storage: self.clone(), collection, after: None, start, keep, current: None, batches, opened_at: 0 }
    }
}

impl TailIter {
    /// The scan from after the last document read, in a new snapshot. mongod's 136
    /// CappedPositionLost when that document has been deleted meanwhile (the reader fell
    /// behind the collection's trimming), as its documents are gone too.
    fn reopen(&self) -> Result<Rows> {
        let prefix = self.collection.prefix();
        let snapshot = self.storage.engine.snapshot();
        let start = match &self.after {
            Some(after) => {
                if snapshot.get(Space::Docs, after)?.is_none() {
                    return Err(Error::new(
                        ErrorCode::CappedPositionLost,
                        format!(
                            "CollectionScan died due to position in capped collection {} being deleted.",
                            self.collection.ns
                        ),
                    ));
                }
                Bound::Excluded(after.clone())
            }
            None => self.start.clone(),
        };
        let end = prefix_successor(&prefix).map_or(Bound::Unbounded, Bound::Excluded);
        Ok(snapshot.range(Space::Docs, (start, end)))
    }
}

impl Iterator for TailIter {
    type Item = Result<RawDocumentBuf>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.collection.is_dropped() {
            return Some(Err(Error::new(
                ErrorCode::QueryPlanKilled,
                format!("collection dropped. UUID {}", self.collection.uuid),
            )));
        }
        let batch = self.batches.load(Ordering::Acquire);
        if batch != self.opened_at {
            // A new batch: look again from the last document, in a new snapshot.
            self.current = None;
        }
        loop {
            if self.current.is_none() {
                match self.reopen() {
                    Ok(iter) => self.current = Some(iter),
                    Err(error) => return Some(Err(error)),
                }
                self.opened_at = batch;
            }
            let Some(guard) = self.current.as_mut().and_then(Iterator::next) else {
                self.current = None;
                return None;
            };
            let (key, value) = match guard.into_inner() {
                Ok(pair) => pair,
                Err(error) => return Some(Err(error.into())),
            };
            self.after = Some(key.to_vec());
            let document = match RawDocument::from_bytes(&value) {
                Ok(document) => document,
                Err(error) => return Some(Err(corrupt_document(&error))),
            };
            match (self.keep)(document) {
                Ok(true) => return Some(Ok(document.to_owned())),
                Ok(false) => {}
                Err(error) => return Some(Err(error)),
            }
        }
    }
}
