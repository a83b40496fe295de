//! The catalog: which collections exist, with their ids, UUIDs, options and index specs.
//!
//! Kept in memory for lookups and persisted in the `meta` keyspace. Databases are implicit:
//! one exists while it holds a collection, as in mongod. Collection ids are handed out once
//! and never reused, so a dropped collection's leftover keys can never be read as another's.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, TryLockError};
use std::time::{Duration, Instant};

use bson::{Binary, Document, Uuid, doc};

use super::engine::{CATALOG_KIND, Engine, EngineLock, SharedLock};
use super::index::{ID_INDEX_ID, Index};
use super::namespace::Namespace;
use super::{StorageError, meta_key};
use crate::error::{Error, ErrorCode, Result};
use crate::query::{QueryError, Validator};

/// The indexes of a collection at one moment.
pub type IndexSet = Arc<[Arc<Index>]>;

/// One collection's metadata. Replaced as a whole when it changes (rename, collMod); the
/// write lock is shared by every version so writers stay serialized.
#[derive(Debug)]
pub struct Collection {
    /// Storage id: the prefix of every key of this collection.
    pub id: u64,
    /// Namespace.
    pub ns: Namespace,
    /// Stable identity reported as `info.uuid`.
    pub uuid: Uuid,
    /// Creation options (`capped`, `size`, `max`, `validator`, ...), as given.
    pub options: Document,
    /// The `validator` option compiled with its level and action, once per version of the
    /// collection; the parse error of a stored validator that no longer compiles, which
    /// fails every write as in mongod.
    validator: Result<Option<Arc<Validator>>, QueryError>,
    /// Its indexes, `_id_` first; shared by every version of the collection and swapped
    /// whole under the write lock, so a writer sees one consistent set.
    index_set: Arc<RwLock<IndexSet>>,
    /// Serializes writers of this collection: a unique check and its write happen together.
    pub(super) write_lock: Arc<Mutex<()>>,
    /// Set once dropped: a writer that took the lock just before the drop must not write.
    pub(super) dropped: Arc<AtomicBool>,
    /// Set while a DDL operation (an index build, a drop, a rename, `collMod`) holds the
    /// write lock: a transaction waits for it at most `maxTransactionLockRequestTimeoutMillis`.
    ddl_running: Arc<AtomicBool>,
    /// A capped collection's limits (`capped: true` with `size` and `max`); `None` otherwise.
    pub capped: Option<Capped>,
    /// The record id the next insert into a capped collection takes; 0 until the first
    /// insert reads it from the last stored record (under the write lock).
    pub(super) next_record: Arc<AtomicU64>,
}

/// A collection's write lock held by a DDL operation (see [`Collection::lock_for_ddl`]).
pub(super) struct DdlLock<'a> {
    /// The lock across the nodes sharing the database, when they do.
    _shared: Option<EngineLock>,
    _guard: MutexGuard<'a, ()>,
    running: &'a AtomicBool,
}

impl Drop for DdlLock<'_> {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Release);
    }
}

/// A capped collection's limits: inserts delete the oldest documents past either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capped {
    /// The most bytes of documents it keeps (`size`, rounded up to 256 as mongod does).
    pub size: u64,
    /// The most documents it keeps (`max`), if limited.
    pub max: Option<u64>,
}

impl Capped {
    /// The limits of `options`, when they make a capped collection.
    pub fn of(options: &Document) -> Option<Self> {
        if !options.get_bool("capped").unwrap_or(false) {
            return None;
        }
        let number = |key: &str| match options.get(key) {
            Some(bson::Bson::Int32(n)) => Some(i64::from(*n)),
            Some(bson::Bson::Int64(n)) => Some(*n),
            Some(bson::Bson::Double(n)) => Some(*n as i64),
            _ => None,
        };
        let size = number("size").and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
        let max = number("max").and_then(|n| u64::try_from(n).ok()).filter(|n| *n > 0);
        Some(Self { size, max })
    }
}

