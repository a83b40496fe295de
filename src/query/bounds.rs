//! Index bounds: from a filter, the intervals of values each field of an index key pattern
//! may hold for a document to match, in mongod's shape (`{a: ["[5, 5]"], b: ["[MinKey,
//! MaxKey]"]}`).
//!
//! Bounds are always a superset of what matches: the matcher still runs on every document
//! an index scan finds, so a predicate the bounds cannot express (`$ne`, `$or`, `$expr`, ...)
//! only costs selectivity, never correctness. Two rules keep them sound:
//! - type bracketing: `$gt: 5` covers numbers above 5 only (a string never matches it);
//! - on a multikey index the predicates of one field are not intersected (`{a: {$gt: 5,
//!   $lt: 3}}` matches `{a: [1, 9]}`), so only the first one bounds the field.

use std::cmp::Ordering;

use bson::oid::ObjectId;
use bson::{DateTime, RawBson, RawBsonRef, RawDocument, Timestamp};

use super::index_key::{KeyOrder, KeyPattern};
use super::order::compare_values;
use super::path;
use super::wildcard::Wildcard;

/// An interval of values.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// Lower end.
    pub start: RawBson,
    /// Whether `start` itself is in.
    pub start_inclusive: bool,
    /// Upper end.
    pub end: RawBson,
    /// Whether `end` itself is in.
    pub end_inclusive: bool,
}

impl Interval {
    /// `[v, v]`.
    pub fn point(value: RawBson) -> Self {
        Self { start: value.clone(), start_inclusive: true, end: value, end_inclusive: true }
    }

    /// `[MinKey, MaxKey]`: every value.
    pub fn all() -> Self {
        Self { start: RawBson::MinKey, start_inclusive: true, end: RawBson::MaxKey, end_inclusive: true }
    }

    /// Whether this is a single value.
    pub fn is_point(&self) -> bool {
        self.start_inclusive && self.end_inclusive && cmp(&self.start, &self.end).is_eq()
    }

    fn is_empty(&self) -> bool {
        match cmp(&self.start, &self.end) {
            Ordering::Greater => true,
            Ordering::Equal => !(self.start_inclusive && self.end_inclusive),
            Ordering::Less => false,
        }
    }

    /// Whether `value` lies inside.
    pub fn contains(&self, value: RawBsonRef<'_>) -> bool {
        let lower = compare_values(self.start.as_raw_bson_ref(), value);
        let upper = compare_values(value, self.end.as_raw_bson_ref());
        (lower.is_lt() || (lower.is_eq() && self.start_inclusive))
            && (upper.is_lt() || (upper.is_eq() && self.end_inclusive))
    }

    fn intersect(&self, other: &Interval) -> Interval {
        let (start, start_inclusive) = match cmp(&self.start, &other.start) {
            Ordering::Less => (other.start.clone(), other.start_inclusive),
            Ordering::Greater => (self.start.clone(), self.start_inclusive),
            Ordering::Equal => (self.start.clone(), self.start_inclusive && other.start_inclusive),
        };
        let (end, end_inclusive) = match cmp(&self.end, &other.end) {
            Ordering::Less => (self.end.clone(), self.end_inclusive),
            Ordering::Greater => (other.end.clone(), other.end_inclusive),
            Ordering::Equal => (self.end.clone(), self.end_inclusive && other.end_inclusive),
        };
        Interval { start, start_inclusive, end, end_inclusive }
    }

    /// mongod's rendering in explain: `[5, 5]`, `(5, inf.0]`, `["a", {})`.
    pub fn render(&self) -> String {
        format!(
            "{}{}, {}{}",
            if self.start_inclusive { '[' } else { '(' },
            render_value(&self.start),
            render_value(&self.end),
            if self.end_inclusive { ']' } else { ')' }
        )
    }
}

fn cmp(a: &RawBson, b: &RawBson) -> Ordering {
    compare_values(a.as_raw_bson_ref(), b.as_raw_bson_ref())
}

