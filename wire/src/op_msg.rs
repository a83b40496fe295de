//! `OP_MSG`: flags, one body section, any number of document sequences, optional CRC-32C.

use bytes::{BufMut, Bytes, BytesMut};

use crate::reader::Reader;
use crate::{DocumentBytes, WireError};

/// The `flagBits` of an `OP_MSG`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MsgFlags(u32);

impl MsgFlags {
    /// Bit 0: the message ends with a CRC-32C of everything before it.
    pub const CHECKSUM_PRESENT: u32 = 1 << 0;
    /// Bit 1: the sender will send another message without waiting for a reply; on a request
    /// it means "send no reply" (unacknowledged writes).
    pub const MORE_TO_COME: u32 = 1 << 1;
    /// Bit 16: the client accepts several replies to this request (exhaust cursors).
    pub const EXHAUST_ALLOWED: u32 = 1 << 16;

    /// Bits 0..=15 must be understood by the receiver; these are the ones defined.
    const KNOWN_REQUIRED: u32 = Self::CHECKSUM_PRESENT | Self::MORE_TO_COME;

    /// Flags from their wire value.
    pub fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    /// The wire value.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether a CRC-32C trailer is present.
    pub fn checksum_present(self) -> bool {
        self.0 & Self::CHECKSUM_PRESENT != 0
    }

    /// Whether `moreToCome` is set.
    pub fn more_to_come(self) -> bool {
        self.0 & Self::MORE_TO_COME != 0
    }

    /// Whether `exhaustAllowed` is set.
    pub fn exhaust_allowed(self) -> bool {
        self.0 & Self::EXHAUST_ALLOWED != 0
    }

    /// Returns these flags with `bit` set or cleared.
    #[must_use]
    pub fn with(self, bit: u32, on: bool) -> Self {
        if on { Self(self.0 | bit) } else { Self(self.0 & !bit) }
    }
}

/// A kind-1 section: documents that belong to the body as the array field `identifier`
/// (`documents` for insert, `updates` for update, `deletes` for delete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentSequence {
    /// The body field these documents belong to.
    pub identifier: String,
    /// The documents, in order.
    pub documents: Vec<DocumentBytes>,
}

/// An `OP_MSG` request or reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpMsg {
    /// The flag bits.
    pub flags: MsgFlags,
    /// The kind-0 section: the command or the reply.
    pub body: DocumentBytes,
    /// The kind-1 sections.
    pub sequences: Vec<DocumentSequence>,
}

impl DocumentSequence {
    /// The encoded section length: kind byte, size, identifier and documents.
    fn section_len(&self) -> usize {
        1 + 4 + self.identifier.len() + 1 + self.documents.iter().map(DocumentBytes::len).sum::<usize>()
    }
}

const SECTION_BODY: u8 = 0;
const SECTION_SEQUENCE: u8 = 1;
const CHECKSUM_LEN: usize = 4;

impl OpMsg {
    /// A message with just a body and no flags.
    pub fn new(body: DocumentBytes) -> Self {
        Self { flags: MsgFlags::default(), body, sequences: Vec::new() }
    }

    /// Decodes the part after the header. `header` holds the 16 header bytes as they were
    /// (or, under `OP_COMPRESSED`, as they would have been): the checksum covers them too.
    ///
    /// # Errors
    /// Any framing problem, a checksum mismatch, or unknown required flag bits.
    pub(crate) fn decode(header: &[u8], payload: Bytes) -> Result<Self, WireError> {
        let mut reader = Reader::new(payload.clone(), "OP_MSG flags");
        let flags = MsgFlags::from_bits(reader.u32()?);
        let unknown = flags.bits() & 0xFFFF & !MsgFlags::KNOWN_REQUIRED;
        if unknown != 0 {
            return Err(WireError::UnknownRequiredFlags(unknown));
        }
        let mut sections = reader.rest();
        if flags.checksum_present() {
            let split = sections.len().checked_sub(CHECKSUM_LEN).ok_or(WireError::Truncated("OP_MSG checksum"))?;
            let trailer = sections.split_off(split);
            // The checksum covers the header, the flags and the sections.
            let covered = payload.get(..4 + split).ok_or(WireError::Truncated("OP_MSG checksum"))?;
            verify_checksum(header, covered, &trailer)?;
        }
        let mut reader = Reader::new(sections, "OP_MSG section");
        let mut body = None;
        let mut body_count = 0;
        let mut sequences = Vec::new();
        while !reader.is_empty() {
            match reader.u8()? {
                SECTION_BODY => {
                    body_count += 1;
                    body = Some(reader.document()?);
                }
                SECTION_SEQUENCE => sequences.push(decode_sequence(&mut reader)?),
                kind => return Err(WireError::UnknownSectionKind(kind)),
            }
        }
        match (body, body_count) {
            (Some(body), 1) => Ok(Self { flags, body, sequences }),
            _ => Err(WireError::BodySectionCount(body_count)),
        }
    }

