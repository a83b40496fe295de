//! The oplog: `local.oplog.rs`, the record of every change a replica-set member makes, in
//! mongod's entry shape (`op`, `ns`, `ui`, `o`, `o2`, `ts`, `t`, `v`, `wall`, and `lsid`,
//! `txnNumber`, `stmtId`, `prevOpTime` for a retryable write's statements).
//!
//! It is a capped collection with no indexes whose record id is the entry's `ts` (packed
//! `seconds << 32 | increment`), so its natural order is time order and a reader can seek to
//! a time. Entries are written in the same batch as the change they record: a writer hands
//! its entries to [`Oplog::append`], which gives them their times from the logical clock and
//! commits the batch, all under one lock, so entries become visible in time order and a
//! tailing reader never sees a later entry before an earlier one (mongod's "oplog holes"
//! cannot happen).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::engine::{Batch, LockedRead, SharedLock, Space};
use bson::raw::cstr;
use bson::{DateTime, Document, RawBsonRef, RawDocumentBuf, Timestamp, Uuid};

use super::catalog::Collection;
use super::clock::pack;
use super::history::{History, RecentViews, Unreadable};
use super::index::prefix_successor;
use super::{Namespace, ReadView, Storage, Totals, totals_key};
use crate::error::{Error, ErrorCode, Result};

/// The oplog's database, each member's own: changes to it are not recorded.
const OPLOG_DB: &str = "local";

/// mongod's default oplog size: 5% of the free disk space, at least 990 MB and at most 50 GB.
pub fn default_oplog_bytes(free_disk_bytes: u64) -> u64 {
    const MB: u64 = 1024 * 1024;
    (free_disk_bytes / 20).clamp(990 * MB, 50 * 1024 * MB)
}

/// Whether changes to `ns` are recorded: everything but the `local` database (each member's
/// own) and the profiler's collections, as in mongod.
pub fn is_logged(ns: &Namespace) -> bool {
    ns.db != OPLOG_DB && ns.coll != "system.profile"
}

/// The statement of a retryable write an entry records.
#[derive(Debug, Clone, Copy)]
pub struct Statement {
    /// The session (`lsid.id`).
    pub session: Uuid,
    /// Its transaction number.
    pub txn: i64,
    /// The statement id (`None` for a transaction's `applyOps`, which records many).
    pub stmt: Option<i32>,
}

/// One entry before it has a time: what changed.
#[derive(Debug)]
pub struct Entry {
    op: &'static str,
    ns: String,
    ui: Option<Uuid>,
    o: RawDocumentBuf,
    o2: Option<RawDocumentBuf>,
    statement: Option<Statement>,
    /// The documents before and after its changes, kept beside the entry for change streams
    /// when the collection has `changeStreamPreAndPostImages` enabled, by the change's index
    /// in the entry (0 for an entry of one change; a transaction's `applyOps` holds several).
    images: Vec<(u32, Images)>,
}

/// A change's pre-image (the document before an update, replacement or delete) and
/// post-image (after an update or replacement).
#[derive(Debug, Clone, Default)]
pub struct Images {
    /// The document before the change.
    pub pre: Option<RawDocumentBuf>,
    /// The document after the change.
    pub post: Option<RawDocumentBuf>,
}

impl Images {
    fn encode(&self) -> RawDocumentBuf {
        let mut stored = RawDocumentBuf::new();
        if let Some(pre) = &self.pre {
            stored.append(cstr!("pre"), RawBsonRef::Document(pre));
        }
        if let Some(post) = &self.post {
            stored.append(cstr!("post"), RawBsonRef::Document(post));
        }
        stored
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let stored = bson::RawDocument::from_bytes(bytes).map_err(|e| super::corrupt_document(&e))?;
        let image = |key: &str| stored.get_document(key).ok().map(bson::RawDocument::to_owned);
        Ok(Self { pre: image("pre"), post: image("post") })
    }
}

