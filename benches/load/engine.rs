//! The engine floor: fjall driven directly (one `Database` in a temp dir), with Monarch's keys
//! (an 8-byte collection prefix and the order-preserving `_id` encoding) and the same
//! documents: one-record batches without sync (what Monarch commits for a `w: 1` insert),
//! random point gets, full scans of the keyspace, batches of 1,000 documents without sync, and
//! group commit (one-record batches whose writers wait for a shared `persist(SyncData)`, one
//! leader syncing for every writer waiting).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use crate::BenchResult;
use crate::measure::{Measured, Timing, drive_threads, drive_threads_total};
use crate::shape::{BATCH, ENGINE_PREFIX, KEY_SALT, Shape, engine_key, random};
use crate::workload::Floor;

/// fjall on its own: the same keys and documents, no server in between.
pub(crate) struct Engine {
    db: Database,
    /// Holds the loaded records: point reads and scans.
    docs: Keyspace,
    /// Receives single-record writes.
    writes: Keyspace,
    /// Receives batches.
    batches: Keyspace,
    /// Receives the group commit floor's durable writes.
    durable: Keyspace,
    /// The encoded document of every record.
    values: Vec<Vec<u8>>,
    /// One batch's worth of encoded documents of the batch floor's size.
    batch_values: Vec<Vec<u8>>,
    records: u64,
    /// Declared last: removed after the database is closed.
    _dir: tempfile::TempDir,
}

impl Engine {
    /// Opens a fresh database; `load` writes the records that reads and scans need.
    pub(crate) fn open(shape: Shape, many_shape: Shape, load: bool) -> BenchResult<Self> {
        let dir = tempfile::tempdir()?;
        let db = Database::builder(dir.path().join("engine")).open()?;
        let docs = db.keyspace("docs", KeyspaceCreateOptions::default)?;
        let writes = db.keyspace("writes", KeyspaceCreateOptions::default)?;
        let batches = db.keyspace("batches", KeyspaceCreateOptions::default)?;
        let durable = db.keyspace("durable", KeyspaceCreateOptions::default)?;
        let values = (0..shape.records).map(|id| shape.bytes(id)).collect::<BenchResult<Vec<_>>>()?;
        let batch_values = (0..BATCH).map(|id| many_shape.bytes(id)).collect::<BenchResult<Vec<_>>>()?;
        let engine =
            Self { db, docs, writes, batches, durable, values, batch_values, records: shape.records, _dir: dir };
        if load {
            engine.load()?;
        }
        Ok(engine)
    }

    fn load(&self) -> BenchResult<()> {
        for first in (0..self.records).step_by(BATCH as usize) {
            let mut batch = self.db.batch();
            for id in first..self.records.min(first + BATCH) {
                batch.insert(&self.docs, engine_key(id), self.value(id));
            }
            batch.commit()?;
        }
        Ok(())
    }

    fn value(&self, id: u64) -> &[u8] {
        self.values.get((id % self.records) as usize).map_or(&[], Vec::as_slice)
    }

    fn batch_value(&self, id: u64) -> &[u8] {
        self.batch_values.get((id % BATCH) as usize).map_or(&[], Vec::as_slice)
    }

    pub(crate) fn measure(&self, floor: Floor, threads: usize, timing: Timing) -> BenchResult<Measured> {
        match floor {
            Floor::EngineWrite => self.single_writes(threads, timing),
            Floor::EngineRead => self.point_reads(threads, timing),
            Floor::EngineScan => self.scans(threads, timing),
            Floor::EngineBatch => Err("the batch floor is measured for the bytes insert-many wrote".into()),
            Floor::EngineGroupCommit => self.group_commits(threads, timing),
            Floor::Echo | Floor::PostgresRead | Floor::PostgresWrite => {
                Err(format!("the {} floor is not an engine floor", floor.name()).into())
            }
        }
    }

    fn single_writes(&self, threads: usize, timing: Timing) -> BenchResult<Measured> {
        let next = AtomicU64::new(0);
        drive_threads(threads, timing, 1, |_, _| {
            let id = next.fetch_add(1, Ordering::Relaxed);
            let (key, value) = (engine_key(id), self.value(id).to_vec());
            move || {
                let mut batch = self.db.batch();
                batch.insert(&self.writes, key, value);
                batch.commit().map_err(|e| e.to_string())
            }
        })
    }

