//! `monarchd restore --dir DIR` and `monarchd restore --archive[=FILE]` (issue 19, point 7):
//! a dump in mongodump's formats (written by `monarchd dump` or by mongodump itself, gzipped
//! with `--gzip`) loaded into a running server, as mongorestore does: each collection created
//! with its options (or, existing, written into; `--drop` drops it first), its documents
//! inserted in batches, then its indexes built; views created from their metadata.
//!
//! The whole dump is read and checked first (every document parsed, every archive checksum
//! compared; an archive on standard input is kept in a temporary file for this), so a dump
//! with a damaged file, an unknown BSON type or an oversized document is refused, naming the
//! file and the offset, before anything is written. Documents the server refuses (a duplicate
//! key) are counted and reported and the restore goes on, unless `--stopOnError`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use bson::{Bson, Document, RawDocument, doc};
use flate2::read::GzDecoder;

use super::archive::{ArchiveEvent, ArchiveReader};
use super::bson_stream::BsonStream;
use super::client::Connection;
use super::crypto::read_error;
use super::error::BackupError;
use super::layout::{self, Metadata};
use super::namespaces::NamespaceMap;
use super::progress::Progress;
use super::writes::{BatchWriter, ImportMode, WriteTarget};

/// Where a dump is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DumpSource {
    /// mongodump's directory layout under this directory.
    Directory(PathBuf),
    /// One archive in this file, or on standard input.
    Archive(Option<PathBuf>),
}

/// What to load, and how.
#[derive(Debug)]
pub struct LoadOptions {
    /// The dump.
    pub source: DumpSource,
    /// The dump's files (a directory) or the archive are gzipped.
    pub gzip: bool,
    /// Which namespaces, under which names.
    pub namespaces: NamespaceMap,
    /// Drop each collection before restoring it.
    pub drop: bool,
    /// Leave the indexes out.
    pub no_index_restore: bool,
    /// Stop at the first document the server refuses.
    pub stop_on_error: bool,
}

/// What a load did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Collections restored.
    pub collections: usize,
    /// Views created.
    pub views: usize,
    /// Documents written.
    pub documents: u64,
    /// Documents the server refused.
    pub failed: u64,
}

/// One collection or view of a dump directory.
#[derive(Debug, Default)]
struct DirectoryEntry {
    metadata: Option<PathBuf>,
    data: Option<PathBuf>,
}

/// Loads the dump `options` names into the server on `connection`.
///
/// # Errors
/// [`BackupError::Corrupt`] (file and offset) for a dump that does not read, before anything
/// is written; a namespace the map makes invalid; the server's errors.
pub fn load(connection: &mut Connection, options: &LoadOptions) -> Result<LoadReport, BackupError> {
    match &options.source {
        DumpSource::Directory(dir) => load_directory(connection, options, dir),
        DumpSource::Archive(Some(path)) => {
            check_archive(path, options.gzip)?;
            load_archive(connection, options, path)
        }
        DumpSource::Archive(None) => {
            // Kept whole first, so that it can be checked before anything is written.
            let spool = Spool::from_stdin()?;
            check_archive(&spool.path, options.gzip)?;
            load_archive(connection, options, &spool.path)
        }
    }
}

/// Opens `path` for reading, gunzipping when `gzip`.
fn open(path: &Path, gzip: bool) -> Result<Box<dyn Read>, BackupError> {
    let file = BufReader::with_capacity(1 << 20, File::open(path).map_err(|e| BackupError::io(path, e))?);
    Ok(if gzip { Box::new(GzDecoder::new(file)) } else { Box::new(file) })
}

/// The metadata in `path` (gunzipped when `gzip`).
fn read_metadata(path: &Path, gzip: bool) -> Result<Metadata, BackupError> {
    let mut bytes = Vec::new();
    open(path, gzip)?.read_to_end(&mut bytes).map_err(|e| read_error(path, e))?;
    layout::parse_metadata(&bytes).map_err(|detail| BackupError::corrupt(path, 0, detail))
}

