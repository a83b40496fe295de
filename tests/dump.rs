//! mongodump's formats end to end (issue 19, point 7): `monarchd dump` writes a directory, a
//! gzipped directory, an archive and a gzipped archive that `monarchd restore` loads into
//! another server with the same collections, options, views, indexes and documents; dumps
//! built here byte by byte from mongodump's documented format restore (directory and
//! archive, with what real mongodump output carries: `ns` in index specs, `prelude.json`,
//! `system.*` files, interleaved archive segments); a damaged dump is refused, naming the
//! file and the offset, before anything is written.

#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::TestServer;
use common::tools::{collections, documents, every_type, indexes, path, run, stderr, tool};
use mongodb::Client;
use mongodb::bson::{Bson, Document, doc};

/// `server`'s URI without options, as the tools take it.
fn uri(server: &TestServer) -> String {
    let uri = server.uri("");
    uri.split('?').next().unwrap_or(&uri).trim_end_matches('/').to_owned()
}

/// Every document of `db.coll`, printed (field order and types show).
async fn printed(client: &Client, db: &str, coll: &str) -> Vec<String> {
    documents(client, db, coll).await.into_iter().map(|d| Bson::Document(d).to_string()).collect()
}

/// What a restore must give back of `db`: its collections and views with their options,
/// every collection's indexes and documents.
async fn contents(client: &Client, db: &str) -> Vec<String> {
    let mut seen = Vec::new();
    for entry in collections(client, db).await {
        let name = entry.get_str("name").expect("name").to_owned();
        seen.push(Bson::Document(entry.clone()).to_string());
        if entry.get_str("type").ok() == Some("collection") {
            seen.extend(indexes(client, db, &name).await.into_iter().map(|spec| spec.to_string()));
            seen.extend(printed(client, db, &name).await);
        }
    }
    seen
}

