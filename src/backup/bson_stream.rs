//! Concatenated BSON documents read one at a time from any stream: a backup's data file, a
//! mongodump `.bson` file (gzipped or not), or a mongodump archive, whose blocks are
//! documents separated by four `0xFF` bytes. Every document is checked before it is handed
//! on: a length within 5 bytes and 16 MiB, all its bytes present, every element at every
//! depth of a known type; the first that fails is named with the file and its byte offset.

use std::io::Read;
use std::path::{Path, PathBuf};

use bson::RawDocument;

use super::crypto::read_error;
use super::error::BackupError;
use crate::query::limits::{MAX_USER_SIZE, to_document};

/// The four bytes that end a section of a mongodump archive, where a document's length
/// would be (`-1`).
pub const TERMINATOR: [u8; 4] = [0xFF; 4];

/// One block of a stream: a document, or (in an archive) a terminator.
#[derive(Debug)]
pub enum Block<'a> {
    /// A document, checked through.
    Document(&'a RawDocument),
    /// The four `0xFF` bytes.
    Terminator,
}

/// A reader of concatenated BSON from `R`, which names itself as `path` in errors.
pub struct BsonStream<R> {
    reader: R,
    path: PathBuf,
    /// The offset of the next block.
    offset: u64,
    /// The offset of the block last returned.
    last: u64,
    buffer: Vec<u8>,
}

impl<R: Read> BsonStream<R> {
    /// A stream over `reader`, named `path` in errors.
    pub fn new(reader: R, path: &Path) -> Self {
        Self { reader, path: path.to_path_buf(), offset: 0, last: 0, buffer: Vec::new() }
    }

    /// The same stream, its first byte at `offset` of the file (what was read before it).
    pub fn starting_at(mut self, offset: u64) -> Self {
        self.offset = offset;
        self.last = offset;
        self
    }

    /// The file this stream reads, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The document last returned, again.
    pub fn current(&self) -> Option<&RawDocument> {
        RawDocument::from_bytes(&self.buffer).ok()
    }

    /// A [`BackupError::Corrupt`] at the block last returned.
    pub fn corrupt(&self, detail: impl Into<String>) -> BackupError {
        BackupError::corrupt(&self.path, self.last, detail)
    }

    /// The next block with its byte offset, or `None` at the end of the stream.
    ///
    /// # Errors
    /// [`BackupError::Corrupt`] at the offset of a block that is cut short, has an impossible
    /// length, or does not parse; read errors (a gzip or decryption failure among them).
    pub fn next_block(&mut self) -> Result<Option<(u64, Block<'_>)>, BackupError> {
        self.read_block(true)
    }

    /// The next document with its byte offset, or `None` at the end of the stream; a
    /// terminator here is an error.
    ///
    /// # Errors
    /// As [`Self::next_block`].
    pub fn next_document(&mut self) -> Result<Option<(u64, &RawDocument)>, BackupError> {
        match self.read_block(false)? {
            Some((offset, Block::Document(document))) => Ok(Some((offset, document))),
            _ => Ok(None),
        }
    }

    fn read_block(&mut self, terminators: bool) -> Result<Option<(u64, Block<'_>)>, BackupError> {
        let mut length = [0u8; 4];
        let got = read_up_to(&mut self.reader, &mut length).map_err(|e| read_error(&self.path, e))?;
        self.last = self.offset;
        if got == 0 {
            return Ok(None);
        }
        if got < 4 {
            return Err(self.corrupt(format!("truncated: {got} trailing bytes are not a document")));
        }
        if length == TERMINATOR && terminators {
            self.offset += 4;
            return Ok(Some((self.last, Block::Terminator)));
        }
        let declared = i32::from_le_bytes(length);
        let size =
            usize::try_from(declared).ok().filter(|n| (5..=MAX_USER_SIZE).contains(n)).ok_or_else(
                || match declared {
                    n if usize::try_from(n).is_ok_and(|n| n > MAX_USER_SIZE) => {
                        self.corrupt(format!("a document of {n} bytes is over the 16 MiB limit"))
                    }
                    n => self.corrupt(format!("invalid document length {n}")),
                },
            )?;
        self.buffer.clear();
        self.buffer.extend_from_slice(&length);
        self.buffer.resize(size, 0);
        let rest = self.buffer.get_mut(4..).unwrap_or_default();
        let got = read_up_to(&mut self.reader, rest).map_err(|e| read_error(&self.path, e))?;
        if got < rest.len() {
            return Err(self.corrupt(format!("truncated: the document declares {size} bytes, {} remain", got + 4)));
        }
        self.offset += size as u64;
        let document = RawDocument::from_bytes(&self.buffer)
            .map_err(|e| BackupError::corrupt(&self.path, self.last, format!("the document does not parse: {e}")))?;
        // Every element at every depth, without recursion: what a reply would later meet.
        to_document(document).map_err(|e| {
            BackupError::corrupt(&self.path, self.last, format!("the document does not parse: {}", e.message()))
        })?;
        Ok(Some((self.last, Block::Document(document))))
    }
}

