//! Calendar arithmetic in a time zone: adding units to a date (`$dateAdd`), truncating a
//! date to a unit (`$dateTrunc`) and counting the unit boundaries between two dates
//! (`$dateDiff`), as mongod's `date_time_support` does.

use super::civil::{Civil, DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS, days_from_civil, days_in_month};
use super::tz::Zone;
use crate::error::ErrorCode;
use crate::query::error::QueryError;

/// A unit of time of the date expressions (and of `$setWindowFields`/`$densify` ranges).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeUnit {
    /// A calendar year.
    Year,
    /// Three calendar months, quarters starting in January, April, July and October.
    Quarter,
    /// A calendar month.
    Month,
    /// Seven days, starting on the `startOfWeek` day.
    Week,
    /// A calendar day (23 or 25 hours across a daylight-saving change).
    Day,
    /// 3,600,000 ms.
    Hour,
    /// 60,000 ms.
    Minute,
    /// 1,000 ms.
    Second,
    /// 1 ms.
    Millisecond,
}

impl TimeUnit {
    /// mongod's `parseTimeUnit`: the unit's lower-case singular name.
    ///
    /// # Errors
    /// 9 FailedToParse for another string.
    pub(crate) fn parse(name: &str) -> Result<Self, QueryError> {
        Ok(match name {
            "year" => Self::Year,
            "quarter" => Self::Quarter,
            "month" => Self::Month,
            "week" => Self::Week,
            "day" => Self::Day,
            "hour" => Self::Hour,
            "minute" => Self::Minute,
            "second" => Self::Second,
            "millisecond" => Self::Millisecond,
            _ => return Err(QueryError::failed_to_parse(format!("unknown time unit value: {name}"))),
        })
    }

    /// The fixed length of the units that have one.
    fn fixed_ms(self) -> Option<i64> {
        match self {
            Self::Hour => Some(HOUR_MS),
            Self::Minute => Some(MINUTE_MS),
            Self::Second => Some(SECOND_MS),
            Self::Millisecond => Some(1),
            Self::Year | Self::Quarter | Self::Month | Self::Week | Self::Day => None,
        }
    }

    /// The number of months of the units counted in months.
    fn months(self) -> Option<i64> {
        match self {
            Self::Year => Some(12),
            Self::Quarter => Some(3),
            Self::Month => Some(1),
            _ => None,
        }
    }
}

/// The first day of a week, 0 (Sunday) to 6 (Saturday).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StartOfWeek(pub(super) i64);

impl StartOfWeek {
    /// mongod's default, Sunday.
    pub(crate) const SUNDAY: Self = Self(0);

    /// A day's full English name or its three-letter abbreviation, in any case.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        const DAYS: [&str; 7] = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
        let lower = name.to_ascii_lowercase();
        DAYS.iter()
            .position(|d| *d == lower || d.get(..3) == Some(lower.as_str()))
            .and_then(|i| i64::try_from(i).ok())
            .map(Self)
    }
}

fn overflow(op: &str) -> QueryError {
    let code = if op == "dateDiff" { ErrorCode::Location5166308 } else { ErrorCode::Location5166406 };
    QueryError::new(code, format!("{op} overflowed"))
}

/// `date` plus `amount` units in `zone`: fixed-length units add their length; days and
/// weeks move the wall clock and keep its time of day; months, quarters and years also keep
/// the day of the month, down to the last day of a shorter month (Jan 31 + 1 month = Feb 28).
///
/// # Errors
/// 5976500 for an amount far outside the range of a date, 5166406 when the result is outside it.
pub(crate) fn add(date: i64, unit: TimeUnit, amount: i64, zone: &Zone) -> Result<i64, QueryError> {
    let err = || overflow("dateAdd");
    if unit != TimeUnit::Millisecond && !amount_in_range(amount, unit) {
        let name = format!("{unit:?}").to_ascii_lowercase();
        return Err(QueryError::new(
            ErrorCode::Location5976500,
            format!("invalid dateAdd 'amount' parameter value: {amount} {name}"),
        ));
    }
    if let Some(len) = unit.fixed_ms() {
        return amount.checked_mul(len).and_then(|d| date.checked_add(d)).ok_or_else(err);
    }
    let local = zone.to_local(date);
    let c = Civil::from_local_ms(local);
    let new_local = if let Some(months) = unit.months() {
        let total =
            amount.checked_mul(months).and_then(|m| (c.year * 12 + c.month - 1).checked_add(m)).ok_or_else(err)?;
        let (year, month) = (total.div_euclid(12), total.rem_euclid(12) + 1);
        let day = c.day.min(days_in_month(year, month));
        days_from_civil(year, month, day).checked_mul(DAY_MS).and_then(|d| d.checked_add(c.time_of_day_ms()))
    } else {
        let days = if unit == TimeUnit::Week { amount.checked_mul(7) } else { Some(amount) };
        days.and_then(|d| d.checked_mul(DAY_MS)).and_then(|d| local.checked_add(d))
    };
    let new_local = new_local.ok_or_else(err)?;
    // The year bound keeps the calendar arithmetic above well inside i64.
    if !(-MAX_DATE_MS..=MAX_DATE_MS).contains(&new_local) {
        return Err(err());
    }
    Ok(zone.local_to_utc(new_local))
}

