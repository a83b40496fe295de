//! Words of a text, as mongod's text index version 3 cuts them: split at Unicode delimiters
//! (white space, dashes, hyphens, quotation marks, terminal and syntax punctuation; in
//! English the apostrophe is part of a word), lower-cased, stop words dropped, stemmed, then
//! diacritics removed.

use std::sync::LazyLock;

use regex::Regex;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use super::language::Language;

/// The delimiter classes mongod's tokenizer splits at (its `gen_delimiter_list.py`).
const DELIMITERS: &str = r"\p{White_Space}\p{Dash}\p{Hyphen}\p{Quotation_Mark}\p{Terminal_Punctuation}\p{Pattern_Syntax}\p{Sentence_Terminal}";

/// Runs of delimiters in English text (where `'` is not one).
static ENGLISH_DELIMITERS: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(&format!("[[{DELIMITERS}]--[']]+")).ok());
/// Runs of delimiters in every other language.
static DELIMITER_RUNS: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(&format!("[{DELIMITERS}]+")).ok());

/// How words are made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenOptions {
    /// Keep stop words out (indexing and query terms do; phrase checks do not tokenize).
    pub drop_stop_words: bool,
    /// Keep the word's case (`$caseSensitive`).
    pub case_sensitive: bool,
    /// Keep its diacritics (`$diacriticSensitive`).
    pub diacritic_sensitive: bool,
}

impl TokenOptions {
    /// The words an index stores and a search looks up: stop words dropped, case and
    /// diacritics folded.
    pub const INDEX: Self = Self { drop_stop_words: true, case_sensitive: false, diacritic_sensitive: false };
}

/// The words of `text` in `language`, in order (repeats included).
pub fn words(text: &str, language: Language, options: TokenOptions) -> Vec<String> {
    let tools = language.tools();
    let delimiters = if language == Language::English { &*ENGLISH_DELIMITERS } else { &*DELIMITER_RUNS };
    let pieces: Box<dyn Iterator<Item = &str>> = match delimiters {
        Some(delimiters) => Box::new(delimiters.split(text)),
        None => Box::new(text.split_whitespace()),
    };
    let mut out = Vec::new();
    for piece in pieces.filter(|piece| !piece.is_empty()) {
        let lower = fold_case(piece, language);
        if options.drop_stop_words && tools.is_stop_word(&lower) {
            continue;
        }
        // The stemmer knows diacritics, so they go after stemming, as in mongod.
        let stemmed = tools.stem(if options.case_sensitive { piece } else { &lower });
        out.push(if options.diacritic_sensitive { stemmed } else { strip_diacritics(&stemmed) });
    }
    out
}

/// `text` lower-cased, the Turkish way for Turkish (`I` to dotless `ı`, `İ` to `i`).
pub fn fold_case(text: &str, language: Language) -> String {
    if language.is_turkish() {
        text.chars()
            .flat_map(|c| match c {
                'I' => vec!['ı'],
                'İ' => vec!['i'],
                other => other.to_lowercase().collect(),
            })
            .collect()
    } else {
        text.to_lowercase()
    }
}

/// `text` without its diacritics: decomposed, combining marks dropped (`é` to `e`; letters
/// that do not decompose, such as `ø` or `ß`, stay).
pub fn strip_diacritics(text: &str) -> String {
    if text.is_ascii() {
        return text.to_owned();
    }
    text.nfd().filter(|c| !is_combining_mark(*c)).nfc().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn english(text: &str) -> Vec<String> {
        words(text, Language::English, TokenOptions::INDEX)
    }

    #[test]
    fn splits_folds_drops_stop_words_and_stems() {
        assert_eq!(english("The quick brown foxes were Running!"), ["quick", "brown", "fox", "run"]);
        assert_eq!(english("e-mail, co-operate; snake_case"), ["e", "mail", "co", "oper", "snake_cas"]);
        // The apostrophe belongs to English words: "don't" is a stop word, "coffee's" stems.
        assert_eq!(english("don't drink coffee's"), ["drink", "coffe"]);
        // Other languages split at the apostrophe.
        assert_eq!(words("l'hiver", Language::None, TokenOptions::INDEX), ["l", "hiver"]);
        assert!(english("  ... ").is_empty());
    }

    #[test]
    fn diacritics_and_case_kept_on_request() {
        let keep = TokenOptions { drop_stop_words: true, case_sensitive: true, diacritic_sensitive: true };
        assert_eq!(words("Café", Language::None, keep), ["Café"]);
        assert_eq!(words("Café", Language::None, TokenOptions::INDEX), ["cafe"]);
        assert_eq!(fold_case("DİYARBAKIR", Language::Turkish), "diyarbakır");
    }
}
