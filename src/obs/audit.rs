//! The audit log (`--auditDestination file --auditPath P --auditFormat JSON`, mongod
//! Enterprise's flags): one JSON line per event in mongod's shape (`atype`, `ts`, `uuid`,
//! `local`, `remote`, `users`, `roles`, `param`, `result`), plus `prevHash`, the SHA-256 of the
//! line before it (64 zeros for the first line ever). Changing or removing a line breaks the
//! chain at the next one, which [`verify`] (`monarchd audit verify FILE...`) reports.
//! Rotation (`logRotate: "audit"`, SIGUSR1) renames the file aside; the new file's first line,
//! a `rotateLog` event, carries the last hash of the old one, so the files verify as one chain.
//! A restart continues the chain from the file's last line.
//!
//! An `--auditFilter` (a query over the event documents) keeps only the events it matches, and
//! turns on `authCheck` events for commands that were allowed (CRUD auditing); refused
//! commands are audited either way.

use std::fmt::Write as _;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use bson::{Bson, Document, RawDocumentBuf, doc};
use sha2::{Digest, Sha256};

pub use crate::config::AuditDestination;
use crate::query::Filter;

/// The hash the first line of a chain names.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One event, as the command layer describes it.
#[derive(Debug, Clone)]
pub struct AuditEvent<'a> {
    /// The event type (`authenticate`, `createUser`, `dropCollection`, ...).
    pub atype: &'a str,
    /// The connection's local address (`None` for the server's own events).
    pub local: Option<SocketAddr>,
    /// The client's address.
    pub remote: Option<SocketAddr>,
    /// The connection's id, made into the event's `uuid`.
    pub connection: Option<u64>,
    /// The authenticated users, `(user, db)`.
    pub users: &'a [(String, String)],
    /// Their roles, `(role, db)`.
    pub roles: &'a [(String, String)],
    /// What the event is about.
    pub param: Document,
    /// 0, or the error code the operation failed with.
    pub result: i32,
}

struct Chain {
    out: Box<dyn Write + Send>,
    last_hash: String,
}

/// The open audit log.
pub struct AuditLog {
    destination: AuditDestination,
    filter: Option<Filter>,
    chain: Mutex<Chain>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").field("destination", &self.destination).finish_non_exhaustive()
    }
}

/// The SHA-256 of `line` (without its newline), in hex.
fn hash(line: &str) -> String {
    let digest = Sha256::digest(line.as_bytes());
    digest.iter().fold(String::with_capacity(64), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

/// The hash of the last line of `path` (the genesis hash for a missing or empty file).
fn last_hash(path: &Path) -> std::io::Result<String> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(GENESIS.to_owned()),
        Err(e) => return Err(e),
    };
    let mut last = None;
    for line in std::io::BufReader::new(file).lines() {
        let line = line?;
        if !line.is_empty() {
            last = Some(line);
        }
    }
    Ok(last.map_or_else(|| GENESIS.to_owned(), |l| hash(&l)))
}

/// A BSON value as JSON text, in the document's own field order (relaxed extended JSON).
fn json(value: &Bson) -> String {
    match value {
        Bson::Document(d) => {
            let fields: Vec<String> =
                d.iter().map(|(k, v)| format!("{}:{}", serde_json::Value::String(k.clone()), json(v))).collect();
            format!("{{{}}}", fields.join(","))
        }
        Bson::Array(items) => format!("[{}]", items.iter().map(json).collect::<Vec<_>>().join(",")),
        other => other.clone().into_relaxed_extjson().to_string(),
    }
}

fn address(addr: Option<SocketAddr>) -> Bson {
    match addr {
        Some(a) => Bson::Document(doc! { "ip": a.ip().to_string(), "port": i32::from(a.port()) }),
        None => Bson::Document(Document::new()),
    }
}

fn names(pairs: &[(String, String)], key: &str) -> Bson {
    Bson::Array(pairs.iter().map(|(name, db)| Bson::Document(doc! { key: name, "db": db })).collect())
}

/// A stable id for connection `id` of this process (mongod's client UUID).
fn connection_uuid(id: u64) -> Bson {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&u64::from(std::process::id()).to_be_bytes());
    bytes[8..].copy_from_slice(&id.to_be_bytes());
    Bson::Binary(bson::Binary { subtype: bson::spec::BinarySubtype::Uuid, bytes: bytes.to_vec() })
}

