//! Pipeline-style updates (`u: [stage, ...]`): the stages mongod allows in an update,
//! `$set`/`$addFields`, `$unset`, `$replaceWith`/`$replaceRoot` and `$project` (with computed
//! fields, as in `find`). The same stages serve `aggregate` one document at a time
//! ([`DocumentStage`]).
//!
//! Each stage sees the document the previous stage produced; expressions are evaluated
//! against the document as it was when the stage began, as in mongod.

use std::sync::Arc;

use bson::{Bson, Document, RawArray, RawBsonRef, RawDocument, RawDocumentBuf};

use super::collation::Collation;
use super::elements::{fields, items};
use super::error::QueryError;
use super::expr::{Budget, Expression, Variables};
use super::filter::is_operator_document;
use super::projection::Projection;
use super::render;
use crate::error::ErrorCode;

/// A parsed update pipeline.
#[derive(Debug, Clone)]
pub(crate) struct UpdatePipeline {
    stages: Vec<DocumentStage>,
    /// The command's `let` variables.
    vars: Variables,
}

/// One stage that turns each document into one document.
#[derive(Debug, Clone)]
pub(crate) enum DocumentStage {
    /// `$set`/`$addFields`: dotted paths and their expressions, in order.
    Set(Vec<(Vec<String>, Expression)>),
    /// `$unset`: dotted paths to remove.
    Unset(Vec<Vec<String>>),
    /// `$replaceWith` (or `$replaceRoot: {newRoot}`): an expression producing the document.
    ReplaceWith(Expression),
    /// `$project`: inclusion or exclusion.
    Project(Projection),
}

impl UpdatePipeline {
    /// Parses the stages of an update pipeline.
    ///
    /// # Errors
    /// 40323 for a stage that is not a one-field document, 40324 for an unknown stage, 72
    /// InvalidOptions for a stage mongod refuses in an update, and the expression and
    /// projection parse errors.
    pub(crate) fn parse(stages: &RawArray, vars: &Variables) -> Result<Self, QueryError> {
        let mut out = Vec::new();
        for stage in items(stages) {
            let RawBsonRef::Document(stage) = stage else {
                return Err(one_field_stage());
            };
            let mut entries = fields(stage);
            let (Some((name, spec)), None) = (entries.next(), entries.next()) else {
                return Err(one_field_stage());
            };
            out.push(DocumentStage::parse(name, spec, vars)?);
        }
        Ok(Self { stages: out, vars: vars.clone() })
    }

    /// Makes the stages' comparison expressions compare strings under `collation`.
    pub(crate) fn set_collation(&mut self, collation: &Arc<Collation>) {
        self.vars.set_collation(Some(Arc::clone(collation)));
    }

    /// Runs the stages over `doc` and returns the result (whose `_id` the caller checks).
    ///
    /// # Errors
    /// Evaluation errors of the expressions; 40228 when `$replaceWith` produces no document.
    pub(crate) fn apply(&self, doc: &Document) -> Result<Document, QueryError> {
        self.apply_with(doc, &self.vars)
    }

    /// [`UpdatePipeline::apply`] with `vars` in scope instead of those it was parsed with
    /// (`$merge` binds `$$new` per document).
    ///
    /// # Errors
    /// As [`UpdatePipeline::apply`].
    pub(crate) fn apply_with(&self, doc: &Document, vars: &Variables) -> Result<Document, QueryError> {
        let mut current = doc.clone();
        for stage in &self.stages {
            current = stage.apply(current, vars)?;
        }
        Ok(current)
    }
}

impl DocumentStage {
    /// Parses the stage `{name: spec}`; `vars` are the command's `let` variables (for the
    /// projection of `$project`).
    ///
    /// # Errors
    /// 72 InvalidOptions for a stage mongod refuses in an update, 40324 for an unknown one,
    /// and the expression and projection parse errors.
    pub(crate) fn parse(name: &str, spec: RawBsonRef<'_>, vars: &Variables) -> Result<Self, QueryError> {
        let stage = parse_stage(name, spec)?;
        Ok(match stage {
            Self::Project(projection) => Self::Project(projection.with_variables(vars)),
            other => other,
        })
    }

