//! The engine: the ordered key-value store everything else in `storage/` is written on.
//!
//! The rest of `storage/` (catalog, documents, indexes, the oplog, transactions) builds
//! Monarch's own keys and values and reads and writes them through this interface only:
//! - three ordered key spaces ([`Space`]) of byte keys;
//! - point reads and ordered range reads of the latest data ([`Engine::get`],
//!   [`Engine::prefix`], [`Engine::range`]), each row read lazily ([`Row`]);
//! - consistent snapshots ([`Snapshot`]) that read as of their own instant, or as of a later
//!   [`Instant`] they keep readable (the snapshot history of `readConcern: snapshot`);
//! - atomic write batches across the spaces ([`Batch`]), and single writes;
//! - durability: [`Engine::persist`], and [`SyncTarget`](super::durability::SyncTarget) for
//!   the group-commit journal.
//!
//! Two engines implement it: fjall, embedded (the default), and PostgreSQL
//! (`--storageEngine postgres`, see `docs/design/postgres-engine.md`). The types here are
//! enums over both rather than trait objects, so the embedded engine pays one predictable
//! branch per call and no allocation. Engine-specific tools stay beside it: the memory budget
//! (`memory.rs`) and `--repair` (`repair.rs`) are fjall's alone.

mod fjall;
mod postgres;
mod postgres_target;
mod space;

use std::ops::RangeBounds;
use std::path::Path;

/// Bounds a parked cursor's hold on the engine to one batch (see the PostgreSQL engine's
/// `RequestViews`); the embedded engine's snapshots hold no connection and are left alone.
pub use self::postgres::RequestViews;
pub use self::postgres_target::PostgresTarget;
pub use self::space::{
    Bytes, CATALOG_KIND, CATALOG_VERSION_KEY, EngineStats, Instant, KeyspaceStats, LockedRead, LockedValues,
    PostgresStats, SharedLock, Space, prefix_successor,
};
use crate::storage::durability::SyncTarget;
use crate::storage::error::StorageError;
use crate::storage::memory::{MemoryBudget, MemoryUsage};

/// Which engine stores the data (`--storageEngine`).
#[derive(Debug, Clone)]
pub enum EngineConfig {
    /// fjall, embedded in the data directory, sized by the memory budget.
    Fjall(MemoryBudget),
    /// The PostgreSQL database at this connection configuration; `shared`: other nodes run
    /// on the same database (`--pgSharedNodes`).
    Postgres {
        /// The database and how to connect to it.
        target: Box<PostgresTarget>,
        /// Other nodes share the database.
        shared: bool,
    },
}

/// The answer of [`Engine::try_lock`].
pub enum TryLock {
    /// This node may go on: it holds the lock (`Some`), or needs none (`None`).
    Free(Option<EngineLock>),
    /// Another node holds it.
    Busy,
}

