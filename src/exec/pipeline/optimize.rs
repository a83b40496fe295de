//! The pipeline rewrites mongod makes before it runs a pipeline, so that filters reach the
//! planner (and its indexes) as early as they safely can:
//!
//! - adjacent `$match` stages merge into one (`$and`);
//! - a `$match` moves ahead of a `$sort`;
//! - the parts of a `$match` that read no field a `$project`, `$addFields`/`$set`, `$unset` or
//!   `$unwind` writes move ahead of that stage (the rest stays behind it).
//!
//! A filter part whose fields cannot be known (`$expr`, `$where`, `$jsonSchema`, `$text`, ...)
//! never moves. A pipeline holding a stage that is not a document is left as it is: running
//! it reports that error.

use bson::{Bson, Document, RawBsonRef, RawDocumentBuf};

/// How many rewrites one pipeline may take: each moves a filter left or merges two, so a
/// pipeline of `n` stages needs fewer than `n * n`; this only bounds a mistake.
const MAX_REWRITES: usize = 10_000;

/// The pipeline rewritten, or `None` when it is left as it is.
pub fn optimize(stages: &[RawBsonRef<'_>]) -> Option<Vec<RawDocumentBuf>> {
    // Only a `$match` after the first stage can move or merge: most pipelines are left as
    // they are without decoding anything.
    let is_match = |stage: &RawBsonRef<'_>| match stage {
        RawBsonRef::Document(d) => d.iter().next().is_some_and(|e| e.is_ok_and(|(k, _)| k.as_str() == "$match")),
        _ => false,
    };
    if !stages.iter().skip(1).any(is_match) {
        return None;
    }
    // A later `$match` with `$text` is refused where it stands (17313), not merged forward.
    let has_text = |stage: &RawBsonRef<'_>| match stage {
        RawBsonRef::Document(d) => {
            matches!(d.get("$match"), Ok(Some(RawBsonRef::Document(filter))) if crate::query::text::mentions_text(filter))
        }
        _ => false,
    };
    if stages.iter().skip(1).any(has_text) {
        return None;
    }
    let mut docs = Vec::with_capacity(stages.len());
    for stage in stages {
        let RawBsonRef::Document(stage) = stage else { return None };
        docs.push(Document::try_from(*stage).ok()?);
    }
    let mut changed_any = false;
    for _ in 0..MAX_REWRITES {
        if !rewrite_once(&mut docs) {
            break;
        }
        changed_any = true;
    }
    if !changed_any {
        return None;
    }
    docs.iter().map(|d| RawDocumentBuf::try_from(d).ok()).collect()
}

fn stage_name(stage: &Document) -> Option<&str> {
    if stage.len() != 1 {
        return None;
    }
    stage.keys().next().map(String::as_str)
}

fn match_filter(stage: &Document) -> Option<&Document> {
    match (stage_name(stage), stage.get("$match")) {
        (Some("$match"), Some(Bson::Document(filter))) => Some(filter),
        _ => None,
    }
}

/// Applies the first rewrite that applies; whether one did.
fn rewrite_once(stages: &mut Vec<Document>) -> bool {
    for i in 1..stages.len() {
        let Some(filter) = stages.get(i).and_then(match_filter).cloned() else { continue };
        let Some(previous) = stages.get(i - 1) else { continue };
        if let Some(earlier) = match_filter(previous) {
            let merged = conjunction(conjuncts(earlier).into_iter().chain(conjuncts(&filter)).collect());
            if let Some(slot) = stages.get_mut(i - 1) {
                *slot = bson::doc! { "$match": merged };
            }
            stages.remove(i);
            return true;
        }
        let Some(writes) = Writes::of(previous) else { continue };
        let (movable, staying): (Vec<Document>, Vec<Document>) =
            conjuncts(&filter).into_iter().partition(|part| writes.leaves(part));
        if movable.is_empty() {
            continue;
        }
        let moved = bson::doc! { "$match": conjunction(movable) };
        if staying.is_empty() {
            stages.remove(i);
        } else if let Some(slot) = stages.get_mut(i) {
            *slot = bson::doc! { "$match": conjunction(staying) };
        }
        stages.insert(i - 1, moved);
        return true;
    }
    false
}

/// The parts of a filter that must all hold: its fields, `$and`'s elements flattened.
fn conjuncts(filter: &Document) -> Vec<Document> {
    let mut out = Vec::new();
    for (key, value) in filter {
        match (key.as_str(), value) {
            ("$and", Bson::Array(items)) if items.iter().all(|i| matches!(i, Bson::Document(_))) => {
                for item in items {
                    if let Bson::Document(d) = item {
                        out.extend(conjuncts(d));
                    }
                }
            }
            _ => {
                let mut part = Document::new();
                part.insert(key.clone(), value.clone());
                out.push(part);
            }
        }
    }
    out
}

