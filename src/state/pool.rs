//! The bounded blocking pool: the threads that run storage work (every command handler that
//! may touch storage, profile writes), so no async runtime worker ever blocks on the engine.
//!
//! A job is queued and later run by one of a fixed set of worker threads; its submitter
//! awaits the result asynchronously. The queue is bounded: a submitter that finds it full
//! waits, asynchronously and in arrival order, for a slot (back-pressure, never an error), as
//! mongod's operations wait for an execution ticket when all are out. Each connection has at
//! most one request in flight, so the queue rarely holds more jobs than there are connections.
//!
//! A job that panics does not take its worker down: the panic is caught and handed to the
//! submitter as [`PoolError::Panicked`]. A submitter that goes away while its job is queued or
//! running (a closed connection) only drops the result: the job owns everything it uses.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, oneshot};

/// The stack of the threads that run command handlers and encode replies: the pool's workers
/// and the async runtime's. Handlers recurse through documents, filters and expressions only
/// up to mongod's nesting limits (`query::limits`), but at several kilobytes a level in
/// unoptimised builds that needs more than the 2 MiB default. It is a reservation: pages are
/// used only when touched.
pub const THREAD_STACK_BYTES: usize = 8 * 1024 * 1024;

/// Workers per core: storage calls also wait (on disk reads, on fjall's journal lock while a
/// sync runs), so twice the cores keeps them busy while some workers wait, and few enough
/// threads that they do not fight over the engine's locks and caches.
const WORKERS_PER_CORE: usize = 2;
/// The fewest workers: with one or two cores (a small container) one long command (an index
/// build, a collection scan) must still leave workers for the short ones beside it.
const MIN_WORKERS: usize = 4;
/// Queue slots per worker: enough that a burst from many connections queues instead of
/// pushing back at once, few enough that the queue depth shows an overload quickly.
const QUEUE_SLOTS_PER_WORKER: usize = 64;

/// A queued job: what to run, and the queue slot it holds until a worker takes it.
struct Queued {
    task: Box<dyn FnOnce() + Send>,
    slot: OwnedSemaphorePermit,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Queued>,
    /// Set when the pool is dropped: workers finish the queued jobs, then exit.
    closed: bool,
}

/// What the workers and the submitters share.
#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Wakes an idle worker when a job is queued (or every worker when the pool closes).
    ready: Condvar,
    queued: AtomicUsize,
    busy: AtomicUsize,
    waiting: AtomicUsize,
    jobs: AtomicU64,
    queue_full: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next job, blocking while the queue is empty; `None` once the pool is closed and
    /// drained.
    fn next(&self) -> Option<Queued> {
        let mut queue = self.lock();
        loop {
            if let Some(job) = queue.jobs.pop_front() {
                return Some(job);
            }
            if queue.closed {
                return None;
            }
            queue = self.ready.wait(queue).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Why a job produced no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The job panicked (its worker carries on).
    #[error("the job panicked: {0}")]
    Panicked(String),
    /// The pool is shutting down and takes no more jobs.
    #[error("the blocking pool is shut down")]
    Closed,
}

/// The pool's figures for `serverStatus.monarchPool` and `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Worker threads.
    pub workers: usize,
    /// Queue slots.
    pub capacity: usize,
    /// Jobs queued, not yet taken by a worker.
    pub queued: usize,
    /// Workers running a job now.
    pub busy: usize,
    /// Submitters waiting for a queue slot (the queue was full).
    pub waiting: usize,
    /// Jobs submitted since start.
    pub jobs: u64,
    /// Submissions that found the queue full and waited for a slot.
    pub queue_full: u64,
}

/// A fixed set of worker threads with a bounded queue.
pub struct BlockingPool {
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
    workers: usize,
    capacity: usize,
}

impl std::fmt::Debug for BlockingPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingPool").field("workers", &self.workers).field("capacity", &self.capacity).finish()
    }
}

