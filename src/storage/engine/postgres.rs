//! The PostgreSQL engine: the three spaces are tables `(k bytea PRIMARY KEY, v bytea)` in a
//! PostgreSQL database (see `docs/design/postgres-engine.md`).
//!
//! - `bytea` compares bytewise, so ranges and index-ordered scans keep their meaning.
//! - A batch is one transaction, committed with `synchronous_commit` on: a commit is durable
//!   when it returns, so the journal's sync has nothing left to do.
//! - A snapshot is a `REPEATABLE READ READ ONLY` transaction on a connection it holds until
//!   its last clone (and every scan from it) is gone.
//! - Scans fetch in chunks by key (keyset pagination) from either end, so a scan that reads a
//!   few rows costs one small round trip and a long one never holds a server-side cursor.
//!
//! One node per database, for now: a session advisory lock, held for the life of the
//! process, keeps a second `monarchd` out (several nodes need the shared catalog's
//! invalidation, which is not built).

use std::collections::{BTreeMap, VecDeque};
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use postgres::types::Type;
use postgres::{Client, NoTls};

use super::space::{Bytes, EngineStats, Instant, KeyspaceStats, Space};
use crate::storage::error::StorageError;
use crate::storage::memory::MemoryUsage;

/// The advisory lock that keeps a second node out of the database (`'mnrc'`).
const NODE_LOCK: i64 = 0x6d6e_7263;
/// Rows fetched by a scan's first round trip; later ones double up to [`MAX_CHUNK`].
const FIRST_CHUNK: i64 = 16;
/// The most rows one round trip of a scan fetches.
const MAX_CHUNK: i64 = 1024;

/// Runs `f`, which blocks on PostgreSQL round trips, where blocking is allowed. The client
/// drives its connection on a runtime of its own, which must not start inside the server's
/// runtime: on the server's async threads `f` runs in `block_in_place`, on a single-threaded
/// runtime (tests) on a thread of its own; elsewhere (the storage workers) as it is.
fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(RuntimeFlavor::CurrentThread) => std::thread::scope(|scope| match scope.spawn(f).join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }),
        _ => tokio::task::block_in_place(f),
    }
}

/// The table of a space.
fn table(space: Space) -> &'static str {
    match space {
        Space::Meta => "monarch_meta",
        Space::Docs => "monarch_docs",
        Space::Index => "monarch_index",
    }
}

/// Connections not in use. Connections are opened on demand: callers are bounded by the
/// server's worker pool and its open cursors' snapshots.
struct Pool {
    config: postgres::Config,
    idle: Mutex<Vec<Client>>,
}

impl Pool {
    fn take(&self) -> Result<Client, StorageError> {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        match idle {
            Some(client) if !client.is_closed() => Ok(client),
            _ => Ok(self.config.connect(NoTls)?),
        }
    }

    fn give_back(&self, client: Client) {
        if client.is_closed() {
            close(client);
        } else {
            self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(client);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for client in std::mem::take(self.idle.get_mut().unwrap_or_else(PoisonError::into_inner)) {
            close(client);
        }
    }
}

/// Drops `client` where blocking is allowed: dropping a client closes its connection through
/// the client's own runtime (see [`blocking`]).
fn close(client: Client) {
    blocking(move || drop(client));
}

/// The session that holds [`NODE_LOCK`] for the life of the engine.
struct NodeLock(Mutex<Option<Client>>);

impl Drop for NodeLock {
    fn drop(&mut self) {
        if let Some(client) = self.0.get_mut().unwrap_or_else(PoisonError::into_inner).take() {
            close(client);
        }
    }
}

/// The engine handle: cheap to clone, clones share the pool.
#[derive(Clone)]
pub struct Engine {
    pool: Arc<Pool>,
    /// Counts committed batches: the instant a snapshot reads at (see [`Engine::visible_instant`]).
    commits: Arc<AtomicU64>,
    /// The session that holds [`NODE_LOCK`]; the lock goes when its connection closes.
    _node: Arc<NodeLock>,
}

impl Engine {
    /// Connects to the database at `config`, takes the node lock and creates the tables
    /// where they are missing.
    ///
    /// # Errors
    /// [`StorageError::DatabaseInUse`] when another node holds the database; connection and
    /// SQL errors.
    pub fn open(config: postgres::Config) -> Result<Self, StorageError> {
        blocking(|| Self::open_blocking(config))
    }

