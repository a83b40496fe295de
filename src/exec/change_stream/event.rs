//! Change events from oplog entries, as mongod's change stream transform makes them: which
//! entries a stream's scope sees, and the event each one becomes (`insert`, `update` with its
//! `updateDescription`, `replace`, `delete`, `drop`, `rename`, `dropDatabase`, `invalidate`,
//! and, with `showExpandedEvents`, `create`, `createIndexes`, `dropIndexes` and `modify`).
//! Pure: what needs storage (looked-up documents, pre- and post-images) is added by the
//! stream.

use bson::{Bson, DateTime, Document, RawDocument, Timestamp, doc};

use super::token::ResumeToken;

/// What a change stream watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One collection (`db.coll.watch()`): invalidated by its drop or rename.
    Collection {
        /// Its database.
        db: String,
        /// Its name.
        coll: String,
    },
    /// Every collection of a database (`db.watch()`): invalidated by `dropDatabase`.
    Database(String),
    /// Every database but `admin`, `config` and `local` (`client.watch()`).
    Cluster,
}

impl Scope {
    /// Whether changes to `db.coll` are this stream's.
    fn sees(&self, db: &str, coll: &str) -> bool {
        match self {
            Self::Collection { db: own_db, coll: own } => own_db == db && own == coll,
            Self::Database(own_db) => own_db == db && !coll.starts_with("system."),
            Self::Cluster => !matches!(db, "admin" | "config" | "local") && !coll.starts_with("system."),
        }
    }

    /// Whether commands on database `db` may concern this stream.
    fn sees_database(&self, db: &str) -> bool {
        match self {
            Self::Collection { db: own, .. } | Self::Database(own) => own == db,
            Self::Cluster => !matches!(db, "admin" | "config" | "local"),
        }
    }
}

/// The kind of change an event reports, with what the stream looks up for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `insert`: the entry holds the document.
    Insert,
    /// `update`: the stream may look up the document now, or its post-image.
    Update,
    /// `replace`: the entry holds the new document.
    Replace,
    /// `delete`.
    Delete,
    /// Any other event (commands, `invalidate`).
    Other,
}

/// One change event, before lookups and the stream's own stages.
#[derive(Debug, Clone)]
pub struct Event {
    /// Its position (the event's `_id`).
    pub token: ResumeToken,
    /// The event as mongod shapes it.
    pub document: Document,
    /// What it reports.
    pub kind: Kind,
    /// `(db, coll)` of the changed document, for lookups.
    pub ns: Option<(String, String)>,
    /// The changed document's `_id`.
    pub id: Option<Bson>,
    /// Whether the stream ends after it (an `invalidate`).
    pub ends_stream: bool,
}

/// What one entry holds, read once.
struct Entry<'a> {
    op: &'a str,
    ns: &'a str,
    o: Document,
    o2: Option<Document>,
    ts: Timestamp,
    wall: DateTime,
    ui: Option<Bson>,
    lsid: Option<Document>,
    txn_number: Option<i64>,
}

impl<'a> Entry<'a> {
    fn read(raw: &'a RawDocument) -> Option<Self> {
        let document = |key: &str| raw.get_document(key).ok().and_then(|d| Document::try_from(d).ok());
        Some(Self {
            op: raw.get_str("op").ok()?,
            ns: raw.get_str("ns").ok()?,
            o: document("o")?,
            o2: document("o2"),
            ts: raw.get_timestamp("ts").ok()?,
            wall: raw.get_datetime("wall").ok().unwrap_or(DateTime::from_millis(0)),
            ui: raw.get("ui").ok().flatten().and_then(|ui| Bson::try_from(ui).ok()),
            lsid: document("lsid"),
            txn_number: raw.get_i64("txnNumber").ok(),
        })
    }
}

/// The events the oplog entry `raw` makes for a stream over `scope` (none for entries it does
/// not see); `expanded` is `showExpandedEvents`.
pub fn events(raw: &RawDocument, scope: &Scope, expanded: bool) -> Vec<Event> {
    let Some(entry) = Entry::read(raw) else { return Vec::new() };
    if entry.op == "c"
        && let Ok(ops) = raw.get_document("o").and_then(|o| o.get_array("applyOps"))
    {
        return transaction_events(&entry, ops, scope, expanded);
    }
    let Some((db, coll)) = entry.ns.split_once('.') else { return Vec::new() };
    match entry.op {
        "i" | "u" | "d" if scope.sees(db, coll) => data_event(&entry, db, coll, expanded, 0).into_iter().collect(),
        "c" if coll == "$cmd" && scope.sees_database(db) => command_events(&entry, db, scope, expanded, 0),
        _ => Vec::new(),
    }
}