    /// The encoded length after the header, checksum included when flagged.
    pub(crate) fn payload_len(&self) -> usize {
        let sequences: usize = self.sequences.iter().map(DocumentSequence::section_len).sum();
        let checksum = if self.flags.checksum_present() { CHECKSUM_LEN } else { 0 };
        4 + 1 + self.body.len() + sequences + checksum
    }

    /// Writes flags and sections (no checksum: the message encoder adds it, since it covers
    /// the header as well).
    pub(crate) fn encode_payload(&self, out: &mut BytesMut) -> Result<(), WireError> {
        out.put_u32_le(self.flags.bits());
        out.put_u8(SECTION_BODY);
        out.put_slice(self.body.as_bytes());
        for seq in &self.sequences {
            out.put_u8(SECTION_SEQUENCE);
            let size = seq.section_len() - 1;
            let size = i32::try_from(size).map_err(|_| WireError::MessageTooLarge(size))?;
            out.put_i32_le(size);
            out.put_slice(seq.identifier.as_bytes());
            out.put_u8(0);
            for doc in &seq.documents {
                out.put_slice(doc.as_bytes());
            }
        }
        Ok(())
    }
}

fn decode_sequence(reader: &mut Reader) -> Result<DocumentSequence, WireError> {
    let size = reader.i32()?;
    // The size counts itself, so anything under 5 (size + empty identifier) is malformed.
    let size = usize::try_from(size)
        .ok()
        .and_then(|s| s.checked_sub(4))
        .filter(|&s| s >= 1 && s <= reader.remaining())
        .ok_or(WireError::Truncated("OP_MSG document sequence"))?;
    let mut section = reader.split(size)?;
    let identifier = section.cstring()?;
    let mut documents = Vec::new();
    while !section.is_empty() {
        documents.push(section.document()?);
    }
    Ok(DocumentSequence { identifier, documents })
}

fn verify_checksum(header: &[u8], covered: &[u8], trailer: &[u8]) -> Result<(), WireError> {
    let trailer: [u8; 4] = trailer.try_into().map_err(|_| WireError::Truncated("OP_MSG checksum"))?;
    let expected = u32::from_le_bytes(trailer);
    let computed = crc32c::crc32c_append(crc32c::crc32c(header), covered);
    if expected == computed { Ok(()) } else { Err(WireError::ChecksumMismatch { expected, computed }) }
}

