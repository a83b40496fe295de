//! Collations: the `collation` option of queries, writes and collections, parsed and validated
//! as mongod 7.0 does, and the string comparison it stands for.
//!
//! `{locale: "simple"}` (or no collation) is binary comparison and parses to `None`, so the
//! callers keep their byte-wise fast path. Other collations compare strings with ICU4X's
//! implementation of the Unicode Collation Algorithm and CLDR data. English has no CLDR
//! tailoring, so `en` (and `en_US`, which mongod resolves alike) is the CLDR root order;
//! other locales answer 238 NotImplemented rather than silently comparing as English.

use std::cmp::Ordering;
use std::fmt;

use bson::{Document, RawBsonRef, RawDocument, doc};
use icu_collator::options::{AlternateHandling, CaseLevel, CollatorOptions, MaxVariable, Strength};
use icu_collator::preferences::{CollationCaseFirst, CollationNumericOrdering};
use icu_collator::{CollatorBorrowed, CollatorPreferences};

use super::elements::fields;
use super::error::QueryError;
use super::render;
use crate::error::ErrorCode;

/// The ICU version mongod 7.0 reports in a collation's `version`.
const ICU_VERSION: &str = "57.1";

/// The locales Monarch can collate: those whose order is the CLDR root order.
const SUPPORTED_LOCALES: &[&str] = &["en", "en_US"];

/// How case differences order at the tertiary level (or the case level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseFirst {
    /// Upper case first.
    Upper,
    /// Lower case first.
    Lower,
    /// The locale's default (lower first for English).
    Off,
}

/// Whether spaces and punctuation are base characters (`non-ignorable`) or ignored up to
/// the quaternary level (`shifted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alternate {
    /// Spaces and punctuation are base characters.
    NonIgnorable,
    /// Spaces and punctuation (up to `maxVariable`) are ignored below the quaternary level.
    Shifted,
}

/// Up to which characters `alternate: "shifted"` ignores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxVariableKind {
    /// Spaces and punctuation.
    Punct,
    /// Spaces only.
    Space,
}

/// A validated collation spec with every field resolved, as mongod reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollationSpec {
    /// The locale as given (`en` or `en_US`).
    pub locale: String,
    /// A separate case level between secondary and tertiary.
    pub case_level: bool,
    /// Case ordering.
    pub case_first: CaseFirst,
    /// 1 (base letters) to 5 (identical).
    pub strength: u8,
    /// Digit sequences compare by numeric value.
    pub numeric_ordering: bool,
    /// Treatment of spaces and punctuation.
    pub alternate: Alternate,
    /// What `shifted` ignores.
    pub max_variable: MaxVariableKind,
    /// mongod's `normalization` flag. The comparison always normalizes, which orders
    /// canonically equivalent text the same either way.
    pub normalization: bool,
    /// French secondary ordering; always false here (see [`Collation::parse`]).
    pub backwards: bool,
}

impl CollationSpec {
    /// The full spec document mongod returns (`listCollections`, `explain`).
    pub fn to_document(&self) -> Document {
        doc! {
            "locale": &self.locale,
            "caseLevel": self.case_level,
            "caseFirst": match self.case_first {
                CaseFirst::Upper => "upper",
                CaseFirst::Lower => "lower",
                CaseFirst::Off => "off",
            },
            "strength": i32::from(self.strength),
            "numericOrdering": self.numeric_ordering,
            "alternate": match self.alternate {
                Alternate::NonIgnorable => "non-ignorable",
                Alternate::Shifted => "shifted",
            },
            "maxVariable": match self.max_variable {
                MaxVariableKind::Punct => "punct",
                MaxVariableKind::Space => "space",
            },
            "normalization": self.normalization,
            "backwards": self.backwards,
            "version": ICU_VERSION,
        }
    }
}

/// A non-simple collation: its spec and the comparator built from it.
pub struct Collation {
    spec: CollationSpec,
    collator: CollatorBorrowed<'static>,
}

