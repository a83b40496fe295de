//! `$dateFromString`: ISO 8601 and the common date forms mongod's timelib reads, or a `%`
//! format, with an offset or zone in the string or a `timezone` argument. Every failure to
//! read the string is 241 ConversionFailure, which `onError` catches.

use bson::Bson;

use super::civil::{DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS, days_from_civil, days_in_month, iso_week_one_monday};
use super::format::{MONTHS, format_arg};
use super::tz::Zone;
use super::{Args, date_value, nullish, shown};
use crate::error::ErrorCode;
use crate::query::error::QueryError;
use crate::query::expr::value::{Value, type_of};

/// The specifiers a `$dateFromString` format may use.
const FROM_STRING_SPECIFIERS: &str = "bBdGHjLmMSuVYzZ%";

/// `$dateFromString`: a nullish `dateString` answers `onNull` (null when not given), after
/// the format and zone are checked; a string that does not read answers `onError` when given.
pub(super) fn date_from_string(args: &mut Args<'_>) -> Result<Value, QueryError> {
    let input = args.get(0)?.flatten();
    let format = format_arg(args, "$dateFromString", ErrorCode::Location40684, FROM_STRING_SPECIFIERS)?;
    let zone = args.zone(2)?;
    let zone_given = args.given(2);
    if nullish(&input) {
        return Ok(args.get(4)?.unwrap_or(Some(Bson::Null)));
    }
    let result = match (&input, zone, format) {
        (Some(Bson::String(text)), Some(zone), Some(Some(format))) => {
            parse_with_format(text, &format, &zone, zone_given).map(date_value)
        }
        (Some(Bson::String(text)), Some(zone), None) => parse_free(text, &zone, zone_given).map(date_value),
        (Some(Bson::String(_)), _, _) => Ok(Some(Bson::Null)),
        _ => Err(QueryError::new(
            ErrorCode::ConversionFailure,
            format!(
                "$dateFromString requires that 'dateString' be a string, found: {} with value {}",
                type_of(&input),
                shown(&input)
            ),
        )),
    };
    match result {
        Err(e) if e.code() == ErrorCode::ConversionFailure && args.given(3) => Ok(args.get(3)?.flatten()),
        other => other,
    }
}

/// A date string read as `$dateFromString` without a format or zone reads it (what
/// `$convert` to a date does).
///
/// # Errors
/// 241 ConversionFailure when the string does not read as a date.
pub(crate) fn read_date(text: &str) -> Result<i64, QueryError> {
    parse_free(text, &Zone::Utc, false)
}

/// A zone written in the date string.
enum StringZone {
    Offset(i64),
    Named(Zone),
}

/// What a date string spelled: the wall-clock time and any zone.
#[derive(Default)]
struct Fields {
    year: Option<i64>,
    month: Option<i64>,
    day: Option<i64>,
    day_of_year: Option<i64>,
    iso_year: Option<i64>,
    iso_week: Option<i64>,
    iso_day: Option<i64>,
    hour: i64,
    minute: i64,
    second: i64,
    millisecond: i64,
    zone: Option<StringZone>,
}

fn failure(text: &str, pos: usize, reason: &str) -> QueryError {
    QueryError::new(ErrorCode::ConversionFailure, format!("Error parsing date string '{text}'; {pos}: {reason}"))
}