impl Collection {
    /// The compiled validator, `None` when the collection has none.
    ///
    /// # Errors
    /// The stored validator's parse error, with mongod's context.
    pub fn validator(&self) -> Result<Option<&Arc<Validator>>, &QueryError> {
        self.validator.as_ref().map(Option::as_ref)
    }

    /// Whether its documents are keyed by a record id in insertion order (capped
    /// collections) rather than clustered by `_id`: its `_id_` index then has entries of its
    /// own.
    pub fn record_keyed(&self) -> bool {
        self.capped.is_some()
    }

    /// The key prefix of this collection's documents.
    pub(super) fn prefix(&self) -> [u8; 8] {
        self.id.to_be_bytes()
    }

    /// Whether it was created clustered (`clusteredIndex`): listed as mongod lists one, and
    /// TTL by `_id` with the collection's `expireAfterSeconds`.
    pub fn is_clustered(&self) -> bool {
        self.options.contains_key("clusteredIndex")
    }

    /// A clustered collection's `expireAfterSeconds`: documents whose `_id` is a date older
    /// than that are deleted.
    pub fn clustered_expiry_secs(&self) -> Option<i64> {
        if !self.is_clustered() {
            return None;
        }
        match self.options.get("expireAfterSeconds") {
            Some(bson::Bson::Int64(n)) => Some(*n),
            Some(bson::Bson::Int32(n)) => Some(i64::from(*n)),
            _ => None,
        }
    }

    /// A time-series bucket collection's `expireAfterSeconds` and `bucketMaxSpanSeconds`: its
    /// buckets expire whole, by their `_id` time.
    pub fn timeseries_expiry_secs(&self) -> Option<(i64, i64)> {
        let timeseries = self.options.get_document("timeseries").ok()?;
        let number = |value: Option<&bson::Bson>| match value {
            Some(bson::Bson::Int64(n)) => Some(*n),
            Some(bson::Bson::Int32(n)) => Some(i64::from(*n)),
            _ => None,
        };
        Some((number(self.options.get("expireAfterSeconds"))?, number(timeseries.get("bucketMaxSpanSeconds"))?))
    }

