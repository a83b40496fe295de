//! Time-series buckets, as mongod 7.0 stores them (version 1, uncompressed): measurements
//! grouped by their metaField value into buckets spanning at most `bucketMaxSpanSeconds`,
//! `{_id, control: {version: 1, min, max}, meta?, data: {<field>: {"0": v0, "1": v1, ...}}}`,
//! unpacked back into measurements, and the bucket-level filter a measurement filter implies.
//! Pure: documents in, documents out.

use std::cmp::Ordering;

use bson::raw::CStr;
use bson::{Bson, DateTime, Document, RawBson, RawBsonRef, RawDocument, RawDocumentBuf, doc, oid::ObjectId};

use super::order::compare_values;
use crate::error::{Error, ErrorCode, Result};

/// The prefix of a time-series collection's bucket collection name.
pub const BUCKETS_PREFIX: &str = "system.buckets.";

/// The most measurements one bucket holds (mongod's `timeseriesBucketMaxCount` default).
pub const BUCKET_MAX_COUNT: usize = 1000;

/// The most bytes of measurements one bucket holds (mongod's `timeseriesBucketMaxSize`).
pub const BUCKET_MAX_SIZE: usize = 125 * 1024;

/// A time-series collection's bucketing parameters, as stored in its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeseriesSpec {
    /// The field holding each measurement's date.
    pub time_field: String,
    /// The field whose value groups measurements into buckets.
    pub meta_field: Option<String>,
    /// The widest time range of one bucket.
    pub max_span_secs: i64,
    /// A bucket's minimum time is its first measurement's, rounded down to this.
    pub rounding_secs: i64,
}

impl TimeseriesSpec {
    /// The spec a stored `timeseries` option describes (already validated at creation).
    pub fn from_options(timeseries: &Document) -> Option<Self> {
        let number = |key: &str| match timeseries.get(key) {
            Some(Bson::Int32(n)) => Some(i64::from(*n)),
            Some(Bson::Int64(n)) => Some(*n),
            _ => None,
        };
        let max_span_secs = number("bucketMaxSpanSeconds")?;
        Some(Self {
            time_field: timeseries.get_str("timeField").ok()?.to_owned(),
            meta_field: timeseries.get_str("metaField").ok().map(str::to_owned),
            max_span_secs,
            rounding_secs: number("bucketRoundingSeconds").unwrap_or(match max_span_secs {
                86_400 => 3_600,
                2_592_000 => 86_400,
                _ => 60,
            }),
        })
    }

    /// The spec of an `$_internalUnpackBucket` stage's argument `{timeField, metaField?,
    /// bucketMaxSpanSeconds}`.
    ///
    /// # Errors
    /// 9 FailedToParse when a field is missing or of the wrong type.
    pub fn from_unpack_stage(spec: &RawDocument) -> Result<Self> {
        let bad = || {
            Error::new(
                ErrorCode::FailedToParse,
                "$_internalUnpackBucket requires a string 'timeField' and an integer 'bucketMaxSpanSeconds'",
            )
        };
        let document = Document::try_from(spec).map_err(|_| bad())?;
        let mut options = document.clone();
        options.remove("exclude");
        Self::from_options(&options).ok_or_else(bad)
    }

    /// `date` rounded down to the bucket rounding (mongod's `roundTimestampToGranularity`:
    /// whole seconds, truncated toward zero).
    pub fn round_down(&self, date: DateTime) -> DateTime {
        let seconds = date.timestamp_millis() / 1000;
        let rounded = seconds - seconds % self.rounding_secs.max(1);
        DateTime::from_millis(rounded.saturating_mul(1000))
    }
}

/// Checks a measurement as mongod does before bucketing it: its timeField must be a date.
///
/// # Errors
/// 2 BadValue, mongod's message, when the field is missing or not a date.
pub fn measurement_time(spec: &TimeseriesSpec, measurement: &RawDocument) -> Result<DateTime> {
    match measurement.get(&spec.time_field) {
        Ok(Some(RawBsonRef::DateTime(date))) => Ok(date),
        _ => Err(Error::new(
            ErrorCode::BadValue,
            format!("'{}' must be present and contain a valid BSON UTC datetime value", spec.time_field),
        )),
    }
}

