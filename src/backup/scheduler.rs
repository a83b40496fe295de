//! The server's scheduled backups: at each time the [`ScheduleConfig`] names, a backup into
//! `<backupPath>/backup-<UTC time>` (a directory, or a prefix in object storage; encrypted
//! when a key is configured), verified once written (a backup that fails verification is
//! removed and counted as a failure; one in object storage is downloaded to a temporary
//! directory for this), then the retention applied; [`BackupStats`] holds the figures `/metrics` exports (also fed by
//! `createBackup`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::crypto::BackupKey;
use super::error::BackupError;
use super::oplog_archive::{OplogArchiveFigures, OplogArchiveStats, OplogArchiver, prune_chunks};
use super::schedule::{BackupPath, ScheduleConfig, StoredBackup, backup_name, taken_at};
use super::take::{BackupSummary, take_backup};
use crate::error::{Error, ErrorCode};
use crate::storage::Storage;

/// How long to wait before trying again after a failed scheduled backup, when the schedule
/// itself would retry at once (an interval whose newest backup is old).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// Backups taken and failed since start, and the last success's figures (milliseconds and
/// bytes; 0 before the first).
#[derive(Debug, Default)]
pub struct BackupStats {
    scheduled: AtomicBool,
    completed: AtomicU64,
    failed: AtomicU64,
    last_success_unix_millis: AtomicU64,
    last_duration_millis: AtomicU64,
    last_bytes: AtomicU64,
    /// The oplog archive's.
    pub oplog: OplogArchiveStats,
}

/// A copy of [`BackupStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackupFigures {
    /// Whether the server takes scheduled backups.
    pub scheduled: bool,
    /// Backups completed (and, when scheduled, verified).
    pub completed: u64,
    /// Backups that failed (or failed verification).
    pub failed: u64,
    /// When the newest successful backup was taken, in milliseconds since the epoch (0: none
    /// known; at start, the newest complete one in the backup path).
    pub last_success_unix_millis: u64,
    /// How long it took.
    pub last_duration_millis: u64,
    /// Its size.
    pub last_bytes: u64,
    /// The oplog archive's.
    pub oplog: OplogArchiveFigures,
}

