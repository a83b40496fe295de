//! The multi-value accumulators through the Rust driver: `$firstN $lastN $maxN $minN $top
//! $bottom $topN $bottomN $median $percentile` in `$group` and `$setWindowFields`, the
//! accumulators as expressions, and their errors.

#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use common::TestServer;
use common::pipeline::{run, run_err};
use mongodb::bson::{Bson, Document, doc};
use mongodb::{Collection, Database};

/// mongod's documentation data: game scores per player.
async fn scores(db: &Database) -> Collection<Document> {
    let games = db.collection::<Document>("games");
    games
        .insert_many([
            doc! { "_id": 1, "playerId": "PlayerA", "gameId": "G1", "score": 31 },
            doc! { "_id": 2, "playerId": "PlayerB", "gameId": "G1", "score": 33 },
            doc! { "_id": 3, "playerId": "PlayerC", "gameId": "G1", "score": 99 },
            doc! { "_id": 4, "playerId": "PlayerD", "gameId": "G1", "score": 1 },
            doc! { "_id": 5, "playerId": "PlayerA", "gameId": "G2", "score": 10 },
            doc! { "_id": 6, "playerId": "PlayerB", "gameId": "G2", "score": 14 },
            doc! { "_id": 7, "playerId": "PlayerC", "gameId": "G2", "score": 66 },
            doc! { "_id": 8, "playerId": "PlayerD", "gameId": "G2", "score": 80 },
        ])
        .await
        .expect("insert games");
    games
}

#[tokio::test]
async fn group_keeps_several_values_per_key() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("play");
    let games = scores(&db).await;
    let got = run(
        &games,
        vec![
            doc! { "$sort": { "_id": 1 } },
            doc! { "$group": {
                "_id": "$gameId",
                "firstTwo": { "$firstN": { "input": "$playerId", "n": 2 } },
                "lastTwo": { "$lastN": { "input": "$playerId", "n": 2 } },
                "best": { "$maxN": { "input": "$score", "n": 2 } },
                "worst": { "$minN": { "input": "$score", "n": 1 } },
                "winner": { "$top": { "output": ["$playerId", "$score"], "sortBy": { "score": -1 } } },
                "podium": { "$topN": { "output": "$playerId", "sortBy": { "score": -1 }, "n": 3 } },
                "last": { "$bottom": { "output": "$playerId", "sortBy": { "score": -1 } } },
                "median": { "$median": { "input": "$score", "method": "approximate" } },
                "p": { "$percentile": { "input": "$score", "p": [0.25, 0.75], "method": "approximate" } },
            } },
            doc! { "$sort": { "_id": 1 } },
        ],
    )
    .await;
    assert_eq!(
        got,
        vec![
            doc! {
                "_id": "G1", "firstTwo": ["PlayerA", "PlayerB"], "lastTwo": ["PlayerC", "PlayerD"], "best": [99, 33],
                "worst": [1], "winner": ["PlayerC", 99], "podium": ["PlayerC", "PlayerB", "PlayerA"], "last": "PlayerD",
                "median": 31.0, "p": [1.0, 33.0],
            },
            doc! {
                "_id": "G2", "firstTwo": ["PlayerA", "PlayerB"], "lastTwo": ["PlayerC", "PlayerD"], "best": [80, 66],
                "worst": [10], "winner": ["PlayerD", 80], "podium": ["PlayerD", "PlayerC", "PlayerB"], "last": "PlayerA",
                "median": 14.0, "p": [10.0, 66.0],
            },
        ]
    );
}

