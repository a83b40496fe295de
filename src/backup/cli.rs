//! The command-line tools: `monarchd backup --uri URI --out DIR` (asks the server at URI to
//! write a backup into DIR, a directory on the server's host), `monarchd backup verify DIR`
//! and `monarchd restore --from DIR --dbpath NEWDIR ...` (both offline, no server).
//!
//! `monarchd export` and `monarchd import` move one collection as Extended JSON, CSV or TSV
//! through a running server, with mongoexport's and mongoimport's option names;
//! `monarchd dump` and `monarchd restore --dir DIR` (or `--archive`) move whole databases in
//! mongodump's formats, with mongodump's and mongorestore's.
//!
//! Exit codes: 0 success; 1 a backup that is damaged or does not match its manifest; 2 bad
//! usage, or a target that is not empty; 3 anything else (I/O, the server, the engine).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bson::{Bson, Document, doc};
use clap::Parser;

use super::client::{Connection, ServerAddress, run_command};
use super::crypto::BackupKey;
use super::dump::{DumpOptions, DumpOutput, dump};
use super::error::BackupError;
use super::export::{ExportOptions, ExportType, JsonFormat, export};
use super::import::{ImportMode, ImportOptions, ImportType, import};
use super::load::{DumpSource, LoadOptions, load};
use super::location::BackupPath;
use super::manifest::OplogTime;
use super::namespaces::NamespaceMap;
use super::oplog_archive::OPLOG_DIR;
use super::restore::{OplogReplay, RestoreOptions, restore_backup};
use super::s3::with_local_copy;
use super::target::sibling;
use super::verify::verify_backup;

/// `monarchd backup --uri URI --out DIR`.
#[derive(Debug, Parser)]
#[command(name = "monarchd backup", about = "Asks a running server for a consistent backup (createBackup)")]
struct BackupArgs {
    /// The server: mongodb://[user:password@]host[:port][/db][?authSource=..&authMechanism=..&tls=true&tlsCAFile=..&tlsCertificateKeyFile=..].
    #[arg(long)]
    uri: String,
    /// The backup directory, on the server's host; absent or empty.
    #[arg(long)]
    out: PathBuf,
}

/// `monarchd restore --from DIR --dbpath NEWDIR ...` (a backup, offline) or
/// `monarchd restore [--uri URI] (--dir DIR | --archive[=FILE]) ...` (a dump, through a server).
#[derive(Debug, Parser)]
#[command(
    name = "monarchd restore",
    about = "Restores a backup into a new data directory (offline), or a mongodump dump into a running server"
)]
struct RestoreArgs {
    /// The backup directory, or its s3://bucket/prefix[?endpoint=..&region=..] location (a
    /// backup restored offline, with --dbpath).
    #[arg(long, requires = "dbpath", conflicts_with_all = ["dir", "dir_argument", "archive", "uri", "gzip", "no_index_restore", "stop_on_error"])]
    from: Option<PathBuf>,
    /// The data directory to create from the backup; absent or empty unless --drop.
    #[arg(long, requires = "from")]
    dbpath: Option<PathBuf>,
    /// The dump directory (mongodump's layout), restored through the server at --uri.
    #[arg(long, conflicts_with_all = ["archive", "dir_argument"])]
    dir: Option<PathBuf>,
    /// The dump directory, as mongorestore takes it.
    #[arg(value_name = "DIR", conflicts_with = "archive")]
    dir_argument: Option<PathBuf>,
    /// A mongodump archive: --archive=FILE, or --archive alone for standard input.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "-")]
    archive: Option<PathBuf>,
    /// The server to restore a dump into: mongodb://[user:password@]host[:port][/db][?authSource=..&authMechanism=..].
    #[arg(long, default_value = "mongodb://localhost:27017")]
    uri: String,
    /// The dump's files, or the archive, are gzipped.
    #[arg(long)]
    gzip: bool,
    /// Leave the dump's indexes out.
    #[arg(long = "noIndexRestore")]
    no_index_restore: bool,
    /// Stop at the first document the server refuses.
    #[arg(long = "stopOnError")]
    stop_on_error: bool,
    /// Restore only namespaces matching this pattern (`db.coll`, `*` wildcards); repeatable.
    #[arg(long = "nsInclude")]
    ns_include: Vec<String>,
    /// Leave out namespaces matching this pattern; repeatable.
    #[arg(long = "nsExclude")]
    ns_exclude: Vec<String>,
    /// Rename: the namespace in the backup, with `$var$` variables; pairs with --nsTo.
    #[arg(long = "nsFrom")]
    ns_from: Vec<String>,
    /// Rename: the new namespace, using --nsFrom's variables.
    #[arg(long = "nsTo")]
    ns_to: Vec<String>,
    /// A backup: replace the data directory if it holds anything. A dump: drop each
    /// collection before restoring it.
    #[arg(long)]
    drop: bool,
    /// The key file of an encrypted backup.
    #[arg(long = "encryptionKeyFile", requires = "from")]
    encryption_key_file: Option<PathBuf>,
    /// Point-in-time recovery: after the backup, replay the oplog the server archived (every
    /// entry after the backup's snapshot, up to --oplogLimit).
    #[arg(long = "oplogReplay", requires = "from")]
    oplog_replay: bool,
    /// Replay only entries before this time: <seconds since the epoch>[:<ordinal>], as
    /// mongorestore's --oplogLimit [default: every archived entry].
    #[arg(long = "oplogLimit", requires = "oplog_replay")]
    oplog_limit: Option<String>,
    /// The oplog archive: a directory or s3:// location [default: `oplog` beside the backup,
    /// where the server's scheduler writes it].
    #[arg(long = "oplogPath", requires = "oplog_replay")]
    oplog_path: Option<PathBuf>,
}

