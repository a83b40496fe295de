//! `$setWindowFields`: for each document, values computed over a window of the documents of
//! its partition in `sortBy` order: accumulators over document or range windows, ranks,
//! `$shift`, gap filling (`$locf`, `$linearFill`), `$expMovingAvg`, `$derivative`, `$integral`.

use bson::{Bson, RawBson, RawBsonRef, RawDocument, RawDocumentBuf};

use super::{PipelineEnv, StageArgs, deferred, raw, set_path};
use crate::error::{Error, ErrorCode, Result};
use crate::query::agg::AccumulatorSpec;
use crate::query::expr::date::tz::Zone;
use crate::query::expr::date::units::{self, TimeUnit};
use crate::query::expr::{Expression, Variables};
use crate::query::number::Number;
use crate::query::{SortSpec, compare_collated, limits, render};
use crate::state::cursors::DocumentStream;

fn parse_error(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::FailedToParse, message)
}

fn invalid_bson(error: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::InvalidBSON, error.to_string())
}

/// A bound of a `documents` window: a position relative to the current document.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Bound {
    Unbounded,
    Current,
    Offset(i64),
}

/// A bound of a `range` window: a `sortBy` value relative to the current one.
#[derive(Debug, Clone, Copy, PartialEq)]
enum RangeBound {
    Unbounded,
    Current,
    Offset(f64),
}

/// Which documents of the partition a function sees for the current one.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Window {
    Documents(Bound, Bound),
    /// Bounds in `sortBy` units, or in `unit`s (calendar units included) for a date `sortBy`.
    Range(RangeBound, RangeBound, Option<TimeUnit>),
}

impl Window {
    const WHOLE: Self = Self::Documents(Bound::Unbounded, Bound::Unbounded);

    fn parse(spec: RawBsonRef<'_>) -> Result<Self> {
        let RawBsonRef::Document(spec) = spec else {
            return Err(parse_error("'window' field must be an object"));
        };
        let (mut documents, mut range, mut unit) = (None, None, None);
        for element in spec {
            let (key, value) = element.map_err(invalid_bson)?;
            match key.as_str() {
                "documents" => documents = Some(pair(value, "documents")?),
                "range" => range = Some(pair(value, "range")?),
                "unit" => match value {
                    RawBsonRef::String(u) => unit = Some(TimeUnit::parse(u)?),
                    _ => return Err(parse_error("'unit' must be a string")),
                },
                other => return Err(parse_error(format!("'window' has an invalid field: {other}"))),
            }
        }
        match (documents, range) {
            (Some([lower, upper]), None) => {
                if unit.is_some() {
                    return Err(parse_error("Window bounds can only specify 'unit' with range-based bounds."));
                }
                let bound = |v: RawBsonRef<'_>| -> Result<Bound> {
                    match v {
                        RawBsonRef::String("unbounded") => Ok(Bound::Unbounded),
                        RawBsonRef::String("current") => Ok(Bound::Current),
                        other => Number::from_raw(other)
                            .and_then(|n| n.to_i32_exact().map(i64::from))
                            .map(Bound::Offset)
                            .ok_or_else(|| parse_error("Numeric document-based bounds must be an integer")),
                    }
                };
                let (lower, upper) = (bound(lower)?, bound(upper)?);
                let order = |b: Bound, unbounded: i64| match b {
                    Bound::Unbounded => unbounded,
                    Bound::Current => 0,
                    Bound::Offset(n) => n,
                };
                if order(lower, i64::MIN) > order(upper, i64::MAX) {
                    return Err(parse_error("Lower document bound must not exceed upper document bound"));
                }
                Ok(Self::Documents(lower, upper))
            }
            (None, Some([lower, upper])) => {
                let bound = |v: RawBsonRef<'_>| -> Result<RangeBound> {
                    match v {
                        RawBsonRef::String("unbounded") => Ok(RangeBound::Unbounded),
                        RawBsonRef::String("current") => Ok(RangeBound::Current),
                        other => Number::from_raw(other)
                            .map(|n| RangeBound::Offset(n.to_f64()))
                            .ok_or_else(|| parse_error("Range-based bounds expression must be a number")),
                    }
                };
                Ok(Self::Range(bound(lower)?, bound(upper)?, unit))
            }
            (Some(_), Some(_)) => Err(parse_error("Window bounds must be 'documents' or 'range', but not both")),
            (None, None) => Err(parse_error("'window' field must specify 'documents' or 'range'")),
        }
    }

    /// The positions `[from, to)` of the window of the document at `i` among `n`; `keys` are
    /// the `sortBy` values (as numbers) for range windows.
    fn span(&self, i: usize, n: usize, keys: &[Option<f64>]) -> (usize, usize) {
        match *self {
            Self::Documents(lower, upper) => {
                let at = |b: Bound, unbounded: i64| -> i64 {
                    match b {
                        Bound::Unbounded => unbounded,
                        Bound::Current => i as i64,
                        Bound::Offset(k) => i as i64 + k,
                    }
                };
                let from = at(lower, 0).clamp(0, n as i64) as usize;
                let to = (at(upper, n as i64 - 1) + 1).clamp(0, n as i64) as usize;
                (from, to.max(from))
            }
            Self::Range(lower, upper, unit) => {
                let Some(Some(here)) = keys.get(i) else { return (i, i + 1) };
                // A date bound moves the date by whole units (months have their own lengths).
                let shifted = |d: f64| match unit {
                    Some(unit) => units::add(*here as i64, unit, d as i64, &Zone::Utc).map_or(f64::NAN, |ms| ms as f64),
                    None => here + d,
                };
                let low = match lower {
                    RangeBound::Unbounded => f64::NEG_INFINITY,
                    RangeBound::Current => *here,
                    RangeBound::Offset(d) => shifted(d),
                };
                let high = match upper {
                    RangeBound::Unbounded => f64::INFINITY,
                    RangeBound::Current => *here,
                    RangeBound::Offset(d) => shifted(d),
                };
                let inside = |k: &Option<f64>| k.is_some_and(|k| k >= low && k <= high);
                let from = keys.iter().position(inside).unwrap_or(n);
                let to = keys.iter().rposition(inside).map_or(from, |p| p + 1);
                (from, to.max(from))
            }
        }
    }

    fn grows_from_start(&self) -> bool {
        matches!(self, Self::Documents(Bound::Unbounded, Bound::Current | Bound::Offset(_)))
    }
}