/// The collections of the dump directory `dir`, by namespace; files that are not a dump's are
/// said on standard error and left alone, as mongorestore does.
fn scan_directory(dir: &Path, gzip: bool) -> Result<BTreeMap<(String, String), DirectoryEntry>, BackupError> {
    let suffix = if gzip { ".gz" } else { "" };
    let (data_suffix, metadata_suffix) = (format!(".bson{suffix}"), format!(".metadata.json{suffix}"));
    let mut found: BTreeMap<(String, String), DirectoryEntry> = BTreeMap::new();
    for db_dir in sorted_entries(dir)? {
        let Some(db_name) = db_dir.file_name().and_then(|n| n.to_str()).map(str::to_owned) else { continue };
        if !db_dir.is_dir() {
            // mongodump's own top-level files, said when they hold data that is not restored.
            match db_name.as_str() {
                "prelude.json" => {}
                "oplog.bson" => {
                    eprintln!("restore: {} is not replayed (--oplogReplay is not supported)", db_dir.display())
                }
                _ => eprintln!("restore: {} is not part of a dump: left alone", db_dir.display()),
            }
            continue;
        }
        let db = layout::percent_decode(&db_name).ok_or_else(|| bad_name(&db_dir))?;
        for file in sorted_entries(&db_dir)? {
            let Some(file_name) = file.file_name().and_then(|n| n.to_str()) else { continue };
            let (name, is_metadata) = if let Some(name) = file_name.strip_suffix(&metadata_suffix) {
                (name, true)
            } else if let Some(name) = file_name.strip_suffix(&data_suffix) {
                (name, false)
            } else {
                let hint = if gzip { "" } else { " (gzipped files need --gzip)" };
                eprintln!("restore: {} is not a dump's file: left alone{hint}", file.display());
                continue;
            };
            let collection = layout::percent_decode(name).ok_or_else(|| bad_name(&file))?;
            let entry = found.entry((db.clone(), collection)).or_default();
            if is_metadata { entry.metadata = Some(file) } else { entry.data = Some(file) }
        }
    }
    Ok(found)
}

fn bad_name(path: &Path) -> BackupError {
    BackupError::corrupt(path, 0, "the name has a malformed %XX escape, or is not UTF-8 once they are decoded")
}

/// The entries of `dir`, sorted by name.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, BackupError> {
    let entries = std::fs::read_dir(dir).map_err(|e| BackupError::io(dir, e))?;
    let mut paths =
        entries.map(|e| e.map(|e| e.path())).collect::<Result<Vec<_>, _>>().map_err(|e| BackupError::io(dir, e))?;
    paths.sort();
    Ok(paths)
}

/// A collection of the dump to restore, under its new name.
struct Planned {
    from: String,
    db: String,
    collection: String,
    metadata: Metadata,
}

/// The target of `db.collection` under the map, `None` when it is not restored.
fn plan(options: &LoadOptions, db: &str, collection: &str, metadata: Metadata) -> Result<Option<Planned>, BackupError> {
    let from = format!("{db}.{collection}");
    if collection.starts_with("system.") {
        eprintln!("restore: skipping {from}: system collections are not restored");
        return Ok(None);
    }
    if metadata.kind != "collection" && metadata.kind != "view" {
        eprintln!("restore: skipping {from}: {} collections are not restored", metadata.kind);
        return Ok(None);
    }
    let Some(target) = options.namespaces.map(&from) else { return Ok(None) };
    let Some((db, collection)) = target.split_once('.').filter(|(d, c)| !d.is_empty() && !c.is_empty()) else {
        return Err(BackupError::BadArgument(format!(
            "{from} would be restored as {target}, which is not a namespace"
        )));
    };
    Ok(Some(Planned { from, db: db.to_owned(), collection: collection.to_owned(), metadata }))
}

