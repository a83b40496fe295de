//! The embedded engine: one fjall database in `<dbpath>/engine`, a keyspace per [`Space`].
//!
//! Reads of the latest data and snapshot reads both go to the keyspaces' trees at a sequence
//! number while holding an engine snapshot, as fjall's own `Keyspace` and `Snapshot` do. That
//! one path also serves reads at a later instant than the snapshot's own (the snapshot history
//! of `readConcern: snapshot`), which fjall's `Snapshot` cannot.

use std::ops::RangeBounds;
use std::path::Path;
use std::sync::Arc;

use fjall::{AbstractTree as _, Database, Keyspace, KeyspaceCreateOptions, OwnedWriteBatch, PersistMode, SeqNo};
use lsm_tree::Guard as _;

use super::space::{Bytes, EngineStats, Instant, KeyspaceStats, Space};
use crate::storage::durability::{SyncTarget, engine_stopped};
use crate::storage::error::{StorageError, open_failure};
use crate::storage::memory::{MemoryBudget, MemoryUsage};

/// The three keyspaces, shared by the engine's handles, snapshots and batches.
struct Spaces {
    meta: Keyspace,
    docs: Keyspace,
    index: Keyspace,
}

impl Spaces {
    fn get(&self, space: Space) -> &Keyspace {
        match space {
            Space::Meta => &self.meta,
            Space::Docs => &self.docs,
            Space::Index => &self.index,
        }
    }
}

/// The engine handle: cheap to clone, clones share the database.
#[derive(Clone)]
pub struct Engine {
    db: Database,
    spaces: Arc<Spaces>,
}

impl Engine {
    /// Opens (or creates) the database in `dir`, sized by `budget`.
    ///
    /// # Errors
    /// Damaged files (said as [`StorageError::Corrupt`] with what is damaged), engine and I/O
    /// errors.
    pub fn open(dir: &Path, budget: &MemoryBudget) -> Result<Self, StorageError> {
        let db = budget.engine(dir).open().map_err(|error| open_failure(dir, error))?;
        // IMPORTANT: fjall applies these options only when it creates a keyspace; an existing
        // one keeps its own memtable size (`bound_write_buffers` covers it).
        let options = || KeyspaceCreateOptions::default().max_memtable_size(budget.memtable_bytes);
        let spaces = Spaces {
            meta: db.keyspace(Space::Meta.name(), options)?,
            docs: db.keyspace(Space::Docs.name(), options)?,
            index: db.keyspace(Space::Index.name(), options)?,
        };
        Ok(Self { db, spaces: Arc::new(spaces) })
    }

    /// The latest value at `key`.
    ///
    /// # Errors
    /// Engine errors.
    pub fn get(&self, space: Space, key: impl AsRef<[u8]>) -> Result<Option<Bytes>, StorageError> {
        Ok(self.spaces.get(space).get(key)?)
    }

    /// Whether `key` holds a value now.
    ///
    /// # Errors
    /// Engine errors.
    pub fn contains(&self, space: Space, key: impl AsRef<[u8]>) -> Result<bool, StorageError> {
        Ok(self.spaces.get(space).contains_key(key)?)
    }

    /// The latest rows whose keys start with `prefix`, in key order (either way).
    pub fn prefix(&self, space: Space, prefix: impl AsRef<[u8]>) -> Rows {
        let hold = self.db.snapshot();
        Rows { rows: self.spaces.get(space).tree.prefix(prefix, SeqNo::MAX, None), _hold: hold }
    }

