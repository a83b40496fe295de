//! Multi-document transactions: snapshot isolation over the engine's snapshots.
//!
//! A [`Transaction`] reads one snapshot, taken when it begins, with its own writes over it
//! (an [`Overlay`] of the final value of each key it wrote). Its statements write through a
//! [`Writer`] in transaction mode, which checks unique keys and maintains index entries
//! against that view and hands its changes to the overlay instead of committing them.
//!
//! Conflicts are write-write, as mongod's: a statement that writes a document another open
//! transaction has written, or that changed since this transaction's snapshot, fails with 112
//! WriteConflict at once (the first writer wins); so does one that adds or removes a unique
//! index key another open transaction added or removed. At commit, under the write locks of
//! every collection it wrote, each written document is checked again (a write outside any
//! transaction may have changed it since) and each unique key it adds against what is
//! committed now; then every change, the collections' totals and one `applyOps` oplog entry
//! commit in one atomic batch.
//!
//! A write outside transactions that meets a document or unique key an open transaction holds
//! does not change it: it fails with [`held_by_transaction`] before changing anything, and its
//! command runs the statement again once that transaction has ended
//! ([`Storage::retry_while_held`]), as mongod retries its write conflicts.
//!
//! fjall's own optimistic transactions are not used: they detect read-write conflicts over
//! whole key ranges (a scan conflicts with any write to its keyspace), which MongoDB's
//! snapshot isolation does not, and they would make every plain write pay for tracking.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use bson::RawDocumentBuf;

use super::engine::{SharedLock, Space};
use super::index::{record_of, unique_tuple};
use super::oplog::{Entry, Statement};
use super::read::Overlay;
use super::{Collection, DurabilityTicket, ReadView, Storage, catalog, totals_key};
use crate::error::{Error, ErrorCode, Result};

/// Which open transaction wrote each document key and unique index key (the first writer
/// wins), and how long a transaction waits for a lock.
#[derive(Debug)]
pub struct Intents {
    claims: Mutex<Claims>,
    /// Signalled when a transaction releases its claims.
    released: Condvar,
    /// How many keys are claimed, read without the lock: writes outside transactions look a
    /// key up only when some are.
    held: AtomicUsize,
    /// Counts releases (changed under the lock), so that a waiter that read it before meeting
    /// a claim cannot miss the release that follows.
    releases: AtomicU64,
    next_id: AtomicU64,
    /// `maxTransactionLockRequestTimeoutMillis` (negative: no limit).
    lock_request_timeout_ms: AtomicI64,
}

/// The claimed keys: [`claim_key`] to the transaction's id.
type Claims = HashMap<Vec<u8>, u64>;

/// What a claim is on: a document (its `docs` key) or a unique index key (the index's prefix
/// and the key's values, without the record id).
#[derive(Debug, Clone, Copy)]
pub(super) enum Claimed {
    Document,
    UniqueKey,
}

/// The intents map's key of `key`: tagged, so that a document key and an index key with the
/// same bytes never meet.
fn claim_key(kind: Claimed, key: &[u8]) -> Vec<u8> {
    let mut tagged = Vec::with_capacity(key.len() + 1);
    tagged.push(kind as u8);
    tagged.extend_from_slice(key);
    tagged
}

/// mongod's default `maxTransactionLockRequestTimeoutMillis`.
pub const DEFAULT_LOCK_REQUEST_TIMEOUT_MS: i64 = 5;

/// How often a write waiting for a transaction checks its own interruption (`killOp`, its
/// time limit).
const HELD_WAIT_SLICE: Duration = Duration::from_millis(50);

impl Default for Intents {
    fn default() -> Self {
        Self {
            claims: Mutex::default(),
            released: Condvar::new(),
            held: AtomicUsize::new(0),
            releases: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
            lock_request_timeout_ms: AtomicI64::new(DEFAULT_LOCK_REQUEST_TIMEOUT_MS),
        }
    }
}

