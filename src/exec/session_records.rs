//! `config.system.sessions`: the stored records of logical sessions, kept as mongod's session
//! cache keeps them.
//!
//! Each refresh (every `logicalSessionRefreshMillis`, and on `refreshLogicalSessionCacheNow`)
//! gives each session used since the last one a record `{_id: {id, uid}, lastUse}` with the
//! refresh's time, removes the records of the sessions ended since and closes their cursors.
//! The collection's TTL index `lsidTTLIndex` drops a record once unused for
//! `logicalSessionTimeoutMinutes`. `$listSessions` reads these records, so a session shows
//! there from the first refresh after its first use, as on mongod.

use bson::{Binary, DateTime, RawBsonRef, RawDocumentBuf, rawdoc};

use crate::error::{Error, ErrorCode, Result};
use crate::state::State;
use crate::state::sessions::{SESSION_TIMEOUT, SessionKey};
use crate::storage::{Collection, Namespace, Storage};

/// The name of the collection's TTL index, as mongod's.
pub const TTL_INDEX_NAME: &str = "lsidTTLIndex";

/// `config.system.sessions`.
///
/// # Errors
/// None in practice: the name is valid.
pub fn namespace() -> Result<Namespace> {
    Namespace::new("config", "system.sessions")
}

/// Writes the records of the sessions used and ended since the last refresh, creating the
/// collection and its TTL index first if they are missing. What a failed refresh took is
/// kept for the next one.
///
/// # Errors
/// Storage errors.
pub fn refresh(state: &State) -> Result<()> {
    let refresh = state.sessions.take_refresh();
    if let Err(error) = write(&state.storage, &refresh.active, &refresh.ended) {
        state.sessions.restore_refresh(refresh);
        return Err(error);
    }
    if !refresh.ended.is_empty() {
        let ended: Vec<_> = refresh.ended.iter().map(|(id, _)| *id).collect();
        state.cursors.kill_sessions(Some(&ended));
    }
    Ok(())
}

fn write(storage: &Storage, active: &[SessionKey], ended: &[SessionKey]) -> Result<()> {
    let collection = set_up(storage)?;
    if active.is_empty() && ended.is_empty() {
        return Ok(());
    }
    let now = DateTime::now();
    // No transaction writes `config` (nothing can hold these records): one batch.
    let mut writer = storage.writer(&collection)?;
    for key in active {
        writer.replace(record(key, now))?;
    }
    for key in ended {
        writer.delete(RawBsonRef::Document(&record_id(key)))?;
    }
    writer.commit()?;
    Ok(())
}

/// The record of the session `key` last used at `last_use`.
pub fn record(key: &SessionKey, last_use: DateTime) -> RawDocumentBuf {
    rawdoc! { "_id": record_id(key), "lastUse": last_use }
}

/// A record's `_id`: mongod's `lsid` with its owner, `{id: UUID, uid: BinData(0)}`.
fn record_id((id, uid): &SessionKey) -> RawDocumentBuf {
    rawdoc! {
        "id": Binary::from_uuid(*id),
        "uid": Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: uid.to_vec() },
    }
}

/// The collection, with its TTL index on `lastUse`, created if missing (as mongod's refresh
/// sets it up).
fn set_up(storage: &Storage) -> Result<std::sync::Arc<Collection>> {
    let ns = namespace()?;
    if let Some(collection) = storage.collection(&ns)
        && collection.indexes().iter().any(|index| index.name == TTL_INDEX_NAME)
    {
        return Ok(collection);
    }
    let timeout = i32::try_from(SESSION_TIMEOUT.as_secs()).unwrap_or(i32::MAX);
    let spec = bson::doc! { "v": 2, "key": { "lastUse": 1 }, "name": TTL_INDEX_NAME, "expireAfterSeconds": timeout };
    storage.create_indexes(&ns, vec![spec])?;
    storage
        .collection(&ns)
        .ok_or_else(|| Error::new(ErrorCode::InternalError, "config.system.sessions is missing after its creation"))
}

/// The records `$listSessions` reads, in `_id` order: those of the owners `owners` (`None`:
/// every owner's).
///
/// # Errors
/// Storage errors.
pub fn list(storage: &Storage, owners: Option<&[[u8; 32]]>) -> Result<Vec<RawDocumentBuf>> {
    let Some(collection) = storage.collection(&namespace()?) else { return Ok(Vec::new()) };
    let mut records = Vec::new();
    for record in storage.snapshot().scan(&collection, crate::storage::Direction::Forward) {
        let record = record?;
        let uid = record.get_document("_id").ok().and_then(|id| id.get_binary("uid").ok());
        let owned = owners.is_none_or(|owners| uid.is_some_and(|uid| owners.iter().any(|o| o[..] == *uid.bytes)));
        if owned {
            records.push(record);
        }
    }
    Ok(records)
}
