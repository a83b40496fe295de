//! Hostile and broken input: the decoder must answer with an error or "not yet", never panic,
//! and must not reserve memory for a length it is about to reject.

mod common;

use bson::doc;
use bytes::{BufMut, BytesMut};
use monarch_wire::{
    Body, Compressor, DocumentBytes, Header, MAX_BSON_INTERNAL_SIZE, MAX_MESSAGE_SIZE, Message, MessageCodec, OpMsg,
    WireError,
};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const OP_REPLY: i32 = 1;
const OP_INSERT: i32 = 2002;
const OP_QUERY: i32 = 2004;
const OP_COMPRESSED: i32 = 2012;
const OP_MSG: i32 = 2013;

/// A frame with a correct length prefix around `payload`.
fn frame(op: i32, payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_i32_le(i32::try_from(16 + payload.len()).unwrap_or(i32::MAX));
    out.put_i32_le(1);
    out.put_i32_le(0);
    out.put_i32_le(op);
    out.put_slice(payload);
    out
}

/// Runs the decoder over `src` until it stops producing messages; returns the first error.
fn drain(src: &mut BytesMut) -> Result<usize, WireError> {
    let mut codec = MessageCodec::default();
    let mut count = 0;
    while codec.decode(src)?.is_some() {
        count += 1;
    }
    Ok(count)
}

fn encode(message: &Message) -> Result<BytesMut, WireError> {
    let mut out = BytesMut::new();
    message.encode(&mut out)?;
    Ok(out)
}

fn ping(compressor: Option<Compressor>) -> Result<Message, WireError> {
    let body = DocumentBytes::try_from(&doc! { "ping": 1, "$db": "admin" })?;
    Ok(Message { header: Header { request_id: 5, response_to: 0 }, body: Body::Msg(OpMsg::new(body)), compressor })
}

/// Flags and one body section holding `body`.
fn body_section(body: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0, 0, 0];
    out.extend_from_slice(body);
    out
}

/// A framed document of exactly `size` bytes (at least 13): one binary field `b`.
fn binary_document(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&u32::try_from(size).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&[0x05, b'b', 0]);
    out.extend_from_slice(&u32::try_from(size - 13).unwrap_or(u32::MAX).to_le_bytes());
    out.push(0);
    out.resize(size - 1, 0);
    out.push(0);
    out
}

fn set_i32(bytes: &mut BytesMut, at: usize, value: i32) {
    if let Some(field) = bytes.get_mut(at..at + 4) {
        field.copy_from_slice(&value.to_le_bytes());
    }
}

/// Byte patterns likely to land on an interesting code path once the frame is well formed.
fn plausible_frame() -> impl Strategy<Value = Vec<u8>> {
    let op =
        prop_oneof![Just(OP_REPLY), Just(OP_QUERY), Just(OP_COMPRESSED), Just(OP_MSG), Just(OP_INSERT), any::<i32>()];
    let compressed_prefix = (
        prop_oneof![Just(OP_REPLY), Just(OP_QUERY), Just(OP_COMPRESSED), Just(OP_MSG), any::<i32>()],
        prop_oneof![0i32..64, any::<i32>()],
        prop_oneof![0u8..5, any::<u8>()],
    );
    (op, compressed_prefix, proptest::collection::vec(any::<u8>(), 0..256)).prop_map(
        |(op, (inner, declared, compressor), rest)| {
            let mut payload = Vec::new();
            if op == OP_COMPRESSED {
                payload.extend_from_slice(&inner.to_le_bytes());
                payload.extend_from_slice(&declared.to_le_bytes());
                payload.push(compressor);
            }
            payload.extend_from_slice(&rest);
            frame(op, &payload).to_vec()
        },
    )
}