impl Intents {
    fn lock(&self) -> std::sync::MutexGuard<'_, Claims> {
        self.claims.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether an open transaction holds `key`. Called by writes outside transactions under
    /// the collection's write lock, which every claim on it is made under too.
    pub(super) fn is_held(&self, kind: Claimed, key: &[u8]) -> bool {
        self.held.load(Ordering::Relaxed) > 0 && self.lock().contains_key(&claim_key(kind, key))
    }

    /// How long a transaction's statement waits for a lock a DDL operation holds (`None`: as
    /// long as it takes).
    pub(super) fn lock_request_timeout(&self) -> Option<std::time::Duration> {
        let ms = self.lock_request_timeout_ms.load(Ordering::Relaxed);
        u64::try_from(ms).ok().map(std::time::Duration::from_millis)
    }

    /// `maxTransactionLockRequestTimeoutMillis` as set.
    fn lock_request_timeout_ms(&self) -> i64 {
        self.lock_request_timeout_ms.load(Ordering::Relaxed)
    }

    /// Sets `maxTransactionLockRequestTimeoutMillis`.
    fn set_lock_request_timeout_ms(&self, ms: i64) {
        self.lock_request_timeout_ms.store(ms, Ordering::Relaxed);
    }
}

/// What a transaction changed in one collection, beside its keys.
#[derive(Debug)]
pub(super) struct Touched {
    collection: Arc<Collection>,
    /// The ids of its indexes when the transaction first wrote to it: on nodes sharing a
    /// database, another node may add or drop one meanwhile, and the transaction's index
    /// entries would then not match the collection's indexes.
    index_ids: Vec<u64>,
    count_delta: i64,
    bytes_delta: i64,
    multikey_changed: bool,
}

/// The ids of `indexes`, in order.
fn index_ids(indexes: &[Arc<super::Index>]) -> Vec<u64> {
    indexes.iter().map(|index| index.id).collect()
}

/// An open transaction.
pub struct Transaction {
    pub(super) storage: Arc<Storage>,
    id: u64,
    /// The snapshot its reads see (without its own writes).
    snapshot: ReadView,
    pub(super) overlay: Arc<Overlay>,
    pub(super) touched: BTreeMap<u64, Touched>,
    /// The oplog entries of its changes, recorded at commit inside one `applyOps`.
    entries: Vec<Entry>,
    /// The collections it created (see `txn_ddl.rs`): its own statements see them, the
    /// catalog gets them at commit.
    pub(super) created: Vec<Arc<Collection>>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("id", &self.id)
            .field("collections", &self.touched.len())
            .finish_non_exhaustive()
    }
}

/// mongod's WriteConflict, as a transaction's statement meets it.
pub fn write_conflict() -> Error {
    Error::new(
        ErrorCode::WriteConflict,
        "Write conflict during plan execution and yielding is disabled. :: Please retry your operation or multi-document transaction.",
    )
}

/// What a write outside transactions meets on a document or unique key an open transaction
/// holds: mongod's WriteConflict, which the write's command retries
/// ([`Storage::retry_while_held`]) rather than return.
pub(super) fn held_by_transaction() -> Error {
    write_conflict().with_internal(HELD_BY_TRANSACTION)
}

/// The internal detail that marks [`held_by_transaction`].
const HELD_BY_TRANSACTION: &str = "held by an open transaction";

/// Whether `error` is [`held_by_transaction`].
pub fn is_held_by_transaction(error: &Error) -> bool {
    error.code() == ErrorCode::WriteConflict && error.internal() == Some(HELD_BY_TRANSACTION)
}

impl Storage {
    /// Runs `write` (a write outside transactions) and, each time it fails on a document or
    /// unique key an open transaction holds, again once a transaction has ended: mongod
    /// retries such write conflicts until the transaction commits or aborts. `write` must
    /// leave nothing behind when it fails (its writer uncommitted). `check` is called while
    /// waiting and ends the wait with its error (`killOp`, `maxTimeMS`).
    ///
    /// # Errors
    /// `write`'s other errors; `check`'s.
    pub fn retry_while_held<T>(
        &self,
        check: impl Fn() -> Result<()>,
        mut write: impl FnMut() -> Result<T>,
    ) -> Result<T> {
        loop {
            let since = self.transaction_releases();
            match write() {
                Err(error) if is_held_by_transaction(&error) => self.wait_for_release(since, &check)?,
                outcome => return outcome,
            }
        }
    }

