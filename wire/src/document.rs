//! A BSON document that stays inside the buffer it arrived in.

use bson::RawDocument;
use bytes::Bytes;

use crate::{MAX_BSON_INTERNAL_SIZE, WireError};

/// A BSON document held in a shared message buffer: decoding borrows instead of copying.
///
/// Construction checks the document's frame (length prefix, size limit, trailing NUL); the
/// elements inside are left to the caller, who walks them with [`bson::RawDocument`] and turns
/// malformed content into an error reply rather than a closed connection.
#[derive(Clone, PartialEq, Eq)]
pub struct DocumentBytes(Bytes);

impl DocumentBytes {
    /// Wraps `bytes`, which must hold exactly one framed BSON document.
    ///
    /// # Errors
    /// [`WireError::DocumentTooLarge`] over [`MAX_BSON_INTERNAL_SIZE`], and
    /// [`WireError::InvalidDocument`] when the frame is inconsistent.
    pub fn new(bytes: Bytes) -> Result<Self, WireError> {
        if bytes.len() > MAX_BSON_INTERNAL_SIZE {
            return Err(WireError::DocumentTooLarge { size: bytes.len(), limit: MAX_BSON_INTERNAL_SIZE });
        }
        RawDocument::from_bytes(&bytes).map_err(|e| WireError::InvalidDocument(e.to_string()))?;
        Ok(Self(bytes))
    }

    /// The document, for reading with bson's raw API.
    pub fn as_raw(&self) -> &RawDocument {
        #[expect(clippy::expect_used, reason = "new() checked the same frame that from_bytes checks")]
        RawDocument::from_bytes(&self.0).expect("frame checked in DocumentBytes::new")
    }

    /// The document's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The document's length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a BSON document has at least five bytes. Present for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<&bson::Document> for DocumentBytes {
    type Error = WireError;

    fn try_from(doc: &bson::Document) -> Result<Self, WireError> {
        let bytes = doc.to_vec().map_err(|e| WireError::InvalidDocument(e.to_string()))?;
        Self::new(Bytes::from(bytes))
    }
}

impl From<bson::RawDocumentBuf> for DocumentBytes {
    fn from(doc: bson::RawDocumentBuf) -> Self {
        Self(Bytes::from(doc.into_bytes()))
    }
}

impl std::fmt::Debug for DocumentBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match bson::Document::try_from(self.as_raw()) {
            Ok(doc) => write!(f, "{doc}"),
            Err(_) => write!(f, "<malformed BSON, {} bytes>", self.0.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use bson::{doc, rawdoc};

    use super::*;

    /// A framed document of exactly `size` bytes (at least 13): one binary field `b`.
    fn binary_document(size: usize) -> Vec<u8> {
        let payload = size - 13;
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&u32::try_from(size).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(&[0x05, b'b', 0]);
        out.extend_from_slice(&u32::try_from(payload).unwrap_or(u32::MAX).to_le_bytes());
        out.push(0);
        out.resize(size - 1, 0xab);
        out.push(0);
        out
    }

    #[test]
    fn document_from_bson_round_trips() -> Result<(), Box<dyn std::error::Error>> {
        let doc = doc! { "hello": 1, "client": { "driver": { "name": "test" } } };
        let bytes = DocumentBytes::try_from(&doc)?;
        assert_eq!(bytes.as_bytes(), doc.to_vec()?.as_slice());
        assert_eq!(bytes.len(), bytes.as_bytes().len());
        assert!(!bytes.is_empty());
        assert_eq!(bson::Document::try_from(bytes.as_raw())?, doc);
        let raw = DocumentBytes::from(rawdoc! { "hello": 1, "client": { "driver": { "name": "test" } } });
        assert_eq!(raw, bytes);
        Ok(())
    }

    #[test]
    fn document_inconsistent_frame_rejected() {
        for bad in [&[][..], &[5, 0, 0, 0], &[5, 0, 0, 0, 1], &[6, 0, 0, 0, 0], &[4, 0, 0, 0, 0]] {
            let result = DocumentBytes::new(Bytes::copy_from_slice(bad));
            assert!(matches!(result, Err(WireError::InvalidDocument(_))), "{bad:?}: {result:?}");
        }
    }

    #[test]
    fn document_size_limit_is_internal_size() -> Result<(), WireError> {
        let largest = DocumentBytes::new(Bytes::from(binary_document(MAX_BSON_INTERNAL_SIZE)))?;
        assert_eq!(largest.len(), MAX_BSON_INTERNAL_SIZE);
        match DocumentBytes::new(Bytes::from(binary_document(MAX_BSON_INTERNAL_SIZE + 1))) {
            Err(WireError::DocumentTooLarge { size, limit }) => {
                assert_eq!(size, MAX_BSON_INTERNAL_SIZE + 1);
                assert_eq!(limit, MAX_BSON_INTERNAL_SIZE);
            }
            other => panic!("expected DocumentTooLarge, got {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn document_debug_shows_content_or_placeholder() -> Result<(), WireError> {
        let good = DocumentBytes::try_from(&doc! { "ping": 1 })?;
        assert!(format!("{good:?}").contains("ping"));
        // A well-framed document whose element is garbage (type 0x42 is not a BSON type).
        let bad = DocumentBytes::new(Bytes::from_static(&[8, 0, 0, 0, 0x42, b'a', 0, 0]))?;
        assert_eq!(format!("{bad:?}"), "<malformed BSON, 8 bytes>");
        Ok(())
    }
}
