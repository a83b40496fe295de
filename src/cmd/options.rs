//! What each command takes: its declared body fields, each classified as honoured, refused
//! (as mongod refuses it, or as not built yet) or ignored (only where mongod ignores it too),
//! the generic arguments every command takes, and the dispatcher's check of a request's body
//! and document sequences against them, in mongod's order and with its errors.
//!
//! The lists are the single source of `docs/compat/command-options.md` (see
//! [`render_markdown`]); in debug builds `CommandRequest`'s accessors assert that a handler
//! reads only declared fields, so an option in none of the three lists fails the tests.

use std::fmt::Write as _;

use super::{COMMANDS, CommandRequest, CommandSpec};
use crate::error::{Error, ErrorCode, Result};

/// How a field is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// Read by the handler (or a generic check) and applied as mongod applies it; the text
    /// says how where it is not obvious.
    Honoured(&'static str),
    /// Refused.
    Refused(Refusal),
    /// Accepted and ignored, as mongod ignores it; the text says why.
    Ignored(&'static str),
}

/// How a refused field is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// mongod parses it only for its own internal clients (mongos, shards, replication):
    /// the dispatcher refuses it as an unknown field (40415).
    Internal,
    /// Not built yet: the dispatcher answers 238 NotImplemented when the field is present
    /// (`when_true`: only when its value is true).
    NotImplemented {
        /// Only a true value is refused; false and absent behave as mongod's default.
        when_true: bool,
        /// What is missing.
        what: &'static str,
    },
    /// A handler or a generic check refuses it, in the situations the text describes, with
    /// mongod's code and message.
    Checked(&'static str),
}

/// One field a command takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Its name in the command body.
    pub name: &'static str,
    /// How it is treated.
    pub treatment: Treatment,
    /// It may also arrive as a kind-1 document sequence of this name.
    pub sequence: bool,
}

impl Field {
    /// Honoured as mongod honours it.
    pub const fn honoured(name: &'static str, how: &'static str) -> Self {
        Self { name, treatment: Treatment::Honoured(how), sequence: false }
    }

    /// Ignored, as mongod ignores it, for the reason given.
    pub const fn ignored(name: &'static str, why: &'static str) -> Self {
        Self { name, treatment: Treatment::Ignored(why), sequence: false }
    }

    /// Refused by a handler or generic check, as described.
    pub const fn checked(name: &'static str, when: &'static str) -> Self {
        Self { name, treatment: Treatment::Refused(Refusal::Checked(when)), sequence: false }
    }

    /// Refused as an unknown field: mongod's internal clients only.
    pub const fn internal(name: &'static str) -> Self {
        Self { name, treatment: Treatment::Refused(Refusal::Internal), sequence: false }
    }

    /// Refused with 238 NotImplemented whenever present.
    pub const fn not_built(name: &'static str, what: &'static str) -> Self {
        Self {
            name,
            treatment: Treatment::Refused(Refusal::NotImplemented { when_true: false, what }),
            sequence: false,
        }
    }

    /// Refused with 238 NotImplemented when true.
    pub const fn not_built_if_true(name: &'static str, what: &'static str) -> Self {
        Self { name, treatment: Treatment::Refused(Refusal::NotImplemented { when_true: true, what }), sequence: false }
    }

    /// May also arrive as a kind-1 document sequence.
    pub const fn sequence(mut self) -> Self {
        self.sequence = true;
        self
    }
}

/// How mongod parses a command's body, which decides what happens to fields it does not
/// declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parser {
    /// An IDL command with `strict: true`: unknown fields are 40415, a field given twice is
    /// 40413, unknown document sequences are 40415.
    Strict,
    /// An IDL command with `strict: false` (`hello`): unknown fields are ignored, a declared
    /// field given twice is 40413.
    Lax,
    /// A hand-written command (mongod's `BasicCommand`): it reads the fields it knows and
    /// ignores the rest; any document sequence is 40472.
    Basic,
}