    /// How many times open transactions have released what they held: read before a write
    /// that may meet a claim, and handed to [`Storage::wait_for_release`] if it does.
    pub fn transaction_releases(&self) -> u64 {
        self.intents.releases.load(Ordering::Acquire)
    }

    /// Waits until a transaction has released its claims since `since` (what
    /// [`Storage::transaction_releases`] returned). `check` is called every
    /// [`HELD_WAIT_SLICE`] and ends the wait with its error.
    ///
    /// # Errors
    /// `check`'s.
    pub fn wait_for_release(&self, since: u64, check: &impl Fn() -> Result<()>) -> Result<()> {
        let mut claims = self.intents.lock();
        // Releases change under the lock: one after the read of `since` is seen here, or
        // wakes the wait.
        while self.transaction_releases() == since {
            check()?;
            claims = match self.intents.released.wait_timeout(claims, HELD_WAIT_SLICE) {
                Ok((claims, _)) => claims,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        Ok(())
    }

    /// `maxTransactionLockRequestTimeoutMillis`: how long a transaction's statement waits
    /// for a collection a DDL operation holds (negative: no limit).
    pub fn transaction_lock_timeout_ms(&self) -> i64 {
        self.intents.lock_request_timeout_ms()
    }

    /// Sets `maxTransactionLockRequestTimeoutMillis`.
    pub fn set_transaction_lock_timeout_ms(&self, ms: i64) {
        self.intents.set_lock_request_timeout_ms(ms);
    }

    /// Begins a transaction reading a snapshot of now.
    pub fn begin_transaction(self: &Arc<Self>) -> Transaction {
        self.begin_transaction_in(self.snapshot())
    }

    /// Begins a transaction reading `snapshot` (a snapshot of an earlier cluster time:
    /// `readConcern.atClusterTime`).
    pub fn begin_transaction_in(self: &Arc<Self>, snapshot: ReadView) -> Transaction {
        Transaction {
            id: self.intents.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            snapshot: snapshot.pinned(),
            overlay: Arc::default(),
            touched: BTreeMap::new(),
            entries: Vec::new(),
            created: Vec::new(),
            storage: self.clone(),
        }
    }
}

impl Transaction {
    /// Its snapshot with its own writes over it: what its reads see.
    pub fn view(&self) -> ReadView {
        self.snapshot.clone().with_overlay(self.overlay.clone())
    }

    /// Whether it has written or created anything.
    pub fn is_empty(&self) -> bool {
        self.overlay.is_empty() && self.entries.is_empty() && self.created.is_empty()
    }

    /// The collections it created.
    pub fn created_collections(&self) -> &[Arc<Collection>] {
        &self.created
    }

    /// The collection at `ns` it created, if it did.
    pub fn created_collection(&self, ns: &super::Namespace) -> Option<Arc<Collection>> {
        self.created.iter().find(|collection| collection.ns == *ns).cloned()
    }

    /// A writer of one statement on `collection` of `storage` (this transaction's), in this
    /// transaction.
    ///
    /// # Errors
    /// 263 OperationNotSupportedInTransaction for a capped collection; the writer's errors.
    pub fn writer<'a>(
        &'a mut self,
        storage: &'a Storage,
        collection: &'a Arc<Collection>,
    ) -> Result<super::Writer<'a>> {
        if collection.capped.is_some() {
            return Err(Error::new(
                ErrorCode::OperationNotSupportedInTransaction,
                format!(
                    "Collection '{}' is a capped collection. Writes in transactions are not allowed on capped collections.",
                    collection.ns
                ),
            ));
        }
        super::Writer::in_transaction(storage, collection, self)
    }