fn pair<'a>(value: RawBsonRef<'a>, name: &str) -> Result<[RawBsonRef<'a>; 2]> {
    let items: Vec<RawBsonRef<'a>> = match value {
        RawBsonRef::Array(a) => a.into_iter().collect::<std::result::Result<_, _>>().map_err(invalid_bson)?,
        _ => Vec::new(),
    };
    match items.as_slice() {
        [lower, upper] => Ok([*lower, *upper]),
        _ => Err(parse_error(format!("Window bounds must be a 2-element array: {name}"))),
    }
}

/// The length of a time unit of `$derivative` and `$integral`, in milliseconds (mongod
/// refuses calendar units there, which have no fixed length).
fn unit_millis(unit: &str) -> Result<f64> {
    Ok(match unit {
        "week" => 7.0 * 86_400_000.0,
        "day" => 86_400_000.0,
        "hour" => 3_600_000.0,
        "minute" => 60_000.0,
        "second" => 1000.0,
        "millisecond" => 1.0,
        "month" | "quarter" | "year" => {
            return Err(parse_error(format!("unit must be a fixed-length unit, but got '{unit}'")));
        }
        other => return Err(parse_error(format!("unknown time unit value: {other}"))),
    })
}

/// A window function.
#[derive(Debug, Clone)]
enum Function {
    Accumulate(AccumulatorSpec, Window),
    Rank,
    DenseRank,
    DocumentNumber,
    Shift { output: Expression, by: i64, default: Bson },
    Locf(Expression),
    LinearFill(Expression),
    ExpMovingAvg { input: Expression, alpha: f64 },
    Derivative { input: Expression, unit: Option<f64>, window: Window },
    Integral { input: Expression, unit: Option<f64>, window: Window },
}

/// One output field.
#[derive(Debug, Clone)]
struct Output {
    path: Vec<String>,
    function: Function,
}