/// The read concern levels a command accepts (mongod's `supportsReadConcern`); others answer
/// 72 InvalidOptions "Command <name> does not support { readConcern: ... }".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadConcernSupport {
    /// `local` only: mongod's default for commands that do not read user data.
    LocalOnly,
    /// `local`, and `snapshot` (in transactions): the write commands.
    LocalAndSnapshot,
    /// Every level but `snapshot` (`count`).
    AllButSnapshot,
    /// Every level (`find`, `aggregate`, `distinct`).
    All,
}

impl ReadConcernSupport {
    /// Whether `level` (one of mongod's five) is accepted outside a transaction (a
    /// transaction's first statement sets the level of the whole transaction, whatever the
    /// command).
    pub fn supports(self, level: &str) -> bool {
        match self {
            Self::LocalOnly | Self::LocalAndSnapshot => level == "local",
            Self::AllButSnapshot => level != "snapshot",
            Self::All => true,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::LocalOnly => "`local` only",
            Self::LocalAndSnapshot => "`local` (and `snapshot` in transactions)",
            Self::AllButSnapshot => "every level but `snapshot`",
            Self::All => "every level",
        }
    }
}

/// Everything the dispatcher knows about a command's arguments.
#[derive(Debug, Clone, Copy)]
pub struct CommandOptions {
    /// How mongod parses the body.
    pub parser: Parser,
    /// The declared fields (the command's own, not the generic arguments).
    pub fields: &'static [Field],
    /// The read concern levels it accepts.
    pub read_concern: ReadConcernSupport,
    /// Whether it takes a write concern (else: 72 "Command does not support writeConcern").
    pub write_concern: bool,
    /// Whether it belongs to the Stable API version 1 (`apiStrict: true` refuses the rest).
    pub api_v1: bool,
    /// Whether it takes session arguments: mongod's commands that need no authentication
    /// (`hello`, `ping`, `buildInfo`, ...) refuse `txnNumber` (50889) and `autocommit` (263).
    pub sessions: bool,
    /// For lax and hand-written commands: what happens to fields not declared.
    pub others: &'static str,
}

impl CommandOptions {
    const fn with(parser: Parser, fields: &'static [Field]) -> Self {
        Self {
            parser,
            fields,
            read_concern: ReadConcernSupport::LocalOnly,
            write_concern: false,
            api_v1: false,
            sessions: true,
            others: "",
        }
    }

    /// A strict IDL command.
    pub const fn strict(fields: &'static [Field]) -> Self {
        Self::with(Parser::Strict, fields)
    }

    /// A lax IDL command; `others` says what happens to other fields.
    pub const fn lax(fields: &'static [Field], others: &'static str) -> Self {
        let mut options = Self::with(Parser::Lax, fields);
        options.others = others;
        options
    }

    /// A hand-written command; `others` says what happens to other fields.
    pub const fn basic(fields: &'static [Field], others: &'static str) -> Self {
        let mut options = Self::with(Parser::Basic, fields);
        options.others = others;
        options
    }

    /// Accepts these read concern levels.
    pub const fn reads(mut self, support: ReadConcernSupport) -> Self {
        self.read_concern = support;
        self
    }

    /// Takes a write concern.
    pub const fn writes(mut self) -> Self {
        self.write_concern = true;
        self
    }

    /// Belongs to the Stable API version 1.
    pub const fn api_v1(mut self) -> Self {
        self.api_v1 = true;
        self
    }

    /// Takes no session arguments (mongod: needs no authentication).
    pub const fn sessionless(mut self) -> Self {
        self.sessions = false;
        self
    }