/// Reads until `buffer` is full or the stream ends; returns how many bytes were read.
fn read_up_to(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buffer.get_mut(filled..).filter(|r| !r.is_empty()) {
        match reader.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;

    use super::*;

    /// Reads `bytes` as a stream of documents; the error's text, or the count.
    fn read(bytes: &[u8]) -> Result<u64, String> {
        let mut stream = BsonStream::new(bytes, Path::new("c.bson"));
        let mut count = 0;
        while stream.next_document().map_err(|e| e.to_string())?.is_some() {
            count += 1;
        }
        Ok(count)
    }

    #[test]
    fn bson_stream_names_the_offset_of_the_damaged_document() {
        let first = rawdoc! { "_id": 1, "a": { "b": [1, 2] } };
        let second = rawdoc! { "_id": 2 };
        let mut good = first.as_bytes().to_vec();
        let at = good.len();
        good.extend_from_slice(second.as_bytes());
        assert_eq!(read(&good), Ok(2));
        assert_eq!(read(&[]), Ok(0));

        let mut trailing = good.clone();
        trailing.extend_from_slice(&[1, 0]);
        assert_eq!(
            read(&trailing),
            Err(format!("c.bson: at byte offset {}: truncated: 2 trailing bytes are not a document", good.len()))
        );

        let cut = good.get(..good.len() - 1).unwrap_or_default();
        assert_eq!(
            read(cut),
            Err(format!("c.bson: at byte offset {at}: truncated: the document declares 14 bytes, 13 remain"))
        );

        let mut tiny = good.clone();
        tiny.splice(at..at + 4, 4_i32.to_le_bytes());
        assert_eq!(read(&tiny), Err(format!("c.bson: at byte offset {at}: invalid document length 4")));

        let mut huge = good.clone();
        huge.splice(at..at + 4, (16_i32 << 20 | 1).to_le_bytes());
        assert_eq!(
            read(&huge),
            Err(format!("c.bson: at byte offset {at}: a document of 16777217 bytes is over the 16 MiB limit"))
        );

        let mut terminated = good.clone();
        terminated.splice(at..at, TERMINATOR);
        assert_eq!(read(&terminated), Err(format!("c.bson: at byte offset {at}: invalid document length -1")));

        // The nested array's first element gets an unknown type byte: only a full walk sees it.
        let mut nested = good.clone();
        let inner = first.as_bytes().windows(2).position(|w| w == [0x10, b'0']).unwrap_or_default();
        if let Some(byte) = nested.get_mut(inner) {
            *byte = 0x7A;
        }
        let error = read(&nested).err().unwrap_or_default();
        assert!(error.starts_with("c.bson: at byte offset 0: the document does not parse"), "{error}");
    }

    #[test]
    fn bson_stream_returns_terminators_between_documents() -> Result<(), BackupError> {
        let mut bytes = rawdoc! { "a": 1 }.as_bytes().to_vec();
        bytes.extend_from_slice(&TERMINATOR);
        let mut stream = BsonStream::new(bytes.as_slice(), Path::new("x"));
        assert!(matches!(stream.next_block()?, Some((0, Block::Document(_)))));
        assert!(matches!(stream.next_block()?, Some((12, Block::Terminator))));
        assert!(stream.next_block()?.is_none());
        Ok(())
    }
}
