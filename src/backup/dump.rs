//! `monarchd dump` (issue 19, point 7): the collections of a running server (any server that
//! speaks the protocol, mongod too), read with `listCollections`, `listIndexes` and `find`,
//! written in mongodump's formats: a directory (`<db>/<coll>.bson`, concatenated BSON, and
//! `<db>/<coll>.metadata.json`, each gzipped with `--gzip`) or one archive (`--archive`, see
//! [`super::archive`]), which mongorestore reads.
//!
//! As mongodump without `--oplog`, each collection is read by its own query while writes may
//! go on: the dump is not one point in time (a backup, `createBackup`, is). `local` and
//! `config` are left out, as are `system.*` collections (users, roles and the view catalog
//! are not dumped) and time-series collections; every one left out is said on standard
//! error.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use bson::{Bson, Document, doc};
use flate2::write::GzEncoder;

use super::archive::{ArchiveWriter, PreludeEntry};
use super::client::Connection;
use super::error::BackupError;
use super::layout::{self, MetadataJson};
use super::progress::Progress;

/// Documents asked for per batch, and written per archive segment.
const BATCH_SIZE: i32 = 1000;

/// Where a dump goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DumpOutput {
    /// mongodump's directory layout under this directory.
    Directory(PathBuf),
    /// One archive in this file, or on standard output.
    Archive(Option<PathBuf>),
}

/// What to dump, and how.
#[derive(Debug, Clone)]
pub struct DumpOptions {
    /// Only this database.
    pub db: Option<String>,
    /// Only this collection (of `db`).
    pub collection: Option<String>,
    /// Only the documents this filter matches (with `collection`).
    pub query: Option<Document>,
    /// Where it goes.
    pub output: DumpOutput,
    /// Gzip every file (a directory) or the whole archive.
    pub gzip: bool,
}

/// What a dump wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DumpReport {
    /// Collections with their documents.
    pub collections: usize,
    /// Views (metadata only).
    pub views: usize,
    /// Documents.
    pub documents: u64,
}

/// One collection or view to dump.
struct Source {
    db: String,
    name: String,
    /// `collection` or `view`.
    kind: String,
    /// The text of its `metadata.json`.
    metadata: Vec<u8>,
    /// Its data size, for the archive's prelude (0 for a directory).
    size: i64,
}

/// Dumps what `options` selects from the server on `connection`.
///
/// # Errors
/// [`BackupError::BadArgument`] for option combinations mongodump refuses; the server's and
/// the output's errors.
pub fn dump(connection: &mut Connection, options: &DumpOptions) -> Result<DumpReport, BackupError> {
    if options.collection.is_some() && options.db.is_none() {
        return Err(BackupError::BadArgument("--collection needs --db".to_owned()));
    }
    if options.query.is_some() && options.collection.is_none() {
        return Err(BackupError::BadArgument("--query needs --db and --collection".to_owned()));
    }
    let mut sources = Vec::new();
    for db in databases(connection, options)? {
        sources.extend(collections(connection, &db, options)?);
    }
    if let (Some(collection), true) = (&options.collection, sources.is_empty()) {
        eprintln!("dump: {}.{collection} does not exist: nothing to dump", options.db.as_deref().unwrap_or_default());
    }
    let mut progress = Progress::new("dumped");
    let report = match &options.output {
        DumpOutput::Directory(dir) => to_directory(connection, options, &sources, dir, &mut progress)?,
        DumpOutput::Archive(file) => to_archive(connection, options, &sources, file.as_deref(), &mut progress)?,
    };
    progress.finish(report.documents);
    Ok(report)
}

/// The databases to dump.
fn databases(connection: &mut Connection, options: &DumpOptions) -> Result<Vec<String>, BackupError> {
    if let Some(db) = &options.db {
        return Ok(vec![db.clone()]);
    }
    let reply = connection.command("admin", doc! { "listDatabases": 1, "nameOnly": true })?;
    let listed = reply.get_array("databases").map_err(|_| protocol("a listDatabases reply without databases"))?;
    Ok(listed
        .iter()
        .filter_map(|entry| entry.as_document()?.get_str("name").ok())
        .filter(|name| !matches!(*name, "local" | "config"))
        .map(str::to_owned)
        .collect())
}

