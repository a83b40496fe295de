//! The generic arguments every command takes, checked as a standalone mongod 7.0 checks them,
//! in its order: the Stable API parameters, the session arguments (`txnNumber`,
//! `autocommit`, `startTransaction`), then `maxTimeMS`, `readConcern` and `writeConcern`.
//!
//! A standalone has no replica set, so retryable writes and transactions (`txnNumber`),
//! `linearizable` and `snapshot` reads, cluster times and `w` > 1 are refused with mongod's
//! errors: drivers then report the error instead of silently losing the guarantee. A
//! replica-set member (`--replSet`) serves retryable writes, transactions (whose first
//! statement may read at `snapshot`), `afterClusterTime` and `linearizable` reads and
//! `w: "majority"`, and refuses what its one member cannot give. A router (a node sharing a
//! PostgreSQL database, `--pgSharedNodes`) serves retryable writes, transactions and
//! `w: "majority"` as a member does, and reads as a standalone.

use bson::{RawBsonRef, RawDocument};

use super::{CommandRequest, CommandSpec, type_name};
use crate::error::{Error, ErrorCode, Result};
use crate::repl::{MemberState, Replication};

/// mongod's largest replica set, the bound of a numeric `w`.
const MAX_MEMBERS: i64 = 50;

/// Checks the Stable API parameters and the session arguments: what mongod checks before
/// the `failCommand` fail point fires.
///
/// # Errors
/// mongod's error for the first argument it refuses.
pub fn check_before_fail_point(spec: &CommandSpec, req: &CommandRequest, repl: &Replication) -> Result<()> {
    check_api(spec, req)?;
    check_session(spec, req, repl)
}

/// Checks `maxTimeMS`, `readConcern` and `writeConcern`: what mongod checks after the
/// `failCommand` fail point and before the command runs. Returns `maxTimeMS`, parsed here
/// once.
///
/// # Errors
/// mongod's error for the first argument it refuses.
pub fn check_concerns(spec: &CommandSpec, req: &CommandRequest, repl: &Replication) -> Result<Option<u64>> {
    let max_time_ms = max_time_ms(req)?;
    check_read_concern(spec, req, repl)?;
    if req.get("writeConcern").is_some() && !spec.options.write_concern {
        return Err(Error::new(ErrorCode::InvalidOptions, "Command does not support writeConcern"));
    }
    let concern = write_concern(req)?;
    // A router's writes are the database's commits, as a single member's are.
    match repl.set_name() {
        None if !repl.is_router() => concern.validate_for_standalone()?,
        _ => concern.validate_for_single_member()?,
    }
    Ok(max_time_ms)
}

fn api_field_type(req: &CommandRequest, key: &str, expected: &str) -> Error {
    let found = req.get(key).map_or("missing", |v| type_name(v.element_type()));
    Error::new(
        ErrorCode::TypeMismatch,
        format!("BSON field 'APIParametersFromClient.{key}' is the wrong type '{found}', expected type '{expected}'"),
    )
}

fn check_api(spec: &CommandSpec, req: &CommandRequest) -> Result<()> {
    let version = match req.get("apiVersion") {
        None => None,
        Some(RawBsonRef::String(v)) => Some(v),
        Some(_) => return Err(api_field_type(req, "apiVersion", "string")),
    };
    let flag = |key: &str| match req.get(key) {
        None => Ok(None),
        Some(RawBsonRef::Boolean(b)) => Ok(Some(b)),
        Some(_) => Err(api_field_type(req, key, "bool")),
    };
    let strict = flag("apiStrict")?;
    let deprecation_errors = flag("apiDeprecationErrors")?;
    if (strict.is_some() || deprecation_errors.is_some()) && version.is_none() {
        return Err(Error::new(
            ErrorCode::Location4886600,
            "Provided apiStrict and/or apiDeprecationErrors without passing apiVersion",
        ));
    }
    if let Some(version) = version
        && version != "1"
    {
        return Err(Error::new(ErrorCode::APIVersionError, "API version must be \"1\""));
    }
    if strict == Some(true) && !spec.options.api_v1 {
        return Err(Error::new(
            ErrorCode::APIStrictError,
            format!(
                "Provided apiStrict:true, but the command {} is not in API Version 1. Information on supported \
                 commands and migrations in API Version 1 can be found at \
                 https://dochub.mongodb.org/core/manual-versioned-api",
                spec.name
            ),
        ));
    }
    // No command of API version 1 is deprecated, so `apiDeprecationErrors` never refuses.
    Ok(())
}