proptest! {
    #[test]
    fn malformed_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut src = BytesMut::from(bytes.as_slice());
        let _ = drain(&mut src);
        prop_assert!(src.capacity() <= MAX_MESSAGE_SIZE.max(bytes.len()) + 64);
    }

    #[test]
    fn malformed_plausible_frames_never_panic(bytes in plausible_frame()) {
        let mut src = BytesMut::from(bytes.as_slice());
        let _ = drain(&mut src);
    }

    #[test]
    fn malformed_flipped_bytes_never_panic(
        message in common::message(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..6),
    ) {
        let mut bytes = encode(&message)?;
        for (at, mask) in &flips {
            let at = at.index(bytes.len());
            if let Some(byte) = bytes.get_mut(at) {
                *byte ^= mask;
            }
        }
        let _ = drain(&mut bytes);
    }

    #[test]
    fn malformed_truncated_message_waits(message in common::message(), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&message)?;
        let cut = cut.index(bytes.len());
        let mut src = BytesMut::from(bytes.get(..cut).unwrap_or_default());
        // Announcing more than is there is not an error: the rest may still arrive.
        prop_assert!(MessageCodec::default().decode(&mut src)?.is_none());
        prop_assert_eq!(src.len(), cut);
    }

    #[test]
    fn malformed_truncated_frame_never_panics(message in common::message(), cut in any::<prop::sample::Index>()) {
        let mut bytes = encode(&message)?;
        let cut = cut.index(bytes.len() - 15) + 16;
        bytes.truncate(cut);
        // Shorten the length prefix too, so the decoder parses the cut frame.
        set_i32(&mut bytes, 0, i32::try_from(cut)?);
        // Some cuts still leave a valid message (an OP_QUERY without its selector, say); the
        // point is that none panics.
        let _ = MessageCodec::default().decode(&mut bytes);
    }
}

#[test]
fn malformed_length_below_minimum_rejected() {
    for length in 0..16 {
        let mut src = BytesMut::with_capacity(64);
        src.put_i32_le(length);
        src.put_slice(&[0; 12]);
        let result = MessageCodec::default().decode(&mut src);
        assert!(matches!(result, Err(WireError::InvalidLength(n)) if n == i64::from(length)), "{length}: {result:?}");
        assert_eq!(src.capacity(), 64, "{length}: the buffer was grown");
    }
}

#[test]
fn malformed_length_above_maximum_rejected_before_buffering() {
    let over = i32::try_from(MAX_MESSAGE_SIZE + 1).unwrap_or(i32::MAX);
    for length in [over, 100_000_000, i32::MAX] {
        // Only the length prefix has arrived: the decoder must not reserve room for the rest.
        let mut src = BytesMut::with_capacity(16);
        src.put_i32_le(length);
        let result = MessageCodec::default().decode(&mut src);
        assert!(matches!(result, Err(WireError::InvalidLength(n)) if n == i64::from(length)), "{length}: {result:?}");
        assert!(src.capacity() < 1024, "{length}: capacity grew to {}", src.capacity());
    }
}

#[test]
fn malformed_negative_length_rejected_before_buffering() {
    for length in [-1, -16, i32::MIN] {
        let mut src = BytesMut::with_capacity(16);
        src.put_i32_le(length);
        let result = MessageCodec::default().decode(&mut src);
        assert!(matches!(result, Err(WireError::InvalidLength(n)) if n == i64::from(length)), "{length}: {result:?}");
        assert!(src.capacity() < 1024, "{length}: capacity grew to {}", src.capacity());
    }
}

#[test]
fn malformed_maximum_length_is_accepted_and_awaited() -> TestResult {
    let mut src = BytesMut::new();
    src.put_i32_le(i32::try_from(MAX_MESSAGE_SIZE)?);
    assert!(MessageCodec::default().decode(&mut src)?.is_none());
    Ok(())
}

#[test]
fn malformed_truncated_message_returns_none() -> TestResult {
    let bytes = encode(&ping(None)?)?;
    for cut in 0..bytes.len() {
        let mut src = BytesMut::from(bytes.get(..cut).unwrap_or_default());
        assert!(MessageCodec::default().decode(&mut src)?.is_none(), "cut at {cut}");
        assert_eq!(src.len(), cut, "cut at {cut}: bytes were consumed");
    }
    let mut src = bytes.clone();
    assert_eq!(MessageCodec::default().decode(&mut src)?, Some(ping(None)?));
    Ok(())
}

#[test]
fn malformed_compressed_wrong_declared_size_rejected() -> TestResult {
    for compressor in [Compressor::Noop, Compressor::Snappy, Compressor::Zlib, Compressor::Zstd] {
        let good = encode(&ping(Some(compressor))?)?;
        let declared = i32::from_le_bytes(good.get(20..24).ok_or("short")?.try_into()?);
        for wrong in [declared - 1, declared + 1, 0, 1_000_000] {
            let mut bytes = good.clone();
            set_i32(&mut bytes, 20, wrong);
            let result = MessageCodec::default().decode(&mut bytes);
            assert!(
                matches!(result, Err(WireError::UncompressedSizeMismatch { .. } | WireError::Decompression { .. })),
                "{} declared {wrong} instead of {declared}: {result:?}",
                compressor.name()
            );
        }
    }
    // Noop reports the sizes exactly.
    let mut bytes = encode(&ping(Some(Compressor::Noop))?)?;
    let declared = i32::from_le_bytes(bytes.get(20..24).ok_or("short")?.try_into()?);
    set_i32(&mut bytes, 20, declared + 3);
    match MessageCodec::default().decode(&mut bytes) {
        Err(WireError::UncompressedSizeMismatch { declared: d, actual }) => {
            assert_eq!(d, usize::try_from(declared + 3)?);
            assert_eq!(actual, usize::try_from(declared)?);
        }
        other => panic!("expected UncompressedSizeMismatch, got {other:?}"),
    }
    Ok(())
}