/// The collections and views of `db` to dump, with their metadata.
fn collections(connection: &mut Connection, db: &str, options: &DumpOptions) -> Result<Vec<Source>, BackupError> {
    let filter = options.collection.as_ref().map_or_else(Document::new, |name| doc! { "name": name });
    let reply = connection.command(db, doc! { "listCollections": 1, "filter": filter })?;
    let mut listed = Vec::new();
    connection.drain_cursor(db, reply, None, &mut |entry| {
        listed.push(entry);
        Ok(())
    })?;
    listed.sort_by(|a, b| a.get_str("name").unwrap_or_default().cmp(b.get_str("name").unwrap_or_default()));
    let mut sources = Vec::new();
    for entry in listed {
        let name = entry.get_str("name").map_err(|_| protocol("a collection without a name"))?.to_owned();
        let kind = entry.get_str("type").unwrap_or("collection").to_owned();
        if name.starts_with("system.") {
            eprintln!("dump: skipping {db}.{name}: system collections are not dumped");
            continue;
        }
        if kind != "collection" && kind != "view" {
            eprintln!("dump: skipping {db}.{name}: {kind} collections are not dumped");
            continue;
        }
        let uuid = match entry.get_document("info").ok().and_then(|info| info.get("uuid")) {
            Some(Bson::Binary(binary)) => hex::encode(&binary.bytes),
            _ => String::new(),
        };
        let options_document = entry.get_document("options").cloned().unwrap_or_default();
        let mut indexes = Vec::new();
        let mut size = 0;
        if kind == "collection" {
            let reply = connection.command(db, doc! { "listIndexes": &name })?;
            connection.drain_cursor(db, reply, None, &mut |mut spec| {
                // Old servers' specs name their namespace; a restore under a new name must not.
                spec.remove("ns");
                indexes.push(Bson::Document(spec).into_canonical_extjson());
                Ok(())
            })?;
            // Only an archive's prelude carries the size.
            if matches!(options.output, DumpOutput::Archive(_)) {
                size = match connection.command(db, doc! { "collStats": &name })?.get("size") {
                    Some(Bson::Int32(n)) => i64::from(*n),
                    Some(Bson::Int64(n)) => *n,
                    Some(Bson::Double(n)) => *n as i64,
                    _ => 0,
                };
            }
        }
        let described =
            MetadataJson { uuid, options: Bson::Document(options_document).into_canonical_extjson(), indexes };
        let metadata = described
            .file_bytes(&name, &kind)
            .map_err(|e| BackupError::Internal(format!("cannot encode {db}.{name}'s metadata: {e}")))?;
        sources.push(Source { db: db.to_owned(), name, kind, metadata, size });
    }
    Ok(sources)
}

/// Reads the documents of `source` (those `options.query` matches) and hands each one's bytes
/// to `each`; returns how many there were.
fn read_documents(
    connection: &mut Connection,
    options: &DumpOptions,
    source: &Source,
    each: &mut dyn FnMut(&[u8]) -> Result<(), BackupError>,
) -> Result<u64, BackupError> {
    let filter = options.query.clone().unwrap_or_default();
    let find = doc! { "find": &source.name, "filter": filter, "batchSize": BATCH_SIZE };
    let reply = connection.command(&source.db, find)?;
    let mut bytes = Vec::new();
    connection.drain_cursor(&source.db, reply, Some(BATCH_SIZE), &mut |document| {
        bytes.clear();
        document.to_writer(&mut bytes).map_err(|e| BackupError::Internal(format!("cannot encode a document: {e}")))?;
        each(&bytes)
    })
}

fn to_directory(
    connection: &mut Connection,
    options: &DumpOptions,
    sources: &[Source],
    dir: &Path,
    progress: &mut Progress,
) -> Result<DumpReport, BackupError> {
    let suffix = if options.gzip { ".gz" } else { "" };
    let mut report = DumpReport::default();
    for source in sources {
        let metadata_path = dir.join(format!("{}{suffix}", layout::metadata_path(&source.db, &source.name)));
        if let Some(parent) = metadata_path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| BackupError::io(parent, e))?;
        }
        let mut metadata = create(&metadata_path, options.gzip)?;
        metadata.write_all(&source.metadata).map_err(|e| BackupError::io(&metadata_path, e))?;
        metadata.close().map_err(|e| BackupError::io(&metadata_path, e))?;
        if source.kind == "view" {
            report.views += 1;
            continue;
        }
        let data_path = dir.join(format!("{}{suffix}", layout::data_path(&source.db, &source.name)));
        let mut data = create(&data_path, options.gzip)?;
        let mut documents = report.documents;
        read_documents(connection, options, source, &mut |bytes| {
            documents += 1;
            progress.advance(documents);
            data.write_all(bytes).map_err(|e| BackupError::io(&data_path, e))
        })?;
        data.close().map_err(|e| BackupError::io(&data_path, e))?;
        report.documents = documents;
        report.collections += 1;
    }
    Ok(report)
}