#[tokio::test]
async fn dump_and_restore_carry_collections_views_and_indexes_in_every_format() {
    let source = TestServer::start(&[]);
    let client = source.client("").await;
    let app = client.database("app");
    app.collection::<Document>("types").insert_one(every_type()).await.expect("insert");
    // More than one batch (1,000) and one archive segment.
    let people: Vec<Document> = (0..2500)
        .map(|i| doc! { "_id": i, "last": format!("l{}", i % 50), "first": format!("f{i}"), "age": i % 90 })
        .collect();
    app.collection::<Document>("people").insert_many(people).await.expect("insert");
    let compound = doc! { "key": { "last": 1, "first": -1 }, "name": "last_1_first_-1", "unique": true };
    run(&client, "app", doc! { "createIndexes": "people", "indexes": [compound] }).await;
    run(&client, "app", doc! { "create": "capped", "capped": true, "size": 65536_i64, "max": 100 }).await;
    app.collection::<Document>("capped").insert_one(doc! { "_id": 1 }).await.expect("insert");
    let pipeline = vec![doc! { "$match": { "age": { "$gte": 18 } } }];
    run(&client, "app", doc! { "create": "adults", "viewOn": "people", "pipeline": pipeline }).await;
    run(&client, "app", doc! { "create": "empty" }).await;
    client.database("other").collection::<Document>("things").insert_one(doc! { "_id": "x" }).await.expect("insert");
    let expected_app = contents(&client, "app").await;
    let expected_other = contents(&client, "other").await;

    let scratch = tempfile::tempdir().expect("temp dir");
    let at = |name: &str| scratch.path().join(name).to_str().expect("UTF-8").to_owned();
    let (directory, gzipped, archive, gzipped_archive) =
        (at("dump"), at("dumpgz"), at("a.archive"), at("a.archive.gz"));
    let variants: [(&str, Vec<String>, Vec<String>); 4] = [
        ("directory", vec!["--out".into(), directory.clone()], vec!["--dir".into(), directory.clone()]),
        (
            "gzipped directory",
            vec!["--out".into(), gzipped.clone(), "--gzip".into()],
            vec![gzipped.clone(), "--gzip".into()],
        ),
        ("archive", vec![format!("--archive={archive}")], vec![format!("--archive={archive}")]),
        (
            "gzipped archive",
            vec![format!("--archive={gzipped_archive}"), "--gzip".into()],
            vec![format!("--archive={gzipped_archive}"), "--gzip".into()],
        ),
    ];
    let source_uri = uri(&source);
    for (label, dump_options, restore_options) in &variants {
        let mut args = vec!["dump", "--uri", &source_uri];
        args.extend(dump_options.iter().map(String::as_str));
        let dumped = tool(&args);
        assert_eq!(dumped.status.code(), Some(0), "{label}: {}", stderr(&dumped));
        assert!(
            stderr(&dumped).contains("dumped 5 collections, 1 views, 2503 documents"),
            "{label}: {}",
            stderr(&dumped)
        );

        let target = TestServer::start(&[]);
        let target_uri = uri(&target);
        let mut args = vec!["restore", "--uri", &target_uri];
        args.extend(restore_options.iter().map(String::as_str));
        let restored = tool(&args);
        assert_eq!(restored.status.code(), Some(0), "{label}: {}", stderr(&restored));
        assert!(
            stderr(&restored).contains("2503 document(s) restored successfully. 0 document(s) failed to restore."),
            "{label}: {}",
            stderr(&restored)
        );
        let copy = target.client("").await;
        assert_eq!(contents(&copy, "app").await, expected_app, "{label}");
        assert_eq!(contents(&copy, "other").await, expected_other, "{label}");
    }

    // The files are mongodump's.
    let dump = Path::new(&directory);
    let metadata = std::fs::read_to_string(dump.join("app/people.metadata.json")).expect("metadata");
    assert!(
        metadata.contains("\"key\":{\"last\":{\"$numberInt\":\"1\"},\"first\":{\"$numberInt\":\"-1\"}}"),
        "{metadata}"
    );
    assert!(metadata.contains("\"collectionName\":\"people\",\"type\":\"collection\""), "{metadata}");
    let view = std::fs::read_to_string(dump.join("app/adults.metadata.json")).expect("view metadata");
    assert!(view.contains("\"viewOn\":\"people\"") && view.contains("\"type\":\"view\""), "{view}");
    assert!(!dump.join("app/adults.bson").exists());
    assert_eq!(std::fs::metadata(dump.join("app/empty.bson")).expect("empty.bson").len(), 0);
    assert!(Path::new(&gzipped).join("app/people.bson.gz").exists());
    assert_eq!(std::fs::read(&archive).expect("archive").get(..4), Some(&[0x6d, 0xe2, 0x99, 0x81][..]));
    assert_eq!(std::fs::read(&gzipped_archive).expect("archive").get(..2), Some(&[0x1f, 0x8b][..]));

    // Standard output to standard input, renamed and selected as mongorestore does.
    let target = TestServer::start(&[]);
    let dumped = Command::new(env!("CARGO_BIN_EXE_monarchd"))
        .args(["dump", "--uri", &uri(&source), "--db", "app", "--archive"])
        .output()
        .expect("dump");
    assert_eq!(dumped.status.code(), Some(0), "{}", stderr(&dumped));
    let mut restore = Command::new(env!("CARGO_BIN_EXE_monarchd"))
        .args(["restore", "--uri", &uri(&target), "--archive", "--nsInclude", "app.people"])
        .args(["--nsFrom", "app.$c$", "--nsTo", "copy.$c$"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("restore");
    restore.stdin.take().expect("stdin").write_all(&dumped.stdout).expect("write");
    let restored = restore.wait_with_output().expect("restore");
    assert_eq!(restored.status.code(), Some(0), "{}", stderr(&restored));
    let copy = target.client("").await;
    let names: Vec<String> =
        collections(&copy, "copy").await.iter().map(|c| c.get_str("name").expect("name").to_owned()).collect();
    assert_eq!(names, ["people"]);
    assert_eq!(printed(&copy, "copy", "people").await.len(), 2500);
    let specs = indexes(&copy, "copy", "people").await;
    assert_eq!(specs.get(1).and_then(Bson::as_document).and_then(|s| s.get_str("name").ok()), Some("last_1_first_-1"));
}

/// mongodump's `metadata.json` text for a collection, as mongodump 100.x writes it (index
/// specs carrying `ns`, as older servers listed them).
fn mongodump_metadata(db: &str, collection: &str, options: &str) -> String {
    format!(
        "{{\"indexes\":[{{\"v\":{{\"$numberInt\":\"2\"}},\"key\":{{\"_id\":{{\"$numberInt\":\"1\"}}}},\"name\":\"_id_\",\"ns\":\"{db}.{collection}\"}},\
         {{\"v\":{{\"$numberInt\":\"2\"}},\"key\":{{\"sku\":{{\"$numberInt\":\"1\"}},\"qty\":{{\"$numberInt\":\"-1\"}}}},\"name\":\"sku_1_qty_-1\",\"ns\":\"{db}.{collection}\"}}],\
         \"uuid\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"collectionName\":\"{collection}\",\"type\":\"collection\",\"options\":{options}}}"
    )
}

fn bson(document: &Document) -> Vec<u8> {
    let mut bytes = Vec::new();
    document.to_writer(&mut bytes).expect("encode");
    bytes
}

fn orders() -> Vec<Document> {
    (0..5).map(|i| doc! { "_id": i, "sku": format!("s{}", i % 2), "qty": i * 10 }).collect()
}

/// A mongodump archive built from the format's documentation: `shop.orders` and `shop.lines`
/// interleaved across segments, `shop.none` empty (its end header alone).
fn built_archive(damage: Option<usize>) -> Vec<u8> {
    let crc = crc::Crc::<u64>::new(&crc::CRC_64_XZ);
    let mut out = 0x8199_e26d_u32.to_le_bytes().to_vec();
    out.extend(bson(
        &doc! { "concurrent_collections": 4, "version": "0.1", "server_version": "7.0.14", "tool_version": "100.9.4" },
    ));
    for (collection, size) in [("orders", 100), ("lines", 40), ("none", 0)] {
        let metadata = mongodump_metadata("shop", collection, "{}");
        out.extend(bson(
            &doc! { "db": "shop", "collection": collection, "metadata": metadata, "size": size, "type": "collection" },
        ));
    }
    out.extend([0xFF; 4]);
    let lines: Vec<Document> = (0..3).map(|i| doc! { "_id": i, "sku": "s0", "qty": -i }).collect();
    let (orders, mut orders_crc, mut lines_crc) = (orders(), crc.digest(), crc.digest());
    let segment = |out: &mut Vec<u8>, collection: &str, documents: &[Document], digest: &mut crc::Digest<'_, u64>| {
        out.extend(bson(&doc! { "db": "shop", "collection": collection, "EOF": false, "CRC": 0_i64 }));
        for document in documents {
            let bytes = bson(document);
            digest.update(&bytes);
            out.extend(bytes);
        }
        out.extend([0xFF; 4]);
    };
    segment(&mut out, "orders", orders.get(..2).expect("2"), &mut orders_crc);
    segment(&mut out, "lines", &lines, &mut lines_crc);
    segment(&mut out, "orders", orders.get(2..).expect("3"), &mut orders_crc);
    if let Some(at) = damage {
        // Inside the last segment's documents.
        let at = out.len() - at;
        if let Some(byte) = out.get_mut(at) {
            *byte ^= 0x01;
        }
    }
    for (collection, sum) in [("lines", lines_crc.finalize()), ("orders", orders_crc.finalize()), ("none", 0)] {
        out.extend(bson(&doc! { "db": "shop", "collection": collection, "EOF": true, "CRC": sum as i64 }));
        out.extend([0xFF; 4]);
    }
    out
}

#[tokio::test]
async fn restore_reads_dumps_built_from_mongodumps_documented_format() {
    let scratch = tempfile::tempdir().expect("temp dir");
    // A directory as mongodump writes it, with its top-level prelude and a system collection.
    let dump = scratch.path().join("dump");
    std::fs::create_dir_all(dump.join("shop")).expect("mkdir");
    std::fs::create_dir_all(dump.join("admin")).expect("mkdir");
    std::fs::write(dump.join("prelude.json"), "{}").expect("write");
    std::fs::write(
        dump.join("admin/system.version.bson"),
        bson(&doc! { "_id": "featureCompatibilityVersion", "version": "7.0" }),
    )
    .expect("write");
    let data: Vec<u8> = orders().iter().flat_map(bson).collect();
    std::fs::write(dump.join("shop/orders.bson"), &data).expect("write");
    std::fs::write(dump.join("shop/orders.metadata.json"), mongodump_metadata("shop", "orders", "{}")).expect("write");
    let capped = "{\"capped\":true,\"size\":{\"$numberLong\":\"4096\"}}";
    std::fs::write(dump.join("shop/log.metadata.json"), mongodump_metadata("shop", "log", capped)).expect("write");
    std::fs::write(dump.join("shop/log.bson"), bson(&doc! { "_id": 1, "sku": "x", "qty": 1 })).expect("write");

    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let restored = tool(&["restore", "--uri", &uri(&server), path(&dump)]);
    assert_eq!(restored.status.code(), Some(0), "{}", stderr(&restored));
    assert!(stderr(&restored).contains("6 document(s) restored successfully. 0 document(s) failed to restore."));
    assert!(stderr(&restored).contains("skipping admin.system.version: system collections are not restored"));
    let expected: Vec<String> = orders().into_iter().map(|d| Bson::Document(d).to_string()).collect();
    assert_eq!(printed(&client, "shop", "orders").await, expected);
    let specs = indexes(&client, "shop", "orders").await;
    let compound = specs.get(1).and_then(Bson::as_document).expect("second index");
    assert_eq!(compound, &doc! { "v": 2, "key": { "sku": 1, "qty": -1 }, "name": "sku_1_qty_-1" });
    let listed = collections(&client, "shop").await;
    let log = listed.iter().find(|c| c.get_str("name").ok() == Some("log")).expect("log");
    assert_eq!(log.get_document("options").ok(), Some(&doc! { "capped": true, "size": 4096 }));

    // The same restored again is refused document by document (duplicates), and counted.
    let again = tool(&["restore", "--uri", &uri(&server), "--dir", path(&dump), "--nsInclude", "shop.orders"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("0 document(s) restored successfully. 5 document(s) failed to restore."),
        "{}",
        stderr(&again)
    );
    let stopped =
        tool(&["restore", "--uri", &uri(&server), "--dir", path(&dump), "--nsInclude", "shop.orders", "--stopOnError"]);
    assert_eq!(stopped.status.code(), Some(3), "{}", stderr(&stopped));
    assert!(stderr(&stopped).contains("DuplicateKey (11000)"), "{}", stderr(&stopped));

    // An archive, segments interleaved, into another database.
    let archive = scratch.path().join("shop.archive");
    std::fs::write(&archive, built_archive(None)).expect("write");
    let from_archive = tool(&[
        "restore",
        "--uri",
        &uri(&server),
        &format!("--archive={}", path(&archive)),
        "--nsFrom",
        "shop.$c$",
        "--nsTo",
        "archived.$c$",
    ]);
    assert_eq!(from_archive.status.code(), Some(0), "{}", stderr(&from_archive));
    assert!(stderr(&from_archive).contains("8 document(s) restored successfully."), "{}", stderr(&from_archive));
    assert_eq!(printed(&client, "archived", "orders").await, expected);
    assert_eq!(printed(&client, "archived", "lines").await.len(), 3);
    let names: Vec<String> =
        collections(&client, "archived").await.iter().map(|c| c.get_str("name").expect("name").to_owned()).collect();
    assert_eq!(names, ["lines", "none", "orders"]);
    let specs = indexes(&client, "archived", "lines").await;
    assert_eq!(specs.len(), 2, "{specs:?}");
}

#[tokio::test]
async fn damaged_dumps_are_refused_by_file_and_offset_before_anything_is_written() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let databases = || async {
        let mut names = client.list_database_names().await.expect("listDatabases");
        names.sort();
        names
    };
    let before = databases().await;

    // shop.a is whole and would be restored first; shop.b's second document has an element of
    // an unknown type.
    let dump = scratch.path().join("dump");
    std::fs::create_dir_all(dump.join("shop")).expect("mkdir");
    std::fs::write(dump.join("shop/a.bson"), bson(&doc! { "_id": 1 })).expect("write");
    let first = bson(&doc! { "_id": 1 });
    let mut second = bson(&doc! { "_id": 2, "x": 1 });
    let at = second.windows(2).position(|w| w == [0x10, b'x']).expect("element");
    if let Some(byte) = second.get_mut(at) {
        *byte = 0x7A;
    }
    let b = dump.join("shop/b.bson");
    std::fs::write(&b, [first.clone(), second].concat()).expect("write");
    let refused = tool(&["restore", "--uri", &uri(&server), "--dir", path(&dump)]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let message = format!("{}: at byte offset {}: the document does not parse", b.display(), first.len());
    assert!(stderr(&refused).contains(&message), "{}\nwanted {message}", stderr(&refused));
    assert_eq!(databases().await, before);

    // A document declaring more than 16 MiB.
    let mut oversized = first.clone();
    oversized.extend((16_i32 << 20 | 1).to_le_bytes());
    std::fs::write(&b, oversized).expect("write");
    let refused = tool(&["restore", "--uri", &uri(&server), "--dir", path(&dump)]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let message = format!(
        "{}: at byte offset {}: a document of 16777217 bytes is over the 16 MiB limit",
        b.display(),
        first.len()
    );
    assert!(stderr(&refused).contains(&message), "{}\nwanted {message}", stderr(&refused));
    assert_eq!(databases().await, before);

    // An archive with a flipped byte in its last segment: its checksum fails.
    let archive = scratch.path().join("shop.archive");
    std::fs::write(&archive, built_archive(Some(7))).expect("write");
    let refused = tool(&["restore", "--uri", &uri(&server), &format!("--archive={}", path(&archive))]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("shop.orders's documents do not match their checksum"), "{}", stderr(&refused));
    assert_eq!(databases().await, before);

    // A gzipped archive read without --gzip is not taken for an archive.
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(&built_archive(None)).expect("gzip");
    std::fs::write(&archive, gzip.finish().expect("gzip")).expect("write");
    let refused = tool(&["restore", "--uri", &uri(&server), &format!("--archive={}", path(&archive))]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let message =
        format!("{}: at byte offset 0: not a mongodump archive (its magic number is wrong)", archive.display());
    assert!(stderr(&refused).contains(&message), "{}", stderr(&refused));
    let gunzipped = tool(&["restore", "--uri", &uri(&server), &format!("--archive={}", path(&archive)), "--gzip"]);
    assert_eq!(gunzipped.status.code(), Some(0), "{}", stderr(&gunzipped));
    assert_eq!(printed(&client, "shop", "orders").await.len(), 5);
}
