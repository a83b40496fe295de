use bson::{Bson, DateTime, RawBson, Timestamp, bson, doc, oid::ObjectId};

use super::tz::Zone;
use super::units::{self, StartOfWeek, TimeUnit};
use crate::query::expr::{Expression, Variables};

/// Parses `expr` and evaluates it against `doc`; an error becomes its code.
fn eval_in(doc: bson::Document, expr: Bson) -> Result<Option<Bson>, i32> {
    let root = bson::RawDocumentBuf::try_from(&doc).unwrap();
    let raw = RawBson::try_from(expr).unwrap();
    let parsed = Expression::parse(raw.as_raw_bson_ref()).map_err(|e| e.code().code())?;
    parsed.evaluate(&root, &Variables::new()).map_err(|e| e.code().code())
}

fn eval(expr: Bson) -> Result<Option<Bson>, i32> {
    eval_in(doc! {}, expr)
}

fn message(expr: Bson) -> String {
    let raw = RawBson::try_from(expr).unwrap();
    let root = bson::RawDocumentBuf::new();
    match Expression::parse(raw.as_raw_bson_ref()) {
        Err(e) => e.message().to_owned(),
        Ok(parsed) => parsed.evaluate(&root, &Variables::new()).unwrap_err().message().to_owned(),
    }
}

fn ms(iso: &str) -> i64 {
    DateTime::parse_rfc3339_str(iso).unwrap().timestamp_millis()
}

fn date(iso: &str) -> Bson {
    Bson::DateTime(DateTime::from_millis(ms(iso)))
}

fn ok(v: impl Into<Bson>) -> Result<Option<Bson>, i32> {
    Ok(Some(v.into()))
}

const NULL: Result<Option<Bson>, i32> = Ok(Some(Bson::Null));

#[test]
fn date_parts_documented_example() {
    // mongod's docs: 2014-01-01T08:15:39.736Z.
    let d = date("2014-01-01T08:15:39.736Z");
    let expected = [
        ("$year", 2014),
        ("$month", 1),
        ("$dayOfMonth", 1),
        ("$hour", 8),
        ("$minute", 15),
        ("$second", 39),
        ("$millisecond", 736),
        ("$dayOfYear", 1),
        ("$dayOfWeek", 4),
        ("$week", 0),
        ("$isoWeek", 1),
        ("$isoWeekYear", 2014),
        ("$isoDayOfWeek", 3),
    ];
    for (op, want) in expected {
        assert_eq!(eval(bson!({ op: d.clone() })), ok(want), "{op}");
        assert_eq!(eval(bson!({ op: [d.clone()] })), ok(want), "{op} in an array");
        assert_eq!(eval(bson!({ op: { "date": d.clone() } })), ok(want), "{op} as an object");
    }
}

#[test]
fn date_parts_in_zones_and_across_dst() {
    let d = date("2014-01-01T08:15:39.736Z");
    let hour = |tz: &str| eval(bson!({ "$hour": { "date": d.clone(), "timezone": tz } }));
    assert_eq!(hour("America/New_York"), ok(3));
    assert_eq!(hour("Asia/Kolkata"), ok(13));
    assert_eq!(hour("+05:30"), ok(13));
    assert_eq!(hour("+0530"), ok(13));
    assert_eq!(hour("-03"), ok(5));
    assert_eq!(hour("UTC"), ok(8));
    assert_eq!(eval(bson!({ "$minute": { "date": d.clone(), "timezone": "+05:30" } })), ok(45));
    // New York springs forward at 2021-03-14T07:00Z: 01:59:59 EST, then 03:00 EDT.
    let before = bson!({ "$hour": { "date": date("2021-03-14T06:59:59Z"), "timezone": "America/New_York" } });
    let after = bson!({ "$hour": { "date": date("2021-03-14T07:00:00Z"), "timezone": "America/New_York" } });
    assert_eq!(eval(before), ok(1));
    assert_eq!(eval(after), ok(3));
    // A year boundary crossed only in the zone.
    let year = bson!({ "$year": { "date": date("2020-12-31T20:00:00Z"), "timezone": "Asia/Kolkata" } });
    assert_eq!(eval(year), ok(2021));
}

#[test]
fn date_parts_of_timestamps_object_ids_and_old_dates() {
    assert_eq!(eval(bson!({ "$year": Timestamp { time: 1_500_000_000, increment: 7 } })), ok(2017));
    let oid = ObjectId::parse_str("5a0b1c2d0000000000000000").unwrap();
    assert_eq!(eval(bson!({ "$year": oid })), ok(2017));
    // Before the epoch and before year 1.
    assert_eq!(eval(bson!({ "$year": date("1969-12-31T23:59:59.999Z") })), ok(1969));
    assert_eq!(eval(bson!({ "$millisecond": date("1969-12-31T23:59:59.999Z") })), ok(999));
    assert_eq!(eval(bson!({ "$year": Bson::DateTime(DateTime::from_millis(-62_198_755_200_000)) })), ok(-1));
    // The ISO year differs from the calendar year at its edges.
    assert_eq!(eval(bson!({ "$isoWeekYear": date("2021-01-01T00:00:00Z") })), ok(2020));
    assert_eq!(eval(bson!({ "$isoWeek": date("2021-01-01T00:00:00Z") })), ok(53));
    assert_eq!(eval(bson!({ "$isoWeek": date("2024-12-30T00:00:00Z") })), ok(1));
    assert_eq!(eval(bson!({ "$week": date("2023-01-01T00:00:00Z") })), ok(1));
    // 2018 began on a Monday: week 1 starts on its first Sunday, January 7th.
    assert_eq!(eval(bson!({ "$week": date("2018-01-06T23:59:59Z") })), ok(0));
    assert_eq!(eval(bson!({ "$week": date("2018-01-07T00:00:00Z") })), ok(1));
    assert_eq!(eval(bson!({ "$week": date("2018-12-31T00:00:00Z") })), ok(52));
    assert_eq!(eval(bson!({ "$dayOfYear": date("2020-12-31T00:00:00Z") })), ok(366));
}

