//! The storage layer's error, converted into a MongoDB error at the command boundary.

use crate::error::{Error, ErrorCode};

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The engine reported an I/O or corruption problem.
    #[error("storage engine error: {}", engine_cause(.0))]
    Engine(#[from] fjall::Error),
    /// Another process holds the data directory.
    #[error(
        "Unable to lock the lock file: {path} ({reason}). Another monarchd instance is probably already running on this dbpath"
    )]
    DbPathInUse {
        /// The lock file.
        path: String,
        /// What the OS said.
        reason: String,
    },
    /// Another node holds the PostgreSQL engine's database.
    #[error(
        "PostgreSQL database {0} is in use by another monarchd (it holds the database's node lock); several Monarch nodes on one database are not supported yet"
    )]
    DatabaseInUse(String),
    /// The data directory was written by an incompatible format.
    #[error("data files have format version {found}, this server reads version {expected}")]
    FormatVersion {
        /// On disk.
        found: u32,
        /// Understood by this build.
        expected: u32,
    },
    /// The data directory's keys were written in another layout than this build encodes.
    #[error(
        "data files use key format version {found}, this server reads key format version {expected}; start the Monarch version that wrote them, or move the data with mongodump and mongorestore"
    )]
    KeyFormatVersion {
        /// On disk.
        found: u32,
        /// Encoded by this build.
        expected: u32,
    },
    /// A journal sync or an engine write failed earlier: the server no longer accepts writes.
    /// The reason names what failed, e.g. "a failed journal sync (Input/output error)".
    #[error("writes are disabled after {0}; restart the server")]
    WritesDisabled(String),
    /// The disk holding the data directory has less free space than the reserve.
    #[error(
        "No space left on device: {path} has {available} bytes free, less than the {reserve} bytes the server keeps free (monarchMinAvailableDiskSpaceMB); writes resume once space is freed"
    )]
    OutOfDiskSpace {
        /// The data directory.
        path: String,
        /// Bytes free for the server's user.
        available: u64,
        /// The reserve, in bytes.
        reserve: u64,
    },
    /// Stored bytes are not what the server wrote.
    #[error("corrupt {what}: {detail}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Detail.
        detail: String,
    },
    /// The PostgreSQL engine's database refused a statement, or the connection failed.
    #[error("PostgreSQL error: {}", with_cause(.0))]
    Postgres(#[from] postgres::Error),
    /// File-system I/O outside the engine (lock file, directories).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl From<StorageError> for Error {
    fn from(error: StorageError) -> Self {
        let code = match &error {
            StorageError::DbPathInUse { .. } | StorageError::DatabaseInUse(_) => ErrorCode::DBPathInUse,
            StorageError::OutOfDiskSpace { .. } => ErrorCode::OutOfDiskSpace,
            _ if error.is_disk_full() => ErrorCode::OutOfDiskSpace,
            StorageError::Postgres(error) if is_write_conflict(error) => ErrorCode::WriteConflict,
            // As a mongod primary stepping down: drivers retry the write, or the transaction.
            StorageError::Postgres(error) if is_connection_lost(error) => ErrorCode::InterruptedDueToReplStateChange,
            _ => ErrorCode::InternalError,
        };
        match &error {
            // These messages are meant for the client: they say what to do.
            StorageError::WritesDisabled(_)
            | StorageError::DbPathInUse { .. }
            | StorageError::DatabaseInUse(_)
            | StorageError::OutOfDiskSpace { .. } => Error::new(code, error.to_string()),
            _ => {
                log_engine_error(&error);
                let message = match code {
                    ErrorCode::OutOfDiskSpace => {
                        "No space left on device: the storage engine could not write; see the server log"
                    }
                    ErrorCode::InterruptedDueToReplStateChange => {
                        "the connection to PostgreSQL was lost (a restart or a failover); the operation was \
                         interrupted and may be retried"
                    }
                    _ => "storage error; see the server log",
                };
                Error::new(code, message).with_internal(error.to_string())
            }
        }
    }
}

impl StorageError {
    /// Whether the engine met a full disk (ENOSPC, or a quota: EDQUOT), anywhere in the cause
    /// chain.
    pub fn is_disk_full(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = cause {
            if let Some(io) = error.downcast_ref::<std::io::Error>()
                && (io.kind() == std::io::ErrorKind::StorageFull || io.kind() == std::io::ErrorKind::QuotaExceeded)
            {
                return true;
            }
            cause = error.source();
        }
        false
    }
}

/// Whether PostgreSQL refused a transaction because another one holds or changed its rows:
/// mongod's 112 WriteConflict, which drivers retry.
fn is_write_conflict(error: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    error.code().is_some_and(|code| {
        [SqlState::T_R_SERIALIZATION_FAILURE, SqlState::T_R_DEADLOCK_DETECTED, SqlState::LOCK_NOT_AVAILABLE]
            .contains(code)
    })
}

