//! The crash loop (issue 18, point 2). Each cycle runs concurrent writers (inserts, updates of
//! indexed fields and deletes, half with `j: true` and half with `w: 1`) on a collection with
//! unique, compound and multikey indexes, while a DDL task builds and drops indexes (one
//! collection is large enough for a build to take a while), creates and fills collections and
//! drops them (their data is then deleted in the background); the server is killed with SIGKILL
//! at a random moment and restarted on the same data directory. Then every promise is checked:
//! - every write acknowledged with `j: true`, and every write acknowledged before a journaled
//!   one was sent (the journal is one ordered log), is there, and no document is half-applied
//!   (each version of a document writes the version into several fields and indexed fields at
//!   once, so a torn write shows);
//! - `validate` with `full: true` finds every collection valid and every index consistent;
//! - `count` (the stored total), `collStats`' count and a full scan agree, and an index-backed
//!   count agrees with a collection scan;
//! - dropped collections stay dropped, and a collection created after the restart is empty
//!   (a dropped collection's data never reappears);
//! - an index build either committed (listed, consistent) or left nothing;
//! - the `w: 1` writes lost were all acknowledged within the journal's flush interval (plus a
//!   scheduling margin) before the kill. fjall writes each committed batch to the operating
//!   system before the acknowledgement, so a SIGKILL loses none (the interval bounds what a
//!   host crash loses, which this loop does not simulate); the check guards that.
//!
//! `crash_loop_short` runs a few cycles in every `cargo test`; `crash_loop_long` (ignored) runs
//! `MONARCH_CRASH_CYCLES` cycles (default 100), on a new data directory every
//! `MONARCH_CRASH_EPOCH` cycles (default 10). Every run prints its seed; `MONARCH_CRASH_SEED`
//! replays one. `cargo test --release --test crash_loop -- --ignored` runs a release server.

#![expect(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a harness: a failed step or a broken promise must fail the test loudly"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use common::TestServer;
use mongodb::bson::{Bson, Document, doc};
use mongodb::{Client, Database};

const DB: &str = "crashloop";
/// The collection the writers write.
const ITEMS: &str = "items";
/// A collection written once, whose indexes are built and dropped while the writers run.
const BIG: &str = "big";
const BIG_DOCS: i64 = 4_000;
/// Documents a DDL task's fill puts in a new collection (so its drop leaves work behind).
const FILL_DOCS: i64 = 3_000;
const WRITERS: usize = 4;
/// The indexes the writers' collection always has: unique, compound, multikey.
const ITEM_INDEXES: [(&str, &str); 3] = [("u_1", "u"), ("g_1_n_1", "g"), ("tags_1", "tags")];
/// The index the DDL task builds and drops on the writers' collection.
const ITEM_TOGGLED: &str = "v2_1";
/// The indexes the DDL task builds and drops on [`BIG`].
const BIG_TOGGLED: [&str; 4] = ["a_1", "b_1_a_-1", "c_1", "d_1"];
/// How much later than the flush interval a lost `w: 1` write may have been acknowledged: the
/// flush is a timer on a busy runtime, and its sync may queue behind a group commit's.
const LOSS_MARGIN: Duration = Duration::from_millis(400);

/// A seeded generator (SplitMix64): a failing run reproduces from its printed seed.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn fork(&mut self) -> Self {
        Self(self.next())
    }
}

/// Version `v` of document `id` of [`ITEMS`]: the version sits in `v`, `v2` and `n` (which
/// updates `$inc`), and decides the indexed `u` (unique), `g` and `tags` (multikey).
fn item(id: i64, v: i64) -> Document {
    let mut doc = doc! { "_id": id };
    doc.extend(item_fields(id, v));
    doc.insert("n", v);
    doc
}

/// The fields an update to version `v` sets (all but `n`, which it increments).
fn item_fields(id: i64, v: i64) -> Document {
    doc! {
        "v": v,
        "v2": v,
        "u": id * 1_000_000 + v,
        "g": v % 7,
        "tags": [v % 5, v % 3 + 10],
        "pad": "p".repeat(usize::try_from((id + v) % 8 * 40).unwrap_or(0)),
    }
}

/// The version of a stored document of [`ITEMS`], or why it is not a whole version.
fn item_version(doc: &Document) -> Result<(i64, i64), String> {
    let id = doc.get_i64("_id").map_err(|e| format!("{doc}: _id {e}"))?;
    let v = doc.get_i64("v").map_err(|e| format!("{doc}: v {e}"))?;
    let mut whole = item(id, v);
    // Field order is insert order ($set and $inc keep it): compare as sets of fields.
    let mut stored = doc.clone();
    for key in ["_id", "v", "v2", "u", "g", "tags", "pad", "n"] {
        if stored.remove(key) != whole.remove(key) {
            return Err(format!("half-applied document (field {key}): {doc}"));
        }
    }
    if !stored.is_empty() {
        return Err(format!("unexpected fields in {doc}"));
    }
    Ok((id, v))
}