    /// Checks that this transaction may write the document at `key`: no other open
    /// transaction has written it, and it has not changed since the snapshot. Claims it.
    ///
    /// # Errors
    /// 112 WriteConflict.
    pub(super) fn claim(&self, key: &[u8]) -> Result<()> {
        if self.overlay.docs.contains_key(key) {
            return Ok(());
        }
        let mut claims = self.storage.intents.lock();
        let tagged = claim_key(Claimed::Document, key);
        if claims.get(&tagged).is_some_and(|owner| *owner != self.id) {
            return Err(write_conflict());
        }
        if self.changed_since_snapshot(key)? {
            return Err(write_conflict());
        }
        self.own(&mut claims, tagged);
        Ok(())
    }

    /// Claims the unique index key `tuple` (an index's prefix and the key's values) this
    /// transaction adds or removes.
    ///
    /// # Errors
    /// 112 WriteConflict when another open transaction has claimed it.
    pub(super) fn claim_unique_key(&self, tuple: &[u8]) -> Result<()> {
        let mut claims = self.storage.intents.lock();
        let tagged = claim_key(Claimed::UniqueKey, tuple);
        match claims.get(&tagged) {
            Some(owner) if *owner == self.id => Ok(()),
            Some(_) => Err(write_conflict()),
            None => {
                self.own(&mut claims, tagged);
                Ok(())
            }
        }
    }

    fn own(&self, claims: &mut Claims, tagged: Vec<u8>) {
        claims.insert(tagged, self.id);
        self.storage.intents.held.store(claims.len(), Ordering::Relaxed);
    }

    /// Whether the committed document at `key` differs from the one in the snapshot.
    fn changed_since_snapshot(&self, key: &[u8]) -> Result<bool> {
        let then = self.snapshot.value(true, key)?;
        let now = self.storage.engine.get(Space::Docs, key)?;
        Ok(then.as_deref() != now.as_deref())
    }

    /// Takes in what one statement wrote.
    pub(super) fn absorb(&mut self, statement: StatementChanges) {
        let overlay = Arc::make_mut(&mut self.overlay);
        overlay.docs.extend(statement.docs.into_iter().map(|(key, doc)| (key, doc.map(RawDocumentBuf::into_bytes))));
        overlay.index.extend(statement.entries);
        let touched = self.touched.entry(statement.collection.id).or_insert_with(|| Touched {
            collection: statement.collection.clone(),
            index_ids: index_ids(&statement.collection.indexes()),
            count_delta: 0,
            bytes_delta: 0,
            multikey_changed: false,
        });
        touched.count_delta += statement.count_delta;
        touched.bytes_delta += statement.bytes_delta;
        touched.multikey_changed |= statement.multikey_changed;
        self.entries.extend(statement.entries_logged);
    }

