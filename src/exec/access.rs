//! Access paths: the first stage of every plan, reading a collection through a storage
//! snapshot. A collection scan (either direction), an `_id` lookup, or an index scan whose
//! entries are fetched (or, for a covered plan, returned as the index holds them); each
//! applies the query's filter, so later stages see only matching documents.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use super::planner::{Access, Plan, TextPlan};
use super::stages::keep;
use crate::error::Result;
use crate::op::ExecStats;
use bson::RawDocument;

use crate::query::Filter;
use crate::query::text::spec::SCORE_FIELD;
use crate::state::cursors::DocumentStream;
use crate::storage::{Collection, Direction, IndexEntry, ReadView, RecordId};

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
        Access::Near(near) => super::near::search((**near).clone(), view, collection.clone(), filter, stats),
        Access::Text(text) => {
            let (text, collection) = ((**text).clone(), collection.clone());
            super::stages::deferred(move || text_search(&text, &view, &collection, filter, stats))
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

/// A `$text` search (mongod's TEXT_OR then TEXT_MATCH): each term's entries, their scores
/// added up per document; then each document, in record order, fetched and put through the
/// search's own tests and the rest of the filter. Each document returned has its score
/// recorded in `text.scores` first.
fn text_search(
    text: &TextPlan,
    view: &ReadView,
    collection: &Arc<Collection>,
    filter: Filter,
    stats: Arc<ExecStats>,
) -> Result<DocumentStream> {
    let Some(spec) = text.index.text.clone() else { return Ok(Box::new(std::iter::empty())) };
    text.index.record_access();
    let mut found: BTreeMap<RecordId, (IndexEntry, f64)> = BTreeMap::new();
    for term in &text.query.terms_for_bounds {
        let bounds = text.bounds_of(term);
        for entry in view.index_scan(collection, &text.index, &bounds, Direction::Forward, None) {
            stats.key()?;
            let entry = entry?;
            let score = entry.values().and_then(|values| values.get_f64(SCORE_FIELD).ok()).unwrap_or_default();
            found.entry(entry.record_id()).or_insert_with(|| (entry, 0.0)).1 += score;
        }
    }
    let (view, collection, query, scores) = (view.clone(), collection.clone(), text.query.clone(), text.scores.clone());
    let accept = move |doc: &RawDocument| -> Result<bool> {
        stats.doc()?;
        Ok(query.matches(&spec, doc)? && filter.try_matches(doc)?)
    };
    Ok(Box::new(found.into_values().filter_map(move |(entry, score)| {
        let doc = match view.fetch(&collection, entry) {
            Ok(Some(doc)) => doc,
            Ok(None) => return None,
            Err(err) => return Some(Err(err)),
        };
        match accept(&doc) {
            Ok(true) => {
                if let Some(id) = doc.get("_id").ok().flatten() {
                    scores.record(id, score);
                }
                Some(Ok(doc))
            }
            Ok(false) => None,
            Err(err) => Some(Err(err)),
        }
    })))
}
