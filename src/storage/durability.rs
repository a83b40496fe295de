//! Journal durability: group commit for `j: true` writers and the background flush that every
//! other write relies on (mongod's 100 ms journal commit interval).
//!
//! fjall fsyncs while holding its journal lock, so writers that each asked for a sync would
//! queue behind one another (about 3,300 syncs/s here). Instead every batch is committed
//! without a sync and numbered; a writer that needs durability waits until a sync covering its
//! number completes. The first waiter performs the sync for everyone waiting at that moment.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use fjall::{Database, PersistMode};

/// What the journal syncs: the fjall database, or a stand-in in tests (to inject failures).
pub trait SyncTarget: Send + Sync {
    /// Makes every committed batch durable.
    ///
    /// # Errors
    /// The engine's error text.
    fn sync(&self) -> Result<(), String>;
}

impl SyncTarget for Database {
    fn sync(&self) -> Result<(), String> {
        self.persist(PersistMode::SyncData).map_err(|e| e.to_string())
    }
}

use super::StorageError;

/// How often unsynced writes are synced in the background.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// A sync leader waits this long for more commits before syncing...
const GATHER_STEP: Duration = Duration::from_micros(50);
/// ...and never longer than this in total.
const GATHER_MAX: Duration = Duration::from_millis(1);

#[derive(Debug, Default)]
struct SyncState {
    /// Number of the newest committed batch.
    committed: u64,
    /// Every batch up to this number is on disk.
    synced: u64,
    /// A sync is running.
    syncing: bool,
    /// Set for good after a sync failed: the journal can no longer be trusted.
    failed: Option<String>,
    /// Syncs performed and their total time (for metrics).
    syncs: u64,
    sync_time: Duration,
}

/// A committed write batch's place in the journal: [`Storage::wait_durable`] blocks until it
/// is on disk. What the write concern's `j: true` waits for.
///
/// [`Storage::wait_durable`]: super::Storage::wait_durable
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DurabilityTicket(pub(super) u64);

/// Told how long each journal sync took (the metrics' sync latency histogram), so storage
/// needs no metrics library.
pub type SyncObserver = Box<dyn Fn(Duration) + Send + Sync>;

/// Tracks which committed batches are durable and performs shared syncs.
pub struct Journal {
    target: Box<dyn SyncTarget>,
    observer: OnceLock<SyncObserver>,
    /// The `failJournalSync` fail point: the next sync fails as a disk error would.
    fail_syncs: AtomicBool,
    state: Mutex<SyncState>,
    synced: Condvar,
    committed: Condvar,
}

/// What the journal reports for `serverStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalStats {
    /// Syncs performed since start.
    pub syncs: u64,
    /// Time spent in them.
    pub sync_time: Duration,
}

impl Journal {
    /// A journal syncing `target`.
    pub fn new(target: impl SyncTarget + 'static) -> Self {
        Self {
            target: Box::new(target),
            observer: OnceLock::new(),
            fail_syncs: AtomicBool::new(false),
            state: Mutex::default(),
            synced: Condvar::new(),
            committed: Condvar::new(),
        }
    }

    /// Sets the observer told each sync's duration; only the first call has an effect (one
    /// metrics registry per server).
    pub fn set_observer(&self, observer: SyncObserver) {
        let _ = self.observer.set(observer);
    }

