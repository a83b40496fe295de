//! Restoring a backup into a new data directory, offline: the backup is verified first, the
//! data directory is built in a temporary sibling (`<dbpath>.restore-<pid>`) with the storage
//! engine opened directly (each collection created with its stored options through the
//! storage's own create path, its documents loaded in batches, then every index built by the
//! storage's index build, then its count checked), and renamed into place only when all of
//! it succeeded. A failure removes the temporary directory: nothing half-restored is left.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::crypto::BackupKey;
use super::error::BackupError;
use super::layout;
use super::location::BackupPath;
use super::manifest::{CollectionEntry, Manifest, OplogTime};
use super::namespaces::NamespaceMap;
use super::oplog_archive::{ReplayReport, replay_archived};
use super::target::{is_absent_or_empty, is_within, sibling, sync_parent, sync_tree_dirs};
use super::verify::{read_documents, read_plaintext, verify_backup};
use crate::exec::insert::BatchedWriter;
use crate::storage::{Namespace, Storage};

/// What to restore, and where.
#[derive(Debug)]
pub struct RestoreOptions {
    /// The backup directory.
    pub from: PathBuf,
    /// The data directory to create.
    pub dbpath: PathBuf,
    /// Which namespaces, under which names.
    pub namespaces: NamespaceMap,
    /// Replace `dbpath` if it holds anything (mongorestore's `--drop`, here for the whole
    /// directory).
    pub drop: bool,
    /// The key of an encrypted backup.
    pub key: Option<BackupKey>,
    /// Replay the archived oplog after the backup (`--oplogReplay`).
    pub oplog_replay: Option<OplogReplay>,
}

/// Point-in-time recovery: which archived oplog to replay after the backup, and up to when.
#[derive(Debug, Clone)]
pub struct OplogReplay {
    /// The oplog archive (`<backupPath>/oplog`).
    pub path: BackupPath,
    /// Apply only entries before this time (mongorestore's `--oplogLimit`, exclusive).
    pub limit: Option<OplogTime>,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// Collections restored.
    pub collections: usize,
    /// Documents restored.
    pub documents: u64,
    /// Bytes of documents restored.
    pub bytes: u64,
    /// What the oplog replay did, when asked for.
    pub oplog: Option<ReplayReport>,
    /// How long it took.
    pub duration: Duration,
}

/// Restores the backup `options.from` into `options.dbpath`.
///
/// # Errors
/// Whatever verify finds; [`BackupError::TargetNotEmpty`] when `dbpath` holds anything and
/// `drop` is not set; a namespace the map makes invalid or makes twice; storage errors; a
/// collection whose count after loading is not the manifest's.
pub fn restore_backup(options: &RestoreOptions) -> Result<RestoreReport, BackupError> {
    let started = Instant::now();
    let (manifest, _) = verify_backup(&options.from, options.key.as_ref())?;
    let dbpath = &options.dbpath;
    if dbpath.as_os_str().is_empty() {
        return Err(BackupError::BadArgument("--dbpath must not be empty".to_owned()));
    }
    let empty = is_absent_or_empty(dbpath)?;
    if !empty && !options.drop {
        return Err(BackupError::TargetNotEmpty {
            path: dbpath.clone(),
            hint: " (pass --drop to replace the whole directory)",
        });
    }
    if !empty {
        refuse_if_in_use(dbpath)?;
    }
    if options.oplog_replay.is_some() && !options.namespaces.is_everything() {
        // The oplog's entries name the original namespaces; replaying them into a selection
        // or under new names would apply some changes and not others.
        return Err(BackupError::BadArgument(
            "--oplogReplay restores every namespace under its own name: it cannot be combined with --nsInclude, --nsExclude, --nsFrom or --nsTo".to_owned(),
        ));
    }
    let oplog_start = match (&options.oplog_replay, manifest.oplog_time) {
        (Some(_), None) => {
            return Err(BackupError::BadArgument(format!(
                "{} has no oplog time (it was taken from a server without an oplog, a standalone): --oplogReplay needs a backup of a replica-set member",
                options.from.display()
            )));
        }
        (_, start) => start,
    };
    if is_within(&options.from, dbpath) {
        return Err(BackupError::BadArgument(format!(
            "the backup {} is inside --dbpath {}",
            options.from.display(),
            dbpath.display()
        )));
    }
    let temp = sibling(dbpath, &format!(".restore-{}", std::process::id()));
    if temp.exists() {
        return Err(BackupError::TargetNotEmpty { path: temp, hint: " (left by an earlier restore: remove it)" });
    }
    let built = build(&manifest, options, oplog_start, &temp).and_then(|report| {
        sync_tree_dirs(&temp)?;
        swap_into_place(&temp, dbpath, empty)?;
        Ok(report)
    });
    match built {
        Ok(((collections, documents, bytes), oplog)) => {
            Ok(RestoreReport { collections, documents, bytes, oplog, duration: started.elapsed() })
        }
        Err(error) => {
            if temp.exists()
                && let Err(cleanup) = std::fs::remove_dir_all(&temp)
            {
                tracing::warn!(target: "STORAGE", path = %temp.display(), error = %cleanup, "Cannot remove a failed restore's directory");
            }
            Err(error)
        }
    }
}

