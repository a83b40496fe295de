//! The leaf tests of a filter: one value reached at a path against `$eq` and the ranges,
//! `$in`, `$exists`, `$regex`, `$type`, `$mod`, `$size` and the bit tests. `$jsonSchema` reuses
//! the comparison and the type list.

use std::cmp::Ordering;
use std::sync::Arc;

use bson::spec::ElementType;
use bson::{RawBson, RawBsonRef};

use super::argument::double_to_i64;
use super::regex::RegexPredicate;
use crate::query::collation::Collation;
use crate::query::elements::items;
use crate::query::number::Number;
use crate::query::order::{MISSING_BRACKET, NULL_BRACKET, canonical_type, compare_collated};
use crate::query::path::Reached;

/// A test of one value reached at a path.
#[derive(Debug, Clone)]
pub(super) enum Predicate {
    /// `$eq`, `$lt`, `$lte`, `$gt`, `$gte` against a value, strings under `collation`.
    Compare { op: CompareOp, rhs: RawBson, collation: Option<Arc<Collation>> },
    /// `$in`: equality with any of a sorted list.
    In(InList),
    /// `$exists: true`.
    Exists,
    /// `$regex`, or a regular expression as the value of an equality.
    Regex(Box<RegexPredicate>),
    /// `$type`.
    Type(TypeSet),
    /// `$mod: [divisor, remainder]`, both already truncated to int64.
    Mod { divisor: i64, remainder: i64 },
    /// `$size`: an array (not an element of one) of exactly this many elements.
    Size(i64),
    /// `$bitsAllSet` and friends, the mask turned into bit positions.
    Bits { test: BitTest, positions: Vec<u32> },
    /// `$geoWithin` or `$geoIntersects`.
    Geo(Box<crate::query::geo::GeoPredicate>),
}

/// The types a `$type` accepts.
#[derive(Debug, Clone, Default)]
pub(super) struct TypeSet {
    /// The alias "number": every numeric type.
    pub(super) all_numbers: bool,
    pub(super) types: Vec<ElementType>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BitTest {
    AllSet,
    AnySet,
    AllClear,
    AnyClear,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::query) enum CompareOp {
    Eq,
    Lt,
    Lte,
    Gt,
    Gte,
}

#[derive(Debug, Clone)]
pub(super) struct InList {
    /// Sorted in BSON order, for binary search.
    pub(super) values: Vec<RawBson>,
    /// A null in the list also matches missing and undefined, as `{$eq: null}` does.
    pub(super) has_null: bool,
    /// Regular expressions in the list match strings as `$regex` does.
    pub(super) regexes: Vec<RegexPredicate>,
    /// The collation `values` are sorted and searched under.
    pub(super) collation: Option<Arc<Collation>>,
}

impl Predicate {
    pub(super) fn set_collation(&mut self, to: &Arc<Collation>) {
        match self {
            Predicate::Compare { collation, .. } => *collation = Some(Arc::clone(to)),
            Predicate::In(list) => {
                list.values.sort_by(|a, b| compare_collated(a.as_raw_bson_ref(), b.as_raw_bson_ref(), Some(to)));
                list.collation = Some(Arc::clone(to));
            }
            _ => {}
        }
    }

