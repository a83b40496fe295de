//! mongod 7.0's date expressions: the date parts (`$year` ... `$isoDayOfWeek`),
//! `$dateToString`, `$dateFromString`, `$dateToParts`, `$dateFromParts`, `$dateTrunc`,
//! `$dateAdd`, `$dateSubtract` and `$dateDiff`, all in a time zone (an Olson name or a UTC
//! offset).
//!
//! Each operator parses into one [`Operator::Date`] node whose arguments sit in fixed slots
//! (see [`DateKind::slots`]); [`DateOp`] remembers which slots the expression spelled, since
//! an absent `timezone` means UTC where one that evaluates to null makes the result null.
//!
//! The layers: `civil` (the calendar on milliseconds), `tz` (zones), `units` (adding,
//! truncating and counting units; also the API `$setWindowFields` and `$densify` use), then
//! one module per operator family: `parts`, `format`, `from_string`, `arithmetic` (`$dateAdd`,
//! `$dateSubtract`, `$dateTrunc`, `$dateDiff`).

mod arithmetic;
pub(super) mod civil;
pub(super) mod format;
pub(super) mod from_string;
pub(super) mod op;
mod parts;
#[cfg(test)]
mod tests;
pub(crate) mod tz;
pub(crate) mod units;

use bson::{Bson, RawBsonRef, RawDocument};

use super::syntax::{Expression, Operator};
use super::value::{Value, nullish, type_of};
use crate::error::ErrorCode;
use crate::query::elements::fields;
use crate::query::error::QueryError;
use crate::query::number::{self, Number};
use crate::query::{decimal, render};

use op::Part;
pub use op::{DateKind, DateOp};
use tz::Zone;

/// Whether `name` is one of the date expressions.
pub(super) fn is_date_operator(name: &str) -> bool {
    Part::from_name(name).is_some()
        || matches!(
            name,
            "$dateToString"
                | "$dateFromString"
                | "$dateToParts"
                | "$dateFromParts"
                | "$dateTrunc"
                | "$dateAdd"
                | "$dateSubtract"
                | "$dateDiff"
        )
}

/// Parses `{name: arg}` when `name` is a date expression; `None` for other names.
pub(super) fn parse(name: &str, arg: RawBsonRef<'_>) -> Option<Result<Expression, QueryError>> {
    if let Some(part) = Part::from_name(name) {
        return Some(parse_part(name, part, arg));
    }
    let result = match name {
        "$dateToString" => parse_object(name, DateKind::ToString, arg, &SpecErrors::TO_STRING),
        "$dateFromString" => parse_object(name, DateKind::FromString, arg, &SpecErrors::FROM_STRING),
        "$dateToParts" => parse_object(name, DateKind::ToParts, arg, &SpecErrors::TO_PARTS),
        "$dateFromParts" => parse_from_parts(arg),
        "$dateTrunc" => parse_object(name, DateKind::Trunc, arg, &SpecErrors::TRUNC),
        "$dateAdd" => parse_object(name, DateKind::Add, arg, &SpecErrors::ARITHMETIC),
        "$dateSubtract" => parse_object(name, DateKind::Subtract, arg, &SpecErrors::ARITHMETIC),
        "$dateDiff" => parse_object(name, DateKind::Diff, arg, &SpecErrors::DIFF),
        _ => return None,
    };
    Some(result)
}

/// mongod's codes and messages for a malformed object argument.
struct SpecErrors {
    /// The argument is not an object.
    not_object: (ErrorCode, &'static str),
    /// An unknown field; the message is `<prefix><field><suffix>`.
    unknown: (ErrorCode, &'static str, &'static str),
    /// A required slot is absent: (slot, code, message).
    required: &'static [(usize, ErrorCode, &'static str)],
}