/// The events of a transaction's `applyOps` entry: one per change the scope sees, each with
/// its index in the entry, all carrying the transaction's `lsid` and `txnNumber`.
fn transaction_events(outer: &Entry<'_>, ops: &bson::RawArray, scope: &Scope, expanded: bool) -> Vec<Event> {
    let mut events = Vec::new();
    for (index, op) in ops.into_iter().enumerate() {
        let Some(op) = op.ok().and_then(|op| op.as_document()) else { continue };
        let document = |key: &str| op.get_document(key).ok().and_then(|d| Document::try_from(d).ok());
        let (Ok(kind), Ok(ns), Some(o)) = (op.get_str("op"), op.get_str("ns"), document("o")) else { continue };
        let inner = Entry {
            op: kind,
            ns,
            o,
            o2: document("o2"),
            ts: outer.ts,
            wall: outer.wall,
            ui: op.get("ui").ok().flatten().and_then(|ui| Bson::try_from(ui).ok()),
            lsid: outer.lsid.clone(),
            txn_number: outer.txn_number,
        };
        let Some((db, coll)) = ns.split_once('.') else { continue };
        let op_index = u32::try_from(index).unwrap_or(u32::MAX - 1);
        if matches!(kind, "i" | "u" | "d") && scope.sees(db, coll) {
            events.extend(data_event(&inner, db, coll, expanded, op_index));
        } else if kind == "c" && coll == "$cmd" && scope.sees_database(db) {
            // The collections and indexes the transaction created (expanded events).
            // A transaction's DDL events carry its session too, as its data events do.
            let mut ddl = command_events(&inner, db, scope, expanded, op_index);
            for event in &mut ddl {
                add_session(&mut event.document, &inner);
            }
            events.extend(ddl);
        }
    }
    events
}

/// The head every event starts with.
fn head(token: ResumeToken, operation: &str, entry: &Entry<'_>) -> Document {
    doc! {
        "_id": token.to_document(),
        "operationType": operation,
        "clusterTime": entry.ts,
        "wallTime": entry.wall,
    }
}

fn namespace(db: &str, coll: &str) -> Document {
    doc! { "db": db, "coll": coll }
}

/// Adds the transaction fields of an entry written by a session.
fn add_session(document: &mut Document, entry: &Entry<'_>) {
    if let (Some(lsid), Some(txn)) = (&entry.lsid, entry.txn_number) {
        document.insert("lsid", lsid.clone());
        document.insert("txnNumber", txn);
    }
}

fn data_event(entry: &Entry<'_>, db: &str, coll: &str, expanded: bool, op_index: u32) -> Option<Event> {
    let token = ResumeToken::event(entry.ts, op_index);
    let is_diff = entry.o.get_i32("$v").ok() == Some(2) && entry.o.contains_key("diff");
    let (kind, operation) = match entry.op {
        "i" => (Kind::Insert, "insert"),
        "u" if is_diff => (Kind::Update, "update"),
        "u" => (Kind::Replace, "replace"),
        _ => (Kind::Delete, "delete"),
    };
    let key = match kind {
        Kind::Delete => entry.o.clone(),
        _ => entry.o2.clone().unwrap_or_else(|| doc! { "_id": entry.o.get("_id").cloned().unwrap_or(Bson::Null) }),
    };
    let mut document = head(token, operation, entry);
    if expanded && let Some(ui) = &entry.ui {
        document.insert("collectionUUID", ui.clone());
    }
    if matches!(kind, Kind::Insert | Kind::Replace) {
        document.insert("fullDocument", entry.o.clone());
    }
    document.insert("ns", namespace(db, coll));
    document.insert("documentKey", key.clone());
    if kind == Kind::Update {
        let diff = entry.o.get_document("diff").cloned().unwrap_or_default();
        document.insert("updateDescription", update_description(&diff, expanded));
    }
    add_session(&mut document, entry);
    Some(Event {
        token,
        document,
        kind,
        ns: Some((db.to_owned(), coll.to_owned())),
        id: key.get("_id").cloned(),
        ends_stream: false,
    })
}