fn session_field_type(key: &str, value: RawBsonRef<'_>, expected: &str) -> Error {
    Error::new(
        ErrorCode::TypeMismatch,
        format!(
            "BSON field 'OperationSessionInfo.{key}' is the wrong type '{}', expected type '{expected}'",
            type_name(value.element_type())
        ),
    )
}

/// mongod's `initializeOperationSessionInfo`.
fn check_session(spec: &CommandSpec, req: &CommandRequest, repl: &Replication) -> Result<()> {
    if let Some(lsid) = req.get("lsid") {
        let RawBsonRef::Document(lsid) = lsid else {
            return Err(session_field_type("lsid", lsid, "object"));
        };
        super::request::session_id(lsid)?;
    }
    let txn_number = match req.get("txnNumber") {
        None => None,
        Some(RawBsonRef::Int64(n)) => Some(n),
        Some(other) => return Err(session_field_type("txnNumber", other, "long")),
    };
    let flag = |key: &str| match req.get(key) {
        None => Ok(None),
        Some(RawBsonRef::Boolean(b)) => Ok(Some(b)),
        Some(other) => Err(session_field_type(key, other, "bool")),
    };
    let autocommit = flag("autocommit")?;
    let start_transaction = flag("startTransaction")?;
    if !spec.options.sessions {
        if autocommit.is_some() {
            return Err(Error::new(
                ErrorCode::OperationNotSupportedInTransaction,
                "This command is not supported in transactions",
            ));
        }
        if txn_number.is_some() {
            return Err(Error::new(ErrorCode::Location50889, "It is illegal to provide a txnNumber for this command"));
        }
    }
    if txn_number.is_some() {
        if req.get("lsid").is_none() {
            return Err(Error::new(
                ErrorCode::InvalidOptions,
                "Transaction number requires a session ID to also be specified",
            ));
        }
        return check_txn_number(spec, autocommit, repl);
    }
    if autocommit.is_some() {
        return Err(Error::new(
            ErrorCode::InvalidOptions,
            "'autocommit' field requires a transaction number to also be specified",
        ));
    }
    if start_transaction.is_some() {
        return Err(Error::new(
            ErrorCode::InvalidOptions,
            "'startTransaction' field requires 'autocommit' field to also be specified",
        ));
    }
    Ok(())
}

/// The commands a multi-document transaction may run (mongod's, less the DDL commands
/// `create` and `createIndexes`, which are not built inside transactions).
const TRANSACTION_COMMANDS: &[&str] = &[
    "abortTransaction",
    "aggregate",
    "commitTransaction",
    "create",
    "createIndexes",
    "delete",
    "distinct",
    "find",
    "findAndModify",
    "getMore",
    "insert",
    "killCursors",
    "update",
];

/// The write commands a `txnNumber` makes retryable.
const RETRYABLE_WRITES: &[&str] = &["insert", "update", "delete", "findAndModify"];

/// A `txnNumber` (with its `lsid`): on a standalone, 20 IllegalOperation, as mongod; on a
/// replica-set member or a router (a node sharing a PostgreSQL database), a retryable write
/// when the command is one of [`RETRYABLE_WRITES`] and no `autocommit` is given; a transaction
/// statement (`autocommit: false`) for a command a transaction may run.
fn check_txn_number(spec: &CommandSpec, autocommit: Option<bool>, repl: &Replication) -> Result<()> {
    if repl.set_name().is_none() && !repl.is_router() {
        // IMPORTANT: a standalone has no records of retryable writes nor transactions: a
        // write accepted with a number would be applied as if it could be retried once.
        return Err(Error::new(
            ErrorCode::IllegalOperation,
            "Transaction numbers are only allowed on a replica set member or mongos",
        ));
    }
    match autocommit {
        Some(true) => Err(Error::new(ErrorCode::InvalidOptions, "Specifying autocommit=true is not allowed.")),
        Some(false) if !TRANSACTION_COMMANDS.contains(&spec.name) => Err(Error::new(
            ErrorCode::OperationNotSupportedInTransaction,
            format!("Cannot run '{}' in a multi-document transaction.", spec.name),
        )),
        Some(false) => Ok(()),
        None if RETRYABLE_WRITES.contains(&spec.name) => Ok(()),
        None => Err(Error::new(
            ErrorCode::Location50768,
            format!(
                "txnNumber may only be provided for multi-document transactions and retryable write commands. autocommit:false was not provided, and {} is not a retryable write command.",
                spec.name
            ),
        )),
    }
}

