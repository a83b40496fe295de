//! The records of retryable writes: for each session, the transaction number of its latest
//! retryable write and the result of each statement executed under it, written in the same
//! batch as the statement's change. A retry after a lost reply (a dropped connection, a
//! restart) finds the result instead of applying the statement twice.
//!
//! In `meta`: kind `t` + session id (16 bytes) → the latest transaction number (8 bytes,
//! big-endian) and when it began (milliseconds since the epoch, 8 bytes); kind `r` + session id + transaction number (8 bytes, big-endian, sign bit
//! flipped) + statement id (4 bytes, likewise) → the statement's result (BSON). Only the
//! latest transaction's results are kept: starting a newer one deletes the older ones, as
//! mongod keeps only the latest per session; and a session's records go once it has been
//! unused for the session timeout ([`Storage::expire_retryable`]), as mongod's go with the
//! session.

use std::collections::BTreeMap;

use bson::{DateTime, RawDocumentBuf, Uuid};

use super::engine::Space;
use super::{Storage, Writer, meta_key};
use crate::error::{Error, ErrorCode, Result};

const LATEST: u8 = b't';
const RESULT: u8 = b'r';

/// Order-preserving bytes of a signed number.
fn ordered_i64(n: i64) -> [u8; 8] {
    ((n as u64) ^ (1 << 63)).to_be_bytes()
}

fn ordered_i32(n: i32) -> [u8; 4] {
    ((n as u32) ^ (1 << 31)).to_be_bytes()
}

fn results_prefix(session: Uuid, txn: Option<i64>) -> Vec<u8> {
    let mut key = meta_key(RESULT, &session.bytes());
    if let Some(txn) = txn {
        key.extend_from_slice(&ordered_i64(txn));
    }
    key
}

impl Storage {
    /// The transaction number of `session`'s latest retryable write, if it made one.
    ///
    /// # Errors
    /// Storage errors.
    pub fn latest_retryable_txn(&self, session: Uuid) -> Result<Option<i64>> {
        let Some(value) = self.engine.get(Space::Meta, meta_key(LATEST, &session.bytes()))? else {
            return Ok(None);
        };
        Ok(Some(decode_latest(&value)?.0))
    }

    /// Deletes the records of sessions whose latest retryable write began before `cutoff`,
    /// except those `live` says are in use; returns how many sessions' records went.
    ///
    /// # Errors
    /// Storage errors.
    pub fn expire_retryable(&self, cutoff: DateTime, live: &dyn Fn(Uuid) -> bool) -> Result<usize> {
        let mut expired = Vec::new();
        for guard in self.engine.prefix(Space::Meta, [LATEST]) {
            let (key, value) = guard.into_inner()?;
            let Some(session) = key.get(1..).and_then(|id| <[u8; 16]>::try_from(id).ok()).map(Uuid::from_bytes) else {
                continue;
            };
            let (_, began) = decode_latest(&value)?;
            if began < cutoff.timestamp_millis() && !live(session) {
                expired.push((key.to_vec(), session));
            }
        }
        for (latest_key, session) in &expired {
            self.check_writable()?;
            let mut batch = self.engine.batch();
            for guard in self.engine.prefix(Space::Meta, results_prefix(*session, None)) {
                batch.remove(Space::Meta, guard.key()?.to_vec());
            }
            batch.remove(Space::Meta, latest_key.clone());
            batch.commit().map_err(|e| self.engine_write_failed(e))?;
        }
        Ok(expired.len())
    }

    /// The results of the statements `session` executed under transaction number `txn`, by
    /// statement id.
    ///
    /// # Errors
    /// Storage errors.
    pub fn retryable_results(&self, session: Uuid, txn: i64) -> Result<BTreeMap<i32, RawDocumentBuf>> {
        let prefix = results_prefix(session, Some(txn));
        let mut out = BTreeMap::new();
        for guard in self.engine.prefix(Space::Meta, &prefix) {
            let (key, value) = guard.into_inner()?;
            let stmt: [u8; 4] = key
                .get(prefix.len()..)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| Error::new(ErrorCode::InternalError, "corrupt retryable write record"))?;
            let stmt = (u32::from_be_bytes(stmt) ^ (1 << 31)) as i32;
            let result = RawDocumentBuf::from_bytes(value.to_vec())
                .map_err(|e| Error::new(ErrorCode::InternalError, format!("corrupt retryable write record: {e}")))?;
            out.insert(stmt, result);
        }
        Ok(out)
    }
}