/// `monarchd dump [--uri URI] [--db D [--collection C [--query Q]]] [--out DIR | --archive[=FILE]] [--gzip]`.
#[derive(Debug, Parser)]
#[command(name = "monarchd dump", about = "Writes databases in mongodump's directory or archive format (as mongodump)")]
struct DumpArgs {
    /// The server: mongodb://[user:password@]host[:port][/db][?authSource=..&authMechanism=..].
    #[arg(long, default_value = "mongodb://localhost:27017")]
    uri: String,
    /// Only this database.
    #[arg(short = 'd', long)]
    db: Option<String>,
    /// Only this collection (with --db).
    #[arg(short = 'c', long)]
    collection: Option<String>,
    /// Only the documents this filter (Extended JSON) matches (with --collection).
    #[arg(short = 'q', long)]
    query: Option<String>,
    /// The output directory.
    #[arg(short = 'o', long, default_value = "dump", conflicts_with = "archive")]
    out: PathBuf,
    /// Write one archive: --archive=FILE, or --archive alone for standard output.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "-")]
    archive: Option<PathBuf>,
    /// Gzip each file, or the archive.
    #[arg(long)]
    gzip: bool,
}

/// `monarchd backup verify DIR [--encryptionKeyFile FILE]`.
#[derive(Debug, Parser)]
#[command(name = "monarchd backup verify", about = "Re-reads a backup against its manifest (offline)")]
struct VerifyArgs {
    /// The backup directory, or its s3://bucket/prefix[?endpoint=..&region=..] location.
    dir: PathBuf,
    /// The key file of an encrypted backup.
    #[arg(long = "encryptionKeyFile")]
    encryption_key_file: Option<PathBuf>,
}

/// The collection `monarchd export` and `import` work on, and the server that holds it.
#[derive(Debug, clap::Args)]
struct CollectionArgs {
    /// The server: mongodb://[user:password@]host[:port][/db][?authSource=..&authMechanism=..].
    #[arg(long)]
    uri: String,
    /// The database.
    #[arg(short = 'd', long)]
    db: String,
    /// The collection.
    #[arg(short = 'c', long)]
    collection: String,
}

/// `monarchd export --uri URI --db D --collection C [--out FILE] ...` (mongoexport's names).
#[derive(Debug, Parser)]
#[command(name = "monarchd export", about = "Writes a collection as Extended JSON or CSV (as mongoexport)")]
struct ExportArgs {
    #[command(flatten)]
    target: CollectionArgs,
    /// The output file [default: standard output].
    #[arg(short = 'o', long)]
    out: Option<PathBuf>,
    /// json or csv.
    #[arg(long = "type", value_enum, default_value = "json")]
    kind: ExportType,
    /// Extended JSON's mode: relaxed or canonical (canonical reads back every type exactly).
    #[arg(long = "jsonFormat", value_enum, default_value = "relaxed")]
    json_format: JsonFormat,
    /// Write one JSON array instead of one document per line.
    #[arg(long = "jsonArray")]
    json_array: bool,
    /// The fields to export, comma-separated (required for CSV).
    #[arg(short = 'f', long, value_delimiter = ',')]
    fields: Vec<String>,
    /// A filter, as Extended JSON.
    #[arg(short = 'q', long)]
    query: Option<String>,
    /// A sort, as Extended JSON.
    #[arg(long)]
    sort: Option<String>,
    /// Documents to skip.
    #[arg(long)]
    skip: Option<i64>,
    /// At most this many documents.
    #[arg(long)]
    limit: Option<i64>,
    /// CSV without its header line.
    #[arg(long = "noHeaderLine")]
    no_header_line: bool,
}

