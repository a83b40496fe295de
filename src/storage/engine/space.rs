//! What every engine names alike: its key spaces and the figures it reports.

/// A key or a value as an engine returns it: shared bytes, cheap to clone (fjall's own type,
/// which the PostgreSQL engine fills from its rows).
pub type Bytes = fjall::Slice;

/// A point in an engine's commit order: a read at an instant sees every batch committed
/// before it.
pub type Instant = u64;

/// The smallest byte string above every string that starts with `prefix`, or `None` when no
/// such string exists (all `FF`).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last != 0xFF {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

/// One of the engine's three ordered key spaces (see the layout in the storage module's
/// documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Space {
    /// Format versions, the catalog, totals, drop markers, retryable-write records, change
    /// images.
    Meta,
    /// Documents, keyed by collection id and `_id` (or record id).
    Docs,
    /// Secondary index entries, keyed by index id, key tuple and record key.
    Index,
}

impl Space {
    /// Every space, in the order the engine's statistics list them.
    pub const ALL: [Space; 3] = [Space::Meta, Space::Docs, Space::Index];

    /// Its name, as the engine and the metrics call it.
    pub fn name(self) -> &'static str {
        match self {
            Space::Meta => "meta",
            Space::Docs => "docs",
            Space::Index => "index",
        }
    }
}

/// The engine's figures at one moment (see [`Storage::engine_stats`](crate::storage::Storage::engine_stats)).
#[derive(Debug, Clone)]
pub struct EngineStats {
    /// Bytes of the whole engine directory.
    pub disk_bytes: u64,
    /// Bytes of the journal.
    pub journal_disk_bytes: u64,
    /// Journal files on disk.
    pub journal_files: usize,
    /// Bytes in memtables not yet flushed.
    pub write_buffer_bytes: u64,
    /// Memtable flushes queued.
    pub pending_flushes: usize,
    /// Compactions finished since start.
    pub compactions_completed: usize,
    /// Compactions running now.
    pub compactions_running: usize,
    /// Time spent compacting since start.
    pub compaction_time: std::time::Duration,
    /// One entry per key space, in [`Space::ALL`]'s order.
    pub keyspaces: [KeyspaceStats; 3],
    /// The PostgreSQL engine's connection figures (`None` on the embedded engine).
    pub postgres: Option<PostgresStats>,
}

/// The PostgreSQL engine's connections and its database's replication, at one moment.
#[derive(Debug, Clone, Default)]
pub struct PostgresStats {
    /// Requests sent since start: a point read, a scan's chunk, a snapshot's start, a batch's
    /// whole transaction (each one round trip or more).
    pub requests: u64,
    /// Connections opened since start.
    pub connections_opened: u64,
    /// Connections found lost since start (a restart or a failover of the database).
    pub connections_lost: u64,
    /// Connections open now, idle or in use.
    pub connections_open: u64,
    /// Connections idle in the pool now.
    pub connections_idle: u64,
    /// Each standby streaming from the primary: its name, whether it is synchronous, and how
    /// many bytes of WAL it has yet to replay.
    pub standbys: Vec<(String, String, u64)>,
}

/// One key space's figures.
#[derive(Debug, Clone)]
pub struct KeyspaceStats {
    /// `meta`, `docs` or `index`.
    pub name: &'static str,
    /// Bytes on disk.
    pub disk_bytes: u64,
    /// Tables in level 0: fjall slows, then halts, writes as these pile up.
    pub l0_tables: usize,
    /// Tables in all levels.
    pub tables: usize,
}

/// The first byte of the `meta` keys of catalog entries. A batch writing one is a catalog
/// change: the PostgreSQL engine counts it in the catalog's version, which nodes sharing the
/// database compare with the catalog they hold.
pub const CATALOG_KIND: u8 = b'c';

/// The `meta` key of the catalog's version on PostgreSQL: 8 bytes, big-endian, counted up by
/// every batch that writes a catalog entry (absent until the first).
pub const CATALOG_VERSION_KEY: &[u8] = b"g";

/// What a lock across the nodes sharing a database guards (see
/// [`Engine::lock`](super::Engine::lock)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedLock {
    /// Catalog changes: creating, dropping, renaming and changing collections and indexes.
    Catalog,
    /// The writes to one collection (by id): a unique check and the write it guards, and a
    /// read-modify-write of a document, from the first read to the commit.
    Collection(u64),
    /// The TTL monitor's passes: one node deletes expired documents at a time.
    Ttl,
    /// Appending to the oplog: one commit with entries at a time, each entry later than
    /// every entry before it, so that entries become visible in time order on every node.
    Oplog,
}

/// What each [`LockedRead`] found (`None` where nothing is stored), in their order.
pub type LockedValues = Vec<Option<Vec<u8>>>;

/// A read made in the same round trip as taking a lock across nodes, after it (see
/// [`Engine::lock_reading`](super::Engine::lock_reading)).
#[derive(Debug, Clone, Copy)]
pub enum LockedRead<'a> {
    /// The value at a key.
    Get(Space, &'a [u8]),
    /// The last key under a prefix.
    LastKey(Space, &'a [u8]),
}