impl fmt::Debug for Collation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collation").field("spec", &self.spec).finish_non_exhaustive()
    }
}

impl PartialEq for Collation {
    fn eq(&self, other: &Self) -> bool {
        self.spec == other.spec
    }
}

impl Collation {
    /// Parses a `collation` document. `Ok(None)` is the simple (binary) collation.
    ///
    /// # Errors
    /// mongod's: 40414 without `locale`, 40415 for an unknown field, 14 TypeMismatch for a
    /// field of the wrong type, 51024 for a strength outside 0..=5, 2 BadValue for a bad enum
    /// value, strength 0, an empty locale or an invalid combination, 161
    /// IncompatibleCollationVersion for a `version` other than the server's; 238
    /// NotImplemented for a locale other than English and for `backwards: true`. Like
    /// mongod, `simple` ignores the other fields once they parse.
    pub fn parse(spec: &RawDocument) -> Result<Option<Self>, QueryError> {
        let raw = spec;
        let mut locale = None;
        let mut case_level = None;
        let mut case_first = None;
        let mut strength = None;
        let mut numeric_ordering = None;
        let mut alternate = None;
        let mut max_variable = None;
        let mut normalization = None;
        let mut backwards = None;
        let mut version = None;
        for (key, value) in fields(spec) {
            match key {
                "locale" => locale = Some(string_field(key, value)?),
                "caseLevel" => case_level = Some(bool_field(key, value)?),
                "caseFirst" => {
                    case_first = Some(match string_field(key, value)? {
                        "upper" => CaseFirst::Upper,
                        "lower" => CaseFirst::Lower,
                        "off" => CaseFirst::Off,
                        other => return Err(bad_enum(key, other)),
                    });
                }
                "strength" => strength = Some(strength_field(value)?),
                "numericOrdering" => numeric_ordering = Some(bool_field(key, value)?),
                "alternate" => {
                    alternate = Some(match string_field(key, value)? {
                        "non-ignorable" => Alternate::NonIgnorable,
                        "shifted" => Alternate::Shifted,
                        other => return Err(bad_enum(key, other)),
                    });
                }
                "maxVariable" => {
                    max_variable = Some(match string_field(key, value)? {
                        "punct" => MaxVariableKind::Punct,
                        "space" => MaxVariableKind::Space,
                        other => return Err(bad_enum(key, other)),
                    });
                }
                "normalization" => normalization = Some(bool_field(key, value)?),
                "backwards" => backwards = Some(bool_field(key, value)?),
                "version" => version = Some(string_field(key, value)?),
                other => {
                    return Err(QueryError::new(
                        ErrorCode::Location40415,
                        format!("BSON field 'collation.{other}' is an unknown field."),
                    ));
                }
            }
        }
        let Some(locale) = locale else {
            return Err(QueryError::new(
                ErrorCode::Location40414,
                "BSON field 'collation.locale' is missing but a required field",
            ));
        };
        if locale == "simple" {
            return Ok(None);
        }
        if locale.is_empty() {
            return Err(QueryError::bad_value(format!(
                "Field 'locale' cannot be the empty string in: {}",
                shown(spec)
            )));
        }
        if !SUPPORTED_LOCALES.contains(&locale) {
            return Err(QueryError::new(
                ErrorCode::NotImplemented,
                format!("collation locale '{locale}' is not supported yet (only 'simple', 'en' and 'en_US' are)"),
            ));
        }
        let strength = match strength {
            None => 3,
            // The IDL range lets 0 through; the strength enum does not.
            Some(0) => return Err(bad_enum("strength", "0")),
            Some(n) => n,
        };
        if let Some(version) = version
            && version != ICU_VERSION
        {
            return Err(QueryError::new(
                ErrorCode::IncompatibleCollationVersion,
                format!(
                    "Requested collation version {version} but the only available collator version was \
                     {ICU_VERSION}. Requested collation spec: {}",
                    shown(spec)
                ),
            ));
        }
        let spec = CollationSpec {
            locale: locale.to_owned(),
            case_level: case_level.unwrap_or(false),
            case_first: case_first.unwrap_or(CaseFirst::Off),
            strength,
            numeric_ordering: numeric_ordering.unwrap_or(false),
            alternate: alternate.unwrap_or(Alternate::NonIgnorable),
            max_variable: max_variable.unwrap_or(MaxVariableKind::Punct),
            normalization: normalization.unwrap_or(false),
            backwards: backwards.unwrap_or(false),
        };
        validate_combination(&spec, raw)?;
        if spec.backwards {
            // ICU4X has no backward secondary option; English never turns it on by itself.
            return Err(QueryError::not_implemented("collation with backwards: true"));
        }
        Self::from_spec(spec).map(Some)
    }

