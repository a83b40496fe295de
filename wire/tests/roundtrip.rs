//! Property tests: every message the encoder writes decodes back to itself through
//! [`MessageCodec`], whatever the compressor and however the bytes arrive.

mod common;

use bytes::BytesMut;
use common::{message, message_with, op_msg, op_query, op_reply};
use monarch_wire::{Message, MessageCodec, WireError};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

fn encode(message: &Message) -> Result<BytesMut, WireError> {
    let mut out = BytesMut::new();
    message.encode(&mut out)?;
    Ok(out)
}

/// Decodes exactly one message from `bytes` and checks nothing is left over.
fn decode_one(bytes: &[u8]) -> Result<Option<Message>, WireError> {
    let mut codec = MessageCodec::default();
    let mut src = BytesMut::from(bytes);
    let decoded = codec.decode(&mut src)?;
    assert!(src.is_empty(), "{} bytes left after the message", src.len());
    assert_eq!(codec.last_decoded_len(), bytes.len());
    Ok(decoded)
}

/// Feeds `bytes` to the decoder in pieces ending at each of `cuts` (then the rest), checking
/// that nothing comes out before the last byte and that `expected` comes out with it.
fn feed_in_chunks(bytes: &[u8], cuts: &[usize], expected: &Message) -> Result<(), TestCaseError> {
    let mut codec = MessageCodec::default();
    let mut src = BytesMut::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&bytes.len())) {
        let chunk = bytes.get(start..end).ok_or_else(|| TestCaseError::fail("cut out of order"))?;
        src.extend_from_slice(chunk);
        start = end;
        let decoded = codec.decode(&mut src)?;
        if end < bytes.len() {
            prop_assert!(decoded.is_none(), "a message came out after {end} of {} bytes", bytes.len());
            prop_assert_eq!(src.len(), end, "the decoder consumed part of an incomplete message");
        } else {
            prop_assert_eq!(decoded.as_ref(), Some(expected));
            prop_assert!(src.is_empty());
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn roundtrip_op_msg_through_codec(message in message_with(op_msg())) {
        let bytes = encode(&message)?;
        let decoded = decode_one(&bytes)?;
        prop_assert_eq!(decoded.as_ref(), Some(&message));
        // Re-encoding the decoded message gives the same bytes.
        if let Some(decoded) = decoded {
            prop_assert_eq!(encode(&decoded)?, bytes);
        }
    }

    #[test]
    fn roundtrip_op_query_through_codec(message in message_with(op_query())) {
        let bytes = encode(&message)?;
        let decoded = decode_one(&bytes)?;
        prop_assert_eq!(decoded.as_ref(), Some(&message));
        if let Some(decoded) = decoded {
            prop_assert_eq!(encode(&decoded)?, bytes);
        }
    }

    #[test]
    fn roundtrip_op_reply_through_codec(message in message_with(op_reply())) {
        let bytes = encode(&message)?;
        let decoded = decode_one(&bytes)?;
        prop_assert_eq!(decoded.as_ref(), Some(&message));
        if let Some(decoded) = decoded {
            prop_assert_eq!(encode(&decoded)?, bytes);
        }
    }

    #[test]
    fn roundtrip_one_byte_at_a_time(message in message()) {
        let bytes = encode(&message)?;
        let cuts: Vec<usize> = (1..bytes.len()).collect();
        feed_in_chunks(&bytes, &cuts, &message)?;
    }

    #[test]
    fn roundtrip_random_chunks(
        (message, cuts) in message().prop_flat_map(|message| {
            let len = encode(&message).map(|b| b.len()).unwrap_or(0);
            let cuts = proptest::collection::btree_set(1..len.max(2), 0..8);
            (Just(message), cuts)
        })
    ) {
        let bytes = encode(&message)?;
        let cuts: Vec<usize> = cuts.into_iter().filter(|&cut| cut < bytes.len()).collect();
        feed_in_chunks(&bytes, &cuts, &message)?;
    }

    #[test]
    fn roundtrip_stream_of_messages(
        messages in proptest::collection::vec(message(), 1..5),
        chunk in 1usize..64,
    ) {
        let mut stream = BytesMut::new();
        for message in &messages {
            message.encode(&mut stream)?;
        }
        let mut codec = MessageCodec::default();
        let mut src = BytesMut::new();
        let mut decoded = Vec::new();
        for piece in stream.chunks(chunk) {
            src.extend_from_slice(piece);
            while let Some(message) = codec.decode(&mut src)? {
                decoded.push(message);
            }
        }
        prop_assert!(src.is_empty());
        prop_assert_eq!(decoded, messages);
    }
}
