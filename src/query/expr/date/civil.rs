//! The proleptic Gregorian calendar on milliseconds since the epoch, for any date a BSON date
//! can hold (mongod's timelib has no year limit either).

/// Milliseconds in a day, hour, minute and second.
pub(super) const DAY_MS: i64 = 86_400_000;
pub(super) const HOUR_MS: i64 = 3_600_000;
pub(super) const MINUTE_MS: i64 = 60_000;
pub(super) const SECOND_MS: i64 = 1_000;

/// A wall-clock time, split into its calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Civil {
    pub(super) year: i64,
    /// 1 to 12.
    pub(super) month: i64,
    /// 1 to 31.
    pub(super) day: i64,
    pub(super) hour: i64,
    pub(super) minute: i64,
    pub(super) second: i64,
    pub(super) millisecond: i64,
    /// Days since 1970-01-01 of this date.
    pub(super) days: i64,
}

impl Civil {
    /// Splits a wall-clock time given as milliseconds since 1970-01-01T00:00 of that clock.
    pub(super) fn from_local_ms(local: i64) -> Self {
        let days = local.div_euclid(DAY_MS);
        let in_day = local.rem_euclid(DAY_MS);
        let (year, month, day) = civil_from_days(days);
        Self {
            year,
            month,
            day,
            hour: in_day / HOUR_MS,
            minute: in_day % HOUR_MS / MINUTE_MS,
            second: in_day % MINUTE_MS / SECOND_MS,
            millisecond: in_day % SECOND_MS,
            days,
        }
    }

    /// The milliseconds since midnight.
    pub(super) fn time_of_day_ms(&self) -> i64 {
        self.hour * HOUR_MS + self.minute * MINUTE_MS + self.second * SECOND_MS + self.millisecond
    }

    /// 0 (Sunday) to 6 (Saturday).
    pub(super) fn weekday(&self) -> i64 {
        weekday(self.days)
    }

    /// 1 to 366.
    pub(super) fn day_of_year(&self) -> i64 {
        self.days - days_from_civil(self.year, 1, 1) + 1
    }

    /// mongod's `$week`: weeks start on Sunday, and the days before the year's first Sunday
    /// are week 0.
    pub(super) fn week(&self) -> i64 {
        (self.day_of_year() - 1 - self.weekday() + 7) / 7
    }

    /// 1 (Monday) to 7 (Sunday).
    pub(super) fn iso_day_of_week(&self) -> i64 {
        match self.weekday() {
            0 => 7,
            d => d,
        }
    }

    /// The ISO 8601 week-numbering year and week: the week (Monday to Sunday) belongs to the
    /// year its Thursday is in.
    pub(super) fn iso_year_and_week(&self) -> (i64, i64) {
        let thursday = self.days + 4 - self.iso_day_of_week();
        let (iso_year, _, _) = civil_from_days(thursday);
        (iso_year, (thursday - days_from_civil(iso_year, 1, 1)) / 7 + 1)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm); the
/// month may be any value 1 to 12, the day any value (it carries).
pub(super) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 + day - 1
}

/// The date of a day counted from 1970-01-01.
pub(in crate::query::expr) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// 0 (Sunday) to 6 (Saturday) of a day counted from 1970-01-01, a Thursday.
pub(super) fn weekday(days: i64) -> i64 {
    (days + 4).rem_euclid(7)
}

/// The number of days in a month.
pub(super) fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The Monday of ISO week 1 of `iso_year`: the week holding January 4th.
pub(super) fn iso_week_one_monday(iso_year: i64) -> i64 {
    let jan4 = days_from_civil(iso_year, 1, 4);
    let iso_dow = match weekday(jan4) {
        0 => 7,
        d => d,
    };
    jan4 - (iso_dow - 1)
}
