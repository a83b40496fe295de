//! The query planner: picks how a query reads a collection (a collection scan, an `_id`
//! lookup or an index scan) and caches the choice per query shape.
//!
//! # Cost model
//! Candidates are the visible indexes whose bounds constrain the filter or that deliver the
//! requested sort (a sparse index only when the filter excludes missing fields; a partial one
//! only when the filter implies its expression). With several candidates, a short trial
//! counts each one's keys inside its bounds, up to [`TRIAL_KEYS`]: the fewest keys wins (the
//! most selective bounds), ties going to the longer equality prefix, then to the index that
//! delivers the sort. The choice is cached per query shape (the filter's fields and operators
//! without values, sort and projection) until the collection's index set changes.

mod covered;
mod geo;
mod shape;
mod text;

pub use geo::NearPlan;

use std::sync::Arc;

use bson::{Bson, Document, RawBson, RawBsonRef, RawDocument, RawDocumentBuf, doc};

pub use shape::{QueryShape, Search};

use crate::error::{Error, ErrorCode, Result};
use crate::op::PlanNote;
use crate::query::bounds::{IndexBounds, Interval};
use crate::query::index_key::KeyOrder;
use crate::query::text::{TextQuery, TextScores};
use crate::query::{Collation, Filter, SortSpec};
use crate::state::plan_cache::{PlanAbout, PlanCache};
use crate::storage::{Collection, Index, IndexSet, KeyLimits, Namespace, ReadView};

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
        limits: Option<KeyLimits>,
    },
    /// `$text`: the text index's entries of each search term (under the equalities of the
    /// index's leading fields), scores added up per document, then the documents that pass
    /// the search's other tests (mongod's TEXT_OR and TEXT_MATCH).
    Text(Box<TextPlan>),
    /// `$near`/`$nearSphere`: a geo index's documents nearest first (mongod's GEO_NEAR).
    Near(Box<NearPlan>),
}

/// A `$text` search's access path.
#[derive(Debug, Clone)]
pub struct TextPlan {
    /// The collection's text index.
    pub index: Arc<Index>,
    /// The values the filter fixes the index's fields before the text to.
    pub prefix: Vec<RawBson>,
    /// The search.
    pub query: Arc<TextQuery>,
    /// Where the documents' scores go, for `{$meta: "textScore"}`.
    pub scores: Arc<TextScores>,
}

impl TextPlan {
    /// The bounds of one term's entries.
    pub fn bounds_of(&self, term: &str) -> IndexBounds {
        let mut fields: Vec<Vec<Interval>> =
            self.prefix.iter().map(|value| vec![Interval::point(value.clone())]).collect();
        fields.push(vec![Interval::point(RawBson::String(term.to_owned()))]);
        let bounded = fields.len();
        IndexBounds {
            fields,
            equality_prefix: bounded,
            bounded: true,
            excludes_null: vec![false; bounded],
            wildcard_field: None,
        }
    }
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
        PlanNote { summary: self.summary(), shape_hash: shape::shape_hash(ns, shape) }
    }

    /// The index scanned, if any.
    pub fn index(&self) -> Option<&Arc<Index>> {
        match &self.access {
            Access::IndexScan { index, .. } => Some(index),
            Access::Text(text) => Some(&text.index),
            Access::Near(near) => Some(&near.index),
            _ => None,
        }
    }

    /// mongod's plan summary, as the slow-query log prints it: `COLLSCAN`, `IDHACK`,
    /// `IXSCAN { a: 1 }`.
    pub fn summary(&self) -> String {
        match &self.access {
            Access::CollScan { .. } => "COLLSCAN".into(),
            Access::IdPoint(_) => "IDHACK".into(),
            Access::IndexScan { index, bounds, .. } => {
                format!("IXSCAN {}", pattern_summary(&key_pattern(index, bounds)))
            }
            Access::Text(text) => format!("IXSCAN {}", pattern_summary(text.index.pattern.spec())),
            Access::Near(near) => {
                let stage = if near.near.is_spherical() { "GEO_NEAR_2DSPHERE" } else { "GEO_NEAR_2D" };
                format!("{stage} {}", pattern_summary(near.index.pattern.spec()))
            }
        }
    }
}