#[test]
fn date_parts_null_and_errors() {
    assert_eq!(eval(bson!({ "$year": null })), NULL);
    assert_eq!(eval_in(doc! {}, bson!({ "$year": "$missing" })), NULL);
    assert_eq!(eval(bson!({ "$year": { "date": date("2020-01-01T00:00:00Z"), "timezone": null } })), NULL);
    assert_eq!(eval(bson!({ "$year": { "date": date("2020-01-01T00:00:00Z"), "timezone": "$nope" } })), NULL);
    assert_eq!(eval(bson!({ "$year": "2020" })), Err(16006));
    assert_eq!(message(bson!({ "$year": 5 })), "can't convert from BSON type int to Date");
    assert_eq!(eval(bson!({ "$year": { "date": date("2020-01-01T00:00:00Z"), "timezone": 5 } })), Err(40517));
    assert_eq!(eval(bson!({ "$year": { "date": date("2020-01-01T00:00:00Z"), "timezone": "Mars/Base" } })), Err(40485));
    assert_eq!(
        message(bson!({ "$year": { "date": date("2020-01-01T00:00:00Z"), "timezone": "Mars/Base" } })),
        "unrecognized time zone identifier: \"Mars/Base\""
    );
    // Olson names are case-sensitive in mongod; offsets need two-digit hours.
    assert_eq!(
        eval(bson!({ "$year": { "date": date("2020-01-01T00:00:00Z"), "timezone": "america/new_york" } })),
        Err(40485)
    );
    assert_eq!(eval(bson!({ "$year": { "date": date("2020-01-01T00:00:00Z"), "timezone": "+5:30" } })), Err(40485));
    assert_eq!(eval(bson!({ "$year": [1, 2] })), Err(40536));
    assert_eq!(
        message(bson!({ "$year": [1, 2] })),
        "$year accepts exactly one argument if given an array, but was given 2"
    );
    assert_eq!(eval(bson!({ "$year": { "date": 1, "zone": "UTC" } })), Err(40535));
    assert_eq!(message(bson!({ "$year": { "date": 1, "zone": "UTC" } })), "unrecognized option to $year: \"zone\"");
    assert_eq!(eval(bson!({ "$year": { "timezone": "UTC" } })), Err(40539));
    // An operator object is the date expression itself.
    assert_eq!(eval(bson!({ "$year": { "$literal": date("2020-05-05T00:00:00Z") } })), ok(2020));
}

#[test]
fn date_to_string_specifiers_and_defaults() {
    let d = date("2014-01-01T08:15:39.736Z");
    assert_eq!(eval(bson!({ "$dateToString": { "date": d.clone() } })), ok("2014-01-01T08:15:39.736Z"));
    assert_eq!(
        eval(bson!({ "$dateToString": { "date": d.clone(), "timezone": "America/New_York" } })),
        ok("2014-01-01T03:15:39.736")
    );
    let all = "%Y-%m-%d %H:%M:%S.%L %j %w %u %U %V %G %z %Z %b %B %%";
    assert_eq!(
        eval(bson!({ "$dateToString": { "date": d.clone(), "format": all } })),
        ok("2014-01-01 08:15:39.736 001 4 3 00 01 2014 +0000 0 Jan January %")
    );
    assert_eq!(
        eval(bson!({ "$dateToString": { "date": d.clone(), "format": "%H:%M %z %Z", "timezone": "Asia/Kolkata" } })),
        ok("13:45 +0530 330")
    );
    assert_eq!(
        eval(
            bson!({ "$dateToString": { "date": d.clone(), "format": "%H:%M %z %Z", "timezone": "America/New_York" } })
        ),
        ok("03:15 -0500 -300")
    );
    // Summer time in New York.
    assert_eq!(
        eval(
            bson!({ "$dateToString": { "date": date("2021-07-01T12:00:00Z"), "format": "%H %z", "timezone": "America/New_York" } })
        ),
        ok("08 -0400")
    );
}

#[test]
fn date_to_string_nulls_and_errors() {
    let d = date("2014-01-01T08:15:39.736Z");
    assert_eq!(eval(bson!({ "$dateToString": { "date": null } })), NULL);
    assert_eq!(eval(bson!({ "$dateToString": { "date": "$nope", "onNull": "none" } })), ok("none"));
    assert_eq!(eval(bson!({ "$dateToString": { "date": "$nope", "onNull": "$nope" } })), Ok(None));
    assert_eq!(eval(bson!({ "$dateToString": { "date": d.clone(), "format": null } })), NULL);
    assert_eq!(eval(bson!({ "$dateToString": { "date": d.clone(), "timezone": null } })), NULL);
    // The format and zone are checked even when the date is null.
    assert_eq!(eval(bson!({ "$dateToString": { "date": null, "format": 1 } })), Err(18533));
    assert_eq!(eval(bson!({ "$dateToString": { "date": null, "format": "%Q" } })), Err(18536));
    assert_eq!(
        message(bson!({ "$dateToString": { "date": null, "format": "%Q" } })),
        "Invalid format character '%Q' in format string"
    );
    assert_eq!(eval(bson!({ "$dateToString": { "date": null, "format": "%Y%" } })), Err(18535));
    assert_eq!(eval(bson!({ "$dateToString": { "date": null, "timezone": "Nowhere" } })), Err(40485));
    assert_eq!(eval(bson!({ "$dateToString": { "date": "x" } })), Err(16006));
    assert_eq!(eval(bson!({ "$dateToString": d.clone() })), Err(18629));
    assert_eq!(eval(bson!({ "$dateToString": { "date": d.clone(), "foo": 1 } })), Err(18534));
    assert_eq!(eval(bson!({ "$dateToString": { "format": "%Y" } })), Err(18628));
    let far = Bson::DateTime(DateTime::from_millis(253_402_300_800_000));
    assert_eq!(eval(bson!({ "$dateToString": { "date": far.clone(), "format": "%Y" } })), Err(18537));
    assert_eq!(eval(bson!({ "$dateToString": { "date": far, "format": "%m" } })), ok("01"));
}

