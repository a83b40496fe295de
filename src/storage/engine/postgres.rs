//! The PostgreSQL engine: the three spaces are tables `(k bytea PRIMARY KEY, v bytea)` in a
//! PostgreSQL database (see `docs/design/postgres-engine.md`).
//!
//! - `bytea` compares bytewise, so ranges and index-ordered scans keep their meaning.
//! - A batch is one statement (so one transaction and one round trip), committed with
//!   `synchronous_commit` on: a commit is durable when it returns, so the journal's sync has
//!   nothing left to do.
//! - A snapshot is a `REPEATABLE READ READ ONLY` transaction on a connection it holds until
//!   its last clone (and every scan from it) is gone.
//! - Scans fetch in chunks by key (keyset pagination) from either end, so a scan that reads a
//!   few rows costs one small round trip and a long one never holds a server-side cursor.
//!
//! One node per database, unless every node runs with `--pgSharedNodes`: a session advisory
//! lock, held for the life of the process, keeps a second `monarchd` out; shared nodes hold
//! it shared, so a node without the flag is refused beside them, and each cross-node critical
//! section takes a lock of its own ([`Engine::lock`]). A watcher takes the node lock again on
//! the new primary after a failover.
//!
//! A lost connection (PostgreSQL restarting, a failover) fails its operation with a
//! retryable error, and every idle connection opened before it is dropped unused: the next
//! operations connect afresh, to the new primary when the URI names several hosts.

use std::collections::{BTreeMap, VecDeque};
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use postgres::Client;
use postgres::types::Type;

use super::postgres_target::PostgresTarget;

use super::space::{
    Bytes, CATALOG_KIND, CATALOG_VERSION_KEY, EngineStats, Instant, KeyspaceStats, LockedRead, LockedValues,
    PostgresStats, SharedLock, Space, prefix_successor,
};
use crate::storage::error::{StorageError, is_connection_lost};
use crate::storage::memory::MemoryUsage;

/// The advisory lock that keeps a second node out of the database (`'mnrc'`); shared nodes
/// hold it shared.
const NODE_LOCK: i64 = 0x6d6e_7263;
/// The advisory lock of catalog changes across shared nodes (`'mncl'`).
const CATALOG_LOCK: i64 = 0x6d6e_636c;
/// The advisory lock of the TTL monitor's passes (`'mntt'`).
const TTL_LOCK: i64 = 0x6d6e_7474;
/// The advisory lock of appends to the oplog (`'mnop'`).
const OPLOG_LOCK: i64 = 0x6d6e_6f70;
/// The advisory locks of collections' writes: this tag in the top 16 bits, the collection id
/// below (ids never reach 2^48).
const COLLECTION_LOCKS: i64 = 0x4d43 << 48;
/// Rows fetched by a scan's first round trip; later ones double up to [`MAX_CHUNK`].
const FIRST_CHUNK: i64 = 16;
/// The most rows one round trip of a scan fetches.
const MAX_CHUNK: i64 = 1024;
/// How often the node lock's session is checked (and taken again once lost).
const NODE_LOCK_CHECK: Duration = Duration::from_secs(1);

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

