//! `monarchd --repair`: salvages what a damaged data directory still holds, as mongod's
//! `--repair` does, and says what was lost.
//!
//! Three passes, each on what the one before left:
//! 1. **Journals.** When the engine will not open because a journal file is damaged, each
//!    journal file is replayed on its own by a scratch engine, and each damaged one is cut
//!    just before its first damaged batch (the original is moved into the quarantine
//!    directory). fjall has no tolerant recovery mode and does not expose its journal reader,
//!    but it does drop an unfinished last batch, as a crash leaves it: so the longest prefix
//!    of the file that a scratch engine replays is found by bisection, and it ends inside the
//!    damaged batch. Every batch before it is kept; the damaged batch and every later one in
//!    that file are lost, where not yet flushed to table files.
//! 2. **Tables.** Every key of every keyspace is read. fjall checks each block's checksum when
//!    it loads it, so a damaged block fails the scan; the scan then looks for the first key
//!    past the damage it can read (a fresh range scan from a probe key fails while the probe
//!    lands in the damaged block, and succeeds past it: the probe is found by galloping, then
//!    bisecting) and carries on from there. If anything was unreadable, every readable key is
//!    copied into a fresh engine directory that replaces the damaged one (kept in the
//!    quarantine directory). Damage fjall reads when it opens a table (the table's table of
//!    contents, its metadata) stops the engine from opening at all: fjall cannot open a
//!    keyspace without one of its tables, so the repair stops there and says so.
//! 3. **Contents.** Catalog entries that do not parse are removed (and kept); documents
//!    that are not valid BSON or not stored under their own `_id` are removed (and kept);
//!    data of collections or indexes the catalog does not know is removed (documents kept);
//!    every index is rebuilt from the documents; each collection's stored count and size are
//!    recomputed. Then every collection is validated.
//!
//! Nothing the user wrote is deleted outright: what leaves the engine goes to
//! `<dbpath>/repair-<UTC time>/` (journal files and the old engine directory as they were,
//! removed documents and catalog entries as JSON lines with their bytes in hexadecimal).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use super::catalog::{self, Catalog};
use super::engine::{Engine, Space};
use super::index::ID_INDEX_ID;
use super::validate::{render_id, stored_document};
use super::{ENGINE_DIR, MemoryBudget, Storage, StorageError, TEMP_DIR, Totals, error, lock_dbpath, totals_key};

/// The keyspaces of the engine (see the module documentation of [`super`]).
const KEYSPACES: [&str; 3] = ["meta", "docs", "index"];
/// Where a fresh engine is built before it replaces a damaged one.
const NEW_ENGINE_DIR: &str = "engine.repair-new";
/// Keys written per batch when copying or rebuilding.
const BATCH: usize = 10_000;
/// Bytes written per batch when copying, at most (past one key).
const BATCH_BYTES: usize = 16 << 20;

/// What a repair did and found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// Where what was removed is kept; `None` when nothing was.
    pub quarantine: Option<PathBuf>,
    /// Journal files found damaged (each cut before its first damaged batch).
    pub journals: Vec<DamagedJournal>,
    /// Key ranges no scan could read, per keyspace.
    pub lost_ranges: Vec<LostRange>,
    /// Whether the engine directory was rebuilt from what the damaged one still held.
    pub engine_rebuilt: bool,
    /// Catalog entries removed because they do not parse (their keys, as text).
    pub catalog_entries_removed: Vec<String>,
    /// What was done to each collection, in namespace order.
    pub collections: Vec<CollectionRepair>,
    /// Collection ids whose documents no catalog entry accounts for, with their document count.
    pub orphaned_collections: Vec<(u64, u64)>,
    /// Index entries no index accounts for, removed.
    pub orphaned_index_entries: u64,
}

impl RepairReport {
    /// Whether anything was lost or removed.
    pub fn lost_anything(&self) -> bool {
        !self.journals.is_empty()
            || !self.lost_ranges.is_empty()
            || !self.catalog_entries_removed.is_empty()
            || !self.orphaned_collections.is_empty()
            || self.collections.iter().any(|c| c.documents_removed > 0 || c.count_before != c.count_after)
    }
}

/// A damaged journal file: its original is kept in the quarantine directory, and its place
/// holds its batches before the first damaged one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedJournal {
    /// The file.
    pub path: PathBuf,
    /// Its size (fjall preallocates journal files with zeros).
    pub bytes: u64,
    /// Its size without the trailing zeros: the bytes written.
    pub bytes_written: u64,
    /// The bytes kept: every batch before the first damaged one.
    pub bytes_kept: u64,
}

/// Keys a scan could not read: those after `after` and before `next`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostRange {
    /// `meta`, `docs` or `index`.
    pub keyspace: &'static str,
    /// The last key read before the damage (`None`: the keyspace's start).
    pub after: Option<Vec<u8>>,
    /// The first key read after it (`None`: nothing past the damage could be read).
    pub next: Option<Vec<u8>>,
    /// What the engine said.
    pub error: String,
}

/// What the repair did to one collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionRepair {
    /// The collection.
    pub ns: String,
    /// Valid documents kept.
    pub documents_kept: u64,
    /// Invalid documents removed (kept in the quarantine directory).
    pub documents_removed: u64,
    /// The stored document count before and after.
    pub count_before: u64,
    /// After: the documents kept.
    pub count_after: u64,
    /// The stored data size before, in bytes.
    pub bytes_before: u64,
    /// After.
    pub bytes_after: u64,
    /// Indexes rebuilt from the documents, with their entry counts before and after.
    pub indexes_rebuilt: Vec<(String, u64, u64)>,
}