    /// The declared field `name`, if any.
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// The generic arguments every command takes (mongod's `generic_argument.idl` for 7.0), and
/// how each is treated. The generic checks in `generic.rs` implement the refusals.
pub static GENERIC_ARGUMENTS: &[Field] = &[
    Field::honoured("$db", "the database the command runs on"),
    Field::honoured("maxTimeMS", "a deadline for the whole command; malformed values are 2 BadValue"),
    Field::honoured(
        "readConcern",
        "validated as mongod; `local`, `available` and `majority` read the latest committed data (on a standalone \
         or a single member they are the same). A standalone refuses `linearizable` and `snapshot` (123 \
         NotAReplicaSet) and `afterClusterTime` (20 IllegalOperation); a replica-set member serves `linearizable` \
         on the primary, `afterClusterTime` up to its cluster time (72 past it), and `snapshot` in transactions \
         and on `find`, `aggregate` and `distinct` (replies carry `atClusterTime`), at an `atClusterTime` up to \
         `minSnapshotHistoryWindowInSeconds` old (239 SnapshotTooOld before, 72 past the cluster time); it \
         answers 238 for `afterOpTime` (mongod's internal field); a level the command does not take is 72",
    ),
    Field::honoured(
        "writeConcern",
        "validated as mongod; writes with `j`, `fsync` or `w: \"majority\"` wait for a journal sync (catalog changes \
         always do); `w` > 1 and tag sets are 2 BadValue on a standalone, and 100 UnsatisfiableWriteConcern and 79 \
         UnknownReplWriteConcern on a single-member replica set; commands that take none answer 72",
    ),
    Field::honoured("lsid", "the logical session, kept alive by each use"),
    Field::checked(
        "txnNumber",
        "20 IllegalOperation \"Transaction numbers are only allowed on a replica set member or mongos\" (72 without \
         `lsid`; 50889 on commands that take no session): retryable writes and transactions need a replica set; a \
         replica-set member refuses it too (20, \"Transaction numbers are not supported by this replica set member \
         yet\") until they are built",
    ),
    Field::checked(
        "autocommit",
        "72 InvalidOptions without `txnNumber` (which a standalone refuses first); 263 on commands that take no \
         session",
    ),
    Field::checked("startTransaction", "72 InvalidOptions without `autocommit` (which a standalone refuses first)"),
    Field::honoured(
        "stmtId",
        "the first statement's id in a retryable write (the others count up from it; 0 when absent)",
    ),
    Field::honoured(
        "comment",
        "recorded with the command in `currentOp`, the profiler and the slow-query log, and on the lines its handler \
         logs; a W3C `traceparent` in it gives `traceId` in all four, and with `--otlpEndpoint` it is the parent \
         of the operation's span ([tracing](../operations/tracing.md))",
    ),
    Field::honoured(
        "$readPreference",
        "a mode other than `primary` lets a replica-set member that is not primary serve reads (13435 without \
         it); a standalone is the primary and serves every read preference",
    ),
    Field::ignored(
        "$clusterTime",
        "a standalone keeps no cluster time; a single member is the only source of its set's cluster time, so a \
         gossiped time never moves its clock (replies carry `$clusterTime` with mongod's unsigned placeholder)",
    ),
    Field::honoured(
        "apiVersion",
        "must be \"1\" (322 APIVersionError); with `apiStrict: true`, commands outside API version 1 are 323",
    ),
    Field::honoured("apiStrict", "needs `apiVersion` (4886600); refuses commands outside API version 1 (323)"),
    Field::honoured("apiDeprecationErrors", "needs `apiVersion` (4886600); no command of version 1 is deprecated"),
    Field::ignored("clientOperationKey", "identifies an operation for mongos's killOperations"),
    Field::ignored("$audit", "audit metadata from mongos; Monarch has no audit log"),
    Field::ignored("$client", "client metadata forwarded by mongos; the handshake's `client` is what counts"),
    Field::ignored("$configServerState", "sharding metadata; a standalone is not a shard"),
    Field::ignored("allowImplicitCollectionCreation", "sharding metadata; a standalone is not a shard"),
    Field::ignored("$oplogQueryData", "replication metadata; a standalone has no oplog"),
    Field::ignored("$queryOptions", "read preference forwarded by mongos; a standalone is the primary"),
    Field::ignored("$replData", "replication metadata; a standalone has no replica set"),
    Field::ignored("databaseVersion", "sharding metadata; a standalone is not a shard"),
    Field::ignored("shardVersion", "sharding metadata; a standalone is not a shard"),
    Field::ignored("tracking_info", "mongos's operation tracking"),
    Field::ignored("coordinator", "sharded transaction metadata; transactions are refused through txnNumber"),
    Field::ignored("maxTimeMSOpOnly", "mongos's per-shard time limit"),
    Field::ignored("$configTime", "sharding metadata; a standalone is not a shard"),
    Field::ignored("$topologyTime", "sharding metadata; a standalone is not a shard"),
    Field::ignored("txnRetryCounter", "internal transactions; transactions are refused through txnNumber"),
    Field::ignored("mayBypassWriteBlocking", "user write blocking (cluster-to-cluster sync) is not a feature here"),
    Field::ignored("$tenant", "serverless multi-tenancy"),
];

/// Whether `name` is one of the generic arguments every command takes.
pub fn is_generic_argument(name: &str) -> bool {
    generic_argument(name).is_some()
}

/// The generic argument `name`, if it is one.
pub fn generic_argument(name: &str) -> Option<&'static Field> {
    GENERIC_ARGUMENTS.iter().find(|f| f.name == name)
}