    /// Runs the stage over `current`; expressions see `current` as it was when the stage began.
    ///
    /// # Errors
    /// Evaluation errors of the expressions; 40228 when `$replaceWith` produces no document.
    pub(crate) fn apply(&self, mut current: Document, vars: &Variables) -> Result<Document, QueryError> {
        let raw = RawDocumentBuf::try_from(&current).map_err(QueryError::invalid_bson)?;
        match self {
            Self::Set(entries) => {
                // The values are all kept until they are set, so they share one budget.
                let mut budget = Budget::default();
                let mut values = Vec::with_capacity(entries.len());
                for (path, expr) in entries {
                    values.push((path, expr.evaluate_in(&raw, vars, &mut budget)?));
                }
                for (path, value) in values {
                    match value {
                        Some(v) => set_path(&mut current, path, v),
                        // `$$REMOVE` (or any missing value) takes the field away.
                        None => unset_path(&mut current, path),
                    }
                }
            }
            Self::Unset(paths) => paths.iter().for_each(|p| unset_path(&mut current, p)),
            Self::Project(projection) => {
                current = super::limits::to_document(&projection.apply(&raw)?)?;
            }
            Self::ReplaceWith(expr) => match expr.evaluate(&raw, vars)? {
                Some(Bson::Document(next)) => current = next,
                other => {
                    let shown = other.as_ref().map_or_else(|| "missing".to_owned(), render_value);
                    let kind = other.as_ref().map_or("missing", |v| render::type_name(v.element_type()));
                    return Err(QueryError::new(
                        ErrorCode::Location40228,
                        format!(
                            "'replacement document' must evaluate to an object, but resulting value was: \
                             {shown}. Type of resulting value: '{kind}'."
                        ),
                    ));
                }
            },
        }
        Ok(current)
    }
}

fn render_value(v: &Bson) -> String {
    render::owned_value(v)
}

fn one_field_stage() -> QueryError {
    QueryError::new(ErrorCode::Location40323, "A pipeline stage specification object must contain exactly one field.")
}

fn parse_stage(name: &str, spec: RawBsonRef<'_>) -> Result<DocumentStage, QueryError> {
    match name {
        "$set" | "$addFields" => {
            let RawBsonRef::Document(spec) = spec else {
                return Err(QueryError::new(
                    ErrorCode::Location40272,
                    format!(
                        "{name} specification stage must be an object, got {}",
                        render::type_name(spec.element_type())
                    ),
                ));
            };
            let mut entries = Vec::new();
            collect_set_entries(spec, &[], &mut entries)?;
            Ok(DocumentStage::Set(entries))
        }
        "$unset" => {
            let paths = match spec {
                RawBsonRef::String(s) => vec![split_path(s)?],
                RawBsonRef::Array(list) => {
                    let mut out = Vec::new();
                    for item in items(list) {
                        let RawBsonRef::String(s) = item else {
                            return Err(QueryError::new(
                                ErrorCode::Location31120,
                                "$unset specification must be a string or an array containing only string values",
                            ));
                        };
                        out.push(split_path(s)?);
                    }
                    if out.is_empty() {
                        return Err(QueryError::new(
                            ErrorCode::Location31119,
                            "$unset specification must be a string or an array with at least one field",
                        ));
                    }
                    out
                }
                _ => {
                    return Err(QueryError::new(
                        ErrorCode::Location31002,
                        "$unset specification must be a string or an array",
                    ));
                }
            };
            Ok(DocumentStage::Unset(paths))
        }
        "$replaceWith" => Ok(DocumentStage::ReplaceWith(Expression::parse(spec)?)),
        "$replaceRoot" => match spec {
            RawBsonRef::Document(doc) => match doc.get("newRoot") {
                Ok(Some(root)) => Ok(DocumentStage::ReplaceWith(Expression::parse(root)?)),
                _ => replace_root_options(doc),
            },
            other => Err(QueryError::new(
                ErrorCode::Location40229,
                format!(
                    "expected an object as specification for $replaceRoot stage, got {}",
                    crate::query::render::type_name(other.element_type())
                ),
            )),
        },
        "$project" => match spec {
            RawBsonRef::Document(spec) => Ok(DocumentStage::Project(Projection::parse_aggregate(spec)?)),
            _ => Err(QueryError::new(ErrorCode::Location15969, "$project specification must be an object")),
        },
        _ if super::agg::stages::is_stage_name(name) => Err(QueryError::new(
            ErrorCode::InvalidOptions,
            format!("{name} is not allowed to be used within an update"),
        )),
        _ => Err(QueryError::new(ErrorCode::Location40324, format!("Unrecognized pipeline stage name: '{name}'"))),
    }
}

