//! When the server takes its own backups and which it keeps (issue 19, point 4):
//! `--backupSchedule` (an interval such as `6h`, or a cron expression evaluated in UTC),
//! `--backupRetention` (a count, an age, or both) and `--backupPath` (the directory, or the
//! `s3://` prefix, that holds them, one `backup-<UTC time>` directory or prefix per backup).
//! [`crate::backup::scheduler`] runs it.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

pub use super::location::BackupPath;

/// The prefix of a scheduled backup's directory name; the rest is its UTC time.
const NAME_PREFIX: &str = "backup-";
/// The time in a scheduled backup's directory name: fixed width, so names sort as times do.
const NAME_TIME_FORMAT: &str = "%Y%m%dT%H%M%S%.3fZ";

/// When backups are due.
#[derive(Debug, Clone, PartialEq)]
pub enum BackupSchedule {
    /// One backup every so often, counted from the newest one (so a restart neither skips
    /// nor repeats one).
    Every(Duration),
    /// At the times a cron expression names, in UTC.
    Cron(Box<croner::Cron>),
}

impl BackupSchedule {
    /// Parses an interval (`90s`, `30m`, `6h`, `1d`, `1w`) or a cron expression (five fields,
    /// or six with seconds first; `@daily` and the other nicknames).
    ///
    /// # Errors
    /// What is wrong with `text`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(interval) = parse_duration(text) {
            let interval = interval?;
            if interval < Duration::from_secs(1) {
                return Err(format!("'{text}' is shorter than one second"));
            }
            return Ok(Self::Every(interval));
        }
        croner::Cron::from_str(text)
            .map(|cron| Self::Cron(Box::new(cron)))
            .map_err(|e| format!("'{text}' is neither an interval (such as 6h) nor a cron expression: {e}"))
    }

    /// When the next backup is due, at `now` with the newest complete backup taken at
    /// `newest`: for an interval, one interval after the newest (at once when that has
    /// passed, or when there is none); for a cron expression, its next time after `now`.
    pub fn next_due(&self, now: SystemTime, newest: Option<SystemTime>) -> SystemTime {
        match self {
            Self::Every(interval) => newest.and_then(|t| t.checked_add(*interval)).map_or(now, |due| due.max(now)),
            Self::Cron(cron) => cron
                .find_next_occurrence(&DateTime::<Utc>::from(now), false)
                .map_or(SystemTime::UNIX_EPOCH + Duration::MAX / 2, SystemTime::from),
        }
    }
}

/// Which scheduled backups are kept once a new one is complete.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many (the newest).
    pub count: Option<usize>,
    /// Remove those older than this.
    pub max_age: Option<Duration>,
}

impl Retention {
    /// Parses `7` (a count), `14d` (an age: `s`, `m`, `h`, `d`, `w`) or both, comma-separated
    /// (`7,14d`: a backup goes when either says so).
    ///
    /// # Errors
    /// What is wrong with `text`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut retention = Self::default();
        for term in text.split(',').map(str::trim) {
            if let Ok(count) = term.parse::<usize>() {
                if count == 0 {
                    return Err("a count of 0 would remove every backup".to_owned());
                }
                if retention.count.replace(count).is_some() {
                    return Err(format!("'{text}' gives two counts"));
                }
            } else if let Some(age) = parse_duration(term) {
                if retention.max_age.replace(age?).is_some() {
                    return Err(format!("'{text}' gives two ages"));
                }
            } else {
                return Err(format!("'{term}' is neither a count (7) nor an age (14d)"));
            }
        }
        Ok(retention)
    }

    /// Of `backups` (any order), those to remove at `now`. The newest is always kept.
    pub fn expired<'a>(&self, backups: &'a [StoredBackup], now: SystemTime) -> Vec<&'a StoredBackup> {
        let mut newest_first: Vec<&StoredBackup> = backups.iter().collect();
        newest_first.sort_by_key(|backup| std::cmp::Reverse(backup.taken_at));
        newest_first
            .into_iter()
            .enumerate()
            .skip(1)
            .filter(|(rank, backup)| {
                self.count.is_some_and(|count| *rank >= count)
                    || self.max_age.is_some_and(|age| now.duration_since(backup.taken_at).is_ok_and(|old| old > age))
            })
            .map(|(_, backup)| backup)
            .collect()
    }
}

/// `--backupSchedule`, `--backupRetention` and `--backupPath` together, as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleConfig {
    /// Where the scheduled backups go.
    pub path: BackupPath,
    /// When they are due.
    pub schedule: BackupSchedule,
    /// The schedule as given (for `getCmdLineOpts` and the log).
    pub schedule_text: String,
    /// Which are kept (`None`: all).
    pub retention: Option<Retention>,
    /// The retention as given.
    pub retention_text: Option<String>,
    /// How often the oplog's new entries are archived (`--backupOplogInterval`), in
    /// replica-set mode.
    pub oplog_interval: Duration,
    /// The interval as given, when it was.
    pub oplog_interval_text: Option<String>,
}