    fn open_blocking(config: postgres::Config) -> Result<Self, StorageError> {
        let mut node = config.connect(NoTls)?;
        let locked: bool = node.query_one("SELECT pg_try_advisory_lock($1)", &[&NODE_LOCK])?.try_get(0)?;
        if !locked {
            return Err(StorageError::DatabaseInUse(config.get_dbname().unwrap_or("(default)").to_owned()));
        }
        for space in Space::ALL {
            node.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {} (k bytea PRIMARY KEY, v bytea NOT NULL)",
                table(space)
            ))?;
        }
        let pool = Pool { config, idle: Mutex::default() };
        Ok(Self { pool: Arc::new(pool), commits: Arc::default(), _node: Arc::new(NodeLock(Mutex::new(Some(node)))) })
    }

    fn with_client<T: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send,
    ) -> Result<T, StorageError> {
        blocking(|| {
            let mut client = self.pool.take()?;
            let result = f(&mut client);
            self.pool.give_back(client);
            Ok(result?)
        })
    }

    /// The latest value at `key`.
    ///
    /// # Errors
    /// SQL and connection errors.
    pub fn get(&self, space: Space, key: &[u8]) -> Result<Option<Bytes>, StorageError> {
        self.with_client(|client| get(client, space, key))
    }

    /// Whether `key` holds a value now.
    ///
    /// # Errors
    /// SQL and connection errors.
    pub fn contains(&self, space: Space, key: &[u8]) -> Result<bool, StorageError> {
        Ok(self.get(space, key)?.is_some())
    }

    /// The latest rows within `range`; each round trip reads the data as it is then.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, space: Space, range: R) -> Rows {
        Rows::new(Source::Pooled { pool: self.pool.clone(), client: None }, space, &range)
    }

    /// Writes one value on its own (committed and durable at once).
    ///
    /// # Errors
    /// SQL and connection errors.
    pub fn insert(&self, space: Space, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        let mut batch = self.batch();
        batch.insert(space, key.to_vec(), Some(value.to_vec()));
        batch.commit()
    }

    /// Deletes one key on its own (committed and durable at once).
    ///
    /// # Errors
    /// SQL and connection errors.
    pub fn remove(&self, space: Space, key: &[u8]) -> Result<(), StorageError> {
        let mut batch = self.batch();
        batch.insert(space, key.to_vec(), None);
        batch.commit()
    }

    /// A new, empty batch.
    pub fn batch(&self) -> Batch {
        Batch { engine: self.clone(), writes: BTreeMap::new() }
    }

    /// A consistent snapshot of now. Its transaction starts at its first read (so opening a
    /// view costs nothing until it is read, and cannot fail).
    pub fn snapshot(&self) -> Snapshot {
        // Read before the snapshot starts: every batch counted is in it.
        let instant = self.visible_instant();
        Snapshot { held: Arc::new(Held { client: Mutex::new(None), pool: self.pool.clone() }), instant }
    }

    /// The number of batches committed so far through this node.
    pub fn visible_instant(&self) -> Instant {
        self.commits.load(Ordering::Acquire)
    }

    /// Table sizes as the engine's figures (the rest are the embedded engine's own and stay 0).
    ///
    /// # Errors
    /// SQL and connection errors.
    pub fn stats(&self) -> Result<EngineStats, StorageError> {
        let sizes = self.with_client(|client| {
            Space::ALL
                .iter()
                .map(|space| {
                    let row = client.query_one("SELECT pg_total_relation_size(to_regclass($1))", &[&table(*space)])?;
                    Ok(row.try_get::<_, Option<i64>>(0)?.and_then(|bytes| u64::try_from(bytes).ok()).unwrap_or(0))
                })
                .collect::<Result<Vec<_>, postgres::Error>>()
        })?;
        let size = |i: usize| sizes.get(i).copied().unwrap_or(0);
        let keyspaces = Space::ALL.map(|space| KeyspaceStats {
            name: space.name(),
            disk_bytes: size(space as usize),
            l0_tables: 0,
            tables: 1,
        });
        Ok(EngineStats {
            disk_bytes: sizes.iter().sum(),
            journal_disk_bytes: 0,
            journal_files: 0,
            write_buffer_bytes: 0,
            pending_flushes: 0,
            compactions_completed: 0,
            compactions_running: 0,
            compaction_time: std::time::Duration::ZERO,
            keyspaces,
        })
    }

    /// Bytes of the tables (0 when they cannot be read).
    pub fn disk_space(&self) -> u64 {
        self.stats().map_or(0, |stats| stats.disk_bytes)
    }

    /// The server's memory is PostgreSQL's to manage: nothing is held here.
    pub fn memory_usage(&self) -> MemoryUsage {
        MemoryUsage { block_cache_bytes: 0, write_buffer_bytes: 0 }
    }
}

fn get(client: &mut Client, space: Space, key: &[u8]) -> Result<Option<Bytes>, postgres::Error> {
    let sql = format!("SELECT v FROM {} WHERE k = $1", table(space));
    let row = client.query_typed(&sql, &[(&key, Type::BYTEA)])?;
    row.first().map(|row| row.try_get::<_, &[u8]>(0).map(Bytes::from)).transpose()
}

