//! Access paths: the first stage of every plan, reading a collection through a storage
//! snapshot. A collection scan (either direction), an `_id` lookup, or an index scan whose
//! entries are fetched (or, for a covered plan, returned as the index holds them); each
//! applies the query's filter, so later stages see only matching documents.

use std::collections::HashSet;
use std::sync::Arc;

use super::planner::{Access, Plan};
use super::stages::keep;
use crate::error::Result;
use crate::op::ExecStats;
use crate::query::Filter;
use crate::state::cursors::DocumentStream;
use crate::storage::{Collection, Direction, ReadView};

/// The documents `plan` reads from `view` that `filter` matches, in the plan's order, counting
/// keys and documents examined into `stats` (which also checks for interrupts). A covered plan
/// yields the index's key documents instead of stored documents.
///
/// # Errors
/// Storage errors, and an interrupt while reading a collection backwards or by `_id`.
pub fn scan(
    plan: &Plan,
    view: ReadView,
    collection: &Arc<Collection>,
    filter: Filter,
    stats: Arc<ExecStats>,
) -> Result<DocumentStream> {
    Ok(match &plan.access {
        Access::CollScan { reverse } => {
            let keep = move |doc: &bson::RawDocument| {
                stats.doc()?;
                Ok(filter.try_matches(doc)?)
            };
            Box::new(view.scan_where(collection, Direction::backward_if(*reverse), Box::new(keep)))
        }
        Access::IdPoint(id) => {
            stats.key()?;
            let found = view.get(collection, id.as_raw_bson_ref())?;
            if found.is_some() {
                stats.doc()?;
            }
            Box::new(found.into_iter().filter_map(move |doc| keep(&filter, Ok(doc))))
        }
        Access::IndexScan { index, bounds, reverse, limits } => {
            index.record_access();
            let entries = view.index_scan(collection, index, bounds, Direction::backward_if(*reverse), limits.as_ref());
            let covered = plan.covered;
            // A multikey index holds several entries per document, and so does a wildcard index
            // scanned over several paths: each document is returned once.
            let dedup = index.is_multikey() || bounds.fields.first().is_some_and(|paths| paths.len() > 1);
            let mut seen = HashSet::new();
            let collection = collection.clone();
            Box::new(entries.filter_map(move |entry| {
                if let Err(err) = stats.key() {
                    return Some(Err(err));
                }
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(err) => return Some(Err(err)),
                };
                if dedup && !seen.insert(entry.record_id()) {
                    return None;
                }
                let doc = if covered {
                    entry.values().map(ToOwned::to_owned)
                } else {
                    match view.fetch(&collection, entry) {
                        Ok(doc) => {
                            if let Err(err) = stats.doc() {
                                return Some(Err(err));
                            }
                            doc
                        }
                        Err(err) => return Some(Err(err)),
                    }
                };
                keep(&filter, Ok(doc?))
            }))
        }
    })
}