/// The transaction number and start time (milliseconds) a `t` entry holds.
fn decode_latest(value: &[u8]) -> Result<(i64, i64)> {
    let corrupt = || Error::new(ErrorCode::InternalError, "corrupt retryable write record");
    let txn: [u8; 8] = value.get(..8).and_then(|b| b.try_into().ok()).ok_or_else(corrupt)?;
    let began: [u8; 8] = value.get(8..16).and_then(|b| b.try_into().ok()).ok_or_else(corrupt)?;
    Ok((i64::from_be_bytes(txn), i64::from_be_bytes(began)))
}

impl Writer<'_> {
    /// Makes `txn` `session`'s latest transaction number in this batch, deleting the results
    /// of the one before it (`previous`, the session's latest so far; every earlier one's were
    /// deleted when it was replaced).
    ///
    /// # Errors
    /// Storage errors.
    pub fn begin_retryable_txn(&mut self, session: Uuid, txn: i64, previous: Option<i64>) -> Result<()> {
        let storage = self.storage();
        // IMPORTANT: only the previous number's keys: a scan of the whole session would walk the
        // tombstones of every result deleted before, and slow each write of a long session.
        let previous = previous
            .into_iter()
            .flat_map(|previous| storage.engine.prefix(Space::Meta, results_prefix(session, Some(previous))));
        for guard in previous {
            let key = guard.key()?;
            self.record_meta(key.to_vec(), None);
        }
        let mut latest = txn.to_be_bytes().to_vec();
        latest.extend_from_slice(&DateTime::now().timestamp_millis().to_be_bytes());
        self.record_meta(meta_key(LATEST, &session.bytes()), Some(latest));
        Ok(())
    }

    /// Records the result of statement `stmt` of `session`'s transaction `txn` in this batch.
    pub fn record_retryable_result(&mut self, session: Uuid, txn: i64, stmt: i32, result: &RawDocumentBuf) {
        let mut key = results_prefix(session, Some(txn));
        key.extend_from_slice(&ordered_i32(stmt));
        self.record_meta(key, Some(result.as_bytes().to_vec()));
        self.mark_statement(super::oplog::Statement { session, txn, stmt: Some(stmt) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Namespace;

    #[test]
    fn retryable_results_commit_with_the_write_and_a_newer_txn_replaces_them() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))?;
        let storage = Storage::open(dir.path()).map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))?;
        let collection = storage.collection_or_create(&Namespace { db: "t".into(), coll: "c".into() })?;
        let session = Uuid::new();
        let result = RawDocumentBuf::try_from(&bson::doc! { "n": 1 })
            .map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))?;
        assert_eq!(storage.latest_retryable_txn(session)?, None);

        // A batch that only records (a statement that changed nothing) still commits.
        let mut writer = storage.writer(&collection)?;
        writer.begin_retryable_txn(session, 5, None)?;
        writer.record_retryable_result(session, 5, -1, &result);
        writer.record_retryable_result(session, 5, 2, &result);
        assert!(writer.commit()?.is_some());
        assert_eq!(storage.latest_retryable_txn(session)?, Some(5));
        assert_eq!(storage.retryable_results(session, 5)?.keys().copied().collect::<Vec<_>>(), [-1, 2]);

        let mut writer = storage.writer(&collection)?;
        writer.begin_retryable_txn(session, 6, Some(5))?;
        writer.record_retryable_result(session, 6, 0, &result);
        writer.commit()?;
        assert_eq!(storage.latest_retryable_txn(session)?, Some(6));
        assert!(storage.retryable_results(session, 5)?.is_empty(), "the older transaction's results are gone");
        assert_eq!(storage.retryable_results(session, 6)?.len(), 1);
        // Another session's records are its own.
        assert_eq!(storage.latest_retryable_txn(Uuid::new())?, None);

        // Expiry: not while the session is live or its write is recent; then all of it.
        let later = DateTime::from_millis(DateTime::now().timestamp_millis() + 1000);
        assert_eq!(storage.expire_retryable(later, &|s| s == session)?, 0);
        assert_eq!(storage.expire_retryable(DateTime::from_millis(0), &|_| false)?, 0);
        assert_eq!(storage.expire_retryable(later, &|_| false)?, 1);
        assert_eq!(storage.latest_retryable_txn(session)?, None);
        assert!(storage.retryable_results(session, 6)?.is_empty());
        Ok(())
    }
}