/// A connection, with the pool's generation when it was opened.
struct Conn {
    client: Client,
    generation: u64,
    figures: Arc<Figures>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.figures.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::ops::Deref for Conn {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// The pool's counts, for the metrics.
#[derive(Default)]
struct Figures {
    requests: AtomicU64,
    opened: AtomicU64,
    lost: AtomicU64,
    open: AtomicU64,
}

/// Connections not in use. Connections are opened on demand: callers are bounded by the
/// server's worker pool and its open cursors' snapshots.
struct Pool {
    target: PostgresTarget,
    idle: Mutex<Vec<Conn>>,
    /// Moves on at every lost connection: the database went away (a restart, a failover), so
    /// every connection opened before is presumed dead and is not reused.
    generation: AtomicU64,
    node: Arc<NodeLock>,
    figures: Arc<Figures>,
}

impl Pool {
    fn take(&self) -> Result<Conn, StorageError> {
        if self.node.lost.load(Ordering::Acquire) {
            return Err(StorageError::DatabaseInUse(self.node.database.clone()));
        }
        let generation = self.generation.load(Ordering::Acquire);
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        match idle {
            Some(conn) if conn.generation == generation && !conn.is_closed() => Ok(conn),
            _ => {
                let client = self.target.connect()?;
                self.figures.opened.fetch_add(1, Ordering::Relaxed);
                self.figures.open.fetch_add(1, Ordering::Relaxed);
                Ok(Conn { client, generation, figures: self.figures.clone() })
            }
        }
    }

    fn give_back(&self, conn: Conn) {
        if conn.is_closed() || conn.generation != self.generation.load(Ordering::Acquire) {
            close(conn);
        } else {
            self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(conn);
        }
    }

    /// The result of a round trip; a lost connection retires every connection opened before it.
    fn checked<T>(&self, result: Result<T, postgres::Error>) -> Result<T, StorageError> {
        self.figures.requests.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = &result
            && is_connection_lost(error)
        {
            self.figures.lost.fetch_add(1, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::AcqRel);
            let stale = std::mem::take(&mut *self.idle.lock().unwrap_or_else(PoisonError::into_inner));
            stale.into_iter().for_each(close);
        }
        Ok(result?)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for conn in std::mem::take(self.idle.get_mut().unwrap_or_else(PoisonError::into_inner)) {
            close(conn);
        }
    }
}

/// Drops `client` where blocking is allowed: dropping a client closes its connection through
/// the client's own runtime (see [`blocking`]).
fn close<C: Send>(client: C) {
    blocking(move || drop(client));
}

/// The session that holds [`NODE_LOCK`] for the life of the engine. The lock goes with its
/// session, so a watcher thread checks the session every [`NODE_LOCK_CHECK`] and takes the
/// lock again once it is lost (on the new primary, after a failover).
struct NodeLock {
    session: Mutex<Option<Client>>,
    /// Whether the session answered its last check (and so holds the lock): false from a failed
    /// check until the lock is taken again. A replica-set member steps down meanwhile.
    held: AtomicBool,
    /// Another node took the lock while this one's session was gone: every operation is
    /// refused (14 DBPathInUse) until the lock is this node's again.
    lost: AtomicBool,
    database: String,
    /// Held shared, beside other `--pgSharedNodes` nodes.
    shared: bool,
}

impl NodeLock {
    /// Takes the lock (`shared`: in shared mode) on a new session of `target`'s database.
    fn take(target: &PostgresTarget, shared: bool) -> Result<Client, StorageError> {
        let mut session = target.connect()?;
        let sql = if shared { "SELECT pg_try_advisory_lock_shared($1)" } else { "SELECT pg_try_advisory_lock($1)" };
        let locked: bool = session.query_one(sql, &[&NODE_LOCK])?.try_get(0)?;
        if !locked {
            return Err(StorageError::DatabaseInUse(target.config().get_dbname().unwrap_or("(default)").to_owned()));
        }
        Ok(session)
    }

    /// Checks the session until the engine is gone; runs on a thread of its own.
    fn watch(lock: Weak<NodeLock>, target: PostgresTarget) {
        loop {
            std::thread::sleep(NODE_LOCK_CHECK);
            let Some(lock) = lock.upgrade() else { return };
            let mut session = lock.session.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(current) = session.as_mut() {
                match current.is_valid(NODE_LOCK_CHECK) {
                    Ok(()) => continue,
                    // Slow, not gone: a busy database answers late, and the session still
                    // holds the lock.
                    Err(error) if !is_connection_lost(&error) => continue,
                    Err(_) => {}
                }
                tracing::warn!(target: "STORAGE", id = 7_000_433, "Lost the PostgreSQL session holding the node lock; taking it again");
                *session = None;
            }
            lock.held.store(false, Ordering::Release);
            match Self::take_again(&target, lock.shared) {
                Ok(taken) => {
                    *session = Some(taken);
                    lock.lost.store(false, Ordering::Release);
                    lock.held.store(true, Ordering::Release);
                    tracing::info!(target: "STORAGE", id = 7_000_434, "Took the PostgreSQL node lock again");
                }
                Err(StorageError::DatabaseInUse(database)) => {
                    if !lock.lost.swap(true, Ordering::AcqRel) {
                        tracing::error!(target: "STORAGE", id = 7_000_435, database, "Another monarchd took the PostgreSQL node lock; operations are refused until it is free");
                    }
                }
                // The database is not reachable yet: try again at the next check.
                Err(_) => {}
            }
        }
    }

    /// [`NodeLock::take`] after losing the session: a session that just ended (terminated
    /// by an operator, say) releases its locks as its process exits, a moment after its
    /// connection closes, so a refusal is tried again for a few tenths of a second before it
    /// counts.
    fn take_again(target: &PostgresTarget, shared: bool) -> Result<Client, StorageError> {
        for _ in 0..5 {
            match Self::take(target, shared) {
                Err(StorageError::DatabaseInUse(_)) => std::thread::sleep(Duration::from_millis(100)),
                taken => return taken,
            }
        }
        Self::take(target, shared)
    }
}

impl Drop for NodeLock {
    fn drop(&mut self) {
        if let Some(session) = self.session.get_mut().unwrap_or_else(PoisonError::into_inner).take() {
            close(session);
        }
    }
}

/// The engine handle: cheap to clone, clones share the pool.
#[derive(Clone)]
pub struct Engine {
    pool: Arc<Pool>,
    /// Counts committed batches: the instant a snapshot reads at (see [`Engine::visible_instant`]).
    commits: Arc<AtomicU64>,
    /// Other nodes share the database (`--pgSharedNodes`).
    shared: bool,
}

impl Engine {
    /// Connects to the database at `target`, takes the node lock (shared with other nodes
    /// when `shared`) and creates the tables where they are missing.
    ///
    /// # Errors
    /// [`StorageError::DatabaseInUse`] when another node holds the database (or, `shared`, a
    /// node that does not share it); connection and SQL errors.
    pub fn open(target: PostgresTarget, shared: bool) -> Result<Self, StorageError> {
        blocking(|| Self::open_blocking(target, shared))
    }

    fn open_blocking(target: PostgresTarget, shared: bool) -> Result<Self, StorageError> {
        let mut session = NodeLock::take(&target, shared)?;
        // Shared nodes may start together: one creates the tables at a time.
        session.batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock({CATALOG_LOCK})"))?;
        for space in Space::ALL {
            session.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {} (k bytea PRIMARY KEY, v bytea NOT NULL)",
                table(space)
            ))?;
        }
        session.batch_execute("COMMIT")?;
        let node = Arc::new(NodeLock {
            session: Mutex::new(Some(session)),
            held: AtomicBool::new(true),
            lost: AtomicBool::new(false),
            database: target.config().get_dbname().unwrap_or("(default)").to_owned(),
            shared,
        });
        let (watched, watcher_target) = (Arc::downgrade(&node), target.clone());
        std::thread::Builder::new()
            .name("pg-node-lock".to_owned())
            .spawn(move || NodeLock::watch(watched, watcher_target))?;
        let pool =
            Pool { target, idle: Mutex::default(), generation: AtomicU64::new(0), node, figures: Arc::default() };
        Ok(Self { pool: Arc::new(pool), commits: Arc::default(), shared })
    }

