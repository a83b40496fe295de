//! `$unwind`: one output document per element of an array field.

use bson::{Bson, Document, RawBsonRef};

use super::{StageArgs, raw, set_path};
use crate::error::{Error, ErrorCode, Result};
use crate::query::{limits, render};
use crate::state::cursors::DocumentStream;

/// A parsed `$unwind`.
#[derive(Debug, Clone)]
struct Unwind {
    path: Vec<String>,
    include_array_index: Option<Vec<String>>,
    preserve_null_and_empty_arrays: bool,
}

impl Unwind {
    fn parse(spec: RawBsonRef<'_>) -> Result<Self> {
        match spec {
            RawBsonRef::String(path) => {
                Ok(Self { path: parse_path(path)?, include_array_index: None, preserve_null_and_empty_arrays: false })
            }
            RawBsonRef::Document(options) => {
                let (mut path, mut index, mut preserve) = (None, None, false);
                for element in options {
                    let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
                    match (key.as_str(), value) {
                        ("path", RawBsonRef::String(p)) => path = Some(parse_path(p)?),
                        ("path", other) => {
                            return Err(Error::new(
                                ErrorCode::Location28808,
                                format!("expected a string as the path for $unwind stage, got {}", type_name(other)),
                            ));
                        }
                        ("preserveNullAndEmptyArrays", RawBsonRef::Boolean(b)) => preserve = b,
                        ("preserveNullAndEmptyArrays", other) => {
                            return Err(Error::new(
                                ErrorCode::Location28809,
                                format!(
                                    "expected a boolean for the preserveNullAndEmptyArrays option to $unwind stage, got {}",
                                    type_name(other)
                                ),
                            ));
                        }
                        ("includeArrayIndex", RawBsonRef::String(name)) if !name.is_empty() => {
                            if name.starts_with('$') {
                                return Err(Error::new(
                                    ErrorCode::Location28822,
                                    format!(
                                        "includeArrayIndex option to $unwind stage should not be prefixed with a '$': {name}"
                                    ),
                                ));
                            }
                            index = Some(name.split('.').map(str::to_owned).collect());
                        }
                        ("includeArrayIndex", other) => {
                            return Err(Error::new(
                                ErrorCode::Location28810,
                                format!(
                                    "expected a non-empty string for the includeArrayIndex  option to $unwind stage, got {}",
                                    type_name(other)
                                ),
                            ));
                        }
                        (other, _) => {
                            return Err(Error::new(
                                ErrorCode::Location28811,
                                format!("unrecognized option to $unwind stage: {other}"),
                            ));
                        }
                    }
                }
                let path =
                    path.ok_or_else(|| Error::new(ErrorCode::Location28812, "no path specified to $unwind stage"))?;
                Ok(Self { path, include_array_index: index, preserve_null_and_empty_arrays: preserve })
            }
            other => Err(Error::new(
                ErrorCode::Location15981,
                format!(
                    "expected either a string or an object as specification for $unwind stage, got {}",
                    type_name(other)
                ),
            )),
        }
    }

    /// The documents `document` unwinds into.
    fn apply(&self, mut document: Document) -> Vec<Document> {
        let value = value_at(&document, &self.path).cloned();
        match value {
            Some(Bson::Array(items)) if !items.is_empty() => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    let mut out = document.clone();
                    set_path(&mut out, &self.path, item);
                    if let Some(index) = &self.include_array_index {
                        set_path(&mut out, index, Bson::Int64(i64::try_from(i).unwrap_or(i64::MAX)));
                    }
                    out
                })
                .collect(),
            // An empty array leaves the field out; null and missing stay as they were.
            Some(Bson::Array(_)) if self.preserve_null_and_empty_arrays => {
                remove_path(&mut document, &self.path);
                vec![self.with_null_index(document)]
            }
            None if self.preserve_null_and_empty_arrays => vec![self.with_null_index(document)],
            Some(Bson::Null) if self.preserve_null_and_empty_arrays => {
                set_path(&mut document, &self.path, Bson::Null);
                vec![self.with_null_index(document)]
            }
            Some(Bson::Array(_) | Bson::Null | Bson::Undefined) | None => Vec::new(),
            // A value that is not an array unwinds into itself.
            Some(other) => {
                set_path(&mut document, &self.path, other);
                vec![self.with_null_index(document)]
            }
        }
    }

    fn with_null_index(&self, mut document: Document) -> Document {
        if let Some(index) = &self.include_array_index {
            set_path(&mut document, index, Bson::Null);
        }
        document
    }
}

