//! `OP_QUERY`: legacy, accepted only for the handshake drivers still send this way.

use bytes::{BufMut, Bytes, BytesMut};

use crate::reader::Reader;
use crate::{DocumentBytes, WireError};

/// A legacy `OP_QUERY`. mongod answers it only for commands on `<db>.$cmd` (and then only
/// the handshake); deciding that is the server's job, not the codec's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpQuery {
    /// Query flag bits (tailable, secondaryOk, ...).
    pub flags: i32,
    /// `<database>.<collection>`; `<database>.$cmd` for a command.
    pub full_collection_name: String,
    /// Documents to skip.
    pub number_to_skip: i32,
    /// Documents to return; -1 for a command.
    pub number_to_return: i32,
    /// The query, or the command document.
    pub query: DocumentBytes,
    /// Optional projection.
    pub return_fields_selector: Option<DocumentBytes>,
}

impl OpQuery {
    pub(crate) fn decode(payload: Bytes) -> Result<Self, WireError> {
        let mut reader = Reader::new(payload, "OP_QUERY");
        let query = Self {
            flags: reader.i32()?,
            full_collection_name: reader.cstring()?,
            number_to_skip: reader.i32()?,
            number_to_return: reader.i32()?,
            query: reader.document()?,
            return_fields_selector: if reader.is_empty() { None } else { Some(reader.document()?) },
        };
        match reader.remaining() {
            0 => Ok(query),
            n => Err(WireError::TrailingBytes(n)),
        }
    }

    pub(crate) fn payload_len(&self) -> usize {
        4 + self.full_collection_name.len()
            + 1
            + 8
            + self.query.len()
            + self.return_fields_selector.as_ref().map_or(0, DocumentBytes::len)
    }

    pub(crate) fn encode_payload(&self, out: &mut BytesMut) {
        out.put_i32_le(self.flags);
        out.put_slice(self.full_collection_name.as_bytes());
        out.put_u8(0);
        out.put_i32_le(self.number_to_skip);
        out.put_i32_le(self.number_to_return);
        out.put_slice(self.query.as_bytes());
        if let Some(fields) = &self.return_fields_selector {
            out.put_slice(fields.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    fn hello_query(selector: Option<&bson::Document>) -> Result<OpQuery, WireError> {
        Ok(OpQuery {
            flags: 4,
            full_collection_name: "admin.$cmd".to_owned(),
            number_to_skip: 0,
            number_to_return: -1,
            query: DocumentBytes::try_from(&doc! { "isMaster": 1, "helloOk": true })?,
            return_fields_selector: selector.map(DocumentBytes::try_from).transpose()?,
        })
    }

    fn encode(query: &OpQuery) -> Bytes {
        let mut out = BytesMut::new();
        query.encode_payload(&mut out);
        out.freeze()
    }

    #[test]
    fn op_query_round_trips_without_selector() -> Result<(), WireError> {
        let query = hello_query(None)?;
        let bytes = encode(&query);
        assert_eq!(bytes.get(..4), Some(&[4, 0, 0, 0][..]));
        assert_eq!(bytes.get(4..15), Some(&b"admin.$cmd\0"[..]));
        assert_eq!(OpQuery::decode(bytes)?, query);
        Ok(())
    }

    #[test]
    fn op_query_round_trips_with_selector() -> Result<(), WireError> {
        let query = hello_query(Some(&doc! { "ok": 1 }))?;
        assert_eq!(OpQuery::decode(encode(&query))?, query);
        Ok(())
    }

    #[test]
    fn op_query_trailing_bytes_rejected() -> Result<(), WireError> {
        // After the selector, anything left over is trailing, framed like a document or not.
        let with_selector = encode(&hello_query(Some(&doc! {}))?);
        for extra in [&[1u8, 2, 3][..], &[5, 0, 0, 0, 0]] {
            let mut bytes = BytesMut::from(with_selector.as_ref());
            bytes.put_slice(extra);
            let result = OpQuery::decode(bytes.freeze());
            assert!(matches!(result, Err(WireError::TrailingBytes(n)) if n == extra.len()), "{result:?}");
        }
        // Without a selector, stray bytes are read as a selector and found wanting.
        let mut bytes = BytesMut::from(encode(&hello_query(None)?).as_ref());
        bytes.put_slice(&[1, 2, 3]);
        assert!(matches!(OpQuery::decode(bytes.freeze()), Err(WireError::Truncated(_))));
        Ok(())
    }

    #[test]
    fn op_query_missing_fields_truncated() -> Result<(), WireError> {
        let bytes = encode(&hello_query(None)?);
        // Cut inside the flags, the name, the counts and the query document.
        for len in [0, 3, 8, 15, 20, 26, bytes.len() - 1] {
            let result = OpQuery::decode(bytes.slice(..len));
            assert!(matches!(result, Err(WireError::Truncated(_))), "cut at {len}: {result:?}");
        }
        Ok(())
    }
}