/// One bucket being filled.
struct OpenBucket {
    /// A stored bucket's `_id`, when it was reopened; `None` for a new one.
    id: Option<Bson>,
    /// Whether a measurement was added (a reopened bucket left as it was is not rewritten).
    changed: bool,
    meta: Option<Bson>,
    min_time: DateTime,
    count: usize,
    bytes: usize,
    min: Document,
    max: Document,
    data: Document,
}

impl OpenBucket {
    fn new(spec: &TimeseriesSpec, meta: Option<Bson>, time: DateTime) -> Self {
        Self {
            id: None,
            changed: false,
            meta,
            min_time: spec.round_down(time),
            count: 0,
            bytes: 0,
            min: Document::new(),
            max: Document::new(),
            data: Document::new(),
        }
    }

    /// A stored bucket, reopened to take more measurements; `None` when it is not a bucket of
    /// `spec`'s shape or is full.
    fn reopen(spec: &TimeseriesSpec, bucket: &RawDocument) -> Option<Self> {
        let stored = Document::try_from(bucket).ok()?;
        let control = stored.get_document("control").ok()?;
        let min = control.get_document("min").ok()?.clone();
        let max = control.get_document("max").ok()?.clone();
        let min_time = *min.get_datetime(&spec.time_field).ok()?;
        let data = stored.get_document("data").ok()?.clone();
        let count = data.get_document(&spec.time_field).ok()?.len();
        if count >= BUCKET_MAX_COUNT || control.get_i32("version").ok()? != 1 {
            return None;
        }
        Some(Self {
            id: Some(stored.get("_id")?.clone()),
            changed: false,
            meta: stored.get("meta").cloned(),
            min_time,
            count,
            bytes: bucket.as_bytes().len(),
            min,
            max,
            data,
        })
    }

    fn fits(&self, spec: &TimeseriesSpec, time: DateTime, bytes: usize) -> bool {
        let end = self.min_time.timestamp_millis().saturating_add(spec.max_span_secs.saturating_mul(1000));
        self.count < BUCKET_MAX_COUNT
            && (self.count == 0 || self.bytes + bytes <= BUCKET_MAX_SIZE)
            && time >= self.min_time
            && time.timestamp_millis() < end
    }

    fn add(&mut self, spec: &TimeseriesSpec, measurement: &Document, bytes: usize) {
        let row = self.count.to_string();
        for (field, value) in measurement {
            if Some(field) == spec.meta_field.as_ref() {
                continue;
            }
            keep_extreme(&mut self.min, field, value, Ordering::Less);
            keep_extreme(&mut self.max, field, value, Ordering::Greater);
            match self.data.get_mut(field) {
                Some(Bson::Document(column)) => {
                    column.insert(row.clone(), value.clone());
                }
                _ => {
                    self.data.insert(field.clone(), doc! { row.clone(): value.clone() });
                }
            }
        }
        self.count += 1;
        self.bytes += bytes;
        self.changed = true;
    }

    fn finish(mut self, spec: &TimeseriesSpec) -> Document {
        // The control minimum of the time is the bucket's rounded start, as mongod's.
        self.min.insert(spec.time_field.clone(), Bson::DateTime(self.min_time));
        let mut bucket = doc! {
            "_id": self.id.unwrap_or_else(|| Bson::ObjectId(bucket_id(self.min_time))),
            "control": { "version": 1, "min": self.min, "max": self.max },
        };
        if let Some(meta) = self.meta {
            bucket.insert("meta", meta);
        }
        bucket.insert("data", self.data);
        bucket
    }
}