/// The key pattern a scan of `index` within `bounds` shows: a wildcard index's is the path
/// field and the path it scans, `{$_path: 1, a: 1}`, as in mongod's explain.
pub fn key_pattern(index: &Index, bounds: &IndexBounds) -> Document {
    match &bounds.wildcard_field {
        Some(path) => doc! { "$_path": 1, path.as_str(): 1 },
        None => index.pattern.spec().clone(),
    }
}

/// A key pattern as mongod's plan summaries print it: `{ a: 1, b: -1 }`, field names bare.
fn pattern_summary(pattern: &Document) -> String {
    let fields: Vec<String> = pattern.iter().map(|(name, value)| format!("{name}: {value}")).collect();
    format!("{{ {} }}", fields.join(", "))
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
    match shape.search {
        Some(Search::Text) => return text::plan(indexes, shape),
        Some(Search::Near) => return geo::near_plan(indexes, shape),
        None => {}
    }
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
    let candidates: Vec<Plan> = indexes.iter().flat_map(|index| candidates_of(index, shape)).collect();
    let count = candidates.len();
    let mut chosen = match candidates.len() {
        0 => return Ok(collscan),
        1 => candidates.into_iter().next(),
        _ => {
            let index_set = shape::index_set_signature(indexes);
            let cache_key = shape::cache_key(&collection.ns, shape);
            let cached = cache.get(&cache_key, index_set).flatten();
            // The cache names an index; a wildcard index offers a plan per path, so its plans
            // are tried again rather than taken by name.
            let is_cached = |plan: &Plan| {
                plan.index()
                    .is_some_and(|index| Some(&index.name) == cached.as_ref() && index.pattern.wildcard().is_none())
            };
            match candidates.iter().position(is_cached) {
                Some(position) => candidates.into_iter().nth(position),
                None => {
                    let best = trial(candidates, collection, view);
                    let about = PlanAbout {
                        ns: collection.ns.full(),
                        query_hash: shape::shape_hash(&collection.ns, shape),
                        created_from: shape::created_from(shape),
                        created: bson::DateTime::now(),
                    };
                    cache.put(cache_key, index_set, best.as_ref().and_then(Plan::index).map(|i| i.name.clone()), about);
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
    if index.pattern.geo_field().is_some() {
        // A geo index holds cells, not values: only a geo condition on its field reads it.
        return geo::within_plan(index, shape).ok_or_else(|| {
            Error::new(
                ErrorCode::NoQueryExecutionPlans,
                "error processing query: planner returned error :: caused by :: No query solutions",
            )
        });
    }
    if index.text.is_some() {
        // A text index holds terms, not values: only `$text` reads it.
        return Err(Error::new(
            ErrorCode::NoQueryExecutionPlans,
            "error processing query: planner returned error :: caused by :: No query solutions",
        ));
    }
    if let Some(wildcard) = index.pattern.wildcard() {
        // A wildcard index holds no keys for documents without the paths: only a path the
        // filter bounds can be scanned.
        return wildcard_plans(index, wildcard, shape).into_iter().next().ok_or_else(|| {
            Error::new(
                ErrorCode::NoQueryExecutionPlans,
                "error processing query: planner returned error :: caused by :: No query solutions",
            )
        });
    }
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
        (min, max) => Some(index.key_limits(min, max)?),
    };
    Ok(Plan {
        covered: covered::is_covered(index, &bounds, shape),
        access: Access::IndexScan { index: index.clone(), bounds, reverse, limits },
        sort_provided,
        candidates: 1,
    })
}

/// The plans `index` offers `shape`: one (or none) for an ordinary index, one per path the
/// filter bounds for a wildcard index.
fn candidates_of(index: &Arc<Index>, shape: &QueryShape<'_>) -> Vec<Plan> {
    if !usable(index, shape) {
        return Vec::new();
    }
    if index.pattern.geo_field().is_some() {
        return geo::within_plan(index, shape).into_iter().collect();
    }
    match index.pattern.wildcard() {
        Some(wildcard) => wildcard_plans(index, wildcard, shape),
        None => candidate(index, shape).into_iter().collect(),
    }
}

/// Whether `index` may serve `shape` at all: visible, with keys in the query's collation (only
/// they can bound or order its strings), and a partial filter the query implies.
fn usable(index: &Index, shape: &QueryShape<'_>) -> bool {
    !index.hidden
        && index.text.is_none()
        && index.collation.as_deref() == shape.collation
        && index.spec.get_document("partialFilterExpression").ok().is_none_or(|partial| implies(shape.filter, partial))
}

/// A wildcard index's plans: one per covered path the filter bounds. They never deliver a
/// sort nor cover a projection.
fn wildcard_plans(
    index: &Arc<Index>,
    wildcard: &crate::query::wildcard::Wildcard,
    shape: &QueryShape<'_>,
) -> Vec<Plan> {
    IndexBounds::for_wildcard(shape.filter, wildcard, index.collation.is_some())
        .into_iter()
        .map(|bounds| Plan {
            access: Access::IndexScan { index: index.clone(), bounds, reverse: false, limits: None },
            sort_provided: shape.sort.is_none_or(SortSpec::is_empty),
            covered: false,
            candidates: 1,
        })
        .collect()
}

/// `index` (usable, not a wildcard index) as a candidate for `shape`, or `None` when it
/// cannot help.
fn candidate(index: &Arc<Index>, shape: &QueryShape<'_>) -> Option<Plan> {
    let bounds = bounds_for(index, shape);
    if index.sparse && !bounds.excludes_null.iter().any(|&x| x) {
        return None;
    }
    let (sort_provided, reverse) = sort_order(index, &bounds, shape.sort);
    let sorting = shape.sort.is_some_and(|s| !s.is_empty());
    if !(bounds.bounded || sorting && sort_provided) {
        return None;
    }
    Some(Plan {
        covered: covered::is_covered(index, &bounds, shape),
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
                KeyOrder::Hashed
                | KeyOrder::WildcardPath
                | KeyOrder::TextTerm
                | KeyOrder::TextScore
                | KeyOrder::Sphere
                | KeyOrder::Flat => {
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

/// Whether every document matching `filter` matches the partial index expression `partial`:
/// each of its conditions appears in the filter as written, or the filter fixes the field to
/// a value that satisfies it, or bounds it inside the condition's range.
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
            let satisfied = is_value
                && matches!((&test, &probe), (Some(test), Some(probe))
                    if Filter::parse(test).is_ok_and(|f| f.matches(probe)));
            satisfied
                || matches!((RawBson::try_from(c.clone()), RawBson::try_from(condition.clone())), (Ok(c), Ok(condition))
                    if crate::query::bounds::condition_implies(c.as_raw_bson_ref(), condition.as_raw_bson_ref()))
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

/// Counts each candidate's keys within its bounds, up to [`TRIAL_KEYS`], and keeps the best.
fn trial(candidates: Vec<Plan>, collection: &Collection, view: &ReadView) -> Option<Plan> {
    // Fewest keys, then longest equality prefix, then a plan that delivers the sort.
    type Score = (usize, std::cmp::Reverse<usize>, bool);
    let mut best: Option<(Score, Plan)> = None;
    for plan in candidates {
        let Access::IndexScan { index, bounds, .. } = &plan.access else { continue };
        let keys = view.count_keys(collection, index, bounds, TRIAL_KEYS);
        let score = (keys, std::cmp::Reverse(bounds.equality_prefix), !plan.sort_provided);
        if best.as_ref().is_none_or(|(s, _)| score < *s) {
            best = Some((score, plan));
        }
    }
    best.map(|(_, plan)| plan)
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