#[test]
fn date_to_parts_both_forms() {
    let d = date("2017-01-01T01:29:09.123Z");
    assert_eq!(
        eval(bson!({ "$dateToParts": { "date": d.clone() } })),
        ok(doc! { "year": 2017, "month": 1, "day": 1, "hour": 1, "minute": 29, "second": 9, "millisecond": 123 })
    );
    assert_eq!(
        eval(bson!({ "$dateToParts": { "date": d.clone(), "timezone": "America/New_York" } })),
        ok(doc! { "year": 2016, "month": 12, "day": 31, "hour": 20, "minute": 29, "second": 9, "millisecond": 123 })
    );
    assert_eq!(
        eval(bson!({ "$dateToParts": { "date": d.clone(), "iso8601": true } })),
        ok(
            doc! { "isoWeekYear": 2016, "isoWeek": 52, "isoDayOfWeek": 7, "hour": 1, "minute": 29, "second": 9, "millisecond": 123 }
        )
    );
    assert_eq!(eval(bson!({ "$dateToParts": { "date": d.clone(), "iso8601": null } })), NULL);
    assert_eq!(eval(bson!({ "$dateToParts": { "date": null } })), NULL);
    assert_eq!(eval(bson!({ "$dateToParts": { "date": d.clone(), "iso8601": 1 } })), Err(40521));
    assert_eq!(eval(bson!({ "$dateToParts": { "date": 1 } })), Err(16006));
    assert_eq!(eval(bson!({ "$dateToParts": d })), Err(40524));
    assert_eq!(eval(bson!({ "$dateToParts": { "date": 1, "x": 1 } })), Err(40520));
    assert_eq!(eval(bson!({ "$dateToParts": {} })), Err(40522));
}

#[test]
fn date_from_parts_calendar_iso_and_carry() {
    assert_eq!(
        eval(bson!({ "$dateFromParts": { "year": 2017, "month": 2, "day": 8, "hour": 12 } })),
        ok(date("2017-02-08T12:00:00Z"))
    );
    assert_eq!(
        eval(
            bson!({ "$dateFromParts": { "year": 2016, "month": 12, "day": 31, "hour": 23, "minute": 46, "second": 12, "timezone": "America/New_York" } })
        ),
        ok(date("2017-01-01T04:46:12Z"))
    );
    assert_eq!(
        eval(bson!({ "$dateFromParts": { "isoWeekYear": 2017, "isoWeek": 6, "isoDayOfWeek": 3 } })),
        ok(date("2017-02-08T00:00:00Z"))
    );
    // Out-of-range parts carry, as in mongod's docs.
    assert_eq!(
        eval(bson!({ "$dateFromParts": { "year": 2017, "month": 14, "day": 1 } })),
        ok(date("2018-02-01T00:00:00Z"))
    );
    assert_eq!(
        eval(bson!({ "$dateFromParts": { "year": 2017, "month": 0, "day": 1 } })),
        ok(date("2016-12-01T00:00:00Z"))
    );
    assert_eq!(
        eval(bson!({ "$dateFromParts": { "year": 2017, "month": 1, "day": 0 } })),
        ok(date("2016-12-31T00:00:00Z"))
    );
    assert_eq!(eval(bson!({ "$dateFromParts": { "year": 2017, "hour": -1 } })), ok(date("2016-12-31T23:00:00Z")));
    assert_eq!(
        eval(bson!({ "$dateFromParts": { "year": 2017, "millisecond": 3_600_000_i64 } })),
        ok(date("2017-01-01T01:00:00Z"))
    );
    assert_eq!(eval(bson!({ "$dateFromParts": { "year": 2017.0, "month": 2.0 } })), ok(date("2017-02-01T00:00:00Z")));
    // A wall-clock time skipped by the spring-forward lands after it.
    assert_eq!(
        eval(
            bson!({ "$dateFromParts": { "year": 2021, "month": 3, "day": 14, "hour": 2, "minute": 30, "timezone": "America/New_York" } })
        ),
        ok(date("2021-03-14T07:30:00Z"))
    );
    assert_eq!(eval(bson!({ "$dateFromParts": { "year": null } })), NULL);
    assert_eq!(eval(bson!({ "$dateFromParts": { "year": 2017, "timezone": null } })), NULL);
}

#[test]
fn date_from_parts_errors() {
    assert_eq!(eval(bson!({ "$dateFromParts": 1 })), Err(40519));
    assert_eq!(eval(bson!({ "$dateFromParts": { "year": 2017, "x": 1 } })), Err(40518));
    assert_eq!(eval(bson!({ "$dateFromParts": { "month": 1 } })), Err(40516));
    assert_eq!(eval(bson!({ "$dateFromParts": { "year": 2017, "isoWeek": 1 } })), Err(40489));
    assert_eq!(eval(bson!({ "$dateFromParts": { "isoWeekYear": 2017, "month": 1 } })), Err(40525));
    assert_eq!(eval(bson!({ "$dateFromParts": { "year": 2017.5 } })), Err(40515));
    assert_eq!(
        message(bson!({ "$dateFromParts": { "year": "x" } })),
        "'year' must evaluate to an integer, found string with value \"x\""
    );
    assert_eq!(eval(bson!({ "$dateFromParts": { "year": 2017, "month": 40000 } })), Err(31034));
    assert_eq!(eval(bson!({ "$dateFromParts": { "year": 10000 } })), Err(40523));
    assert_eq!(eval(bson!({ "$dateFromParts": { "isoWeekYear": 0 } })), Err(31095));
}

#[test]
fn date_add_and_subtract() {
    let add = |start: &str, unit: &str, amount: i64, tz: &str| {
        eval(bson!({ "$dateAdd": { "startDate": date(start), "unit": unit, "amount": amount, "timezone": tz } }))
    };
    assert_eq!(add("2021-01-31T10:00:00Z", "month", 1, "UTC"), ok(date("2021-02-28T10:00:00Z")));
    assert_eq!(add("2020-01-31T10:00:00Z", "month", 1, "UTC"), ok(date("2020-02-29T10:00:00Z")));
    assert_eq!(add("2020-02-29T10:00:00Z", "year", 1, "UTC"), ok(date("2021-02-28T10:00:00Z")));
    assert_eq!(add("2020-11-30T10:00:00Z", "quarter", 1, "UTC"), ok(date("2021-02-28T10:00:00Z")));
    assert_eq!(add("2020-01-01T00:00:00Z", "week", 2, "UTC"), ok(date("2020-01-15T00:00:00Z")));
    assert_eq!(add("2020-01-01T00:00:00Z", "millisecond", -1, "UTC"), ok(date("2019-12-31T23:59:59.999Z")));
    // A day across New York's spring-forward keeps noon; 24 hours do not.
    assert_eq!(add("2021-03-13T17:00:00Z", "day", 1, "America/New_York"), ok(date("2021-03-14T16:00:00Z")));
    assert_eq!(add("2021-03-13T17:00:00Z", "hour", 24, "America/New_York"), ok(date("2021-03-14T17:00:00Z")));
    assert_eq!(
        eval(bson!({ "$dateSubtract": { "startDate": date("2021-03-31T00:00:00Z"), "unit": "month", "amount": 1 } })),
        ok(date("2021-02-28T00:00:00Z"))
    );
    // The amount may be any integral number.
    assert_eq!(
        eval(bson!({ "$dateAdd": { "startDate": date("2021-01-01T00:00:00Z"), "unit": "day", "amount": 2.0 } })),
        ok(date("2021-01-03T00:00:00Z"))
    );
}