/// One filter from parts: their fields side by side when no name repeats, else `$and`.
fn conjunction(parts: Vec<Document>) -> Document {
    let mut merged = Document::new();
    for part in &parts {
        for (key, value) in part {
            if merged.contains_key(key) {
                return bson::doc! { "$and": parts.into_iter().map(Bson::Document).collect::<Vec<_>>() };
            }
            merged.insert(key.clone(), value.clone());
        }
    }
    merged
}

/// The field paths a filter part reads, or `None` when they cannot be known.
fn paths_read(part: &Document) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for (key, value) in part {
        match key.as_str() {
            "$comment" => {}
            "$and" | "$or" | "$nor" => {
                let Bson::Array(items) = value else { return None };
                for item in items {
                    let Bson::Document(d) = item else { return None };
                    out.extend(paths_read(d)?);
                }
            }
            k if k.starts_with('$') => return None,
            k => out.push(k.to_owned()),
        }
    }
    Some(out)
}

/// Whether one path is the other or lies under it.
fn overlaps(a: &str, b: &str) -> bool {
    let under = |inner: &str, outer: &str| {
        inner.len() > outer.len() && inner.starts_with(outer) && inner.as_bytes().get(outer.len()) == Some(&b'.')
    };
    a == b || under(a, b) || under(b, a)
}

/// What a stage does to the fields a filter could read.
enum Writes {
    /// It changes these paths and leaves every other field as it was.
    Paths(Vec<String>),
    /// An inclusion `$project`: only the kept paths pass unchanged; the computed ones change.
    Keeps { kept: Vec<String>, computed: Vec<String> },
}