/// The bounds of one index for one filter: for each key pattern field, sorted disjoint
/// intervals (empty: nothing can match).
#[derive(Debug, Clone, PartialEq)]
pub struct IndexBounds {
    /// Per pattern field, in pattern order.
    pub fields: Vec<Vec<Interval>>,
    /// How many leading fields are bounded to points (the equality prefix).
    pub equality_prefix: usize,
    /// Whether any field is bounded at all.
    pub bounded: bool,
    /// Per field: whether the bounds exclude null (a missing field), which a sparse index
    /// needs, and which makes a key value stand for the document's own value.
    pub excludes_null: Vec<bool>,
    /// On a wildcard index, the path these bounds scan (its key pattern is then shown as
    /// `{$_path: 1, <path>: 1}`, as mongod shows it).
    pub wildcard_field: Option<String>,
}

impl IndexBounds {
    /// Bounds of `pattern` for `filter`; `multikey` indexes get no intersections and only
    /// their first field bounded; a `collated` index (string keys are collation keys) gets no
    /// bounds from regexes.
    pub fn for_filter(filter: &RawDocument, pattern: &KeyPattern, multikey: bool, collated: bool) -> Self {
        let mut conjuncts = Vec::new();
        collect_conjuncts(filter, &mut conjuncts);
        let mut fields = Vec::with_capacity(pattern.fields().len());
        let mut excludes_null = Vec::with_capacity(pattern.fields().len());
        let mut bounded = false;
        for (position, (field, order)) in pattern.fields().iter().enumerate() {
            let mut intervals = vec![Interval::all()];
            let mut constrained = false;
            if !(multikey && position > 0) {
                for (name, condition) in &conjuncts {
                    if *name != field.dotted() {
                        continue;
                    }
                    let Some(found) = condition_intervals(*condition, *order, multikey, collated) else { continue };
                    intervals = if constrained { intersect_all(&intervals, &found) } else { found };
                    constrained = true;
                    if multikey {
                        break;
                    }
                }
            }
            bounded |= constrained;
            excludes_null.push(constrained && !intervals.iter().any(|i| i.contains(RawBsonRef::Null)));
            fields.push(intervals);
        }
        let equality_prefix = fields.iter().take_while(|f| f.len() == 1 && f.iter().all(Interval::is_point)).count();
        Self { fields, equality_prefix, bounded, excludes_null, wildcard_field: None }
    }