fn big_doc(i: i64) -> Document {
    doc! { "_id": i, "a": i % 100, "b": format!("s{}", i % 37), "c": [i % 10, i % 7 + 100], "d": i }
}

fn big_index_spec(name: &str) -> Document {
    let key = match name {
        "a_1" => doc! { "a": 1 },
        "b_1_a_-1" => doc! { "b": 1, "a": -1 },
        "c_1" => doc! { "c": 1 },
        _ => doc! { "d": 1 },
    };
    let mut spec = doc! { "key": key, "name": name };
    if name == "d_1" {
        spec.insert("unique", true);
    }
    spec
}

fn item_index_spec(name: &str) -> Document {
    match name {
        "u_1" => doc! { "key": { "u": 1 }, "name": name, "unique": true },
        "g_1_n_1" => doc! { "key": { "g": 1, "n": 1 }, "name": name },
        "tags_1" => doc! { "key": { "tags": 1 }, "name": name },
        _ => doc! { "key": { "v2": 1 }, "name": name },
    }
}

fn concern(journaled: bool) -> Document {
    if journaled {
        doc! { "w": 1, "j": true }
    } else {
        doc! { "w": 1 }
    }
}

/// A client that gives up quickly once the server is gone and never retries a write (a retry
/// would blur which attempt was acknowledged).
async fn connect(server: &TestServer) -> Client {
    let uri = format!(
        "mongodb://127.0.0.1:{}/?serverSelectionTimeoutMS=2000&retryWrites=false&retryReads=false&maxPoolSize=16",
        server.port
    );
    Client::with_uri_str(uri).await.expect("client")
}

/// Checks a write reply: `ok`, no write error, `n` (and `nModified` for updates) as expected.
fn check_write(reply: &Document, n: i64, modified: Option<i64>) -> Result<(), String> {
    let count = |key: &str| reply.get(key).and_then(Bson::as_i64_lossy);
    if reply.get("writeErrors").is_some() || reply.get("writeConcernError").is_some() {
        return Err(format!("write error: {reply}"));
    }
    if count("n") != Some(n) || modified.is_some_and(|m| count("nModified") != Some(m)) {
        return Err(format!("unexpected reply: {reply}"));
    }
    Ok(())
}

trait LossyInt {
    fn as_i64_lossy(&self) -> Option<i64>;
}

