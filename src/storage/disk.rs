//! Free space under the data directory. Writes stop, with mongod's 14031 OutOfDiskSpace, while
//! the file system has less than a reserve free, and resume by themselves once space is freed.
//!
//! The reserve exists because the engine must never meet a full disk itself: fjall stops for
//! good after any failed journal write (it cannot tell which bytes reached the file), so only a
//! restart would bring writes back. Below the reserve, reads go on, and the engine's own
//! background work (memtable flushes, compactions) still has room.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use super::StorageError;

/// How often the free space is read again while it is above the reserve; below it, every
/// write reads it (that is when it matters, and writes are refused anyway).
const RECHECK_MILLIS: u64 = 25;
/// The default reserve (`monarchMinAvailableDiskSpaceMB`): room for a memtable flush and the
/// journal's buffers, with margin.
pub const DEFAULT_RESERVE_MB: u64 = 100;

/// The free-space gate in front of every write.
#[derive(Debug)]
pub struct DiskGuard {
    path: PathBuf,
    reserve_bytes: AtomicU64,
    /// Milliseconds since `epoch` of the last reading; `u64::MAX` before the first.
    checked_at: AtomicU64,
    available: AtomicU64,
    full: AtomicBool,
    epoch: Instant,
}

impl DiskGuard {
    /// A guard over the file system holding `path`, with the default reserve.
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            reserve_bytes: AtomicU64::new(DEFAULT_RESERVE_MB << 20),
            checked_at: AtomicU64::new(u64::MAX),
            available: AtomicU64::new(u64::MAX),
            full: AtomicBool::new(false),
            epoch: Instant::now(),
        }
    }

    /// The reserve, in mebibytes.
    pub fn reserve_mb(&self) -> u64 {
        self.reserve_bytes.load(Ordering::Relaxed) >> 20
    }

    /// Sets the reserve (0: writes stop only when the engine meets a full disk).
    pub fn set_reserve_mb(&self, mb: u64) {
        self.reserve_bytes.store(mb.saturating_mul(1 << 20), Ordering::Relaxed);
        self.checked_at.store(u64::MAX, Ordering::Relaxed);
    }

    /// Fails while less than the reserve is free.
    ///
    /// # Errors
    /// [`StorageError::OutOfDiskSpace`].
    pub fn check(&self) -> Result<(), StorageError> {
        let now = self.epoch.elapsed().as_millis() as u64;
        let last = self.checked_at.load(Ordering::Relaxed);
        let stale = last == u64::MAX || now.saturating_sub(last) >= RECHECK_MILLIS;
        if stale || self.full.load(Ordering::Relaxed) {
            self.refresh(now);
        }
        if !self.full.load(Ordering::Relaxed) {
            return Ok(());
        }
        Err(StorageError::OutOfDiskSpace {
            path: self.path.display().to_string(),
            available: self.available.load(Ordering::Relaxed),
            reserve: self.reserve_bytes.load(Ordering::Relaxed),
        })
    }

    fn refresh(&self, now: u64) {
        self.checked_at.store(now, Ordering::Relaxed);
        let available = match available_bytes(&self.path) {
            Ok(bytes) => bytes,
            Err(error) => {
                // Unreadable: do not stop writes on a guess; the engine reports real failures.
                tracing::warn!(target: "STORAGE", id = 7_000_410, path = %self.path.display(), error = %error, "Cannot read the free disk space");
                u64::MAX
            }
        };
        self.available.store(available, Ordering::Relaxed);
        let reserve = self.reserve_bytes.load(Ordering::Relaxed);
        let full = available < reserve;
        if self.full.swap(full, Ordering::Relaxed) != full {
            if full {
                tracing::error!(target: "STORAGE", id = 7_000_411, path = %self.path.display(), availableBytes = available, reserveBytes = reserve,
                    "Writes are refused: the disk holding the data directory has less free space than the reserve (monarchMinAvailableDiskSpaceMB)");
            } else {
                tracing::info!(target: "STORAGE", id = 7_000_412, path = %self.path.display(), availableBytes = available, reserveBytes = reserve,
                    "Writes resume: the disk holding the data directory has free space again");
            }
        }
    }
}

/// Bytes free for the server's (unprivileged) writes on the file system holding `path`.
///
/// # Errors
/// The operating system's, when `statvfs` fails.
pub(super) fn available_bytes(path: &Path) -> rustix::io::Result<u64> {
    rustix::fs::statvfs(path).map(|fs| fs.f_bavail.saturating_mul(fs.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_guard_refuses_below_the_reserve_and_recovers() {
        let dir = std::env::temp_dir();
        let guard = DiskGuard::new(&dir);
        guard.set_reserve_mb(0);
        assert!(guard.check().is_ok());
        // No disk has 2^40 MiB free.
        guard.set_reserve_mb(1 << 40);
        match guard.check() {
            Err(StorageError::OutOfDiskSpace { reserve, .. }) => assert_eq!(reserve, 1u64 << 60),
            other => panic!("expected OutOfDiskSpace, got {other:?}"),
        }
        guard.set_reserve_mb(0);
        assert!(guard.check().is_ok(), "writes resume as soon as the space is there");
    }
}