/// `{_id: id}`.
fn id_document(id: RawBsonRef<'_>) -> RawDocumentBuf {
    let mut document = RawDocumentBuf::new();
    document.append(cstr!("_id"), id);
    document
}

fn to_raw(document: &Document) -> Result<RawDocumentBuf> {
    RawDocumentBuf::try_from(document).map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))
}

impl Entry {
    /// An insert of `document` (`o2` holds its `_id`, as mongod's document key).
    pub(super) fn insert(collection: &Collection, document: &RawDocumentBuf, id: RawBsonRef<'_>) -> Self {
        Self::of(collection, "i", document.clone(), Some(id_document(id)))
    }

    /// An update of the document with `_id` `id`, as a `$v: 2` diff.
    pub(super) fn update(collection: &Collection, id: RawBsonRef<'_>, diff: &Document) -> Result<Self> {
        let mut o = RawDocumentBuf::new();
        o.append(cstr!("$v"), 2_i32);
        o.append(cstr!("diff"), RawBsonRef::Document(&to_raw(diff)?));
        Ok(Self::of(collection, "u", o, Some(id_document(id))))
    }

    /// A replacement of the document with `_id` `id` by `document`.
    pub(super) fn replace(collection: &Collection, document: &RawDocumentBuf, id: RawBsonRef<'_>) -> Self {
        Self::of(collection, "u", document.clone(), Some(id_document(id)))
    }

    /// A delete of the document with `_id` `id`.
    pub(super) fn delete(collection: &Collection, id: RawBsonRef<'_>) -> Self {
        Self::of(collection, "d", id_document(id), None)
    }

    /// A command (`op: "c"`) on database `db`: `o` is the command as mongod logs it
    /// (`{create: ...}`, `{drop: ...}`, `{renameCollection: ...}`, ...).
    ///
    /// # Errors
    /// 2 BadValue if `o` cannot be encoded.
    pub fn command(db: &str, ui: Option<Uuid>, o: &Document) -> Result<Self> {
        Ok(Self { op: "c", ns: format!("{db}.$cmd"), ui, o: to_raw(o)?, o2: None, statement: None, images: Vec::new() })
    }

    /// A no-op (`op: "n"`) carrying `msg`, as mongod writes at initiate and at each election.
    ///
    /// # Errors
    /// As [`Entry::command`].
    pub fn noop(msg: &str) -> Result<Self> {
        Ok(Self {
            op: "n",
            ns: String::new(),
            ui: None,
            o: to_raw(&bson::doc! { "msg": msg })?,
            o2: None,
            statement: None,
            images: Vec::new(),
        })
    }

    fn of(collection: &Collection, op: &'static str, o: RawDocumentBuf, o2: Option<RawDocumentBuf>) -> Self {
        Self { op, ns: collection.ns.full(), ui: Some(collection.uuid), o, o2, statement: None, images: Vec::new() }
    }

    /// The entry with the change's pre- and post-images kept beside it.
    pub(super) fn with_images(mut self, images: Images) -> Self {
        self.images = vec![(0, images)];
        self
    }

