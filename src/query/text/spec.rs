//! A text index's specification (mongod's `FTSSpec`): which fields it indexes with which
//! weights, in which language, and the terms and scores a document gives it.

use std::collections::BTreeMap;

use bson::{Bson, Document, RawBsonRef, RawDocument};

use super::language::Language;
use super::tokenize::{TokenOptions, words};
use crate::error::ErrorCode;
use crate::query::QueryError;

/// The key field that stands for the indexed text in a stored text index key pattern.
pub const TERM_FIELD: &str = "_fts";
/// The key field that stands for the term's score.
pub const SCORE_FIELD: &str = "_ftsx";
/// The weights key of a text index over every string field.
pub const ALL_FIELDS: &str = "$**";
/// The text index version Monarch builds and reads (mongod's current one).
pub const TEXT_INDEX_VERSION: i32 = 3;
/// mongod's bound on a weight (exclusive): `MAX_WEIGHT / 10000`.
const MAX_WORD_WEIGHT: f64 = 100_000.0;
/// Terms longer than this many bytes are cut and suffixed with their MD5, as mongod's keys.
const TERM_PREFIX_BYTES: usize = 224;

/// The text part of a text index: weights, languages.
#[derive(Debug, Clone, PartialEq)]
pub struct TextSpec {
    /// Field paths and their weights (`$**` stands for every string field).
    weights: BTreeMap<String, f64>,
    /// Whether every string field is indexed.
    all_fields: bool,
    /// `default_language`.
    default_language: Language,
    /// `language_override`: the field whose value names a (sub)document's language.
    language_override: String,
}

/// Whether a key pattern (as given or as stored) makes a text index.
pub fn is_text_pattern(key: &RawDocument) -> bool {
    key.iter().flatten().any(|(name, value)| value == RawBsonRef::String("text") || name == TERM_FIELD)
}

