//! The MongoDB wire protocol, sans-IO: bytes in, messages out, and back.
//!
//! [`MessageCodec`] frames a byte stream into [`Message`]s for tokio-util's `Framed`, and
//! encodes replies. It knows nothing of commands, storage or the runtime: it checks framing
//! (lengths, section layout, checksums, compression) and leaves the meaning of each BSON
//! document to the caller. Every malformed input is a [`WireError`], never a panic.
//!
//! Supported op codes: `OP_MSG` (2013), `OP_COMPRESSED` (2012) with snappy, zlib and zstd,
//! the legacy `OP_QUERY` (2004) that drivers still use for their first `isMaster`, and
//! `OP_REPLY` (1), its answer.
#![deny(clippy::indexing_slicing)]

mod codec;
mod compression;
mod document;
mod error;
mod header;
mod message;
mod op_msg;
mod op_query;
mod op_reply;
mod reader;

pub use codec::MessageCodec;
pub use compression::Compressor;
pub use document::DocumentBytes;
pub use error::WireError;
pub use header::{Header, OpCode};
pub use message::{Body, Message};
pub use op_msg::{DocumentSequence, MsgFlags, OpMsg};
pub use op_query::OpQuery;
pub use op_reply::OpReply;

/// The smallest possible message: a bare header.
pub const MIN_MESSAGE_SIZE: usize = header::HEADER_LEN;

/// The largest message mongod accepts (`maxMessageSizeBytes`).
pub const MAX_MESSAGE_SIZE: usize = 48_000_000;

/// The largest BSON document a user may store (`maxBsonObjectSize`).
pub const MAX_BSON_OBJECT_SIZE: usize = 16 * 1024 * 1024;

/// The largest BSON document accepted inside a message: mongod lets command documents exceed
/// the user limit by 16 KiB so that a maximal user document still fits inside a command.
pub const MAX_BSON_INTERNAL_SIZE: usize = MAX_BSON_OBJECT_SIZE + 16 * 1024;
