//! A command as handlers see it: name, database, body and document sequences, read from an
//! `OP_MSG` or a legacy `OP_QUERY`, with typed argument accessors that fail like mongod.

use bson::{RawBsonRef, RawDocument, Uuid};
use monarch_wire::{DocumentBytes, DocumentSequence, OpMsg, OpQuery};

use super::ClientInfo;
use crate::error::{Error, ErrorCode, Result};
use crate::op::OpStart;

/// Commands larger than this are kept in `currentOp`, logs and the profiler as their name
/// and size only, so tracking never copies a large insert batch.
const MAX_TRACKED_COMMAND: usize = 16 * 1024;

/// Nesting deeper than this is refused before any handler walks the document (mongod's
/// `validateBSON`, 200 levels below the top document).
const MAX_DEPTH: usize = crate::query::limits::MAX_BSON_DEPTH;

/// The keys of a command body as a 128-bit Bloom filter (one bit per key): a handler asks for
/// some twenty optional arguments of which a request carries a few, and each lookup would
/// otherwise walk the body from its start.
#[derive(Debug, Clone, Copy)]
struct KeySet(u128);

impl KeySet {
    fn of(body: &RawDocument) -> Self {
        let mut bits = 0;
        for element in body.iter_elements() {
            match element {
                Ok(element) => bits |= Self::bit(element.key().as_str()),
                // Validated bodies do not fail; if one did, every lookup walks the body.
                Err(_) => return Self(u128::MAX),
            }
        }
        Self(bits)
    }

    fn may_contain(self, key: &str) -> bool {
        self.0 & Self::bit(key) != 0
    }

    /// The key's bit, from its FNV-1a hash.
    fn bit(key: &str) -> u128 {
        let hash =
            key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        1 << (hash >> 57)
    }
}

/// Which op code carried the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `OP_MSG`.
    OpMsg,
    /// Legacy `OP_QUERY` on `<db>.$cmd`.
    OpQuery,
}

/// A decoded command. Its body has been validated as well-formed BSON throughout.
#[derive(Debug)]
pub struct CommandRequest {
    body: DocumentBytes,
    /// The body's keys, so that looking up an absent argument (most lookups) walks nothing.
    keys: KeySet,
    name: String,
    db: String,
    sequences: Vec<DocumentSequence>,
    protocol: Protocol,
}

impl CommandRequest {
    /// Reads an `OP_MSG` request.
    ///
    /// # Errors
    /// 22 InvalidBSON for malformed content, 15 Overflow for nesting deeper than mongod reads,
    /// 40571 when `$db` is missing, 40431 when two document sequences share a name.
    pub fn from_msg(msg: OpMsg) -> Result<Self> {
        validate(msg.body.as_raw(), 0)?;
        if msg.body.as_raw().is_empty() {
            // mongod looks the command up by its (here empty) name before it reads `$db`.
            return Err(Error::new(ErrorCode::CommandNotFound, "no such command: ''"));
        }
        for (i, seq) in msg.sequences.iter().enumerate() {
            if msg.sequences.iter().take(i).any(|earlier| earlier.identifier == seq.identifier) {
                return Err(Error::new(
                    ErrorCode::Location40431,
                    format!("Duplicate document sequence: {}", seq.identifier),
                ));
            }
            for doc in &seq.documents {
                validate(doc.as_raw(), 0)?;
            }
        }
        let name = command_name(msg.body.as_raw())?;
        let db = match msg.body.as_raw().get("$db") {
            Ok(Some(RawBsonRef::String(db))) => db.to_owned(),
            Ok(Some(other)) => {
                return Err(Error::new(
                    ErrorCode::TypeMismatch,
                    format!(
                        "BSON field '$db' is the wrong type '{}', expected type 'string'",
                        type_name(other.element_type())
                    ),
                ));
            }
            _ => return Err(Error::new(ErrorCode::MissingDatabase, "OP_MSG requests require a $db argument")),
        };
        let keys = KeySet::of(msg.body.as_raw());
        Ok(Self { body: msg.body, keys, name, db, sequences: msg.sequences, protocol: Protocol::OpMsg })
    }

