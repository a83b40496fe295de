//! Taking a backup: one storage snapshot, with the catalog read at the same instant, written
//! collection by collection to a [`BackupTarget`], the manifest last. Writers go on while it
//! runs: the snapshot pins the versions it reads, and no lock is held.

use std::time::Instant;

use super::crypto::{BackupKey, EncryptingTarget};
use super::error::BackupError;
use super::layout::{self, MetadataJson};
use super::manifest::{CollectionEntry, Encryption, FORMAT_NAME, FORMAT_VERSION, Manifest, OplogTime};
use super::target::BackupTarget;
use crate::storage::{Collection, Direction, Namespace, ReadView, Storage, is_temporary};

/// How many documents are written between two interruption checks.
const STOP_CHECK_EVERY: u64 = 1_000;

/// What a finished backup reports.
#[derive(Debug, Clone)]
pub struct BackupSummary {
    /// Where it is.
    pub location: String,
    /// Its manifest.
    pub manifest: Manifest,
    /// How long it took.
    pub duration: std::time::Duration,
}

/// Whether a collection goes into a backup. Left out: the `local` database (the oplog and
/// replica-set state belong to the member, not to the data; point-in-time recovery, issue 19
/// point 9, archives the oplog on its own), `config` (sessions and transactions' records),
/// `system.profile` (diagnostics, as mongodump leaves it out) and `$out`'s temporary
/// collections. Everything else is in, system collections included: `admin.system.users`
/// and `admin.system.roles` (users and roles), `system.views` (view definitions),
/// `system.buckets.*` (time-series data), `system.js`.
pub fn is_backed_up(ns: &Namespace) -> bool {
    !matches!(ns.db.as_str(), "local" | "config") && ns.coll != "system.profile" && !is_temporary(ns)
}

/// Writes a consistent backup of `storage` to `target`, encrypted with `key` when given. `check_interrupt` is asked now and
/// then whether to give up (`killOp`, `maxTimeMS`, shutdown), and its error ends the backup;
/// a failed or stopped backup leaves nothing complete behind (the target is abandoned).
///
/// # Errors
/// `check_interrupt`'s error; storage and target errors.
pub fn take_backup(
    storage: &Storage,
    target: &mut dyn BackupTarget,
    check_interrupt: &dyn Fn() -> crate::error::Result<()>,
    key: Option<&BackupKey>,
) -> Result<BackupSummary, BackupError> {
    write_to(target, key, |target, encryption| write_backup(storage, target, check_interrupt, encryption))
}

/// Runs `write` on `target`, through an encrypting layer when `key` is given (`write` is
/// handed what the manifest says of it); a failed write abandons the target, so nothing
/// complete is left behind. Backups and archived oplog chunks are both written this way.
pub(super) fn write_to(
    target: &mut dyn BackupTarget,
    key: Option<&BackupKey>,
    write: impl FnOnce(&mut dyn BackupTarget, Option<Encryption>) -> Result<Manifest, BackupError>,
) -> Result<BackupSummary, BackupError> {
    let started = Instant::now();
    let mut encrypting;
    let target: &mut dyn BackupTarget = match key {
        Some(key) => {
            encrypting = EncryptingTarget::new(target, key.clone());
            &mut encrypting
        }
        None => target,
    };
    match write(target, key.map(Encryption::for_key)) {
        Ok(manifest) => Ok(BackupSummary { location: target.location(), manifest, duration: started.elapsed() }),
        Err(error) => {
            target.abandon();
            Err(error)
        }
    }
}

/// A manifest of this build's format, created now.
pub(super) fn new_manifest(
    snapshot_sequence: u64,
    encryption: Option<Encryption>,
    collections: Vec<CollectionEntry>,
) -> Result<Manifest, BackupError> {
    let created_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| BackupError::Internal(format!("cannot format the time: {e}")))?;
    Ok(Manifest {
        format: FORMAT_NAME.to_owned(),
        format_version: FORMAT_VERSION,
        server_version: crate::version::COMPATIBLE_VERSION.to_owned(),
        git_version: crate::version::GIT_VERSION.to_owned(),
        created_at,
        snapshot_sequence,
        oplog_time: None,
        oplog_chunk: None,
        encryption,
        collections,
    })
}

