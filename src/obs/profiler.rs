//! The database profiler: per-database levels (0 off, 1 slow or filtered operations, 2 all)
//! and entries in mongod's `system.profile` shape, written to each database's
//! `system.profile` collection.
//!
//! An entry is written before the request's reply is sent, as mongod does: a client (or a
//! test, or a tool) that reads `system.profile` right after an operation's reply finds its
//! entry. The cost falls only on profiled requests: when no database is profiled, the check
//! is one atomic load.
//!
//! `system.profile` is capped by size, as mongod's default: before an entry goes in, the
//! oldest entries are deleted until the collection stays within [`PROFILE_CAP_BYTES`]. Monarch
//! stores documents in `_id` order, so each entry gets an `ObjectId` `_id` (time, then a
//! per-process counter), which makes `_id` order insertion order: natural order is oldest
//! first, as in a capped collection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document, RawBsonRef, RawDocumentBuf, doc};

use super::summary::OpSummary;
use crate::error::{Error, ErrorCode, Result};
use crate::query::Filter;
use crate::storage::{Namespace, Storage};

/// Size cap of each `system.profile` (mongod's default, 1 MiB).
pub const PROFILE_CAP_BYTES: u64 = 1024 * 1024;
/// The profile collection's name.
pub const PROFILE_COLLECTION: &str = "system.profile";

/// A profile filter (`profile: 1, filter: {...}`): the query as given and compiled.
#[derive(Debug)]
pub struct ProfileFilter {
    /// The filter as the client sent it (the `profile` reply echoes it).
    pub spec: Document,
    filter: Filter,
}

impl ProfileFilter {
    /// Compiles `spec`.
    ///
    /// # Errors
    /// The query's parse errors.
    pub fn parse(spec: &bson::RawDocument) -> Result<Self> {
        let filter = Filter::parse(spec)?;
        let spec = Document::try_from(spec).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        Ok(Self { spec, filter })
    }
}

/// One database's profiler settings.
#[derive(Debug, Clone, Default)]
pub struct DbSettings {
    /// 0, 1 or 2.
    pub level: i32,
    /// The filter, if set.
    pub filter: Option<Arc<ProfileFilter>>,
}

/// The profiler's state, shared by all connections.
pub struct Profiler {
    /// The `--profile` level (`operationProfiling.mode`, changed by SIGHUP): every database's
    /// until `profile` changes it. Written only under the `overrides` lock.
    default_level: AtomicI32,
    overrides: Mutex<HashMap<String, DbSettings>>,
    /// Whether any database may be profiled: the fast path when nothing is.
    enabled: AtomicBool,
    storage: Arc<Storage>,
    dropped: AtomicU64,
    written: AtomicU64,
}

impl std::fmt::Debug for Profiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profiler").field("default_level", &self.default_level()).finish_non_exhaustive()
    }
}

impl Profiler {
    /// A profiler at `level` for every database, writing through `storage`.
    pub fn new(level: u8, storage: Arc<Storage>) -> Self {
        Self {
            default_level: AtomicI32::new(i32::from(level)),
            overrides: Mutex::default(),
            enabled: AtomicBool::new(level > 0),
            storage,
            dropped: AtomicU64::new(0),
            written: AtomicU64::new(0),
        }
    }