impl Fields {
    /// The instant: the string's own zone wins, and may not be combined with a `timezone`
    /// argument other than UTC.
    fn resolve(self, text: &str, zone: &Zone, zone_given: bool) -> Result<i64, QueryError> {
        let days = if let Some(iso_year) = self.iso_year {
            iso_week_one_monday(iso_year) + (self.iso_week.unwrap_or(1) - 1) * 7 + (self.iso_day.unwrap_or(1) - 1)
        } else {
            let year = self.year.ok_or_else(|| {
                failure(text, 0, "an incomplete date/time string has been found, with elements missing")
            })?;
            if let Some(doy) = self.day_of_year {
                days_from_civil(year, 1, 1) + doy - 1
            } else {
                let (month, day) = (self.month.unwrap_or(1), self.day.unwrap_or(1));
                if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
                    return Err(failure(text, 0, "The parsed date was invalid"));
                }
                days_from_civil(year, month, day)
            }
        };
        if self.hour > 24 || self.minute > 59 || self.second > 59 {
            return Err(failure(text, 0, "The parsed time was invalid"));
        }
        let local =
            days * DAY_MS + self.hour * HOUR_MS + self.minute * MINUTE_MS + self.second * SECOND_MS + self.millisecond;
        match self.zone {
            None => Ok(zone.local_to_utc(local)),
            Some(_) if zone_given && !zone.is_utc() => Err(QueryError::new(
                ErrorCode::ConversionFailure,
                "you cannot pass in a date/time string with time zone information together with a timezone argument",
            )),
            Some(StringZone::Offset(seconds)) => Ok(local - seconds * 1000),
            Some(StringZone::Named(z)) => Ok(z.local_to_utc(local)),
        }
    }
}

/// A cursor over the date string.
struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Between `min` and `max` ASCII digits.
    fn number(&mut self, min: usize, max: usize) -> Option<i64> {
        let len = self.rest().bytes().take(max).take_while(u8::is_ascii_digit).count();
        if len < min {
            return None;
        }
        let n = self.rest().get(..len)?.parse().ok()?;
        self.pos += len;
        Some(n)
    }

    /// Digits of a fraction of a second, as milliseconds (extra digits dropped).
    fn fraction_ms(&mut self) -> Option<i64> {
        let digits: String = self.rest().chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            return None;
        }
        self.pos += digits.len();
        let padded: String = digits.chars().chain("000".chars()).take(3).collect();
        padded.parse().ok()
    }

    /// The ASCII letters at the cursor (possibly none).
    fn word(&mut self) -> String {
        let word: String = self.rest().chars().take_while(char::is_ascii_alphabetic).collect();
        self.pos += word.len();
        word
    }

    /// A month name, full or in three letters, as its number 1-12; the cursor stays put when
    /// there is none.
    fn month_word(&mut self) -> Option<i64> {
        let start = self.pos;
        let word = self.word();
        let found = MONTHS.iter().position(|m| names_match(m, &word)).and_then(|i| i64::try_from(i).ok());
        if found.is_none() {
            self.pos = start;
        }
        found.map(|i| i + 1)
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    fn fail(&self, reason: &str) -> QueryError {
        failure(self.text, self.pos, reason)
    }

    /// `Z`, `UTC`/`GMT` (maybe followed by an offset), `±hh[[:]mm]` or an Olson name.
    fn zone(&mut self) -> Result<Option<StringZone>, QueryError> {
        let rest = self.rest();
        if rest.is_empty() {
            return Ok(None);
        }
        if rest == "Z" || rest == "z" {
            self.pos += 1;
            return Ok(Some(StringZone::Offset(0)));
        }
        for name in ["UTC", "GMT"] {
            if let Some(after) = rest.strip_prefix(name) {
                self.pos += name.len();
                if after.is_empty() {
                    return Ok(Some(StringZone::Offset(0)));
                }
                return self.offset().map(|o| Some(StringZone::Offset(o)));
            }
        }
        if rest.starts_with(['+', '-']) {
            return self.offset().map(|o| Some(StringZone::Offset(o)));
        }
        match Zone::parse(rest) {
            Ok(zone) => {
                self.pos = self.text.len();
                Ok(Some(StringZone::Named(zone)))
            }
            Err(_) => Err(self.fail("The timezone could not be found in the database")),
        }
    }

    /// `±hh`, `±hhmm` or `±hh:mm`, in seconds.
    fn offset(&mut self) -> Result<i64, QueryError> {
        let sign = match self.peek() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(self.fail("Unexpected character")),
        };
        self.pos += 1;
        let hours = self.number(2, 2).ok_or_else(|| self.fail("Unexpected character"))?;
        self.eat(b':');
        let minutes = self.number(2, 2).unwrap_or(0);
        Ok(sign * (hours * 3600 + minutes * 60))
    }
}

