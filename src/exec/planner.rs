//! The query planner and executor: picks how a query reads a collection (a collection scan,
//! an `_id` lookup or an index scan), runs that access path, and describes it for `explain`.
//!
//! # Cost model
//! Candidates are the visible indexes whose bounds constrain the filter or that deliver the
//! requested sort (a sparse index only when the filter excludes missing fields; a partial one
//! only when the filter implies its expression). With several candidates, a short trial
//! counts each one's keys inside its bounds, up to [`TRIAL_KEYS`]: the fewest keys wins (the
//! most selective bounds), ties going to the longer equality prefix, then to the index that
//! delivers the sort. The choice is cached per query shape (the filter's fields and operators
//! without values, sort and projection) until the collection's index set changes.

use std::collections::HashSet;
use std::ops::Bound;
use std::sync::Arc;

use bson::{Bson, Document, RawBson, RawBsonRef, RawDocument, RawDocumentBuf, doc};

use crate::error::{Error, ErrorCode, Result};
pub use crate::op::ExecStats;
use crate::op::PlanNote;
use crate::query::bounds::{IndexBounds, Interval};
use crate::query::index_key::KeyOrder;
use crate::query::{Collation, Filter, SortSpec};
use crate::state::cursors::DocumentStream;
use crate::state::plan_cache::PlanCache;
use crate::storage::index::fnv1a;
use crate::storage::{Collection, ID_INDEX_ID, Index, IndexSet, KeyRange, Namespace, ReadView};

/// Keys a trial counts per candidate before it stops.
pub const TRIAL_KEYS: usize = 1000;

/// How a query reads its collection.
#[derive(Debug, Clone)]
pub enum Access {
    /// Every document, in `_id` order (or reversed).
    CollScan {
        /// `$natural: -1`.
        reverse: bool,
    },
    /// `{_id: <value>}`: one lookup (mongod's IDHACK).
    IdPoint(RawBson),
    /// The keys of an index within bounds, then the documents they point to.
    IndexScan {
        /// The index.
        index: Arc<Index>,
        /// Its bounds for the filter.
        bounds: IndexBounds,
        /// Walk the keys backwards (for a reversed sort).
        reverse: bool,
        /// `min`/`max`: one key range that replaces the bounds.
        limits: Option<KeyRange>,
    },
}

/// A chosen plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The access path.
    pub access: Access,
    /// Whether the access path returns documents in the requested sort order.
    pub sort_provided: bool,
    /// Whether the index answers the query without reading documents.
    pub covered: bool,
    /// How many indexes competed.
    pub candidates: usize,
}

impl Plan {
    /// The plan as logs and the profiler show it, with the hash of the query shape on `ns`.
    pub fn note(&self, ns: &Namespace, shape: &QueryShape<'_>) -> PlanNote {
        let hash = fnv1a(shape_cache_key(ns, shape).as_bytes());
        PlanNote { summary: self.summary(), shape_hash: format!("{hash:016X}") }
    }

    /// mongod's plan summary, as the slow-query log prints it: `COLLSCAN`, `IDHACK`,
    /// `IXSCAN { a: 1 }`.
    pub fn summary(&self) -> String {
        match &self.access {
            Access::CollScan { .. } => "COLLSCAN".into(),
            Access::IdPoint(_) => "IDHACK".into(),
            Access::IndexScan { index, .. } => format!("IXSCAN {}", pattern_summary(index.pattern.spec())),
        }
    }
}

/// A key pattern as mongod's plan summaries print it: `{ a: 1, b: -1 }`, field names bare.
fn pattern_summary(pattern: &Document) -> String {
    let fields: Vec<String> = pattern.iter().map(|(name, value)| format!("{name}: {value}")).collect();
    format!("{{ {} }}", fields.join(", "))
}

/// What a query asks, as far as planning goes.
#[derive(Debug, Clone, Copy)]
pub struct QueryShape<'a> {
    /// The filter document.
    pub filter: &'a RawDocument,
    /// The sort, if any.
    pub sort: Option<&'a SortSpec>,
    /// The projection, if any.
    pub projection: Option<&'a RawDocument>,
    /// `hint`, if any.
    pub hint: Option<RawBsonRef<'a>>,
    /// `min` (inclusive) and `max` (exclusive) key values, which need a `hint`.
    pub min: Option<&'a RawDocument>,
    /// See `min`.
    pub max: Option<&'a RawDocument>,
    /// The query's non-simple collation. Index keys compare strings by their bytes, so a
    /// collated query reads no index (mongod would use only indexes with its collation).
    pub collation: Option<&'a Collation>,
}