/// Keeps in `extremes[field]` the smaller (`Less`) or larger (`Greater`) of it and `value`, in
/// BSON order.
fn keep_extreme(extremes: &mut Document, field: &str, value: &Bson, keep: Ordering) {
    let replace = match (extremes.get(field), bson::RawBson::try_from(value.clone())) {
        (None, _) => true,
        (Some(current), Ok(candidate)) => match bson::RawBson::try_from(current.clone()) {
            Ok(current) => compare_values(candidate.as_raw_bson_ref(), current.as_raw_bson_ref()) == keep,
            Err(_) => false,
        },
        (Some(_), Err(_)) => false,
    };
    if replace {
        extremes.insert(field.to_owned(), value.clone());
    }
}

/// A bucket `_id`: an ObjectId whose timestamp is the bucket's rounded minimum time (seconds
/// since the epoch, as mongod's, so the clustered `_id` order is time order), the rest unique.
pub fn bucket_id(min_time: DateTime) -> ObjectId {
    let mut bytes = ObjectId::new().bytes();
    let seconds = u32::try_from(min_time.timestamp_millis().div_euclid(1000)).unwrap_or(0);
    bytes[..4].copy_from_slice(&seconds.to_be_bytes());
    ObjectId::from_bytes(bytes)
}

/// The lowest ObjectId with `seconds` as its timestamp (`0xff..` fill for the highest).
pub fn id_bound(seconds: i64, fill: u8) -> ObjectId {
    let mut bytes = [fill; 12];
    let seconds = u32::try_from(seconds.clamp(0, i64::from(u32::MAX))).unwrap_or(0);
    bytes[..4].copy_from_slice(&seconds.to_be_bytes());
    ObjectId::from_bytes(bytes)
}

/// Groups `measurements` (each checked by [`measurement_time`], in order) into new buckets:
/// a measurement joins a bucket of the batch with its metaField value whose span its time
/// fits and that is not full, else opens a new one. A measurement without `_id` gets an
/// ObjectId, as mongod's inserts add one.
///
/// # Errors
/// [`measurement_time`]'s, and 1 InternalError for a measurement that does not decode.
pub fn build_buckets(spec: &TimeseriesSpec, measurements: &[&RawDocument]) -> Result<Vec<Document>> {
    Ok(fill_buckets(spec, &[], measurements)?.into_iter().map(|(_, bucket)| bucket).collect())
}

/// As [`build_buckets`], but a measurement may first join one of the `stored` buckets (as
/// mongod reopens a bucket a measurement fits). Returns the buckets to write: each with
/// whether it replaces a stored one (same `_id`) or is new; stored buckets nothing joined are
/// left out.
///
/// # Errors
/// As [`build_buckets`].
pub fn fill_buckets(
    spec: &TimeseriesSpec,
    stored: &[RawDocumentBuf],
    measurements: &[&RawDocument],
) -> Result<Vec<(bool, Document)>> {
    let mut open: Vec<OpenBucket> = Vec::new();
    // Stored buckets are decoded only when a measurement joins one.
    let mut reopened = vec![false; stored.len()];
    for raw in measurements {
        let time = measurement_time(spec, raw)?;
        let mut measurement =
            Document::try_from(*raw).map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))?;
        if !measurement.contains_key("_id") {
            let mut with_id = doc! { "_id": ObjectId::new() };
            with_id.extend(measurement);
            measurement = with_id;
        }
        let meta = spec.meta_field.as_ref().and_then(|field| measurement.get(field).cloned());
        let bytes = raw.as_bytes().len();
        let mut slot = open.iter().position(|bucket| bucket.meta == meta && bucket.fits(spec, time, bytes));
        if slot.is_none() {
            for (i, candidate) in stored.iter().enumerate() {
                // IMPORTANT: a full candidate is skipped, not taken as "no bucket fits".
                if reopened.get(i).copied().unwrap_or(true) || !may_take(spec, candidate, meta.as_ref(), time) {
                    continue;
                }
                let Some(bucket) = OpenBucket::reopen(spec, candidate).filter(|b| b.fits(spec, time, bytes)) else {
                    continue;
                };
                if let Some(used) = reopened.get_mut(i) {
                    *used = true;
                }
                open.push(bucket);
                slot = Some(open.len() - 1);
                break;
            }
        }
        let bucket = match slot {
            Some(i) => open.get_mut(i),
            None => {
                open.push(OpenBucket::new(spec, meta, time));
                open.last_mut()
            }
        };
        if let Some(bucket) = bucket {
            bucket.add(spec, &measurement, bytes);
        }
    }
    Ok(open
        .into_iter()
        .filter(|bucket| bucket.changed)
        .map(|bucket| (bucket.id.is_some(), bucket.finish(spec)))
        .collect())
}

