//! Why a byte stream could not be decoded into a message.

/// A framing or encoding failure. Decoding errors mean the stream can no longer be trusted:
/// the server closes that connection (and only that one).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The header's length is outside `16..=48000000`; checked before any allocation.
    #[error("message length {0} is outside the allowed range 16..=48000000")]
    InvalidLength(i64),
    /// A field ran past the end of the message.
    #[error("message truncated while reading {0}")]
    Truncated(&'static str),
    /// Bytes remained after the last field of a message that has no room for them.
    #[error("{0} unexpected bytes after the end of the message")]
    TrailingBytes(usize),
    /// An op code this server does not accept (the removed legacy CRUD op codes among them).
    #[error("unsupported op code {0}")]
    UnsupportedOpCode(i32),
    /// A BSON document's frame (length prefix or terminator) is inconsistent.
    #[error("invalid BSON document: {0}")]
    InvalidDocument(String),
    /// A BSON document is larger than the protocol allows.
    #[error("BSON document of {size} bytes exceeds the limit of {limit} bytes")]
    DocumentTooLarge {
        /// The document's length.
        size: usize,
        /// The limit it broke.
        limit: usize,
    },
    /// A C string is not valid UTF-8.
    #[error("C string is not valid UTF-8")]
    InvalidCString,
    /// The OP_MSG CRC-32C trailer does not match the message.
    #[error("OP_MSG checksum mismatch: message says {expected:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        /// The checksum the message carries.
        expected: u32,
        /// The checksum of the bytes received.
        computed: u32,
    },
    /// OP_MSG flag bits 2..=15 are reserved and must be understood; none are defined.
    #[error("OP_MSG has unknown required flag bits {0:#06x}")]
    UnknownRequiredFlags(u32),
    /// An OP_MSG must have exactly one kind-0 (body) section.
    #[error("OP_MSG has {0} body sections; exactly one is required")]
    BodySectionCount(usize),
    /// A section kind other than 0 (body) or 1 (document sequence).
    #[error("unknown OP_MSG section kind {0}")]
    UnknownSectionKind(u8),
    /// A compressor id outside noop=0, snappy=1, zlib=2, zstd=3.
    #[error("unknown compressor id {0}")]
    UnknownCompressor(u8),
    /// OP_COMPRESSED must not wrap another OP_COMPRESSED.
    #[error("OP_COMPRESSED cannot wrap op code {0}")]
    InvalidCompressedOpCode(i32),
    /// The compressed payload could not be decompressed.
    #[error("{compressor} decompression failed: {reason}")]
    Decompression {
        /// The compressor's name.
        compressor: &'static str,
        /// What the decompressor reported.
        reason: String,
    },
    /// The payload decompressed to another size than OP_COMPRESSED declared.
    #[error("OP_COMPRESSED declared {declared} bytes but held {actual}")]
    UncompressedSizeMismatch {
        /// The declared `uncompressedSize`.
        declared: usize,
        /// What decompression produced (possibly cut at the limit).
        actual: usize,
    },
    /// Compressing a reply failed.
    #[error("{compressor} compression failed: {reason}")]
    Compression {
        /// The compressor's name.
        compressor: &'static str,
        /// What the compressor reported.
        reason: String,
    },
    /// The encoded message would exceed [`crate::MAX_MESSAGE_SIZE`].
    #[error("encoded message of {0} bytes exceeds the maximum message size")]
    MessageTooLarge(usize),
    /// The underlying transport failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