/// The events of a command entry on `db`.
fn command_events(entry: &Entry<'_>, db: &str, scope: &Scope, expanded: bool, op_index: u32) -> Vec<Event> {
    let Some((command, argument)) = entry.o.iter().next() else { return Vec::new() };
    let token = ResumeToken::event(entry.ts, op_index);
    let other =
        |document: Document| Event { token, document, kind: Kind::Other, ns: None, id: None, ends_stream: false };
    let invalidate = || {
        let token = ResumeToken { from_invalidate: true, ..token };
        let document = head(token, "invalidate", entry);
        Event { token, document, kind: Kind::Other, ns: None, id: None, ends_stream: true }
    };
    let coll = argument.as_str().unwrap_or_default();
    let with_uuid = |mut document: Document| {
        if expanded && let Some(ui) = &entry.ui {
            document.insert("collectionUUID", ui.clone());
        }
        document
    };
    let described = |operation: &str, description: Document| {
        let mut document = with_uuid(head(token, operation, entry));
        document.insert("ns", namespace(db, coll));
        document.insert("operationDescription", description);
        other(document)
    };
    let without_command = || {
        let mut rest = entry.o.clone();
        rest.remove(command);
        rest
    };
    match command.as_str() {
        "drop" if scope.sees(db, coll) => {
            let mut document = with_uuid(head(token, "drop", entry));
            document.insert("ns", namespace(db, coll));
            let mut events = vec![other(document)];
            if matches!(scope, Scope::Collection { .. }) {
                events.push(invalidate());
            }
            events
        }
        "renameCollection" => {
            let from = coll.split_once('.').unwrap_or_default();
            let to = entry.o.get_str("to").ok().and_then(|to| to.split_once('.')).unwrap_or_default();
            if !scope.sees(from.0, from.1) {
                return Vec::new();
            }
            let mut document = with_uuid(head(token, "rename", entry));
            document.insert("ns", namespace(from.0, from.1));
            document.insert("to", namespace(to.0, to.1));
            if expanded {
                let mut description = doc! { "to": namespace(to.0, to.1) };
                if let Some(dropped @ Bson::Binary(_)) = entry.o.get("dropTarget") {
                    description.insert("dropTarget", dropped.clone());
                }
                document.insert("operationDescription", description);
            }
            let mut events = vec![other(document)];
            if matches!(scope, Scope::Collection { .. }) {
                events.push(invalidate());
            }
            events
        }
        "dropDatabase" => match scope {
            Scope::Collection { .. } => Vec::new(),
            Scope::Database(_) | Scope::Cluster => {
                let mut document = head(token, "dropDatabase", entry);
                document.insert("ns", doc! { "db": db });
                let mut events = vec![other(document)];
                if matches!(scope, Scope::Database(_)) {
                    events.push(invalidate());
                }
                events
            }
        },
        "create" if expanded && scope.sees(db, coll) => vec![described("create", without_command())],
        "createIndexes" if expanded && scope.sees(db, coll) => {
            vec![described("createIndexes", doc! { "indexes": [without_command()] })]
        }
        "dropIndexes" if expanded && scope.sees(db, coll) => {
            let spec = entry
                .o2
                .clone()
                .unwrap_or_else(|| doc! { "name": entry.o.get("index").cloned().unwrap_or(Bson::Null) });
            vec![described("dropIndexes", doc! { "indexes": [spec] })]
        }
        "collMod" if expanded && scope.sees(db, coll) => vec![described("modify", without_command())],
        _ => Vec::new(),
    }
}

/// `updateDescription` from a `$v: 2` diff: the fields set or added (dotted paths), the
/// fields removed, the arrays truncated and, with `expanded`, `disambiguatedPaths` (each path
/// with an array index or a numeric field name, as its list of components).
pub fn update_description(diff: &Document, expanded: bool) -> Document {
    let mut updated = Document::new();
    let mut removed = Vec::new();
    let mut truncated = Vec::new();
    let mut ambiguous = Document::new();
    walk(
        diff,
        &mut Vec::new(),
        &mut Paths {
            updated: &mut updated,
            removed: &mut removed,
            truncated: &mut truncated,
            ambiguous: &mut ambiguous,
        },
    );
    let mut description = doc! {
        "updatedFields": updated,
        "removedFields": removed,
        "truncatedArrays": truncated,
    };
    if expanded {
        description.insert("disambiguatedPaths", ambiguous);
    }
    description
}

struct Paths<'a> {
    updated: &'a mut Document,
    removed: &'a mut Vec<Bson>,
    truncated: &'a mut Vec<Bson>,
    ambiguous: &'a mut Document,
}

/// A path component: a field name, or an array index.
#[derive(Clone)]
enum Step {
    Field(String),
    Index(usize),
}

