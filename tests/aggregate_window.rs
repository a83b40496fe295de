//! `$setWindowFields` through the Rust driver: running totals, moving windows, ranks with ties,
//! `$shift`, gap filling, range windows over dates, and its errors.

mod common;

use common::TestServer;
use futures_util::TryStreamExt;
use mongodb::bson::{Bson, DateTime, Document, doc};
use mongodb::error::ErrorKind;

fn code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        ErrorKind::Command(e) => Some(e.code),
        _ => None,
    }
}

const DAY: i64 = 86_400_000;

#[tokio::test]
async fn window_functions_over_partitions() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("w");
    let sales = db.collection::<Document>("sales");
    let day0 = 1_700_000_000_000_i64 - 1_700_000_000_000_i64 % DAY;
    sales
        .insert_many([
            doc! { "_id": 1, "shop": "a", "day": DateTime::from_millis(day0), "amt": 10, "score": 5 },
            doc! { "_id": 2, "shop": "a", "day": DateTime::from_millis(day0 + DAY), "amt": 20, "score": 7 },
            doc! { "_id": 3, "shop": "a", "day": DateTime::from_millis(day0 + 2 * DAY), "amt": Bson::Null, "score": 7 },
            doc! { "_id": 4, "shop": "a", "day": DateTime::from_millis(day0 + 4 * DAY), "amt": 40, "score": 9 },
            doc! { "_id": 5, "shop": "b", "day": DateTime::from_millis(day0), "amt": 1, "score": 1 },
            doc! { "_id": 6, "shop": "b", "day": DateTime::from_millis(day0 + DAY), "amt": 2, "score": 1 },
        ])
        .await
        .expect("insert");
    let pipeline = vec![
        doc! { "$setWindowFields": {
            "partitionBy": "$shop",
            "sortBy": { "day": 1 },
            "output": {
                "running": { "$sum": "$amt", "window": { "documents": ["unbounded", "current"] } },
                "moving": { "$avg": "$amt", "window": { "documents": [-1, 0] } },
                "lastTwoDays": { "$sum": "$amt", "window": { "range": [-1, "current"], "unit": "day" } },
                "total": { "$sum": "$amt" },
                "n": { "$documentNumber": {} },
                "prev": { "$shift": { "output": "$amt", "by": -1, "default": "none" } },
                "filled": { "$locf": "$amt" },
                "line": { "$linearFill": "$amt" },
            },
        } },
        doc! { "$project": { "day": 0, "shop": 0, "score": 0 } },
    ];
    let rows: Vec<Document> = sales.aggregate(pipeline).await.expect("aggregate").try_collect().await.expect("collect");
    assert_eq!(
        rows,
        vec![
            doc! { "_id": 1, "amt": 10, "running": 10, "moving": 10.0, "lastTwoDays": 10, "total": 70, "n": 1, "prev": "none", "filled": 10, "line": 10 },
            doc! { "_id": 2, "amt": 20, "running": 30, "moving": 15.0, "lastTwoDays": 30, "total": 70, "n": 2, "prev": 10, "filled": 20, "line": 20 },
            doc! { "_id": 3, "amt": Bson::Null, "running": 30, "moving": 20.0, "lastTwoDays": 20, "total": 70, "n": 3, "prev": 20, "filled": 20, "line": 26.666666666666668 },
            doc! { "_id": 4, "amt": 40, "running": 70, "moving": 40.0, "lastTwoDays": 40, "total": 70, "n": 4, "prev": Bson::Null, "filled": 40, "line": 40 },
            doc! { "_id": 5, "amt": 1, "running": 1, "moving": 1.0, "lastTwoDays": 1, "total": 3, "n": 1, "prev": "none", "filled": 1, "line": 1 },
            doc! { "_id": 6, "amt": 2, "running": 3, "moving": 1.5, "lastTwoDays": 3, "total": 3, "n": 2, "prev": 1, "filled": 2, "line": 2 },
        ]
    );
    let ranked: Vec<Document> = sales
        .aggregate(vec![
            doc! { "$match": { "shop": "a" } },
            doc! { "$setWindowFields": { "sortBy": { "score": 1 }, "output": { "rank": { "$rank": {} }, "dense": { "$denseRank": {} } } } },
            doc! { "$project": { "rank": 1, "dense": 1 } },
        ])
        .await
        .expect("aggregate")
        .try_collect()
        .await
        .expect("collect");
    assert_eq!(
        ranked,
        vec![
            doc! { "_id": 1, "rank": 1, "dense": 1 },
            doc! { "_id": 2, "rank": 2, "dense": 2 },
            doc! { "_id": 3, "rank": 2, "dense": 2 },
            doc! { "_id": 4, "rank": 4, "dense": 3 },
        ]
    );
    let bad = |stage: Document| {
        let db = db.clone();
        async move {
            let command = doc! { "aggregate": "sales", "pipeline": [stage], "cursor": {} };
            code(&db.run_command(command).await.expect_err("must fail"))
        }
    };
    assert_eq!(bad(doc! { "$setWindowFields": { "sortBy": { "day": 1 } } }).await, Some(40414));
    assert_eq!(bad(doc! { "$setWindowFields": { "output": {}, "bogus": 1 } }).await, Some(40415));
    assert_eq!(bad(doc! { "$setWindowFields": { "output": { "r": { "$rank": {} } } } }).await, Some(9));
}