/// `monarchd import --uri URI --db D --collection C [--file FILE] ...` (mongoimport's names).
#[derive(Debug, Parser)]
#[command(name = "monarchd import", about = "Reads Extended JSON, CSV or TSV into a collection (as mongoimport)")]
struct ImportArgs {
    #[command(flatten)]
    target: CollectionArgs,
    /// The input file [default: standard input].
    #[arg(long)]
    file: Option<PathBuf>,
    /// json, csv or tsv.
    #[arg(long = "type", value_enum, default_value = "json")]
    kind: ImportType,
    /// The input is one JSON array.
    #[arg(long = "jsonArray")]
    json_array: bool,
    /// CSV/TSV: the first line names the fields.
    #[arg(long = "headerline")]
    header_line: bool,
    /// CSV/TSV: the fields, comma-separated, when there is no header line.
    #[arg(short = 'f', long, value_delimiter = ',')]
    fields: Vec<String>,
    /// CSV/TSV: leave empty cells out.
    #[arg(long = "ignoreBlanks")]
    ignore_blanks: bool,
    /// insert, upsert (replace the matching document) or merge (set fields on it).
    #[arg(long, value_enum, default_value = "insert")]
    mode: ImportMode,
    /// The fields that find the document to upsert or merge into, comma-separated.
    #[arg(long = "upsertFields", value_delimiter = ',', default_value = "_id")]
    upsert_fields: Vec<String>,
    /// Drop the collection first.
    #[arg(long)]
    drop: bool,
    /// Stop at the first document the server refuses.
    #[arg(long = "stopOnError")]
    stop_on_error: bool,
}

/// `monarchd export ...` with `args` after `export`.
pub fn export_tool(args: &[OsString]) -> ExitCode {
    let parsed: ExportArgs = parse_args("monarchd export", args);
    finish("monarchd export", run_export(parsed))
}

fn run_export(args: ExportArgs) -> Result<(), BackupError> {
    let options = ExportOptions {
        query: extended_json("query", args.query.as_ref())?.unwrap_or_default(),
        sort: extended_json("sort", args.sort.as_ref())?,
        db: args.target.db,
        collection: args.target.collection,
        kind: args.kind,
        json_format: args.json_format,
        json_array: args.json_array,
        fields: args.fields,
        skip: args.skip,
        limit: args.limit,
        no_header_line: args.no_header_line,
    };
    let mut connection = Connection::open(&ServerAddress::parse(&args.target.uri)?)?;
    let count = match &args.out {
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|e| BackupError::io(path, e))?;
            let mut out = std::io::BufWriter::new(file);
            export(&mut connection, &options, &mut out)?
        }
        None => export(&mut connection, &options, &mut std::io::stdout().lock())?,
    };
    eprintln!("exported {count} documents");
    Ok(())
}

/// `monarchd import ...` with `args` after `import`.
pub fn import_tool(args: &[OsString]) -> ExitCode {
    let parsed: ImportArgs = parse_args("monarchd import", args);
    finish("monarchd import", run_import(parsed))
}

fn run_import(args: ImportArgs) -> Result<(), BackupError> {
    let options = ImportOptions {
        db: args.target.db,
        collection: args.target.collection,
        kind: args.kind,
        json_array: args.json_array,
        header_line: args.header_line,
        fields: args.fields,
        ignore_blanks: args.ignore_blanks,
        mode: args.mode,
        upsert_fields: args.upsert_fields,
        drop: args.drop,
        stop_on_error: args.stop_on_error,
    };
    let (input, source): (Box<dyn std::io::BufRead>, PathBuf) = match &args.file {
        Some(path) => {
            let file = std::fs::File::open(path).map_err(|e| BackupError::io(path, e))?;
            (Box::new(std::io::BufReader::with_capacity(1 << 20, file)), path.clone())
        }
        None => (Box::new(std::io::stdin().lock()), PathBuf::from("(standard input)")),
    };
    let mut connection = Connection::open(&ServerAddress::parse(&args.target.uri)?)?;
    let report = import(&mut connection, &options, input, &source)?;
    // mongoimport's summary.
    eprintln!("{} document(s) imported successfully. {} document(s) failed to import.", report.imported, report.failed);
    Ok(())
}