/// Whether `req` is a retryable write: a `txnNumber` outside a transaction.
pub fn is_retryable_write(req: &CommandRequest) -> bool {
    req.get("txnNumber").is_some() && req.get("autocommit").is_none()
}

/// `maxTimeMS` as mongod's `parseMaxTimeMS` reads it: a number in `0..=i32::MAX` (0: no
/// limit), integral when a double.
///
/// # Errors
/// 2 BadValue for another type, a value out of range or a fraction.
pub fn max_time_ms(req: &CommandRequest) -> Result<Option<u64>> {
    let value = match req.get("maxTimeMS") {
        None => return Ok(None),
        Some(value) => value,
    };
    let (whole, fractional) = match value {
        RawBsonRef::Int32(n) => (i64::from(n), false),
        RawBsonRef::Int64(n) => (n, false),
        RawBsonRef::Double(n) if n.is_nan() => (0, false),
        RawBsonRef::Double(n) => (n as i64, n.fract() != 0.0),
        RawBsonRef::Decimal128(_) => {
            return Err(Error::new(ErrorCode::BadValue, "maxTimeMS must be a number"));
        }
        _ => return Err(Error::new(ErrorCode::BadValue, "maxTimeMS must be a number")),
    };
    if !(0..=i64::from(i32::MAX)).contains(&whole) {
        return Err(Error::new(ErrorCode::BadValue, "maxTimeMS is out of range"));
    }
    if fractional {
        return Err(Error::new(ErrorCode::BadValue, "maxTimeMS has non-integral value"));
    }
    Ok((whole > 0).then(|| whole.unsigned_abs()))
}

/// The `atClusterTime` of a request whose `readConcern` level is `snapshot` (`Some(None)`
/// without one); `None` for any other read concern. The concern was checked by
/// [`check_concerns`] before.
pub fn snapshot_time(req: &CommandRequest) -> Option<Option<bson::Timestamp>> {
    let Some(RawBsonRef::Document(concern)) = req.get("readConcern") else { return None };
    let concern = parse_read_concern(concern).ok()?;
    (concern.level.as_deref() == Some("snapshot"))
        .then(|| concern.at_cluster_time.map(|(time, increment)| bson::Timestamp { time, increment }))
}

/// A parsed `readConcern`.
#[derive(Debug, Default, PartialEq, Eq)]
struct ReadConcern {
    level: Option<String>,
    after_cluster_time: Option<(u32, u32)>,
    at_cluster_time: Option<(u32, u32)>,
    after_op_time: bool,
}

impl ReadConcern {
    /// mongod's `ReadConcernArgs::toString()` with the provenance a client-supplied one has.
    fn shown(&self) -> String {
        let mut parts = Vec::new();
        if let Some(level) = &self.level {
            parts.push(format!("level: \"{level}\""));
        }
        if let Some((t, i)) = self.after_cluster_time {
            parts.push(format!("afterClusterTime: Timestamp({t}, {i})"));
        }
        if let Some((t, i)) = self.at_cluster_time {
            parts.push(format!("atClusterTime: Timestamp({t}, {i})"));
        }
        parts.push("provenance: \"clientSupplied\"".to_owned());
        format!("{{ readConcern: {{ {} }} }}", parts.join(", "))
    }
}

fn extract_error(key: &str, value: RawBsonRef<'_>, expected: &str) -> Error {
    Error::new(
        ErrorCode::TypeMismatch,
        format!("\"{key}\" had the wrong type. Expected {expected}, found {}", type_name(value.element_type())),
    )
}

