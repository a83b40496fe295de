//! Storage: the boundary every storage engine implements, and the engine under it.
//!
//! # The boundary
//! Nothing above this module sees a key byte, a keyspace or an engine type. What it offers is
//! what a second engine (a PostgreSQL-protocol one, later) must offer too:
//! - **catalog operations** on [`Storage`]: collections by [`Namespace`] ([`Collection`],
//!   with its [`IndexSet`]), create / drop / rename / set options, index builds, drops and
//!   changes, per-collection totals (count and data size), `validate`;
//! - **snapshot reads** through a [`ReadView`] ([`Storage::snapshot`]): a point
//!   [`ReadView::get`] by `_id`; collection scans in `_id` order either way
//!   ([`ReadView::scan`], [`ReadView::scan_where`] filtering in place); index scans
//!   ([`ReadView::index_scan`]) within the query's [`IndexBounds`](crate::query::bounds) or
//!   `min`/`max` [`KeyLimits`], in a [`Direction`], yielding [`IndexEntry`]s that
//!   [`ReadView::fetch`] turns into documents; [`ReadView::count_keys`] for the planner's
//!   trials; and an index's key for `returnKey` ([`Index::scanned_key`]);
//! - **write batches**: a [`Writer`] per collection, which checks unique keys, maintains every
//!   index entry and the totals, and commits the document changes atomically;
//! - **durability tickets**: a commit returns a [`DurabilityTicket`]; [`Storage::wait_durable`]
//!   waits for it (group commit), the background flush makes everything durable within
//!   [`FLUSH_INTERVAL`], and a failed sync stops writes for good;
//! - **background work**: dropped collections' and indexes' keys are deleted after the catalog
//!   forgets them, the TTL monitor's [`Storage::delete_expired`];
//! - **transactions** ([`Transaction`]): a snapshot with the transaction's own writes over it
//!   (reads see both, through the same [`ReadView`]), statements written through a [`Writer`]
//!   in transaction mode, write-write conflict detection and one atomic commit; no caller
//!   depends on fjall's own transactions.
//!
//! It stays a set of concrete types rather than a trait: the shape is what matters, and a
//! trait over borrowed iterators and writers would cost more than it says.
//!
//! # The engine
//! Everything here is written on an ordered key-value store with three key spaces,
//! snapshots and atomic batches ([`engine`]); only `engine/`, the memory budget and
//! `--repair` know it is fjall. fjall keeps one database in `<dbpath>/engine`. The spaces:
//! - `meta`: format versions (of the data and of the key encoding), the catalog (one entry per collection), the next collection id,
//!   collections whose keys still await deletion, and the records of retryable writes ([`retryable`]);
//! - `docs`: key = collection id (8 bytes, big-endian) + order-preserving encoding of `_id`,
//!   value = the raw BSON document: the `_id` index is this order, with no entries of its own
//!   (collections are clustered by `_id`, so their natural order is `_id` order). A capped
//!   collection's key is the collection id + a record id (8 bytes, big-endian) handed out in
//!   insertion order, which is its natural order; its `_id_` index then has entries in
//!   `index` like any other, and inserts delete the lowest record ids past its limits;
//! - `index`: secondary index entries (see [`index`]): key = index id + key tuple + record key.
//!
//! Every engine call blocks, so callers run these functions off the async workers.

mod catalog;
pub mod clock;
mod disk;
mod durability;
mod engine;
mod error;
mod history;
pub mod index;
mod index_ddl;
pub mod keys;
mod memory;
mod namespace;
pub mod oplog;
mod read;
mod repair;
mod retryable;
mod tail;
mod ttl;
mod txn;
mod txn_ddl;
mod validate;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bson::{Document, doc};

pub use catalog::{Collection, IndexSet, id_index_spec};
pub use clock::LogicalClock;
pub use disk::DEFAULT_RESERVE_MB as DEFAULT_DISK_RESERVE_MB;
pub use durability::note_engine_failure;
pub use durability::{DurabilityTicket, FLUSH_INTERVAL, JournalStats, SyncObserver};
pub use engine::{EngineStats, KeyspaceStats, PostgresStats};
pub use error::StorageError;
pub use index::{Direction, Index, KeyLimits};
pub use index_ddl::{CreatedIndexes, IndexOptionChange, IndexSelector};
pub use memory::{MemoryBudget, MemoryUsage};
pub use namespace::{Namespace, validate_db_name};
pub use oplog::Statement as SessionStatement;
pub use oplog::{Entry as OplogEntry, Images as ChangeImages, Oplog};
pub use read::{DocumentFilter, DocumentIter, IndexEntry, IndexScan, ReadView, RecordId, record_id};
pub use repair::{CollectionRepair, DamagedJournal, LostRange, RepairReport, repair};
pub use tail::{InsertSignal, TailIter};
pub use txn::{DEFAULT_LOCK_REQUEST_TIMEOUT_MS, Transaction, is_held_by_transaction};
pub use validate::ValidateReport;
pub use writer::Writer;

use crate::error::{Error, ErrorCode, Result};
use catalog::{Catalog, CatalogChange};
use disk::DiskGuard;
use durability::Journal;
use engine::{Batch, CATALOG_KIND, CATALOG_VERSION_KEY, Engine, EngineLock, LockedRead, SharedLock, Space};
pub use engine::{EngineConfig, PostgresTarget, RequestViews};
use index::ID_INDEX_ID;
use read::{corrupt_document, decode_document, document_key};

/// Version of everything written under `<dbpath>/engine`; bumped on any format change.
///
/// - 1: the first layout.
/// - 2: hashed index keys are mongod's hash (MD5-based) instead of FNV-1a; a version 1
///   directory is upgraded when opened, by rebuilding its hashed indexes.
pub const FORMAT_VERSION: u32 = 2;
/// The one older version [`Storage::open`] upgrades from.
const HASHED_FNV_FORMAT_VERSION: u32 = 1;

const FORMAT_KEY: &[u8] = b"v";
/// Holds [`keys::KEY_FORMAT_VERSION`] as written: keys in `docs` and `index` sort only with
/// keys of the same layout.
const KEY_FORMAT_KEY: &[u8] = b"k";
/// The key format of directories written before it was recorded: the first layout.
const UNRECORDED_KEY_FORMAT_VERSION: u32 = 1;
const NEXT_ID_KEY: &[u8] = b"n";
/// Changed (to a new UUID) by every write to the user or role catalog on a shared database
/// (see [`Storage::principals_mark`]).
const PRINCIPALS_MARK_KEY: &[u8] = b"u";
/// Written and read back by [`Storage::probe`] (the readiness check).
const PROBE_KEY: &[u8] = b"hprobe";
/// Keys deleted per batch when a dropped collection's data is removed.
const DROP_BATCH: usize = 10_000;

/// The lock of catalog changes (see [`Storage::ddl_lock`]); the one across nodes goes first.
struct DdlGuard<'a> {
    _shared: Option<EngineLock>,
    _local: std::sync::MutexGuard<'a, ()>,
}

/// The catalog's version as stored (0 before the first change counted).
fn catalog_version(stored: Option<&[u8]>) -> u64 {
    stored.and_then(|bytes| <[u8; 8]>::try_from(bytes).ok()).map_or(0, u64::from_be_bytes)
}

/// Whether `ns` holds users or roles (`admin.system.users`, `admin.system.roles`).
fn holds_principals(ns: &Namespace) -> bool {
    ns.db == "admin" && (ns.coll == "system.users" || ns.coll == "system.roles")
}

/// The next storage id as stored (1 in a new database).
fn next_id(stored: Option<&[u8]>) -> u64 {
    stored.and_then(|bytes| <[u8; 8]>::try_from(bytes).ok()).map_or(1, u64::from_be_bytes)
}