    /// Reads a legacy `OP_QUERY` command on `<db>.$cmd`, unwrapping `$query`/`query`.
    ///
    /// # Errors
    /// 22 InvalidBSON for malformed content; 352 when the namespace is not a command one.
    pub fn from_query(query: OpQuery) -> Result<Self> {
        validate(query.query.as_raw(), 0)?;
        let Some(db) = query.full_collection_name.strip_suffix(".$cmd") else {
            return Err(unsupported_op_query(&query.full_collection_name));
        };
        let wrapped = ["$query", "query"].iter().find_map(|key| match query.query.as_raw().get(key) {
            Ok(Some(RawBsonRef::Document(inner))) => Some(inner.to_owned()),
            _ => None,
        });
        let body = match wrapped {
            Some(inner) => DocumentBytes::from(inner),
            None => query.query,
        };
        let name = command_name(body.as_raw())?;
        let keys = KeySet::of(body.as_raw());
        Ok(Self { body, keys, name, db: db.to_owned(), sequences: Vec::new(), protocol: Protocol::OpQuery })
    }

    /// A command carried inside this one (`explain: {find: ...}`), on the same database.
    ///
    /// # Errors
    /// 22 InvalidBSON for an empty or malformed body.
    pub fn nested(&self, body: &RawDocument) -> Result<Self> {
        let name = command_name(body)?;
        Ok(Self {
            body: DocumentBytes::from(body.to_owned()),
            keys: KeySet::of(body),
            name,
            db: self.db.clone(),
            sequences: Vec::new(),
            protocol: self.protocol,
        })
    }

    /// The collection the command names (its first value, when a string), for logs and
    /// `currentOp`.
    pub fn collection_name(&self) -> Option<&str> {
        if self.name == "getMore" {
            return match self.get("collection") {
                Some(RawBsonRef::String(coll)) => Some(coll),
                _ => None,
            };
        }
        match self.command_value() {
            Some(RawBsonRef::String(coll)) if !coll.is_empty() => Some(coll),
            _ => None,
        }
    }

