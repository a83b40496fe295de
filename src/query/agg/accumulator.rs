//! The accumulators of `$group` (and of the stages built on it: `$bucket`, `$sortByCount`):
//! parsed once from `{field: {$op: expression}}`, then one [`Accumulator`] per group takes
//! each document's value and gives the group's result, with mongod's rules for types,
//! null and missing values, and memory.

use bson::{Bson, Document, RawBson, RawBsonRef, RawDocument};

use super::group_key::hash_value;
use crate::error::ErrorCode;
use crate::query::expr::{Expression, Variables};
use crate::query::number::Number;
use crate::query::order::compare_collated;
use crate::query::summation::{Deviation, Sum};
use crate::query::{QueryError, render};

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
    /// `$firstN`.
    FirstN,
    /// `$lastN`.
    LastN,
    /// `$maxN`.
    MaxN,
    /// `$minN`.
    MinN,
    /// `$top`.
    Top,
    /// `$bottom`.
    Bottom,
    /// `$topN`.
    TopN,
    /// `$bottomN`.
    BottomN,
    /// `$median`.
    Median,
    /// `$percentile`.
    Percentile,
}

/// Every accumulator by the name the user spells.
const NAMES: &[(&str, AccumulatorOp)] = &[
    ("$sum", AccumulatorOp::Sum),
    ("$avg", AccumulatorOp::Avg),
    ("$min", AccumulatorOp::Min),
    ("$max", AccumulatorOp::Max),
    ("$first", AccumulatorOp::First),
    ("$last", AccumulatorOp::Last),
    ("$push", AccumulatorOp::Push),
    ("$addToSet", AccumulatorOp::AddToSet),
    ("$stdDevPop", AccumulatorOp::StdDevPop),
    ("$stdDevSamp", AccumulatorOp::StdDevSamp),
    ("$mergeObjects", AccumulatorOp::MergeObjects),
    ("$count", AccumulatorOp::Count),
    ("$firstN", AccumulatorOp::FirstN),
    ("$lastN", AccumulatorOp::LastN),
    ("$maxN", AccumulatorOp::MaxN),
    ("$minN", AccumulatorOp::MinN),
    ("$top", AccumulatorOp::Top),
    ("$bottom", AccumulatorOp::Bottom),
    ("$topN", AccumulatorOp::TopN),
    ("$bottomN", AccumulatorOp::BottomN),
    ("$median", AccumulatorOp::Median),
    ("$percentile", AccumulatorOp::Percentile),
];

impl AccumulatorOp {
    fn from_name(name: &str) -> Option<Self> {
        NAMES.iter().find(|(n, _)| *n == name).map(|(_, op)| *op)
    }

    /// The name the user spells.
    pub fn name(self) -> &'static str {
        NAMES.iter().find(|(_, op)| *op == self).map_or("$group", |(n, _)| n)
    }
}

/// `$accumulator` runs JavaScript, which Monarch has none of: it answers as a mongod whose
/// scripting is disabled.
const JAVASCRIPT_ACCUMULATOR: &str = "$accumulator";