    /// The bounds a wildcard index offers `filter`: one per path of its top-level conjunction
    /// the index covers, bounded by that path's first condition, when the condition can only
    /// match scalar values a key holds (mongod's rules: not null or missing, not documents or
    /// arrays, not paths through array positions); otherwise the query does not use the index
    /// for that path. `$exists: true` scans the path and every path under it (`["a", "a"]`,
    /// `["a.", "a/")`) when the index holds that whole subtree.
    pub fn for_wildcard(filter: &RawDocument, wildcard: &Wildcard, collated: bool) -> Vec<Self> {
        let covers = |field: &str| wildcard.covers(field);
        let mut conjuncts = Vec::new();
        collect_conjuncts(filter, &mut conjuncts);
        let mut seen: Vec<&str> = Vec::new();
        let mut all = Vec::new();
        for (name, condition) in &conjuncts {
            if name.starts_with('$') || seen.contains(name) {
                continue;
            }
            seen.push(name);
            let positional = name.split('.').any(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
            if positional || !covers(name) {
                continue;
            }
            if exists_true(*condition) && wildcard.covers_subtree(name) {
                let end = RawBson::String(format!("{name}/"));
                let under = Interval {
                    start: RawBson::String(format!("{name}.")),
                    start_inclusive: true,
                    end,
                    end_inclusive: false,
                };
                all.push(Self {
                    fields: vec![
                        vec![Interval::point(RawBson::String((*name).to_owned())), under],
                        vec![Interval::all()],
                    ],
                    equality_prefix: 0,
                    bounded: true,
                    excludes_null: vec![true, false],
                    wildcard_field: Some((*name).to_owned()),
                });
                continue;
            }
            if !wildcard_eligible(*condition) {
                continue;
            }
            let Some(intervals) = condition_intervals(*condition, KeyOrder::Ascending, true, collated) else {
                continue;
            };
            let points = intervals.iter().all(Interval::is_point) && intervals.len() == 1;
            all.push(Self {
                fields: vec![vec![Interval::point(RawBson::String((*name).to_owned()))], intervals],
                equality_prefix: 1 + usize::from(points),
                bounded: true,
                excludes_null: vec![true, true],
                wildcard_field: Some((*name).to_owned()),
            });
        }
        all
    }

    /// Bounds that admit every key.
    pub fn all(pattern: &KeyPattern) -> Self {
        let n = pattern.fields().len();
        Self {
            fields: vec![vec![Interval::all()]; n],
            equality_prefix: 0,
            bounded: false,
            excludes_null: vec![false; n],
            wildcard_field: None,
        }
    }

    /// Whether no document can match.
    pub fn is_empty(&self) -> bool {
        self.fields.iter().any(Vec::is_empty)
    }

    /// mongod's `indexBounds` document: field name to rendered intervals, in scan direction.
    pub fn render(&self, pattern: &KeyPattern, reverse: bool) -> bson::Document {
        let mut out = bson::Document::new();
        for (position, ((field, order), intervals)) in pattern.fields().iter().zip(&self.fields).enumerate() {
            let descending = (*order == KeyOrder::Descending) != reverse;
            let mut rendered: Vec<bson::Bson> = intervals
                .iter()
                .map(|i| {
                    if descending {
                        Interval {
                            start: i.end.clone(),
                            start_inclusive: i.end_inclusive,
                            end: i.start.clone(),
                            end_inclusive: i.start_inclusive,
                        }
                        .render()
                    } else {
                        i.render()
                    }
                })
                .map(bson::Bson::String)
                .collect();
            if descending {
                rendered.reverse();
            }
            let name = match &self.wildcard_field {
                Some(path) if position == 1 => path.as_str(),
                _ => field.dotted(),
            };
            out.insert(name, rendered);
        }
        out
    }
}

/// Whether a condition is exactly `{$exists: <true>}` (read as mongod's `trueValue`).
fn exists_true(condition: RawBsonRef<'_>) -> bool {
    let RawBsonRef::Document(doc) = condition else { return false };
    let mut ops = path::fields(doc);
    let truthy = |value: RawBsonRef<'_>| match value {
        RawBsonRef::Boolean(b) => b,
        RawBsonRef::Null | RawBsonRef::Undefined => false,
        number => super::number::Number::from_raw(number).is_none_or(|n| n.to_f64() != 0.0),
    };
    matches!(ops.next(), Some(("$exists", value)) if truthy(value)) && ops.next().is_none()
}

/// Whether a condition can only match values a wildcard index holds keys for: equalities and
/// comparisons to scalars other than null, `$in` of such, and regexes.
fn wildcard_eligible(condition: RawBsonRef<'_>) -> bool {
    let scalar = |value: RawBsonRef<'_>| {
        !matches!(
            value,
            RawBsonRef::Null
                | RawBsonRef::Undefined
                | RawBsonRef::Document(_)
                | RawBsonRef::Array(_)
                | RawBsonRef::MinKey
                | RawBsonRef::MaxKey
        )
    };
    match condition {
        RawBsonRef::Document(doc) if path::fields(doc).next().is_some_and(|(k, _)| k.starts_with('$')) => {
            path::fields(doc).all(|(op, value)| match op {
                "$eq" | "$gt" | "$gte" | "$lt" | "$lte" => scalar(value),
                "$in" => matches!(value, RawBsonRef::Array(items) if path::items(items).all(scalar)),
                "$regex" | "$options" => true,
                _ => false,
            })
        }
        value => scalar(value),
    }
}

/// The `(path, condition)` pairs of a filter's top-level conjunction (`$and` flattened).
fn collect_conjuncts<'a>(filter: &'a RawDocument, out: &mut Vec<(&'a str, RawBsonRef<'a>)>) {
    for (name, value) in path::fields(filter) {
        if name == "$and"
            && let RawBsonRef::Array(children) = value
        {
            for child in path::items(children) {
                if let RawBsonRef::Document(child) = child {
                    collect_conjuncts(child, out);
                }
            }
        } else if !name.starts_with('$') {
            out.push((name, value));
        }
    }
}