fn to_archive(
    connection: &mut Connection,
    options: &DumpOptions,
    sources: &[Source],
    file: Option<&Path>,
    progress: &mut Progress,
) -> Result<DumpReport, BackupError> {
    let name = file.map_or_else(|| PathBuf::from("(standard output)"), Path::to_path_buf);
    let io = |e: std::io::Error| BackupError::io(&name, e);
    let out: Box<dyn Output> = match file {
        Some(path) => create(path, options.gzip)?,
        None => wrap(std::io::stdout().lock(), options.gzip),
    };
    let server_version = connection
        .command("admin", doc! { "buildInfo": 1 })?
        .get_str("version")
        .map_err(|_| protocol("a buildInfo reply without a version"))?
        .to_owned();
    let prelude: Vec<PreludeEntry> = sources
        .iter()
        .map(|source| PreludeEntry {
            db: source.db.clone(),
            collection: source.name.clone(),
            metadata: String::from_utf8_lossy(&source.metadata).into_owned(),
            size: source.size,
            kind: source.kind.clone(),
        })
        .collect();
    let mut writer = ArchiveWriter::start(out, &server_version, &prelude).map_err(io)?;
    let mut report = DumpReport::default();
    for source in sources {
        if source.kind == "view" {
            report.views += 1;
            continue;
        }
        // One segment per batch the server sends.
        let mut segment: Vec<Vec<u8>> = Vec::new();
        let mut documents = report.documents;
        let write_segment = |writer: &mut ArchiveWriter<Box<dyn Output>>, segment: &mut Vec<Vec<u8>>| {
            let written = writer.segment(&source.db, &source.name, segment.iter().map(Vec::as_slice)).map_err(io);
            segment.clear();
            written
        };
        read_documents(connection, options, source, &mut |bytes| {
            segment.push(bytes.to_vec());
            documents += 1;
            progress.advance(documents);
            if segment.len() >= BATCH_SIZE as usize {
                write_segment(&mut writer, &mut segment)?;
            }
            Ok(())
        })?;
        write_segment(&mut writer, &mut segment)?;
        writer.end_namespace(&source.db, &source.name).map_err(io)?;
        report.documents = documents;
        report.collections += 1;
    }
    writer.finish().map_err(io)?.close().map_err(io)?;
    Ok(report)
}

/// An output file or stream, plain or gzipped, that must be closed to be complete.
pub trait Output: Write {
    /// Writes what is buffered (and gzip's trailer).
    ///
    /// # Errors
    /// The output's errors.
    fn close(self: Box<Self>) -> std::io::Result<()>;
}

impl<W: Write> Output for BufWriter<W> {
    fn close(mut self: Box<Self>) -> std::io::Result<()> {
        self.flush()
    }
}

impl<W: Write> Output for GzEncoder<W> {
    fn close(self: Box<Self>) -> std::io::Result<()> {
        self.finish()?.flush()
    }
}

/// `inner`, buffered and gzipped when `gzip`.
fn wrap<'a, W: Write + 'a>(inner: W, gzip: bool) -> Box<dyn Output + 'a> {
    let buffered = BufWriter::with_capacity(1 << 20, inner);
    if gzip { Box::new(GzEncoder::new(buffered, flate2::Compression::default())) } else { Box::new(buffered) }
}

/// Creates the file at `path` for writing, gzipped when `gzip`.
fn create(path: &Path, gzip: bool) -> Result<Box<dyn Output>, BackupError> {
    let file = File::create(path).map_err(|e| BackupError::io(path, e))?;
    Ok(wrap(file, gzip))
}

fn protocol(what: &str) -> BackupError {
    BackupError::Internal(format!("the server sent {what}"))
}