/// mongod's `ReadConcernArgs::parse`.
fn parse_read_concern(concern: &RawDocument) -> Result<ReadConcern> {
    let mut parsed = ReadConcern::default();
    for element in concern {
        let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        match key.as_str() {
            "level" => {
                let RawBsonRef::String(level) = value else {
                    return Err(extract_error("level", value, "string"));
                };
                if !matches!(level, "local" | "majority" | "linearizable" | "available" | "snapshot") {
                    return Err(Error::new(
                        ErrorCode::FailedToParse,
                        "readConcern.level must be either 'local', 'majority', 'linearizable', 'available', or \
                         'snapshot'",
                    ));
                }
                parsed.level = Some(level.to_owned());
            }
            "afterClusterTime" | "atClusterTime" => {
                let RawBsonRef::Timestamp(ts) = value else {
                    return Err(extract_error(key.as_str(), value, "timestamp"));
                };
                let time = Some((ts.time, ts.increment));
                if key.as_str() == "afterClusterTime" {
                    parsed.after_cluster_time = time;
                } else {
                    parsed.at_cluster_time = time;
                }
            }
            "afterOpTime" => {
                let RawBsonRef::Document(_) = value else {
                    return Err(extract_error("afterOpTime", value, "object"));
                };
                parsed.after_op_time = true;
            }
            // mongod's own fields (set by its internal clients and by defaults).
            "provenance" | "$_allowTransactionTableSnapshot" | "$_waitLastStableRecoveryTimestamp" => {}
            other => {
                return Err(Error::new(
                    ErrorCode::InvalidOptions,
                    format!("Unrecognized option in readConcern: {other}"),
                ));
            }
        }
    }
    let level = parsed.level.as_deref().unwrap_or("local");
    let invalid = |message: &str| Err(Error::new(ErrorCode::InvalidOptions, message.to_owned()));
    if parsed.after_cluster_time.is_some() && parsed.after_op_time {
        return invalid("Can not specify both afterClusterTime and afterOpTime");
    }
    if parsed.after_cluster_time.is_some() && parsed.at_cluster_time.is_some() {
        return invalid(
            "Specifying a timestamp for readConcern snapshot in a causally consistent session is not allowed. See \
             https://docs.mongodb.com/manual/core/read-isolation-consistency-recency/#causal-consistency",
        );
    }
    if parsed.after_cluster_time.is_some() && !matches!(level, "majority" | "local" | "snapshot") {
        return invalid("afterClusterTime field can be set only if level is equal to majority, local, or snapshot");
    }
    if parsed.after_op_time && level == "snapshot" {
        return invalid("afterOpTime field cannot be set if level is equal to snapshot");
    }
    if parsed.at_cluster_time.is_some() && level != "snapshot" {
        return invalid("atClusterTime field can be set only if level is equal to snapshot");
    }
    if parsed.at_cluster_time.is_some_and(|(t, _)| t == 0) {
        return invalid("atClusterTime cannot be a null timestamp");
    }
    if parsed.after_cluster_time == Some((0, 0)) {
        return invalid("afterClusterTime cannot be a null timestamp");
    }
    Ok(parsed)
}

/// Parses `readConcern`, checks the command takes its level, then refuses what this server
/// cannot serve. `local`, `available` and `majority` read the latest committed data, which on
/// a standalone or a single member is what all three promise.
fn check_read_concern(spec: &CommandSpec, req: &CommandRequest, repl: &Replication) -> Result<()> {
    let concern = match req.get("readConcern") {
        None => return Ok(()),
        Some(RawBsonRef::Document(concern)) => parse_read_concern(concern)?,
        Some(_) => return Err(Error::new(ErrorCode::FailedToParse, "readConcern field should be an object")),
    };
    let level = concern.level.as_deref().unwrap_or("local");
    let specified =
        concern.level.is_some() || concern.after_cluster_time.is_some() || concern.at_cluster_time.is_some();
    // A transaction's first statement sets the read concern of the whole transaction, whatever
    // the command.
    let in_transaction = req.get("autocommit").is_some();
    if specified && !in_transaction && !spec.options.read_concern.supports(level) {
        return Err(Error::new(
            ErrorCode::InvalidOptions,
            format!(
                "Command {} does not support {} :: caused by :: read concern not supported",
                spec.name,
                concern.shown()
            ),
        ));
    }
    if repl.set_name().is_some() {
        return check_member_read_concern(&concern, level, repl);
    }
    match level {
        "linearizable" => {
            return Err(Error::new(
                ErrorCode::NotAReplicaSet,
                "node needs to be a replica set member to use read concern",
            ));
        }
        "snapshot" => {
            return Err(Error::new(
                ErrorCode::NotAReplicaSet,
                "node needs to be a replica set member to use readConcern: snapshot",
            ));
        }
        _ => {}
    }
    if concern.after_cluster_time.is_some() {
        return Err(Error::new(
            ErrorCode::IllegalOperation,
            "Cannot specify afterClusterTime readConcern without replication enabled",
        ));
    }
    if concern.after_op_time {
        return Err(Error::new(ErrorCode::NotAReplicaSet, "node needs to be a replica set member to use read concern"));
    }
    Ok(())
}

