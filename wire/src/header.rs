//! The 16-byte header that starts every message.

use bytes::BufMut;

use crate::WireError;

/// Length of the standard message header.
pub(crate) const HEADER_LEN: usize = 16;

/// An op code: the kind of message that follows the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// `OP_REPLY` (1): the answer to an `OP_QUERY`.
    Reply,
    /// `OP_QUERY` (2004): legacy; drivers still send their first `isMaster` this way.
    Query,
    /// `OP_COMPRESSED` (2012): wraps another message.
    Compressed,
    /// `OP_MSG` (2013): every modern command and reply.
    Msg,
}

impl OpCode {
    /// The op code's number on the wire.
    pub fn code(self) -> i32 {
        match self {
            OpCode::Reply => 1,
            OpCode::Query => 2004,
            OpCode::Compressed => 2012,
            OpCode::Msg => 2013,
        }
    }

    /// Maps a wire number to an op code this codec accepts.
    ///
    /// # Errors
    /// [`WireError::UnsupportedOpCode`] for anything else, including the legacy CRUD op codes
    /// (`OP_INSERT`, `OP_GET_MORE`, ...) that mongod no longer accepts either.
    pub fn from_code(code: i32) -> Result<Self, WireError> {
        match code {
            1 => Ok(OpCode::Reply),
            2004 => Ok(OpCode::Query),
            2012 => Ok(OpCode::Compressed),
            2013 => Ok(OpCode::Msg),
            other => Err(WireError::UnsupportedOpCode(other)),
        }
    }
}

/// The message header, without its length (which the encoder computes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The sender's id for this message.
    pub request_id: i32,
    /// For a reply: the `request_id` it answers; otherwise 0.
    pub response_to: i32,
}

/// Writes a header for a message of `length` bytes in total.
pub(crate) fn put_header(out: &mut impl BufMut, length: usize, header: Header, op: i32) -> Result<(), WireError> {
    let length = i32::try_from(length).map_err(|_| WireError::MessageTooLarge(length))?;
    out.put_i32_le(length);
    out.put_i32_le(header.request_id);
    out.put_i32_le(header.response_to);
    out.put_i32_le(op);
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;

    #[test]
    fn header_op_codes_round_trip() -> Result<(), WireError> {
        for op in [OpCode::Reply, OpCode::Query, OpCode::Compressed, OpCode::Msg] {
            assert_eq!(OpCode::from_code(op.code())?, op);
        }
        Ok(())
    }

    #[test]
    fn header_legacy_op_codes_rejected() {
        // OP_UPDATE, OP_INSERT, OP_GET_MORE, OP_DELETE, OP_KILL_CURSORS, OP_COMMAND(REPLY), and junk.
        for code in [2001, 2002, 2005, 2006, 2007, 2010, 2011, 0, -1, i32::MAX] {
            assert!(matches!(OpCode::from_code(code), Err(WireError::UnsupportedOpCode(c)) if c == code), "{code}");
        }
    }

    #[test]
    fn header_put_writes_little_endian_fields() -> Result<(), WireError> {
        let mut out = BytesMut::new();
        put_header(&mut out, 0x0102_0304, Header { request_id: 7, response_to: -1 }, 2013)?;
        assert_eq!(out.as_ref(), [4, 3, 2, 1, 7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xdd, 0x07, 0, 0]);
        Ok(())
    }

    #[test]
    fn header_put_rejects_length_over_i32() {
        let mut out = BytesMut::new();
        let too_long = usize::try_from(i32::MAX).unwrap_or(usize::MAX).saturating_add(1);
        let result = put_header(&mut out, too_long, Header { request_id: 0, response_to: 0 }, 2013);
        assert!(matches!(result, Err(WireError::MessageTooLarge(n)) if n == too_long));
        assert!(out.is_empty());
    }
}
