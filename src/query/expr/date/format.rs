//! `$dateToString` and the `%` format language it shares with `$dateFromString`.

use std::fmt::Write as _;

use bson::Bson;

use super::civil::Civil;
use super::tz::Zone;
use super::{Args, nullish, require_date, shown};
use crate::error::ErrorCode;
use crate::query::error::QueryError;
use crate::query::expr::value::{Value, type_of};

/// The default format in UTC, and in any other zone (where the `Z` would be wrong).
const ISO_FORMAT_Z: &str = "%Y-%m-%dT%H:%M:%S.%LZ";
const ISO_FORMAT_LOCAL: &str = "%Y-%m-%dT%H:%M:%S.%L";

/// The English month names of `%b` and `%B`.
pub(super) const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The specifiers `$dateToString` knows (mongod 7.0 added `%b` and `%B`).
const TO_STRING_SPECIFIERS: &str = "bBdGHjLmMSuUVwYzZ%";

/// mongod's `validateFormat`: every `%` followed by one of `known`.
///
/// # Errors
/// 18535 for a `%` ending the format, 18536 for an unknown specifier.
pub(super) fn validate(format: &str, known: &str) -> Result<(), QueryError> {
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        match chars.next() {
            None => return Err(QueryError::new(ErrorCode::Location18535, "Unmatched '%' at end of format string")),
            Some(spec) if known.contains(spec) => {}
            Some(spec) => {
                return Err(QueryError::new(
                    ErrorCode::Location18536,
                    format!("Invalid format character '%{spec}' in format string"),
                ));
            }
        }
    }
    Ok(())
}

/// The `format` slot (1) of `$dateToString` and `$dateFromString`: `None` when not spelled,
/// `Some(None)` when nullish, else a string checked against the `known` specifiers.
///
/// # Errors
/// `not_string` for a value other than a string; 18535/18536 for a malformed format.
pub(super) fn format_arg(
    args: &mut Args<'_>,
    op: &str,
    not_string: ErrorCode,
    known: &str,
) -> Result<Option<Option<String>>, QueryError> {
    match args.get(1)? {
        None => Ok(None),
        Some(v) if nullish(&v) => Ok(Some(None)),
        Some(Some(Bson::String(f))) => {
            validate(&f, known)?;
            Ok(Some(Some(f)))
        }
        Some(v) => Err(QueryError::new(
            not_string,
            format!("{op} requires that 'format' be a string, found: {} with value {}", type_of(&v), shown(&v)),
        )),
    }
}

/// `$dateToString`: the format is checked before the date, and a nullish date answers
/// `onNull` (null when not given) before a nullish zone or format answers null.
pub(super) fn date_to_string(args: &mut Args<'_>) -> Result<Value, QueryError> {
    let date = args.get(0)?.flatten();
    let format = format_arg(args, "$dateToString", ErrorCode::Location18533, TO_STRING_SPECIFIERS)?;
    let zone = args.zone(2)?;
    if nullish(&date) {
        return Ok(args.get(3)?.unwrap_or(Some(Bson::Null)));
    }
    let Some(zone) = zone else { return Ok(Some(Bson::Null)) };
    let format = match format {
        Some(None) => return Ok(Some(Bson::Null)),
        Some(Some(f)) => f,
        None if zone.is_utc() => ISO_FORMAT_Z.to_owned(),
        None => ISO_FORMAT_LOCAL.to_owned(),
    };
    let date = require_date(&date)?;
    format_date(&format, date, &zone).map(|s| Some(Bson::String(s)))
}

/// `date` as mongod writes a date it converts to a string: ISO 8601 in UTC with
/// milliseconds and `Z`.
///
/// # Errors
/// 18537 for a year outside 0-9999.
pub(crate) fn iso_utc(date: i64) -> Result<String, QueryError> {
    format_date(ISO_FORMAT_Z, date, &Zone::Utc)
}

/// Formats `date` in `zone` under a validated format.
///
/// # Errors
/// 18537 when `%Y` or `%G` meets a year outside 0-9999.
pub(super) fn format_date(format: &str, date: i64, zone: &Zone) -> Result<String, QueryError> {
    let offset = zone.offset_seconds(date);
    let c = Civil::from_local_ms(date.saturating_add(offset * 1000));
    let mut out = String::with_capacity(format.len() + 16);
    let mut chars = format.chars();
    while let Some(ch) = chars.next() {
        if ch != '%' {
            out.push(ch);
            continue;
        }
        let Some(spec) = chars.next() else { break };
        // Writing to a String cannot fail.
        let _ = match spec {
            'd' => write!(out, "{:02}", c.day),
            'G' => write!(out, "{}", four_digits(c.iso_year_and_week().0)?),
            'H' => write!(out, "{:02}", c.hour),
            'j' => write!(out, "{:03}", c.day_of_year()),
            'L' => write!(out, "{:03}", c.millisecond),
            'm' => write!(out, "{:02}", c.month),
            'M' => write!(out, "{:02}", c.minute),
            'S' => write!(out, "{:02}", c.second),
            'w' => write!(out, "{}", c.weekday() + 1),
            'u' => write!(out, "{}", c.iso_day_of_week()),
            'U' => write!(out, "{:02}", c.week()),
            'V' => write!(out, "{:02}", c.iso_year_and_week().1),
            'Y' => write!(out, "{}", four_digits(c.year)?),
            'z' => {
                let sign = if offset < 0 { '-' } else { '+' };
                let abs = offset.abs();
                write!(out, "{sign}{:02}{:02}", abs / 3600, abs % 3600 / 60)
            }
            'Z' => write!(out, "{}", offset / 60),
            'b' | 'B' => {
                let name = usize::try_from(c.month - 1).ok().and_then(|i| MONTHS.get(i)).copied().unwrap_or_default();
                out.push_str(if spec == 'b' { name.get(..3).unwrap_or(name) } else { name });
                Ok(())
            }
            other => {
                out.push(other);
                Ok(())
            }
        };
    }
    Ok(out)
}

/// A year printed in four digits, as mongod only can.
fn four_digits(year: i64) -> Result<String, QueryError> {
    if !(0..=9999).contains(&year) {
        return Err(QueryError::new(
            ErrorCode::Location18537,
            format!(
                "Could not convert date to string: date component was outside the supported range of 0-9999: {year}"
            ),
        ));
    }
    Ok(format!("{year:04}"))
}