/// Repairs the data directory `dbpath`: see the module documentation. Logs each step and a
/// summary; the storage is closed when it returns.
///
/// # Errors
/// [`StorageError::DbPathInUse`] while a server holds it; [`StorageError::Corrupt`] for
/// damage the repair cannot get past (a table file unreadable at open, a journal error no
/// single file accounts for, a unique index the remaining documents break, collections still
/// invalid afterwards); I/O and engine errors.
pub fn repair(dbpath: &Path, budget: MemoryBudget) -> Result<RepairReport, StorageError> {
    if !dbpath.is_dir() {
        return Err(StorageError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("dbpath ({}) does not exist", dbpath.display()),
        )));
    }
    let lock = lock_dbpath(dbpath)?;
    tracing::info!(target: "STORAGE", id = 7_000_420, dbpath = %dbpath.display(), "Repair started");
    check_no_interrupted_swap(dbpath)?;
    let engine_dir = dbpath.join(ENGINE_DIR);
    let mut report = RepairReport::default();
    let mut quarantine = Quarantine::new(dbpath);
    if engine_dir.exists() {
        let db = open_engine(dbpath, budget, &mut quarantine, &mut report)?;
        let db = salvage_tables(db, dbpath, budget, &mut quarantine, &mut report)?;
        remove_unreadable_catalog_entries(&db, &mut quarantine, &mut report)?;
        db.persist(PersistMode::SyncAll)?;
    }
    let storage = Storage::open_locked(dbpath, &super::EngineConfig::Fjall(budget), lock)?;
    storage.repair_contents(&mut quarantine, &mut report)?;
    let invalid = storage.validate_all()?;
    report.quarantine = quarantine.created.then(|| quarantine.dir.clone());
    log_summary(&report);
    if !invalid.is_empty() {
        return Err(StorageError::Corrupt {
            what: "data files",
            detail: format!("after the repair, validate still finds problems: {}", invalid.join("; ")),
        });
    }
    Ok(report)
}

/// Refuses a dbpath where a repair was interrupted between moving the damaged engine aside
/// and putting the one it built in its place: opening it would make a new, empty engine.
///
/// # Errors
/// [`StorageError::Corrupt`] saying what to rename.
pub(super) fn check_no_interrupted_swap(dbpath: &Path) -> Result<(), StorageError> {
    let (engine_dir, new_engine_dir) = (dbpath.join(ENGINE_DIR), dbpath.join(NEW_ENGINE_DIR));
    if engine_dir.exists() || !new_engine_dir.exists() {
        return Ok(());
    }
    Err(StorageError::Corrupt {
        what: "data files",
        detail: format!(
            "{} is missing and {} holds the engine an interrupted repair built; rename it to {} and run monarchd --repair again",
            engine_dir.display(),
            new_engine_dir.display(),
            engine_dir.display()
        ),
    })
}

/// Opens the engine, setting damaged journal files aside until it opens.
fn open_engine(
    dbpath: &Path,
    budget: MemoryBudget,
    quarantine: &mut Quarantine,
    report: &mut RepairReport,
) -> Result<Database, StorageError> {
    let engine_dir = dbpath.join(ENGINE_DIR);
    loop {
        let error = match budget.engine(&engine_dir).open() {
            Ok(db) => return Ok(db),
            Err(error) => error,
        };
        if !is_journal_error(&error) {
            let Some(damage) = error::damage(&engine_dir, &error) else { return Err(error.into()) };
            return Err(StorageError::Corrupt {
                what: "data files",
                detail: format!(
                    "{damage}; --repair cannot go on: fjall opens a keyspace only when every one of its table files opens, and cannot leave one out. Restore the data directory from a backup"
                ),
            });
        }
        let journals = journal_files(&engine_dir)?;
        let newest = journals.last().cloned();
        let scratch = ScratchEngine::new(&dbpath.join(TEMP_DIR).join("repair-journal-check"))?;
        let mut damaged = Vec::new();
        for journal in &journals {
            let bytes = std::fs::metadata(journal)?.len();
            if !scratch.replays(journal, bytes)? {
                damaged.push((journal.clone(), bytes));
            }
        }
        if damaged.is_empty() {
            return Err(StorageError::Corrupt {
                what: "data files",
                detail: format!(
                    "the journal cannot be replayed ({error}), yet each journal file replays on its own; restore the data directory from a backup"
                ),
            });
        }
        for (journal, bytes) in damaged {
            let kept_bytes = scratch.intact_batches(&journal, bytes)?;
            let written = written_length(&journal)?;
            let is_newest = newest.as_ref() == Some(&journal);
            let original = quarantine.take(&journal, "journal")?;
            copy_prefix(&original, &journal, kept_bytes)?;
            let meaning = if is_newest {
                "the batches from the damaged one to the end of this file are lost (the last writes before the server stopped, where not yet flushed to table files)"
            } else {
                "the batches from the damaged one to the end of this file are lost where not yet flushed to table files; newer journal files are replayed, so writes made after the lost ones are kept: a document may show a later change without an earlier one (indexes and counts are rebuilt below)"
            };
            tracing::warn!(
                target: "STORAGE",
                id = 7_000_421,
                file = %journal.display(),
                bytes,
                bytesKept = kept_bytes,
                bytesLost = written.saturating_sub(kept_bytes),
                newest = is_newest,
                originalKeptAs = %original.display(),
                lost = meaning,
                "Cut a damaged journal file before its first damaged batch"
            );
            report.journals.push(DamagedJournal {
                path: journal,
                bytes,
                bytes_written: written,
                bytes_kept: kept_bytes,
            });
        }
        scratch.remove()?;
    }
}

