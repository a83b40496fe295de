//! How BSON values read in mongod's messages: type names, and values printed the way
//! mongod's `BSONElement::toString` prints them (`{a: 5}`, `[ 1, "x" ]`, `1.0`).

use std::fmt::Write as _;

use bson::spec::ElementType;
use bson::{Bson, RawArray, RawBson, RawBsonRef, RawDocument};

use super::elements::{db_pointer_value, fields, items};

/// mongod's name for a BSON type, as used in error messages and `$type`.
pub fn type_name(t: ElementType) -> &'static str {
    match t {
        ElementType::Double => "double",
        ElementType::String => "string",
        ElementType::EmbeddedDocument => "object",
        ElementType::Array => "array",
        ElementType::Binary => "binData",
        ElementType::Undefined => "undefined",
        ElementType::ObjectId => "objectId",
        ElementType::Boolean => "bool",
        ElementType::DateTime => "date",
        ElementType::Null => "null",
        ElementType::RegularExpression => "regex",
        ElementType::DbPointer => "dbPointer",
        ElementType::JavaScriptCode => "javascript",
        ElementType::Symbol => "symbol",
        ElementType::JavaScriptCodeWithScope => "javascriptWithScope",
        ElementType::Int32 => "int",
        ElementType::Timestamp => "timestamp",
        ElementType::Int64 => "long",
        ElementType::Decimal128 => "decimal",
        ElementType::MinKey => "minKey",
        ElementType::MaxKey => "maxKey",
    }
}

/// One element as mongod prints it: `key: value`.
pub(crate) fn element(key: &str, value: RawBsonRef<'_>) -> String {
    let mut out = String::with_capacity(key.len() + 16);
    out.push_str(key);
    out.push_str(": ");
    write_value(&mut out, value, 0);
    out
}

/// mongod's `BSONObj::maxToStringRecursionDepth`: elements nested deeper print as `...`.
const MAX_DEPTH: usize = 100;

/// An owned element as mongod prints it; see [`element`].
pub(crate) fn owned_element(key: &str, value: &Bson) -> String {
    match RawBson::try_from(value.clone()) {
        Ok(raw) => element(key, raw.as_raw_bson_ref()),
        // Only a value bson cannot encode lands here (none reaches the query layer); its
        // debug text still names it.
        Err(_) => format!("{key}: {value}"),
    }
}

/// An owned value as mongod prints it.
pub(crate) fn owned_value(value: &Bson) -> String {
    match RawBson::try_from(value.clone()) {
        Ok(raw) => {
            let mut out = String::new();
            write_value(&mut out, raw.as_raw_bson_ref(), 0);
            out
        }
        Err(_) => value.to_string(),
    }
}

/// Writes `v`, an element's value `depth` levels down.
fn write_value(out: &mut String, v: RawBsonRef<'_>, depth: usize) {
    match v {
        RawBsonRef::Double(x) => out.push_str(&double(x)),
        RawBsonRef::String(s) | RawBsonRef::Symbol(s) => {
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
        RawBsonRef::Document(d) => write_document(out, d, depth + 1),
        RawBsonRef::Array(a) => write_array(out, a, depth + 1),
        RawBsonRef::Boolean(b) => out.push_str(if b { "true" } else { "false" }),
        RawBsonRef::Null => out.push_str("null"),
        RawBsonRef::Undefined => out.push_str("undefined"),
        RawBsonRef::MinKey => out.push_str("MinKey"),
        RawBsonRef::MaxKey => out.push_str("MaxKey"),
        RawBsonRef::Int32(i) => {
            let _ = write!(out, "{i}");
        }
        RawBsonRef::Int64(i) => {
            let _ = write!(out, "{i}");
        }
        RawBsonRef::Decimal128(d) => {
            let _ = write!(out, "{d}");
        }
        RawBsonRef::ObjectId(oid) => {
            let _ = write!(out, "ObjectId('{}')", oid.to_hex());
        }
        RawBsonRef::DateTime(dt) => {
            let _ = write!(out, "new Date({})", dt.timestamp_millis());
        }
        RawBsonRef::Timestamp(ts) => {
            let _ = write!(out, "Timestamp({}, {})", ts.time, ts.increment);
        }
        RawBsonRef::RegularExpression(re) => {
            let _ = write!(out, "/{}/{}", re.pattern.as_str(), re.options.as_str());
        }
        RawBsonRef::Binary(bin) => {
            let _ = write!(out, "BinData({}, ", u8::from(bin.subtype));
            for byte in bin.bytes {
                let _ = write!(out, "{byte:02X}");
            }
            out.push(')');
        }
        RawBsonRef::JavaScriptCode(code) => out.push_str(code),
        RawBsonRef::JavaScriptCodeWithScope(cws) => {
            out.push_str("CodeWScope( ");
            out.push_str(cws.code);
            out.push_str(", ");
            write_document(out, cws.scope, depth + 1);
            out.push(')');
        }
        RawBsonRef::DbPointer(p) => write_db_pointer(out, &db_pointer_value(p)),
    }
}

/// Writes a document whose elements are `depth` levels down.
fn write_document(out: &mut String, doc: &RawDocument, depth: usize) {
    let mut first = true;
    for (key, v) in fields(doc) {
        out.push_str(if first { "{ " } else { ", " });
        first = false;
        if depth > MAX_DEPTH {
            out.push_str("...");
            continue;
        }
        out.push_str(key);
        out.push_str(": ");
        write_value(out, v, depth);
    }
    out.push_str(if first { "{}" } else { " }" });
}

/// Writes an array whose elements are `depth` levels down.
fn write_array(out: &mut String, arr: &RawArray, depth: usize) {
    let mut first = true;
    for v in items(arr) {
        out.push_str(if first { "[ " } else { ", " });
        first = false;
        if depth > MAX_DEPTH {
            out.push_str("...");
            continue;
        }
        write_value(out, v, depth);
    }
    out.push_str(if first { "[]" } else { " ]" });
}

/// A DBPointer value is a length-prefixed namespace string and a 12-byte ObjectId.
fn write_db_pointer(out: &mut String, raw: &[u8]) {
    let ns_len = raw.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()).map_or(0, i32::from_le_bytes);
    let ns_end = 4 + usize::try_from(ns_len).unwrap_or(0);
    let ns = raw.get(4..ns_end.saturating_sub(1)).map(String::from_utf8_lossy).unwrap_or_default();
    out.push_str("DBRef('");
    out.push_str(&ns);
    out.push_str("',");
    for byte in raw.get(ns_end..).unwrap_or_default() {
        let _ = write!(out, "{byte:02x}");
    }
    out.push(')');
}