#[test]
fn date_add_nulls_and_errors() {
    let d = date("2021-01-01T00:00:00Z");
    assert_eq!(eval(bson!({ "$dateAdd": { "startDate": null, "unit": "day", "amount": 1 } })), NULL);
    assert_eq!(eval(bson!({ "$dateAdd": { "startDate": d.clone(), "unit": null, "amount": 1 } })), NULL);
    assert_eq!(eval(bson!({ "$dateAdd": { "startDate": d.clone(), "unit": "day", "amount": null } })), NULL);
    assert_eq!(
        eval(bson!({ "$dateAdd": { "startDate": d.clone(), "unit": "day", "amount": 1, "timezone": null } })),
        NULL
    );
    assert_eq!(eval(bson!({ "$dateAdd": 1 })), Err(5166400));
    assert_eq!(message(bson!({ "$dateSubtract": 1 })), "$dateSubtract expects an object as its argument");
    assert_eq!(
        eval(bson!({ "$dateAdd": { "startDate": d.clone(), "unit": "day", "amount": 1, "x": 1 } })),
        Err(5166401)
    );
    assert_eq!(
        message(bson!({ "$dateAdd": { "startDate": d.clone(), "unit": "day", "amount": 1, "x": 1 } })),
        "Unrecognized argument to $dateAdd: x. Expected arguments are startDate, unit, amount, and optionally timezone."
    );
    assert_eq!(eval(bson!({ "$dateAdd": { "startDate": d.clone(), "unit": "day" } })), Err(5166402));
    assert_eq!(eval(bson!({ "$dateAdd": { "startDate": "x", "unit": "day", "amount": 1 } })), Err(5166403));
    assert_eq!(eval(bson!({ "$dateAdd": { "startDate": d.clone(), "unit": "day", "amount": 1.5 } })), Err(5166405));
    assert_eq!(eval(bson!({ "$dateAdd": { "startDate": d.clone(), "unit": 1, "amount": 1 } })), Err(5439013));
    assert_eq!(eval(bson!({ "$dateAdd": { "startDate": d.clone(), "unit": "days", "amount": 1 } })), Err(9));
    assert_eq!(
        message(bson!({ "$dateAdd": { "startDate": d.clone(), "unit": "days", "amount": 1 } })),
        "$dateAdd parameter 'unit' value parsing failed :: caused by :: unknown time unit value: days"
    );
    assert_eq!(
        eval(bson!({ "$dateAdd": { "startDate": d.clone(), "unit": "year", "amount": i64::MAX } })),
        Err(5976500)
    );
    assert_eq!(
        message(bson!({ "$dateSubtract": { "startDate": d.clone(), "unit": "day", "amount": i64::MAX } })),
        "invalid dateAdd 'amount' parameter value: -9223372036854775807 day"
    );
    assert_eq!(
        eval(bson!({ "$dateAdd": { "startDate": d.clone(), "unit": "year", "amount": 300_000_000 } })),
        Err(5166406)
    );
    assert_eq!(eval(bson!({ "$dateSubtract": { "startDate": d, "unit": "day", "amount": i64::MIN } })), Err(6045000));
}

#[test]
fn date_trunc_units_bins_and_zones() {
    let trunc = |spec: bson::Document| eval(bson!({ "$dateTrunc": spec }));
    let d = date("2021-03-17T14:47:35.123Z"); // a Wednesday
    assert_eq!(trunc(doc! { "date": d.clone(), "unit": "year" }), ok(date("2021-01-01T00:00:00Z")));
    assert_eq!(trunc(doc! { "date": d.clone(), "unit": "quarter" }), ok(date("2021-01-01T00:00:00Z")));
    assert_eq!(trunc(doc! { "date": d.clone(), "unit": "month" }), ok(date("2021-03-01T00:00:00Z")));
    assert_eq!(trunc(doc! { "date": d.clone(), "unit": "month", "binSize": 2 }), ok(date("2021-03-01T00:00:00Z")));
    // Bins count from 2000-01-01: 254 months to March 2021, so five-month bins start at 250.
    assert_eq!(trunc(doc! { "date": d.clone(), "unit": "month", "binSize": 5 }), ok(date("2020-11-01T00:00:00Z")));
    // mongod's documented example.
    assert_eq!(
        trunc(doc! { "date": date("2020-05-18T14:10:30Z"), "unit": "month", "binSize": 6 }),
        ok(date("2020-01-01T00:00:00Z"))
    );
    assert_eq!(trunc(doc! { "date": d.clone(), "unit": "week" }), ok(date("2021-03-14T00:00:00Z")));
    assert_eq!(
        trunc(doc! { "date": d.clone(), "unit": "week", "startOfWeek": "MONDAY" }),
        ok(date("2021-03-15T00:00:00Z"))
    );
    assert_eq!(trunc(doc! { "date": d.clone(), "unit": "day" }), ok(date("2021-03-17T00:00:00Z")));
    assert_eq!(trunc(doc! { "date": d.clone(), "unit": "hour" }), ok(date("2021-03-17T14:00:00Z")));
    assert_eq!(trunc(doc! { "date": d.clone(), "unit": "minute", "binSize": 15 }), ok(date("2021-03-17T14:45:00Z")));
    assert_eq!(trunc(doc! { "date": d.clone(), "unit": "second" }), ok(date("2021-03-17T14:47:35Z")));
    // Hours on a half-hour zone's clock; days on New York's (EDT since March 14).
    assert_eq!(
        trunc(doc! { "date": d.clone(), "unit": "hour", "timezone": "Asia/Kolkata" }),
        ok(date("2021-03-17T14:30:00Z"))
    );
    assert_eq!(
        trunc(doc! { "date": d.clone(), "unit": "day", "timezone": "America/New_York" }),
        ok(date("2021-03-17T04:00:00Z"))
    );
    assert_eq!(
        trunc(doc! { "date": date("2021-03-14T12:00:00Z"), "unit": "day", "timezone": "America/New_York" }),
        ok(date("2021-03-14T05:00:00Z"))
    );
    // Hour bins count from 2000-01-01T00:00 EST: in summer, two-hour bins start at odd hours
    // of the wall clock (as in mongod).
    assert_eq!(
        trunc(
            doc! { "date": date("2021-07-01T12:30:00Z"), "unit": "hour", "binSize": 2, "timezone": "America/New_York" }
        ),
        ok(date("2021-07-01T11:00:00Z"))
    );
}