/// Whether the engine refused to open because of its journal.
fn is_journal_error(error: &fjall::Error) -> bool {
    matches!(
        error,
        fjall::Error::JournalRecovery(_)
            | fjall::Error::InvalidTrailer
            | fjall::Error::InvalidTag(_)
            | fjall::Error::Decompress(_)
    )
}

/// The journal files of `engine_dir`, oldest first (fjall numbers them in order).
fn journal_files(engine_dir: &Path) -> Result<Vec<PathBuf>, StorageError> {
    let mut journals: Vec<(u64, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(engine_dir)? {
        let path = entry?.path();
        let number = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".jnl"))
            .map(|stem| stem.parse::<u64>().unwrap_or(u64::MAX));
        if let Some(number) = number {
            journals.push((number, path));
        }
    }
    journals.sort();
    Ok(journals.into_iter().map(|(_, path)| path).collect())
}

/// A fresh, empty engine whose only journal file is replaced by the file under test: fjall
/// replays it when it opens (checking every batch; those of keyspaces the scratch engine does
/// not have are skipped), which tells whether the file replays, without reading its format.
struct ScratchEngine {
    dir: PathBuf,
}

impl ScratchEngine {
    fn new(dir: &Path) -> Result<Self, StorageError> {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::create_dir_all(dir)?;
        drop(Database::builder(dir).open()?);
        Ok(Self { dir: dir.to_path_buf() })
    }

    /// Whether fjall replays the first `length` bytes of `journal` without error. A cut
    /// through a batch is what a crash leaves: fjall drops that unfinished batch.
    fn replays(&self, journal: &Path, length: u64) -> Result<bool, StorageError> {
        for path in journal_files(&self.dir)? {
            std::fs::remove_file(path)?;
        }
        copy_prefix(journal, &self.dir.join("1.jnl"), length)?;
        match Database::builder(&self.dir).open() {
            Ok(db) => {
                drop(db);
                Ok(true)
            }
            Err(error) if is_journal_error(&error) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Finds the longest prefix of `journal` (of `length` bytes, which do not replay) that
    /// fjall replays: it ends inside the first damaged batch, which fjall drops as unfinished,
    /// after every batch before it. Found by bisection: a prefix replays until it holds the
    /// whole damaged batch, and never after.
    ///
    /// Returns the length of its batches before the damaged one: fjall cuts the unfinished
    /// batch off the copy it replayed, at the end of the last whole batch.
    fn intact_batches(&self, journal: &Path, length: u64) -> Result<u64, StorageError> {
        // fjall preallocates journal files with zeros: the bytes written end earlier.
        let written = written_length(journal)?;
        let mut bad = length;
        if written < length && !self.replays(journal, written)? {
            bad = written;
        }
        let mut good = 0;
        while bad - good > 1 {
            let middle = good + (bad - good) / 2;
            if self.replays(journal, middle)? {
                good = middle;
            } else {
                bad = middle;
            }
        }
        if !self.replays(journal, good)? {
            return Ok(0);
        }
        Ok(std::fs::metadata(self.dir.join("1.jnl"))?.len().min(good))
    }

    fn remove(self) -> std::io::Result<()> {
        std::fs::remove_dir_all(&self.dir)
    }
}

/// The length of `file` without its trailing zero bytes.
fn written_length(file: &Path) -> std::io::Result<u64> {
    use std::io::Read;
    let mut reader = std::fs::File::open(file)?;
    let mut buffer = vec![0u8; 1 << 20];
    let (mut offset, mut written) = (0u64, 0u64);
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            return Ok(written);
        }
        if let Some(last) = buffer.get(..n).and_then(|chunk| chunk.iter().rposition(|&b| b != 0)) {
            written = offset + last as u64 + 1;
        }
        offset += n as u64;
    }
}

/// Writes the first `length` bytes of `from` to a new file `to`, synced.
fn copy_prefix(from: &Path, to: &Path, length: u64) -> std::io::Result<()> {
    use std::io::Read;
    let mut source = std::fs::File::open(from)?.take(length);
    let mut target = std::fs::File::create(to)?;
    std::io::copy(&mut source, &mut target)?;
    target.sync_all()?;
    if let Some(parent) = to.parent() {
        sync_directory(parent)?;
    }
    Ok(())
}