/// A date string without a format: a date (see [`free_date`]), then optionally `T` or spaces
/// and `hh:mm[:ss[.fff]]`, then optionally a zone.
fn parse_free(text: &str, zone: &Zone, zone_given: bool) -> Result<i64, QueryError> {
    let mut r = Reader { text, pos: 0 };
    let mut f = Fields::default();
    r.skip_spaces();
    free_date(&mut r, &mut f)?;
    let before_time = r.pos;
    if !r.eat(b'T') && !r.eat(b't') {
        r.skip_spaces();
    }
    if let Some(hour) = r.number(1, 2) {
        f.hour = hour;
        if !r.eat(b':') {
            return Err(r.fail("Unexpected character"));
        }
        f.minute = r.number(2, 2).ok_or_else(|| r.fail("Unexpected character"))?;
        if r.eat(b':') {
            f.second = r.number(2, 2).ok_or_else(|| r.fail("Unexpected character"))?;
            if r.eat(b'.') || r.eat(b',') {
                f.millisecond = r.fraction_ms().ok_or_else(|| r.fail("Unexpected character"))?;
            }
        }
        r.skip_spaces();
    } else if r.pos != before_time && r.rest().is_empty() {
        return Err(r.fail("Unexpected character"));
    }
    f.zone = r.zone()?;
    r.skip_spaces();
    if !r.rest().is_empty() {
        return Err(r.fail("Unexpected data found."));
    }
    f.resolve(text, zone, zone_given)
}

/// The date of a free-form string: `YYYY-MM-DD`, `YYYY/MM/DD`, `MM/DD/YYYY`, `Month D[,] YYYY`
/// or `D Month YYYY` (English month names, full or three letters, in any case), after an
/// optional weekday name (`Wed, ...`).
fn free_date(r: &mut Reader<'_>, f: &mut Fields) -> Result<(), QueryError> {
    let unexpected = |r: &Reader<'_>| r.fail("Unexpected character");
    let start = r.pos;
    let word = r.word();
    if !word.is_empty() && WEEKDAYS.iter().any(|d| names_match(d, &word)) {
        r.eat(b',');
        r.skip_spaces();
    } else {
        r.pos = start;
    }
    if let Some(month) = r.month_word() {
        r.skip_spaces();
        f.month = Some(month);
        f.day = Some(r.number(1, 2).ok_or_else(|| unexpected(r))?);
        r.eat(b',');
        r.skip_spaces();
        f.year = Some(r.number(4, 4).ok_or_else(|| unexpected(r))?);
        return Ok(());
    }
    let number_start = r.pos;
    let first = r.number(1, 4).ok_or_else(|| unexpected(r))?;
    let first_len = r.pos - number_start;
    let sep = r.peek();
    if sep == Some(b' ') {
        r.skip_spaces();
        let month = r.month_word().ok_or_else(|| unexpected(r))?;
        r.skip_spaces();
        (f.day, f.month) = (Some(first), Some(month));
        f.year = Some(r.number(4, 4).ok_or_else(|| unexpected(r))?);
    } else if first_len == 4 && (sep == Some(b'-') || sep == Some(b'/')) {
        let sep = sep.unwrap_or(b'-');
        r.pos += 1;
        f.year = Some(first);
        f.month = Some(r.number(1, 2).ok_or_else(|| unexpected(r))?);
        if !r.eat(sep) {
            return Err(r.fail("an incomplete date/time string has been found, with elements missing"));
        }
        f.day = Some(r.number(1, 2).ok_or_else(|| unexpected(r))?);
    } else if sep == Some(b'/') {
        r.pos += 1;
        f.month = Some(first);
        f.day = Some(r.number(1, 2).ok_or_else(|| unexpected(r))?);
        if !r.eat(b'/') {
            return Err(unexpected(r));
        }
        f.year = Some(r.number(4, 4).ok_or_else(|| unexpected(r))?);
    } else {
        return Err(unexpected(r));
    }
    Ok(())
}