/// Builds a `meta` key: a one-byte kind, then the name.
fn meta_key(kind: u8, name: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + name.len());
    key.push(kind);
    key.extend_from_slice(name);
    key
}

/// The storage engine handle shared by all requests.
pub struct Storage {
    /// The ordered key-value store under everything here (see [`engine`]).
    engine: Engine,
    journal: Journal,
    /// Refuses writes while the disk is nearly full (see [`disk`]).
    disk: DiskGuard,
    catalog: Catalog,
    /// The catalog's stored version `catalog` was loaded at (see [`Storage::refresh_catalog`]).
    catalog_version: AtomicU64,
    /// Serializes reloads of the catalog.
    catalog_reload: std::sync::Mutex<()>,
    /// Moves when a commit inserts into a capped collection (`awaitData` cursors wait on it).
    pub capped_inserts: InsertSignal,
    /// The cluster time: the oplog's entries take their times from it.
    pub clock: Arc<LogicalClock>,
    /// The oplog, on in replica-set mode once initiated.
    pub oplog: Oplog,
    /// Which open transaction wrote each document (the first writer wins).
    intents: txn::Intents,
    /// The memory budget and its split (see [`memory`]).
    budget: MemoryBudget,
    /// Serializes catalog changes (create, drop, rename, collMod).
    ddl: std::sync::Mutex<()>,
    /// The threads deleting dropped data (each holds the storage open until it ends).
    deletions: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// `<dbpath>/_tmp`: where blocking stages spill; emptied at every start.
    temp_dir: PathBuf,
    /// Held for the life of the process: two servers must not share a dbpath.
    _lock: File,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("collections", &self.catalog.all().len()).finish_non_exhaustive()
    }
}

impl Storage {
    /// Opens (or creates) the data directory with the smallest memory budget
    /// ([`MemoryBudget::MIN_BYTES`]); see [`Storage::open_with_budget`].
    ///
    /// # Errors
    /// As [`Storage::open_with_budget`].
    pub fn open(dbpath: &Path) -> std::result::Result<Self, StorageError> {
        Self::open_with_budget(dbpath, MemoryBudget::split(MemoryBudget::MIN_BYTES))
    }

    /// Opens (or creates) the data directory, locks it and loads the catalog; the engine's
    /// block cache and memtables are sized from `budget`.
    ///
    /// # Errors
    /// [`StorageError::DbPathInUse`] when another server holds it, a data or key format
    /// mismatch, or engine and I/O errors.
    pub fn open_with_budget(dbpath: &Path, budget: MemoryBudget) -> std::result::Result<Self, StorageError> {
        Self::open_engine(dbpath, &EngineConfig::Fjall(budget))
    }

    /// Opens (or creates) the data directory and the engine `config` names, locks the
    /// directory and loads the catalog. On PostgreSQL the directory keeps the lock and the
    /// spill files; the data is in the database.
    ///
    /// # Errors
    /// [`StorageError::DbPathInUse`] when another server holds the directory (or another node
    /// the database), a data or key format mismatch, or engine, connection and I/O errors.
    pub fn open_engine(dbpath: &Path, config: &EngineConfig) -> std::result::Result<Self, StorageError> {
        std::fs::create_dir_all(dbpath)?;
        let lock = lock_dbpath(dbpath)?;
        Self::open_locked(dbpath, config, lock)
    }

