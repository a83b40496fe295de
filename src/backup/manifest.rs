//! `manifest.json`: Monarch's own description of a backup, written last, so a directory
//! without one is visibly incomplete. It names every file with its size and SHA-256, and
//! every collection with its UUID, options, indexes, document count and data bytes (the
//! options and indexes as in the collection's `metadata.json`, which verify compares).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::BackupError;

/// The file name of the manifest inside a backup directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// What the manifest's `format` field holds.
pub const FORMAT_NAME: &str = "monarch-backup";
/// The size of the blocks a file's [`FileEntry::block_sha256`] covers: 1 MiB, a manifest of
/// 64 bytes of hex per MiB of data.
pub const BLOCK_BYTES: u64 = 1 << 20;
/// The encryption scheme this build writes and reads (see [`crate::backup::crypto`]).
pub const ENCRYPTION_ALGORITHM: &str = "AES-256-GCM-STREAM-BE32";
/// Plaintext bytes per sealed chunk of an encrypted file.
pub const ENCRYPTION_CHUNK_BYTES: usize = 1 << 20;
/// The layout version this build writes and reads; a later layout is refused, not guessed at.
pub const FORMAT_VERSION: u32 = 1;

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// [`FORMAT_VERSION`] when written by this build.
    pub format_version: u32,
    /// The MongoDB release the server matches ([`crate::version::COMPATIBLE_VERSION`]).
    pub server_version: String,
    /// The commit the server was built from ([`crate::version::GIT_VERSION`]).
    pub git_version: String,
    /// When the snapshot was taken, RFC 3339 in UTC.
    pub created_at: String,
    /// The storage engine's sequence number of the snapshot: the backup holds every write
    /// committed before it and none after (0 in an oplog chunk, which `oplog_chunk` bounds).
    pub snapshot_sequence: u64,
    /// The time of the newest oplog entry in the snapshot, when the server kept an oplog
    /// (replica-set mode): the backup holds every change up to it and none after, so
    /// point-in-time recovery replays the archived oplog from there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oplog_time: Option<OplogTime>,
    /// Set in an archived oplog chunk only (see [`crate::backup::oplog_archive`]): which
    /// entries its one collection, `local.oplog.rs`, holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oplog_chunk: Option<OplogChunk>,
    /// How the data and metadata files are encrypted; absent when they are not. A reader
    /// without the key refuses the backup rather than reading ciphertext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    /// Every collection, in namespace order.
    pub collections: Vec<CollectionEntry>,
}

/// A time in the oplog (an entry's `ts`): `{"t": seconds, "i": increment}`, ordered as
/// MongoDB orders timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OplogTime {
    /// Seconds since the epoch.
    pub t: u32,
    /// The ordinal within the second.
    pub i: u32,
}

impl OplogTime {
    /// The next time after this one.
    pub fn successor(self) -> Self {
        match self.i.checked_add(1) {
            Some(i) => Self { t: self.t, i },
            None => Self { t: self.t.saturating_add(1), i: 0 },
        }
    }
}

impl From<bson::Timestamp> for OplogTime {
    fn from(ts: bson::Timestamp) -> Self {
        Self { t: ts.time, i: ts.increment }
    }
}

impl From<OplogTime> for bson::Timestamp {
    fn from(time: OplogTime) -> Self {
        Self { time: time.t, increment: time.i }
    }
}

impl std::fmt::Display for OplogTime {
    /// mongorestore's `--oplogLimit` form, `<seconds>:<ordinal>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.t, self.i)
    }
}

/// Which oplog entries an archived chunk holds: every entry after `after` up to and
/// including `through`, as the oplog held them (so chunks chain: one's `after` is the
/// previous one's `through`). `after` is absent for the first chunk after a gap (the oplog
/// had dropped entries the archive had not taken yet): it holds everything from `first` on,
/// but nothing says what came before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OplogChunk {
    /// The newest entry before this chunk's first, when the chunk continues a chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<OplogTime>,
    /// Its first entry's time.
    pub first: OplogTime,
    /// Its last entry's time.
    pub through: OplogTime,
}

impl OplogChunk {
    /// Whether the chunk holds every entry after `at` up to its end: `at` is inside it.
    pub fn continues_from(&self, at: OplogTime) -> bool {
        let start = self.after.unwrap_or(self.first);
        start <= at && at < self.through
    }
}

