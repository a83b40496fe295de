//! Plans as `explain` describes them: mongod's stage tree (`COLLSCAN`, `IDHACK`, `IXSCAN` under
//! `FETCH`, then `SORT`, `SKIP`, `LIMIT` and the projection), with per-stage counts when the
//! plan ran, and a floor on the size of the reply that holds them.

use bson::{Bson, Document, RawBsonRef, RawDocument, doc};

use super::planner::{Access, Plan};
use crate::query::bounds::{IndexBounds, Interval};
use crate::query::index_key::KeyOrder;
use crate::storage::Index;
use crate::storage::index::hash_value;

/// The least a rendered index interval adds to a reply: an array element (type, a one-digit
/// key) holding the shortest interval string, `[x, x]`.
const MIN_RENDERED_INTERVAL: usize = 1 + 2 + 4 + "[x, x]".len() + 1;

/// A floor on the size of the explain reply of `plan`: the filter as `parsedQuery`, and in
/// each stage tree (the winning plan, and again as `executionStages` with execution stats)
/// the filter of the stage that applies it and the rendered index bounds.
pub fn reply_size_floor(filter_len: usize, plan: Option<&Plan>, with_execution: bool) -> usize {
    // An empty filter is not shown in a stage.
    let filter_len = if filter_len <= 5 { 0 } else { filter_len };
    let in_stages = match plan {
        Some(Plan { access: Access::CollScan { .. }, .. }) => filter_len,
        Some(Plan { access: Access::IndexScan { index, bounds, .. }, covered, .. }) => {
            let fetch_filter = if *covered || index.is_id_index() { 0 } else { filter_len };
            let intervals: usize = bounds.fields.iter().map(Vec::len).sum();
            fetch_filter.saturating_add(intervals.saturating_mul(MIN_RENDERED_INTERVAL))
        }
        _ => 0,
    };
    let copies = if with_execution { 2 } else { 1 };
    filter_len.saturating_add(in_stages.saturating_mul(copies))
}

/// The parts of a query that add stages above the access path.
#[derive(Debug, Clone, Copy)]
pub struct StageShape<'a> {
    /// The sort as given, when the query sorts.
    pub sort: Option<&'a RawDocument>,
    /// The projection as given.
    pub projection: Option<&'a RawDocument>,
    /// Documents skipped.
    pub skip: usize,
    /// The limit.
    pub limit: Option<usize>,
}

/// Work counted while running, for per-stage statistics.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    /// Index keys examined.
    pub keys: u64,
    /// Documents examined.
    pub docs: u64,
    /// Documents the access path returned.
    pub matched: u64,
    /// Documents the query returned.
    pub returned: u64,
}