    /// A transaction's changes as mongod records them: command entries on `admin.$cmd`,
    /// `{applyOps: [{op, ns, ui, o, o2}, ...]}`, marked with the session's `statement`; a
    /// transaction too large for one entry is split as mongod splits it, every entry but the
    /// last marked `partialTxn: true`, the last with the `count` of changes.
    ///
    /// # Errors
    /// 257 TransactionTooLarge for one change that fits no entry.
    pub(super) fn apply_ops(entries: Vec<Entry>, statement: Option<Statement>) -> Result<Vec<Self>> {
        // What one entry may hold of changes, leaving room for the entry's own fields.
        const CHUNK_BYTES: usize = 16 * 1024 * 1024 - 64 * 1024;
        let count = entries.len();
        // Each chunk's changes, and the images of its changes by their index in it.
        type Chunk = (Vec<RawDocumentBuf>, Vec<(u32, Images)>);
        let mut chunks: Vec<Chunk> = vec![(Vec::new(), Vec::new())];
        let mut size = 0;
        for entry in entries {
            let op = entry.as_applied_op();
            let len = op.as_bytes().len();
            if size + len > CHUNK_BYTES && chunks.last().is_some_and(|(chunk, _)| !chunk.is_empty()) {
                chunks.push((Vec::new(), Vec::new()));
                size = 0;
            }
            size += len;
            if let Some((chunk, images)) = chunks.last_mut() {
                let index = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
                images.extend(entry.images.into_iter().map(|(_, kept)| (index, kept)));
                chunk.push(op);
            }
        }
        let last = chunks.len() - 1;
        let mut out = Vec::with_capacity(chunks.len());
        for (index, (chunk, images)) in chunks.into_iter().enumerate() {
            let mut ops = bson::RawArrayBuf::new();
            for op in &chunk {
                ops.push(RawBsonRef::Document(op));
            }
            let mut o = RawDocumentBuf::new();
            o.append(cstr!("applyOps"), RawBsonRef::Array(&ops));
            if index < last {
                o.append(cstr!("partialTxn"), true);
            } else if last > 0 {
                o.append(cstr!("count"), i64::try_from(count).unwrap_or(i64::MAX));
            }
            // mongod's internal object limit (16 MB + 16 KB), which every entry must fit.
            const MAX_INTERNAL_OBJECT: usize = 16_793_600;
            if o.as_bytes().len() > MAX_INTERNAL_OBJECT {
                return Err(Error::new(
                    ErrorCode::TransactionTooLarge,
                    format!(
                        "Total size of all transaction operations must be less than {MAX_INTERNAL_OBJECT}. Actual size is {}",
                        o.as_bytes().len()
                    ),
                ));
            }
            out.push(Self { op: "c", ns: "admin.$cmd".to_owned(), ui: None, o, o2: None, statement, images });
        }
        Ok(out)
    }

    /// The change as an `applyOps` element: `{op, ns, ui, o, o2}`.
    fn as_applied_op(&self) -> RawDocumentBuf {
        let mut op = RawDocumentBuf::new();
        self.append_change(&mut op);
        op
    }

    /// Appends what changed: `op`, `ns`, `ui`, `o` and `o2`.
    fn append_change(&self, to: &mut RawDocumentBuf) {
        to.append(cstr!("op"), self.op);
        to.append(cstr!("ns"), self.ns.as_str());
        if let Some(ui) = self.ui {
            to.append(cstr!("ui"), bson::Binary::from_uuid(ui));
        }
        to.append(cstr!("o"), RawBsonRef::Document(&self.o));
        if let Some(o2) = &self.o2 {
            to.append(cstr!("o2"), RawBsonRef::Document(o2));
        }
    }

    /// Marks the entry as a retryable write's statement, unless it is marked already.
    pub(super) fn mark_statement(&mut self, statement: Statement) {
        self.statement.get_or_insert(statement);
    }

    /// The entry as stored, at `ts` in term `term`; `prev` is the time of the entry before
    /// it of the same retryable write or transaction, in the same batch.
    fn encode(&self, ts: Timestamp, term: i64, wall: DateTime, prev: Option<Timestamp>) -> RawDocumentBuf {
        let mut entry = RawDocumentBuf::new();
        if let Some(statement) = self.statement {
            let mut lsid = RawDocumentBuf::new();
            lsid.append(cstr!("id"), bson::Binary::from_uuid(statement.session));
            entry.append(cstr!("lsid"), RawBsonRef::Document(&lsid));
            entry.append(cstr!("txnNumber"), statement.txn);
        }
        self.append_change(&mut entry);
        if let Some(stmt) = self.statement.and_then(|statement| statement.stmt) {
            entry.append(cstr!("stmtId"), stmt);
        }
        entry.append(cstr!("ts"), ts);
        entry.append(cstr!("t"), term);
        entry.append(cstr!("v"), 2_i64);
        entry.append(cstr!("wall"), wall);
        if self.statement.is_some() {
            // As mongod: the entries of one retryable write (or of a transaction split over
            // several) chain back to the first, whose `prevOpTime` is the null optime.
            let mut previous = RawDocumentBuf::new();
            previous.append(cstr!("ts"), prev.unwrap_or(Timestamp { time: 0, increment: 0 }));
            previous.append(cstr!("t"), if prev.is_some() { term } else { -1_i64 });
            entry.append(cstr!("prevOpTime"), RawBsonRef::Document(&previous));
        }
        entry
    }
}