/// A `hint` value as the planner takes it: an index name or key pattern, `None` for none (or
/// `{}`); `Err` carries a value of another type, for the caller's type error.
pub fn hint_of(value: Option<RawBsonRef<'_>>) -> std::result::Result<Option<RawBsonRef<'_>>, RawBsonRef<'_>> {
    match value {
        None => Ok(None),
        Some(RawBsonRef::Document(spec)) if spec.is_empty() => Ok(None),
        Some(hint @ (RawBsonRef::String(_) | RawBsonRef::Document(_))) => Ok(Some(hint)),
        Some(other) => Err(other),
    }
}

/// Chooses how to run `shape` on `collection` whose indexes are `indexes` (read before
/// `view` was taken).
///
/// # Errors
/// 2 BadValue for a hint that names no usable index.
pub fn choose(
    cache: &PlanCache,
    collection: &Collection,
    indexes: &IndexSet,
    shape: &QueryShape<'_>,
    view: &ReadView,
) -> Result<Plan> {
    if let Some(hint) = shape.hint {
        return hinted(indexes, shape, hint);
    }
    if shape.min.is_some() || shape.max.is_some() {
        return Err(Error::new(
            ErrorCode::Location51173,
            "When using min()/max() a hint of which index to use must be provided",
        ));
    }
    let natural = shape.sort.and_then(SortSpec::natural);
    if natural.is_none()
        && let Some(id) = point_id(shape.filter, shape.collation)
    {
        return Ok(Plan {
            access: Access::IdPoint(RawBson::from(id)),
            sort_provided: true,
            covered: false,
            candidates: 0,
        });
    }
    let collscan = Plan {
        access: Access::CollScan { reverse: natural == Some(false) },
        sort_provided: natural.is_some() || shape.sort.is_none_or(SortSpec::is_empty),
        covered: false,
        candidates: 0,
    };
    if natural.is_some() {
        return Ok(collscan);
    }
    let candidates: Vec<Plan> = indexes.iter().filter_map(|index| candidate(index, shape)).collect();
    let count = candidates.len();
    let mut chosen = match candidates.len() {
        0 => return Ok(collscan),
        1 => candidates.into_iter().next(),
        _ => {
            let index_set = index_set_signature(indexes);
            let cache_key = shape_cache_key(&collection.ns, shape);
            let cached = cache.get(&cache_key, index_set).flatten();
            match cached.and_then(|name| candidates.iter().position(|c| index_name(c) == Some(name.as_str()))) {
                Some(position) => candidates.into_iter().nth(position),
                None => {
                    let best = trial(candidates, collection, view)?;
                    cache.put(cache_key, index_set, best.as_ref().and_then(index_name).map(str::to_owned));
                    best
                }
            }
        }
    };
    if let Some(plan) = chosen.as_mut() {
        plan.candidates = count;
    }
    Ok(chosen.unwrap_or(collscan))
}

/// The `_id` of a filter that is exactly `{_id: <scalar>}`: the fast path of point writes
/// and reads (a document or array value would need the full equality semantics). Under a
/// non-simple `collation` a string `_id` may equal stored ids with other bytes, so it takes
/// the scan.
pub fn point_id<'a>(query: &'a RawDocument, collation: Option<&Collation>) -> Option<RawBsonRef<'a>> {
    let mut fields = query.iter();
    let (key, value) = fields.next()?.ok()?;
    if key.as_str() != "_id" || fields.next().is_some() {
        return None;
    }
    match value {
        RawBsonRef::Document(_) | RawBsonRef::Array(_) | RawBsonRef::RegularExpression(_) | RawBsonRef::Null => None,
        RawBsonRef::Undefined | RawBsonRef::MinKey | RawBsonRef::MaxKey => None,
        RawBsonRef::String(_) | RawBsonRef::Symbol(_) if collation.is_some() => None,
        scalar => Some(scalar),
    }
}