    /// [`Storage::open_engine`] for a caller that holds the dbpath's lock already
    /// (`--repair`, which reads the engine's files before it opens the storage).
    fn open_locked(dbpath: &Path, config: &EngineConfig, lock: File) -> std::result::Result<Self, StorageError> {
        repair::check_no_interrupted_swap(dbpath)?;
        let engine = Engine::open(&dbpath.join(ENGINE_DIR), config)?;
        let budget = match config {
            EngineConfig::Fjall(budget) => *budget,
            // PostgreSQL manages its own memory: nothing is budgeted here.
            EngineConfig::Postgres { .. } => MemoryBudget::split(0),
        };
        let stored_format = engine.get(Space::Meta, FORMAT_KEY)?;
        // Before anything is upgraded or rewritten: keys of another layout must not be touched.
        check_key_format(&engine, stored_format.is_none())?;
        let upgrade_hashed = match stored_format {
            None => {
                engine.insert(Space::Meta, FORMAT_KEY, FORMAT_VERSION.to_be_bytes())?;
                false
            }
            Some(found) => {
                let found = <[u8; 4]>::try_from(found.as_ref()).map(u32::from_be_bytes).unwrap_or(0);
                match found {
                    FORMAT_VERSION => false,
                    HASHED_FNV_FORMAT_VERSION => true,
                    _ => return Err(StorageError::FormatVersion { found, expected: FORMAT_VERSION }),
                }
            }
        };
        // Read before the entries: a change another node makes meanwhile is reloaded later.
        let loaded_version = catalog_version(engine.get(Space::Meta, CATALOG_VERSION_KEY)?.as_deref());
        let next_id = next_id(engine.get(Space::Meta, NEXT_ID_KEY)?.as_deref());
        let entries = engine
            .prefix(Space::Meta, [CATALOG_KIND])
            .map(|row| row.value().map(|v| v.to_vec()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let catalog = Catalog::load(entries.into_iter(), next_id)?;
        // Spill files of a previous run (a crash mid-sort) are worthless now.
        let temp_dir = dbpath.join(TEMP_DIR);
        if temp_dir.exists() {
            std::fs::remove_dir_all(&temp_dir)?;
        }
        let storage = Self {
            temp_dir,
            journal: Journal::new(engine.clone())?,
            disk: DiskGuard::new(dbpath),
            capped_inserts: InsertSignal::default(),
            clock: Arc::default(),
            oplog: Oplog::default(),
            intents: txn::Intents::default(),
            engine,
            catalog,
            catalog_version: AtomicU64::new(loaded_version),
            catalog_reload: std::sync::Mutex::new(()),
            budget,
            ddl: std::sync::Mutex::new(()),
            deletions: std::sync::Mutex::default(),
            _lock: lock,
        };
        // Another node sharing the database may be filling its temporary collections now.
        if !storage.engine.is_shared() {
            storage.drop_temporary_collections()?;
        }
        storage.finish_pending_drops()?;
        storage.backfill_totals()?;
        if upgrade_hashed {
            storage.rebuild_hashed_indexes()?;
        }
        Ok(storage)
    }

    /// Upgrades a format 1 directory: every hashed index's entries are rebuilt with mongod's
    /// hash, then the new version is recorded. An interrupted upgrade leaves version 1 on disk
    /// and starts over at the next open (the rebuild deletes what it finds first).
    fn rebuild_hashed_indexes(&self) -> std::result::Result<(), StorageError> {
        let to_storage = |error: Error| StorageError::Corrupt { what: "hashed index", detail: error.to_string() };
        for collection in self.catalog.all() {
            for index in collection.indexes().iter().filter(|i| i.pattern.is_hashed()) {
                self.delete_keys(Space::Index, index.prefix())?;
                let entries = self.build_entries(&collection, index).map_err(to_storage)?;
                let count = entries.len();
                let mut batch = self.engine.batch();
                for (key, value) in entries {
                    batch.insert(Space::Index, key, value);
                }
                batch.commit()?;
                tracing::info!(
                    target: "STORAGE",
                    id = 20401,
                    namespace = %collection.ns,
                    index = index.name,
                    keys = count,
                    "Rebuilt a hashed index with mongod's hash (data format 1 to 2)"
                );
            }
        }
        self.engine.insert(Space::Meta, FORMAT_KEY, FORMAT_VERSION.to_be_bytes())?;
        self.engine.persist()?;
        Ok(())
    }

    /// The collection at `ns`.
    pub fn collection(&self, ns: &Namespace) -> Option<Arc<Collection>> {
        self.fresh_catalog().get(ns)
    }

    /// The collection at `ns`, or mongod's 26 NamespaceNotFound `ns does not exist: <ns>`.
    ///
    /// # Errors
    /// As described.
    pub fn existing_collection(&self, ns: &Namespace) -> Result<Arc<Collection>> {
        self.fresh_catalog()
            .get(ns)
            .ok_or_else(|| Error::new(ErrorCode::NamespaceNotFound, format!("ns does not exist: {ns}")))
    }

    /// Every collection of `db`.
    pub fn collections_in(&self, db: &str) -> Vec<Arc<Collection>> {
        self.fresh_catalog().in_database(db)
    }

    /// Every collection.
    pub fn all_collections(&self) -> Vec<Arc<Collection>> {
        self.fresh_catalog().all()
    }

    /// Creates a collection.
    ///
    /// # Errors
    /// 48 NamespaceExists if it exists; storage errors.
    pub fn create_collection(&self, ns: &Namespace, options: Document) -> Result<Arc<Collection>> {
        let _ddl = self.ddl_lock()?;
        if self.catalog.get(ns).is_some() {
            return Err(Error::new(ErrorCode::NamespaceExists, format!("Collection {ns} already exists.")));
        }
        self.create_locked(ns, options)
    }

    /// The collection at `ns`, created with default options if missing (implicit creation on
    /// first write).
    ///
    /// # Errors
    /// Storage errors.
    pub fn collection_or_create(&self, ns: &Namespace) -> Result<Arc<Collection>> {
        if let Some(collection) = self.fresh_catalog().get(ns) {
            return Ok(collection);
        }
        let _ddl = self.ddl_lock()?;
        match self.catalog.get(ns) {
            Some(collection) => Ok(collection),
            None => self.create_locked(ns, Document::new()),
        }
    }

    fn create_locked(&self, ns: &Namespace, options: Document) -> Result<Arc<Collection>> {
        self.check_writable()?;
        let (collection, next_id) = self.catalog.new_collection(ns.clone(), options);
        let mut batch = self.engine.batch();
        batch.insert(Space::Meta, catalog::entry_key(ns), catalog::entry_value(&collection)?);
        batch.insert(Space::Meta, NEXT_ID_KEY, next_id.to_be_bytes());
        batch.insert(Space::Meta, totals_key(&collection), Totals::default().encode());
        let logged = txn_ddl::create_command(&collection);
        self.commit_durable(batch, &self.command_entry(ns, Some(collection.uuid), logged)?)?;
        self.catalog.apply(&CatalogChange { put: vec![collection.clone()], remove: Vec::new() });
        Ok(collection)
    }

    /// Drops a collection: gone from the catalog at once, its documents deleted in the
    /// background. Returns false if it did not exist.
    ///
    /// # Errors
    /// Storage errors.
    pub fn drop_collection(self: &Arc<Self>, ns: &Namespace) -> Result<bool> {
        let _ddl = self.ddl_lock()?;
        let Some(collection) = self.catalog.get(ns) else { return Ok(false) };
        if ns.is_oplog() && self.oplog.is_on() {
            return Err(Error::new(ErrorCode::IllegalOperation, "can't drop live oplog while replicating"));
        }
        self.check_writable()?;
        // IMPORTANT: taken before the catalog changes so no writer is half-way through a batch.
        let _writers = collection.lock_for_ddl(&self.engine)?;
        let mut batch = self.engine.batch();
        self.drop_into(&mut batch, &collection);
        self.commit_durable(batch, &self.command_entry(ns, Some(collection.uuid), doc! { "drop": &ns.coll })?)?;
        collection.dropped.store(true, Ordering::Release);
        self.catalog.apply(&CatalogChange { put: Vec::new(), remove: vec![ns.clone()] });
        self.delete_in_background();
        Ok(true)
    }

    /// Adds to `batch` the removal of `collection`'s catalog entry and the markers that have its
    /// documents and index entries deleted (in the background, or at the next start).
    fn drop_into(&self, batch: &mut Batch, collection: &Collection) {
        batch.remove(Space::Meta, catalog::entry_key(&collection.ns));
        batch.insert(Space::Meta, meta_key(b'd', &collection.prefix()), []);
        for index in collection.indexes().iter().filter(|i| i.id != ID_INDEX_ID) {
            batch.insert(Space::Meta, meta_key(b'i', &index.prefix()), []);
        }
        batch.remove(Space::Meta, totals_key(collection));
    }

    /// Where blocking stages write their spill files (`<dbpath>/_tmp`, created on demand and
    /// emptied at every start).
    pub fn temp_dir(&self) -> &Path {
        &self.temp_dir
    }

    /// Puts the collection `temp` in `target`'s place in one durable batch: `target` (if it
    /// exists) is dropped and `temp` takes its name, so a reader sees the old collection or
    /// the new one, never neither and never half of one (`$out`).
    ///
    /// # Errors
    /// 26 NamespaceNotFound when `temp` is gone; storage errors.
    pub fn replace_collection(self: &Arc<Self>, temp: &Namespace, target: &Namespace) -> Result<()> {
        let _ddl = self.ddl_lock()?;
        self.check_writable()?;
        let source = self
            .catalog
            .get(temp)
            .ok_or_else(|| Error::new(ErrorCode::NamespaceNotFound, format!("{temp} does not exist")))?;
        let old = self.catalog.get(target);
        // IMPORTANT: the old collection's writers finish their batches before it goes.
        let _writers = old.as_ref().map(|c| c.lock_for_ddl(&self.engine)).transpose()?;
        let renamed = Catalog::evolve(&source, target.clone(), source.options.clone());
        let mut batch = self.engine.batch();
        if let Some(old) = &old {
            self.drop_into(&mut batch, old);
        }
        batch.remove(Space::Meta, catalog::entry_key(temp));
        batch.insert(Space::Meta, catalog::entry_key(target), catalog::entry_value(&renamed)?);
        let dropped_target = old.as_ref().map(|old| bson::Bson::Binary(bson::Binary::from_uuid(old.uuid)));
        let entries = self.rename_entry(&source, target, dropped_target)?;
        self.commit_durable(batch, &entries)?;
        if let Some(old) = &old {
            old.dropped.store(true, Ordering::Release);
        }
        self.catalog.apply(&CatalogChange { put: vec![renamed], remove: vec![temp.clone(), target.clone()] });
        if old.is_some() {
            self.delete_in_background();
        }
        Ok(())
    }

    /// Drops the temporary collections a crash left behind (`$out` writes into
    /// `tmp.agg_out.*` and renames it at the end), as mongod does at startup.
    fn drop_temporary_collections(&self) -> std::result::Result<(), StorageError> {
        let leftovers: Vec<_> = self.catalog.all().into_iter().filter(|c| is_temporary(&c.ns)).collect();
        if leftovers.is_empty() {
            return Ok(());
        }
        let mut batch = self.engine.batch();
        for collection in &leftovers {
            self.drop_into(&mut batch, collection);
            tracing::info!(target: "STORAGE", id = 20315, namespace = %collection.ns, "Dropping a temporary collection left by an earlier run");
        }
        batch.commit()?;
        self.engine.persist()?;
        self.catalog
            .apply(&CatalogChange { put: Vec::new(), remove: leftovers.iter().map(|c| c.ns.clone()).collect() });
        Ok(())
    }

    /// Deletes, on a background thread, the data of every dropped collection and index.
    fn delete_in_background(self: &Arc<Self>) {
        let storage = Arc::clone(self);
        let thread = std::thread::spawn(move || {
            if let Err(error) = storage.finish_pending_drops() {
                tracing::error!(target: "STORAGE", id = 20400, error = %error, "Deleting dropped data failed; it resumes at next start");
            }
        });
        let mut deletions = self.deletions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        deletions.retain(|running| !running.is_finished());
        deletions.push(thread);
    }

    /// Renames `from` to `to` (within or across databases); the documents stay where they are
    /// since keys use the collection id. With `drop_target`, an existing `to` is dropped.
    ///
    /// # Errors
    /// 26 NamespaceNotFound, 48 NamespaceExists, storage errors.
    pub fn rename_collection(self: &Arc<Self>, from: &Namespace, to: &Namespace, drop_target: bool) -> Result<()> {
        if self.catalog.get(from).is_none() {
            return Err(Error::new(ErrorCode::NamespaceNotFound, "source namespace does not exist"));
        }
        if from == to {
            return Err(Error::new(ErrorCode::IllegalOperation, "Can't rename a collection to itself"));
        }
        if self.catalog.get(to).is_some() {
            if !drop_target {
                return Err(Error::new(ErrorCode::NamespaceExists, "target namespace exists"));
            }
            // The target goes in the rename's own batch, recorded in its oplog entry.
            return self.replace_collection(from, to);
        }
        let _ddl = self.ddl_lock()?;
        // IMPORTANT: looked up again under the DDL lock (a drop or rename may have come first),
        // and its writers finish their batches before it changes name: a batch that makes an
        // index multikey writes the collection's catalog entry.
        let source = self
            .catalog
            .get(from)
            .ok_or_else(|| Error::new(ErrorCode::NamespaceNotFound, "source namespace does not exist"))?;
        if self.catalog.get(to).is_some() {
            return Err(Error::new(ErrorCode::NamespaceExists, "target namespace exists"));
        }
        let _writers = source.lock_for_ddl(&self.engine)?;
        self.check_writable()?;
        let renamed = Catalog::evolve(&source, to.clone(), source.options.clone());
        let mut batch = self.engine.batch();
        batch.remove(Space::Meta, catalog::entry_key(from));
        batch.insert(Space::Meta, catalog::entry_key(to), catalog::entry_value(&renamed)?);
        self.commit_durable(batch, &self.rename_entry(&source, to, None)?)?;
        self.catalog.apply(&CatalogChange { put: vec![renamed], remove: vec![from.clone()] });
        Ok(())
    }

    /// Replaces a collection's options (collMod).
    ///
    /// # Errors
    /// 26 NamespaceNotFound, storage errors.
    pub fn set_options(&self, ns: &Namespace, options: Document) -> Result<Arc<Collection>> {
        let _ddl = self.ddl_lock()?;
        let current = self.existing_collection(ns)?;
        // IMPORTANT: writers finish their batches first, as for a rename.
        let _writers = current.lock_for_ddl(&self.engine)?;
        self.check_writable()?;
        let mut logged = doc! { "collMod": &ns.coll };
        logged.extend(options.clone());
        let updated = Catalog::evolve(&current, ns.clone(), options);
        let mut batch = self.engine.batch();
        batch.insert(Space::Meta, catalog::entry_key(ns), catalog::entry_value(&updated)?);
        self.commit_durable(batch, &self.command_entry(ns, Some(current.uuid), logged)?)?;
        self.catalog.apply(&CatalogChange { put: vec![updated.clone()], remove: Vec::new() });
        Ok(updated)
    }

    /// Starts a write to `collection`, holding its write lock until the writer is committed or
    /// dropped.
    ///
    /// # Errors
    /// Writes disabled after a failed sync; 26 NamespaceNotFound if it was just dropped.
    pub fn writer<'a>(&'a self, collection: &'a Arc<Collection>) -> Result<Writer<'a>> {
        self.check_writable()?;
        Writer::new(self, collection)
    }

    /// Blocks until the batch with journal `ticket` is on disk (group commit: waiters share
    /// one sync). For callers on a storage thread; a request's reply awaits
    /// [`Storage::durable`] instead.
    ///
    /// # Errors
    /// Writes disabled after a failed sync.
    pub fn wait_durable(&self, ticket: DurabilityTicket) -> Result<()> {
        Ok(self.journal.wait_durable(ticket.0)?)
    }

    /// Completes once the batch with journal `ticket` is on disk (group commit: waiters share
    /// one sync); waiting holds no thread.
    ///
    /// # Errors
    /// Writes disabled after a failed sync.
    pub async fn durable(&self, ticket: DurabilityTicket) -> Result<()> {
        Ok(self.journal.durable(ticket.0).await?)
    }

    /// A consistent view of all data as of now.
    pub fn snapshot(&self) -> ReadView {
        ReadView::new(self.engine.snapshot())
    }

    /// A consistent view of all data together with the catalog as stored at the view's
    /// instant, read through the same engine snapshot (not the in-memory catalog of now): a
    /// collection created, dropped, renamed or re-optioned while a backup reads the view is
    /// either wholly in it, as it was, or wholly out. The collections returned are detached
    /// copies: for reading through this view only, never for writing.
    ///
    /// # Errors
    /// Engine errors, or a catalog entry that does not parse.
    pub fn snapshot_with_catalog(&self) -> std::result::Result<(ReadView, Vec<Arc<Collection>>), StorageError> {
        let anchor = self.engine.snapshot();
        let entries = anchor
            .prefix(Space::Meta, [CATALOG_KIND])
            .map(|row| row.value().map(|v| v.to_vec()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        // The next id is never handed out from this copy.
        let catalog = Catalog::load(entries.into_iter(), 0)?;
        Ok((ReadView::new(anchor), catalog.all()))
    }

    /// Stored size of one collection's documents (sum of value lengths) and their count.
    ///
    /// # Errors
    /// Storage errors.
    pub fn collection_size(&self, collection: &Collection) -> Result<(u64, u64)> {
        let totals = self.totals(collection)?;
        Ok((totals.bytes, totals.count))
    }

    /// A collection's stored document count and data bytes, kept in `meta` and updated in
    /// every write batch, so counts and sizes never need a scan.
    fn totals(&self, collection: &Collection) -> Result<Totals> {
        match self.engine.get(Space::Meta, totals_key(collection))? {
            Some(bytes) => Totals::decode(&bytes),
            None => Ok(Totals::default()),
        }
    }

    /// Bytes the engine occupies on disk.
    pub fn disk_space(&self) -> u64 {
        self.engine.disk_space()
    }

    /// Checks that the engine accepts writes with a real round trip: writes a small value to
    /// `meta` and reads it back. Not synced: readiness must not cost an fsync per probe.
    ///
    /// # Errors
    /// [`StorageError::WritesDisabled`] after a failed journal sync, the engine's error, or
    /// [`StorageError::Corrupt`] if the value read back differs.
    pub fn probe(&self) -> std::result::Result<(), StorageError> {
        self.check_writable()?;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let value = nanos.to_be_bytes();
        self.engine.insert(Space::Meta, PROBE_KEY, value).map_err(|e| self.engine_write_failed(e))?;
        match self.engine.get(Space::Meta, PROBE_KEY)? {
            Some(read) if read.as_ref() == value => Ok(()),
            _ => Err(StorageError::Corrupt { what: "readiness probe", detail: "value read back differs".into() }),
        }
    }

    /// The engine's own figures, for metrics.
    ///
    /// # Errors
    /// Engine errors reading disk usage.
    pub fn engine_stats(&self) -> std::result::Result<EngineStats, StorageError> {
        self.engine.stats()
    }

    /// The mark every write to `admin.system.users` or `admin.system.roles` changes when other
    /// nodes share the database (`None` before the first): a node that finds it changed resolves
    /// its connections' privileges again, as mongos does every `userCacheInvalidationIntervalSecs`.
    ///
    /// # Errors
    /// Engine errors.
    pub fn principals_mark(&self) -> std::result::Result<Option<Vec<u8>>, StorageError> {
        Ok(self.engine.get(Space::Meta, PRINCIPALS_MARK_KEY)?.map(|mark| mark.to_vec()))
    }

    /// Whether other nodes serve the same data (PostgreSQL with `--pgSharedNodes`): this node
    /// answers as mongos does.
    pub fn is_shared(&self) -> bool {
        self.engine.is_shared()
    }

    /// Whether the data is in the embedded engine (not in PostgreSQL).
    pub fn is_embedded(&self) -> bool {
        self.engine.is_embedded()
    }

    /// Whether the data is reachable now: false while the PostgreSQL engine's database is
    /// unreachable (a restart, a failover); always true on the embedded engine.
    pub fn engine_reachable(&self) -> bool {
        self.engine.is_reachable()
    }

    /// BSON bytes of the documents stored in each database, from the per-collection totals
    /// kept in `meta` (no scan).
    ///
    /// # Errors
    /// Storage errors reading the totals.
    pub fn database_sizes(&self) -> Result<Vec<(String, u64)>> {
        let mut sizes: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
        for collection in self.catalog.all() {
            let bytes = self.totals(&collection)?.bytes;
            *sizes.entry(collection.ns.db.clone()).or_default() += bytes;
        }
        Ok(sizes.into_iter().collect())
    }

    /// Sets the observer told each journal sync's duration.
    pub fn set_sync_observer(&self, observer: SyncObserver) {
        self.journal.set_observer(observer);
    }

    /// Arms or disarms the `failJournalSync` fail point (test commands only).
    pub fn fail_journal_syncs(&self, on: bool) {
        self.journal.fail_syncs(on);
    }

    /// Syncs whatever is committed but not yet durable, and waits for it (shutdown).
    pub fn flush(&self) {
        self.journal.flush();
        self.bound_write_buffers();
    }

    /// Asks for a sync of whatever is committed but not yet durable, without waiting (the
    /// 100 ms background flush), and keeps the write buffers within the memory budget after
    /// writes that do not check it themselves (catalog changes, index builds, background
    /// deletes).
    pub fn request_flush(&self) {
        self.journal.request_flush();
        self.bound_write_buffers();
    }

    /// Journal sync counters.
    pub fn journal_stats(&self) -> JournalStats {
        self.journal.stats()
    }

    /// Whether writes are accepted: false for good after a failed journal sync or engine
    /// write, and while the disk is below the reserve.
    pub fn is_writable(&self) -> bool {
        self.write_refusal().is_none()
    }

    /// Why writes are refused now, if they are: the one answer `/readyz`, `/health`, the
    /// metrics and `serverStatus` all report.
    pub fn write_refusal(&self) -> Option<String> {
        self.check_writable().err().map(|error| error.to_string())
    }

    /// Fails when writes are refused: after a failed journal sync or engine write (for good),
    /// or while the disk holding the data has less free space than the reserve (until space
    /// is freed).
    ///
    /// # Errors
    /// [`StorageError::WritesDisabled`] or [`StorageError::OutOfDiskSpace`].
    pub fn check_writable(&self) -> std::result::Result<(), StorageError> {
        self.journal.check_writable()?;
        self.disk.check()
    }

    /// The free space kept in reserve (`monarchMinAvailableDiskSpaceMB`), in mebibytes.
    pub fn min_available_disk_space_mb(&self) -> u64 {
        self.disk.reserve_mb()
    }

    /// Sets the free space kept in reserve, in mebibytes (0: no reserve).
    pub fn set_min_available_disk_space_mb(&self, mb: u64) {
        self.disk.set_reserve_mb(mb);
    }

    /// Records that the engine failed to write: fjall stops accepting writes after any failed
    /// journal write, so writes are refused for good (until a restart replays the journal).
    /// On PostgreSQL a failed transaction leaves nothing behind, so writes go on.
    /// Returns the error for the caller to report.
    fn engine_write_failed(&self, error: StorageError) -> StorageError {
        if error.is_engine_stopped() {
            // Stopped by an earlier failure (another write, or a background flush).
            let reason = durability::engine_stopped();
            self.journal.fail(reason.clone());
            return StorageError::WritesDisabled(reason);
        }
        if self.engine.is_embedded() {
            self.journal.fail(format!("a failed storage engine write ({error})"));
        }
        error
    }

    /// Takes the lock of catalog changes: this node's, and the one across the nodes sharing
    /// the database, after which the catalog is brought up to date with theirs.
    ///
    /// # Errors
    /// The engine's, taking the lock across nodes or reading their changes.
    fn ddl_lock(&self) -> std::result::Result<DdlGuard<'_>, StorageError> {
        let local = self.ddl.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let shared = self.lock_with_fresh_catalog(SharedLock::Catalog)?;
        Ok(DdlGuard { _shared: shared, _local: local })
    }

    /// Brings the catalog up to date when other nodes share the database and one of them
    /// changed it: a point read of the catalog's version and, when it moved, a reload from
    /// one snapshot. Nothing on a database of its own.
    ///
    /// # Errors
    /// The engine's; an unreadable catalog entry.
    fn refresh_catalog(&self) -> std::result::Result<(), StorageError> {
        if !self.engine.is_shared() {
            return Ok(());
        }
        self.catch_up_catalog(self.engine.get(Space::Meta, CATALOG_VERSION_KEY)?.as_deref())
    }

    /// Takes `what`'s lock across the nodes sharing the database and, in the same round
    /// trip, brings the catalog up to date with what they changed; `None` (and nothing read)
    /// on a database of its own.
    ///
    /// # Errors
    /// The engine's, taking the lock or reading the catalog.
    fn lock_with_fresh_catalog(&self, what: SharedLock) -> std::result::Result<Option<EngineLock>, StorageError> {
        let Some((lock, read)) =
            self.engine.lock_reading(what, &[LockedRead::Get(Space::Meta, CATALOG_VERSION_KEY)])?
        else {
            return Ok(None);
        };
        self.catch_up_catalog(read.first().and_then(Option::as_deref))?;
        Ok(Some(lock))
    }

    /// Reloads the catalog from one snapshot when `stored`, the catalog version just read,
    /// is not the one it was loaded at.
    fn catch_up_catalog(&self, stored: Option<&[u8]>) -> std::result::Result<(), StorageError> {
        if catalog_version(stored) == self.catalog_version.load(Ordering::Acquire) {
            return Ok(());
        }
        let _reloading = self.catalog_reload.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let view = self.engine.snapshot();
        let version = catalog_version(view.get(Space::Meta, CATALOG_VERSION_KEY)?.as_deref());
        if version == self.catalog_version.load(Ordering::Acquire) {
            return Ok(());
        }
        let next_id = next_id(view.get(Space::Meta, NEXT_ID_KEY)?.as_deref());
        let entries = view
            .prefix(Space::Meta, [CATALOG_KIND])
            .map(|row| row.value().map(|v| v.to_vec()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        self.catalog.reload(entries.into_iter(), next_id)?;
        self.catalog_version.store(version, Ordering::Release);
        tracing::debug!(target: "STORAGE", id = 7_000_436, version, "Reloaded the catalog another node changed");
        Ok(())
    }

    /// The catalog, brought up to date first when other nodes share the database. A failed
    /// check leaves the catalog as it is: the operation's own storage calls fail the same way.
    /// Within a request, the first lookup checks (see [`RequestViews`]).
    fn fresh_catalog(&self) -> &Catalog {
        if RequestViews::catalog_checked() {
            return &self.catalog;
        }
        match self.refresh_catalog() {
            Ok(()) => RequestViews::note_catalog_checked(),
            Err(error) => {
                tracing::debug!(target: "STORAGE", id = 7_000_437, %error, "Could not check the catalog's version")
            }
        }
        &self.catalog
    }

    /// The oplog entry of a command on `ns` (none for an unlogged namespace, or with the
    /// oplog off).
    fn command_entry(&self, ns: &Namespace, ui: Option<bson::Uuid>, o: Document) -> Result<Vec<OplogEntry>> {
        if !self.oplog.is_on() || !oplog::is_logged(ns) {
            return Ok(Vec::new());
        }
        Ok(vec![OplogEntry::command(&ns.db, ui, &o)?])
    }

    /// The oplog entry of renaming `source` to `to` (`dropped_target`: the UUID of the
    /// collection the rename replaces).
    fn rename_entry(
        &self,
        source: &Collection,
        to: &Namespace,
        dropped_target: Option<bson::Bson>,
    ) -> Result<Vec<OplogEntry>> {
        let o = doc! {
            "renameCollection": source.ns.full(),
            "to": to.full(),
            "stayTemp": false,
            "dropTarget": dropped_target.unwrap_or(bson::Bson::Boolean(false)),
        };
        if !oplog::is_logged(to) {
            return Ok(Vec::new());
        }
        self.command_entry(&source.ns, Some(source.uuid), o)
    }

    /// Commits a catalog batch, with the oplog `entries` recording it, and waits for it to
    /// be durable: catalog changes are always journaled before they are acknowledged.
    fn commit_durable(&self, batch: Batch, entries: &[OplogEntry]) -> Result<()> {
        self.commit_logged(batch, entries)?;
        let ticket = self.journal.committed();
        self.journal.wait_durable(ticket)?;
        Ok(())
    }

    /// Deletes every key under `prefix` in `keyspace`, then the drop marker `marker`.
    fn delete_prefix(&self, space: Space, prefix: [u8; 8], marker: &[u8]) -> std::result::Result<(), StorageError> {
        self.delete_keys(space, prefix)?;
        self.engine.remove(Space::Meta, marker).map_err(|e| self.engine_write_failed(e))?;
        self.journal.committed();
        Ok(())
    }

    /// Deletes every key under `prefix` in `keyspace`, in batches.
    fn delete_keys(&self, space: Space, prefix: [u8; 8]) -> std::result::Result<(), StorageError> {
        loop {
            let keys: Vec<_> = self
                .engine
                .prefix(space, prefix)
                .take(DROP_BATCH)
                .map(|row| row.key())
                .collect::<std::result::Result<_, _>>()?;
            if keys.is_empty() {
                break;
            }
            // Deletions write tombstones: they wait for space like any other write.
            self.check_writable()?;
            let mut batch = self.engine.batch();
            for key in keys {
                batch.remove(space, key);
            }
            batch.commit().map_err(|e| self.engine_write_failed(e))?;
            self.journal.committed();
        }
        Ok(())
    }

    /// Counts collections written before totals were kept (once; later writes maintain them).
    fn backfill_totals(&self) -> std::result::Result<(), StorageError> {
        for collection in self.catalog.all() {
            if self.engine.contains(Space::Meta, totals_key(&collection))? {
                continue;
            }
            let mut totals = Totals::default();
            for guard in self.engine.prefix(Space::Docs, collection.prefix()) {
                totals = totals.apply(1, guard.value()?.len() as i64);
            }
            self.engine.insert(Space::Meta, totals_key(&collection), totals.encode())?;
        }
        Ok(())
    }

    /// Deletes the data of dropped collections and indexes now, and waits for the deletion
    /// threads started before to end (so they no longer hold the storage open): an offline
    /// tool (a restore that replays drops) hands its directory over only once nothing is
    /// left to do in it.
    ///
    /// # Errors
    /// Storage errors.
    pub fn finish_drops(&self) -> std::result::Result<(), StorageError> {
        self.finish_pending_drops()?;
        let running = std::mem::take(&mut *self.deletions.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for thread in running {
            // A thread that panicked left its work to the next start; nothing to report here.
            let _ = thread.join();
        }
        Ok(())
    }

    /// Deletes the data of dropped collections (marker `d` + id) and indexes (`i` + id).
    fn finish_pending_drops(&self) -> std::result::Result<(), StorageError> {
        for (kind, space) in [(b'd', Space::Docs), (b'i', Space::Index)] {
            let markers: Vec<_> =
                self.engine.prefix(Space::Meta, [kind]).map(|g| g.key()).collect::<std::result::Result<_, _>>()?;
            for marker in markers {
                if let Some(id) = marker.get(1..9).and_then(|id| <[u8; 8]>::try_from(id).ok()) {
                    self.delete_prefix(space, id, &marker)?;
                }
            }
        }
        Ok(())
    }
}

/// Refuses a directory whose keys were written in another layout than [`keys`] encodes, and
/// records the layout where it is not recorded yet: in a new directory (`fresh`), and in one
/// written before the version was kept, whose keys are the first layout by construction.
/// A newer layout is refused (an older build cannot read it). When [`keys::KEY_FORMAT_VERSION`]
/// is bumped, the older layouts it can convert become an upgrade here (rewriting the keys of
/// `docs` and `index`), as [`FORMAT_VERSION`] 1 rebuilds hashed indexes at open.
fn check_key_format(engine: &Engine, fresh: bool) -> std::result::Result<(), StorageError> {
    let stored = engine.get(Space::Meta, KEY_FORMAT_KEY)?;
    let found = match (&stored, fresh) {
        (Some(bytes), _) => <[u8; 4]>::try_from(bytes.as_ref()).map(u32::from_be_bytes).map_err(|_| {
            StorageError::Corrupt { what: "key format version", detail: format!("{} bytes", bytes.len()) }
        })?,
        (None, true) => keys::KEY_FORMAT_VERSION,
        (None, false) => UNRECORDED_KEY_FORMAT_VERSION,
    };
    if found != keys::KEY_FORMAT_VERSION {
        return Err(StorageError::KeyFormatVersion { found, expected: keys::KEY_FORMAT_VERSION });
    }
    if stored.is_none() {
        engine.insert(Space::Meta, KEY_FORMAT_KEY, found.to_be_bytes())?;
    }
    Ok(())
}

/// Takes the dbpath's lock file, held for the life of the process: two servers (or a server
/// and `--repair`) must not share a dbpath.
///
/// # Errors
/// [`StorageError::DbPathInUse`] when another process holds it; I/O errors.
fn lock_dbpath(dbpath: &Path) -> std::result::Result<File, StorageError> {
    let lock_path = dbpath.join("monarchd.lock");
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path)?;
    lock.try_lock()
        .map_err(|e| StorageError::DbPathInUse { path: lock_path.display().to_string(), reason: e.to_string() })?;
    Ok(lock)
}

/// The fjall database's folder under the dbpath.
const ENGINE_DIR: &str = "engine";

/// The folder under the dbpath where spill files go, as mongod's `_tmp`.
pub const TEMP_DIR: &str = "_tmp";

/// The prefix of the temporary collections `$out` writes into before renaming them.
pub const TEMPORARY_PREFIX: &str = "tmp.agg_out.";

/// Whether `ns` is a temporary collection of `$out`.
pub fn is_temporary(ns: &Namespace) -> bool {
    ns.coll.starts_with(TEMPORARY_PREFIX)
}

/// The `meta` key of a collection's totals.
fn totals_key(collection: &Collection) -> Vec<u8> {
    meta_key(b's', &collection.prefix())
}

/// A collection's document count and data bytes (the sum of its documents' BSON sizes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Totals {
    count: u64,
    bytes: u64,
}

impl Totals {
    fn apply(self, count_delta: i64, bytes_delta: i64) -> Self {
        Self {
            count: self.count.saturating_add_signed(count_delta),
            bytes: self.bytes.saturating_add_signed(bytes_delta),
        }
    }

    fn encode(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.count.to_be_bytes());
        out[8..].copy_from_slice(&self.bytes.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let field = |range: std::ops::Range<usize>| {
            bytes.get(range).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_be_bytes).ok_or_else(|| {
                Error::from(StorageError::Corrupt {
                    what: "collection totals",
                    detail: format!("{} bytes", bytes.len()),
                })
            })
        };
        Ok(Self { count: field(0..8)?, bytes: field(8..16)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_probe_fails_after_a_failed_sync() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let storage = Storage::open(dir.path())?;
        let observed = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = observed.clone();
        storage.set_sync_observer(Box::new(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        }));
        storage.probe()?;
        storage.fail_journal_syncs(true);
        let ticket = DurabilityTicket(storage.journal.committed());
        assert!(storage.wait_durable(ticket).is_err());
        assert!(!storage.is_writable());
        assert!(matches!(storage.probe(), Err(StorageError::WritesDisabled(_))));
        assert_eq!(observed.load(Ordering::Relaxed), 1, "the failed sync is timed too");
        let stats = storage.engine_stats()?;
        assert_eq!(stats.keyspaces.map(|k| k.name), ["meta", "docs", "index"]);
        Ok(())
    }

    #[test]
    fn storage_refuses_another_format_version() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        {
            let storage = Storage::open(dir.path())?;
            storage.engine.insert(Space::Meta, FORMAT_KEY, 999u32.to_be_bytes())?;
            storage.engine.persist()?;
        }
        match Storage::open(dir.path()) {
            Err(StorageError::FormatVersion { found: 999, expected: FORMAT_VERSION }) => Ok(()),
            other => Err(format!("expected a format error, got {other:?}").into()),
        }
    }

    #[test]
    fn storage_records_the_key_format_and_refuses_another() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        {
            let storage = Storage::open(dir.path())?;
            let recorded = storage.engine.get(Space::Meta, KEY_FORMAT_KEY)?.ok_or("key format not recorded")?;
            assert_eq!(recorded.as_ref(), keys::KEY_FORMAT_VERSION.to_be_bytes());
            storage.engine.insert(Space::Meta, KEY_FORMAT_KEY, 7u32.to_be_bytes())?;
            storage.engine.persist()?;
        }
        match Storage::open(dir.path()) {
            Err(StorageError::KeyFormatVersion { found: 7, expected: keys::KEY_FORMAT_VERSION }) => Ok(()),
            other => Err(format!("expected a key format error, got {other:?}").into()),
        }
    }

    #[test]
    fn storage_directory_without_a_recorded_key_format_is_version_1()
    -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let ns = Namespace::new("db", "c")?;
        {
            let storage = Storage::open(dir.path())?;
            let collection = storage.collection_or_create(&ns)?;
            let mut writer = storage.writer(&collection)?;
            writer.insert(bson::rawdoc! { "_id": 1 })?;
            writer.commit()?;
            // What a server from before the key format was recorded left.
            storage.engine.remove(Space::Meta, KEY_FORMAT_KEY)?;
            storage.engine.persist()?;
        }
        let storage = Storage::open(dir.path())?;
        let recorded = storage.engine.get(Space::Meta, KEY_FORMAT_KEY)?.ok_or("key format not recorded")?;
        assert_eq!(recorded.as_ref(), UNRECORDED_KEY_FORMAT_VERSION.to_be_bytes());
        let collection = storage.collection(&ns).ok_or("collection")?;
        assert_eq!(storage.collection_size(&collection)?.1, 1);
        Ok(())
    }

    #[test]
    fn storage_totals_follow_inserts_replacements_and_deletes() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let storage = Storage::open(dir.path())?;
        let ns = Namespace::new("db", "c")?;
        let collection = storage.collection_or_create(&ns)?;
        let small = bson::rawdoc! { "_id": 1, "v": "a" };
        let other = bson::rawdoc! { "_id": 2 };
        let mut writer = storage.writer(&collection)?;
        writer.insert(small.clone())?;
        writer.insert(other.clone())?;
        writer.commit()?;
        let (bytes, count) = storage.collection_size(&collection)?;
        assert_eq!((count, bytes), (2, (small.as_bytes().len() + other.as_bytes().len()) as u64));
        let bigger = bson::rawdoc! { "_id": 1, "v": "a much longer value" };
        let mut writer = storage.writer(&collection)?;
        writer.replace(bigger.clone())?;
        writer.delete(bson::RawBsonRef::Int32(2))?;
        writer.commit()?;
        assert_eq!(storage.collection_size(&collection)?, (bigger.as_bytes().len() as u64, 1));
        // Totals missing (data from before they were kept) are rebuilt at the next start.
        storage.engine.remove(Space::Meta, totals_key(&collection))?;
        drop(collection);
        drop(storage);
        let storage = Storage::open(dir.path())?;
        let collection = storage.collection(&ns).ok_or("collection")?;
        assert_eq!(storage.collection_size(&collection)?, (bigger.as_bytes().len() as u64, 1));
        Ok(())
    }

