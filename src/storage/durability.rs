//! Journal durability: group commit for `j: true` writers and the background flush that every
//! other write relies on (mongod's 100 ms journal commit interval).
//!
//! fjall fsyncs while holding its journal lock, so writers that each asked for a sync would
//! queue behind one another (about 3,300 syncs/s here). Instead every batch is committed
//! without a sync and numbered; a writer that needs durability asks for a sync covering its
//! number and waits until one completes. One syncer thread performs the syncs: each covers
//! every batch committed when it starts, so all writers waiting at that moment share it.
//!
//! Waiting holds no thread: [`Journal::durable`] is a future that registers its batch number
//! with a one-shot channel, and the syncer completes exactly the waiters a sync covered (or
//! all of them, with the error, after a failure): with 64 writers, a sync no longer wakes the
//! half that committed during it only for them to wait again. [`Journal::wait_durable`]
//! blocks, for callers already on a storage thread (catalog changes, shutdown).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// What the journal syncs: the engine, or a stand-in in tests (to inject failures).
pub trait SyncTarget: Send + Sync {
    /// Makes every committed batch durable.
    ///
    /// # Errors
    /// The engine's error text.
    fn sync(&self) -> Result<(), String>;
}

/// A sync's error when an earlier engine failure stopped the engine: the cause is elsewhere
/// (a write, or the engine's background flush), so [`Journal::fail`] may still name it.
const ENGINE_STOPPED: &str = "the storage engine stopped after an earlier failure";

/// The last error the engine's crates logged (through the server log's bridge): the cause
/// behind a stopped engine, which fjall's own error does not carry.
static LAST_ENGINE_FAILURE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Records an error the engine logged (see [`LAST_ENGINE_FAILURE`]).
pub fn note_engine_failure(message: String) {
    *LAST_ENGINE_FAILURE.lock().unwrap_or_else(PoisonError::into_inner) = Some(message);
}

/// Why writes stop when fjall reports itself poisoned: the engine stopped, and the last
/// failure it logged, if any.
pub(super) fn engine_stopped() -> String {
    match LAST_ENGINE_FAILURE.lock().unwrap_or_else(PoisonError::into_inner).as_deref() {
        Some(cause) => format!("{ENGINE_STOPPED} ({cause})"),
        None => ENGINE_STOPPED.to_owned(),
    }
}

use super::StorageError;

/// How often unsynced writes are synced in the background.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// The syncer waits this long for more commits before syncing...
const GATHER_STEP: Duration = Duration::from_micros(50);
/// ...and never longer than this in total.
const GATHER_MAX: Duration = Duration::from_millis(1);

#[derive(Debug, Default)]
struct SyncState {
    /// Number of the newest committed batch.
    committed: u64,
    /// Every batch up to this number is on disk.
    synced: u64,
    /// The newest batch someone asked to be synced.
    requested: u64,
    /// The syncer is gathering commits: tell it about each one.
    gathering: bool,
    /// Set for good after a sync failed: the journal can no longer be trusted.
    failed: Option<String>,
    /// The journal is being dropped: the syncer exits.
    stopping: bool,
    /// Syncs performed and their total time (for metrics).
    syncs: u64,
    sync_time: Duration,
    /// The async waiters: the batch each waits for, and where to say it is durable.
    waiters: Vec<(u64, SyncedSender)>,
}

/// Where the syncer tells an async waiter that its batch is durable, or why it never will be.
type SyncedSender = oneshot::Sender<Result<(), Arc<str>>>;

/// A committed write batch's place in the journal: [`Storage::durable`] completes (and
/// [`Storage::wait_durable`] returns) once it is on disk. What the write concern's `j: true`
/// waits for.
///
/// [`Storage::durable`]: super::Storage::durable
/// [`Storage::wait_durable`]: super::Storage::wait_durable
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DurabilityTicket(pub(super) u64);

/// Told how long each journal sync took (the metrics' sync latency histogram), so storage
/// needs no metrics library.
pub type SyncObserver = Box<dyn Fn(Duration) + Send + Sync>;