impl BlockingPool {
    /// A pool sized for this host: [`WORKERS_PER_CORE`] workers per core the process may use
    /// (`available_parallelism` honours CPU affinity and cgroup quotas), at least
    /// [`MIN_WORKERS`], with [`QUEUE_SLOTS_PER_WORKER`] queue slots per worker.
    ///
    /// # Errors
    /// The operating system refused a thread.
    pub fn for_host() -> std::io::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let workers = (cores * WORKERS_PER_CORE).max(MIN_WORKERS);
        Self::new(workers, workers * QUEUE_SLOTS_PER_WORKER)
    }

    /// A pool of `workers` threads (at least one) and `capacity` queue slots (at least one).
    ///
    /// # Errors
    /// The operating system refused a thread.
    pub fn new(workers: usize, capacity: usize) -> std::io::Result<Self> {
        let (workers, capacity) = (workers.max(1), capacity.max(1));
        let shared = Arc::new(Shared::default());
        let pool = Self { shared: shared.clone(), slots: Arc::new(Semaphore::new(capacity)), workers, capacity };
        for n in 0..workers {
            let shared = shared.clone();
            // On failure `pool` is dropped, which closes the queue: the workers already
            // started exit.
            std::thread::Builder::new()
                .name(format!("monarch-pool-{n}"))
                .stack_size(THREAD_STACK_BYTES)
                .spawn(move || work(&shared))?;
        }
        Ok(pool)
    }

    /// Runs `job` on a worker and returns its result, waiting asynchronously for a queue slot
    /// first when the queue is full.
    ///
    /// # Errors
    /// [`PoolError::Panicked`] when the job panicked; [`PoolError::Closed`] when the pool is
    /// shutting down.
    pub async fn run<T, F>(&self, job: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let slot = self.slot().await?;
        let (done, result) = oneshot::channel();
        self.push(slot, move || {
            // The submitter may be gone; then nobody wants the result.
            let _ = done.send(catch_unwind(AssertUnwindSafe(job)));
        })?;
        match result.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => Err(PoolError::Panicked(panic_message(panic.as_ref()))),
            Err(_) => Err(PoolError::Closed),
        }
    }

    /// Queues `job` without waiting for it, if a queue slot is free now: for work that must
    /// not wait (started from a `Drop`). Returns whether it was queued. A panic in it is
    /// logged.
    pub fn try_spawn(&self, job: impl FnOnce() + Send + 'static) -> bool {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            self.shared.queue_full.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        self.push(slot, move || {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(job)) {
                tracing::error!(target: "CONTROL", id = 1, panic = panic_message(panic.as_ref()), "Background job panicked");
            }
        })
        .is_ok()
    }

    /// The pool's figures now.
    pub fn stats(&self) -> PoolStats {
        let shared = &self.shared;
        PoolStats {
            workers: self.workers,
            capacity: self.capacity,
            queued: shared.queued.load(Ordering::Relaxed),
            busy: shared.busy.load(Ordering::Relaxed),
            waiting: shared.waiting.load(Ordering::Relaxed),
            jobs: shared.jobs.load(Ordering::Relaxed),
            queue_full: shared.queue_full.load(Ordering::Relaxed),
        }
    }

    /// A queue slot: at once when one is free, else after the submitters already waiting.
    async fn slot(&self) -> Result<OwnedSemaphorePermit, PoolError> {
        match self.slots.clone().try_acquire_owned() {
            Ok(slot) => return Ok(slot),
            Err(TryAcquireError::Closed) => return Err(PoolError::Closed),
            Err(TryAcquireError::NoPermits) => {}
        }
        self.shared.queue_full.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting::new(&self.shared.waiting);
        self.slots.clone().acquire_owned().await.map_err(|_| PoolError::Closed)
    }

    fn push(&self, slot: OwnedSemaphorePermit, task: impl FnOnce() + Send + 'static) -> Result<(), PoolError> {
        let mut queue = self.shared.lock();
        if queue.closed {
            return Err(PoolError::Closed);
        }
        // Counted under the queue lock, so a worker never takes a job before it is counted.
        self.shared.queued.fetch_add(1, Ordering::Relaxed);
        self.shared.jobs.fetch_add(1, Ordering::Relaxed);
        queue.jobs.push_back(Queued { task: Box::new(task), slot });
        drop(queue);
        self.shared.ready.notify_one();
        Ok(())
    }
}

impl Drop for BlockingPool {
    /// Closes the queue; the workers run what is queued, then exit. They are not joined: the
    /// last reference to what owns the pool may be dropped by a job on one of them.
    fn drop(&mut self) {
        self.slots.close();
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
    }
}