/// The oplog archive's interval when none is given: the most a point-in-time restore can
/// lose of what the server acknowledged before its disk was lost.
pub const DEFAULT_OPLOG_INTERVAL: Duration = Duration::from_secs(10);

/// Parses `--backupOplogInterval`: a duration (10s, 5m, 1h), not zero.
///
/// # Errors
/// A message for anything else.
pub fn parse_oplog_interval(text: &str) -> Result<Duration, String> {
    match parse_duration(text) {
        Some(Ok(interval)) if !interval.is_zero() => Ok(interval),
        Some(Err(error)) => Err(error),
        _ => Err(format!("'{text}' is not an interval such as 10s, 5m or 1h")),
    }
}

/// A complete scheduled backup found in the backup path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBackup {
    /// Its name in the backup path.
    pub name: String,
    /// When it was taken (from its name).
    pub taken_at: SystemTime,
}

/// The directory name of a scheduled backup taken at `at`.
pub fn backup_name(at: SystemTime) -> String {
    format!("{NAME_PREFIX}{}", DateTime::<Utc>::from(at).format(NAME_TIME_FORMAT))
}

/// When the scheduled backup named `name` was taken; `None` for any other name (a
/// `.partial` directory, an operator's own files).
pub fn taken_at(name: &str) -> Option<SystemTime> {
    let time = name.strip_prefix(NAME_PREFIX)?;
    let parsed = chrono::NaiveDateTime::parse_from_str(time, NAME_TIME_FORMAT).ok()?;
    Some(SystemTime::from(parsed.and_utc()))
}

/// `Some` duration when `text` looks like one (digits then a unit letter), with its error
/// when the number does not fit.
fn parse_duration(text: &str) -> Option<Result<Duration, String>> {
    let unit_at = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(unit_at);
    let seconds_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    if number.is_empty() {
        return None;
    }
    Some(
        number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(seconds_per))
            .map(Duration::from_secs)
            .ok_or_else(|| format!("'{text}' is too long")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn schedule_intervals_count_from_the_newest_backup() {
        let every = BackupSchedule::parse("6h").expect("interval");
        assert_eq!(every, BackupSchedule::Every(Duration::from_secs(6 * 3600)));
        let now = at(100_000);
        assert_eq!(every.next_due(now, None), now);
        assert_eq!(every.next_due(now, Some(at(99_000))), at(99_000 + 6 * 3600));
        assert_eq!(every.next_due(now, Some(at(10))), now);
        assert!(BackupSchedule::parse("0s").is_err());
        assert_eq!(parse_oplog_interval("30s"), Ok(Duration::from_secs(30)));
        assert!(parse_oplog_interval("0s").is_err() && parse_oplog_interval("often").is_err());
        assert!(BackupSchedule::parse("99999999999999999999w").is_err());
    }

    #[test]
    fn schedule_cron_expressions_are_evaluated_in_utc() {
        let daily = BackupSchedule::parse("30 3 * * *").expect("cron");
        // 2026-12-05T09:00:00Z; the next 03:30 UTC is the next day's.
        let now = at(1_796_461_200);
        assert_eq!(daily.next_due(now, None), at(1_796_461_200 + 18 * 3600 + 30 * 60));
        assert!(matches!(BackupSchedule::parse("@hourly"), Ok(BackupSchedule::Cron(_))));
        let bad = BackupSchedule::parse("61 * * * *");
        assert!(bad.as_ref().is_err_and(|e| e.contains("neither an interval")), "{bad:?}");
    }

    #[test]
    fn schedule_retention_keeps_the_newest_by_count_and_age() {
        let backups: Vec<StoredBackup> =
            [10, 40, 20, 30].iter().map(|&s| StoredBackup { name: s.to_string(), taken_at: at(s) }).collect();
        let names = |expired: Vec<&StoredBackup>| expired.iter().map(|b| b.name.clone()).collect::<Vec<_>>();
        let by_count = Retention::parse("2").expect("count");
        assert_eq!(names(by_count.expired(&backups, at(50))), ["20", "10"]);
        let by_age = Retention::parse("15s").expect("age");
        assert_eq!(names(by_age.expired(&backups, at(50))), ["30", "20", "10"]);
        // Never the newest, however old.
        assert_eq!(names(by_age.expired(&backups, at(5_000))), ["30", "20", "10"]);
        let both = Retention::parse("3, 25s").expect("both");
        assert_eq!(both, Retention { count: Some(3), max_age: Some(Duration::from_secs(25)) });
        assert_eq!(names(both.expired(&backups, at(50))), ["20", "10"]);
        for bad in ["0", "x", "1,2", "1d,2d", ""] {
            assert!(Retention::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn schedule_names_carry_their_time_and_sort_by_it() {
        let when = at(1_796_461_200) + Duration::from_millis(7);
        let name = backup_name(when);
        assert_eq!(name, "backup-20261205T090000.007Z");
        assert_eq!(taken_at(&name), Some(when));
        assert!(backup_name(when) < backup_name(when + Duration::from_secs(1)));
        assert_eq!(taken_at("backup-20261205T090000.007Z.partial"), None);
        assert_eq!(taken_at("other"), None);
    }
}
