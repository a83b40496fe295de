//! mongodump's `--archive` format, written by `monarchd dump --archive` and read by
//! `monarchd restore --archive`, so archives move both ways between Monarch and MongoDB's
//! own tools. As mongo-tools' `common/archive/spec.md` describes it:
//!
//! - the magic number `0x8199e26d` (little-endian);
//! - a header document (`concurrent_collections`, `version` "0.1", `server_version`,
//!   `tool_version`);
//! - the prelude: one document per collection (`db`, `collection`, `metadata` — the text of
//!   its `metadata.json` — `size`, `type`), then a terminator (four `0xFF` bytes);
//! - the body: segments of one collection's documents, each opened by a namespace header
//!   (`db`, `collection`, `EOF: false`, `CRC: 0`) and closed by a terminator, segments of
//!   several collections interleaved in any order; each collection ends with a header with
//!   `EOF: true` and the CRC-64 (ECMA-182, as Go's `hash/crc64` computes it) of all its
//!   documents' bytes, then a terminator.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;

use bson::{Bson, RawDocument, doc};

use super::bson_stream::{Block, BsonStream, TERMINATOR};
use super::error::BackupError;

/// The archive's first four bytes: `0x8199e26d`, little-endian.
pub const MAGIC: [u8; 4] = 0x8199_e26d_u32.to_le_bytes();
/// The only archive format version there is.
pub const FORMAT_VERSION: &str = "0.1";

/// The checksum of a collection's documents: Go's `crc64.ECMA` table with its pre- and
/// post-inversion, which is CRC-64/XZ.
static CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_XZ);

/// One collection of an archive's prelude.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreludeEntry {
    /// Its database.
    pub db: String,
    /// Its name.
    pub collection: String,
    /// The text of its `metadata.json` (canonical Extended JSON).
    pub metadata: String,
    /// Its documents' uncompressed size in bytes.
    pub size: i64,
    /// `collection`, `view` or `timeseries`.
    pub kind: String,
}

impl PreludeEntry {
    /// `db.collection`.
    pub fn namespace(&self) -> String {
        format!("{}.{}", self.db, self.collection)
    }

    /// Whether documents follow in the body (a view has none).
    fn has_data(&self) -> bool {
        self.kind != "view"
    }
}

/// Writes an archive to `W`: [`Self::start`], then segments and ends in any interleaving.
pub struct ArchiveWriter<W: Write> {
    out: W,
    checksums: HashMap<String, crc::Digest<'static, u64>>,
}

impl<W: Write> ArchiveWriter<W> {
    /// Writes the magic number, the header and the `prelude`.
    ///
    /// # Errors
    /// The output's errors.
    pub fn start(mut out: W, server_version: &str, prelude: &[PreludeEntry]) -> std::io::Result<Self> {
        out.write_all(&MAGIC)?;
        let header = doc! {
            "concurrent_collections": 1,
            "version": FORMAT_VERSION,
            "server_version": server_version,
            "tool_version": concat!("monarchd ", env!("CARGO_PKG_VERSION")),
        };
        header.to_writer(&mut out).map_err(std::io::Error::other)?;
        for entry in prelude {
            let size = i32::try_from(entry.size).map_or(Bson::Int64(entry.size), Bson::Int32);
            let document = doc! {
                "db": &entry.db,
                "collection": &entry.collection,
                "metadata": &entry.metadata,
                "size": size,
                "type": &entry.kind,
            };
            document.to_writer(&mut out).map_err(std::io::Error::other)?;
        }
        out.write_all(&TERMINATOR)?;
        Ok(Self { out, checksums: HashMap::new() })
    }

    /// Writes one segment of `db.collection`'s `documents` (nothing when there are none).
    ///
    /// # Errors
    /// The output's errors.
    pub fn segment<'d>(
        &mut self,
        db: &str,
        collection: &str,
        documents: impl IntoIterator<Item = &'d [u8]>,
    ) -> std::io::Result<()> {
        let mut documents = documents.into_iter().peekable();
        if documents.peek().is_none() {
            return Ok(());
        }
        let checksum = self.checksums.entry(format!("{db}.{collection}")).or_insert_with(|| CRC64.digest());
        let header = doc! { "db": db, "collection": collection, "EOF": false, "CRC": 0_i64 };
        header.to_writer(&mut self.out).map_err(std::io::Error::other)?;
        for document in documents {
            checksum.update(document);
            self.out.write_all(document)?;
        }
        self.out.write_all(&TERMINATOR)
    }

    /// Ends `db.collection` with its checksum.
    ///
    /// # Errors
    /// The output's errors.
    pub fn end_namespace(&mut self, db: &str, collection: &str) -> std::io::Result<()> {
        let checksum = self.checksums.remove(&format!("{db}.{collection}")).map_or(0, |digest| digest.finalize());
        // Go's int64 of the unsigned sum: the same 64 bits.
        let header = doc! { "db": db, "collection": collection, "EOF": true, "CRC": checksum as i64 };
        header.to_writer(&mut self.out).map_err(std::io::Error::other)?;
        self.out.write_all(&TERMINATOR)
    }

    /// The output, flushed.
    ///
    /// # Errors
    /// The output's errors.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// What the body of an archive holds next.