impl BackupStats {
    /// Notes a backup that completed, taken at `taken_at`.
    pub fn record_success(&self, summary: &BackupSummary, taken_at: SystemTime) {
        self.completed.fetch_add(1, Ordering::Relaxed);
        self.last_duration_millis
            .store(u64::try_from(summary.duration.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.last_bytes.store(summary.manifest.bytes(), Ordering::Relaxed);
        self.last_success_unix_millis.fetch_max(unix_millis(taken_at), Ordering::Relaxed);
    }

    /// Notes a backup that failed.
    pub fn record_failure(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// The figures now.
    pub fn figures(&self) -> BackupFigures {
        BackupFigures {
            scheduled: self.scheduled.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            last_success_unix_millis: self.last_success_unix_millis.load(Ordering::Relaxed),
            last_duration_millis: self.last_duration_millis.load(Ordering::Relaxed),
            last_bytes: self.last_bytes.load(Ordering::Relaxed),
            oplog: self.oplog.figures(),
        }
    }
}

fn unix_millis(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Takes backups on `config`'s schedule until `shutdown`; a backup running then is stopped
/// and leaves nothing behind.
pub async fn run_schedule(
    storage: Arc<Storage>,
    config: ScheduleConfig,
    key: Option<BackupKey>,
    stats: Arc<BackupStats>,
    shutdown: CancellationToken,
) {
    stats.scheduled.store(true, Ordering::Relaxed);
    let config = Arc::new(config);
    let key = Arc::new(key);
    // A backup path that cannot be used yet (a volume not mounted) is tried again, each
    // attempt counted as a failed backup so the alert tells.
    let mut newest = loop {
        match prepare_path(&config) {
            Ok(newest) => break newest,
            Err(error) => {
                tracing::error!(target: "STORAGE", id = 22110, path = %config.path, %error, "Cannot use the backup path; trying again in a minute");
                stats.record_failure();
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RETRY_AFTER_FAILURE) => {}
        }
    };
    if let Some(newest) = newest {
        stats.last_success_unix_millis.fetch_max(unix_millis(newest), Ordering::Relaxed);
    }
    let mut retry_at = None;
    loop {
        let now = SystemTime::now();
        let due = config.schedule.next_due(now, newest).max(retry_at.unwrap_or(now));
        let wait = due.duration_since(now).unwrap_or_default();
        tracing::debug!(target: "STORAGE", id = 22111, waitMillis = wait.as_millis() as u64, "Next scheduled backup");
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let job = {
            let (storage, config, stats, shutdown) = (storage.clone(), config.clone(), stats.clone(), shutdown.clone());
            let key = key.clone();
            move || scheduled_backup(&storage, &config, key.as_ref().as_ref(), &stats, &shutdown)
        };
        match tokio::task::spawn_blocking(job).await {
            Ok(Some(taken_at)) => {
                newest = Some(taken_at);
                retry_at = None;
            }
            Ok(None) | Err(_) => retry_at = Some(SystemTime::now() + RETRY_AFTER_FAILURE),
        }
        if shutdown.is_cancelled() {
            return;
        }
    }
}

/// Archives the oplog's new entries every `config.oplog_interval` (while the server keeps an
/// oplog) until `stop`, then once more: the server cancels `stop` once its connections have
/// finished, so every write acknowledged before shutdown is archived.
pub async fn run_oplog_archive(
    storage: Arc<Storage>,
    config: ScheduleConfig,
    key: Option<BackupKey>,
    stats: Arc<BackupStats>,
    stop: CancellationToken,
) {
    let mut archiver = OplogArchiver::new(&config.path, key.clone());
    loop {
        let stopping = tokio::select! {
            () = stop.cancelled() => true,
            () = tokio::time::sleep(config.oplog_interval) => false,
        };
        let job = {
            let (storage, stats) = (storage.clone(), stats.clone());
            move || {
                let archived = archiver.archive(&storage, &stats.oplog);
                (archiver, archived)
            }
        };
        let archived = match tokio::task::spawn_blocking(job).await {
            Ok((returned, archived)) => {
                archiver = returned;
                archived
            }
            Err(panicked) => {
                // A new archiver resumes from what the path holds.
                archiver = OplogArchiver::new(&config.path, key.clone());
                Err(BackupError::Internal(format!("the archive run panicked: {panicked}")))
            }
        };
        match archived {
            Ok(0) => {}
            Ok(entries) => {
                tracing::debug!(target: "STORAGE", id = 22121, entries, path = %config.path, "Archived oplog entries");
            }
            Err(error) => {
                stats.oplog.record_failure();
                tracing::error!(target: "STORAGE", id = 22122, path = %config.path, %error, "Cannot archive the oplog; trying again at the next interval");
            }
        }
        if stopping {
            return;
        }
    }
}

/// Creates the backup path, removes what interrupted backups left (`backup-*.partial`
/// directories, `backup-*` prefixes without a manifest: this scheduler is the only writer of
/// such names, and none of its backups runs yet), and returns the newest complete backup's
/// time.
fn prepare_path(config: &ScheduleConfig) -> Result<Option<SystemTime>, BackupError> {
    if let BackupPath::Local(dir) = &config.path {
        std::fs::create_dir_all(dir).map_err(|e| BackupError::io(dir, e))?;
    }
    for removed in config.path.remove_incomplete(|name| taken_at(name).is_some())? {
        tracing::warn!(target: "STORAGE", id = 22112, path = %removed, "Removed an interrupted backup");
    }
    Ok(stored(&config.path)?.iter().map(|b| b.taken_at).max())
}

/// The complete scheduled backups in `path`.
fn stored(path: &BackupPath) -> Result<Vec<StoredBackup>, BackupError> {
    let names = path.complete_children()?;
    Ok(names.into_iter().filter_map(|name| Some(StoredBackup { taken_at: taken_at(&name)?, name })).collect())
}

/// One scheduled backup, its verification and the retention; returns when it was taken,
/// `None` when it failed (logged and counted).
fn scheduled_backup(
    storage: &Storage,
    config: &ScheduleConfig,
    key: Option<&BackupKey>,
    stats: &BackupStats,
    shutdown: &CancellationToken,
) -> Option<SystemTime> {
    let taken_at = SystemTime::now();
    let name = backup_name(taken_at);
    let location = config.path.display(&name);
    let check_interrupt = || {
        if shutdown.is_cancelled() {
            return Err(Error::new(ErrorCode::InterruptedAtShutdown, "interrupted at shutdown"));
        }
        Ok(())
    };
    let outcome = config.path.create_target(&name)
        .and_then(|mut target| take_backup(storage, target.as_mut(), &check_interrupt, key))
        .and_then(|summary| match config.path.verify(&name, key).map(|_| ()) {
            Ok(()) => Ok(summary),
            Err(error) => {
                // Useless and misleading: a restore would refuse it; the error names the damage.
                tracing::error!(target: "STORAGE", id = 22116, backupDir = %location, %error, "A scheduled backup failed verification after it was written; removing it");
                if let Err(removal) = config.path.remove(&name) {
                    tracing::warn!(target: "STORAGE", path = %location, error = %removal, "Cannot remove a backup that failed verification");
                }
                Err(error)
            }
        });
    match outcome {
        Ok(summary) => {
            stats.record_success(&summary, taken_at);
            tracing::info!(
                target: "STORAGE",
                id = 22113,
                backupDir = %summary.location,
                documents = summary.manifest.documents(),
                bytes = summary.manifest.bytes(),
                durationMillis = summary.duration.as_millis() as u64,
                "Scheduled backup complete and verified"
            );
            apply_retention(config);
            Some(taken_at)
        }
        Err(_) if shutdown.is_cancelled() => {
            tracing::info!(target: "STORAGE", id = 22117, backupDir = %location, "Scheduled backup stopped at shutdown");
            None
        }
        Err(error) => {
            stats.record_failure();
            tracing::error!(target: "STORAGE", id = 22114, backupDir = %location, %error, "Scheduled backup failed");
            None
        }
    }
}

/// Removes the backups the retention no longer keeps.
fn apply_retention(config: &ScheduleConfig) {
    let Some(retention) = &config.retention else { return };
    let stored: Vec<StoredBackup> = match stored(&config.path) {
        Ok(stored) => stored,
        Err(error) => {
            tracing::warn!(target: "STORAGE", path = %config.path, %error, "Cannot list backups for retention");
            return;
        }
    };
    let expired = retention.expired(&stored, SystemTime::now());
    for expired in &expired {
        let location = config.path.display(&expired.name);
        match config.path.remove(&expired.name) {
            Ok(()) => {
                tracing::info!(target: "STORAGE", id = 22115, backupDir = %location, "Removed a backup past its retention")
            }
            Err(error) => {
                tracing::warn!(target: "STORAGE", backupDir = %location, %error, "Cannot remove a backup past its retention")
            }
        }
    }
    // The oplog chunks only backups removed now could have used go with them.
    let kept: Vec<String> =
        stored.iter().filter(|b| !expired.iter().any(|e| e.name == b.name)).map(|b| b.name.clone()).collect();
    match prune_chunks(&config.path, &kept) {
        Ok(0) => {}
        Ok(removed) => {
            tracing::info!(target: "STORAGE", id = 22123, removed, path = %config.path, "Removed archived oplog chunks older than every kept backup")
        }
        Err(error) => {
            tracing::warn!(target: "STORAGE", path = %config.path, %error, "Cannot remove old archived oplog chunks")
        }
    }
}