/// mongod's `FTSSpec::fixSpec`: a text index specification as stored. The text fields of the
/// key become `_fts: "text", _ftsx: 1` (where the first stood), and their weights join
/// `weights` (sorted by field, each truncated to an integer); `default_language`
/// (`english`), `language_override` (`language`) and `textIndexVersion` (3) are filled in.
///
/// # Errors
/// 67 CannotCreateIndex with mongod's messages for a malformed key, weights, language or
/// version.
pub fn normalize(spec: &Document) -> Result<Document, QueryError> {
    let cannot = |message: String| QueryError::new(ErrorCode::CannotCreateIndex, message);
    let key = spec.get_document("key").map_err(|_| cannot("The field 'key' must be an object".into()))?;
    let mut weights: BTreeMap<String, i64> = BTreeMap::new();
    let mut pattern = Document::new();
    let (mut text_seen, mut text_ended) = (false, false);
    for (field, value) in key {
        let is_text = matches!(value, Bson::String(s) if s == "text");
        if field == TERM_FIELD || field == SCORE_FIELD {
            return Err(cannot("text index with reserved fields _fts/_ftsx not allowed".into()));
        }
        if is_text {
            if text_ended {
                return Err(cannot("'text' fields in index must all be adjacent".into()));
            }
            if !text_seen {
                pattern.insert(TERM_FIELD, "text");
                pattern.insert(SCORE_FIELD, 1);
                text_seen = true;
            }
            weights.insert(field.clone(), 1);
            continue;
        }
        text_ended |= text_seen;
        let one = match value {
            Bson::Int32(n) => i64::from(*n),
            Bson::Int64(n) => *n,
            Bson::Double(n) => *n as i64,
            _ => 0,
        };
        if one != 1 && one != -1 {
            return Err(cannot("expected value 1 or -1 for non-text key in compound index".into()));
        }
        pattern.insert(field.clone(), value.clone());
    }
    match spec.get("weights") {
        Some(Bson::Document(given)) => {
            for (field, weight) in given {
                let weight = match weight {
                    Bson::Int32(n) => i64::from(*n),
                    Bson::Int64(n) => *n,
                    Bson::Double(n) => *n as i64,
                    Bson::Decimal128(_) => weight.as_f64().map_or(0, |n| n as i64),
                    _ => return Err(cannot("weight for text index needs numeric type".into())),
                };
                weights.insert(field.clone(), weight);
            }
        }
        Some(Bson::String(all)) if all == ALL_FIELDS => {
            weights.insert(ALL_FIELDS.to_owned(), 1);
        }
        None => {}
        Some(_) => return Err(cannot("text index option 'weights' must be an object".into())),
    }
    if weights.is_empty() {
        return Err(cannot("text index option 'weights' must specify fields or the wildcard".into()));
    }
    let mut weights_doc = Document::new();
    for (field, weight) in &weights {
        if *weight <= 0 || *weight as f64 >= MAX_WORD_WEIGHT {
            return Err(cannot(format!(
                "text index weight must be in the exclusive interval (0,{MAX_WORD_WEIGHT}) but found: {weight}"
            )));
        }
        if field != ALL_FIELDS {
            if field.is_empty() {
                return Err(cannot("weight cannot be on an empty field".into()));
            }
            if field.split('.').any(str::is_empty) {
                return Err(cannot("weight cannot have empty path component".into()));
            }
            if field.split('.').any(|part| part.starts_with('$')) {
                return Err(cannot("weight cannot have path component with $ prefix".into()));
            }
        }
        weights_doc.insert(field.clone(), i32::try_from(*weight).unwrap_or(i32::MAX));
    }
    let default_language = match spec.get("default_language") {
        None => "english".to_owned(),
        Some(Bson::String(language)) => language.clone(),
        Some(_) => return Err(cannot("default_language needs a string type".into())),
    };
    if Language::parse(&default_language).is_none() {
        return Err(cannot("default_language is not valid".into()));
    }
    let language_override = match spec.get("language_override") {
        None => "language".to_owned(),
        Some(Bson::String(field)) if !field.is_empty() && !field.starts_with('$') && !field.contains('.') => {
            field.clone()
        }
        Some(Bson::String(_)) => return Err(cannot("language_override is not valid".into())),
        Some(_) => return Err(cannot("language_override must be a string".into())),
    };
    let version = match spec.get("textIndexVersion") {
        None => TEXT_INDEX_VERSION,
        Some(value @ (Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_))) => {
            let version = value.as_f64().unwrap_or_default() as i32;
            match version {
                3 => version,
                2 => {
                    return Err(QueryError::not_implemented(
                        "text index version 2 (ASCII word splitting; version 3 is the default)",
                    ));
                }
                other => return Err(cannot(format!("bad textIndexVersion: {other}"))),
            }
        }
        Some(_) => return Err(cannot("text index option 'textIndexVersion' must be a number".into())),
    };
    // mongod's order: the spec's own fields (key, weights and languages replaced in place),
    // then the text fields it lacked, then `textIndexVersion`.
    let mut stored = Document::new();
    let (mut weights_doc, mut default_language, mut language_override) =
        (Some(weights_doc), Some(default_language), Some(language_override));
    for (field, value) in spec {
        match field.as_str() {
            "key" => _ = stored.insert("key", pattern.clone()),
            "weights" => _ = weights_doc.take().map(|w| stored.insert("weights", w)),
            "default_language" => _ = default_language.take().map(|l| stored.insert("default_language", l)),
            "language_override" => _ = language_override.take().map(|l| stored.insert("language_override", l)),
            "textIndexVersion" => {}
            _ => _ = stored.insert(field.clone(), value.clone()),
        }
    }
    if let Some(weights) = weights_doc {
        stored.insert("weights", weights);
    }
    if let Some(language) = default_language {
        stored.insert("default_language", language);
    }
    if let Some(field) = language_override {
        stored.insert("language_override", field);
    }
    stored.insert("textIndexVersion", version);
    Ok(stored)
}

impl TextSpec {
    /// The text part of a stored (normalized) text index specification.
    ///
    /// # Errors
    /// 67 CannotCreateIndex when the stored fields are missing or malformed.
    pub fn from_stored(spec: &Document) -> Result<Self, QueryError> {
        let invalid = || QueryError::new(ErrorCode::CannotCreateIndex, "found invalid spec for text index");
        let mut weights = BTreeMap::new();
        let mut all_fields = false;
        for (field, weight) in spec.get_document("weights").map_err(|_| invalid())? {
            if field == ALL_FIELDS {
                all_fields = true;
            } else {
                weights.insert(
                    field.clone(),
                    weight.as_f64().or_else(|| weight.as_i32().map(f64::from)).ok_or_else(invalid)?,
                );
            }
        }
        let default_language = spec.get_str("default_language").ok().and_then(Language::parse).ok_or_else(invalid)?;
        let language_override = spec.get_str("language_override").map_err(|_| invalid())?.to_owned();
        Ok(Self { weights, all_fields, default_language, language_override })
    }