/// The CRC-32C of a whole message (header included) without its trailer.
pub(crate) fn checksum(message: &[u8]) -> u32 {
    crc32c::crc32c(message)
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;
    use crate::{Body, Message};

    const REQUEST_ID: i32 = 42;

    fn document(doc: &bson::Document) -> Result<Vec<u8>, bson::error::Error> {
        doc.to_vec()
    }

    /// A whole `OP_MSG` frame: header, `payload`, and a CRC-32C trailer when `checksum` is set.
    fn frame(payload: &[u8], checksum: bool) -> Bytes {
        let trailer = if checksum { CHECKSUM_LEN } else { 0 };
        let mut out = BytesMut::new();
        let length = i32::try_from(16 + payload.len() + trailer).unwrap_or(i32::MAX);
        out.put_i32_le(length);
        out.put_i32_le(REQUEST_ID);
        out.put_i32_le(0);
        out.put_i32_le(2013);
        out.put_slice(payload);
        if checksum {
            let crc = crc32c::crc32c(&out);
            out.put_u32_le(crc);
        }
        out.freeze()
    }

    /// Flags followed by a single body section holding `body`.
    fn body_payload(flags: u32, body: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        out.put_u32_le(flags);
        out.put_u8(SECTION_BODY);
        out.put_slice(body);
        out.to_vec()
    }

    fn decode_msg(frame: Bytes) -> Result<OpMsg, WireError> {
        match Message::decode(frame)?.body {
            Body::Msg(msg) => Ok(msg),
            other => panic!("expected OP_MSG, got {other:?}"),
        }
    }

    fn ping() -> Result<Vec<u8>, bson::error::Error> {
        document(&doc! { "ping": 1, "$db": "admin" })
    }

    #[test]
    fn op_msg_body_only_decodes() -> Result<(), Box<dyn std::error::Error>> {
        let body = ping()?;
        let msg = decode_msg(frame(&body_payload(0, &body), false))?;
        assert_eq!(msg.flags, MsgFlags::default());
        assert_eq!(msg.body.as_bytes(), body.as_slice());
        assert!(msg.sequences.is_empty());
        assert_eq!(msg.body.as_raw().get_str("$db")?, "admin");
        Ok(())
    }

    #[test]
    fn op_msg_checksum_present_decodes() -> Result<(), Box<dyn std::error::Error>> {
        let body = ping()?;
        let msg = decode_msg(frame(&body_payload(MsgFlags::CHECKSUM_PRESENT, &body), true))?;
        assert!(msg.flags.checksum_present());
        assert_eq!(msg.body.as_bytes(), body.as_slice());
        Ok(())
    }

    #[test]
    fn op_msg_checksum_mismatch_is_rejected() -> Result<(), Box<dyn std::error::Error>> {
        let body = ping()?;
        let good = frame(&body_payload(MsgFlags::CHECKSUM_PRESENT, &body), true);
        let mut bad = BytesMut::from(good.slice(..good.len() - CHECKSUM_LEN).as_ref());
        let computed = crc32c::crc32c(&bad);
        bad.put_u32_le(computed ^ 1);
        match Message::decode(bad.freeze()) {
            Err(WireError::ChecksumMismatch { expected, computed: actual }) => {
                assert_eq!(expected, computed ^ 1);
                assert_eq!(actual, computed);
            }
            other => panic!("expected ChecksumMismatch, got {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn op_msg_checksum_covers_header() -> Result<(), Box<dyn std::error::Error>> {
        let body = ping()?;
        let mut altered = BytesMut::from(frame(&body_payload(MsgFlags::CHECKSUM_PRESENT, &body), true).as_ref());
        // Change the request id only: the body is intact but the checksum no longer matches.
        if let Some(byte) = altered.get_mut(4) {
            *byte ^= 0xff;
        }
        assert!(matches!(Message::decode(altered.freeze()), Err(WireError::ChecksumMismatch { .. })));
        Ok(())
    }

    #[test]
    fn op_msg_checksum_flag_without_room_is_truncated() {
        // Flags announce a checksum, but fewer than four bytes follow them.
        let mut payload = BytesMut::new();
        payload.put_u32_le(MsgFlags::CHECKSUM_PRESENT);
        payload.put_slice(&[0, 0]);
        assert!(matches!(Message::decode(frame(&payload, false)), Err(WireError::Truncated(_))));
    }

    #[test]
    fn op_msg_unknown_required_flags_are_rejected() -> Result<(), Box<dyn std::error::Error>> {
        let body = ping()?;
        for bit in 2..16 {
            let result = Message::decode(frame(&body_payload(1 << bit, &body), false));
            match result {
                Err(WireError::UnknownRequiredFlags(bits)) => assert_eq!(bits, 1 << bit),
                other => panic!("bit {bit}: expected UnknownRequiredFlags, got {other:?}"),
            }
        }
        // Known bits alongside an unknown one: only the unknown one is reported.
        let flags = MsgFlags::MORE_TO_COME | (1 << 2);
        let result = Message::decode(frame(&body_payload(flags, &body), false));
        assert!(matches!(result, Err(WireError::UnknownRequiredFlags(4))), "{result:?}");
        Ok(())
    }

    #[test]
    fn op_msg_unknown_optional_flags_are_accepted() -> Result<(), Box<dyn std::error::Error>> {
        let body = ping()?;
        for bit in [17, 20, 31] {
            let flags = (1u32 << bit) | MsgFlags::EXHAUST_ALLOWED;
            let bytes = frame(&body_payload(flags, &body), false);
            let message = Message::decode(bytes.clone())?;
            let Body::Msg(msg) = &message.body else { panic!("expected OP_MSG, got {message:?}") };
            assert_eq!(msg.flags.bits(), flags, "bit {bit} kept");
            assert!(msg.flags.exhaust_allowed());
            // Flags survive a re-encode unchanged.
            let mut out = BytesMut::new();
            message.encode(&mut out)?;
            assert_eq!(out.freeze(), bytes);
        }
        Ok(())
    }

    #[test]
    fn op_msg_flags_accessors_match_bits() {
        let flags = MsgFlags::default().with(MsgFlags::MORE_TO_COME, true).with(MsgFlags::EXHAUST_ALLOWED, true);
        assert!(flags.more_to_come());
        assert!(flags.exhaust_allowed());
        assert!(!flags.checksum_present());
        assert_eq!(flags.bits(), (1 << 1) | (1 << 16));
        let cleared = flags.with(MsgFlags::MORE_TO_COME, false);
        assert!(!cleared.more_to_come());
        assert_eq!(cleared, MsgFlags::from_bits(1 << 16));
    }

    #[test]
    fn op_msg_zero_body_sections_rejected() -> Result<(), Box<dyn std::error::Error>> {
        // No sections at all.
        let mut payload = BytesMut::new();
        payload.put_u32_le(0);
        assert!(matches!(Message::decode(frame(&payload, false)), Err(WireError::BodySectionCount(0))));

        // A document sequence but no body.
        let doc = document(&doc! { "a": 1 })?;
        payload.put_u8(SECTION_SEQUENCE);
        payload.put_i32_le(i32::try_from(4 + 10 + doc.len())?);
        payload.put_slice(b"documents\0");
        payload.put_slice(&doc);
        assert!(matches!(Message::decode(frame(&payload, false)), Err(WireError::BodySectionCount(0))));
        Ok(())
    }

    #[test]
    fn op_msg_two_body_sections_rejected() -> Result<(), Box<dyn std::error::Error>> {
        let body = ping()?;
        let mut payload = body_payload(0, &body);
        payload.push(SECTION_BODY);
        payload.extend_from_slice(&body);
        assert!(matches!(Message::decode(frame(&payload, false)), Err(WireError::BodySectionCount(2))));
        Ok(())
    }

    #[test]
    fn op_msg_unknown_section_kind_rejected() -> Result<(), Box<dyn std::error::Error>> {
        let body = ping()?;
        for kind in [2u8, 3, 0x80, 0xff] {
            let mut payload = body_payload(0, &body);
            payload.push(kind);
            payload.extend_from_slice(&body);
            match Message::decode(frame(&payload, false)) {
                Err(WireError::UnknownSectionKind(k)) => assert_eq!(k, kind),
                other => panic!("kind {kind}: expected UnknownSectionKind, got {other:?}"),
            }
        }
        Ok(())
    }

    #[test]
    fn op_msg_sequence_with_several_documents_decodes() -> Result<(), Box<dyn std::error::Error>> {
        let body = document(&doc! { "insert": "coll", "$db": "test" })?;
        let docs =
            [document(&doc! { "_id": 1 })?, document(&doc! { "_id": 2, "x": "two" })?, document(&doc! { "_id": 3 })?];
        let mut payload = body_payload(0, &body);
        payload.push(SECTION_SEQUENCE);
        let size = 4 + b"documents\0".len() + docs.iter().map(Vec::len).sum::<usize>();
        payload.extend_from_slice(&i32::try_from(size)?.to_le_bytes());
        payload.extend_from_slice(b"documents\0");
        for doc in &docs {
            payload.extend_from_slice(doc);
        }
        // A second, empty sequence after the first.
        payload.push(SECTION_SEQUENCE);
        payload.extend_from_slice(&(4i32 + 8).to_le_bytes());
        payload.extend_from_slice(b"updates\0");

        let bytes = frame(&payload, false);
        let msg = decode_msg(bytes.clone())?;
        assert_eq!(msg.sequences.len(), 2);
        let first = msg.sequences.first().ok_or("missing sequence")?;
        assert_eq!(first.identifier, "documents");
        let decoded: Vec<&[u8]> = first.documents.iter().map(DocumentBytes::as_bytes).collect();
        let expected: Vec<&[u8]> = docs.iter().map(Vec::as_slice).collect();
        assert_eq!(decoded, expected);
        let second = msg.sequences.get(1).ok_or("missing sequence")?;
        assert_eq!(second.identifier, "updates");
        assert!(second.documents.is_empty());

        // Encoding gives back the same bytes.
        let message = Message {
            header: crate::Header { request_id: REQUEST_ID, response_to: 0 },
            body: Body::Msg(msg),
            compressor: None,
        };
        let mut out = BytesMut::new();
        message.encode(&mut out)?;
        assert_eq!(out.freeze(), bytes);
        Ok(())
    }

    #[test]
    fn op_msg_sequence_before_body_decodes() -> Result<(), Box<dyn std::error::Error>> {
        let body = ping()?;
        let doc = document(&doc! { "q": {} })?;
        let mut payload = BytesMut::new();
        payload.put_u32_le(0);
        payload.put_u8(SECTION_SEQUENCE);
        payload.put_i32_le(i32::try_from(4 + 8 + doc.len())?);
        payload.put_slice(b"deletes\0");
        payload.put_slice(&doc);
        payload.put_u8(SECTION_BODY);
        payload.put_slice(&body);
        let msg = decode_msg(frame(&payload, false))?;
        assert_eq!(msg.body.as_bytes(), body.as_slice());
        assert_eq!(msg.sequences.first().map(|s| s.identifier.as_str()), Some("deletes"));
        Ok(())
    }

    #[test]
    fn op_msg_sequence_size_out_of_range_rejected() -> Result<(), Box<dyn std::error::Error>> {
        let body = ping()?;
        // Under 5 (size + empty identifier), negative, and past the end of the message.
        for size in [0i32, 4, -1, i32::MIN, 1000] {
            let mut payload = body_payload(0, &body);
            payload.push(SECTION_SEQUENCE);
            payload.extend_from_slice(&size.to_le_bytes());
            payload.extend_from_slice(b"documents\0");
            let result = Message::decode(frame(&payload, false));
            assert!(matches!(result, Err(WireError::Truncated(_))), "size {size}: {result:?}");
        }
        Ok(())
    }

    #[test]
    fn op_msg_sequence_identifier_without_nul_rejected() -> Result<(), Box<dyn std::error::Error>> {
        let body = ping()?;
        let mut payload = body_payload(0, &body);
        payload.push(SECTION_SEQUENCE);
        payload.extend_from_slice(&(4i32 + 9).to_le_bytes());
        payload.extend_from_slice(b"documents");
        // The NUL lies just past the section: it must not be borrowed from what follows.
        payload.push(0);
        let result = Message::decode(frame(&payload, false));
        assert!(matches!(result, Err(WireError::Truncated(_))), "{result:?}");
        Ok(())
    }

    #[test]
    fn op_msg_sequence_identifier_invalid_utf8_rejected() -> Result<(), Box<dyn std::error::Error>> {
        let body = ping()?;
        let mut payload = body_payload(0, &body);
        payload.push(SECTION_SEQUENCE);
        payload.extend_from_slice(&(4i32 + 3).to_le_bytes());
        payload.extend_from_slice(&[0xc3, 0x28, 0]);
        assert!(matches!(Message::decode(frame(&payload, false)), Err(WireError::InvalidCString)));
        Ok(())
    }

    #[test]
    fn op_msg_sequence_document_past_section_rejected() -> Result<(), Box<dyn std::error::Error>> {
        let body = ping()?;
        let doc = document(&doc! { "a": 1 })?;
        let mut payload = body_payload(0, &body);
        payload.push(SECTION_SEQUENCE);
        // The section ends right after the document's length prefix, which points past it
        // (into bytes that follow the section).
        payload.extend_from_slice(&(4i32 + 2 + 4).to_le_bytes());
        payload.extend_from_slice(b"d\0");
        payload.extend_from_slice(&doc);
        let result = Message::decode(frame(&payload, false));
        assert!(matches!(result, Err(WireError::Truncated(_))), "{result:?}");
        Ok(())
    }

    #[test]
    fn op_msg_body_document_past_end_rejected() -> Result<(), Box<dyn std::error::Error>> {
        let body = ping()?;
        let mut payload = body_payload(0, &body);
        payload.truncate(payload.len() - 1);
        let result = Message::decode(frame(&payload, false));
        assert!(matches!(result, Err(WireError::Truncated(_))), "{result:?}");
        Ok(())
    }

    #[test]
    fn op_msg_body_document_bad_frame_rejected() -> Result<(), Box<dyn std::error::Error>> {
        let mut body = ping()?;
        // Missing terminator.
        if let Some(last) = body.last_mut() {
            *last = 1;
        }
        let result = Message::decode(frame(&body_payload(0, &body), false));
        assert!(matches!(result, Err(WireError::InvalidDocument(_))), "{result:?}");
        // Length prefix under the five-byte minimum, and negative.
        for len in [0i32, 3, -5] {
            let mut payload = 0u32.to_le_bytes().to_vec();
            payload.push(SECTION_BODY);
            payload.extend_from_slice(&len.to_le_bytes());
            payload.push(0);
            let result = Message::decode(frame(&payload, false));
            assert!(matches!(result, Err(WireError::InvalidDocument(_))), "len {len}: {result:?}");
        }
        Ok(())
    }

    #[test]
    fn op_msg_missing_flags_is_truncated() {
        let result = Message::decode(frame(&[0, 0], false));
        assert!(matches!(result, Err(WireError::Truncated(_))), "{result:?}");
    }
}