/// A double as mongod prints it: C's `%.16g`, plus `.0` when that shows no `.`, `E` or `N`
/// (so `1` prints as `1.0`, and the quirk that `1e+20` prints as `1e+20.0` is kept).
pub(crate) fn double(x: f64) -> String {
    let mut s = format_g16(x);
    if !s.contains(['.', 'E', 'N']) {
        s.push_str(".0");
    }
    s
}

/// C's `%.16g`.
fn format_g16(x: f64) -> String {
    format_g(x, 16)
}

/// C's `%.Ng` (`%g` is `%.6g`): `precision` significant digits, trailing zeros dropped,
/// scientific notation when the decimal exponent is below -4 or at least `precision`.
pub(crate) fn format_g(x: f64, precision: usize) -> String {
    let precision = precision.max(1);
    if x.is_nan() {
        return if x.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf".into() } else { "inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let sci = format!("{x:.digits$e}", digits = precision - 1);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..i32::try_from(precision).unwrap_or(i32::MAX)).contains(&exp) {
        let mantissa = trim_fraction(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.unsigned_abs());
    }
    let decimals = usize::try_from(i32::try_from(precision).unwrap_or(i32::MAX) - 1 - exp).unwrap_or(0);
    trim_fraction(&format!("{x:.decimals$}")).to_owned()
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::rawdoc;

    #[test]
    fn render_double_matches_append_double_nice() {
        assert_eq!(double(1.0), "1.0");
        assert_eq!(double(42.12345), "42.12345");
        assert_eq!(double(-0.5), "-0.5");
        assert_eq!(double(0.1), "0.1");
        assert_eq!(double(1e20), "1e+20.0");
        assert_eq!(double(1.5e-7), "1.5e-07");
        assert_eq!(double(1234567890123456.0), "1234567890123456.0");
        assert_eq!(double(12345678901234567.0), "1.234567890123457e+16");
    }

    #[test]
    fn render_element_nests_like_mongod() {
        let doc = rawdoc! { "v": [ { "foo": [ { "bar": "hello" } ] } ], "e": {}, "n": [] };
        let text: Vec<String> = fields(&doc).map(|(k, v)| element(k, v)).collect();
        assert_eq!(text[0], r#"v: [ { foo: [ { bar: "hello" } ] } ]"#);
        assert_eq!(text[1], "e: {}");
        assert_eq!(text[2], "n: []");
    }

    #[test]
    fn render_scalars() {
        assert_eq!(element("a", RawBsonRef::Int64(7)), "a: 7");
        assert_eq!(element("a", RawBsonRef::Null), "a: null");
        assert_eq!(element("a", RawBsonRef::Boolean(true)), "a: true");
        assert_eq!(owned_element("_id", &Bson::String("x".into())), r#"_id: "x""#);
    }

    #[test]
    fn render_stops_at_mongods_recursion_depth() {
        let deep = crate::query::limits::nested_for_tests(150);
        let shown = element("x", RawBsonRef::Document(&deep));
        // `x` is level 0, as in mongod's `BSONElement::toString`: the elements of levels 1 to
        // 100 print, the one below them is `...`.
        assert_eq!(shown.matches("a: ").count(), 100);
        assert!(shown.contains("{ ... }"), "{shown}");
        assert!(!element("x", RawBsonRef::Document(&crate::query::limits::nested_for_tests(100))).contains("..."));
    }
}
