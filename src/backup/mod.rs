//! Backups: online, consistent, self-describing and verifiable, and restores from them
//! (issue 19).
//!
//! - [`take_backup`] writes a backup of a running server's [`Storage`](crate::storage::Storage)
//!   from one snapshot, the catalog read at the same instant, to a [`BackupTarget`] (a
//!   [`LocalDirectory`] or an [`s3::S3Target`]), while writes go on;
//! - [`verify_backup`] re-reads every file against the [`Manifest`] and parses every document;
//! - [`restore_backup`] verifies, then builds a new data directory offline and renames it
//!   into place only when complete;
//! - [`scheduler`] takes the server's own backups on the [`schedule`] `--backupSchedule`
//!   names, verifies each, and removes those `--backupRetention` no longer keeps;
//! - [`s3`] writes backups to S3-compatible object storage (an `s3://` location) and fetches
//!   them back for verify and restore;
//! - [`crypto`] encrypts a backup's files as they are written (AES-256-GCM, a key file) and
//!   decrypts them for verify and restore;
//! - [`export`] and [`import`] move one collection as Extended JSON, CSV or TSV through a
//!   server, as mongoexport and mongoimport do;
//! - [`dump`] and [`load`] move whole databases through a server in mongodump's directory and
//!   [`archive`] formats, as mongodump and mongorestore do;
//! - [`oplog_archive`] copies a replica-set member's oplog beside its scheduled backups, and a
//!   restore with `--oplogReplay` applies it after the backup (`replay`) up to a chosen
//!   time: point-in-time recovery;
//! - [`location`] is where the server's own backups and oplog chunks go (a directory or an
//!   `s3://` prefix);
//! - [`client`] is the command line's tiny synchronous client that asks a server for a
//!   backup (`createBackup`), and [`cli`] the `monarchd backup` and `monarchd restore` tools.
//!
//! The layout is mongodump's (`<db>/<coll>.bson`, `<db>/<coll>.metadata.json`, see
//! [`layout`]) plus Monarch's `manifest.json`, written last and atomically.
//!
//! This module sits above `storage` and `query` and below `cmd` (whose `createBackup` calls
//! it) and `main` (the command line).

pub mod archive;
mod bson_stream;
pub mod cli;
pub mod client;
pub mod client_tls;
pub mod crypto;
pub mod dump;
mod error;
pub mod export;
pub mod import;
pub mod layout;
pub mod load;
pub mod location;
pub mod manifest;
mod namespaces;
pub mod oplog_archive;
mod progress;
mod replay;
mod restore;
pub mod s3;
pub mod schedule;
pub mod scheduler;
mod tabular;
mod take;
pub mod target;
mod verify;
mod writes;

pub use crypto::BackupKey;
pub use error::BackupError;
pub use manifest::Manifest;
pub use namespaces::NamespaceMap;
pub use restore::{OplogReplay, RestoreOptions, RestoreReport, restore_backup};
pub use schedule::ScheduleConfig;
pub use scheduler::{BackupFigures, BackupStats};
pub use take::{BackupSummary, is_backed_up, take_backup};
pub use target::{BackupTarget, LocalDirectory, TargetFile};
pub use verify::{VerifyReport, verify_backup};