    /// One-record batches committed without sync, each writer then waiting until a shared
    /// `persist(SyncData)` covers its batch: what `j: true` costs at best.
    fn group_commits(&self, threads: usize, timing: Timing) -> BenchResult<Measured> {
        let next = AtomicU64::new(0);
        let group = GroupCommit::new(threads);
        drive_threads(threads, timing, 1, |_, _| {
            let id = next.fetch_add(1, Ordering::Relaxed);
            let (key, value) = (engine_key(id), self.value(id).to_vec());
            let group = &group;
            move || {
                let mut batch = self.db.batch();
                batch.insert(&self.durable, key, value);
                batch.commit().map_err(|e| e.to_string())?;
                group.wait_durable(&self.db)
            }
        })
    }

    fn point_reads(&self, threads: usize, timing: Timing) -> BenchResult<Measured> {
        drive_threads(threads, timing, 1, |worker, seq| {
            let key = engine_key(random(worker, seq, KEY_SALT) % self.records);
            move || match self.docs.get(key) {
                Ok(Some(value)) => {
                    black_box(value);
                    Ok(())
                }
                Ok(None) => Err("a loaded key is missing".to_owned()),
                Err(error) => Err(error.to_string()),
            }
        })
    }

    fn scans(&self, threads: usize, timing: Timing) -> BenchResult<Measured> {
        drive_threads(threads, timing, self.records, |_, _| {
            move || {
                let mut seen = 0;
                for guard in self.docs.prefix(ENGINE_PREFIX.to_be_bytes()) {
                    black_box(guard.into_inner().map_err(|e| e.to_string())?);
                    seen += 1;
                }
                if seen == self.records { Ok(()) } else { Err(format!("scanned {seen} of {} records", self.records)) }
            }
        })
    }

    /// `batches` batches of `BATCH` records from `threads` threads, without sync.
    pub(crate) fn batch_writes(&self, threads: usize, batches: u64) -> BenchResult<Measured> {
        let next = AtomicU64::new(0);
        drive_threads_total(threads, batches, BATCH, |_, _| {
            let first = next.fetch_add(BATCH, Ordering::Relaxed);
            let records: Vec<_> =
                (first..first + BATCH).map(|id| (engine_key(id), self.batch_value(id).to_vec())).collect();
            move || {
                let mut batch = self.db.batch();
                for (key, value) in records {
                    batch.insert(&self.batches, key, value);
                }
                batch.commit().map_err(|e| e.to_string())
            }
        })
    }
}

/// The group commit floor's bookkeeping: which committed batches a finished sync covers.
struct GroupCommit {
    /// The writers taking part: a sync that covers this many pending batches covers everyone.
    writers: u64,
    state: Mutex<GroupState>,
    /// Signalled when a sync ends.
    synced: Condvar,
    /// Signalled when a batch is committed (the gathering leader waits on it).
    committed: Condvar,
}

#[derive(Debug, Default)]
struct GroupState {
    /// Batches committed (and numbered) so far.
    committed: u64,
    /// Every batch up to this number is on disk.
    synced: u64,
    /// A leader is gathering or syncing.
    syncing: bool,
}

/// The longest a group commit leader waits for the other writers before it syncs (Monarch's
/// own journal gathers for at most as long).
const GROUP_GATHER_MAX: Duration = Duration::from_millis(1);

impl GroupCommit {
    fn new(writers: usize) -> Self {
        Self { writers: writers as u64, state: Mutex::default(), synced: Condvar::new(), committed: Condvar::new() }
    }

    /// Numbers the batch its caller just committed and returns once it is on disk. The first
    /// writer to find no sync running leads: it waits until every writer has a batch pending
    /// (or 1 ms has passed, so writers that stopped cannot stall it), then syncs once for all
    /// of them. fjall holds its journal lock while it syncs, so a leader that synced at once
    /// would cover only the one or two writers that had committed by then, and block the rest
    /// behind the sync: this is the best case, one sync per round of writers.
    fn wait_durable(&self, db: &Database) -> Result<(), String> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.committed += 1;
        self.committed.notify_all();
        // IMPORTANT: numbered after the commit, so a sync that starts once this number is
        // taken covers the batch.
        let ticket = state.committed;
        while state.synced < ticket {
            if state.syncing {
                state = self.synced.wait(state).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            state.syncing = true;
            let gathering = Instant::now();
            while state.committed - state.synced < self.writers {
                let Some(left) = GROUP_GATHER_MAX.checked_sub(gathering.elapsed()) else { break };
                state = self.committed.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
            }
            let target = state.committed;
            drop(state);
            let outcome = db.persist(PersistMode::SyncData).map_err(|e| e.to_string());
            state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.syncing = false;
            if outcome.is_ok() {
                state.synced = state.synced.max(target);
            }
            self.synced.notify_all();
            outcome?;
        }
        Ok(())
    }
}
