//! The wire decoder: arbitrary byte streams, and valid `OP_COMPRESSED` frames built around
//! arbitrary payloads so that every decompressor is reached.

use bytes::{BufMut, BytesMut};
use monarch_wire::{Compressor, Message, MessageCodec, OpCode};
use tokio_util::codec::{Decoder, Encoder};

/// Decodes `chunks` one after another, as a connection's reads arrive; stops at the first
/// error, as the server closes the connection then. Errors compare by their `Debug` text.
fn decode_all<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> (Vec<Message>, Option<String>) {
    let mut codec = MessageCodec::default();
    let mut buffer = BytesMut::new();
    let mut messages = Vec::new();
    for chunk in chunks {
        buffer.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buffer) {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                Err(error) => return (messages, Some(format!("{error:?}"))),
            }
        }
    }
    (messages, None)
}

/// Chunks of 1..=16 bytes whose sizes are drawn from `seed` (xorshift): how TCP may deliver.
fn split(stream: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut state = u32::from(seed) | 1;
    let mut rest = stream;
    let mut chunks = Vec::new();
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let size = usize::try_from(state % 16 + 1).unwrap_or(1);
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

/// The oracles on one stream: decoding whole and in splits agree, and every decoded message
/// re-encodes to one that decodes equal.
fn check_stream(stream: &[u8], split_seed: u8) {
    let whole = decode_all(std::iter::once(stream));
    let pieces = decode_all(split(stream, split_seed).into_iter());
    assert_eq!(whole, pieces, "decoding depends on how the bytes arrive");
    for message in whole.0 {
        let mut encoded = BytesMut::new();
        if MessageCodec::default().encode(message.clone(), &mut encoded).is_ok() {
            let again = MessageCodec::default().decode(&mut encoded);
            assert!(matches!(&again, Ok(Some(m)) if *m == message), "re-encoding changed {message:?}: {again:?}");
        }
    }
}

/// The wire decoder on arbitrary bytes (the first byte seeds the split), fed whole and in
/// random splits.
pub fn wire_stream(data: &[u8]) {
    let Some((&split_seed, stream)) = data.split_first() else { return };
    check_stream(stream, split_seed);
}

/// A valid `OP_COMPRESSED` frame around a fuzzed payload, then the checks of [`wire_stream`].
///
/// Input layout: compressor selector (snappy, zlib, zstd, noop), split seed, original op code
/// selector (`OP_MSG`, `OP_QUERY`, `OP_REPLY`, or the next four bytes as is), a byte whose low
/// bit says the declared uncompressed size is the next four bytes instead of the true one, then
/// the uncompressed payload (the original message's body, after its header). The frame is sent
/// twice back to back, so a decoder that leaves state behind after the first is caught.
pub fn wire_compressed(data: &[u8]) {
    let [selector, split_seed, op_selector, flags, rest @ ..] = data else { return };
    let compressor = match selector % 4 {
        0 => Compressor::Snappy,
        1 => Compressor::Zlib,
        2 => Compressor::Zstd,
        _ => Compressor::Noop,
    };
    let (original, rest) = match op_selector % 4 {
        0 => (OpCode::Msg.code(), rest),
        1 => (OpCode::Query.code(), rest),
        2 => (OpCode::Reply.code(), rest),
        _ => match take_i32(rest) {
            Some(taken) => taken,
            None => return,
        },
    };
    let (declared, payload) = if flags & 1 == 1 {
        match take_i32(rest) {
            Some(taken) => taken,
            None => return,
        }
    } else {
        (i32::try_from(rest.len()).unwrap_or(i32::MAX), rest)
    };
    let Ok(compressed) = compressor.compress(payload) else { return };
    let mut frame = BytesMut::new();
    let len = 16 + 9 + compressed.len();
    frame.put_i32_le(i32::try_from(len).unwrap_or(i32::MAX));
    frame.put_i32_le(1);
    frame.put_i32_le(0);
    frame.put_i32_le(OpCode::Compressed.code());
    frame.put_i32_le(original);
    frame.put_i32_le(declared);
    frame.put_u8(compressor.id());
    frame.put_slice(&compressed);
    let mut stream = frame.to_vec();
    stream.extend_from_slice(&frame);
    check_stream(&stream, *split_seed);
}

/// The leading little-endian `i32` of `data` and the bytes after it.
fn take_i32(data: &[u8]) -> Option<(i32, &[u8])> {
    let (head, rest) = data.split_first_chunk::<4>()?;
    Some((i32::from_le_bytes(*head), rest))
}
