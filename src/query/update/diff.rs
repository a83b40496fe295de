//! The difference between a document before and after an update, in mongod's oplog format
//! (`$v: 2` update entries): what change streams read back as `updateDescription`.
//!
//! A document diff holds `d` (removed fields, each `false`), `u` (fields whose value changed),
//! `i` (fields added) and `s<field>` (the diff inside a field that is a document or an array
//! on both sides). An array diff is `{a: true}` with `l` (the new length, when it shrank),
//! `u<index>` (a replaced or appended element) and `s<index>` (the diff inside an element).
//!
//! [`apply_diff`] is the inverse: what point-in-time recovery replays an update entry with.

use bson::{Bson, Document};

/// The diff that turns `old` into `new`.
pub fn document_diff(old: &Document, new: &Document) -> Document {
    let mut deleted = Document::new();
    let mut updated = Document::new();
    let mut inserted = Document::new();
    let mut nested = Document::new();
    for (field, _) in old {
        if !new.contains_key(field) {
            deleted.insert(field, false);
        }
    }
    for (field, value) in new {
        match old.get(field) {
            None => {
                inserted.insert(field, value.clone());
            }
            Some(before) if before == value => {}
            Some(before) => match nested_diff(before, value) {
                Some(diff) => {
                    nested.insert(format!("s{field}"), diff);
                }
                None => {
                    updated.insert(field, value.clone());
                }
            },
        }
    }
    let mut diff = Document::new();
    for (key, part) in [("d", deleted), ("u", updated), ("i", inserted)] {
        if !part.is_empty() {
            diff.insert(key, part);
        }
    }
    diff.extend(nested);
    diff
}

/// The diff inside a value that is a document, or an array, on both sides; `None` when the
/// value is replaced whole.
fn nested_diff(before: &Bson, after: &Bson) -> Option<Document> {
    match (before, after) {
        (Bson::Document(old), Bson::Document(new)) => Some(document_diff(old, new)),
        (Bson::Array(old), Bson::Array(new)) => Some(array_diff(old, new)),
        _ => None,
    }
}

fn array_diff(old: &[Bson], new: &[Bson]) -> Document {
    let mut diff = Document::new();
    diff.insert("a", true);
    if new.len() < old.len() {
        diff.insert("l", i32::try_from(new.len()).unwrap_or(i32::MAX));
    }
    for (index, value) in new.iter().enumerate() {
        match old.get(index) {
            Some(before) if before == value => {}
            Some(before) => match nested_diff(before, value) {
                Some(inner) => {
                    diff.insert(format!("s{index}"), inner);
                }
                None => {
                    diff.insert(format!("u{index}"), value.clone());
                }
            },
            None => {
                diff.insert(format!("u{index}"), value.clone());
            }
        }
    }
    diff
}

/// `document` with `diff` applied, as mongod applies a `$v: 2` update entry: removed fields
/// go, changed ones keep their place, added ones are appended in the diff's order, and nested
/// diffs apply inside their field.
///
/// # Errors
/// A message when the diff does not fit the document (a nested diff for a field that is
/// missing or of the other kind, an unknown diff key, an index that is not a number).
pub fn apply_diff(document: &mut Document, diff: &Document) -> Result<(), String> {
    for (key, part) in diff {
        match (key.as_str(), part) {
            ("d", Bson::Document(fields)) => {
                for (field, _) in fields {
                    document.remove(field);
                }
            }
            ("u", Bson::Document(fields)) => {
                for (field, value) in fields {
                    // `insert` keeps an existing field's place.
                    document.insert(field.clone(), value.clone());
                }
            }
            ("i", Bson::Document(fields)) => {
                for (field, value) in fields {
                    document.remove(field);
                    document.insert(field.clone(), value.clone());
                }
            }
            (nested, Bson::Document(inner)) if nested.starts_with('s') => {
                let field = &nested[1..];
                let value =
                    document.get_mut(field).ok_or_else(|| format!("the diff of field {field:?}, which is missing"))?;
                apply_nested(value, inner).map_err(|e| format!("in field {field:?}: {e}"))?;
            }
            (other, _) => return Err(format!("unknown document diff key {other:?}")),
        }
    }
    Ok(())
}

fn apply_nested(value: &mut Bson, diff: &Document) -> Result<(), String> {
    let is_array_diff = matches!(diff.get("a"), Some(Bson::Boolean(true)));
    match value {
        Bson::Document(inner) if !is_array_diff => apply_diff(inner, diff),
        Bson::Array(items) if is_array_diff => apply_array_diff(items, diff),
        _ => Err(format!(
            "a {} diff for a value of type {:?}",
            if is_array_diff { "array" } else { "document" },
            value.element_type()
        )),
    }
}

