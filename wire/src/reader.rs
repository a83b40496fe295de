//! A bounds-checked little-endian cursor over a message buffer.

use bytes::Bytes;

use crate::{DocumentBytes, WireError};

/// Reads fields in order from a message buffer; every read checks the remaining length and
/// returns [`WireError::Truncated`] instead of panicking. Slices share the buffer (no copy).
pub(crate) struct Reader {
    buf: Bytes,
    what: &'static str,
}

impl Reader {
    /// Reads `buf`; `what` names the message part in truncation errors.
    pub(crate) fn new(buf: Bytes, what: &'static str) -> Self {
        Self { buf, what }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<Bytes, WireError> {
        if self.buf.len() < n {
            return Err(WireError::Truncated(self.what));
        }
        Ok(self.buf.split_to(n))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn i32(&mut self) -> Result<i32, WireError> {
        self.array().map(i32::from_le_bytes)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, WireError> {
        self.array().map(u32::from_le_bytes)
    }

    pub(crate) fn i64(&mut self) -> Result<i64, WireError> {
        self.array().map(i64::from_le_bytes)
    }

    /// Reads a NUL-terminated UTF-8 string (the NUL is consumed, not returned).
    pub(crate) fn cstring(&mut self) -> Result<String, WireError> {
        let end = self.buf.iter().position(|&b| b == 0).ok_or(WireError::Truncated(self.what))?;
        let bytes = self.take(end + 1)?;
        let text = bytes.get(..end).ok_or(WireError::Truncated(self.what))?;
        String::from_utf8(text.to_vec()).map_err(|_| WireError::InvalidCString)
    }

    /// Reads one BSON document whose length prefix must fit in what remains.
    pub(crate) fn document(&mut self) -> Result<DocumentBytes, WireError> {
        let prefix: [u8; 4] =
            self.buf.get(..4).and_then(|b| b.try_into().ok()).ok_or(WireError::Truncated(self.what))?;
        let len = i32::from_le_bytes(prefix);
        let len = usize::try_from(len).map_err(|_| WireError::InvalidDocument(format!("negative length {len}")))?;
        if len > self.buf.len() {
            return Err(WireError::Truncated(self.what));
        }
        DocumentBytes::new(self.take(len)?)
    }

    /// Splits off the next `n` bytes as a reader of their own.
    pub(crate) fn split(&mut self, n: usize) -> Result<Reader, WireError> {
        Ok(Reader::new(self.take(n)?, self.what))
    }

    /// Returns everything not yet read.
    pub(crate) fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: &'static [u8]) -> Reader {
        Reader::new(Bytes::from_static(bytes), "test")
    }

    #[test]
    fn reader_integers_are_little_endian() -> Result<(), WireError> {
        let mut r = reader(&[1, 0xfe, 0xff, 0xff, 0xff, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0x80]);
        assert_eq!(r.u8()?, 1);
        assert_eq!(r.i32()?, -2);
        assert_eq!(r.u32()?, 2);
        assert_eq!(r.i64()?, 3 | i64::MIN);
        assert!(r.is_empty());
        Ok(())
    }

    #[test]
    fn reader_short_read_is_truncated_and_consumes_nothing() -> Result<(), WireError> {
        let mut r = reader(&[1, 2, 3]);
        assert!(matches!(r.i32(), Err(WireError::Truncated("test"))));
        assert!(matches!(r.i64(), Err(WireError::Truncated("test"))));
        assert_eq!(r.remaining(), 3);
        assert!(matches!(r.split(4), Err(WireError::Truncated(_))));
        let mut part = r.split(2)?;
        assert_eq!(part.remaining(), 2);
        assert_eq!(r.rest().as_ref(), [3]);
        assert_eq!(part.rest().as_ref(), [1, 2]);
        Ok(())
    }

    #[test]
    fn reader_cstring_reads_up_to_nul() -> Result<(), WireError> {
        let mut r = reader(b"admin.$cmd\0\0rest");
        assert_eq!(r.cstring()?, "admin.$cmd");
        assert_eq!(r.cstring()?, "");
        assert_eq!(r.rest().as_ref(), b"rest");
        Ok(())
    }

    #[test]
    fn reader_cstring_without_nul_is_truncated() {
        assert!(matches!(reader(b"no terminator").cstring(), Err(WireError::Truncated(_))));
        assert!(matches!(reader(b"").cstring(), Err(WireError::Truncated(_))));
    }

    #[test]
    fn reader_cstring_invalid_utf8_rejected() {
        assert!(matches!(reader(&[b'a', 0xff, 0]).cstring(), Err(WireError::InvalidCString)));
    }

    #[test]
    fn reader_document_reads_exactly_its_length() -> Result<(), WireError> {
        let mut r = reader(&[5, 0, 0, 0, 0, 9, 9]);
        assert_eq!(r.document()?.as_bytes(), [5, 0, 0, 0, 0]);
        assert_eq!(r.remaining(), 2);
        Ok(())
    }

    #[test]
    fn reader_document_bad_prefix_rejected() {
        assert!(matches!(reader(&[5, 0, 0]).document(), Err(WireError::Truncated(_))));
        assert!(matches!(reader(&[6, 0, 0, 0, 0]).document(), Err(WireError::Truncated(_))));
        assert!(matches!(reader(&[0xff, 0xff, 0xff, 0xff, 0]).document(), Err(WireError::InvalidDocument(_))));
        assert!(matches!(reader(&[0, 0, 0, 0, 0]).document(), Err(WireError::InvalidDocument(_))));
    }
}
