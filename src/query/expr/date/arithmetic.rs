//! `$dateAdd`, `$dateSubtract`, `$dateTrunc` and `$dateDiff`: their arguments checked as
//! mongod's `exec/expression` does, in its order, then handed to [`super::units`].

use bson::Bson;

use super::units::{self, StartOfWeek, TimeUnit};
use super::{Args, Zone, date_value, integral, nullish, shown};
use crate::error::ErrorCode;
use crate::query::error::QueryError;
use crate::query::expr::value::{Value, type_of};
use crate::query::render;

/// The `unit` slot (mongod's `parseTimeUnit` for expression `op`); `None` when nullish.
///
/// # Errors
/// 5439013 for a value other than a string; 9 FailedToParse for an unknown name.
fn unit(args: &mut Args<'_>, slot: usize, op: &str) -> Result<Option<TimeUnit>, QueryError> {
    let Some(v) = args.present(slot)? else { return Ok(None) };
    let Bson::String(name) = v else {
        return Err(QueryError::new(
            ErrorCode::Location5439013,
            format!("{op} requires 'unit' to be a string, but got {}", type_of(&Some(v))),
        ));
    };
    TimeUnit::parse(&name).map(Some).map_err(|e| {
        QueryError::new(e.code(), format!("{op} parameter 'unit' value parsing failed :: caused by :: {}", e.message()))
    })
}

/// The `startOfWeek` slot; Sunday when not spelled, `None` when nullish.
fn start_of_week(args: &mut Args<'_>, slot: usize, op: &str) -> Result<Option<StartOfWeek>, QueryError> {
    match args.get(slot)? {
        None => Ok(Some(StartOfWeek::SUNDAY)),
        Some(v) if nullish(&v) => Ok(None),
        Some(Some(Bson::String(name))) => StartOfWeek::parse(&name).map(Some).ok_or_else(|| {
            QueryError::new(
                ErrorCode::Location5439016,
                format!("{op} parameter 'startOfWeek' value cannot be recognized as a day of a week: {name}"),
            )
        }),
        Some(v) => Err(QueryError::new(
            ErrorCode::Location5439015,
            format!("{op} requires 'startOfWeek' to be a string, but got {}", type_of(&v)),
        )),
    }
}

/// The zone of slot `slot`, its errors prefixed as `$dateDiff` and `$dateTrunc` do.
fn zone_in_context(args: &mut Args<'_>, slot: usize, op: &str) -> Result<Option<Zone>, QueryError> {
    args.zone(slot).map_err(|e| {
        QueryError::new(
            e.code(),
            format!("{op} parameter 'timezone' value parsing failed :: caused by :: {}", e.message()),
        )
    })
}

/// The `startOfWeek` (read only for weeks) and `timezone` slots of `$dateTrunc` and
/// `$dateDiff`, in mongod's order; `None` when either is nullish.
fn week_and_zone(args: &mut Args<'_>, unit: TimeUnit, op: &str) -> Result<Option<(StartOfWeek, Zone)>, QueryError> {
    let sow = if unit == TimeUnit::Week { start_of_week(args, 4, op)? } else { Some(StartOfWeek::SUNDAY) };
    let Some(sow) = sow else { return Ok(None) };
    Ok(zone_in_context(args, 3, op)?.map(|zone| (sow, zone)))
}

/// mongod's `convertDate` for `$dateDiff` and `$dateTrunc`.
fn date_param(v: &Bson, op: &str, name: &str) -> Result<i64, QueryError> {
    super::coerce_to_date(v).ok_or_else(|| {
        let found = render::type_name(v.element_type());
        QueryError::new(ErrorCode::Location5166307, format!("{op} requires '{name}' to be a date, but got {found}"))
    })
}

/// `$dateAdd` (`negate` false) and `$dateSubtract`.
pub(super) fn date_add(args: &mut Args<'_>, negate: bool) -> Result<Value, QueryError> {
    let op = if negate { "$dateSubtract" } else { "$dateAdd" };
    let null = Ok(Some(Bson::Null));
    let Some(start) = args.present(0)? else { return null };
    let Some(unit) = unit(args, 1, op)? else { return null };
    let Some(amount) = args.present(2)? else { return null };
    let Some(zone) = args.zone(3)? else { return null };
    let Some(start) = super::coerce_to_date(&start) else {
        return Err(QueryError::new(
            ErrorCode::Location5166403,
            format!("{op} requires startDate to be convertible to a date"),
        ));
    };
    let Some(mut amount) = integral(&Some(amount)) else {
        return Err(QueryError::new(ErrorCode::Location5166405, format!("{op} expects integer amount of time units")));
    };
    if negate {
        amount = amount.checked_neg().ok_or_else(|| {
            QueryError::new(
                ErrorCode::Location6045000,
                format!("invalid $dateSubtract 'amount' parameter value: {amount}"),
            )
        })?;
    }
    Ok(date_value(units::add(start, unit, amount, &zone)?))
}

/// `$dateTrunc`.
pub(super) fn date_trunc(args: &mut Args<'_>) -> Result<Value, QueryError> {
    const OP: &str = "$dateTrunc";
    let null = Ok(Some(Bson::Null));
    let Some(date) = args.present(0)? else { return null };
    let bin_size = match args.get(2)? {
        None => 1,
        Some(v) if nullish(&v) => return null,
        Some(v) => {
            let Some(n) = integral(&v) else {
                let shown = shown(&v);
                return Err(QueryError::new(
                    ErrorCode::Location5439017,
                    format!(
                        "{OP} requires 'binSize' to be a 64-bit integer, but got value '{shown}' of type {}",
                        type_of(&v)
                    ),
                ));
            };
            u64::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
                QueryError::new(
                    ErrorCode::Location5439018,
                    format!("{OP} requires 'binSize' to be greater than 0, but got value {n}"),
                )
            })?
        }
    };
    let Some(unit) = unit(args, 1, OP)? else { return null };
    let Some((sow, zone)) = week_and_zone(args, unit, OP)? else { return null };
    let date = date_param(&date, OP, "date")?;
    Ok(date_value(units::truncate(date, unit, bin_size, &zone, sow)?))
}

/// `$dateDiff`: a long.
pub(super) fn date_diff(args: &mut Args<'_>) -> Result<Value, QueryError> {
    const OP: &str = "$dateDiff";
    let null = Ok(Some(Bson::Null));
    let Some(start) = args.present(0)? else { return null };
    let Some(end) = args.present(1)? else { return null };
    let Some(unit) = unit(args, 2, OP)? else { return null };
    let Some((sow, zone)) = week_and_zone(args, unit, OP)? else { return null };
    let start = date_param(&start, OP, "startDate")?;
    let end = date_param(&end, OP, "endDate")?;
    Ok(Some(Bson::Int64(units::diff(start, end, unit, &zone, sow)?)))
}