impl SpecErrors {
    const TO_STRING: Self = Self {
        not_object: (ErrorCode::Location18629, "$dateToString only supports an object as its argument"),
        unknown: (ErrorCode::Location18534, "Unrecognized argument to $dateToString: ", ""),
        required: &[(0, ErrorCode::Location18628, "Missing 'date' parameter to $dateToString")],
    };
    const FROM_STRING: Self = Self {
        not_object: (ErrorCode::Location40540, "$dateFromString only supports an object as an argument, found: "),
        unknown: (ErrorCode::Location40541, "Unrecognized argument to $dateFromString: ", ""),
        required: &[(0, ErrorCode::Location40542, "Missing 'dateString' parameter to $dateFromString")],
    };
    const TO_PARTS: Self = Self {
        not_object: (ErrorCode::Location40524, "$dateToParts only supports an object as its argument"),
        unknown: (ErrorCode::Location40520, "Unrecognized argument to $dateToParts: ", ""),
        required: &[(0, ErrorCode::Location40522, "Missing 'date' parameter to $dateToParts")],
    };
    const TRUNC: Self = Self {
        not_object: (ErrorCode::Location5439007, "$dateTrunc only supports an object as its argument"),
        unknown: (
            ErrorCode::Location5439008,
            "Unrecognized argument to $dateTrunc: ",
            ". Expected arguments are date, unit, and optionally, binSize, timezone, startOfWeek",
        ),
        required: &[
            (0, ErrorCode::Location5439009, "Missing 'date' parameter to $dateTrunc"),
            (1, ErrorCode::Location5439010, "Missing 'unit' parameter to $dateTrunc"),
        ],
    };
    const ARITHMETIC: Self = Self {
        not_object: (ErrorCode::Location5166400, " expects an object as its argument"),
        unknown: (
            ErrorCode::Location5166401,
            "Unrecognized argument to ",
            ". Expected arguments are startDate, unit, amount, and optionally timezone.",
        ),
        required: &[
            (0, ErrorCode::Location5166402, " requires startDate, unit, and amount to be present"),
            (1, ErrorCode::Location5166402, " requires startDate, unit, and amount to be present"),
            (2, ErrorCode::Location5166402, " requires startDate, unit, and amount to be present"),
        ],
    };
    const DIFF: Self = Self {
        not_object: (ErrorCode::Location5166301, "$dateDiff only supports an object as its argument"),
        unknown: (ErrorCode::Location5166302, "Unrecognized argument to $dateDiff: ", ""),
        required: &[
            (0, ErrorCode::Location5166303, "Missing 'startDate' parameter to $dateDiff"),
            (1, ErrorCode::Location5166304, "Missing 'endDate' parameter to $dateDiff"),
            (2, ErrorCode::Location5166305, "Missing 'unit' parameter to $dateDiff"),
        ],
    };
}

/// `{date, timezone}`, `[date]`, or the date expression itself.
fn parse_part(name: &str, part: Part, arg: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    let kind = DateKind::Part(part);
    match arg {
        RawBsonRef::Document(doc) if !fields(doc).next().is_some_and(|(k, _)| k.starts_with('$')) => {
            let (args, given) = parse_slots(kind, doc, |field| {
                QueryError::new(ErrorCode::Location40535, format!("unrecognized option to {name}: \"{field}\""))
            })?;
            if given & 1 == 0 {
                return Err(QueryError::new(
                    ErrorCode::Location40539,
                    format!("missing 'date' argument to {name}, provided: {}", render::element(name, arg)),
                ));
            }
            Ok(node(kind, given, args))
        }
        RawBsonRef::Array(items) => {
            let items: Vec<RawBsonRef<'_>> =
                items.into_iter().collect::<Result<_, _>>().map_err(QueryError::invalid_bson)?;
            let [only] = items.as_slice() else {
                return Err(QueryError::new(
                    ErrorCode::Location40536,
                    format!("{name} accepts exactly one argument if given an array, but was given {}", items.len()),
                ));
            };
            Ok(node(kind, 1, vec![Expression::parse(*only)?, absent()]))
        }
        other => Ok(node(kind, 1, vec![Expression::parse(other)?, absent()])),
    }
}