/// The oplog of this member: off on a standalone and before `replSetInitiate`.
#[derive(Debug)]
pub struct Oplog {
    /// Read by every writer without the lock.
    on: AtomicBool,
    /// The term entries are written in.
    term: AtomicI64,
    /// `minSnapshotHistoryWindowInSeconds`: how long snapshot reads can go back.
    history_window: AtomicU64,
    active: Mutex<Option<Active>>,
}

impl Default for Oplog {
    fn default() -> Self {
        Self {
            on: AtomicBool::new(false),
            term: AtomicI64::new(0),
            history_window: AtomicU64::new(DEFAULT_HISTORY_WINDOW_SECS),
            active: Mutex::new(None),
        }
    }
}

/// mongod's default `minSnapshotHistoryWindowInSeconds`.
pub const DEFAULT_HISTORY_WINDOW_SECS: u64 = 300;

#[derive(Debug)]
struct Active {
    collection: Arc<Collection>,
    totals: Totals,
    size: u64,
    /// The key of the last entry trimmed: the oldest is after it.
    trimmed_to: Option<Vec<u8>>,
    /// Which instant each logged commit's time made current (snapshot reads at a time).
    history: History,
    /// On an engine without history: the views snapshot reads of "now" opened.
    recent: RecentViews,
}

/// The `meta` key of the images of the change at index `op_index` of the entry recorded at
/// `ts` (the index is left out for the first: a key of the entry's time alone, which is also
/// the prefix of every key of the entry).
fn images_key(ts: Timestamp, op_index: u32) -> Vec<u8> {
    let mut key = super::meta_key(b'p', &pack(ts).to_be_bytes());
    if op_index > 0 {
        key.extend_from_slice(&op_index.to_be_bytes());
    }
    key
}

/// Whether the stored oplog entry `stored` is a transaction's `applyOps`, whose changes may
/// each have images.
fn holds_several_changes(stored: &[u8]) -> bool {
    let entry = bson::RawDocument::from_bytes(stored).ok();
    entry.and_then(|e| e.get_document("o").ok()).is_some_and(|o| o.get("applyOps").ok().flatten().is_some())
}

/// The time of the oplog entry stored at `key`.
fn time_of(key: &[u8]) -> Timestamp {
    let packed = key.get(8..).and_then(|r| <[u8; 8]>::try_from(r).ok()).map_or(0, u64::from_be_bytes);
    Timestamp { time: (packed >> 32) as u32, increment: packed as u32 }
}

/// The oplog's key of the entry at `ts`.
pub(super) fn entry_key(collection: &Collection, ts: Timestamp) -> Vec<u8> {
    let mut key = collection.prefix().to_vec();
    key.extend_from_slice(&pack(ts).to_be_bytes());
    key
}

impl Oplog {
    /// Whether changes are recorded now.
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }

    /// Sets the term of the entries written from now on (each election).
    pub fn set_term(&self, term: i64) {
        self.term.store(term, Ordering::Release);
    }

    fn lock(&self) -> MutexGuard<'_, Option<Active>> {
        self.active.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `minSnapshotHistoryWindowInSeconds`.
    pub fn history_window(&self) -> Duration {
        Duration::from_secs(self.history_window.load(Ordering::Relaxed))
    }

    /// Sets `minSnapshotHistoryWindowInSeconds` (from the next commit on).
    pub fn set_history_window(&self, seconds: u64) {
        self.history_window.store(seconds, Ordering::Relaxed);
    }
}