/// Identifies an index set for the plan cache: its index ids and hidden flags (ids are never
/// reused, so a dropped and recreated index has another id).
fn index_set_signature(indexes: &IndexSet) -> u64 {
    let bytes: Vec<u8> =
        indexes.iter().flat_map(|index| (index.id << 1 | u64::from(index.hidden)).to_be_bytes()).collect();
    fnv1a(&bytes)
}

/// A query shape on a namespace: the plan cache's key, and what the shape hash hashes.
fn shape_cache_key(ns: &Namespace, shape: &QueryShape<'_>) -> String {
    format!("{ns}|{}", shape_key(shape))
}

fn index_name(plan: &Plan) -> Option<&str> {
    match &plan.access {
        Access::IndexScan { index, .. } => Some(index.name.as_str()),
        _ => None,
    }
}

/// The plan for an index named or described by `hint`.
fn hinted(indexes: &IndexSet, shape: &QueryShape<'_>, hint: RawBsonRef<'_>) -> Result<Plan> {
    let found = match hint {
        RawBsonRef::String(name) => indexes.iter().find(|i| i.name == name),
        RawBsonRef::Document(spec) => {
            if let Ok(Some(direction)) = spec.get("$natural") {
                let reverse = crate::query::compare_values(direction, RawBsonRef::Int32(0)).is_lt();
                return Ok(Plan {
                    access: Access::CollScan { reverse },
                    sort_provided: shape.sort.is_none_or(SortSpec::is_empty),
                    covered: false,
                    candidates: 0,
                });
            }
            let spec = Document::try_from(spec).map_err(|e| Error::new(ErrorCode::BadValue, e.to_string()))?;
            indexes.iter().find(|i| *i.pattern.spec() == spec)
        }
        _ => None,
    };
    let index = found
        .filter(|i| !i.hidden)
        .ok_or_else(|| Error::new(ErrorCode::BadValue, "hint provided does not correspond to an existing index"))?;
    // An index under another collation than the query's orders strings differently: scan it
    // whole and let the matcher decide.
    let same_collation = index.collation.as_deref() == shape.collation;
    let bounds = match same_collation {
        true => bounds_for(index, shape),
        false => IndexBounds::all(&index.pattern),
    };
    let (sort_provided, reverse) = match same_collation {
        true => sort_order(index, &bounds, shape.sort),
        false => (shape.sort.is_none_or(SortSpec::is_empty), false),
    };
    let limits = match (shape.min, shape.max) {
        (None, None) => None,
        (min, max) => Some(min_max_range(index, min, max)?),
    };
    Ok(Plan {
        covered: is_covered(index, &bounds, shape),
        access: Access::IndexScan { index: index.clone(), bounds, reverse, limits },
        sort_provided,
        candidates: 1,
    })
}

/// The key range of `min` (inclusive) to `max` (exclusive) on `index`: both must name the
/// index's fields in order, as mongod requires.
fn min_max_range(index: &Index, min: Option<&RawDocument>, max: Option<&RawDocument>) -> Result<KeyRange> {
    let fields = index.pattern.fields();
    let tuple = |doc: &RawDocument| -> Result<Vec<u8>> {
        let names: Vec<&str> = crate::query::path::fields(doc).map(|(k, _)| k).collect();
        if names.len() != fields.len() || names.iter().zip(fields).any(|(n, (f, _))| *n != f.dotted()) {
            return Err(Error::new(ErrorCode::Location51174, "The index chosen is not consistent with min/max"));
        }
        let values: Vec<RawBsonRef<'_>> = crate::query::path::fields(doc).map(|(_, v)| v).collect();
        let mut key = if index.id == ID_INDEX_ID { Vec::new() } else { index.prefix().to_vec() };
        index.encode_tuple(&values, &mut key);
        Ok(key)
    };
    let prefix = if index.id == ID_INDEX_ID { Vec::new() } else { index.prefix().to_vec() };
    let start = min.map(tuple).transpose()?.unwrap_or_else(|| prefix.clone());
    let end = match max.map(tuple).transpose()? {
        Some(end) => std::ops::Bound::Excluded(end),
        None => crate::storage::index::prefix_range(prefix).1,
    };
    Ok((start, end))
}