/// A lock across the nodes sharing a database (see [`Engine::lock`]), released when dropped.
pub struct EngineLock(#[expect(dead_code, reason = "held for its drop")] Box<self::postgres::Lock>);

/// The engine handle: cheap to clone, clones share the engine.
#[derive(Clone)]
pub enum Engine {
    /// The embedded engine.
    Fjall(self::fjall::Engine),
    /// A PostgreSQL database.
    Postgres(self::postgres::Engine),
}

/// Calls the same method on whichever engine `$value` holds.
macro_rules! either {
    ($value:expr, $inner:ident => $call:expr) => {
        match $value {
            Self::Fjall($inner) => $call,
            Self::Postgres($inner) => $call,
        }
    };
}

impl Engine {
    /// Opens (or creates) the engine `config` names; fjall's files go in `dir`.
    ///
    /// # Errors
    /// Damaged files, a database another node holds, engine, connection and I/O errors.
    pub fn open(dir: &Path, config: &EngineConfig) -> Result<Self, StorageError> {
        Ok(match config {
            EngineConfig::Fjall(budget) => Self::Fjall(self::fjall::Engine::open(dir, budget)?),
            EngineConfig::Postgres { target, shared } => {
                Self::Postgres(self::postgres::Engine::open((**target).clone(), *shared)?)
            }
        })
    }

    /// Whether it is the embedded engine (whose files `--repair` and the memory budget work on).
    pub fn is_embedded(&self) -> bool {
        matches!(self, Self::Fjall(_))
    }

    /// Whether the engine's data is reachable now: always for the embedded engine; for
    /// PostgreSQL, whether the database answered its last check.
    pub fn is_reachable(&self) -> bool {
        match self {
            Self::Fjall(_) => true,
            Self::Postgres(engine) => engine.is_reachable(),
        }
    }

    /// Whether other nodes write to the same data (PostgreSQL with `--pgSharedNodes`): the
    /// catalog may change under this node, and critical sections need [`Engine::lock`].
    pub fn is_shared(&self) -> bool {
        matches!(self, Self::Postgres(engine) if engine.is_shared())
    }

    /// Takes `what`'s lock across the nodes sharing the data, waiting for it; `None` when no
    /// other node shares it (the caller's in-process lock is the whole lock then).
    ///
    /// # Errors
    /// Engine errors.
    pub fn lock(&self, what: SharedLock) -> Result<Option<EngineLock>, StorageError> {
        match self {
            Self::Postgres(engine) => Ok(engine.lock(what)?.map(|lock| EngineLock(Box::new(lock)))),
            Self::Fjall(_) => Ok(None),
        }
    }

    /// As [`Engine::lock`], and then `reads` (one value each, `None` where nothing is
    /// stored), seeing what the lock's previous holder committed, in the same round trip.
    /// `None` when no other node shares the data: the caller needs no lock, nor the reads.
    ///
    /// # Errors
    /// Engine errors.
    pub fn lock_reading(
        &self,
        what: SharedLock,
        reads: &[LockedRead<'_>],
    ) -> Result<Option<(EngineLock, LockedValues)>, StorageError> {
        match self {
            Self::Postgres(engine) => {
                Ok(engine.lock_reading(what, reads)?.map(|(lock, values)| (EngineLock(Box::new(lock)), values)))
            }
            Self::Fjall(_) => Ok(None),
        }
    }

    /// As [`Engine::lock`], without waiting.
    ///
    /// # Errors
    /// Engine errors.
    pub fn try_lock(&self, what: SharedLock) -> Result<TryLock, StorageError> {
        match self {
            Self::Postgres(engine) if engine.is_shared() => {
                Ok(engine.try_lock(what)?.map_or(TryLock::Busy, |lock| TryLock::Free(Some(EngineLock(Box::new(lock))))))
            }
            _ => Ok(TryLock::Free(None)),
        }
    }

    /// The latest value at `key`.
    ///
    /// # Errors
    /// Engine errors.
    pub fn get(&self, space: Space, key: impl AsRef<[u8]>) -> Result<Option<Bytes>, StorageError> {
        either!(self, engine => engine.get(space, key.as_ref()))
    }

    /// Whether `key` holds a value now.
    ///
    /// # Errors
    /// Engine errors.
    pub fn contains(&self, space: Space, key: impl AsRef<[u8]>) -> Result<bool, StorageError> {
        either!(self, engine => engine.contains(space, key.as_ref()))
    }

    /// The latest rows whose keys start with `prefix`, in key order (either way).
    pub fn prefix(&self, space: Space, prefix: impl AsRef<[u8]>) -> Rows {
        match self {
            Self::Fjall(engine) => Rows::Fjall(engine.prefix(space, prefix)),
            Self::Postgres(engine) => Rows::Postgres(Box::new(engine.range(space, prefix_range(prefix.as_ref())))),
        }
    }

    /// The latest rows within `range`, in key order (either way).
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, space: Space, range: R) -> Rows {
        match self {
            Self::Fjall(engine) => Rows::Fjall(engine.range(space, range)),
            Self::Postgres(engine) => Rows::Postgres(Box::new(engine.range(space, range))),
        }
    }

    /// Writes one value on its own (the journal's next sync makes it durable).
    ///
    /// # Errors
    /// Engine errors.
    pub fn insert(&self, space: Space, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Result<(), StorageError> {
        match self {
            Self::Fjall(engine) => engine.insert(space, key, value),
            Self::Postgres(engine) => engine.insert(space, &key.into(), &value.into()),
        }
    }

    /// Deletes one key on its own.
    ///
    /// # Errors
    /// Engine errors.
    pub fn remove(&self, space: Space, key: impl Into<Bytes>) -> Result<(), StorageError> {
        match self {
            Self::Fjall(engine) => engine.remove(space, key),
            Self::Postgres(engine) => engine.remove(space, &key.into()),
        }
    }

    /// A new, empty atomic batch.
    pub fn batch(&self) -> Batch {
        match self {
            Self::Fjall(engine) => Batch::Fjall(engine.batch()),
            Self::Postgres(engine) => Batch::Postgres(engine.batch()),
        }
    }

    /// A consistent snapshot of now.
    pub fn snapshot(&self) -> Snapshot {
        match self {
            Self::Fjall(engine) => Snapshot::Fjall(engine.snapshot()),
            Self::Postgres(engine) => Snapshot::Postgres(engine.snapshot()),
        }
    }

    /// The instant of the latest committed batch.
    pub fn visible_instant(&self) -> Instant {
        either!(self, engine => engine.visible_instant())
    }

    /// Whether snapshots can read at a later instant than their own (the snapshot history of
    /// `readConcern: snapshot` with `atClusterTime`): fjall keeps old versions, PostgreSQL
    /// cannot open a snapshot in the past.
    pub fn reads_at_past_instants(&self) -> bool {
        self.is_embedded()
    }

    /// Makes every committed batch durable, with the file system's metadata (PostgreSQL's
    /// commits are durable already).
    ///
    /// # Errors
    /// Engine errors.
    pub fn persist(&self) -> Result<(), StorageError> {
        match self {
            Self::Fjall(engine) => engine.persist(),
            Self::Postgres(_) => Ok(()),
        }
    }

    /// Bytes the engine occupies on disk (0 when it cannot tell).
    pub fn disk_space(&self) -> u64 {
        either!(self, engine => engine.disk_space())
    }

    /// The engine's own figures, for metrics.
    ///
    /// # Errors
    /// Engine errors.
    pub fn stats(&self) -> Result<EngineStats, StorageError> {
        either!(self, engine => engine.stats())
    }

    /// What the block cache and the write buffers hold now.
    pub fn memory_usage(&self) -> MemoryUsage {
        either!(self, engine => engine.memory_usage())
    }

    /// Keeps the write buffers within `limit` bytes (the embedded engine's alone).
    pub fn bound_write_buffers(&self, limit: u64) {
        if let Self::Fjall(engine) = self {
            engine.bound_write_buffers(limit);
        }
    }

    /// The keyspace behind `space`, for tests of fjall's own behaviour.
    #[cfg(test)]
    pub fn keyspace(&self, space: Space) -> Option<&::fjall::Keyspace> {
        match self {
            Self::Fjall(engine) => Some(engine.keyspace(space)),
            Self::Postgres(_) => None,
        }
    }
}

impl SyncTarget for Engine {
    fn sync(&self) -> Result<(), String> {
        match self {
            Self::Fjall(engine) => engine.sync(),
            // Every commit was durable when it returned.
            Self::Postgres(_) => Ok(()),
        }
    }
}

/// The range of keys under `prefix`.
fn prefix_range(prefix: &[u8]) -> (std::ops::Bound<Vec<u8>>, std::ops::Bound<Vec<u8>>) {
    use std::ops::Bound;
    (Bound::Included(prefix.to_vec()), prefix_successor(prefix).map_or(Bound::Unbounded, Bound::Excluded))
}

/// A consistent snapshot (see [`Engine::snapshot`]). Cheap to clone: clones share it.
#[derive(Clone)]
pub enum Snapshot {
    /// An engine snapshot that keeps the versions from its instant on.
    Fjall(self::fjall::Snapshot),
    /// A repeatable-read transaction.
    Postgres(self::postgres::Snapshot),
}

impl Snapshot {
    /// Its own instant.
    pub fn instant(&self) -> Instant {
        either!(self, snapshot => snapshot.instant())
    }

    /// Keeps what it reads as of its instant for as long as it lives, across requests (a
    /// PostgreSQL snapshot otherwise ends with the request that read it: see
    /// [`RequestViews`]); the embedded engine's always do.
    pub fn pin(&self) {
        if let Self::Postgres(snapshot) = self {
            snapshot.pin();
        }
    }

    /// The value at `key` as of its instant.
    ///
    /// # Errors
    /// Engine errors.
    pub fn get(&self, space: Space, key: impl AsRef<[u8]>) -> Result<Option<Bytes>, StorageError> {
        either!(self, snapshot => snapshot.get(space, key.as_ref()))
    }

    /// The rows within `range` as of its instant.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, space: Space, range: R) -> Rows {
        match self {
            Self::Fjall(snapshot) => Rows::Fjall(snapshot.range(space, range)),
            Self::Postgres(snapshot) => Rows::Postgres(Box::new(snapshot.range(space, range))),
        }
    }

    /// The rows under `prefix` as of its instant.
    pub fn prefix(&self, space: Space, prefix: impl AsRef<[u8]>) -> Rows {
        match self {
            Self::Fjall(snapshot) => Rows::Fjall(snapshot.prefix(space, prefix)),
            Self::Postgres(snapshot) => Rows::Postgres(Box::new(snapshot.range(space, prefix_range(prefix.as_ref())))),
        }
    }

    /// The value at `key` as of `instant`, at or after the snapshot's own. Only the embedded
    /// engine reads at a later instant ([`Engine::reads_at_past_instants`]); a PostgreSQL
    /// snapshot is only ever asked for its own.
    ///
    /// # Errors
    /// Engine errors.
    pub fn get_at(&self, space: Space, key: impl AsRef<[u8]>, instant: Instant) -> Result<Option<Bytes>, StorageError> {
        match self {
            Self::Fjall(snapshot) => snapshot.get_at(space, key, instant),
            Self::Postgres(snapshot) => snapshot.get(space, key.as_ref()),
        }
    }

    /// The rows within `range` as of `instant` (as for [`Snapshot::get_at`]); the scan holds
    /// the snapshot.
    pub fn range_at<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, space: Space, range: R, instant: Instant) -> Rows {
        match self {
            Self::Fjall(snapshot) => Rows::Fjall(snapshot.range_at(space, range, instant)),
            Self::Postgres(snapshot) => Rows::Postgres(Box::new(snapshot.range(space, range))),
        }
    }
}

