//! The date expressions through the Rust driver: `$project` with date parts, formatting,
//! truncation and arithmetic in `America/New_York`, `Asia/Kolkata` and `+05:30`, across New
//! York's spring-forward, and mongod's error codes for a bad zone or an unreadable string.

#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use common::TestServer;
use futures_util::TryStreamExt;
use mongodb::bson::{DateTime, Document, doc};
use mongodb::error::ErrorKind;

fn code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        ErrorKind::Command(e) => Some(e.code),
        _ => None,
    }
}

fn at(iso: &str) -> DateTime {
    DateTime::parse_rfc3339_str(iso).expect("a valid test date")
}

/// Two instants either side of 2021-03-14T07:00Z, when New York went from EST to EDT.
async fn seeded(server: &TestServer) -> mongodb::Collection<Document> {
    let client = server.client("").await;
    let coll = client.database("app").collection::<Document>("events");
    coll.insert_many(vec![
        doc! { "_id": 1, "at": at("2021-03-14T06:30:00Z") },
        doc! { "_id": 2, "at": at("2021-03-14T07:30:00Z") },
    ])
    .await
    .expect("insert");
    coll
}

async fn project(coll: &mongodb::Collection<Document>, projection: Document) -> Vec<Document> {
    let pipeline = vec![doc! { "$sort": { "_id": 1 } }, doc! { "$project": projection }];
    coll.aggregate(pipeline).await.expect("aggregate").try_collect().await.expect("collect")
}

#[tokio::test]
async fn aggregate_dates_parts_and_strings_in_three_zones_across_dst() {
    let server = TestServer::start(&[]);
    let coll = seeded(&server).await;
    let docs = project(
        &coll,
        doc! {
            "_id": 0,
            "nyHour": { "$hour": { "date": "$at", "timezone": "America/New_York" } },
            "nyDay": { "$dayOfMonth": { "date": "$at", "timezone": "America/New_York" } },
            "kolkataHour": { "$hour": { "date": "$at", "timezone": "Asia/Kolkata" } },
            "offsetMinute": { "$minute": { "date": "$at", "timezone": "+05:30" } },
            "ny": { "$dateToString": { "date": "$at", "timezone": "America/New_York" } },
            "nyOffset": { "$dateToString": { "date": "$at", "format": "%H:%M %z", "timezone": "America/New_York" } },
            "kolkata": { "$dateToString": { "date": "$at", "format": "%Y-%m-%d %H:%M %Z", "timezone": "Asia/Kolkata" } },
            "utc": { "$dateToString": { "date": "$at" } },
        },
    )
    .await;
    assert_eq!(
        docs,
        vec![
            doc! {
                "nyHour": 1, "nyDay": 14, "kolkataHour": 12, "offsetMinute": 0,
                "ny": "2021-03-14T01:30:00.000", "nyOffset": "01:30 -0500",
                "kolkata": "2021-03-14 12:00 330", "utc": "2021-03-14T06:30:00.000Z",
            },
            doc! {
                "nyHour": 3, "nyDay": 14, "kolkataHour": 13, "offsetMinute": 0,
                "ny": "2021-03-14T03:30:00.000", "nyOffset": "03:30 -0400",
                "kolkata": "2021-03-14 13:00 330", "utc": "2021-03-14T07:30:00.000Z",
            },
        ]
    );
}