impl Output {
    fn parse(field: &str, spec: RawBsonRef<'_>) -> Result<Self> {
        let path = crate::query::path::checked_parts(field)?.into_iter().map(str::to_owned).collect();
        let RawBsonRef::Document(spec) = spec else {
            return Err(parse_error(format!("The field '{field}' must be an object")));
        };
        let mut window = None;
        let mut function = None;
        for element in spec {
            let (key, value) = element.map_err(invalid_bson)?;
            match key.as_str() {
                "window" => window = Some(Window::parse(value)?),
                name if name.starts_with('$') => {
                    if function.is_some() {
                        return Err(parse_error(format!("Window function found an unknown argument: {name}")));
                    }
                    function = Some((name.to_owned(), value));
                }
                other => return Err(parse_error(format!("Window function found an unknown argument: {other}"))),
            }
        }
        let Some((name, arg)) = function else {
            return Err(parse_error(format!("Expected a $-prefixed window function, {field}")));
        };
        let no_window = |window: Option<Window>| match window {
            Some(_) => Err(parse_error(format!("{name} does not accept a 'window' field"))),
            None => Ok(()),
        };
        let function = match name.as_str() {
            "$rank" | "$denseRank" | "$documentNumber" => {
                no_window(window)?;
                if !matches!(arg, RawBsonRef::Document(d) if d.is_empty()) {
                    return Err(parse_error(format!("{name} must be specified with '{{}}' as the value")));
                }
                match name.as_str() {
                    "$rank" => Function::Rank,
                    "$denseRank" => Function::DenseRank,
                    _ => Function::DocumentNumber,
                }
            }
            "$shift" => {
                no_window(window)?;
                let args = object(arg, &name)?;
                let output = Expression::parse(required(args, "output", &name)?)?;
                let by = Number::from_raw(required(args, "by", &name)?)
                    .and_then(|n| n.to_i32_exact())
                    .map(i64::from)
                    .ok_or_else(|| parse_error("'$shift:by' field must be an integer"))?;
                let default = match args.get("default").map_err(invalid_bson)? {
                    Some(v) => limits::to_bson(v)?,
                    None => Bson::Null,
                };
                Function::Shift { output, by, default }
            }
            "$locf" => {
                no_window(window)?;
                Function::Locf(Expression::parse(arg)?)
            }
            "$linearFill" => {
                no_window(window)?;
                Function::LinearFill(Expression::parse(arg)?)
            }
            "$expMovingAvg" => {
                no_window(window)?;
                let args = object(arg, &name)?;
                let input = Expression::parse(required(args, "input", &name)?)?;
                let alpha = match (args.get("N").map_err(invalid_bson)?, args.get("alpha").map_err(invalid_bson)?) {
                    (Some(n), None) => {
                        let n = Number::from_raw(n)
                            .and_then(|n| n.to_i32_exact())
                            .filter(|n| *n > 0)
                            .ok_or_else(|| parse_error("'N' field must be an integer, but found type"))?;
                        2.0 / (f64::from(n) + 1.0)
                    }
                    (None, Some(alpha)) => Number::from_raw(alpha)
                        .map(Number::to_f64)
                        .filter(|a| *a > 0.0 && *a < 1.0)
                        .ok_or_else(|| parse_error("'alpha' must be between 0 and 1 (exclusive)"))?,
                    _ => {
                        return Err(parse_error(
                            "$expMovingAvg sub object must have exactly two fields: An 'input' field, and either an 'N' field or an 'alpha' field",
                        ));
                    }
                };
                Function::ExpMovingAvg { input, alpha }
            }
            "$derivative" | "$integral" => {
                let args = object(arg, &name)?;
                let input = Expression::parse(required(args, "input", &name)?)?;
                let unit = match args.get("unit").map_err(invalid_bson)? {
                    Some(RawBsonRef::String(u)) => Some(unit_millis(u)?),
                    Some(_) => return Err(parse_error("'unit' must be a string")),
                    None => None,
                };
                if name == "$derivative" {
                    let window = window.ok_or_else(|| parse_error("$derivative requires explicit window bounds"))?;
                    Function::Derivative { input, unit, window }
                } else {
                    Function::Integral { input, unit, window: window.unwrap_or(Window::WHOLE) }
                }
            }
            "$covariancePop" | "$covarianceSamp" => {
                return Err(Error::new(
                    ErrorCode::NotImplemented,
                    format!("the window function {name} is not supported yet"),
                ));
            }
            _ => {
                let mut single = RawDocumentBuf::new();
                single.append(<&bson::raw::CStr>::try_from(name.as_str()).map_err(invalid_bson)?, RawBson::from(arg));
                let spec = AccumulatorSpec::parse(field, RawBsonRef::Document(&single)).map_err(|e| {
                    if e.code() == ErrorCode::Location15952 {
                        Error::new(ErrorCode::FailedToParse, format!("Unrecognized window function, {name}"))
                    } else {
                        e.into()
                    }
                })?;
                Function::Accumulate(spec, window.unwrap_or(Window::WHOLE))
            }
        };
        Ok(Self { path, function })
    }
}