    /// Builds the comparator for a validated spec.
    fn from_spec(spec: CollationSpec) -> Result<Self, QueryError> {
        let mut prefs = CollatorPreferences::default();
        prefs.case_first = Some(match spec.case_first {
            CaseFirst::Upper => CollationCaseFirst::Upper,
            CaseFirst::Lower => CollationCaseFirst::Lower,
            CaseFirst::Off => CollationCaseFirst::False,
        });
        prefs.numeric_ordering =
            Some(if spec.numeric_ordering { CollationNumericOrdering::True } else { CollationNumericOrdering::False });
        let mut options = CollatorOptions::default();
        options.strength = Some(match spec.strength {
            1 => Strength::Primary,
            2 => Strength::Secondary,
            3 => Strength::Tertiary,
            4 => Strength::Quaternary,
            _ => Strength::Identical,
        });
        options.case_level = Some(if spec.case_level { CaseLevel::On } else { CaseLevel::Off });
        options.alternate_handling = Some(match spec.alternate {
            Alternate::NonIgnorable => AlternateHandling::NonIgnorable,
            Alternate::Shifted => AlternateHandling::Shifted,
        });
        options.max_variable = Some(match spec.max_variable {
            MaxVariableKind::Punct => MaxVariable::Punctuation,
            MaxVariableKind::Space => MaxVariable::Space,
        });
        // The root locale's data: English has no tailoring of its own.
        let collator = CollatorBorrowed::try_new(prefs, options)
            .map_err(|e| QueryError::new(ErrorCode::OperationFailed, format!("Failed to create collator: {e}")))?;
        Ok(Self { spec, collator })
    }

    /// The resolved spec.
    pub fn spec(&self) -> &CollationSpec {
        &self.spec
    }

    /// Appends the sort key of `s`: byte order of sort keys is this collation's order, and
    /// strings it calls equal get equal keys (what index keys under a collation store).
    pub fn write_sort_key(&self, s: &str, out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail (its error type is Infallible).
        let _ = self.collator.write_sort_key_to(s, out);
    }

    /// Compares two strings under this collation.
    pub fn compare_str(&self, a: &str, b: &str) -> Ordering {
        self.collator.compare(a, b)
    }
}

/// mongod's checks of option combinations that have no effect.
/// mongod's checks of option combinations that have no effect; `raw` is the spec as given.
fn validate_combination(spec: &CollationSpec, raw: &RawDocument) -> Result<(), QueryError> {
    if spec.backwards && spec.strength == 1 {
        return Err(QueryError::bad_value(format!("'backwards' is invalid with 'strength' of 1 in: {}", shown(raw))));
    }
    if spec.case_first != CaseFirst::Off && !spec.case_level && spec.strength <= 2 {
        return Err(QueryError::bad_value(format!(
            "'caseFirst' is invalid unless 'caseLevel' is on or 'strength' is greater than 2 in: {}",
            shown(raw)
        )));
    }
    Ok(())
}

/// A document as mongod prints it in messages.
fn shown(doc: &RawDocument) -> String {
    let text = render::element("", RawBsonRef::Document(doc));
    text.trim_start_matches(": ").to_owned()
}

