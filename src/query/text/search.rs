//! `$text`: its arguments, the terms and phrases of its `$search` string (mongod's
//! `FTSQueryImpl`), and the check of a document against negations, phrases and sensitivity
//! (mongod's `FTSMatcher`). The index finds the documents with a positive term.

use std::collections::BTreeSet;

use bson::{RawBsonRef, RawDocument};

use super::language::Language;
use super::spec::TextSpec;
use super::tokenize::{TokenOptions, fold_case, strip_diacritics, words};
use crate::error::ErrorCode;
use crate::query::QueryError;

/// The arguments of a `$text` operator.
#[derive(Debug, Clone, PartialEq)]
pub struct TextSearch {
    /// `$search`.
    pub search: String,
    /// `$language` (`None`: the index's default language).
    pub language: Option<Language>,
    /// `$caseSensitive`.
    pub case_sensitive: bool,
    /// `$diacriticSensitive`.
    pub diacritic_sensitive: bool,
}

impl TextSearch {
    /// Reads `$text`'s argument as mongod's `extractTextMatchExpressionParams` does.
    ///
    /// # Errors
    /// 2 BadValue for a non-object, an unknown language or extra fields; 4 NoSuchKey without
    /// `$search`; 14 TypeMismatch for a field of the wrong type.
    pub fn parse(value: RawBsonRef<'_>) -> Result<Self, QueryError> {
        let RawBsonRef::Document(spec) = value else {
            return Err(QueryError::bad_value("$text expects an object"));
        };
        let field = |name: &str| spec.get(name).ok().flatten();
        let wrong_type = |name: &str, value: RawBsonRef<'_>, expected: &str| {
            QueryError::new(
                ErrorCode::TypeMismatch,
                format!(
                    "\"{name}\" had the wrong type. Expected {expected}, found {}",
                    crate::query::type_name(value.element_type())
                ),
            )
        };
        let search = match field("$search") {
            Some(RawBsonRef::String(search)) => search.to_owned(),
            Some(other) => return Err(wrong_type("$search", other, "string")),
            None => return Err(QueryError::new(ErrorCode::NoSuchKey, "Missing expected field \"$search\"")),
        };
        let mut expected = 1;
        let language = match field("$language") {
            Some(RawBsonRef::String(name)) => {
                expected += 1;
                Some(Language::parse(name).ok_or_else(|| {
                    QueryError::bad_value(format!("unsupported language: \"{name}\" for text index version 3"))
                })?)
            }
            Some(other) => return Err(wrong_type("$language", other, "string")),
            None => None,
        };
        let mut flag = |name: &str| match field(name) {
            Some(RawBsonRef::Boolean(b)) => {
                expected += 1;
                Ok(b)
            }
            Some(other) => Err(wrong_type(name, other, "bool")),
            None => Ok(false),
        };
        let case_sensitive = flag("$caseSensitive")?;
        let diacritic_sensitive = flag("$diacriticSensitive")?;
        if spec.iter().count() != expected {
            return Err(QueryError::bad_value("extra fields in $text"));
        }
        Ok(Self { search, language, case_sensitive, diacritic_sensitive })
    }

    /// The search's terms and phrases, in `default` unless `$language` names another.
    pub fn query(&self, default: Language) -> TextQuery {
        let language = self.language.unwrap_or(default);
        let parsed = split_search(&self.search);
        let sensitive = TokenOptions {
            drop_stop_words: true,
            case_sensitive: self.case_sensitive,
            diacritic_sensitive: self.diacritic_sensitive,
        };
        let index_terms = |sentence: &str| words(sentence, language, TokenOptions::INDEX);
        let match_terms =
            |sentence: &str| -> BTreeSet<String> { words(sentence, language, sensitive).into_iter().collect() };
        TextQuery {
            language,
            terms_for_bounds: index_terms(&parsed.positive).into_iter().collect(),
            positive_terms: match_terms(&parsed.positive),
            negated_terms: match_terms(&parsed.negated),
            positive_phrases: parsed.positive_phrases,
            negated_phrases: parsed.negated_phrases,
            options: sensitive,
        }
    }
}

