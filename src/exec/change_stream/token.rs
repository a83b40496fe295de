//! Resume tokens: where in the oplog a change stream stands, handed to clients as each
//! event's `_id` and as a batch's `postBatchResumeToken`, and given back as `resumeAfter` or
//! `startAfter`.
//!
//! A token is `{_data: "<hex>"}` as mongod's are (drivers treat `_data` as opaque). Its bytes
//! are the entry's time, the event's index within the entry (a transaction's `applyOps`
//! holds several), the kind (an event, or a high-water mark: "everything up to this time
//! has been seen") and whether it is an `invalidate` event's.

use bson::{Document, RawBsonRef, RawDocument, Timestamp, doc};

use crate::error::{Error, ErrorCode, Result};

/// A position in the oplog: an event's, or a high-water mark's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumeToken {
    /// The oplog entry's time.
    pub ts: Timestamp,
    /// The event's index within the entry ([`HIGH_WATER_MARK`] for a high-water mark, which
    /// stands after every event of its time).
    pub op_index: u32,
    /// Whether this is an `invalidate` event's token (`startAfter` may resume from it,
    /// `resumeAfter` may not).
    pub from_invalidate: bool,
}

/// The index a high-water mark has: after every event of its entry.
pub const HIGH_WATER_MARK: u32 = u32::MAX;

const LENGTH: usize = 8 + 4 + 1;

fn packed(ts: Timestamp) -> u64 {
    (u64::from(ts.time) << 32) | u64::from(ts.increment)
}

impl ResumeToken {
    /// The token of the event at `op_index` within the entry at `ts`.
    pub fn event(ts: Timestamp, op_index: u32) -> Self {
        Self { ts, op_index, from_invalidate: false }
    }

    /// A high-water mark: every event up to and at `ts` has been seen.
    pub fn high_water_mark(ts: Timestamp) -> Self {
        Self { ts, op_index: HIGH_WATER_MARK, from_invalidate: false }
    }

    /// Whether the event at `other` comes after this position (an `invalidate` comes just
    /// after the event that caused it, at the same time and index).
    pub fn precedes(&self, other: &Self) -> bool {
        other.order() > self.order()
    }

    fn order(&self) -> (u64, u32, bool) {
        (packed(self.ts), self.op_index, self.from_invalidate)
    }

    /// `{_data: "<hex>"}`.
    pub fn to_document(self) -> Document {
        let mut bytes = Vec::with_capacity(LENGTH);
        bytes.extend_from_slice(&packed(self.ts).to_be_bytes());
        bytes.extend_from_slice(&self.op_index.to_be_bytes());
        bytes.push(u8::from(self.from_invalidate));
        let data: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
        doc! { "_data": data }
    }

    /// Reads a token given back by a client.
    ///
    /// # Errors
    /// 40647 when `_data` is missing or not a string; 260 InvalidResumeToken when it is not a
    /// token this server gave.
    pub fn parse(token: &RawDocument) -> Result<Self> {
        let Ok(Some(RawBsonRef::String(data))) = token.get("_data") else {
            return Err(Error::new(
                ErrorCode::Location40647,
                "Bad resume token: _data of missing or of wrong type. Expected string, got missing or wrong type",
            ));
        };
        let invalid =
            || Error::new(ErrorCode::InvalidResumeToken, format!("Bad resume token: {data} is not a resume token"));
        if data.len() != LENGTH * 2 || !data.is_ascii() {
            return Err(invalid());
        }
        let bytes = (0..LENGTH)
            .map(|i| data.get(i * 2..i * 2 + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(invalid)?;
        let ts =
            bytes.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_be_bytes).ok_or_else(invalid)?;
        let op_index =
            bytes.get(8..12).and_then(|b| <[u8; 4]>::try_from(b).ok()).map(u32::from_be_bytes).ok_or_else(invalid)?;
        let from_invalidate = match bytes.get(12) {
            Some(0) => false,
            Some(1) => true,
            _ => return Err(invalid()),
        };
        Ok(Self { ts: Timestamp { time: (ts >> 32) as u32, increment: ts as u32 }, op_index, from_invalidate })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_token_round_trips_and_orders_events() {
        let ts = Timestamp { time: 1_700_000_000, increment: 7 };
        let token = ResumeToken { ts, op_index: 3, from_invalidate: true };
        let raw = bson::RawDocumentBuf::try_from(&token.to_document()).unwrap_or_default();
        assert_eq!(ResumeToken::parse(&raw).ok(), Some(token));
        let mark = ResumeToken::high_water_mark(ts);
        assert!(!mark.precedes(&ResumeToken::event(ts, 5)), "a high-water mark is past every event of its time");
        assert!(mark.precedes(&ResumeToken::event(Timestamp { time: ts.time, increment: 8 }, 0)));
        assert!(ResumeToken::event(ts, 1).precedes(&ResumeToken::event(ts, 2)));
        assert!(
            ResumeToken::event(ts, 1).precedes(&ResumeToken { from_invalidate: true, ..ResumeToken::event(ts, 1) })
        );
        let missing = bson::rawdoc! { "other": 1 };
        assert_eq!(ResumeToken::parse(&missing).err().map(|e| e.code()), Some(ErrorCode::Location40647));
        let foreign = bson::rawdoc! { "_data": "8263A5" };
        assert_eq!(ResumeToken::parse(&foreign).err().map(|e| e.code()), Some(ErrorCode::InvalidResumeToken));
    }
}
