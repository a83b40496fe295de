//! The accumulators of `$group` (and of the stages built on it: `$bucket`, `$sortByCount`):
//! parsed once from `{field: {$op: expression}}`, then one [`Accumulator`] per group takes
//! each document's value and gives the group's result, with mongod's rules for types,
//! null and missing values, and memory.

use bson::{Bson, Decimal128, Document, RawBson, RawBsonRef, RawDocument};

use super::group_key::hash_value;
use crate::error::ErrorCode;
use crate::query::expr::{Expression, Variables};
use crate::query::number::Number;
use crate::query::order::compare_collated;
use crate::query::{QueryError, decimal, render};

/// mongod's `internalQueryMaxPushBytes` and `internalQueryMaxAddToSetBytes`: what one
/// `$push` or `$addToSet` may hold.
pub const MAX_COLLECTED_BYTES: usize = 100 * 1024 * 1024;

/// An accumulator operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccumulatorOp {
    /// `$sum`.
    Sum,
    /// `$avg`.
    Avg,
    /// `$min`.
    Min,
    /// `$max`.
    Max,
    /// `$first`.
    First,
    /// `$last`.
    Last,
    /// `$push`.
    Push,
    /// `$addToSet`.
    AddToSet,
    /// `$stdDevPop`.
    StdDevPop,
    /// `$stdDevSamp`.
    StdDevSamp,
    /// `$mergeObjects`.
    MergeObjects,
    /// `$count` (`{$count: {}}`, a `$sum` of 1).
    Count,
}

impl AccumulatorOp {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "$sum" => Self::Sum,
            "$avg" => Self::Avg,
            "$min" => Self::Min,
            "$max" => Self::Max,
            "$first" => Self::First,
            "$last" => Self::Last,
            "$push" => Self::Push,
            "$addToSet" => Self::AddToSet,
            "$stdDevPop" => Self::StdDevPop,
            "$stdDevSamp" => Self::StdDevSamp,
            "$mergeObjects" => Self::MergeObjects,
            "$count" => Self::Count,
            _ => return None,
        })
    }
}

/// Accumulators of mongod 7.0 that Monarch does not build yet: they answer 238, not 15952.
const UNBUILT_ACCUMULATORS: &[&str] = &[
    "$accumulator",
    "$bottom",
    "$bottomN",
    "$firstN",
    "$lastN",
    "$maxN",
    "$median",
    "$minN",
    "$percentile",
    "$top",
    "$topN",
];

/// One output field of a `$group`: its name, operator and input expression.
#[derive(Debug, Clone)]
pub struct AccumulatorSpec {
    /// The output field.
    pub field: String,
    /// The operator.
    pub op: AccumulatorOp,
    input: Expression,
}

impl AccumulatorSpec {
    /// Parses the output field `field: value` of a `$group`.
    ///
    /// # Errors
    /// mongod's: 40234 when `value` is not an accumulator object, 40235 for a dotted field
    /// name, 40236 for a `$`-name, 40238 for several operators, 40237 for an array argument,
    /// 15952 for an unknown operator, the expression's parse errors.
    pub fn parse(field: &str, value: RawBsonRef<'_>) -> Result<Self, QueryError> {
        if field.starts_with('$') {
            return Err(QueryError::new(
                ErrorCode::Location40236,
                format!("The field name '{field}' cannot be an operator name"),
            ));
        }
        if field.contains('.') {
            return Err(QueryError::new(
                ErrorCode::Location40235,
                format!("The field name '{field}' cannot contain '.'"),
            ));
        }
        let not_accumulator =
            || QueryError::new(ErrorCode::Location40234, format!("The field '{field}' must be an accumulator object"));
        let RawBsonRef::Document(spec) = value else { return Err(not_accumulator()) };
        let mut entries = spec.iter();
        let Some(first) = entries.next() else { return Err(not_accumulator()) };
        let (name, arg) = first.map_err(QueryError::invalid_bson)?;
        let name = name.as_str();
        if !name.starts_with('$') {
            return Err(not_accumulator());
        }
        if entries.next().is_some() {
            return Err(QueryError::new(
                ErrorCode::Location40238,
                format!("The field '{field}' must specify one accumulator"),
            ));
        }
        let Some(op) = AccumulatorOp::from_name(name) else {
            if UNBUILT_ACCUMULATORS.contains(&name) {
                return Err(QueryError::not_implemented(&format!("the {name} accumulator")));
            }
            return Err(QueryError::new(ErrorCode::Location15952, format!("unknown group operator '{name}'")));
        };
        if matches!(arg, RawBsonRef::Array(_)) {
            return Err(QueryError::new(
                ErrorCode::Location40237,
                format!("The {name} accumulator is a unary operator"),
            ));
        }
        let input = if op == AccumulatorOp::Count {
            match arg {
                RawBsonRef::Document(d) if d.is_empty() => Expression::Literal(Bson::Int32(1)),
                _ => {
                    return Err(QueryError::new(ErrorCode::Location40180, "$count takes no arguments, i.e. $count:{}"));
                }
            }
        } else {
            Expression::parse(arg)?
        };
        Ok(Self { field: field.to_owned(), op, input })
    }