/// The intervals one field condition allows, or `None` when it does not bound the field.
/// On a `multikey` index only the first bounding operator counts.
/// Whether a document that matches `condition` (a query's condition on one field) must match
/// `required` (a partial index's condition on the same field): mongod's subset check of
/// comparisons, so that `{a: {$lte: 1}}` may use an index whose filter is `{a: {$lte: 1.5}}`.
///
/// `required` must be equalities and comparisons only; its intervals are intersected. The
/// condition is implied when one of its own operators alone admits only values inside them:
/// the element that satisfies that operator (a field may hold an array) satisfies all of
/// `required`'s.
pub fn condition_implies(condition: RawBsonRef<'_>, required: RawBsonRef<'_>) -> bool {
    let comparisons = |value: RawBsonRef<'_>| match value {
        RawBsonRef::Document(doc) if path::fields(doc).next().is_some_and(|(k, _)| k.starts_with('$')) => {
            path::fields(doc).all(|(op, _)| matches!(op, "$eq" | "$gt" | "$gte" | "$lt" | "$lte"))
        }
        RawBsonRef::Document(_) | RawBsonRef::Array(_) | RawBsonRef::RegularExpression(_) => false,
        _ => true,
    };
    if !comparisons(required) {
        return false;
    }
    let Some(allowed) = condition_intervals(required, KeyOrder::Ascending, false, false) else { return false };
    let inside = |intervals: &[Interval]| {
        intervals.iter().all(|interval| {
            allowed.iter().any(|outer| {
                let lower = cmp(&outer.start, &interval.start);
                let upper = cmp(&interval.end, &outer.end);
                (lower.is_lt() || (lower.is_eq() && (outer.start_inclusive || !interval.start_inclusive)))
                    && (upper.is_lt() || (upper.is_eq() && (outer.end_inclusive || !interval.end_inclusive)))
            })
        })
    };
    match condition {
        RawBsonRef::Document(doc) if path::fields(doc).next().is_some_and(|(k, _)| k.starts_with('$')) => {
            path::fields(doc).any(|(op, value)| {
                if !matches!(op, "$eq" | "$in" | "$gt" | "$gte" | "$lt" | "$lte") {
                    return false;
                }
                let Ok(op) = <&bson::raw::CStr>::try_from(op) else { return false };
                let mut single = bson::RawDocumentBuf::new();
                single.append(op, RawBson::from(value));
                let intervals = condition_intervals(RawBsonRef::Document(&single), KeyOrder::Ascending, false, false);
                intervals.is_some_and(|found| inside(&found))
            })
        }
        value => {
            comparisons(value)
                && condition_intervals(value, KeyOrder::Ascending, false, false).is_some_and(|found| inside(&found))
        }
    }
}

fn condition_intervals(
    condition: RawBsonRef<'_>,
    order: KeyOrder,
    multikey: bool,
    collated: bool,
) -> Option<Vec<Interval>> {
    // A regex under a collated index bounds nothing (its keys are not the strings).
    let regex_order = if collated { KeyOrder::Hashed } else { order };
    let operators = match condition {
        RawBsonRef::Document(doc) if path::fields(doc).next().is_some_and(|(k, _)| k.starts_with('$')) => doc,
        value => return equality_intervals(value, order, regex_order),
    };
    let mut result: Option<Vec<Interval>> = None;
    for (op, value) in path::fields(operators) {
        let found = match op {
            "$eq" => equality_intervals(value, order, regex_order),
            "$in" => match value {
                RawBsonRef::Array(values) => {
                    let mut all = Vec::with_capacity(path::items(values).count());
                    for v in path::items(values) {
                        all.extend(equality_intervals(v, order, regex_order)?);
                    }
                    Some(normalize(all))
                }
                _ => None,
            },
            "$gt" | "$gte" | "$lt" | "$lte" if order != KeyOrder::Hashed => range_interval(op, value).map(|i| vec![i]),
            "$exists" if order != KeyOrder::Hashed => match value {
                RawBsonRef::Boolean(false) => Some(vec![Interval::point(RawBson::Null)]),
                _ => None,
            },
            "$regex" if regex_order != KeyOrder::Hashed => match value {
                RawBsonRef::String(pattern) => {
                    let options = path::fields(operators)
                        .find(|(k, _)| *k == "$options")
                        .and_then(|(_, v)| if let RawBsonRef::String(s) = v { Some(s) } else { None })
                        .unwrap_or("");
                    Some(regex_intervals(pattern, options))
                }
                RawBsonRef::RegularExpression(regex) => {
                    Some(regex_intervals(regex.pattern.as_str(), regex.options.as_str()))
                }
                _ => None,
            },
            _ => None,
        };
        if let Some(found) = found {
            result = Some(match result {
                Some(current) => intersect_all(&current, &found),
                None => found,
            });
            if multikey {
                break;
            }
        }
    }
    result
}