#[test]
fn date_trunc_nulls_and_errors() {
    let d = date("2021-03-17T14:47:35.123Z");
    let trunc = |spec: bson::Document| eval(bson!({ "$dateTrunc": spec }));
    assert_eq!(trunc(doc! { "date": null, "unit": "day" }), NULL);
    assert_eq!(trunc(doc! { "date": d.clone(), "unit": null }), NULL);
    assert_eq!(trunc(doc! { "date": d.clone(), "unit": "day", "binSize": null }), NULL);
    assert_eq!(trunc(doc! { "date": d.clone(), "unit": "week", "startOfWeek": null }), NULL);
    // startOfWeek matters only for weeks.
    assert_eq!(trunc(doc! { "date": d.clone(), "unit": "day", "startOfWeek": 5 }), ok(date("2021-03-17T00:00:00Z")));
    assert_eq!(eval(bson!({ "$dateTrunc": 1 })), Err(5439007));
    assert_eq!(trunc(doc! { "date": d.clone(), "unit": "day", "x": 1 }), Err(5439008));
    assert_eq!(trunc(doc! { "unit": "day" }), Err(5439009));
    assert_eq!(trunc(doc! { "date": d.clone() }), Err(5439010));
    assert_eq!(trunc(doc! { "date": "x", "unit": "day" }), Err(5166307));
    assert_eq!(trunc(doc! { "date": d.clone(), "unit": "day", "binSize": 1.5 }), Err(5439017));
    assert_eq!(trunc(doc! { "date": d.clone(), "unit": "day", "binSize": 0 }), Err(5439018));
    assert_eq!(trunc(doc! { "date": d.clone(), "unit": "week", "startOfWeek": 1 }), Err(5439015));
    assert_eq!(trunc(doc! { "date": d.clone(), "unit": "week", "startOfWeek": "someday" }), Err(5439016));
    assert_eq!(trunc(doc! { "date": d.clone(), "unit": "day", "timezone": "Nowhere" }), Err(40485));
    assert_eq!(
        message(bson!({ "$dateTrunc": { "date": d, "unit": "day", "timezone": "Nowhere" } })),
        "$dateTrunc parameter 'timezone' value parsing failed :: caused by :: unrecognized time zone identifier: \"Nowhere\""
    );
}

#[test]
fn date_diff_counts_boundaries() {
    let diff = |a: &str, b: &str, unit: &str, extra: bson::Document| {
        let mut spec = doc! { "startDate": date(a), "endDate": date(b), "unit": unit };
        spec.extend(extra);
        eval(bson!({ "$dateDiff": spec }))
    };
    assert_eq!(diff("2020-12-31T23:59:59Z", "2021-01-01T00:00:01Z", "year", doc! {}), ok(1_i64));
    assert_eq!(diff("2021-01-01T00:00:00Z", "2021-12-31T23:59:59Z", "year", doc! {}), ok(0_i64));
    assert_eq!(diff("2021-01-31T00:00:00Z", "2021-02-01T00:00:00Z", "month", doc! {}), ok(1_i64));
    assert_eq!(diff("2021-03-31T00:00:00Z", "2021-04-01T00:00:00Z", "quarter", doc! {}), ok(1_i64));
    assert_eq!(diff("2021-04-01T00:00:00Z", "2021-01-01T00:00:00Z", "quarter", doc! {}), ok(-1_i64));
    assert_eq!(diff("2021-03-13T23:00:00Z", "2021-03-14T01:00:00Z", "day", doc! {}), ok(1_i64));
    assert_eq!(diff("2021-03-13T23:00:00Z", "2021-03-14T01:00:00Z", "millisecond", doc! {}), ok(7_200_000_i64));
    // 2021-03-13 is a Saturday: a Sunday boundary is crossed, a Monday one is not.
    assert_eq!(diff("2021-03-13T00:00:00Z", "2021-03-14T00:00:00Z", "week", doc! {}), ok(1_i64));
    assert_eq!(diff("2021-03-13T00:00:00Z", "2021-03-14T00:00:00Z", "week", doc! { "startOfWeek": "mon" }), ok(0_i64));
    // New York: 00:30 EST to 03:30 EDT is two hours, and the same calendar day.
    let ny = doc! { "timezone": "America/New_York" };
    assert_eq!(diff("2021-03-14T05:30:00Z", "2021-03-14T07:30:00Z", "hour", ny.clone()), ok(2_i64));
    assert_eq!(diff("2021-03-14T05:30:00Z", "2021-03-14T07:30:00Z", "day", ny.clone()), ok(0_i64));
    assert_eq!(diff("2021-03-14T04:30:00Z", "2021-03-14T05:30:00Z", "day", ny), ok(1_i64));
    // Kolkata's hours begin at :30 UTC.
    let kolkata = doc! { "timezone": "Asia/Kolkata" };
    assert_eq!(diff("2021-01-01T10:20:00Z", "2021-01-01T10:40:00Z", "hour", kolkata), ok(1_i64));
    assert_eq!(diff("2021-01-01T10:20:00Z", "2021-01-01T10:40:00Z", "hour", doc! {}), ok(0_i64));
}