/// Rows of a range in key order, walked from either end; a cursor may keep them.
pub enum Rows {
    /// Read from fjall's trees.
    Fjall(self::fjall::Rows),
    /// Fetched from PostgreSQL in chunks (boxed: the embedded engine's scans stay small).
    Postgres(Box<self::postgres::Rows>),
}

impl Iterator for Rows {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        match self {
            Self::Fjall(rows) => rows.next().map(Row::Fjall),
            Self::Postgres(rows) => rows.next().map(Row::Postgres),
        }
    }
}

impl DoubleEndedIterator for Rows {
    fn next_back(&mut self) -> Option<Row> {
        match self {
            Self::Fjall(rows) => rows.next_back().map(Row::Fjall),
            Self::Postgres(rows) => rows.next_back().map(Row::Postgres),
        }
    }
}

/// One row of a scan.
pub enum Row {
    /// Read lazily: a scan that needs keys only does not copy values out.
    Fjall(self::fjall::Row),
    /// Fetched already.
    Postgres(self::postgres::Row),
}

impl Row {
    /// Its key.
    ///
    /// # Errors
    /// Engine errors.
    pub fn key(self) -> Result<Bytes, StorageError> {
        match self {
            Self::Fjall(row) => row.key(),
            Self::Postgres(row) => Ok(row.into_pair()?.0),
        }
    }