/// The key in `file`, if one was given.
fn read_key(file: Option<&PathBuf>) -> Result<Option<BackupKey>, BackupError> {
    file.map(|path| BackupKey::read(path)).transpose()
}

/// `monarchd backup ...` with `args` after `backup`.
pub fn backup_tool(args: &[OsString]) -> ExitCode {
    if args.first().is_some_and(|a| a == "verify") {
        return verify_tool(args.get(1..).unwrap_or_default());
    }
    let parsed: BackupArgs = parse_args("monarchd backup", args);
    finish("monarchd backup", request_backup(&parsed))
}

fn request_backup(args: &BackupArgs) -> Result<(), BackupError> {
    let address = ServerAddress::parse(&args.uri)?;
    let out = args.out.to_str().ok_or_else(|| BackupError::BadArgument("--out is not valid UTF-8".to_owned()))?;
    let reply = run_command(&address, "admin", doc! { "createBackup": 1, "backupDir": out })?;
    println!(
        "backup complete: {} ({} collections, {} documents, {} bytes, {} ms)",
        reply.get_str("backupDir").unwrap_or(out),
        reply.get_i64("collections").unwrap_or(0),
        reply.get_i64("documents").unwrap_or(0),
        reply.get_i64("bytes").unwrap_or(0),
        reply.get_i64("durationMillis").unwrap_or(0),
    );
    Ok(())
}

fn verify_tool(args: &[OsString]) -> ExitCode {
    let parsed: VerifyArgs = parse_args("monarchd backup verify", args);
    let verified = read_key(parsed.encryption_key_file.as_ref()).and_then(|key| {
        let scratch = std::env::temp_dir().join(format!("monarchd-verify-{}", std::process::id()));
        let report = with_local_copy(&parsed.dir, &scratch, |dir| verify_backup(dir, key.as_ref()))?.1;
        println!(
            "verified: {} ({} collections, {} documents, {} bytes)",
            parsed.dir.display(),
            report.collections,
            report.documents,
            report.bytes
        );
        Ok(())
    });
    finish("monarchd backup verify", verified)
}

/// `monarchd restore ...` with `args` after `restore`.
pub fn restore_tool(args: &[OsString]) -> ExitCode {
    let parsed: RestoreArgs = parse_args("monarchd restore", args);
    let namespaces = NamespaceMap::new(&parsed.ns_include, &parsed.ns_exclude, &parsed.ns_from, &parsed.ns_to);
    let restored = match (&parsed.from, &parsed.dbpath) {
        (Some(from), Some(dbpath)) => {
            namespaces.and_then(|namespaces| restore_from_backup(&parsed, from, dbpath, namespaces))
        }
        _ => namespaces.and_then(|namespaces| restore_dump(&parsed, namespaces)),
    };
    finish("monarchd restore", restored)
}

fn restore_from_backup(
    args: &RestoreArgs,
    from: &Path,
    dbpath: &Path,
    namespaces: NamespaceMap,
) -> Result<(), BackupError> {
    let key = read_key(args.encryption_key_file.as_ref())?;
    let oplog_replay = args
        .oplog_replay
        .then(|| {
            let path = match &args.oplog_path {
                Some(path) => BackupPath::parse(path),
                None => BackupPath::parse(from).map(|backup| backup.sibling(OPLOG_DIR)),
            };
            Ok::<_, BackupError>(OplogReplay {
                path: path.map_err(BackupError::BadArgument)?,
                limit: args.oplog_limit.as_deref().map(parse_oplog_limit).transpose()?,
            })
        })
        .transpose()?;
    // A backup in object storage is downloaded beside the new data directory first.
    let scratch = sibling(dbpath, &format!(".download-{}", std::process::id()));
    let report = with_local_copy(from, &scratch, |local| {
        restore_backup(&RestoreOptions {
            from: local.to_path_buf(),
            dbpath: dbpath.to_path_buf(),
            namespaces,
            drop: args.drop,
            key,
            oplog_replay,
        })
    })?;
    let seconds = report.duration.as_secs_f64();
    println!(
        "restored: {} ({} collections, {} documents, {} bytes, {:.1} MB/s)",
        dbpath.display(),
        report.collections,
        report.documents,
        report.bytes,
        if seconds > 0.0 { report.bytes as f64 / 1e6 / seconds } else { 0.0 },
    );
    if let Some(oplog) = &report.oplog {
        let end = if oplog.archive_end > oplog.through && args.oplog_limit.is_some() {
            format!(" (the archive goes on to {}; --oplogLimit stopped it)", oplog.archive_end)
        } else {
            format!(" (the end of the archive is {})", oplog.archive_end)
        };
        println!("oplog replayed: {} entries, through {}{end}", oplog.entries, oplog.through);
    }
    Ok(())
}