/// Refuses to replace a data directory a running server holds (its lock file is locked).
fn refuse_if_in_use(dbpath: &Path) -> Result<(), BackupError> {
    let lock = dbpath.join("monarchd.lock");
    let Ok(file) = std::fs::OpenOptions::new().write(true).open(&lock) else { return Ok(()) };
    if file.try_lock().is_err() {
        return Err(BackupError::BadArgument(format!("{} is in use by a running server", dbpath.display())));
    }
    Ok(())
}

/// Moves the finished directory to `dbpath`; with `--drop`, the old directory is moved aside
/// first and removed once the new one is in place.
fn swap_into_place(temp: &Path, dbpath: &Path, empty: bool) -> Result<(), BackupError> {
    if empty {
        // Renaming over an empty directory replaces it; an absent one is simply created.
        std::fs::rename(temp, dbpath).map_err(|e| BackupError::io(dbpath, e))?;
        return sync_parent(dbpath);
    }
    let aside = sibling(dbpath, &format!(".replaced-{}", std::process::id()));
    std::fs::rename(dbpath, &aside).map_err(|e| BackupError::io(dbpath, e))?;
    if let Err(error) = std::fs::rename(temp, dbpath) {
        // Put the old directory back: a failed restore leaves the target as it was.
        let _ = std::fs::rename(&aside, dbpath);
        return Err(BackupError::io(dbpath, error));
    }
    sync_parent(dbpath)?;
    std::fs::remove_dir_all(&aside).map_err(|e| BackupError::io(&aside, e))
}

/// Collections, documents and bytes loaded.
type Loaded = (usize, u64, u64);

/// Builds the data directory at `temp`; returns the collections, documents and bytes loaded,
/// and what the oplog replay (from `oplog_start`) did.
fn build(
    manifest: &Manifest,
    options: &RestoreOptions,
    oplog_start: Option<OplogTime>,
    temp: &Path,
) -> Result<(Loaded, Option<ReplayReport>), BackupError> {
    let storage = Arc::new(Storage::open(temp)?);
    let mut totals = (0usize, 0u64, 0u64);
    for entry in &manifest.collections {
        let Some(target) = options.namespaces.map(&entry.namespace()) else { continue };
        let ns = Namespace::parse(&target).map_err(|e| {
            BackupError::BadArgument(format!("{} would be restored as {target}: {}", entry.namespace(), e.message()))
        })?;
        let (documents, bytes) = restore_collection(&storage, options, entry, &ns)?;
        totals = (totals.0 + 1, totals.1 + documents, totals.2 + bytes);
    }
    let replayed = match (&options.oplog_replay, oplog_start) {
        (Some(replay), Some(start)) => {
            Some(replay_archived(&storage, &replay.path, options.key.as_ref(), start, replay.limit)?)
        }
        _ => None,
    };
    // A replayed drop deletes its data on a thread of its own, which holds the storage open:
    // the deletion is finished here and the thread joined before the directory moves.
    storage.finish_drops()?;
    let storage = Arc::try_unwrap(storage)
        .map_err(|_| BackupError::Internal("the restored storage is still held open".to_owned()))?;
    // IMPORTANT: `flush` waits for the last sync but does not return its failure; a failed
    // sync disables writes, which `check_writable` reports: a restore whose data did not
    // reach the disk must not be renamed into place.
    storage.flush();
    storage.check_writable()?;
    Ok((totals, replayed))
}