    /// Whether other nodes share the database (`--pgSharedNodes`).
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Takes `what`'s lock across the nodes sharing the database, waiting for it; `None` when
    /// no other node shares it (the caller's in-process lock is enough then). Held until the
    /// returned guard goes.
    ///
    /// # Errors
    /// SQL and connection errors; 112 WriteConflict for a deadlock PostgreSQL broke.
    pub fn lock(&self, what: SharedLock) -> Result<Option<Lock>, StorageError> {
        self.take_lock(what, "SELECT pg_advisory_lock($1), true")
    }

    /// As [`Engine::lock`] without waiting: `None` as well when another node holds it.
    ///
    /// # Errors
    /// SQL and connection errors.
    pub fn try_lock(&self, what: SharedLock) -> Result<Option<Lock>, StorageError> {
        self.take_lock(what, "SELECT true, pg_try_advisory_lock($1)")
    }

    /// As [`Engine::lock`], and then, in the same round trip, `reads`: one value each (the
    /// value at a key, or the last key under a prefix). They read what the lock's previous
    /// holder committed: the lock and each read are statements of one simple query, and
    /// under `READ COMMITTED` each statement takes its snapshot when it starts, so after the
    /// lock is granted. (A read in the lock's own statement would use a snapshot taken before
    /// the wait.)
    ///
    /// # Errors
    /// SQL and connection errors; the lock is not held then (its session is closed).
    pub fn lock_reading(
        &self,
        what: SharedLock,
        reads: &[LockedRead<'_>],
    ) -> Result<Option<(Lock, LockedValues)>, StorageError> {
        if !self.shared {
            return Ok(None);
        }
        let key = lock_key(what);
        let hex = |bytes: &[u8]| format!("decode('{}', 'hex')", hex::encode(bytes));
        let mut sql = format!("SELECT pg_advisory_lock({key})");
        for read in reads {
            // Hex out as well: bytea's text form depends on the server's bytea_output.
            let statement = match read {
                LockedRead::Get(space, at) => {
                    format!("SELECT encode(v, 'hex') FROM {} WHERE k = {}", table(*space), hex(at))
                }
                LockedRead::LastKey(space, prefix) => {
                    let below =
                        prefix_successor(prefix).map(|end| format!(" AND k < {}", hex(&end))).unwrap_or_default();
                    format!(
                        "SELECT encode(k, 'hex') FROM {} WHERE k >= {}{below} ORDER BY k DESC LIMIT 1",
                        table(*space),
                        hex(prefix)
                    )
                }
            };
            sql.push_str("; ");
            sql.push_str(&statement);
        }
        blocking(|| {
            let mut conn = self.pool.take()?;
            let answered = self.pool.checked(conn.simple_query(&sql)).and_then(|messages| {
                let mut values = vec![None; reads.len()];
                // Statement 0 is the lock; a row of statement n > 0 answers read n - 1.
                let mut statement = 0;
                for message in messages {
                    match message {
                        postgres::SimpleQueryMessage::CommandComplete(_) => statement += 1,
                        postgres::SimpleQueryMessage::Row(row) if statement > 0 => {
                            let text = row.try_get(0)?.unwrap_or_default();
                            let value = hex::decode(text).map_err(|error| StorageError::Corrupt {
                                what: "a value read under a lock",
                                detail: error.to_string(),
                            })?;
                            if let Some(slot) = values.get_mut(statement - 1) {
                                *slot = Some(value);
                            }
                        }
                        _ => {}
                    }
                }
                Ok(values)
            });
            match answered {
                Ok(values) => Ok(Some((Lock { conn: Some(conn), key, pool: self.pool.clone() }, values))),
                // The lock may be held: closing its session releases it.
                Err(error) => {
                    drop(conn);
                    Err(error)
                }
            }
        })
    }

    fn take_lock(&self, what: SharedLock, sql: &'static str) -> Result<Option<Lock>, StorageError> {
        if !self.shared {
            return Ok(None);
        }
        let key = lock_key(what);
        blocking(|| {
            let mut conn = self.pool.take()?;
            let taken = self.pool.checked(
                conn.query_typed(sql, &[(&key, Type::INT8)])
                    .and_then(|rows| rows.first().map_or(Ok(false), |row| row.try_get::<_, bool>(1))),
            );
            match taken {
                Ok(true) => Ok(Some(Lock { conn: Some(conn), key, pool: self.pool.clone() })),
                other => {
                    self.pool.give_back(conn);
                    other.map(|_| None)
                }
            }
        })
    }

    fn with_client<T: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send,
    ) -> Result<T, StorageError> {
        blocking(|| {
            let mut conn = self.pool.take()?;
            let result = self.pool.checked(f(&mut conn));
            self.pool.give_back(conn);
            result
        })
    }

