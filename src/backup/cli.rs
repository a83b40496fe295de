//! The command-line tools: `monarchd backup --uri URI --out DIR` (asks the server at URI to
//! write a backup into DIR, a directory on the server's host), `monarchd backup verify DIR`
//! and `monarchd restore --from DIR --dbpath NEWDIR ...` (both offline, no server).
//!
//! Exit codes: 0 success; 1 a backup that is damaged or does not match its manifest; 2 bad
//! usage, or a target that is not empty; 3 anything else (I/O, the server, the engine).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use bson::doc;
use clap::Parser;

use super::client::{ServerAddress, run_command};
use super::crypto::BackupKey;
use super::error::BackupError;
use super::namespaces::NamespaceMap;
use super::restore::{RestoreOptions, restore_backup};
use super::verify::verify_backup;

/// `monarchd backup --uri URI --out DIR`.
#[derive(Debug, Parser)]
#[command(name = "monarchd backup", about = "Asks a running server for a consistent backup (createBackup)")]
struct BackupArgs {
    /// The server: mongodb://host[:port] (credentials, TLS and other options are not supported yet).
    #[arg(long)]
    uri: String,
    /// The backup directory, on the server's host; absent or empty.
    #[arg(long)]
    out: PathBuf,
}

/// `monarchd restore --from DIR --dbpath NEWDIR ...`.
#[derive(Debug, Parser)]
#[command(name = "monarchd restore", about = "Restores a backup into a new data directory (offline)")]
struct RestoreArgs {
    /// The backup directory.
    #[arg(long)]
    from: PathBuf,
    /// The data directory to create; absent or empty unless --drop.
    #[arg(long)]
    dbpath: PathBuf,
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
    /// Replace the data directory if it holds anything.
    #[arg(long)]
    drop: bool,
    /// The key file of an encrypted backup.
    #[arg(long = "encryptionKeyFile")]
    encryption_key_file: Option<PathBuf>,
}

/// `monarchd backup verify DIR [--encryptionKeyFile FILE]`.
#[derive(Debug, Parser)]
#[command(name = "monarchd backup verify", about = "Re-reads a backup against its manifest (offline)")]
struct VerifyArgs {
    /// The backup directory.
    dir: PathBuf,
    /// The key file of an encrypted backup.
    #[arg(long = "encryptionKeyFile")]
    encryption_key_file: Option<PathBuf>,
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
    let parsed = match BackupArgs::try_parse_from(
        std::iter::once(OsString::from("monarchd backup")).chain(args.iter().cloned()),
    ) {
        Ok(parsed) => parsed,
        Err(error) => error.exit(),
    };
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
    let parsed = match VerifyArgs::try_parse_from(
        std::iter::once(OsString::from("monarchd backup verify")).chain(args.iter().cloned()),
    ) {
        Ok(parsed) => parsed,
        Err(error) => error.exit(),
    };
    let dir = parsed.dir;
    finish(
        "monarchd backup verify",
        read_key(parsed.encryption_key_file.as_ref()).and_then(|key| verify_backup(&dir, key.as_ref())).map(
            |(_, report)| {
                println!(
                    "verified: {} ({} collections, {} documents, {} bytes)",
                    dir.display(),
                    report.collections,
                    report.documents,
                    report.bytes
                );
            },
        ),
    )
}

/// `monarchd restore ...` with `args` after `restore`.
pub fn restore_tool(args: &[OsString]) -> ExitCode {
    let parsed = match RestoreArgs::try_parse_from(
        std::iter::once(OsString::from("monarchd restore")).chain(args.iter().cloned()),
    ) {
        Ok(parsed) => parsed,
        Err(error) => error.exit(),
    };
    let restored = NamespaceMap::new(&parsed.ns_include, &parsed.ns_exclude, &parsed.ns_from, &parsed.ns_to)
        .and_then(|namespaces| Ok((namespaces, read_key(parsed.encryption_key_file.as_ref())?)))
        .and_then(|(namespaces, key)| {
            restore_backup(&RestoreOptions {
                from: parsed.from.clone(),
                dbpath: parsed.dbpath.clone(),
                namespaces,
                drop: parsed.drop,
                key,
            })
        })
        .map(|report| {
            let seconds = report.duration.as_secs_f64();
            println!(
                "restored: {} ({} collections, {} documents, {} bytes, {:.1} MB/s)",
                parsed.dbpath.display(),
                report.collections,
                report.documents,
                report.bytes,
                if seconds > 0.0 { report.bytes as f64 / 1e6 / seconds } else { 0.0 },
            );
        });
    finish("monarchd restore", restored)
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