fn object<'a>(arg: RawBsonRef<'a>, name: &str) -> Result<&'a RawDocument> {
    match arg {
        RawBsonRef::Document(d) => Ok(d),
        _ => Err(parse_error(format!("{name} must be specified with an object"))),
    }
}

fn required<'a>(args: &'a RawDocument, field: &str, name: &str) -> Result<RawBsonRef<'a>> {
    args.get(field)
        .map_err(invalid_bson)?
        .ok_or_else(|| parse_error(format!("{name} requires an '{field}' expression")))
}

/// A parsed `$setWindowFields`.
struct SetWindowFields {
    partition_by: Option<Expression>,
    sort_by: Option<(SortSpec, Option<String>)>,
    outputs: Vec<Output>,
}

impl SetWindowFields {
    fn parse(spec: RawBsonRef<'_>) -> Result<Self> {
        let RawBsonRef::Document(spec) = spec else {
            return Err(parse_error(format!(
                "the $setWindowFields stage specification must be an object, found {}",
                render::type_name(spec.element_type())
            )));
        };
        let (mut partition_by, mut sort_by, mut outputs) = (None, None, None);
        for element in spec {
            let (key, value) = element.map_err(invalid_bson)?;
            match key.as_str() {
                "partitionBy" => partition_by = Some(Expression::parse(value)?),
                "sortBy" => {
                    let RawBsonRef::Document(sort) = value else {
                        return Err(Error::new(
                            ErrorCode::TypeMismatch,
                            "BSON field '$setWindowFields.sortBy' is the wrong type",
                        ));
                    };
                    let mut fields = sort.iter();
                    let single = match (fields.next(), fields.next()) {
                        (Some(Ok((name, _))), None) => Some(name.as_str().to_owned()),
                        _ => None,
                    };
                    sort_by = Some((SortSpec::parse(sort)?, single));
                }
                "output" => {
                    let RawBsonRef::Document(output) = value else {
                        return Err(Error::new(
                            ErrorCode::TypeMismatch,
                            "BSON field '$setWindowFields.output' is the wrong type",
                        ));
                    };
                    let mut parsed = Vec::new();
                    for element in output {
                        let (field, spec) = element.map_err(invalid_bson)?;
                        parsed.push(Output::parse(field.as_str(), spec)?);
                    }
                    outputs = Some(parsed);
                }
                other => {
                    return Err(super::unknown_field(&format!("$setWindowFields.{other}")));
                }
            }
        }
        let outputs = outputs.ok_or_else(|| super::missing_field("$setWindowFields.output"))?;
        let needs_sort = |o: &Output| {
            matches!(
                o.function,
                Function::Rank
                    | Function::DenseRank
                    | Function::DocumentNumber
                    | Function::Shift { .. }
                    | Function::LinearFill(_)
                    | Function::ExpMovingAvg { .. }
                    | Function::Derivative { .. }
                    | Function::Integral { .. }
                    | Function::Accumulate(_, Window::Range(..))
            )
        };
        if sort_by.is_none() && outputs.iter().any(needs_sort) {
            return Err(parse_error("this window function requires a sortBy"));
        }
        let needs_single = |o: &Output| {
            matches!(
                o.function,
                Function::LinearFill(_)
                    | Function::Derivative { .. }
                    | Function::Integral { .. }
                    | Function::Accumulate(_, Window::Range(..))
            )
        };
        if outputs.iter().any(needs_single) && !sort_by.as_ref().is_some_and(|(_, single)| single.is_some()) {
            return Err(parse_error("Range-based window bounds require sortBy a single field"));
        }
        Ok(Self { partition_by, sort_by, outputs })
    }

