//! Proptest strategies for messages, shared by the integration tests.
#![allow(dead_code, reason = "each test crate uses a different subset")]

use bson::{Binary, Bson, Document, spec::BinarySubtype};
use monarch_wire::{
    Body, Compressor, DocumentBytes, DocumentSequence, Header, Message, MsgFlags, OpMsg, OpQuery, OpReply,
};
use proptest::prelude::*;
use proptest::sample::subsequence;

/// Keys and C strings: anything but NUL, which would end them early.
pub const NO_NUL: &str = "[^\\x00]{0,16}";

/// A scalar BSON value.
pub fn leaf() -> impl Strategy<Value = Bson> {
    prop_oneof![
        any::<i32>().prop_map(Bson::Int32),
        any::<i64>().prop_map(Bson::Int64),
        any::<f64>().prop_map(Bson::Double),
        any::<bool>().prop_map(Bson::Boolean),
        Just(Bson::Null),
        ".{0,24}".prop_map(Bson::String),
        proptest::collection::vec(any::<u8>(), 0..32)
            .prop_map(|bytes| Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes })),
    ]
}

/// A document of scalars (duplicate keys collapse).
pub fn flat_document() -> impl Strategy<Value = Document> {
    proptest::collection::vec((NO_NUL, leaf()), 0..6).prop_map(|pairs| pairs.into_iter().collect())
}

/// A scalar, or one level of document or array.
pub fn value() -> impl Strategy<Value = Bson> {
    prop_oneof![
        4 => leaf(),
        1 => flat_document().prop_map(Bson::Document),
        1 => proptest::collection::vec(leaf(), 0..5).prop_map(Bson::Array),
    ]
}

/// An arbitrary framed document.
pub fn document() -> impl Strategy<Value = DocumentBytes> {
    proptest::collection::vec((NO_NUL, value()), 0..8).prop_filter_map("document failed to encode", |pairs| {
        let doc: Document = pairs.into_iter().collect();
        DocumentBytes::try_from(&doc).ok()
    })
}

/// Any combination of the defined `OP_MSG` flags.
pub fn msg_flags() -> impl Strategy<Value = MsgFlags> {
    let bits = vec![MsgFlags::CHECKSUM_PRESENT, MsgFlags::MORE_TO_COME, MsgFlags::EXHAUST_ALLOWED];
    subsequence(bits, 0..=3).prop_map(|set| MsgFlags::from_bits(set.into_iter().fold(0, |all, bit| all | bit)))
}

/// An `OP_MSG` with a body and 0..3 document sequences of 0..4 documents.
pub fn op_msg() -> impl Strategy<Value = Body> {
    let sequence = (NO_NUL, proptest::collection::vec(document(), 0..4))
        .prop_map(|(identifier, documents)| DocumentSequence { identifier, documents });
    (msg_flags(), document(), proptest::collection::vec(sequence, 0..3))
        .prop_map(|(flags, body, sequences)| Body::Msg(OpMsg { flags, body, sequences }))
}

/// An `OP_QUERY`, with or without `returnFieldsSelector`.
pub fn op_query() -> impl Strategy<Value = Body> {
    (any::<i32>(), "[^\\x00]{0,40}", any::<i32>(), any::<i32>(), document(), proptest::option::of(document())).prop_map(
        |(flags, full_collection_name, number_to_skip, number_to_return, query, return_fields_selector)| {
            Body::Query(OpQuery {
                flags,
                full_collection_name,
                number_to_skip,
                number_to_return,
                query,
                return_fields_selector,
            })
        },
    )
}

/// An `OP_REPLY` with 0..4 documents.
pub fn op_reply() -> impl Strategy<Value = Body> {
    (any::<i32>(), any::<i64>(), any::<i32>(), proptest::collection::vec(document(), 0..4)).prop_map(
        |(response_flags, cursor_id, starting_from, documents)| {
            Body::Reply(OpReply { response_flags, cursor_id, starting_from, documents })
        },
    )
}

/// No compression, or any compressor.
pub fn compressor() -> impl Strategy<Value = Option<Compressor>> {
    prop_oneof![
        Just(None),
        Just(Some(Compressor::Noop)),
        Just(Some(Compressor::Snappy)),
        Just(Some(Compressor::Zlib)),
        Just(Some(Compressor::Zstd)),
    ]
}

/// A message with any header and compressor around `body`.
pub fn message_with(body: impl Strategy<Value = Body>) -> impl Strategy<Value = Message> {
    (any::<i32>(), any::<i32>(), body, compressor()).prop_map(|(request_id, response_to, body, compressor)| Message {
        header: Header { request_id, response_to },
        body,
        compressor,
    })
}

/// Any message.
pub fn message() -> impl Strategy<Value = Message> {
    prop_oneof![2 => message_with(op_msg()), 1 => message_with(op_query()), 1 => message_with(op_reply())]
}
