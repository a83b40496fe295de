//! Parked cursors: results that did not fit in the first batch, kept until `getMore` asks for
//! more. The executor opens and continues them (`exec::cursor`); this registry only holds them.
//!
//! A cursor owns an iterator over a storage snapshot (or a buffer of sorted results), so every
//! batch comes from the same consistent view. Idle cursors are closed after
//! `cursorTimeoutMillis` (10 minutes by default) unless opened with `noCursorTimeout`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bson::{RawDocument, RawDocumentBuf};

use crate::auth::UserNames;
use crate::error::{Error, ErrorCode, Result};
use crate::op::{ExecStats, check_deadline};

/// The most bytes of documents in one batch.
pub const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// The documents a cursor produces, lazily.
pub type DocumentStream = Box<dyn Iterator<Item = Result<RawDocumentBuf>> + Send>;

/// An open cursor.
pub struct Cursor {
    /// `db.collection` as reported in replies.
    pub ns: String,
    stream: std::iter::Peekable<DocumentStream>,
    /// Keep the cursor however long it idles.
    pub no_timeout: bool,
    /// The users who opened it, `(user, db)`: only they may continue or kill it (unless
    /// privileged).
    pub owners: UserNames,
    last_used: Instant,
    /// The execution's progress, carried from request to request.
    stats: Arc<ExecStats>,
    /// A tailable cursor's state; `None` for an ordinary one.
    pub tailing: Option<Tailing>,
    /// A change stream's position when a batch has no event (its `postBatchResumeToken`).
    pub resume_token: Option<ResumeTokenSource>,
    /// The session it was opened in: its `getMore`s must come in the same one, and killing
    /// the session (or its expiry) closes it.
    pub session: Option<bson::Uuid>,
}

/// Reads where a change stream stands: the `postBatchResumeToken` of a batch without events.
pub type ResumeTokenSource = Arc<dyn Fn() -> bson::Document + Send + Sync>;

/// A tailable cursor on a capped collection: it stays open at the end of the collection, and
/// the next `getMore` returns what was inserted since.
#[derive(Debug, Clone)]
pub struct Tailing {
    /// `awaitData`: a `getMore` that finds nothing waits for an insert (up to its
    /// `maxTimeMS`, one second by default) instead of answering at once.
    pub await_data: bool,
    /// Documents still to return under the query's `limit`; the cursor closes at 0.
    pub remaining: Option<usize>,
    /// Moved at the start of each batch: the stream then reads from a new snapshot.
    pub batches: Arc<std::sync::atomic::AtomicU64>,
    /// Set by the stream once it is over for good (a change stream's `invalidate`): the cursor
    /// closes at its end instead of waiting there.
    pub ended: Arc<std::sync::atomic::AtomicBool>,
}

impl Cursor {
    /// A cursor over `stream`.
    pub fn new(ns: String, stream: DocumentStream, no_timeout: bool, stats: Arc<ExecStats>) -> Self {
        Self {
            ns,
            stream: stream.peekable(),
            no_timeout,
            owners: Arc::default(),
            last_used: Instant::now(),
            stats,
            tailing: None,
            resume_token: None,
            session: None,
        }
    }

    /// The cursor, opened in `session`.
    pub fn in_session(mut self, session: Option<bson::Uuid>) -> Self {
        self.session = session;
        self
    }

    /// The cursor, tailable.
    pub fn tailing(mut self, tailing: Tailing) -> Self {
        self.tailing = Some(tailing);
        self
    }

    /// The cursor, reporting where its change stream stands with `source`.
    pub fn with_resume_token(mut self, source: Option<ResumeTokenSource>) -> Self {
        self.resume_token = source;
        self
    }

    /// The cursor, owned by `owners`.
    pub fn owned_by(mut self, owners: UserNames) -> Self {
        self.owners = owners;
        self
    }

    /// The execution's progress (keys and documents examined, plan).
    pub fn stats(&self) -> &Arc<ExecStats> {
        &self.stats
    }