impl Paths<'_> {
    fn dotted(path: &[Step]) -> String {
        path.iter()
            .map(|step| match step {
                Step::Field(name) => name.clone(),
                Step::Index(index) => index.to_string(),
            })
            .collect::<Vec<_>>()
            .join(".")
    }

    /// Records in `disambiguatedPaths` a path that a dotted string reads two ways: one with
    /// an array index, or a field name that is a number or contains a dot.
    fn note(&mut self, path: &[Step]) {
        let ambiguous = path.iter().any(|step| match step {
            Step::Index(_) => true,
            Step::Field(name) => name.contains('.') || name.parse::<u64>().is_ok(),
        });
        if ambiguous {
            let steps: Vec<Bson> = path
                .iter()
                .map(|step| match step {
                    Step::Field(name) => Bson::String(name.clone()),
                    Step::Index(index) => Bson::Int32(i32::try_from(*index).unwrap_or(i32::MAX)),
                })
                .collect();
            self.ambiguous.insert(Self::dotted(path), steps);
        }
    }
}

/// Walks a document diff below `path`.
fn walk(diff: &Document, path: &mut Vec<Step>, paths: &mut Paths<'_>) {
    for (key, value) in diff {
        match (key.as_str(), value) {
            ("u" | "i", Bson::Document(fields)) => {
                for (field, value) in fields {
                    path.push(Step::Field(field.clone()));
                    paths.note(path);
                    paths.updated.insert(Paths::dotted(path), value.clone());
                    path.pop();
                }
            }
            ("d", Bson::Document(fields)) => {
                for (field, _) in fields {
                    path.push(Step::Field(field.clone()));
                    paths.note(path);
                    paths.removed.push(Bson::String(Paths::dotted(path)));
                    path.pop();
                }
            }
            (nested, Bson::Document(inner)) if nested.starts_with('s') => {
                path.push(Step::Field(nested.get(1..).unwrap_or_default().to_owned()));
                if inner.get_bool("a").unwrap_or(false) {
                    walk_array(inner, path, paths);
                } else {
                    walk(inner, path, paths);
                }
                path.pop();
            }
            _ => {}
        }
    }
}

/// Walks an array diff at `path`.
fn walk_array(diff: &Document, path: &mut Vec<Step>, paths: &mut Paths<'_>) {
    if let Some(length) = diff.get("l").and_then(|l| l.as_i32().map(i64::from).or(l.as_i64())) {
        paths.note(path);
        let length = i32::try_from(length).unwrap_or(i32::MAX);
        paths.truncated.push(Bson::Document(doc! { "field": Paths::dotted(path), "newSize": length }));
    }
    for (key, value) in diff {
        let Some(index) = key.get(1..).and_then(|i| i.parse::<usize>().ok()) else { continue };
        path.push(Step::Index(index));
        match (key.as_bytes().first(), value) {
            (Some(b'u'), value) => {
                paths.note(path);
                paths.updated.insert(Paths::dotted(path), value.clone());
            }
            (Some(b's'), Bson::Document(inner)) if inner.get_bool("a").unwrap_or(false) => {
                walk_array(inner, path, paths)
            }
            (Some(b's'), Bson::Document(inner)) => walk(inner, path, paths),
            _ => {}
        }
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_update_description_from_a_diff() {
        let diff = doc! {
            "d": { "gone": false },
            "u": { "a": 2 },
            "i": { "b": { "c": 1 } },
            "sxs": { "a": true, "l": 2, "u1": 9, "s0": { "u": { "k": 1 } } },
        };
        assert_eq!(
            update_description(&diff, false),
            doc! {
                "updatedFields": { "a": 2, "b": { "c": 1 }, "xs.1": 9, "xs.0.k": 1 },
                "removedFields": ["gone"],
                "truncatedArrays": [{ "field": "xs", "newSize": 2 }],
            }
        );
        let expanded = update_description(&diff, true);
        assert_eq!(
            expanded.get_document("disambiguatedPaths").ok(),
            Some(&doc! { "xs.1": ["xs", 1], "xs.0.k": ["xs", 0, "k"] })
        );
    }

    #[test]
    fn event_scope_sees_its_own_namespaces() {
        let collection = Scope::Collection { db: "app".into(), coll: "c".into() };
        assert!(collection.sees("app", "c") && !collection.sees("app", "d"));
        let database = Scope::Database("app".into());
        assert!(database.sees("app", "d") && !database.sees("app", "system.views") && !database.sees("x", "c"));
        assert!(
            Scope::Cluster.sees("x", "c") && !Scope::Cluster.sees("config", "c") && !Scope::Cluster.sees("local", "c")
        );
    }
}