/// The read concerns of a replica-set member: `linearizable` on the primary (a single member
/// is its own majority, so every read it serves there is linearizable); `afterClusterTime`
/// up to the latest cluster time, which every write acknowledged before it is visible at;
/// `snapshot` in a transaction and outside one (`find`, `aggregate`, `distinct`), at
/// `atClusterTime` up to the latest cluster time (`cmd::snapshot_reads`). `afterOpTime` (an
/// internal field of mongod's replication) is not built.
fn check_member_read_concern(concern: &ReadConcern, level: &str, repl: &Replication) -> Result<()> {
    if concern.after_op_time {
        return Err(Error::new(ErrorCode::NotImplemented, "readConcern afterOpTime is not implemented"));
    }
    if level == "linearizable" && repl.state() != Some(MemberState::Primary) {
        return Err(Error::new(
            ErrorCode::NotWritablePrimary,
            "cannot satisfy linearizable read concern on non-primary node",
        ));
    }
    let target = match (concern.after_cluster_time, concern.at_cluster_time) {
        (Some(after), _) => Some(("afterClusterTime", after)),
        (None, Some(at)) => Some(("atClusterTime", at)),
        (None, None) => None,
    };
    if let Some((field, (time, increment))) = target {
        let requested = bson::Timestamp { time, increment };
        let current = repl.cluster_time();
        let shown = crate::storage::clock::shown;
        if !repl.is_initiated() {
            return Err(Error::new(
                ErrorCode::NotPrimaryOrSecondary,
                format!(
                    "Current clusterTime is uninitialized, cannot service the requested clusterTime. Requested clusterTime: {}; current clusterTime: {}",
                    shown(requested),
                    shown(current)
                ),
            ));
        }
        if (current.time, current.increment) < (time, increment) {
            return Err(Error::new(
                ErrorCode::InvalidOptions,
                format!(
                    "readConcern {field} value must not be greater than the current clusterTime. Requested clusterTime: {}; current clusterTime: {}",
                    shown(requested),
                    shown(current)
                ),
            ));
        }
    }
    Ok(())
}

/// The `w` of a write concern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum W {
    /// Acknowledged by this many members (0: unacknowledged).
    Nodes(i64),
    /// A named mode (`"majority"` or a replica-set tag mode).
    Mode(String),
    /// A tag set (`{dc: 1}`).
    Tags(String),
}

/// A parsed `writeConcern`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteConcern {
    /// `w` (`Nodes(1)` when absent).
    pub w: W,
    /// `j`.
    pub j: Option<bool>,
    /// `fsync`.
    pub fsync: Option<bool>,
}

impl Default for WriteConcern {
    fn default() -> Self {
        Self { w: W::Nodes(1), j: None, fsync: None }
    }
}

impl WriteConcern {
    /// Whether the reply waits for the journal: `j`, `fsync` (mongod syncs the journal for
    /// it) or `w: "majority"` (which on a standalone means durable on its one member).
    pub fn journaled(&self) -> bool {
        self.j == Some(true) || self.fsync == Some(true) || self.w == W::Mode("majority".to_owned())
    }