#[test]
fn malformed_compressed_declared_size_over_limit_rejected() -> TestResult {
    let mut bytes = encode(&ping(Some(Compressor::Zstd))?)?;
    set_i32(&mut bytes, 20, i32::try_from(MAX_MESSAGE_SIZE)?);
    let result = MessageCodec::default().decode(&mut bytes);
    assert!(matches!(result, Err(WireError::InvalidLength(_))), "{result:?}");
    Ok(())
}

#[test]
fn malformed_corrupt_compressed_payload_rejected() -> TestResult {
    for compressor in [Compressor::Snappy, Compressor::Zlib, Compressor::Zstd] {
        let mut bytes = encode(&ping(Some(compressor))?)?;
        for byte in bytes.get_mut(25..).unwrap_or_default() {
            *byte = 0xff;
        }
        let result = MessageCodec::default().decode(&mut bytes);
        assert!(
            matches!(result, Err(WireError::Decompression { .. } | WireError::UncompressedSizeMismatch { .. })),
            "{}: {result:?}",
            compressor.name()
        );
    }
    Ok(())
}

#[test]
fn malformed_unknown_compressor_rejected() -> TestResult {
    for id in [4u8, 5, 0x80, 0xff] {
        let mut bytes = encode(&ping(Some(Compressor::Noop))?)?;
        if let Some(byte) = bytes.get_mut(24) {
            *byte = id;
        }
        let result = MessageCodec::default().decode(&mut bytes);
        assert!(matches!(result, Err(WireError::UnknownCompressor(n)) if n == id), "{id}: {result:?}");
    }
    Ok(())
}

#[test]
fn malformed_compressed_wrapping_compressed_rejected() -> TestResult {
    let inner = encode(&ping(Some(Compressor::Noop))?)?;
    let mut payload = Vec::new();
    payload.extend_from_slice(&OP_COMPRESSED.to_le_bytes());
    payload.extend_from_slice(&i32::try_from(inner.len() - 16)?.to_le_bytes());
    payload.push(Compressor::Noop.id());
    payload.extend_from_slice(inner.get(16..).ok_or("short")?);
    let mut src = frame(OP_COMPRESSED, &payload);
    let result = MessageCodec::default().decode(&mut src);
    assert!(matches!(result, Err(WireError::InvalidCompressedOpCode(OP_COMPRESSED))), "{result:?}");
    Ok(())
}

#[test]
fn malformed_compressed_legacy_op_rejected() -> TestResult {
    let mut bytes = encode(&ping(Some(Compressor::Noop))?)?;
    set_i32(&mut bytes, 16, OP_INSERT);
    let result = MessageCodec::default().decode(&mut bytes);
    assert!(matches!(result, Err(WireError::UnsupportedOpCode(OP_INSERT))), "{result:?}");
    Ok(())
}

#[test]
fn malformed_legacy_insert_rejected() -> TestResult {
    // OP_INSERT: flags, "test.coll", one document.
    let mut payload = vec![0, 0, 0, 0];
    payload.extend_from_slice(b"test.coll\0");
    payload.extend_from_slice(&doc! { "_id": 1 }.to_vec()?);
    let mut src = frame(OP_INSERT, &payload);
    let result = MessageCodec::default().decode(&mut src);
    assert!(matches!(result, Err(WireError::UnsupportedOpCode(OP_INSERT))), "{result:?}");
    for legacy in [2001, 2005, 2006, 2007, 2010, 2011] {
        let result = MessageCodec::default().decode(&mut frame(legacy, &payload));
        assert!(matches!(result, Err(WireError::UnsupportedOpCode(n)) if n == legacy), "{legacy}: {result:?}");
    }
    Ok(())
}