#[derive(Debug)]
pub enum ArchiveEvent<'a> {
    /// A document of the collection at this index of the prelude.
    Document(usize, &'a RawDocument),
    /// The end of that collection: all its documents came, and their checksum matched.
    End(usize),
}

/// Where the body's parse is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Between segments: a namespace header or the end comes next.
    Between,
    /// In a segment of the collection at this index.
    In(usize),
    /// After a collection's end header: its terminator comes next.
    AfterEnd,
}

/// What [`ArchiveReader::advance`] stopped at.
enum Step {
    /// A document of the collection at this index (in the stream's buffer).
    Document(usize),
    /// The end of the collection at this index.
    End(usize),
    /// The end of the archive.
    Done,
}

/// One block of the body, classified.
enum Body {
    /// The end of the stream.
    Eof,
    /// Four `0xFF` bytes.
    Terminator,
    /// A document inside a segment.
    Data,
    /// A namespace header.
    Header { db: String, collection: String, eof: bool, checksum: u64 },
    /// A document where a namespace header belongs, without its fields.
    BadHeader,
}

impl Body {
    fn header(document: &RawDocument) -> Self {
        let (Ok(db), Ok(collection)) = (document.get_str("db"), document.get_str("collection")) else {
            return Self::BadHeader;
        };
        let checksum = match document.get("CRC").ok().flatten() {
            // Go's int64 of the unsigned sum: the same 64 bits.
            Some(bson::RawBsonRef::Int64(n)) => n as u64,
            Some(bson::RawBsonRef::Int32(n)) => i64::from(n) as u64,
            _ => 0,
        };
        Self::Header {
            db: db.to_owned(),
            collection: collection.to_owned(),
            eof: document.get_bool("EOF").unwrap_or(false),
            checksum,
        }
    }
}

/// Reads an archive from `R`: the header and prelude at [`Self::open`], then the body's
/// documents and collection ends in order through [`Self::next_event`].
pub struct ArchiveReader<R: Read> {
    stream: BsonStream<R>,
    prelude: Vec<PreludeEntry>,
    server_version: String,
    position: Position,
    checksums: Vec<Option<crc::Digest<'static, u64>>>,
    ended: Vec<bool>,
}

impl<R: Read> ArchiveReader<R> {
    /// Reads the magic number, the header and the prelude from `reader`, named `path` in
    /// errors.
    ///
    /// # Errors
    /// [`BackupError::Corrupt`] naming the offset of what is not an archive's.
    pub fn open(mut reader: R, path: &Path) -> Result<Self, BackupError> {
        let mut magic = [0u8; 4];
        reader.read_exact(&mut magic).map_err(|e| super::crypto::read_error(path, e))?;
        if magic != MAGIC {
            return Err(BackupError::corrupt(path, 0, "not a mongodump archive (its magic number is wrong)"));
        }
        let mut stream = BsonStream::new(reader, path).starting_at(MAGIC.len() as u64);
        let header = match stream.next_block()? {
            Some((_, Block::Document(header))) => header.to_owned(),
            _ => return Err(BackupError::corrupt(path, 4, "the archive has no header")),
        };
        let version = header.get_str("version").unwrap_or_default();
        if version != FORMAT_VERSION {
            return Err(BackupError::corrupt(
                path,
                4,
                format!("archive format version {version:?} is not {FORMAT_VERSION}"),
            ));
        }
        let server_version = header.get_str("server_version").unwrap_or_default().to_owned();
        let mut prelude = Vec::new();
        loop {
            match stream.next_block()? {
                None => return Err(stream.corrupt("the archive ends inside its prelude")),
                Some((_, Block::Terminator)) => break,
                Some((offset, Block::Document(entry))) => {
                    let text = |field: &str| {
                        entry.get_str(field).map(str::to_owned).map_err(|_| {
                            BackupError::corrupt(path, offset, format!("a prelude entry without a string `{field}`"))
                        })
                    };
                    let size = match entry.get("size").ok().flatten() {
                        Some(bson::RawBsonRef::Int32(n)) => i64::from(n),
                        Some(bson::RawBsonRef::Int64(n)) => n,
                        _ => 0,
                    };
                    let kind = entry.get_str("type").unwrap_or("collection").to_owned();
                    prelude.push(PreludeEntry {
                        db: text("db")?,
                        collection: text("collection")?,
                        metadata: text("metadata")?,
                        size,
                        kind,
                    });
                }
            }
        }
        let count = prelude.len();
        Ok(Self {
            stream,
            prelude,
            server_version,
            position: Position::Between,
            checksums: (0..count).map(|_| None).collect(),
            ended: vec![false; count],
        })
    }