    /// The documents of `stream` with the output fields set, partition by partition: the input
    /// is sorted by partition key (whole values, under the collation) and then `sortBy`, through
    /// the spilling sort, and each partition is computed when it has been read whole.
    fn run(self, stream: DocumentStream, env: &std::sync::Arc<PipelineEnv>) -> Result<DocumentStream> {
        let mut vars = env.vars.clone();
        vars.set_collation(env.collation.clone());
        let (key_vars, key_env, partition_by) = (vars.clone(), env.clone(), self.partition_by.clone());
        let mut bytes = 0usize;
        let wrapped: DocumentStream = Box::new(stream.map(move |document| {
            let document = document?;
            bytes += document.as_bytes().len();
            key_env.check_memory(bytes, |limit| {
                format!(
                    "Exceeded memory limit in DocumentSourceSetWindowFields, used {bytes} bytes (limit: {limit} bytes)"
                )
            })?;
            let key = match &partition_by {
                Some(expression) => expression.evaluate(&document, &key_vars)?.unwrap_or(Bson::Null),
                None => Bson::Null,
            };
            let mut partition = RawDocumentBuf::new();
            partition.append(bson::raw::cstr!("v"), RawBson::try_from(key).map_err(invalid_bson)?);
            let mut entry = RawDocumentBuf::new();
            entry.append(bson::raw::cstr!("p"), RawBson::Document(partition));
            entry.append(bson::raw::cstr!("d"), RawBson::Document(document));
            Ok(entry)
        }));
        let mut order = RawDocumentBuf::new();
        order.append(bson::raw::cstr!("p"), 1);
        if let Some((sort, _)) = &self.sort_by {
            for (field, ascending) in sort.fields() {
                let name = format!("d.{field}");
                order.append(
                    <&bson::raw::CStr>::try_from(name.as_str()).map_err(invalid_bson)?,
                    if ascending { 1 } else { -1 },
                );
            }
        }
        let order = SortSpec::parse(&order)?.with_collation(env.collation.as_ref());
        let limit = usize::try_from(env.max_memory_bytes).unwrap_or(usize::MAX);
        let sorted = crate::exec::spill::sort(wrapped, order, limit, env.storage.temp_dir())?;
        Ok(Box::new(Partitions { sorted: sorted.peekable(), stage: self, vars, pending: Vec::new().into_iter() }))
    }

    /// One partition (in `sortBy` order) with its output fields set.
    fn partition_output(&self, partition: &[&RawDocumentBuf], vars: &Variables) -> Result<Vec<RawDocumentBuf>> {
        let mut results: Vec<Vec<Option<Bson>>> = Vec::with_capacity(self.outputs.len());
        for output in &self.outputs {
            results.push(self.compute(&output.function, partition, vars)?);
        }
        let mut out = Vec::with_capacity(partition.len());
        for (row, document) in partition.iter().enumerate() {
            let mut shaped = limits::to_document(document)?;
            for (output, values) in self.outputs.iter().zip(&results) {
                if let Some(Some(value)) = values.get(row) {
                    set_path(&mut shaped, &output.path, value.clone());
                }
            }
            out.push(raw(&shaped)?);
        }
        Ok(out)
    }

    /// The `sortBy` value of each document as a number (milliseconds for dates), for range
    /// windows and the functions of a numeric axis.
    fn axis(&self, partition: &[&RawDocumentBuf]) -> Vec<Option<f64>> {
        let Some((_, Some(field))) = &self.sort_by else { return vec![None; partition.len()] };
        let path = crate::query::FieldPath::new(field);
        partition
            .iter()
            .map(|d| {
                let mut value = None;
                crate::query::path::walk_sort_keys(d, &path, &mut |v| {
                    if value.is_none() {
                        value = match v {
                            RawBsonRef::DateTime(t) => Some(t.timestamp_millis() as f64),
                            other => Number::from_raw(other).map(Number::to_f64),
                        };
                    }
                });
                value
            })
            .collect()
    }