/// Counts a submitter waiting for a queue slot, until it has one or gives up (its future is
/// dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A worker: runs queued jobs until the pool closes.
fn work(shared: &Shared) {
    while let Some(Queued { task, slot }) = shared.next() {
        shared.queued.fetch_sub(1, Ordering::Relaxed);
        // The slot frees as the job leaves the queue: the bound is on waiting jobs.
        drop(slot);
        shared.busy.fetch_add(1, Ordering::Relaxed);
        // Tasks catch their own panics (see `run` and `try_spawn`).
        task();
        shared.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The text of a panic's payload (`panic!` with a literal or a formatted message).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    }

    /// Polls `condition` for up to ten seconds.
    fn eventually(condition: impl Fn() -> bool) -> bool {
        for _ in 0..1000 {
            if condition() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn pool_runs_jobs_and_returns_results() -> TestResult {
        let pool = BlockingPool::new(2, 4)?;
        let results = runtime()?.block_on(async {
            let jobs = (0..20_u64).map(|n| pool.run(move || n * n));
            futures_util::future::join_all(jobs).await
        });
        let results: Result<Vec<u64>, PoolError> = results.into_iter().collect();
        assert_eq!(results?, (0..20).map(|n| n * n).collect::<Vec<_>>());
        let stats = pool.stats();
        assert_eq!((stats.workers, stats.capacity, stats.jobs, stats.queued), (2, 4, 20, 0));
        Ok(())
    }

    #[test]
    fn pool_job_panic_is_reported_and_the_worker_survives() -> TestResult {
        let pool = BlockingPool::new(1, 1)?;
        let runtime = runtime()?;
        let panicked = runtime.block_on(pool.run(|| -> u32 { panic!("handler bug") }));
        assert_eq!(panicked, Err(PoolError::Panicked("handler bug".to_owned())));
        // The only worker still runs jobs.
        assert_eq!(runtime.block_on(pool.run(|| 7)), Ok(7));
        assert!(pool.try_spawn(|| panic!("background bug")));
        assert_eq!(runtime.block_on(pool.run(|| 8)), Ok(8));
        Ok(())
    }

    #[test]
    fn pool_full_queue_pushes_back_and_reports_its_depth() -> TestResult {
        let pool = Arc::new(BlockingPool::new(1, 2)?);
        let runtime = runtime()?;
        // Occupy the only worker until released.
        let (release, held) = mpsc::channel::<()>();
        let (started, running) = mpsc::channel::<()>();
        let blocker = runtime.spawn({
            let pool = pool.clone();
            async move {
                pool.run(move || {
                    let _ = started.send(());
                    let _ = held.recv();
                })
                .await
            }
        });
        // The current-thread runtime polls spawned tasks only inside `block_on`.
        runtime.block_on(async {
            while running.try_recv().is_err() {
                tokio::task::yield_now().await;
            }
        });
        // Two jobs fill the queue, a third waits for a slot.
        let queued: Vec<_> = (0..3_u32)
            .map(|n| {
                let pool = pool.clone();
                runtime.spawn(async move { pool.run(move || n).await })
            })
            .collect();
        runtime.block_on(async {
            for _ in 0..1000 {
                let stats = pool.stats();
                if stats.queued == 2 && stats.waiting == 1 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        let stats = pool.stats();
        assert_eq!((stats.busy, stats.queued, stats.waiting, stats.queue_full), (1, 2, 1, 1));
        assert!(!pool.try_spawn(|| {}), "no slot is free");
        release.send(())?;
        let outcomes = runtime.block_on(async {
            let mut outcomes = Vec::new();
            for job in queued {
                outcomes.push(job.await);
            }
            outcomes
        });
        let outcomes: Vec<Result<u32, PoolError>> = outcomes.into_iter().collect::<Result<_, _>>()?;
        assert_eq!(outcomes, vec![Ok(0), Ok(1), Ok(2)]);
        assert_eq!(runtime.block_on(blocker)?, Ok(()));
        assert!(eventually(|| pool.stats().busy == 0));
        let stats = pool.stats();
        assert_eq!((stats.queued, stats.waiting, stats.jobs), (0, 0, 4));
        Ok(())
    }

    #[test]
    fn pool_job_outlives_a_dropped_submitter() -> TestResult {
        let pool = BlockingPool::new(1, 1)?;
        let (finished, done) = mpsc::channel();
        let runtime = runtime()?;
        runtime.block_on(async {
            let job = pool.run(move || {
                std::thread::sleep(Duration::from_millis(20));
                let _ = finished.send(42);
            });
            // Polled once (queued), then dropped, as a closed connection drops its request.
            let _ = tokio::time::timeout(Duration::from_millis(1), job).await;
        });
        assert_eq!(done.recv_timeout(Duration::from_secs(10))?, 42);
        Ok(())
    }

    #[test]
    fn pool_closed_refuses_jobs() -> TestResult {
        let pool = BlockingPool::new(1, 1)?;
        pool.slots.close();
        pool.shared.lock().closed = true;
        assert_eq!(runtime()?.block_on(pool.run(|| 1)), Err(PoolError::Closed));
        assert!(!pool.try_spawn(|| {}));
        Ok(())
    }
}