    /// The latest rows within `range`, in key order (either way).
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, space: Space, range: R) -> Rows {
        let hold = self.db.snapshot();
        Rows { rows: self.spaces.get(space).tree.range(range, SeqNo::MAX, None), _hold: hold }
    }

    /// Writes one value on its own (not synced; the journal's next sync covers it).
    ///
    /// # Errors
    /// Engine errors.
    pub fn insert(&self, space: Space, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Result<(), StorageError> {
        Ok(self.spaces.get(space).insert(key, value)?)
    }

    /// Deletes one key on its own (not synced).
    ///
    /// # Errors
    /// Engine errors.
    pub fn remove(&self, space: Space, key: impl Into<Bytes>) -> Result<(), StorageError> {
        Ok(self.spaces.get(space).remove(key)?)
    }

    /// A new, empty atomic batch.
    pub fn batch(&self) -> Batch {
        Batch { inner: self.db.batch(), spaces: self.spaces.clone() }
    }

    /// A consistent snapshot of now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot { anchor: self.db.snapshot(), spaces: self.spaces.clone() }
    }

    /// The instant of the latest committed batch.
    pub fn visible_instant(&self) -> Instant {
        self.db.visible_seqno()
    }

    /// Makes every committed batch durable, with the file system's metadata (format changes
    /// and catalog upgrades; the journal syncs the data alone).
    ///
    /// # Errors
    /// Engine errors.
    pub fn persist(&self) -> Result<(), StorageError> {
        Ok(self.db.persist(PersistMode::SyncAll)?)
    }

    /// Bytes the engine occupies on disk (0 when it cannot tell).
    pub fn disk_space(&self) -> u64 {
        self.db.disk_space().unwrap_or(0)
    }

    /// The engine's own figures, for metrics.
    ///
    /// # Errors
    /// Engine errors reading disk usage.
    pub fn stats(&self) -> Result<EngineStats, StorageError> {
        let keyspaces = Space::ALL.map(|space| {
            let keyspace = self.spaces.get(space);
            KeyspaceStats {
                name: space.name(),
                disk_bytes: keyspace.disk_space(),
                l0_tables: keyspace.l0_table_count(),
                tables: keyspace.table_count(),
            }
        });
        // fjall marks these figures experimental (`doc(hidden)`): they may move in a minor
        // release, and then only this function changes.
        Ok(EngineStats {
            disk_bytes: self.db.disk_space()?,
            journal_disk_bytes: self.db.journal_disk_space()?,
            journal_files: self.db.journal_count(),
            write_buffer_bytes: self.db.write_buffer_size(),
            pending_flushes: self.db.outstanding_flushes(),
            compactions_completed: self.db.compactions_completed(),
            compactions_running: self.db.active_compactions(),
            compaction_time: self.db.time_compacting(),
            keyspaces,
            postgres: None,
        })
    }

    /// What the block cache and the write buffers hold now (two atomic loads; no I/O).
    pub fn memory_usage(&self) -> MemoryUsage {
        // fjall marks both figures experimental (`doc(hidden)`), as those of `stats`.
        MemoryUsage { block_cache_bytes: self.db.cache_size(), write_buffer_bytes: self.db.write_buffer_size() }
    }

    /// Seals the memtables (and queues their flush) when the write buffers hold more than
    /// `limit` bytes and no flush is running (see `memory.rs`); within the limit it costs one
    /// atomic load.
    pub fn bound_write_buffers(&self, limit: u64) {
        if self.db.write_buffer_size() <= limit {
            return;
        }
        let keyspaces = Space::ALL.map(|space| self.spaces.get(space));
        // A flush is running: what it holds is freed when it ends; sealing more now would
        // only make small tables.
        if keyspaces.iter().any(|keyspace| keyspace.sealed_memtable_count() > 0) {
            return;
        }
        for keyspace in keyspaces {
            // An empty memtable is left as it is. fjall marks this call experimental
            // (`doc(hidden)`), as the figures in `stats`.
            if let Err(error) = keyspace.rotate_memtable() {
                tracing::warn!(target: "STORAGE", id = 7_000_010, error = %error, "Cannot seal a memtable to stay within the memory budget");
            }
        }
    }

    /// The keyspace behind `space`, for tests of fjall's own behaviour.
    #[cfg(test)]
    pub fn keyspace(&self, space: Space) -> &Keyspace {
        self.spaces.get(space)
    }
}

impl SyncTarget for Engine {
    fn sync(&self) -> Result<(), String> {
        self.db.persist(PersistMode::SyncData).map_err(|error| match error {
            fjall::Error::Poisoned => engine_stopped(),
            other => StorageError::from(other).to_string(),
        })
    }
}

/// A consistent snapshot: reads see the data as of its instant, and the versions it reads
/// stay while it (or a scan from it) lives. Cheap to clone: clones share it.
#[derive(Clone)]
pub struct Snapshot {
    anchor: fjall::Snapshot,
    spaces: Arc<Spaces>,
}