    /// Whether the database answered the node lock's last check (at most a second ago): false
    /// while it is unreachable, from a restart or a failover until the lock is taken again.
    pub fn is_reachable(&self) -> bool {
        self.pool.node.held.load(Ordering::Acquire)
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
        let held = Held { client: Mutex::new(None), pool: self.pool.clone(), pinned: AtomicBool::new(false) };
        Snapshot { held: Arc::new(held), instant }
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
        let (sizes, standbys) = self.with_client(|client| {
            let sizes = table_sizes(client)?;
            let standbys = client
                .query(
                    "SELECT application_name, sync_state, \
                     COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint FROM pg_stat_replication",
                    &[],
                )?
                .iter()
                .map(|row| {
                    Ok((row.try_get(0)?, row.try_get(1)?, u64::try_from(row.try_get::<_, i64>(2)?).unwrap_or(0)))
                })
                .collect::<Result<Vec<_>, postgres::Error>>()?;
            Ok((sizes, standbys))
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
            postgres: Some(PostgresStats {
                requests: self.pool.figures.requests.load(Ordering::Relaxed),
                connections_opened: self.pool.figures.opened.load(Ordering::Relaxed),
                connections_lost: self.pool.figures.lost.load(Ordering::Relaxed),
                connections_open: self.pool.figures.open.load(Ordering::Relaxed),
                connections_idle: self.pool.idle.lock().unwrap_or_else(PoisonError::into_inner).len() as u64,
                standbys,
            }),
        })
    }