    fn compute(
        &self,
        function: &Function,
        partition: &[&RawDocumentBuf],
        vars: &Variables,
    ) -> Result<Vec<Option<Bson>>> {
        let n = partition.len();
        let eval = |e: &Expression| -> Result<Vec<Option<Bson>>> {
            partition.iter().map(|d| Ok(e.evaluate(d, vars)?)).collect()
        };
        let same_key = |a: usize, b: usize| match (&self.sort_by, partition.get(a), partition.get(b)) {
            (Some((sort, _)), Some(a), Some(b)) => sort.compare(a, b).is_eq(),
            _ => false,
        };
        Ok(match function {
            Function::DocumentNumber => {
                (1..=n).map(|i| Some(Bson::Int32(i32::try_from(i).unwrap_or(i32::MAX)))).collect()
            }
            Function::Rank => {
                let mut out = Vec::with_capacity(n);
                let mut rank = 1;
                for i in 0..n {
                    if i > 0 && !same_key(i - 1, i) {
                        rank = i + 1;
                    }
                    out.push(Some(Bson::Int32(i32::try_from(rank).unwrap_or(i32::MAX))));
                }
                out
            }
            Function::DenseRank => {
                let mut out = Vec::with_capacity(n);
                let mut rank = 1;
                for i in 0..n {
                    if i > 0 && !same_key(i - 1, i) {
                        rank += 1;
                    }
                    out.push(Some(Bson::Int32(rank)));
                }
                out
            }
            Function::Shift { output, by, default } => {
                let values = eval(output)?;
                (0..n)
                    .map(|i| {
                        let at = i as i64 + by;
                        let shifted = usize::try_from(at)
                            .ok()
                            .filter(|at| *at < n)
                            .map(|at| values.get(at).cloned().flatten().unwrap_or(Bson::Null));
                        Some(shifted.unwrap_or_else(|| default.clone()))
                    })
                    .collect()
            }
            Function::Locf(input) => {
                let mut last = None;
                eval(input)?
                    .into_iter()
                    .map(|v| {
                        if !matches!(v, None | Some(Bson::Null | Bson::Undefined)) {
                            last = v;
                        }
                        Some(last.clone().unwrap_or(Bson::Null))
                    })
                    .collect()
            }
            Function::LinearFill(input) => {
                let values = eval(input)?;
                let axis = self.axis(partition);
                let known: Vec<(usize, f64)> = values
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.as_ref().and_then(Number::from_bson).map(|n| (i, n.to_f64())))
                    .collect();
                let mut out = Vec::with_capacity(n);
                for (i, value) in values.iter().enumerate() {
                    if !matches!(value, None | Some(Bson::Null | Bson::Undefined)) {
                        out.push(value.clone());
                        continue;
                    }
                    let before = known.iter().rev().find(|(k, _)| *k < i);
                    let after = known.iter().find(|(k, _)| *k > i);
                    let filled = match (before, after, axis.get(i).copied().flatten()) {
                        (Some((b, yb)), Some((a, ya)), Some(x)) => {
                            match (axis.get(*b).copied().flatten(), axis.get(*a).copied().flatten()) {
                                (Some(xb), Some(xa)) if xa != xb => {
                                    Some(Bson::Double(yb + (ya - yb) * (x - xb) / (xa - xb)))
                                }
                                _ => Some(Bson::Null),
                            }
                        }
                        _ => Some(Bson::Null),
                    };
                    out.push(filled);
                }
                out
            }
            Function::ExpMovingAvg { input, alpha } => {
                let mut average: Option<f64> = None;
                eval(input)?
                    .into_iter()
                    .map(|v| {
                        if let Some(x) = v.as_ref().and_then(Number::from_bson).map(Number::to_f64) {
                            average = Some(average.map_or(x, |a| alpha * x + (1.0 - alpha) * a));
                        }
                        Some(average.map_or(Bson::Null, Bson::Double))
                    })
                    .collect()
            }
            Function::Derivative { input, unit, window } | Function::Integral { input, unit, window } => {
                let values: Vec<Option<f64>> =
                    eval(input)?.iter().map(|v| v.as_ref().and_then(Number::from_bson).map(Number::to_f64)).collect();
                let axis = self.axis(partition);
                let scale = unit.unwrap_or(1.0);
                let scaled: Vec<Option<f64>> = axis.iter().map(|x| x.map(|x| x / scale)).collect();
                let derivative = matches!(function, Function::Derivative { .. });
                let keys = axis.clone();
                (0..n)
                    .map(|i| {
                        let (from, to) = window.span(i, n, &keys);
                        let points: Vec<(f64, f64)> = (from..to)
                            .filter_map(|j| {
                                Some((scaled.get(j).copied().flatten()?, values.get(j).copied().flatten()?))
                            })
                            .collect();
                        let value = if derivative {
                            match (points.first(), points.last()) {
                                (Some((x0, y0)), Some((x1, y1))) if points.len() > 1 && x1 != x0 => {
                                    Bson::Double((y1 - y0) / (x1 - x0))
                                }
                                _ => Bson::Null,
                            }
                        } else {
                            let area: f64 = points
                                .windows(2)
                                .filter_map(|w| match w {
                                    [(x0, y0), (x1, y1)] => Some((x1 - x0) * (y0 + y1) / 2.0),
                                    _ => None,
                                })
                                .sum();
                            Bson::Double(area)
                        };
                        Some(value)
                    })
                    .collect()
            }
            Function::Accumulate(spec, window) => {
                let keys = match window {
                    Window::Range(..) => self.axis(partition),
                    Window::Documents(..) => Vec::new(),
                };
                let mut out = Vec::with_capacity(n);
                if window.grows_from_start() {
                    // A window that starts at the partition's start only grows: one accumulator.
                    let mut acc = spec.start();
                    let mut added = 0;
                    for i in 0..n {
                        let (_, to) = window.span(i, n, &keys);
                        while added < to {
                            if let Some(document) = partition.get(added) {
                                spec.add(&mut acc, document, vars)?;
                            }
                            added += 1;
                        }
                        out.push(Some(acc.current(spec.op)));
                    }
                } else {
                    for i in 0..n {
                        let (from, to) = window.span(i, n, &keys);
                        let mut acc = spec.start_sliding();
                        for document in partition.get(from..to).unwrap_or_default() {
                            spec.add(&mut acc, document, vars)?;
                        }
                        out.push(Some(acc.finish(spec.op)));
                    }
                }
                out
            }
        })
    }
}