/// What the journal and its syncer thread share.
struct Inner {
    target: Box<dyn SyncTarget>,
    observer: OnceLock<SyncObserver>,
    /// The `failJournalSync` fail point: the next sync fails as a disk error would.
    fail_syncs: AtomicBool,
    state: Mutex<SyncState>,
    /// Wakes the syncer: a sync was asked for, or the journal is stopping.
    requested: Condvar,
    /// Wakes the syncer while it gathers: a batch was committed.
    committed: Condvar,
    /// Wakes blocking waiters after each sync.
    synced: Condvar,
}

/// Tracks which committed batches are durable; its syncer thread performs shared syncs.
pub struct Journal {
    inner: Arc<Inner>,
    syncer: Option<JoinHandle<()>>,
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
    /// A journal syncing `target`, with its syncer thread started.
    ///
    /// # Errors
    /// The operating system refused the thread.
    pub fn new(target: impl SyncTarget + 'static) -> std::io::Result<Self> {
        let inner = Arc::new(Inner {
            target: Box::new(target),
            observer: OnceLock::new(),
            fail_syncs: AtomicBool::new(false),
            state: Mutex::default(),
            requested: Condvar::new(),
            committed: Condvar::new(),
            synced: Condvar::new(),
        });
        let syncer = {
            let inner = inner.clone();
            std::thread::Builder::new().name("monarch-journal".to_owned()).spawn(move || inner.run_syncer())?
        };
        Ok(Self { inner, syncer: Some(syncer) })
    }

    /// Sets the observer told each sync's duration; only the first call has an effect (one
    /// metrics registry per server).
    pub fn set_observer(&self, observer: SyncObserver) {
        let _ = self.inner.observer.set(observer);
    }

    /// Arms or disarms the `failJournalSync` fail point (test commands only): while armed,
    /// syncs fail through the same path as a real disk error.
    pub fn fail_syncs(&self, on: bool) {
        self.inner.fail_syncs.store(on, Ordering::Relaxed);
    }

    /// Fails when a sync has failed before: writes must stop.
    ///
    /// # Errors
    /// [`StorageError::WritesDisabled`].
    pub fn check_writable(&self) -> Result<(), StorageError> {
        match &self.inner.lock().failed {
            Some(reason) => Err(StorageError::WritesDisabled(reason.clone())),
            None => Ok(()),
        }
    }

    /// Whether writes are still accepted.
    #[cfg(test)]
    pub fn is_healthy(&self) -> bool {
        self.inner.lock().failed.is_none()
    }

    /// Stops writes for good because the engine failed to write (`reason` says what failed),
    /// answering every waiter with it: the journal's contents past the last sync can no longer
    /// be trusted. Logged once, by the first failure.
    pub fn fail(&self, reason: String) {
        let mut state = self.inner.lock();
        if state.failed.as_deref().is_some_and(|failed| !failed.contains(ENGINE_STOPPED)) {
            return;
        }
        tracing::error!(target: "STORAGE", id = 22435, error = %reason, "Storage write failed; writes are now refused");
        state.failed = Some(reason);
        let failed: Arc<str> = Arc::from(state.failed.as_deref().unwrap_or_default());
        let answered: Vec<_> = state.waiters.drain(..).collect();
        self.inner.synced.notify_all();
        drop(state);
        for (_, waiter) in answered {
            let _ = waiter.send(Err(failed.clone()));
        }
    }

    /// Numbers a batch that was just committed; pass the number to [`Journal::durable`] or
    /// [`Journal::wait_durable`].
    pub fn committed(&self) -> u64 {
        let mut state = self.inner.lock();
        state.committed += 1;
        if state.gathering {
            self.inner.committed.notify_one();
        }
        state.committed
    }

