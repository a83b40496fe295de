//! Text search through the Rust driver: text indexes as mongod stores them, `$text` with
//! terms, negations, phrases, languages and sensitivity, `{$meta: "textScore"}` in find and
//! aggregate (scores checked against mongod's documented formula, computed here), and the
//! errors mongod gives for misuse.

#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use common::{TestServer, error_code as code, index_spec};
use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};

/// mongod's score of one term in one string (its `_scoreStringV2`), from the string's words
/// after stop words are dropped and stemming (given here by hand, not by the server's
/// tokenizer): a term seen `n` times in `t` words scores
/// `weight * (1 + 1/2 + ... + 1/2^(n-1)) * (0.5 * n / t + 0.5)`, 10% more when it is the
/// whole string.
fn term_score(words: &[&str], term: &str, weight: f64, whole_string: &str) -> f64 {
    let n = words.iter().filter(|w| **w == term).count();
    if n == 0 {
        return 0.0;
    }
    let frequency: f64 = (0..n).map(|i| 1.0 / f64::from(1_u32 << i)).sum();
    let coefficient = 0.5 * n as f64 / words.len() as f64 + 0.5;
    let boost = if whole_string.eq_ignore_ascii_case(term) { 1.1 } else { 1.0 };
    weight * frequency * coefficient * boost
}

async fn ids(cursor: mongodb::Cursor<Document>) -> Vec<i32> {
    let docs: Vec<Document> = cursor.try_collect().await.expect("documents");
    docs.iter().map(|d| d.get_i32("_id").expect("_id")).collect()
}

async fn sorted_ids(coll: &mongodb::Collection<Document>, search: Document) -> Vec<i32> {
    let mut found = ids(coll.find(doc! { "$text": search }).await.expect("find")).await;
    found.sort_unstable();
    found
}