/// Reads every key of every keyspace; when some cannot be read, copies every readable key
/// into a fresh engine that replaces the damaged one. Returns the engine to go on with.
fn salvage_tables(
    db: Database,
    dbpath: &Path,
    budget: MemoryBudget,
    quarantine: &mut Quarantine,
    report: &mut RepairReport,
) -> Result<Database, StorageError> {
    let options = || KeyspaceCreateOptions::default().max_memtable_size(budget.memtable_bytes);
    let mut lost = Vec::new();
    for name in KEYSPACES {
        let keyspace = db.keyspace(name, options)?;
        lost.extend(salvage_scan(name, &keyspace, |_, _| Ok(()))?);
    }
    if lost.is_empty() {
        return Ok(db);
    }
    for range in &lost {
        tracing::warn!(
            target: "STORAGE",
            id = 7_000_423,
            keyspace = range.keyspace,
            afterKey = range.after.as_deref().map(hex::encode).unwrap_or_else(|| "(start)".to_owned()),
            nextKey = range.next.as_deref().map(hex::encode).unwrap_or_else(|| "(end)".to_owned()),
            error = %range.error,
            "Keys between these two could not be read and are lost"
        );
    }
    let engine_dir = dbpath.join(ENGINE_DIR);
    let new_dir = dbpath.join(NEW_ENGINE_DIR);
    if new_dir.exists() {
        std::fs::remove_dir_all(&new_dir)?;
    }
    let mut copied = Vec::new();
    {
        let fresh = budget.engine(&new_dir).open()?;
        for name in KEYSPACES {
            let source = db.keyspace(name, options)?;
            let target = fresh.keyspace(name, options)?;
            let mut batch = fresh.batch();
            let (mut pending, mut pending_bytes, mut count) = (0, 0, 0u64);
            salvage_scan(name, &source, |key, value| {
                batch.insert(&target, key, value);
                pending += 1;
                pending_bytes += key.len() + value.len();
                count += 1;
                if pending == BATCH || pending_bytes >= BATCH_BYTES {
                    std::mem::replace(&mut batch, fresh.batch()).commit()?;
                    (pending, pending_bytes) = (0, 0);
                }
                Ok(())
            })?;
            batch.commit()?;
            copied.push((name, count));
        }
        fresh.persist(PersistMode::SyncAll)?;
    }
    drop(db);
    let kept = quarantine.take(&engine_dir, "")?;
    std::fs::rename(&new_dir, &engine_dir)?;
    sync_directory(dbpath)?;
    for (keyspace, keys) in copied {
        tracing::warn!(
            target: "STORAGE",
            id = 7_000_422,
            keyspace,
            keysCopied = keys,
            damagedEngineKeptAs = %kept.display(),
            "Copied the readable keys of a damaged engine into a fresh one"
        );
    }
    report.lost_ranges = lost;
    report.engine_rebuilt = true;
    Ok(budget.engine(&engine_dir).open()?)
}

