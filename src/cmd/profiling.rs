//! Profiling commands: `profile` (the database profiler's level, the slow-operation threshold
//! and sample rate, the profile filter) and `monarchQueryStats` (per-query-shape latency).

use std::sync::Arc;

use bson::{Bson, Document, RawBsonRef, doc};

use super::options::is_generic_argument;
use super::{CommandRequest, RequestCtx};
use crate::error::{Error, ErrorCode, Result};
use crate::obs::profiler::{DbSettings, ProfileFilter, ensure_collection, level_of};

/// The note mongod adds to the `profile` reply while a filter is set.
const FILTER_NOTE: &str =
    "When a filter expression is set, slowms and sampleRate are not used for profiling and slow-query log lines.";
/// Rows `monarchQueryStats` returns unless `limit` says otherwise.
const DEFAULT_QUERY_STATS_LIMIT: i64 = 20;

/// `profile: <level>`: `-1` reads the settings; `0`, `1`, `2` set this database's level (and,
/// with `slowms` / `sampleRate`, the server-wide slow-operation threshold and sample rate;
/// with `filter`, this database's profile filter, `"unset"` clearing it). The reply holds the
/// settings as they were before.
pub fn profile(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let level = match req.command_value() {
        Some(value) => level_of(value).ok_or_else(|| req.wrong_type("profile", value, "long"))?,
        None => return Err(Error::new(ErrorCode::FailedToParse, "profile requires a level")),
    };
    if !(-1..=2).contains(&level) {
        return Err(Error::new(ErrorCode::BadValue, format!("Invalid profiling level: {level}")));
    }
    let mut slow_ms = None;
    let mut sample_rate = None;
    let mut filter: Option<Option<Arc<ProfileFilter>>> = None;
    for element in req.body().iter().skip(1) {
        let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        match key.as_str() {
            "slowms" => slow_ms = Some(level_of(value).ok_or_else(|| req.wrong_type("slowms", value, "long"))?),
            "sampleRate" => {
                let rate = match value {
                    RawBsonRef::Double(n) => n,
                    RawBsonRef::Int32(n) => f64::from(n),
                    RawBsonRef::Int64(n) => n as f64,
                    other => return Err(req.wrong_type("sampleRate", other, "double")),
                };
                if !(0.0..=1.0).contains(&rate) {
                    return Err(Error::new(ErrorCode::BadValue, "'sampleRate' must be between 0.0 and 1.0 inclusive"));
                }
                sample_rate = Some(rate);
            }
            "filter" => {
                filter = Some(match value {
                    RawBsonRef::Document(spec) => Some(Arc::new(ProfileFilter::parse(spec)?)),
                    RawBsonRef::String("unset") => None,
                    RawBsonRef::String(other) => {
                        return Err(Error::new(
                            ErrorCode::BadValue,
                            format!("Unrecognized profile filter value: \"{other}\"; expected an object or \"unset\""),
                        ));
                    }
                    other => return Err(req.wrong_type("filter", other, "object or string")),
                });
            }
            other if is_generic_argument(other) => {}
            other => {
                return Err(Error::new(
                    ErrorCode::Location40415,
                    format!("BSON field 'profile.{other}' is an unknown field."),
                ));
            }
        }
    }
    let observers = ctx.observers;
    let db = req.db();
    let current = observers.profiler.settings(db);
    let reply = settings_reply(&current, observers.slow_log.slow_ms(), observers.slow_log.sample_rate());
    if level == -1 {
        return Ok(reply);
    }
    let level = i32::try_from(level).unwrap_or(0);
    if level > 0 {
        ensure_collection(&ctx.state.storage, db)?;
    }
    let filter = filter.unwrap_or_else(|| current.filter.clone());
    observers.slow_log.set(slow_ms, sample_rate);
    observers.profiler.set(db, DbSettings { level, filter: filter.clone() });
    tracing::info!(
        target: "COMMAND",
        id = 48742,
        db,
        from_level = current.level,
        to_level = level,
        slowms = observers.slow_log.slow_ms(),
        sampleRate = observers.slow_log.sample_rate(),
        filter = filter.as_ref().map(|f| f.spec.to_string()).unwrap_or_default(),
        "Profiler settings changed"
    );
    Ok(reply)
}