    /// A fresh accumulator for one group.
    pub fn start(&self) -> Accumulator {
        Accumulator {
            state: match self.op {
                AccumulatorOp::Sum | AccumulatorOp::Count => State::Sum(Sum::default()),
                AccumulatorOp::Avg => State::Avg(Sum::default(), 0),
                AccumulatorOp::Min | AccumulatorOp::Max => State::Extreme(None),
                AccumulatorOp::First => State::First(None),
                AccumulatorOp::Last => State::Last(None),
                AccumulatorOp::Push => State::Push(Vec::new()),
                AccumulatorOp::AddToSet => State::AddToSet(Vec::new(), std::collections::HashMap::new()),
                AccumulatorOp::StdDevPop | AccumulatorOp::StdDevSamp => State::StdDev { count: 0, mean: 0.0, m2: 0.0 },
                AccumulatorOp::MergeObjects => State::Merge(Document::new()),
            },
            bytes: 0,
        }
    }

    /// Evaluates the input for `document` and adds it to `acc`.
    ///
    /// # Errors
    /// The expression's errors; 146 ExceededMemoryLimit for a `$push` or `$addToSet` past
    /// [`MAX_COLLECTED_BYTES`]; 40400 for `$mergeObjects` of a non-document.
    pub fn add(&self, acc: &mut Accumulator, document: &RawDocument, vars: &Variables) -> Result<(), QueryError> {
        let value = self.input.evaluate(document, vars)?;
        acc.add(self.op, value, vars)
    }
}

/// One group's running state of one accumulator.
#[derive(Debug, Clone)]
pub struct Accumulator {
    state: State,
    /// The bytes its collected values take (`$push`, `$addToSet`).
    bytes: usize,
}

#[derive(Debug, Clone)]
enum State {
    Sum(Sum),
    Avg(Sum, u64),
    Extreme(Option<RawBson>),
    First(Option<Option<Bson>>),
    Last(Option<Bson>),
    Push(Vec<Bson>),
    AddToSet(Vec<RawBson>, std::collections::HashMap<u64, Vec<usize>>),
    StdDev { count: u64, mean: f64, m2: f64 },
    Merge(Document),
}

