//! The plan cache: a query shape's key to the index the planner chose for it, valid while the
//! collection's index set is the one it was chosen with. The planner (`exec::planner`) decides
//! the keys and when an entry applies; this is only the bounded map behind it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use bson::Document;

/// Query shapes the plan cache keeps before it starts over.
const PLAN_CACHE_ENTRIES: usize = 5000;

/// The cached choices of every collection, by shape key.
#[derive(Debug, Default)]
pub struct PlanCache {
    entries: Mutex<HashMap<String, CachedPlan>>,
}

#[derive(Debug, Clone)]
struct CachedPlan {
    /// Signature of the index set the choice was made with.
    index_set: u64,
    /// The chosen index, `None` for a collection scan.
    index: Option<String>,
    /// What `$planCacheStats` shows of the entry.
    about: PlanAbout,
}

/// What an entry was made from, for `$planCacheStats`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanAbout {
    /// The collection's namespace (`db.coll`).
    pub ns: String,
    /// The query shape's hash (`queryHash`).
    pub query_hash: String,
    /// `{query, sort, projection}` of the query that made the entry.
    pub created_from: Document,
    /// When the entry was made.
    pub created: bson::DateTime,
}

/// One entry as `$planCacheStats` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanEntry {
    /// The plan cache key.
    pub key: String,
    /// The chosen index, `None` for a collection scan.
    pub index: Option<String>,
    /// What it was made from.
    pub about: PlanAbout,
}

impl PlanEntry {
    /// About what the entry holds in memory: its key, index name and description.
    pub fn size(&self) -> usize {
        let described = bson::RawDocumentBuf::try_from(&self.about.created_from).map_or(0, |d| d.as_bytes().len());
        std::mem::size_of::<CachedPlan>()
            + self.key.len()
            + self.index.as_ref().map_or(0, String::len)
            + self.about.ns.len()
            + self.about.query_hash.len()
            + described
    }
}

impl PlanCache {
    /// The choice cached for `key` under the index set `index_set`: `Some(None)` for a
    /// collection scan, `None` when nothing (valid) is cached.
    pub fn get(&self, key: &str, index_set: u64) -> Option<Option<String>> {
        let entries = self.lock();
        entries.get(key).filter(|c| c.index_set == index_set).map(|c| c.index.clone())
    }

    /// Caches `index` as the choice for `key` under `index_set`.
    pub fn put(&self, key: String, index_set: u64, index: Option<String>, about: PlanAbout) {
        let mut entries = self.lock();
        if entries.len() >= PLAN_CACHE_ENTRIES {
            entries.clear();
        }
        entries.insert(key, CachedPlan { index_set, index, about });
    }

    /// The entries of the collection `ns`, oldest first.
    pub fn entries_of(&self, ns: &str) -> Vec<PlanEntry> {
        let entries = self.lock();
        let mut out: Vec<PlanEntry> = entries
            .iter()
            .filter(|(_, c)| c.about.ns == ns)
            .map(|(key, c)| PlanEntry { key: key.clone(), index: c.index.clone(), about: c.about.clone() })
            .collect();
        out.sort_by_key(|e| e.about.created);
        out
    }

    /// Number of cached shapes.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedPlan>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
