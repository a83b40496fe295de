//! The engine's memory budget (`--cacheSizeGB`): how it is split between fjall's block cache
//! and its write buffers (memtables), and the check that keeps the write buffers within their
//! share.
//!
//! mongod's `cacheSizeGB` sizes WiredTiger's cache, which holds clean pages read from disk and
//! dirty pages not yet written. fjall keeps the two apart: the block cache holds blocks read
//! from disk tables, the memtables hold writes until a flush turns them into tables. So the
//! budget is shared between them:
//! - each keyspace's memtable is sealed and flushed at [`MemoryBudget::memtable_bytes`], a
//!   sixteenth of the budget within fjall's recommended 4 to 64 MiB (smaller memtables make
//!   smaller level-0 tables and more compaction work; larger ones gain little, and fjall's
//!   512 MiB journal cap forces flushes anyway);
//! - the write buffers get four memtables' worth: documents and index entries each have an
//!   active memtable and, while a flush runs, a sealed one. That is a quarter of the budget
//!   until the memtables reach 64 MiB (a budget of 1 GiB), and 256 MiB above;
//! - the block cache gets the rest: reads gain most from memory;
//! - the journal is capped at [`MemoryBudget::journal_bytes`], half the write buffers' share
//!   plus 64 MiB: past it fjall flushes the memtables that keep its oldest file. A restart
//!   reads the whole journal, so this bounds restart time; the `meta` keyspace, written
//!   rarely, would otherwise keep every file until fjall's default cap of 512 MiB
//!   (`docs/operations/memory.md` has the measured restart times).
//!
//! fjall counts memtable bytes across keyspaces but does not bound them (its
//! `max_write_buffer_size` is a no-op in 3.1), and a keyspace keeps the memtable size it was
//! created with. So [`Storage::bound_write_buffers`] seals the memtables itself when the
//! write buffers pass half their share: this also bounds directories created before the
//! budget existed (with fjall's 64 MiB memtables).

use super::Storage;

const MIB: u64 = 1024 * 1024;
/// The smallest memtable: below this, flushes make tiny tables.
const MIN_MEMTABLE_BYTES: u64 = 4 * MIB;
/// The largest memtable: fjall's default and the top of its recommended range.
const MAX_MEMTABLE_BYTES: u64 = 64 * MIB;
/// fjall's smallest journal cap.
const MIN_JOURNAL_BYTES: u64 = 64 * MIB;
/// fjall's default journal cap.
const MAX_JOURNAL_BYTES: u64 = 512 * MIB;
/// Memtables the write buffers hold at most in steady state: an active and a sealed one for
/// each of `docs` and `index` (`meta` takes only catalog writes).
const MEMTABLES_IN_BUDGET: u64 = 4;

/// The budget and its shares, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    /// The whole budget (`--cacheSizeGB`).
    pub total_bytes: u64,
    /// fjall's block cache capacity.
    pub block_cache_bytes: u64,
    /// What the memtables of all keyspaces may hold together.
    pub write_buffer_bytes: u64,
    /// The size at which one keyspace's memtable is sealed and flushed.
    pub memtable_bytes: u64,
    /// The journal size past which fjall flushes the memtables that keep its oldest file.
    pub journal_bytes: u64,
}

impl MemoryBudget {
    /// The smallest budget mongod accepts (`cacheSizeGB` 0.25), used where no configuration
    /// applies (tests, tools).
    pub const MIN_BYTES: u64 = 256 * MIB;

    /// Splits `total_bytes` between the block cache and the write buffers.
    pub fn split(total_bytes: u64) -> Self {
        let memtable_bytes = (total_bytes / 16).clamp(MIN_MEMTABLE_BYTES, MAX_MEMTABLE_BYTES);
        // IMPORTANT: never more than half, so a tiny budget still leaves the cache a share.
        let write_buffer_bytes = (memtable_bytes * MEMTABLES_IN_BUDGET).min(total_bytes / 2);
        Self {
            total_bytes,
            block_cache_bytes: total_bytes - write_buffer_bytes,
            write_buffer_bytes,
            memtable_bytes: memtable_bytes.min(write_buffer_bytes / 2).max(1),
            // IMPORTANT: fjall panics below its 64 MiB minimum.
            journal_bytes: (write_buffer_bytes / 2 + 64 * MIB).clamp(MIN_JOURNAL_BYTES, MAX_JOURNAL_BYTES),
        }
    }

    /// The engine's builder for the database in `dir` under this budget (block cache and
    /// journal cap): the server and `--repair`'s engines are sized alike.
    pub(super) fn engine(&self, dir: &std::path::Path) -> fjall::DatabaseBuilder<fjall::Database> {
        fjall::Database::builder(dir).cache_size(self.block_cache_bytes).max_journaling_size(self.journal_bytes)
    }
}

/// What the block cache and the write buffers hold now, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUsage {
    /// Blocks in the block cache.
    pub block_cache_bytes: u64,
    /// Memtables not yet flushed (active and sealed).
    pub write_buffer_bytes: u64,
}

impl MemoryUsage {
    /// Both together: what the budget bounds.
    pub fn total_bytes(&self) -> u64 {
        self.block_cache_bytes + self.write_buffer_bytes
    }
}

