//! A whole message: header, body, and the compressor it travelled with.

use bytes::{BufMut, Bytes, BytesMut};

use crate::header::{HEADER_LEN, put_header};
use crate::op_msg::checksum;
use crate::reader::Reader;
use crate::{Compressor, Header, MAX_MESSAGE_SIZE, OpCode, OpMsg, OpQuery, OpReply, WireError};

/// What a message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// `OP_MSG`.
    Msg(OpMsg),
    /// Legacy `OP_QUERY`.
    Query(OpQuery),
    /// Legacy `OP_REPLY`.
    Reply(OpReply),
}

/// A decoded message, or one ready to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Request and response ids.
    pub header: Header,
    /// The op and its content.
    pub body: Body,
    /// `Some` when the message was (or is to be) wrapped in `OP_COMPRESSED`.
    pub compressor: Option<Compressor>,
}

/// `OP_COMPRESSED` adds original op code (4), uncompressed size (4) and compressor id (1).
const COMPRESSED_PREFIX_LEN: usize = 9;

impl Message {
    /// The op code of the body (never `OP_COMPRESSED`: that is `compressor`).
    pub fn op_code(&self) -> OpCode {
        match self.body {
            Body::Msg(_) => OpCode::Msg,
            Body::Query(_) => OpCode::Query,
            Body::Reply(_) => OpCode::Reply,
        }
    }

    /// The length of this message encoded without compression, header included: what mongod
    /// counts as logical `bytesIn`/`bytesOut`.
    pub fn uncompressed_len(&self) -> usize {
        HEADER_LEN
            + match &self.body {
                Body::Msg(msg) => msg.payload_len(),
                Body::Query(query) => query.payload_len(),
                Body::Reply(reply) => reply.payload_len(),
            }
    }

    /// Decodes one whole frame, header included.
    ///
    /// # Errors
    /// Any [`WireError`]: the frame is malformed and the stream should be closed.
    pub fn decode(frame: Bytes) -> Result<Self, WireError> {
        let mut reader = Reader::new(frame.clone(), "message header");
        let length = reader.i32()?;
        if usize::try_from(length).ok() != Some(frame.len()) {
            return Err(WireError::InvalidLength(i64::from(length)));
        }
        let header = Header { request_id: reader.i32()?, response_to: reader.i32()? };
        let op = OpCode::from_code(reader.i32()?)?;
        let header_bytes = frame.get(..HEADER_LEN).ok_or(WireError::Truncated("message header"))?;
        if op != OpCode::Compressed {
            let body = decode_body(op, header_bytes, reader.rest())?;
            return Ok(Self { header, body, compressor: None });
        }

        let original = reader.i32()?;
        let op = OpCode::from_code(original)?;
        if op == OpCode::Compressed {
            return Err(WireError::InvalidCompressedOpCode(original));
        }
        let declared = reader.i32()?;
        let declared = usize::try_from(declared)
            .ok()
            .filter(|&n| n <= MAX_MESSAGE_SIZE - HEADER_LEN)
            .ok_or(WireError::InvalidLength(i64::from(declared).saturating_add(HEADER_LEN as i64)))?;
        let compressor = Compressor::from_id(reader.u8()?)?;
        let payload = compressor.decompress(&reader.rest(), declared)?;
        // The OP_MSG checksum covers the message as it was before compression.
        let mut original_header = BytesMut::with_capacity(HEADER_LEN);
        put_header(&mut original_header, HEADER_LEN + declared, header, original)?;
        let body = decode_body(op, &original_header, Bytes::from(payload))?;
        Ok(Self { header, body, compressor: Some(compressor) })
    }

    /// Appends the encoded message to `out`, compressed if `compressor` is set.
    ///
    /// # Errors
    /// [`WireError::MessageTooLarge`] past [`MAX_MESSAGE_SIZE`], or a compression failure.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), WireError> {
        let mut payload = BytesMut::new();
        let mut checksummed = false;
        match &self.body {
            Body::Msg(msg) => {
                msg.encode_payload(&mut payload)?;
                checksummed = msg.flags.checksum_present();
            }
            Body::Query(query) => query.encode_payload(&mut payload),
            Body::Reply(reply) => reply.encode_payload(&mut payload)?,
        }
        let op = self.op_code().code();
        if checksummed {
            let mut whole = BytesMut::with_capacity(HEADER_LEN + payload.len() + 4);
            put_header(&mut whole, HEADER_LEN + payload.len() + 4, self.header, op)?;
            whole.put_slice(&payload);
            let crc = checksum(&whole);
            payload.put_u32_le(crc);
        }
        match self.compressor {
            None => {
                let length = checked_length(HEADER_LEN + payload.len())?;
                out.reserve(length);
                put_header(out, length, self.header, op)?;
                out.put_slice(&payload);
            }
            Some(compressor) => {
                // Peers check the uncompressed size against the limit too.
                checked_length(HEADER_LEN + payload.len())?;
                let packed = compressor.compress(&payload)?;
                let length = checked_length(HEADER_LEN + COMPRESSED_PREFIX_LEN + packed.len())?;
                out.reserve(length);
                put_header(out, length, self.header, OpCode::Compressed.code())?;
                out.put_i32_le(op);
                out.put_i32_le(i32::try_from(payload.len()).map_err(|_| WireError::MessageTooLarge(payload.len()))?);
                out.put_u8(compressor.id());
                out.put_slice(&packed);
            }
        }
        Ok(())
    }
}

