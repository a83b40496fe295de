//! `OP_REPLY`: the answer to a legacy `OP_QUERY`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::reader::Reader;
use crate::{DocumentBytes, WireError};

/// A legacy reply. The server sends one document (the command reply) with cursor id 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpReply {
    /// Response flags; mongod sets `AwaitCapable` (8) on every reply.
    pub response_flags: i32,
    /// Cursor id; 0 for a command reply.
    pub cursor_id: i64,
    /// Position of the first document in the cursor.
    pub starting_from: i32,
    /// The documents.
    pub documents: Vec<DocumentBytes>,
}

impl OpReply {
    /// `AwaitCapable`: set by every server since 1.6; drivers ignore the rest for commands.
    pub const AWAIT_CAPABLE: i32 = 8;

    /// A command reply carrying `document`.
    pub fn command_reply(document: DocumentBytes) -> Self {
        Self { response_flags: Self::AWAIT_CAPABLE, cursor_id: 0, starting_from: 0, documents: vec![document] }
    }

    pub(crate) fn decode(payload: Bytes) -> Result<Self, WireError> {
        let mut reader = Reader::new(payload, "OP_REPLY");
        let response_flags = reader.i32()?;
        let cursor_id = reader.i64()?;
        let starting_from = reader.i32()?;
        let number_returned = reader.i32()?;
        let mut documents = Vec::new();
        while !reader.is_empty() {
            documents.push(reader.document()?);
        }
        if usize::try_from(number_returned).ok() != Some(documents.len()) {
            return Err(WireError::InvalidDocument(format!(
                "OP_REPLY announces {number_returned} documents but holds {}",
                documents.len()
            )));
        }
        Ok(Self { response_flags, cursor_id, starting_from, documents })
    }

    pub(crate) fn payload_len(&self) -> usize {
        4 + 8 + 4 + 4 + self.documents.iter().map(DocumentBytes::len).sum::<usize>()
    }

    pub(crate) fn encode_payload(&self, out: &mut BytesMut) -> Result<(), WireError> {
        out.put_i32_le(self.response_flags);
        out.put_i64_le(self.cursor_id);
        out.put_i32_le(self.starting_from);
        let count = self.documents.len();
        out.put_i32_le(i32::try_from(count).map_err(|_| WireError::MessageTooLarge(count))?);
        for doc in &self.documents {
            out.put_slice(doc.as_bytes());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    fn encode(reply: &OpReply) -> Result<Bytes, WireError> {
        let mut out = BytesMut::new();
        reply.encode_payload(&mut out)?;
        Ok(out.freeze())
    }

    #[test]
    fn op_reply_command_reply_round_trips() -> Result<(), WireError> {
        let reply = OpReply::command_reply(DocumentBytes::try_from(&doc! { "ismaster": true, "ok": 1.0 })?);
        assert_eq!(reply.response_flags, OpReply::AWAIT_CAPABLE);
        assert_eq!(reply.cursor_id, 0);
        let bytes = encode(&reply)?;
        assert_eq!(bytes.get(16..20), Some(&[1, 0, 0, 0][..]), "numberReturned");
        assert_eq!(OpReply::decode(bytes)?, reply);
        Ok(())
    }

    #[test]
    fn op_reply_several_or_no_documents_round_trip() -> Result<(), WireError> {
        let docs = [doc! { "a": 1 }, doc! { "b": "two" }, doc! {}];
        let documents = docs.iter().map(DocumentBytes::try_from).collect::<Result<Vec<_>, _>>()?;
        for documents in [documents, Vec::new()] {
            let reply = OpReply { response_flags: 0, cursor_id: i64::MIN, starting_from: 17, documents };
            assert_eq!(OpReply::decode(encode(&reply)?)?, reply);
        }
        Ok(())
    }

    #[test]
    fn op_reply_count_mismatch_rejected() -> Result<(), WireError> {
        let reply = OpReply::command_reply(DocumentBytes::try_from(&doc! { "ok": 1 })?);
        let bytes = encode(&reply)?;
        for count in [0i32, 2, -1] {
            let mut altered = BytesMut::from(bytes.as_ref());
            if let Some(field) = altered.get_mut(16..20) {
                field.copy_from_slice(&count.to_le_bytes());
            }
            let result = OpReply::decode(altered.freeze());
            assert!(matches!(result, Err(WireError::InvalidDocument(_))), "count {count}: {result:?}");
        }
        Ok(())
    }

    #[test]
    fn op_reply_truncated_header_rejected() {
        let result = OpReply::decode(Bytes::from_static(&[0; 19]));
        assert!(matches!(result, Err(WireError::Truncated(_))), "{result:?}");
    }
}