#[tokio::test]
async fn group_n_reads_the_fields_of_a_document_key() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("play");
    let games = scores(&db).await;
    // mongod's documented example: `n` is evaluated against the group key's fields.
    let n = doc! { "$cond": { "if": { "$eq": ["$gameId", "G2"] }, "then": 1, "else": 3 } };
    let got = run(
        &games,
        vec![
            doc! { "$sort": { "_id": 1 } },
            doc! { "$group": { "_id": { "gameId": "$gameId" }, "gamescores": { "$firstN": { "input": "$score", "n": n.clone() } } } },
            doc! { "$sort": { "_id.gameId": 1 } },
        ],
    )
    .await;
    assert_eq!(
        got,
        vec![
            doc! { "_id": { "gameId": "G1" }, "gamescores": [31, 33, 99] },
            doc! { "_id": { "gameId": "G2" }, "gamescores": [10] },
        ]
    );
    // A key that is not a document gives `n` nothing to read: `$gameId` is missing, n is 3.
    let got = run(
        &games,
        vec![
            doc! { "$sort": { "_id": 1 } },
            doc! { "$group": { "_id": "$gameId", "gamescores": { "$firstN": { "input": "$score", "n": n } } } },
            doc! { "$sort": { "_id": 1 } },
        ],
    )
    .await;
    assert_eq!(
        got,
        vec![doc! { "_id": "G1", "gamescores": [31, 33, 99] }, doc! { "_id": "G2", "gamescores": [10, 14, 66] }]
    );
}

#[tokio::test]
async fn group_bottom_keeps_the_first_of_equal_sort_keys_and_a_sliding_window_the_last() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("play");
    let games = scores(&db).await;
    let bottom = doc! { "output": "$_id", "sortBy": { "gameId": 1 }, "n": 2 };
    let got = run(
        &games,
        vec![doc! { "$sort": { "_id": 1 } }, doc! { "$group": { "_id": null, "ids": { "$bottomN": bottom.clone() } } }],
    )
    .await;
    assert_eq!(got, vec![doc! { "_id": Bson::Null, "ids": [5, 6] }]);
    // A window of the previous and the current document is removable in mongod: of equal
    // keys it keeps the later ones, so each document sees itself.
    let got = run(
        &games,
        vec![
            doc! { "$setWindowFields": {
                "sortBy": { "_id": 1 },
                "output": { "last": { "$bottom": { "output": "$_id", "sortBy": { "gameId": 1 } }, "window": { "documents": [-1, 0] } } },
            } },
            doc! { "$project": { "_id": 0, "last": 1 } },
        ],
    )
    .await;
    let last: Vec<Bson> = got.iter().filter_map(|d| d.get("last").cloned()).collect();
    assert_eq!(last, (1..=8).map(Bson::Int32).collect::<Vec<_>>());
}

#[tokio::test]
async fn windows_rank_the_top_scores_so_far() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("play");
    let games = scores(&db).await;
    let got = run(
        &games,
        vec![
            doc! { "$match": { "gameId": "G1" } },
            doc! { "$setWindowFields": {
                "sortBy": { "_id": 1 },
                "output": {
                    "topSoFar": { "$topN": { "output": "$score", "sortBy": { "score": -1 }, "n": 2 }, "window": { "documents": ["unbounded", "current"] } },
                    "medianSoFar": { "$median": { "input": "$score", "method": "approximate" }, "window": { "documents": ["unbounded", "current"] } },
                },
            } },
            doc! { "$project": { "_id": 1, "topSoFar": 1, "medianSoFar": 1 } },
        ],
    )
    .await;
    assert_eq!(
        got,
        vec![
            doc! { "_id": 1, "topSoFar": [31], "medianSoFar": 31.0 },
            doc! { "_id": 2, "topSoFar": [33, 31], "medianSoFar": 31.0 },
            doc! { "_id": 3, "topSoFar": [99, 33], "medianSoFar": 33.0 },
            doc! { "_id": 4, "topSoFar": [99, 33], "medianSoFar": 31.0 },
        ]
    );
}