/// `$setWindowFields`: blocking.
pub(super) fn set_window_fields(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let spec = SetWindowFields::parse(args.spec)?;
    let env = args.env.clone();
    Ok(deferred(move || spec.run(stream, &env)))
}

/// The output of `$setWindowFields` over its sorted input, one partition at a time.
struct Partitions {
    sorted: std::iter::Peekable<DocumentStream>,
    stage: SetWindowFields,
    vars: Variables,
    pending: std::vec::IntoIter<RawDocumentBuf>,
}

impl Partitions {
    /// Reads the next whole partition and computes it.
    fn next_partition(&mut self) -> Result<Option<Vec<RawDocumentBuf>>> {
        let Some(first) = self.sorted.next() else { return Ok(None) };
        let first = first?;
        let malformed = || Error::new(ErrorCode::InternalError, "a $setWindowFields sort entry is malformed");
        let key_of = |entry: &RawDocumentBuf| -> Result<RawBson> {
            entry
                .get_document("p")
                .ok()
                .and_then(|p| p.get("v").ok().flatten())
                .map(RawBson::from)
                .ok_or_else(malformed)
        };
        let key = key_of(&first)?;
        let collation = self.vars.collation().cloned();
        let mut members = vec![first];
        while let Some(Ok(next)) = self.sorted.peek() {
            let same =
                compare_collated(key_of(next)?.as_raw_bson_ref(), key.as_raw_bson_ref(), collation.as_deref()).is_eq();
            if !same {
                break;
            }
            if let Some(Ok(next)) = self.sorted.next() {
                members.push(next);
            }
        }
        let documents: Vec<RawDocumentBuf> = members
            .iter()
            .map(|entry| entry.get_document("d").map(ToOwned::to_owned).map_err(|_| malformed()))
            .collect::<Result<_>>()?;
        let partition: Vec<&RawDocumentBuf> = documents.iter().collect();
        self.stage.partition_output(&partition, &self.vars).map(Some)
    }
}

