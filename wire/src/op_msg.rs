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
mod tests;
