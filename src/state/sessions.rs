//! Logical sessions: the registry behind `startSession`, `endSessions`, `refreshSessions`,
//! `killSessions` and the `lsid` every driver attaches to its commands.
//!
//! A session lives until it is ended or killed, or until it has gone unused for
//! `logicalSessionTimeoutMinutes` (30, as mongod). It belongs to the user who used it (its
//! `uid`, mongod's digest of the user's name), which `$listLocalSessions`, `$listSessions`
//! and the kill commands' user patterns match.
//!
//! As mongod's session cache, the registry hands the sessions used and ended since the last
//! refresh to the periodic refresh ([`SessionCatalog::take_refresh`]), which records them in
//! `config.system.sessions` (see `exec/session_records.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bson::Uuid;
use sha2::{Digest, Sha256};

/// How long an unused session lives (`logicalSessionTimeoutMinutes`).
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// mongod's `uid` of a session's owner: the SHA-256 of `user@db` of the connection's
/// (first) authenticated user, or of the empty string without one.
pub fn user_digest(users: &[(String, String)]) -> [u8; 32] {
    let name = users.first().map(|(user, db)| format!("{user}@{db}")).unwrap_or_default();
    Sha256::digest(name.as_bytes()).into()
}

/// One live session: when it was last used, and its owner.
#[derive(Debug, Clone, Copy)]
struct Record {
    last_use: Instant,
    uid: [u8; 32],
    /// Used since the last refresh: its stored record's `lastUse` is due.
    refresh_due: bool,
}

impl Record {
    fn new(uid: [u8; 32]) -> Self {
        Self { last_use: Instant::now(), uid, refresh_due: true }
    }
}

/// A session (`lsid.id`) and its owner (`lsid.uid`): the `_id` of its stored record.
pub type SessionKey = (Uuid, [u8; 32]);

/// What the next refresh of `config.system.sessions` writes.
#[derive(Debug, Default)]
pub struct Refresh {
    /// Sessions used since the last refresh: their records get a new `lastUse`.
    pub active: Vec<SessionKey>,
    /// Sessions ended or killed since the last refresh: their records go, and their cursors
    /// are closed.
    pub ended: Vec<SessionKey>,
}

/// The sessions this server knows, by `lsid.id`.
#[derive(Debug, Default)]
pub struct SessionCatalog {
    sessions: Mutex<HashMap<Uuid, Record>>,
    /// Sessions ended since the last refresh.
    ended: Mutex<Vec<SessionKey>>,
    /// Sessions an operation has checked out (see [`SessionCatalog::check_out`]).
    checked_out: Mutex<HashSet<Uuid>>,
    returned: Condvar,
}

/// A session checked out by one operation, returned when dropped.
#[derive(Debug)]
pub struct CheckedOutSession<'a> {
    catalog: &'a SessionCatalog,
    id: Uuid,
}

impl Drop for CheckedOutSession<'_> {
    fn drop(&mut self) {
        self.catalog.checked_out.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
        self.catalog.returned.notify_all();
    }
}

impl SessionCatalog {
    /// Creates a new session of the user `uid` and returns its id.
    pub fn start(&self, uid: [u8; 32]) -> Uuid {
        let id = Uuid::new();
        self.lock().insert(id, Record::new(uid));
        id
    }

    /// Marks `id` as used now, creating it if unknown (drivers create sessions client-side and
    /// the server learns of them from `lsid`) as the user `uid` gives: a session keeps the
    /// owner it was first used by, so the digest is computed once per session, not per request.
    pub fn touch(&self, id: Uuid, uid: impl FnOnce() -> [u8; 32]) {
        self.lock()
            .entry(id)
            .and_modify(|record| {
                record.last_use = Instant::now();
                record.refresh_due = true;
            })
            .or_insert_with(|| Record::new(uid()));
    }

    /// The sessions owned by the users `uids`.
    pub fn owned_by(&self, uids: &[[u8; 32]]) -> Vec<Uuid> {
        self.lock().iter().filter(|(_, record)| uids.contains(&record.uid)).map(|(id, _)| *id).collect()
    }

    /// Ends (or kills) the sessions in `ids`. An id unknown here (used before a restart, say)
    /// is taken to be `caller`'s, as mongod makes an ended session's key from the caller's
    /// digest: its stored record goes at the next refresh.
    pub fn end(&self, ids: &[Uuid], caller: [u8; 32]) {
        let mut sessions = self.lock();
        let mut ended = self.ended.lock().unwrap_or_else(PoisonError::into_inner);
        for id in ids {
            let uid = sessions.remove(id).map_or(caller, |record| record.uid);
            ended.push((*id, uid));
        }
    }

