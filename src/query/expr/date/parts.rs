//! The parts of a date in a zone: `$year` ... `$isoDayOfWeek`, `$dateToParts`, and the
//! reverse, `$dateFromParts`.

use bson::{Bson, doc};

use super::civil::{Civil, DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS, days_from_civil, iso_week_one_monday};
use super::op::Part;
use super::{Args, date_value, integral, nullish, require_date, shown};
use crate::error::ErrorCode;
use crate::query::error::QueryError;
use crate::query::expr::value::{Value, type_of};

impl Part {
    fn of(self, c: &Civil) -> i64 {
        match self {
            Self::Year => c.year,
            Self::Month => c.month,
            Self::DayOfMonth => c.day,
            Self::DayOfWeek => c.weekday() + 1,
            Self::DayOfYear => c.day_of_year(),
            Self::Hour => c.hour,
            Self::Minute => c.minute,
            Self::Second => c.second,
            Self::Millisecond => c.millisecond,
            Self::Week => c.week(),
            Self::IsoWeek => c.iso_year_and_week().1,
            Self::IsoWeekYear => c.iso_year_and_week().0,
            Self::IsoDayOfWeek => c.iso_day_of_week(),
        }
    }
}

/// mongod returns every part as an int; a year past the int range (a date some 2 billion
/// years out) cannot happen with 64-bit milliseconds.
fn int(n: i64) -> Bson {
    i32::try_from(n).map_or(Bson::Int64(n), Bson::Int32)
}

/// `$year` and its kin: null for a nullish date or zone; the date is checked before the zone.
pub(super) fn evaluate_part(part: Part, args: &mut Args<'_>) -> Result<Value, QueryError> {
    let date = args.get(0)?.flatten();
    if nullish(&date) {
        return Ok(Some(Bson::Null));
    }
    let date = require_date(&date)?;
    let Some(zone) = args.zone(1)? else { return Ok(Some(Bson::Null)) };
    Ok(Some(int(part.of(&Civil::from_local_ms(zone.to_local(date))))))
}

/// `$dateToParts`: `{year, month, day, hour, minute, second, millisecond}`, or with
/// `iso8601: true` `{isoWeekYear, isoWeek, isoDayOfWeek, hour, ...}`.
pub(super) fn to_parts(args: &mut Args<'_>) -> Result<Value, QueryError> {
    let null = Ok(Some(Bson::Null));
    let date = args.get(0)?.flatten();
    let Some(zone) = args.zone(1)? else { return null };
    let iso = match args.get(2)? {
        None => false,
        Some(v) if nullish(&v) => return null,
        Some(Some(Bson::Boolean(b))) => b,
        Some(v) => {
            return Err(QueryError::new(
                ErrorCode::Location40521,
                format!("iso8601 must evaluate to a bool, found {}", type_of(&v)),
            ));
        }
    };
    if nullish(&date) {
        return null;
    }
    let c = Civil::from_local_ms(zone.to_local(require_date(&date)?));
    let parts = if iso {
        let (year, week) = c.iso_year_and_week();
        doc! { "isoWeekYear": int(year), "isoWeek": int(week), "isoDayOfWeek": int(c.iso_day_of_week()) }
    } else {
        doc! { "year": int(c.year), "month": int(c.month), "day": int(c.day) }
    };
    let mut parts = parts;
    parts.insert("hour", int(c.hour));
    parts.insert("minute", int(c.minute));
    parts.insert("second", int(c.second));
    parts.insert("millisecond", int(c.millisecond));
    Ok(Some(Bson::Document(parts)))
}

/// mongod limits `$dateFromParts` inputs to 16-bit values, as timelib walks its tables once
/// per unit of a large input.
const PART_BOUND: i64 = i16::MAX as i64;

/// One part: its default when not spelled, `None` when nullish.
///
/// # Errors
/// 40515 for a value that is not an integer, 31034 past ±32767 when `bounded`.
fn part(args: &mut Args<'_>, slot: usize, name: &str, default: i64, bounded: bool) -> Result<Option<i64>, QueryError> {
    let Some(v) = args.get(slot)? else { return Ok(Some(default)) };
    if nullish(&v) {
        return Ok(None);
    }
    let Some(n) = integral(&v) else {
        return Err(QueryError::new(
            ErrorCode::Location40515,
            format!("'{name}' must evaluate to an integer, found {} with value {}", type_of(&v), shown(&v)),
        ));
    };
    if bounded && !(-PART_BOUND - 1..=PART_BOUND).contains(&n) {
        return Err(QueryError::new(
            ErrorCode::Location31034,
            format!("'{name}' must evaluate to a value in the range [-32768, 32767]; value {n} is not in range"),
        ));
    }
    Ok(Some(n))
}

/// `$dateFromParts`: parts out of their usual range carry into the next larger one
/// (month 14 is February of the next year, minute -1 the last minute of the previous hour),
/// the result read as a wall-clock time in the zone.
pub(super) fn from_parts(args: &mut Args<'_>, iso: bool) -> Result<Value, QueryError> {
    let null = Ok(Some(Bson::Null));
    let (Some(hour), Some(minute), Some(second), Some(ms)) = (
        part(args, 3, "hour", 0, true)?,
        part(args, 4, "minute", 0, true)?,
        part(args, 5, "second", 0, false)?,
        part(args, 6, "millisecond", 0, false)?,
    ) else {
        return null;
    };
    let Some(zone) = args.zone(7)? else { return null };
    let days = if iso {
        let (Some(year), Some(week), Some(dow)) = (
            part(args, 0, "isoWeekYear", 1970, false)?,
            part(args, 1, "isoWeek", 1, true)?,
            part(args, 2, "isoDayOfWeek", 1, true)?,
        ) else {
            return null;
        };
        if !(1..=9999).contains(&year) {
            return Err(QueryError::new(
                ErrorCode::Location31095,
                format!("'isoWeekYear' must evaluate to an integer in the range 1 to 9999, found {year}"),
            ));
        }
        iso_week_one_monday(year) + (week - 1) * 7 + (dow - 1)
    } else {
        let (Some(year), Some(month), Some(day)) =
            (part(args, 0, "year", 1970, false)?, part(args, 1, "month", 1, true)?, part(args, 2, "day", 1, true)?)
        else {
            return null;
        };
        if !(1..=9999).contains(&year) {
            return Err(QueryError::new(
                ErrorCode::Location40523,
                format!("'year' must evaluate to an integer in the range 1 to 9999, found {year}"),
            ));
        }
        let months = year * 12 + month - 1;
        days_from_civil(months.div_euclid(12), months.rem_euclid(12) + 1, 1) + day - 1
    };
    // Seconds and milliseconds are unbounded: the sum is taken in i128 and must land in range.
    let local = i128::from(days) * i128::from(DAY_MS)
        + i128::from(hour) * i128::from(HOUR_MS)
        + i128::from(minute) * i128::from(MINUTE_MS)
        + i128::from(second) * i128::from(SECOND_MS)
        + i128::from(ms);
    let local = i64::try_from(local)
        .map_err(|_| QueryError::new(ErrorCode::Overflow, "date overflow in $dateFromParts".to_owned()))?;
    Ok(date_value(zone.local_to_utc(local)))
}