/// A snapshot's connection, in its open transaction from the first read on; rolled back and
/// returned to the pool when the last holder goes.
struct Held {
    client: Mutex<Option<Client>>,
    pool: Arc<Pool>,
}

impl Held {
    fn run<T: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send,
    ) -> Result<T, StorageError> {
        blocking(|| self.run_blocking(f))
    }

    fn run_blocking<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>) -> Result<T, StorageError> {
        let mut slot = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        let client = match &mut *slot {
            Some(client) => client,
            None => {
                let mut client = self.pool.take()?;
                // A repeatable-read snapshot is taken at its first statement, not at BEGIN.
                if let Err(error) = client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1") {
                    self.pool.give_back(client);
                    return Err(error.into());
                }
                slot.insert(client)
            }
        };
        Ok(f(client)?)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let client = self.client.get_mut().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(mut client) = client {
            blocking(|| match client.batch_execute("ROLLBACK") {
                Ok(()) => self.pool.give_back(client),
                // A connection whose rollback fails is closed rather than reused.
                Err(_) => drop(client),
            });
        }
    }
}

/// A consistent snapshot: a repeatable-read transaction. Cheap to clone: clones share it.
#[derive(Clone)]
pub struct Snapshot {
    held: Arc<Held>,
    instant: Instant,
}

impl Snapshot {
    /// The instant it reads at.
    pub fn instant(&self) -> Instant {
        self.instant
    }

    /// The value at `key` in the snapshot.
    ///
    /// # Errors
    /// SQL and connection errors.
    pub fn get(&self, space: Space, key: &[u8]) -> Result<Option<Bytes>, StorageError> {
        self.held.run(|client| get(client, space, key))
    }

    /// The rows within `range` in the snapshot.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, space: Space, range: R) -> Rows {
        Rows::new(Source::Snapshot(self.held.clone()), space, &range)
    }
}

/// Where a scan's round trips go.
enum Source {
    /// A pooled connection, taken at the first round trip and given back when the scan ends.
    Pooled { pool: Arc<Pool>, client: Option<Box<Client>> },
    /// A snapshot's connection.
    Snapshot(Arc<Held>),
}

impl Source {
    fn run<T: Send>(
        &mut self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send,
    ) -> Result<T, StorageError> {
        match self {
            Source::Snapshot(held) => held.run(f),
            Source::Pooled { pool, client } => blocking(|| {
                let client = match client {
                    Some(client) => client,
                    None => client.insert(Box::new(pool.take()?)),
                };
                Ok(f(client)?)
            }),
        }
    }