    /// Commits every change in one atomic batch with its `applyOps` oplog entry (marked with
    /// the session's `statement`). Returns the batch's journal ticket, `None` when it wrote
    /// nothing.
    ///
    /// # Errors
    /// 112 WriteConflict when a document it wrote changed since its snapshot, or a unique key
    /// it adds is now taken; 26 when a collection it wrote was dropped; storage errors.
    pub fn commit(mut self, statement: Option<Statement>) -> Result<Option<DurabilityTicket>> {
        if self.is_empty() {
            return Ok(None);
        }
        let storage = self.storage.clone();
        // Before any write lock, as every DDL takes them.
        let _ddl = (!self.created.is_empty()).then(|| storage.ddl_lock()).transpose()?;
        // In collection id order, so that two commits cannot wait for each other.
        let guards: Vec<_> = self.touched.values().map(|t| t.collection.lock_writes()).collect();
        // Nodes sharing the database: the same locks across them, in the same order; then what
        // the others changed. Their writes are checked below like this node's (the first to
        // commit wins); an index added or dropped since is a conflict.
        let shared = self
            .touched
            .keys()
            .map(|id| storage.engine.lock(SharedLock::Collection(*id)))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if storage.engine.is_shared() {
            storage.refresh_catalog()?;
            if self.touched.values().any(|t| index_ids(&t.collection.indexes()) != t.index_ids) {
                return Err(write_conflict());
            }
        }
        storage.check_writable()?;
        for touched in self.touched.values() {
            if touched.collection.is_dropped() {
                return Err(Error::new(
                    ErrorCode::NamespaceNotFound,
                    format!("collection {} was dropped during the transaction", touched.collection.ns),
                ));
            }
        }
        for key in self.overlay.docs.keys() {
            if self.changed_since_snapshot(key)? {
                return Err(write_conflict());
            }
        }
        self.check_unique_entries()?;
        let mut batch = storage.engine.batch();
        let mut logged = self.creations_into(&mut batch)?;
        for (key, value) in &self.overlay.docs {
            match value {
                Some(value) => batch.insert(Space::Docs, key.clone(), value.clone()),
                None => batch.remove(Space::Docs, key.clone()),
            }
        }
        for (key, value) in &self.overlay.index {
            match value {
                Some(value) => batch.insert(Space::Index, key.clone(), value.clone()),
                None => batch.remove(Space::Index, key.clone()),
            }
        }
        for touched in self.touched.values() {
            if touched.count_delta != 0 || touched.bytes_delta != 0 {
                let totals = storage.totals(&touched.collection)?.apply(touched.count_delta, touched.bytes_delta);
                batch.insert(Space::Meta, totals_key(&touched.collection), totals.encode());
            }
            if touched.multikey_changed {
                batch.insert(
                    Space::Meta,
                    catalog::entry_key(&touched.collection.ns),
                    catalog::entry_value(&touched.collection)?,
                );
            }
        }
        logged.append(&mut self.entries);
        let logged = if logged.is_empty() { Vec::new() } else { Entry::apply_ops(logged, statement)? };
        storage.commit_logged(batch, &logged)?;
        storage.catalog.apply(&catalog::CatalogChange { put: self.created.clone(), remove: Vec::new() });
        let ticket = DurabilityTicket(storage.journal.committed());
        drop(shared);
        drop(guards);
        storage.bound_write_buffers();
        Ok(Some(ticket))
    }