    /// Bytes of the tables (0 when they cannot be read).
    pub fn disk_space(&self) -> u64 {
        self.with_client(table_sizes).map_or(0, |sizes| sizes.iter().sum())
    }

    /// The server's memory is PostgreSQL's to manage: nothing is held here.
    pub fn memory_usage(&self) -> MemoryUsage {
        MemoryUsage { block_cache_bytes: 0, write_buffer_bytes: 0 }
    }
}

/// A lock across the nodes sharing the database (see [`Engine::lock`]): an advisory lock
/// of the session it holds, released when it goes (or when that session ends, with its node).
pub struct Lock {
    conn: Option<Conn>,
    key: i64,
    pool: Arc<Pool>,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else { return };
        blocking(|| match conn.query_typed("SELECT pg_advisory_unlock($1)", &[(&self.key, Type::INT8)]) {
            Ok(_) => self.pool.give_back(conn),
            // Closing the session releases the lock.
            Err(_) => drop(conn),
        });
    }
}

/// The advisory lock's key of `what`.
fn lock_key(what: SharedLock) -> i64 {
    match what {
        SharedLock::Catalog => CATALOG_LOCK,
        SharedLock::Ttl => TTL_LOCK,
        SharedLock::Oplog => OPLOG_LOCK,
        SharedLock::Collection(id) => COLLECTION_LOCKS | (i64::try_from(id).unwrap_or(0) & ((1 << 48) - 1)),
    }
}

/// Bytes of each space's table, in [`Space::ALL`]'s order.
fn table_sizes(client: &mut Client) -> Result<Vec<u64>, postgres::Error> {
    Space::ALL
        .iter()
        .map(|space| {
            let row = client.query_one("SELECT pg_total_relation_size(to_regclass($1))", &[&table(*space)])?;
            Ok(row.try_get::<_, Option<i64>>(0)?.and_then(|bytes| u64::try_from(bytes).ok()).unwrap_or(0))
        })
        .collect()
}

fn get(client: &mut Client, space: Space, key: &[u8]) -> Result<Option<Bytes>, postgres::Error> {
    let sql = format!("SELECT v FROM {} WHERE k = $1", table(space));
    let row = client.query_typed(&sql, &[(&key, Type::BYTEA)])?;
    row.first().map(|row| row.try_get::<_, &[u8]>(0).map(Bytes::from)).transpose()
}