    /// This request from `client`, decoded at `started`, as an operation to register.
    pub fn op_start(&self, client: &ClientInfo, started: std::time::Instant) -> OpStart<'_> {
        let comment = self.get("comment").and_then(|comment| bson::Bson::try_from(comment).ok());
        OpStart {
            connection_id: client.connection_id,
            client: client.remote,
            app_name: client.app_name().map(str::to_owned),
            started,
            command_name: self.name(),
            db: self.db().to_owned(),
            collection: self.collection_name().map(str::to_owned),
            users: client.auth.names.clone(),
            command: self.tracked_body(),
            trace: comment.as_ref().and_then(crate::op::trace_parent::in_comment),
            comment,
        }
    }

    /// The command as its operation keeps it: whole when small, else name, collection and size.
    fn tracked_body(&self) -> bson::RawDocumentBuf {
        let body = self.body();
        let size = body.as_bytes().len();
        if size <= MAX_TRACKED_COMMAND {
            return body.to_owned();
        }
        let mut summary = bson::RawDocumentBuf::new();
        if let Ok(name) = <&bson::raw::CStr>::try_from(self.name()) {
            summary.append(name, self.collection_name().unwrap_or(""));
        }
        summary.append(bson::raw::cstr!("$truncated"), format!("command of {size} bytes"));
        summary
    }

    /// The command name: the body's first key, as sent.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The target database.
    pub fn db(&self) -> &str {
        &self.db
    }

    /// The op code that carried the command.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The whole command document.
    pub fn body(&self) -> &RawDocument {
        self.body.as_raw()
    }

    /// The value of the first field (e.g. `1` in `{ping: 1}`).
    pub fn command_value(&self) -> Option<RawBsonRef<'_>> {
        self.body().iter().next().and_then(|r| r.ok()).map(|(_, v)| v)
    }

    /// A field of the body; `None` when absent. Every typed accessor reads through here.
    pub fn get(&self, key: &str) -> Option<RawBsonRef<'_>> {
        self.assert_declared(key);
        if !self.keys.may_contain(key) {
            return None;
        }
        self.body().get(key).ok().flatten()
    }

    /// The kind-1 document sequence named `identifier`, if sent.
    pub fn sequence(&self, identifier: &str) -> Option<&[DocumentBytes]> {
        self.assert_declared(identifier);
        self.sequences.iter().find(|s| s.identifier == identifier).map(|s| s.documents.as_slice())
    }

    /// The names of the kind-1 document sequences sent, in order.
    pub fn sequence_names(&self) -> impl Iterator<Item = &str> {
        self.sequences.iter().map(|s| s.identifier.as_str())
    }

    /// In debug builds (the test suite), fails when a handler reads an option its command
    /// does not declare in `fields.rs`: every option must be honoured, refused or ignored
    /// knowingly, and listed in `docs/compat/command-options.md`.
    fn assert_declared(&self, key: &str) {
        #[cfg(debug_assertions)]
        if let Some((_, spec)) = super::lookup(&self.name) {
            debug_assert!(
                super::options::is_declared(spec, key),
                "the {} handler reads '{key}', which src/cmd/fields.rs does not declare for it",
                spec.name
            );
        }
        #[cfg(not(debug_assertions))]
        let _ = key;
    }

    /// A boolean argument; like mongod, numbers count as booleans (non-zero is true).
    ///
    /// # Errors
    /// 14 TypeMismatch for other types.
    pub fn bool_arg(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None | Some(RawBsonRef::Null) => Ok(None),
            Some(RawBsonRef::Boolean(b)) => Ok(Some(b)),
            Some(RawBsonRef::Int32(n)) => Ok(Some(n != 0)),
            Some(RawBsonRef::Int64(n)) => Ok(Some(n != 0)),
            Some(RawBsonRef::Double(n)) => Ok(Some(n != 0.0)),
            Some(other) => Err(self.wrong_type(key, other, "bool")),
        }
    }

    /// A string argument.
    ///
    /// # Errors
    /// 14 TypeMismatch for other types.
    pub fn str_arg(&self, key: &str) -> Result<Option<&str>> {
        match self.get(key) {
            None => Ok(None),
            Some(RawBsonRef::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(key, other, "string")),
        }
    }

    /// A document argument.
    ///
    /// # Errors
    /// 14 TypeMismatch for other types.
    pub fn doc_arg(&self, key: &str) -> Result<Option<&RawDocument>> {
        match self.get(key) {
            None => Ok(None),
            Some(RawBsonRef::Document(d)) => Ok(Some(d)),
            Some(other) => Err(self.wrong_type(key, other, "object")),
        }
    }

    /// An array argument, as its elements.
    ///
    /// # Errors
    /// 14 TypeMismatch for other types.
    pub fn array_arg(&self, key: &str) -> Result<Option<Vec<RawBsonRef<'_>>>> {
        match self.get(key) {
            None => Ok(None),
            Some(RawBsonRef::Array(a)) => Ok(Some(a.into_iter().filter_map(|v| v.ok()).collect())),
            Some(other) => Err(self.wrong_type(key, other, "array")),
        }
    }

    /// The namespace named by the command's value (`{find: "coll", $db: "db"}`).
    ///
    /// # Errors
    /// 73 InvalidNamespace when the value is not a valid collection name, as mongod.
    pub fn namespace(&self) -> Result<crate::storage::Namespace> {
        match self.command_value() {
            Some(RawBsonRef::String(coll)) => crate::storage::Namespace::new(&self.db, coll),
            Some(other) => Err(Error::new(
                ErrorCode::InvalidNamespace,
                format!("collection name has invalid type {}", type_name(other.element_type())),
            )),
            None => Err(Error::new(ErrorCode::InvalidNamespace, "missing collection name")),
        }
    }

    /// A non-negative integer argument (any numeric type with an integral value).
    ///
    /// # Errors
    /// 14 TypeMismatch for non-numbers, 2 BadValue for negative or fractional values.
    pub fn count_arg(&self, key: &str) -> Result<Option<i64>> {
        let value = match self.get(key) {
            None | Some(RawBsonRef::Null) => return Ok(None),
            Some(RawBsonRef::Int32(n)) => i64::from(n),
            Some(RawBsonRef::Int64(n)) => n,
            Some(RawBsonRef::Double(n)) if n.fract() == 0.0 && n.abs() < 9.0e18 => n as i64,
            Some(RawBsonRef::Double(n)) => {
                return Err(Error::new(ErrorCode::BadValue, format!("{key} must be an integer, got {n}")));
            }
            Some(other) => return Err(self.wrong_type(key, other, "long")),
        };
        if value < 0 {
            return Err(Error::new(
                ErrorCode::BadValue,
                format!("{key} value must be non-negative, but received: {value}"),
            ));
        }
        Ok(Some(value))
    }

    /// The documents of an array field that may also arrive as a kind-1 document sequence
    /// (`documents`, `updates`, `deletes`).
    ///
    /// # Errors
    /// 14 TypeMismatch when the field or an element has the wrong type; 9 FailedToParse when
    /// it is missing.
    pub fn documents(&self, key: &str) -> Result<Vec<&RawDocument>> {
        if let Some(sequence) = self.sequence(key) {
            return Ok(sequence.iter().map(DocumentBytes::as_raw).collect());
        }
        let items = self.array_arg(key)?.ok_or_else(|| {
            Error::new(
                ErrorCode::FailedToParse,
                format!("BSON field '{}.{key}' is missing but a required field", self.name),
            )
        })?;
        items
            .into_iter()
            .map(|item| match item {
                RawBsonRef::Document(doc) => Ok(doc),
                other => Err(self.wrong_type(key, other, "object")),
            })
            .collect()
    }

    /// The session id from `lsid: {id: UUID}`, when present and well-formed.
    pub fn lsid(&self) -> Option<Uuid> {
        match self.get("lsid") {
            Some(RawBsonRef::Document(lsid)) => session_id(lsid).ok(),
            _ => None,
        }
    }

    /// mongod's error for an argument of the wrong type.
    pub fn wrong_type(&self, key: &str, value: RawBsonRef<'_>, expected: &str) -> Error {
        Error::new(
            ErrorCode::TypeMismatch,
            format!(
                "BSON field '{}.{key}' is the wrong type '{}', expected type '{expected}'",
                self.name,
                type_name(value.element_type())
            ),
        )
    }
}