/// One output field of a `$group`: its name, operator and input expression.
#[derive(Debug, Clone)]
pub struct AccumulatorSpec {
    /// The output field.
    pub field: String,
    /// The operator.
    pub op: AccumulatorOp,
    input: Expression,
    extra: Extra,
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
            if name == JAVASCRIPT_ACCUMULATOR {
                return Err(QueryError::no_javascript());
            }
            return Err(QueryError::new(ErrorCode::Location15952, format!("unknown group operator '{name}'")));
        };
        if matches!(arg, RawBsonRef::Array(_)) {
            return Err(QueryError::new(
                ErrorCode::Location40237,
                format!("The {name} accumulator is a unary operator"),
            ));
        }
        if multi::takes_object(op) {
            let (input, extra) = multi::parse(op, name, arg)?;
            return Ok(Self { field: field.to_owned(), op, input, extra });
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
        Ok(Self { field: field.to_owned(), op, input, extra: Extra::None })
    }

    /// A fresh accumulator for one group.
    pub fn start(&self) -> Accumulator {
        self.start_with(false)
    }

    /// A fresh accumulator for one window of `$setWindowFields` that is computed afresh for
    /// each document (a window that does not start at the partition's start). mongod runs
    /// those through its removable window functions, whose `$bottom`/`$bottomN` keep the later
    /// of documents with equal sort keys where `$group` keeps the first.
    pub fn start_sliding(&self) -> Accumulator {
        self.start_with(true)
    }

    fn start_with(&self, sliding: bool) -> Accumulator {
        Accumulator {
            state: match self.op {
                AccumulatorOp::Sum | AccumulatorOp::Count => State::Sum(Sum::default()),
                AccumulatorOp::Avg => State::Avg(Sum::default(), 0),
                AccumulatorOp::Min | AccumulatorOp::Max => State::Extreme(None),
                AccumulatorOp::First => State::First(None),
                AccumulatorOp::Last => State::Last(None),
                AccumulatorOp::Push => State::Push(Vec::new()),
                AccumulatorOp::AddToSet => State::AddToSet(Vec::new(), std::collections::HashMap::new()),
                AccumulatorOp::StdDevPop | AccumulatorOp::StdDevSamp => State::StdDev(Deviation::default()),
                AccumulatorOp::MergeObjects => State::Merge(Document::new()),
                _ => multi::start(self.op, &self.extra, sliding),
            },
            bytes: 0,
        }
    }

    /// Fixes what a fresh group's accumulator takes from the group key `key`: the `n` of
    /// `$firstN`, `$topN`, ... (mongod evaluates it against the key).
    ///
    /// # Errors
    /// `n`'s evaluation errors and mongod's checks of its value (5787902, 5787903, 5787908).
    pub fn prepare(
        &self,
        acc: &mut Accumulator,
        key: Option<RawBsonRef<'_>>,
        vars: &Variables,
    ) -> Result<(), QueryError> {
        multi::prepare(&mut acc.state, &self.extra, key, vars)
    }

    /// Evaluates the input for `document` and adds it to `acc`.
    ///
    /// # Errors
    /// The expression's errors; 146 ExceededMemoryLimit for a `$push` or `$addToSet` past
    /// [`MAX_COLLECTED_BYTES`]; 40400 for `$mergeObjects` of a non-document.
    pub fn add(&self, acc: &mut Accumulator, document: &RawDocument, vars: &Variables) -> Result<(), QueryError> {
        let value = self.input.evaluate(document, vars)?;
        match &mut acc.state {
            State::Several(several) => {
                if several.n.is_none()
                    || (several.sort.is_none() && matches!(self.extra, Extra::Several { sort: Some(_), .. }))
                {
                    multi::prepare(&mut acc.state, &self.extra, None, vars)?;
                }
                let State::Several(several) = &mut acc.state else { return Ok(()) };
                multi::add(self.op, several, value, document, vars)?;
                acc.bytes = add_bytes(0, several.bytes, self.op.name())?;
                Ok(())
            }
            State::Percentile { values, .. } => {
                if let Some(x) = crate::query::expr::percentile_input(value.as_ref()) {
                    values.push(x);
                    acc.bytes = add_bytes(acc.bytes, std::mem::size_of::<f64>(), self.op.name())?;
                }
                Ok(())
            }
            _ => acc.add(self.op, value, vars),
        }
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
    StdDev(Deviation),
    Merge(Document),
    Several(Several),
    Percentile { values: Vec<f64>, p: Vec<f64> },
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
                self.bytes = add_to_set(items, by_hash, raw(value)?, collation, self.bytes)?;
            }
            State::StdDev(deviation) => {
                if let Some(n) = value.as_ref().and_then(Number::from_bson) {
                    deviation.add(n.to_f64());
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
            // Their inputs go through `AccumulatorSpec::add`, which has the document they need.
            State::Several(_) | State::Percentile { .. } => {}
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
            State::StdDev(deviation) => deviation.result(op == AccumulatorOp::StdDevSamp),
            State::Merge(merged) => Bson::Document(merged),
            state @ (State::Several(_) | State::Percentile { .. }) => multi::finish(op, state),
        }
    }
}

/// Adds `value` to a `$addToSet` set unless an equal value (under the collation) is in it;
/// returns the bytes the set holds then.
fn add_to_set(
    items: &mut Vec<RawBson>,
    by_hash: &mut std::collections::HashMap<u64, Vec<usize>>,
    value: RawBson,
    collation: Option<&crate::query::Collation>,
    bytes: usize,
) -> Result<usize, QueryError> {
    let bucket = by_hash.entry(hash_value(value.as_raw_bson_ref(), collation)).or_default();
    let known = bucket.iter().any(|&i| {
        items.get(i).is_some_and(|k| compare_collated(k.as_raw_bson_ref(), value.as_raw_bson_ref(), collation).is_eq())
    });
    if known {
        return Ok(bytes);
    }
    let bytes = charge_raw(bytes, &value, "$addToSet")?;
    bucket.push(items.len());
    items.push(value);
    Ok(bytes)
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

#[path = "accumulator_multi.rs"]
mod multi;
#[path = "accumulator_partial.rs"]
mod partial;

use multi::{Extra, Several};

#[cfg(test)]
#[path = "accumulator_tests.rs"]
mod tests;