#[tokio::test]
async fn text_index_scores_and_searches_as_mongod() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("txt");
    let coll = db.collection::<Document>("c");
    coll.insert_many([
        doc! { "_id": 1, "title": "green tea", "body": "green tea is good tea" },
        doc! { "_id": 2, "title": "black tea shop", "body": "shop" },
        doc! { "_id": 3, "title": "coffee", "body": "no tea here" },
        doc! { "_id": 4, "title": "juice", "body": "orange juice" },
        doc! { "_id": 5, "title": "Café", "body": "Crème brûlée" },
        doc! { "_id": 6, "title": "corriendo", "body": "rápido", "idioma": "spanish" },
    ])
    .await
    .expect("insert");
    db.run_command(doc! { "createIndexes": "c", "indexes": [{
    "key": { "title": "text", "body": "text" }, "name": "title_text_body_text",
    "weights": { "title": 3 }, "language_override": "idioma" }] })
        .await
        .expect("create text index");

    // Stored as mongod stores it.
    let spec = index_spec(&db, "c", "title_text_body_text").await;
    assert_eq!(spec.get_document("key").expect("key"), &doc! { "_fts": "text", "_ftsx": 1 });
    assert_eq!(spec.get_document("weights").expect("weights"), &doc! { "body": 1, "title": 3 });
    assert_eq!(spec.get_str("default_language").ok(), Some("english"));
    assert_eq!(spec.get_str("language_override").ok(), Some("idioma"));
    assert_eq!(spec.get_i32("textIndexVersion").ok(), Some(3));

    // Scores: "tea" in each document, weights title 3 and body 1 ("is", "no" and "here" are
    // stop words).
    let expected = [
        (
            1,
            term_score(&["green", "tea"], "tea", 3.0, "green tea")
                + term_score(&["green", "tea", "good", "tea"], "tea", 1.0, "green tea is good tea"),
        ),
        (2, term_score(&["black", "tea", "shop"], "tea", 3.0, "black tea shop")),
        (3, term_score(&["tea"], "tea", 1.0, "no tea here")),
    ];
    let cursor = coll
        .find(doc! { "$text": { "$search": "tea" } })
        .projection(doc! { "score": { "$meta": "textScore" }, "title": 1 })
        .sort(doc! { "score": { "$meta": "textScore" } })
        .await
        .expect("search");
    let found: Vec<Document> = cursor.try_collect().await.expect("found");
    let got: Vec<(i32, f64)> =
        found.iter().map(|d| (d.get_i32("_id").expect("_id"), d.get_f64("score").expect("score"))).collect();
    assert_eq!(got.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [1, 2, 3], "{found:?}");
    for ((id, score), (want_id, want)) in got.iter().zip(expected) {
        assert_eq!(*id, want_id);
        assert!((score - want).abs() < 1e-9, "document {id}: score {score}, formula {want}");
    }
    // The whole-string boost: a body that is exactly the term.
    let shop = coll
        .find_one(doc! { "$text": { "$search": "shop" } })
        .projection(doc! { "score": { "$meta": "textScore" } })
        .await
        .expect("shop")
        .expect("found");
    let want = term_score(&["black", "tea", "shop"], "shop", 3.0, "black tea shop")
        + term_score(&["shop"], "shop", 1.0, "shop");
    assert!((shop.get_f64("score").expect("score") - want).abs() < 1e-9);

    // Several terms: a document with any of them; stemming; stop words alone find nothing.
    assert_eq!(sorted_ids(&coll, doc! { "$search": "juice coffee" }).await, [3, 4]);
    assert_eq!(sorted_ids(&coll, doc! { "$search": "teas" }).await, [1, 2, 3]);
    assert!(sorted_ids(&coll, doc! { "$search": "the is" }).await.is_empty());
    // Negations and phrases.
    assert_eq!(sorted_ids(&coll, doc! { "$search": "tea -green" }).await, [2, 3]);
    assert_eq!(sorted_ids(&coll, doc! { "$search": "\"black tea\"" }).await, [2]);
    assert_eq!(sorted_ids(&coll, doc! { "$search": "tea -\"good tea\"" }).await, [2, 3]);
    // Diacritics and case are folded unless the search asks otherwise.
    assert_eq!(sorted_ids(&coll, doc! { "$search": "cafe creme" }).await, [5]);
    assert!(sorted_ids(&coll, doc! { "$search": "cafe", "$diacriticSensitive": true }).await.is_empty());
    assert_eq!(sorted_ids(&coll, doc! { "$search": "Café", "$diacriticSensitive": true }).await, [5]);
    assert!(sorted_ids(&coll, doc! { "$search": "café", "$caseSensitive": true }).await.is_empty());
    // A document's own language (its `idioma` field) and the search's `$language`.
    assert_eq!(sorted_ids(&coll, doc! { "$search": "correr", "$language": "es" }).await, [6]);
    assert!(sorted_ids(&coll, doc! { "$search": "correr" }).await.is_empty());

    // The rest of the filter, count, and aggregate with scores.
    assert_eq!(
        ids(coll.find(doc! { "$text": { "$search": "tea" }, "_id": { "$gt": 1 } }).await.expect("find")).await.len(),
        2
    );
    assert_eq!(coll.count_documents(doc! { "$text": { "$search": "tea" } }).await.expect("count"), 3);
    let pipeline = [
        doc! { "$match": { "$text": { "$search": "tea" } } },
        doc! { "$sort": { "s": { "$meta": "textScore" } } },
        doc! { "$project": { "s": { "$meta": "textScore" } } },
        doc! { "$limit": 1 },
    ];
    let top: Vec<Document> = coll.aggregate(pipeline).await.expect("aggregate").try_collect().await.expect("top");
    assert_eq!(top.len(), 1);
    assert_eq!(top[0].get_i32("_id").ok(), Some(1));
    assert!((top[0].get_f64("s").expect("s") - expected[0].1).abs() < 1e-9);

    // explain shows mongod's text stages.
    let explained = db
        .run_command(doc! { "explain": { "find": "c", "filter": { "$text": { "$search": "tea" } } } })
        .await
        .expect("explain");
    let winning = explained.get_document("queryPlanner").and_then(|q| q.get_document("winningPlan")).expect("plan");
    assert_eq!(winning.get_str("stage").ok(), Some("TEXT_MATCH"));
    assert_eq!(winning.get_document("inputStage").and_then(|s| s.get_str("stage")).ok(), Some("TEXT_OR"));

    // Writes find their documents through the search too.
    let deleted = coll.delete_many(doc! { "$text": { "$search": "juice" } }).await.expect("delete");
    assert_eq!(deleted.deleted_count, 1);
    let updated = coll
        .update_many(doc! { "$text": { "$search": "shop" } }, doc! { "$set": { "tagged": true } })
        .await
        .expect("update");
    assert_eq!(updated.modified_count, 1);
    // Updated text is searched by its new words at once.
    coll.update_one(doc! { "_id": 3 }, doc! { "$set": { "body": "espresso" } }).await.expect("update body");
    assert_eq!(sorted_ids(&coll, doc! { "$search": "tea" }).await, [1, 2]);
    assert_eq!(sorted_ids(&coll, doc! { "$search": "espresso" }).await, [3]);
}