    /// Its value.
    ///
    /// # Errors
    /// Engine errors.
    pub fn value(self) -> Result<Bytes, StorageError> {
        match self {
            Self::Fjall(row) => row.value(),
            Self::Postgres(row) => Ok(row.into_pair()?.1),
        }
    }

    /// Its key and value.
    ///
    /// # Errors
    /// Engine errors.
    pub fn into_inner(self) -> Result<(Bytes, Bytes), StorageError> {
        match self {
            Self::Fjall(row) => row.into_inner(),
            Self::Postgres(row) => row.into_pair(),
        }
    }
}

/// An atomic batch of writes across the spaces: all of it is committed, or none.
pub enum Batch {
    /// fjall's write batch.
    Fjall(self::fjall::Batch),
    /// Writes gathered for one PostgreSQL transaction.
    Postgres(self::postgres::Batch),
}

impl Batch {
    /// Writes `value` at `key`.
    pub fn insert(&mut self, space: Space, key: impl Into<Bytes>, value: impl Into<Bytes>) {
        match self {
            Self::Fjall(batch) => batch.insert(space, key, value),
            Self::Postgres(batch) => batch.insert(space, key.into().to_vec(), Some(value.into().to_vec())),
        }
    }

    /// Deletes `key`.
    pub fn remove(&mut self, space: Space, key: impl Into<Bytes>) {
        match self {
            Self::Fjall(batch) => batch.remove(space, key),
            Self::Postgres(batch) => batch.insert(space, key.into().to_vec(), None),
        }
    }

