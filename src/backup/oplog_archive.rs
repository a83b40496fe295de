//! The oplog archive, for point-in-time recovery (issue 19, point 9). While backups are
//! scheduled and the server keeps an oplog (replica-set mode), every `--backupOplogInterval`
//! the oplog's new entries are copied into `<backupPath>/oplog/oplog-<seconds>-<ordinal>`,
//! named by the time of the chunk's last entry. A chunk is written as a backup is (its one
//! collection `local.oplog.rs`, checksummed, encrypted under the backups' key, the manifest
//! last, verified once written); its manifest's `oplogChunk` says which entries it holds,
//! and chunks chain: each one's `after` is the previous one's `through`.
//!
//! A restore with `--oplogReplay` starts from the backup's `oplogTime` (the newest entry in
//! its snapshot), follows the chain and applies every entry after that time and before
//! `--oplogLimit`. When the oplog dropped entries before the archive took them (it is capped),
//! the next chunk starts a new chain without `after`, and a replay across that gap is refused
//! with the times on each side of it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bson::{RawDocumentBuf, Timestamp};

use super::crypto::BackupKey;
use super::error::BackupError;
use super::layout;
use super::location::BackupPath;
use super::manifest::{Manifest, OplogChunk, OplogTime};
use super::replay::Replayer;
use super::take::{commit_manifest, new_manifest, write_collection, write_to};
use super::verify::{read_documents, verify_backup};
use crate::storage::{Namespace, Storage};

/// The folder below `--backupPath` that holds the chunks.
pub const OPLOG_DIR: &str = "oplog";
/// The start of a chunk's name; the rest is its last entry's time.
const CHUNK_PREFIX: &str = "oplog-";
/// The most entry bytes one chunk holds (an archive run after a long pause writes several).
const CHUNK_BYTES: usize = 64 << 20;

/// The name of the chunk whose last entry is at `through`: fixed width, so names sort as
/// times do.
pub fn chunk_name(through: OplogTime) -> String {
    format!("{CHUNK_PREFIX}{:010}-{:010}", through.t, through.i)
}

/// The time of the last entry of the chunk named `name`; `None` for any other name.
pub fn chunk_through(name: &str) -> Option<OplogTime> {
    let (t, i) = name.strip_prefix(CHUNK_PREFIX)?.split_once('-')?;
    let digits = |s: &str| s.len() == 10 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(t) || !digits(i) {
        return None;
    }
    Some(OplogTime { t: t.parse().ok()?, i: i.parse().ok()? })
}

/// The oplog archive's figures, for `/metrics`.
#[derive(Debug, Default)]
pub struct OplogArchiveStats {
    archived_through_seconds: AtomicU64,
    entries: AtomicU64,
    failures: AtomicU64,
    gaps: AtomicU64,
}

/// A copy of [`OplogArchiveStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OplogArchiveFigures {
    /// The time (seconds) of the newest entry archived; 0 before the first.
    pub archived_through_seconds: u64,
    /// Entries archived since start.
    pub entries: u64,
    /// Archive runs that failed since start.
    pub failures: u64,
    /// Gaps since start: entries the oplog dropped before the archive took them.
    pub gaps: u64,
}

impl OplogArchiveStats {
    /// The figures now.
    pub fn figures(&self) -> OplogArchiveFigures {
        OplogArchiveFigures {
            archived_through_seconds: self.archived_through_seconds.load(Ordering::Relaxed),
            entries: self.entries.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            gaps: self.gaps.load(Ordering::Relaxed),
        }
    }

    /// Notes a failed archive run.
    pub fn record_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// Copies the oplog's new entries into chunks; remembers where the chain ends.
#[derive(Debug)]
pub struct OplogArchiver {
    /// `<backupPath>/oplog`.
    path: BackupPath,
    key: Option<BackupKey>,
    /// The newest entry archived (the chain's end); `None` before the first: the chain then
    /// starts at the oplog's oldest entry.
    through: Option<OplogTime>,
    /// Whether `through` was read from the archive (at the first run with an oplog).
    resumed: bool,
}

impl OplogArchiver {
    /// An archiver into `<backup_path>/oplog`, encrypting with `key`.
    pub fn new(backup_path: &BackupPath, key: Option<BackupKey>) -> Self {
        Self { path: backup_path.child(OPLOG_DIR), key, through: None, resumed: false }
    }