    /// Checks `id` out for one operation, waiting while another has it: as in mongod, a
    /// session runs one retryable write (or transaction statement) at a time, so a retry
    /// never races the attempt it repeats. Called on the blocking pool.
    pub fn check_out(&self, id: Uuid) -> CheckedOutSession<'_> {
        let mut checked_out = self.checked_out.lock().unwrap_or_else(PoisonError::into_inner);
        while checked_out.contains(&id) {
            checked_out = self.returned.wait(checked_out).unwrap_or_else(PoisonError::into_inner);
        }
        checked_out.insert(id);
        CheckedOutSession { catalog: self, id }
    }

    /// Kills every session.
    pub fn kill_all(&self) {
        let mut sessions = self.lock();
        self.ended.lock().unwrap_or_else(PoisonError::into_inner).extend(sessions.drain().map(|(id, r)| (id, r.uid)));
    }

    /// The sessions used and ended since the last call, for the refresh of
    /// `config.system.sessions`. When the refresh fails, [`SessionCatalog::restore_refresh`]
    /// hands them back.
    pub fn take_refresh(&self) -> Refresh {
        let mut sessions = self.lock();
        let active = sessions
            .iter_mut()
            .filter_map(|(id, record)| std::mem::take(&mut record.refresh_due).then_some((*id, record.uid)))
            .collect();
        let ended = std::mem::take(&mut *self.ended.lock().unwrap_or_else(PoisonError::into_inner));
        Refresh { active, ended }
    }

    /// Hands back what a failed refresh took, for the next one.
    pub fn restore_refresh(&self, refresh: Refresh) {
        let mut sessions = self.lock();
        for (id, _) in refresh.active {
            if let Some(record) = sessions.get_mut(&id) {
                record.refresh_due = true;
            }
        }
        self.ended.lock().unwrap_or_else(PoisonError::into_inner).extend(refresh.ended);
    }

    /// Forgets sessions unused for [`SESSION_TIMEOUT`] as of `now`; returns them.
    pub fn reap(&self, now: Instant) -> Vec<Uuid> {
        let mut sessions = self.lock();
        let mut expired = Vec::new();
        sessions.retain(|id, record| {
            let live = now.saturating_duration_since(record.last_use) < SESSION_TIMEOUT;
            if !live {
                expired.push(*id);
            }
            live
        });
        expired
    }

    /// Every live session with how long ago it was last used, as of `now`, and its owner.
    pub fn list(&self, now: Instant) -> Vec<(Uuid, Duration, [u8; 32])> {
        self.lock()
            .iter()
            .map(|(id, record)| (*id, now.saturating_duration_since(record.last_use), record.uid))
            .collect()
    }

    /// Whether `id` is a live session.
    pub fn contains(&self, id: &Uuid) -> bool {
        self.lock().contains_key(id)
    }

    /// How many sessions are live (`serverStatus.logicalSessionRecordCache.activeSessionsCount`).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Record>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_lifecycle_start_touch_end() {
        let catalog = SessionCatalog::default();
        let a = catalog.start(user_digest(&[]));
        let b = Uuid::new();
        catalog.touch(b, || user_digest(&[("ann".into(), "admin".into())]));
        assert_eq!(catalog.owned_by(&[user_digest(&[("ann".into(), "admin".into())])]), [b]);
        assert!(catalog.contains(&a) && catalog.contains(&b));
        let unknown = Uuid::new();
        catalog.end(&[a, unknown], [7; 32]);
        assert!(!catalog.contains(&a));
        assert_eq!(catalog.len(), 1);
        let refresh = catalog.take_refresh();
        assert_eq!(refresh.active, [(b, user_digest(&[("ann".into(), "admin".into())]))]);
        assert_eq!(refresh.ended, [(a, user_digest(&[])), (unknown, [7; 32])], "an unknown id is the caller's");
        let again = catalog.take_refresh();
        assert!(again.active.is_empty() && again.ended.is_empty(), "each change is handed over once");
        catalog.restore_refresh(refresh);
        assert_eq!(catalog.take_refresh().ended.len(), 2, "a failed refresh's sessions come back");
        catalog.kill_all();
        assert!(catalog.is_empty());
        assert_eq!(catalog.take_refresh().ended.len(), 1);
    }

    #[test]
    fn session_reaped_after_timeout() {
        let catalog = SessionCatalog::default();
        let id = catalog.start(user_digest(&[]));
        assert_eq!(catalog.reap(Instant::now()), []);
        assert_eq!(catalog.reap(Instant::now() + SESSION_TIMEOUT + Duration::from_secs(1)), [id]);
        assert!(catalog.is_empty());
    }
}