/// `index` as a candidate for `shape`, or `None` when it cannot help (or cannot be used).
fn candidate(index: &Arc<Index>, shape: &QueryShape<'_>) -> Option<Plan> {
    // Only an index whose keys follow the query's collation can bound or order its strings.
    if index.hidden || index.collation.as_deref() != shape.collation {
        return None;
    }
    let bounds = bounds_for(index, shape);
    if index.sparse && !bounds.excludes_null.iter().any(|&x| x) {
        return None;
    }
    if let Some(partial) = index.spec.get_document("partialFilterExpression").ok()
        && !implies(shape.filter, partial)
    {
        return None;
    }
    let (sort_provided, reverse) = sort_order(index, &bounds, shape.sort);
    let sorting = shape.sort.is_some_and(|s| !s.is_empty());
    if !(bounds.bounded || sorting && sort_provided) {
        return None;
    }
    Some(Plan {
        covered: is_covered(index, &bounds, shape),
        access: Access::IndexScan { index: index.clone(), bounds, reverse, limits: None },
        sort_provided,
        candidates: 1,
    })
}

/// The bounds of `index` for the query (an index under a collation gets no regex bounds: its
/// string keys are collation keys, not the strings a prefix names).
fn bounds_for(index: &Index, shape: &QueryShape<'_>) -> IndexBounds {
    IndexBounds::for_filter(shape.filter, &index.pattern, index.is_multikey(), index.collation.is_some())
}

/// Whether scanning `index` within `bounds` yields documents in `sort` order, and in which
/// direction. The sort's fields must be a run of the index's fields, all in the index's
/// directions or all reversed, after fields bounded to one value each.
fn sort_order(index: &Index, bounds: &IndexBounds, sort: Option<&SortSpec>) -> (bool, bool) {
    let Some(sort) = sort.filter(|s| !s.is_empty()) else { return (true, false) };
    if index.is_multikey() {
        return (false, false);
    }
    let wanted: Vec<(&str, bool)> = sort.fields().collect();
    let fields = index.pattern.fields();
    for start in 0..=bounds.equality_prefix.min(fields.len()) {
        let Some(run) = fields.get(start..start + wanted.len()) else { break };
        let mut direction = None;
        let mut matches = true;
        for ((path, order), (name, ascending)) in run.iter().zip(&wanted) {
            let forward = match order {
                KeyOrder::Ascending => *ascending,
                KeyOrder::Descending => !*ascending,
                KeyOrder::Hashed => {
                    matches = false;
                    break;
                }
            };
            if path.dotted() != *name || direction.is_some_and(|d| d != forward) {
                matches = false;
                break;
            }
            direction = Some(forward);
        }
        if matches {
            return (true, direction == Some(false));
        }
    }
    (false, false)
}

/// Whether the index alone answers the query, as mongod decides it: a plain inclusion
/// projection of top-level index fields (`_id` excluded unless the index holds it), a filter
/// on those fields only, an index that is neither multikey nor hashed, and for each projected
/// field:
/// - a predicate on it must have bounds that exclude null: the index stores null for a missing
///   field, so only then is the key value the document's own (a field the filter does not name
///   comes back as the key holds it, null when missing, as mongod's covered projection does);
/// - under a collation its bounds must not reach strings, documents or arrays, whose keys are
///   collation keys in mongod (its `getFieldsWithStringBounds`).
///
/// Key order plays no part: entries keep the values themselves, whatever the field's direction.
fn is_covered(index: &Index, bounds: &IndexBounds, shape: &QueryShape<'_>) -> bool {
    let Some(projection) = shape.projection else { return false };
    if index.is_multikey() || index.pattern.is_hashed() || index.id == ID_INDEX_ID {
        return false;
    }
    let fields = index.pattern.fields();
    let position = |name: &str| fields.iter().position(|(f, _)| f.dotted() == name && !name.contains('.'));
    let filtered = filter_fields(shape.filter);
    if !filtered.iter().all(|name| position(name).is_some()) {
        return false;
    }
    let provided = |name: &str| {
        let Some(i) = position(name) else { return false };
        let exact = bounds.excludes_null.get(i) == Some(&true) || !filtered.iter().any(|f| f == name);
        let collated = index.collation.is_some() && bounds.fields.get(i).is_none_or(|f| may_hold_strings(f));
        exact && !collated
    };
    let mut includes_id = true;
    let mut any = false;
    for (name, value) in crate::query::path::fields(projection) {
        let truthy = match value {
            RawBsonRef::Int32(n) => n != 0,
            RawBsonRef::Int64(n) => n != 0,
            RawBsonRef::Double(n) => n != 0.0,
            RawBsonRef::Boolean(b) => b,
            _ => return false,
        };
        if name == "_id" {
            includes_id = truthy;
            continue;
        }
        if !truthy || !provided(name) {
            return false;
        }
        any = true;
    }
    any && (!includes_id || provided("_id"))
}