#[tokio::test]
async fn accumulators_work_as_expressions() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("play");
    let coll = db.collection::<Document>("quiz");
    coll.insert_one(doc! { "_id": 1, "quizzes": [10, 6, 7], "labs": [5, 8], "final": 80, "midterm": 75 })
        .await
        .expect("insert");
    let got = run(
        &coll,
        vec![doc! { "$project": {
            "_id": 0,
            "quizTotal": { "$sum": "$quizzes" },
            "labAvg": { "$avg": "$labs" },
            "examMax": { "$max": ["$final", "$midterm"] },
            "examMin": { "$min": ["$final", "$midterm"] },
            "spread": { "$stdDevPop": "$quizzes" },
            "twoBest": { "$maxN": { "n": 2, "input": "$quizzes" } },
            "firstQuiz": { "$firstN": { "n": 1, "input": "$quizzes" } },
            "median": { "$median": { "input": "$quizzes", "method": "approximate" } },
        } }],
    )
    .await;
    assert_eq!(got.len(), 1);
    let row = got.first().expect("one row");
    assert_eq!(row.get("quizTotal"), Some(&Bson::Int32(23)));
    assert_eq!(row.get("labAvg"), Some(&Bson::Double(6.5)));
    assert_eq!(row.get("examMax"), Some(&Bson::Int32(80)));
    assert_eq!(row.get("examMin"), Some(&Bson::Int32(75)));
    // Population standard deviation of 10, 6, 7: sqrt(((10-23/3)² + (6-23/3)² + (7-23/3)²) / 3).
    let mean = 23.0 / 3.0;
    let expected = (((10.0f64 - mean).powi(2) + (6.0f64 - mean).powi(2) + (7.0f64 - mean).powi(2)) / 3.0).sqrt();
    let Some(Bson::Double(got_spread)) = row.get("spread") else { panic!("{row}") };
    assert!((got_spread - expected).abs() < 1e-12, "{got_spread} vs {expected}");
    assert_eq!(row.get_array("twoBest").ok(), Some(&vec![Bson::Int32(10), Bson::Int32(7)]));
    assert_eq!(row.get_array("firstQuiz").ok(), Some(&vec![Bson::Int32(10)]));
    assert_eq!(row.get("median"), Some(&Bson::Double(7.0)));
}

#[tokio::test]
async fn bad_specifications_answer_mongods_codes() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("play");
    scores(&db).await;
    let group = |acc: Document| doc! { "$group": { "_id": "$gameId", "x": acc } };
    let cases = [
        (group(doc! { "$firstN": { "input": "$score" } }), 5787906, "Location5787906"),
        (group(doc! { "$maxN": { "input": "$score", "n": -1 } }), 5787908, "Location5787908"),
        (group(doc! { "$topN": { "output": "$score", "n": 2 } }), 5788005, "Location5788005"),
        (group(doc! { "$top": { "output": "$score", "sortBy": { "score": 1 }, "n": 2 } }), 5788002, "Location5788002"),
        (
            group(doc! { "$percentile": { "input": "$score", "p": [2], "method": "approximate" } }),
            7750303,
            "Location7750303",
        ),
        (group(doc! { "$median": { "input": "$score", "method": "exact" } }), 2, "BadValue"),
        (group(doc! { "$accumulator": { "init": "function() { return 0 }" } }), 31264, "Location31264"),
        (
            doc! { "$project": { "x": { "$function": { "body": "function() {}", "args": [], "lang": "js" } } } },
            31264,
            "Location31264",
        ),
        (doc! { "$project": { "x": { "$firstN": { "n": 1, "input": "$score" } } } }, 5788200, "Location5788200"),
        // mongod refuses a non-array input of $maxN too, null and missing included.
        (doc! { "$project": { "x": { "$maxN": { "n": 1, "input": "$nothing" } } } }, 5788200, "Location5788200"),
        (group(doc! { "$bottomN": { "output": "$score", "sortBy": 1, "n": 2 } }), 10065, "Location10065"),
        (
            group(doc! { "$percentile": { "input": "$score", "p": "$score", "method": "approximate" } }),
            7750300,
            "Location7750300",
        ),
        (doc! { "$project": { "x": { "$median": "$score" } } }, 7436201, "Location7436201"),
        (doc! { "$project": { "x": { "$percentile": "$score" } } }, 7436200, "Location7436200"),
    ];
    for (stage, expected, name) in cases {
        assert_eq!(run_err(&db, "games", vec![stage.clone()]).await, Some((expected, name.to_owned())), "{stage}");
    }
}