/// Creates one collection, loads its documents, builds its indexes and checks its count.
fn restore_collection(
    storage: &Storage,
    options: &RestoreOptions,
    entry: &CollectionEntry,
    ns: &Namespace,
) -> Result<(u64, u64), BackupError> {
    let (from, key) = (&options.from, options.key.as_ref());
    let metadata_file = layout::metadata_path(&entry.db, &entry.collection);
    let metadata_path = from.join(&metadata_file);
    let bytes = read_plaintext(from, &metadata_file, key)?;
    let metadata = layout::parse_metadata(&bytes).map_err(|detail| BackupError::corrupt(&metadata_path, 0, detail))?;
    let collection = storage.create_collection(ns, metadata.options).map_err(|e| {
        BackupError::BadArgument(format!("cannot create {ns} (from {}): {}", entry.namespace(), e.message()))
    })?;
    let data_file = layout::data_path(&entry.db, &entry.collection);
    let data_path = from.join(&data_file);
    // Durable at the end: the whole directory is flushed before it is renamed.
    let mut batch = BatchedWriter::new(storage, &collection);
    let loaded = read_documents(from, &data_file, key, |offset, document| {
        batch.insert(document.to_owned()).map_err(|e| BackupError::corrupt(&data_path, offset, e.message()))
    })?;
    batch.flush()?;
    let existing: Vec<String> = collection.indexes().iter().map(|index| index.name.clone()).collect();
    let specs: Vec<_> = metadata
        .indexes
        .into_iter()
        .filter(|spec| spec.get_str("name").is_ok_and(|name| !existing.iter().any(|e| e == name)))
        .collect();
    if !specs.is_empty() {
        storage.create_indexes(ns, specs)?;
    }
    let (bytes, count) = storage.collection_size(&collection)?;
    if count != entry.documents || loaded != entry.documents {
        return Err(BackupError::corrupt(
            &data_path,
            0,
            format!("{ns} holds {count} documents after loading {loaded}, the manifest says {}", entry.documents),
        ));
    }
    Ok((count, bytes))
}

#[cfg(test)]
mod tests {
    use bson::{doc, rawdoc};

    use super::*;
    use crate::backup::{LocalDirectory, take_backup};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// A backup of `app.users` (100 documents, index `email_1`) and `app.tmp` (one document).
    fn backup(scratch: &Path) -> Result<PathBuf, Box<dyn std::error::Error>> {
        let storage = Storage::open(&scratch.join("source"))?;
        for (coll, count) in [("users", 100), ("tmp", 1)] {
            let collection = storage.collection_or_create(&Namespace::new("app", coll)?)?;
            let mut writer = storage.writer(&collection)?;
            for i in 0..count {
                writer.insert(rawdoc! { "_id": i, "email": format!("u{i}@x") })?;
            }
            writer.commit()?;
        }
        let spec = doc! { "v": 2, "key": { "email": 1 }, "name": "email_1", "unique": true };
        storage.create_indexes(&Namespace::new("app", "users")?, vec![spec])?;
        let dir = scratch.join("backup");
        take_backup(&storage, &mut LocalDirectory::create(&dir)?, &|| Ok(()), None)?;
        Ok(dir)
    }

    fn options(
        from: &Path,
        dbpath: &Path,
        include: &[&str],
        from_to: Option<(&str, &str)>,
    ) -> Result<RestoreOptions, BackupError> {
        let strings = |values: &[&str]| values.iter().map(|v| (*v).to_owned()).collect::<Vec<_>>();
        let (from_ns, to_ns) = from_to.map_or((vec![], vec![]), |(f, t)| (vec![f.to_owned()], vec![t.to_owned()]));
        Ok(RestoreOptions {
            from: from.to_path_buf(),
            dbpath: dbpath.to_path_buf(),
            namespaces: NamespaceMap::new(&strings(include), &[], &from_ns, &to_ns)?,
            drop: false,
            key: None,
            oplog_replay: None,
        })
    }

    #[test]
    fn restore_rebuilds_documents_and_indexes_under_new_names() -> TestResult {
        let scratch = tempfile::tempdir()?;
        let from = backup(scratch.path())?;
        let dbpath = scratch.path().join("restored");
        let report = restore_backup(&options(&from, &dbpath, &["app.users"], Some(("app.$c$", "copy.$c$")))?)?;
        assert_eq!((report.collections, report.documents), (1, 100));
        let storage = Storage::open(&dbpath)?;
        assert!(storage.collection(&Namespace::new("app", "users")?).is_none());
        assert!(storage.collection(&Namespace::new("copy", "tmp")?).is_none());
        let users = storage.collection(&Namespace::new("copy", "users")?).ok_or("copy.users")?;
        assert_eq!(storage.collection_size(&users)?.1, 100);
        let email = users.index("email_1").ok_or("email_1")?;
        assert_eq!(email.spec.get_bool("unique").ok(), Some(true));
        assert!(storage.validate_collection(&users)?.is_valid());
        Ok(())
    }

    #[test]
    fn restore_that_fails_leaves_nothing_behind() -> TestResult {
        let scratch = tempfile::tempdir()?;
        let from = backup(scratch.path())?;
        let dbpath = scratch.path().join("restored");
        // The second collection's new name is not a namespace: the first was already loaded.
        let failed = restore_backup(&options(&from, &dbpath, &[], Some(("app.users", "nodot")))?);
        assert!(
            matches!(&failed, Err(BackupError::BadArgument(m)) if m.contains("app.users would be restored as nodot")),
            "{failed:?}"
        );
        let left: Vec<_> =
            std::fs::read_dir(scratch.path())?.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
        let mut left = left;
        left.sort();
        assert_eq!(left, ["backup", "source"]);
        Ok(())
    }
}
