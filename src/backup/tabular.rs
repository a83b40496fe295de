//! Documents as rows of CSV or TSV, as mongoexport and mongoimport write and read them: a
//! field list of dotted paths; values written as text (strings as they are, numbers and
//! booleans as written, an ObjectId as `ObjectId(<hex>)`, a date in ISO 8601 with
//! milliseconds, documents and arrays as relaxed Extended JSON, a missing field empty) and
//! read back with numbers recognised (an `int` when it fits, else a `long`, else a `double`)
//! and every other value a string.

use bson::{Bson, Document};

/// The text of `path` (dotted) in `document`, for a CSV cell.
pub fn format_field(document: &Document, path: &str) -> String {
    let mut current = Some(&Bson::Null);
    let mut container = document;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        current = container.get(part);
        match (current, parts.peek()) {
            (Some(Bson::Document(inner)), Some(_)) => container = inner,
            (_, Some(_)) => return String::new(),
            _ => {}
        }
    }
    match current {
        None | Some(Bson::Null | Bson::Undefined) => String::new(),
        Some(Bson::String(text)) => text.clone(),
        Some(Bson::Int32(n)) => n.to_string(),
        Some(Bson::Int64(n)) => n.to_string(),
        Some(Bson::Double(n)) => n.to_string(),
        Some(Bson::Boolean(b)) => b.to_string(),
        Some(Bson::ObjectId(id)) => format!("ObjectId({id})"),
        Some(Bson::DateTime(at)) => at.try_to_rfc3339_string().unwrap_or_else(|_| at.timestamp_millis().to_string()),
        Some(Bson::Decimal128(d)) => d.to_string(),
        Some(other) => other.clone().into_relaxed_extjson().to_string(),
    }
}

/// The value of one CSV cell: a number when it reads as one, else the text.
pub fn parse_cell(text: &str) -> Bson {
    if let Ok(n) = text.parse::<i64>() {
        return i32::try_from(n).map_or(Bson::Int64(n), Bson::Int32);
    }
    // Only what looks like a decimal number: Rust also reads "inf", "NaN" and "1e5" as floats.
    let numeric = !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+'));
    match text.parse::<f64>() {
        Ok(n) if numeric => Bson::Double(n),
        _ => Bson::String(text.to_owned()),
    }
}

/// Sets `path` (dotted: `a.b` makes `{a: {b: ...}}`) in `document` to `value`.
///
/// # Errors
/// When a part of the path already holds a value that is not a document.
pub fn set_path(document: &mut Document, path: &str, value: Bson) -> Result<(), String> {
    let mut container = document;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            container.insert(part, value);
            return Ok(());
        }
        let entry = container.entry(part.to_owned()).or_insert_with(|| Bson::Document(Document::new()));
        let Bson::Document(inner) = entry else {
            return Err(format!("field {path}: {part} already holds a value that is not a document"));
        };
        container = inner;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    #[test]
    fn tabular_cells_are_written_and_read_as_mongoexport_does() {
        let id = bson::oid::ObjectId::parse_str("5f43a1b2c3d4e5f6a7b8c9d0").unwrap_or_default();
        let document = doc! {
            "_id": id, "n": 7, "big": 1_i64 << 40, "x": 1.5, "ok": true, "name": "Ada, \"L\"",
            "at": bson::DateTime::from_millis(0), "tags": ["a", 1], "nested": { "deep": { "v": 3 } },
        };
        let cells: Vec<String> =
            ["_id", "n", "big", "x", "ok", "name", "at", "tags", "nested.deep.v", "missing", "n.no"]
                .iter()
                .map(|f| format_field(&document, f))
                .collect();
        assert_eq!(
            cells,
            [
                "ObjectId(5f43a1b2c3d4e5f6a7b8c9d0)",
                "7",
                "1099511627776",
                "1.5",
                "true",
                "Ada, \"L\"",
                "1970-01-01T00:00:00Z",
                "[\"a\",1]",
                "3",
                "",
                ""
            ]
        );
        assert_eq!(parse_cell("7"), Bson::Int32(7));
        assert_eq!(parse_cell("1099511627776"), Bson::Int64(1 << 40));
        assert_eq!(parse_cell("-1.25"), Bson::Double(-1.25));
        for text in ["inf", "NaN", "1e5", "", "x1", "true"] {
            assert_eq!(parse_cell(text), Bson::String(text.to_owned()), "{text}");
        }
        let mut built = Document::new();
        set_path(&mut built, "a.b", Bson::Int32(1)).unwrap_or_default();
        set_path(&mut built, "a.c", Bson::Int32(2)).unwrap_or_default();
        set_path(&mut built, "d", Bson::Int32(3)).unwrap_or_default();
        assert_eq!(built, doc! { "a": { "b": 1, "c": 2 }, "d": 3 });
        assert!(set_path(&mut built, "d.e", Bson::Int32(4)).is_err());
    }
}
