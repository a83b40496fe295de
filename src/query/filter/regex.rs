//! Regular expressions in filters (`$regex`, regex values in equalities and `$in`, and
//! `$jsonSchema`'s `pattern`): compiled with mongod's options and PCRE's end anchors.

use bson::RawBsonRef;

use crate::error::ErrorCode;
use crate::query::error::QueryError;

/// A compiled regular expression with the pattern and options as written, so that a BSON
/// regex value equal to it matches too (mongod compares those textually).
#[derive(Debug, Clone)]
pub(in crate::query) struct RegexPredicate {
    pattern: String,
    options: String,
    compiled: Pattern,
}

impl RegexPredicate {
    /// Compiles a BSON regular expression value.
    pub(super) fn from_value(re: bson::RawRegexRef<'_>) -> Result<Self, QueryError> {
        Self::new(re.pattern.as_str(), re.options.as_str())
    }

    /// Compiles `pattern` with mongod's options `i m s x` (`u` is accepted: matching is always
    /// Unicode-aware here).
    pub(in crate::query) fn new(pattern: &str, options: &str) -> Result<Self, QueryError> {
        let compiled = compile(pattern, options).map_err(|err| match err {
            // mongod prefixes the operator name, empty for a query `$regex`, and a space: the
            // leading space is verbatim.
            RegexError::BadFlag(flag) => {
                QueryError::new(ErrorCode::Location51108, format!(" invalid flag in regex options: {flag}"))
            }
            RegexError::Invalid(detail) => {
                QueryError::new(ErrorCode::Location51091, format!("Regular expression is invalid: {detail}"))
            }
            RegexError::TooLong => QueryError::bad_value("Regular expression is too long"),
            RegexError::NullByte => QueryError::bad_value("Regular expression cannot contain an embedded null byte"),
        })?;
        Ok(Self { pattern: pattern.to_owned(), options: options.to_owned(), compiled })
    }

    pub(in crate::query) fn matches(&self, value: RawBsonRef<'_>) -> bool {
        match value {
            // mongod's filter counts a match that fails (PCRE's match or heap limit) as none;
            // only the aggregation operators report it.
            RawBsonRef::String(s) | RawBsonRef::Symbol(s) => self.compiled.is_match(s).unwrap_or(false),
            RawBsonRef::RegularExpression(re) => {
                re.pattern.as_str() == self.pattern && re.options.as_str() == self.options
            }
            _ => false,
        }
    }
}

/// Why a pattern did not compile; each user maps it onto its own codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::query) enum RegexError {
    /// Longer than mongod's `MaxPatternSize`.
    TooLong,
    /// The pattern holds a NUL byte.
    NullByte,
    /// An option letter mongod does not know.
    BadFlag(char),
    /// The syntax error, as the regex crate names it.
    Invalid(String),
}

/// A compiled pattern: on the regex crate (linear time) when it takes the pattern, else on
/// fancy-regex's backtracking engine, for PCRE's lookaround and backreferences.
#[derive(Debug, Clone)]
pub(in crate::query) enum Pattern {
    /// The regex crate's.
    Linear(regex::Regex),
    /// fancy-regex's.
    Backtracking(fancy_regex::Regex),
}

/// The byte range of each group of a match (the whole match first); `None` for a group that
/// took no part.
pub(in crate::query) type Groups = Vec<Option<(usize, usize)>>;

/// A backtracking match that gave up before finding an answer, named as PCRE names its
/// limits (mongod reports them with PCRE's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::query) enum MatchFailure {
    /// More backtracking steps than [`BACKTRACK_LIMIT`].
    MatchLimit,
    /// The backtracking stack outgrew fancy-regex's bound.
    HeapLimit,
}

impl std::fmt::Display for MatchFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::MatchLimit => "match limit exceeded",
            Self::HeapLimit => "heap limit exceeded",
        })
    }
}

impl From<fancy_regex::Error> for MatchFailure {
    fn from(error: fancy_regex::Error) -> Self {
        match error {
            fancy_regex::Error::RuntimeError(fancy_regex::RuntimeError::StackOverflow) => Self::HeapLimit,
            _ => Self::MatchLimit,
        }
    }
}

/// Backtracking steps one search may take (fancy-regex's default; PCRE2's default match limit,
/// which mongod keeps, is 10 million of its own, larger, steps): a runaway search on one value
/// gives up within about 0.1 s in a debug build, so `maxTimeMS` stays effective between values.
pub(in crate::query) const BACKTRACK_LIMIT: usize = 1_000_000;

impl Pattern {
    /// Whether `text` holds a match.
    ///
    /// # Errors
    /// A backtracking search that exceeded its limits.
    pub(in crate::query) fn is_match(&self, text: &str) -> Result<bool, MatchFailure> {
        match self {
            Self::Linear(re) => Ok(re.is_match(text)),
            Self::Backtracking(re) => Ok(re.is_match(text)?),
        }
    }