    /// Fails when a unique index entry this transaction adds names a key another document
    /// now holds (committed since the snapshot by a write outside any transaction).
    fn check_unique_entries(&self) -> Result<()> {
        for touched in self.touched.values() {
            for index in touched.collection.indexes().iter().filter(|i| i.unique && !i.is_id_index()) {
                let prefix = index.prefix();
                for (key, value) in self.overlay.index.range(prefix.to_vec()..) {
                    if !key.starts_with(&prefix) {
                        break;
                    }
                    let Some(_) = value else { continue };
                    let record = record_of(key).unwrap_or_default();
                    let tuple = unique_tuple(key, record);
                    for guard in self.storage.engine.prefix(Space::Index, tuple) {
                        let other = guard.key()?;
                        let removed = self.overlay.index.get(other.as_ref()).is_some_and(Option::is_none);
                        if record_of(&other) != Some(record) && !removed {
                            return Err(write_conflict());
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl Drop for Transaction {
    /// Releases the documents and unique keys it claimed (after a commit, or an abort), and
    /// wakes the writes waiting for them.
    fn drop(&mut self) {
        let intents = &self.storage.intents;
        let mut claims = intents.lock();
        let before = claims.len();
        claims.retain(|_, owner| *owner != self.id);
        if claims.len() != before {
            intents.releases.fetch_add(1, Ordering::Release);
            intents.held.store(claims.len(), Ordering::Relaxed);
            intents.released.notify_all();
        }
    }
}

/// What one statement of a transaction wrote, handed from its [`Writer`](super::Writer) to
/// the transaction.
pub(super) struct StatementChanges {
    pub(super) collection: Arc<Collection>,
    pub(super) docs: HashMap<Vec<u8>, Option<RawDocumentBuf>>,
    pub(super) entries: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    pub(super) count_delta: i64,
    pub(super) bytes_delta: i64,
    pub(super) multikey_changed: bool,
    pub(super) entries_logged: Vec<Entry>,
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;

    use super::*;
    use crate::storage::{Direction, Namespace};

    fn ids(documents: impl Iterator<Item = Result<RawDocumentBuf>>) -> Vec<String> {
        documents.filter_map(|d| d.ok()?.get_str("_id").ok().map(str::to_owned)).collect()
    }

    #[test]
    fn transaction_reads_its_writes_merged_both_ways_then_commits_them() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))?;
        let storage = Arc::new(Storage::open(dir.path())?);
        let ns = Namespace::new("t", "c")?;
        let collection = storage.create_collection(&ns, bson::Document::new())?;
        let mut writer = storage.writer(&collection)?;
        for id in ["a", "b", "c"] {
            writer.insert(rawdoc! { "_id": id, "v": 1 })?;
        }
        writer.commit()?;

        let mut txn = storage.begin_transaction();
        let mut writer = txn.writer(&storage, &collection)?;
        writer.delete(bson::RawBsonRef::String("b"))?;
        writer.insert(rawdoc! { "_id": "d", "v": 1 })?;
        writer.replace(rawdoc! { "_id": "a", "v": 2 })?;
        writer.commit()?;
        let view = txn.view();
        assert_eq!(ids(view.scan(&collection, Direction::Forward)), ["a", "c", "d"]);
        assert_eq!(ids(view.scan(&collection, Direction::Backward)), ["d", "c", "a"]);
        assert_eq!(ids(storage.snapshot().scan(&collection, Direction::Forward)), ["a", "b", "c"], "not committed");
        assert_eq!(storage.collection_size(&collection)?.1, 3);

        txn.commit(None)?;
        let after = storage.snapshot();
        assert_eq!(ids(after.scan(&collection, Direction::Forward)), ["a", "c", "d"]);
        let a = after.get(&collection, bson::RawBsonRef::String("a"))?;
        assert_eq!(a.and_then(|a| a.get_i32("v").ok()), Some(2));
        assert_eq!(storage.collection_size(&collection)?.1, 3, "the totals moved with the commit");
        Ok(())
    }

    /// Runs `run` while another thread holds `collection`'s write lock for 50 ms, as a DDL
    /// operation (`ddl`) or a writer's batch.
    fn while_held(
        engine: &crate::storage::engine::Engine,
        collection: &Collection,
        ddl: bool,
        run: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        std::thread::scope(|scope| {
            let (held, holding) = std::sync::mpsc::channel();
            scope.spawn(move || {
                let _lock = if ddl { Err(collection.lock_for_ddl(engine)) } else { Ok(collection.lock_writes()) };
                let _ = held.send(());
                std::thread::sleep(std::time::Duration::from_millis(50));
            });
            let _ = holding.recv();
            run()
        })
    }

    #[test]
    fn transaction_waits_for_writers_but_at_most_its_timeout_for_ddl() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))?;
        let storage = Arc::new(Storage::open(dir.path())?);
        let collection = storage.create_collection(&Namespace::new("t", "c")?, bson::Document::new())?;
        let mut txn = storage.begin_transaction();
        // Behind a DDL operation: 24 LockTimeout after the timeout (5 ms by default).
        let ddl = collection.lock_for_ddl(&storage.engine)?;
        let started = std::time::Instant::now();
        let refused = txn.writer(&storage, &collection).err().map(|e| e.code());
        assert_eq!(refused, Some(ErrorCode::LockTimeout));
        assert!(started.elapsed() >= std::time::Duration::from_millis(5), "{:?}", started.elapsed());
        drop(ddl);
        // Behind another writer's batch: it waits for it. With no limit, behind DDL too.
        while_held(&storage.engine, &collection, false, || {
            let mut writer = txn.writer(&storage, &collection)?;
            writer.insert(rawdoc! { "_id": "x" })?;
            writer.commit().map(drop)
        })?;
        storage.set_transaction_lock_timeout_ms(-1);
        let mut other = storage.begin_transaction();
        while_held(&storage.engine, &collection, true, || other.writer(&storage, &collection).map(drop))?;
        Ok(())
    }

    #[test]
    fn transaction_first_writer_wins_and_a_later_commit_fails_on_a_changed_document() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))?;
        let storage = Arc::new(Storage::open(dir.path())?);
        let collection = storage.create_collection(&Namespace::new("t", "c")?, bson::Document::new())?;
        let mut writer = storage.writer(&collection)?;
        writer.insert(rawdoc! { "_id": "x", "v": 1 })?;
        writer.commit()?;

        let (mut one, mut two) = (storage.begin_transaction(), storage.begin_transaction());
        let mut writer = one.writer(&storage, &collection)?;
        writer.replace(rawdoc! { "_id": "x", "v": 2 })?;
        writer.commit()?;
        let mut writer = two.writer(&storage, &collection)?;
        let lost = writer.replace(rawdoc! { "_id": "x", "v": 3 });
        assert_eq!(lost.err().map(|e| e.code()), Some(ErrorCode::WriteConflict));
        drop(writer);
        drop(two);
        // A write outside any transaction waits for the one holding the document...
        let mut plain = storage.writer(&collection)?;
        let held = plain.replace(rawdoc! { "_id": "x", "v": 9 }).err();
        assert!(held.as_ref().is_some_and(is_held_by_transaction), "{held:?}");
        drop(plain);
        one.commit(None)?;
        // ...and one after a transaction's snapshot makes that transaction's write conflict.
        let mut three = storage.begin_transaction();
        let mut plain = storage.writer(&collection)?;
        plain.replace(rawdoc! { "_id": "x", "v": 9 })?;
        plain.commit()?;
        let mut writer = three.writer(&storage, &collection)?;
        let stale = writer.replace(rawdoc! { "_id": "x", "v": 4 });
        assert_eq!(stale.err().map(|e| e.code()), Some(ErrorCode::WriteConflict));
        let x = storage.snapshot().get(&collection, bson::RawBsonRef::String("x"))?;
        assert_eq!(x.and_then(|x| x.get_i32("v").ok()), Some(9));
        Ok(())
    }

    #[test]
    fn transaction_claims_unique_keys_and_plain_writes_wait_for_its_end() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))?;
        let storage = Arc::new(Storage::open(dir.path())?);
        let ns = Namespace::new("t", "c")?;
        storage.create_collection(&ns, bson::Document::new())?;
        storage.create_indexes(&ns, vec![bson::doc! { "v": 2, "key": { "k": 1 }, "name": "k_1", "unique": true }])?;
        let collection = storage.existing_collection(&ns)?;

        let (mut one, mut two) = (storage.begin_transaction(), storage.begin_transaction());
        let mut writer = one.writer(&storage, &collection)?;
        writer.insert(rawdoc! { "_id": 1, "k": "x" })?;
        writer.commit()?;
        // Another transaction adding the same unique key loses at once.
        let mut writer = two.writer(&storage, &collection)?;
        let lost = writer.insert(rawdoc! { "_id": 2, "k": "x" });
        assert_eq!(lost.err().map(|e| e.code()), Some(ErrorCode::WriteConflict));
        drop(writer);
        drop(two);
        // A plain write of that key is held, changing nothing, until the transaction ends.
        let mut plain = storage.writer(&collection)?;
        let held = plain.insert(rawdoc! { "_id": 3, "k": "x" }).err();
        assert!(held.as_ref().is_some_and(is_held_by_transaction), "{held:?}");
        assert!(plain.is_empty());
        drop(plain);
        let attempts = AtomicU64::new(0);
        let waited = std::thread::scope(|scope| {
            let waiting = scope.spawn(|| {
                storage.retry_while_held(
                    || Ok(()),
                    || {
                        attempts.fetch_add(1, Ordering::Relaxed);
                        let mut plain = storage.writer(&collection)?;
                        plain.insert(rawdoc! { "_id": 3, "k": "x" })?;
                        plain.commit()
                    },
                )
            });
            while attempts.load(Ordering::Relaxed) == 0 {
                std::thread::yield_now();
            }
            one.commit(None)?;
            waiting.join().map_err(|_| Error::new(ErrorCode::InternalError, "waiting thread panicked"))
        })?;
        // After the commit, the key is taken: the retried insert is a duplicate.
        assert_eq!(waited.err().map(|e| e.code()), Some(ErrorCode::DuplicateKey));
        assert_eq!(storage.transaction_releases(), 1, "the commit's (the loser claimed nothing)");
        Ok(())
    }
}