impl AuditLog {
    /// Opens `destination` (continuing the chain of an existing file) with an optional
    /// `filter` over the events.
    ///
    /// # Errors
    /// The file cannot be read or opened; the filter is not a valid query (as text).
    pub fn open(destination: AuditDestination, filter: Option<&Document>) -> Result<Self, String> {
        let filter = filter
            .map(|f| {
                let raw = RawDocumentBuf::try_from(f).map_err(|e| e.to_string())?;
                Filter::parse(&raw).map_err(|e| format!("auditFilter: {}", e.message()))
            })
            .transpose()?;
        let (out, last_hash): (Box<dyn Write + Send>, String) = match &destination {
            AuditDestination::File(path) => {
                let last = last_hash(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                (crate::log::open_log_file(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?, last)
            }
            AuditDestination::Console => (Box::new(std::io::stdout()), GENESIS.to_owned()),
        };
        Ok(Self { destination, filter, chain: Mutex::new(Chain { out, last_hash }) })
    }

    /// Whether commands that were allowed are audited too (`authCheck` events): only when a
    /// filter chooses which (mongod's CRUD auditing).
    pub fn audits_allowed_commands(&self) -> bool {
        self.filter.is_some()
    }

    /// Writes `event` unless the filter drops it.
    pub fn record(&self, event: &AuditEvent<'_>) {
        let mut document = doc! {
            "atype": event.atype,
            "ts": bson::DateTime::now(),
            "uuid": event.connection.map_or(Bson::Null, connection_uuid),
            "local": address(event.local),
            "remote": address(event.remote),
            "users": names(event.users, "user"),
            "roles": names(event.roles, "role"),
            "param": event.param.clone(),
            "result": event.result,
        };
        if let Some(filter) = &self.filter {
            let keep = RawDocumentBuf::try_from(&document).is_ok_and(|raw| filter.matches(&raw));
            if !keep {
                return;
            }
        }
        let mut chain = self.chain.lock().unwrap_or_else(PoisonError::into_inner);
        document.insert("prevHash", chain.last_hash.clone());
        let line = json(&Bson::Document(document));
        match writeln!(chain.out, "{line}").and_then(|()| chain.out.flush()) {
            Ok(()) => chain.last_hash = hash(&line),
            Err(error) => {
                tracing::error!(target: "CONTROL", id = 7_000_320, %error, atype = event.atype, "Cannot write the audit log");
            }
        }
    }

    /// Renames the file aside with a timestamp suffix and starts a new one, whose first line
    /// (a `rotateLog` event) continues the chain. Returns the rotated file's new name.
    ///
    /// # Errors
    /// A console destination cannot rotate; I/O errors renaming or opening.
    pub fn rotate(&self) -> Result<PathBuf, String> {
        let AuditDestination::File(path) = &self.destination else {
            return Err("the audit log goes to the console: nothing to rotate".to_owned());
        };
        let aside = {
            let mut chain = self.chain.lock().unwrap_or_else(PoisonError::into_inner);
            let aside = crate::log::aside_name(path);
            let _ = chain.out.flush();
            std::fs::rename(path, &aside).map_err(|e| format!("cannot rename {}: {e}", path.display()))?;
            chain.out = crate::log::open_log_file(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            aside
        };
        let param = doc! { "logPath": path.display().to_string(), "rotatedLogPath": aside.display().to_string() };
        self.record(&AuditEvent { atype: "rotateLog", param, ..server_event() });
        Ok(aside)
    }
}

/// An event of the server itself (startup, shutdown, rotation): no connection, no users.
pub fn server_event() -> AuditEvent<'static> {
    AuditEvent {
        atype: "",
        local: None,
        remote: None,
        connection: None,
        users: &[],
        roles: &[],
        param: Document::new(),
        result: 0,
    }
}

/// What [`verify`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every line chains to the one before it: how many lines, and the last line's hash
    /// (record it elsewhere to detect lines removed from the end later).
    Intact {
        /// Lines checked.
        lines: usize,
        /// The hash of the last line.
        head: String,
    },
    /// The first break: the file and line (1-based) whose `prevHash` does not match.
    Broken {
        /// The file.
        file: PathBuf,
        /// The line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Checks the chain through `files`, given oldest first (rotated files, then the current
/// one). The first line of the first file may name any hash (the chain may start in a file
/// already removed); every other line must name its predecessor's.
///
/// # Errors
/// A file cannot be read.
pub fn verify(files: &[PathBuf]) -> std::io::Result<Verdict> {
    let mut previous: Option<String> = None;
    let mut lines = 0usize;
    for file in files {
        let reader = std::io::BufReader::new(std::fs::File::open(file)?);
        for (index, line) in reader.lines().enumerate() {
            let line = line?;
            let broken = |reason: String| Verdict::Broken { file: file.clone(), line: index + 1, reason };
            let parsed: serde_json::Value = match serde_json::from_str(&line) {
                Ok(value) => value,
                Err(e) => return Ok(broken(format!("not a JSON audit line: {e}"))),
            };
            let Some(named) = parsed.get("prevHash").and_then(serde_json::Value::as_str) else {
                return Ok(broken("no prevHash field".to_owned()));
            };
            if let Some(expected) = &previous
                && named != expected
            {
                return Ok(broken(
                    "prevHash does not match the line before it: that line was changed, or lines were removed \
                     before this one"
                        .to_owned(),
                ));
            }
            previous = Some(hash(&line));
            lines += 1;
        }
    }
    Ok(Verdict::Intact { lines, head: previous.unwrap_or_else(|| GENESIS.to_owned()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(atype: &'static str) -> AuditEvent<'static> {
        AuditEvent { atype, param: doc! { "ns": "shop.orders" }, ..server_event() }
    }

    #[test]
    fn lines_chain_and_verify_across_rotation_and_restart() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("audit.json");
        let log = AuditLog::open(AuditDestination::File(path.clone()), None)?;
        log.record(&event("createCollection"));
        log.record(&event("dropCollection"));
        let aside = log.rotate()?;
        log.record(&event("createCollection"));
        drop(log);
        // A restart continues the chain.
        let log = AuditLog::open(AuditDestination::File(path.clone()), None)?;
        log.record(&event("dropCollection"));
        let files = vec![aside.clone(), path.clone()];
        let Verdict::Intact { lines, head } = verify(&files)? else { panic!("broken chain") };
        assert_eq!(lines, 5);
        assert_eq!(head.len(), 64);
        let first = std::fs::read_to_string(&aside)?;
        assert!(
            first
                .lines()
                .next()
                .is_some_and(|l| l.contains(GENESIS) && l.starts_with(r#"{"atype":"createCollection","ts":{"$date":"#))
        );
        let current = std::fs::read_to_string(&path)?;
        assert!(current.lines().next().is_some_and(|l| l.contains(r#""atype":"rotateLog""#)));

        // Changing a line breaks the chain at the next one.
        std::fs::write(&aside, first.replacen("dropCollection", "createCollection", 1))?;
        match verify(&files)? {
            Verdict::Broken { file, line, .. } => assert_eq!((file, line), (path.clone(), 1)),
            intact => panic!("tampering not found: {intact:?}"),
        }
        // Removing a line too.
        let mut kept: Vec<&str> = first.lines().collect();
        kept.remove(0);
        std::fs::write(&aside, kept.join("\n") + "\n")?;
        let files = vec![path.clone()];
        assert!(matches!(verify(&files)?, Verdict::Intact { .. }), "a suffix of the chain still verifies alone");
        let mut removed: Vec<String> = current.lines().map(str::to_owned).collect();
        removed.remove(1);
        std::fs::write(&path, removed.join("\n") + "\n")?;
        assert!(matches!(verify(&files)?, Verdict::Broken { line: 2, .. }));
        Ok(())
    }

    #[test]
    fn a_filter_keeps_only_the_events_it_matches() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("audit.json");
        let filter = doc! { "atype": { "$in": ["authCheck"] }, "param.command": "find" };
        let log = AuditLog::open(AuditDestination::File(path.clone()), Some(&filter))?;
        assert!(log.audits_allowed_commands());
        log.record(&AuditEvent { atype: "authCheck", param: doc! { "command": "find" }, ..server_event() });
        log.record(&AuditEvent { atype: "authCheck", param: doc! { "command": "insert" }, ..server_event() });
        log.record(&event("dropCollection"));
        let text = std::fs::read_to_string(&path)?;
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(AuditLog::open(AuditDestination::File(path), Some(&doc! { "$bogus": 1 })).is_err());
        Ok(())
    }
}
