//! The difference between a document before and after an update, in mongod's oplog format
//! (`$v: 2` update entries): what change streams read back as `updateDescription`.
//!
//! A document diff holds `d` (removed fields, each `false`), `u` (fields whose value changed),
//! `i` (fields added) and `s<field>` (the diff inside a field that is a document or an array
//! on both sides). An array diff is `{a: true}` with `l` (the new length, when it shrank),
//! `u<index>` (a replaced or appended element) and `s<index>` (the diff inside an element).

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
}