    /// Whether this collection has been dropped (or renamed away).
    pub fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::Acquire)
    }

    /// Takes the write lock for a batch of writes.
    pub(super) fn lock_writes(&self) -> MutexGuard<'_, ()> {
        self.write_lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the write lock for a DDL operation, marked as one while held; on `engine`'s
    /// other nodes too, when it has them.
    ///
    /// # Errors
    /// The engine's, taking the lock across nodes.
    pub(super) fn lock_for_ddl(&self, engine: &Engine) -> Result<DdlLock<'_>, StorageError> {
        let guard = self.lock_writes();
        let shared = engine.lock(SharedLock::Collection(self.id))?;
        self.ddl_running.store(true, Ordering::Release);
        Ok(DdlLock { _shared: shared, _guard: guard, running: &self.ddl_running })
    }

    /// Takes the write lock for a statement of a transaction: it waits for other writers'
    /// batches, but for a DDL operation at most `timeout` (`None`: as long as it takes), as
    /// mongod's transactions wait `maxTransactionLockRequestTimeoutMillis` for a lock.
    ///
    /// # Errors
    /// 24 LockTimeout past `timeout` behind a DDL operation.
    pub(super) fn lock_for_transaction(&self, timeout: Option<Duration>) -> Result<MutexGuard<'_, ()>> {
        let started = Instant::now();
        loop {
            match self.write_lock.try_lock() {
                Ok(guard) => return Ok(guard),
                Err(TryLockError::Poisoned(poisoned)) => return Ok(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => {}
            }
            if !self.ddl_running.load(Ordering::Acquire) {
                // Another writer's batch: short, and mongod's intent locks would not conflict.
                return Ok(self.lock_writes());
            }
            if let Some(timeout) = timeout
                && started.elapsed() >= timeout
            {
                return Err(Error::new(
                    ErrorCode::LockTimeout,
                    format!("Unable to acquire IX lock on '{}' within {}ms.", self.ns, timeout.as_millis()),
                ));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    fn to_meta(&self) -> Document {
        doc! {
            "id": i64::try_from(self.id).unwrap_or(i64::MAX),
            "db": &self.ns.db,
            "name": &self.ns.coll,
            "uuid": Binary::from_uuid(self.uuid),
            "options": self.options.clone(),
            "indexes": self.indexes().iter().map(|index| bson::Bson::Document(doc! {
                "id": i64::try_from(index.id).unwrap_or(i64::MAX),
                "spec": index.spec.clone(),
                "multikey": index.is_multikey(),
            })).collect::<Vec<_>>(),
        }
    }

    /// Its indexes now, `_id_` first. Read them before taking a snapshot: an index listed
    /// then has all its entries in any later snapshot.
    pub fn indexes(&self) -> IndexSet {
        self.index_set.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The index called `name`.
    pub fn index(&self, name: &str) -> Option<Arc<Index>> {
        self.indexes().iter().find(|index| index.name == name).cloned()
    }

    /// Replaces the index set (catalog changes, under the write lock).
    pub(super) fn set_indexes(&self, indexes: IndexSet) {
        *self.index_set.write().unwrap_or_else(PoisonError::into_inner) = indexes;
    }

    fn from_meta(meta: &Document) -> Result<Self, StorageError> {
        let corrupt = |detail: String| StorageError::Corrupt { what: "catalog entry", detail };
        let id = meta.get_i64("id").map_err(|e| corrupt(e.to_string()))?;
        let uuid = match meta.get("uuid") {
            Some(bson::Bson::Binary(binary)) => binary.to_uuid().map_err(|e| corrupt(e.to_string()))?,
            _ => return Err(corrupt("missing uuid".into())),
        };
        let options = meta.get_document("options").cloned().unwrap_or_default();
        let mut indexes = Vec::new();
        for entry in meta.get_array("indexes").map_err(|e| corrupt(e.to_string()))? {
            let Some(entry) = entry.as_document() else { continue };
            // Entries from before secondary indexes hold the bare `_id_` spec.
            let index = match entry.get_document("spec") {
                Ok(spec) => Index::from_spec(
                    entry.get_i64("id").ok().and_then(|id| u64::try_from(id).ok()).unwrap_or(ID_INDEX_ID),
                    spec.clone(),
                    entry.get_bool("multikey").unwrap_or(false),
                ),
                Err(_) => Index::from_spec(ID_INDEX_ID, entry.clone(), false),
            };
            indexes.push(Arc::new(index.map_err(|e| corrupt(e.to_string()))?));
        }
        Ok(Self {
            id: u64::try_from(id).map_err(|e| corrupt(e.to_string()))?,
            ns: Namespace {
                db: meta.get_str("db").map_err(|e| corrupt(e.to_string()))?.to_owned(),
                coll: meta.get_str("name").map_err(|e| corrupt(e.to_string()))?.to_owned(),
            },
            uuid,
            validator: compile_validator(&options),
            capped: Capped::of(&options),
            options,
            index_set: Arc::new(RwLock::new(indexes.into())),
            write_lock: Arc::default(),
            dropped: Arc::default(),
            ddl_running: Arc::default(),
            next_record: Arc::default(),
        })
    }

    /// A copy with another namespace or options, sharing the write lock and the indexes.
    fn evolve(&self, ns: Namespace, options: Document) -> Self {
        Self {
            id: self.id,
            ns,
            uuid: self.uuid,
            validator: compile_validator(&options),
            // The layout is fixed at creation: only the limits may change.
            capped: Capped::of(&options).filter(|_| self.capped.is_some()),
            options,
            index_set: self.index_set.clone(),
            write_lock: self.write_lock.clone(),
            dropped: self.dropped.clone(),
            ddl_running: self.ddl_running.clone(),
            next_record: self.next_record.clone(),
        }
    }
}

/// Compiles the validator of `options`; a stored validator that does not compile (written
/// before validators were checked) keeps mongod's error for the writes it will fail.
fn compile_validator(options: &Document) -> Result<Option<Arc<Validator>>, QueryError> {
    Validator::from_options(options).map(|v| v.map(Arc::new)).map_err(|error| {
        QueryError::new(
            error.code(),
            format!("Parsing of collection validator failed :: caused by :: {}", error.message()),
        )
    })
}

/// The `_id` index every collection has.
pub fn id_index_spec() -> Document {
    doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" }
}

/// The `_id` index of a collection created with `options`. A clustered collection's
/// (`clusteredIndex`: every collection here is stored clustered by `_id`, so only its listing
/// differs) is its `clusteredIndex` with `clustered: true`, as mongod's `listIndexes` shows it.
fn id_index_spec_of(options: &Document) -> Document {
    match options.get_document("clusteredIndex") {
        Ok(clustered) => {
            let mut spec = clustered.clone();
            spec.insert("clustered", true);
            spec
        }
        Err(_) => id_index_spec(),
    }
}

/// The in-memory catalog.
#[derive(Debug, Default)]
pub struct Catalog {
    collections: RwLock<BTreeMap<Namespace, Arc<Collection>>>,
    next_id: Mutex<u64>,
}

/// A catalog change to persist: entries to write and to remove in one batch.
#[derive(Debug, Default)]
pub struct CatalogChange {
    /// Entries to (re)write.
    pub put: Vec<Arc<Collection>>,
    /// Namespaces whose entries go away.
    pub remove: Vec<Namespace>,
}

impl Catalog {
    /// Loads the catalog from `meta` entries (`(key, BSON)` pairs under the collection prefix).
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] for unreadable entries.
    pub fn load(entries: impl Iterator<Item = Vec<u8>>, next_id: u64) -> Result<Self, StorageError> {
        let mut collections: BTreeMap<Namespace, Arc<Collection>> = BTreeMap::new();
        for value in entries {
            let meta = Document::from_reader(value.as_slice())
                .map_err(|e| StorageError::Corrupt { what: "catalog entry", detail: e.to_string() })?;
            let collection = Collection::from_meta(&meta)?;
            collections.insert(collection.ns.clone(), Arc::new(collection));
        }
        Ok(Self { collections: RwLock::new(collections), next_id: Mutex::new(next_id) })
    }

    /// Replaces the catalog with `entries` and `next_id` as stored now, after another node
    /// changed them. A collection whose entry is unchanged keeps its version; a changed one
    /// (found by UUID) keeps its locks and flags, and every version of it sees the new
    /// indexes; one no longer stored is marked dropped.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] for unreadable entries; nothing changes then.
    pub fn reload(&self, entries: impl Iterator<Item = Vec<u8>>, next_id: u64) -> Result<(), StorageError> {
        let stored = Self::load(entries, next_id)?.collections.into_inner().unwrap_or_else(PoisonError::into_inner);
        let mut map = self.collections.write().unwrap_or_else(PoisonError::into_inner);
        let held: BTreeMap<Uuid, Arc<Collection>> = map.values().map(|c| (c.uuid, c.clone())).collect();
        let mut fresh = BTreeMap::new();
        for (ns, collection) in stored {
            let collection = match held.get(&collection.uuid) {
                Some(old) if old.ns == collection.ns && old.to_meta() == collection.to_meta() => old.clone(),
                Some(old) => {
                    old.set_indexes(collection.indexes());
                    Arc::new(old.evolve(collection.ns.clone(), collection.options.clone()))
                }
                None => collection,
            };
            fresh.insert(ns, collection);
        }
        let kept: std::collections::HashSet<Uuid> = fresh.values().map(|c| c.uuid).collect();
        for old in held.values().filter(|old| !kept.contains(&old.uuid)) {
            old.dropped.store(true, Ordering::Release);
        }
        *map = fresh;
        *self.next_id.lock().unwrap_or_else(PoisonError::into_inner) = next_id;
        Ok(())
    }

    /// The collection at `ns`, if it exists.
    pub fn get(&self, ns: &Namespace) -> Option<Arc<Collection>> {
        self.read().get(ns).cloned()
    }

    /// The catalog's current version of `collection` (found by UUID): a rename or `collMod`
    /// replaces the version a caller may still hold. `None` once it is dropped.
    pub fn current(&self, collection: &Collection) -> Option<Arc<Collection>> {
        let map = self.read();
        match map.get(&collection.ns) {
            Some(current) if current.uuid == collection.uuid => Some(current.clone()),
            _ => map.values().find(|c| c.uuid == collection.uuid).cloned(),
        }
    }

    /// Every collection, in namespace order.
    pub fn all(&self) -> Vec<Arc<Collection>> {
        self.read().values().cloned().collect()
    }

    /// The collections of database `db`.
    pub fn in_database(&self, db: &str) -> Vec<Arc<Collection>> {
        self.read().values().filter(|c| c.ns.db == db).cloned().collect()
    }

    /// A new collection (not yet registered) with a fresh id and UUID; returns it and the
    /// next id to persist.
    pub fn new_collection(&self, ns: Namespace, options: Document) -> (Arc<Collection>, u64) {
        let id = self.next_id();
        let capped = Capped::of(&options);
        // A capped collection's `_id_` index has entries of its own, under an id of its own.
        let id_index_id = if capped.is_some() { self.next_id() } else { ID_INDEX_ID };
        // The oplog has no index at all, as in mongod: it is read in time order only.
        let id_index = Index::from_spec(id_index_id, id_index_spec_of(&options), false).ok().filter(|_| !ns.is_oplog());
        let collection = Collection {
            id,
            ns,
            uuid: Uuid::new(),
            validator: compile_validator(&options),
            capped,
            options,
            index_set: Arc::new(RwLock::new(id_index.map(Arc::new).into_iter().collect())),
            write_lock: Arc::default(),
            dropped: Arc::default(),
            ddl_running: Arc::default(),
            next_record: Arc::default(),
        };
        (Arc::new(collection), self.peek_next_id())
    }

    /// Hands out a storage id (collections and indexes share the sequence); persist
    /// [`Catalog::peek_next_id`] in the same batch that uses it.
    pub fn next_id(&self) -> u64 {
        let mut next = self.next_id.lock().unwrap_or_else(PoisonError::into_inner);
        let id = *next;
        *next += 1;
        id
    }

    /// The id [`Catalog::next_id`] hands out next.
    pub fn peek_next_id(&self) -> u64 {
        *self.next_id.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A renamed or re-optioned version of `collection`.
    pub fn evolve(collection: &Collection, ns: Namespace, options: Document) -> Arc<Collection> {
        Arc::new(collection.evolve(ns, options))
    }

    /// Applies a persisted change to the in-memory map.
    pub fn apply(&self, change: &CatalogChange) {
        let mut map = self.collections.write().unwrap_or_else(PoisonError::into_inner);
        for ns in &change.remove {
            map.remove(ns);
        }
        for collection in &change.put {
            map.insert(collection.ns.clone(), collection.clone());
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Namespace, Arc<Collection>>> {
        self.collections.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The `meta` key of a collection's catalog entry.
pub fn entry_key(ns: &Namespace) -> Vec<u8> {
    meta_key(CATALOG_KIND, ns.full().as_bytes())
}

/// The catalog entry's stored bytes.
///
/// # Errors
/// [`StorageError::Corrupt`] if the metadata cannot be encoded (it always can).
pub fn entry_value(collection: &Collection) -> Result<Vec<u8>, StorageError> {
    collection.to_meta().to_vec().map_err(|e| StorageError::Corrupt { what: "catalog entry", detail: e.to_string() })
}