/// An equality's intervals: the value itself; for an array, also its first element (the
/// index holds elements); for a regex, the strings it can match. Hashed fields hold hashes, so
/// only scalars that hash alike can be looked up.
/// `regex_order` is `Hashed` where a regex cannot bound (hashed or collated keys).
fn equality_intervals(value: RawBsonRef<'_>, order: KeyOrder, regex_order: KeyOrder) -> Option<Vec<Interval>> {
    match value {
        RawBsonRef::RegularExpression(regex) if regex_order != KeyOrder::Hashed => {
            Some(regex_intervals(regex.pattern.as_str(), regex.options.as_str()))
        }
        RawBsonRef::RegularExpression(_) => None,
        RawBsonRef::Array(_) if order == KeyOrder::Hashed => None,
        RawBsonRef::Array(items) => {
            let first = path::items(items).next().map_or(RawBson::Undefined, RawBson::from);
            Some(normalize(vec![Interval::point(first), Interval::point(RawBson::from(value))]))
        }
        RawBsonRef::Null if order == KeyOrder::Hashed => None,
        value => Some(vec![Interval::point(RawBson::from(value))]),
    }
}

/// `$gt`/`$gte`/`$lt`/`$lte` within the value's type bracket.
fn range_interval(op: &str, value: RawBsonRef<'_>) -> Option<Interval> {
    let (low, high) = bracket_ends(value)?;
    let value = RawBson::from(value);
    Some(match op {
        "$gt" => Interval { start: value, start_inclusive: false, end: high.0, end_inclusive: high.1 },
        "$gte" => Interval { start: value, start_inclusive: true, end: high.0, end_inclusive: high.1 },
        "$lt" => Interval { start: low.0, start_inclusive: low.1, end: value, end_inclusive: false },
        _ => Interval { start: low.0, start_inclusive: low.1, end: value, end_inclusive: true },
    })
}

/// The lowest and highest values of `value`'s type bracket, each with its inclusivity, as
/// mongod's bounds builder writes them; `None` for brackets with no simple ends.
fn bracket_ends(value: RawBsonRef<'_>) -> Option<((RawBson, bool), (RawBson, bool))> {
    Some(match value {
        RawBsonRef::Int32(_) | RawBsonRef::Int64(_) | RawBsonRef::Double(_) | RawBsonRef::Decimal128(_) => {
            if let RawBsonRef::Double(v) = value
                && v.is_nan()
            {
                return None;
            }
            ((RawBson::Double(f64::NEG_INFINITY), true), (RawBson::Double(f64::INFINITY), true))
        }
        RawBsonRef::String(_) | RawBsonRef::Symbol(_) => {
            ((RawBson::String(String::new()), true), (RawBson::Document(bson::RawDocumentBuf::new()), false))
        }
        RawBsonRef::DateTime(_) => (
            (RawBson::DateTime(DateTime::from_millis(i64::MIN)), true),
            (RawBson::DateTime(DateTime::from_millis(i64::MAX)), true),
        ),
        RawBsonRef::ObjectId(_) => (
            (RawBson::ObjectId(ObjectId::from_bytes([0; 12])), true),
            (RawBson::ObjectId(ObjectId::from_bytes([0xFF; 12])), true),
        ),
        RawBsonRef::Boolean(_) => ((RawBson::Boolean(false), true), (RawBson::Boolean(true), true)),
        RawBsonRef::Timestamp(_) => (
            (RawBson::Timestamp(Timestamp { time: 0, increment: 0 }), true),
            (RawBson::Timestamp(Timestamp { time: u32::MAX, increment: u32::MAX }), true),
        ),
        _ => return None,
    })
}