/// Reads `{id: UUID}` (a session id document).
///
/// # Errors
/// 14 TypeMismatch / 9 FailedToParse when the shape is wrong.
pub fn session_id(doc: &RawDocument) -> Result<Uuid> {
    match doc.get("id") {
        Ok(Some(RawBsonRef::Binary(bin))) if bin.subtype == bson::spec::BinarySubtype::Uuid => {
            let bytes: [u8; 16] = bin
                .bytes
                .try_into()
                .map_err(|_| Error::new(ErrorCode::BadValue, "session id UUID must be 16 bytes"))?;
            Ok(Uuid::from_bytes(bytes))
        }
        Ok(Some(other)) => Err(Error::new(
            ErrorCode::TypeMismatch,
            format!(
                "BSON field 'LogicalSessionId.id' is the wrong type '{}', expected type 'binData'",
                type_name(other.element_type())
            ),
        )),
        _ => Err(Error::new(
            ErrorCode::FailedToParse,
            "BSON field 'LogicalSessionId.id' is missing but a required field",
        )),
    }
}

fn command_name(body: &RawDocument) -> Result<String> {
    match body.iter().next() {
        Some(Ok((name, _))) => Ok(name.as_str().to_owned()),
        Some(Err(e)) => Err(Error::new(ErrorCode::InvalidBSON, format!("invalid BSON: {e}"))),
        None => Err(Error::new(ErrorCode::FailedToParse, "Empty command object")),
    }
}

/// mongod's error for commands other than the handshake sent with `OP_QUERY`.
pub fn unsupported_op_query(what: &str) -> Error {
    Error::new(
        ErrorCode::UnsupportedOpQueryCommand,
        format!(
            "Unsupported OP_QUERY command: {what}. The client driver may require an upgrade. For more details see https://dochub.mongodb.org/core/legacy-opcode-removal"
        ),
    )
}

/// Walks every element so that handlers never meet malformed bytes half-way through a write,
/// nor nesting deeper than [`MAX_DEPTH`] (which every recursive walk above relies on).
fn validate(doc: &RawDocument, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    for element in doc {
        let (_, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, format!("invalid BSON: {e}")))?;
        validate_value(value, depth)?;
    }
    Ok(())
}

fn validate_value(value: RawBsonRef<'_>, depth: usize) -> Result<()> {
    match value {
        RawBsonRef::Document(d) => validate(d, depth + 1),
        RawBsonRef::Array(a) => {
            if depth + 1 > MAX_DEPTH {
                return Err(too_deep());
            }
            for item in a {
                let item = item.map_err(|e| Error::new(ErrorCode::InvalidBSON, format!("invalid BSON: {e}")))?;
                validate_value(item, depth + 1)?;
            }
            Ok(())
        }
        RawBsonRef::JavaScriptCodeWithScope(code) => validate(code.scope, depth + 1),
        _ => Ok(()),
    }
}

/// mongod's `validateBSON` error for a message nested too deep.
fn too_deep() -> Error {
    Error::new(ErrorCode::Overflow, "BSONObj exceeds maximum nested object depth")
}