/// The English weekday names a free-form date may start with.
const WEEKDAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/// Whether `word` is `name` or its three-letter abbreviation, in any case.
fn names_match(name: &str, word: &str) -> bool {
    word.eq_ignore_ascii_case(name) || (word.len() == 3 && name.get(..3).is_some_and(|a| a.eq_ignore_ascii_case(word)))
}

/// A date string read with a validated `%` format: literal characters must match exactly.
fn parse_with_format(text: &str, format: &str, zone: &Zone, zone_given: bool) -> Result<i64, QueryError> {
    let mut r = Reader { text, pos: 0 };
    let mut f = Fields::default();
    let mut spec = format.chars();
    while let Some(c) = spec.next() {
        if c != '%' {
            let mut buf = [0u8; 4];
            let lit = c.encode_utf8(&mut buf);
            if !r.rest().starts_with(&*lit) {
                return Err(r.fail("The format separator does not match"));
            }
            r.pos += lit.len();
            continue;
        }
        let Some(s) = spec.next() else { break };
        let missing = |r: &Reader<'_>, what: &str| r.fail(&format!("{what} could not be found"));
        match s {
            'Y' => f.year = Some(r.number(4, 4).ok_or_else(|| missing(&r, "A four digit year"))?),
            'G' => f.iso_year = Some(r.number(4, 4).ok_or_else(|| missing(&r, "A four digit ISO year"))?),
            'm' => f.month = Some(r.number(2, 2).ok_or_else(|| missing(&r, "A two digit month"))?),
            'd' => f.day = Some(r.number(2, 2).ok_or_else(|| missing(&r, "A two digit day"))?),
            'j' => f.day_of_year = Some(r.number(1, 3).ok_or_else(|| missing(&r, "A three digit day-of-year"))?),
            'V' => {
                let week = r.number(2, 2).filter(|w| (1..=53).contains(w));
                f.iso_week = Some(week.ok_or_else(|| missing(&r, "A two digit ISO week"))?);
            }
            'u' => {
                let day = r.number(1, 1).filter(|d| (1..=7).contains(d));
                f.iso_day = Some(day.ok_or_else(|| missing(&r, "A single digit day of week"))?);
            }
            'H' => f.hour = r.number(2, 2).ok_or_else(|| missing(&r, "A two digit hour"))?,
            'M' => f.minute = r.number(2, 2).ok_or_else(|| missing(&r, "A two digit minute"))?,
            'S' => f.second = r.number(2, 2).ok_or_else(|| missing(&r, "A two digit second"))?,
            'L' => f.millisecond = r.fraction_ms().ok_or_else(|| missing(&r, "A three digit millisecond"))?,
            'z' => {
                if r.eat(b'Z') {
                    f.zone = Some(StringZone::Offset(0));
                } else {
                    f.zone = Some(StringZone::Offset(r.offset()?));
                }
            }
            'Z' => {
                // `±mmm`: the sign is required.
                let sign = if r.eat(b'-') {
                    -1
                } else if r.eat(b'+') {
                    1
                } else {
                    return Err(missing(&r, "A sign of the minutes offset"));
                };
                let minutes = r.number(3, 3).ok_or_else(|| missing(&r, "A three digit minutes offset"))?;
                f.zone = Some(StringZone::Offset(sign * minutes * 60));
            }
            'b' | 'B' => {
                let rest = r.rest().to_ascii_lowercase();
                let found = MONTHS.iter().enumerate().find_map(|(i, name)| {
                    let name = name.to_ascii_lowercase();
                    let len = if s == 'b' { 3 } else { name.len() };
                    rest.starts_with(name.get(..len)?).then_some((i, len))
                });
                let (i, len) = found.ok_or_else(|| missing(&r, "A textual month"))?;
                f.month = i64::try_from(i).ok().map(|m| m + 1);
                r.pos += len;
            }
            _ => {
                if !r.eat(b'%') {
                    return Err(r.fail("The escaped character could not be found"));
                }
            }
        }
    }
    if !r.rest().is_empty() {
        return Err(r.fail("Trailing data"));
    }
    f.resolve(text, zone, zone_given)
}
