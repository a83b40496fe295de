//! A replica set's configuration (`replSetInitiate`, `replSetReconfig`, `replSetGetConfig`):
//! read from a client's document as mongod checks it, completed with mongod's defaults, and
//! limited to what one node can honour: a single, electable member that is this server.

use bson::oid::ObjectId;
use bson::{Bson, Document, RawBsonRef, RawDocument, doc};

use crate::error::{Error, ErrorCode, Result};

/// mongod's port when a member's `host` names none.
const DEFAULT_PORT: u16 = 27017;

/// A checked configuration: its stored document (mongod's full shape) and the fields the
/// server reads back.
#[derive(Debug, Clone, PartialEq)]
pub struct SetConfig {
    /// The complete document as `replSetGetConfig` shows it (without `term`, kept apart).
    document: Document,
    /// `version`.
    pub version: i32,
    /// The one member's `host`, `"name:port"`.
    pub host: String,
    /// The one member's `_id`.
    pub member_id: i32,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidReplicaSetConfig, message)
}

fn wrong_type(path: &str, value: RawBsonRef<'_>, expected: &str) -> Error {
    Error::new(
        ErrorCode::TypeMismatch,
        format!(
            "BSON field '{path}' is the wrong type '{}', expected type '{expected}'",
            crate::query::type_name(value.element_type())
        ),
    )
}

fn unknown_field(path: &str) -> Error {
    Error::new(ErrorCode::Location40415, format!("BSON field '{path}' is an unknown field."))
}

fn missing(path: &str) -> Error {
    Error::new(ErrorCode::Location40414, format!("BSON field '{path}' is missing but a required field"))
}

/// An integral number (int, long or whole double), as mongod's numeric fields take them.
fn integer(path: &str, value: RawBsonRef<'_>) -> Result<i64> {
    match value {
        RawBsonRef::Int32(n) => Ok(i64::from(n)),
        RawBsonRef::Int64(n) => Ok(n),
        RawBsonRef::Double(n) if n.fract() == 0.0 && n.is_finite() => Ok(n as i64),
        other => Err(wrong_type(path, other, "int")),
    }
}

fn number(path: &str, value: RawBsonRef<'_>) -> Result<f64> {
    match value {
        RawBsonRef::Int32(n) => Ok(f64::from(n)),
        RawBsonRef::Int64(n) => Ok(n as f64),
        RawBsonRef::Double(n) => Ok(n),
        other => Err(wrong_type(path, other, "double")),
    }
}

fn boolean(path: &str, value: RawBsonRef<'_>) -> Result<bool> {
    match value {
        RawBsonRef::Boolean(b) => Ok(b),
        other => Err(wrong_type(path, other, "bool")),
    }
}

fn document(path: &str, value: RawBsonRef<'_>) -> Result<Document> {
    match value {
        RawBsonRef::Document(d) => Document::try_from(d).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string())),
        other => Err(wrong_type(path, other, "object")),
    }
}

/// `name:port` with mongod's default port, or `None` when `host` is not of that form.
pub fn normalize_host(host: &str) -> Option<(String, u16)> {
    let (name, port) = match host.rsplit_once(':') {
        // An IPv6 address without a port has colons but no closing bracket before the last.
        Some((name, port)) if !name.contains(':') || name.ends_with(']') => (name, port.parse().ok()?),
        _ => (host, DEFAULT_PORT),
    };
    if name.is_empty() || port == 0 {
        return None;
    }
    Some((name.to_owned(), port))
}

/// One member of `members`, completed with mongod's defaults.
struct Member {
    id: i32,
    host: String,
    priority: f64,
    votes: i64,
    arbiter: bool,
    hidden: bool,
    document: Document,
}