/// Scans every key of `keyspace` in order, handing each readable one to `visit`; past a key
/// that cannot be read, goes on from the first readable key beyond the damage. Returns the
/// ranges skipped.
fn salvage_scan(
    name: &'static str,
    keyspace: &Keyspace,
    mut visit: impl FnMut(&[u8], &[u8]) -> Result<(), StorageError>,
) -> Result<Vec<LostRange>, StorageError> {
    let mut lost = Vec::new();
    let mut start: Vec<u8> = Vec::new();
    let mut last: Option<Vec<u8>> = None;
    let mut longest = 0;
    loop {
        let mut failure = None;
        for guard in keyspace.range(start.clone()..) {
            match guard.into_inner() {
                Ok((key, value)) => {
                    visit(&key, &value)?;
                    longest = longest.max(key.len());
                    last = Some(key.to_vec());
                }
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        let Some(error) = failure else { return Ok(lost) };
        let from = last.clone().unwrap_or_default();
        let resume = resume_point(keyspace, &from, longest.max(from.len()) + 8);
        let next = resume.as_ref().and_then(|probe| first_key_from(keyspace, probe));
        lost.push(LostRange { keyspace: name, after: last.clone(), next: next.clone(), error: error.to_string() });
        match next {
            Some(next) => start = next,
            None => return Ok(lost),
        }
    }
}

/// The first key at or after `from`, when it can be read.
fn first_key_from(keyspace: &Keyspace, from: &[u8]) -> Option<Vec<u8>> {
    keyspace.range(from.to_vec()..).next().and_then(|guard| guard.key().ok()).map(|key| key.to_vec())
}

/// Whether a scan starting at `from` reads its first key (or finds none) without error.
fn readable_from(keyspace: &Keyspace, from: &[u8]) -> bool {
    keyspace.range(from.to_vec()..).next().is_none_or(|guard| guard.key().is_ok())
}

/// The smallest probe key past `after` (within `width` bytes) from which a scan reads again:
/// a scan from any key up to the end of the damaged block fails (it starts in that block),
/// one from a key past it succeeds. Probes gallop away from `after` by doubling steps, then
/// bisect the last step. `None` when no key past the damage can be read.
fn resume_point(keyspace: &Keyspace, after: &[u8], width: usize) -> Option<Vec<u8>> {
    let mut low = after.to_vec();
    low.resize(width, 0);
    let mut high = None;
    for bit in 0..width * 8 {
        let Some(probe) = add_power_of_two(&low, bit) else { break };
        if readable_from(keyspace, &probe) {
            high = Some(probe);
            break;
        }
        low = probe;
    }
    let mut high = high?;
    loop {
        let middle = midpoint(&low, &high);
        if middle == low {
            return Some(high);
        }
        if readable_from(keyspace, &middle) {
            high = middle;
        } else {
            low = middle;
        }
    }
}

/// `number + 2^bit`, both big-endian of `number`'s width; `None` on overflow.
fn add_power_of_two(number: &[u8], bit: usize) -> Option<Vec<u8>> {
    let mut sum = number.to_vec();
    let mut position = sum.len().checked_sub(1 + bit / 8)?;
    let mut carry = 1u16 << (bit % 8);
    loop {
        let byte = sum.get_mut(position)?;
        let total = u16::from(*byte) + carry;
        *byte = (total & 0xff) as u8;
        carry = total >> 8;
        if carry == 0 {
            return Some(sum);
        }
        position = position.checked_sub(1)?;
    }
}

/// `(low + high) / 2`, big-endian numbers of one width.
fn midpoint(low: &[u8], high: &[u8]) -> Vec<u8> {
    let mut sum = vec![0u16; low.len()];
    let mut carry = 0u16;
    for ((slot, a), b) in sum.iter_mut().zip(low).zip(high).rev() {
        let total = u16::from(*a) + u16::from(*b) + carry;
        *slot = total & 0xff;
        carry = total >> 8;
    }
    // Shift the (width + 1)-byte sum `carry:sum` right by one bit.
    let mut out = Vec::with_capacity(sum.len());
    let mut high_bit = carry;
    for byte in sum {
        out.push(((high_bit << 7) | (byte >> 1)) as u8);
        high_bit = byte & 1;
    }
    out
}

/// Removes the catalog entries that do not parse (keeping their bytes), so the catalog loads.
fn remove_unreadable_catalog_entries(
    db: &Database,
    quarantine: &mut Quarantine,
    report: &mut RepairReport,
) -> Result<(), StorageError> {
    let meta = db.keyspace("meta", KeyspaceCreateOptions::default)?;
    let mut bad = Vec::new();
    for guard in meta.prefix([b'c']) {
        let (key, value) = guard.into_inner()?;
        if let Err(error) = Catalog::load(std::iter::once(value.to_vec()), 1) {
            bad.push((key, value, error.to_string()));
        }
    }
    for (key, value, error) in bad {
        let name = String::from_utf8_lossy(key.get(1..).unwrap_or_default()).into_owned();
        let line = serde_json::json!({ "namespace": name, "key": hex::encode(&key), "bytes": hex::encode(&value), "error": error });
        let file = quarantine.append("removed-catalog-entries.jsonl", &line)?;
        meta.remove(key)?;
        tracing::warn!(
            target: "STORAGE",
            id = 7_000_427,
            namespace = %name,
            %error,
            savedTo = %file.display(),
            "Removed a catalog entry that cannot be read; its collection's documents are kept as orphaned data"
        );
        report.catalog_entries_removed.push(name);
    }
    Ok(())
}

impl Storage {
    /// The third pass: orphaned data, invalid documents, indexes and counts.
    fn repair_contents(&self, quarantine: &mut Quarantine, report: &mut RepairReport) -> Result<(), StorageError> {
        self.remove_orphaned_data(quarantine, report)?;
        for collection in self.catalog.all() {
            tracing::info!(target: "STORAGE", id = 21027, namespace = %collection.ns, "Repairing collection");
            let repaired = self.repair_collection(&collection, quarantine, report)?;
            report.collections.push(repaired);
        }
        self.engine.persist()?;
        Ok(())
    }

    /// Removes documents, index entries and totals of ids no catalog entry (and no pending
    /// drop) accounts for; the documents are kept in the quarantine directory.
    fn remove_orphaned_data(&self, quarantine: &mut Quarantine, report: &mut RepairReport) -> Result<(), StorageError> {
        let collections = self.catalog.all();
        let pending = |kind: u8| -> Result<BTreeSet<[u8; 8]>, StorageError> {
            let mut ids = BTreeSet::new();
            for guard in self.engine.prefix(Space::Meta, [kind]) {
                let key = guard.key()?;
                if let Some(id) = key.get(1..9).and_then(|id| <[u8; 8]>::try_from(id).ok()) {
                    ids.insert(id);
                }
            }
            Ok(ids)
        };
        let mut known_collections = pending(b'd')?;
        known_collections.extend(collections.iter().map(|c| c.prefix()));
        let mut known_indexes = pending(b'i')?;
        for collection in &collections {
            known_indexes.extend(collection.indexes().iter().filter(|i| i.id != ID_INDEX_ID).map(|i| i.prefix()));
        }
        for prefix in unknown_prefixes(&self.engine, Space::Docs, &known_collections)? {
            let mut count = 0u64;
            for guard in self.engine.prefix(Space::Docs, prefix) {
                let (key, value) = guard.into_inner()?;
                let line = serde_json::json!({
                    "collectionId": u64::from_be_bytes(prefix).to_string(),
                    "key": hex::encode(&key),
                    "bytes": hex::encode(&value),
                });
                quarantine.append("orphaned-documents.jsonl", &line)?;
                count += 1;
            }
            self.delete_keys(Space::Docs, prefix)?;
            tracing::warn!(
                target: "STORAGE",
                id = 7_000_426,
                collectionId = u64::from_be_bytes(prefix),
                documents = count,
                savedTo = %quarantine.dir.join("orphaned-documents.jsonl").display(),
                "Removed documents no catalog entry accounts for"
            );
            report.orphaned_collections.push((u64::from_be_bytes(prefix), count));
        }
        for prefix in unknown_prefixes(&self.engine, Space::Index, &known_indexes)? {
            let count = self.engine.prefix(Space::Index, prefix).count() as u64;
            self.delete_keys(Space::Index, prefix)?;
            tracing::warn!(
                target: "STORAGE",
                id = 7_000_432,
                indexId = u64::from_be_bytes(prefix),
                entries = count,
                "Removed index entries no index accounts for"
            );
            report.orphaned_index_entries += count;
        }
        let stale_totals: Vec<_> = self
            .engine
            .prefix(Space::Meta, [b's'])
            .map(|guard| guard.key())
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|key| {
                key.get(1..9)
                    .and_then(|id| <[u8; 8]>::try_from(id).ok())
                    .is_none_or(|id| !collections.iter().any(|c| c.prefix() == id))
            })
            .collect();
        for key in stale_totals {
            self.engine.remove(Space::Meta, key)?;
        }
        Ok(())
    }

    /// Removes `collection`'s invalid documents, recomputes its totals and rebuilds its indexes.
    fn repair_collection(
        &self,
        collection: &super::Collection,
        quarantine: &mut Quarantine,
        report: &RepairReport,
    ) -> Result<CollectionRepair, StorageError> {
        let ns = collection.ns.full();
        let before = self.totals(collection).unwrap_or_default();
        self.log_lost_ranges(collection, report);
        let mut totals = Totals::default();
        let mut invalid = Vec::new();
        for guard in self.engine.prefix(Space::Docs, collection.prefix()) {
            let (key, value) = guard.into_inner()?;
            match stored_document(collection, &key, &value) {
                Ok(_) => totals = totals.apply(1, value.len() as i64),
                Err(reason) => {
                    let line = serde_json::json!({ "namespace": ns, "key": hex::encode(&key), "bytes": hex::encode(&value), "reason": reason });
                    let file = quarantine.append("removed-documents.jsonl", &line)?;
                    tracing::warn!(
                        target: "STORAGE",
                        id = 7_000_424,
                        namespace = %ns,
                        key = %hex::encode(&key),
                        reason,
                        savedTo = %file.display(),
                        "Removed a document that is not valid"
                    );
                    invalid.push(key);
                }
            }
        }
        for keys in invalid.chunks(BATCH) {
            let mut batch = self.engine.batch();
            for key in keys {
                batch.remove(Space::Docs, key.clone());
            }
            batch.commit().map_err(|e| self.engine_write_failed(e))?;
        }
        if totals != before {
            self.engine.insert(Space::Meta, totals_key(collection), totals.encode())?;
            tracing::warn!(
                target: "STORAGE",
                id = 7_000_425,
                namespace = %ns,
                countBefore = before.count,
                countAfter = totals.count,
                bytesBefore = before.bytes,
                bytesAfter = totals.bytes,
                "Corrected a collection's stored count and size"
            );
        }
        let mut rebuilt = Vec::new();
        for index in collection.indexes().iter().filter(|i| i.id != ID_INDEX_ID) {
            // IMPORTANT: built before the old entries go, so an index that cannot be rebuilt
            // (a unique index the documents break) is left as it was.
            let entries = self.build_entries(collection, index).map_err(|error| StorageError::Corrupt {
                what: "index",
                detail: format!("cannot rebuild index {} of {ns} from its documents: {error}", index.name),
            })?;
            let entries_before = self.engine.prefix(Space::Index, index.prefix()).count() as u64;
            self.delete_keys(Space::Index, index.prefix())?;
            let entries_after = entries.len() as u64;
            let mut batch = self.engine.batch();
            for (n, (key, value)) in entries.into_iter().enumerate() {
                batch.insert(Space::Index, key, value);
                if (n + 1) % BATCH == 0 {
                    std::mem::replace(&mut batch, self.engine.batch()).commit()?;
                }
            }
            batch.commit()?;
            tracing::info!(
                target: "STORAGE",
                id = 7_000_428,
                namespace = %ns,
                index = index.name,
                keysBefore = entries_before,
                keysAfter = entries_after,
                "Rebuilt an index from the documents"
            );
            rebuilt.push((index.name.clone(), entries_before, entries_after));
        }
        // The rebuild may have found an index multikey.
        self.engine.insert(Space::Meta, catalog::entry_key(&collection.ns), catalog::entry_value(collection)?)?;
        Ok(CollectionRepair {
            ns,
            documents_kept: totals.count,
            documents_removed: invalid.len() as u64,
            count_before: before.count,
            count_after: totals.count,
            bytes_before: before.bytes,
            bytes_after: totals.bytes,
            indexes_rebuilt: rebuilt,
        })
    }

    /// Says which of `collection`'s documents were in key ranges the salvage could not read.
    fn log_lost_ranges(&self, collection: &super::Collection, report: &RepairReport) {
        let prefix = collection.prefix();
        let own = |key: &Option<Vec<u8>>| key.as_deref().and_then(|k| k.get(..8)) == Some(prefix.as_slice());
        let id_at = |key: &Option<Vec<u8>>| -> Option<String> {
            let value = self.engine.get(Space::Docs, key.as_deref()?).ok()??;
            let doc = bson::RawDocument::from_bytes(&value).ok()?;
            Some(render_id(doc.get("_id").ok()??))
        };
        for range in report.lost_ranges.iter().filter(|r| r.keyspace == "docs") {
            let starts_before = range.after.as_deref().and_then(|k| k.get(..8)).is_none_or(|p| p <= prefix.as_slice());
            let ends_after = range.next.as_deref().and_then(|k| k.get(..8)).is_none_or(|p| p >= prefix.as_slice());
            if !(starts_before && ends_after) {
                continue;
            }
            let after = if own(&range.after) { id_at(&range.after) } else { None };
            let before = if own(&range.next) { id_at(&range.next) } else { None };
            tracing::warn!(
                target: "STORAGE",
                id = 7_000_431,
                namespace = %collection.ns,
                after = after.as_deref().unwrap_or("(the collection's first document)"),
                before = before.as_deref().unwrap_or("(the collection's last document)"),
                "Documents in a damaged block of a table file are lost"
            );
        }
    }

    /// Validates every collection; returns the problems found, one line per collection.
    fn validate_all(&self) -> Result<Vec<String>, StorageError> {
        let mut problems = Vec::new();
        for collection in self.catalog.all() {
            let report = self
                .validate_collection(&collection)
                .map_err(|e| StorageError::Corrupt { what: "collection", detail: e.to_string() })?;
            if !report.is_valid() {
                problems.push(format!("{}: {}", collection.ns, report.errors.join(", ")));
            }
        }
        Ok(problems)
    }
}

/// The 8-byte key prefixes of `keyspace` not in `known`, each found with one seek.
fn unknown_prefixes(engine: &Engine, space: Space, known: &BTreeSet<[u8; 8]>) -> Result<Vec<[u8; 8]>, StorageError> {
    let mut unknown = Vec::new();
    let mut from: Vec<u8> = Vec::new();
    while let Some(guard) = engine.range(space, from.clone()..).next() {
        let key = guard.key()?;
        let mut prefix = [0u8; 8];
        for (slot, byte) in prefix.iter_mut().zip(key.iter()) {
            *slot = *byte;
        }
        if !known.contains(&prefix) {
            unknown.push(prefix);
        }
        match u64::from_be_bytes(prefix).checked_add(1) {
            Some(next) => from = next.to_be_bytes().to_vec(),
            None => break,
        }
    }
    Ok(unknown)
}

/// Logs one summary line per collection and one for the whole repair.
fn log_summary(report: &RepairReport) {
    for c in &report.collections {
        tracing::info!(
            target: "STORAGE",
            id = 7_000_429,
            namespace = %c.ns,
            documentsKept = c.documents_kept,
            documentsRemoved = c.documents_removed,
            indexesRebuilt = c.indexes_rebuilt.len() as u64,
            countCorrected = c.count_before != c.count_after || c.bytes_before != c.bytes_after,
            countBefore = c.count_before,
            countAfter = c.count_after,
            "Repaired collection"
        );
    }
    let journals: Vec<String> = report
        .journals
        .iter()
        .map(|j| {
            format!(
                "{} ({} of {} bytes lost)",
                j.path.display(),
                j.bytes_written.saturating_sub(j.bytes_kept),
                j.bytes_written
            )
        })
        .collect();
    tracing::info!(
        target: "STORAGE",
        id = 7_000_430,
        dataLost = report.lost_anything(),
        journalFilesCut = journals.join(", "),
        engineRebuilt = report.engine_rebuilt,
        keyRangesLost = report.lost_ranges.len() as u64,
        documentsRemoved = report.collections.iter().map(|c| c.documents_removed).sum::<u64>(),
        catalogEntriesRemoved = report.catalog_entries_removed.len() as u64,
        orphanedCollections = report.orphaned_collections.len() as u64,
        orphanedIndexEntries = report.orphaned_index_entries,
        quarantine = report.quarantine.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "none".to_owned()),
        "Repair finished"
    );
}