    /// The scan has read everything: a pooled connection goes back at once.
    fn finish(&mut self) {
        if let Source::Pooled { pool, client } = self
            && let Some(client) = client.take()
        {
            pool.give_back(*client);
        }
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The rows of a range, fetched in chunks from either end. The unread middle shrinks as
/// chunks arrive; once a chunk comes back short, everything left is buffered.
pub struct Rows {
    source: Source,
    space: Space,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    /// Fetched from the front, in key order.
    front: VecDeque<(Bytes, Bytes)>,
    /// Fetched from the back, in reverse key order.
    back: VecDeque<(Bytes, Bytes)>,
    chunk: i64,
    /// Nothing is left between the two buffers.
    drained: bool,
    /// A failure to report at the next call.
    failed: Option<StorageError>,
}

/// One row: owned bytes, or the failure of the round trip that would have fetched it.
pub enum Row {
    /// A key and its value.
    Pair(Bytes, Bytes),
    /// The round trip failed.
    Failed(StorageError),
}

impl Row {
    /// Its key and value, or the failure.
    ///
    /// # Errors
    /// The round trip's error.
    pub fn into_pair(self) -> Result<(Bytes, Bytes), StorageError> {
        match self {
            Row::Pair(key, value) => Ok((key, value)),
            Row::Failed(error) => Err(error),
        }
    }
}

impl Rows {
    fn new<K: AsRef<[u8]>, R: RangeBounds<K>>(source: Source, space: Space, range: &R) -> Self {
        let owned = |bound: Bound<&K>| match bound {
            Bound::Included(key) => Bound::Included(key.as_ref().to_vec()),
            Bound::Excluded(key) => Bound::Excluded(key.as_ref().to_vec()),
            Bound::Unbounded => Bound::Unbounded,
        };
        Self {
            source,
            space,
            lower: owned(range.start_bound()),
            upper: owned(range.end_bound()),
            front: VecDeque::new(),
            back: VecDeque::new(),
            chunk: FIRST_CHUNK,
            drained: false,
            failed: None,
        }
    }

    /// Fetches the next chunk from the front (`forward`) or the back into its buffer.
    fn fetch(&mut self, forward: bool) {
        let mut sql = format!("SELECT k, v FROM {} WHERE true", table(self.space));
        let mut params: Vec<&[u8]> = Vec::with_capacity(2);
        for (bound, below) in [(&self.lower, false), (&self.upper, true)] {
            let (op, key) = match (bound, below) {
                (Bound::Included(key), false) => (">=", key),
                (Bound::Excluded(key), false) => (">", key),
                (Bound::Included(key), true) => ("<=", key),
                (Bound::Excluded(key), true) => ("<", key),
                (Bound::Unbounded, _) => continue,
            };
            params.push(key);
            sql.push_str(&format!(" AND k {op} ${}", params.len()));
        }
        sql.push_str(if forward { " ORDER BY k" } else { " ORDER BY k DESC" });
        sql.push_str(&format!(" LIMIT {}", self.chunk));
        let typed: Vec<(&(dyn postgres::types::ToSql + Sync), Type)> =
            params.iter().map(|key| (key as &(dyn postgres::types::ToSql + Sync), Type::BYTEA)).collect();
        let fetched = self.source.run(|client| {
            client.query_typed(&sql, &typed)?.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect()
        });
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = match fetched {
            Ok(pairs) => pairs,
            Err(error) => {
                // The scan ends with the failure, reported at the next call.
                self.failed = Some(error);
                self.drained = true;
                self.source.finish();
                return;
            }
        };
        let fetched = pairs.len();
        let pairs = pairs.into_iter().map(|(key, value)| (Bytes::from(key), Bytes::from(value)));
        let buffer = if forward { &mut self.front } else { &mut self.back };
        buffer.extend(pairs);
        if (fetched as i64) < self.chunk {
            self.drained = true;
            self.source.finish();
        } else if let Some((last, _)) = buffer.back() {
            let bound = Bound::Excluded(last.to_vec());
            if forward { self.lower = bound } else { self.upper = bound }
        }
        self.chunk = (self.chunk * 2).min(MAX_CHUNK);
    }

    fn failure(&mut self) -> Option<Row> {
        self.failed.take().map(Row::Failed)
    }
}

impl Iterator for Rows {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        if self.front.is_empty() && !self.drained {
            self.fetch(true);
        }
        if let Some(failed) = self.failure() {
            return Some(failed);
        }
        let (key, value) = self.front.pop_front().or_else(|| self.back.pop_back())?;
        Some(Row::Pair(key, value))
    }
}

impl DoubleEndedIterator for Rows {
    fn next_back(&mut self) -> Option<Row> {
        if self.back.is_empty() && !self.drained {
            self.fetch(false);
        }
        if let Some(failed) = self.failure() {
            return Some(failed);
        }
        let (key, value) = self.back.pop_front().or_else(|| self.front.pop_back())?;
        Some(Row::Pair(key, value))
    }
}

/// The writes of one batch, by space and key (a later write to a key replaces an earlier
/// one, as it would in order), committed as one transaction.
pub struct Batch {
    engine: Engine,
    writes: BTreeMap<(Space, Vec<u8>), Option<Vec<u8>>>,
}

impl Batch {
    /// Writes `value` at `key` (`None`: deletes it).
    pub fn insert(&mut self, space: Space, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.writes.insert((space, key), value);
    }

    /// Commits it: one transaction, a statement per space for the upserts and one for the
    /// deletions, durable when it returns.
    ///
    /// # Errors
    /// SQL and connection errors; nothing of the batch is applied then.
    pub fn commit(self) -> Result<(), StorageError> {
        if self.writes.is_empty() {
            return Ok(());
        }
        let engine = self.engine.clone();
        engine.with_client(|client| {
            let mut transaction = client.transaction()?;
            for space in Space::ALL {
                let (mut keys, mut values, mut removed) = (Vec::new(), Vec::new(), Vec::new());
                for ((_, key), value) in self.writes.range((space, Vec::new())..).take_while(|((s, _), _)| *s == space)
                {
                    match value {
                        Some(value) => {
                            keys.push(key.as_slice());
                            values.push(value.as_slice());
                        }
                        None => removed.push(key.as_slice()),
                    }
                }
                if !removed.is_empty() {
                    let sql = format!("DELETE FROM {} WHERE k = ANY($1)", table(space));
                    transaction.execute_typed(&sql, &[(&removed, Type::BYTEA_ARRAY)])?;
                }
                if !keys.is_empty() {
                    let sql = format!(
                        "INSERT INTO {} (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                         ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
                        table(space)
                    );
                    transaction.execute_typed(&sql, &[(&keys, Type::BYTEA_ARRAY), (&values, Type::BYTEA_ARRAY)])?;
                }
            }
            transaction.commit()
        })?;
        engine.commits.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }
}
