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
