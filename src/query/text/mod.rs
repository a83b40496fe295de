//! Text search, as mongod's text indexes (version 3) do it: a text index stores, per
//! document, each distinct term of its indexed strings (cut at Unicode delimiters,
//! lower-cased, stop words dropped, stemmed with Snowball, diacritics removed) with a score;
//! `$text` looks its positive terms up, adds each document's scores, then checks negations,
//! phrases and case or diacritic sensitivity on the document itself.
//!
//! - [`language`]: the languages, their stemmers and stop words;
//! - [`tokenize`]: words of a text;
//! - [`spec`]: a text index's weights and languages, and a document's terms and scores;
//! - [`search`]: `$text`'s arguments, its terms and phrases, and the document check;
//! - [`scores`]: the scores a search hands to `{$meta: "textScore"}`.

pub mod language;
pub mod scores;
pub mod search;
pub mod spec;
pub mod tokenize;

pub use language::Language;
pub use scores::{TextScores, mentions_text_score};
pub use search::{TextQuery, TextSearch, mentions_text};
pub use spec::TextSpec;