/// mongod's IDL type error for a collation field.
fn wrong_type(key: &str, value: RawBsonRef<'_>, expected: &str) -> QueryError {
    QueryError::new(
        ErrorCode::TypeMismatch,
        format!(
            "BSON field 'collation.{key}' is the wrong type '{}', expected type '{expected}'",
            render::type_name(value.element_type())
        ),
    )
}

fn string_field<'a>(key: &str, value: RawBsonRef<'a>) -> Result<&'a str, QueryError> {
    match value {
        RawBsonRef::String(s) => Ok(s),
        other => Err(wrong_type(key, other, "string")),
    }
}

fn bool_field(key: &str, value: RawBsonRef<'_>) -> Result<bool, QueryError> {
    match value {
        RawBsonRef::Boolean(b) => Ok(b),
        other => Err(wrong_type(key, other, "bool")),
    }
}

/// `strength` takes any number, truncated to an int; IDL allows 0 through 5.
fn strength_field(value: RawBsonRef<'_>) -> Result<u8, QueryError> {
    let n: i64 = match value {
        RawBsonRef::Int32(n) => i64::from(n),
        RawBsonRef::Int64(n) => n,
        // Saturating and NaN to 0, as C++'s safe conversions.
        RawBsonRef::Double(d) => d as i64,
        RawBsonRef::Decimal128(d) => d.to_string().parse::<f64>().map_or(0, |d| d as i64),
        other => return Err(wrong_type("strength", other, "[long, int, decimal, double]")),
    };
    let n = n.clamp(i64::from(i32::MIN), i64::from(i32::MAX));
    let bound = if n < 0 {
        Some((">=", 0))
    } else if n > 5 {
        Some(("<=", 5))
    } else {
        None
    };
    match bound {
        Some((op, limit)) => Err(QueryError::new(
            ErrorCode::Location51024,
            format!("BSON field 'collation.strength' value must be {op} {limit}, actual value '{n}'"),
        )),
        None => Ok(u8::try_from(n).unwrap_or(3)),
    }
}