fn checked_length(length: usize) -> Result<usize, WireError> {
    if length > MAX_MESSAGE_SIZE { Err(WireError::MessageTooLarge(length)) } else { Ok(length) }
}

fn decode_body(op: OpCode, header: &[u8], payload: Bytes) -> Result<Body, WireError> {
    match op {
        OpCode::Msg => OpMsg::decode(header, payload).map(Body::Msg),
        OpCode::Query => OpQuery::decode(payload).map(Body::Query),
        OpCode::Reply => OpReply::decode(payload).map(Body::Reply),
        OpCode::Compressed => Err(WireError::InvalidCompressedOpCode(op.code())),
    }
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;
    use crate::{DocumentBytes, DocumentSequence, MAX_BSON_INTERNAL_SIZE, MsgFlags};

    const ALL_COMPRESSORS: [Compressor; 4] = [Compressor::Noop, Compressor::Snappy, Compressor::Zlib, Compressor::Zstd];

    fn header() -> Header {
        Header { request_id: 11, response_to: 22 }
    }

    fn msg(flags: u32) -> Result<Message, WireError> {
        let body = DocumentBytes::try_from(&doc! { "insert": "c", "$db": "test" })?;
        let documents =
            vec![DocumentBytes::try_from(&doc! { "_id": 1 })?, DocumentBytes::try_from(&doc! { "_id": 2 })?];
        let op = OpMsg {
            flags: MsgFlags::from_bits(flags),
            body,
            sequences: vec![DocumentSequence { identifier: "documents".to_owned(), documents }],
        };
        Ok(Message { header: header(), body: Body::Msg(op), compressor: None })
    }

    fn encode(message: &Message) -> Result<Bytes, WireError> {
        let mut out = BytesMut::new();
        message.encode(&mut out)?;
        Ok(out.freeze())
    }

    fn i32_at(bytes: &[u8], at: usize) -> Option<i32> {
        bytes.get(at..at + 4).and_then(|b| b.try_into().ok()).map(i32::from_le_bytes)
    }

    /// A framed document of exactly `size` bytes (at least 13): one binary field `b`.
    fn binary_document(size: usize) -> Result<DocumentBytes, WireError> {
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&u32::try_from(size).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(&[0x05, b'b', 0]);
        out.extend_from_slice(&u32::try_from(size - 13).unwrap_or(u32::MAX).to_le_bytes());
        out.push(0);
        out.resize(size - 1, 0);
        out.push(0);
        DocumentBytes::new(Bytes::from(out))
    }

    #[test]
    fn message_uncompressed_layout_and_round_trip() -> Result<(), WireError> {
        let message = msg(0)?;
        assert_eq!(message.op_code(), OpCode::Msg);
        let bytes = encode(&message)?;
        assert_eq!(i32_at(&bytes, 0).and_then(|n| usize::try_from(n).ok()), Some(bytes.len()));
        assert_eq!(i32_at(&bytes, 4), Some(11));
        assert_eq!(i32_at(&bytes, 8), Some(22));
        assert_eq!(i32_at(&bytes, 12), Some(2013));
        assert_eq!(Message::decode(bytes)?, message);
        Ok(())
    }

    #[test]
    fn message_encode_appends_to_buffer() -> Result<(), WireError> {
        let message = msg(0)?;
        let alone = encode(&message)?;
        let mut out = BytesMut::from(&b"prefix"[..]);
        message.encode(&mut out)?;
        assert_eq!(out.get(..6), Some(&b"prefix"[..]));
        assert_eq!(out.get(6..), Some(alone.as_ref()));
        Ok(())
    }

    #[test]
    fn message_compressed_layout_and_round_trip() -> Result<(), WireError> {
        for compressor in ALL_COMPRESSORS {
            for flags in [0, MsgFlags::CHECKSUM_PRESENT] {
                let mut message = msg(flags)?;
                let plain = encode(&message)?;
                message.compressor = Some(compressor);
                let bytes = encode(&message)?;
                let name = compressor.name();
                assert_eq!(i32_at(&bytes, 0).and_then(|n| usize::try_from(n).ok()), Some(bytes.len()), "{name}");
                assert_eq!(i32_at(&bytes, 4), Some(11), "{name}");
                assert_eq!(i32_at(&bytes, 12), Some(2012), "{name}");
                assert_eq!(i32_at(&bytes, 16), Some(2013), "{name}");
                assert_eq!(i32_at(&bytes, 20).and_then(|n| usize::try_from(n).ok()), Some(plain.len() - 16), "{name}");
                assert_eq!(bytes.get(24), Some(&compressor.id()), "{name}");
                // The compressed payload is the uncompressed message minus its header, checksum
                // included: the checksum is computed before compression.
                let inner = compressor.decompress(bytes.get(25..).unwrap_or_default(), plain.len() - 16)?;
                assert_eq!(Some(inner.as_slice()), plain.get(16..), "{name}");
                assert_eq!(Message::decode(bytes)?, message, "{name}");
            }
        }
        Ok(())
    }

    #[test]
    fn message_compressed_legacy_ops_round_trip() -> Result<(), WireError> {
        let query = OpQuery {
            flags: 0,
            full_collection_name: "admin.$cmd".to_owned(),
            number_to_skip: 0,
            number_to_return: -1,
            query: DocumentBytes::try_from(&doc! { "isMaster": 1 })?,
            return_fields_selector: None,
        };
        let reply = OpReply::command_reply(DocumentBytes::try_from(&doc! { "ok": 1.0 })?);
        for compressor in [None, Some(Compressor::Noop), Some(Compressor::Snappy), Some(Compressor::Zstd)] {
            for body in [Body::Query(query.clone()), Body::Reply(reply.clone())] {
                let message = Message { header: header(), body, compressor };
                assert_eq!(Message::decode(encode(&message)?)?, message);
            }
        }
        Ok(())
    }

    #[test]
    fn message_length_field_must_match_frame() -> Result<(), WireError> {
        let bytes = encode(&msg(0)?)?;
        let mut longer = BytesMut::from(bytes.as_ref());
        longer.put_u8(0);
        assert!(matches!(Message::decode(longer.freeze()), Err(WireError::InvalidLength(_))));
        assert!(matches!(Message::decode(bytes.slice(..bytes.len() - 1)), Err(WireError::InvalidLength(_))));
        assert!(matches!(Message::decode(Bytes::from_static(&[16, 0, 0])), Err(WireError::Truncated(_))));
        Ok(())
    }

    #[test]
    fn message_compressed_declared_size_out_of_range_rejected() -> Result<(), WireError> {
        let mut message = msg(0)?;
        message.compressor = Some(Compressor::Noop);
        let bytes = encode(&message)?;
        let over = i32::try_from(MAX_MESSAGE_SIZE - HEADER_LEN + 1).unwrap_or(i32::MAX);
        for declared in [-1, i32::MIN, over, i32::MAX] {
            let mut altered = BytesMut::from(bytes.as_ref());
            if let Some(field) = altered.get_mut(20..24) {
                field.copy_from_slice(&declared.to_le_bytes());
            }
            let result = Message::decode(altered.freeze());
            assert!(matches!(result, Err(WireError::InvalidLength(_))), "declared {declared}: {result:?}");
        }
        Ok(())
    }

    #[test]
    fn message_compressed_prefix_truncated() -> Result<(), WireError> {
        // OP_COMPRESSED with an original op code and a size but no compressor id.
        let mut frame = BytesMut::new();
        put_header(&mut frame, HEADER_LEN + 8, header(), 2012)?;
        frame.put_i32_le(2013);
        frame.put_i32_le(0);
        assert!(matches!(Message::decode(frame.freeze()), Err(WireError::Truncated(_))));
        Ok(())
    }

    #[test]
    fn message_encode_rejects_oversized_message() -> Result<(), WireError> {
        let big = binary_document(MAX_BSON_INTERNAL_SIZE)?;
        let mut message = msg(0)?;
        if let Body::Msg(op) = &mut message.body {
            op.sequences = vec![DocumentSequence { identifier: "documents".to_owned(), documents: vec![big; 3] }];
        }
        let mut out = BytesMut::new();
        assert!(matches!(message.encode(&mut out), Err(WireError::MessageTooLarge(_))));
        assert!(out.is_empty());
        Ok(())
    }

    #[test]
    fn message_encode_rejects_oversized_message_even_if_it_compresses() -> Result<(), WireError> {
        // Compressed, these zero-filled documents fit easily, but peers (this decoder and
        // mongod alike) reject an OP_COMPRESSED whose uncompressed size is over the limit.
        let big = binary_document(MAX_BSON_INTERNAL_SIZE)?;
        let mut message = msg(0)?;
        if let Body::Msg(op) = &mut message.body {
            op.sequences = vec![DocumentSequence { identifier: "documents".to_owned(), documents: vec![big; 3] }];
        }
        message.compressor = Some(Compressor::Zstd);
        let mut out = BytesMut::new();
        let result = message.encode(&mut out);
        let decoded = result.as_ref().ok().map(|()| Message::decode(out.clone().freeze()).map(|_| ()));
        assert!(matches!(result, Err(WireError::MessageTooLarge(_))), "{result:?}, decoding it: {decoded:?}");
        Ok(())
    }
}