fn apply_array_diff(items: &mut Vec<Bson>, diff: &Document) -> Result<(), String> {
    let index_of = |text: &str| text.parse::<usize>().map_err(|_| format!("array diff key {text:?} is not an index"));
    for (key, part) in diff {
        match key.as_str() {
            "a" => {}
            "l" => {
                let length = part
                    .as_i32()
                    .and_then(|l| usize::try_from(l).ok())
                    .or_else(|| part.as_i64().and_then(|l| usize::try_from(l).ok()));
                items.resize(length.ok_or_else(|| format!("array length {part} is not a length"))?, Bson::Null);
            }
            updated if updated.starts_with('u') => {
                let index = index_of(&updated[1..])?;
                if index >= items.len() {
                    items.resize(index + 1, Bson::Null);
                }
                if let Some(item) = items.get_mut(index) {
                    *item = part.clone();
                }
            }
            nested if nested.starts_with('s') => {
                let index = index_of(&nested[1..])?;
                let Bson::Document(inner) = part else {
                    return Err(format!("array diff {nested:?} is not a document"));
                };
                let item =
                    items.get_mut(index).ok_or_else(|| format!("the diff of element {index}, which is missing"))?;
                apply_nested(item, inner).map_err(|e| format!("in element {index}: {e}"))?;
            }
            other => return Err(format!("unknown array diff key {other:?}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    #[test]
    fn diff_names_removed_changed_added_and_nested_fields() {
        let old = doc! { "_id": 1, "a": 1, "b": { "c": 1, "d": 2 }, "gone": true, "n": 1 };
        let new = doc! { "_id": 1, "a": 2, "b": { "c": 1, "d": 3, "e": 4 }, "n": 1.0, "x": "new" };
        assert_eq!(
            document_diff(&old, &new),
            doc! {
                "d": { "gone": false },
                "u": { "a": 2, "n": 1.0 },
                "i": { "x": "new" },
                "sb": { "u": { "d": 3 }, "i": { "e": 4 } },
            }
        );
        assert_eq!(document_diff(&old, &old), Document::new(), "an unchanged document has an empty diff");
    }

    #[test]
    fn diff_of_arrays_names_elements_and_truncation() {
        let old = doc! { "xs": [1, 2, { "k": 1 }, 4] };
        let shrunk = doc! { "xs": [1, 5, { "k": 2 }] };
        assert_eq!(
            document_diff(&old, &shrunk),
            doc! { "sxs": { "a": true, "l": 3, "u1": 5, "s2": { "u": { "k": 2 } } } }
        );
        let grown = doc! { "xs": [1, 2, { "k": 1 }, 4, 5] };
        assert_eq!(document_diff(&old, &grown), doc! { "sxs": { "a": true, "u4": 5 } });
        let retyped = doc! { "xs": "flat" };
        assert_eq!(document_diff(&old, &retyped), doc! { "u": { "xs": "flat" } });
    }

    #[test]
    fn diff_applied_to_the_old_document_gives_the_new_one_field_for_field() -> Result<(), String> {
        let old = doc! { "_id": 1, "a": 1, "b": { "c": 1, "d": [1, 2, { "k": 1 }, 4] }, "gone": true, "n": 1 };
        let news = [
            doc! { "_id": 1, "a": 2, "b": { "c": 1, "d": [1, 5, { "k": 2 }], "e": 4 }, "n": 1.0, "x": "new" },
            doc! { "_id": 1, "a": 1, "b": { "c": 1, "d": [1, 2, { "k": 1 }, 4, 5, 6] }, "gone": true, "n": 1 },
            doc! { "_id": 1, "a": [], "b": "flat", "n": 1 },
            doc! { "_id": 1 },
        ];
        for new in news {
            let mut applied = old.clone();
            apply_diff(&mut applied, &document_diff(&old, &new))?;
            // Field order too: `Document`'s equality ignores it.
            assert_eq!(applied.iter().collect::<Vec<_>>(), new.iter().collect::<Vec<_>>(), "{new}");
        }
        // mongod's own shape for `$push` past the end and `$pop`.
        let mut pushed = doc! { "xs": [1] };
        apply_diff(&mut pushed, &doc! { "sxs": { "a": true, "u3": 9 } })?;
        assert_eq!(pushed, doc! { "xs": [1, null, null, 9] });
        let mut missing = doc! { "a": 1 };
        assert_eq!(
            apply_diff(&mut missing, &doc! { "sb": { "u": { "c": 1 } } }),
            Err("the diff of field \"b\", which is missing".to_owned())
        );
        assert!(
            apply_diff(&mut missing, &doc! { "sa": { "a": true } })
                .is_err_and(|e| e.contains("array diff for a value"))
        );
        Ok(())
    }
}