fn load_directory(connection: &mut Connection, options: &LoadOptions, dir: &Path) -> Result<LoadReport, BackupError> {
    let mut planned = Vec::new();
    for ((db, collection), entry) in scan_directory(dir, options.gzip)? {
        let metadata = match &entry.metadata {
            Some(path) => read_metadata(path, options.gzip)?,
            None => Metadata { options: Document::new(), indexes: Vec::new(), kind: "collection".to_owned() },
        };
        if let Some(target) = plan(options, &db, &collection, metadata)? {
            planned.push((target, entry.data));
        }
    }
    // Everything is read once before anything is written.
    for (_, data) in &planned {
        if let Some(path) = data {
            each_document(path, options.gzip, &mut |_| Ok(()))?;
        }
    }
    // Views last: what they read from exists by then.
    planned.sort_by_key(|(target, _)| target.metadata.kind == "view");
    let mut report = LoadReport::default();
    let mut progress = Progress::new("restored");
    for (target, data) in &planned {
        let mut writer = prepare(connection, options, target)?;
        if let (Some(writer), Some(path)) = (writer.as_mut(), data) {
            each_document(path, options.gzip, &mut |document| {
                writer.push(connection, owned(path, document)?)?;
                progress.advance(report.documents + writer.report.imported + writer.report.failed);
                Ok(())
            })?;
        }
        finish(connection, options, target, writer, &mut report)?;
    }
    progress.finish(report.documents + report.failed);
    Ok(report)
}

/// Hands every document of the data file `path` to `each`.
fn each_document(
    path: &Path,
    gzip: bool,
    each: &mut dyn FnMut(&RawDocument) -> Result<(), BackupError>,
) -> Result<(), BackupError> {
    let mut stream = BsonStream::new(open(path, gzip)?, path);
    while let Some((_, document)) = stream.next_document()? {
        each(document)?;
    }
    Ok(())
}

/// Reads the whole archive at `path`, checking every document and checksum.
fn check_archive(path: &Path, gzip: bool) -> Result<(), BackupError> {
    let mut reader = ArchiveReader::open(open(path, gzip)?, path)?;
    for entry in reader.prelude() {
        layout::parse_metadata(entry.metadata.as_bytes())
            .map_err(|detail| BackupError::corrupt(path, 0, format!("{}'s metadata: {detail}", entry.namespace())))?;
    }
    while reader.next_event()?.is_some() {}
    Ok(())
}

fn load_archive(connection: &mut Connection, options: &LoadOptions, path: &Path) -> Result<LoadReport, BackupError> {
    let mut reader = ArchiveReader::open(open(path, options.gzip)?, path)?;
    let server_version = reader.server_version();
    if !server_version.starts_with("7.0") {
        eprintln!("restore: the archive was dumped from server version {server_version}; this is a 7.0 server");
    }
    let mut targets: Vec<Option<(Planned, Option<BatchWriter>)>> = Vec::new();
    let mut report = LoadReport::default();
    let entries = reader.prelude().to_vec();
    // Views are created once every collection is complete.
    let mut views = Vec::new();
    for entry in &entries {
        let metadata = layout::parse_metadata(entry.metadata.as_bytes())
            .map_err(|detail| BackupError::corrupt(path, 0, format!("{}'s metadata: {detail}", entry.namespace())))?;
        match plan(options, &entry.db, &entry.collection, metadata)? {
            Some(target) if target.metadata.kind == "view" => {
                views.push(target);
                targets.push(None);
            }
            Some(target) => {
                let writer = prepare(connection, options, &target)?;
                targets.push(Some((target, writer)));
            }
            None => targets.push(None),
        }
    }
    let mut progress = Progress::new("restored");
    let mut seen = 0u64;
    while let Some(event) = reader.next_event()? {
        match event {
            ArchiveEvent::Document(index, document) => {
                if let Some(Some((_, Some(writer)))) = targets.get_mut(index) {
                    writer.push(connection, owned(path, document)?)?;
                    seen += 1;
                    progress.advance(seen);
                }
            }
            ArchiveEvent::End(index) => {
                if let Some(slot) = targets.get_mut(index)
                    && let Some((target, writer)) = slot.take()
                {
                    finish(connection, options, &target, writer, &mut report)?;
                }
            }
        }
    }
    for view in &views {
        let writer = prepare(connection, options, view)?;
        finish(connection, options, view, writer, &mut report)?;
    }
    progress.finish(report.documents + report.failed);
    Ok(report)
}

