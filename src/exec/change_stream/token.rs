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
    /// For a fragment of an event split by `$changeStreamSplitLargeEvent`: its index (from 0).
    pub fragment: Option<u32>,
}

/// The index a high-water mark has: after every event of its entry.
pub const HIGH_WATER_MARK: u32 = u32::MAX;

/// The bytes of a token: time, index and invalidate flag; a fragment's adds its index.
const LENGTH: usize = 8 + 4 + 1;
const FRAGMENT_LENGTH: usize = LENGTH + 4;

fn packed(ts: Timestamp) -> u64 {
    (u64::from(ts.time) << 32) | u64::from(ts.increment)
}

impl ResumeToken {
    /// The token of the event at `op_index` within the entry at `ts`.
    pub fn event(ts: Timestamp, op_index: u32) -> Self {
        Self { ts, op_index, from_invalidate: false, fragment: None }
    }

    /// The token of fragment `index` (from 0) of this event.
    pub fn fragment(self, index: u32) -> Self {
        Self { fragment: Some(index), ..self }
    }

    /// When this is the token of a fragment of the event at `event`: the fragment's index.
    pub fn fragment_of(&self, event: &Self) -> Option<u32> {
        (self.ts == event.ts && self.op_index == event.op_index).then_some(self.fragment).flatten()
    }

    /// A high-water mark: every event up to and at `ts` has been seen.
    pub fn high_water_mark(ts: Timestamp) -> Self {
        Self { ts, op_index: HIGH_WATER_MARK, from_invalidate: false, fragment: None }
    }

    /// Whether the event at `other` comes after this position (an `invalidate` comes just
    /// after the event that caused it, at the same time and index).
    pub fn precedes(&self, other: &Self) -> bool {
        other.order() > self.order()
    }

    /// An event comes before its fragments, which come in their order.
    fn order(&self) -> (u64, u32, u64, bool) {
        (packed(self.ts), self.op_index, self.fragment.map_or(0, |f| u64::from(f) + 1), self.from_invalidate)
    }

    /// `{_data: "<hex>"}`.
    pub fn to_document(self) -> Document {
        let mut bytes = Vec::with_capacity(LENGTH);
        bytes.extend_from_slice(&packed(self.ts).to_be_bytes());
        bytes.extend_from_slice(&self.op_index.to_be_bytes());
        bytes.push(u8::from(self.from_invalidate));
        if let Some(fragment) = self.fragment {
            bytes.extend_from_slice(&fragment.to_be_bytes());
        }
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
        let length = data.len() / 2;
        if (length != LENGTH && length != FRAGMENT_LENGTH) || data.len() % 2 != 0 || !data.is_ascii() {
            return Err(invalid());
        }
        let bytes = (0..length)
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
        let fragment = bytes.get(13..17).and_then(|b| <[u8; 4]>::try_from(b).ok()).map(u32::from_be_bytes);
        Ok(Self {
            ts: Timestamp { time: (ts >> 32) as u32, increment: ts as u32 },
            op_index,
            from_invalidate,
            fragment,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_token_round_trips_and_orders_events() {
        let ts = Timestamp { time: 1_700_000_000, increment: 7 };
        let token = ResumeToken { ts, op_index: 3, from_invalidate: true, fragment: None };
        let raw = bson::RawDocumentBuf::try_from(&token.to_document()).unwrap_or_default();
        assert_eq!(ResumeToken::parse(&raw).ok(), Some(token));
        let event = ResumeToken::event(ts, 3);
        let second = event.fragment(1);
        let raw = bson::RawDocumentBuf::try_from(&second.to_document()).unwrap_or_default();
        assert_eq!(ResumeToken::parse(&raw).ok(), Some(second));
        assert!(event.precedes(&event.fragment(0)) && event.fragment(0).precedes(&second));
        assert!(second.precedes(&ResumeToken::event(ts, 4)), "the next event comes after every fragment");
        assert_eq!(second.fragment_of(&event), Some(1));
        assert_eq!(second.fragment_of(&ResumeToken::event(ts, 4)), None);
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