/// The error of a `$replaceRoot` document without `newRoot`: an unknown option (40230), else
/// the missing `newRoot` (40231).
fn replace_root_options(spec: &RawDocument) -> Result<DocumentStage, QueryError> {
    match fields(spec).map(|(k, _)| k).find(|k| *k != "newRoot") {
        Some(other) => Err(QueryError::new(
            ErrorCode::Location40230,
            format!("unrecognized option to $replaceRoot stage: {other}, only valid option is 'newRoot'."),
        )),
        None => Err(QueryError::new(ErrorCode::Location40231, "no newRoot specified for the $replaceRoot stage")),
    }
}

/// `$set: {a: {b: expr}}` sets `a.b` and keeps `a`'s other fields, as mongod reads a nested
/// object without operators as more fields to set; an operator object or an empty one is an
/// expression.
fn collect_set_entries(
    spec: &RawDocument,
    prefix: &[String],
    out: &mut Vec<(Vec<String>, Expression)>,
) -> Result<(), QueryError> {
    for (key, value) in fields(spec) {
        let mut path = prefix.to_vec();
        path.extend(split_path(key)?);
        // A nested object continues its parent's path, which must stay one `FieldPath`.
        super::limits::check_field_path_parts(path.len())?;
        match value {
            RawBsonRef::Document(inner) if !inner.is_empty() && !is_operator_document(inner) => {
                collect_set_entries(inner, &path, out)?;
            }
            _ => out.push((path, Expression::parse(value)?)),
        }
    }
    Ok(())
}

/// mongod's `FieldPath` checks on a field to set or unset.
fn split_path(path: &str) -> Result<Vec<String>, QueryError> {
    if path.is_empty() {
        return Err(QueryError::new(ErrorCode::Location40352, "FieldPath cannot be constructed with empty string"));
    }
    if path.ends_with('.') {
        return Err(QueryError::new(ErrorCode::Location40353, "FieldPath must not end with a '.'."));
    }
    super::limits::check_field_path_parts(path.split('.').count())?;
    path.split('.')
        .map(|part| {
            if part.is_empty() {
                Err(QueryError::new(ErrorCode::Location15998, "FieldPath field names may not be empty strings."))
            } else if part.starts_with('$') {
                Err(QueryError::new(
                    ErrorCode::Location16410,
                    "FieldPath field names may not start with '$'. Consider using $getField or $setField.",
                ))
            } else {
                Ok(part.to_owned())
            }
        })
        .collect()
}

/// Sets `path` to `value`: an existing field keeps its position, a document on the way is
/// entered, an array on the way has the rest set in each element (a non-document element
/// becomes a document), anything else is replaced by a new document.
fn set_path(doc: &mut Document, path: &[String], value: Bson) {
    let Some((first, rest)) = path.split_first() else { return };
    if rest.is_empty() {
        doc.insert(first.clone(), value);
        return;
    }
    match doc.get_mut(first) {
        Some(Bson::Document(inner)) => set_path(inner, rest, value),
        Some(Bson::Array(list)) => {
            for element in list.iter_mut() {
                if !matches!(element, Bson::Document(_)) {
                    *element = Bson::Document(Document::new());
                }
                if let Bson::Document(inner) = element {
                    set_path(inner, rest, value.clone());
                }
            }
        }
        _ => {
            let mut inner = Document::new();
            set_path(&mut inner, rest, value);
            doc.insert(first.clone(), Bson::Document(inner));
        }
    }
}

