//! Time zones as mongod takes them: an Olson name from the IANA database (embedded through
//! `jiff`) or a fixed UTC offset `±hh`, `±hhmm`, `±hh:mm`.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use crate::error::ErrorCode;
use crate::query::error::QueryError;

/// A time zone a date expression works in.
#[derive(Debug, Clone)]
pub(crate) enum Zone {
    /// UTC: no `timezone` argument, `"UTC"`, or a zero offset.
    Utc,
    /// A fixed offset east of UTC, in seconds.
    Fixed(i64),
    /// An IANA zone, with its daylight-saving rules.
    Named(TimeZone),
}

/// jiff's timestamp range, in milliseconds: offsets past it are those at its ends.
const JIFF_MIN_MS: i64 = -377_705_116_800_000;
const JIFF_MAX_MS: i64 = 253_402_207_199_999;

impl Zone {
    /// mongod's `TimeZoneDatabase::getTimeZone`: an exact Olson name, else a UTC offset.
    ///
    /// # Errors
    /// 40485 for anything else, with mongod's message.
    pub(crate) fn parse(name: &str) -> Result<Self, QueryError> {
        if name == "UTC" {
            return Ok(Self::Utc);
        }
        if let Some(offset) = parse_offset(name) {
            return Ok(if offset == 0 { Self::Utc } else { Self::Fixed(offset) });
        }
        // jiff looks names up without regard to case; mongod's table does not.
        if let Ok(tz) = TimeZone::get(name)
            && tz.iana_name() == Some(name)
        {
            return Ok(Self::Named(tz));
        }
        Err(QueryError::new(ErrorCode::Location40485, format!("unrecognized time zone identifier: \"{name}\"")))
    }

    /// Whether this is UTC itself, which `$dateToString`'s default format marks with `Z`.
    pub(super) fn is_utc(&self) -> bool {
        matches!(self, Self::Utc)
    }

    /// The offset from UTC at the instant `utc_ms`, in seconds.
    pub(super) fn offset_seconds(&self, utc_ms: i64) -> i64 {
        match self {
            Self::Utc => 0,
            Self::Fixed(s) => *s,
            Self::Named(tz) => {
                let clamped = utc_ms.clamp(JIFF_MIN_MS, JIFF_MAX_MS);
                Timestamp::from_millisecond(clamped).map_or(0, |ts| i64::from(tz.to_offset(ts).seconds()))
            }
        }
    }

    /// The wall-clock time at `utc_ms`, as milliseconds since 1970-01-01T00:00 of that clock.
    pub(super) fn to_local(&self, utc_ms: i64) -> i64 {
        utc_ms.saturating_add(self.offset_seconds(utc_ms) * 1000)
    }

    /// The instant a wall-clock time names. A time skipped by a daylight-saving change is
    /// read with the offset before it (so it lands after the change) and a repeated time is
    /// the earlier one, as timelib resolves them for mongod.
    pub(super) fn local_to_utc(&self, local_ms: i64) -> i64 {
        match self {
            Self::Utc => local_ms,
            Self::Fixed(s) => local_ms.saturating_sub(s * 1000),
            Self::Named(tz) => named_from_local(tz, local_ms).unwrap_or_else(|| {
                // Outside jiff's years: the offset there does not change.
                let guess = local_ms.saturating_sub(self.offset_seconds(local_ms) * 1000);
                local_ms.saturating_sub(self.offset_seconds(guess) * 1000)
            }),
        }
    }
}

fn named_from_local(tz: &TimeZone, local_ms: i64) -> Option<i64> {
    let days = local_ms.div_euclid(super::civil::DAY_MS);
    let in_day = local_ms.rem_euclid(super::civil::DAY_MS);
    let (y, mo, d) = super::civil::civil_from_days(days);
    let dt = DateTime::new(
        i16::try_from(y).ok()?,
        i8::try_from(mo).ok()?,
        i8::try_from(d).ok()?,
        i8::try_from(in_day / 3_600_000).ok()?,
        i8::try_from(in_day / 60_000 % 60).ok()?,
        i8::try_from(in_day / 1000 % 60).ok()?,
        i32::try_from(in_day % 1000 * 1_000_000).ok()?,
    )
    .ok()?;
    let ts = tz.to_ambiguous_timestamp(dt).compatible().ok()?;
    Some(ts.as_millisecond())
}

/// `±hh`, `±hhmm` or `±hh:mm` in seconds east of UTC.
fn parse_offset(s: &str) -> Option<i64> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, s.get(1..)?),
        b'-' => (-1, s.get(1..)?),
        _ => return None,
    };
    let digits = |t: &str| -> Option<i64> {
        if t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit()) { t.parse().ok() } else { None }
    };
    let (hours, minutes) = match rest.len() {
        2 => (digits(rest)?, 0),
        4 => (digits(rest.get(..2)?)?, digits(rest.get(2..)?)?),
        5 if rest.as_bytes().get(2) == Some(&b':') => (digits(rest.get(..2)?)?, digits(rest.get(3..)?)?),
        _ => return None,
    };
    Some(sign * (hours * 3600 + minutes * 60))
}