/// Whether the connection to PostgreSQL is gone: the server closed or reset it, shut down,
/// is not accepting connections yet, or is a standby now (after a failover). The operation
/// did not complete, or its outcome is unknown; a new connection may succeed.
/// A client error with its cause: the client's own text is only its kind ("db error", "error
/// performing TLS handshake").
fn with_cause(error: &postgres::Error) -> String {
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

pub(super) fn is_connection_lost(error: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    let state_lost = error.code().is_some_and(|code| {
        code.code().starts_with("08")
            || [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::READ_ONLY_SQL_TRANSACTION,
            ]
            .contains(code)
    });
    // Without a SQL state: the socket failed, or the connection was already closed.
    let io_lost = error.code().is_none()
        && (error.is_closed() || std::error::Error::source(error).is_some_and(|cause| cause.is::<std::io::Error>()));
    state_lost || io_lost
}

/// Logs an engine error the client is only told to look up: at error level, with its cause,
/// once per distinct message per minute (a failing disk under a busy client would otherwise
/// write one line per request).
fn log_engine_error(error: &StorageError) {
    static LAST: std::sync::Mutex<Option<(String, std::time::Instant)>> = std::sync::Mutex::new(None);
    let message = error.to_string();
    let mut last = LAST.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let repeated = last
        .as_ref()
        .is_some_and(|(previous, at)| *previous == message && at.elapsed() < std::time::Duration::from_secs(60));
    if !repeated {
        tracing::error!(target: "STORAGE", id = 7_000_413, error = %message, "Storage engine error");
        *last = Some((message, std::time::Instant::now()));
    }
}

impl StorageError {
    /// Whether the engine refused because an earlier failure stopped it (fjall accepts no
    /// writes after a failed journal write or background flush, until a restart).
    pub(super) fn is_engine_stopped(&self) -> bool {
        matches!(self, StorageError::Engine(fjall::Error::Poisoned))
    }
}

/// An engine error as an operator reads it: the operating system's own message when an I/O
/// error is the cause ("No space left on device (os error 28)"), else the engine's.
fn engine_cause(error: &fjall::Error) -> String {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            return io.to_string();
        }
        cause = current.source();
    }
    error.to_string()
}

/// Why the engine would not open `engine_dir`, said as an operator needs it: which files are
/// damaged and how. Anything else stays the engine's own error.
pub(super) fn open_failure(engine_dir: &std::path::Path, error: fjall::Error) -> StorageError {
    match damage(engine_dir, &error) {
        Some(detail) => StorageError::Corrupt {
            what: "data files",
            detail: format!(
                "{detail}; the server does not start on damaged data: run monarchd --repair, or restore the data directory from a backup"
            ),
        },
        None => StorageError::Engine(error),
    }
}

/// What damage made the engine refuse to open `engine_dir`, in words (which files, what is
/// wrong); `None` when the error is not about damaged files.
pub(super) fn damage(engine_dir: &std::path::Path, error: &fjall::Error) -> Option<String> {
    Some(match error {
        fjall::Error::JournalRecovery(kind) => {
            let problem = match kind {
                fjall::JournalRecoveryError::ChecksumMismatch => "a batch's checksum does not match its bytes",
                fjall::JournalRecoveryError::InsufficientLength => "a batch holds fewer entries than its header says",
                fjall::JournalRecoveryError::TooManyItems => "a batch holds more entries than its header says",
                fjall::JournalRecoveryError::InvalidFileName => "a file name is not a journal file's",
            };
            format!("{} in the journal ({})", problem, files_named(engine_dir, |name| name.ends_with(".jnl")))
        }
        fjall::Error::InvalidTrailer | fjall::Error::InvalidTag(_) | fjall::Error::Decompress(_) => {
            format!(
                "the journal ({}) cannot be decoded: {error}",
                files_named(engine_dir, |name| name.ends_with(".jnl"))
            )
        }
        fjall::Error::Storage(inner) if !matches!(inner, lsm_tree::Error::Io(_)) => format!(
            "a table file under {} cannot be read: {}",
            engine_dir.join("keyspaces").display(),
            describe_table_error(inner)
        ),
        fjall::Error::Unrecoverable | fjall::Error::InvalidVersion(_) => {
            format!("the engine's files under {} cannot be recovered: {error}", engine_dir.display())
        }
        _ => return None,
    })
}

/// What is wrong with a table, in words.
fn describe_table_error(error: &lsm_tree::Error) -> String {
    match error {
        lsm_tree::Error::ChecksumMismatch { .. } => "a block's checksum does not match its bytes".to_owned(),
        lsm_tree::Error::InvalidHeader(what) => format!("invalid {what} header"),
        lsm_tree::Error::InvalidTrailer => "invalid block trailer".to_owned(),
        lsm_tree::Error::Decompress(kind) => format!("a block does not decompress ({kind:?})"),
        other => format!("{other:?}"),
    }
}

/// The files directly in `dir` whose names pass `wanted`, as a comma-separated list of paths.
fn files_named(dir: &std::path::Path, wanted: impl Fn(&str) -> bool) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_str().is_some_and(&wanted))
        .map(|entry| entry.path().display().to_string())
        .collect();
    names.sort();
    if names.is_empty() { dir.display().to_string() } else { names.join(", ") }
}