#[test]
fn malformed_document_length_past_section_rejected() -> TestResult {
    let body = doc! { "insert": "c", "$db": "test" }.to_vec()?;
    let doc = doc! { "_id": 1 }.to_vec()?;
    // A kind-1 section sized for `doc`, but `doc` claims six more bytes: exactly the size of
    // the section that follows, which holds valid-looking bytes. They must not be borrowed.
    let mut stretched = doc.clone();
    let claimed = i32::try_from(doc.len() + 6)?;
    stretched.splice(..4, claimed.to_le_bytes());
    let mut payload = body_section(&body);
    payload.push(1);
    payload.extend_from_slice(&i32::try_from(4 + 2 + doc.len())?.to_le_bytes());
    payload.extend_from_slice(b"d\0");
    payload.extend_from_slice(&stretched);
    payload.extend_from_slice(&[1, 5, 0, 0, 0, 0]);
    let result = MessageCodec::default().decode(&mut frame(OP_MSG, &payload));
    assert!(matches!(result, Err(WireError::Truncated(_))), "{result:?}");

    // The body's own prefix pointing past the end of the message.
    let mut long_body = body.clone();
    long_body.splice(..4, i32::try_from(body.len() + 1)?.to_le_bytes());
    let result = MessageCodec::default().decode(&mut frame(OP_MSG, &body_section(&long_body)));
    assert!(matches!(result, Err(WireError::Truncated(_))), "{result:?}");

    // And an OP_QUERY whose query document runs past the end of the message.
    let mut payload = vec![0, 0, 0, 0];
    payload.extend_from_slice(b"admin.$cmd\0");
    payload.extend_from_slice(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    payload.extend_from_slice(&long_body);
    let result = MessageCodec::default().decode(&mut frame(OP_QUERY, &payload));
    assert!(matches!(result, Err(WireError::Truncated(_))), "{result:?}");
    Ok(())
}

#[test]
fn malformed_oversized_document_rejected() -> TestResult {
    let too_big = binary_document(MAX_BSON_INTERNAL_SIZE + 1);
    let result = MessageCodec::default().decode(&mut frame(OP_MSG, &body_section(&too_big)));
    assert!(
        matches!(result, Err(WireError::DocumentTooLarge { size, limit })
            if size == MAX_BSON_INTERNAL_SIZE + 1 && limit == MAX_BSON_INTERNAL_SIZE),
        "{:?}",
        result.map(|m| m.map(|m| m.op_code()))
    );

    // The same document inside a document sequence.
    let mut payload = body_section(&doc! { "insert": "c" }.to_vec()?);
    payload.push(1);
    payload.extend_from_slice(&i32::try_from(4 + 2 + too_big.len())?.to_le_bytes());
    payload.extend_from_slice(b"d\0");
    payload.extend_from_slice(&too_big);
    let result = MessageCodec::default().decode(&mut frame(OP_MSG, &payload));
    assert!(matches!(result, Err(WireError::DocumentTooLarge { .. })), "{:?}", result.map(|_| ()));

    // One byte less is the largest document accepted.
    let largest = binary_document(MAX_BSON_INTERNAL_SIZE);
    let message = MessageCodec::default().decode(&mut frame(OP_MSG, &body_section(&largest)))?.ok_or("no message")?;
    let Body::Msg(msg) = message.body else { return Err("not an OP_MSG".into()) };
    assert_eq!(msg.body.len(), MAX_BSON_INTERNAL_SIZE);
    Ok(())
}

#[test]
fn malformed_checksum_mismatch_rejected() -> TestResult {
    let mut message = ping(None)?;
    if let Body::Msg(msg) = &mut message.body {
        msg.flags = msg.flags.with(monarch_wire::MsgFlags::CHECKSUM_PRESENT, true);
    }
    let good = encode(&message)?;
    assert_eq!(MessageCodec::default().decode(&mut good.clone())?, Some(message));
    let mut bad = good.clone();
    let last = bad.len() - 1;
    if let Some(byte) = bad.get_mut(last) {
        *byte ^= 0x01;
    }
    let result = MessageCodec::default().decode(&mut bad);
    assert!(matches!(result, Err(WireError::ChecksumMismatch { .. })), "{result:?}");
    Ok(())
}

#[test]
fn malformed_trailing_bytes_after_query_rejected() -> TestResult {
    let mut payload = vec![0, 0, 0, 0];
    payload.extend_from_slice(b"admin.$cmd\0");
    payload.extend_from_slice(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    payload.extend_from_slice(&doc! { "isMaster": 1 }.to_vec()?);
    payload.extend_from_slice(&doc! {}.to_vec()?);
    payload.extend_from_slice(&[7, 7]);
    let result = MessageCodec::default().decode(&mut frame(OP_QUERY, &payload));
    assert!(matches!(result, Err(WireError::TrailingBytes(2))), "{result:?}");
    Ok(())
}