/// `<dbpath>/repair-<UTC time>/`: where the repair keeps what it takes out of the engine.
/// Created on first use.
struct Quarantine {
    dir: PathBuf,
    created: bool,
}

impl Quarantine {
    fn new(dbpath: &Path) -> Self {
        let now = bson::DateTime::now().try_to_rfc3339_string().unwrap_or_default();
        // 2026-12-05T01:02:03.456Z -> 20261205T010203Z
        let stamp: String =
            now.split('.').next().unwrap_or_default().chars().filter(|c| *c != '-' && *c != ':').collect();
        let mut dir = dbpath.join(format!("repair-{stamp}Z"));
        let mut n = 2;
        while dir.exists() {
            dir = dbpath.join(format!("repair-{stamp}Z-{n}"));
            n += 1;
        }
        Self { dir, created: false }
    }

    fn ensure(&mut self) -> std::io::Result<()> {
        if !self.created {
            std::fs::create_dir_all(&self.dir)?;
            self.created = true;
        }
        Ok(())
    }

    /// Moves `path` (a file or a directory) into the quarantine directory's `under` folder;
    /// returns where it now is.
    fn take(&mut self, path: &Path, under: &str) -> std::io::Result<PathBuf> {
        self.ensure()?;
        let folder = self.dir.join(under);
        std::fs::create_dir_all(&folder)?;
        let target = folder.join(path.file_name().unwrap_or_default());
        std::fs::rename(path, &target)?;
        if let Some(parent) = path.parent() {
            sync_directory(parent)?;
        }
        Ok(target)
    }