#[tokio::test]
async fn text_search_refusals_match_mongod() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("txt");
    let coll = db.collection::<Document>("c");
    coll.insert_one(doc! { "_id": 1, "t": "words" }).await.expect("insert");
    let run = |command: Document| {
        let db = db.clone();
        async move { db.run_command(command).await }
    };
    let text = doc! { "$search": "words" };

    // No text index.
    let err = coll.find_one(doc! { "$text": text.clone() }).await.expect_err("no index");
    assert_eq!(code(&err), Some(27));
    // `{$meta: "textScore"}` without `$text`.
    let err = coll.find_one(doc! {}).projection(doc! { "s": { "$meta": "textScore" } }).await.expect_err("no text");
    assert_eq!(code(&err), Some(40218));

    run(doc! { "createIndexes": "c", "indexes": [{ "key": { "t": "text" }, "name": "t_text" }] }).await.expect("index");
    // The same index again is no change; a second text index is refused.
    let again = run(doc! { "createIndexes": "c", "indexes": [{ "key": { "t": "text" }, "name": "t_text" }] }).await;
    assert_eq!(again.expect("same index").get_str("note").ok(), Some("all indexes already exist"));
    let err = run(doc! { "createIndexes": "c", "indexes": [{ "key": { "u": "text" }, "name": "u_text" }] })
        .await
        .expect_err("second text index");
    assert_eq!(code(&err), Some(67));
    assert!(
        err.to_string().contains("only one text index per collection allowed, found existing text index \"t_text\""),
        "{err}"
    );
    let err = run(doc! { "createIndexes": "d", "indexes": [{ "key": { "t": "text" }, "name": "t", "default_language": "klingon" }] })
        .await
        .expect_err("unknown language");
    assert_eq!(code(&err), Some(67));
    let err =
        run(doc! { "createIndexes": "d", "indexes": [{ "key": { "a": 1 }, "name": "a", "weights": { "a": 2 } }] })
            .await
            .expect_err("text option on another index");
    assert_eq!(code(&err), Some(197));

    // Misplaced or repeated `$text`, and bad arguments.
    let refused = |filter: Document| {
        let coll = coll.clone();
        async move { code(&coll.find_one(filter).await.expect_err("refused")) }
    };
    assert_eq!(refused(doc! { "$nor": [{ "$text": text.clone() }] }).await, Some(2));
    assert_eq!(refused(doc! { "$and": [{ "$text": text.clone() }, { "$text": text.clone() }] }).await, Some(2));
    assert_eq!(refused(doc! { "$or": [{ "$text": text.clone() }, { "x": 1 }] }).await, Some(291));
    assert_eq!(refused(doc! { "$text": { "$search": "x", "$language": "klingon" } }).await, Some(2));
    assert_eq!(refused(doc! { "$text": { "$search": 1 } }).await, Some(14));
    assert_eq!(refused(doc! { "$text": { "$search": "x", "$extra": 1 } }).await, Some(2));
    let err = coll.find_one(doc! { "$text": text.clone() }).hint(mongodb::options::Hint::Name("t_text".into())).await;
    assert_eq!(code(&err.expect_err("hint")), Some(2));
    let err = coll.aggregate([doc! { "$match": { "x": 1 } }, doc! { "$match": { "$text": text.clone() } }]).await;
    assert_eq!(code(&err.expect_err("second $match")), Some(17313));

    // A document whose language override is unknown or not a string is refused whole.
    let err = coll.insert_one(doc! { "_id": 2, "t": "hola", "language": "klingon" }).await.expect_err("language");
    assert_eq!(code(&err), Some(17262));
    let err = coll.insert_one(doc! { "_id": 3, "t": "hola", "language": 5 }).await.expect_err("language type");
    assert_eq!(code(&err), Some(17261));
    assert_eq!(coll.count_documents(doc! {}).await.expect("count"), 1);
    let found: Vec<Bson> = coll.distinct("_id", doc! { "$text": text }).await.expect("distinct");
    assert_eq!(found, [Bson::Int32(1)]);
}

#[tokio::test]
async fn wildcard_and_compound_text_indexes() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("txt");
    let coll = db.collection::<Document>("w");
    coll.insert_many([
        doc! { "_id": 1, "shop": "north", "name": "lamp", "tags": ["brass", "vintage"], "about": { "note": "restored" } },
        doc! { "_id": 2, "shop": "south", "name": "vintage chair", "price": 10 },
        doc! { "_id": 3, "shop": "north", "name": "modern desk" },
    ])
    .await
    .expect("insert");
    // Every string field, nested and in arrays, through `$**`.
    db.run_command(doc! { "createIndexes": "w", "indexes": [{ "key": { "$**": "text" }, "name": "all_text" }] })
        .await
        .expect("wildcard text index");
    assert_eq!(sorted_ids(&coll, doc! { "$search": "vintage" }).await, [1, 2]);
    assert_eq!(sorted_ids(&coll, doc! { "$search": "restored" }).await, [1]);
    db.run_command(doc! { "dropIndexes": "w", "index": "all_text" }).await.expect("drop");

    // A leading field: a search must fix it by equality, and only reads its entries.
    db.run_command(
        doc! { "createIndexes": "w", "indexes": [{ "key": { "shop": 1, "name": "text" }, "name": "shop_name" }] },
    )
    .await
    .expect("compound text index");
    let north =
        ids(coll.find(doc! { "shop": "north", "$text": { "$search": "lamp desk chair" } }).await.expect("find")).await;
    assert_eq!(north, [1, 3]);
    let err = coll.find_one(doc! { "$text": { "$search": "lamp" } }).await.expect_err("no prefix equality");
    assert_eq!(code(&err), Some(291));
    let err = coll.insert_one(doc! { "_id": 4, "shop": ["a", "b"], "name": "x" }).await.expect_err("array prefix");
    assert_eq!(code(&err), Some(16675));
}
