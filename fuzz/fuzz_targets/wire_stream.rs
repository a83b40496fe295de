//! The wire decoder on arbitrary bytes, fed whole and in random splits (as TCP delivers them):
//! it must never panic, both feedings must decode the same messages and errors, and every
//! message decoded must encode back to one that decodes equal.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use monarch_wire::{Message, MessageCodec, WireError};
use tokio_util::codec::{Decoder, Encoder};

/// Decodes `chunks` one after another, as a connection's reads arrive; stops at the first
/// error, as the server closes the connection then.
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
                Err(error) => return (messages, Some(kind(&error))),
            }
        }
    }
    (messages, None)
}

fn kind(error: &WireError) -> String {
    format!("{error:?}")
}

fuzz_target!(|data: &[u8]| {
    let Some((&split_seed, stream)) = data.split_first() else { return };
    let whole = decode_all(std::iter::once(stream));
    // Chunks of 1..=16 bytes, their sizes drawn from the seed.
    let mut state = u32::from(split_seed) | 1;
    let mut rest = stream;
    let mut chunks = Vec::new();
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let size = (state % 16 + 1) as usize;
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        chunks.push(chunk);
        rest = tail;
    }
    let split = decode_all(chunks.into_iter());
    assert_eq!(whole, split, "decoding depends on how the bytes arrive");
    for message in whole.0 {
        let mut encoded = BytesMut::new();
        if MessageCodec::default().encode(message.clone(), &mut encoded).is_ok() {
            let again = MessageCodec::default().decode(&mut encoded);
            assert!(matches!(&again, Ok(Some(m)) if *m == message), "re-encoding changed {message:?}: {again:?}");
        }
    }
});