    /// Arms or disarms the `failJournalSync` fail point (test commands only): while armed,
    /// syncs fail through the same path as a real disk error.
    pub fn fail_syncs(&self, on: bool) {
        self.fail_syncs.store(on, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fails when a sync has failed before: writes must stop.
    ///
    /// # Errors
    /// [`StorageError::WritesDisabled`].
    pub fn check_writable(&self) -> Result<(), StorageError> {
        match &self.lock().failed {
            Some(reason) => Err(StorageError::WritesDisabled(reason.clone())),
            None => Ok(()),
        }
    }

    /// Whether writes are still accepted.
    pub fn is_healthy(&self) -> bool {
        self.lock().failed.is_none()
    }

    /// Numbers a batch that was just committed; pass the number to [`Journal::wait_durable`].
    pub fn committed(&self) -> u64 {
        let mut state = self.lock();
        state.committed += 1;
        self.committed.notify_all();
        state.committed
    }

    /// Blocks until batch `ticket` is on disk, joining or starting a shared sync.
    ///
    /// # Errors
    /// [`StorageError::WritesDisabled`] when the sync (or an earlier one) failed.
    pub fn wait_durable(&self, ticket: u64) -> Result<(), StorageError> {
        let mut state = self.lock();
        loop {
            if let Some(reason) = &state.failed {
                return Err(StorageError::WritesDisabled(reason.clone()));
            }
            if state.synced >= ticket {
                return Ok(());
            }
            if state.syncing {
                state = self.synced.wait(state).unwrap_or_else(PoisonError::into_inner);
            } else {
                state = self.sync_locked(state);
            }
        }
    }

    /// Syncs everything committed so far, if anything is pending and no sync is running.
    pub fn flush(&self) {
        let state = self.lock();
        if state.failed.is_none() && !state.syncing && state.synced < state.committed {
            drop(self.sync_locked(state));
        }
    }

    /// Performs one sync with the state lock released, then publishes the outcome.
    fn sync_locked<'a>(&'a self, mut state: MutexGuard<'a, SyncState>) -> MutexGuard<'a, SyncState> {
        state.syncing = true;
        // fjall holds its journal lock while it syncs, so writers queued behind us could not
        // commit until the sync ends, and each sync would cover one or two batches. Waiting
        // while commits keep arriving lets one sync cover everyone already in line.
        let gathering = Instant::now();
        loop {
            let before = state.committed;
            state = self.committed.wait_timeout(state, GATHER_STEP).unwrap_or_else(PoisonError::into_inner).0;
            if state.committed == before || gathering.elapsed() >= GATHER_MAX {
                break;
            }
        }
        let target = state.committed;
        drop(state);
        let started = Instant::now();
        let outcome = if self.fail_syncs.load(Ordering::Relaxed) {
            Err("Input/output error (injected by the failJournalSync fail point)".to_owned())
        } else {
            self.target.sync()
        };
        let elapsed = started.elapsed();
        if let Some(observe) = self.observer.get() {
            observe(elapsed);
        }
        let mut state = self.lock();
        state.syncing = false;
        state.syncs += 1;
        state.sync_time += elapsed;
        match outcome {
            Ok(()) => state.synced = state.synced.max(target),
            Err(error) => {
                // IMPORTANT: never retried or cleared: after a failed fsync the kernel may have
                // dropped the dirty pages, so later syncs could falsely succeed.
                tracing::error!(target: "STORAGE", id = 22435, error = %error, "Journal sync failed; writes are now refused");
                state.failed = Some(error.to_string());
            }
        }
        self.synced.notify_all();
        state
    }

    /// Sync counters.
    pub fn stats(&self) -> JournalStats {
        let state = self.lock();
        JournalStats { syncs: state.syncs, sync_time: state.sync_time }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A sync target whose syncs fail, like a disk returning EIO.
    struct FailingDisk;

    impl SyncTarget for FailingDisk {
        fn sync(&self) -> Result<(), String> {
            Err("Input/output error (os error 5)".into())
        }
    }

    #[test]
    fn journal_failed_sync_refuses_writes_for_good() {
        let journal = Journal::new(FailingDisk);
        assert!(journal.check_writable().is_ok());
        let ticket = journal.committed();
        assert!(matches!(journal.wait_durable(ticket), Err(StorageError::WritesDisabled(_))));
        assert!(!journal.is_healthy());
        assert!(matches!(journal.check_writable(), Err(StorageError::WritesDisabled(_))));
        // Never retried: a later sync could falsely succeed after the kernel dropped pages.
        let syncs = journal.stats().syncs;
        journal.flush();
        let later = journal.committed();
        assert!(journal.wait_durable(later).is_err());
        assert_eq!(journal.stats().syncs, syncs);
    }

    /// A disk whose syncs take a while, as a real fsync does.
    struct SlowDisk;

    impl SyncTarget for SlowDisk {
        fn sync(&self) -> Result<(), String> {
            std::thread::sleep(Duration::from_millis(2));
            Ok(())
        }
    }

    #[test]
    fn journal_group_commit_shares_syncs() -> Result<(), Box<dyn std::error::Error>> {
        const WRITERS: u32 = 16;
        const WRITES: u32 = 50;
        let journal = Arc::new(Journal::new(SlowDisk));
        let writers: Vec<_> = (0..WRITERS)
            .map(|_| {
                let journal = journal.clone();
                std::thread::spawn(move || -> Result<(), StorageError> {
                    for _ in 0..WRITES {
                        let ticket = journal.committed();
                        journal.wait_durable(ticket)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for writer in writers {
            writer.join().map_err(|_| "writer panicked")??;
        }
        // Writers that commit while a sync runs all wait for the next one, so with 16 of them
        // a sync covers several writes. One sync per write (no sharing) would be 800; the
        // bound leaves room for a slow scheduler yet fails when syncs are not shared.
        let stats = journal.stats();
        let writes = u64::from(WRITERS * WRITES);
        assert!(stats.syncs >= 1);
        assert!(stats.syncs <= writes / 4, "{} syncs for {writes} durable writes", stats.syncs);
        journal.flush();
        assert_eq!(journal.stats().syncs, stats.syncs, "nothing left to flush");
        Ok(())
    }

    #[test]
    fn journal_syncs_a_real_database() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = Database::builder(dir.path()).open()?;
        let keyspace = db.keyspace("t", fjall::KeyspaceCreateOptions::default)?;
        let journal = Journal::new(db);
        keyspace.insert("k", "v")?;
        let ticket = journal.committed();
        journal.wait_durable(ticket)?;
        assert_eq!(journal.stats().syncs, 1);
        Ok(())
    }
}