impl Writes {
    /// The fields `stage` writes, for the stages a filter may move ahead of.
    fn of(stage: &Document) -> Option<Self> {
        let name = stage_name(stage)?;
        let spec = stage.get(name)?;
        match (name, spec) {
            ("$sort", _) => Some(Self::Paths(Vec::new())),
            ("$addFields" | "$set", Bson::Document(fields)) => Some(Self::Paths(fields.keys().cloned().collect())),
            ("$unset", Bson::String(path)) => Some(Self::Paths(vec![path.clone()])),
            ("$unset", Bson::Array(paths)) => {
                paths.iter().map(|p| p.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>().map(Self::Paths)
            }
            ("$unwind", Bson::String(path)) => Some(Self::Paths(vec![path.strip_prefix('$')?.to_owned()])),
            ("$unwind", Bson::Document(spec)) => {
                let mut paths = vec![spec.get_str("path").ok()?.strip_prefix('$')?.to_owned()];
                if let Ok(index) = spec.get_str("includeArrayIndex") {
                    paths.push(index.to_owned());
                }
                Some(Self::Paths(paths))
            }
            ("$project", Bson::Document(fields)) => Self::of_project(fields),
            _ => None,
        }
    }

    fn of_project(fields: &Document) -> Option<Self> {
        let flag = |v: &Bson| match v {
            Bson::Boolean(b) => Some(*b),
            Bson::Int32(i) => Some(*i != 0),
            Bson::Int64(i) => Some(*i != 0),
            Bson::Double(d) => Some(*d != 0.0),
            _ => None,
        };
        // An exclusion names only fields to drop; `{_id: 1}` alone is an inclusion of `_id`.
        let mut others = fields.iter().filter(|(k, _)| k.as_str() != "_id").peekable();
        let excluding = if others.peek().is_none() {
            fields.get("_id").map(flag) == Some(Some(false))
        } else {
            others.all(|(_, v)| flag(v) == Some(false))
        };
        if excluding {
            return Some(Self::Paths(
                fields.iter().filter(|(_, v)| flag(v) == Some(false)).map(|(k, _)| k.clone()).collect(),
            ));
        }
        let (mut kept, mut computed) = (Vec::new(), Vec::new());
        for (key, value) in fields {
            match flag(value) {
                Some(true) => kept.push(key.clone()),
                Some(false) => computed.push(key.clone()),
                None => computed.push(key.clone()),
            }
        }
        // `_id` is kept unless excluded or computed.
        if !fields.contains_key("_id") {
            kept.push("_id".to_owned());
        }
        Some(Self::Keeps { kept, computed })
    }

    /// Whether the filter part reads only fields this stage leaves as they were.
    fn leaves(&self, part: &Document) -> bool {
        let Some(paths) = paths_read(part) else { return false };
        paths.iter().all(|p| match self {
            Self::Paths(written) => !written.iter().any(|w| overlaps(p, w)),
            Self::Keeps { kept, computed } => {
                kept.iter().any(|k| p == k || (p.starts_with(k.as_str()) && p.as_bytes().get(k.len()) == Some(&b'.')))
                    && !computed.iter().any(|c| overlaps(p, c))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use bson::{RawDocumentBuf, doc};

    use super::*;

    fn rewritten(stages: Vec<Document>) -> Vec<Document> {
        let raw: Vec<RawDocumentBuf> = stages.iter().map(|d| RawDocumentBuf::try_from(d).expect("encodes")).collect();
        let refs: Vec<RawBsonRef<'_>> = raw.iter().map(|d| RawBsonRef::Document(d)).collect();
        match optimize(&refs) {
            Some(out) => out.iter().map(|d| Document::try_from(d.as_ref()).expect("decodes")).collect(),
            None => stages,
        }
    }

    #[test]
    fn a_match_moves_ahead_of_what_does_not_write_its_fields() {
        assert_eq!(
            rewritten(vec![
                doc! { "$addFields": { "total": { "$add": ["$a", 1] } } },
                doc! { "$match": { "cust": "ann", "total": { "$gt": 5 } } },
            ]),
            vec![
                doc! { "$match": { "cust": "ann" } },
                doc! { "$addFields": { "total": { "$add": ["$a", 1] } } },
                doc! { "$match": { "total": { "$gt": 5 } } },
            ]
        );
        assert_eq!(
            rewritten(vec![
                doc! { "$sort": { "x": 1 } },
                doc! { "$unwind": "$items" },
                doc! { "$match": { "cust": "ann", "items.sku": 1 } },
            ]),
            vec![
                doc! { "$match": { "cust": "ann" } },
                doc! { "$sort": { "x": 1 } },
                doc! { "$unwind": "$items" },
                doc! { "$match": { "items.sku": 1 } },
            ]
        );
    }

    #[test]
    fn matches_merge_and_projections_keep_what_they_change() {
        assert_eq!(
            rewritten(vec![doc! { "$match": { "a": 1 } }, doc! { "$match": { "a": { "$gt": 0 }, "b": 2 } }]),
            vec![doc! { "$match": { "$and": [{ "a": 1 }, { "a": { "$gt": 0 } }, { "b": 2 }] } }]
        );
        // An inclusion projection passes kept fields (and `_id`) unchanged, nothing else.
        assert_eq!(
            rewritten(vec![
                doc! { "$project": { "a": 1, "c": "$b" } },
                doc! { "$match": { "a.x": 1, "_id": 3, "c": 2, "b": 1 } },
            ]),
            vec![
                doc! { "$match": { "a.x": 1, "_id": 3 } },
                doc! { "$project": { "a": 1, "c": "$b" } },
                doc! { "$match": { "c": 2, "b": 1 } },
            ]
        );
        // An exclusion of `a.b` changes `a`.
        let stays = vec![doc! { "$project": { "a.b": 0 } }, doc! { "$match": { "a": { "b": 1 } } }];
        assert_eq!(rewritten(stays.clone()), stays);
        // `{_id: 1}` keeps `_id` alone: a filter on another field stays behind it.
        assert_eq!(
            rewritten(vec![doc! { "$project": { "_id": 1 } }, doc! { "$match": { "a": 1, "_id": 2 } }]),
            vec![doc! { "$match": { "_id": 2 } }, doc! { "$project": { "_id": 1 } }, doc! { "$match": { "a": 1 } }]
        );
        // `{_id: 0}` alone drops `_id` only.
        assert_eq!(
            rewritten(vec![doc! { "$project": { "_id": 0 } }, doc! { "$match": { "a": 1, "_id": 2 } }]),
            vec![doc! { "$match": { "a": 1 } }, doc! { "$project": { "_id": 0 } }, doc! { "$match": { "_id": 2 } }]
        );
        // `$expr` reads fields no one can list: it stays.
        let stays = vec![doc! { "$set": { "z": 1 } }, doc! { "$match": { "$expr": { "$eq": ["$a", 1] } } }];
        assert_eq!(rewritten(stays.clone()), stays);
        // A `$group` is a barrier.
        let stays = vec![doc! { "$group": { "_id": "$a" } }, doc! { "$match": { "_id": 1 } }];
        assert_eq!(rewritten(stays.clone()), stays);
    }
}