    /// Completes once batch `ticket` is on disk, joining the next shared sync; waiting holds
    /// no thread.
    ///
    /// # Errors
    /// [`StorageError::WritesDisabled`] when the sync (or an earlier one) failed.
    pub async fn durable(&self, ticket: u64) -> Result<(), StorageError> {
        let (waiter, synced) = oneshot::channel();
        if self.inner.request_with(ticket, |state| state.waiters.push((ticket, waiter)))? {
            return Ok(());
        }
        match synced.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(StorageError::WritesDisabled(reason.to_string())),
            // The syncer keeps every waiter until it is answered, as long as `self` lives.
            Err(_) => Err(StorageError::WritesDisabled("the journal closed".to_owned())),
        }
    }

    /// Blocks until batch `ticket` is on disk, joining the next shared sync: for callers
    /// already on a storage thread.
    ///
    /// # Errors
    /// [`StorageError::WritesDisabled`] when the sync (or an earlier one) failed.
    pub fn wait_durable(&self, ticket: u64) -> Result<(), StorageError> {
        if self.inner.request(ticket)? {
            return Ok(());
        }
        let mut state = self.inner.lock();
        loop {
            if let Some(reason) = &state.failed {
                return Err(StorageError::WritesDisabled(reason.clone()));
            }
            if state.synced >= ticket {
                return Ok(());
            }
            state = self.inner.synced.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Asks for a sync of everything committed so far, without waiting for it (the background
    /// flush).
    pub fn request_flush(&self) {
        let committed = self.inner.lock().committed;
        let _ = self.inner.request(committed);
    }

    /// Syncs everything committed so far and waits for it (shutdown). A failed sync was
    /// logged and has made writes refused.
    pub fn flush(&self) {
        let committed = self.inner.lock().committed;
        let _ = self.wait_durable(committed);
    }

    /// Sync counters.
    pub fn stats(&self) -> JournalStats {
        let state = self.inner.lock();
        JournalStats { syncs: state.syncs, sync_time: state.sync_time }
    }
}

impl Drop for Journal {
    /// Stops the syncer thread and waits for the sync it is running, if any.
    fn drop(&mut self) {
        self.inner.lock().stopping = true;
        self.inner.requested.notify_one();
        if let Some(syncer) = self.syncer.take() {
            let _ = syncer.join();
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks the syncer to cover batch `ticket`. Returns whether it is durable already.
    fn request(&self, ticket: u64) -> Result<bool, StorageError> {
        self.request_with(ticket, |_| {})
    }

    /// [`Inner::request`], running `register` under the state lock when the batch is not
    /// durable yet (so no sync can complete between the check and the registration).
    fn request_with(&self, ticket: u64, register: impl FnOnce(&mut SyncState)) -> Result<bool, StorageError> {
        let mut state = self.lock();
        if let Some(reason) = &state.failed {
            return Err(StorageError::WritesDisabled(reason.clone()));
        }
        if state.synced >= ticket {
            return Ok(true);
        }
        register(&mut state);
        if ticket > state.requested {
            state.requested = ticket;
            drop(state);
            self.requested.notify_one();
        }
        Ok(false)
    }

    /// The syncer thread: waits for requests and performs one sync for all of them, until the
    /// journal is dropped.
    fn run_syncer(&self) {
        let mut state = self.lock();
        loop {
            while !state.stopping && (state.failed.is_some() || state.requested <= state.synced) {
                state = self.requested.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
            if state.stopping {
                return;
            }
            state = self.sync(state);
        }
    }

    /// Performs one sync with the state lock released, then publishes the outcome.
    fn sync<'a>(&'a self, mut state: MutexGuard<'a, SyncState>) -> MutexGuard<'a, SyncState> {
        // fjall holds its journal lock while it syncs, so writers queued behind us could not
        // commit until the sync ends, and each sync would cover one or two batches. Waiting
        // while commits keep arriving lets one sync cover everyone already in line.
        state.gathering = true;
        let gathering = Instant::now();
        loop {
            let before = state.committed;
            state = self.committed.wait_timeout(state, GATHER_STEP).unwrap_or_else(PoisonError::into_inner).0;
            if state.committed == before || gathering.elapsed() >= GATHER_MAX || state.stopping {
                break;
            }
        }
        state.gathering = false;
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
        state.syncs += 1;
        state.sync_time += elapsed;
        match outcome {
            Ok(()) => state.synced = state.synced.max(target),
            Err(error) => {
                // IMPORTANT: never retried or cleared: after a failed fsync the kernel may have
                // dropped the dirty pages, so later syncs could falsely succeed.
                tracing::error!(target: "STORAGE", id = 22435, error = %error, "Journal sync failed; writes are now refused");
                state.failed = Some(if error.starts_with(ENGINE_STOPPED) {
                    error
                } else {
                    format!("a failed journal sync ({error})")
                });
            }
        }
        self.synced.notify_all();
        let failed: Option<Arc<str>> = state.failed.as_deref().map(Arc::from);
        let through = state.synced;
        let answered: Vec<_> =
            state.waiters.extract_if(.., |(ticket, _)| failed.is_some() || *ticket <= through).collect();
        // Waking a task may wake a runtime thread: not while committers wait for the lock.
        drop(state);
        let outcome = failed.map_or(Ok(()), Err);
        for (_, waiter) in answered {
            // A waiter whose request ended (its connection closed) no longer listens.
            let _ = waiter.send(outcome.clone());
        }
        self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sync target whose syncs fail, like a disk returning EIO.
    struct FailingDisk;

    impl SyncTarget for FailingDisk {
        fn sync(&self) -> Result<(), String> {
            Err("Input/output error (os error 5)".into())
        }
    }

    #[test]
    fn journal_failed_sync_refuses_writes_for_good() -> Result<(), Box<dyn std::error::Error>> {
        let journal = Journal::new(FailingDisk)?;
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
        Ok(())
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
        let journal = Arc::new(Journal::new(SlowDisk)?);
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
        let engine = super::super::engine::Engine::open(
            dir.path(),
            &super::super::EngineConfig::Fjall(super::super::MemoryBudget::split(
                super::super::MemoryBudget::MIN_BYTES,
            )),
        )?;
        let journal = Journal::new(engine.clone())?;
        engine.insert(super::super::engine::Space::Docs, "k", "v")?;
        let ticket = journal.committed();
        journal.wait_durable(ticket)?;
        assert_eq!(journal.stats().syncs, 1);
        Ok(())
    }

    fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    }

    /// A disk whose syncs wait until the test lets them finish, counting them.
    struct GatedDisk {
        gate: Mutex<std::sync::mpsc::Receiver<Result<(), String>>>,
    }

    impl SyncTarget for GatedDisk {
        fn sync(&self) -> Result<(), String> {
            let gate = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
            gate.recv().unwrap_or_else(|_| Err("gate closed".to_owned()))
        }
    }

    fn gated() -> std::io::Result<(Journal, std::sync::mpsc::Sender<Result<(), String>>)> {
        let (open, gate) = std::sync::mpsc::channel();
        Ok((Journal::new(GatedDisk { gate: Mutex::new(gate) })?, open))
    }

    /// Many async waiters, none holding a thread, share one sync.
    #[test]
    fn journal_async_waiters_share_one_sync() -> Result<(), Box<dyn std::error::Error>> {
        const WAITERS: usize = 64;
        let (journal, gate) = gated()?;
        let tickets: Vec<u64> = (0..WAITERS).map(|_| journal.committed()).collect();
        // All waiters are registered (polled once) before the disk lets the sync finish, and
        // all run on this one thread.
        let outcomes = runtime()?.block_on(async {
            let waits = futures_util::future::join_all(tickets.iter().map(|&t| journal.durable(t)));
            let release = async {
                tokio::task::yield_now().await;
                let _ = gate.send(Ok(()));
            };
            tokio::join!(waits, release).0
        });
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        assert_eq!(journal.stats().syncs, 1);
        // Already durable: no new sync.
        let first = tickets.first().copied().unwrap_or_default();
        assert!(runtime()?.block_on(journal.durable(first)).is_ok());
        assert_eq!(journal.stats().syncs, 1);
        Ok(())
    }

    /// A disk whose syncs say when they start, then wait until the test lets them finish.
    struct SignallingDisk {
        entered: Mutex<std::sync::mpsc::Sender<()>>,
        gate: Mutex<std::sync::mpsc::Receiver<Result<(), String>>>,
    }

    impl SyncTarget for SignallingDisk {
        fn sync(&self) -> Result<(), String> {
            let _ = self.entered.lock().unwrap_or_else(PoisonError::into_inner).send(());
            let gate = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
            gate.recv().unwrap_or_else(|_| Err("gate closed".to_owned()))
        }
    }

    /// A batch committed while a sync runs is not covered by it: its waiter completes only
    /// when the next sync does, while the sync's own waiter completes at once.
    #[test]
    fn journal_waiters_complete_only_once_their_batch_is_synced() -> Result<(), Box<dyn std::error::Error>> {
        use futures_util::FutureExt;
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let (open, gate) = std::sync::mpsc::channel();
        let journal = Journal::new(SignallingDisk { entered: Mutex::new(entered_tx), gate: Mutex::new(gate) })?;
        // Dropped before the journal, so a failing assertion ends a sync instead of hanging.
        let open = open;
        let runtime = runtime()?;
        let first = journal.committed();
        let mut first_wait = Box::pin(journal.durable(first));
        assert!(first_wait.as_mut().now_or_never().is_none(), "nothing is synced yet");
        // The syncer is inside the sync of `first`: what commits now waits for the next one.
        entered.recv_timeout(Duration::from_secs(10))?;
        let second = journal.committed();
        let mut second_wait = Box::pin(journal.durable(second));
        assert!(second_wait.as_mut().now_or_never().is_none());
        open.send(Ok(()))?;
        runtime.block_on(first_wait)?;
        entered.recv_timeout(Duration::from_secs(10))?;
        assert!(second_wait.as_mut().now_or_never().is_none(), "the first sync did not cover the second batch");
        open.send(Ok(()))?;
        runtime.block_on(second_wait)?;
        assert_eq!(journal.stats().syncs, 2);
        Ok(())
    }

    /// A failed sync wakes every waiter, async and blocking, with the error.
    #[test]
    fn journal_failed_sync_wakes_every_waiter_with_the_error() -> Result<(), Box<dyn std::error::Error>> {
        let (journal, gate) = gated()?;
        let journal = Arc::new(journal);
        let ticket = journal.committed();
        let blocking = std::thread::spawn({
            let journal = journal.clone();
            move || journal.wait_durable(ticket)
        });
        let outcomes = runtime()?.block_on(async {
            let waits = futures_util::future::join_all((0..8).map(|_| journal.durable(ticket)));
            let release = async {
                tokio::task::yield_now().await;
                let _ = gate.send(Err("Input/output error (os error 5)".to_owned()));
            };
            tokio::join!(waits, release).0
        });
        for outcome in outcomes.into_iter().chain([blocking.join().map_err(|_| "waiter panicked")?]) {
            match outcome {
                Err(StorageError::WritesDisabled(reason)) => {
                    assert_eq!(reason, "a failed journal sync (Input/output error (os error 5))")
                }
                other => panic!("expected WritesDisabled, got {other:?}"),
            }
        }
        // Later waiters fail at once, without another sync.
        let later = journal.committed();
        assert!(matches!(runtime()?.block_on(journal.durable(later)), Err(StorageError::WritesDisabled(_))));
        assert_eq!(journal.stats().syncs, 1);
        Ok(())
    }

    #[test]
    fn journal_flush_request_syncs_in_the_background() -> Result<(), Box<dyn std::error::Error>> {
        let (journal, gate) = gated()?;
        journal.committed();
        journal.request_flush();
        gate.send(Ok(()))?;
        for _ in 0..1000 {
            if journal.stats().syncs == 1 {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the requested flush never ran");
    }
}