impl Storage {
    /// Starts recording changes in `local.oplog.rs` (once; later calls do nothing), creating
    /// it with `size` bytes, or mongod's default size for the free space under the dbpath, if
    /// it does not exist (a stored oplog keeps the size it was created with, as in mongod).
    ///
    /// # Errors
    /// Storage errors.
    pub fn start_oplog(&self, size: Option<u64>) -> Result<()> {
        if self.oplog.is_on() {
            return Ok(());
        }
        // Nodes sharing the database share one oplog: another may be creating it now.
        let _ddl = self.ddl_lock()?;
        let ns = Namespace::oplog();
        let size = size.unwrap_or_else(|| {
            let dbpath = self.temp_dir.parent().unwrap_or(&self.temp_dir);
            let free = super::disk::available_bytes(dbpath).unwrap_or(0);
            default_oplog_bytes(free)
        });
        let collection = match self.collection(&ns) {
            Some(collection) => collection,
            None => {
                let size = i64::try_from(size.div_ceil(256) * 256).unwrap_or(i64::MAX);
                self.create_locked(&ns, bson::doc! { "capped": true, "size": size })?
            }
        };
        let size = collection.capped.map_or(size, |capped| capped.size);
        let totals = self.totals(&collection)?;
        *self.oplog.lock() = Some(Active {
            collection,
            totals,
            size,
            trimmed_to: None,
            history: History::default(),
            recent: RecentViews::default(),
        });
        self.oplog.on.store(true, Ordering::Release);
        Ok(())
    }

    /// The latest entry's time, if the oplog has one (what the clock resumes from at start).
    ///
    /// # Errors
    /// Storage errors.
    pub fn last_oplog_time(&self) -> Result<Option<Timestamp>> {
        let ns = Namespace::oplog();
        let Some(collection) = self.collection(&ns) else { return Ok(None) };
        self.last_time_in(&collection)
    }

    /// The time of the latest entry stored in the oplog `collection`.
    fn last_time_in(&self, collection: &Collection) -> Result<Option<Timestamp>> {
        let Some(guard) = self.engine.prefix(Space::Docs, collection.prefix()).next_back() else { return Ok(None) };
        Ok(Some(time_of(&guard.key()?)))
    }

    /// Moves the cluster time up to the latest oplog entry, when other nodes share the
    /// database and may have written it (nothing otherwise): what "now" means to a change
    /// stream opened on this node.
    ///
    /// # Errors
    /// Storage errors.
    pub fn catch_up_with_other_nodes(&self) -> Result<()> {
        if self.engine.is_shared()
            && let Some(last) = self.last_oplog_time()?
        {
            self.clock.advance_to(last);
        }
        Ok(())
    }

    /// The oldest entry's time, if the oplog has one (what a change stream can resume from).
    ///
    /// # Errors
    /// Storage errors.
    pub fn first_oplog_time(&self) -> Result<Option<Timestamp>> {
        let ns = Namespace::oplog();
        let Some(collection) = self.collection(&ns) else { return Ok(None) };
        let Some(guard) = self.engine.prefix(Space::Docs, collection.prefix()).next() else { return Ok(None) };
        Ok(Some(time_of(&guard.key()?)))
    }

    /// The oplog's entries after `after`, as stored, in time order: as many as fit in
    /// `max_bytes`, and at least one when there is one (what the backup scheduler archives).
    /// Entries are committed in time order, so no entry earlier than the last one returned
    /// can appear later.
    ///
    /// # Errors
    /// Storage errors.
    pub fn oplog_entries_after(&self, after: Timestamp, max_bytes: usize) -> Result<Vec<RawDocumentBuf>> {
        use std::ops::Bound;
        let Some(collection) = self.collection(&Namespace::oplog()) else { return Ok(Vec::new()) };
        let end = prefix_successor(&collection.prefix()).unwrap_or_default();
        let range = (Bound::Excluded(entry_key(&collection, after)), Bound::Excluded(end));
        let (mut entries, mut bytes) = (Vec::new(), 0);
        for guard in self.engine.range(Space::Docs, range) {
            let value = guard.value()?;
            if !entries.is_empty() && bytes + value.len() > max_bytes {
                break;
            }
            bytes += value.len();
            entries.push(RawDocumentBuf::from_bytes(value.to_vec()).map_err(|e| super::corrupt_document(&e))?);
        }
        Ok(entries)
    }