impl Accumulator {
    fn add(&mut self, op: AccumulatorOp, value: Option<Bson>, vars: &Variables) -> Result<(), QueryError> {
        let collation = vars.collation().map(AsRef::as_ref);
        match &mut self.state {
            State::Sum(sum) => {
                if let Some(n) = value.as_ref().and_then(Number::from_bson) {
                    sum.add(n);
                }
            }
            State::Avg(sum, count) => {
                if let Some(n) = value.as_ref().and_then(Number::from_bson) {
                    sum.add(n);
                    *count += 1;
                }
            }
            State::Extreme(best) => {
                let Some(value) = value.filter(|v| !matches!(v, Bson::Null | Bson::Undefined)) else { return Ok(()) };
                let value = raw(value)?;
                let better = best.as_ref().is_none_or(|b| {
                    let order = compare_collated(value.as_raw_bson_ref(), b.as_raw_bson_ref(), collation);
                    if op == AccumulatorOp::Min { order.is_lt() } else { order.is_gt() }
                });
                if better {
                    self.bytes = raw_size(&value);
                    *best = Some(value);
                }
            }
            State::First(first) => {
                if first.is_none() {
                    self.bytes = value.as_ref().map_or(0, value_size);
                    *first = Some(value);
                }
            }
            State::Last(last) => {
                self.bytes = value.as_ref().map_or(0, value_size);
                *last = value;
            }
            State::Push(items) => {
                let Some(value) = value else { return Ok(()) };
                self.bytes = charge(self.bytes, &value, "$push")?;
                items.push(value);
            }
            State::AddToSet(items, by_hash) => {
                let Some(value) = value else { return Ok(()) };
                let value = raw(value)?;
                let hash = hash_value(value.as_raw_bson_ref(), collation);
                let bucket = by_hash.entry(hash).or_default();
                let known = bucket.iter().any(|&i| {
                    items.get(i).is_some_and(|k| {
                        compare_collated(k.as_raw_bson_ref(), value.as_raw_bson_ref(), collation).is_eq()
                    })
                });
                if !known {
                    self.bytes = charge_raw(self.bytes, &value, "$addToSet")?;
                    bucket.push(items.len());
                    items.push(value);
                }
            }
            State::StdDev { count, mean, m2 } => {
                if let Some(n) = value.as_ref().and_then(Number::from_bson) {
                    // Welford's update: stable for long inputs.
                    let x = n.to_f64();
                    *count += 1;
                    let delta = x - *mean;
                    *mean += delta / *count as f64;
                    *m2 += delta * (x - *mean);
                }
            }
            State::Merge(merged) => match value {
                None | Some(Bson::Null | Bson::Undefined) => {}
                Some(Bson::Document(doc)) => {
                    for (k, v) in doc {
                        merged.insert(k, v);
                    }
                }
                Some(other) => {
                    return Err(QueryError::new(
                        ErrorCode::Location40400,
                        format!(
                            "$mergeObjects requires object inputs, but input {} is of type {}",
                            render::owned_value(&other),
                            render::type_name(other.element_type())
                        ),
                    ));
                }
            },
        }
        Ok(())
    }

    /// The memory this accumulator holds, for the stage's memory limit.
    pub fn memory(&self) -> usize {
        self.bytes + std::mem::size_of::<Self>()
    }

    /// The result so far, leaving the accumulator as it is (a window that only grows).
    pub fn current(&self, op: AccumulatorOp) -> Bson {
        self.clone().finish(op)
    }

    /// The group's result.
    pub fn finish(self, op: AccumulatorOp) -> Bson {
        match self.state {
            State::Sum(sum) => sum.total(),
            State::Avg(sum, count) => sum.average(count),
            State::Extreme(best) => best.and_then(|b| Bson::try_from(b).ok()).unwrap_or(Bson::Null),
            State::First(first) => first.flatten().unwrap_or(Bson::Null),
            State::Last(last) => last.unwrap_or(Bson::Null),
            State::Push(items) => Bson::Array(items),
            State::AddToSet(items, _) => {
                Bson::Array(items.into_iter().filter_map(|v| Bson::try_from(v).ok()).collect())
            }
            State::StdDev { count, m2, .. } => {
                let divisor = if op == AccumulatorOp::StdDevSamp { count.saturating_sub(1) } else { count };
                if divisor == 0 { Bson::Null } else { Bson::Double((m2 / divisor as f64).sqrt()) }
            }
            State::Merge(merged) => Bson::Document(merged),
        }
    }
}

fn raw(value: Bson) -> Result<RawBson, QueryError> {
    RawBson::try_from(value).map_err(QueryError::invalid_bson)
}

/// About what `value` takes in memory.
fn value_size(value: &Bson) -> usize {
    std::mem::size_of::<Bson>()
        + match value {
            Bson::Document(d) => d.iter().map(|(k, v)| k.len() + value_size(v)).sum(),
            Bson::Array(a) => a.iter().map(value_size).sum(),
            Bson::String(s) => s.len(),
            Bson::Binary(b) => b.bytes.len(),
            _ => 0,
        }
}

/// About what `value` takes in memory.
fn raw_size(value: &RawBson) -> usize {
    std::mem::size_of::<RawBson>()
        + match value {
            RawBson::Document(d) => d.as_bytes().len(),
            RawBson::Array(a) => a.as_bytes().len(),
            RawBson::String(s) => s.len(),
            RawBson::Binary(b) => b.bytes.len(),
            _ => 0,
        }
}