/// The operators whose argument is an object of named arguments.
fn parse_object(
    name: &str,
    kind: DateKind,
    arg: RawBsonRef<'_>,
    errors: &SpecErrors,
) -> Result<Expression, QueryError> {
    let prefixed = |text: &str| if text.starts_with(' ') { format!("{name}{text}") } else { text.to_owned() };
    let RawBsonRef::Document(doc) = arg else {
        let (code, text) = errors.not_object;
        let mut message = prefixed(text);
        if kind == DateKind::FromString {
            message.push_str(render::type_name(arg.element_type()));
        }
        return Err(QueryError::new(code, message));
    };
    let (args, given) = parse_slots(kind, doc, |field| {
        let (code, prefix, suffix) = errors.unknown;
        let prefix = if kind == DateKind::Add || kind == DateKind::Subtract {
            format!("{prefix}{name}: ")
        } else {
            prefix.to_owned()
        };
        QueryError::new(code, format!("{prefix}{field}{suffix}"))
    })?;
    for &(slot, code, text) in errors.required {
        if given & (1 << slot) == 0 {
            return Err(QueryError::new(code, prefixed(text)));
        }
    }
    Ok(node(kind, given, args))
}

/// `$dateFromParts`: calendar parts or ISO week parts, never both.
fn parse_from_parts(arg: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    let RawBsonRef::Document(doc) = arg else {
        return Err(QueryError::new(
            ErrorCode::Location40519,
            "$dateFromParts only supports an object as its argument",
        ));
    };
    let has = |f: &str| fields(doc).any(|(k, _)| k == f);
    let known = DateKind::FromParts.slots().iter().chain(DateKind::FromIsoParts.slots());
    let known: Vec<&str> = known.copied().collect();
    if let Some((field, _)) = fields(doc).find(|(k, _)| !known.contains(k)) {
        return Err(QueryError::new(
            ErrorCode::Location40518,
            format!("Unrecognized argument to $dateFromParts: {field}"),
        ));
    }
    let (year, iso_year) = (has("year"), has("isoWeekYear"));
    if !year && !iso_year {
        return Err(QueryError::new(
            ErrorCode::Location40516,
            "$dateFromParts requires either 'year' or 'isoWeekYear' to be present",
        ));
    }
    if year && (iso_year || has("isoWeek") || has("isoDayOfWeek")) {
        return Err(QueryError::new(
            ErrorCode::Location40489,
            "$dateFromParts does not allow mixing natural dates with ISO dates",
        ));
    }
    if iso_year && (has("month") || has("day")) {
        return Err(QueryError::new(
            ErrorCode::Location40525,
            "$dateFromParts does not allow mixing ISO dates with natural dates",
        ));
    }
    let kind = if year { DateKind::FromParts } else { DateKind::FromIsoParts };
    let (args, given) = parse_slots(kind, doc, |field| {
        QueryError::new(ErrorCode::Location40518, format!("Unrecognized argument to $dateFromParts: {field}"))
    })?;
    Ok(node(kind, given, args))
}

/// Parses the named arguments of `doc` into `kind`'s slots; an absent slot holds null.
fn parse_slots(
    kind: DateKind,
    doc: &RawDocument,
    unknown: impl Fn(&str) -> QueryError,
) -> Result<(Vec<Expression>, u16), QueryError> {
    let slots = kind.slots();
    let mut args: Vec<Expression> = slots.iter().map(|_| absent()).collect();
    let mut given = 0u16;
    for (field, value) in fields(doc) {
        let Some(i) = slots.iter().position(|s| *s == field) else { return Err(unknown(field)) };
        if let Some(slot) = args.get_mut(i) {
            *slot = Expression::parse(value)?;
            given |= 1 << i;
        }
    }
    Ok((args, given))
}

fn absent() -> Expression {
    Expression::Literal(Bson::Null)
}

fn node(kind: DateKind, given: u16, args: Vec<Expression>) -> Expression {
    Expression::Operator { op: Operator::Date(DateOp { kind, given }), args }
}

/// The arguments of one date expression while it is evaluated: each slot is evaluated at
/// most when asked for.
pub(super) struct Args<'a> {
    op: DateOp,
    eval: &'a mut dyn FnMut(usize) -> Result<Value, QueryError>,
}