#[test]
fn date_diff_nulls_and_errors() {
    let d = date("2021-01-01T00:00:00Z");
    let diff = |spec: bson::Document| eval(bson!({ "$dateDiff": spec }));
    assert_eq!(diff(doc! { "startDate": null, "endDate": d.clone(), "unit": "day" }), NULL);
    assert_eq!(diff(doc! { "startDate": d.clone(), "endDate": "$nope", "unit": "day" }), NULL);
    assert_eq!(diff(doc! { "startDate": d.clone(), "endDate": d.clone(), "unit": "day", "timezone": null }), NULL);
    assert_eq!(eval(bson!({ "$dateDiff": 1 })), Err(5166301));
    assert_eq!(diff(doc! { "startDate": d.clone(), "endDate": d.clone(), "unit": "day", "x": 1 }), Err(5166302));
    assert_eq!(diff(doc! { "endDate": d.clone(), "unit": "day" }), Err(5166303));
    assert_eq!(diff(doc! { "startDate": d.clone(), "unit": "day" }), Err(5166304));
    assert_eq!(diff(doc! { "startDate": d.clone(), "endDate": d.clone() }), Err(5166305));
    assert_eq!(diff(doc! { "startDate": 1, "endDate": d.clone(), "unit": "day" }), Err(5166307));
    assert_eq!(
        message(bson!({ "$dateDiff": { "startDate": d.clone(), "endDate": 1, "unit": "day" } })),
        "$dateDiff requires 'endDate' to be a date, but got int"
    );
    assert_eq!(diff(doc! { "startDate": d.clone(), "endDate": d.clone(), "unit": "fortnight" }), Err(9));
    let (min, max) = (Bson::DateTime(DateTime::MIN), Bson::DateTime(DateTime::MAX));
    assert_eq!(diff(doc! { "startDate": min, "endDate": max, "unit": "millisecond" }), Err(5166308));
}

#[test]
fn date_from_string_free_form() {
    let parse = |spec: bson::Document| eval(bson!({ "$dateFromString": spec }));
    assert_eq!(parse(doc! { "dateString": "2017-02-08T12:10:40.787Z" }), ok(date("2017-02-08T12:10:40.787Z")));
    assert_eq!(parse(doc! { "dateString": "2017-02-08" }), ok(date("2017-02-08T00:00:00Z")));
    assert_eq!(parse(doc! { "dateString": "2017-02-08 12:10" }), ok(date("2017-02-08T12:10:00Z")));
    assert_eq!(parse(doc! { "dateString": "02/08/2017" }), ok(date("2017-02-08T00:00:00Z")));
    assert_eq!(parse(doc! { "dateString": "2017/02/08 12:10:40.5" }), ok(date("2017-02-08T12:10:40.500Z")));
    assert_eq!(
        parse(doc! { "dateString": "2017-02-08T12:10:40.787", "timezone": "America/New_York" }),
        ok(date("2017-02-08T17:10:40.787Z"))
    );
    assert_eq!(parse(doc! { "dateString": "2017-07-12T22:23:55+05:30" }), ok(date("2017-07-12T16:53:55Z")));
    assert_eq!(parse(doc! { "dateString": "2017-07-12T22:23:55 GMT+0530" }), ok(date("2017-07-12T16:53:55Z")));
    assert_eq!(parse(doc! { "dateString": "2017-07-12 22:23:55 Asia/Kolkata" }), ok(date("2017-07-12T16:53:55Z")));
    assert_eq!(
        parse(doc! { "dateString": "2017-07-12T22:23:55Z", "timezone": "UTC" }),
        ok(date("2017-07-12T22:23:55Z"))
    );
    assert_eq!(parse(doc! { "dateString": "July 4, 2017" }), ok(date("2017-07-04T00:00:00Z")));
    assert_eq!(parse(doc! { "dateString": "Tuesday 2017-07-04" }), ok(date("2017-07-04T00:00:00Z")));
    assert_eq!(parse(doc! { "dateString": "4 jul 2017 10:56" }), ok(date("2017-07-04T10:56:00Z")));
    assert_eq!(parse(doc! { "dateString": "Tue, 04 Jul 2017 10:56:02 GMT" }), ok(date("2017-07-04T10:56:02Z")));
    assert_eq!(parse(doc! { "dateString": "Tue Jul 04 2017 12:56:02 GMT+0200" }), ok(date("2017-07-04T10:56:02Z")));
}

#[test]
fn date_from_string_with_format() {
    let parse = |spec: bson::Document| eval(bson!({ "$dateFromString": spec }));
    assert_eq!(parse(doc! { "dateString": "15-06-2018", "format": "%d-%m-%Y" }), ok(date("2018-06-15T00:00:00Z")));
    assert_eq!(
        parse(doc! { "dateString": "2018-06-15 11:12:13.456 +0200", "format": "%Y-%m-%d %H:%M:%S.%L %z" }),
        ok(date("2018-06-15T09:12:13.456Z"))
    );
    assert_eq!(parse(doc! { "dateString": "2018 W24 5", "format": "%G W%V %u" }), ok(date("2018-06-15T00:00:00Z")));
    // A date written back by the same format reads as itself.
    assert_eq!(
        parse(doc! { "dateString": "2017-07-04T10:56:02Z", "format": "%Y-%m-%dT%H:%M:%SZ" }),
        ok(date("2017-07-04T10:56:02Z"))
    );
    assert_eq!(parse(doc! { "dateString": "15 Jun 2018", "format": "%d %b %Y" }), ok(date("2018-06-15T00:00:00Z")));
    assert_eq!(parse(doc! { "dateString": "2018-166", "format": "%Y-%j" }), ok(date("2018-06-15T00:00:00Z")));
    assert_eq!(
        parse(doc! { "dateString": "2018-06-15", "format": "%Y-%m-%d", "timezone": "Asia/Kolkata" }),
        ok(date("2018-06-14T18:30:00Z"))
    );
}

