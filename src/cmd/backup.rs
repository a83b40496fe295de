//! `createBackup` (Percona Server for MongoDB's name and `backupDir` field): writes a
//! consistent backup of the whole server into a directory on the server's host while reads
//! and writes go on (see [`crate::backup`]).

use std::path::Path;

use bson::{Document, doc};

use super::{CommandRequest, RequestCtx};
use crate::backup::s3::{S3Location, S3Target, is_s3};
use crate::backup::target::is_within;
use crate::backup::{BackupTarget, LocalDirectory, take_backup};
use crate::error::{Error, ErrorCode, Result};

/// `createBackup: 1, backupDir: "<absolute path on the server's host>"`: the directory must
/// be absent or empty; the backup is written into `<backupDir>.partial` and renamed when
/// complete, encrypted when the server has `--backupEncryptionKeyFile`. `killOp` and
/// `maxTimeMS` stop it, and leave nothing behind. A `backupDir` of
/// `s3://bucket/prefix[?endpoint=..&region=..]` writes to object storage instead, with the
/// server's AWS credentials (see [`crate::backup::s3`]); the prefix must hold nothing.
pub fn create_backup(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    if req.db() != "admin" {
        return Err(Error::new(ErrorCode::Unauthorized, "createBackup may only be run against the admin database."));
    }
    let dir = req.str_arg("backupDir")?.ok_or_else(|| {
        Error::new(ErrorCode::Location40414, "BSON field 'createBackup.backupDir' is missing but a required field")
    })?;
    let mut target: Box<dyn BackupTarget> = if is_s3(dir) {
        Box::new(S3Target::create(&S3Location::parse(dir)?)?)
    } else {
        let dir = Path::new(dir);
        if !dir.is_absolute() {
            // A relative path would be relative to the server's working directory, which the
            // client cannot know.
            return Err(Error::new(ErrorCode::BadValue, "backupDir must be an absolute path on the server's host"));
        }
        if is_within(dir, &ctx.state.config.dbpath) {
            // The engine owns every file there; a backup inside would also be inside the next one.
            return Err(Error::new(
                ErrorCode::BadValue,
                "backupDir must be outside the server's data directory (dbPath)",
            ));
        }
        Box::new(LocalDirectory::create(dir)?)
    };
    let interrupt = ctx.op.interrupt.clone();
    let taken_at = std::time::SystemTime::now();
    let summary =
        take_backup(&ctx.state.storage, target.as_mut(), &|| interrupt.check(), ctx.state.config.backup_key.as_ref())
            .inspect_err(|_| {
            ctx.state.backups.record_failure();
        })?;
    ctx.state.backups.record_success(&summary, taken_at);
    let manifest = &summary.manifest;
    let number = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let millis = i64::try_from(summary.duration.as_millis()).unwrap_or(i64::MAX);
    tracing::info!(
        target: "STORAGE",
        id = 22100,
        backupDir = %summary.location,
        collections = manifest.collections.len(),
        documents = manifest.documents(),
        bytes = manifest.bytes(),
        snapshotSequence = manifest.snapshot_sequence,
        durationMillis = millis,
        "Backup complete"
    );
    let mut reply = doc! {
        "backupDir": &summary.location,
        "snapshotSequence": number(manifest.snapshot_sequence),
        "createdAt": &manifest.created_at,
        "collections": number(manifest.collections.len() as u64),
        "documents": number(manifest.documents()),
        "bytes": number(manifest.bytes()),
        "durationMillis": millis,
        "encrypted": manifest.encryption.is_some(),
    };
    if let Some(time) = manifest.oplog_time {
        // Where a point-in-time restore from this backup starts replaying the oplog.
        reply.insert("oplogTime", bson::Timestamp::from(time));
    }
    Ok(reply)
}