    /// The collections the archive holds.
    pub fn prelude(&self) -> &[PreludeEntry] {
        &self.prelude
    }

    /// The version of the server the archive was dumped from.
    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// The next document or collection end, or `None` at the end of a complete archive.
    ///
    /// # Errors
    /// [`BackupError::Corrupt`] with the offset: a block out of place, a collection the
    /// prelude does not list, a checksum that does not match, an archive that ends before
    /// every collection did; the stream's errors.
    pub fn next_event(&mut self) -> Result<Option<ArchiveEvent<'_>>, BackupError> {
        match self.advance()? {
            Step::Done => Ok(None),
            Step::End(index) => Ok(Some(ArchiveEvent::End(index))),
            Step::Document(index) => match self.stream.current() {
                Some(document) => Ok(Some(ArchiveEvent::Document(index, document))),
                None => Err(self.stream.corrupt("the document does not parse")),
            },
        }
    }

    /// Reads blocks until a document or a collection's end (or the archive's end).
    fn advance(&mut self) -> Result<Step, BackupError> {
        loop {
            // What the block is, taken out of the stream's buffer (which it borrows).
            let (offset, block) = match self.stream.next_block()? {
                None => (0, Body::Eof),
                Some((offset, Block::Terminator)) => (offset, Body::Terminator),
                Some((offset, Block::Document(document))) => match self.position {
                    Position::In(index) => {
                        if let Some(Some(checksum)) = self.checksums.get_mut(index) {
                            checksum.update(document.as_bytes());
                        }
                        (offset, Body::Data)
                    }
                    _ => (offset, Body::header(document)),
                },
            };
            let corrupt = |detail: String| BackupError::corrupt(self.stream.path(), offset, detail);
            match (self.position, block) {
                (Position::Between, Body::Eof) => {
                    return match self.unfinished() {
                        Some(name) => Err(self.stream.corrupt(format!("the archive ends before {name} does"))),
                        None => Ok(Step::Done),
                    };
                }
                (_, Body::Eof) => return Err(self.stream.corrupt("the archive ends inside a segment")),
                (Position::In(_) | Position::AfterEnd, Body::Terminator) => self.position = Position::Between,
                (Position::Between, Body::Terminator) => {
                    return Err(corrupt("a terminator where a namespace header belongs".to_owned()));
                }
                (Position::In(index), _) => return Ok(Step::Document(index)),
                (Position::AfterEnd, _) => {
                    return Err(corrupt("a document after a collection's end header".to_owned()));
                }
                (Position::Between, Body::Data | Body::BadHeader) => {
                    return Err(corrupt("a namespace header without `db` and `collection`".to_owned()));
                }
                (Position::Between, Body::Header { db, collection, eof, checksum }) => {
                    let Some(index) =
                        self.prelude.iter().position(|e| e.db == db && e.collection == collection && e.has_data())
                    else {
                        return Err(corrupt(format!("data for {db}.{collection}, which the prelude does not list")));
                    };
                    if self.ended.get(index).copied().unwrap_or(true) {
                        return Err(corrupt(format!("data for {db}.{collection} after its end")));
                    }
                    if !eof {
                        if let Some(slot @ None) = self.checksums.get_mut(index) {
                            *slot = Some(CRC64.digest());
                        }
                        self.position = Position::In(index);
                        continue;
                    }
                    let actual = self.checksums.get_mut(index).and_then(Option::take).map_or(0, |d| d.finalize());
                    if checksum != actual {
                        return Err(corrupt(format!(
                            "{db}.{collection}'s documents do not match their checksum (CRC-64 {actual:#018x}, the archive says {checksum:#018x})"
                        )));
                    }
                    if let Some(ended) = self.ended.get_mut(index) {
                        *ended = true;
                    }
                    self.position = Position::AfterEnd;
                    return Ok(Step::End(index));
                }
            }
        }
    }

    /// The first collection with data that has not ended.
    fn unfinished(&self) -> Option<String> {
        self.prelude
            .iter()
            .zip(&self.ended)
            .find(|(entry, ended)| entry.has_data() && !**ended)
            .map(|(entry, _)| entry.namespace())
    }
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;

    use super::*;

    fn entry(collection: &str) -> PreludeEntry {
        PreludeEntry {
            db: "app".to_owned(),
            collection: collection.to_owned(),
            metadata: "{}".to_owned(),
            size: 0,
            kind: "collection".to_owned(),
        }
    }

    /// Every event of `bytes`, as text, or the error.
    fn events(bytes: &[u8]) -> Result<Vec<String>, String> {
        let mut reader = ArchiveReader::open(bytes, Path::new("a.archive")).map_err(|e| e.to_string())?;
        let mut seen = Vec::new();
        while let Some(event) = reader.next_event().map_err(|e| e.to_string())? {
            seen.push(match event {
                ArchiveEvent::Document(index, document) => format!("{index}:{}", document.get_i32("_id").unwrap_or(-1)),
                ArchiveEvent::End(index) => format!("{index}:end"),
            });
        }
        Ok(seen)
    }

    fn interleaved() -> std::io::Result<Vec<u8>> {
        let (one, two, three) = (rawdoc! { "_id": 1 }, rawdoc! { "_id": 2 }, rawdoc! { "_id": 3 });
        let mut writer = ArchiveWriter::start(Vec::new(), "7.0.0", &[entry("a"), entry("b"), entry("empty")])?;
        writer.segment("app", "a", [one.as_bytes()])?;
        writer.segment("app", "b", [two.as_bytes()])?;
        writer.segment("app", "a", [three.as_bytes()])?;
        writer.end_namespace("app", "b")?;
        writer.end_namespace("app", "a")?;
        writer.end_namespace("app", "empty")?;
        writer.finish()
    }

    #[test]
    fn archive_round_trips_interleaved_segments() -> Result<(), String> {
        let bytes = interleaved().map_err(|e| e.to_string())?;
        assert_eq!(bytes.get(..4), Some(&[0x6d, 0xe2, 0x99, 0x81][..]));
        assert_eq!(events(&bytes)?, ["0:1", "1:2", "0:3", "1:end", "0:end", "2:end"]);
        Ok(())
    }

    #[test]
    fn archive_checksum_is_gos_crc64_ecma() {
        // The check value of CRC-64/XZ, which Go's crc64.Checksum(data, MakeTable(ECMA)) gives.
        assert_eq!(CRC64.checksum(b"123456789"), 0x995d_c9bb_df19_39fa);
    }

    #[test]
    fn archive_reader_names_what_is_wrong_and_where() -> Result<(), String> {
        let bytes = interleaved().map_err(|e| e.to_string())?;
        let position = |needle: &[u8]| bytes.windows(needle.len()).position(|w| w == needle).unwrap_or_default();
        // A flipped byte in a document's value: the checksum at its collection's end fails.
        let mut flipped = bytes.clone();
        let at = position(rawdoc! { "_id": 3 }.as_bytes()) + 9;
        if let Some(byte) = flipped.get_mut(at) {
            *byte ^= 0x40;
        }
        let error = events(&flipped).err().unwrap_or_default();
        assert!(error.contains("app.a's documents do not match their checksum"), "{error}");

        // A collection that never ends.
        let mut writer = ArchiveWriter::start(Vec::new(), "7.0.0", &[entry("a")]).map_err(|e| e.to_string())?;
        writer.segment("app", "a", [rawdoc! { "_id": 1 }.as_bytes()]).map_err(|e| e.to_string())?;
        let unended = writer.finish().map_err(|e| e.to_string())?;
        assert_eq!(
            events(&unended).err(),
            Some(format!("a.archive: at byte offset {}: the archive ends before app.a does", unended.len()))
        );

        assert_eq!(
            events(b"\x6d\xe2\x99\x82").err().as_deref(),
            Some("a.archive: at byte offset 0: not a mongodump archive (its magic number is wrong)")
        );
        let mut stray = bytes.get(..bytes.len()).unwrap_or_default().to_vec();
        stray.extend_from_slice(rawdoc! { "db": "app", "collection": "zzz", "EOF": false }.as_bytes());
        let error = events(&stray).err().unwrap_or_default();
        assert_eq!(
            error,
            format!("a.archive: at byte offset {}: data for app.zzz, which the prelude does not list", bytes.len())
        );
        Ok(())
    }
}