    /// Takes the next batch: at most `limit` documents (or everything up to the size cap) and
    /// always at least one when any remain, handing each to `take` (which copies it into the
    /// reply) as it comes. Returns how many it took and whether the cursor is done.
    ///
    /// # Errors
    /// Storage or query errors from the stream, and `take`'s; 50 MaxTimeMSExpired past
    /// `deadline`.
    pub fn next_batch(
        &mut self,
        limit: Option<usize>,
        deadline: Option<Instant>,
        mut take: impl FnMut(&RawDocument) -> Result<()>,
    ) -> Result<(usize, bool)> {
        let mut taken = 0usize;
        let mut bytes = 0usize;
        let remaining = self.tailing.as_ref().and_then(|t| t.remaining);
        if let Some(tailing) = &self.tailing {
            tailing.batches.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        let limit = match (limit, remaining) {
            (Some(limit), Some(remaining)) => Some(limit.min(remaining)),
            (limit, remaining) => limit.or(remaining),
        };
        let mut at_end = false;
        while limit.is_none_or(|l| taken < l) {
            check_deadline(deadline)?;
            let next_len = match self.stream.peek() {
                None => {
                    at_end = true;
                    break;
                }
                Some(Ok(doc)) => doc.as_bytes().len(),
                Some(Err(_)) => 0,
            };
            if taken > 0 && bytes + next_len > MAX_BATCH_BYTES {
                break;
            }
            match self.stream.next() {
                Some(Ok(doc)) => {
                    bytes += next_len;
                    taken += 1;
                    take(&doc)?;
                }
                Some(Err(error)) => return Err(error),
                None => break,
            }
        }
        self.last_used = Instant::now();
        let done = match &mut self.tailing {
            None => self.stream.peek().is_none(),
            Some(tailing) => {
                if at_end {
                    // The end for now, not for good: forget it, so the next batch looks again.
                    let _ = self.stream.next();
                }
                tailing.remaining = tailing.remaining.map(|n| n.saturating_sub(taken));
                tailing.remaining == Some(0) || (at_end && tailing.ended.load(std::sync::atomic::Ordering::Acquire))
            }
        };
        Ok((taken, done))
    }
}

/// Every open cursor of the server, by id.
#[derive(Default)]
pub struct CursorRegistry {
    cursors: Mutex<HashMap<i64, Cursor>>,
    /// Cursors closed by the idle reaper since start.
    timed_out: std::sync::atomic::AtomicU64,
}

impl CursorRegistry {
    /// Parks `cursor` and returns its new id (positive, never 0).
    pub fn insert(&self, cursor: Cursor) -> i64 {
        let mut cursors = self.lock();
        loop {
            let id = random_id();
            if let std::collections::hash_map::Entry::Vacant(slot) = cursors.entry(id) {
                slot.insert(cursor);
                return id;
            }
        }
    }

    /// Takes cursor `id` out for a `getMore` (put it back with [`CursorRegistry::restore`]).
    ///
    /// # Errors
    /// 43 CursorNotFound, with mongod's message.
    pub fn take(&self, id: i64) -> Result<Cursor> {
        self.lock().remove(&id).ok_or_else(|| cursor_not_found(id))
    }

    /// Puts a cursor back under the same id.
    pub fn restore(&self, id: i64, cursor: Cursor) {
        self.lock().insert(id, cursor);
    }

    /// Whether `id` is open.
    pub fn contains(&self, id: i64) -> bool {
        self.lock().contains_key(&id)
    }

    /// Closes cursor `id`; false if it did not exist.
    pub fn kill(&self, id: i64) -> bool {
        self.lock().remove(&id).is_some()
    }

    /// The namespace of cursor `id`.
    pub fn namespace(&self, id: i64) -> Option<String> {
        self.lock().get(&id).map(|c| c.ns.clone())
    }

    /// The namespace, the owners and the session of cursor `id`.
    pub fn describe(&self, id: i64) -> Option<(String, UserNames, Option<bson::Uuid>)> {
        self.lock().get(&id).map(|c| (c.ns.clone(), c.owners.clone(), c.session))
    }