/// A regex's intervals: for a simple prefix (`^abc` without `i`/`m`/`x`), the strings from
/// the prefix to just past it; otherwise every string. The regex value itself is added,
/// since a stored regex equal to the pattern matches too.
fn regex_intervals(pattern: &str, options: &str) -> Vec<Interval> {
    let mut intervals = vec![Interval {
        start: RawBson::String(String::new()),
        start_inclusive: true,
        end: RawBson::Document(bson::RawDocumentBuf::new()),
        end_inclusive: false,
    }];
    if let Some(prefix) = simple_prefix(pattern, options)
        && !prefix.is_empty()
    {
        let mut end = prefix.clone();
        intervals = vec![match successor_string(&mut end) {
            true => Interval {
                start: RawBson::String(prefix),
                start_inclusive: true,
                end: RawBson::String(end),
                end_inclusive: false,
            },
            false => Interval {
                start: RawBson::String(prefix),
                start_inclusive: true,
                end: RawBson::Document(bson::RawDocumentBuf::new()),
                end_inclusive: false,
            },
        }];
    }
    // A pattern with a NUL byte cannot be a stored regex: only strings can match it.
    if let (Ok(pattern), Ok(options)) = (pattern.to_owned().try_into(), options.to_owned().try_into()) {
        intervals.push(Interval::point(RawBson::RegularExpression(bson::Regex { pattern, options })));
    }
    normalize(intervals)
}

/// The literal prefix of `^literal...`, when options allow a prefix scan.
fn simple_prefix(pattern: &str, options: &str) -> Option<String> {
    if options.contains(['i', 'm', 'x']) {
        return None;
    }
    let rest = pattern.strip_prefix('^').or_else(|| pattern.strip_prefix("\\A"))?;
    let mut prefix = String::new();
    for c in rest.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            // A quantifier makes the previous character optional: drop it.
            if matches!(c, '?' | '*' | '{') {
                prefix.pop();
            }
            break;
        }
        prefix.push(c);
    }
    Some(prefix)
}

/// Turns `s` into the smallest string above every string starting with it (increments the
/// last character); false when impossible.
fn successor_string(s: &mut String) -> bool {
    while let Some(last) = s.pop() {
        if let Some(next) = char::from_u32(u32::from(last) + 1) {
            s.push(next);
            return true;
        }
    }
    false
}

/// Sorts intervals and merges overlapping ones; drops empty ones. The merge happens in place,
/// so a `$in` of a million values holds one list of intervals, not two.
fn normalize(mut intervals: Vec<Interval>) -> Vec<Interval> {
    intervals.retain(|i| !i.is_empty());
    intervals.sort_by(|a, b| cmp(&a.start, &b.start).then_with(|| b.start_inclusive.cmp(&a.start_inclusive)));
    // `intervals[..kept]` are merged; the next one either extends the last of them or joins.
    let mut kept: usize = 0;
    for next in 0..intervals.len() {
        let (merged, rest) = intervals.split_at_mut(next);
        let (Some(last), Some(interval)) = (merged.get_mut(kept.wrapping_sub(1)), rest.first_mut()) else {
            intervals.swap(kept, next);
            kept += 1;
            continue;
        };
        let touching = match cmp(&interval.start, &last.end) {
            Ordering::Less => true,
            Ordering::Equal => interval.start_inclusive || last.end_inclusive,
            Ordering::Greater => false,
        };
        if !touching {
            intervals.swap(kept, next);
            kept += 1;
            continue;
        }
        match cmp(&interval.end, &last.end) {
            Ordering::Greater => {
                last.end = std::mem::replace(&mut interval.end, RawBson::Null);
                last.end_inclusive = interval.end_inclusive;
            }
            Ordering::Equal => last.end_inclusive |= interval.end_inclusive,
            Ordering::Less => {}
        }
    }
    intervals.truncate(kept);
    intervals
}