impl LossyInt for Bson {
    fn as_i64_lossy(&self) -> Option<i64> {
        match self {
            Bson::Int32(n) => Some(i64::from(*n)),
            Bson::Int64(n) => Some(*n),
            Bson::Double(n) => Some(*n as i64),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Change {
    Insert,
    /// An update to this version.
    Update(i64),
    Delete,
}

/// One write a writer sent.
#[derive(Debug, Clone)]
struct Op {
    id: i64,
    change: Change,
    journaled: bool,
    sent: Instant,
    /// When the acknowledgement arrived (none: failed, or cut by the crash).
    acked: Option<Instant>,
}

#[derive(Debug, Default)]
struct WriterLog {
    ops: Vec<Op>,
    /// The error that stopped the writer, and when.
    error: Option<(Instant, String)>,
}

/// Runs one writer on its share of the documents until `stop`, or until a write fails.
async fn writer(
    db: Database,
    mut rng: Rng,
    mut live: Vec<(i64, i64)>,
    (next_id, journaled_percent): (Arc<AtomicI64>, u64),
    stop: Arc<AtomicBool>,
) -> WriterLog {
    let mut log = WriterLog::default();
    while !stop.load(Ordering::Relaxed) {
        let journaled = rng.chance(journaled_percent);
        let roll = rng.below(100);
        let (id, change, command, modified) = if live.is_empty() || roll < 35 || (live.len() < 40 && roll < 60) {
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            live.push((id, 0));
            let command = doc! { "insert": ITEMS, "documents": [item(id, 0)], "writeConcern": concern(journaled) };
            (id, Change::Insert, command, None)
        } else if roll < 85 || live.len() < 20 {
            let at = usize::try_from(rng.below(live.len() as u64)).unwrap_or(0);
            let (id, v) = live[at];
            live[at].1 = v + 1;
            let update = doc! { "$set": item_fields(id, v + 1), "$inc": { "n": 1_i64 } };
            let command = doc! {
                "update": ITEMS,
                "updates": [{ "q": { "_id": id }, "u": update }],
                "writeConcern": concern(journaled),
            };
            (id, Change::Update(v + 1), command, Some(1))
        } else {
            let at = usize::try_from(rng.below(live.len() as u64)).unwrap_or(0);
            let (id, _) = live.swap_remove(at);
            let command = doc! {
                "delete": ITEMS,
                "deletes": [{ "q": { "_id": id }, "limit": 1 }],
                "writeConcern": concern(journaled),
            };
            (id, Change::Delete, command, None)
        };
        let sent = Instant::now();
        let outcome = match db.run_command(command).await {
            Ok(reply) => check_write(&reply, 1, modified),
            Err(error) => Err(error.to_string()),
        };
        let acked = outcome.is_ok().then(Instant::now);
        log.ops.push(Op { id, change, journaled, sent, acked });
        if let Err(error) = outcome {
            log.error = Some((Instant::now(), error));
            break;
        }
    }
    log
}

/// A catalog change the DDL task made.
#[derive(Debug, Clone, PartialEq)]
enum Ddl {
    CreateCollection(String),
    /// `FILL_DOCS` documents inserted in one journaled command.
    Fill(String),
    DropCollection(String),
    CreateIndex(String, String),
    DropIndex(String, String),
}

#[derive(Debug, Clone)]
struct DdlOp {
    ddl: Ddl,
    sent: Instant,
    acked: Option<Instant>,
}

#[derive(Debug, Default)]
struct DdlLog {
    ops: Vec<DdlOp>,
    error: Option<(Instant, String)>,
}

/// What the test knows is stored, as of the last check.
#[derive(Debug, Default, Clone)]
struct Model {
    /// The live documents of [`ITEMS`]: id and version.
    items: BTreeMap<i64, i64>,
    /// The next `_id` for [`ITEMS`] (ids are never reused).
    next_id: i64,
    /// The filled collections and their document counts.
    fills: BTreeMap<String, i64>,
    /// Secondary indexes per collection (the toggled ones and the fills' `k_1`).
    indexes: BTreeMap<String, BTreeSet<String>>,
    /// Collections dropped with an acknowledgement: they must never come back.
    gone: BTreeSet<String>,
}

/// Runs catalog changes until `stop`, or until one fails.
async fn ddl_task(db: Database, mut rng: Rng, model: Model, cycle: usize, stop: Arc<AtomicBool>) -> DdlLog {
    let mut log = DdlLog::default();
    let mut fills: Vec<String> = model.fills.keys().cloned().collect();
    let mut indexes = model.indexes.clone();
    let mut made = 0;
    while !stop.load(Ordering::Relaxed) {
        let mut steps: Vec<(Ddl, Document)> = Vec::new();
        let roll = rng.below(100);
        if roll < 25 && fills.len() < 3 {
            let name = format!("fill_{cycle}_{made}");
            made += 1;
            fills.push(name.clone());
            let docs: Vec<Document> =
                (0..FILL_DOCS).map(|i| doc! { "_id": i, "f": &name, "k": i % 13, "ks": [i % 3, i % 5] }).collect();
            steps.push((Ddl::CreateCollection(name.clone()), doc! { "create": &name, "writeConcern": concern(true) }));
            steps.push((
                Ddl::CreateIndex(name.clone(), "k_1".to_owned()),
                doc! {
                    "createIndexes": &name,
                    "indexes": [{ "key": { "k": 1 }, "name": "k_1" }, { "key": { "ks": 1 }, "name": "ks_1" }],
                    "writeConcern": concern(true),
                },
            ));
            steps.push((
                Ddl::Fill(name.clone()),
                doc! { "insert": &name, "documents": docs, "writeConcern": concern(true) },
            ));
        } else if roll < 45 && !fills.is_empty() {
            let at = usize::try_from(rng.below(fills.len() as u64)).unwrap_or(0);
            let name = fills.swap_remove(at);
            steps.push((Ddl::DropCollection(name.clone()), doc! { "drop": &name, "writeConcern": concern(true) }));
        } else {
            let (collection, name) = if rng.chance(20) {
                (ITEMS, ITEM_TOGGLED)
            } else {
                (BIG, BIG_TOGGLED[usize::try_from(rng.below(BIG_TOGGLED.len() as u64)).unwrap_or(0)])
            };
            let present = indexes.entry(collection.to_owned()).or_default();
            if present.remove(name) {
                steps.push((
                    Ddl::DropIndex(collection.to_owned(), name.to_owned()),
                    doc! { "dropIndexes": collection, "index": name, "writeConcern": concern(true) },
                ));
            } else {
                present.insert(name.to_owned());
                let spec = if collection == ITEMS { item_index_spec(name) } else { big_index_spec(name) };
                steps.push((
                    Ddl::CreateIndex(collection.to_owned(), name.to_owned()),
                    doc! { "createIndexes": collection, "indexes": [spec], "writeConcern": concern(true) },
                ));
            }
        }
        for (ddl, command) in steps {
            let sent = Instant::now();
            let reply = if let Ddl::DropCollection(name) = &ddl {
                // An index drop races the collection's drop: whichever way it goes, the
                // collection must stay dropped.
                let racer = doc! { "dropIndexes": name, "index": "ks_1", "writeConcern": concern(true) };
                let (reply, raced) = tokio::join!(db.run_command(command), db.run_command(racer));
                let raced_ack = raced.is_ok().then(Instant::now);
                log.ops.push(DdlOp { ddl: Ddl::DropIndex(name.clone(), "ks_1".to_owned()), sent, acked: raced_ack });
                reply
            } else {
                db.run_command(command).await
            };
            let outcome = match reply {
                Ok(reply) if matches!(ddl, Ddl::Fill(_)) => check_write(&reply, FILL_DOCS, None),
                Ok(_) => Ok(()),
                Err(error) => Err(error.to_string()),
            };
            let acked = outcome.is_ok().then(Instant::now);
            log.ops.push(DdlOp { ddl, sent, acked });
            if let Err(error) = outcome {
                log.error = Some((Instant::now(), error));
                return log;
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.below(30))).await;
    }
    log
}

/// Totals over a run.
#[derive(Debug, Default)]
struct Tally {
    cycles: usize,
    journaled_acked: u64,
    /// Acknowledged writes that had to survive although not journaled themselves (acknowledged
    /// before a journaled write was sent).
    covered_acked: u64,
    unjournaled_acked: u64,
    unjournaled_lost: u64,
    ddl_acked: u64,
    /// The longest time between a lost write's acknowledgement and the kill.
    longest_loss: Duration,
    /// The longest restart (process start to accepting connections).
    longest_restart: Duration,
    /// Cycles whose kill came while a drop's background deletion could still run, or an index
    /// build or fill was in flight.
    killed_in_ddl: u64,
}

/// The whole scan of a collection.
async fn scan(db: &Database, name: &str) -> Vec<Document> {
    let mut cursor = db.collection::<Document>(name).find(doc! {}).await.expect("find");
    let mut docs = Vec::new();
    while cursor.advance().await.expect("getMore") {
        docs.push(cursor.deserialize_current().expect("document"));
    }
    docs
}

fn number(reply: &Document, key: &str) -> Option<i64> {
    reply.get(key).and_then(Bson::as_i64_lossy)
}

/// Checks one collection's validate report and counts against a scan; returns the scan.
async fn check_collection(db: &Database, name: &str, context: &str) -> Vec<Document> {
    let docs = scan(db, name).await;
    let real = docs.len() as i64;
    let report = db.run_command(doc! { "validate": name, "full": true }).await.expect("validate");
    assert_eq!(report.get_bool("valid").ok(), Some(true), "{context}: validate {name}: {report}");
    assert_eq!(report.get_array("errors").map(Vec::len).ok(), Some(0), "{context}: {name}: {report}");
    assert_eq!(report.get_array("warnings").map(Vec::len).ok(), Some(0), "{context}: {name}: {report}");
    let details = report.get_document("indexDetails").expect("indexDetails");
    for (index, detail) in details {
        let valid = detail.as_document().and_then(|d| d.get_bool("valid").ok());
        assert_eq!(valid, Some(true), "{context}: {name}.{index}: {report}");
    }
    assert_eq!(number(&report, "nrecords"), Some(real), "{context}: {name}: {report}");
    let count = db.run_command(doc! { "count": name }).await.expect("count");
    assert_eq!(number(&count, "n"), Some(real), "{context}: stored count of {name}");
    let stats = db.run_command(doc! { "collStats": name }).await.expect("collStats");
    assert_eq!(number(&stats, "count"), Some(real), "{context}: collStats count of {name}");
    docs
}

/// The secondary index names of a collection.
async fn index_names(db: &Database, name: &str) -> BTreeSet<String> {
    let listed = db.run_command(doc! { "listIndexes": name }).await.expect("listIndexes");
    let batch = listed.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("firstBatch");
    batch
        .iter()
        .filter_map(Bson::as_document)
        .filter_map(|spec| spec.get_str("name").ok())
        .filter(|n| *n != "_id_")
        .map(str::to_owned)
        .collect()
}

/// Counts `query` through index `hint` and through a collection scan: they must agree.
async fn check_index_agrees(db: &Database, collection: &str, hint: &str, query: Document, context: &str) {
    let through = |hint: Bson| {
        let query = query.clone();
        async move {
            let reply = db
                .run_command(doc! { "count": collection, "query": query, "hint": hint })
                .await
                .expect("count with a hint");
            number(&reply, "n")
        }
    };
    let by_index = through(Bson::String(hint.to_owned())).await;
    let by_scan = through(Bson::Document(doc! { "$natural": 1 })).await;
    assert_eq!(by_index, by_scan, "{context}: {collection} {query} through {hint}");
}

/// Whether something exists after a cycle's `ops` on it: `Some` when known, `None` when an
/// unacknowledged op could have gone either way. `before` is what the model knew.
fn fold_existence<'a>(before: bool, ops: impl Iterator<Item = (&'a DdlOp, bool)>) -> Option<bool> {
    let mut state = Some(before);
    for (op, effect) in ops {
        state = if op.acked.is_some() || state == Some(effect) { Some(effect) } else { None };
    }
    state
}

/// Checks everything after a restart, updates the model to what is stored, and adds to the
/// tally.
#[expect(clippy::too_many_lines, reason = "one check per promise, in order")]
async fn verify(
    server: &TestServer,
    model: &mut Model,
    writers: Vec<WriterLog>,
    ddl: DdlLog,
    killed: Instant,
    tally: &mut Tally,
    context: &str,
) {
    // Errors before the kill are failures of the server, not of the crash.
    for (at, error) in writers.iter().filter_map(|w| w.error.as_ref()).chain(ddl.error.as_ref()) {
        assert!(*at >= killed, "{context}: a write failed before the kill: {error}");
    }
    let client = connect(server).await;
    let db = client.database(DB);

    // Every acknowledged journaled write, and every write acknowledged before one of them was
    // sent, must be there.
    let cut = writers
        .iter()
        .flat_map(|w| w.ops.iter().filter(|op| op.journaled && op.acked.is_some()).map(|op| op.sent))
        .chain(ddl.ops.iter().filter(|op| op.acked.is_some()).map(|op| op.sent))
        .max();
    let required = |op: &Op| op.acked.is_some_and(|acked| op.journaled || cut.is_some_and(|cut| acked < cut));

    // The collections.
    let listed: BTreeSet<String> = db.list_collection_names().await.expect("listCollections").into_iter().collect();
    for name in &model.gone {
        assert!(!listed.contains(name), "{context}: dropped collection {name} is back");
    }
    let mut fill_names: BTreeSet<String> = model.fills.keys().cloned().collect();
    for op in &ddl.ops {
        if let Ddl::CreateCollection(name) = &op.ddl {
            fill_names.insert(name.clone());
        }
    }
    let mut expected: BTreeSet<String> = [ITEMS.to_owned(), BIG.to_owned()].into();
    let mut fills = BTreeMap::new();
    for name in &fill_names {
        let ops_on = |op: &DdlOp| match &op.ddl {
            Ddl::CreateCollection(n) | Ddl::Fill(n) | Ddl::CreateIndex(n, _) => (n == name).then_some(true),
            Ddl::DropCollection(n) => (n == name).then_some(false),
            Ddl::DropIndex(..) => None,
        };
        let exists = fold_existence(
            model.fills.contains_key(name),
            ddl.ops.iter().filter_map(|op| ops_on(op).map(|effect| (op, effect))),
        );
        let present = listed.contains(name);
        if let Some(exists) = exists {
            assert_eq!(present, exists, "{context}: collection {name}");
        }
        let dropped = ddl.ops.iter().any(|op| op.acked.is_some() && op.ddl == Ddl::DropCollection(name.clone()));
        if dropped {
            model.gone.insert(name.clone());
        }
        if present {
            expected.insert(name.clone());
            let docs = check_collection(&db, name, context).await;
            let count = docs.len() as i64;
            let filled_now = ddl.ops.iter().find(|op| op.ddl == Ddl::Fill(name.clone()));
            match (model.fills.get(name), filled_now) {
                (Some(before), _) => assert_eq!(count, *before, "{context}: documents of {name}"),
                (None, Some(op)) if op.acked.is_some() => assert_eq!(count, FILL_DOCS, "{context}: {name}"),
                (None, Some(_)) => assert!(count <= FILL_DOCS, "{context}: {name} has {count}"),
                (None, None) => assert_eq!(count, 0, "{context}: {name} was never filled"),
            }
            for doc in &docs {
                let i = doc.get_i64("_id").unwrap_or(-1);
                assert_eq!(doc, &doc! { "_id": i, "f": name, "k": i % 13, "ks": [i % 3, i % 5] }, "{context}");
            }
            fills.insert(name.clone(), count);
        }
    }
    assert_eq!(listed, expected, "{context}: the collections");
    model.fills = fills;

    // Index builds and drops: committed (listed and consistent) or absent.
    let mut collections: Vec<String> = vec![ITEMS.to_owned(), BIG.to_owned()];
    collections.extend(model.fills.keys().cloned());
    let mut indexes = BTreeMap::new();
    for collection in &collections {
        let names = index_names(&db, collection).await;
        let before = model.indexes.get(collection).cloned().unwrap_or_default();
        let mut candidates: BTreeSet<String> = before.clone();
        candidates.extend(names.iter().cloned());
        for op in &ddl.ops {
            if let Ddl::CreateIndex(c, n) | Ddl::DropIndex(c, n) = &op.ddl
                && c == collection
            {
                candidates.insert(n.clone());
            }
        }
        for name in &candidates {
            // A fill's `k_1` and `ks_1` are created by one command (logged as `k_1`).
            let ops = ddl.ops.iter().filter_map(|op| match &op.ddl {
                Ddl::CreateIndex(c, n) if c == collection && (n == name || (n == "k_1" && name == "ks_1")) => {
                    Some((op, true))
                }
                Ddl::DropIndex(c, n) if c == collection && n == name => Some((op, false)),
                _ => None,
            });
            let exists = fold_existence(before.contains(name), ops);
            if let Some(exists) = exists {
                assert_eq!(names.contains(name), exists, "{context}: index {collection}.{name}: listed {names:?}");
            }
        }
        if collection == ITEMS {
            for (name, _) in ITEM_INDEXES {
                assert!(names.contains(name), "{context}: {ITEMS} lost index {name}");
            }
        }
        indexes.insert(collection.clone(), names);
    }

    // The writers' collection: every required write there and whole, nothing half-applied.
    let docs = check_collection(&db, ITEMS, context).await;
    let mut stored = BTreeMap::new();
    for doc in &docs {
        match item_version(doc) {
            Ok((id, v)) => {
                stored.insert(id, v);
            }
            Err(problem) => panic!("{context}: {problem}"),
        }
    }
    let mut by_doc: BTreeMap<i64, Vec<&Op>> = BTreeMap::new();
    for op in writers.iter().flat_map(|w| w.ops.iter()) {
        by_doc.entry(op.id).or_default().push(op);
    }
    let mut after: BTreeMap<i64, i64> = model.items.clone();
    for (id, ops) in &by_doc {
        // The states the document went through: before this cycle, then after each op.
        let mut states = vec![model.items.get(id).copied()];
        for op in ops {
            states.push(match op.change {
                Change::Insert => Some(0),
                Change::Update(v) => Some(v),
                Change::Delete => None,
            });
        }
        let at_least = ops.iter().rposition(|op| required(op)).map_or(0, |i| i + 1);
        let observed = stored.get(id).copied();
        // The latest state it matches: what was lost is what came after.
        let Some(reached) = (at_least..states.len()).rev().find(|&p| states[p] == observed) else {
            panic!(
                "{context}: document {id} is {observed:?}; the ops since the last check were {ops:?} \
                 (at least the first {at_least} had to survive)"
            );
        };
        for op in ops {
            if op.journaled && op.acked.is_some() {
                tally.journaled_acked += 1;
            } else if op.acked.is_some() {
                tally.unjournaled_acked += 1;
                if required(op) {
                    tally.covered_acked += 1;
                }
            }
        }
        for op in ops.iter().skip(reached) {
            if let Some(acked) = op.acked {
                assert!(!op.journaled, "{context}: lost journaled write {op:?}");
                tally.unjournaled_lost += 1;
                let window = killed.saturating_duration_since(acked);
                tally.longest_loss = tally.longest_loss.max(window);
                assert!(
                    window <= monarch::storage::FLUSH_INTERVAL + LOSS_MARGIN,
                    "{context}: lost a w:1 write acknowledged {window:?} before the kill: {op:?}"
                );
            }
        }
        match observed {
            Some(v) => after.insert(*id, v),
            None => after.remove(id),
        };
    }
    for (id, v) in &model.items {
        if !by_doc.contains_key(id) {
            assert_eq!(stored.get(id), Some(v), "{context}: untouched document {id}");
        }
    }
    assert_eq!(stored, after, "{context}: the documents of {ITEMS}");
    model.items = after;

    // Index scans agree with collection scans.
    for t in [0_i64, 3, 10, 12] {
        check_index_agrees(&db, ITEMS, "tags_1", doc! { "tags": t }, context).await;
    }
    check_index_agrees(&db, ITEMS, "g_1_n_1", doc! { "g": 3, "n": { "$gte": 1 } }, context).await;
    check_index_agrees(&db, ITEMS, "u_1", doc! { "u": { "$gte": 0 } }, context).await;
    let big = check_collection(&db, BIG, context).await;
    assert_eq!(big.len() as i64, BIG_DOCS, "{context}: {BIG}");
    for name in indexes.get(BIG).into_iter().flatten() {
        let query = match name.as_str() {
            "a_1" => doc! { "a": { "$lt": 10 } },
            "b_1_a_-1" => doc! { "b": "s5" },
            "c_1" => doc! { "c": 101 },
            _ => doc! { "d": { "$gte": 100 } },
        };
        check_index_agrees(&db, BIG, name, query, context).await;
    }
    model.indexes = indexes;
    tally.ddl_acked += ddl.ops.iter().filter(|op| op.acked.is_some()).count() as u64;

    // A collection created now gets a fresh id: it must be empty, whatever dropped data is
    // still being deleted.
    let probe = format!("probe_{}", context.replace(' ', "_"));
    db.run_command(doc! { "create": &probe, "writeConcern": concern(true) }).await.expect("create probe");
    assert_eq!(scan(&db, &probe).await.len(), 0, "{context}: a new collection has documents");
    let count = db.run_command(doc! { "count": &probe }).await.expect("count");
    assert_eq!(number(&count, "n"), Some(0), "{context}: a new collection's count");
    db.run_command(doc! { "drop": &probe, "writeConcern": concern(true) }).await.expect("drop probe");
    model.gone.insert(probe);

    // The restart and everything since logged no error (a failed recovery of dropped data, a
    // panic).
    for line in server.log_lines() {
        assert!(!line.contains("\"s\":\"E\"") && !line.contains("\"s\":\"F\""), "{context}: {line}");
    }
}

/// Creates the collections and indexes every cycle works on.
async fn set_up(server: &TestServer, model: &mut Model) {
    let client = connect(server).await;
    let db = client.database(DB);
    let specs: Vec<Document> = ITEM_INDEXES.iter().map(|(name, _)| item_index_spec(name)).collect();
    db.run_command(doc! { "createIndexes": ITEMS, "indexes": specs, "writeConcern": concern(true) })
        .await
        .expect("items indexes");
    let docs: Vec<Document> = (0..BIG_DOCS).map(big_doc).collect();
    let reply =
        db.run_command(doc! { "insert": BIG, "documents": docs, "writeConcern": concern(true) }).await.expect("big");
    check_write(&reply, BIG_DOCS, None).expect("big inserted");
    let mut items = Vec::new();
    for id in 0..200 {
        items.push(item(id, 0));
        model.items.insert(id, 0);
    }
    let reply = db
        .run_command(doc! { "insert": ITEMS, "documents": items, "writeConcern": concern(true) })
        .await
        .expect("items");
    check_write(&reply, 200, None).expect("items inserted");
    model.next_id = 200;
    model.indexes.insert(ITEMS.to_owned(), ITEM_INDEXES.iter().map(|(n, _)| (*n).to_owned()).collect());
    model.indexes.insert(BIG.to_owned(), BTreeSet::new());
}

/// Runs `cycles` crash cycles from `seed` and returns the tally.
async fn crash_loop(cycles: usize, seed: u64, epoch: usize) -> Tally {
    println!(
        "crash loop: seed {seed} (MONARCH_CRASH_SEED={seed} replays it), {cycles} cycles, a new data directory \
         every {epoch}"
    );
    let mut rng = Rng(seed);
    let mut model = Model::default();
    let mut tally = Tally::default();
    let mut server = TestServer::start(&[]);
    set_up(&server, &mut model).await;
    for cycle in 0..cycles {
        if cycle > 0 && cycle % epoch == 0 {
            // Recovery replays the journal written since the last memtable flush, so restarts
            // slow down as the directory grows (see the cycle lines): a new directory keeps a
            // debug build's restarts within the helper's start timeout.
            assert!(server.terminate().success(), "clean shutdown after cycle {cycle}");
            server = TestServer::start(&[]);
            model = Model::default();
            set_up(&server, &mut model).await;
        }
        let context = format!("cycle {cycle} (seed {seed})");
        let client = connect(&server).await;
        let db = client.database(DB);
        let stop = Arc::new(AtomicBool::new(false));
        let next_id = Arc::new(AtomicI64::new(model.next_id));
        let mut shares: Vec<Vec<(i64, i64)>> = vec![Vec::new(); WRITERS];
        for (id, v) in &model.items {
            shares[usize::try_from(*id).unwrap_or(0) % WRITERS].push((*id, *v));
        }
        // One cycle in four writes only with `w: 1` and changes no catalog: nothing syncs but
        // the background flush, so what a crash loses is the flush interval's worth.
        let unjournaled_only = rng.chance(25);
        let journaled_percent = if unjournaled_only { 0 } else { 50 };
        let writers: Vec<_> = shares
            .into_iter()
            .map(|share| {
                let ids = (next_id.clone(), journaled_percent);
                tokio::spawn(writer(db.clone(), rng.fork(), share, ids, stop.clone()))
            })
            .collect();
        let ddl = if unjournaled_only {
            tokio::spawn(async { DdlLog::default() })
        } else {
            tokio::spawn(ddl_task(db.clone(), rng.fork(), model.clone(), cycle, stop.clone()))
        };
        let delay = Duration::from_millis(100 + rng.below(1_400));
        tokio::time::sleep(delay).await;
        let killed = Instant::now();
        let dir = server.crash();
        stop.store(true, Ordering::Relaxed);
        let mut logs = Vec::new();
        for writer in writers {
            logs.push(writer.await.expect("writer"));
        }
        let ddl = ddl.await.expect("ddl task");
        drop(client);
        if ddl.ops.last().is_some_and(|op| op.acked.is_none()) {
            tally.killed_in_ddl += 1;
        }
        model.next_id = next_id.load(Ordering::Relaxed);
        let restarting = Instant::now();
        server = tokio::task::spawn_blocking(move || TestServer::start_in(dir, &[])).await.expect("restart");
        let restart = restarting.elapsed();
        let ops: usize = logs.iter().map(|log| log.ops.len()).sum();
        let last_ddl = ddl.ops.last().map(|op| (op.ddl.clone(), op.acked.is_some()));
        verify(&server, &mut model, logs, ddl, killed, &mut tally, &context).await;
        tally.cycles += 1;
        tally.longest_restart = tally.longest_restart.max(restart);
        println!(
            "cycle {cycle}: killed after {delay:?}, {ops} writes sent (w:1 only: {unjournaled_only}), last catalog change {last_ddl:?}, \
             restart {restart:?}, {} documents in {ITEMS}, engine {} KiB",
            model.items.len(),
            dir_kib(&server.dir.path().join("db")),
        );
    }
    tally
}

/// The size of a directory tree, in KiB.
fn dir_kib(path: &std::path::Path) -> u64 {
    let mut bytes = 0;
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(meta) if meta.is_dir() => pending.push(entry.path()),
                Ok(meta) => bytes += meta.len(),
                Err(_) => {}
            }
        }
    }
    bytes / 1024
}