impl Args<'_> {
    /// Whether slot `i` was spelled in the expression.
    fn given(&self, i: usize) -> bool {
        self.op.given & (1 << i) != 0
    }

    /// The value of slot `i`; `None` when it was not spelled.
    fn get(&mut self, i: usize) -> Result<Option<Value>, QueryError> {
        if self.given(i) { (self.eval)(i).map(Some) } else { Ok(None) }
    }

    /// The value of slot `i` when it is neither nullish nor absent.
    fn present(&mut self, i: usize) -> Result<Option<Bson>, QueryError> {
        Ok(self.get(i)?.flatten().filter(|v| !matches!(v, Bson::Null | Bson::Undefined)))
    }

    /// The zone of slot `i`: UTC when not spelled, `None` when nullish.
    ///
    /// # Errors
    /// 40517 for a value other than a string, 40485 for an unknown zone.
    fn zone(&mut self, i: usize) -> Result<Option<Zone>, QueryError> {
        match self.get(i)? {
            None => Ok(Some(Zone::Utc)),
            Some(v) if nullish(&v) => Ok(None),
            Some(Some(Bson::String(name))) => Zone::parse(&name).map(Some),
            Some(v) => Err(QueryError::new(
                ErrorCode::Location40517,
                format!("timezone must evaluate to a string, found {}", type_of(&v)),
            )),
        }
    }
}

/// Evaluates a date expression; `eval(i)` evaluates its argument slot `i`.
///
/// # Errors
/// mongod's codes for arguments of the wrong type or out of range.
pub(super) fn evaluate(
    op: DateOp,
    eval: &mut dyn FnMut(usize) -> Result<Value, QueryError>,
) -> Result<Value, QueryError> {
    let mut args = Args { op, eval };
    match op.kind {
        DateKind::Part(part) => parts::evaluate_part(part, &mut args),
        DateKind::ToParts => parts::to_parts(&mut args),
        DateKind::FromParts => parts::from_parts(&mut args, false),
        DateKind::FromIsoParts => parts::from_parts(&mut args, true),
        DateKind::ToString => format::date_to_string(&mut args),
        DateKind::FromString => from_string::date_from_string(&mut args),
        DateKind::Trunc => arithmetic::date_trunc(&mut args),
        DateKind::Add => arithmetic::date_add(&mut args, false),
        DateKind::Subtract => arithmetic::date_add(&mut args, true),
        DateKind::Diff => arithmetic::date_diff(&mut args),
    }
}

/// mongod's `Value::coerceToDate`: a date, a timestamp (its seconds) or an ObjectId (its
/// creation second), in milliseconds since the epoch.
fn coerce_to_date(v: &Bson) -> Option<i64> {
    match v {
        Bson::DateTime(d) => Some(d.timestamp_millis()),
        Bson::Timestamp(ts) => Some(i64::from(ts.time) * 1000),
        Bson::ObjectId(oid) => Some(oid.timestamp().timestamp_millis()),
        _ => None,
    }
}

/// [`coerce_to_date`] or mongod's 16006.
fn require_date(v: &Value) -> Result<i64, QueryError> {
    v.as_ref().and_then(coerce_to_date).ok_or_else(|| {
        QueryError::new(ErrorCode::Location16006, format!("can't convert from BSON type {} to Date", type_of(v)))
    })
}

/// A date result.
fn date_value(ms: i64) -> Value {
    Some(Bson::DateTime(bson::DateTime::from_millis(ms)))
}

/// mongod's `Value::integral64Bit`: an integer, or a double or decimal with an integral value
/// that fits a long.
fn integral(v: &Value) -> Option<i64> {
    match v.as_ref()? {
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Int64(i) => Some(*i),
        // The upper bound is exclusive: i64::MAX rounds up to 2^63 as a double.
        Bson::Double(d) => (d.fract() == 0.0 && *d >= -(2f64.powi(63)) && *d < 2f64.powi(63)).then_some(*d as i64),
        Bson::Decimal128(d) => {
            let rounded = decimal::to_i64(*d)?;
            let exact = number::compare(Number::Decimal(*d), Number::Int64(rounded)) == std::cmp::Ordering::Equal;
            exact.then_some(rounded)
        }
        _ => None,
    }
}

/// A value as mongod's `Value::toString` prints it in messages.
fn shown(v: &Value) -> String {
    match v {
        Some(b) => render::owned_element("", b).trim_start_matches(": ").to_owned(),
        None => "missing".to_owned(),
    }
}