/// Whether `name` is declared for `spec`: one of its fields or a generic argument.
pub fn is_declared(spec: &CommandSpec, name: &str) -> bool {
    spec.options.field(name).is_some() || is_generic_argument(name)
}

fn unknown_field(spec: &CommandSpec, name: &str) -> Error {
    Error::new(ErrorCode::Location40415, format!("BSON field '{}.{name}' is an unknown field.", spec.name))
}

fn duplicate_field(spec: &CommandSpec, name: &str) -> Error {
    Error::new(ErrorCode::Location40413, format!("BSON field '{}.{name}' is a duplicate field", spec.name))
}

/// Checks a request's body fields and document sequences as mongod's parser does: unknown
/// fields of strict commands (40415), fields given twice (40413, also in body and sequence),
/// document sequences a command does not take (40415, or 40472 for hand-written commands),
/// and the fields refused without looking further (internal ones, and ones not built yet).
///
/// # Errors
/// The first of those, with mongod's code and message.
pub fn check_fields(spec: &CommandSpec, request: &CommandRequest) -> Result<()> {
    let options = &spec.options;
    let mut seen: Vec<&str> = Vec::new();
    for element in request.body().iter().skip(1) {
        let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        let key = key.as_str();
        if is_generic_argument(key) {
            continue;
        }
        let Some(field) = options.field(key) else {
            if options.parser == Parser::Strict {
                return Err(unknown_field(spec, key));
            }
            continue;
        };
        if options.parser != Parser::Basic {
            if seen.contains(&field.name) {
                return Err(duplicate_field(spec, key));
            }
            seen.push(field.name);
        }
        match field.treatment {
            Treatment::Refused(Refusal::Internal) => return Err(unknown_field(spec, key)),
            Treatment::Refused(Refusal::NotImplemented { when_true, what }) => {
                let refused = !when_true || truthy(value);
                if refused {
                    return Err(Error::new(
                        ErrorCode::NotImplemented,
                        format!("{}.{key} is not supported yet ({what})", spec.name),
                    ));
                }
            }
            _ => {}
        }
    }
    for sequence in request.sequence_names() {
        if options.parser == Parser::Basic {
            return Err(Error::new(
                ErrorCode::Location40472,
                format!("The {} command does not support document sequences.", spec.name),
            ));
        }
        match options.field(sequence) {
            Some(field) if field.sequence => {
                if seen.contains(&field.name) {
                    return Err(duplicate_field(spec, sequence));
                }
                seen.push(field.name);
            }
            _ if options.parser == Parser::Strict => return Err(unknown_field(spec, sequence)),
            _ => {}
        }
    }
    Ok(())
}