/// mongod's `isDateAddAmountValid`: the amount of `unit`s roughly fits the range of a date (the
/// days in 2^64 milliseconds, and the years, weeks, hours, ... in as many days).
fn amount_in_range(amount: i64, unit: TimeUnit) -> bool {
    const MAX_DAYS: i64 = (u64::MAX / 86_400_000 + 1) as i64;
    const MAX_YEARS: i64 = MAX_DAYS / 365 + 1;
    let max = match unit {
        TimeUnit::Year => MAX_YEARS,
        TimeUnit::Quarter => MAX_YEARS * 4,
        TimeUnit::Month => MAX_YEARS * 12,
        TimeUnit::Week => MAX_DAYS / 7,
        TimeUnit::Day => MAX_DAYS,
        TimeUnit::Hour => MAX_DAYS * 24,
        TimeUnit::Minute => MAX_DAYS * 24 * 60,
        TimeUnit::Second | TimeUnit::Millisecond => MAX_DAYS * 24 * 60 * 60,
    };
    -max < amount && amount < max
}

/// Dates further than this from the epoch (about 290 million years) overflow date arithmetic.
const MAX_DATE_MS: i64 = i64::MAX / 1024;

/// 2000-01-01, the reference point mongod aligns bins to, in days since 1970-01-01.
const REFERENCE_DAY: i64 = 10_957;

/// The start of the bin of `bin_size` units holding `date` in `zone`, bins counted from
/// 2000-01-01T00:00 in that zone (weeks from the first `start_of_week` day on or after it).
///
/// # Errors
/// 5166406 when a bin bound falls outside the range of a date.
pub(crate) fn truncate(
    date: i64,
    unit: TimeUnit,
    bin_size: u64,
    zone: &Zone,
    start_of_week: StartOfWeek,
) -> Result<i64, QueryError> {
    let bin = i64::try_from(bin_size).unwrap_or(i64::MAX);
    if let Some(len) = unit.fixed_ms() {
        // Bins of a fixed length counted from 2000-01-01T00:00 in the zone, taken with the
        // zone's offset then (mongod's `defaultReferencePointForDateTrunc`), so an offset change
        // since does not move them.
        let Some(width) = len.checked_mul(bin) else { return Ok(date) };
        let reference_utc = REFERENCE_DAY * DAY_MS;
        let reference = reference_utc - zone.offset_seconds(reference_utc) * 1000;
        let into = (i128::from(date) - i128::from(reference)).rem_euclid(i128::from(width));
        return i64::try_from(i128::from(date) - into).map_err(|_| overflow("dateTrunc"));
    }
    let c = Civil::from_local_ms(zone.to_local(date));
    let floor_to_bin = |n: i64| n.div_euclid(bin).saturating_mul(bin);
    let start_days = match unit {
        TimeUnit::Day => REFERENCE_DAY.saturating_add(floor_to_bin(c.days - REFERENCE_DAY)),
        TimeUnit::Week => {
            let first = week_reference(start_of_week);
            first.saturating_add(floor_to_bin((c.days - first).div_euclid(7)).saturating_mul(7))
        }
        _ => {
            let per = unit.months().unwrap_or(1);
            let index = ((c.year - 2000) * 12 + c.month - 1).div_euclid(per);
            let months = floor_to_bin(index).saturating_mul(per);
            let (year, month) = (2000i64.saturating_add(months.div_euclid(12)), months.rem_euclid(12) + 1);
            days_from_civil(year, month, 1)
        }
    };
    let start_local =
        start_days.checked_mul(DAY_MS).filter(|v| v.abs() <= MAX_DATE_MS).ok_or_else(|| overflow("dateTrunc"))?;
    Ok(zone.local_to_utc(start_local))
}

/// The first `start_of_week` day on or after 2000-01-01 (a Saturday).
fn week_reference(start_of_week: StartOfWeek) -> i64 {
    REFERENCE_DAY + (start_of_week.0 - super::civil::weekday(REFERENCE_DAY)).rem_euclid(7)
}

/// The number of `unit` boundaries crossed from `start` to `end` in `zone` (negative when
/// `end` is earlier), on the zone's wall clock.
///
/// # Errors
/// 5166308 when the milliseconds between the dates do not fit a long.
pub(crate) fn diff(
    start: i64,
    end: i64,
    unit: TimeUnit,
    zone: &Zone,
    start_of_week: StartOfWeek,
) -> Result<i64, QueryError> {
    if unit == TimeUnit::Millisecond {
        return end.checked_sub(start).ok_or_else(|| overflow("dateDiff"));
    }
    let (a, b) = (Civil::from_local_ms(zone.to_local(start)), Civil::from_local_ms(zone.to_local(end)));
    // mongod's `dateDiffHour`: the wall-clock hours, corrected by the whole hours the offset
    // changed (so a daylight-saving change is not an hour passed); minutes and seconds build on
    // it with the wall clock's minutes and seconds.
    let hours =
        || (b.days - a.days) * 24 + (b.hour - a.hour) + (zone.offset_seconds(start) - zone.offset_seconds(end)) / 3600;
    let minutes = || hours() * 60 + (b.minute - a.minute);
    Ok(match unit {
        TimeUnit::Hour => hours(),
        TimeUnit::Minute => minutes(),
        TimeUnit::Second => minutes() * 60 + (b.second - a.second),
        TimeUnit::Year => b.year - a.year,
        TimeUnit::Quarter => (b.year * 4 + (b.month - 1) / 3) - (a.year * 4 + (a.month - 1) / 3),
        TimeUnit::Month => (b.year * 12 + b.month) - (a.year * 12 + a.month),
        TimeUnit::Week => {
            let first = week_reference(start_of_week);
            (b.days - first).div_euclid(7) - (a.days - first).div_euclid(7)
        }
        _ => b.days - a.days,
    })
}
