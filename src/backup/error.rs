//! The backup layer's one error type, converted at its two boundaries: into a MongoDB error
//! reply for `createBackup`, and into a message and an exit code for the command line.

use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorCode};

/// Why taking, verifying or restoring a backup failed. Every variant that concerns a file
/// names it, and where a byte of it is at fault, its offset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// Reading or writing a file or directory failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The target of a backup or a restore already holds something.
    #[error("{} is not empty{hint}", .path.display())]
    TargetNotEmpty {
        /// The directory.
        path: PathBuf,
        /// What to do about it (the restore's `--drop`), or nothing.
        hint: &'static str,
    },
    /// The directory has no `manifest.json`: the backup was never completed, or is not one.
    #[error("{}: no manifest.json: not a complete backup", .dir.display())]
    MissingManifest {
        /// The backup directory.
        dir: PathBuf,
    },
    /// The manifest does not parse, is of an unknown format version, or asks for a feature
    /// this build does not have.
    #[error("{}: {detail}", .path.display())]
    BadManifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A file's contents are not what the manifest says, or do not parse.
    #[error("{}: at byte offset {offset}: {detail}", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The byte offset of the problem within the file.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// The storage engine failed (reading the snapshot, or writing the restored data).
    #[error("{0}")]
    Storage(Error),
    /// Something that cannot fail did (encoding a manifest, formatting a time).
    #[error("internal error: {0}")]
    Internal(String),
    /// A command-line argument or a `createBackup` field is wrong.
    #[error("{0}")]
    BadArgument(String),
    /// Asked for something this build does not do yet.
    #[error("{0} is not supported yet")]
    NotSupported(String),
    /// The key given is not the one an encrypted backup was written with (its check value
    /// differs), or none was given.
    #[error("{}: {}", .backup.display(), match .key_file {
        Some(key) => format!("the key in {} is not the key this backup was encrypted with", key.display()),
        None => "the backup is encrypted: give its key with --encryptionKeyFile".to_owned(),
    })]
    WrongKey {
        /// The backup directory.
        backup: PathBuf,
        /// The key file given, if any.
        key_file: Option<PathBuf>,
    },
    /// The server refused or failed the command (the command-line client).
    #[error("the server answered {code_name} ({code}): {message}")]
    Server {
        /// mongod's numeric code.
        code: i32,
        /// Its name.
        code_name: String,
        /// The server's message.
        message: String,
    },
}

impl BackupError {
    /// An I/O error about `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }

    /// A problem in `path` at `offset`.
    pub fn corrupt(path: &Path, offset: u64, detail: impl Into<String>) -> Self {
        Self::Corrupt { path: path.to_path_buf(), offset, detail: detail.into() }
    }

    /// The process exit code of the command-line tools: 1 when a backup is damaged or does
    /// not match (what `verify` exists to find), 2 for bad usage, 3 for everything else
    /// (I/O, the server, the engine).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::MissingManifest { .. } | Self::BadManifest { .. } | Self::Corrupt { .. } => 1,
            Self::BadArgument(_) | Self::NotSupported(_) | Self::TargetNotEmpty { .. } | Self::WrongKey { .. } => 2,
            _ => 3,
        }
    }
}

impl From<Error> for BackupError {
    fn from(error: Error) -> Self {
        Self::Storage(error)
    }
}

impl From<crate::storage::StorageError> for BackupError {
    fn from(error: crate::storage::StorageError) -> Self {
        Self::Storage(error.into())
    }
}

impl From<BackupError> for Error {
    fn from(error: BackupError) -> Self {
        match error {
            BackupError::Storage(error) => error,
            BackupError::BadArgument(message) => Error::new(ErrorCode::BadValue, message),
            error @ BackupError::WrongKey { .. } => Error::new(ErrorCode::BadValue, error.to_string()),
            // IMPORTANT: mongod has no code for "the directory is not empty"; the argument
            // itself is well-formed, it is the target's state that forbids the operation,
            // which is what mongod reports with 20 IllegalOperation.
            error @ BackupError::TargetNotEmpty { .. } => Error::new(ErrorCode::IllegalOperation, error.to_string()),
            error @ BackupError::NotSupported(_) => Error::new(ErrorCode::NotImplemented, error.to_string()),
            error => Error::new(ErrorCode::OperationFailed, error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_errors_become_mongod_codes_and_exit_codes() {
        let cases = [
            (BackupError::TargetNotEmpty { path: PathBuf::from("/b"), hint: "" }, ErrorCode::IllegalOperation, 2),
            (BackupError::BadArgument("x".to_owned()), ErrorCode::BadValue, 2),
            (BackupError::NotSupported("x".to_owned()), ErrorCode::NotImplemented, 2),
            (BackupError::WrongKey { backup: PathBuf::from("/b"), key_file: None }, ErrorCode::BadValue, 2),
            (BackupError::Storage(Error::new(ErrorCode::MaxTimeMSExpired, "x")), ErrorCode::MaxTimeMSExpired, 3),
            (BackupError::corrupt(Path::new("/b/c.bson"), 7, "x"), ErrorCode::OperationFailed, 1),
            (BackupError::MissingManifest { dir: PathBuf::from("/b") }, ErrorCode::OperationFailed, 1),
            (BackupError::io(Path::new("/b"), std::io::Error::other("x")), ErrorCode::OperationFailed, 3),
        ];
        for (error, code, exit) in cases {
            let message = error.to_string();
            assert_eq!(error.exit_code(), exit, "{message}");
            assert_eq!(Error::from(error).code(), code, "{message}");
        }
    }
}