    /// Archives every entry written since the last run (nothing without an oplog); returns
    /// how many.
    ///
    /// # Errors
    /// Storage errors; the chunk's write or verification errors (the chunk is then not
    /// there, and the next run writes its entries again).
    pub fn archive(&mut self, storage: &Storage, stats: &OplogArchiveStats) -> Result<u64, BackupError> {
        if !storage.oplog.is_on() {
            return Ok(0);
        }
        if !self.resumed {
            // This archiver is the only writer of chunk names.
            for removed in self.path.remove_incomplete(|name| chunk_through(name).is_some())? {
                tracing::warn!(target: "STORAGE", id = 22124, path = %removed, "Removed an oplog chunk an interrupted run left");
            }
            // Without an archive, the chain starts at the oplog's oldest entry: every backup
            // taken within the oplog's window can then be replayed from.
            self.through = self.path.complete_children()?.iter().filter_map(|name| chunk_through(name)).max();
            self.resumed = true;
        }
        let mut after = self.through;
        if let (Some(at), Some(oldest)) = (after, storage.first_oplog_time()?)
            && OplogTime::from(oldest) > at
        {
            stats.gaps.fetch_add(1, Ordering::Relaxed);
            tracing::error!(target: "STORAGE", id = 22120, archivedThrough = %at, oldestEntry = %OplogTime::from(oldest), "The oplog dropped entries before they were archived: point-in-time recovery cannot cross this gap; a new chain starts at the oldest entry");
            after = None;
        }
        let mut archived = 0;
        loop {
            let from = after.map_or(Timestamp { time: 0, increment: 0 }, Timestamp::from);
            let entries = storage.oplog_entries_after(from, CHUNK_BYTES)?;
            let (Some(first), Some(last)) = (entries.first(), entries.last()) else { break };
            let chunk = OplogChunk { after, first: entry_time(first)?, through: entry_time(last)? };
            let count = entries.len() as u64;
            self.write_chunk(storage, entries, chunk)?;
            archived += count;
            after = Some(chunk.through);
            self.through = after;
            stats.entries.fetch_add(count, Ordering::Relaxed);
            stats.archived_through_seconds.store(u64::from(chunk.through.t), Ordering::Relaxed);
        }
        Ok(archived)
    }