impl Storage {
    /// Seals the memtables (and queues their flush) when the write buffers hold more than half
    /// their share and no flush is running: the active memtables then never pass half the
    /// share, and the sealed ones being flushed take the other half. Called after each
    /// document write and on the background flush; when within budget it costs one atomic
    /// load.
    pub(super) fn bound_write_buffers(&self) {
        self.engine.bound_write_buffers(self.budget.write_buffer_bytes / 2);
    }

    /// The memory budget the engine was opened with.
    pub fn memory_budget(&self) -> MemoryBudget {
        self.budget
    }

    /// What the budget holds now (two atomic loads; no I/O).
    pub fn memory_usage(&self) -> MemoryUsage {
        self.engine.memory_usage()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::engine::Space;

    #[test]
    fn memory_budget_split_at_the_minimum_and_beyond() {
        let min = MemoryBudget::split(MemoryBudget::MIN_BYTES);
        assert_eq!(
            min,
            MemoryBudget {
                total_bytes: 256 * MIB,
                block_cache_bytes: 192 * MIB,
                write_buffer_bytes: 64 * MIB,
                memtable_bytes: 16 * MIB,
                journal_bytes: 96 * MIB,
            }
        );
        let gib = MemoryBudget::split(1024 * MIB);
        assert_eq!(
            (gib.block_cache_bytes, gib.write_buffer_bytes, gib.memtable_bytes),
            (768 * MIB, 256 * MIB, 64 * MIB)
        );
        // Past 1 GiB, everything more goes to the block cache.
        let big = MemoryBudget::split(8 * 1024 * MIB);
        assert_eq!(
            (big.block_cache_bytes, big.write_buffer_bytes, big.memtable_bytes, big.journal_bytes),
            (7936 * MIB, 256 * MIB, 64 * MIB, 192 * MIB)
        );
    }

    #[test]
    fn memory_budget_split_keeps_shares_within_a_tiny_total() {
        let tiny = MemoryBudget::split(6 * MIB);
        assert_eq!(tiny.write_buffer_bytes, 3 * MIB);
        assert_eq!(tiny.block_cache_bytes, 3 * MIB);
        assert!(tiny.memtable_bytes * 2 <= tiny.write_buffer_bytes);
        assert_eq!(tiny.journal_bytes, 64 * MIB + MIB + MIB / 2);
    }

    #[test]
    fn memory_budget_seals_memtables_past_half_the_write_share() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        // A keyspace made with fjall's default 64 MiB memtable, as before the budget existed.
        {
            let db = fjall::Database::builder(dir.path().join("engine")).open()?;
            db.keyspace("docs", fjall::KeyspaceCreateOptions::default)?;
        }
        let budget = MemoryBudget::split(MemoryBudget::MIN_BYTES);
        let storage = Storage::open_with_budget(dir.path(), budget)?;
        let value = vec![7u8; 1024];
        let mut n = 0u32;
        // Writes past half the write share (32 MiB) without the check keep growing the active
        // memtable: the old keyspace's own limit is 64 MiB.
        while storage.engine.memory_usage().write_buffer_bytes <= budget.write_buffer_bytes / 2 + MIB {
            storage.engine.insert(Space::Docs, n.to_be_bytes(), value.as_slice())?;
            n += 1;
        }
        assert_eq!(
            storage.engine.keyspace(Space::Docs).map(|docs| docs.sealed_memtable_count()),
            Some(0),
            "fjall alone has not sealed it"
        );
        storage.bound_write_buffers();
        let flushed = (0..500).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            storage.engine.memory_usage().write_buffer_bytes < budget.write_buffer_bytes / 2
        });
        assert!(flushed, "write buffers at {} bytes", storage.engine.memory_usage().write_buffer_bytes);
        Ok(())
    }

    #[test]
    fn memory_budget_caps_the_journal_though_the_catalog_is_rarely_written() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let budget = MemoryBudget::split(MemoryBudget::MIN_BYTES);
        let storage = Storage::open_with_budget(dir.path(), budget)?;
        let value = vec![7u8; 1024];
        let mut largest = 0;
        // Three times the cap in documents, flushed as their memtable fills (at 16 MiB, so the
        // write-buffer check, which would seal `meta` too, never has cause to run). Each write
        // also updates the collection's totals in `meta`, whose memtable never fills: every
        // journal file stays needed until `meta` is flushed.
        for n in 0..(3 * budget.journal_bytes / 1024) {
            let mut batch = storage.engine.batch();
            batch.insert(Space::Docs, n.to_be_bytes(), value.as_slice());
            batch.insert(Space::Meta, "totals", n.to_be_bytes());
            batch.commit()?;
            largest = largest.max(storage.engine.stats()?.journal_disk_bytes);
        }
        // fjall starts a new journal file past 64 MB (checked when a flush starts) and checks
        // the cap against the files before it: the cap in whole files, plus the file being
        // written, plus what arrives before the next flush.
        const FILE: u64 = 64_000_000;
        let slack = budget.journal_bytes.next_multiple_of(FILE) - budget.journal_bytes + 2 * FILE;
        assert!(largest <= budget.journal_bytes + slack, "journal reached {largest} bytes");
        Ok(())
    }
}