impl Iterator for Partitions {
    type Item = Result<RawDocumentBuf>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(document) = self.pending.next() {
                return Some(Ok(document));
            }
            match self.next_partition() {
                Ok(Some(documents)) => self.pending = documents.into_iter(),
                Ok(None) => return None,
                Err(error) => return Some(Err(error)),
            }
        }
    }
}

/// `$fill`, as mongod runs it: `method` outputs through `$setWindowFields` (`$locf`,
/// `$linearFill`), then `value` outputs through `$addFields` with `$ifNull`.
pub(super) fn fill(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let RawBsonRef::Document(spec) = args.spec else {
        return Err(Error::new(ErrorCode::TypeMismatch, "the $fill stage specification must be an object"));
    };
    let (mut partition_by, mut sort_by, mut output) = (None, None, None);
    for element in spec {
        let (key, value) = element.map_err(invalid_bson)?;
        match (key.as_str(), value) {
            ("partitionBy", value) => partition_by = Some(RawBson::from(value)),
            ("partitionByFields", RawBsonRef::Array(fields)) => {
                let mut by = RawDocumentBuf::new();
                for field in fields {
                    let RawBsonRef::String(field) = field.map_err(invalid_bson)? else {
                        return Err(Error::new(
                            ErrorCode::TypeMismatch,
                            "'partitionByFields' must be an array of strings",
                        ));
                    };
                    let name = <&bson::raw::CStr>::try_from(field).map_err(invalid_bson)?;
                    by.append(name, format!("${field}"));
                }
                partition_by = Some(RawBson::Document(by));
            }
            ("sortBy", RawBsonRef::Document(sort)) => sort_by = Some(sort.to_owned()),
            ("output", RawBsonRef::Document(out)) => output = Some(out.to_owned()),
            (field @ ("partitionByFields" | "sortBy" | "output"), other) => {
                return Err(Error::new(
                    ErrorCode::TypeMismatch,
                    format!(
                        "BSON field '$fill.{field}' is the wrong type '{}'",
                        render::type_name(other.element_type())
                    ),
                ));
            }
            (other, _) => {
                return Err(super::unknown_field(&format!("$fill.{other}")));
            }
        }
    }
    let output = output.ok_or_else(|| super::missing_field("$fill.output"))?;
    let (mut methods, mut values) = (RawDocumentBuf::new(), RawDocumentBuf::new());
    for element in &output {
        let (field, how) = element.map_err(invalid_bson)?;
        let RawBsonRef::Document(how) = how else {
            return Err(parse_error(format!("The fill output for '{}' must be an object", field.as_str())));
        };
        let path = format!("${}", field.as_str());
        match (how.get("method").map_err(invalid_bson)?, how.get("value").map_err(invalid_bson)?) {
            (Some(RawBsonRef::String("locf")), None) => methods.append(field, bson::rawdoc! { "$locf": path }),
            (Some(RawBsonRef::String("linear")), None) => methods.append(field, bson::rawdoc! { "$linearFill": path }),
            (Some(_), None) => return Err(parse_error("Method must be either locf or linear")),
            (None, Some(value)) => values.append(field, bson::rawdoc! { "$ifNull": [path, RawBson::from(value)] }),
            _ => return Err(parse_error("Exactly one of 'value' and 'method' must be specified per fill output")),
        }
    }
    let mut stream = stream;
    if !methods.is_empty() {
        let mut window = RawDocumentBuf::new();
        if let Some(partition_by) = partition_by {
            window.append(bson::raw::cstr!("partitionBy"), partition_by);
        }
        if let Some(sort_by) = sort_by {
            window.append(bson::raw::cstr!("sortBy"), sort_by);
        }
        window.append(bson::raw::cstr!("output"), methods);
        let window_args = StageArgs {
            name: "$setWindowFields",
            spec: RawBsonRef::Document(&window),
            env: args.env,
            context: args.context,
            next: None,
        };
        stream = set_window_fields(stream, &window_args)?;
    }
    if !values.is_empty() {
        let add_args = StageArgs {
            name: "$addFields",
            spec: RawBsonRef::Document(&values),
            env: args.env,
            context: args.context,
            next: None,
        };
        stream = super::transform::document_stage(stream, &add_args)?;
    }
    Ok(stream)
}