/// The intersection of two sorted interval lists.
fn intersect_all(a: &[Interval], b: &[Interval]) -> Vec<Interval> {
    let mut out = Vec::new();
    for x in a {
        for y in b {
            let i = x.intersect(y);
            if !i.is_empty() {
                out.push(i);
            }
        }
    }
    normalize(out)
}

/// A bound value as mongod's explain prints it.
fn render_value(value: &RawBson) -> String {
    match value {
        RawBson::MinKey => "MinKey".into(),
        RawBson::MaxKey => "MaxKey".into(),
        RawBson::Double(v) if v.is_infinite() => if *v > 0.0 { "inf.0" } else { "-inf.0" }.into(),
        RawBson::Double(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.1}"),
        RawBson::Double(v) => v.to_string(),
        RawBson::Int32(v) => v.to_string(),
        RawBson::Int64(v) => v.to_string(),
        RawBson::String(s) => format!("{s:?}"),
        RawBson::Null => "null".into(),
        RawBson::Undefined => "undefined".into(),
        RawBson::Boolean(b) => b.to_string(),
        RawBson::ObjectId(oid) => format!("ObjectId('{oid}')"),
        RawBson::DateTime(d) => format!("new Date({})", d.timestamp_millis()),
        RawBson::Document(d) if d.is_empty() => "{}".into(),
        RawBson::Array(a) if a.is_empty() => "[]".into(),
        other => bson::Bson::try_from(other.clone()).map(|b| b.to_string()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;

    use super::*;

    fn rendered(filter: bson::RawDocumentBuf, pattern: bson::RawDocumentBuf, multikey: bool) -> bson::Document {
        let pattern = KeyPattern::parse(&pattern).unwrap();
        IndexBounds::for_filter(&filter, &pattern, multikey, false).render(&pattern, false)
    }

    #[test]
    fn bounds_for_common_predicates() {
        let cases: Vec<(bson::RawDocumentBuf, Vec<&str>)> = vec![
            (rawdoc! { "a": 5 }, vec!["[5, 5]"]),
            (rawdoc! { "a": { "$gt": 5 } }, vec!["(5, inf.0]"]),
            (rawdoc! { "a": { "$gte": 5, "$lt": 10 } }, vec!["[5, 10)"]),
            (rawdoc! { "a": { "$lt": "m" } }, vec!["[\"\", \"m\")"]),
            (rawdoc! { "a": { "$in": [3, 1, 3] } }, vec!["[1, 1]", "[3, 3]"]),
            (rawdoc! { "a": null }, vec!["[null, null]"]),
            (rawdoc! { "a": { "$exists": false } }, vec!["[null, null]"]),
            (rawdoc! { "a": { "$ne": 5 } }, vec!["[MinKey, MaxKey]"]),
            (rawdoc! { "b": 5 }, vec!["[MinKey, MaxKey]"]),
            (rawdoc! { "$and": [{ "a": { "$gt": 1 } }, { "a": { "$lt": 4 } }] }, vec!["(1, 4)"]),
            (rawdoc! { "a": { "$gt": 5, "$lt": 3 } }, vec![]),
            (rawdoc! { "a": { "$regex": "^ab" } }, vec!["[\"ab\", \"ac\")", "[/^ab/, /^ab/]"]),
        ];
        for (filter, expected) in cases {
            let got = rendered(filter.clone(), rawdoc! { "a": 1 }, false);
            let got: Vec<String> =
                got.get_array("a").unwrap().iter().map(|b| b.as_str().unwrap_or_default().to_owned()).collect();
            assert_eq!(got, expected, "{filter:?}");
        }
    }

    #[test]
    fn bounds_on_multikey_indexes_are_not_intersected() {
        let got = rendered(rawdoc! { "a": { "$gt": 5, "$lt": 3 } }, rawdoc! { "a": 1 }, true);
        assert_eq!(got.get_array("a").unwrap().len(), 1);
        assert_eq!(got.get_array("a").unwrap()[0].as_str(), Some("(5, inf.0]"));
    }

    #[test]
    fn bounds_of_compound_and_descending_fields() {
        let pattern = KeyPattern::parse(&rawdoc! { "a": 1, "b": -1 }).unwrap();
        let bounds = IndexBounds::for_filter(&rawdoc! { "a": 1, "b": { "$gt": 2 } }, &pattern, false, false);
        assert_eq!(bounds.equality_prefix, 1);
        assert!(bounds.bounded);
        let shown = bounds.render(&pattern, false);
        assert_eq!(shown.get_array("b").unwrap()[0].as_str(), Some("[inf.0, 2)"));
        assert_eq!(bounds.excludes_null, vec![true, true]);
    }

    #[test]
    fn bounds_normalize_sorts_and_merges_in_place() {
        let range = |a: i32, ai: bool, b: i32, bi: bool| Interval {
            start: RawBson::Int32(a),
            start_inclusive: ai,
            end: RawBson::Int32(b),
            end_inclusive: bi,
        };
        let merged = normalize(vec![
            range(7, true, 7, true),
            range(2, true, 5, false),
            range(1, true, 3, true),
            range(5, true, 6, true),
            range(9, false, 9, false),
            range(7, true, 7, true),
            range(10, false, 11, true),
            range(8, true, 10, false),
        ]);
        assert_eq!(
            merged,
            vec![
                range(1, true, 6, true),
                range(7, true, 7, true),
                range(8, true, 10, false),
                range(10, false, 11, true)
            ]
        );
    }

    #[test]
    fn bounds_interval_contains_follows_inclusivity() {
        let i =
            Interval { start: RawBson::Int32(1), start_inclusive: false, end: RawBson::Int32(3), end_inclusive: true };
        assert!(!i.contains(RawBsonRef::Int32(1)));
        assert!(i.contains(RawBsonRef::Double(3.0)));
        assert!(!i.contains(RawBsonRef::String("2")));
    }

    #[test]
    fn bounds_condition_implies_a_wider_comparison() {
        let implies = |condition: RawBson, required: RawBson| {
            condition_implies(condition.as_raw_bson_ref(), required.as_raw_bson_ref())
        };
        let doc = |d: bson::RawDocumentBuf| RawBson::Document(d);
        let at_most = |n: f64| doc(bson::rawdoc! { "$lte": n });
        assert!(implies(doc(bson::rawdoc! { "$lte": 1 }), at_most(1.5)));
        assert!(implies(RawBson::Int32(1), at_most(1.5)), "an equality inside the range");
        assert!(implies(doc(bson::rawdoc! { "$in": [0, 1] }), at_most(1.5)));
        assert!(implies(doc(bson::rawdoc! { "$gte": 0, "$lt": 1 }), at_most(1.5)), "one operator suffices");
        assert!(implies(doc(bson::rawdoc! { "$lt": 1.5 }), at_most(1.5)));
        assert!(!implies(doc(bson::rawdoc! { "$lte": 1.6 }), at_most(1.5)));
        assert!(
            !implies(doc(bson::rawdoc! { "$lte": 1.5 }), doc(bson::rawdoc! { "$lt": 1.5 })),
            "an end the range leaves out"
        );
        assert!(!implies(doc(bson::rawdoc! { "$gte": 0 }), at_most(1.5)));
        assert!(!implies(RawBson::String("1".into()), at_most(1.5)), "another type");
        assert!(!implies(RawBson::Null, doc(bson::rawdoc! { "$exists": true })), "only comparisons are required");
        let both = doc(bson::rawdoc! { "$gte": 0, "$lte": 10 });
        assert!(implies(RawBson::Int32(5), both.clone()));
        assert!(!implies(doc(bson::rawdoc! { "$lte": 5 }), both), "below the range's start");
    }
}