/// Whether `intervals` reach a string, a document or an array: the brackets from the empty
/// string up to the smallest binary value, in BSON order.
fn may_hold_strings(intervals: &[Interval]) -> bool {
    let low = RawBsonRef::String("");
    let high = RawBson::Binary(bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: Vec::new() });
    intervals.iter().any(|i| {
        let starts_below_high = crate::query::compare_values(i.start.as_raw_bson_ref(), high.as_raw_bson_ref()).is_lt();
        let ends = crate::query::compare_values(i.end.as_raw_bson_ref(), low);
        starts_below_high && (ends.is_gt() || ends.is_eq() && i.end_inclusive)
    })
}

/// The top-level field names a filter tests (through `$and`); `$or` and other operators
/// count as a field that no index holds.
fn filter_fields(filter: &RawDocument) -> Vec<String> {
    let mut out = Vec::new();
    for (name, value) in crate::query::path::fields(filter) {
        match (name, value) {
            ("$and", RawBsonRef::Array(children)) => {
                for child in crate::query::path::items(children) {
                    match child {
                        RawBsonRef::Document(child) => out.extend(filter_fields(child)),
                        _ => out.push("$".into()),
                    }
                }
            }
            (name, _) => out.push(name.to_owned()),
        }
    }
    out
}

/// Whether every document matching `filter` matches the partial index expression `partial`:
/// each of its conditions appears in the filter as written, or the filter fixes the field to
/// a value that satisfies it.
fn implies(filter: &RawDocument, partial: &Document) -> bool {
    let Ok(filter_doc) = Document::try_from(filter) else { return false };
    let mut conjuncts: Vec<(String, Bson)> = Vec::new();
    collect_conjuncts(&filter_doc, &mut conjuncts);
    let mut required = Vec::new();
    collect_conjuncts(partial, &mut required);
    required.iter().all(|(field, condition)| {
        conjuncts.iter().any(|(f, c)| {
            if f != field {
                return false;
            }
            if c == condition {
                return true;
            }
            let is_value = !matches!(c, Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')));
            let test = RawDocumentBuf::try_from(&doc! { field.clone(): condition.clone() }).ok();
            let probe = RawDocumentBuf::try_from(&doc! { field.clone(): c.clone() }).ok();
            is_value
                && matches!((test, probe), (Some(test), Some(probe))
                    if Filter::parse(&test).is_ok_and(|f| f.matches(&probe)))
        })
    })
}

fn collect_conjuncts(filter: &Document, out: &mut Vec<(String, Bson)>) {
    for (name, value) in filter {
        match (name.as_str(), value) {
            ("$and", Bson::Array(children)) => {
                for child in children {
                    if let Bson::Document(child) = child {
                        collect_conjuncts(child, out);
                    }
                }
            }
            _ => out.push((name.clone(), value.clone())),
        }
    }
}

/// Runs each candidate's bounds for up to [`TRIAL_KEYS`] keys and keeps the best.
fn trial(candidates: Vec<Plan>, collection: &Collection, view: &ReadView) -> Result<Option<Plan>> {
    // Fewest keys, then longest equality prefix, then a plan that delivers the sort.
    type Score = (usize, std::cmp::Reverse<usize>, bool);
    let mut best: Option<(Score, Plan)> = None;
    for plan in candidates {
        let Access::IndexScan { index, bounds, .. } = &plan.access else { continue };
        let mut keys = 0usize;
        let prefix = scan_prefix(collection, index);
        'ranges: for range in index.key_ranges(&prefix, bounds) {
            let entries: Box<dyn Iterator<Item = ()>> = if index.id == ID_INDEX_ID {
                Box::new(view.documents_in(&range, false).map(|_| ()))
            } else {
                Box::new(view.index_entries(&range, false).map(|_| ()))
            };
            for () in entries {
                keys += 1;
                if keys >= TRIAL_KEYS {
                    break 'ranges;
                }
            }
        }
        let score = (keys, std::cmp::Reverse(bounds.equality_prefix), !plan.sort_provided);
        if best.as_ref().is_none_or(|(s, _)| score < *s) {
            best = Some((score, plan));
        }
    }
    Ok(best.map(|(_, plan)| plan))
}

