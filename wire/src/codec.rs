//! Framing for tokio-util: a whole message or "not yet", never a partial parse.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::{MAX_MESSAGE_SIZE, MIN_MESSAGE_SIZE, Message, WireError};

/// The least a partial message's buffer grows by: most messages arrive whole within it.
pub const GROWTH_FLOOR: usize = 64 * 1024;

/// Splits a byte stream into [`Message`]s and encodes messages back.
///
/// The decoder reads the length prefix first and rejects a length outside
/// `16..=48000000` before reserving any memory for the body; an incomplete message is the
/// normal `Ok(None)` outcome, not an error. The buffer grows with the bytes that have
/// arrived, not with the length announced, so a peer that announces 48 MB and sends four
/// bytes holds [`GROWTH_FLOOR`] of memory, not 48 MB.
///
/// It also remembers the on-the-wire size of the last message it decoded and encoded, so the
/// server can count compressed traffic without framing anything twice.
#[derive(Debug, Default, Clone, Copy)]
pub struct MessageCodec {
    last_decoded_len: usize,
    last_encoded_len: usize,
}

impl MessageCodec {
    /// The wire size of the last message decoded (compressed size for `OP_COMPRESSED`).
    pub fn last_decoded_len(&self) -> usize {
        self.last_decoded_len
    }

    /// The wire size of the last message encoded.
    pub fn last_encoded_len(&self) -> usize {
        self.last_encoded_len
    }
}

impl Decoder for MessageCodec {
    type Item = Message;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, WireError> {
        let Some(prefix) = src.get(..4) else {
            return Ok(None);
        };
        let mut length = [0u8; 4];
        length.copy_from_slice(prefix);
        let length = i32::from_le_bytes(length);
        let len = usize::try_from(length)
            .ok()
            .filter(|n| (MIN_MESSAGE_SIZE..=MAX_MESSAGE_SIZE).contains(n))
            .ok_or(WireError::InvalidLength(i64::from(length)))?;
        if src.len() < len {
            // At most double what has arrived: memory follows the bytes a peer really sent,
            // and a large message still costs only a logarithmic number of copies.
            src.reserve((len - src.len()).min(src.len().max(GROWTH_FLOOR)));
            return Ok(None);
        }
        let frame = src.split_to(len).freeze();
        self.last_decoded_len = len;
        Message::decode(frame).map(Some)
    }
}

impl Encoder<Message> for MessageCodec {
    type Error = WireError;

    fn encode(&mut self, message: Message, dst: &mut BytesMut) -> Result<(), WireError> {
        let before = dst.len();
        message.encode(dst)?;
        self.last_encoded_len = dst.len() - before;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;
    use crate::{Body, Compressor, DocumentBytes, Header, OpMsg};

    fn ping() -> Result<Message, WireError> {
        let body = DocumentBytes::try_from(&doc! { "ping": 1, "$db": "admin" })?;
        Ok(Message {
            header: Header { request_id: 1, response_to: 0 },
            body: Body::Msg(OpMsg::new(body)),
            compressor: None,
        })
    }

    #[test]
    fn codec_waits_for_length_prefix() -> Result<(), WireError> {
        let mut codec = MessageCodec::default();
        let mut src = BytesMut::new();
        assert!(codec.decode(&mut src)?.is_none());
        src.extend_from_slice(&[100, 0, 0]);
        assert!(codec.decode(&mut src)?.is_none());
        assert_eq!(src.len(), 3);
        Ok(())
    }

    #[test]
    fn codec_grows_with_the_bytes_that_arrived_not_the_announced_length() -> Result<(), WireError> {
        let mut codec = MessageCodec::default();
        // 48,000,000 announced, 8 bytes sent.
        let mut src = BytesMut::from(&[0x00, 0x6c, 0xdc, 0x02, 0, 0, 0, 0][..]);
        assert!(codec.decode(&mut src)?.is_none());
        assert!(src.capacity() <= 8 + GROWTH_FLOOR, "capacity {}", src.capacity());
        // A 1 MB message that arrives in 64 KiB pieces: the buffer stays within a small
        // multiple of what arrived (this reserve and the buffer's own doubling on a write can
        // compound), and the message decodes whole.
        let payload = bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![7; 1_000_000] };
        let body = DocumentBytes::try_from(&doc! { "ping": 1, "b": payload, "$db": "admin" })?;
        let big = Message {
            header: Header { request_id: 2, response_to: 0 },
            body: Body::Msg(OpMsg::new(body)),
            compressor: None,
        };
        let mut bytes = BytesMut::new();
        big.encode(&mut bytes)?;
        let mut src = BytesMut::new();
        let mut decoded = None;
        for piece in bytes.chunks(GROWTH_FLOOR) {
            src.extend_from_slice(piece);
            decoded = codec.decode(&mut src)?;
            if decoded.is_none() {
                assert!(src.capacity() <= 4 * src.len() + 2 * GROWTH_FLOOR, "{} for {}", src.capacity(), src.len());
            }
        }
        assert_eq!(decoded, Some(big));
        Ok(())
    }

    #[test]
    fn codec_encoder_matches_message_encode() -> Result<(), WireError> {
        let mut codec = MessageCodec::default();
        let message = ping()?;
        let mut direct = BytesMut::new();
        message.encode(&mut direct)?;
        let mut framed = BytesMut::new();
        codec.encode(message.clone(), &mut framed)?;
        assert_eq!(framed, direct);
        assert_eq!(codec.decode(&mut framed)?, Some(message));
        assert!(framed.is_empty());
        Ok(())
    }

    #[test]
    fn codec_decodes_back_to_back_messages() -> Result<(), WireError> {
        let mut codec = MessageCodec::default();
        let first = ping()?;
        let mut second = ping()?;
        second.header.request_id = 2;
        let mut src = BytesMut::new();
        first.encode(&mut src)?;
        second.encode(&mut src)?;
        src.extend_from_slice(&[9, 9]);
        assert_eq!(codec.decode(&mut src)?, Some(first));
        assert_eq!(codec.decode(&mut src)?, Some(second));
        assert_eq!(codec.decode(&mut src)?, None);
        assert_eq!(src.as_ref(), [9, 9]);
        Ok(())
    }

    #[test]
    fn codec_records_wire_sizes() -> Result<(), WireError> {
        let mut codec = MessageCodec::default();
        assert_eq!((codec.last_decoded_len(), codec.last_encoded_len()), (0, 0));
        let plain = ping()?;
        let mut compressed = ping()?;
        compressed.compressor = Some(Compressor::Zlib);
        let mut out = BytesMut::from(&b"already here"[..]);
        codec.encode(plain, &mut out)?;
        let plain_len = out.len() - 12;
        assert_eq!(codec.last_encoded_len(), plain_len);
        codec.encode(compressed, &mut out)?;
        let compressed_len = out.len() - 12 - plain_len;
        assert_eq!(codec.last_encoded_len(), compressed_len);

        let _ = out.split_to(12);
        assert!(codec.decode(&mut out)?.is_some());
        assert_eq!(codec.last_decoded_len(), plain_len);
        assert!(codec.decode(&mut out)?.is_some());
        assert_eq!(codec.last_decoded_len(), compressed_len, "the compressed size, as on the wire");
        Ok(())
    }
}
