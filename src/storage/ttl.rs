//! TTL deletion: documents whose indexed date is older than their TTL index's
//! `expireAfterSeconds` are deleted, found through the index's own key order; in a clustered
//! collection with `expireAfterSeconds`, those whose `_id` is such a date, found in the
//! documents' own `_id` order.

use std::collections::HashSet;

use bson::{DateTime, RawBson, RawBsonRef};

use super::engine::{SharedLock, Space, TryLock};
use super::{Collection, Direction, Index, Storage, decode_document, document_key};
use crate::error::Result;
use crate::query::bounds::{IndexBounds, Interval};

/// Documents deleted per batch, so one pass never holds a write lock for long.
const TTL_BATCH: usize = 10_000;

impl Storage {
    /// Deletes every document that a TTL index or a clustered collection's
    /// `expireAfterSeconds` says expired before `now`; returns how many. An array of dates
    /// expires with its earliest date, as in mongod. Among nodes sharing a database, one
    /// makes a pass at a time: a node finding another's pass under way skips its own and
    /// gets `None`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn delete_expired(&self, now: DateTime) -> Result<Option<u64>> {
        let TryLock::Free(_pass) = self.engine.try_lock(SharedLock::Ttl)? else { return Ok(None) };
        let mut deleted = 0u64;
        let cutoff_of =
            |seconds: i64| DateTime::from_millis(now.timestamp_millis().saturating_sub(seconds.saturating_mul(1000)));
        for collection in self.all_collections() {
            if let Some((seconds, span)) = collection.timeseries_expiry_secs() {
                // mongod's rule: a bucket goes when even its latest possible measurement (its
                // `_id` time, the rounded minimum, plus the bucket span) has expired.
                let cutoff = cutoff_of(seconds.saturating_add(span));
                deleted +=
                    self.delete_in_batches(&collection, |storage| storage.expired_buckets(&collection, cutoff))?;
                continue;
            }
            if let Some(seconds) = collection.clustered_expiry_secs() {
                let cutoff = cutoff_of(seconds);
                deleted += self.delete_in_batches(&collection, |storage| storage.expired_ids(&collection, cutoff))?;
            }
            for index in collection.indexes().iter() {
                let Some(seconds) = index.expire_after_seconds.filter(|_| !index.is_id_index()) else { continue };
                let cutoff = cutoff_of(seconds);
                deleted += self
                    .delete_in_batches(&collection, |storage| storage.expired_by_index(&collection, index, cutoff))?;
            }
        }
        Ok(Some(deleted))
    }

    /// Deletes the `_id`s `find` returns (up to [`TTL_BATCH`], read under the collection's
    /// write lock, so from exactly the committed data) until it returns fewer; returns how
    /// many went.
    fn delete_in_batches(
        &self,
        collection: &std::sync::Arc<Collection>,
        mut find: impl FnMut(&Self) -> Result<Vec<RawBson>>,
    ) -> Result<u64> {
        let mut deleted = 0u64;
        loop {
            let mut writer = self.writer(collection)?;
            let ids = find(self)?;
            let batch = ids.len();
            let mut held = 0;
            for id in &ids {
                match writer.delete(id.as_raw_bson_ref()) {
                    // An open transaction wrote it: a later pass deletes it if it is still
                    // expired, as mongod's TTL monitor retries.
                    Err(error) if super::is_held_by_transaction(&error) => held += 1,
                    deleted => deleted?,
                }
            }
            writer.commit()?;
            deleted += (batch - held) as u64;
            // A full batch with held documents would find them again: the next pass does.
            if batch < TTL_BATCH || held > 0 {
                return Ok(deleted);
            }
        }
    }

    /// The `_id`s of up to [`TTL_BATCH`] documents whose date in the TTL `index` is before
    /// `cutoff`.
    fn expired_by_index(&self, collection: &Collection, index: &Index, cutoff: DateTime) -> Result<Vec<RawBson>> {
        let mut bounds = IndexBounds::all(&index.pattern);
        bounds.fields = vec![vec![Interval {
            start: RawBson::DateTime(DateTime::from_millis(i64::MIN)),
            start_inclusive: true,
            end: RawBson::DateTime(cutoff),
            end_inclusive: false,
        }]];
        let view = self.snapshot();
        let mut ids = Vec::new();
        let mut seen = HashSet::new();
        for entry in view.index_scan(collection, index, &bounds, Direction::Forward, None) {
            let entry = entry?;
            if !seen.insert(entry.record_id()) {
                continue;
            }
            if let Some(doc) = view.fetch(collection, entry)?
                && let Ok(Some(id)) = doc.get("_id")
            {
                ids.push(RawBson::from(id));
            }
            if ids.len() >= TTL_BATCH {
                break;
            }
        }
        Ok(ids)
    }

    /// The `_id`s of up to [`TTL_BATCH`] buckets of a time-series bucket collection whose
    /// ObjectId `_id` time is before `cutoff`: one range of its `_id` order.
    fn expired_buckets(&self, collection: &Collection, cutoff: DateTime) -> Result<Vec<RawBson>> {
        let seconds = cutoff.timestamp_millis().div_euclid(1000);
        let lowest = crate::query::timeseries::id_bound(0, 0);
        let highest = crate::query::timeseries::id_bound(seconds, 0);
        self.ids_between(collection, RawBsonRef::ObjectId(lowest), RawBsonRef::ObjectId(highest))
    }

    /// The `_id`s of up to [`TTL_BATCH`] documents of a clustered collection whose `_id` is a
    /// date before `cutoff`: one range of its `_id` order (other `_id` types never expire,
    /// as in mongod).
    fn expired_ids(&self, collection: &Collection, cutoff: DateTime) -> Result<Vec<RawBson>> {
        let lowest = RawBsonRef::DateTime(DateTime::from_millis(i64::MIN));
        self.ids_between(collection, lowest, RawBsonRef::DateTime(cutoff))
    }

    /// The `_id`s of up to [`TTL_BATCH`] documents whose `_id` lies in `[from, to)`.
    fn ids_between(&self, collection: &Collection, from: RawBsonRef<'_>, to: RawBsonRef<'_>) -> Result<Vec<RawBson>> {
        let (start, end) = (document_key(collection, from), document_key(collection, to));
        let mut ids = Vec::new();
        for guard in self.engine.range(Space::Docs, start..end).take(TTL_BATCH) {
            let (_, value) = guard.into_inner()?;
            if let Ok(Some(id)) = decode_document(&value)?.get("_id") {
                ids.push(RawBson::from(id));
            }
        }
        Ok(ids)
    }
}
