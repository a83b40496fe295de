//! The languages of text search (mongod's list for text index version 3): each names a Snowball
//! stemmer and a stop word list; `none` has neither, and only splits words.

use std::collections::HashSet;
use std::sync::OnceLock;

use rust_stemmers::{Algorithm, Stemmer};

/// A text search language.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Language {
    /// `danish` / `da`.
    Danish,
    /// `dutch` / `nl`.
    Dutch,
    /// `english` / `en`, the default.
    #[default]
    English,
    /// `finnish` / `fi`.
    Finnish,
    /// `french` / `fr`.
    French,
    /// `german` / `de`.
    German,
    /// `hungarian` / `hu`.
    Hungarian,
    /// `italian` / `it`.
    Italian,
    /// `norwegian` / `nb`.
    Norwegian,
    /// `portuguese` / `pt`.
    Portuguese,
    /// `romanian` / `ro`.
    Romanian,
    /// `russian` / `ru`.
    Russian,
    /// `spanish` / `es`.
    Spanish,
    /// `swedish` / `sv`.
    Swedish,
    /// `turkish` / `tr`.
    Turkish,
    /// `none`: no stemming and no stop words.
    None,
}

/// Every language with its name, its alias and its stop word list's code in `stop-words`.
const LANGUAGES: [(Language, &str, &str); 15] = [
    (Language::Danish, "danish", "da"),
    (Language::Dutch, "dutch", "nl"),
    (Language::English, "english", "en"),
    (Language::Finnish, "finnish", "fi"),
    (Language::French, "french", "fr"),
    (Language::German, "german", "de"),
    (Language::Hungarian, "hungarian", "hu"),
    (Language::Italian, "italian", "it"),
    (Language::Norwegian, "norwegian", "nb"),
    (Language::Portuguese, "portuguese", "pt"),
    (Language::Romanian, "romanian", "ro"),
    (Language::Russian, "russian", "ru"),
    (Language::Spanish, "spanish", "es"),
    (Language::Swedish, "swedish", "sv"),
    (Language::Turkish, "turkish", "tr"),
];

/// Snowball's English stop word list (BSD-3-Clause, snowballstem.org), which mongod uses. The
/// `stop-words` crate's English list is NLTK's, which differs from it by some forty words
/// ("will", "just", "can", ...); the other languages' NLTK lists are Snowball's.
const ENGLISH_STOP_WORDS: &str = "a about above after again against all am an and any are aren't as at be because \
    been before being below between both but by can't cannot could couldn't did didn't do does doesn't doing don't \
    down during each few for from further had hadn't has hasn't have haven't having he he'd he'll he's her here \
    here's hers herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself let's \
    me more most mustn't my myself no nor not of off on once only or other ought our ours ourselves out over own \
    same shan't she she'd she'll she's should shouldn't so some such than that that's the their theirs them \
    themselves then there there's these they they'd they'll they're they've this those through to too under until \
    up very was wasn't we we'd we'll we're we've were weren't what what's when when's where where's which while \
    who who's whom why why's with won't would wouldn't you you'd you'll you're you've your yours yourself \
    yourselves";

impl Language {
    /// The language a name or alias stands for, case-insensitively, as mongod's language
    /// map: `None` for a language mongod does not know.
    pub fn parse(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("none") {
            return Some(Self::None);
        }
        LANGUAGES
            .iter()
            .find(|(_, full, alias)| name.eq_ignore_ascii_case(full) || name.eq_ignore_ascii_case(alias))
            .map(|(language, ..)| *language)
    }

    /// The canonical name (`english`).
    pub fn name(self) -> &'static str {
        LANGUAGES.iter().find(|(l, ..)| *l == self).map_or("none", |(_, name, _)| name)
    }

    /// The Snowball stemmer, if the language stems.
    fn algorithm(self) -> Option<Algorithm> {
        Some(match self {
            Self::Danish => Algorithm::Danish,
            Self::Dutch => Algorithm::Dutch,
            Self::English => Algorithm::English,
            Self::Finnish => Algorithm::Finnish,
            Self::French => Algorithm::French,
            Self::German => Algorithm::German,
            Self::Hungarian => Algorithm::Hungarian,
            Self::Italian => Algorithm::Italian,
            Self::Norwegian => Algorithm::Norwegian,
            Self::Portuguese => Algorithm::Portuguese,
            Self::Romanian => Algorithm::Romanian,
            Self::Russian => Algorithm::Russian,
            Self::Spanish => Algorithm::Spanish,
            Self::Swedish => Algorithm::Swedish,
            Self::Turkish => Algorithm::Turkish,
            Self::None => return None,
        })
    }

    /// The stemmer and stop words of this language, built once per process.
    pub(super) fn tools(self) -> &'static Tools {
        static TOOLS: OnceLock<Vec<(Language, Tools)>> = OnceLock::new();
        static NONE: OnceLock<Tools> = OnceLock::new();
        let all =
            TOOLS.get_or_init(|| LANGUAGES.iter().map(|(language, ..)| (*language, Tools::of(*language))).collect());
        match all.iter().find(|(language, _)| *language == self) {
            Some((_, tools)) => tools,
            None => NONE.get_or_init(|| Tools::of(Self::None)),
        }
    }

    /// Whether words fold case the Turkish way (dotted and dotless i).
    pub(super) fn is_turkish(self) -> bool {
        self == Self::Turkish
    }
}

/// A language's stemmer and stop words.
pub(super) struct Tools {
    stemmer: Option<Stemmer>,
    stop_words: HashSet<&'static str>,
}

impl Tools {
    fn of(language: Language) -> Self {
        let stop_words = match language {
            Language::None => HashSet::new(),
            Language::English => ENGLISH_STOP_WORDS.split_whitespace().collect(),
            other => {
                let code = match other {
                    // The crate files Norwegian under ISO 639-1's macrolanguage code.
                    Language::Norwegian => "no",
                    _ => LANGUAGES.iter().find(|(l, ..)| *l == other).map_or("", |(_, _, alias)| alias),
                };
                stop_words::lookup(code).unwrap_or_default().iter().copied().collect()
            }
        };
        Self { stemmer: language.algorithm().map(Stemmer::create), stop_words }
    }

    /// Whether `word` (lower-cased, diacritics kept) is a stop word.
    pub(super) fn is_stop_word(&self, word: &str) -> bool {
        self.stop_words.contains(word)
    }

    /// The stem of `word`.
    pub(super) fn stem(&self, word: &str) -> String {
        match &self.stemmer {
            Some(stemmer) => stemmer.stem(word).into_owned(),
            None => word.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_case_insensitively() {
        assert_eq!(Language::parse("English"), Some(Language::English));
        assert_eq!(Language::parse("es"), Some(Language::Spanish));
        assert_eq!(Language::parse("NB"), Some(Language::Norwegian));
        assert_eq!(Language::parse("none"), Some(Language::None));
        assert_eq!(Language::parse("klingon"), None);
        assert_eq!(Language::parse("porter"), None);
        assert_eq!(Language::Spanish.name(), "spanish");
    }

    #[test]
    fn every_language_has_stop_words_but_none() {
        for (language, ..) in LANGUAGES {
            assert!(!language.tools().stop_words.is_empty(), "{language:?}");
        }
        assert!(Language::None.tools().stop_words.is_empty());
        assert!(Language::English.tools().is_stop_word("the"));
        assert!(!Language::English.tools().is_stop_word("will"));
        assert!(Language::German.tools().is_stop_word("und"));
        assert_eq!(Language::English.tools().stem("running"), "run");
    }
}