    pub(super) fn matches(&self, reached: Reached<'_>) -> bool {
        let value = match reached {
            Reached::Missing => None,
            Reached::Value { value, .. } => Some(value),
        };
        match self {
            Predicate::Compare { op, rhs, collation } => {
                compare_matches(*op, value, rhs.as_raw_bson_ref(), collation.as_deref())
            }
            Predicate::In(list) => list.contains(value),
            Predicate::Exists => value.is_some(),
            Predicate::Regex(re) => value.is_some_and(|v| re.matches(v)),
            Predicate::Type(types) => value.is_some_and(|v| types.contains(v)),
            Predicate::Mod { divisor, remainder } => value
                .and_then(Number::from_raw)
                .and_then(truncate_to_i64)
                // wrapping_rem: i64::MIN % -1 is 0, as mongod's overflow-safe mod says.
                .is_some_and(|dividend| dividend.wrapping_rem(*divisor) == *remainder),
            Predicate::Size(n) => match reached {
                Reached::Value { value: RawBsonRef::Array(arr), array_element: false } => {
                    i64::try_from(items(arr).count()).is_ok_and(|len| len == *n)
                }
                _ => false,
            },
            Predicate::Bits { test, positions } => value.is_some_and(|v| bits_match(*test, positions, v)),
            Predicate::Geo(geo) => value.is_some_and(|v| geo.matches(v)),
        }
    }
}

/// A number truncated toward zero, if it is finite and fits an int64 (mongod's `$mod`
/// dividend rule: anything else never matches).
fn truncate_to_i64(n: Number) -> Option<i64> {
    match n {
        Number::Int32(i) => Some(i64::from(i)),
        Number::Int64(i) => Some(i),
        Number::Double(d) => double_to_i64(d.trunc()),
        Number::Decimal(d) => d.to_string().parse::<f64>().ok().and_then(|d| double_to_i64(d.trunc())),
    }
}

/// mongod's `BitTestMatchExpression::matchesSingleElement`: numbers must be integral int64
/// values (bits past 63 read as the sign), BinData is read little-endian with missing bytes
/// clear, and everything else never matches.
fn bits_match(test: BitTest, positions: &[u32], value: RawBsonRef<'_>) -> bool {
    /// What the bits are read from.
    enum Bits<'a> {
        Number(i64),
        Binary(&'a [u8]),
    }
    let bits = match value {
        RawBsonRef::Binary(bin) => Bits::Binary(bin.bytes),
        other => match Number::from_raw(other) {
            Some(Number::Int32(i)) => Bits::Number(i64::from(i)),
            Some(Number::Int64(i)) => Bits::Number(i),
            Some(Number::Double(d)) => match double_to_i64(d) {
                Some(i) => Bits::Number(i),
                None => return false,
            },
            Some(Number::Decimal(d)) => match d.to_string().parse::<f64>().ok().and_then(double_to_i64) {
                Some(i) => Bits::Number(i),
                None => return false,
            },
            None => return false,
        },
    };
    let is_set = |p: u32| match bits {
        Bits::Number(n) if p >= 64 => n < 0,
        Bits::Number(n) => n >> p & 1 == 1,
        Bits::Binary(bytes) => {
            let byte = usize::try_from(p / 8).ok().and_then(|i| bytes.get(i)).copied().unwrap_or(0);
            byte >> (p % 8) & 1 == 1
        }
    };
    match test {
        BitTest::AllSet => positions.iter().all(|&p| is_set(p)),
        BitTest::AnySet => positions.iter().any(|&p| is_set(p)),
        BitTest::AllClear => positions.iter().all(|&p| !is_set(p)),
        BitTest::AnyClear => positions.iter().any(|&p| !is_set(p)),
    }
}

impl TypeSet {
    fn contains(&self, value: RawBsonRef<'_>) -> bool {
        (self.all_numbers && Number::from_raw(value).is_some()) || self.types.contains(&value.element_type())
    }
}

/// mongod's `ComparisonMatchExpression::matchesSingleElement`; `None` is a missing value.
pub(in crate::query) fn compare_matches(
    op: CompareOp,
    value: Option<RawBsonRef<'_>>,
    rhs: RawBsonRef<'_>,
    collation: Option<&Collation>,
) -> bool {
    let value_bracket = value.map_or(MISSING_BRACKET, canonical_type);
    let rhs_bracket = canonical_type(rhs);
    if value_bracket != rhs_bracket {
        // Null matches missing and undefined for the comparisons that include equality.
        if (value_bracket, rhs_bracket) == (MISSING_BRACKET, NULL_BRACKET) {
            return matches!(op, CompareOp::Eq | CompareOp::Lte | CompareOp::Gte);
        }
        return match rhs {
            RawBsonRef::MaxKey => matches!(op, CompareOp::Lt | CompareOp::Lte),
            RawBsonRef::MinKey => matches!(op, CompareOp::Gt | CompareOp::Gte),
            _ => false,
        };
    }
    // Same bracket and a missing value would mean rhs is undefined, which parse refuses.
    let Some(value) = value else { return false };
    if op != CompareOp::Eq {
        // NaN equals NaN but is neither below nor above anything.
        let (value_nan, rhs_nan) = (is_nan(value), is_nan(rhs));
        if value_nan || rhs_nan {
            return matches!(op, CompareOp::Lte | CompareOp::Gte) && value_nan && rhs_nan;
        }
    }
    let ord = compare_collated(value, rhs, collation);
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Lte => ord != Ordering::Greater,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Gte => ord != Ordering::Less,
    }
}

fn is_nan(v: RawBsonRef<'_>) -> bool {
    Number::from_raw(v).is_some_and(Number::is_nan)
}

impl InList {
    fn contains(&self, value: Option<RawBsonRef<'_>>) -> bool {
        match value {
            None | Some(RawBsonRef::Undefined) if self.has_null => true,
            None => false,
            Some(v) => {
                let collation = self.collation.as_deref();
                self.values.binary_search_by(|probe| compare_collated(probe.as_raw_bson_ref(), v, collation)).is_ok()
                    || self.regexes.iter().any(|re| re.matches(v))
            }
        }
    }
}

/// Every BSON type `$type` can name, for the alias lookup.
pub(in crate::query) const ALL_TYPES: [ElementType; 21] = [
    ElementType::Double,
    ElementType::String,
    ElementType::EmbeddedDocument,
    ElementType::Array,
    ElementType::Binary,
    ElementType::Undefined,
    ElementType::ObjectId,
    ElementType::Boolean,
    ElementType::DateTime,
    ElementType::Null,
    ElementType::RegularExpression,
    ElementType::DbPointer,
    ElementType::JavaScriptCode,
    ElementType::Symbol,
    ElementType::JavaScriptCodeWithScope,
    ElementType::Int32,
    ElementType::Timestamp,
    ElementType::Int64,
    ElementType::Decimal128,
    ElementType::MinKey,
    ElementType::MaxKey,
];