/// mongod's name for a BSON type; the query layer owns the table.
pub use crate::query::type_name;

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, rawdoc};
    use bytes::Bytes;

    fn msg(doc: bson::Document) -> Result<OpMsg> {
        DocumentBytes::try_from(&doc).map(OpMsg::new).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))
    }

    #[test]
    fn request_reads_name_and_db() -> Result<()> {
        let req = CommandRequest::from_msg(msg(doc! { "ping": 1, "$db": "admin" })?)?;
        assert_eq!((req.name(), req.db()), ("ping", "admin"));
        assert_eq!(req.protocol(), Protocol::OpMsg);
        Ok(())
    }

    #[test]
    fn request_key_set_finds_every_present_key_and_skips_absent_ones() {
        let body = rawdoc! { "find": "c", "filter": {}, "limit": 1, "singleBatch": true, "lsid": {}, "$db": "d" };
        let keys = KeySet::of(&body);
        for element in body.iter() {
            let Ok((key, _)) = element else { continue };
            assert!(keys.may_contain(key.as_str()), "{}", key.as_str());
        }
        let absent = ["skip", "sort", "projection", "hint", "batchSize", "let", "collation", "maxTimeMS", "comment"];
        assert!(absent.iter().filter(|key| keys.may_contain(key)).count() < absent.len() / 2);
        assert!(!KeySet::of(&rawdoc! {}).may_contain("find"));
    }

    #[test]
    fn request_without_db_is_40571() -> Result<()> {
        let err = CommandRequest::from_msg(msg(doc! { "ping": 1 })?).err();
        assert_eq!(err.map(|e| e.code().code()), Some(40571));
        Ok(())
    }

    #[test]
    fn request_malformed_nested_bson_is_invalid_bson() -> Result<()> {
        // A body whose frame is right but whose nested document claims a wrong length.
        let mut bytes = rawdoc! { "ping": 1, "x": { "a": 1 }, "$db": "admin" }.into_bytes();
        let nested = bytes.windows(2).position(|w| w == b"x\0").map(|p| p + 2).unwrap_or(0);
        if let Some(len) = bytes.get_mut(nested) {
            *len = 200;
        }
        let body =
            DocumentBytes::new(Bytes::from(bytes)).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        let err = CommandRequest::from_msg(OpMsg::new(body)).err();
        assert_eq!(err.map(|e| e.code()), Some(ErrorCode::InvalidBSON));
        Ok(())
    }

    #[test]
    fn request_nested_deeper_than_200_is_overflow() -> Result<()> {
        let nest = |levels: usize| {
            let mut inner = doc! { "a": 1 };
            for _ in 0..levels {
                inner = doc! { "a": inner };
            }
            doc! { "ping": 1, "x": inner, "$db": "admin" }
        };
        // `x` is one level below the body; its innermost document 1 + `levels` levels below.
        assert!(CommandRequest::from_msg(msg(nest(199))?).is_ok());
        let err = CommandRequest::from_msg(msg(nest(200))?).err();
        assert_eq!(
            err.map(|e| (e.code(), e.message().to_owned())),
            Some((ErrorCode::Overflow, "BSONObj exceeds maximum nested object depth".to_owned()))
        );
        Ok(())
    }

    #[test]
    fn request_wrong_type_message_matches_mongod() -> Result<()> {
        let req = CommandRequest::from_msg(msg(doc! { "hello": 1, "helloOk": "yes", "$db": "admin" })?)?;
        let err = req.bool_arg("helloOk").err().map(|e| e.message().to_owned());
        assert_eq!(err.as_deref(), Some("BSON field 'hello.helloOk' is the wrong type 'string', expected type 'bool'"));
        Ok(())
    }

    #[test]
    fn request_op_query_unwraps_query() -> Result<()> {
        let query = OpQuery {
            flags: 0,
            full_collection_name: "admin.$cmd".into(),
            number_to_skip: 0,
            number_to_return: -1,
            query: DocumentBytes::try_from(
                &doc! { "$query": { "isMaster": 1 }, "$readPreference": { "mode": "primary" } },
            )
            .map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?,
            return_fields_selector: None,
        };
        let req = CommandRequest::from_query(query)?;
        assert_eq!((req.name(), req.db(), req.protocol()), ("isMaster", "admin", Protocol::OpQuery));
        Ok(())
    }
}