    /// Appends `line` to the JSON-lines file `name`; returns its path.
    fn append(&mut self, name: &str, line: &serde_json::Value) -> std::io::Result<PathBuf> {
        self.ensure()?;
        let path = self.dir.join(name);
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        writeln!(file, "{line}")?;
        file.sync_data()?;
        Ok(path)
    }
}

/// Makes a rename in `dir` durable.
fn sync_directory(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use bson::{doc, rawdoc};

    use super::*;
    use crate::storage::{Namespace, document_key};

    #[test]
    fn repair_big_endian_arithmetic() {
        assert_eq!(add_power_of_two(&[0, 0xff], 0), Some(vec![1, 0]));
        assert_eq!(add_power_of_two(&[0, 0], 9), Some(vec![2, 0]));
        assert_eq!(add_power_of_two(&[0xff, 0xff], 0), None);
        assert_eq!(midpoint(&[0, 0], &[0, 4]), vec![0, 2]);
        assert_eq!(midpoint(&[0xff, 0xfe], &[0xff, 0xff]), vec![0xff, 0xfe]);
        assert_eq!(midpoint(&[0x80, 0], &[0xff, 0]), vec![0xbf, 0x80]);
    }

    /// Invalid documents, index entries lost or planted, wrong totals and orphaned data, made
    /// behind the storage's back, are all fixed; a second repair then finds nothing.
    #[test]
    fn repair_fixes_documents_indexes_and_counts() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let ns = Namespace::new("db", "c")?;
        {
            let storage = Storage::open(dir.path())?;
            let collection = storage.collection_or_create(&ns)?;
            let mut writer = storage.writer(&collection)?;
            for i in 0..100 {
                writer.insert(rawdoc! { "_id": i, "a": i % 7 })?;
            }
            writer.commit()?;
            storage.create_indexes(&ns, vec![doc! { "v": 2, "key": { "a": 1 }, "name": "a_1" }])?;
            let index = collection.index("a_1").ok_or("a_1")?;
            // One document's bytes damaged, one index entry lost, one planted.
            let key = document_key(&collection, bson::RawBsonRef::Int32(5));
            storage.engine.insert(Space::Docs, key, b"not bson".to_vec())?;
            let first = storage.engine.prefix(Space::Index, index.prefix()).next().ok_or("entry")?.key()?;
            storage.engine.remove(Space::Index, first.clone())?;
            let mut stray = first.to_vec();
            stray.push(0);
            storage.engine.insert(Space::Index, stray, [])?;
            // Documents of a collection the catalog does not know.
            let mut orphan = 999u64.to_be_bytes().to_vec();
            orphan.push(1);
            storage.engine.insert(Space::Docs, orphan, rawdoc! { "_id": 1 }.into_bytes())?;
            storage.engine.persist()?;
            assert!(!storage.validate_collection(&collection)?.is_valid());
        }
        let report = repair(dir.path(), MemoryBudget::split(MemoryBudget::MIN_BYTES))?;
        let quarantine = report.quarantine.clone().ok_or("a quarantine directory")?;
        assert_eq!(report.orphaned_collections, vec![(999, 1)]);
        let [c] = report.collections.as_slice() else { return Err("one collection".into()) };
        assert_eq!((c.documents_kept, c.documents_removed, c.count_before, c.count_after), (99, 1, 100, 99));
        assert_eq!(c.indexes_rebuilt, vec![("a_1".to_owned(), 100, 99)]);
        let removed = std::fs::read_to_string(quarantine.join("removed-documents.jsonl"))?;
        assert_eq!(removed.lines().count(), 1);
        assert!(removed.contains(&hex::encode(b"not bson")), "{removed}");
        assert_eq!(std::fs::read_to_string(quarantine.join("orphaned-documents.jsonl"))?.lines().count(), 1);

        let storage = Storage::open(dir.path())?;
        let collection = storage.collection(&ns).ok_or("collection")?;
        let validated = storage.validate_collection(&collection)?;
        assert!(validated.is_valid(), "{validated:?}");
        assert_eq!(validated.keys_per_index, vec![("_id_".to_owned(), 99), ("a_1".to_owned(), 99)]);
        assert_eq!(storage.collection_size(&collection)?.1, 99);
        drop(collection);
        drop(storage);

        let again = repair(dir.path(), MemoryBudget::split(MemoryBudget::MIN_BYTES))?;
        assert!(!again.lost_anything(), "{again:?}");
        assert_eq!(again.quarantine, None);
        Ok(())
    }

    /// A repair interrupted between moving the damaged engine aside and renaming the one it
    /// built: neither a server nor a repair opens the dbpath (either would make an empty
    /// engine), and both say what to rename.
    #[test]
    fn repair_interrupted_swap_keeps_everyone_out() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        drop(Storage::open(dir.path())?);
        std::fs::rename(dir.path().join(ENGINE_DIR), dir.path().join(NEW_ENGINE_DIR))?;
        for refusal in
            [Storage::open(dir.path()).err(), repair(dir.path(), MemoryBudget::split(MemoryBudget::MIN_BYTES)).err()]
        {
            let message = refusal.ok_or("refused")?.to_string();
            assert!(message.contains("holds the engine an interrupted repair built"), "{message}");
        }
        assert!(!dir.path().join(ENGINE_DIR).exists(), "no empty engine was made");
        Ok(())
    }
}