    /// `default_language`.
    pub fn default_language(&self) -> Language {
        self.default_language
    }

    /// Whether the index holds the string at `path` (dotted, array positions left out), and
    /// with which weight.
    pub fn weight_of(&self, path: &str) -> Option<f64> {
        match self.weights.get(path) {
            Some(weight) => Some(*weight),
            None if self.all_fields => Some(1.0),
            None => None,
        }
    }

    /// Whether some indexed path lies under `path`.
    fn reaches_under(&self, path: &str) -> bool {
        self.all_fields
            || self
                .weights
                .keys()
                .any(|field| field.starts_with(path) && field.as_bytes().get(path.len()) == Some(&b'.'))
    }

    /// The indexed strings of `doc`, each with its path's weight and its (sub)document's
    /// language, in document order.
    ///
    /// # Errors
    /// 17261 for a language override that is not a string, 17262 for one mongod does not
    /// know.
    pub fn strings<'a>(&self, doc: &'a RawDocument) -> Result<Vec<(&'a str, f64, Language)>, QueryError> {
        let mut out = Vec::new();
        self.walk(doc, "", self.default_language, &mut out)?;
        Ok(out)
    }

    fn walk<'a>(
        &self,
        doc: &'a RawDocument,
        prefix: &str,
        inherited: Language,
        out: &mut Vec<(&'a str, f64, Language)>,
    ) -> Result<(), QueryError> {
        let language = self.language_of(doc, inherited)?;
        for (name, value) in doc.iter().flatten() {
            let name = name.as_str();
            if name == self.language_override {
                continue;
            }
            let path = if prefix.is_empty() { name.to_owned() } else { format!("{prefix}.{name}") };
            self.visit(value, &path, language, out)?;
        }
        Ok(())
    }

    fn visit<'a>(
        &self,
        value: RawBsonRef<'a>,
        path: &str,
        language: Language,
        out: &mut Vec<(&'a str, f64, Language)>,
    ) -> Result<(), QueryError> {
        match value {
            RawBsonRef::String(text) => {
                if let Some(weight) = self.weight_of(path) {
                    out.push((text, weight, language));
                }
            }
            RawBsonRef::Document(sub) if self.reaches_under(path) => self.walk(sub, path, language, out)?,
            RawBsonRef::Array(items) => {
                for item in items.into_iter().flatten() {
                    match item {
                        RawBsonRef::String(_) | RawBsonRef::Document(_) => self.visit(item, path, language, out)?,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The language of `doc`: its override field's, else the one it inherits.
    fn language_of(&self, doc: &RawDocument, inherited: Language) -> Result<Language, QueryError> {
        match doc.get(&self.language_override).ok().flatten() {
            None => Ok(inherited),
            Some(RawBsonRef::String(name)) => Language::parse(name).ok_or_else(|| {
                QueryError::new(ErrorCode::Location17262, format!("language override unsupported: {name}"))
            }),
            Some(_) => Err(QueryError::new(
                ErrorCode::Location17261,
                "found language override field in document with non-string type",
            )),
        }
    }

    /// The terms `doc` gives the index and each one's score (mongod's `scoreDocument`): per
    /// string, a term seen `n` times in `t` words scores
    /// `weight * (1 + 1/2 + ... + 1/2^(n-1)) * (0.5 * n / t + 0.5)`, 10% more when it is the
    /// whole string; a term's scores from several strings add up.
    ///
    /// # Errors
    /// As [`TextSpec::strings`].
    pub fn terms(&self, doc: &RawDocument) -> Result<BTreeMap<String, f64>, QueryError> {
        let mut scores = BTreeMap::new();
        for (text, weight, language) in self.strings(doc)? {
            let tokens = words(text, language, TokenOptions::INDEX);
            let mut counts: BTreeMap<&str, (u32, f64)> = BTreeMap::new();
            for token in &tokens {
                let (count, frequency) = counts.entry(token).or_insert((0, 0.0));
                *frequency += 1.0 / f64::from(1_u32 << (*count).min(31));
                *count += 1;
            }
            let total = tokens.len() as f64;
            for (term, (count, frequency)) in counts {
                let coefficient = 0.5 * f64::from(count) / total + 0.5;
                let whole = text.len() == term.len() && text.eq_ignore_ascii_case(term);
                let adjustment = if whole { 1.1 } else { 1.0 };
                *scores.entry(index_term(term)).or_insert(0.0) += weight * frequency * coefficient * adjustment;
            }
        }
        Ok(scores)
    }
}

/// A term as an index key holds it: past 224 bytes, cut (at a character boundary) and
/// followed by the whole term's MD5 in hex, as mongod's version 3 keys.
pub fn index_term(term: &str) -> String {
    if term.len() <= TERM_PREFIX_BYTES {
        return term.to_owned();
    }
    use md5::Digest;
    let mut cut = TERM_PREFIX_BYTES;
    while !term.is_char_boundary(cut) {
        cut -= 1;
    }
    let digest = md5::Md5::digest(term.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}{hex}", term.get(..cut).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use bson::{doc, rawdoc};

    use super::*;

    #[test]
    fn normalizes_as_mongod_stores_it() {
        let stored = normalize(&doc! { "v": 2, "key": { "a": 1, "title": "text", "body": "text" }, "name": "t",
        "weights": { "body": 5.7 } })
        .unwrap();
        assert_eq!(
            stored,
            doc! { "v": 2, "key": { "a": 1, "_fts": "text", "_ftsx": 1 }, "name": "t",
            "weights": { "body": 5, "title": 1 }, "default_language": "english",
            "language_override": "language", "textIndexVersion": 3 }
        );
        let code = |spec: Document| normalize(&spec).unwrap_err().code().code();
        assert_eq!(code(doc! { "key": { "a": "text", "b": 1, "c": "text" } }), 67);
        assert_eq!(code(doc! { "key": { "a": "text" }, "default_language": "klingon" }), 67);
        assert_eq!(code(doc! { "key": { "a": "text" }, "weights": { "a": 0 } }), 67);
        assert_eq!(code(doc! { "key": { "a": "text" }, "language_override": "$l" }), 67);
        assert_eq!(code(doc! { "key": { "a": "text", "b": 2 } }), 67);
    }

    fn spec(weights: Document) -> TextSpec {
        TextSpec::from_stored(&doc! { "weights": weights, "default_language": "english", "language_override": "lang" })
            .unwrap()
    }

    #[test]
    fn scores_as_mongods_formula() {
        let s = spec(doc! { "title": 10, "body": 1 });
        let terms = s.terms(&rawdoc! { "title": "coffee", "body": "coffee shop coffee", "other": "tea" }).unwrap();
        // title: "coffe" once of 1 word, not the whole string ("coffee" != "coffe"): 10 * 1 * 1.
        // body: "coffe" twice of 3 words: 1 * 1.5 * (0.5 * 2/3 + 0.5).
        let expected = 10.0 + 1.5 * (0.5 * 2.0 / 3.0 + 0.5);
        assert!((terms["coffe"] - expected).abs() < 1e-12);
        assert!((terms["shop"] - (0.5 / 3.0 + 0.5)).abs() < 1e-12);
        assert!(!terms.contains_key("tea"));
        // A whole-string term gets 10% more.
        let whole = spec(doc! { "t": 1 }).terms(&rawdoc! { "t": "tea" }).unwrap();
        assert!((whole["tea"] - 1.1).abs() < 1e-12);
    }

    #[test]
    fn walks_arrays_subdocuments_and_language_overrides() {
        let s = spec(doc! { "a.b": 1, "$**": 1 });
        let doc = rawdoc! { "a": [{ "b": "running" }, { "b": "corriendo", "lang": "es" }], "c": ["ideas"] };
        let strings: Vec<(&str, Language)> = s.strings(&doc).unwrap().into_iter().map(|(t, _, l)| (t, l)).collect();
        assert_eq!(
            strings,
            [("running", Language::English), ("corriendo", Language::Spanish), ("ideas", Language::English)]
        );
        assert_eq!(s.strings(&rawdoc! { "lang": 1 }).unwrap_err().code().code(), 17261);
        assert_eq!(s.strings(&rawdoc! { "lang": "xx" }).unwrap_err().code().code(), 17262);
        assert_eq!(index_term(&"x".repeat(300)).len(), 256);
    }
}
