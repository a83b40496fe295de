//! The fuzz targets' committed inputs, replayed on the stable toolchain: every seed under
//! `fuzz/seeds/<target>/` and every crash input under `fuzz/regressions/<target>/` runs through
//! the same body as `cargo fuzz run <target>` (`monarch::fuzzing`), so a crash once found stays
//! fixed under `cargo test`. Also the seed generator, run by hand (`--ignored`).

use std::path::{Path, PathBuf};

use bson::{Bson, Document, RawDocumentBuf, doc};
use monarch::fuzzing::{self, Harness};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir`, sorted (none when it does not exist).
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

#[test]
fn fuzz_replay_every_seed_and_regression() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
    let harness = Harness::open(dir.path()).unwrap_or_else(|e| panic!("harness: {e}"));
    let mut replayed = 0;
    for target in fuzzing::TARGETS {
        let seeds = inputs(&fuzz_dir().join("seeds").join(target));
        assert!(!seeds.is_empty(), "no seeds for {target}: run the generator (fuzz/README.md)");
        for path in seeds.iter().chain(&inputs(&fuzz_dir().join("regressions").join(target))) {
            let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(fuzzing::run(target, &data, &harness), "unknown target {target}");
            replayed += 1;
        }
    }
    assert!(replayed > 0);
}

/// Writes the seed corpora under `fuzz/seeds/` (each directory emptied first):
/// `cargo test --test fuzz_replay -- --ignored fuzz_write_seeds`.
#[test]
#[ignore = "writes fuzz/seeds; run by hand when the seeds change"]
fn fuzz_write_seeds() {
    let seeds = fuzz_dir().join("seeds");
    let write = |target: &str, inputs: Vec<Vec<u8>>| {
        let dir = seeds.join(target);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for (i, input) in inputs.iter().enumerate() {
            let path = dir.join(format!("{i:03}"));
            std::fs::write(&path, input).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    };
    let handshakes = handshakes();
    write("wire_stream", wire_stream_seeds(&handshakes));
    write("wire_compressed", wire_compressed_seeds(&handshakes));
    let docs = sample_documents();
    write("filter", with_documents(&filters(), &docs));
    write("projection", with_documents(&projections(), &docs));
    write("update", with_documents(&updates(), &docs));
    write("sort", with_documents(&sorts(), &docs));
    write(
        "pipeline",
        with_documents(&pipelines().iter().map(|stages| array_document(stages)).collect::<Vec<_>>(), &docs),
    );
    write("keys", key_documents().iter().map(bytes).collect());
    write("command", commands());
}

fn bytes(doc: &Document) -> Vec<u8> {
    RawDocumentBuf::try_from(doc).unwrap_or_else(|e| panic!("seed {doc}: {e}")).into_bytes()
}

/// An array of stages as the document the pipeline target reads (keys `0`, `1`, ...).
fn array_document(stages: &[Document]) -> Document {
    stages.iter().enumerate().map(|(i, stage)| (i.to_string(), Bson::Document(stage.clone()))).collect()
}

/// Each spec followed by one of the documents (in turn), as the query targets read them.
fn with_documents(specs: &[Document], docs: &[Document]) -> Vec<Vec<u8>> {
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let mut input = bytes(spec);
            if let Some(doc) = docs.get(i % docs.len().max(1)) {
                input.extend(bytes(doc));
            }
            input
        })
        .collect()
}

/// The drivers' captured handshakes (`wire/tests/fixtures`).
fn handshakes() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("wire/tests/fixtures");
    inputs(&dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .map(|p| std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

fn wire_stream_seeds(handshakes: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for (i, frame) in handshakes.iter().enumerate() {
        let split = u8::try_from(i).unwrap_or(0).wrapping_mul(37);
        seeds.push([&[split], frame.as_slice()].concat());
        // Two messages back to back, as a pipelining client sends them.
        seeds.push([&[split ^ 0x55], frame.as_slice(), frame.as_slice()].concat());
    }
    seeds
}

/// Each handshake's body (after its 16-byte header) under each compressor, with its op code.
fn wire_compressed_seeds(handshakes: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for frame in handshakes {
        let Some(Ok(op)) = frame.get(12..16).map(<[u8; 4]>::try_from) else { continue };
        let op_selector = match i32::from_le_bytes(op) {
            2013 => 0,
            2004 => 1,
            _ => 2,
        };
        let body = frame.get(16..).unwrap_or_default();
        for compressor in 0..4u8 {
            seeds.push([&[compressor, 7 * compressor + 1, op_selector, 0], body].concat());
        }
    }
    seeds
}

/// Documents of the shapes the test suites use: nested, arrays of documents, every type.
fn sample_documents() -> Vec<Document> {
    vec![
        doc! { "_id": 1, "a": 1, "b": "x", "tags": ["red", "blue"] },
        doc! { "_id": 2, "a": { "b": [{ "c": 1 }, { "c": 2, "d": [1, 2, 3] }] }, "n": Bson::Null },
        doc! { "_id": 3, "qty": 25_i64, "price": 1.5, "item": { "name": "ab", "code": "123" }, "size": { "h": 14, "w": 21.0, "uom": "cm" } },
        doc! { "_id": "s", "scores": [[1, 2], [3]], "when": bson::DateTime::from_millis(0), "flag": false },
        doc! { "_id": 5, "loc": { "type": "Point", "coordinates": [1.0, 2.0] }, "text": "hello world" },
    ]
}

fn filters() -> Vec<Document> {
    vec![
        doc! { "a": 1 },
        doc! { "a": { "$gt": 0, "$lte": 10 } },
        doc! { "tags": { "$in": ["red", "green"] } },
        doc! { "tags": { "$all": ["red", "blue"] }, "b": { "$ne": "y" } },
        doc! { "a.b": { "$elemMatch": { "c": { "$gte": 2 } } } },
        doc! { "$or": [{ "a": 1 }, { "b": { "$exists": false } }] },
        doc! { "$and": [{ "a": { "$type": "number" } }, { "$nor": [{ "b": "z" }] }] },
        doc! { "b": { "$regex": "^x", "$options": "i" } },
        doc! { "qty": { "$mod": [5, 0] }, "price": { "$not": { "$gt": 2 } } },
        doc! { "$expr": { "$gt": ["$qty", { "$multiply": ["$price", 10] }] } },
        doc! { "tags": { "$size": 2 } },
        doc! { "a": { "$bitsAllSet": [0] } },
        doc! { "$jsonSchema": { "required": ["a"], "properties": { "a": { "bsonType": "int", "minimum": 0 } } } },
        doc! { "loc": { "$geoWithin": { "$centerSphere": [[1.0, 2.0], 0.1] } } },
        doc! { "n": Bson::Null, "scores.0.1": 2 },
        doc! { "_id": { "$in": [1, "s", 3.0] } },
        doc! { "$comment": "x", "a": { "$eq": [1] } },
    ]
}

fn projections() -> Vec<Document> {
    vec![
        doc! { "a": 1, "_id": 0 },
        doc! { "a": 0, "tags": 0 },
        doc! { "a.b.c": 1 },
        doc! { "tags": { "$slice": -1 } },
        doc! { "tags": { "$slice": [1, 1] }, "b": 1 },
        doc! { "a.b": { "$elemMatch": { "c": 2 } } },
        doc! { "total": { "$add": ["$qty", 1] }, "item.name": 1 },
        doc! { "size": { "h": 1, "uom": 1 } },
        doc! { "x": { "$literal": 5 }, "y": "$b" },
    ]
}

fn updates() -> Vec<Document> {
    vec![
        doc! { "$set": { "a": 2, "x.y": [1] } },
        doc! { "$inc": { "qty": 5, "n": 1.5 }, "$unset": { "b": "" } },
        doc! { "$push": { "tags": { "$each": ["c", "a"], "$sort": 1, "$slice": 3 } } },
        doc! { "$addToSet": { "tags": "red" }, "$pull": { "scores": { "$in": [[3]] } } },
        doc! { "$rename": { "b": "c" }, "$min": { "a": 0 }, "$max": { "qty": 100 } },
        doc! { "$mul": { "price": 2 }, "$currentDate": { "when": true }, "$setOnInsert": { "new": 1 } },
        doc! { "$pop": { "tags": -1 }, "$bit": { "a": { "and": 1 } } },
        doc! { "$set": { "a.b.$[el].c": 9 } },
        doc! { "b": "replacement", "z": [1, 2] },
        doc! { "0": { "$set": { "total": { "$add": ["$qty", 1] } } }, "1": { "$unset": "b" } },
        doc! { "0": { "$replaceWith": { "$mergeObjects": ["$$ROOT", { "m": 1 }] } } },
    ]
}

fn sorts() -> Vec<Document> {
    vec![
        doc! { "a": 1 },
        doc! { "a": -1, "_id": 1 },
        doc! { "a.b.c": 1, "tags": -1 },
        doc! { "scores": 1 },
        doc! { "$natural": 1 },
        doc! { "score": { "$meta": "textScore" } },
        doc! { "n": -1, "b": 1, "when": 1 },
    ]
}

fn pipelines() -> Vec<Vec<Document>> {
    vec![
        vec![doc! { "$match": { "a": { "$gte": 1 } } }, doc! { "$project": { "a": 1 } }],
        vec![
            doc! { "$group": { "_id": "$b", "n": { "$sum": 1 }, "avg": { "$avg": "$qty" } } },
            doc! { "$sort": { "n": -1 } },
        ],
        vec![doc! { "$unwind": { "path": "$tags", "includeArrayIndex": "i" } }, doc! { "$limit": 3 }],
        vec![doc! { "$addFields": { "t": { "$concat": ["$b", "-"] } } }, doc! { "$skip": 1 }],
        vec![doc! { "$bucket": { "groupBy": "$qty", "boundaries": [0, 10, 100], "default": "other" } }],
        vec![doc! { "$facet": { "x": [{ "$count": "c" }], "y": [{ "$sortByCount": "$b" }] } }],
        vec![doc! { "$replaceRoot": { "newRoot": { "$ifNull": ["$item", { "none": true }] } } }],
        vec![doc! { "$setWindowFields": { "sortBy": { "_id": 1 }, "output": { "r": { "$rank": {} } } } }],
        vec![doc! { "$lookup": { "from": "other", "localField": "a", "foreignField": "a", "as": "j" } }],
        vec![doc! { "$densify": { "field": "a", "range": { "step": 1, "bounds": "full" } } }],
        vec![doc! { "$redact": { "$cond": [{ "$eq": ["$a", 1] }, "$$PRUNE", "$$DESCEND"] } }],
        vec![doc! { "$sample": { "size": 2 } }, doc! { "$unset": ["a"] }],
        vec![doc! { "$bucketAuto": { "groupBy": "$_id", "buckets": 2 } }],
        vec![doc! { "$fill": { "output": { "a": { "value": 0 } } } }],
        vec![
            doc! { "$project": { "d": { "$dateToString": { "date": "$when", "format": "%Y-%m-%d" } }, "s": { "$split": ["$text", " "] } } },
        ],
    ]
}

/// Documents whose values the keys target compares pairwise: equal numbers across types,
/// numbers at the edges, and one value of every type.
fn key_documents() -> Vec<Document> {
    use bson::{Binary, Decimal128, Regex, Timestamp, oid::ObjectId, spec::BinarySubtype};
    let dec = |s: &str| Bson::Decimal128(s.parse::<Decimal128>().unwrap_or_else(|e| panic!("{s}: {e}")));
    vec![
        doc! { "a": 1, "b": 1_i64, "c": 1.0, "d": dec("1.00"), "e": dec("1.000000000000000000000000000000001") },
        doc! { "a": f64::NAN, "b": f64::INFINITY, "c": f64::NEG_INFINITY, "d": -0.0, "e": 0, "f": dec("-0E+300") },
        doc! { "a": i64::MAX, "b": 9_223_372_036_854_775_807.0, "c": i64::MIN, "d": 5e-324, "e": dec("1E-6176") },
        doc! { "a": "ab", "b": "a\u{0}b", "c": "a", "d": Bson::Symbol("ab".to_owned()), "e": "" },
        doc! { "a": { "x": 1 }, "b": { "x": 1.0 }, "c": { "y": 1 }, "d": {}, "e": [1, 2], "f": [[1]], "g": [] },
        doc! {
            "a": Bson::MinKey, "b": Bson::MaxKey, "c": Bson::Null, "d": Bson::Undefined,
            "e": Binary { subtype: BinarySubtype::Generic, bytes: vec![1, 2] },
            "f": ObjectId::from_bytes([1; 12]), "g": true, "h": bson::DateTime::from_millis(-1),
        },
        doc! {
            "a": Timestamp { time: 1, increment: 2 },
            "b": Regex {
                pattern: "a+".try_into().unwrap_or_else(|e| panic!("pattern: {e}")),
                options: "i".try_into().unwrap_or_else(|e| panic!("options: {e}")),
            },
            "c": Bson::JavaScriptCode("f()".to_owned()),
            "d": Bson::JavaScriptCodeWithScope(bson::JavaScriptCodeWithScope { code: "g".to_owned(), scope: doc! { "x": 1 } }),
            "e": Binary { subtype: BinarySubtype::BinaryOld, bytes: vec![2, 0, 0, 0, 9, 9] },
        },
    ]
}

/// For every command of the table, `{<name>: 1}` and a body with the arguments the test suites
/// pass it; the selector byte is the command's row.
fn commands() -> Vec<Vec<u8>> {
    let typical = |name: &str| -> Option<Document> {
        Some(match name {
            "insert" => doc! { "insert": "c", "documents": [{ "_id": 1, "a": 1 }, { "a": [1, 2] }], "ordered": false },
            "find" => {
                doc! { "find": "c", "filter": { "a": { "$gt": 0 } }, "sort": { "a": -1 }, "projection": { "a": 1 }, "limit": 5, "batchSize": 2 }
            }
            "update" => {
                doc! { "update": "c", "updates": [{ "q": { "a": 1 }, "u": { "$inc": { "a": 1 } }, "upsert": true, "multi": true }] }
            }
            "delete" => doc! { "delete": "c", "deletes": [{ "q": { "a": 2 }, "limit": 1 }] },
            "findAndModify" => {
                doc! { "findAndModify": "c", "query": { "a": 1 }, "update": { "$set": { "b": 1 } }, "new": true, "upsert": true }
            }
            "aggregate" => {
                doc! { "aggregate": "c", "pipeline": [{ "$match": {} }, { "$group": { "_id": "$a", "n": { "$sum": 1 } } }], "cursor": {} }
            }
            "count" => doc! { "count": "c", "query": { "a": 1 }, "limit": 10 },
            "distinct" => doc! { "distinct": "c", "key": "a", "query": {} },
            "createIndexes" => {
                doc! { "createIndexes": "c", "indexes": [{ "key": { "a": 1, "b": -1 }, "name": "a_1_b_-1", "unique": false }] }
            }
            "dropIndexes" => doc! { "dropIndexes": "c", "index": "*" },
            "create" => doc! { "create": "capped", "capped": true, "size": 4096, "max": 10 },
            "collMod" => {
                doc! { "collMod": "c", "validator": { "a": { "$type": "number" } }, "validationLevel": "moderate" }
            }
            "renameCollection" => {
                doc! { "renameCollection": "fuzz.c", "to": "fuzz.d", "dropTarget": true, "$db": "admin" }
            }
            "explain" => doc! { "explain": { "find": "c", "filter": { "a": 1 } }, "verbosity": "executionStats" },
            "getMore" => doc! { "getMore": 1_i64, "collection": "c", "batchSize": 1 },
            "killCursors" => doc! { "killCursors": "c", "cursors": [1_i64] },
            "createUser" => {
                doc! { "createUser": "u", "pwd": "p", "roles": ["readWrite"], "mechanisms": ["SCRAM-SHA-256"] }
            }
            "createRole" => {
                doc! { "createRole": "r", "privileges": [{ "resource": { "db": "fuzz", "collection": "" }, "actions": ["find"] }], "roles": [] }
            }
            "saslStart" => {
                doc! { "saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": Bson::Binary(bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: b"n,,n=u,r=abc".to_vec() }) }
            }
            "hello" | "isMaster" => {
                doc! { "hello": 1, "client": { "application": { "name": "fuzz" }, "driver": { "name": "d", "version": "1" }, "os": { "type": "Linux" } }, "compression": ["zstd", "snappy"] }
            }
            "validate" => doc! { "validate": "c", "full": true },
            "cloneCollectionAsCapped" => doc! { "cloneCollectionAsCapped": "c", "toCollection": "cc", "size": 100_000 },
            "convertToCapped" => doc! { "convertToCapped": "d", "size": 100_000 },
            "listCollections" => doc! { "listCollections": 1, "filter": { "name": "c" }, "nameOnly": true },
            "currentOp" => doc! { "currentOp": 1, "$all": true, "$db": "admin" },
            "profile" => doc! { "profile": 0, "slowms": 50 },
            "startSession" | "endSessions" => {
                doc! { "endSessions": [{ "id": bson::Binary { subtype: bson::spec::BinarySubtype::Uuid, bytes: vec![1; 16] } }] }
            }
            "commitTransaction" | "abortTransaction" => doc! {
                "abortTransaction": 1, "lsid": { "id": bson::Binary { subtype: bson::spec::BinarySubtype::Uuid, bytes: vec![2; 16] } },
                "txnNumber": 1_i64, "autocommit": false, "$db": "admin",
            },
            _ => return None,
        })
    };
    let mut seeds = Vec::new();
    for (row, spec) in monarch::cmd::COMMANDS.iter().enumerate() {
        let selector = [u8::try_from(row).unwrap_or_else(|_| panic!("more than 256 commands: change the selector"))];
        seeds.push([&selector[..], &bytes(&doc! { spec.name: 1 })].concat());
        if let Some(body) = typical(spec.name) {
            seeds.push([&selector[..], &bytes(&body)].concat());
        }
    }
    seeds
}