/// mongod's truth of an option value (`trueValue`): numbers other than zero and `true`.
fn truthy(value: bson::RawBsonRef<'_>) -> bool {
    use bson::RawBsonRef;
    match value {
        RawBsonRef::Boolean(b) => b,
        RawBsonRef::Int32(n) => n != 0,
        RawBsonRef::Int64(n) => n != 0,
        RawBsonRef::Double(n) => n != 0.0,
        RawBsonRef::Null | RawBsonRef::Undefined => false,
        _ => true,
    }
}

/// The list a field is in, and what the list entry says of it.
fn describe(field: &Field) -> (&'static str, String) {
    match field.treatment {
        Treatment::Honoured("") => ("honoured", "as mongod".to_owned()),
        Treatment::Honoured(how) => ("honoured", how.to_owned()),
        Treatment::Ignored(why) => ("ignored", format!("as mongod: {why}")),
        Treatment::Refused(Refusal::Internal) => {
            ("refused", "40415, as an unknown field: mongod takes it only from its internal clients".to_owned())
        }
        Treatment::Refused(Refusal::NotImplemented { when_true: false, what }) => {
            ("refused", format!("238 NotImplemented: {what} is not built yet"))
        }
        Treatment::Refused(Refusal::NotImplemented { when_true: true, what }) => {
            ("refused", format!("238 NotImplemented when true: {what} is not built yet"))
        }
        Treatment::Refused(Refusal::Checked(when)) => ("refused", format!("as mongod: {when}")),
    }
}

fn escape(text: &str) -> String {
    text.replace('|', "\\|")
}