    /// The groups of the first match starting at byte `at` or later.
    ///
    /// # Errors
    /// A backtracking search that exceeded its limits.
    pub(in crate::query) fn captures_at(&self, text: &str, at: usize) -> Result<Option<Groups>, MatchFailure> {
        match self {
            Self::Linear(re) => Ok(re
                .captures_at(text, at)
                .map(|found| found.iter().map(|g| g.map(|m| (m.start(), m.end()))).collect())),
            Self::Backtracking(re) => Ok(re
                .captures_from_pos(text, at)?
                .map(|found| (0..found.len()).map(|i| found.get(i).map(|m| (m.start(), m.end()))).collect())),
        }
    }
}

/// Compiles `pattern` with mongod's options `i m s x` (`u` is accepted: matching is always
/// Unicode-aware here), rewriting PCRE's end anchors.
pub(in crate::query) fn compile(pattern: &str, options: &str) -> Result<Pattern, RegexError> {
    // mongod checks these before the options; `MaxPatternSize` is its length limit.
    if pattern.len() > 32_764 {
        return Err(RegexError::TooLong);
    }
    if pattern.contains('\0') {
        return Err(RegexError::NullByte);
    }
    let rewritten = pcre_end_anchors(pattern, options.contains('m'));
    let mut builder = regex::RegexBuilder::new(&rewritten);
    let mut inline = String::new();
    for flag in options.chars() {
        match flag {
            'i' => builder.case_insensitive(true),
            'm' => builder.multi_line(true),
            's' => builder.dot_matches_new_line(true),
            'x' => builder.ignore_whitespace(true),
            'u' => &mut builder,
            _ => return Err(RegexError::BadFlag(flag)),
        };
        if flag != 'u' && !inline.contains(flag) {
            inline.push(flag);
        }
    }
    builder.build().map(Pattern::Linear).or_else(|err| {
        // PCRE-only syntax (lookaround, backreferences) needs the backtracking engine, with
        // the options as inline flags.
        let flagged = if inline.is_empty() { rewritten.clone() } else { format!("(?{inline}){rewritten}") };
        fancy_regex::RegexBuilder::new(&flagged)
            .backtrack_limit(BACKTRACK_LIMIT)
            .build()
            .map(Pattern::Backtracking)
            .map_err(|_| {
                // The regex crate explains syntax errors over several lines; the last one names
                // the problem.
                let text = err.to_string();
                RegexError::Invalid(
                    text.lines().rev().find_map(|l| l.strip_prefix("error: ")).unwrap_or(&text).to_owned(),
                )
            })
    })
}

/// Rewrites PCRE's end anchors for the regex crate: without `m`, PCRE's `$` (and always its
/// `\Z`) also matches before a newline that ends the subject, where the regex crate's `$`
/// matches only at the very end. Escapes and character classes are copied as they are.
fn pcre_end_anchors(pattern: &str, multi_line: bool) -> String {
    const END_OR_FINAL_NEWLINE: &str = r"(?:\n?\z)";
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('Z') => out.push_str(END_OR_FINAL_NEWLINE),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                // A `]` first in a class (after an optional `^`) is a literal.
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push(']');
                    chars.next();
                }
            }
            // A POSIX class such as `[:alpha:]` inside a class does not end it.
            '[' if chars.peek() == Some(&':') => {
                out.push('[');
                while let Some(inner) = chars.next() {
                    out.push(inner);
                    if inner == ':' && chars.peek() == Some(&']') {
                        out.push(']');
                        chars.next();
                        break;
                    }
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '$' if !in_class && !multi_line => out.push_str(END_OR_FINAL_NEWLINE),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pattern on the backtracking engine (a backreference) whose search explodes on a
    /// subject of `a`s that does not end as it wants.
    const EXPLOSIVE: &str = r"^(a|aa)+(?=b)\1c$";

    #[test]
    fn a_runaway_backtracking_search_gives_up_with_pcres_words() {
        let pattern = compile(EXPLOSIVE, "").expect("compiles");
        assert!(matches!(pattern, Pattern::Backtracking(_)));
        let subject = "a".repeat(64);
        assert_eq!(pattern.is_match(&subject), Err(MatchFailure::MatchLimit));
        assert_eq!(pattern.captures_at(&subject, 0), Err(MatchFailure::MatchLimit));
        assert_eq!(MatchFailure::MatchLimit.to_string(), "match limit exceeded");
        // A filter counts it as no match, as mongod's does.
        let predicate = RegexPredicate::new(EXPLOSIVE, "").expect("compiles");
        assert!(!predicate.matches(RawBsonRef::String(&subject)));
        // Within the limit the same pattern answers.
        assert_eq!(pattern.is_match("aab"), Ok(false));
    }

    #[test]
    fn patterns_past_the_linear_engines_size_limit_are_refused() {
        let nested = "((((a{1000}){1000}){1000}){1000})";
        assert!(matches!(compile(nested, ""), Err(RegexError::Invalid(_))), "{:?}", compile(nested, "").err());
        let with_lookahead = format!("(?=a){nested}");
        assert!(matches!(compile(&with_lookahead, ""), Err(RegexError::Invalid(_))));
    }
}