/// Whether `$text` appears in `filter`, at its top or in its logical operators.
pub fn mentions_text(filter: &RawDocument) -> bool {
    filter.iter().flatten().any(|(key, value)| match (key.as_str(), value) {
        ("$text", _) => true,
        ("$and" | "$or" | "$nor", RawBsonRef::Array(clauses)) => {
            clauses.into_iter().flatten().any(|clause| clause.as_document().is_some_and(mentions_text))
        }
        _ => false,
    })
}

/// A `$search` string cut into mongod's parts: positive and negated words (as sentences for
/// the tokenizer), positive and negated phrases.
#[derive(Debug, Default, PartialEq)]
struct SearchParts {
    positive: String,
    negated: String,
    positive_phrases: Vec<String>,
    negated_phrases: Vec<String>,
}

/// mongod's query parser: `-` right after white space (or at the start) negates what follows
/// up to the next white space, a word or a quoted phrase; words inside a phrase are positive
/// terms too (unless the phrase is negated).
fn split_search(search: &str) -> SearchParts {
    let mut parts = SearchParts::default();
    let (mut negation, mut phrase_start) = (false, None::<usize>);
    let mut after_space = true;
    let mut chars = search.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c.is_whitespace() {
            after_space = true;
            continue;
        }
        let space_before = std::mem::replace(&mut after_space, false);
        match c {
            '-' => {
                if phrase_start.is_none() && space_before {
                    negation = true;
                }
            }
            '"' => match phrase_start.take() {
                Some(start) => {
                    let phrase = search.get(start..at).unwrap_or_default().to_owned();
                    if negation { &mut parts.negated_phrases } else { &mut parts.positive_phrases }.push(phrase);
                }
                None => {
                    if negation && space_before {
                        negation = false;
                    }
                    phrase_start = Some(at + 1);
                }
            },
            _ => {
                let mut end = at + c.len_utf8();
                while let Some(&(next_at, next)) = chars.peek() {
                    if next.is_whitespace() || next == '-' || next == '"' {
                        break;
                    }
                    end = next_at + next.len_utf8();
                    chars.next();
                }
                let word = search.get(at..end).unwrap_or_default();
                if phrase_start.is_some() && negation {
                    continue;
                }
                if negation && space_before {
                    negation = false;
                }
                let sentence = if negation { &mut parts.negated } else { &mut parts.positive };
                sentence.push_str(word);
                sentence.push(' ');
            }
        }
    }
    parts
}

/// A `$text` search ready to run: the terms to look up and what a document must satisfy.
#[derive(Debug, Clone)]
pub struct TextQuery {
    /// The search's language.
    pub language: Language,
    /// The positive terms as the index holds them: the keys to look up.
    pub terms_for_bounds: BTreeSet<String>,
    positive_terms: BTreeSet<String>,
    negated_terms: BTreeSet<String>,
    positive_phrases: Vec<String>,
    negated_phrases: Vec<String>,
    options: TokenOptions,
}

impl TextQuery {
    /// Whether a document the index found (it has a positive term, case and diacritics
    /// folded) satisfies the rest of the search under `spec`: a positive term in the
    /// requested case and diacritics, no negated term, every positive phrase and no negated
    /// one.
    ///
    /// # Errors
    /// The document's language override errors.
    pub fn matches(&self, spec: &TextSpec, doc: &RawDocument) -> Result<bool, QueryError> {
        let strings = spec.strings(doc)?;
        let sensitive = self.options.case_sensitive || self.options.diacritic_sensitive;
        if sensitive || !self.negated_terms.is_empty() {
            let mut positive = !sensitive;
            for (text, _, language) in &strings {
                for word in words(text, *language, self.options) {
                    if self.negated_terms.contains(&word) {
                        return Ok(false);
                    }
                    positive |= self.positive_terms.contains(&word);
                }
            }
            if !positive {
                return Ok(false);
            }
        }
        let contains = |phrase: &str| strings.iter().any(|(text, _, language)| self.phrase_in(phrase, text, *language));
        Ok(self.positive_phrases.iter().all(|p| contains(p)) && !self.negated_phrases.iter().any(|p| contains(p)))
    }