/// The compatibility list of every command's options, as checked in at
/// `docs/compat/command-options.md`.
pub fn render_markdown() -> String {
    let mut out = String::new();
    out.push_str(
        "# Command options\n\n\
         Generated from the command table (`src/cmd/options.rs`, `src/cmd/fields.rs`) by \
         `UPDATE_DOCS=1 cargo test --lib command_options_doc`; a test fails when this file is stale.\n\n\
         Every option a command takes is in one of three lists, against what a standalone `mongod` 7.0 does:\n\n\
         - **honoured**: applied as mongod applies it;\n\
         - **refused**: answered with mongod's error, or with 238 NotImplemented where the feature is not built yet;\n\
         - **ignored**: accepted without effect, only where mongod ignores it too (the reason is given).\n\n\
         Body fields a strict command does not declare are refused with 40415 \
         `BSON field '<command>.<field>' is an unknown field.`; a field given twice (in the body, or in the body \
         and as a document sequence) is 40413; a document sequence the command does not take is 40415, or 40472 \
         for hand-written commands. In debug builds, a handler that reads an option not declared here fails the \
         tests.\n\n\
         ## Generic arguments (every command)\n\n\
         | argument | list | how |\n|---|---|---|\n",
    );
    for field in GENERIC_ARGUMENTS {
        let (list, text) = describe(field);
        let _ = writeln!(out, "| `{}` | {list} | {} |", field.name, escape(&text));
    }
    for spec in COMMANDS {
        let options = &spec.options;
        let _ = write!(out, "\n## `{}`\n\n", spec.name);
        let parser = match options.parser {
            Parser::Strict => "strict: other fields are refused with 40415".to_owned(),
            Parser::Lax => format!("not strict: {}", options.others),
            Parser::Basic => format!("hand-written: {}", options.others),
        };
        let _ = writeln!(out, "- parsing: {parser}");
        let _ = writeln!(out, "- read concern: {}", options.read_concern.describe());
        let _ = writeln!(
            out,
            "- write concern: {}",
            if options.write_concern { "taken" } else { "not taken (72 InvalidOptions)" }
        );
        let _ = writeln!(out, "- API version 1: {}", if options.api_v1 { "yes" } else { "no" });
        if !options.sessions {
            let _ = writeln!(out, "- sessions: none (`txnNumber` is 50889, `autocommit` 263)");
        }
        if options.fields.is_empty() {
            out.push_str("\nNo options of its own.\n");
            continue;
        }
        out.push_str("\n| option | list | how |\n|---|---|---|\n");
        for field in options.fields {
            let (list, text) = describe(field);
            let name = if field.sequence {
                format!("`{}` (or document sequence)", field.name)
            } else {
                format!("`{}`", field.name)
            };
            let _ = writeln!(out, "| {name} | {list} | {} |", escape(&text));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_options_every_field_is_classified_once() {
        for spec in COMMANDS {
            let mut names: Vec<&str> = spec.options.fields.iter().map(|f| f.name).collect();
            let count = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), count, "{} declares a field twice", spec.name);
            for field in spec.options.fields {
                assert!(
                    !is_generic_argument(field.name),
                    "{}.{} is a generic argument; declare it only in GENERIC_ARGUMENTS",
                    spec.name,
                    field.name
                );
                let text = match field.treatment {
                    Treatment::Ignored(why) => why,
                    Treatment::Refused(Refusal::Checked(when)) => when,
                    Treatment::Refused(Refusal::NotImplemented { what, .. }) => what,
                    Treatment::Honoured(_) | Treatment::Refused(Refusal::Internal) => "given",
                };
                assert!(!text.is_empty(), "{}.{} needs its reason", spec.name, field.name);
                if field.sequence {
                    assert_ne!(spec.options.parser, Parser::Basic, "{} cannot take sequences", spec.name);
                }
            }
            if spec.options.parser != Parser::Strict {
                assert!(!spec.options.others.is_empty(), "{} must say what happens to other fields", spec.name);
            }
        }
        for field in GENERIC_ARGUMENTS {
            assert!(!field.sequence, "{}", field.name);
        }
    }

    fn request(body: bson::Document) -> CommandRequest {
        let bytes = monarch_wire::DocumentBytes::try_from(&body).unwrap_or_else(|e| panic!("{body}: {e}"));
        CommandRequest::from_msg(monarch_wire::OpMsg::new(bytes)).unwrap_or_else(|e| panic!("{body}: {e:?}"))
    }

    /// Every declared field of every command, sent with a true value, meets its treatment at
    /// the dispatcher's check: internal ones are unknown (40415), ones not built are 238, the
    /// rest pass to the handler; an undeclared field is 40415 exactly where mongod is strict.
    #[test]
    fn command_options_walk_every_field_through_the_check() {
        let mut seen = std::collections::HashSet::new();
        for spec in COMMANDS {
            for field in spec.options.fields {
                let outcome = check_fields(spec, &request(bson::doc! { spec.name: "c", field.name: true, "$db": "t" }));
                let code = outcome.err().map(|e| e.code().code());
                let expected = match field.treatment {
                    Treatment::Refused(Refusal::Internal) => Some(40415),
                    Treatment::Refused(Refusal::NotImplemented { .. }) => Some(238),
                    Treatment::Honoured(_) | Treatment::Ignored(_) | Treatment::Refused(Refusal::Checked(_)) => None,
                };
                assert_eq!(code, expected, "{}.{}", spec.name, field.name);
                seen.insert(std::mem::discriminant(&field.treatment));
            }
            let unknown = check_fields(spec, &request(bson::doc! { spec.name: "c", "noSuchField": 1, "$db": "t" }));
            let expected = (spec.options.parser == Parser::Strict).then_some(40415);
            assert_eq!(unknown.err().map(|e| e.code().code()), expected, "{} with an unknown field", spec.name);
        }
        assert_eq!(seen.len(), 3, "the table uses every treatment");
    }

    #[test]
    fn command_options_doc_is_current() -> std::io::Result<()> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/compat/command-options.md");
        let rendered = render_markdown();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&path, &rendered)?;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == rendered,
            "docs/compat/command-options.md is stale: run `UPDATE_DOCS=1 cargo test --lib command_options_doc`"
        );
        Ok(())
    }
}