thread_local! {
    /// The snapshots read by the request running on this thread, while [`RequestViews`]
    /// collects them.
    static REQUEST_VIEWS: std::cell::RefCell<Option<Vec<Weak<Held>>>> = const { std::cell::RefCell::new(None) };
    /// Whether the request running on this thread has checked the catalog's version.
    static REQUEST_CATALOG_CHECKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Bounds how long a cursor holds a PostgreSQL transaction (and its connection) to one batch:
/// collects the snapshots that the request on this thread reads through, and when it goes
/// (the reply is built), ends the transaction of each one still held and not pinned, giving
/// its connection back. A parked cursor's next batch then reads from a new snapshot, resuming
/// after the last key it read, as mongod's cursors yield between batches at
/// `readConcern: local`. Pinned snapshots (a transaction's, a snapshot read's) keep theirs.
///
/// It also remembers whether the request has checked the catalog's version (shared nodes):
/// a request sees other nodes' catalog changes made before it started, read once, not at
/// each of its lookups; writes check again under their locks.
pub struct RequestViews {
    /// Whether this guard started the collection (a nested one leaves it to the outer).
    outermost: bool,
}

impl RequestViews {
    /// Starts collecting on this thread (nothing new when already collecting).
    pub fn collect() -> Self {
        let outermost = REQUEST_VIEWS.with(|views| {
            let mut views = views.borrow_mut();
            views.is_none() && views.replace(Vec::new()).is_none()
        });
        if outermost {
            REQUEST_CATALOG_CHECKED.set(false);
        }
        Self { outermost }
    }

    /// Whether the request running on this thread has checked the catalog's version.
    pub fn catalog_checked() -> bool {
        REQUEST_CATALOG_CHECKED.get()
    }

    /// Notes that the request running on this thread (if any) has checked the catalog's
    /// version.
    pub fn note_catalog_checked() {
        if REQUEST_VIEWS.with(|views| views.borrow().is_some()) {
            REQUEST_CATALOG_CHECKED.set(true);
        }
    }
}

impl Drop for RequestViews {
    fn drop(&mut self) {
        if !self.outermost {
            return;
        }
        REQUEST_CATALOG_CHECKED.set(false);
        let read = REQUEST_VIEWS.with(|views| views.borrow_mut().take()).unwrap_or_default();
        for held in read.iter().filter_map(Weak::upgrade) {
            if !held.pinned.load(Ordering::Acquire) {
                held.end_transaction();
            }
        }
    }
}

/// A snapshot's connection, in its open transaction from the first read on; rolled back and
/// returned to the pool when the last holder goes, or at the end of a request that read it
/// (see [`RequestViews`]) unless pinned.
struct Held {
    client: Mutex<Option<Conn>>,
    pool: Arc<Pool>,
    /// Keeps its transaction across requests (a multi-document transaction's snapshot, a
    /// snapshot read's).
    pinned: AtomicBool,
}

impl Held {
    fn run<T: Send>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send,
    ) -> Result<T, StorageError> {
        REQUEST_VIEWS.with(|views| {
            if let Some(views) = views.borrow_mut().as_mut()
                && !views.iter().any(|view| std::ptr::eq(view.as_ptr(), Arc::as_ptr(self)))
            {
                views.push(Arc::downgrade(self));
            }
        });
        blocking(|| self.run_blocking(f))
    }

    /// Rolls its transaction back and gives the connection back; the next read begins anew.
    fn end_transaction(&self) {
        let client = self.client.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(mut conn) = client {
            blocking(|| match conn.batch_execute("ROLLBACK") {
                Ok(()) => self.pool.give_back(conn),
                // A connection whose rollback fails is closed rather than reused.
                Err(_) => drop(conn),
            });
        }
    }

    fn run_blocking<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>) -> Result<T, StorageError> {
        let mut slot = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        let client = match &mut *slot {
            Some(client) => client,
            None => {
                let mut conn = self.pool.take()?;
                // A repeatable-read snapshot is taken at its first statement, not at BEGIN.
                let begun =
                    self.pool.checked(conn.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1"));
                if let Err(error) = begun {
                    self.pool.give_back(conn);
                    return Err(error);
                }
                slot.insert(conn)
            }
        };
        self.pool.checked(f(client))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.end_transaction();
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

    /// Keeps its transaction until it goes, across requests (see [`RequestViews`]).
    pub fn pin(&self) {
        self.held.pinned.store(true, Ordering::Release);
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
    Pooled { pool: Arc<Pool>, client: Option<Box<Conn>> },
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
                let conn = match client {
                    Some(conn) => conn,
                    None => client.insert(Box::new(pool.take()?)),
                };
                pool.checked(f(conn))
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

/// One space's share of a batch: the keys it removes, and the keys and values it writes.
struct SpaceWrites<'a> {
    space: Space,
    removed: Vec<&'a [u8]>,
    keys: Vec<&'a [u8]>,
    values: Vec<&'a [u8]>,
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

    /// Commits it: one statement, so one round trip, durable when it returns. Each space's
    /// deletions and upserts are data-modifying parts (`WITH .. AS (DELETE ..)`) of that
    /// statement, which applies all of them or none. Parts may not touch a row twice; they
    /// cannot, as the batch holds each key once.
    ///
    /// # Errors
    /// SQL and connection errors; nothing of the batch is applied then.
    pub fn commit(self) -> Result<(), StorageError> {
        if self.writes.is_empty() {
            return Ok(());
        }
        let spaces: Vec<SpaceWrites<'_>> = Space::ALL
            .into_iter()
            .map(|space| {
                let mut writes = SpaceWrites { space, removed: Vec::new(), keys: Vec::new(), values: Vec::new() };
                for ((_, key), value) in self.writes.range((space, Vec::new())..).take_while(|((s, _), _)| *s == space)
                {
                    match value {
                        Some(value) => {
                            writes.keys.push(key.as_slice());
                            writes.values.push(value.as_slice());
                        }
                        None => writes.removed.push(key.as_slice()),
                    }
                }
                writes
            })
            .collect();
        let mut params: Vec<(&(dyn postgres::types::ToSql + Sync), Type)> = Vec::new();
        let mut parts = Vec::new();
        for writes in &spaces {
            let table = table(writes.space);
            if !writes.removed.is_empty() {
                params.push((&writes.removed, Type::BYTEA_ARRAY));
                parts.push(format!("DELETE FROM {table} WHERE k = ANY(${})", params.len()));
            }
            if !writes.keys.is_empty() {
                params.push((&writes.keys, Type::BYTEA_ARRAY));
                params.push((&writes.values, Type::BYTEA_ARRAY));
                parts.push(format!(
                    "INSERT INTO {table} (k, v) SELECT * FROM unnest(${}::bytea[], ${}::bytea[]) \
                     ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
                    params.len() - 1,
                    params.len()
                ));
            }
        }
        // Other nodes see a catalog change by this version (see `Storage::refresh_catalog`),
        // an 8-byte big-endian count under `CATALOG_VERSION_KEY`, counted up in place.
        if self.writes.keys().any(|(space, key)| *space == Space::Meta && key.first() == Some(&CATALOG_KIND)) {
            params.push((&CATALOG_VERSION_KEY, Type::BYTEA));
            parts.push(format!(
                "INSERT INTO monarch_meta (k, v) VALUES (${}, int8send(1)) ON CONFLICT (k) DO UPDATE \
                 SET v = int8send(('x' || encode(monarch_meta.v, 'hex'))::bit(64)::bigint + 1)",
                params.len()
            ));
        }
        let parts: Vec<String> = parts.iter().enumerate().map(|(i, part)| format!("part{i} AS ({part})")).collect();
        let sql = format!("WITH {} SELECT 1", parts.join(", "));
        let engine = self.engine.clone();
        engine.with_client(|client| client.execute_typed(&sql, &params))?;
        engine.commits.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use postgres::NoTls;

    use super::*;
    use crate::error::{Error, ErrorCode};

    /// After PostgreSQL drops every session (a restart, a failover), the first operation fails
    /// with the retryable 11602, and the idle connections opened before it are not reused: the
    /// next operation connects afresh and succeeds. Runs when `MONARCH_TEST_PG_URI` names a
    /// server (`.ci/postgres-tests` sets it).
    #[test]
    fn a_lost_connection_retires_every_idle_one() -> Result<(), Box<dyn std::error::Error>> {
        let Ok(uri) = std::env::var("MONARCH_TEST_PG_URI") else {
            eprintln!("skipped: MONARCH_TEST_PG_URI is not set");
            return Ok(());
        };
        let name = format!("monarch_pool_test_{}", std::process::id());
        let mut admin = Client::connect(&uri, NoTls)?;
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))?;
        admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
        let mut target = PostgresTarget::parse(&uri)?;
        target.config_mut().dbname(&name);
        let engine = Engine::open(target, false)?;
        engine.insert(Space::Meta, b"k", b"v")?;
        // Two snapshots read at once: two connections, idle in the pool once they go.
        let (first, second) = (engine.snapshot(), engine.snapshot());
        first.get(Space::Meta, b"k")?;
        second.get(Space::Meta, b"k")?;
        drop((first, second));
        assert!(engine.pool.idle.lock().unwrap_or_else(PoisonError::into_inner).len() >= 2);

        let terminated: Vec<i32> = admin
            .query(
                "WITH sessions AS MATERIALIZED (SELECT pid FROM pg_stat_activity WHERE datname = $1) \
                 SELECT pid FROM sessions WHERE pg_terminate_backend(pid)",
                &[&name],
            )?
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert!(terminated.len() >= 3, "the pool's connections and the node lock's: {terminated:?}");
        let gone = |admin: &mut Client| -> Result<bool, postgres::Error> {
            let left: i64 =
                admin.query_one("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)", &[&terminated])?.get(0);
            Ok(left == 0)
        };
        while !gone(&mut admin)? {
            std::thread::sleep(Duration::from_millis(10));
        }
        let lost = engine.get(Space::Meta, b"k").map(|_| ()).map_err(Error::from);
        assert_eq!(lost.map_err(|error| error.code()), Err(ErrorCode::InterruptedDueToReplStateChange));
        assert_eq!(engine.get(Space::Meta, b"k")?.as_deref(), Some(&b"v"[..]));
        drop(engine);
        admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))?;
        Ok(())
    }
}