impl Snapshot {
    /// Its own instant.
    pub fn instant(&self) -> Instant {
        self.anchor.seqno()
    }

    /// The value at `key` as of its instant.
    ///
    /// # Errors
    /// Engine errors.
    pub fn get(&self, space: Space, key: impl AsRef<[u8]>) -> Result<Option<Bytes>, StorageError> {
        self.get_at(space, key, self.instant())
    }

    /// The rows within `range` as of its instant.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, space: Space, range: R) -> Rows {
        self.range_at(space, range, self.instant())
    }

    /// The rows under `prefix` as of its instant.
    pub fn prefix(&self, space: Space, prefix: impl AsRef<[u8]>) -> Rows {
        Rows { rows: self.spaces.get(space).tree.prefix(prefix, self.instant(), None), _hold: self.anchor.clone() }
    }

    /// The value at `key` as of `instant`, which must be at or after the snapshot's own (the
    /// snapshot keeps only the versions from its own instant on).
    ///
    /// # Errors
    /// Engine errors.
    pub fn get_at(&self, space: Space, key: impl AsRef<[u8]>, instant: Instant) -> Result<Option<Bytes>, StorageError> {
        debug_assert!(self.instant() <= instant, "a snapshot after the instant does not keep its versions");
        self.spaces.get(space).tree.get(key, instant).map_err(|error| StorageError::from(fjall::Error::from(error)))
    }

    /// The rows within `range` as of `instant` (as for [`Snapshot::get_at`]); the scan holds
    /// the snapshot.
    pub fn range_at<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, space: Space, range: R, instant: Instant) -> Rows {
        debug_assert!(self.instant() <= instant, "a snapshot after the instant does not keep its versions");
        Rows { rows: self.spaces.get(space).tree.range(range, instant, None), _hold: self.anchor.clone() }
    }
}

/// Rows of a range in key order, walked from either end; holds the snapshot its versions
/// belong to, so a cursor may keep it.
pub struct Rows {
    rows: Box<dyn DoubleEndedIterator<Item = lsm_tree::IterGuardImpl> + Send>,
    _hold: fjall::Snapshot,
}

impl Iterator for Rows {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        self.rows.next().map(Row)
    }
}

impl DoubleEndedIterator for Rows {
    fn next_back(&mut self) -> Option<Row> {
        self.rows.next_back().map(Row)
    }
}

/// One row of a scan, read lazily: a scan that needs keys only does not copy values out.
pub struct Row(lsm_tree::IterGuardImpl);

impl Row {
    /// Its key.
    ///
    /// # Errors
    /// Engine errors.
    pub fn key(self) -> Result<Bytes, StorageError> {
        self.0.key().map_err(|error| StorageError::from(fjall::Error::from(error)))
    }

    /// Its value.
    ///
    /// # Errors
    /// Engine errors.
    pub fn value(self) -> Result<Bytes, StorageError> {
        self.0.value().map_err(|error| StorageError::from(fjall::Error::from(error)))
    }

    /// Its key and value.
    ///
    /// # Errors
    /// Engine errors.
    pub fn into_inner(self) -> Result<(Bytes, Bytes), StorageError> {
        self.0.into_inner().map_err(|error| StorageError::from(fjall::Error::from(error)))
    }
}

/// An atomic batch of writes across the spaces: all of it is committed, or none.
pub struct Batch {
    inner: OwnedWriteBatch,
    spaces: Arc<Spaces>,
}

impl Batch {
    /// Writes `value` at `key`.
    pub fn insert(&mut self, space: Space, key: impl Into<Bytes>, value: impl Into<Bytes>) {
        self.inner.insert(self.spaces.get(space), key, value);
    }

    /// Deletes `key`.
    pub fn remove(&mut self, space: Space, key: impl Into<Bytes>) {
        self.inner.remove(self.spaces.get(space), key);
    }

    /// Commits it (visible at once; durable at the journal's next sync).
    ///
    /// # Errors
    /// Engine errors: after one, fjall accepts no more writes (see
    /// [`StorageError::is_engine_stopped`]).
    pub fn commit(self) -> Result<(), StorageError> {
        Ok(self.inner.commit()?)
    }
}