fn parse_member(index: usize, value: RawBsonRef<'_>) -> Result<Member> {
    let path = |field: &str| format!("members.{index}.{field}");
    let RawBsonRef::Document(raw) = value else {
        return Err(invalid(format!("Expected type of members.{index} to be an object, not {value:?}")));
    };
    let (mut id, mut host) = (None, None);
    let mut member = doc! {};
    let (mut arbiter, mut build_indexes, mut hidden) = (false, true, false);
    let (mut priority, mut votes) = (None, 1_i64);
    let mut tags = Document::new();
    let mut delay = 0_i64;
    for element in raw {
        let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        match key.as_str() {
            "_id" => id = Some(integer(&path("_id"), value)?),
            "host" => match value {
                RawBsonRef::String(h) => host = Some(h.to_owned()),
                other => return Err(wrong_type(&path("host"), other, "string")),
            },
            "arbiterOnly" => arbiter = boolean(&path("arbiterOnly"), value)?,
            "buildIndexes" => build_indexes = boolean(&path("buildIndexes"), value)?,
            "hidden" => hidden = boolean(&path("hidden"), value)?,
            "priority" => priority = Some(number(&path("priority"), value)?),
            "votes" => votes = integer(&path("votes"), value)?,
            "tags" => tags = document(&path("tags"), value)?,
            "secondaryDelaySecs" | "slaveDelay" => delay = integer(&path(key.as_str()), value)?,
            other => return Err(unknown_field(&format!("MemberConfig.{other}"))),
        }
    }
    let id = id.ok_or_else(|| missing("MemberConfig._id"))?;
    let id = i32::try_from(id)
        .ok()
        .filter(|id| (0..=255).contains(id))
        .ok_or_else(|| invalid(format!("_id field value of {id} is out of range.")))?;
    let given = host.ok_or_else(|| missing("MemberConfig.host"))?;
    let (name, port) = normalize_host(&given).ok_or_else(|| {
        Error::new(ErrorCode::FailedToParse, format!("Empty host component parsing HostAndPort from \"{given}\""))
    })?;
    let host = format!("{name}:{port}");
    if !(0..=1).contains(&votes) {
        return Err(invalid(format!("votes field value is {votes} but must be 0 or 1")));
    }
    // Arbiters and non-voters default to priority 0, as in mongod.
    let priority = priority.unwrap_or(if arbiter || votes == 0 { 0.0 } else { 1.0 });
    if !(0.0..=1000.0).contains(&priority) {
        return Err(invalid(format!("priority field value of {priority} is out of range")));
    }
    if hidden && priority > 0.0 {
        return Err(invalid("priority must be 0 when hidden=true"));
    }
    if !build_indexes && priority > 0.0 {
        return Err(invalid("priority must be 0 when buildIndexes=false"));
    }
    if delay < 0 {
        return Err(invalid(format!("secondaryDelaySecs field value of {delay} seconds is out of range")));
    }
    member.insert("_id", id);
    member.insert("host", host.clone());
    member.insert("arbiterOnly", arbiter);
    member.insert("buildIndexes", build_indexes);
    member.insert("hidden", hidden);
    member.insert("priority", priority);
    member.insert("tags", tags);
    member.insert("secondaryDelaySecs", Bson::Int64(delay));
    member.insert("votes", i32::try_from(votes).unwrap_or(1));
    Ok(Member { id, host, priority, votes, arbiter, hidden, document: member })
}

/// mongod's `settings` defaults, overlaid with the client's and given a `replicaSetId`.
fn settings(given: Option<Document>, replica_set_id: ObjectId) -> Document {
    let mut settings = doc! {
        "chainingAllowed": true,
        "heartbeatIntervalMillis": 2000,
        "heartbeatTimeoutSecs": 10,
        "electionTimeoutMillis": 10000,
        "catchUpTimeoutMillis": -1,
        "catchUpTakeoverDelayMillis": 30000,
        "getLastErrorModes": {},
        "getLastErrorDefaults": { "w": 1, "wtimeout": 0 },
    };
    if let Some(given) = given {
        for (key, value) in given {
            if key != "replicaSetId" {
                settings.insert(key, value);
            }
        }
    }
    settings.insert("replicaSetId", replica_set_id);
    settings
}

/// How a configuration is being introduced: the version it must exceed and the replica set id
/// it keeps (a reconfig), or none (an initiate).
#[derive(Debug, Clone, Copy)]
pub struct Previous<'a> {
    /// The configuration in use.
    pub config: &'a SetConfig,
    /// The current term.
    pub term: i64,
}

impl SetConfig {
    /// mongod's default configuration for `rs.initiate()` without one: this server alone.
    pub fn default_for(set_name: &str, host: &str) -> Self {
        let member = doc! {
            "_id": 0,
            "host": host,
            "arbiterOnly": false,
            "buildIndexes": true,
            "hidden": false,
            "priority": 1.0,
            "tags": {},
            "secondaryDelaySecs": Bson::Int64(0),
            "votes": 1,
        };
        let document = doc! {
            "_id": set_name,
            "version": 1,
            "members": [member],
            "protocolVersion": Bson::Int64(1),
            "writeConcernMajorityJournalDefault": true,
            "settings": settings(None, ObjectId::new()),
        };
        Self { document, version: 1, host: host.to_owned(), member_id: 0 }
    }

