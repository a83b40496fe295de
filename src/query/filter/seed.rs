//! The document an upsert starts from: the equalities of its filter.

use bson::{Bson, Document, RawBson};

use super::predicate::{CompareOp, Predicate};
use super::tree::Expr;
use crate::error::ErrorCode;
use crate::query::error::QueryError;
use crate::query::render;

/// The document an upsert starts from: the filter's equalities (also inside `$and`, and a
/// one-element `$in` or `$or`), dotted paths turned into nested documents, `_id` first.
pub(super) fn equality_seed(root: &Expr) -> Result<Document, QueryError> {
    let mut equalities: Vec<(&str, &RawBson)> = Vec::new();
    collect_equalities(root, &mut equalities)?;
    // mongod keeps them in a map ordered by path and sets them in that order.
    equalities.sort_by(|a, b| a.0.cmp(b.0));
    let mut seed = Document::new();
    for (path, value) in equalities {
        let value = Bson::try_from(value.clone()).map_err(QueryError::invalid_bson)?;
        set_seed_path(&mut seed, path, value)?;
    }
    Ok(move_id_first(seed))
}

/// Gathers `(path, value)` for every equality an upsert can take, checking as mongod does
/// that no path is claimed twice and no path lies under an earlier one.
fn collect_equalities<'a>(expr: &'a Expr, out: &mut Vec<(&'a str, &'a RawBson)>) -> Result<(), QueryError> {
    match expr {
        Expr::And(children) => {
            for child in children {
                collect_equalities(child, out)?;
            }
        }
        Expr::Or(children) if children.len() == 1 => {
            for child in children {
                collect_equalities(child, out)?;
            }
        }
        Expr::Path { path, pred: Predicate::Compare { op: CompareOp::Eq, rhs, .. } } => {
            add_equality(path.dotted(), rhs, out)?;
        }
        Expr::Path { path, pred: Predicate::In(list) } if list.values.len() == 1 => {
            for rhs in &list.values {
                add_equality(path.dotted(), rhs, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn add_equality<'a>(path: &'a str, rhs: &'a RawBson, out: &mut Vec<(&'a str, &'a RawBson)>) -> Result<(), QueryError> {
    for (seen, _) in out.iter() {
        let message = if *seen == path {
            format!("cannot infer query fields to set, path '{path}' is matched twice")
        } else if path.strip_prefix(seen).is_some_and(|rest| rest.starts_with('.')) {
            format!("cannot infer query fields to set, both paths '{path}' and '{seen}' are matched")
        } else {
            continue;
        };
        return Err(QueryError::new(ErrorCode::NotSingleValueField, message));
    }
    out.push((path, rhs));
    Ok(())
}

/// Sets `path` in the seed, creating documents on the way (mongod's `setElementAtPath`).
fn set_seed_path(seed: &mut Document, path: &str, value: Bson) -> Result<(), QueryError> {
    let mut parts = path.split('.').peekable();
    let mut current = seed;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            current.insert(part, value);
            return Ok(());
        }
        let next = current.entry(part.to_owned()).or_insert_with(|| Bson::Document(Document::new()));
        match next {
            Bson::Document(doc) => current = doc,
            other => {
                let element = render::owned_element(part, other);
                return Err(QueryError::new(
                    ErrorCode::PathNotViable,
                    format!("cannot use the part ({part} of {path}) to traverse the element ({{{element}}})"),
                ));
            }
        }
    }
    Ok(())
}

/// `doc` with `_id` moved to the front, where mongod keeps it in stored documents.
pub(crate) fn move_id_first(doc: Document) -> Document {
    if doc.keys().next().is_none_or(|k| k == "_id") || !doc.contains_key("_id") {
        return doc;
    }
    let mut out = Document::new();
    let mut rest = Vec::new();
    for (key, value) in doc {
        if key == "_id" {
            out.insert(key, value);
        } else {
            rest.push((key, value));
        }
    }
    out.extend(rest);
    out
}