#[tokio::test]
async fn fill_fills_gaps_by_value_locf_and_linear() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("w");
    let readings = db.collection::<Document>("readings");
    readings
        .insert_many([
            doc! { "_id": 1, "t": 1, "temp": 10, "unit": "C", "note": "a" },
            doc! { "_id": 2, "t": 2, "temp": Bson::Null },
            doc! { "_id": 3, "t": 3, "temp": Bson::Null, "note": Bson::Null },
            doc! { "_id": 4, "t": 4, "temp": 40, "note": "d" },
        ])
        .await
        .expect("insert");
    let filled: Vec<Document> = readings
        .aggregate(vec![
            doc! { "$fill": { "sortBy": { "t": 1 }, "output": {
                "temp": { "method": "linear" },
                "note": { "method": "locf" },
                "unit": { "value": "F" },
            } } },
            doc! { "$project": { "t": 0 } },
        ])
        .await
        .expect("aggregate")
        .try_collect()
        .await
        .expect("collect");
    assert_eq!(
        filled,
        vec![
            doc! { "_id": 1, "temp": 10, "unit": "C", "note": "a" },
            doc! { "_id": 2, "temp": 20.0, "note": "a", "unit": "F" },
            doc! { "_id": 3, "temp": 30.0, "note": "a", "unit": "F" },
            doc! { "_id": 4, "temp": 40, "note": "d", "unit": "F" },
        ]
    );
    let command = doc! { "aggregate": "readings", "pipeline": [{ "$fill": { "sortBy": { "t": 1 } } }], "cursor": {} };
    assert_eq!(db.run_command(command).await.err().as_ref().and_then(code), Some(40414));
}

#[tokio::test]
async fn densify_fills_missing_steps_per_partition() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("w");
    let points = db.collection::<Document>("points");
    points
        .insert_many([
            doc! { "_id": 1, "p": "a", "v": 1 },
            doc! { "_id": 2, "p": "a", "v": 4 },
            doc! { "_id": 3, "p": "b", "v": 2 },
            doc! { "_id": 4, "p": "b" },
        ])
        .await
        .expect("insert");
    let run = |stage: Document| {
        let points = points.clone();
        async move {
            let pipeline = vec![stage, doc! { "$sort": { "p": 1, "v": 1 } }, doc! { "$project": { "_id": 0 } }];
            points.aggregate(pipeline).await.expect("aggregate").try_collect::<Vec<Document>>().await.expect("collect")
        }
    };
    let full = run(
        doc! { "$densify": { "field": "v", "partitionByFields": ["p"], "range": { "step": 1, "bounds": "full" } } },
    )
    .await;
    assert_eq!(
        full,
        vec![
            doc! { "p": "a", "v": 1 },
            doc! { "p": "a", "v": 2 },
            doc! { "p": "a", "v": 3 },
            doc! { "p": "a", "v": 4 },
            doc! { "p": "b" },
            doc! { "p": "b", "v": 1 },
            doc! { "p": "b", "v": 2 },
            doc! { "p": "b", "v": 3 },
            doc! { "p": "b", "v": 4 },
        ]
    );
    let explicit = run(doc! { "$densify": { "field": "v", "range": { "step": 2, "bounds": [0, 5] } } }).await;
    assert_eq!(
        explicit,
        // 2 and 4 exist (in no partition here), so only 0 is missing from the grid.
        vec![
            doc! { "v": 0 },
            doc! { "p": "a", "v": 1 },
            doc! { "p": "a", "v": 4 },
            doc! { "p": "b" },
            doc! { "p": "b", "v": 2 },
        ]
    );
    let days = db.collection::<Document>("days");
    days.insert_many([doc! { "t": DateTime::from_millis(0) }, doc! { "t": DateTime::from_millis(3 * DAY) }])
        .await
        .expect("insert");
    let filled: Vec<Document> = days
        .aggregate(vec![
            doc! { "$densify": { "field": "t", "range": { "step": 1, "unit": "day", "bounds": "full" } } },
            doc! { "$project": { "_id": 0 } },
        ])
        .await
        .expect("aggregate")
        .try_collect()
        .await
        .expect("collect");
    let want: Vec<Document> = (0..4).map(|d| doc! { "t": DateTime::from_millis(d * DAY) }).collect();
    assert_eq!(filled, want);
    let command = doc! { "aggregate": "days", "pipeline": [{ "$densify": { "field": "t", "range": { "step": 1, "bounds": "full" } } }], "cursor": {} };
    assert_eq!(db.run_command(command).await.err().as_ref().and_then(code), Some(5733201));
}

#[tokio::test]
async fn range_windows_move_dates_by_calendar_months() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("w");
    let sales = db.collection::<Document>("monthly");
    let at = |s: &str| DateTime::parse_rfc3339_str(s).expect("date");
    sales
        .insert_many([
            doc! { "_id": 1, "at": at("2023-01-31T00:00:00Z"), "amt": 1 },
            doc! { "_id": 2, "at": at("2023-02-28T00:00:00Z"), "amt": 2 },
            doc! { "_id": 3, "at": at("2023-03-31T00:00:00Z"), "amt": 3 },
        ])
        .await
        .expect("insert");
    let rows: Vec<Document> = sales
        .aggregate(vec![
            doc! { "$setWindowFields": { "sortBy": { "at": 1 }, "output": {
                "lastMonth": { "$sum": "$amt", "window": { "range": [-1, "current"], "unit": "month" } },
            } } },
            doc! { "$project": { "lastMonth": 1 } },
        ])
        .await
        .expect("aggregate")
        .try_collect()
        .await
        .expect("collect");
    // 31 March minus a month is 28 February (the month's last day), so February counts.
    assert_eq!(
        rows,
        vec![doc! { "_id": 1, "lastMonth": 1 }, doc! { "_id": 2, "lastMonth": 3 }, doc! { "_id": 3, "lastMonth": 5 }]
    );
}