    /// Closes the cursors opened in the sessions `ids` (`None`: in any session); returns how
    /// many.
    pub fn kill_sessions(&self, ids: Option<&[bson::Uuid]>) -> usize {
        let mut cursors = self.lock();
        let before = cursors.len();
        cursors.retain(|_, c| match (c.session, ids) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(session), Some(ids)) => !ids.contains(&session),
        });
        before - cursors.len()
    }

    /// Closes cursors idle for longer than `timeout` as of `now`; returns how many.
    pub fn reap(&self, now: Instant, timeout: Duration) -> usize {
        let mut cursors = self.lock();
        let before = cursors.len();
        cursors.retain(|_, c| c.no_timeout || now.saturating_duration_since(c.last_used) < timeout);
        let reaped = before - cursors.len();
        super::counters::add(&self.timed_out, reaped);
        reaped
    }

    /// Cursors closed for being idle too long, since start.
    pub fn timed_out(&self) -> u64 {
        self.timed_out.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Open cursors.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Cursor>> {
        self.cursors.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// mongod's error for an unknown cursor.
pub fn cursor_not_found(id: i64) -> Error {
    Error::new(ErrorCode::CursorNotFound, format!("cursor id {id} not found"))
}

/// A positive random id from the standard library's randomly keyed hasher.
fn random_id() -> i64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    let id = (hasher.finish() >> 1) as i64;
    if id == 0 { 1 } else { id }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::rawdoc;

    const CURSOR_TIMEOUT: Duration = Duration::from_secs(600);

    fn stream(n: i32) -> DocumentStream {
        Box::new((0..n).map(|i| Ok(rawdoc! { "i": i })))
    }

    #[test]
    fn cursor_batches_and_exhaustion() -> Result<()> {
        let mut cursor = Cursor::new("db.c".into(), stream(5), false, Arc::default());
        let mut seen = Vec::new();
        let mut take = |doc: &RawDocument| {
            seen.push(doc.get_i32("i").unwrap_or(-1));
            Ok(())
        };
        assert_eq!(cursor.next_batch(Some(2), None, &mut take)?, (2, false));
        assert_eq!(cursor.next_batch(None, None, &mut take)?, (3, true));
        assert_eq!(seen, [0, 1, 2, 3, 4]);
        Ok(())
    }

    #[test]
    fn cursor_batch_stops_before_16_mib_but_takes_one_larger() -> Result<()> {
        // Documents of 6 MiB: two fit 16 MiB of documents, the third waits for the next batch.
        let big = |i: i32| {
            let mut doc = rawdoc! { "i": i };
            doc.append(
                bson::raw::cstr!("b"),
                bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0; 6 << 20] },
            );
            doc
        };
        let mut cursor = Cursor::new("db.c".into(), Box::new((0..3).map(move |i| Ok(big(i)))), false, Arc::default());
        let mut take = |_: &RawDocument| Ok(());
        assert_eq!(cursor.next_batch(None, None, &mut take)?, (2, false));
        assert_eq!(cursor.next_batch(None, None, &mut take)?, (1, true));
        // A document over the batch size alone still goes out, one per batch.
        let huge = |_| Ok(rawdoc! { "s": "x".repeat(MAX_BATCH_BYTES) });
        let mut cursor = Cursor::new("db.c".into(), Box::new((0..2).map(huge)), false, Arc::default());
        assert_eq!(cursor.next_batch(None, None, &mut take)?, (1, false));
        Ok(())
    }

    #[test]
    fn cursor_registry_take_restore_kill_reap() {
        let registry = CursorRegistry::default();
        let id = registry.insert(Cursor::new("db.c".into(), stream(1), false, Arc::default()));
        assert!(id > 0);
        let cursor = registry.take(id).ok();
        assert!(registry.take(id).is_err_and(|e| e.code() == ErrorCode::CursorNotFound));
        if let Some(cursor) = cursor {
            registry.restore(id, cursor);
        }
        assert_eq!(registry.reap(Instant::now(), CURSOR_TIMEOUT), 0);
        assert_eq!(registry.reap(Instant::now() + CURSOR_TIMEOUT * 2, CURSOR_TIMEOUT), 1);
        let kept = registry.insert(Cursor::new("db.c".into(), stream(1), true, Arc::default()));
        assert_eq!(registry.reap(Instant::now() + CURSOR_TIMEOUT * 2, CURSOR_TIMEOUT), 0);
        assert!(registry.kill(kept));
        assert!(registry.is_empty());
    }
}