/// Removes `path`; through an array, from each document element.
fn unset_path(doc: &mut Document, path: &[String]) {
    let Some((first, rest)) = path.split_first() else { return };
    if rest.is_empty() {
        doc.remove(first);
        return;
    }
    match doc.get_mut(first) {
        Some(Bson::Document(inner)) => unset_path(inner, rest),
        Some(Bson::Array(list)) => {
            for element in list.iter_mut() {
                if let Bson::Document(inner) = element {
                    unset_path(inner, rest);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Update;
    use bson::{bson, doc};

    fn run(doc: Document, stages: Bson) -> Result<Document, i32> {
        let raw = bson::RawDocumentBuf::try_from(&doc! { "s": stages }).unwrap();
        let Ok(Some(RawBsonRef::Array(list))) = raw.get("s") else { panic!("stages must be an array") };
        let update = Update::parse_pipeline(list, &Variables::new()).map_err(|e| e.code().code())?;
        let mut out = doc;
        update.apply(&mut out, false).map_err(|e| e.code().code())?;
        Ok(out)
    }

    #[test]
    fn pipeline_set_unset_replace() {
        let base = doc! { "_id": 1, "a": 2, "b": { "c": 3, "d": 4 }, "arr": [ { "x": 1 }, 5 ] };
        let rows: Vec<(Bson, Result<Document, i32>)> = vec![
            (
                bson!([{ "$set": { "sum": { "$add": ["$a", "$b.c"] }, "a": 10 } }]),
                Ok(doc! { "_id": 1, "a": 10, "b": { "c": 3, "d": 4 }, "arr": [ { "x": 1 }, 5 ], "sum": 5 }),
            ),
            // Every expression of a stage sees the document as the stage began.
            (
                bson!([{ "$addFields": { "a": 7, "copy": "$a" } }, { "$set": { "again": "$a" } }]),
                Ok(doc! { "_id": 1, "a": 7, "b": { "c": 3, "d": 4 }, "arr": [ { "x": 1 }, 5 ], "copy": 2, "again": 7 }),
            ),
            (
                bson!([{ "$set": { "b": { "e": "$a" }, "b.f": 1 } }]),
                Ok(doc! { "_id": 1, "a": 2, "b": { "c": 3, "d": 4, "e": 2, "f": 1 }, "arr": [ { "x": 1 }, 5 ] }),
            ),
            (
                bson!([{ "$set": { "arr.y": 0, "a": "$$REMOVE" } }]),
                Ok(doc! { "_id": 1, "b": { "c": 3, "d": 4 }, "arr": [ { "x": 1, "y": 0 }, { "y": 0 } ] }),
            ),
            (bson!([{ "$unset": ["a", "b.c"] }]), Ok(doc! { "_id": 1, "b": { "d": 4 }, "arr": [ { "x": 1 }, 5 ] })),
            (bson!([{ "$unset": "arr" }]), Ok(doc! { "_id": 1, "a": 2, "b": { "c": 3, "d": 4 } })),
            (bson!([{ "$replaceWith": "$b" }]), Ok(doc! { "_id": 1, "c": 3, "d": 4 })),
            (bson!([{ "$replaceRoot": { "newRoot": { "z": "$a" } } }]), Ok(doc! { "_id": 1, "z": 2 })),
            (bson!([{ "$replaceWith": { "_id": 2 } }]), Err(66)),
            (bson!([{ "$replaceWith": "$a" }]), Err(40228)),
            (bson!([{ "$set": { "x": { "$divide": [1, 0] } } }]), Err(2)),
            (bson!([{ "$set": 1 }]), Err(40272)),
            (bson!([{ "$unset": [] }]), Err(31119)),
            (bson!([{ "$unset": [1] }]), Err(31120)),
            (bson!([{ "$unset": 1 }]), Err(31002)),
            (bson!([{ "$set": { "a": 1 }, "$unset": "b" }]), Err(40323)),
            (bson!([1]), Err(40323)),
            (bson!([{ "$match": {} }]), Err(72)),
            (bson!([{ "$bogus": {} }]), Err(40324)),
            (bson!([{ "$project": { "a": 1, "b.d": 1 } }]), Ok(doc! { "_id": 1, "a": 2, "b": { "d": 4 } })),
            (bson!([{ "$project": { "b": 0, "arr": 0 } }]), Ok(doc! { "_id": 1, "a": 2 })),
            (bson!([{ "$project": { "a": 0, "b": 1 } }]), Err(31253)),
            (bson!([{ "$project": 1 }]), Err(15969)),
            (bson!([{ "$set": { "x": { "$nope": 1 } } }]), Err(168)),
        ];
        for (stages, expected) in rows {
            assert_eq!(run(base.clone(), stages.clone()), expected, "{stages}");
        }
    }

    #[test]
    fn pipeline_uses_let_variables() {
        let raw = bson::RawDocumentBuf::try_from(&doc! { "s": [ { "$set": { "a": "$$v" } } ] }).unwrap();
        let Ok(Some(RawBsonRef::Array(list))) = raw.get("s") else { panic!("array") };
        let vars = Variables::from_let(&bson::rawdoc! { "v": { "$add": [1, 1] } }).unwrap();
        let update = Update::parse_pipeline(list, &vars).unwrap();
        let mut doc = doc! { "_id": 1 };
        assert_eq!(update.apply(&mut doc, false), Ok(true));
        assert_eq!(doc, doc! { "_id": 1, "a": 2 });
    }

    #[test]
    fn pipeline_reports_no_change() {
        let raw = bson::RawDocumentBuf::try_from(&doc! { "s": [ { "$set": { "a": 1 } } ] }).unwrap();
        let Ok(Some(RawBsonRef::Array(list))) = raw.get("s") else { panic!("array") };
        let update = Update::parse_pipeline(list, &Variables::new()).unwrap();
        let mut same = doc! { "_id": 1, "a": 1 };
        assert_eq!(update.apply(&mut same, false), Ok(false));
        let mut other = doc! { "_id": 1, "a": 2 };
        assert_eq!(update.apply(&mut other, false), Ok(true));
        assert_eq!(other, doc! { "_id": 1, "a": 1 });
    }

    #[test]
    fn pipeline_paths_past_200_components_are_overflow() {
        let long = |n: usize| vec!["a"; n].join(".");
        let mut inner = Document::new();
        inner.insert(long(51), 1);
        let mut set = Document::new();
        set.insert(long(150), inner);
        assert_eq!(run(doc! { "_id": 0 }, bson!([{ "$set": set }])), Err(15));
        let mut set = Document::new();
        set.insert("x", format!("${}", long(201)));
        assert_eq!(run(doc! { "_id": 0 }, bson!([{ "$set": set }])), Err(15));
        assert_eq!(run(doc! { "_id": 0 }, bson!([{ "$unset": long(201) }])), Err(15));
    }

    #[test]
    fn pipeline_stages_may_not_nest_past_200_levels() {
        // Each stage nests `a` one level deeper: once it is deeper than mongod reads, `$a` is
        // refused instead of being copied (the copy used to recurse as deep as the value).
        let stages: Vec<Bson> = (0..2000).map(|_| bson!({ "$set": { "a": { "a": "$a" } } })).collect();
        assert_eq!(run(doc! { "_id": 0, "a": 1 }, Bson::Array(stages)), Err(15));
    }
}