/// mongod's IDL error for an enum field with an unknown value.
fn bad_enum(key: &str, value: &str) -> QueryError {
    QueryError::bad_value(format!("Enumeration value '{value}' for field 'collation.{key}' is not a valid value."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::rawdoc;

    fn collation(spec: bson::RawDocumentBuf) -> Collation {
        Collation::parse(&spec).unwrap().unwrap()
    }

    fn parse_err(spec: bson::RawDocumentBuf) -> (i32, String) {
        let err = Collation::parse(&spec).unwrap_err();
        (err.code().code(), err.message().to_owned())
    }

    #[test]
    fn collation_strength_levels_equality_table() {
        use Ordering::*;
        // (strength, a, b, expected)
        let rows = [
            (1, "a", "A", Equal),
            (1, "a", "á", Equal),
            (1, "a", "b", Less),
            (2, "a", "A", Equal),
            (2, "a", "á", Less),
            (2, "cafe", "Café", Less),
            (3, "a", "A", Less),
            (3, "a", "a", Equal),
            (3, "a", "á", Less),
        ];
        for (strength, a, b, expected) in rows {
            let c = collation(rawdoc! { "locale": "en", "strength": strength });
            assert_eq!(c.compare_str(a, b), expected, "strength {strength}: {a} vs {b}");
        }
    }

    #[test]
    fn collation_en_order_differs_from_binary() {
        let c = collation(rawdoc! { "locale": "en" });
        // Binary puts every capital first; the UCA interleaves them.
        assert_eq!("B".cmp("a"), Ordering::Less);
        assert_eq!(c.compare_str("B", "a"), Ordering::Greater);
        assert_eq!(c.compare_str("a", "B"), Ordering::Less);
        // Lower case first at the tertiary level for English.
        assert_eq!(c.compare_str("a", "A"), Ordering::Less);
    }

    #[test]
    fn collation_numeric_ordering() {
        let plain = collation(rawdoc! { "locale": "en" });
        let numeric = collation(rawdoc! { "locale": "en", "numericOrdering": true });
        assert_eq!(plain.compare_str("10", "9"), Ordering::Less);
        assert_eq!(numeric.compare_str("10", "9"), Ordering::Greater);
        assert_eq!(numeric.compare_str("a10", "a9"), Ordering::Greater);
    }

    #[test]
    fn collation_case_level_with_primary_strength() {
        let c = collation(rawdoc! { "locale": "en", "strength": 1, "caseLevel": true });
        assert_ne!(c.compare_str("a", "A"), Ordering::Equal);
        assert_eq!(c.compare_str("a", "á"), Ordering::Equal);
    }

    #[test]
    fn collation_case_first_upper() {
        let c = collation(rawdoc! { "locale": "en", "caseFirst": "upper" });
        assert_eq!(c.compare_str("A", "a"), Ordering::Less);
    }

    #[test]
    fn collation_alternate_shifted_ignores_punctuation() {
        let c = collation(rawdoc! { "locale": "en", "strength": 1, "alternate": "shifted" });
        assert_eq!(c.compare_str("a-b", "ab"), Ordering::Equal);
        let c = collation(rawdoc! { "locale": "en", "strength": 1 });
        assert_ne!(c.compare_str("a-b", "ab"), Ordering::Equal);
    }

    #[test]
    fn collation_simple_is_none_and_en_us_is_supported() {
        assert!(Collation::parse(&rawdoc! { "locale": "simple" }).unwrap().is_none());
        assert_eq!(collation(rawdoc! { "locale": "en_US" }).spec().locale, "en_US");
    }

    #[test]
    fn collation_full_spec_document() {
        let c = collation(rawdoc! { "locale": "en", "strength": 2 });
        assert_eq!(
            c.spec().to_document(),
            doc! {
                "locale": "en", "caseLevel": false, "caseFirst": "off", "strength": 2,
                "numericOrdering": false, "alternate": "non-ignorable", "maxVariable": "punct",
                "normalization": false, "backwards": false, "version": "57.1",
            }
        );
    }

    #[test]
    fn collation_parse_errors() {
        let rows: [(bson::RawDocumentBuf, i32); 13] = [
            (rawdoc! {}, 40414),
            (rawdoc! { "strength": 2 }, 40414),
            (rawdoc! { "locale": "en", "foo": 1 }, 40415),
            (rawdoc! { "locale": 1 }, 14),
            (rawdoc! { "locale": "en", "strength": "2" }, 14),
            (rawdoc! { "locale": "en", "strength": 6 }, 51024),
            (rawdoc! { "locale": "en", "strength": 0 }, 2),
            (rawdoc! { "locale": "en", "caseFirst": "sideways" }, 2),
            (rawdoc! { "locale": "en", "strength": 1, "caseFirst": "upper" }, 2),
            (rawdoc! { "locale": "", }, 2),
            (rawdoc! { "locale": "simple", "strength": "1" }, 14),
            (rawdoc! { "locale": "en", "version": "1.0" }, 161),
            (rawdoc! { "locale": "fr" }, 238),
        ];
        for (spec, code) in rows {
            assert_eq!(parse_err(spec.clone()).0, code, "{spec:?}");
        }
        assert_eq!(
            parse_err(rawdoc! { "locale": "en", "foo": 1 }).1,
            "BSON field 'collation.foo' is an unknown field."
        );
        assert!(parse_err(rawdoc! { "locale": "fr" }).1.contains("'fr'"));
        assert_eq!(
            parse_err(rawdoc! { "locale": "en", "strength": 0 }).1,
            "Enumeration value '0' for field 'collation.strength' is not a valid value."
        );
        // `simple` with other (valid) fields is still the simple collation.
        assert!(Collation::parse(&rawdoc! { "locale": "simple", "strength": 1 }).unwrap().is_none());
    }
}