    /// mongod's `validateWriteConcern` on a standalone.
    ///
    /// # Errors
    /// 2 BadValue for `w` > 1, a mode other than `majority`, or a tag set.
    pub fn validate_for_standalone(&self) -> Result<()> {
        match &self.w {
            W::Nodes(n) if *n > 1 => {
                Err(Error::new(ErrorCode::BadValue, "cannot use 'w' > 1 when a host is not replicated"))
            }
            W::Mode(mode) | W::Tags(mode) if mode != "majority" => Err(Error::new(
                ErrorCode::BadValue,
                format!("cannot use non-majority 'w' mode {mode} when a host is not a member of a replica set"),
            )),
            _ => Ok(()),
        }
    }

    /// mongod's `validateWriteConcern` on a replica set of one data-bearing member, whose
    /// configuration defines no write concern modes.
    ///
    /// # Errors
    /// 100 UnsatisfiableWriteConcern for `w` > 1; 79 UnknownReplWriteConcern for a mode other
    /// than `majority` or a tag set.
    pub fn validate_for_single_member(&self) -> Result<()> {
        match &self.w {
            W::Nodes(n) if *n > 1 => {
                Err(Error::new(ErrorCode::UnsatisfiableWriteConcern, "Not enough data-bearing nodes"))
            }
            W::Mode(mode) | W::Tags(mode) if mode != "majority" => Err(Error::new(
                ErrorCode::UnknownReplWriteConcern,
                format!("No write concern mode named '{mode}' found in replica set configuration"),
            )),
            _ => Ok(()),
        }
    }
}

fn write_concern_type(key: &str, value: RawBsonRef<'_>, expected: &str) -> Error {
    Error::new(
        ErrorCode::TypeMismatch,
        format!(
            "BSON field 'WriteConcernOptions.{key}' is the wrong type '{}', expected types '{expected}'",
            type_name(value.element_type())
        ),
    )
}

fn safe_bool(key: &str, value: RawBsonRef<'_>) -> Result<Option<bool>> {
    match value {
        RawBsonRef::Boolean(b) => Ok(Some(b)),
        RawBsonRef::Int32(n) => Ok(Some(n != 0)),
        RawBsonRef::Int64(n) => Ok(Some(n != 0)),
        RawBsonRef::Double(n) => Ok(Some(n != 0.0)),
        RawBsonRef::Decimal128(_) => Ok(Some(true)),
        RawBsonRef::Null | RawBsonRef::Undefined => Ok(None),
        other => Err(write_concern_type(key, other, "[bool, long, int, decimal, double]")),
    }
}

/// Reads the command's `writeConcern` as mongod's `WriteConcernOptions::parse` (an absent or
/// empty one is the default `{w: 1}`).
///
/// # Errors
/// 14 TypeMismatch when it is not a document or a field has the wrong type, 9 FailedToParse
/// for a bad `w` or `j` with `fsync`, 40415 for an unknown field.
pub fn write_concern(req: &CommandRequest) -> Result<WriteConcern> {
    let concern = match req.get("writeConcern") {
        None => return Ok(WriteConcern::default()),
        Some(RawBsonRef::Document(concern)) => concern,
        Some(other) => return Err(extract_error("writeConcern", other, "object")),
    };
    let mut parsed = WriteConcern::default();
    for element in concern {
        let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        match key.as_str() {
            "w" => parsed.w = parse_w(value)?,
            "j" => parsed.j = safe_bool("j", value)?,
            "fsync" => parsed.fsync = safe_bool("fsync", value)?,
            // Any type: mongod reads numbers and takes 0 for the rest. A standalone never
            // waits for other members, so the timeout has nothing to bound.
            "wtimeout" => {}
            // Accepted and ignored by mongod, for old clients and its own.
            "wElectionId" | "wOpTime" | "getLastError" | "provenance" => {}
            other => {
                return Err(Error::new(
                    ErrorCode::Location40415,
                    format!("BSON field 'WriteConcernOptions.{other}' is an unknown field."),
                ));
            }
        }
    }
    if parsed.j == Some(true) && parsed.fsync == Some(true) {
        return Err(Error::new(ErrorCode::FailedToParse, "fsync and j options cannot be used together"));
    }
    Ok(parsed)
}