/// Whether the stored `bucket` has the metaField value `meta` and a span `time` fits, read
/// without decoding it.
fn may_take(spec: &TimeseriesSpec, bucket: &RawDocument, meta: Option<&Bson>, time: DateTime) -> bool {
    let stored_meta = bucket.get("meta").ok().flatten().and_then(|value| Bson::try_from(RawBson::from(value)).ok());
    if stored_meta.as_ref() != meta {
        return false;
    }
    let min = match bucket.get("control") {
        Ok(Some(RawBsonRef::Document(control))) => match control.get("min") {
            Ok(Some(RawBsonRef::Document(min))) => match min.get(&spec.time_field) {
                Ok(Some(RawBsonRef::DateTime(min))) => min,
                _ => return false,
            },
            _ => return false,
        },
        _ => return false,
    };
    let end = min.timestamp_millis().saturating_add(spec.max_span_secs.saturating_mul(1000));
    time >= min && time.timestamp_millis() < end
}

/// The measurements of `bucket`, in order, each `{<timeField>, <metaField>?, <other
/// fields in the bucket's column order>}` as mongod's unpacking builds them.
///
/// # Errors
/// 1 InternalError for a bucket that is not one (a hand-written document).
pub fn unpack(spec: &TimeseriesSpec, bucket: &RawDocument) -> Result<Vec<RawDocumentBuf>> {
    let corrupt = |what: &str| Error::new(ErrorCode::InternalError, format!("invalid time-series bucket: {what}"));
    let Ok(Some(RawBsonRef::Document(data))) = bucket.get("data") else { return Err(corrupt("no data")) };
    let Ok(Some(RawBsonRef::Document(times))) = data.get(&spec.time_field) else {
        return Err(corrupt("no time column"));
    };
    let meta = match (&spec.meta_field, bucket.get("meta")) {
        (Some(field), Ok(Some(value))) => Some((field, value)),
        _ => None,
    };
    let mut columns: Vec<_> = data
        .iter()
        .filter_map(std::result::Result::ok)
        .filter(|(name, _)| name.as_str() != spec.time_field.as_str())
        .filter_map(|(name, column)| match column {
            RawBsonRef::Document(column) => Some((name, column.iter().peekable())),
            _ => None,
        })
        .collect();
    let time_name = field_name(&spec.time_field)?;
    let meta = match meta {
        Some((field, value)) => Some((field_name(field)?, value)),
        None => None,
    };
    let mut out = Vec::new();
    for entry in times {
        let (row, time) = entry.map_err(|e| corrupt(&e.to_string()))?;
        let mut measurement = RawDocumentBuf::new();
        measurement.append(time_name, RawBson::from(time));
        if let Some((field, value)) = meta {
            measurement.append(field, RawBson::from(value));
        }
        // Columns hold rows in order, some missing: each is read once, in step with the times
        // (a lookup by key per row would scan the column again and again).
        for (column_name, column) in &mut columns {
            if let Some(Ok((key, value))) = column.peek()
                && key.as_str() == row.as_str()
            {
                measurement.append(*column_name, RawBson::from(*value));
                column.next();
            }
        }
        out.push(measurement);
    }
    Ok(out)
}

/// `field` as a BSON key.
fn field_name(field: &str) -> Result<&CStr> {
    <&CStr>::try_from(field).map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))
}