/// `bytes` plus the size of `value`, or 146 past [`MAX_COLLECTED_BYTES`].
fn charge(bytes: usize, value: &Bson, op: &str) -> Result<usize, QueryError> {
    add_bytes(bytes, value_size(value), op)
}

fn charge_raw(bytes: usize, value: &RawBson, op: &str) -> Result<usize, QueryError> {
    add_bytes(bytes, raw_size(value), op)
}

fn add_bytes(bytes: usize, size: usize, op: &str) -> Result<usize, QueryError> {
    let total = bytes.saturating_add(size);
    if total > MAX_COLLECTED_BYTES {
        return Err(QueryError::new(
            ErrorCode::ExceededMemoryLimit,
            format!("{op} used too much memory and cannot spill to disk. Memory limit: {MAX_COLLECTED_BYTES} bytes"),
        ));
    }
    Ok(total)
}

/// The widest numeric type a sum has met.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
enum Widest {
    #[default]
    Int,
    Long,
    Double,
    Decimal,
}

/// mongod's `$sum`: integers add up exactly in an int64 (the result an int while every input
/// was an int and the total fits one); an int64 overflow or any double switches to a
/// compensated double sum; any decimal to an exact decimal sum.
#[derive(Debug, Clone, Default)]
struct Sum {
    widest: Widest,
    long: i64,
    double: f64,
    /// Kahan's compensation of `double`.
    compensation: f64,
    decimal: Option<Decimal128>,
}

impl Sum {
    fn add(&mut self, n: Number) {
        if let Number::Decimal(d) = n {
            let so_far = self.decimal.unwrap_or_else(|| match self.widest {
                Widest::Double => decimal::from_f64(self.double + self.compensation),
                _ => decimal::from_i64(self.long),
            });
            self.decimal = Some(decimal::add(so_far, d));
            self.widest = Widest::Decimal;
            return;
        }
        if let Some(total) = self.decimal {
            self.decimal = Some(decimal::add(total, n.to_decimal()));
            return;
        }
        let integer = match n {
            Number::Int32(i) => Some(i64::from(i)),
            Number::Int64(i) => {
                self.widest = self.widest.max(Widest::Long);
                Some(i)
            }
            _ => None,
        };
        if self.widest < Widest::Double
            && let Some(i) = integer
        {
            match self.long.checked_add(i) {
                Some(total) => self.long = total,
                None => {
                    self.switch_to_double();
                    self.add_double(i as f64);
                }
            }
            return;
        }
        self.switch_to_double();
        self.add_double(n.to_f64());
    }

    fn switch_to_double(&mut self) {
        if self.widest < Widest::Double {
            self.widest = Widest::Double;
            self.double = self.long as f64;
            self.compensation = 0.0;
        }
    }

    fn add_double(&mut self, x: f64) {
        let y = x - self.compensation;
        let t = self.double + y;
        self.compensation = (t - self.double) - y;
        self.double = t;
        if !t.is_finite() {
            self.compensation = 0.0;
        }
    }

    fn total(&self) -> Bson {
        match self.widest {
            Widest::Int => i32::try_from(self.long).map_or(Bson::Int64(self.long), Bson::Int32),
            Widest::Long => Bson::Int64(self.long),
            Widest::Double => Bson::Double(self.double),
            Widest::Decimal => self.decimal.map_or(Bson::Int32(0), Bson::Decimal128),
        }
    }

    fn average(&self, count: u64) -> Bson {
        if count == 0 {
            return Bson::Null;
        }
        let count_i64 = i64::try_from(count).unwrap_or(i64::MAX);
        match self.widest {
            Widest::Decimal => {
                let total = self.decimal.unwrap_or_else(|| decimal::from_i64(0));
                Bson::Decimal128(decimal::div(total, decimal::from_i64(count_i64)))
            }
            Widest::Double => Bson::Double(self.double / count as f64),
            Widest::Int | Widest::Long => Bson::Double(self.long as f64 / count as f64),
        }
    }
}

#[path = "accumulator_partial.rs"]
mod partial;

#[cfg(test)]
#[path = "accumulator_tests.rs"]
mod tests;