/// The manifest's `encryption` field: how the data and metadata files are encrypted (the
/// key itself is never in a backup).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Encryption {
    /// Always [`ENCRYPTION_ALGORITHM`].
    pub algorithm: String,
    /// Always [`ENCRYPTION_CHUNK_BYTES`].
    pub chunk_bytes: u64,
    /// The key's check value (an HMAC of a fixed text under it), to refuse a wrong key by name.
    pub key_check: String,
}

impl Encryption {
    /// Whether this build reads the scheme described.
    pub fn is_supported(&self) -> bool {
        self.algorithm == ENCRYPTION_ALGORITHM && self.chunk_bytes == ENCRYPTION_CHUNK_BYTES as u64
    }
}

/// One collection of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CollectionEntry {
    /// Its database.
    pub db: String,
    /// Its name within the database.
    pub collection: String,
    /// Its UUID in the backed-up server, 32 hex digits (a restore gives it a new one).
    pub uuid: String,
    /// Its creation options, as canonical Extended JSON (as `listCollections` shows them).
    pub options: serde_json::Value,
    /// Its index specs, as `listIndexes` returns them, as canonical Extended JSON; `_id_`
    /// (or the clustered index) first.
    pub indexes: Vec<serde_json::Value>,
    /// Documents in its `.bson` file.
    pub documents: u64,
    /// Bytes of those documents (the `.bson` file's size).
    pub data_bytes: u64,
    /// Its data file then its metadata file.
    pub files: Vec<FileEntry>,
}

impl CollectionEntry {
    /// `db.collection`.
    pub fn namespace(&self) -> String {
        format!("{}.{}", self.db, self.collection)
    }
}

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileEntry {
    /// The path relative to the backup directory, `/`-separated.
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
    /// The SHA-256 of each [`BLOCK_BYTES`] block in order (the last one may be shorter), so
    /// that verify names where a file differs, not only that it does.
    pub block_sha256: Vec<String>,
}

impl Manifest {
    /// Reads and checks the manifest of the backup in `dir`.
    ///
    /// # Errors
    /// [`BackupError::MissingManifest`] when there is none, [`BackupError::BadManifest`] when
    /// it does not parse or is of another format, version, or encrypted.
    pub fn read(dir: &Path) -> Result<Self, BackupError> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(BackupError::MissingManifest { dir: dir.to_path_buf() });
            }
            Err(error) => return Err(BackupError::io(&path, error)),
        };
        Self::parse(&bytes, &path)
    }

    /// Parses and checks the manifest `bytes` read from `path` (named in errors).
    ///
    /// # Errors
    /// [`BackupError::BadManifest`], as [`Manifest::read`].
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self, BackupError> {
        let bad = |detail: String| BackupError::BadManifest { path: path.to_path_buf(), detail };
        let manifest: Self = serde_json::from_slice(bytes).map_err(|e| bad(format!("does not parse: {e}")))?;
        if manifest.format != FORMAT_NAME {
            return Err(bad(format!("format is {:?}, not {FORMAT_NAME:?}", manifest.format)));
        }
        if manifest.format_version != FORMAT_VERSION {
            return Err(bad(format!(
                "format version {} is not the version this build reads ({FORMAT_VERSION})",
                manifest.format_version
            )));
        }
        if let Some(encryption) = manifest.encryption.as_ref().filter(|e| !e.is_supported()) {
            return Err(bad(format!(
                "the backup is encrypted with {} in {}-byte chunks, which this build does not read",
                encryption.algorithm, encryption.chunk_bytes
            )));
        }
        for collection in &manifest.collections {
            for file in &collection.files {
                if !is_plain_relative(&file.path) {
                    return Err(bad(format!("file path {:?} leaves the backup directory", file.path)));
                }
            }
        }
        Ok(manifest)
    }

    /// Total documents.
    pub fn documents(&self) -> u64 {
        self.collections.iter().map(|c| c.documents).sum()
    }

    /// Total bytes of all files.
    pub fn bytes(&self) -> u64 {
        self.collections.iter().flat_map(|c| &c.files).map(|f| f.bytes).sum()
    }
}

/// Whether `path` is relative and stays inside the directory it is relative to: a manifest
/// must not make verify or restore read `/etc/passwd` or `../../x`.
fn is_plain_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_paths_stay_inside_the_backup() {
        assert!(is_plain_relative("db/coll.bson"));
        assert!(!is_plain_relative("../db/coll.bson"));
        assert!(!is_plain_relative("/etc/passwd"));
        assert!(!is_plain_relative("db//x"));
        assert!(!is_plain_relative("db/./x"));
        assert!(!is_plain_relative(""));
    }
}