/// The bucket-level filter implied by a measurement filter `filter` (a `$match` argument):
/// every measurement it matches lies in a bucket the returned filter matches. Date ranges on
/// the timeField become bounds on `control.min`/`control.max` and on `_id` (whose time is the
/// bucket's rounded minimum); equalities on the metaField (or its subfields) become equalities
/// on `meta`. `None` when nothing can be pushed down.
pub fn bucket_filter(spec: &TimeseriesSpec, filter: &Document) -> Option<Document> {
    let mut clauses = Vec::new();
    collect_clauses(spec, filter, &mut clauses);
    match clauses.len() {
        0 => None,
        1 => clauses.pop(),
        _ => Some(doc! { "$and": clauses.into_iter().map(Bson::Document).collect::<Vec<_>>() }),
    }
}

fn collect_clauses(spec: &TimeseriesSpec, filter: &Document, out: &mut Vec<Document>) {
    for (field, condition) in filter {
        if field == "$and" {
            if let Bson::Array(parts) = condition {
                for part in parts {
                    if let Bson::Document(part) = part {
                        collect_clauses(spec, part, out);
                    }
                }
            }
            continue;
        }
        if field.starts_with('$') {
            continue;
        }
        if field == &spec.time_field {
            time_clauses(spec, condition, out);
            continue;
        }
        if let Some(meta) = &spec.meta_field {
            let rest = if field == meta {
                Some(String::new())
            } else {
                field.strip_prefix(meta.as_str()).and_then(|r| r.strip_prefix('.')).map(|r| format!(".{r}"))
            };
            if let Some(rest) = rest
                && meta_pushable(condition)
            {
                out.push(doc! { format!("meta{rest}"): condition.clone() });
            }
        }
    }
}

/// Whether a condition on the metaField can apply to `meta` unchanged: every measurement of a
/// bucket has the bucket's meta value, so any condition that is no `$expr`-like operator can.
fn meta_pushable(condition: &Bson) -> bool {
    match condition {
        Bson::Document(ops) => ops.keys().all(|op| {
            matches!(op.as_str(), "$eq" | "$ne" | "$gt" | "$gte" | "$lt" | "$lte" | "$in" | "$nin" | "$exists")
        }),
        _ => true,
    }
}