    /// Commits it.
    ///
    /// # Errors
    /// Engine errors: after one, fjall accepts no more writes (see
    /// [`StorageError::is_engine_stopped`]).
    pub fn commit(self) -> Result<(), StorageError> {
        either!(self, batch => batch.commit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The engines to test: fjall always, PostgreSQL when `MONARCH_TEST_PG_URI` names a server
    /// (`.ci/run` starts one); each in a fresh directory or database.
    fn engines() -> Result<Vec<(Engine, tempfile::TempDir)>, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let mut engines =
            vec![(Engine::open(dir.path(), &EngineConfig::Fjall(MemoryBudget::split(MemoryBudget::MIN_BYTES)))?, dir)];
        if let Ok(uri) = std::env::var("MONARCH_TEST_PG_URI") {
            let name = format!(
                "monarch_engine_test_{}_{}",
                std::process::id(),
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos()
            );
            let mut admin = ::postgres::Client::connect(&uri, ::postgres::NoTls)?;
            admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
            let mut target = PostgresTarget::parse(&uri)?;
            target.config_mut().dbname(&name);
            engines.push((
                Engine::open(Path::new(""), &EngineConfig::Postgres { target: Box::new(target), shared: false })?,
                tempfile::tempdir()?,
            ));
        }
        Ok(engines)
    }

    fn keys(rows: impl Iterator<Item = Row>) -> Result<Vec<u32>, StorageError> {
        rows.map(|row| {
            let key = row.key()?;
            Ok(u32::from_be_bytes(<[u8; 4]>::try_from(key.get(1..5).unwrap_or_default()).unwrap_or_default()))
        })
        .collect()
    }

    fn key(n: u32) -> Vec<u8> {
        let mut key = vec![7];
        key.extend_from_slice(&n.to_be_bytes());
        key
    }

    #[test]
    fn engine_reads_writes_and_scans_alike_on_every_engine() -> Result<(), Box<dyn std::error::Error>> {
        for (engine, _dir) in engines()? {
            let name = if engine.is_embedded() { "fjall" } else { "postgres" };
            // More rows than a PostgreSQL scan's first chunks, to cross their boundaries.
            let mut batch = engine.batch();
            for n in 0..3000 {
                batch.insert(Space::Docs, key(n), n.to_be_bytes());
            }
            batch.insert(Space::Docs, vec![8], b"outside".to_vec());
            batch.insert(Space::Meta, key(1), b"meta".to_vec());
            batch.commit()?;
            assert_eq!(engine.get(Space::Docs, key(42))?.as_deref(), Some(&42u32.to_be_bytes()[..]), "{name}");
            assert_eq!(engine.get(Space::Meta, key(1))?.as_deref(), Some(&b"meta"[..]), "{name}");
            assert!(!engine.contains(Space::Index, key(1))?, "{name}");
            let forward = keys(engine.prefix(Space::Docs, [7]))?;
            assert_eq!(forward, (0..3000).collect::<Vec<_>>(), "{name}: forward");
            let backward = keys(engine.prefix(Space::Docs, [7]).rev())?;
            assert_eq!(backward, (0..3000).rev().collect::<Vec<_>>(), "{name}: backward");
            assert_eq!(keys(engine.range(Space::Docs, key(10)..=key(12)))?, [10, 11, 12], "{name}: inclusive");
            assert_eq!(
                keys(
                    engine.range(Space::Docs, (std::ops::Bound::Excluded(key(10)), std::ops::Bound::Excluded(key(13))))
                )?,
                [11, 12],
                "{name}: exclusive"
            );
            // Both ends of one scan meet in the middle without a row twice or missed.
            let mut rows = engine.prefix(Space::Docs, [7]);
            let (mut front, mut back) = (Vec::new(), Vec::new());
            loop {
                let Some(row) = rows.next() else { break };
                front.push(keys(std::iter::once(row))?[0]);
                let Some(row) = rows.next_back() else { break };
                back.push(keys(std::iter::once(row))?[0]);
            }
            back.reverse();
            front.extend(back);
            assert_eq!(front, (0..3000).collect::<Vec<_>>(), "{name}: from both ends");
            // A snapshot keeps what it saw; later writes show in the latest reads only.
            let snapshot = engine.snapshot();
            assert_eq!(snapshot.get(Space::Docs, key(5))?.as_deref(), Some(&5u32.to_be_bytes()[..]), "{name}");
            let mut batch = engine.batch();
            batch.remove(Space::Docs, key(5));
            batch.insert(Space::Docs, key(6), b"six".to_vec());
            batch.commit()?;
            engine.remove(Space::Docs, key(7))?;
            assert_eq!(
                snapshot.get(Space::Docs, key(6))?.as_deref(),
                Some(&6u32.to_be_bytes()[..]),
                "{name}: snapshot"
            );
            assert_eq!(keys(snapshot.range(Space::Docs, key(4)..key(8)))?, [4, 5, 6, 7], "{name}: snapshot scan");
            assert_eq!(keys(engine.range(Space::Docs, key(4)..key(8)))?, [4, 6], "{name}: latest scan");
            assert_eq!(engine.get(Space::Docs, key(6))?.as_deref(), Some(&b"six"[..]), "{name}");
            assert!(engine.visible_instant() >= snapshot.instant() + 2, "{name}: two commits since the snapshot");
        }
        Ok(())
    }
}