#[test]
fn date_from_string_nulls_and_errors() {
    let parse = |spec: bson::Document| eval(bson!({ "$dateFromString": spec }));
    assert_eq!(parse(doc! { "dateString": null }), NULL);
    assert_eq!(parse(doc! { "dateString": null, "onNull": "none" }), ok("none"));
    assert_eq!(parse(doc! { "dateString": "2017-02-08", "timezone": null }), NULL);
    assert_eq!(parse(doc! { "dateString": "2017-02-08", "format": null }), NULL);
    assert_eq!(parse(doc! { "dateString": "nonsense" }), Err(241));
    assert_eq!(parse(doc! { "dateString": "2017-01" }), Err(241));
    assert_eq!(parse(doc! { "dateString": "2017-02-30" }), Err(241));
    assert_eq!(parse(doc! { "dateString": "Smarch 4, 2017" }), Err(241));
    assert_eq!(parse(doc! { "dateString": "17-07-04" }), Err(241));
    assert_eq!(parse(doc! { "dateString": 5 }), Err(241));
    assert_eq!(parse(doc! { "dateString": "nonsense", "onError": "bad" }), ok("bad"));
    assert_eq!(parse(doc! { "dateString": 5, "onError": "bad" }), ok("bad"));
    assert_eq!(parse(doc! { "dateString": "2017-02-08Z", "timezone": "Europe/London" }), Err(241));
    assert_eq!(parse(doc! { "dateString": "15-06-2018", "format": "%Y-%m-%d" }), Err(241));
    // mongod's own rejections: digit counts, ranges, the sign of %Z, an empty format.
    for (input, format) in [
        ("201", "%Y"),
        ("20i7", "%Y"),
        ("2017-01-01T00:1:00", "%Y-%m-%dT%H:%M:%S"),
        ("2017-01-01T00:00:1", "%Y-%m-%dT%H:%M:%S"),
        ("2017-01-01T00:00:00.i", "%Y-%m-%dT%H:%M:%S.%L"),
        ("2017-55", "%G-%V"),
        ("2017-8", "%G-%u"),
        ("2017-11", "%G-%u"),
        ("2017 500", "%G %Z"),
        ("2017 +i00", "%G %Z"),
        ("1/1/2017", ""),
        ("", ""),
    ] {
        assert_eq!(parse(doc! { "dateString": input, "format": format }), Err(241), "{input} as {format}");
    }
    assert_eq!(parse(doc! { "dateString": "2017 +330", "format": "%G %Z" }), ok(date("2017-01-01T18:30:00Z")));
    // The format and zone are checked before the input; onError does not catch them.
    assert_eq!(parse(doc! { "dateString": null, "format": 5 }), Err(40684));
    assert_eq!(parse(doc! { "dateString": "x", "format": "%Q", "onError": 1 }), Err(18536));
    assert_eq!(parse(doc! { "dateString": "x", "timezone": "Nowhere", "onError": 1 }), Err(40485));
    assert_eq!(eval(bson!({ "$dateFromString": "2017" })), Err(40540));
    assert_eq!(parse(doc! { "dateString": "2017", "x": 1 }), Err(40541));
    assert_eq!(parse(doc! { "format": "%Y" }), Err(40542));
}

#[test]
fn units_api_for_windows_and_densify() {
    let ny = Zone::parse("America/New_York").unwrap();
    let start = ms("2021-03-13T17:00:00Z");
    assert_eq!(units::add(start, TimeUnit::Day, 1, &ny).unwrap(), ms("2021-03-14T16:00:00Z"));
    assert_eq!(units::add(start, TimeUnit::Day, -1, &ny).unwrap(), ms("2021-03-12T17:00:00Z"));
    assert_eq!(
        units::truncate(start, TimeUnit::Week, 1, &ny, StartOfWeek::parse("Monday").unwrap()).unwrap(),
        ms("2021-03-08T05:00:00Z")
    );
    assert_eq!(TimeUnit::parse("hours").unwrap_err().code().code(), 9);
    assert_eq!(StartOfWeek::parse("sat"), Some(StartOfWeek(6)));
    assert_eq!(StartOfWeek::parse("satur"), None);
}

/// The instant of a wall-clock time in `zone`, as `$dateFromParts` reads it.
fn at(zone: &Zone, (y, mo, d): (i64, i64, i64), (h, mi, s, milli): (i64, i64, i64, i64)) -> i64 {
    let days = super::civil::days_from_civil(y, mo, d);
    zone.local_to_utc(days * 86_400_000 + h * 3_600_000 + mi * 60_000 + s * 1000 + milli)
}

#[test]
fn units_diff_matches_mongods_cases() {
    let ny = Zone::parse("America/New_York").unwrap();
    let eucla = Zone::parse("Australia/Eucla").unwrap();
    let sun = StartOfWeek::SUNDAY;
    let diff =
        |a: i64, b: i64, unit: TimeUnit, zone: &Zone, sow: StartOfWeek| units::diff(a, b, unit, zone, sow).unwrap();
    // Hours across both of New York's changes are elapsed hours.
    assert_eq!(diff(ms("2020-11-01T05:00:00Z"), ms("2020-11-01T06:00:00Z"), TimeUnit::Hour, &ny, sun), 1);
    assert_eq!(diff(ms("2020-11-01T06:00:00Z"), ms("2020-11-01T05:00:00Z"), TimeUnit::Hour, &ny, sun), -1);
    assert_eq!(diff(ms("2020-03-08T06:45:00Z"), ms("2020-03-08T07:00:00Z"), TimeUnit::Hour, &ny, sun), 1);
    assert_eq!(diff(ms("2020-03-08T07:00:00Z"), ms("2020-03-08T06:45:00Z"), TimeUnit::Hour, &ny, sun), -1);
    // Eucla is UTC+08:45: 20:55 to 21:05 local crosses an hour.
    assert_eq!(diff(ms("2020-11-10T12:10:00Z"), ms("2020-11-10T12:20:00Z"), TimeUnit::Hour, &eucla, sun), 1);
    assert_eq!(
        diff(at(&ny, (1999, 1, 1), (0, 0, 0, 0)), at(&ny, (2001, 1, 1), (1, 0, 0, 0)), TimeUnit::Hour, &ny, sun),
        17545
    );
    assert_eq!(
        diff(
            at(&ny, (1585, 11, 8), (1, 55, 0, 0)),
            at(&ny, (2030, 11, 8), (1, 30, 59, 999)),
            TimeUnit::Minute,
            &ny,
            sun
        ),
        234_047_495
    );
    assert_eq!(
        diff(
            at(&ny, (2020, 11, 8), (2, 10, 16, 999)),
            at(&ny, (2020, 11, 8), (1, 30, 15, 999)),
            TimeUnit::Second,
            &ny,
            sun
        ),
        -2401
    );
    assert_eq!(
        diff(at(&ny, (1583, 1, 1), (0, 0, 0, 0)), at(&ny, (1601, 1, 1), (0, 0, 0, 0)), TimeUnit::Day, &ny, sun),
        6575
    );
    assert_eq!(
        diff(at(&ny, (520, 3, 1), (0, 0, 0, 0)), at(&ny, (2020, 3, 1), (0, 0, 0, 0)), TimeUnit::Month, &ny, sun),
        18000
    );
    assert_eq!(
        diff(
            at(&ny, (2000, 12, 31), (23, 59, 59, 500)),
            at(&ny, (1500, 9, 30), (23, 59, 59, 999)),
            TimeUnit::Quarter,
            &ny,
            sun
        ),
        -2001
    );
    let mon = StartOfWeek::parse("monday").unwrap();
    let wed = StartOfWeek::parse("wednesday").unwrap();
    let week = |a: (i64, i64), b: (i64, i64), sow| {
        diff(at(&ny, (2020, a.0, a.1), (0, 0, 0, 0)), at(&ny, (2020, b.0, b.1), (0, 0, 0, 0)), TimeUnit::Week, &ny, sow)
    };
    assert_eq!(week((11, 2), (11, 15), mon), 1);
    assert_eq!(week((11, 8), (11, 9), mon), 1);
    assert_eq!(week((11, 10), (10, 8), mon), -5);
    assert_eq!(week((11, 7), (11, 15), sun), 2);
    assert_eq!(week((11, 4), (11, 10), wed), 0);
}

