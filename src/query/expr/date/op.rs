//! What a parsed date expression is: the operator and the argument slots it spelled. Kept
//! apart from the parsing and evaluation, which need the expression tree that holds these.

/// Which date expression a node is, and which of its argument slots were given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateOp {
    pub(super) kind: DateKind,
    /// Bit `i` is set when slot `i` was spelled in the expression.
    pub(super) given: u16,
}

/// The date expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateKind {
    /// `$year` ... `$isoDayOfWeek`: slots `date, timezone`.
    Part(Part),
    /// `$dateToString`: `date, format, timezone, onNull`.
    ToString,
    /// `$dateFromString`: `dateString, format, timezone, onError, onNull`.
    FromString,
    /// `$dateToParts`: `date, timezone, iso8601`.
    ToParts,
    /// `$dateFromParts` with `year`: `year, month, day, hour, minute, second, millisecond, timezone`.
    FromParts,
    /// `$dateFromParts` with `isoWeekYear`: `isoWeekYear, isoWeek, isoDayOfWeek, hour, minute,
    /// second, millisecond, timezone`.
    FromIsoParts,
    /// `$dateTrunc`: `date, unit, binSize, timezone, startOfWeek`.
    Trunc,
    /// `$dateAdd`: `startDate, unit, amount, timezone`.
    Add,
    /// `$dateSubtract`: as `$dateAdd`.
    Subtract,
    /// `$dateDiff`: `startDate, endDate, unit, timezone, startOfWeek`.
    Diff,
}

impl DateKind {
    /// The argument names, in slot order.
    pub(super) fn slots(self) -> &'static [&'static str] {
        match self {
            Self::Part(_) => &["date", "timezone"],
            Self::ToString => &["date", "format", "timezone", "onNull"],
            Self::FromString => &["dateString", "format", "timezone", "onError", "onNull"],
            Self::ToParts => &["date", "timezone", "iso8601"],
            Self::FromParts => &["year", "month", "day", "hour", "minute", "second", "millisecond", "timezone"],
            Self::FromIsoParts => {
                &["isoWeekYear", "isoWeek", "isoDayOfWeek", "hour", "minute", "second", "millisecond", "timezone"]
            }
            Self::Trunc => &["date", "unit", "binSize", "timezone", "startOfWeek"],
            Self::Add | Self::Subtract => &["startDate", "unit", "amount", "timezone"],
            Self::Diff => &["startDate", "endDate", "unit", "timezone", "startOfWeek"],
        }
    }
}

/// The single-part operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `$year`.
    Year,
    /// `$month`: 1 to 12.
    Month,
    /// `$dayOfMonth`: 1 to 31.
    DayOfMonth,
    /// `$dayOfWeek`: 1 (Sunday) to 7 (Saturday).
    DayOfWeek,
    /// `$dayOfYear`: 1 to 366.
    DayOfYear,
    /// `$hour`.
    Hour,
    /// `$minute`.
    Minute,
    /// `$second`: 0 to 59 (a BSON date has no leap seconds).
    Second,
    /// `$millisecond`.
    Millisecond,
    /// `$week`: 0 to 53, weeks starting on Sunday.
    Week,
    /// `$isoWeek`: 1 to 53.
    IsoWeek,
    /// `$isoWeekYear`.
    IsoWeekYear,
    /// `$isoDayOfWeek`: 1 (Monday) to 7 (Sunday).
    IsoDayOfWeek,
}

impl Part {
    pub(super) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "$year" => Self::Year,
            "$month" => Self::Month,
            "$dayOfMonth" => Self::DayOfMonth,
            "$dayOfWeek" => Self::DayOfWeek,
            "$dayOfYear" => Self::DayOfYear,
            "$hour" => Self::Hour,
            "$minute" => Self::Minute,
            "$second" => Self::Second,
            "$millisecond" => Self::Millisecond,
            "$week" => Self::Week,
            "$isoWeek" => Self::IsoWeek,
            "$isoWeekYear" => Self::IsoWeekYear,
            "$isoDayOfWeek" => Self::IsoDayOfWeek,
            _ => return None,
        })
    }
}
