//! TTL deletion: documents whose indexed date is older than their TTL index's
//! `expireAfterSeconds` are deleted, found through the index's own key order.

use std::collections::HashSet;

use bson::{DateTime, RawBson};

use super::{Direction, Storage};
use crate::error::Result;
use crate::query::bounds::{IndexBounds, Interval};

/// Documents deleted per batch, so one pass never holds a write lock for long.
const TTL_BATCH: usize = 10_000;

impl Storage {
    /// Deletes every document that a TTL index says expired before `now`; returns how many.
    /// An array of dates expires with its earliest date, as in mongod.
    ///
    /// # Errors
    /// Storage errors.
    pub fn delete_expired(&self, now: DateTime) -> Result<u64> {
        let mut deleted = 0u64;
        for collection in self.all_collections() {
            for index in collection.indexes().iter() {
                let Some(seconds) = index.expire_after_seconds.filter(|_| !index.is_id_index()) else { continue };
                let cutoff = now.timestamp_millis().saturating_sub(seconds.saturating_mul(1000));
                let mut bounds = IndexBounds::all(&index.pattern);
                bounds.fields = vec![vec![Interval {
                    start: RawBson::DateTime(DateTime::from_millis(i64::MIN)),
                    start_inclusive: true,
                    end: RawBson::DateTime(DateTime::from_millis(cutoff)),
                    end_inclusive: false,
                }]];
                loop {
                    // Under the write lock, the snapshot is exactly the committed data.
                    let mut writer = self.writer(&collection)?;
                    let view = self.snapshot();
                    let mut ids = Vec::new();
                    let mut seen = HashSet::new();
                    for entry in view.index_scan(&collection, index, &bounds, Direction::Forward, None) {
                        let entry = entry?;
                        if !seen.insert(entry.record_id()) {
                            continue;
                        }
                        if let Some(doc) = view.fetch(&collection, entry)?
                            && let Ok(Some(id)) = doc.get("_id")
                        {
                            ids.push(RawBson::from(id));
                        }
                        if ids.len() >= TTL_BATCH {
                            break;
                        }
                    }
                    let batch = ids.len();
                    let mut held = 0;
                    for id in &ids {
                        match writer.delete(id.as_raw_bson_ref()) {
                            // An open transaction wrote it: a later pass deletes it if it is
                            // still expired, as mongod's TTL monitor retries.
                            Err(error) if super::is_held_by_transaction(&error) => held += 1,
                            deleted => deleted?,
                        }
                    }
                    writer.commit()?;
                    deleted += (batch - held) as u64;
                    // A full batch with held documents would find them again: the next pass does.
                    if batch < TTL_BATCH || held > 0 {
                        break;
                    }
                }
            }
        }
        Ok(deleted)
    }
}