    /// Writes and verifies one chunk; one that fails verification is removed.
    fn write_chunk(
        &self,
        storage: &Storage,
        entries: Vec<RawDocumentBuf>,
        chunk: OplogChunk,
    ) -> Result<(), BackupError> {
        let oplog = storage
            .collection(&Namespace::oplog())
            .ok_or_else(|| BackupError::Internal("the oplog is on but has no collection".to_owned()))?;
        let name = chunk_name(chunk.through);
        let mut target = self.path.create_target(&name)?;
        write_to(target.as_mut(), self.key.as_ref(), |target, encryption| {
            let collection = write_collection(&oplog, entries.into_iter().map(Ok), target, &|| Ok(()))?;
            let mut manifest = new_manifest(0, encryption, vec![collection])?;
            manifest.oplog_chunk = Some(chunk);
            commit_manifest(target, &manifest)?;
            Ok(manifest)
        })?;
        if let Err(error) = self.path.verify(&name, self.key.as_ref()) {
            if let Err(removal) = self.path.remove(&name) {
                tracing::warn!(target: "STORAGE", path = %self.path.display(&name), error = %removal, "Cannot remove an oplog chunk that failed verification");
            }
            return Err(error);
        }
        Ok(())
    }
}

/// An entry's `ts`.
fn entry_time(entry: &bson::RawDocument) -> Result<OplogTime, BackupError> {
    entry
        .get_timestamp("ts")
        .map(OplogTime::from)
        .map_err(|e| BackupError::Internal(format!("an oplog entry without its time: {e}")))
}

/// Removes the chunks no kept backup needs: those whose entries all precede the oldest
/// `oplogTime` among `kept` (the scheduled backups retention kept); returns how many.
///
/// # Errors
/// Reading the kept backups' manifests; listing or removing chunks.
pub fn prune_chunks(backup_path: &BackupPath, kept: &[String]) -> Result<usize, BackupError> {
    let mut oldest: Option<OplogTime> = None;
    for name in kept {
        if let Some(time) = backup_path.read_manifest(name)?.oplog_time {
            oldest = Some(oldest.map_or(time, |o| o.min(time)));
        }
    }
    let Some(oldest) = oldest else { return Ok(0) };
    let path = backup_path.child(OPLOG_DIR);
    let mut removed = 0;
    for name in path.complete_children()? {
        if chunk_through(&name).is_some_and(|through| through <= oldest) {
            path.remove(&name)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// Entries applied.
    pub entries: u64,
    /// The time of the last entry applied (the backup's own when none was).
    pub through: OplogTime,
    /// The time of the archive's last entry in the chain followed.
    pub archive_end: OplogTime,
}

/// Applies to `storage` the archived entries in `path` after `start` (a backup's
/// `oplogTime`) and before `limit` (all of them without one), each chunk verified first.
///
/// # Errors
/// [`BackupError::BadArgument`] when no chunk continues from `start` or a gap lies before
/// `limit`; what verify finds in a chunk; an entry that does not apply, by chunk file and
/// offset.
pub fn replay_archived(
    storage: &Arc<Storage>,
    path: &BackupPath,
    key: Option<&BackupKey>,
    start: OplogTime,
    limit: Option<OplogTime>,
) -> Result<ReplayReport, BackupError> {
    let chain = chain_from(path, start, limit)?;
    let mut replayer = Replayer::new(storage);
    let mut through = start;
    let data_file = layout::data_path("local", "oplog.rs");
    for (name, _) in &chain {
        path.with_local_copy(name, |dir| {
            verify_backup(dir, key)?;
            let data_path = dir.join(&data_file);
            let failed = |(offset, error): (u64, crate::error::Error)| {
                BackupError::corrupt(&data_path, offset, format!("cannot replay the entry: {}", error.message()))
            };
            read_documents(dir, &data_file, key, |offset, entry| {
                let time = entry_time(entry)?;
                if time <= start || limit.is_some_and(|limit| time >= limit) {
                    return Ok(());
                }
                replayer.apply(offset, entry).map_err(failed)?;
                through = time;
                Ok(())
            })?;
            // The chunk's last run, before the next chunk's offsets.
            replayer.finish().map_err(failed)
        })?;
    }
    let archive_end = chain.last().map_or(start, |(_, chunk)| chunk.through);
    Ok(ReplayReport { entries: replayer.applied(), through, archive_end })
}

/// The chunks to replay from `start` to `limit`, in order, checked to chain.
fn chain_from(
    path: &BackupPath,
    start: OplogTime,
    limit: Option<OplogTime>,
) -> Result<Vec<(String, OplogChunk)>, BackupError> {
    let mut names: Vec<(OplogTime, String)> = path
        .complete_children()?
        .into_iter()
        .filter_map(|name| Some((chunk_through(&name)?, name)))
        .filter(|(through, _)| *through > start)
        .collect();
    names.sort();
    let mut chain: Vec<(String, OplogChunk)> = Vec::new();
    for (_, name) in names {
        let manifest: Manifest = path.read_manifest(&name)?;
        let chunk = manifest.oplog_chunk.ok_or_else(|| BackupError::BadManifest {
            path: std::path::PathBuf::from(path.display(&name)),
            detail: "not an oplog chunk (no oplogChunk)".to_owned(),
        })?;
        let continues = match chain.last() {
            None => chunk.continues_from(start),
            Some((_, previous)) => chunk.after == Some(previous.through),
        };
        if !continues {
            let from = chain.last().map_or(start, |(_, previous)| previous.through);
            return Err(BackupError::BadArgument(format!(
                "the archived oplog in {path} has a gap: nothing continues from {from} (the next chunk, {name}, starts at {}); \
                 the oplog dropped entries before they were archived. Pass --oplogLimit {} or earlier to restore up to the gap",
                chunk.first,
                from.successor()
            )));
        }
        chain.push((name, chunk));
        // Every later entry is at `through`'s successor or after: none of them is before
        // such a limit.
        if limit.is_some_and(|limit| chunk.through.successor() >= limit) {
            break;
        }
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use bson::{doc, rawdoc};

    use super::*;
    use crate::backup::{
        BackupKey, LocalDirectory, NamespaceMap, OplogReplay, RestoreOptions, restore_backup, take_backup,
    };
    use crate::storage::Direction;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Every collection's documents, by namespace, as stored.
    fn contents(storage: &Storage) -> Vec<(String, Vec<RawDocumentBuf>)> {
        let view = storage.snapshot();
        let mut all: Vec<_> = storage
            .all_collections()
            .into_iter()
            .filter(|c| c.ns.db == "app")
            .map(|c| (c.ns.full(), view.scan(&c, Direction::Forward).filter_map(|d| d.ok()).collect()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    fn index_names(storage: &Storage, ns: &str) -> Vec<String> {
        let Some(collection) = Namespace::parse(ns).ok().and_then(|ns| storage.collection(&ns)) else {
            return Vec::new();
        };
        collection.indexes().iter().map(|i| i.name.clone()).collect()
    }

    fn restore(
        from: &Path,
        dbpath: &Path,
        oplog: &Path,
        limit: Option<OplogTime>,
    ) -> Result<crate::backup::RestoreReport, BackupError> {
        restore_backup(&RestoreOptions {
            from: from.to_path_buf(),
            dbpath: dbpath.to_path_buf(),
            namespaces: NamespaceMap::new(&[], &[], &[], &[])?,
            drop: false,
            key: None,
            oplog_replay: Some(OplogReplay { path: BackupPath::Local(oplog.to_path_buf()), limit }),
        })
    }

    /// A member's storage (an oplog of `oplog_bytes`) in `<scratch>/source`, and the backup
    /// path `<scratch>/backups`.
    fn source(scratch: &Path, oplog_bytes: u64) -> Result<(Arc<Storage>, BackupPath), Box<dyn std::error::Error>> {
        let storage = Arc::new(Storage::open(&scratch.join("source"))?);
        storage.start_oplog(Some(oplog_bytes))?;
        Ok((storage, BackupPath::Local(scratch.join("backups"))))
    }

    #[test]
    fn restore_replays_the_archived_oplog_up_to_the_limit() -> TestResult {
        let scratch = tempfile::tempdir()?;
        let (storage, backups) = source(scratch.path(), 64 << 20)?;
        let users_ns = Namespace::new("app", "users")?;
        let users = storage.collection_or_create(&users_ns)?;
        let mut writer = storage.writer(&users)?;
        for i in 0..10 {
            writer.insert(rawdoc! { "_id": i, "n": i, "tags": [1, 2], "sub": { "a": 1, "b": 2 } })?;
        }
        writer.commit()?;
        let (stats, mut archiver) = (OplogArchiveStats::default(), OplogArchiver::new(&backups, None));
        assert_eq!(archiver.archive(&storage, &stats)?, 11, "from the oldest entry: the create and 10 inserts");
        let backup = scratch.path().join("backups/backup-1");
        let taken = take_backup(&storage, &mut LocalDirectory::create(&backup)?, &|| Ok(()), None)?;
        assert_eq!(taken.manifest.oplog_time, storage.last_oplog_time()?.map(OplogTime::from));

        // After the backup: updates (as diffs), a replacement, a delete, inserts, an index.
        let mut writer = storage.writer(&users)?;
        writer.update(rawdoc! { "_id": 1, "n": 100, "tags": [1, 2, 3], "sub": { "a": 1 }, "new": true })?;
        writer.update(rawdoc! { "_id": 2, "tags": [9], "sub": { "a": 1, "b": 2 } })?;
        writer.replace(rawdoc! { "_id": 4, "replaced": "whole" })?;
        writer.delete(bson::RawBsonRef::Int32(3))?;
        for i in 10..15 {
            writer.insert(rawdoc! { "_id": i })?;
        }
        writer.commit()?;
        let n_1 = doc! { "v": 2, "key": { "n": 1 }, "name": "n_1" };
        storage.create_indexes(&users_ns, vec![n_1])?;
        assert!(archiver.archive(&storage, &stats)? > 0);
        let limit = storage.last_oplog_time()?.map(|ts| OplogTime::from(ts).successor()).ok_or("time")?;
        let at_limit = contents(&storage);

        // After the limit: a rename, a write under the new name, a drop.
        let people_ns = Namespace::new("app", "people")?;
        storage.rename_collection(&users_ns, &people_ns, false)?;
        let people = storage.collection(&people_ns).ok_or("people")?;
        let mut writer = storage.writer(&people)?;
        writer.insert(rawdoc! { "_id": 99 })?;
        writer.commit()?;
        let tmp_ns = Namespace::new("app", "tmp")?;
        storage.collection_or_create(&tmp_ns)?;
        storage.drop_collection(&tmp_ns)?;
        assert!(archiver.archive(&storage, &stats)? > 0);
        assert_eq!(stats.figures().gaps, 0);

        let oplog = scratch.path().join("backups").join(OPLOG_DIR);
        let to_limit = scratch.path().join("to-limit");
        let report = restore(&backup, &to_limit, &oplog, Some(limit))?;
        let replayed = report.oplog.ok_or("replay report")?;
        assert_eq!((replayed.entries, replayed.through.t), (10, limit.t), "9 writes and an index before the limit");
        let restored = Storage::open(&to_limit)?;
        assert_eq!(contents(&restored), at_limit);
        assert_eq!(index_names(&restored, "app.users"), ["_id_", "n_1"]);
        drop(restored);

        let to_end = scratch.path().join("to-end");
        restore(&backup, &to_end, &oplog, None)?;
        let restored = Storage::open(&to_end)?;
        assert_eq!(contents(&restored), contents(&storage));
        assert_eq!(index_names(&restored, "app.people"), ["_id_", "n_1"]);
        Ok(())
    }

    /// Inserts documents `ids` into `collection`, one batch.
    fn insert(
        storage: &Storage,
        collection: &Arc<crate::storage::Collection>,
        ids: std::ops::Range<i32>,
    ) -> TestResult {
        let mut writer = storage.writer(collection)?;
        for i in ids {
            writer.insert(rawdoc! { "_id": i, "pad": "x".repeat(200) })?;
        }
        writer.commit()?;
        Ok(())
    }

    #[test]
    fn archive_notes_entries_the_oplog_dropped_first_and_starts_a_new_chain() -> TestResult {
        let scratch = tempfile::tempdir()?;
        let (storage, backups) = source(scratch.path(), 16 * 1024)?;
        let collection = storage.collection_or_create(&Namespace::new("app", "c")?)?;
        let (stats, mut archiver) = (OplogArchiveStats::default(), OplogArchiver::new(&backups, None));
        insert(&storage, &collection, 0..5)?;
        archiver.archive(&storage, &stats)?;
        let before = scratch.path().join("backups/backup-1");
        take_backup(&storage, &mut LocalDirectory::create(&before)?, &|| Ok(()), None)?;
        // Far more than the 16 KiB oplog holds, between two runs.
        insert(&storage, &collection, 5..200)?;
        archiver.archive(&storage, &stats)?;
        assert_eq!(stats.figures().gaps, 1);
        let oplog = scratch.path().join("backups").join(OPLOG_DIR);
        let newest = archiver.through.ok_or("through")?;
        let chunk = Manifest::read(&oplog.join(chunk_name(newest)))?.oplog_chunk.ok_or("chunk")?;
        assert_eq!(chunk.after, None, "a new chain");
        let refused = restore(&before, &scratch.path().join("r1"), &oplog, None).err().map(|e| e.to_string());
        assert!(refused.as_deref().is_some_and(|m| m.contains("has a gap")), "{refused:?}");
        // A backup taken after the gap replays along the new chain.
        let after = scratch.path().join("backups/backup-2");
        take_backup(&storage, &mut LocalDirectory::create(&after)?, &|| Ok(()), None)?;
        insert(&storage, &collection, 200..203)?;
        archiver.archive(&storage, &stats)?;
        let report = restore(&after, &scratch.path().join("r2"), &oplog, None)?;
        assert_eq!(report.oplog.map(|r| r.entries), Some(3));
        assert_eq!(stats.figures().gaps, 1);
        Ok(())
    }

    #[test]
    fn archive_encrypts_chunks_and_prunes_those_no_kept_backup_needs() -> TestResult {
        let scratch = tempfile::tempdir()?;
        let key_file = scratch.path().join("key");
        std::fs::write(&key_file, [7u8; 32])?;
        let key = BackupKey::read(&key_file)?;
        let (storage, backups) = source(scratch.path(), 64 << 20)?;
        let collection = storage.collection_or_create(&Namespace::new("app", "c")?)?;
        let (stats, mut archiver) = (OplogArchiveStats::default(), OplogArchiver::new(&backups, Some(key.clone())));
        let mut taken = Vec::new();
        for round in 0..3 {
            insert(&storage, &collection, round * 10..round * 10 + 10)?;
            archiver.archive(&storage, &stats)?;
            let name = format!("backup-{round}");
            let dir = scratch.path().join("backups").join(&name);
            take_backup(&storage, &mut LocalDirectory::create(&dir)?, &|| Ok(()), Some(&key))?;
            taken.push(name);
        }
        let oplog = scratch.path().join("backups").join(OPLOG_DIR);
        let chunks = BackupPath::Local(oplog.clone()).complete_children()?;
        assert_eq!(chunks.len(), 3);
        let first = oplog.join(&chunks[0]);
        assert!(matches!(verify_backup(&first, None), Err(BackupError::WrongKey { .. })));
        verify_backup(&first, Some(&key))?;
        // Only the newest backup is kept: the chunks before its oplog time go.
        assert_eq!(prune_chunks(&backups, &taken[2..])?, 3);
        assert_eq!(prune_chunks(&backups, &taken[2..])?, 0);
        // Keeping the first keeps every chunk after its time.
        insert(&storage, &collection, 30..31)?;
        archiver.archive(&storage, &stats)?;
        assert_eq!(prune_chunks(&backups, &taken)?, 0);
        Ok(())
    }

    #[test]
    fn replay_refuses_to_cross_a_missing_chunk() -> TestResult {
        let scratch = tempfile::tempdir()?;
        let (storage, backups) = source(scratch.path(), 64 << 20)?;
        let collection = storage.collection_or_create(&Namespace::new("app", "c")?)?;
        let (stats, mut archiver) = (OplogArchiveStats::default(), OplogArchiver::new(&backups, None));
        archiver.archive(&storage, &stats)?;
        let backup = scratch.path().join("backups/backup-1");
        take_backup(&storage, &mut LocalDirectory::create(&backup)?, &|| Ok(()), None)?;
        let mut ends = Vec::new();
        for i in 0..3 {
            let mut writer = storage.writer(&collection)?;
            writer.insert(rawdoc! { "_id": i })?;
            writer.commit()?;
            archiver.archive(&storage, &stats)?;
            ends.push(storage.last_oplog_time()?.map(OplogTime::from).ok_or("time")?);
        }
        let oplog = scratch.path().join("backups").join(OPLOG_DIR);
        std::fs::remove_dir_all(oplog.join(chunk_name(ends[1])))?;
        let crossing = restore(&backup, &scratch.path().join("r1"), &oplog, None);
        let message = crossing.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains(&format!("nothing continues from {}", ends[0])), "{message}");
        assert!(message.contains(&format!("Pass --oplogLimit {} or earlier", ends[0].successor())), "{message}");
        assert!(!scratch.path().join("r1").exists(), "nothing half-restored");
        // Up to the gap, it restores.
        let before_gap = ends[0].successor();
        let report = restore(&backup, &scratch.path().join("r2"), &oplog, Some(before_gap))?;
        assert_eq!(report.oplog.map(|r| r.entries), Some(1));
        Ok(())
    }

    #[test]
    fn oplog_chunk_names_carry_their_time_and_sort_by_it() {
        let time = OplogTime { t: 1_764_000_000, i: 7 };
        assert_eq!(chunk_name(time), "oplog-1764000000-0000000007");
        assert_eq!(chunk_through(&chunk_name(time)), Some(time));
        assert!(chunk_name(OplogTime { t: 9, i: 99 }) < chunk_name(OplogTime { t: 10, i: 0 }));
        for other in ["oplog-1-2", "backup-20260101T000000.000Z", "oplog-1764000000-0000000007.partial"] {
            assert_eq!(chunk_through(other), None, "{other}");
        }
    }

    #[test]
    fn oplog_chunks_continue_from_a_time_inside_them() {
        let at = |t| OplogTime { t, i: 1 };
        let chained = OplogChunk { after: Some(at(10)), first: at(11), through: at(20) };
        assert!(chained.continues_from(at(10)) && chained.continues_from(at(15)));
        assert!(!chained.continues_from(at(9)) && !chained.continues_from(at(20)));
        let after_gap = OplogChunk { after: None, first: at(11), through: at(20) };
        assert!(!after_gap.continues_from(at(10)) && after_gap.continues_from(at(11)));
    }
}