fn time_clauses(spec: &TimeseriesSpec, condition: &Bson, out: &mut Vec<Document>) {
    let control = |which: &str| format!("control.{which}.{}", spec.time_field);
    let span_ms = spec.max_span_secs.saturating_mul(1000);
    let ops: Vec<(&str, DateTime)> = match condition {
        Bson::DateTime(date) => vec![("$eq", *date)],
        Bson::Document(ops) => ops
            .iter()
            .filter_map(|(op, value)| match value {
                Bson::DateTime(date) => Some((op.as_str(), *date)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    for (op, date) in ops {
        let millis = date.timestamp_millis();
        match op {
            "$gt" | "$gte" => {
                // The bucket's max must reach the bound; its min is at most one span before it.
                out.push(doc! { control("max"): { op: date } });
                let earliest = millis.saturating_sub(span_ms).div_euclid(1000);
                out.push(doc! { "_id": { "$gte": id_bound(earliest, 0) } });
            }
            "$lt" | "$lte" => {
                out.push(doc! { control("min"): { op: date } });
                // The `_id` time is the rounded min, at most the bound.
                out.push(doc! { "_id": { "$lte": id_bound(millis.div_euclid(1000), 0xff) } });
            }
            "$eq" => {
                out.push(doc! { control("min"): { "$lte": date } });
                out.push(doc! { control("max"): { "$gte": date } });
            }
            _ => {}
        }
    }
}

/// The stages of a time-series read with its filter pushed down: when `stages` start with
/// `$_internalUnpackBucket` followed by a `$match`, a `$match` on the buckets
/// ([`bucket_filter`]) goes first, so the read's planner serves it (by `_id` range) and only
/// the buckets that can hold a match are unpacked; the measurement `$match` still runs after
/// unpacking. `None` when there is nothing to push down.
pub fn push_down(stages: &[RawBsonRef<'_>]) -> Option<Vec<RawDocumentBuf>> {
    let single = |stage: Option<&RawBsonRef<'_>>, name: &str| -> Option<RawDocumentBuf> {
        let RawBsonRef::Document(stage) = stage? else { return None };
        let mut fields = stage.iter();
        match (fields.next(), fields.next()) {
            (Some(Ok((key, RawBsonRef::Document(spec)))), None) if key == name => Some(spec.to_owned()),
            _ => None,
        }
    };
    let unpack = single(stages.first(), "$_internalUnpackBucket")?;
    let filter = single(stages.get(1), "$match")?;
    let spec = TimeseriesSpec::from_unpack_stage(&unpack).ok()?;
    let pushed = bucket_filter(&spec, &Document::try_from(filter.as_ref()).ok()?)?;
    let mut out = vec![RawDocumentBuf::try_from(&doc! { "$match": pushed }).ok()?];
    for stage in stages {
        let RawBsonRef::Document(stage) = stage else { return None };
        out.push((*stage).to_owned());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;

    use super::*;

    fn spec() -> TimeseriesSpec {
        TimeseriesSpec { time_field: "t".into(), meta_field: Some("m".into()), max_span_secs: 3600, rounding_secs: 60 }
    }

    fn at(secs: i64) -> DateTime {
        DateTime::from_millis(secs * 1000)
    }

    #[test]
    fn timeseries_buckets_group_by_meta_and_span() {
        let docs = [
            rawdoc! { "_id": 1, "t": at(1_000_030), "m": "a", "v": 5 },
            rawdoc! { "_id": 2, "t": at(1_000_090), "m": "b", "v": 1 },
            rawdoc! { "_id": 3, "t": at(1_000_100), "m": "a", "v": 2 },
            // Past the span of the first bucket of "a": a new bucket.
            rawdoc! { "_id": 4, "t": at(1_004_000), "m": "a", "w": "x" },
        ];
        let refs: Vec<&RawDocument> = docs.iter().map(|d| d.as_ref()).collect();
        let buckets = build_buckets(&spec(), &refs).unwrap();
        assert_eq!(buckets.len(), 3);
        let first = &buckets[0];
        assert_eq!(first.get_str("meta").unwrap(), "a");
        let control = first.get_document("control").unwrap();
        assert_eq!(control.get_document("min").unwrap().get_datetime("t").unwrap(), &at(1_000_020));
        assert_eq!(control.get_document("max").unwrap().get_datetime("t").unwrap(), &at(1_000_100));
        assert_eq!(control.get_document("min").unwrap().get_i32("v").unwrap(), 2);
        assert_eq!(first.get_document("data").unwrap().get_document("v").unwrap(), &doc! { "0": 5, "1": 2 });
        assert_eq!(first.get_object_id("_id").unwrap().timestamp().timestamp_millis(), 1_000_020_000);
    }

    #[test]
    fn timeseries_fill_reopens_a_stored_bucket_the_measurement_fits() {
        let first = [rawdoc! { "_id": 1, "t": at(1_000_020), "m": "a", "v": 1 }];
        let refs: Vec<&RawDocument> = first.iter().map(|d| d.as_ref()).collect();
        let stored: Vec<RawDocumentBuf> =
            build_buckets(&spec(), &refs).unwrap().iter().map(|b| RawDocumentBuf::try_from(b).unwrap()).collect();
        let later = [
            rawdoc! { "_id": 2, "t": at(1_000_500), "m": "a", "v": 9 },
            rawdoc! { "_id": 3, "t": at(1_000_500), "m": "b", "v": 9 },
            rawdoc! { "_id": 4, "t": at(1_009_000), "m": "a", "v": 9 },
        ];
        let refs: Vec<&RawDocument> = later.iter().map(|d| d.as_ref()).collect();
        let filled = fill_buckets(&spec(), &stored, &refs).unwrap();
        assert_eq!(filled.len(), 3);
        let (replaces, reopened) = &filled[0];
        assert!(*replaces);
        let stored_id = Document::try_from(stored[0].as_ref()).unwrap().get("_id").cloned();
        assert_eq!(reopened.get("_id"), stored_id.as_ref());
        assert_eq!(reopened.get_document("data").unwrap().get_document("_id").unwrap(), &doc! { "0": 1, "1": 2 });
        assert_eq!(reopened.get_document("control").unwrap().get_document("max").unwrap().get_i32("v").unwrap(), 9);
        assert!(!filled[1].0 && !filled[2].0, "another meta and a time past the span open new buckets");
    }

    #[test]
    fn timeseries_fill_reopens_again_and_again_past_a_full_bucket() {
        let full: Vec<RawDocumentBuf> = (0..BUCKET_MAX_COUNT as i64)
            .map(|i| rawdoc! { "_id": i, "t": at(1_000_020), "m": { "sensor": "z" } })
            .collect();
        let refs: Vec<&RawDocument> = full.iter().map(|d| d.as_ref()).collect();
        let full = RawDocumentBuf::try_from(&build_buckets(&spec(), &refs).unwrap()[0]).unwrap();
        let mut stored: Vec<RawDocumentBuf> = Vec::new();
        for i in 0..5 {
            let one = [rawdoc! { "_id": i, "t": at(1_000_020 + i64::from(i)), "m": { "sensor": "z" } }];
            let refs: Vec<&RawDocument> = one.iter().map(|d| d.as_ref()).collect();
            let filled = fill_buckets(&spec(), &stored, &refs).unwrap();
            assert_eq!(filled.len(), 1);
            assert_eq!(filled[0].0, i > 0, "measurement {i}");
            stored = vec![full.clone(), RawDocumentBuf::try_from(&filled[0].1).unwrap()];
        }
    }

    #[test]
    fn timeseries_unpack_orders_time_meta_then_columns() {
        let docs = [
            rawdoc! { "v": 1, "_id": 7, "t": at(100), "m": {"k": 1} },
            rawdoc! { "_id": 8, "t": at(101), "m": {"k": 1} },
        ];
        let refs: Vec<&RawDocument> = docs.iter().map(|d| d.as_ref()).collect();
        let buckets = build_buckets(&spec(), &refs).unwrap();
        let bucket = RawDocumentBuf::try_from(&buckets[0]).unwrap();
        let out = unpack(&spec(), &bucket).unwrap();
        assert_eq!(
            Document::try_from(out[0].as_ref()).unwrap(),
            doc! { "t": at(100), "m": {"k": 1}, "v": 1, "_id": 7 }
        );
        assert_eq!(Document::try_from(out[1].as_ref()).unwrap(), doc! { "t": at(101), "m": {"k": 1}, "_id": 8 });
    }

    #[test]
    fn timeseries_measurement_without_date_is_bad_value() {
        let error = measurement_time(&spec(), &rawdoc! { "t": 1 }).unwrap_err();
        assert_eq!(error.code(), ErrorCode::BadValue);
        assert_eq!(error.message(), "'t' must be present and contain a valid BSON UTC datetime value");
    }

    #[test]
    fn timeseries_pushdown_bounds_time_and_meta() {
        let filter = doc! { "t": { "$gte": at(7200), "$lt": at(10_800) }, "m": "a", "v": 3 };
        let pushed = bucket_filter(&spec(), &filter).unwrap();
        let clauses = pushed.get_array("$and").unwrap();
        assert!(clauses.contains(&Bson::Document(doc! { "control.max.t": { "$gte": at(7200) } })));
        assert!(clauses.contains(&Bson::Document(doc! { "_id": { "$gte": id_bound(3600, 0) } })));
        assert!(clauses.contains(&Bson::Document(doc! { "control.min.t": { "$lt": at(10_800) } })));
        assert!(clauses.contains(&Bson::Document(doc! { "meta": "a" })));
        assert_eq!(clauses.len(), 5);
        assert_eq!(bucket_filter(&spec(), &doc! { "v": 1 }), None);
    }
}