/// The key prefix an index's ranges are built on: the index id, or the collection id for
/// `_id_` (whose keys are the documents' own).
fn scan_prefix(collection: &Collection, index: &Index) -> Vec<u8> {
    if index.id == ID_INDEX_ID { collection.prefix().to_vec() } else { index.prefix().to_vec() }
}

/// A query's shape: fields and operators with values replaced by their type, then the sort
/// and projection.
fn shape_key(shape: &QueryShape<'_>) -> String {
    fn value_shape(value: RawBsonRef<'_>, out: &mut String) {
        match value {
            RawBsonRef::Document(doc) => {
                out.push('{');
                for (name, value) in crate::query::path::fields(doc) {
                    out.push_str(name);
                    out.push(':');
                    value_shape(value, out);
                    out.push(',');
                }
                out.push('}');
            }
            RawBsonRef::Array(items) => {
                out.push('[');
                for item in crate::query::path::items(items) {
                    value_shape(item, out);
                    out.push(',');
                }
                out.push(']');
            }
            other => out.push_str(crate::query::type_name(other.element_type())),
        }
    }
    let mut out = String::new();
    value_shape(RawBsonRef::Document(shape.filter), &mut out);
    out.push('|');
    if let Some(sort) = shape.sort {
        for (name, ascending) in sort.fields() {
            out.push_str(name);
            out.push(if ascending { '+' } else { '-' });
        }
    }
    out.push('|');
    if let Some(projection) = shape.projection {
        value_shape(RawBsonRef::Document(projection), &mut out);
    }
    out
}

/// The documents `plan` reads from `view` that `filter` matches, in the plan's order. A
/// covered plan yields the index's key documents instead of stored documents.
pub fn execute(
    plan: &Plan,
    view: ReadView,
    collection: &Collection,
    filter: Filter,
    stats: Arc<ExecStats>,
) -> Result<DocumentStream> {
    let collection_prefix = collection.prefix();
    Ok(match &plan.access {
        Access::CollScan { reverse: false } => {
            let counted = stats.clone();
            Box::new(view.scan_where(
                collection,
                Box::new(move |doc| {
                    counted.doc()?;
                    Ok(filter.try_matches(doc)?)
                }),
            ))
        }
        Access::CollScan { reverse: true } => {
            let mut all = Vec::new();
            for doc in view.scan(collection) {
                stats.doc()?;
                let doc = doc?;
                if filter.try_matches(&doc)? {
                    all.push(doc);
                }
            }
            all.reverse();
            Box::new(all.into_iter().map(Ok))
        }
        Access::IdPoint(id) => {
            stats.key()?;
            let found = view.get(collection, id.as_raw_bson_ref())?;
            if found.is_some() {
                stats.doc()?;
            }
            Box::new(found.into_iter().filter_map(move |doc| keep(&filter, Ok(doc))))
        }
        Access::IndexScan { index, bounds, reverse, limits } => {
            let mut ranges = match limits {
                // The `_id` index's keys sit under the collection prefix.
                Some((start, end)) if index.id == ID_INDEX_ID => {
                    let under = |key: &[u8]| [collection.prefix().as_slice(), key].concat();
                    let end = match end {
                        std::ops::Bound::Excluded(end) => std::ops::Bound::Excluded(under(end)),
                        _ => crate::storage::index::prefix_range(collection.prefix().to_vec()).1,
                    };
                    vec![(under(start), end)]
                }
                Some(range) => vec![range.clone()],
                None => index.key_ranges(&scan_prefix(collection, index), bounds),
            };
            if *reverse {
                ranges.reverse();
            }
            let reverse = *reverse;
            if index.id == ID_INDEX_ID {
                let docs = ranges.into_iter().flat_map(move |range| view.documents_in(&range, reverse));
                return Ok(Box::new(docs.filter_map(move |doc| {
                    if let Err(err) = stats.key().and_then(|()| stats.doc()) {
                        return Some(Err(err));
                    }
                    keep(&filter, doc)
                })));
            }
            let covered = plan.covered;
            let dedup = index.is_multikey();
            let mut seen: HashSet<Vec<u8>> = HashSet::new();
            let view = Arc::new(view);
            let entries_view = view.clone();
            let entries = ranges.into_iter().flat_map(move |range| entries_view.index_entries(&range, reverse));
            Box::new(entries.filter_map(move |entry| {
                if let Err(err) = stats.key() {
                    return Some(Err(err));
                }
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(err) => return Some(Err(err)),
                };
                if dedup && !seen.insert(entry.record().to_vec()) {
                    return None;
                }
                let doc = if covered {
                    entry.values().map(ToOwned::to_owned)
                } else {
                    match view.get_record(collection_prefix, entry.record()) {
                        Ok(doc) => {
                            if let Err(err) = stats.doc() {
                                return Some(Err(err));
                            }
                            doc
                        }
                        Err(err) => return Some(Err(err)),
                    }
                };
                keep(&filter, Ok(doc?))
            }))
        }
    })
}