    /// Whether `text` contains `phrase`, folding case and diacritics unless the search is
    /// sensitive to them.
    fn phrase_in(&self, phrase: &str, text: &str, language: Language) -> bool {
        let fold = |s: &str| {
            let s = if self.options.case_sensitive { s.to_owned() } else { fold_case(s, language) };
            if self.options.diacritic_sensitive { s } else { strip_diacritics(&s) }
        };
        fold(text).contains(&fold(phrase))
    }

    /// The search as `explain` shows it (mongod's `parsedTextQuery`).
    pub fn explain(&self) -> bson::Document {
        let list = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>();
        bson::doc! {
            "terms": list(&self.positive_terms),
            "negatedTerms": list(&self.negated_terms),
            "phrases": self.positive_phrases.clone(),
            "negatedPhrases": self.negated_phrases.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use bson::{doc, rawdoc};

    use super::*;

    #[test]
    fn splits_searches_as_mongod() {
        let parts = split_search("coffee -tea \"iced latte\" -\"hot chocolate\" - milk -foo-bar");
        assert_eq!(parts.positive, "coffee iced latte milk ");
        assert_eq!(parts.negated, "tea foo bar ");
        assert_eq!(parts.positive_phrases, ["iced latte"]);
        assert_eq!(parts.negated_phrases, ["hot chocolate"]);
    }

    #[test]
    fn parses_arguments_with_mongods_codes() {
        let code = |v: bson::RawDocumentBuf| TextSearch::parse(RawBsonRef::Document(&v)).unwrap_err().code().code();
        assert_eq!(code(rawdoc! {}), 4);
        assert_eq!(code(rawdoc! { "$search": 1 }), 14);
        assert_eq!(code(rawdoc! { "$search": "x", "$language": "xx" }), 2);
        assert_eq!(code(rawdoc! { "$search": "x", "$caseSensitive": 1 }), 14);
        assert_eq!(code(rawdoc! { "$search": "x", "other": 1 }), 2);
        let ok = rawdoc! { "$search": "x", "$language": "es", "$diacriticSensitive": true };
        let parsed = TextSearch::parse(RawBsonRef::Document(&ok)).unwrap();
        assert_eq!(parsed.language, Some(Language::Spanish));
        assert!(parsed.diacritic_sensitive && !parsed.case_sensitive);
    }

    fn query(search: bson::RawDocumentBuf) -> TextQuery {
        TextSearch::parse(RawBsonRef::Document(&search)).unwrap().query(Language::English)
    }

    #[test]
    fn matches_negations_phrases_and_case() {
        let spec = TextSpec::from_stored(
            &doc! { "weights": { "t": 1 }, "default_language": "english", "language_override": "language" },
        )
        .unwrap();
        let doc = rawdoc! { "t": "Iced Coffee with milk" };
        let yes = |search| query(search).matches(&spec, &doc).unwrap();
        assert!(yes(rawdoc! { "$search": "coffee" }));
        assert!(!yes(rawdoc! { "$search": "coffee -milk" }));
        assert!(yes(rawdoc! { "$search": "\"iced coffee\"" }));
        assert!(!yes(rawdoc! { "$search": "coffee -\"with milk\"" }));
        assert!(!yes(rawdoc! { "$search": "\"coffee iced\"" }));
        assert!(!yes(rawdoc! { "$search": "coffee", "$caseSensitive": true }));
        assert!(yes(rawdoc! { "$search": "Coffee", "$caseSensitive": true }));
        assert_eq!(
            query(rawdoc! { "$search": "The Running dogs" }).terms_for_bounds.into_iter().collect::<Vec<_>>(),
            ["dog", "run"]
        );
    }
}