fn parse_w(value: RawBsonRef<'_>) -> Result<W> {
    let nodes = match value {
        RawBsonRef::Int32(n) => i64::from(n),
        RawBsonRef::Int64(n) => n,
        RawBsonRef::Double(n) if n.is_nan() => 0,
        RawBsonRef::Double(n) => n as i64,
        RawBsonRef::String(mode) => return Ok(W::Mode(mode.to_owned())),
        RawBsonRef::Document(tags) => {
            if tags.is_empty() {
                return Err(Error::new(ErrorCode::FailedToParse, "tagged write concern requires tags"));
            }
            let mut shown = Vec::new();
            for element in tags {
                let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
                let number = match value {
                    RawBsonRef::Int32(n) => i64::from(n),
                    RawBsonRef::Int64(n) => n,
                    RawBsonRef::Double(n) => n as i64,
                    _ => {
                        return Err(Error::new(
                            ErrorCode::FailedToParse,
                            format!(
                                "tags must be a single level document with only number values; found: {}: {}",
                                key.as_str(),
                                bson::Bson::try_from(value)
                                    .map_or_else(|_| "?".to_owned(), |v| v.into_relaxed_extjson().to_string())
                            ),
                        ));
                    }
                };
                shown.push(format!("{}: {number}", key.as_str()));
            }
            return Ok(W::Tags(format!("{{ {} }}", shown.join(", "))));
        }
        RawBsonRef::Null | RawBsonRef::Undefined => return Ok(W::Nodes(1)),
        other => {
            return Err(Error::new(
                ErrorCode::FailedToParse,
                format!("w has to be a number, string, or object; found: {}", type_name(other.element_type())),
            ));
        }
    };
    if !(0..=MAX_MEMBERS).contains(&nodes) {
        return Err(Error::new(
            ErrorCode::FailedToParse,
            format!("w has to be a non-negative number and not greater than {MAX_MEMBERS}; found: {nodes}"),
        ));
    }
    Ok(W::Nodes(nodes))
}

#[cfg(test)]
mod tests {
    use crate::testkit::TestServer;
    use bson::doc;

    fn error_of(body: bson::Document) -> (i32, String) {
        let reply = TestServer::new().run_command(body);
        (reply.get_i32("code").unwrap_or(0), reply.get_str("errmsg").unwrap_or("").to_owned())
    }

    #[test]
    fn generic_read_concern_levels_as_standalone_mongod() {
        let cases = [
            (doc! { "find": "c", "readConcern": { "level": "bogus" }, "$db": "t" }, 9),
            (doc! { "find": "c", "readConcern": { "level": 1 }, "$db": "t" }, 14),
            (doc! { "find": "c", "readConcern": { "foo": 1 }, "$db": "t" }, 72),
            (doc! { "find": "c", "readConcern": 1, "$db": "t" }, 9),
            (doc! { "find": "c", "readConcern": { "level": "linearizable" }, "$db": "t" }, 123),
            (doc! { "find": "c", "readConcern": { "level": "snapshot" }, "$db": "t" }, 123),
            (doc! { "count": "c", "readConcern": { "level": "snapshot" }, "$db": "t" }, 72),
            (doc! { "ping": 1, "readConcern": { "level": "majority" }, "$db": "t" }, 72),
            (
                doc! { "find": "c", "readConcern": { "level": "local", "afterClusterTime": bson::Timestamp { time: 1, increment: 1 } }, "$db": "t" },
                20,
            ),
        ];
        for (body, code) in cases {
            let (got, message) = error_of(body.clone());
            assert_eq!(got, code, "{body}: {message}");
        }
        for level in ["local", "available", "majority"] {
            let (code, message) = error_of(doc! { "find": "c", "readConcern": { "level": level }, "$db": "t" });
            assert_eq!(code, 0, "{level}: {message}");
        }
    }

    #[test]
    fn generic_read_concern_unsupported_message() {
        let (_, message) = error_of(doc! { "ping": 1, "readConcern": { "level": "majority" }, "$db": "t" });
        assert_eq!(
            message,
            "Command ping does not support { readConcern: { level: \"majority\", provenance: \"clientSupplied\" } } :: \
             caused by :: read concern not supported"
        );
    }