    #[test]
    fn storage_upgrades_format_1_by_rebuilding_hashed_indexes() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let ns = Namespace::new("db", "c")?;
        let (hashed, plain) = {
            let storage = Storage::open(dir.path())?;
            let collection = storage.collection_or_create(&ns)?;
            let mut writer = storage.writer(&collection)?;
            for n in 0..50 {
                writer.insert(bson::rawdoc! { "_id": n, "h": n, "p": n })?;
            }
            writer.commit()?;
            storage.create_indexes(
                &ns,
                vec![
                    bson::doc! { "v": 2, "key": { "h": "hashed" }, "name": "h_hashed" },
                    bson::doc! { "v": 2, "key": { "p": 1 }, "name": "p_1" },
                ],
            )?;
            let collection = storage.collection(&ns).ok_or("collection")?;
            let index = |name: &str| collection.indexes().iter().find(|i| i.name == name).map(|i| i.prefix());
            let (hashed, plain) = (index("h_hashed").ok_or("h_hashed")?, index("p_1").ok_or("p_1")?);
            // What a format 1 server left: other hash values under the hashed index.
            let old: Vec<_> = storage
                .engine
                .prefix(Space::Index, hashed)
                .map(|g| g.into_inner())
                .collect::<std::result::Result<_, _>>()?;
            for (key, value) in old {
                storage.engine.remove(Space::Index, key.clone())?;
                let mut stale = key.to_vec();
                if let Some(byte) = stale.get_mut(9) {
                    *byte ^= 0x5a;
                }
                storage.engine.insert(Space::Index, stale, value)?;
            }
            storage.engine.insert(Space::Meta, FORMAT_KEY, HASHED_FNV_FORMAT_VERSION.to_be_bytes())?;
            storage.engine.persist()?;
            (hashed, plain)
        };
        let storage = Storage::open(dir.path())?;
        let version = storage.engine.get(Space::Meta, FORMAT_KEY)?.ok_or("version")?;
        assert_eq!(version.as_ref(), FORMAT_VERSION.to_be_bytes());
        let collection = storage.collection(&ns).ok_or("collection")?;
        let index = collection.indexes().iter().find(|i| i.name == "h_hashed").cloned().ok_or("h_hashed")?;
        let mut stored: Vec<Vec<u8>> = storage
            .engine
            .prefix(Space::Index, hashed)
            .map(|g| g.key().map(|k| k.to_vec()))
            .collect::<std::result::Result<_, _>>()?;
        let mut expected: Vec<Vec<u8>> = storage.build_entries(&collection, &index)?.into_keys().collect();
        stored.sort();
        expected.sort();
        assert_eq!(stored.len(), 50);
        assert_eq!(stored, expected, "the hashed index holds exactly mongod-hash entries");
        assert_eq!(storage.engine.prefix(Space::Index, plain).count(), 50, "other indexes are left as they were");
        Ok(())
    }

    #[test]
    fn storage_lock_keeps_a_second_opener_out() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let _first = Storage::open(dir.path())?;
        match Storage::open(dir.path()) {
            Err(StorageError::DbPathInUse { .. }) => Ok(()),
            other => Err(format!("expected DbPathInUse, got {other:?}").into()),
        }
    }

    /// The collections a storage knows, by name and UUID.
    fn catalog_names(storage: &Storage) -> Vec<(String, bson::Uuid)> {
        let mut names: Vec<_> = storage.all_collections().iter().map(|c| (c.ns.full(), c.uuid)).collect();
        names.sort();
        names
    }

    /// Waits until the background deletions (which hold the storage) are done, then closes it.
    fn close(storage: Arc<Storage>) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while Arc::strong_count(&storage) > 1 {
            assert!(std::time::Instant::now() < deadline, "background deletions did not finish");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        storage.flush();
        drop(storage);
        Ok(())
    }

    /// Index DDL that looked its collection up while a drop of it was committing must not
    /// write the dropped collection's catalog entry back: after a restart the collection would
    /// reappear, with whatever the background deletion had not removed yet. Found by the crash
    /// loop's reasoning (tests/crash_loop.rs); each round races a build and a drop.
    #[test]
    fn storage_index_ddl_racing_a_drop_leaves_the_collection_dropped()
    -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let storage = Arc::new(Storage::open(dir.path())?);
        for round in 0..20 {
            let ns = Namespace::new("db", &format!("c{round}"))?;
            let collection = storage.collection_or_create(&ns)?;
            let mut writer = storage.writer(&collection)?;
            for i in 0..200 {
                writer.insert(bson::rawdoc! { "_id": i, "a": i })?;
            }
            writer.commit()?;
            if round % 2 == 0 {
                storage.create_indexes(&ns, vec![doc! { "v": 2, "key": { "b": 1 }, "name": "b_1" }])?;
            }
            let racer = {
                let storage = storage.clone();
                let ns = ns.clone();
                std::thread::spawn(move || {
                    if round % 2 == 0 {
                        let _ = storage.drop_indexes(&ns, &IndexSelector::Names(vec!["b_1".to_owned()]));
                    } else {
                        let _ = storage.create_indexes(&ns, vec![doc! { "v": 2, "key": { "a": 1 }, "name": "a_1" }]);
                    }
                })
            };
            storage.drop_collection(&ns)?;
            racer.join().map_err(|_| "racing DDL panicked")?;
        }
        let before = catalog_names(&storage);
        close(storage)?;
        let storage = Storage::open(dir.path())?;
        assert_eq!(catalog_names(&storage), before);
        Ok(())
    }

    /// A writer holding the collection as it was before a rename (looked up by a command that
    /// began before it) makes an index multikey: the catalog entry that records the flag must
    /// be the collection's current one. Writing back its own copy restored the old name, so
    /// after a restart two names shared one collection's documents.
    #[test]
    fn storage_multikey_write_through_a_renamed_collection_keeps_the_new_name()
    -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let (from, to) = (Namespace::new("db", "from")?, Namespace::new("db", "to")?);
        let storage = Arc::new(Storage::open(dir.path())?);
        let stale = storage.collection_or_create(&from)?;
        storage.create_indexes(&from, vec![doc! { "v": 2, "key": { "a": 1 }, "name": "a_1" }])?;
        storage.rename_collection(&from, &to, false)?;
        let mut writer = storage.writer(&stale)?;
        writer.insert(bson::rawdoc! { "_id": 1, "a": [1, 2] })?;
        let ticket = writer.commit()?.ok_or("a ticket")?;
        storage.wait_durable(ticket)?;
        let before = catalog_names(&storage);
        close(storage)?;
        let storage = Storage::open(dir.path())?;
        assert_eq!(catalog_names(&storage), before);
        assert_eq!(before.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(), ["db.to"]);
        let index = storage.collection(&to).and_then(|c| c.index("a_1")).ok_or("a_1")?;
        assert!(index.is_multikey(), "the multikey flag survives the restart");
        Ok(())
    }

    /// A dropped index's entries are deleted in the background, as a dropped collection's
    /// are, not left on disk until the next start.
    #[test]
    fn storage_dropped_index_entries_are_deleted_in_the_background()
    -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let storage = Arc::new(Storage::open(dir.path())?);
        let ns = Namespace::new("db", "c")?;
        let collection = storage.collection_or_create(&ns)?;
        let mut writer = storage.writer(&collection)?;
        for i in 0..100 {
            writer.insert(bson::rawdoc! { "_id": i, "a": i })?;
        }
        writer.commit()?;
        storage.create_indexes(&ns, vec![doc! { "v": 2, "key": { "a": 1 }, "name": "a_1" }])?;
        let index = collection.index("a_1").ok_or("a_1")?;
        assert_eq!(storage.engine.prefix(Space::Index, index.prefix()).count(), 100);
        storage.drop_indexes(&ns, &IndexSelector::Names(vec!["a_1".to_owned()]))?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while storage.engine.prefix(Space::Index, index.prefix()).count() > 0
            || storage.engine.prefix(Space::Meta, [b'i']).next().is_some()
        {
            assert!(std::time::Instant::now() < deadline, "the dropped index's entries are still there");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        close(storage)
    }

    #[test]
    fn storage_snapshot_with_catalog_sees_the_catalog_of_its_instant()
    -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let storage = Arc::new(Storage::open(dir.path())?);
        let (kept, dropped, created) =
            (Namespace::new("db", "kept")?, Namespace::new("db", "dropped")?, Namespace::new("db", "created")?);
        for ns in [&kept, &dropped] {
            let collection = storage.collection_or_create(ns)?;
            let mut writer = storage.writer(&collection)?;
            writer.insert(bson::rawdoc! { "_id": 1 })?;
            writer.commit()?;
        }
        let (view, collections) = storage.snapshot_with_catalog()?;
        // After the snapshot: a new document, a dropped collection, a new collection and index.
        let collection = storage.collection(&kept).ok_or("kept")?;
        let mut writer = storage.writer(&collection)?;
        writer.insert(bson::rawdoc! { "_id": 2 })?;
        writer.commit()?;
        storage.drop_collection(&dropped)?;
        storage.collection_or_create(&created)?;
        storage.create_indexes(&kept, vec![bson::doc! { "v": 2, "key": { "a": 1 }, "name": "a_1" }])?;

        let names: Vec<String> = collections.iter().map(|c| c.ns.full()).collect();
        assert_eq!(names, ["db.dropped", "db.kept"]);
        for collection in &collections {
            assert_eq!(view.scan(collection, Direction::Forward).count(), 1, "{}", collection.ns);
        }
        let kept_then = collections.iter().find(|c| c.ns == kept).ok_or("kept in the snapshot")?;
        let indexes: Vec<String> = kept_then.indexes().iter().map(|index| index.name.clone()).collect();
        assert_eq!(indexes, ["_id_"]);
        Ok(())
    }
}