    /// Whether any database is profiled now: one atomic load, so a request pays nothing
    /// more for the profiler while it is off.
    pub fn active(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// The settings of `db`.
    pub fn settings(&self, db: &str) -> DbSettings {
        self.lock().get(db).cloned().unwrap_or_else(|| self.default_settings())
    }

    /// The level of databases that `profile` has not set.
    pub fn default_level(&self) -> i32 {
        self.default_level.load(Ordering::Relaxed)
    }

    /// Changes the level of databases that `profile` has not set (a reloaded
    /// `operationProfiling.mode`).
    pub fn set_default_level(&self, level: u8) {
        let overrides = self.lock();
        self.default_level.store(i32::from(level), Ordering::Relaxed);
        self.enabled.store(level > 0 || overrides.values().any(|s| s.level > 0), Ordering::Relaxed);
    }

    fn default_settings(&self) -> DbSettings {
        DbSettings { level: self.default_level(), filter: None }
    }

    /// Replaces the settings of `db`; returns the previous ones.
    pub fn set(&self, db: &str, settings: DbSettings) -> DbSettings {
        let mut overrides = self.lock();
        let previous = overrides.insert(db.to_owned(), settings).unwrap_or_else(|| self.default_settings());
        let enabled = self.default_level() > 0 || overrides.values().any(|s| s.level > 0);
        self.enabled.store(enabled, Ordering::Relaxed);
        previous
    }

    /// Entries not stored: larger than the cap, or refused by storage.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Entries written.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, DbSettings>> {
        self.overrides.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry of `summary` if its database's level asks for it: level 2 always; level 1
    /// when the filter matches the entry, or, without a filter, when it is `slow` (over the
    /// slow log's threshold and drawn by its sample rate). Pure: [`Profiler::write`] stores
    /// it (on a storage thread), before the reply is sent.
    pub fn observe(&self, slow: bool, summary: &OpSummary<'_>) -> Option<ProfileEntry> {
        if !self.active() || !profiled_command(summary) {
            return None;
        }
        let settings = self.settings(&summary.op.db);
        let chosen = match (settings.level, &settings.filter) {
            (2, _) => true,
            (1, Some(_)) => true,
            (1, None) => slow,
            _ => false,
        };
        if !chosen {
            return None;
        }
        let document = RawDocumentBuf::try_from(&entry(summary)).ok()?;
        if settings.level == 1
            && let Some(filter) = &settings.filter
            && !filter.filter.matches(&document)
        {
            return None;
        }
        Some(ProfileEntry { db: summary.op.db.clone(), document })
    }

    /// Stores `entry` in its database's `system.profile`. Blocking (storage): run it on the
    /// blocking pool.
    pub fn write(&self, entry: ProfileEntry) {
        let db = entry.db.as_str();
        match write_entry(&self.storage, db, entry.document) {
            Ok(true) => {
                self.written.fetch_add(1, Ordering::Relaxed);
            }
            Ok(false) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target: "COMMAND", id = 20701, db, error = %error, "Cannot write a profile entry");
            }
        }
    }

    /// Counts an entry that could not even be queued for writing.
    pub fn count_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// A `system.profile` entry chosen by [`Profiler::observe`], to be stored by
/// [`Profiler::write`].
#[derive(Debug)]
pub struct ProfileEntry {
    db: String,
    document: RawDocumentBuf,
}

/// Whether a command may be profiled: not the `profile` command (its level change would
/// profile itself), nor anything on a database that has no profile collection.
fn profiled_command(summary: &OpSummary<'_>) -> bool {
    summary.command != "profile" && !matches!(summary.op.db.as_str(), "" | "local" | "config")
}

/// The `system.profile` document of `summary`, in mongod's field order.
pub fn entry(summary: &OpSummary<'_>) -> Document {
    let op = summary.op;
    let long = |n: u64| Bson::Int64(i64::try_from(n).unwrap_or(i64::MAX));
    let mut entry = doc! { "_id": ObjectId::new(), "op": op.kind.name(), "ns": op.ns.as_str() };
    entry.insert("command", Document::try_from(op.command.as_ref()).unwrap_or_default());
    if summary.plan.is_some() || summary.keys_examined + summary.docs_examined > 0 {
        entry.insert("keysExamined", long(summary.keys_examined));
        entry.insert("docsExamined", long(summary.docs_examined));
    }
    entry.insert("numYield", 0);
    for (name, n) in summary.doc_counts() {
        entry.insert(name, long(n));
    }
    if let Some(plan) = &summary.plan {
        entry.insert("queryShapeHash", plan.shape_hash.as_str());
    }
    if let Some(code) = summary.error {
        entry.insert("ok", 0.0);
        entry.insert("errName", code.name());
        entry.insert("errCode", code.code());
    }
    entry.insert("locks", Document::new());
    entry.insert("flowControl", Document::new());
    entry.insert("responseLength", long(summary.bytes_out));
    entry.insert("protocol", "op_msg");
    entry.insert("millis", long(u64::try_from(summary.duration.as_millis()).unwrap_or(u64::MAX)));
    if let Some(plan) = &summary.plan {
        entry.insert("planSummary", plan.summary.as_str());
    }
    entry.insert("ts", DateTime::now());
    entry.insert("client", op.client.ip().to_string());
    if let Some(app) = &op.app_name {
        entry.insert("appName", app.as_str());
    }
    // Monarch's own: the correlation IDs (crate::obs::correlation).
    entry.insert("opid", i64::from(op.op_id));
    if let Some(trace) = &op.trace {
        entry.insert("traceId", trace.trace_id.as_str());
    }
    entry.insert("allUsers", Vec::<Bson>::new());
    entry.insert("user", "");
    entry
}