    /// Reads a client's configuration for the set `set_name`. `is_self` tells whether a
    /// member's `host` is this server; `previous` is the configuration it replaces.
    ///
    /// # Errors
    /// mongod's: 93 InvalidReplicaSetConfig for a value it refuses, 103 for a version not
    /// above the current one, 74 NodeNotFound when no member is this server or when other
    /// members would have to answer (a single node cannot reach them), 40414/40415/14 for
    /// missing, unknown or mistyped fields.
    pub fn parse(
        given: &RawDocument,
        set_name: &str,
        previous: Option<Previous<'_>>,
        is_self: &dyn Fn(&str) -> bool,
    ) -> Result<Self> {
        let (mut id, mut version, mut members_value) = (None, None, None);
        let mut given_settings = None;
        let mut majority_journal = true;
        for element in given {
            let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
            match key.as_str() {
                "_id" => match value {
                    RawBsonRef::String(name) => id = Some(name.to_owned()),
                    other => return Err(wrong_type("ReplSetConfig._id", other, "string")),
                },
                "version" => version = Some(integer("ReplSetConfig.version", value)?),
                "members" => match value {
                    RawBsonRef::Array(members) => members_value = Some(members),
                    other => return Err(wrong_type("ReplSetConfig.members", other, "array")),
                },
                "protocolVersion" => {
                    if integer("ReplSetConfig.protocolVersion", value)? != 1 {
                        return Err(invalid("Only protocolVersion 1 is supported"));
                    }
                }
                "writeConcernMajorityJournalDefault" => {
                    majority_journal = boolean("ReplSetConfig.writeConcernMajorityJournalDefault", value)?;
                }
                "settings" => given_settings = Some(document("ReplSetConfig.settings", value)?),
                "configsvr" => {
                    if boolean("ReplSetConfig.configsvr", value)? {
                        return Err(invalid(
                            "Nodes being used for config servers must be started with the --configsvr flag",
                        ));
                    }
                }
                // mongod sets these itself: the term of the config and the new-member marker.
                "term" | "newlyAdded" => {}
                other => return Err(unknown_field(&format!("ReplSetConfig.{other}"))),
            }
        }
        let id = id.ok_or_else(|| missing("ReplSetConfig._id"))?;
        // As mongod, an initiate may leave the version out: it is the first, 1.
        let version = match (version, previous) {
            (Some(version), _) => version,
            (None, None) => 1,
            (None, Some(_)) => return Err(missing("ReplSetConfig.version")),
        };
        let members_value = members_value.ok_or_else(|| missing("ReplSetConfig.members"))?;
        if id != set_name {
            return Err(match previous {
                None => invalid(format!(
                    "Attempting to initiate a replica set with name {id}, but command line reports {set_name}; rejecting"
                )),
                Some(_) => Error::new(
                    ErrorCode::NewReplicaSetConfigurationIncompatible,
                    format!(
                        "New and old configurations differ in replica set name; old was {set_name}, and new is {id}"
                    ),
                ),
            });
        }
        let version = i32::try_from(version)
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| invalid(format!("version field value of {version} is out of range")))?;
        if let Some(previous) = previous
            && version <= previous.config.version
        {
            return Err(Error::new(
                ErrorCode::NewReplicaSetConfigurationIncompatible,
                format!(
                    "New replica set configuration version must be greater than old, but {version} is not greater than {} for replica set {set_name}",
                    previous.config.version
                ),
            ));
        }
        let mut members = Vec::new();
        for (index, value) in members_value.into_iter().enumerate() {
            let value = value.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
            let member = parse_member(index, value)?;
            if members.iter().any(|m: &Member| m.id == member.id) {
                return Err(invalid(format!(
                    "Found two member configurations with same _id field, members.{index}._id == {}",
                    member.id
                )));
            }
            if members.iter().any(|m: &Member| m.host == member.host) {
                return Err(invalid(format!(
                    "Found two member configurations with same host field, members.{index}.host == {}",
                    member.host
                )));
            }
            members.push(member);
        }
        if members.is_empty() {
            return Err(invalid("Replica set configuration must have at least one member"));
        }
        let term = previous.map_or(0, |p| p.term);
        let shown = format!("{{version: {version}, term: {term}}}");
        let Some(own) = members.iter().position(|m| is_self(&m.host)) else {
            return Err(Error::new(
                ErrorCode::NodeNotFound,
                format!(
                    "No host described in new configuration with {shown} for replica set {set_name} maps to this node"
                ),
            ));
        };
        if members.len() > 1 {
            // A real member would ask the others to join; this server has no way to reach or
            // replicate to them, so it answers as mongod does when they do not respond.
            let others: Vec<&str> =
                members.iter().enumerate().filter(|(i, _)| *i != own).map(|(_, m)| m.host.as_str()).collect();
            return Err(Error::new(
                ErrorCode::NodeNotFound,
                format!(
                    "replSetInitiate quorum check failed because not all proposed set members responded affirmatively: {} failed with Monarch runs a single-member replica set and does not replicate to other members",
                    others.join(", ")
                ),
            ));
        }
        let member = members.remove(own);
        if member.arbiter || member.hidden || member.votes == 0 || member.priority <= 0.0 {
            return Err(invalid(
                "Replica set configuration must contain at least one non-arbiter member with priority > 0",
            ));
        }
        if let Some(previous) = previous
            && previous.config.member_id != member.id
            && previous.config.host == member.host
        {
            return Err(Error::new(
                ErrorCode::NewReplicaSetConfigurationIncompatible,
                format!(
                    "New and old configurations both have members with host of {} but in the new configuration the _id field is {} and in the old configuration it is {} for replica set {set_name}",
                    member.host, member.id, previous.config.member_id
                ),
            ));
        }
        let replica_set_id = previous
            .and_then(|p| p.config.document.get_document("settings").ok()?.get_object_id("replicaSetId").ok())
            .unwrap_or_default(); // A new id (`ObjectId::default` is `new`).
        let document = doc! {
            "_id": set_name,
            "version": version,
            "members": [member.document],
            "protocolVersion": Bson::Int64(1),
            "writeConcernMajorityJournalDefault": majority_journal,
            "settings": settings(given_settings, replica_set_id),
        };
        Ok(Self { document, version, host: member.host, member_id: member.id })
    }

    /// The document `replSetGetConfig` shows and `local.system.replset` holds, with `term`.
    pub fn to_document(&self, term: i64) -> Document {
        let mut out = Document::new();
        for (key, value) in &self.document {
            out.insert(key.clone(), value.clone());
            if key == "version" {
                out.insert("term", Bson::Int64(term));
            }
        }
        out
    }

    /// Reads back a stored document (written by [`SetConfig::to_document`]) and its term.
    pub fn from_stored(stored: &Document) -> Option<(Self, i64)> {
        let version = stored.get_i32("version").ok()?;
        let term = stored.get_i64("term").unwrap_or(0);
        let member = stored.get_array("members").ok()?.first()?.as_document()?;
        let host = member.get_str("host").ok()?.to_owned();
        let member_id = member.get_i32("_id").ok()?;
        let mut document = stored.clone();
        document.remove("term");
        Some((Self { document, version, host, member_id }, term))
    }

    /// The set's name.
    pub fn name(&self) -> &str {
        self.document.get_str("_id").unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(document: Document) -> bson::RawDocumentBuf {
        bson::RawDocumentBuf::try_from(&document).unwrap_or_default()
    }

    fn code(result: Result<SetConfig>) -> Option<i32> {
        result.err().map(|e| e.code().code())
    }

    #[test]
    fn set_config_completes_a_single_member_with_defaults() {
        let given = raw(doc! { "_id": "rs0", "version": 1, "members": [{ "_id": 0, "host": "db.example" }] });
        let parsed = SetConfig::parse(&given, "rs0", None, &|host| host == "db.example:27017");
        let config = parsed.ok();
        assert_eq!(config.as_ref().map(|c| c.host.as_str()), Some("db.example:27017"));
        let shown = config.map(|c| c.to_document(1)).unwrap_or_default();
        assert_eq!(shown.get_i64("term").ok(), Some(1));
        let member = shown.get_array("members").ok().and_then(|m| m.first()).and_then(Bson::as_document).cloned();
        assert_eq!(member.as_ref().and_then(|m| m.get_f64("priority").ok()), Some(1.0));
        assert_eq!(member.as_ref().and_then(|m| m.get_i32("votes").ok()), Some(1));
        assert!(shown.get_document("settings").and_then(|s| s.get_object_id("replicaSetId")).is_ok());
        let (back, term) = SetConfig::from_stored(&shown).unwrap_or_else(|| (SetConfig::default_for("x", "y:1"), 0));
        assert_eq!((back.name(), back.version, term), ("rs0", 1, 1));
    }

    #[test]
    fn set_config_refuses_what_one_node_cannot_be() {
        let me = |host: &str| host == "me:27017";
        let check = |d: Document| code(SetConfig::parse(&raw(d), "rs0", None, &me));
        assert_eq!(check(doc! { "_id": "other", "version": 1, "members": [{ "_id": 0, "host": "me" }] }), Some(93));
        assert_eq!(check(doc! { "_id": "rs0", "version": 1, "members": [{ "_id": 0, "host": "you" }] }), Some(74));
        let two =
            doc! { "_id": "rs0", "version": 1, "members": [{ "_id": 0, "host": "me" }, { "_id": 1, "host": "you" }] };
        assert_eq!(check(two), Some(74));
        let arbiter = doc! { "_id": "rs0", "version": 1, "members": [{ "_id": 0, "host": "me", "arbiterOnly": true }] };
        assert_eq!(check(arbiter), Some(93));
        assert_eq!(check(doc! { "_id": "rs0", "version": 1, "members": [] }), Some(93));
        assert_eq!(check(doc! { "_id": "rs0", "members": [{ "_id": 0, "host": "me" }] }), None, "version 1 by default");
        assert_eq!(check(doc! { "_id": "rs0", "version": 1 }), Some(40414));
        assert_eq!(
            check(doc! { "_id": "rs0", "version": 1, "members": [{ "_id": 0, "host": "me" }], "x": 1 }),
            Some(40415)
        );
        assert_eq!(check(doc! { "_id": "rs0", "version": "1", "members": [{ "_id": 0, "host": "me" }] }), Some(14));
        assert_eq!(
            check(doc! { "_id": "rs0", "version": 1, "members": [{ "_id": 0, "host": "me", "votes": 2 }] }),
            Some(93)
        );
    }

    #[test]
    fn set_config_reconfig_needs_a_higher_version_and_keeps_the_set_id() {
        let me = |host: &str| host == "me:27017";
        let first = SetConfig::default_for("rs0", "me:27017");
        let previous = Some(Previous { config: &first, term: 3 });
        let same = raw(doc! { "_id": "rs0", "version": 1, "members": [{ "_id": 0, "host": "me" }] });
        assert_eq!(code(SetConfig::parse(&same, "rs0", previous, &me)), Some(103));
        let unversioned = raw(doc! { "_id": "rs0", "members": [{ "_id": 0, "host": "me" }] });
        assert_eq!(code(SetConfig::parse(&unversioned, "rs0", previous, &me)), Some(40414));
        let next = raw(
            doc! { "_id": "rs0", "version": 2, "members": [{ "_id": 0, "host": "me:27017", "tags": { "dc": "a" } }] },
        );
        let second = SetConfig::parse(&next, "rs0", previous, &me).ok();
        let id = |c: &SetConfig| {
            c.to_document(3).get_document("settings").and_then(|s| s.get_object_id("replicaSetId")).ok()
        };
        assert_eq!(second.as_ref().and_then(id), id(&first));
        assert_eq!(second.map(|c| c.version), Some(2));
        let renumbered = raw(doc! { "_id": "rs0", "version": 3, "members": [{ "_id": 1, "host": "me" }] });
        assert_eq!(code(SetConfig::parse(&renumbered, "rs0", previous, &me)), Some(103));
    }

    #[test]
    fn set_config_hosts_take_the_default_port() {
        assert_eq!(normalize_host("db"), Some(("db".to_owned(), 27017)));
        assert_eq!(normalize_host("db:27018"), Some(("db".to_owned(), 27018)));
        assert_eq!(normalize_host("[::1]:27018"), Some(("[::1]".to_owned(), 27018)));
        assert_eq!(normalize_host(":27018"), None);
        assert_eq!(normalize_host("db:x"), None);
    }
}