#[test]
fn units_add_keeps_the_wall_clock_across_dst() {
    let ams = Zone::parse("Europe/Amsterdam").unwrap();
    let ny = Zone::parse("America/New_York").unwrap();
    let add = |start: &str, unit: TimeUnit, n: i64, zone: &Zone| units::add(ms(start), unit, n, zone).unwrap();
    // Amsterdam falls back at 2020-10-25T01:00Z.
    assert_eq!(add("2020-10-25T00:50:05Z", TimeUnit::Hour, 1, &ams), ms("2020-10-25T01:50:05Z"));
    assert_eq!(add("2020-10-25T00:50:05Z", TimeUnit::Day, 1, &ams), ms("2020-10-26T01:50:05Z"));
    assert_eq!(add("2020-10-25T01:10:05Z", TimeUnit::Day, -1, &ams), ms("2020-10-24T00:10:05Z"));
    // Month ends in the zone's calendar.
    assert_eq!(add("2021-05-30T22:30:00Z", TimeUnit::Month, -1, &ams), ms("2021-04-29T22:30:00Z"));
    assert_eq!(add("2021-05-30T22:30:00Z", TimeUnit::Quarter, -5, &ams), ms("2020-02-28T23:30:00Z"));
    assert_eq!(add("2020-12-31T03:00:00Z", TimeUnit::Month, 2, &ny), ms("2021-03-01T03:00:00Z"));
    // New York springs forward at 2020-03-08T07:00Z.
    assert_eq!(add("2020-03-08T06:50:00Z", TimeUnit::Day, 1, &ny), ms("2020-03-09T05:50:00Z"));
    assert_eq!(add("2020-03-08T07:20:00Z", TimeUnit::Day, -1, &ny), ms("2020-03-07T08:20:00Z"));
    assert_eq!(add("2020-03-08T07:20:00Z", TimeUnit::Minute, -25, &ny), ms("2020-03-08T06:55:00Z"));
}

#[test]
fn date_to_string_before_the_epoch() {
    // mongod's own formatting cases: Tuesday 1969-12-30T13:42:23.211Z.
    let format =
        "%Y/%m/%d %H:%M:%S:%L, dayOfYear: %j, dayOfWeek: %w, week: %U, isoYear: %G, isoWeek: %V, isoDayOfWeek: %u";
    let d = Bson::DateTime(DateTime::from_millis(-123_456_789));
    assert_eq!(
        eval(bson!({ "$dateToString": { "date": d.clone(), "format": format } })),
        ok(
            "1969/12/30 13:42:23:211, dayOfYear: 364, dayOfWeek: 3, week: 52, isoYear: 1970, isoWeek: 01, isoDayOfWeek: 2"
        )
    );
    assert_eq!(
        eval(bson!({ "$dateToString": { "date": d, "format": format, "timezone": "America/New_York" } })),
        ok(
            "1969/12/30 08:42:23:211, dayOfYear: 364, dayOfWeek: 3, week: 52, isoYear: 1970, isoWeek: 01, isoDayOfWeek: 2"
        )
    );
    let epoch = Bson::DateTime(DateTime::from_millis(0));
    assert_eq!(
        eval(bson!({ "$dateToString": { "date": epoch, "format": format, "timezone": "America/New_York" } })),
        ok(
            "1969/12/31 19:00:00:000, dayOfYear: 365, dayOfWeek: 4, week: 52, isoYear: 1970, isoWeek: 01, isoDayOfWeek: 3"
        )
    );
}

#[test]
fn zones_accept_links_and_legacy_names() {
    // Backward-compatible links and legacy names are in mongod's table too.
    let offsets =
        [("US/Eastern", -18_000), ("Asia/Calcutta", 19_800), ("GMT", 0), ("Etc/GMT+5", -18_000), ("EST5EDT", -18_000)];
    for (name, offset) in offsets {
        assert_eq!(Zone::parse(name).map(|z| z.offset_seconds(0)).ok(), Some(offset), "{name}");
    }
    assert!(Zone::parse("UTC").unwrap().is_utc());
    assert!(Zone::parse("+00:00").unwrap().is_utc());
    assert!(!Zone::parse("Etc/UTC").unwrap().is_utc());
    for bad in ["Z", "", "+5", "+05:3", "+05-30", "utc"] {
        assert_eq!(Zone::parse(bad).unwrap_err().code().code(), 40485, "{bad:?}");
    }
}