/// A count as explain shows it (a long).
pub fn to_long(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The stage tree of `plan`, innermost (the access path) first, then SORT, SKIP, LIMIT and
/// the projection, as mongod's classic engine builds it; with `counts`, each stage carries
/// its statistics.
pub fn plan_stages(
    plan: &Plan,
    filter: &Document,
    shape: &StageShape<'_>,
    counts: Option<&Counts>,
    memory_limit: u64,
) -> Document {
    let with_stats = |mut stage: Document, returned: u64, keys: Option<u64>, docs: Option<u64>| {
        if let Some(_counts) = counts {
            stage.insert("nReturned", to_long(returned));
            if let Some(keys) = keys {
                stage.insert("keysExamined", to_long(keys));
            }
            if let Some(docs) = docs {
                stage.insert("docsExamined", to_long(docs));
            }
        }
        stage
    };
    let (keys, docs, matched, returned) = counts.map_or((0, 0, 0, 0), |c| (c.keys, c.docs, c.matched, c.returned));
    let mut stage = match &plan.access {
        Access::CollScan { reverse } => {
            let mut stage = doc! { "stage": "COLLSCAN" };
            if !filter.is_empty() {
                stage.insert("filter", filter.clone());
            }
            stage.insert("direction", if *reverse { "backward" } else { "forward" });
            with_stats(stage, matched, None, Some(docs))
        }
        Access::IdPoint(_) => with_stats(doc! { "stage": "IDHACK" }, matched, Some(keys), Some(docs)),
        Access::IndexScan { index, bounds, reverse, .. } => {
            let pattern = crate::exec::planner::key_pattern(index, bounds);
            let multikey_paths: Document =
                pattern.keys().map(|k| (k.clone(), Bson::Array(Vec::new()))).collect::<Document>();
            let ixscan = with_stats(
                doc! {
                    "stage": "IXSCAN",
                    "keyPattern": pattern,
                    "indexName": &index.name,
                    "isMultiKey": index.is_multikey(),
                    "multiKeyPaths": multikey_paths,
                    "isUnique": index.unique,
                    "isSparse": index.sparse,
                    "isPartial": index.partial.is_some(),
                    "indexVersion": index.spec.get_i32("v").unwrap_or(2),
                    "direction": if *reverse { "backward" } else { "forward" },
                    "indexBounds": render_bounds(index, bounds, *reverse),
                },
                keys,
                Some(keys),
                None,
            );
            if plan.covered {
                ixscan
            } else {
                let mut fetch = doc! { "stage": "FETCH" };
                if !filter.is_empty() && !index.is_id_index() {
                    fetch.insert("filter", filter.clone());
                }
                fetch.insert("inputStage", ixscan);
                with_stats(fetch, matched, None, Some(docs))
            }
        }
        Access::Text(text) => text_stages(text, filter, with_stats, (keys, docs, matched)),
        Access::Near(near) => {
            let index = &near.index;
            let mut stage = doc! {
                "stage": if near.near.is_spherical() { "GEO_NEAR_2DSPHERE" } else { "GEO_NEAR_2D" },
                "keyPattern": index.pattern.spec().clone(),
                "indexName": &index.name,
                "indexVersion": index.spec.get_i32("v").unwrap_or(2),
            };
            if !filter.is_empty() {
                stage.insert("filter", filter.clone());
            }
            with_stats(stage, matched, Some(keys), Some(docs))
        }
    };
    if let Some(sort) = shape.sort.filter(|_| !plan.sort_provided) {
        let mut sort_stage = doc! {
            "stage": "SORT",
            "sortPattern": Document::try_from(sort).unwrap_or_default(),
            "memLimit": to_long(memory_limit),
            "type": "simple",
        };
        if let Some(limit) = shape.limit {
            sort_stage.insert("limitAmount", to_long((limit + shape.skip) as u64));
        }
        sort_stage.insert("inputStage", stage);
        stage = with_stats(sort_stage, matched, None, None);
    }
    if shape.skip > 0 {
        stage = with_stats(
            doc! { "stage": "SKIP", "skipAmount": to_long(shape.skip as u64), "inputStage": stage },
            returned,
            None,
            None,
        );
    }
    if let Some(limit) = shape.limit {
        stage = with_stats(
            doc! { "stage": "LIMIT", "limitAmount": to_long(limit as u64), "inputStage": stage },
            returned,
            None,
            None,
        );
    }
    if let Some(projection) = shape.projection {
        let kind = if plan.covered {
            "PROJECTION_COVERED"
        } else if is_simple_projection(projection) {
            "PROJECTION_SIMPLE"
        } else {
            "PROJECTION_DEFAULT"
        };
        stage = with_stats(
            doc! {
                "stage": kind,
                "transformBy": Document::try_from(projection).unwrap_or_default(),
                "inputStage": stage,
            },
            returned,
            None,
            None,
        );
    }
    stage
}

/// Whether a projection only includes or excludes top-level fields (mongod's
/// PROJECTION_SIMPLE).
fn is_simple_projection(projection: &RawDocument) -> bool {
    crate::query::path::fields(projection).all(|(name, value)| {
        !name.contains('.')
            && matches!(
                value,
                RawBsonRef::Int32(_) | RawBsonRef::Int64(_) | RawBsonRef::Double(_) | RawBsonRef::Boolean(_)
            )
    })
}

/// The bounds as mongod's explain shows them: a hashed field's points are the hashes the
/// index holds (in key order), not the values the query named.
fn render_bounds(index: &Index, bounds: &IndexBounds, reverse: bool) -> Document {
    let mut rendered = bounds.render(&index.pattern, reverse);
    for ((field, order), intervals) in index.pattern.fields().iter().zip(&bounds.fields) {
        if *order != KeyOrder::Hashed || !intervals.iter().all(Interval::is_point) {
            continue;
        }
        let collation = index.collation.as_deref();
        let mut hashes: Vec<i64> = intervals.iter().map(|i| hash_value(i.start.as_raw_bson_ref(), collation)).collect();
        hashes.sort_unstable();
        hashes.dedup();
        if reverse {
            hashes.reverse();
        }
        let points = hashes.into_iter().map(|h| Bson::String(format!("[{h}, {h}]"))).collect::<Vec<_>>();
        rendered.insert(field.dotted(), points);
    }
    rendered
}

/// A `$text` plan as mongod shows it: TEXT_MATCH over TEXT_OR over one IXSCAN per term.
fn text_stages(
    text: &crate::exec::planner::TextPlan,
    filter: &Document,
    with_stats: impl Fn(Document, u64, Option<u64>, Option<u64>) -> Document,
    (keys, docs, matched): (u64, u64, u64),
) -> Document {
    let index = &text.index;
    let scans: Vec<Bson> = text
        .query
        .terms_for_bounds
        .iter()
        .map(|term| {
            let bounds = text.bounds_of(term);
            Bson::Document(doc! {
                "stage": "IXSCAN",
                "keyPattern": index.pattern.spec().clone(),
                "indexName": &index.name,
                "isMultiKey": index.is_multikey(),
                "isUnique": false,
                "isSparse": false,
                "isPartial": index.partial.is_some(),
                "indexVersion": index.spec.get_i32("v").unwrap_or(2),
                "direction": "backward",
                "indexBounds": render_bounds(index, &bounds, false),
            })
        })
        .collect();
    let mut or = doc! { "stage": "TEXT_OR" };
    if !filter.is_empty() {
        or.insert("filter", filter.clone());
    }
    or.insert("inputStages", scans);
    let or = with_stats(or, matched, Some(keys), Some(docs));
    let prefix: Document = index
        .pattern
        .fields()
        .iter()
        .zip(&text.prefix)
        .map(|((field, _), value)| (field.dotted().to_owned(), Bson::try_from(value.clone()).unwrap_or(Bson::Null)))
        .collect();
    with_stats(
        doc! {
            "stage": "TEXT_MATCH",
            "indexPrefix": prefix,
            "indexName": &index.name,
            "parsedTextQuery": text.query.explain(),
            "textIndexVersion": index.spec.get_i32("textIndexVersion").unwrap_or(3),
            "inputStage": or,
        },
        matched,
        None,
        None,
    )
}