fn seed() -> u64 {
    match std::env::var("MONARCH_CRASH_SEED") {
        Ok(seed) => seed.parse().expect("MONARCH_CRASH_SEED is a number"),
        Err(_) => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            u64::try_from(now.as_nanos() % u128::from(u64::MAX)).unwrap_or(1)
        }
    }
}

async fn run(cycles: usize) {
    let started = Instant::now();
    let epoch = std::env::var("MONARCH_CRASH_EPOCH").ok().and_then(|n| n.parse().ok()).unwrap_or(10_usize).max(1);
    let tally = crash_loop(cycles, seed(), epoch).await;
    println!(
        "crash loop summary: cycles {}, j:true writes verified {}, w:1 writes acknowledged {} \
         ({} of them had to survive: acknowledged before a journaled write was sent), w:1 lost {} \
         (longest acknowledgement-to-kill of a lost write {:?}, flush interval {:?}), catalog changes \
         acknowledged {}, kills during a catalog change {}, longest restart {:?}, time {:?}",
        tally.cycles,
        tally.journaled_acked,
        tally.unjournaled_acked,
        tally.covered_acked,
        tally.unjournaled_lost,
        tally.longest_loss,
        monarch::storage::FLUSH_INTERVAL,
        tally.ddl_acked,
        tally.killed_in_ddl,
        tally.longest_restart,
        started.elapsed(),
    );
    assert_eq!(tally.cycles, cycles);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_loop_short() {
    run(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: MONARCH_CRASH_CYCLES cycles (default 100)"]
async fn crash_loop_long() {
    let cycles = std::env::var("MONARCH_CRASH_CYCLES").ok().and_then(|n| n.parse().ok()).unwrap_or(100);
    run(cycles).await;
}