    #[test]
    fn generic_write_concern_as_standalone_mongod() {
        let cases = [
            (doc! { "w": 2 }, 2, "cannot use 'w' > 1 when a host is not replicated"),
            (doc! { "w": -1 }, 9, "w has to be a non-negative number and not greater than 50; found: -1"),
            (doc! { "w": 51 }, 9, "w has to be a non-negative number and not greater than 50; found: 51"),
            (doc! { "w": "dc" }, 2, "cannot use non-majority 'w' mode dc when a host is not a member of a replica set"),
            (doc! { "w": true }, 9, "w has to be a number, string, or object; found: bool"),
            (doc! { "j": true, "fsync": true }, 9, "fsync and j options cannot be used together"),
            (doc! { "x": 1 }, 40415, "BSON field 'WriteConcernOptions.x' is an unknown field."),
        ];
        for (concern, code, message) in cases {
            let (got, text) =
                error_of(doc! { "insert": "c", "documents": [{}], "writeConcern": concern.clone(), "$db": "t" });
            assert_eq!((got, text.as_str()), (code, message), "{concern}");
        }
        let (code, message) = error_of(doc! { "find": "c", "writeConcern": { "w": 1 }, "$db": "t" });
        assert_eq!((code, message.as_str()), (72, "Command does not support writeConcern"));
        for ok in [doc! { "w": "majority" }, doc! { "w": 1, "j": true }, doc! { "w": 0 }, doc! {}] {
            let (code, message) =
                error_of(doc! { "insert": "c", "documents": [{}], "writeConcern": ok.clone(), "$db": "t" });
            assert_eq!(code, 0, "{ok}: {message}");
        }
    }

    #[test]
    fn generic_session_arguments_as_standalone_mongod() {
        let lsid = doc! { "id": bson::Binary { subtype: bson::spec::BinarySubtype::Uuid, bytes: vec![7; 16] } };
        let cases = [
            (doc! { "insert": "c", "documents": [{}], "lsid": lsid.clone(), "txnNumber": 1_i64, "$db": "t" }, 20),
            (doc! { "insert": "c", "documents": [{}], "txnNumber": 1_i64, "$db": "t" }, 72),
            (doc! { "ping": 1, "lsid": lsid.clone(), "txnNumber": 1_i64, "$db": "t" }, 50889),
            (doc! { "ping": 1, "autocommit": false, "$db": "t" }, 263),
            (doc! { "find": "c", "autocommit": false, "$db": "t" }, 72),
            (doc! { "find": "c", "startTransaction": true, "$db": "t" }, 72),
            (doc! { "find": "c", "txnNumber": 1, "lsid": lsid, "$db": "t" }, 14),
        ];
        for (body, code) in cases {
            let (got, message) = error_of(body.clone());
            assert_eq!(got, code, "{body}: {message}");
        }
    }

    #[test]
    fn generic_api_parameters_as_mongod() {
        let cases = [
            (doc! { "ping": 1, "apiStrict": true, "$db": "t" }, 4886600),
            (doc! { "ping": 1, "apiVersion": "2", "$db": "t" }, 322),
            (doc! { "ping": 1, "apiVersion": 1, "$db": "t" }, 14),
            (doc! { "listCommands": 1, "apiVersion": "1", "apiStrict": true, "$db": "t" }, 323),
        ];
        for (body, code) in cases {
            let (got, message) = error_of(body.clone());
            assert_eq!(got, code, "{body}: {message}");
        }
        let (code, message) = error_of(doc! { "ping": 1, "apiVersion": "1", "apiStrict": true, "$db": "t" });
        assert_eq!(code, 0, "{message}");
    }

    #[test]
    fn generic_max_time_ms_as_mongod() {
        let cases = [
            (doc! { "ping": 1, "maxTimeMS": "x", "$db": "t" }, "maxTimeMS must be a number"),
            (doc! { "ping": 1, "maxTimeMS": -1, "$db": "t" }, "maxTimeMS is out of range"),
            (doc! { "ping": 1, "maxTimeMS": 1.5, "$db": "t" }, "maxTimeMS has non-integral value"),
        ];
        for (body, message) in cases {
            assert_eq!(error_of(body), (2, message.to_owned()));
        }
    }
}