/// The index key `plan` read `doc` through, as `find`'s `returnKey` shows it: `{}` for a
/// collection scan, `{_id: <value>}` through the `_id` index, and the index entry's values
/// otherwise (hashed fields as their hash). Of a multikey document's keys, the first within the
/// bounds in scan order is the one the scan found.
///
/// # Errors
/// The document's key extraction errors (it was indexed, so none in practice).
pub fn index_key(plan: &Plan, doc: &RawDocument) -> Result<RawDocumentBuf> {
    let index = match &plan.access {
        Access::CollScan { .. } => return Ok(RawDocumentBuf::new()),
        Access::IdPoint(_) => None,
        Access::IndexScan { index, .. } if index.id == ID_INDEX_ID => None,
        Access::IndexScan { index, bounds, reverse, limits } => Some((index, bounds, *reverse, limits)),
    };
    let Some((index, bounds, reverse, limits)) = index else {
        let mut key = RawDocumentBuf::new();
        if let Some(id) = doc.get("_id").ok().flatten() {
            key.append(bson::raw::cstr!("_id"), id);
        }
        return Ok(key);
    };
    // The record key only follows the key tuple: any bytes serve to place a key in a range.
    let (mut entries, _) = index.entries(doc, &[])?;
    entries.sort();
    if reverse {
        entries.reverse();
    }
    let ranges = match limits {
        Some(range) => vec![range.clone()],
        None => index.key_ranges(&index.prefix(), bounds),
    };
    let within = |key: &Vec<u8>| {
        ranges.iter().any(|(start, end)| {
            key >= start
                && match end {
                    Bound::Included(end) => key <= end,
                    Bound::Excluded(end) => key < end,
                    Bound::Unbounded => true,
                }
        })
    };
    let chosen = entries.iter().find(|(key, _)| within(key)).or_else(|| entries.first());
    Ok(match chosen {
        Some((_, values)) => {
            RawDocumentBuf::from_bytes(values.clone()).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?
        }
        None => RawDocumentBuf::new(),
    })
}

/// One step of filtering a document stream: a non-matching document is dropped, and a
/// failing `$expr` yields its error, which fails the query as in mongod.
pub fn keep(filter: &Filter, doc: Result<RawDocumentBuf>) -> Option<Result<RawDocumentBuf>> {
    match doc {
        Ok(doc) => match filter.try_matches(&doc) {
            Ok(true) => Some(Ok(doc)),
            Ok(false) => None,
            Err(err) => Some(Err(err.into())),
        },
        Err(err) => Some(Err(err)),
    }
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    #[test]
    fn planner_summary_prints_patterns_as_mongod() {
        assert_eq!(pattern_summary(&doc! { "a": 1, "b.c": -1 }), "{ a: 1, b.c: -1 }");
        assert_eq!(pattern_summary(&doc! { "h": "hashed" }), "{ h: \"hashed\" }");
    }
}