fn type_name(value: RawBsonRef<'_>) -> &'static str {
    render::type_name(value.element_type())
}

fn parse_path(path: &str) -> Result<Vec<String>> {
    let Some(below) = path.strip_prefix('$') else {
        return Err(Error::new(
            ErrorCode::Location28818,
            format!("path option to $unwind stage should be prefixed with a '$': {path}"),
        ));
    };
    let parts: Vec<String> = below.split('.').map(str::to_owned).collect();
    for part in &parts {
        crate::query::path::check_field_name(part)?;
    }
    Ok(parts)
}

/// The value at `path`, reached through documents only (an array on the way makes it
/// missing, as mongod's `getNestedField`).
fn value_at<'a>(document: &'a Document, path: &[String]) -> Option<&'a Bson> {
    let (first, rest) = path.split_first()?;
    match (document.get(first), rest.is_empty()) {
        (value, true) => value,
        (Some(Bson::Document(inner)), false) => value_at(inner, rest),
        _ => None,
    }
}

/// Removes `path` (an empty array unwound with `preserveNullAndEmptyArrays`).
fn remove_path(document: &mut Document, path: &[String]) {
    let Some((first, rest)) = path.split_first() else { return };
    if rest.is_empty() {
        document.remove(first);
    } else if let Some(Bson::Document(inner)) = document.get_mut(first) {
        remove_path(inner, rest);
    }
}

/// `$unwind`.
pub(super) fn unwind(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let unwind = Unwind::parse(args.spec)?;
    Ok(Box::new(stream.flat_map(move |document| -> Vec<Result<bson::RawDocumentBuf>> {
        let document = match document.and_then(|d| Ok(limits::to_document(&d)?)) {
            Ok(document) => document,
            Err(error) => return vec![Err(error)],
        };
        unwind.apply(document).iter().map(raw).collect()
    })))
}

#[cfg(test)]
mod tests {
    use bson::{bson, doc};

    use super::*;

    fn unwind(spec: Bson, document: Document) -> Result<Vec<Document>> {
        let holder = bson::RawDocumentBuf::try_from(&doc! { "s": spec })
            .map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        let spec = holder.get("s").ok().flatten().unwrap_or(RawBsonRef::Null);
        Ok(Unwind::parse(spec)?.apply(document))
    }

    #[test]
    fn each_element_becomes_a_document_and_the_index_is_a_long() {
        let out = unwind(bson!({"path": "$a.b", "includeArrayIndex": "i"}), doc! {"x": 1, "a": {"b": [1, 2]}}).ok();
        assert_eq!(out, Some(vec![doc! {"x": 1, "a": {"b": 1}, "i": 0_i64}, doc! {"x": 1, "a": {"b": 2}, "i": 1_i64}]));
    }

    #[test]
    fn null_missing_and_empty_arrays_are_dropped_unless_preserved() {
        for document in [doc! {"a": []}, doc! {"a": null}, doc! {}] {
            assert_eq!(unwind(bson!("$a"), document.clone()).ok(), Some(vec![]));
        }
        let preserve = bson!({"path": "$a", "preserveNullAndEmptyArrays": true, "includeArrayIndex": "i"});
        assert_eq!(unwind(preserve.clone(), doc! {"k": 1, "a": []}).ok(), Some(vec![doc! {"k": 1, "i": null}]));
        assert_eq!(unwind(preserve.clone(), doc! {"a": null}).ok(), Some(vec![doc! {"a": null, "i": null}]));
        assert_eq!(unwind(preserve, doc! {"k": 1}).ok(), Some(vec![doc! {"k": 1, "i": null}]));
        // A scalar unwinds into itself.
        assert_eq!(unwind(bson!("$a"), doc! {"a": 5}).ok(), Some(vec![doc! {"a": 5}]));
    }

    #[test]
    fn bad_specifications_get_mongods_codes() {
        let code = |spec: Bson| unwind(spec, doc! {}).err().map(|e| e.code());
        assert_eq!(code(bson!(1)), Some(ErrorCode::Location15981));
        assert_eq!(code(bson!("a")), Some(ErrorCode::Location28818));
        assert_eq!(code(bson!({"path": 1})), Some(ErrorCode::Location28808));
        assert_eq!(code(bson!({"path": "$a", "preserveNullAndEmptyArrays": 1})), Some(ErrorCode::Location28809));
        assert_eq!(code(bson!({"path": "$a", "includeArrayIndex": ""})), Some(ErrorCode::Location28810));
        assert_eq!(code(bson!({"path": "$a", "bogus": 1})), Some(ErrorCode::Location28811));
        assert_eq!(code(bson!({})), Some(ErrorCode::Location28812));
        assert_eq!(code(bson!({"path": "$a", "includeArrayIndex": "$i"})), Some(ErrorCode::Location28822));
    }
}