/// The options `system.profile` is created with (as mongod reports them).
pub fn profile_collection_options() -> Document {
    doc! { "capped": true, "size": i64::try_from(PROFILE_CAP_BYTES).unwrap_or(i64::MAX) }
}

/// Creates `db.system.profile` if missing (mongod does when profiling is turned on).
///
/// # Errors
/// Storage errors.
pub fn ensure_collection(storage: &Storage, db: &str) -> Result<Arc<crate::storage::Collection>> {
    let ns = Namespace::new(db, PROFILE_COLLECTION)?;
    if let Some(collection) = storage.collection(&ns) {
        return Ok(collection);
    }
    match storage.create_collection(&ns, profile_collection_options()) {
        Err(error) if error.code() == ErrorCode::NamespaceExists => storage.collection(&ns).ok_or(error),
        other => other,
    }
}

/// Inserts one entry, first deleting the oldest entries the cap needs room from. Returns
/// false when the entry alone is larger than the cap (it is not stored).
fn write_entry(storage: &Storage, db: &str, document: RawDocumentBuf) -> Result<bool> {
    let size = document.as_bytes().len() as u64;
    if size > PROFILE_CAP_BYTES {
        return Ok(false);
    }
    let collection = ensure_collection(storage, db)?;
    let mut writer = storage.writer(&collection)?;
    // Read under the write lock: nothing else changes the collection meanwhile.
    let (bytes, _) = storage.collection_size(&collection)?;
    let mut excess = (bytes + size).saturating_sub(PROFILE_CAP_BYTES);
    let mut oldest = Vec::new();
    if excess > 0 {
        for stored in writer.scan_committed() {
            let stored = stored?;
            if let Ok(Some(id)) = stored.get("_id") {
                oldest.push(bson::RawBson::from(id));
            }
            excess = excess.saturating_sub(stored.as_bytes().len() as u64);
            if excess == 0 {
                break;
            }
        }
    }
    for id in &oldest {
        writer.delete(id.as_raw_bson_ref())?;
    }
    writer.insert(document)?;
    writer.commit()?;
    Ok(true)
}

/// Reads a `profile` level argument as mongod: any number with an integral value.
pub fn level_of(value: RawBsonRef<'_>) -> Option<i64> {
    match value {
        RawBsonRef::Int32(n) => Some(i64::from(n)),
        RawBsonRef::Int64(n) => Some(n),
        RawBsonRef::Double(n) if n.fract() == 0.0 && n.is_finite() => Some(n as i64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiler_cap_deletes_the_oldest_entries() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))?;
        let storage = Storage::open(dir.path()).map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))?;
        let big = "x".repeat(100_000);
        for n in 0..25 {
            let document = RawDocumentBuf::try_from(&doc! { "_id": ObjectId::new(), "n": n, "pad": &big })
                .map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))?;
            assert!(write_entry(&storage, "db", document)?);
        }
        let ns = Namespace::new("db", PROFILE_COLLECTION)?;
        let collection = storage.collection(&ns).ok_or_else(|| Error::new(ErrorCode::NamespaceNotFound, "none"))?;
        let (bytes, count) = storage.collection_size(&collection)?;
        assert!(bytes <= PROFILE_CAP_BYTES, "{bytes}");
        assert_eq!(count, 10);
        let first = storage
            .snapshot()
            .scan(&collection, crate::storage::Direction::Forward)
            .next()
            .transpose()?
            .map(|d| d.get_i32("n").ok());
        assert_eq!(first, Some(Some(15)), "the oldest entries went first");
        assert_eq!(collection.options.get_bool("capped").ok(), Some(true));
        Ok(())
    }

    #[test]
    fn profiler_levels_are_per_database() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(Storage::open(dir.path()).unwrap());
        let profiler = Profiler::new(0, storage);
        assert_eq!(profiler.settings("a").level, 0);
        let was = profiler.set("a", DbSettings { level: 2, filter: None });
        assert_eq!(was.level, 0);
        assert_eq!(profiler.settings("a").level, 2);
        assert_eq!(profiler.settings("b").level, 0);
        assert!(profiler.enabled.load(Ordering::Relaxed));
        profiler.set("a", DbSettings::default());
        assert!(!profiler.enabled.load(Ordering::Relaxed));
    }
}
