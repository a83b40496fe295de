//! The storage layer's error, converted into a MongoDB error at the command boundary.

use crate::error::{Error, ErrorCode};

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The engine reported an I/O or corruption problem.
    #[error("storage engine error: {0}")]
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
    /// A journal sync failed earlier: the server no longer accepts writes.
    #[error("writes are disabled after a failed journal sync ({0}); restart the server")]
    WritesDisabled(String),
    /// Stored bytes are not what the server wrote.
    #[error("corrupt {what}: {detail}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Detail.
        detail: String,
    },
    /// File-system I/O outside the engine (lock file, directories).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl From<StorageError> for Error {
    fn from(error: StorageError) -> Self {
        let code = match &error {
            StorageError::DbPathInUse { .. } => ErrorCode::DBPathInUse,
            _ => ErrorCode::InternalError,
        };
        match &error {
            // These messages are meant for the client: they say what to do.
            StorageError::WritesDisabled(_) | StorageError::DbPathInUse { .. } => Error::new(code, error.to_string()),
            _ => Error::new(code, "storage error; see the server log").with_internal(error.to_string()),
        }
    }
}