/// Writes `manifest` into `target`, which makes it complete.
pub(super) fn commit_manifest(target: &mut dyn BackupTarget, manifest: &Manifest) -> Result<(), BackupError> {
    let bytes = serde_json::to_vec_pretty(manifest)
        .map_err(|e| BackupError::Internal(format!("cannot encode the manifest: {e}")))?;
    target.commit(&bytes)
}

fn write_backup(
    storage: &Storage,
    target: &mut dyn BackupTarget,
    check_interrupt: &dyn Fn() -> crate::error::Result<()>,
    encryption: Option<Encryption>,
) -> Result<Manifest, BackupError> {
    let (view, collections) = storage.snapshot_with_catalog()?;
    let mut entries = Vec::new();
    for collection in collections.iter().filter(|c| is_backed_up(&c.ns)) {
        let documents = view.scan(collection, Direction::Forward);
        entries.push(write_collection(collection, documents, target, check_interrupt)?);
    }
    let mut manifest = new_manifest(view.instant(), encryption, entries)?;
    manifest.oplog_time = newest_oplog_entry(&view, &collections)?;
    check_interrupt()?;
    commit_manifest(target, &manifest)?;
    Ok(manifest)
}

/// The time of the newest oplog entry `view` sees; `None` without an oplog (a standalone).
/// Entries are written in the same batch as the changes they record, so the snapshot holds
/// exactly the changes up to this time.
fn newest_oplog_entry(
    view: &ReadView,
    collections: &[std::sync::Arc<Collection>],
) -> Result<Option<OplogTime>, BackupError> {
    let oplog = Namespace::oplog();
    let Some(collection) = collections.iter().find(|c| c.ns == oplog) else { return Ok(None) };
    let Some(entry) = view.scan(collection, Direction::Backward).next() else { return Ok(None) };
    let entry = entry?;
    let ts = entry
        .get_timestamp("ts")
        .map_err(|e| BackupError::Internal(format!("the newest oplog entry has no time: {e}")))?;
    Ok(Some(ts.into()))
}

/// Writes one collection's data file (`rows`, in the order given) and metadata file.
pub(super) fn write_collection(
    collection: &Collection,
    rows: impl IntoIterator<Item = crate::error::Result<bson::RawDocumentBuf>>,
    target: &mut dyn BackupTarget,
    check_interrupt: &dyn Fn() -> crate::error::Result<()>,
) -> Result<CollectionEntry, BackupError> {
    let (db, coll) = (&collection.ns.db, &collection.ns.coll);
    let mut data = target.create_file(&layout::data_path(db, coll))?;
    let mut documents = 0u64;
    let mut data_bytes = 0u64;
    for document in rows {
        let document = document?;
        data.write_all(document.as_bytes())?;
        documents += 1;
        data_bytes += document.as_bytes().len() as u64;
        if documents.is_multiple_of(STOP_CHECK_EVERY) {
            check_interrupt()?;
        }
    }
    let data = data.finish()?;
    let described = MetadataJson::of(collection);
    let mut metadata = target.create_file(&layout::metadata_path(db, coll))?;
    let bytes = described
        .file_bytes(coll, "collection")
        .map_err(|e| BackupError::Internal(format!("cannot encode {}'s metadata: {e}", collection.ns)))?;
    metadata.write_all(&bytes)?;
    let metadata = metadata.finish()?;
    let MetadataJson { uuid, options, indexes } = described;
    Ok(CollectionEntry {
        db: db.clone(),
        collection: coll.clone(),
        uuid,
        options,
        indexes,
        documents,
        data_bytes,
        files: vec![data, metadata],
    })
}