/// `--oplogLimit`: `<seconds>[:<ordinal>]`.
fn parse_oplog_limit(text: &str) -> Result<OplogTime, BackupError> {
    let (t, i) = text.split_once(':').unwrap_or((text, "0"));
    match (t.parse(), i.parse()) {
        (Ok(t), Ok(i)) => Ok(OplogTime { t, i }),
        _ => Err(BackupError::BadArgument(format!(
            "--oplogLimit {text:?} is not a time: <seconds since the epoch>[:<ordinal>] (as 1764950400:1)"
        ))),
    }
}

fn restore_dump(args: &RestoreArgs, namespaces: NamespaceMap) -> Result<(), BackupError> {
    let source = match (&args.archive, args.dir.as_ref().or(args.dir_argument.as_ref())) {
        (Some(file), _) => DumpSource::Archive((file.as_os_str() != "-").then(|| file.clone())),
        (None, Some(dir)) => DumpSource::Directory(dir.clone()),
        (None, None) => {
            return Err(BackupError::BadArgument(
                "restore what? --from DIR --dbpath NEWDIR (a backup), or --dir DIR or --archive[=FILE] (a dump)"
                    .to_owned(),
            ));
        }
    };
    let options = LoadOptions {
        source,
        gzip: args.gzip,
        namespaces,
        drop: args.drop,
        no_index_restore: args.no_index_restore,
        stop_on_error: args.stop_on_error,
    };
    let mut connection = Connection::open(&ServerAddress::parse(&args.uri)?)?;
    let report = load(&mut connection, &options)?;
    // mongorestore's summary.
    eprintln!(
        "{} document(s) restored successfully. {} document(s) failed to restore.",
        report.documents, report.failed
    );
    Ok(())
}

/// `monarchd dump ...` with `args` after `dump`.
pub fn dump_tool(args: &[OsString]) -> ExitCode {
    let parsed: DumpArgs = parse_args("monarchd dump", args);
    finish("monarchd dump", run_dump(parsed))
}

fn run_dump(args: DumpArgs) -> Result<(), BackupError> {
    let output = match args.archive {
        Some(file) => DumpOutput::Archive((file.as_os_str() != "-").then_some(file)),
        None => DumpOutput::Directory(args.out),
    };
    let options = DumpOptions {
        db: args.db,
        collection: args.collection,
        query: extended_json("query", args.query.as_ref())?,
        output,
        gzip: args.gzip,
    };
    let mut connection = Connection::open(&ServerAddress::parse(&args.uri)?)?;
    let report = dump(&mut connection, &options)?;
    eprintln!("dumped {} collections, {} views, {} documents", report.collections, report.views, report.documents);
    Ok(())
}

/// The Extended JSON document in `--flag`'s `text`, if given.
fn extended_json(flag: &str, text: Option<&String>) -> Result<Option<Document>, BackupError> {
    text.map(|text| {
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| BackupError::BadArgument(format!("--{flag} is not JSON: {e}")))?;
        match Bson::try_from(json) {
            Ok(Bson::Document(document)) => Ok(document),
            _ => Err(BackupError::BadArgument(format!("--{flag} is not an Extended JSON document"))),
        }
    })
    .transpose()
}

/// Parses a tool's arguments (`args`, after the tool's name); on bad usage, prints clap's
/// message and exits with 2.
fn parse_args<T: Parser>(tool: &str, args: &[OsString]) -> T {
    match T::try_parse_from(std::iter::once(OsString::from(tool)).chain(args.iter().cloned())) {
        Ok(parsed) => parsed,
        Err(error) => error.exit(),
    }
}

/// Prints the error, if any, and turns the outcome into the exit code.
fn finish(tool: &str, outcome: Result<(), BackupError>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{tool}: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