#[tokio::test]
async fn aggregate_dates_arithmetic_across_dst() {
    let server = TestServer::start(&[]);
    let coll = seeded(&server).await;
    let docs = project(
        &coll,
        doc! {
            "_id": 0,
            "nyMidnight": { "$dateTrunc": { "date": "$at", "unit": "day", "timezone": "America/New_York" } },
            "kolkataHour": { "$dateTrunc": { "date": "$at", "unit": "hour", "timezone": "+05:30" } },
            "nextDayNy": { "$dateAdd": { "startDate": "$at", "unit": "day", "amount": 1, "timezone": "America/New_York" } },
            "lastMonth": { "$dateSubtract": { "startDate": "$at", "unit": "month", "amount": 1 } },
            "hoursSinceMidnightNy": {
                "$dateDiff": {
                    "startDate": { "$dateFromParts": { "year": 2021, "month": 3, "day": 14, "timezone": "America/New_York" } },
                    "endDate": "$at",
                    "unit": "hour",
                    "timezone": "America/New_York",
                },
            },
            "parts": { "$dateToParts": { "date": "$at", "timezone": "Asia/Kolkata" } },
        },
    )
    .await;
    let kolkata_parts = |hour: i32| doc! { "year": 2021, "month": 3, "day": 14, "hour": hour, "minute": 0, "second": 0, "millisecond": 0 };
    assert_eq!(
        docs,
        vec![
            doc! {
                "nyMidnight": at("2021-03-14T05:00:00Z"),
                "kolkataHour": at("2021-03-14T06:30:00Z"),
                // 01:30 EST becomes 01:30 EDT the next day: 23 hours later.
                "nextDayNy": at("2021-03-15T05:30:00Z"),
                "lastMonth": at("2021-02-14T06:30:00Z"),
                "hoursSinceMidnightNy": 1_i64,
                "parts": kolkata_parts(12),
            },
            doc! {
                "nyMidnight": at("2021-03-14T05:00:00Z"),
                "kolkataHour": at("2021-03-14T07:30:00Z"),
                "nextDayNy": at("2021-03-15T07:30:00Z"),
                "lastMonth": at("2021-02-14T07:30:00Z"),
                // 00:00 EST to 03:30 EDT: two and a half hours passed.
                "hoursSinceMidnightNy": 2_i64,
                "parts": kolkata_parts(13),
            },
        ]
    );
}

#[tokio::test]
async fn aggregate_dates_from_string_and_in_a_filter() {
    let server = TestServer::start(&[]);
    let coll = seeded(&server).await;
    let docs = project(
        &coll,
        doc! {
            "parsed": { "$dateFromString": { "dateString": "2021-03-14 12:00", "timezone": "Asia/Kolkata" } },
            "bad": { "$dateFromString": { "dateString": "not a date", "onError": "unreadable" } },
        },
    )
    .await;
    assert_eq!(docs.first(), Some(&doc! { "_id": 1, "parsed": at("2021-03-14T06:30:00Z"), "bad": "unreadable" }));
    // $expr with a date part in a find filter: only the EDT instant is at 3 a.m. in New York.
    let found: Vec<Document> = coll
        .find(doc! { "$expr": { "$eq": [{ "$hour": { "date": "$at", "timezone": "America/New_York" } }, 3] } })
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("collect");
    assert_eq!(found, vec![doc! { "_id": 2, "at": at("2021-03-14T07:30:00Z") }]);
}

#[tokio::test]
async fn aggregate_dates_errors() {
    let server = TestServer::start(&[]);
    let coll = seeded(&server).await;
    let run = |projection: Document| {
        let coll = coll.clone();
        async move {
            let pipeline = vec![doc! { "$project": projection }];
            match coll.aggregate(pipeline).await {
                Ok(cursor) => cursor.try_collect::<Vec<Document>>().await.map(|_| ()),
                Err(e) => Err(e),
            }
        }
    };
    let unknown_zone = run(doc! { "h": { "$hour": { "date": "$at", "timezone": "Mars/Olympus_Mons" } } }).await;
    let error = unknown_zone.expect_err("an unknown zone fails");
    assert_eq!(code(&error), Some(40485));
    let unreadable = run(doc! { "d": { "$dateFromString": { "dateString": "not a date" } } }).await;
    assert_eq!(code(&unreadable.expect_err("an unreadable date fails")), Some(241));
    let bad_unit = run(doc! { "d": { "$dateAdd": { "startDate": "$at", "unit": "fortnight", "amount": 1 } } }).await;
    assert_eq!(code(&bad_unit.expect_err("an unknown unit fails")), Some(9));
    let two_dates = run(doc! { "y": { "$year": ["$at", "$at"] } }).await;
    assert_eq!(code(&two_dates.expect_err("two dates fail")), Some(40536));
}