    /// The pre- and post-images kept with the change at index `op_index` of the entry
    /// recorded at `ts`, if any.
    ///
    /// # Errors
    /// Storage errors.
    pub fn change_images(&self, ts: Timestamp, op_index: u32) -> Result<Option<Images>> {
        match self.engine.get(Space::Meta, images_key(ts, op_index))? {
            Some(bytes) => Ok(Some(Images::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Commits `batch` with `entries` appended to the oplog (when it is on), each with the
    /// next cluster time; trims the oldest entries past the oplog's size in the same batch.
    /// Returns the time of the last entry written.
    ///
    /// # Errors
    /// Storage errors: nothing is committed.
    pub(super) fn commit_logged(&self, mut batch: Batch, entries: &[Entry]) -> Result<Option<Timestamp>> {
        if entries.is_empty() || !self.oplog.is_on() {
            batch.commit().map_err(|e| self.engine_write_failed(e))?;
            return Ok(None);
        }
        let mut active = self.oplog.lock();
        let Some(oplog) = active.as_mut() else {
            batch.commit().map_err(|e| self.engine_write_failed(e))?;
            return Ok(None);
        };
        // Nodes sharing the database append to one oplog: one commit at a time, after the
        // latest entry any of them wrote, with the totals and trimming point as stored.
        let (prefix, totals_at) = (oplog.collection.prefix(), super::totals_key(&oplog.collection));
        let reads = [LockedRead::LastKey(Space::Docs, &prefix), LockedRead::Get(Space::Meta, &totals_at)];
        let shared = self.engine.lock_reading(SharedLock::Oplog, &reads)?.map(|(lock, read)| {
            let [last, totals] = <[Option<Vec<u8>>; 2]>::try_from(read).unwrap_or_default();
            (lock, last, totals)
        });
        if let Some((_, last, totals)) = &shared {
            if let Some(last) = last {
                self.clock.advance_to(time_of(last));
            }
            oplog.totals = totals.as_deref().map_or(Ok(super::Totals::default()), super::Totals::decode)?;
            oplog.trimmed_to = None;
        }
        let term = self.oplog.term.load(Ordering::Acquire);
        let wall = DateTime::now();
        let mut totals = oplog.totals;
        let mut last = None;
        // The last entry of each retryable write or transaction in this batch, for the chain.
        let mut chained: Option<((Uuid, i64), Timestamp)> = None;
        for entry in entries {
            let ts = self.clock.tick();
            let write = entry.statement.map(|statement| (statement.session, statement.txn));
            let prev = chained.filter(|(of, _)| Some(*of) == write).map(|(_, at)| at);
            chained = write.map(|write| (write, ts));
            let stored = entry.encode(ts, term, wall, prev);
            totals = totals.apply(1, stored.as_bytes().len() as i64);
            batch.insert(Space::Docs, entry_key(&oplog.collection, ts), stored.as_bytes());
            for (op_index, images) in &entry.images {
                batch.insert(Space::Meta, images_key(ts, *op_index), images.encode().as_bytes());
            }
            last = Some(ts);
        }
        let mut trimmed_to = oplog.trimmed_to.clone();
        if totals.bytes > oplog.size {
            let prefix = oplog.collection.prefix();
            let start = trimmed_to.clone().unwrap_or_else(|| prefix.to_vec());
            let end = prefix_successor(&prefix).unwrap_or_default();
            for guard in self.engine.range(Space::Docs, start..end) {
                if totals.bytes <= oplog.size {
                    break;
                }
                let (key, value) = guard.into_inner()?;
                if trimmed_to.as_deref() == Some(key.as_ref()) {
                    continue;
                }
                batch.remove(Space::Docs, key.to_vec());
                let images = images_key(time_of(&key), 0);
                if holds_several_changes(&value) {
                    for kept in self.engine.prefix(Space::Meta, &images) {
                        batch.remove(Space::Meta, kept.key()?);
                    }
                } else if self.engine.contains(Space::Meta, &images)? {
                    batch.remove(Space::Meta, images);
                }
                totals = totals.apply(-1, -(value.len() as i64));
                trimmed_to = Some(key.to_vec());
            }
        }
        batch.insert(Space::Meta, totals_key(&oplog.collection), totals.encode());
        batch.commit().map_err(|e| self.engine_write_failed(e))?;
        drop(shared);
        oplog.totals = totals;
        oplog.trimmed_to = trimmed_to;
        // PostgreSQL cannot open a snapshot in the past: it keeps no history, and a read at
        // an earlier time gets 239 SnapshotTooOld.
        if let Some(last) = last.filter(|_| self.engine.reads_at_past_instants()) {
            let clock = (std::time::Instant::now(), self.oplog.history_window());
            oplog.history.record(last, self.engine.visible_instant(), clock, || self.engine.snapshot());
        }
        drop(active);
        self.capped_inserts.notify();
        Ok(last)
    }

    /// A snapshot read's view and the cluster time it reads at: `at`, as the history kept
    /// it, or now (`None`). The oplog's lock is held while it looks: every time handed out
    /// before is then committed and recorded.
    ///
    /// # Errors
    /// 239 SnapshotTooOld for a time before the oldest the history keeps (or before the
    /// member started recording, when the history is new).
    pub fn snapshot_at(&self, at: Option<Timestamp>) -> Result<(ReadView, Timestamp)> {
        let mut active = self.oplog.lock();
        let now = self.clock.now();
        let keeps_history = self.engine.reads_at_past_instants();
        let Some(at) = at.filter(|at| pack(*at) < pack(now)) else {
            // A snapshot read's later requests read it again: it outlives this one.
            let view = self.snapshot().pinned();
            if let Some(oplog) = active.as_mut().filter(|_| !keeps_history) {
                oplog.recent.remember(now, &view, std::time::Instant::now());
            }
            return Ok((view, now));
        };
        let history = active.as_ref().map(|oplog| oplog.history.instant_at(at));
        // Without history, only the time a kept view reads at is readable.
        let recent = active
            .as_mut()
            .filter(|_| !keeps_history)
            .and_then(|oplog| oplog.recent.get(at, std::time::Instant::now()));
        if let Some(view) = recent {
            return Ok((view, at));
        }
        match history {
            Some(Ok((anchor, instant))) => Ok((ReadView::at(anchor, instant), at)),
            None | Some(Err(Unreadable::TooOld)) => {
                let oldest = active.as_ref().and_then(|oplog| oplog.history.oldest());
                Err(Error::new(
                    ErrorCode::SnapshotTooOld,
                    format!(
                        "Read timestamp {} is older than the oldest available timestamp{}.",
                        super::clock::shown(at),
                        oldest.map(|oldest| format!(" ({})", super::clock::shown(oldest))).unwrap_or_default()
                    ),
                ))
            }
        }
    }

    /// Records the command `o` on database `db` on its own (`dropDatabase`, once its
    /// collections' drops are recorded), when the oplog is on and `db` is not `local`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn log_command(&self, db: &str, o: &Document) -> Result<()> {
        if !self.oplog.is_on() || db == OPLOG_DB {
            return Ok(());
        }
        self.log(Entry::command(db, None, o)?)
    }

    /// Writes `entry` on its own (a command's, or a no-op), durably.
    ///
    /// # Errors
    /// Storage errors.
    pub fn log(&self, entry: Entry) -> Result<()> {
        let batch = self.engine.batch();
        if self.commit_logged(batch, std::slice::from_ref(&entry))?.is_some() {
            self.journal.wait_durable(self.journal.committed())?;
        }
        Ok(())
    }
}