/// `{was, slowms, sampleRate}` and, with a filter, `filter` and mongod's note.
fn settings_reply(settings: &DbSettings, slow_ms: i64, sample_rate: f64) -> Document {
    let mut reply = doc! {
        "was": settings.level,
        "slowms": i32::try_from(slow_ms).map_or(Bson::Int64(slow_ms), Bson::Int32),
        "sampleRate": sample_rate,
    };
    if let Some(filter) = &settings.filter {
        reply.insert("filter", filter.spec.clone());
        reply.insert("note", FILTER_NOTE);
    }
    reply
}

/// `monarchQueryStats: 1, limit: <n>` (on `admin`): the query shapes with the most total time,
/// with count, total time, latency percentiles and documents examined per returned.
pub fn monarch_query_stats(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    if req.db() != "admin" {
        return Err(Error::new(
            ErrorCode::Unauthorized,
            "monarchQueryStats may only be run against the admin database.",
        ));
    }
    let limit = req.count_arg("limit")?.unwrap_or(DEFAULT_QUERY_STATS_LIMIT);
    let limit =
        usize::try_from(limit).map_err(|_| Error::new(ErrorCode::BadValue, "limit must be a non-negative number"))?;
    let rows: Vec<Bson> =
        ctx.observers.latency.top_shapes(limit).iter().map(|row| Bson::Document(row.to_document())).collect();
    Ok(doc! { "queryStats": rows })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::TestServer;

    #[test]
    fn profile_sets_the_level_of_one_database() -> std::result::Result<(), bson::error::Error> {
        let shared = TestServer::new();
        let read = shared.run_command(doc! { "profile": -1, "$db": "a" });
        assert_eq!(read.get_i32("was")?, 0);
        assert_eq!(read.get_i32("slowms")?, 100);
        let set = shared.run_command(doc! { "profile": 2, "slowms": 50, "$db": "a" });
        assert_eq!(set.get_i32("was")?, 0);
        assert_eq!(set.get_i32("slowms")?, 100, "the reply holds the previous settings");
        let after = shared.run_command(doc! { "profile": -1, "$db": "a" });
        assert_eq!(after.get_i32("was")?, 2);
        assert_eq!(after.get_i32("slowms")?, 50);
        assert_eq!(shared.run_command(doc! { "profile": -1, "$db": "b" }).get_i32("was")?, 0);
        Ok(())
    }

    #[test]
    fn profile_rejects_bad_arguments() {
        let shared = TestServer::new();
        let code = |body: Document| shared.run_command(body).get_i32("code").ok();
        assert_eq!(code(doc! { "profile": 3, "$db": "a" }), Some(2));
        assert_eq!(code(doc! { "profile": "x", "$db": "a" }), Some(14));
        assert_eq!(code(doc! { "profile": 1, "sampleRate": 2.0, "$db": "a" }), Some(2));
        assert_eq!(code(doc! { "profile": 1, "bogus": 1, "$db": "a" }), Some(40415));
        assert_eq!(code(doc! { "profile": 1, "filter": { "$bogus": 1 }, "$db": "a" }), Some(2));
    }

    #[test]
    fn profile_filter_is_echoed_with_the_note() -> std::result::Result<(), bson::error::Error> {
        let shared = TestServer::new();
        shared.run_command(doc! { "profile": 1, "filter": { "millis": { "$gt": 5 } }, "$db": "a" });
        let read = shared.run_command(doc! { "profile": -1, "$db": "a" });
        assert_eq!(read.get_document("filter")?, &doc! { "millis": { "$gt": 5 } });
        assert_eq!(read.get_str("note")?, FILTER_NOTE);
        shared.run_command(doc! { "profile": 1, "filter": "unset", "$db": "a" });
        assert!(!shared.run_command(doc! { "profile": -1, "$db": "a" }).contains_key("filter"));
        Ok(())
    }
}