/// Drops (with `--drop`) and creates the collection or view `target`; returns the writer for
/// a collection's documents.
fn prepare(
    connection: &mut Connection,
    options: &LoadOptions,
    target: &Planned,
) -> Result<Option<BatchWriter>, BackupError> {
    let (db, collection) = (&target.db, &target.collection);
    if options.drop {
        match connection.command(db, doc! { "drop": collection }) {
            Ok(_) | Err(BackupError::Server { code: 26, .. }) => {}
            Err(error) => return Err(error),
        }
    }
    let mut create = doc! { "create": collection };
    create.extend(target.metadata.options.clone());
    match connection.command(db, create) {
        Ok(_) => {}
        // As mongorestore: an existing collection is restored into.
        Err(BackupError::Server { code: 48, .. }) if target.metadata.kind == "collection" => {}
        Err(error) => return Err(error),
    }
    Ok((target.metadata.kind == "collection").then(|| {
        BatchWriter::new(WriteTarget {
            db: db.clone(),
            collection: collection.clone(),
            mode: ImportMode::Insert,
            upsert_fields: Vec::new(),
            ordered: options.stop_on_error,
        })
    }))
}

/// Sends the last documents of `target`, builds its indexes, and counts it in `report`.
fn finish(
    connection: &mut Connection,
    options: &LoadOptions,
    target: &Planned,
    writer: Option<BatchWriter>,
    report: &mut LoadReport,
) -> Result<(), BackupError> {
    let Some(mut writer) = writer else {
        report.views += 1;
        return Ok(());
    };
    writer.flush(connection)?;
    report.documents += writer.report.imported;
    report.failed += writer.report.failed;
    report.collections += 1;
    if options.no_index_restore {
        return Ok(());
    }
    let specs: Vec<Bson> = target
        .metadata
        .indexes
        .iter()
        .filter(|spec| spec.get_str("name").is_ok_and(|name| name != "_id_"))
        .map(|spec| {
            let mut spec = spec.clone();
            spec.remove("ns");
            Bson::Document(spec)
        })
        .collect();
    if !specs.is_empty() {
        let command = doc! { "createIndexes": &target.collection, "indexes": specs };
        connection.command(&target.db, command).map_err(|error| match error {
            BackupError::Server { code, code_name, message } => BackupError::Server {
                code,
                code_name,
                message: format!(
                    "building the indexes of {}.{} (from {}): {message}",
                    target.db, target.collection, target.from
                ),
            },
            other => other,
        })?;
    }
    Ok(())
}

/// `document`, read from `path`, as the driver-side type the write commands take.
fn owned(path: &Path, document: &RawDocument) -> Result<Document, BackupError> {
    // The stream has already walked every element, so this does not fail.
    Document::try_from(document).map_err(|e| BackupError::corrupt(path, 0, e.to_string()))
}

/// An archive read from standard input into a temporary file, removed when dropped.
struct Spool {
    path: PathBuf,
}

impl Spool {
    fn from_stdin() -> Result<Self, BackupError> {
        let path = std::env::temp_dir().join(format!("monarchd-restore-{}.archive", std::process::id()));
        let spool = Self { path };
        let mut file = File::create(&spool.path).map_err(|e| BackupError::io(&spool.path, e))?;
        std::io::copy(&mut std::io::stdin().lock(), &mut file).map_err(|e| BackupError::io(&spool.path, e))?;
        Ok(spool)
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
